"""Learned latent directions: unsupervised discovery by a direction matrix and a reconstructor.

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
"""

from __future__ import annotations

import json
import logging
import math
import numbers
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from torch import nn
from tqdm.auto import tqdm

from ..models.interface import EditableGenerator
from ..models.limits import check_render_batch

__all__ = [
    "DIRECTION_KINDS",
    "TRAINABLE_KINDS",
    "DirectionMatrix",
    "LatentDiscoveryConfig",
    "LatentDiscoveryTrainer",
    "Reconstructor",
    "apply_shift",
    "discovery_loss",
    "sample_shifts",
]

logger = logging.getLogger(__name__)

#: Kinds of direction matrix a user can ask for.
DIRECTION_KINDS = ("ortho", "linear", "proj", "random", "coordinate")
#: Kinds with trainable parameters (the others are fixed baselines).
TRAINABLE_KINDS = ("ortho", "linear", "proj")
#: File name of the resumable checkpoint inside a run's `checkpoint_dir`.
CHECKPOINT_NAME = "latent_discovery.pt"
NOISE_MODES = ("const", "random", "none")


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_num_directions(num_directions: int, latent_dim: int) -> int:
    """Validate K against the latent size; errors name `num_directions`."""
    if not _is_int(num_directions) or not 1 <= int(num_directions) <= latent_dim:
        raise ValueError(
            f"`num_directions` must be an int in [1, {latent_dim}] (the editable latent size of this generator), "
            f"got {num_directions!r}."
        )
    return int(num_directions)


def check_kind(kind: str) -> str:
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
    >>> from sefa_plugin.directions.learned import DirectionMatrix
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
        if not _is_int(latent_dim) or latent_dim < 1:
            raise ValueError(f"`latent_dim` must be a positive int, got {latent_dim!r}.")
        if editable_dim is None:
            editable_dim = latent_dim
        if not _is_int(editable_dim) or not 1 <= editable_dim <= latent_dim:
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
    if not _is_int(batch_size) or batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive int, got {batch_size!r}.")
    if not _is_int(num_directions) or num_directions < 1:
        raise ValueError(f"`num_directions` must be a positive int, got {num_directions!r}.")
    _check_shift_range(shift_scale, min_shift)
    index = torch.randint(int(num_directions), (batch_size,), generator=generator)
    magnitude = min_shift + (shift_scale - min_shift) * torch.rand(batch_size, generator=generator)
    sign = torch.randint(0, 2, (batch_size,), generator=generator).float() * 2 - 1
    return index, sign * magnitude


def _check_shift_range(shift_scale: float, min_shift: float) -> None:
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


# ---------------------------------------------------------------------------------- reconstructor
class Reconstructor(ModelMixin, ConfigMixin):
    """Tells which direction, and how far, moved an image: a small CNN with two heads.

    The original and shifted images are concatenated on channels (``[N, 2C, H, W]``), go through a
    stride-2 convolution stack down to 4×4 (GroupNorm, so results do not depend on the batch, nor on the
    number of processes), then a hidden layer, and two linear heads: logits over the K directions and one
    scalar shift.

    Args:
        num_directions: K, the number of classes.
        img_channels: C of the generator's images.
        img_resolution: Side of the (square) images.
        base_channels: Channels of the first convolution; doubled at each downsampling.
        max_channels: Upper bound on channels.
        hidden_features: Width of the hidden layer before the heads.

    Example:

    >>> import torch
    >>> from sefa_plugin.directions.learned import Reconstructor
    >>> r = Reconstructor(num_directions=5, img_channels=3, img_resolution=16)
    >>> logits, shift = r(torch.zeros(2, 3, 16, 16), torch.zeros(2, 3, 16, 16))
    >>> tuple(logits.shape), tuple(shift.shape)
    ((2, 5), (2,))
    """

    @register_to_config
    def __init__(
        self,
        num_directions: int,
        img_channels: int = 3,
        img_resolution: int = 64,
        base_channels: int = 32,
        max_channels: int = 128,
        hidden_features: int = 256,
    ) -> None:
        super().__init__()
        for name, value in (("num_directions", num_directions), ("img_channels", img_channels),
                            ("base_channels", base_channels), ("max_channels", max_channels),
                            ("hidden_features", hidden_features)):  # fmt: skip
            if not _is_int(value) or value < 1:
                raise ValueError(f"`{name}` must be a positive int, got {value!r}.")
        if not _is_int(img_resolution) or img_resolution < 4:
            raise ValueError(f"`img_resolution` must be an int ≥ 4, got {img_resolution!r}.")
        ch = min(base_channels, max_channels)
        layers: list[nn.Module] = [nn.Conv2d(2 * img_channels, ch, 3, padding=1), nn.LeakyReLU(0.2)]
        res = img_resolution
        while res > 4:
            out = min(ch * 2, max_channels)
            layers += [
                nn.Conv2d(ch, out, 3, stride=2, padding=1),
                nn.GroupNorm(math.gcd(8, out), out),
                nn.LeakyReLU(0.2),
                nn.Conv2d(out, out, 3, padding=1),
                nn.GroupNorm(math.gcd(8, out), out),
                nn.LeakyReLU(0.2),
            ]
            ch, res = out, (res + 1) // 2
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.hidden = nn.Sequential(nn.Flatten(), nn.Linear(ch * 16, hidden_features), nn.LeakyReLU(0.2))
        self.direction_head = nn.Linear(hidden_features, num_directions)
        self.shift_head = nn.Linear(hidden_features, 1)

    def forward(self, original: torch.Tensor, shifted: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Direction logits ``[N, K]`` and predicted shifts ``[N]`` for image pairs ``[N, C, H, W]``."""
        cfg = self.config
        expected = [cfg.img_channels, cfg.img_resolution, cfg.img_resolution]
        for name, x in (("original", original), ("shifted", shifted)):
            if x.ndim != 4 or list(x.shape[1:]) != expected:
                raise ValueError(f"`{name}` must have shape [N, {', '.join(map(str, expected))}], got {list(x.shape)}.")
        if original.shape[0] != shifted.shape[0]:
            raise ValueError(
                f"`original` and `shifted` differ in batch size: {original.shape[0]} vs {shifted.shape[0]}."
            )
        h = self.hidden(self.pool(self.features(torch.cat([original, shifted], dim=1))))  # [N, hidden]
        return self.direction_head(h), self.shift_head(h).squeeze(1)


# ---------------------------------------------------------------------------------- training
@dataclass
class LatentDiscoveryConfig:
    """Settings of one run (stored in its checkpoint; resuming needs the same settings).

    Attributes:
        num_directions: K (at most the latent size; ignored with fixed `vectors`).
        kind: One of :data:`DIRECTION_KINDS`, or ``"fixed"`` (set by the trainer for given vectors).
        layers: W+ layers the shift is added to (None: all layers).
        batch_size: Image pairs per step (per process).
        lr: Adam learning rate of both networks (paper: 1e-4).
        shift_scale: Largest ``|ε|`` (paper: 6).
        min_shift: Smallest ``|ε|`` (paper: 0.5).
        reg_weight: λ, the weight of the shift L1 term (paper: 0.25).
        seed: Seed of the initialisation and of every batch.
        noise_mode: Noise of the generator's synthesis (``"const"``: only the shift changes the image).
        base_channels: Reconstructor width (see :class:`Reconstructor`).
        max_channels: Reconstructor's widest layer.
    """

    num_directions: int = 10
    kind: str = "ortho"
    layers: list[int] | None = None
    batch_size: int = 32
    lr: float = 1e-4
    shift_scale: float = 6.0
    min_shift: float = 0.5
    reg_weight: float = 0.25
    seed: int = 0
    noise_mode: str = "const"
    base_channels: int = 32
    max_channels: int = 128
    extra: dict = field(default_factory=dict)


def _batch_generator(seed: int, stream: int, step: int, process: int) -> torch.Generator:
    """An independent RNG per (run seed, train/eval stream, step, process): runs resume exactly."""
    state = np.random.SeedSequence([int(seed), int(stream), int(step), int(process)]).generate_state(2, np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def _atomic_torch_save(obj: dict, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _module_device(module: nn.Module) -> torch.device:
    for t in (*module.parameters(), *module.buffers()):
        return t.device
    return torch.device("cpu")


class LatentDiscoveryTrainer:
    """Joint training of a :class:`DirectionMatrix` and a :class:`Reconstructor` on a frozen generator.

    Args:
        generator: Any :class:`~sefa_plugin.models.interface.EditableGenerator` (moved to the device).
        config: The run's :class:`LatentDiscoveryConfig`.
        checkpoint_dir: Folder of the resumable checkpoint (``latent_discovery.pt``) and ``log.jsonl``;
            training resumes from it when it holds a checkpoint of the same run. None: no checkpoints.
        device: ``"cpu"`` or ``"cuda"``; default: the generator's device (a multi-process
            ``accelerate launch`` always uses one accelerator per process).
        vectors: ``[K, D]`` directions to hold fixed (RCA of existing directions); sets ``kind="fixed"``.

    Example:

    >>> from sefa_plugin.directions.learned import LatentDiscoveryConfig, LatentDiscoveryTrainer
    >>> trainer = LatentDiscoveryTrainer(generator, LatentDiscoveryConfig(num_directions=5))  # doctest: +SKIP
    >>> trainer.train(steps=1000)  # doctest: +SKIP
    >>> accuracy, per_direction = trainer.evaluate(num_batches=100)  # doctest: +SKIP
    """

    def __init__(
        self,
        generator: EditableGenerator,
        config: LatentDiscoveryConfig,
        checkpoint_dir: str | os.PathLike | None = None,
        device: str | torch.device | None = None,
        vectors: torch.Tensor | None = None,
    ) -> None:
        from accelerate import Accelerator

        if not isinstance(generator, EditableGenerator):
            raise TypeError(f"`generator` must implement EditableGenerator, got {type(generator).__name__}.")
        self.config = config = self._validated(config, generator, vectors)
        if device is None:  # follow the generator, but a multi-process launch uses one GPU per process
            distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
            use_cpu = _module_device(generator).type == "cpu" and not (distributed and torch.cuda.is_available())
        else:
            use_cpu = torch.device(device).type == "cpu"
        self.accelerator = acc = Accelerator(cpu=use_cpu)
        self.generator = generator.to(acc.device)
        z, c, _, _ = self._sample(1, _batch_generator(config.seed, 2, 0, 0))
        with torch.no_grad():
            probe = generator.synthesize(generator.sample_latents(z, c=c), noise_mode=config.noise_mode)
        if probe.ndim != 4 or probe.shape[2] != probe.shape[3]:
            raise ValueError(f"The generator must render square images [N, C, H, W], got {list(probe.shape)}.")
        matrix = DirectionMatrix(
            generator.latent_dim, config.num_directions, config.kind, config.seed, vectors,
            editable_dim=generator.editable_latent_dim,
        )  # fmt: skip
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            reconstructor = Reconstructor(
                num_directions=matrix.num_directions, img_channels=int(probe.shape[1]),
                img_resolution=int(probe.shape[2]), base_channels=config.base_channels,
                max_channels=config.max_channels,
            )  # fmt: skip
        params = list(reconstructor.parameters()) + (list(matrix.parameters()) if matrix.trainable else [])
        optimizer = torch.optim.Adam(params, lr=config.lr)
        self.step = 0
        self.wall_seconds = 0.0
        self.checkpoint_dir = None if checkpoint_dir is None else Path(checkpoint_dir)
        if self.checkpoint_dir is not None:
            self._load_checkpoint(matrix, reconstructor, optimizer)
        matrix.to(acc.device)
        if matrix.trainable:
            self.matrix, self.reconstructor, self.optimizer = acc.prepare(matrix, reconstructor, optimizer)
        else:
            self.matrix = matrix
            self.reconstructor, self.optimizer = acc.prepare(reconstructor, optimizer)
        self._window: list[dict[str, float]] = []

    # ------------------------------------------------------------------ setup
    @staticmethod
    def _validated(
        config: LatentDiscoveryConfig, generator: EditableGenerator, vectors: torch.Tensor | None
    ) -> LatentDiscoveryConfig:
        cfg = LatentDiscoveryConfig(**asdict(config))
        if vectors is not None:
            cfg.kind, cfg.num_directions = "fixed", int(vectors.shape[0])
        else:
            check_kind(cfg.kind)
            cfg.num_directions = check_num_directions(cfg.num_directions, generator.editable_latent_dim)
        if cfg.layers is not None:
            cfg.layers = sorted({int(i) for i in cfg.layers})
            if not cfg.layers or any(not 0 <= i < generator.num_ws for i in cfg.layers):
                raise ValueError(f"`layers` must be indices in [0, {generator.num_ws - 1}], got {config.layers}.")
            if cfg.layers == list(range(generator.num_ws)):
                cfg.layers = None
        check_render_batch("batch_size", cfg.batch_size, generator, images_per_item=2)  # image pairs
        if not (math.isfinite(cfg.lr) and cfg.lr > 0):
            raise ValueError(f"`lr` must be a positive finite number, got {cfg.lr!r}.")
        if not (math.isfinite(cfg.reg_weight) and cfg.reg_weight >= 0):
            raise ValueError(f"`reg_weight` must be a finite number ≥ 0, got {cfg.reg_weight!r}.")
        _check_shift_range(cfg.shift_scale, cfg.min_shift)
        if cfg.noise_mode not in NOISE_MODES:
            raise ValueError(f"`noise_mode` must be one of {NOISE_MODES}, got {cfg.noise_mode!r}.")
        return cfg

    def _load_checkpoint(self, matrix: DirectionMatrix, reconstructor: Reconstructor, optimizer) -> None:
        assert self.checkpoint_dir is not None
        try:
            self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise OSError(f"`checkpoint_dir` {str(self.checkpoint_dir)!r} cannot be created: {err}") from err
        path = self.checkpoint_dir / CHECKPOINT_NAME
        if not path.is_file():
            return
        state = torch.load(path, map_location="cpu", weights_only=True)
        saved, current = state.get("config", {}), asdict(self.config)
        diff = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
        if diff:
            detail = ", ".join(f"{k}: {saved.get(k)!r} there, {current.get(k)!r} now" for k in diff)
            raise ValueError(
                f"`checkpoint_dir` {str(self.checkpoint_dir)!r} holds a run with other settings ({detail}); "
                f"use the same settings to resume, or another folder."
            )
        if matrix.kind == "fixed" and not torch.equal(state["direction_matrix"]["basis"], matrix.basis):
            raise ValueError(f"`checkpoint_dir` {str(self.checkpoint_dir)!r} holds a run with other directions.")
        from ..hub import weights_sha256

        if state.get("generator_sha256") != weights_sha256(self.generator):  # type: ignore[arg-type]
            raise ValueError(
                f"`checkpoint_dir` {str(self.checkpoint_dir)!r} holds a run on another generator (weights differ)."
            )
        matrix.load_state_dict(state["direction_matrix"])
        reconstructor.load_state_dict(state["reconstructor"])
        optimizer.load_state_dict(state["optimizer"])
        self.step = int(state["step"])
        self.wall_seconds = float(state.get("wall_seconds", 0.0))
        logger.info("Resuming latent discovery from %s at step %d", path, self.step)

    # ------------------------------------------------------------------ one batch
    def _sample(self, n: int, rng: torch.Generator, balanced_offset: int | None = None):
        g, cfg = self.generator, self.config
        z = g.randn_z(n, generator=rng)
        c = None
        c_dim = int(getattr(getattr(g, "config", None), "c_dim", 0) or 0)
        if c_dim:
            c = F.one_hot(torch.randint(c_dim, (n,), generator=rng), c_dim).float()
        k = self.config.num_directions
        index, eps = sample_shifts(n, k, cfg.shift_scale, cfg.min_shift, generator=rng)
        if balanced_offset is not None:  # every direction equally often over the batches (evaluation)
            index = ((torch.arange(n) + balanced_offset) % k)[torch.randperm(n, generator=rng)]
        dev = self.accelerator.device
        return z.to(dev), None if c is None else c.to(dev), index.to(dev), eps.to(dev)

    def _render(self, z, c, index, eps, grad: bool = False):
        """Original and shifted images for one batch (untruncated latents)."""
        g, cfg = self.generator, self.config
        with torch.no_grad():
            latents = g.sample_latents(z, c=c, truncation_psi=1.0)  # [N, num_ws, D]
            original = g.synthesize(latents, noise_mode=cfg.noise_mode)
        with torch.set_grad_enabled(grad):
            shifts = self.matrix(index, eps)  # [N, D]; through DDP when the matrix is trainable
            shifted = g.synthesize(apply_shift(latents, shifts, cfg.layers), noise_mode=cfg.noise_mode)
        return original, shifted

    def train_step(self) -> dict[str, float]:
        """One update of the reconstructor (and of the matrix, for trainable kinds); returns its stats."""
        acc = self.accelerator
        rng = _batch_generator(self.config.seed, 0, self.step, acc.process_index)
        z, c, index, eps = self._sample(self.config.batch_size, rng)
        original, shifted = self._render(z, c, index, eps, grad=self.matrix_trainable)
        logits, shift_pred = self.reconstructor(original, shifted)
        loss, ce, l1 = discovery_loss(logits, shift_pred, index, eps, self.config.reg_weight)
        self.optimizer.zero_grad(set_to_none=True)
        acc.backward(loss)
        self.optimizer.step()
        self.step += 1
        accuracy = (logits.argmax(dim=1) == index).float().mean()
        return {"loss": float(loss.detach()), "cross_entropy": float(ce.detach()),
                "shift_l1": float(l1.detach()), "accuracy": float(accuracy)}  # fmt: skip

    @property
    def matrix_trainable(self) -> bool:
        return self.direction_matrix.trainable

    @property
    def direction_matrix(self) -> DirectionMatrix:
        """The (unwrapped) direction matrix."""
        return self.accelerator.unwrap_model(self.matrix)

    @property
    def unwrapped_reconstructor(self) -> Reconstructor:
        """The (unwrapped) reconstructor."""
        return self.accelerator.unwrap_model(self.reconstructor)

    # ------------------------------------------------------------------ loops
    @contextmanager
    def _frozen_generator(self) -> Iterator[None]:
        g = self.generator
        flags = [p.requires_grad for p in g.parameters()]  # type: ignore[attr-defined]
        was_training = g.training  # type: ignore[attr-defined]
        g.requires_grad_(False).eval()  # type: ignore[attr-defined]
        try:
            yield
        finally:
            for p, flag in zip(g.parameters(), flags, strict=True):  # type: ignore[attr-defined]
                p.requires_grad_(flag)
            g.train(was_training)  # type: ignore[attr-defined]

    def train(
        self,
        steps: int,
        checkpoint_every: int = 1000,
        log_every: int = 100,
        progress_bar: Callable[..., Any] | None = None,
    ) -> dict[str, float]:
        """Train until `steps` steps in total (counting resumed ones), checkpointing on the way.

        Args:
            steps: Total steps to reach.
            checkpoint_every: Write the checkpoint every this many steps (and at the end).
            log_every: Log (and append to ``log.jsonl``) the mean stats of this many steps.
            progress_bar: A callable like ``tqdm`` taking ``total=`` (e.g. ``pipe.progress_bar``).

        Returns:
            The mean stats (loss, cross_entropy, shift_l1, accuracy) of the last logged window
            (empty if no step was run).
        """
        if not _is_int(steps) or steps < 0:
            raise ValueError(f"`steps` must be an int ≥ 0, got {steps!r}.")
        for name, value in (("checkpoint_every", checkpoint_every), ("log_every", log_every)):
            if not _is_int(value) or value < 1:
                raise ValueError(f"`{name}` must be a positive int, got {value!r}.")
        main = self.accelerator.is_main_process
        remaining = max(steps - self.step, 0)
        if progress_bar is None or not main:
            bar = tqdm(total=remaining, desc="latent discovery", disable=not main)
        else:
            bar = progress_bar(total=remaining)
        summary: dict[str, float] = {}
        self.reconstructor.train()
        with self._frozen_generator():
            last = time.perf_counter()
            while self.step < steps:
                self._window.append(self.train_step())
                now = time.perf_counter()
                self.wall_seconds, last = self.wall_seconds + (now - last), now
                bar.update(1)
                if self.step % log_every == 0 or self.step == steps:
                    summary = self._flush_log()
                    bar.set_postfix(loss=f"{summary['loss']:.3f}", acc=f"{summary['accuracy']:.2f}")
                if self.step % checkpoint_every == 0:
                    self.save_checkpoint()
        bar.close()
        if remaining:
            self.save_checkpoint()
        return summary

    def _flush_log(self) -> dict[str, float]:
        window, self._window = self._window, []
        summary = {k: float(np.mean([s[k] for s in window])) for k in window[0]}
        logger.info("latent discovery step %d: %s", self.step, ", ".join(f"{k} {v:.4f}" for k, v in summary.items()))
        if self.checkpoint_dir is not None and self.accelerator.is_main_process:
            with (self.checkpoint_dir / "log.jsonl").open("a", encoding="utf-8") as fh:
                fh.write(json.dumps({"step": self.step, "wall_seconds": self.wall_seconds, **summary}) + "\n")
        return summary

    @torch.no_grad()
    def evaluate(self, num_batches: int = 100, batch_size: int | None = None, seed: int | None = None):
        """Argmax accuracy of the reconstructor on fresh batches (RCA), overall and per direction.

        Every direction is drawn equally often (the overall accuracy has the same expectation as with
        uniform indices); batches are independent of the training batches.

        Returns:
            ``(accuracy, per_direction)``: a float and a ``[K]`` CPU tensor.
        """
        if not _is_int(num_batches) or num_batches < 1:
            raise ValueError(f"`num_batches` must be a positive int, got {num_batches!r}.")
        n = check_render_batch(
            "batch_size", self.config.batch_size if batch_size is None else batch_size, self.generator, 2
        )
        acc, k = self.accelerator, self.config.num_directions
        correct = torch.zeros(k, device=acc.device)
        total = torch.zeros(k, device=acc.device)
        was_training = self.reconstructor.training
        self.reconstructor.eval()
        with self._frozen_generator():
            for b in range(num_batches):
                rng = _batch_generator(self.config.seed if seed is None else seed, 1, b, acc.process_index)
                z, c, index, eps = self._sample(n, rng, balanced_offset=b * n)
                logits, _ = self.reconstructor(*self._render(z, c, index, eps))
                hit = (logits.argmax(dim=1) == index).float()
                correct.index_add_(0, index, hit)
                total.index_add_(0, index, torch.ones_like(hit))
        self.reconstructor.train(was_training)
        correct, total = acc.reduce(correct, "sum"), acc.reduce(total, "sum")
        per_direction = (correct / total.clamp_min(1)).cpu()
        return float(correct.sum() / total.sum()), per_direction

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self) -> Path | None:
        """Write the resumable checkpoint atomically (main process only); None without `checkpoint_dir`."""
        if self.checkpoint_dir is None:
            return None
        path = self.checkpoint_dir / CHECKPOINT_NAME
        if not self.accelerator.is_main_process:
            return path
        from ..hub import weights_sha256

        state = {
            "format": "sefa_plugin.latent_discovery",
            "config": asdict(self.config),
            "step": self.step,
            "wall_seconds": self.wall_seconds,
            "generator_sha256": weights_sha256(self.generator),  # type: ignore[arg-type]
            "direction_matrix": self.direction_matrix.state_dict(),
            "reconstructor": self.unwrapped_reconstructor.state_dict(),
            "optimizer": self.optimizer.state_dict(),
        }
        _atomic_torch_save(state, path)
        return path
