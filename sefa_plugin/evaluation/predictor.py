"""The factor predictor: a small CNN that reads every generative factor of a procedural scene.

It is this project's analogue of the attribute predictors of SeFa (Shen & Zhou, CVPR 2021) and
InterFaceGAN (Shen et al., CVPR 2020): it scores generated images so that latent directions can be
labelled ("this direction moves the object to the right") and measured (re-scoring, Fréchet distance
of its features). It is trained on rendered scenes only (:mod:`sefa_plugin.data.shapes`, dataset seed
1, whereas the GAN trains on seed 0) and evaluated on held-out scenes of seed 2; both live in
:mod:`sefa_plugin.evaluation.predictor_training`.

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

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from torch import nn

from ..data.shapes import FACTOR_KINDS, FACTOR_NAMES, FACTOR_RANGES, SHAPES
from ..utils.weights import check_loaded_weights

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
