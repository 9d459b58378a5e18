"""The factor predictor: a small CNN that reads every generative factor of a procedural scene.

It is this project's analogue of the attribute predictors of SeFa (Shen & Zhou, CVPR 2021) and
InterFaceGAN (Shen et al., CVPR 2020): it scores generated images so that latent directions can be
labelled ("this direction moves the object to the right") and measured (re-scoring, Fréchet distance
of its features). It is trained on rendered scenes only (:mod:`sefa_plugin.data.shapes`, dataset seed
1, whereas the GAN trains on seed 0) and evaluated on held-out scenes of seed 2.

Architecture: two coordinate channels (CoordConv) are appended to the RGB input so that globally pooled
features can encode position; then one stage per entry of ``channels``, each a stride-2 3×3 convolution
and a stride-1 3×3 convolution (batch norm + ReLU after each), global average pooling and a linear layer
to a ``feature_dim`` embedding (ReLU), which :meth:`FactorPredictor.features` returns. A linear layer maps
the embedding to every head at once.

Heads (``forward`` returns them raw):

* circular factors (the hues): a 2-vector regressing ``(cos 2πh, sin 2πh)``;
* categorical factors (shape): one logit per class;
* continuous factors: one number regressing the factor normalised to [0, 1] by its range;
* *periodic* continuous factors (``rotation`` by default): a 2-vector regressing ``(cos φ, sin φ)`` with
  ``φ = 2π (v - lo) / (hi - lo)``. A square has 4-fold symmetry, so a square turned by -45° and one turned
  by +45° are the same image: a plain regression on [-45, 45) would have to jump from one end of the range
  to the other and would average the two at the boundary. Going round a circle removes that seam (a
  triangle's 3-fold symmetry makes every angle of [-45, 45) distinct, so the circle loses nothing there).
  Rotation is undefined for discs: its loss is masked out for them, and its prediction means nothing.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from torch import nn
from tqdm.auto import tqdm

from ..data.shapes import FACTOR_KINDS, FACTOR_NAMES, FACTOR_RANGES, SHAPES, render_scenes
from ..utils.weights import check_loaded_weights

logger = logging.getLogger(__name__)

#: Dataset seed of the predictor's training scenes (the GAN trains on seed 0).
TRAIN_DATA_SEED = 1
#: Dataset seed of the held-out scenes used by :func:`evaluate_predictor`.
EVAL_DATA_SEED = 2
#: Index of the disc in :data:`~sefa_plugin.data.shapes.SHAPES` (rotation is undefined for it).
DISC = SHAPES.index("disc")
SQUARE = SHAPES.index("square")
_KINDS = ("circular", "categorical", "continuous")


class _ConvBlock(nn.Sequential):
    def __init__(self, in_ch: int, out_ch: int, stride: int) -> None:
        super().__init__(
            nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True),
        )


class FactorPredictor(ModelMixin, ConfigMixin):
    """Predicts every factor of a procedural scene from its image.

    Args:
        img_resolution: Side of the (square) input images in pixels; other sizes are refused.
        img_channels: Channels of the input images (3 for RGB), values in [-1, 1] (values outside are
            clamped: a generator's raw output overshoots a little, and the image a user sees is clamped).
        channels: Output channels of the convolution stages (each halves the resolution).
        feature_dim: Size of the pooled embedding returned by :meth:`features`.
        factor_names: The factors to predict, in order.
        factor_kinds: ``{name: kind}`` (or a list aligned with `factor_names`) with kind ``"circular"``
            (values in [lo, hi) wrap around), ``"categorical"`` (integer classes lo … hi) or
            ``"continuous"``.
        factor_ranges: ``{name: (lo, hi)}`` for every factor (natural units).
        periodic_factors: Continuous factors whose range is regressed as one turn of a circle (see the
            module docstring: the 4-fold symmetry of the square makes rotation -45° equal to +45°).

    Example:

    >>> import torch
    >>> from sefa_plugin.evaluation import FactorPredictor
    >>> model = FactorPredictor(channels=(8, 16), feature_dim=32)
    >>> out = model.predict(torch.zeros(2, 3, 64, 64))
    >>> sorted(out)[:3], tuple(out["shape_probs"].shape)
    (['background_hue', 'floor_height', 'lighting'], (2, 3))
    >>> tuple(model.features(torch.zeros(2, 3, 64, 64)).shape)
    (2, 32)
    """

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: Any, *args: Any, **kwargs: Any) -> FactorPredictor:
        """Load like ``ModelMixin.from_pretrained``, then refuse missing or non-finite weights.

        Example:

        >>> from sefa_plugin import DEFAULT_PREDICTOR
        >>> FactorPredictor.from_pretrained(DEFAULT_PREDICTOR).config.img_resolution
        64
        """
        model = super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        check_loaded_weights(model, f"`pretrained_model_name_or_path` {str(pretrained_model_name_or_path)!r}")
        return model

    @register_to_config
    def __init__(
        self,
        img_resolution: int = 64,
        img_channels: int = 3,
        channels: Sequence[int] = (32, 64, 128, 128),
        feature_dim: int = 128,
        factor_names: Sequence[str] = FACTOR_NAMES,
        factor_kinds: Mapping[str, str] | Sequence[str] | None = None,
        factor_ranges: Mapping[str, Sequence[float]] | None = None,
        periodic_factors: Sequence[str] = ("rotation",),
    ) -> None:
        super().__init__()
        if img_resolution < 8 or img_resolution % 2:
            raise ValueError(f"`img_resolution` must be an even number ≥ 8, got {img_resolution}.")
        if img_channels < 1:
            raise ValueError(f"`img_channels` must be ≥ 1, got {img_channels}.")
        channels = [int(c) for c in channels]
        if not channels or min(channels) < 1:
            raise ValueError(f"`channels` must be a non-empty list of positive ints, got {channels}.")
        if 2 ** len(channels) > img_resolution:
            raise ValueError(
                f"`channels` has {len(channels)} stride-2 stages, too many for `img_resolution`={img_resolution}."
            )
        if feature_dim < 1:
            raise ValueError(f"`feature_dim` must be ≥ 1, got {feature_dim}.")
        names = [str(n) for n in factor_names]
        if not names or len(set(names)) != len(names):
            raise ValueError(f"`factor_names` must be non-empty and unique, got {names}.")
        if factor_kinds is None:
            factor_kinds = {n: FACTOR_KINDS[n] for n in names if n in FACTOR_KINDS}
        if not isinstance(factor_kinds, Mapping):
            factor_kinds = list(factor_kinds)
            if len(factor_kinds) != len(names):
                raise ValueError(
                    f"`factor_kinds` as a list must have one kind per factor ({len(names)}), got {len(factor_kinds)}."
                )
            factor_kinds = dict(zip(names, factor_kinds, strict=True))
        if factor_ranges is None:
            factor_ranges = {n: FACTOR_RANGES[n] for n in names if n in FACTOR_RANGES}
        self.kinds: dict[str, str] = {}
        self.ranges: dict[str, tuple[float, float]] = {}
        for n in names:
            if n not in factor_kinds:
                raise ValueError(f"`factor_kinds` has no kind for factor {n!r}.")
            if factor_kinds[n] not in _KINDS:
                raise ValueError(f"`factor_kinds`[{n!r}] must be one of {_KINDS}, got {factor_kinds[n]!r}.")
            if n not in factor_ranges:
                raise ValueError(f"`factor_ranges` has no range for factor {n!r}.")
            lo, hi = (float(v) for v in factor_ranges[n])
            if not hi > lo:
                raise ValueError(f"`factor_ranges`[{n!r}] must have hi > lo, got {(lo, hi)}.")
            self.kinds[n], self.ranges[n] = factor_kinds[n], (lo, hi)
        for n in periodic_factors:
            if self.kinds.get(n) != "continuous":
                raise ValueError(f"`periodic_factors` may only name continuous factors, got {n!r}.")
        self.factor_names = tuple(names)
        self.periodic = frozenset(periodic_factors)
        # Store the resolved kinds and ranges, so a saved config is self-contained.
        self.register_to_config(
            factor_names=list(names),
            factor_kinds=dict(self.kinds),
            factor_ranges={n: list(r) for n, r in self.ranges.items()},
            periodic_factors=list(periodic_factors),
        )

        # Output layout of the shared linear head: name -> (start, width).
        self.head_slices: dict[str, tuple[int, int]] = {}
        start = 0
        for n in names:
            width = self.num_outputs(n)
            self.head_slices[n] = (start, width)
            start += width

        coords = (torch.arange(img_resolution, dtype=torch.float32) + 0.5) / img_resolution * 2 - 1
        grid = torch.stack(torch.meshgrid(coords, coords, indexing="ij"))  # [2, R, R]: y then x
        self.register_buffer("coord_grid", grid.unsqueeze(0), persistent=False)
        blocks: list[nn.Module] = []
        in_ch = img_channels + 2
        for ch in channels:
            blocks += [_ConvBlock(in_ch, ch, 2), _ConvBlock(ch, ch, 1)]
            in_ch = ch
        self.trunk = nn.Sequential(*blocks)
        self.embed = nn.Linear(in_ch, feature_dim)
        self.head = nn.Linear(feature_dim, start)

    # ----------------------------------------------------------------------------------- helpers
    def num_outputs(self, name: str) -> int:
        """Width of factor `name`'s raw output in :meth:`forward`."""
        kind = self.kinds[name]
        if kind == "categorical":
            lo, hi = self.ranges[name]
            return round(hi - lo) + 1
        return 2 if kind == "circular" or name in self.periodic else 1

    def is_angular(self, name: str) -> bool:
        """Whether factor `name` is regressed as a point on the unit circle (hues, rotation)."""
        return self.kinds[name] == "circular" or name in self.periodic

    def check_images(self, images: Any) -> torch.Tensor:
        """Validate `images` (``[N, img_channels, img_resolution, img_resolution]``) and return them."""
        c, r = self.config.img_channels, self.config.img_resolution
        expected = f"[N, {c}, {r}, {r}]"
        if not isinstance(images, torch.Tensor):
            raise TypeError(f"`images` must be a torch.Tensor of shape {expected}, got {type(images).__name__}.")
        if images.ndim != 4 or images.shape[1] != c or images.shape[2] != r or images.shape[3] != r:
            hint = ""
            if images.ndim == 4 and images.shape[1] == c and images.shape[2:] != (r, r):
                hint = " (images of another resolution are not resized: resize them explicitly if you must)"
            raise ValueError(f"`images` must have shape {expected}, got {list(images.shape)}{hint}.")
        if not images.is_floating_point():
            raise ValueError(f"`images` must be a floating-point tensor in [-1, 1], got dtype {images.dtype}.")
        return images

    def encode_targets(self, factors: torch.Tensor) -> dict[str, torch.Tensor]:
        """Training targets for a factor table ``[N, len(factor_names)]`` in natural units.

        Angular factors give ``[N, 2]`` unit vectors, categorical ones class indices ``[N]`` (long),
        continuous ones values normalised to [0, 1] ``[N]``.
        """
        out = {}
        for j, n in enumerate(self.factor_names):
            lo, hi = self.ranges[n]
            v = factors[:, j].float()
            if self.kinds[n] == "categorical":
                out[n] = (v - lo).round().long()
            elif self.is_angular(n):
                phi = 2 * math.pi * (v - lo) / (hi - lo)
                out[n] = torch.stack([torch.cos(phi), torch.sin(phi)], dim=1)
            else:
                out[n] = (v - lo) / (hi - lo)
        return out

    def _decode_angle(self, name: str, vec: torch.Tensor) -> torch.Tensor:
        lo, hi = self.ranges[name]
        turns = torch.remainder(torch.atan2(vec[:, 1], vec[:, 0]) / (2 * math.pi), 1.0)
        return lo + (hi - lo) * torch.remainder(turns, 1.0)  # remainder twice: float rounding to 1.0

    # ----------------------------------------------------------------------------------- model
    def _embed(self, images: torch.Tensor) -> torch.Tensor:
        # A generator's raw output overshoots [-1, 1] a little; score the image a user sees (clamped,
        # as when it is saved or shown), not pixels that never reach the screen.
        images = images.clamp(-1.0, 1.0)
        x = torch.cat([images, self.coord_grid.to(images.dtype).expand(images.shape[0], -1, -1, -1)], dim=1)
        x = self.trunk(x).mean(dim=(2, 3))
        return F.relu(self.embed(x))

    def features(self, images: torch.Tensor, batch_size: int | None = None) -> torch.Tensor:
        """The pooled embedding ``[N, feature_dim]`` (used for Fréchet distances).

        Args:
            images: ``[N, img_channels, img_resolution, img_resolution]`` in [-1, 1] (values outside
                are clamped, as in every method that reads images).
            batch_size: When given, run in chunks of this size without gradients (large sets); when
                ``None`` (default) run in one differentiable pass.

        Example:

        >>> import torch
        >>> model = FactorPredictor(channels=(8, 16), feature_dim=32)
        >>> tuple(model.features(torch.zeros(5, 3, 64, 64), batch_size=2).shape)
        (5, 32)
        """
        images = self.check_images(images)
        if batch_size is None:
            return self._embed(images.to(self.device, self.dtype))
        if batch_size < 1:
            raise ValueError(f"`batch_size` must be ≥ 1, got {batch_size}.")
        with torch.no_grad():
            chunks = [
                self._embed(images[i : i + batch_size].to(self.device, self.dtype))
                for i in range(0, images.shape[0], batch_size)
            ]
        return torch.cat(chunks) if chunks else images.new_zeros(0, self.config.feature_dim)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Raw head outputs: ``{name: [N, 2]}`` for angular factors (unnormalised (cos, sin)),
        ``{name: [N, classes]}`` logits for categorical ones, ``{name: [N]}`` in [0, 1] units otherwise.

        Example:

        >>> import torch
        >>> out = FactorPredictor(channels=(8, 16), feature_dim=32)(torch.zeros(2, 3, 64, 64))
        >>> tuple(out["object_hue"].shape), tuple(out["shape"].shape), tuple(out["x"].shape)
        ((2, 2), (2, 3), (2,))
        """
        images = self.check_images(images)
        raw = self.head(self._embed(images.to(self.device, self.dtype)))
        out = {}
        for n, (start, width) in self.head_slices.items():
            chunk = raw[:, start : start + width]
            out[n] = chunk if self.is_angular(n) or self.kinds[n] == "categorical" else chunk[:, 0]
        return out

    def decode(self, raw: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Turn :meth:`forward` outputs into factors in natural units (see :meth:`predict`)."""
        out: dict[str, torch.Tensor] = {}
        for n in self.factor_names:
            lo, hi = self.ranges[n]
            r = raw[n].float()
            if self.kinds[n] == "categorical":
                probs = r.softmax(dim=1)
                out[n] = probs.argmax(dim=1) + round(lo)
                out[f"{n}_probs"] = probs
            elif self.is_angular(n):
                out[n] = self._decode_angle(n, r)
            else:
                out[n] = (lo + (hi - lo) * r).clamp(lo, hi)
        return out

    @torch.no_grad()
    def predict(self, images: torch.Tensor, batch_size: int = 256) -> dict[str, torch.Tensor]:
        """Predict every factor in its natural units.

        Returns a dict with, for each factor: circular factors (hues) in [0, 1); the class index (long)
        for categorical ones (``shape``: 0 square, 1 disc, 2 triangle) plus ``"<name>_probs"``
        ``[N, classes]``; continuous factors in the data's units, clipped to their range (``rotation`` in
        degrees in [-45, 45); meaningless where the shape is a disc). Tensors are on `images`' device.
        The model is run in eval mode, in chunks of `batch_size`, without gradients.

        Example:

        >>> from sefa_plugin import DEFAULT_PREDICTOR
        >>> from sefa_plugin.data import render_scenes
        >>> model = FactorPredictor.from_pretrained(DEFAULT_PREDICTOR)
        >>> batch = render_scenes([0, 1, 2], seed=2)
        >>> pred = model.predict(batch.images)
        >>> bool((pred["shape"] == batch.factor("shape").long()).all())
        True
        >>> bool(((pred["x"] - batch.factor("x")).abs() < 0.05).all())
        True
        """
        images = self.check_images(images)
        if batch_size < 1:
            raise ValueError(f"`batch_size` must be ≥ 1, got {batch_size}.")
        was_training = self.training
        self.eval()
        try:
            parts = [self.decode(self.forward(images[i : i + batch_size])) for i in range(0, len(images), batch_size)]
        finally:
            self.train(was_training)
        if not parts:  # empty input: run on one dummy image for the keys/shapes, keep 0 rows
            self.eval()
            try:
                dummy = self.decode(self.forward(images.new_zeros(1, *images.shape[1:])))
            finally:
                self.train(was_training)
            return {k: v[:0].to(images.device) for k, v in dummy.items()}
        return {k: torch.cat([p[k] for p in parts]).to(images.device) for k in parts[0]}

    @property
    def factor_vector_names(self) -> list[str]:
        """Column names of :meth:`factor_vector`."""
        names = []
        for n in self.factor_names:
            if self.is_angular(n):
                names += [f"{n}_cos", f"{n}_sin"]
            elif self.kinds[n] == "categorical":
                classes = SHAPES if n == "shape" and self.num_outputs(n) == len(SHAPES) else None
                names += [f"{n}_{classes[k] if classes else k}" for k in range(self.num_outputs(n))]
            else:
                names.append(n)
        return names

    @torch.no_grad()
    def factor_vector(self, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """A numeric representation of every factor, ``[N, D]`` (columns: :attr:`factor_vector_names`).

        Euclidean differences between rows measure how the factors change, and the columns are linear
        in what they represent (suited to linear probes à la InterFaceGAN):

        * circular factors (hues) → ``(cos 2πh, sin 2πh)``: the chord between two hues grows
          monotonically with their circular distance, with no seam at 0 ≡ 1;
        * periodic factors (rotation) → ``(cos φ, sin φ)`` with ``φ = 2π (v - lo) / (hi - lo)``, so a
          square at -45° and at +45° (the same image) coincide; meaningless for discs;
        * categorical factors (shape) → the class probabilities;
        * other continuous factors → the value normalised to [0, 1] by its range.

        For the default factors ``D = 14``.

        Example:

        >>> import torch
        >>> model = FactorPredictor(channels=(8, 16), feature_dim=32)
        >>> tuple(model.factor_vector(torch.zeros(2, 3, 64, 64)).shape), len(model.factor_vector_names)
        ((2, 14), 14)
        """
        images = self.check_images(images)
        if batch_size < 1:
            raise ValueError(f"`batch_size` must be ≥ 1, got {batch_size}.")
        was_training = self.training
        self.eval()
        rows = []
        try:
            for i in range(0, max(len(images), 1), batch_size):
                chunk = images[i : i + batch_size] if len(images) else images.new_zeros(1, *images.shape[1:])
                raw = self.forward(chunk)
                cols = []
                for n in self.factor_names:
                    r = raw[n].float()
                    if self.is_angular(n):
                        cols.append(F.normalize(r, dim=1, eps=1e-8))
                    elif self.kinds[n] == "categorical":
                        cols.append(r.softmax(dim=1))
                    else:
                        cols.append(r.clamp(0.0, 1.0).unsqueeze(1))
                rows.append(torch.cat(cols, dim=1))
        finally:
            self.train(was_training)
        out = torch.cat(rows).to(images.device)
        return out[: len(images)]


# --------------------------------------------------------------------------------------- training
def _gaussian_blur(images: torch.Tensor, sigma: torch.Tensor, radius: int = 2) -> torch.Tensor:
    """Blur each image with its own isotropic Gaussian (`sigma` in pixels, ``[N]``; 0 = identity)."""
    n, c, h, w = images.shape
    t = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    s = sigma.clamp_min(1e-3).reshape(n, 1)
    k = torch.exp(-0.5 * (t.reshape(1, -1) / s) ** 2)
    k = (k / k.sum(dim=1, keepdim=True)).repeat_interleave(c, dim=0)  # [N*C, K]
    x = F.pad(images.reshape(1, n * c, h, w), (radius,) * 4, mode="replicate")
    x = F.conv2d(x, k.reshape(n * c, 1, 1, -1), groups=n * c)
    x = F.conv2d(x, k.reshape(n * c, 1, -1, 1), groups=n * c)
    return x.reshape(n, c, h, w)


def degrade_images(
    images: torch.Tensor,
    blur_sigma: float | tuple[float, float] = (0.0, 1.0),
    noise_std: float | tuple[float, float] = (0.0, 0.04),
    prob: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Mild GAN-like degradation: a per-image random Gaussian blur and additive Gaussian noise.

    GAN samples are slightly blurry and carry some high-frequency noise; training the predictor on
    rendered scenes degraded like this keeps it from relying on the renderer's perfectly crisp edges.
    Colours are not jittered (hue and lighting are factors).

    Args:
        images: ``[N, C, H, W]`` in [-1, 1].
        blur_sigma: Blur σ in pixels, or a ``(min, max)`` range sampled uniformly per image.
        noise_std: Noise standard deviation (image units, [-1, 1] scale), or a ``(min, max)`` range.
        prob: Fraction of the images degraded (the others are returned unchanged).
        generator: Random generator (on `images`' device) for reproducibility.

    Example:

    >>> import torch
    >>> x = torch.zeros(4, 3, 16, 16)
    >>> tuple(degrade_images(x, blur_sigma=0.5, noise_std=0.0).shape)
    (4, 3, 16, 16)
    """
    n = images.shape[0]

    def draw(v: float | tuple[float, float]) -> torch.Tensor:
        lo, hi = (v, v) if isinstance(v, int | float) else v
        u = torch.rand(n, generator=generator, device=images.device, dtype=images.dtype)
        return lo + (hi - lo) * u

    sigma, std = draw(blur_sigma), draw(noise_std)
    keep = torch.rand(n, generator=generator, device=images.device) >= prob
    sigma, std = sigma.masked_fill(keep, 0.0), std.masked_fill(keep, 0.0)
    out = _gaussian_blur(images, sigma)
    noise = torch.randn(images.shape, generator=generator, device=images.device, dtype=images.dtype)
    return (out + noise * std.reshape(n, 1, 1, 1)).clamp(-1.0, 1.0)


def predictor_loss(
    predictor: FactorPredictor, raw: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor]
) -> tuple[torch.Tensor, dict[str, float]]:
    """Training loss: every factor's error divided by its target variance (so each term reads as
    ``1 - R²``), plus cross-entropy for categorical factors. ``rotation`` is masked out for discs.
    """
    terms: dict[str, torch.Tensor] = {}
    not_disc = targets["shape"] != DISC if "shape" in targets else None
    for n in predictor.factor_names:
        r, t = raw[n].float(), targets[n]
        if predictor.kinds[n] == "categorical":
            terms[n] = F.cross_entropy(r, t)
            continue
        # Divide by the target variance: 1 for a uniform angle's unit vector, 1/12 for U(0, 1).
        err = (r - t).square().sum(dim=1) if predictor.is_angular(n) else (r - t).square() * 12.0
        if n == "rotation" and not_disc is not None:
            w = not_disc.float()
            terms[n] = (err * w).sum() / w.sum().clamp_min(1.0)
        else:
            terms[n] = err.mean()
    total = sum(terms.values())
    return total, {k: float(v.detach()) for k, v in terms.items()}


def train_predictor(
    num_train: int = 1_000_000,
    steps: int = 3000,
    batch_size: int = 128,
    seed: int = 0,
    resolution: int = 64,
    progress: bool = True,
    *,
    lr: float = 3e-3,
    weight_decay: float = 1e-4,
    augment_prob: float = 0.5,
    channels: Sequence[int] = (32, 64, 128, 128),
    feature_dim: int = 128,
    device: str | torch.device = "cpu",
    log_every: int = 250,
) -> FactorPredictor:
    """Train a :class:`FactorPredictor` on procedural scenes rendered on the fly.

    Each step renders `batch_size` scenes whose indices are drawn uniformly from ``0 … num_train - 1`` of
    the dataset with seed :data:`TRAIN_DATA_SEED` (1; the GAN is trained on seed 0, evaluation uses seed
    2), degrades a fraction `augment_prob` of them with :func:`degrade_images` (mild blur and noise, for
    robustness to GAN samples), and takes one AdamW step; the learning rate follows a one-cycle schedule
    (warm-up, then cosine decay).

    Args:
        num_train: Number of distinct training scenes.
        steps: Optimisation steps.
        batch_size: Scenes per step.
        seed: Seed of the initialisation, the scene sampling and the augmentation.
        resolution: Image side in pixels.
        progress: Show a tqdm progress bar.
        lr: Peak learning rate.
        weight_decay: AdamW weight decay.
        augment_prob: Fraction of training images degraded by :func:`degrade_images` (0 disables it).
        channels: Convolution stage widths of the model.
        feature_dim: Embedding size of the model.
        device: Where to train.
        log_every: Log the running losses every this many steps (0: never).

    Returns:
        The trained predictor, in eval mode, on CPU.

    Example:

    >>> from sefa_plugin.evaluation import train_predictor
    >>> model = train_predictor(steps=2, batch_size=4, resolution=32, channels=(8, 8), progress=False)
    >>> model.config.img_resolution
    32
    """
    if num_train < 1:
        raise ValueError(f"`num_train` must be ≥ 1, got {num_train}.")
    if steps < 1:
        raise ValueError(f"`steps` must be ≥ 1, got {steps}.")
    if batch_size < 2:
        raise ValueError(f"`batch_size` must be ≥ 2 (batch norm), got {batch_size}.")
    if not 0.0 <= augment_prob <= 1.0:
        raise ValueError(f"`augment_prob` must be in [0, 1], got {augment_prob}.")
    torch.manual_seed(seed)
    model = FactorPredictor(img_resolution=resolution, channels=tuple(channels), feature_dim=feature_dim)
    model.to(device).train()
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
    logger.info(
        "Training a FactorPredictor (%d parameters) for %d steps of %d scenes on %s",
        sum(p.numel() for p in model.parameters()), steps, batch_size, device,
    )  # fmt: skip
    running: dict[str, float] = {}
    t0 = time.perf_counter()
    bar = tqdm(range(steps), desc="predictor", disable=not progress)
    for step in bar:
        idx = rng.integers(0, num_train, size=batch_size)
        batch = render_scenes(idx.tolist(), seed=TRAIN_DATA_SEED, resolution=resolution)
        images = batch.images
        if augment_prob > 0:
            images = degrade_images(images, prob=augment_prob, generator=gen)
        targets = {k: v.to(device) for k, v in model.encode_targets(batch.factors).items()}
        loss, terms = predictor_loss(model, model(images.to(device)), targets)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        for k, v in terms.items():
            running[k] = 0.98 * running.get(k, v) + 0.02 * v
        if progress and step % 10 == 0:
            bar.set_postfix(loss=f"{sum(running.values()):.3f}")
        if log_every and (step + 1) % log_every == 0:
            logger.info(
                "step %d/%d (%.0f s): %s", step + 1, steps, time.perf_counter() - t0,
                ", ".join(f"{k}={v:.4f}" for k, v in running.items()),
            )  # fmt: skip
    return model.cpu().eval()


# --------------------------------------------------------------------------------------- evaluation
def _r2(err_sq: torch.Tensor, target: torch.Tensor) -> float:
    """``1 - Σ err² / Σ ||t - mean t||²`` (rows of `target` may be vectors)."""
    t = target.double().reshape(len(target), -1)
    denom = (t - t.mean(dim=0)).square().sum()
    return float(1.0 - err_sq.double().sum() / denom.clamp_min(1e-12))


@torch.no_grad()
def evaluate_predictor(
    predictor: FactorPredictor,
    num: int = 5000,
    seed: int = EVAL_DATA_SEED,
    batch_size: int = 250,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    progress: bool = False,
) -> dict[str, float]:
    """Accuracy of `predictor` on `num` held-out rendered scenes (indices ``0 … num - 1`` of `seed`).

    Metrics (keys of the returned dict):

    * ``shape_accuracy``: fraction of correctly classified shapes;
    * ``<factor>_r2`` for every other factor: the coefficient of determination
      ``1 - Σ err² / Σ (t - mean t)²``. For circular factors (hues) ``t`` is the unit vector
      ``(cos 2πh, sin 2πh)`` and ``err`` the distance between the predicted and true unit vectors
      (the chord ``2 sin(πΔ)`` for a hue error of Δ turns), so a perfect predictor scores 1 and a
      constant one about 0, as for a real-valued factor. ``rotation_r2`` uses non-disc scenes only
      (rotation is undefined for discs), in degrees, with squares' errors taken modulo 90° (a square
      at -45° and at +45° is the same image); ``rotation_r2_unwrapped`` skips that wrap.
    * ``<factor>_mae``: mean absolute error in the data's units (hues: circular, in turns; rotation:
      degrees, wrapped for squares as above);
    * ``num_images``.

    Args:
        predictor: The predictor to evaluate.
        num: Number of held-out scenes.
        seed: Dataset seed of the held-out scenes (2; the predictor trains on 1, the GAN on 0).
        batch_size: Scenes rendered and scored at a time.
        transform: Optional function applied to each image batch before scoring (e.g. a degradation,
            to measure robustness).
        progress: Show a tqdm progress bar.

    Example:

    >>> from sefa_plugin import DEFAULT_PREDICTOR
    >>> from sefa_plugin.evaluation import FactorPredictor, evaluate_predictor
    >>> metrics = evaluate_predictor(FactorPredictor.from_pretrained(DEFAULT_PREDICTOR), num=500)
    >>> metrics["shape_accuracy"] > 0.95 and metrics["x_r2"] > 0.95
    True
    """
    if num < 2:
        raise ValueError(f"`num` must be ≥ 2, got {num}.")
    res = predictor.config.img_resolution
    preds: list[dict[str, torch.Tensor]] = []
    truth: list[torch.Tensor] = []
    for start in tqdm(range(0, num, batch_size), desc="evaluate", disable=not progress):
        batch = render_scenes(list(range(start, min(start + batch_size, num))), seed=seed, resolution=res)
        images = batch.images if transform is None else transform(batch.images)
        preds.append({k: v.cpu() for k, v in predictor.predict(images, batch_size=batch_size).items()})
        truth.append(batch.factors)
    pred = {k: torch.cat([p[k] for p in preds]) for k in preds[0]}
    true = torch.cat(truth).double()
    col = {n: true[:, FACTOR_NAMES.index(n)] for n in predictor.factor_names if n in FACTOR_NAMES}
    metrics: dict[str, float] = {"num_images": float(num)}
    shape = col["shape"].round().long() if "shape" in col else None
    for n in predictor.factor_names:
        if n not in col:
            continue
        kind, (lo, hi) = predictor.kinds[n], predictor.ranges[n]
        p, t = pred[n].double(), col[n]
        if kind == "categorical":
            metrics[f"{n}_accuracy"] = float((p.long() == t.round().long()).double().mean())
            continue
        if kind == "circular":
            period = hi - lo
            ang_p, ang_t = 2 * math.pi * (p - lo) / period, 2 * math.pi * (t - lo) / period
            vp = torch.stack([ang_p.cos(), ang_p.sin()], dim=1)
            vt = torch.stack([ang_t.cos(), ang_t.sin()], dim=1)
            metrics[f"{n}_r2"] = _r2((vp - vt).square().sum(dim=1), vt)
            d = torch.remainder(p - t, period)
            metrics[f"{n}_mae"] = float(torch.minimum(d, period - d).mean())
            continue
        err = p - t
        if n == "rotation" and shape is not None:
            keep = shape != DISC
            raw_err, t_keep = err[keep], t[keep]
            square = shape[keep] == SQUARE
            period = hi - lo  # 90°: the square's symmetry
            wrapped = torch.remainder(raw_err + period / 2, period) - period / 2
            err_w = torch.where(square, wrapped, raw_err)
            metrics[f"{n}_r2"] = _r2(err_w.square(), t_keep)
            metrics[f"{n}_r2_unwrapped"] = _r2(raw_err.square(), t_keep)
            metrics[f"{n}_mae"] = float(err_w.abs().mean())
            continue
        metrics[f"{n}_r2"] = _r2(err.square(), t)
        metrics[f"{n}_mae"] = float(err.abs().mean())
    return metrics


def format_metrics(metrics: Mapping[str, float], digits: int = 4) -> str:
    """One line per metric, for logs."""
    return "\n".join(f"{k:>26s}: {v:.{digits}f}" for k, v in metrics.items())
