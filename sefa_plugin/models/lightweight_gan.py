"""Lightweight GAN generator (Liu et al., "Towards Faster and Stabilized GAN Training for High-fidelity
Few-shot Image Synthesis", ICLR 2021), in the form of lucidrains/lightweight-gan and of the HugGAN sprint's
port (huggingface/community-events ``huggan/pytorch/lightweight_gan``).

Layer sequence (``L = z_dim``):

* ``initial_conv``: 4×4 transposed convolution from the ``[N, L, 1, 1]`` latent to ``2L`` channels, then
  ``initial_norm`` (batch norm) and a GLU over channels (first half · sigmoid(second half)), giving ``L``
  channels at 4×4, which are then L2-normalised over channels;
* ``blocks.{i}``, one per doubling of the resolution, each optionally preceded by a residual attention
  ``x + attn(chan_norm(x))`` (at the input widths in ``attn_res_layers``); then the upsampling:
  ``upsample="pixel_shuffle"`` (lucidrains' current code): 1×1 convolution to 4× channels, SiLU, pixel
  shuffle, then a 4×4 "same" convolution (zero padding 2 before, 1 after) to ``2·C`` channels and a learned
  per-layer noise; ``upsample="nearest"`` (the HugGAN port and older lucidrains releases): nearest 2×
  upsampling, then a 3×3 convolution to ``2·C``. Both then batch norm and GLU to ``C`` channels. With
  ``antialias`` a normalised [1, 2, 1]² blur (reflect padding) follows the upsampling;
* skip-layer excitation: the output of the block at 16, 32, 64 or 128 pixels is pooled by a global-context
  module ``sle{i}`` (softmax-weighted spatial sum, 1×1 conv, leaky ReLU 0.1, 1×1 conv, sigmoid) into
  per-channel gains that multiply the output of the block at 8× that size (when the model has it);
* ``out_conv``: 3×3 convolution to image channels.

Their generator's output is used as an image in [0, 1] (their sampler clamps it there); ours returns
``2·out − 1`` so that every family's images are in [-1, 1].

The editable latent is ``z`` (``latent_space == "z"``). SeFa reads the transposed convolution as the dense
map it is on a 1×1 input: ``latent_weights`` returns ``[2L · 16, L]``, one row per output unit (channel, row,
column), both GLU halves included.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from torch import nn

from .interface import check_generator_config, check_layer_indices, check_parameter_count
from .limits import CONFIG_LIMITS, is_channel_width
from .zspace import INIT_RES, ZSpaceGenerator

UPSAMPLE_MODES = ("pixel_shuffle", "nearest")
ATTENTION_KINDS = ("full", "linear")
#: Skip-layer excitation ``(i, j)``: block ``i`` (output ``8·2**i`` pixels) gates the output of block ``j``.
SLE_PAIRS = ((1, 4), (2, 5), (3, 6), (4, 7))


def glu(x: torch.Tensor) -> torch.Tensor:
    """Gated linear unit over channels: first half times the sigmoid of the second half."""
    a, b = x.chunk(2, dim=1)
    return a * torch.sigmoid(b)


def blur(x: torch.Tensor) -> torch.Tensor:
    """Per-channel [1, 2, 1]² / 16 filter with reflect padding (kornia's ``filter2d(normalized=True)``)."""
    taps = torch.tensor([1.0, 2.0, 1.0], dtype=x.dtype, device=x.device)
    kernel = (taps[:, None] * taps[None, :] / 16).expand(x.shape[1], 1, 3, 3)
    return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), kernel, groups=x.shape[1])


class ChannelNorm(nn.Module):
    """Normalise over channels at each pixel (biased variance, eps 1e-5), then a per-channel affine."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.g = nn.Parameter(torch.ones(1, channels, 1, 1))
        self.b = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        var, mean = torch.var_mean(x, dim=1, unbiased=False, keepdim=True)
        return (x - mean) / (var + 1e-5).sqrt() * self.g + self.b


class Attention(nn.Module):
    """Linear attention over all pixels, plus (``kind="full"``) softmax attention over each 3×3 neighbourhood.

    Args:
        channels: Input and output channels.
        kind: ``"full"`` (lucidrains' current code: both branches, concatenated) or ``"linear"`` (the HugGAN
            port: the linear branch only).
        heads: Attention heads.
        dim_head: Channels per head.
    """

    def __init__(self, channels: int, kind: str = "full", heads: int = 8, dim_head: int = 64) -> None:
        super().__init__()
        self.kind, self.heads, self.dim_head = kind, heads, dim_head
        inner = heads * dim_head
        self.lin_q = nn.Conv2d(channels, inner, 1, bias=False)
        self.lin_kv_depthwise = nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False)
        self.lin_kv = nn.Conv2d(channels, 2 * inner, 1, bias=False)
        if kind == "full":
            self.q = nn.Conv2d(channels, inner, 1, bias=False)
            self.kv = nn.Conv2d(channels, 2 * inner, 1, bias=False)
        self.out = nn.Conv2d(inner * (2 if kind == "full" else 1), channels, 1)

    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        """``[N, heads·d, H, W]`` → ``[N·heads, H·W, d]``."""
        n, _, h, w = t.shape
        return t.reshape(n, self.heads, self.dim_head, h * w).transpose(2, 3).reshape(n * self.heads, h * w, -1)

    def _merge(self, t: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """``[N·heads, H·W, d]`` → ``[N, heads·d, H, W]``."""
        nh, _, d = t.shape
        return t.reshape(nh // self.heads, self.heads, h, w, d).permute(0, 1, 4, 2, 3).reshape(-1, self.heads * d, h, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        scale = self.dim_head**-0.5
        q = self._heads(self.lin_q(x)).softmax(dim=-1) * scale
        k, v = (self._heads(t) for t in self.lin_kv(self.lin_kv_depthwise(x)).chunk(2, dim=1))
        context = k.softmax(dim=-2).transpose(1, 2) @ v  # [N·heads, d, d]
        out = F.gelu(self._merge(q @ context, h, w))
        if self.kind == "full":
            q = self._heads(self.q(x)) * scale  # [N·heads, HW, d]
            k, v = self.kv(x).chunk(2, dim=1)

            def neighbours(t: torch.Tensor) -> torch.Tensor:  # [N·heads, HW, 9, d], zeros outside the map
                t = F.unfold(t.reshape(n * self.heads, self.dim_head, h, w), 3, padding=1)  # [N·heads, d·9, HW]
                return t.reshape(n * self.heads, self.dim_head, 9, h * w).permute(0, 3, 2, 1)

            k, v = neighbours(k), neighbours(v)
            sim = (q.unsqueeze(2) * k).sum(-1)  # [N·heads, HW, 9]
            attn = (sim - sim.amax(dim=-1, keepdim=True)).softmax(dim=-1)
            local = (attn.unsqueeze(-1) * v).sum(2)  # [N·heads, HW, d]
            out = torch.cat([out, self._merge(local, h, w)], dim=1)
        return self.out(out)


class GlobalContext(nn.Module):
    """Skip-layer excitation gains ``[N, out_channels, 1, 1]`` from a softmax-weighted spatial pooling."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        hidden = max(3, out_channels // 2)
        self.key = nn.Conv2d(in_channels, 1, 1)
        self.fc1 = nn.Conv2d(in_channels, hidden, 1)
        self.fc2 = nn.Conv2d(hidden, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = self.key(x).flatten(2).softmax(dim=-1)  # [N, 1, HW]
        pooled = (x.flatten(2) * weights).sum(-1)[..., None, None]  # [N, C, 1, 1]
        return torch.sigmoid(self.fc2(F.leaky_relu(self.fc1(pooled), 0.1)))


class UpBlock(nn.Module):
    """(Attention) → 2× upsampling → convolution to ``2·out`` → (noise) → batch norm → GLU."""

    def __init__(
        self, in_channels: int, out_channels: int, res: int, upsample: str, antialias: bool, attention: str | None
    ) -> None:
        super().__init__()
        self.upsample, self.antialias = upsample, antialias
        if attention is not None:
            self.attn_norm = ChannelNorm(in_channels)
            self.attn = Attention(in_channels, kind=attention)
        if upsample == "pixel_shuffle":
            self.up_conv = nn.Conv2d(in_channels, 4 * in_channels, 1)
            self.conv = nn.Conv2d(in_channels, 2 * out_channels, 4)  # "same" padding (2, 1) applied in forward
            self.noise_strength = nn.Parameter(torch.zeros([1]))
            gen = torch.Generator().manual_seed(res)  # fixed noise for noise_mode="const"
            self.register_buffer("noise_const", torch.randn([2 * res, 2 * res], generator=gen))
        else:
            self.conv = nn.Conv2d(in_channels, 2 * out_channels, 3, padding=1)
        self.norm = nn.BatchNorm2d(2 * out_channels)

    def forward(self, x: torch.Tensor, noise_mode: str) -> torch.Tensor:
        if hasattr(self, "attn"):
            x = x + self.attn(self.attn_norm(x))
        if self.upsample == "pixel_shuffle":
            x = F.pixel_shuffle(F.silu(self.up_conv(x)), 2)
        else:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        if self.antialias:
            x = blur(x)
        if self.upsample == "pixel_shuffle":
            x = self.conv(F.pad(x, (2, 1, 2, 1)))
            if noise_mode == "random":
                x = x + self.noise_strength * torch.randn(x.shape[0], 1, *x.shape[2:], device=x.device)
            elif noise_mode == "const":
                x = x + self.noise_strength * self.noise_const
        else:
            x = self.conv(x)
        return glu(self.norm(x))


class LightweightGANGenerator(ZSpaceGenerator, ModelMixin, ConfigMixin):
    """Lightweight GAN generator (lucidrains' layout and the HugGAN port); SeFa edits ``z``.

    Args:
        z_dim: Width of the latent ``z`` (their ``latent_dim``, 256 by default).
        img_resolution: Output resolution, a power of two ≥ 8.
        img_channels: Output channels (3; 1 greyscale; 4 transparent).
        channels: Output channels of each up block (their ``min(2**(fmap_inverse_coef - r), fmap_max)``, and 3
            for blocks with ``r ≥ 8``); default: their rule with ``fmap_max=512``, ``fmap_inverse_coef=12``.
        attn_res_layers: Input widths of the blocks preceded by attention (their CLI's default is ``[32]``).
        upsample: ``"pixel_shuffle"`` (lucidrains' current code, with noise) or ``"nearest"`` (HugGAN).
        attention: ``"full"`` (lucidrains) or ``"linear"`` (HugGAN).
        antialias: Blur after each upsampling (their ``--antialias``).

    Use ``.eval()`` for generation (batch norm running statistics).

    Example:

    >>> import torch
    >>> from sefa_plugin.models import LightweightGANGenerator
    >>> g = LightweightGANGenerator(z_dim=8, img_resolution=16, channels=[8, 4], attn_res_layers=[8]).eval()
    >>> g.num_ws, g.latent_dim, g.layer_resolutions()
    (1, 8, [4])
    >>> tuple(g(torch.randn(2, 8)).shape)
    (2, 3, 16, 16)
    >>> [tuple(w.shape) for w in g.latent_weights([0])]
    [(256, 8)]
    """

    @register_to_config
    def __init__(
        self,
        z_dim: int = 256,
        img_resolution: int = 256,
        img_channels: int = 3,
        channels: Sequence[int] | None = None,
        attn_res_layers: Sequence[int] = (32,),
        upsample: str = "pixel_shuffle",
        attention: str = "full",
        antialias: bool = False,
    ) -> None:
        super().__init__()
        check_generator_config(img_resolution, z_dim=z_dim, img_channels=img_channels)
        num_blocks = int(math.log2(img_resolution)) - 2
        if num_blocks < 1:
            raise ValueError(f"`img_resolution` must be at least 8, got {img_resolution}.")
        if channels is None:
            channels = [3 if r >= 8 else min(2 ** (12 - r), 512) for r in range(2, num_blocks + 2)]
        channels = list(channels)
        if len(channels) != num_blocks or not all(is_channel_width(c) for c in channels):
            raise ValueError(
                f"`channels` must hold {num_blocks} widths (integers in [1, {CONFIG_LIMITS['channel_max'][1]}], one "
                f"per up block) for `img_resolution` {img_resolution}, got {channels}."
            )
        if upsample not in UPSAMPLE_MODES:
            raise ValueError(f"`upsample` must be one of {UPSAMPLE_MODES}, got {upsample!r}.")
        if attention not in ATTENTION_KINDS:
            raise ValueError(f"`attention` must be one of {ATTENTION_KINDS}, got {attention!r}.")
        check_parameter_count(self)
        self.initial_conv = nn.ConvTranspose2d(z_dim, 2 * z_dim, INIT_RES)
        self.initial_norm = nn.BatchNorm2d(2 * z_dim)
        widths = [z_dim, *channels]
        self.blocks = nn.ModuleList(
            UpBlock(widths[i], widths[i + 1], INIT_RES * 2**i, upsample, antialias,
                    attention if INIT_RES * 2**i in attn_res_layers else None)
            for i in range(num_blocks)
        )  # fmt: skip
        self.sle_targets: dict[int, int] = {}
        for i, j in SLE_PAIRS:
            if j < num_blocks:
                self.sle_targets[i] = j
                setattr(self, f"sle{i}", GlobalContext(channels[i], channels[j]))
        self.out_conv = nn.Conv2d(channels[-1], img_channels, 3, padding=1)

    def latent_weights(self, layers: Sequence[int]) -> list[torch.Tensor]:
        """The initial transposed convolution as a dense map, ``[2·z_dim·16, z_dim]`` (layer 0 only).

        On a 1×1 input, output unit ``(o, y, x)`` is ``Σ_i z_i · W[i, o, y, x] + b[o]``, so row
        ``o·16 + y·4 + x`` is ``W[:, o, y, x]``.
        """
        w = self.initial_conv.weight.detach()  # [z_dim, 2·z_dim, 4, 4]
        return [w.permute(1, 2, 3, 0).reshape(-1, w.shape[0]) for _ in check_layer_indices(layers, self.num_ws)]

    def render(self, z: torch.Tensor, noise_mode: str) -> torch.Tensor:
        """``z`` ``[N, z_dim]`` to images; `noise_mode` sets the per-layer noise of ``"pixel_shuffle"`` blocks."""
        x = F.normalize(glu(self.initial_norm(self.initial_conv(z[:, :, None, None]))), dim=1)  # [N, z_dim, 4, 4]
        gains: dict[int, torch.Tensor] = {}
        for i, block in enumerate(self.blocks):
            x = block(x, noise_mode)
            if i in self.sle_targets:
                gains[self.sle_targets[i]] = getattr(self, f"sle{i}")(x)
            if i in gains:
                x = x * gains.pop(i)
        return 2 * self.out_conv(x) - 1  # their images are in [0, 1]
