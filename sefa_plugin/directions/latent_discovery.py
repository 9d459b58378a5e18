"""Latent discovery, the tensor core: the direction matrix, latent shifts, shift sampling and the loss.

Voynov & Babenko, "Unsupervised Discovery of Interpretable Directions in the GAN Latent Space", ICML
2020 (https://arxiv.org/abs/2002.03754; official code: https://github.com/anvoynov/GANLatentDiscovery).

A matrix of K directions and a reconstructor network are trained together. Each step draws a latent, a
direction index ``k`` uniform over K and a shift ``ε``, renders the image and the image with the latent
moved by ``ε · d_k``, and asks the reconstructor to tell ``k`` and ``ε`` from the pair. The loss is
``cross_entropy(k̂, k) + λ · mean|ε̂ − ε|`` (λ = 0.25); the generator stays frozen. Directions that
the reconstructor can tell apart are directions whose effects on the image differ, which tends to make
them interpretable.

Direction matrix kinds:

* ``"ortho"``: the first K columns of ``exp(S − Sᵀ)`` (an orthogonal matrix for any square ``S``).
* ``"linear"``: a free ``[D, K]`` matrix (directions may change length).
* ``"proj"``: a free matrix whose columns are scaled to unit norm before use.
* ``"random"`` and ``"coordinate"``: fixed baselines (a seeded random orthonormal basis, the first K
  axes) with no trainable parameters; only the reconstructor learns.

Shift sampling: the paper draws ``ε ~ U[−6, 6]`` and then moves values with ``|ε| < 0.5`` onto ``±0.5``,
which puts point masses at ``±0.5``. Here ``|ε|`` is drawn uniformly from ``[min_shift, shift_scale]``
and the sign independently, which is exactly ``U[−6, 6]`` conditioned on ``|ε| ≥ 0.5`` (the same
distribution as resampling until ``|ε| ≥ 0.5``), without the point masses.

For style-based generators the shift is added to the untruncated W+ latents on the chosen layers (all
of them by default, i.e. a shift of ``w``); for z-input generators it is added to ``z``.

The directions found this way are stored with ``method="learned"``. The reconstructor and the
resumable training loop live in :mod:`sefa_plugin.training.reconstructor` and
:mod:`sefa_plugin.training.latent_discovery`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..utils.checks import is_int

__all__ = [
    "DIRECTION_KINDS",
    "TRAINABLE_KINDS",
    "DirectionMatrix",
    "apply_shift",
    "check_kind",
    "check_num_directions",
    "check_shift_range",
    "discovery_loss",
    "sample_shifts",
]

#: Kinds of direction matrix a user can ask for.
DIRECTION_KINDS = ("ortho", "linear", "proj", "random", "coordinate")
#: Kinds with trainable parameters (the others are fixed baselines).
TRAINABLE_KINDS = ("ortho", "linear", "proj")
#: File name of the resumable checkpoint inside a run's `checkpoint_dir`.


def check_num_directions(num_directions: int, latent_dim: int) -> int:
    """Validate K against the latent size; errors name `num_directions`."""
    if not is_int(num_directions) or not 1 <= int(num_directions) <= latent_dim:
        raise ValueError(
            f"`num_directions` must be an int in [1, {latent_dim}] (the editable latent size of this generator), "
            f"got {num_directions!r}."
        )
    return int(num_directions)


def check_kind(kind: str) -> str:
    """Validate a direction matrix kind; errors list :data:`DIRECTION_KINDS`."""
    if kind not in DIRECTION_KINDS:
        raise ValueError(f"`kind` must be one of {DIRECTION_KINDS}, got {kind!r}.")
    return kind


# ---------------------------------------------------------------------------------- direction matrix
class DirectionMatrix(nn.Module):
    """K directions in a D-dimensional latent space, trainable or fixed.

    Args:
        latent_dim: D, the width of the editable latent.
        num_directions: K, at most D.
        kind: One of :data:`DIRECTION_KINDS` (see the module docstring), or ``"fixed"`` with `vectors`.
        seed: Seed of the initialisation (``"ortho"``) or of the basis (``"random"``).
        vectors: ``[K, D]`` directions to hold fixed (only with ``kind="fixed"``; any K).
        editable_dim: How many leading coordinates the directions may move (default: all D). A
            class-conditional BigGAN's latent is ``[z, class embedding]``: its directions live in the
            ``z`` part and are zero on the rest (the generator's ``editable_latent_dim``).

    Example:

    >>> import torch
    >>> from sefa_plugin.directions.latent_discovery import DirectionMatrix
    >>> m = DirectionMatrix(latent_dim=8, num_directions=3, kind="ortho")
    >>> d = m.directions()  # [K, D]
    >>> torch.allclose(d @ d.T, torch.eye(3), atol=1e-5)
    True
    >>> latents = torch.zeros(2, 4, 8)  # [N, num_ws, D]
    >>> shifted = m.shift(latents, index=torch.tensor([0, 2]), eps=torch.tensor([1.0, -2.0]), layers=[0, 1])
    >>> torch.allclose(shifted[1, 0], -2 * d[2]), bool(shifted[:, 2:].eq(0).all())
    (True, True)
    """

    def __init__(
        self,
        latent_dim: int,
        num_directions: int,
        kind: str = "ortho",
        seed: int = 0,
        vectors: torch.Tensor | None = None,
        editable_dim: int | None = None,
    ) -> None:
        super().__init__()
        if not is_int(latent_dim) or latent_dim < 1:
            raise ValueError(f"`latent_dim` must be a positive int, got {latent_dim!r}.")
        if editable_dim is None:
            editable_dim = latent_dim
        if not is_int(editable_dim) or not 1 <= editable_dim <= latent_dim:
            raise ValueError(f"`editable_dim` must be an int in [1, {latent_dim}], got {editable_dim!r}.")
        if kind == "fixed":
            if vectors is None or vectors.ndim != 2 or vectors.shape[1] != latent_dim or vectors.shape[0] < 1:
                shape = None if vectors is None else list(vectors.shape)
                raise ValueError(f"`kind='fixed'` needs `vectors` of shape [K, {latent_dim}], got {shape}.")
            num_directions = int(vectors.shape[0])
        elif kind not in DIRECTION_KINDS:
            raise ValueError(f"`kind` must be one of {DIRECTION_KINDS} (or 'fixed' with `vectors`), got {kind!r}.")
        else:
            if vectors is not None:
                raise ValueError(f"`vectors` is only used with `kind='fixed'`, not with {kind!r}.")
            num_directions = check_num_directions(num_directions, editable_dim)
        self.kind = kind
        self.latent_dim = int(latent_dim)
        # Fixed vectors are given in the whole latent; the other kinds are built in the editable part.
        self.editable_dim = self.latent_dim if kind == "fixed" else int(editable_dim)
        self.num_directions = int(num_directions)
        rng = torch.Generator().manual_seed(int(seed))
        d, k = self.editable_dim, self.num_directions
        if kind == "ortho":
            # Near the identity at first (the official code starts from 0.001·randn).
            self.log_half = nn.Parameter(0.001 * torch.randn(d, d, generator=rng))
        elif kind in ("linear", "proj"):
            self.weight = nn.Parameter(torch.eye(d)[:, :k].clone())  # [D, K]: columns are directions
        elif kind == "random":
            q, r = torch.linalg.qr(torch.randn(d, k, generator=rng, dtype=torch.float64))
            q = q * torch.sign(torch.diagonal(r)).where(torch.diagonal(r) != 0, torch.ones(k, dtype=q.dtype))
            self.register_buffer("basis", q.float().contiguous())
        elif kind == "coordinate":
            self.register_buffer("basis", torch.eye(d)[:, :k].contiguous())
        else:  # fixed
            self.register_buffer("basis", vectors.detach().to(torch.float32).T.contiguous())

    @property
    def trainable(self) -> bool:
        """Whether this matrix has parameters to learn."""
        return self.kind in TRAINABLE_KINDS

    def matrix(self) -> torch.Tensor:
        """The directions as columns in the editable coordinates, ``[editable_dim, K]`` (differentiable)."""
        if self.kind == "ortho":
            return torch.matrix_exp(self.log_half - self.log_half.T)[:, : self.num_directions]
        if self.kind == "linear":
            return self.weight
        if self.kind == "proj":
            return self.weight / self.weight.norm(dim=0, keepdim=True).clamp_min(1e-12)
        return self.basis

    def directions(self) -> torch.Tensor:
        """The directions as rows, ``[K, D]`` (unit rows except for ``"linear"`` and ``"fixed"``)."""
        rows = self.matrix().T
        if self.editable_dim < self.latent_dim:
            rows = F.pad(rows, (0, self.latent_dim - self.editable_dim))
        return rows

    def forward(self, index: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """Latent shifts ``eps[i] · d_{index[i]}``, ``[N, D]``."""
        if index.ndim != 1 or eps.shape != index.shape:
            raise ValueError(
                f"`index` and `eps` must both have shape [N], got {list(index.shape)} and {list(eps.shape)}."
            )
        return eps[:, None].to(self._dtype()) * self.directions()[index.to(self._device())]

    def shift(
        self,
        latents: torch.Tensor,
        index: torch.Tensor,
        eps: torch.Tensor,
        layers: Sequence[int] | None = None,
    ) -> torch.Tensor:
        """Move latents ``[N, num_ws, D]`` by ``eps · d_index`` on `layers` (default: all layers)."""
        return apply_shift(latents, self(index, eps), layers)

    def _device(self) -> torch.device:
        return next(iter(self.parameters()), None).device if self.trainable else self.basis.device

    def _dtype(self) -> torch.dtype:
        return next(iter(self.parameters()), None).dtype if self.trainable else self.basis.dtype


def apply_shift(latents: torch.Tensor, shifts: torch.Tensor, layers: Sequence[int] | None = None) -> torch.Tensor:
    """Add per-sample shifts ``[N, D]`` to latents ``[N, num_ws, D]`` on `layers` (differentiable).

    Example:

    >>> import torch
    >>> out = apply_shift(torch.zeros(1, 3, 2), torch.tensor([[1.0, 2.0]]), layers=[1])
    >>> out[0].tolist()
    [[0.0, 0.0], [1.0, 2.0], [0.0, 0.0]]
    """
    if latents.ndim != 3 or shifts.ndim != 2 or shifts.shape != (latents.shape[0], latents.shape[2]):
        raise ValueError(
            f"`shifts` must have shape [N, D] matching `latents` [N, num_ws, D]; got {list(shifts.shape)} "
            f"and {list(latents.shape)}."
        )
    shifts = shifts.to(latents.device, latents.dtype)
    if layers is None:
        return latents + shifts[:, None, :]
    layers = [int(i) for i in layers]
    if not layers or any(not 0 <= i < latents.shape[1] for i in layers):
        raise ValueError(f"`layers` {layers} out of range for latents with {latents.shape[1]} layers.")
    mask = torch.zeros(latents.shape[1], device=latents.device, dtype=latents.dtype)
    mask[layers] = 1
    return latents + mask[None, :, None] * shifts[:, None, :]


def sample_shifts(
    batch_size: int,
    num_directions: int,
    shift_scale: float = 6.0,
    min_shift: float = 0.5,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw direction indices uniform over K and shifts ε with ``min_shift ≤ |ε| ≤ shift_scale``.

    ``|ε|`` is uniform on ``[min_shift, shift_scale]`` and its sign is a fair coin: ``U[−s, s]``
    conditioned on ``|ε| ≥ min_shift`` (see the module docstring for how this differs from the paper's
    clamping).

    Returns:
        ``(index, eps)``: a long tensor ``[batch_size]`` and a float tensor ``[batch_size]`` (on CPU).

    Example:

    >>> import torch
    >>> index, eps = sample_shifts(1000, 5, generator=torch.Generator().manual_seed(0))
    >>> int(index.min()), int(index.max()), bool((eps.abs() >= 0.5).all() and (eps.abs() <= 6).all())
    (0, 4, True)
    """
    if not is_int(batch_size) or batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive int, got {batch_size!r}.")
    if not is_int(num_directions) or num_directions < 1:
        raise ValueError(f"`num_directions` must be a positive int, got {num_directions!r}.")
    check_shift_range(shift_scale, min_shift)
    index = torch.randint(int(num_directions), (batch_size,), generator=generator)
    magnitude = min_shift + (shift_scale - min_shift) * torch.rand(batch_size, generator=generator)
    sign = torch.randint(0, 2, (batch_size,), generator=generator).float() * 2 - 1
    return index, sign * magnitude


def check_shift_range(shift_scale: float, min_shift: float) -> None:
    """Validate the shift range ``min_shift ≤ |ε| ≤ shift_scale``; errors name the argument."""
    if not (math.isfinite(shift_scale) and shift_scale > 0):
        raise ValueError(f"`shift_scale` must be a positive finite number, got {shift_scale!r}.")
    if not (math.isfinite(min_shift) and 0 <= min_shift <= shift_scale):
        raise ValueError(f"`min_shift` must be in [0, `shift_scale`={shift_scale}], got {min_shift!r}.")


def discovery_loss(
    logits: torch.Tensor,
    shift_pred: torch.Tensor,
    index: torch.Tensor,
    eps: torch.Tensor,
    reg_weight: float = 0.25,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The paper's loss ``CE(logits, index) + reg_weight · mean|ε̂ − ε|``.

    Returns:
        ``(loss, cross_entropy, shift_l1)``; the last two unweighted.
    """
    ce = F.cross_entropy(logits, index)
    l1 = (shift_pred - eps).abs().mean()
    return ce + reg_weight * l1, ce, l1
