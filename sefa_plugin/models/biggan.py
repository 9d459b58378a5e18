"""BigGAN-deep generator (Brock et al., ICLR 2019) as a diffusers model.

The architecture is that of huggingface/pytorch-pretrained-BigGAN (``BigGAN``, a port of DeepMind's TF Hub
modules ``biggan-deep-128/256/512``), in eval mode:

* a bias-free linear class embedding ``embeddings`` maps the (one-hot) label ``c`` to ``class_embed_dim``
  features; the condition vector is ``cond = [z, embed(c)]``;
* ``generator.gen_z`` maps ``cond`` to a 4×4 map with ``16 * channel_width`` channels, laid out as TF does
  (height, width, channels: the output is reshaped to ``[N, 4, 4, C]`` and then permuted);
* every ``generator.layers.{i}`` is a bottleneck residual block (BigGAN-deep's "GBlock"): four times
  conditional batch norm → ReLU → convolution (1×1, 3×3, 3×3, 1×1; nearest 2× upsampling before the first
  3×3 in up-sampling blocks); the shortcut keeps the first half of the channels when the block halves them
  and is upsampled alongside;
* one self-attention layer (SAGAN) sits before block ``attention_layer_position``, so it shifts the index of
  every later block by one (``generator.layers`` holds both kinds, in order);
* ``generator.bn`` (unconditional batch norm) → ReLU → ``generator.conv_to_rgb`` (3×3, ``channel_width``
  outputs, of which the first three are kept) → tanh.

Batch norm never uses batch statistics: each layer stores ``n_stats`` sets of "standing" statistics
(``running_means``/``running_vars`` ``[n_stats, C]``), one per truncation value on the grid
``0, 1/(n_stats-1), ..., 1``, and uses those of the model's truncation (see :func:`truncation_statistics`).
Conditional batch norm multiplies by ``1 + scale(cond)`` and adds ``offset(cond)``, two bias-free linear
projections of the condition vector.

Parameter layout (for converters): names and shapes are pytorch-pretrained-BigGAN's state-dict keys, except
that their spectrally normalised layers store ``weight_orig``, ``weight_u`` and ``weight_v``; here every
such layer has one plain ``weight``, the effective ``weight_orig / σ`` of their eval-mode forward (see
:mod:`sefa_plugin.convert.biggan`).

SeFa (Shen & Zhou, CVPR 2021) on BigGAN reads the weights of every projection of the latent code: the first
linear layer and all conditional batch-norm projections, restricted to the ``z`` columns. See
:class:`BigGANGenerator` for the editable latent and the handling of truncation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from torch import nn

from .interface import EditableGenerator, check_layer_indices, check_parameter_count
from .limits import CONFIG_LIMITS, check_config_ints

NOISE_MODES = ("random", "const", "none")

#: Side of the first feature map.
INIT_RES = 4
#: Their ``truncated_noise_sample`` draws ``z`` from a standard normal truncated to [-2, 2].
Z_THRESHOLD = 2.0
#: The block layout of BigGAN-deep-128 (their ``BigGANConfig`` default): ``[up_sample, in, out]`` per
#: block, channels in units of ``channel_width``. The 256 and 512 models add blocks (see the converter).
BIGGAN_DEEP_128_LAYERS: tuple[tuple[bool, int, int], ...] = (
    (False, 16, 16), (True, 16, 16), (False, 16, 16), (True, 16, 8), (False, 8, 8),
    (True, 8, 4), (False, 4, 4), (True, 4, 2), (False, 2, 2), (True, 2, 1),
)  # fmt: skip


def truncation_statistics(running: torch.Tensor, truncation: float) -> torch.Tensor:
    """The batch-norm statistic ``[C]`` that pytorch-pretrained-BigGAN uses for `truncation`.

    With ``k + f = truncation * (n_stats - 1)`` (integer part ``k``, fraction ``f``), their code returns
    ``running[k]`` when ``f == 0`` and ``running[k] * f + running[k + 1] * (1 - f)`` otherwise. The weights
    are swapped with respect to a linear interpolation, and the split is computed in floating point: most
    grid values divide exactly (0.4 uses statistic 20), but ``0.14 / 0.02 == 7.000000000000001``, so truncation
    0.14 uses almost exactly the statistics stored for 0.16, and 0.58 those for 0.56. Converted checkpoints
    are only faithful if this is reproduced as is, which it is here.

    Args:
        running: Stored statistics ``[n_stats, C]``.
        truncation: A value in (0, 1].
    """
    step = 1.0 / (running.shape[0] - 1)
    frac, start = math.modf(truncation / step)
    k = int(start)
    if frac == 0.0:
        return running[k]
    return running[k] * frac + running[k + 1] * (1 - frac)


class StandingBatchNorm(nn.Module):
    """Batch norm with stored per-truncation statistics; conditional (projections of ``cond``) or affine.

    Args:
        num_features: Channels.
        cond_dim: Width of the condition vector for conditional batch norm; None for the plain affine form
            with ``weight`` and ``bias`` parameters.
        n_stats: Number of stored statistics (truncation values).
        eps: Added to the variance.
    """

    def __init__(self, num_features: int, cond_dim: int | None, n_stats: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.register_buffer("running_means", torch.zeros(n_stats, num_features))
        self.register_buffer("running_vars", torch.ones(n_stats, num_features))
        self.conditional = cond_dim is not None
        if self.conditional:
            self.scale = nn.Linear(cond_dim, num_features, bias=False)
            self.offset = nn.Linear(cond_dim, num_features, bias=False)
        else:
            self.weight = nn.Parameter(torch.ones(num_features))
            self.bias = nn.Parameter(torch.zeros(num_features))

    def forward(self, x: torch.Tensor, truncation: float, cond: torch.Tensor | None = None) -> torch.Tensor:
        mean = truncation_statistics(self.running_means, truncation)
        var = truncation_statistics(self.running_vars, truncation)
        if not self.conditional:
            return F.batch_norm(x, mean, var, self.weight, self.bias, training=False, eps=self.eps)
        gain = 1 + self.scale(cond)[:, :, None, None]  # [N, C, 1, 1]
        shift = self.offset(cond)[:, :, None, None]
        return (x - mean[None, :, None, None]) / torch.sqrt(var[None, :, None, None] + self.eps) * gain + shift


class SelfAttention(nn.Module):
    """SAGAN self-attention with 2×2 max-pooled keys and values and a learned residual gain ``gamma``.

    Args:
        channels: Input (and output) channels; must be divisible by 8.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.snconv1x1_theta = nn.Conv2d(channels, channels // 8, 1, bias=False)  # queries
        self.snconv1x1_phi = nn.Conv2d(channels, channels // 8, 1, bias=False)  # keys
        self.snconv1x1_g = nn.Conv2d(channels, channels // 2, 1, bias=False)  # values
        self.snconv1x1_o_conv = nn.Conv2d(channels // 2, channels, 1, bias=False)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        query = self.snconv1x1_theta(x).reshape(n, c // 8, h * w)
        key = F.max_pool2d(self.snconv1x1_phi(x), 2).reshape(n, c // 8, h * w // 4)
        attn = torch.softmax(torch.bmm(query.transpose(1, 2), key), dim=-1)  # [N, HW, HW/4]
        value = F.max_pool2d(self.snconv1x1_g(x), 2).reshape(n, c // 2, h * w // 4)
        out = torch.bmm(value, attn.transpose(1, 2)).reshape(n, c // 2, h, w)
        return x + self.gamma * self.snconv1x1_o_conv(out)


class BigGANBlock(nn.Module):
    """BigGAN-deep residual block: 4 × (conditional BN → ReLU → conv), bottleneck width ``in_channels // 4``.

    Args:
        in_channels: Input channels.
        out_channels: Output channels, ``in_channels`` or ``in_channels // 2``.
        cond_dim: Width of the condition vector.
        up_sample: Upsample 2× (nearest) inside the block and on the shortcut.
        n_stats: Stored batch-norm statistics per layer.
        eps: Batch-norm epsilon.
    """

    def __init__(
        self, in_channels: int, out_channels: int, cond_dim: int, up_sample: bool, n_stats: int, eps: float
    ) -> None:
        super().__init__()
        mid = in_channels // 4
        self.up_sample = up_sample
        widths = [(in_channels, mid, 1), (mid, mid, 3), (mid, mid, 3), (mid, out_channels, 1)]
        for i, (c_in, c_out, k) in enumerate(widths):
            setattr(self, f"bn_{i}", StandingBatchNorm(c_in, cond_dim, n_stats, eps))
            setattr(self, f"conv_{i}", nn.Conv2d(c_in, c_out, k, padding=k // 2))

    def batch_norms(self) -> list[StandingBatchNorm]:
        """``bn_0`` … ``bn_3``, in order."""
        return [getattr(self, f"bn_{i}") for i in range(4)]

    def forward(self, x: torch.Tensor, cond: torch.Tensor, truncation: float) -> torch.Tensor:
        shortcut = x
        for i in range(4):
            x = F.relu(getattr(self, f"bn_{i}")(x, truncation, cond))
            if i == 1 and self.up_sample:
                x = F.interpolate(x, scale_factor=2, mode="nearest")
            x = getattr(self, f"conv_{i}")(x)
        if x.shape[1] != shortcut.shape[1]:
            shortcut = shortcut[:, : shortcut.shape[1] // 2]
        if self.up_sample:
            shortcut = F.interpolate(shortcut, scale_factor=2, mode="nearest")
        return x + shortcut


class BigGANSynthesis(nn.Module):
    """Everything after the class embedding: ``gen_z`` → blocks (+ attention) → BN → ReLU → RGB → tanh.

    Args:
        cond_dim: Width of the condition vector ``z_dim + class_embed_dim``.
        channel_width: Channel unit (the block layout counts channels in multiples of it).
        layers: ``[up_sample, in, out]`` per block.
        attention_layer_position: The block before which self-attention runs.
        n_stats: Stored batch-norm statistics per layer.
        eps: Batch-norm epsilon.
    """

    def __init__(
        self,
        cond_dim: int,
        channel_width: int,
        layers: Sequence[Sequence[Any]],
        attention_layer_position: int,
        n_stats: int,
        eps: float,
    ) -> None:
        super().__init__()
        ch = channel_width
        self.channel_width = ch
        self.gen_z = nn.Linear(cond_dim, INIT_RES * INIT_RES * 16 * ch)
        modules: list[nn.Module] = []
        for i, (up, c_in, c_out) in enumerate(layers):
            if i == attention_layer_position:
                modules.append(SelfAttention(ch * c_in))
            modules.append(BigGANBlock(ch * c_in, ch * c_out, cond_dim, bool(up), n_stats, eps))
        self.layers = nn.ModuleList(modules)
        self.bn = StandingBatchNorm(ch, None, n_stats, eps)
        self.conv_to_rgb = nn.Conv2d(ch, ch, 3, padding=1)

    def blocks(self) -> list[BigGANBlock]:
        """The residual blocks in order, without the attention layer."""
        return [m for m in self.layers if isinstance(m, BigGANBlock)]

    def forward(self, cond: torch.Tensor, truncation: float) -> torch.Tensor:
        x = self.gen_z(cond)  # [N, 16 * 16 * ch], TF order (row, column, channel)
        x = x.reshape(-1, INIT_RES, INIT_RES, 16 * self.channel_width).permute(0, 3, 1, 2)
        for layer in self.layers:
            x = layer(x, cond, truncation) if isinstance(layer, BigGANBlock) else layer(x)
        x = self.conv_to_rgb(F.relu(self.bn(x, truncation)))
        return torch.tanh(x[:, :3])


def _check_layers(layers: Any, attention_layer_position: Any, channel_width: int) -> list[list[Any]]:
    """Validate the block layout (JSON lists or tuples); errors name the argument."""
    if not isinstance(layers, Sequence) or isinstance(layers, str) or not layers:
        raise ValueError(f"`layers` must be a non-empty list of [up_sample, in, out] triples, got {layers!r}.")
    out: list[list[Any]] = []
    previous = 16  # gen_z produces 16 * channel_width channels
    for i, layer in enumerate(layers):
        ok = isinstance(layer, Sequence) and len(layer) == 3 and isinstance(layer[0], bool)
        ok = ok and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in layer[1:])
        if not ok:
            raise ValueError(f"`layers[{i}]` must be [up_sample (bool), in (int > 0), out (int > 0)], got {layer!r}.")
        up, c_in, c_out = layer
        if c_in != previous:
            raise ValueError(f"`layers[{i}]` reads {c_in} channel units but the previous layer gives {previous}.")
        if c_out not in (c_in, c_in / 2):
            raise ValueError(f"`layers[{i}]` must keep or halve the channels (the shortcut's rule), got {layer!r}.")
        if channel_width * c_in < 4:
            raise ValueError(f"`layers[{i}]` leaves the bottleneck without channels: `channel_width` is too small.")
        out.append([bool(up), int(c_in), int(c_out)])
        previous = c_out
    if previous != 1:
        raise ValueError(
            f"`layers` must end with 1 channel unit (the final batch norm has `channel_width`), got {previous}."
        )
    pos = attention_layer_position
    if isinstance(pos, bool) or not isinstance(pos, int) or not 0 <= pos < len(out):
        raise ValueError(f"`attention_layer_position` must be an int in [0, {len(out) - 1}], got {pos!r}.")
    if (channel_width * out[pos][1]) % 8:
        raise ValueError(
            f"`attention_layer_position` {pos}: self-attention needs channels divisible by 8, "
            f"got {channel_width * out[pos][1]}."
        )
    return out


class BigGANGenerator(ModelMixin, ConfigMixin, EditableGenerator):
    """BigGAN-deep generator (pytorch-pretrained-BigGAN's ``BigGAN``); SeFa edits ``z``.

    The config fields are those of their ``BigGANConfig`` (so ``config.json`` converts field by field),
    plus the model's truncation and two derived fields the rest of sefa_plugin reads.

    Args:
        output_dim: Output resolution; must equal ``4 * 2**(number of up-sampling blocks)``.
        z_dim: Width of the latent ``z``.
        class_embed_dim: Width of the class embedding (pytorch-pretrained-BigGAN always uses ``z_dim``).
        channel_width: Channel unit; block ``[up, in, out]`` has ``in * channel_width`` input channels.
        num_classes: Number of classes (the width of ``c``).
        layers: ``[up_sample, in, out]`` per block (default: BigGAN-deep-128's layout).
        attention_layer_position: Index of the block that self-attention precedes.
        eps: Batch-norm epsilon.
        n_stats: Stored batch-norm statistics per layer (truncation grid ``0 … 1``); at least 2.
        truncation: BigGAN's truncation ``t`` in (0, 1]: ``z`` is scaled by ``t`` and batch norm uses the
            statistics stored for ``t``. A model setting, see below.
        c_dim: Same as `num_classes` (the name pipelines read); None derives it.
        img_resolution: Same as `output_dim` (the name pipelines and cards read); None derives it.

    Editable latent: the condition vector ``[N, 1, z_dim + class_embed_dim]`` = ``[t · ψ · z, embed(c)]``
    from :meth:`sample_latents` (``latent_space == "z"``, ``num_ws == 1``), so :meth:`synthesize` needs
    nothing else and an edit keeps the class. :meth:`latent_weights` stacks the ``gen_z`` weight and every
    conditional batch-norm projection with the class-embedding columns set to zero, so SeFa directions
    with a non-zero eigenvalue have no class component (the last ``class_embed_dim`` directions, eigenvalue
    0, span the class embedding: keep ``num_directions <= z_dim``).

    Truncation: their ``model(t * z, c, t)`` uses ``t`` twice, to scale a truncated-normal ``z`` and to
    pick batch-norm statistics at synthesis. :meth:`synthesize` only receives latents, so ``t`` is the
    config field `truncation` (change it with :meth:`set_truncation`, or ``from_pretrained(...,
    truncation=0.4)``), and ``truncation_psi`` keeps its StyleGAN meaning: an extra pull of ``z`` towards
    the mean latent (0) with the statistics unchanged. ``truncation_psi=1`` (every pipeline's default)
    therefore renders exactly their ``model(t * z, c, t)``; in general the image is their
    ``model(t * ψ * z, c, t)``. :meth:`z_from_seeds` and :meth:`randn_z` draw the unit truncated normal
    (their ``truncated_noise_sample(truncation=1)``, not the same random stream as SciPy's).

    Example:

    >>> import torch
    >>> from sefa_plugin.models.biggan import BigGANGenerator
    >>> g = BigGANGenerator(
    ...     output_dim=16, z_dim=8, class_embed_dim=8, channel_width=4, num_classes=5,
    ...     layers=[[True, 16, 8], [False, 8, 4], [True, 4, 2], [False, 2, 1]],
    ...     attention_layer_position=2, n_stats=11,
    ... ).eval()
    >>> g.num_ws, g.latent_dim, g.config.c_dim, g.config.img_resolution
    (1, 16, 5, 16)
    >>> img = g(g.z_from_seeds([0, 1]), torch.eye(5)[[3, 4]])
    >>> tuple(img.shape)
    (2, 3, 16, 16)
    >>> [tuple(w.shape) for w in g.latent_weights([0])]
    [(1444, 16)]
    """

    latent_space = "z"

    @register_to_config
    def __init__(
        self,
        output_dim: int = 128,
        z_dim: int = 128,
        class_embed_dim: int = 128,
        channel_width: int = 128,
        num_classes: int = 1000,
        layers: Sequence[Sequence[Any]] = BIGGAN_DEEP_128_LAYERS,
        attention_layer_position: int = 8,
        eps: float = 1e-4,
        n_stats: int = 51,
        truncation: float = 1.0,
        c_dim: int | None = None,
        img_resolution: int | None = None,
    ) -> None:
        super().__init__()
        check_config_ints(
            output_dim=output_dim, z_dim=z_dim, class_embed_dim=class_embed_dim, channel_width=channel_width,
            num_classes=num_classes, n_stats=n_stats,
        )  # fmt: skip
        max_blocks = CONFIG_LIMITS["num_blocks"][1]
        if isinstance(layers, Sequence) and not isinstance(layers, str) and len(layers) > max_blocks:
            raise ValueError(f"`layers` must have at most {max_blocks} blocks, got {len(layers)}.")
        if channel_width < 3:
            raise ValueError(
                f"`channel_width` must be ≥ 3 (the RGB layer keeps 3 of its channels), got {channel_width}."
            )
        if n_stats < 2:
            raise ValueError(f"`n_stats` must be ≥ 2 (statistics at truncation 0 and 1 at least), got {n_stats}.")
        if not (isinstance(eps, (int, float)) and math.isfinite(eps) and eps > 0):
            raise ValueError(f"`eps` must be a positive number, got {eps!r}.")
        self._check_truncation(truncation, "truncation")
        blocks = _check_layers(layers, attention_layer_position, channel_width)
        resolution = INIT_RES * 2 ** sum(up for up, _, _ in blocks)
        if resolution != output_dim:
            raise ValueError(
                f"`output_dim` must be {resolution} for these `layers` (4 · 2^up-samplings), got {output_dim}."
            )
        for name, value, derived in (("c_dim", c_dim, num_classes), ("img_resolution", img_resolution, output_dim)):
            if value is not None and value != derived:
                raise ValueError(f"`{name}` must equal {derived} (or be None), got {value}.")
        # Record the derived fields so that pipelines, cards and saved configs see concrete values.
        self.register_to_config(c_dim=num_classes, img_resolution=output_dim, layers=blocks)
        check_parameter_count(self)
        self.embeddings = nn.Linear(num_classes, class_embed_dim, bias=False)
        self.generator = BigGANSynthesis(
            z_dim + class_embed_dim, channel_width, blocks, attention_layer_position, n_stats, eps
        )

    @staticmethod
    def _check_truncation(value: Any, name: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
            raise ValueError(f"`{name}` must be a number in (0, 1] (BigGAN's truncation), got {value!r}.")
        return float(value)

    def set_truncation(self, truncation: float) -> None:
        """Set BigGAN's truncation ``t`` in (0, 1] (the ``z`` scale and the batch-norm statistics).

        Example:

        >>> g.set_truncation(0.4)  # doctest: +SKIP
        """
        self.register_to_config(truncation=self._check_truncation(truncation, "truncation"))

    def projections(self) -> list[nn.Linear]:
        """Every linear map that reads the condition vector: ``gen_z``, then each block's BN scale/offset."""
        out: list[nn.Linear] = [self.generator.gen_z]
        for block in self.generator.blocks():
            for bn in block.batch_norms():
                out += [bn.scale, bn.offset]
        return out

    # ------------------------------------------------------------------ pytorch-pretrained-BigGAN-style call
    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        noise_mode: str = "const",
    ) -> torch.Tensor:
        """Images ``[N, 3, output_dim, output_dim]`` in [-1, 1] for unit truncated-normal `z` and labels `c`."""
        latents = self.sample_latents(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesize(latents, noise_mode=noise_mode)

    # ------------------------------------------------------------------ EditableGenerator
    @property
    def latent_dim(self) -> int:
        return int(self.config.z_dim) + int(self.config.class_embed_dim)

    @property
    def editable_latent_dim(self) -> int:
        """Only the ``z`` part of ``[z, class embedding]`` is edited (SeFa's directions have no class part)."""
        return int(self.config.z_dim)

    @property
    def num_ws(self) -> int:
        return 1

    def layer_resolutions(self) -> list[int]:
        return [INIT_RES]

    def latent_weights(self, layers: Sequence[int]) -> list[torch.Tensor]:
        """The stacked projections of the condition vector, ``[sum_out, z_dim + class_embed_dim]`` (layer 0).

        Rows are the weights of ``gen_z`` and of every conditional batch-norm ``scale`` and ``offset``, in
        module order; the class-embedding columns are zero, so SeFa's directions only move ``z``.
        """
        out = []
        for _ in check_layer_indices(layers, self.num_ws):
            w = torch.cat([p.weight.detach() for p in self.projections()]).clone()
            w[:, int(self.config.z_dim) :] = 0
            out.append(w)
        return out

    def sample_latents(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
    ) -> torch.Tensor:
        """Condition vectors ``[N, 1, z_dim + class_embed_dim]`` = ``[truncation · ψ · z, embed(c)]``.

        Args:
            z: Unit truncated-normal codes ``[N, z_dim]`` (:meth:`z_from_seeds`, :meth:`randn_z`).
            c: Class vectors ``[N, num_classes]`` (one-hot, or mixtures); required.
            truncation_psi: Extra scale of ``z`` towards 0 (finite, ≥ 0); batch-norm statistics stay those
                of ``config.truncation``.
            truncation_cutoff: Ignored (one latent layer).
        """
        if isinstance(truncation_psi, bool) or not isinstance(truncation_psi, (int, float)):
            raise ValueError(f"`truncation_psi` must be a finite number ≥ 0, got {truncation_psi!r}.")
        if not (math.isfinite(truncation_psi) and truncation_psi >= 0):
            raise ValueError(f"`truncation_psi` must be a finite number ≥ 0, got {truncation_psi}.")
        z_dim, c_dim = int(self.config.z_dim), int(self.config.num_classes)
        if not isinstance(z, torch.Tensor) or z.ndim != 2 or z.shape[1] != z_dim:
            raise ValueError(f"`z` must have shape [N, {z_dim}], got {list(getattr(z, 'shape', []))}.")
        if c is None or not isinstance(c, torch.Tensor) or c.shape != (z.shape[0], c_dim):
            got = None if c is None else list(getattr(c, "shape", []))
            raise ValueError(
                f"`c` must be a class vector of shape [{z.shape[0]}, {c_dim}] (BigGAN is class-conditional; "
                f"pipelines build it from `class_label`), got {got}."
            )
        scale = float(self.config.truncation) * float(truncation_psi)
        z = z.to(self.device, torch.float32)
        embed = self.embeddings(c.to(self.device, torch.float32))
        return torch.cat([z * scale, embed], dim=1).unsqueeze(1)

    def synthesize(
        self, latents: torch.Tensor, noise_mode: str = "const", truncation: float | None = None
    ) -> torch.Tensor:
        """Render condition vectors ``[N, 1, z_dim + class_embed_dim]`` to images ``[N, 3, H, W]`` in [-1, 1].

        Args:
            latents: From :meth:`sample_latents` (possibly edited).
            noise_mode: Checked only: BigGAN has no noise inputs.
            truncation: Batch-norm statistics to use (default: ``config.truncation``).
        """
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"`noise_mode` must be one of {NOISE_MODES}, got {noise_mode!r}.")
        t = self.config.truncation if truncation is None else truncation
        t = self._check_truncation(t, "truncation")
        if latents.ndim != 3 or latents.shape[1] != 1 or latents.shape[2] != self.latent_dim:
            raise ValueError(f"`latents` must have shape [N, 1, {self.latent_dim}], got {list(latents.shape)}.")
        return self.generator(latents[:, 0].to(self.device, torch.float32), t)

    # ------------------------------------------------------------------ truncated-normal codes
    def z_from_seeds(self, seeds: Sequence[int]) -> torch.Tensor:
        """Unit truncated-normal codes ``[len(seeds), z_dim]`` in [-2, 2], one ``RandomState(seed)`` each.

        Values outside [-2, 2] are redrawn from the same stream until none is left (rejection sampling):
        the distribution of their ``truncated_noise_sample(truncation=1, seed=seed)``, not its numbers
        (that function uses SciPy's sampler).
        """
        z_dim = int(self.config.z_dim)
        rows = []
        for s in seeds:
            if not isinstance(s, (int, np.integer)) or isinstance(s, bool) or not 0 <= int(s) < 2**32:
                raise ValueError(f"`seeds` must be integers in [0, 2**32), got {s!r}.")
            rng = np.random.RandomState(int(s))
            z = rng.randn(z_dim)
            while (outside := np.abs(z) > Z_THRESHOLD).any():
                z[outside] = rng.randn(int(outside.sum()))
            rows.append(z)
        z = np.stack(rows) if rows else np.zeros((0, z_dim))
        return torch.from_numpy(z.astype(np.float32))

    def randn_z(self, num: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Unit truncated-normal codes ``[num, z_dim]`` in [-2, 2] (rejection sampling with `generator`)."""
        z = torch.randn([num, int(self.config.z_dim)], generator=generator)
        while (outside := z.abs() > Z_THRESHOLD).any():
            z[outside] = torch.randn(int(outside.sum()), generator=generator)
        return z
