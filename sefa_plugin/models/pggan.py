"""Progressive GAN generator (Karras et al., ICLR 2018) in its final, fully grown form.

The architecture is that of the official TensorFlow code as ported by genforce (``pggan_generator.py``
in genforce/sefa), without the level-of-detail fading used during progressive training:

* ``z`` is pixel-normalised (scaled to unit mean square), an optional label ``c`` is appended and the
  result normalised again, as genforce does;
* ``layer0`` maps that vector to a 4×4 feature map. It is a dense layer, stored (as in genforce) as a
  convolution with kernel 4 and padding 3 applied to the ``[N, z_dim + c_dim, 1, 1]`` input;
* ``layer1`` is a 3×3 convolution at 4×4; every further resolution has ``layer{2b}`` (nearest 2×
  upsampling, then 3×3 convolution) and ``layer{2b+1}`` (3×3 convolution);
* every layer is pixel norm → (upsample) → convolution → bias → leaky ReLU 0.2, with equalized
  learning rate (weights stored unscaled, scaled by ``gain / sqrt(fan_in)`` at run time, gain √2);
* ``output`` is the linear 1×1 ToRGB at the final resolution (gain 1). There is no tanh and no clamp:
  outputs are roughly in [-1, 1].

Pixel norm *before* each convolution (genforce) equals pixel norm after each activation (the paper),
because the nearest upsampling in between acts on each pixel vector independently.

Parameter layout (for converters): names and shapes are genforce's. ``layer{i}.weight`` is
``[out, in, k, k]`` and ``layer{i}.bias`` ``[out]`` for every ``i``; ``layer0.weight`` is
``[C, z_dim + c_dim, 4, 4]``. genforce's ``output{num_blocks - 1}.*`` is our ``output.*``; its
lower-resolution ``output{b}`` layers and the ``lod`` buffer belong to progressive training and are
dropped. The dense view of ``layer0`` used by SeFa follows the official code:
``weight.flip(2, 3).permute(1, 0, 2, 3).flatten(1)`` is ``[z_dim, C * 16]``, one column per output
unit (channel-major, then row, then column of the 4×4 map); :meth:`PGGANGenerator.latent_weights`
returns its transpose ``[C * 16, z_dim]``, which holds the same output-unit vectors as rows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from torch import nn

from .interface import EditableGenerator, check_generator_config, check_layer_indices, check_parameter_count
from .ops import LRELU_GAIN, bias_act, normalize_2nd_moment

NOISE_MODES = ("random", "const", "none")

#: Side of the first feature map.
INIT_RES = 4


class WScaleConvLayer(nn.Module):
    """Pixel norm → optional nearest 2× upsampling → convolution with equalized lr → bias → activation.

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        kernel_size: Square kernel size.
        padding: Zero padding of the convolution.
        upsample: Upsample the input 2× (nearest neighbour) before the convolution.
        gain: Equalized-lr gain; the weight is scaled by ``gain / sqrt(in_channels * kernel_size**2)``.
        activation: ``"lrelu"`` (slope 0.2, no extra gain) or ``"linear"``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        padding: int = 1,
        upsample: bool = False,
        gain: float = LRELU_GAIN,
        activation: str = "lrelu",
    ) -> None:
        super().__init__()
        self.padding, self.upsample, self.activation = padding, upsample, activation
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.wscale = gain / math.sqrt(in_channels * kernel_size**2)

    def effective_weight(self) -> torch.Tensor:
        """The weight actually applied, ``[out, in, k, k]``."""
        return self.weight * self.wscale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = normalize_2nd_moment(x)  # pixel norm over channels
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        x = F.conv2d(x, self.effective_weight().to(x.dtype), padding=self.padding)
        return bias_act(x, self.bias.to(x.dtype), activation=self.activation, gain=1.0)

    def extra_repr(self) -> str:
        out_ch, in_ch, k, _ = self.weight.shape
        return f"{in_ch}, {out_ch}, kernel_size={k}, upsample={self.upsample}, activation={self.activation}"


class PGGANGenerator(ModelMixin, ConfigMixin, EditableGenerator):
    """Progressive GAN generator (final resolution only); SeFa edits its latent ``z`` directly.

    Args:
        z_dim: Width of the latent ``z``.
        c_dim: Width of the one-hot class label ``c`` (0: unconditional).
        img_resolution: Output resolution, a power of two ≥ 4.
        img_channels: Output channels (3 for RGB).
        channel_base: Channels at resolution ``r`` are ``min(channel_base // r, channel_max)``
            (16384 reproduces the official 1024² models).
        channel_max: Upper bound on channels per layer.

    The editable latent is the pixel-normalised ``z``, ``[N, 1, z_dim]`` (as in the official SeFa code,
    which edits ``pixel_norm(z)``). A conditional model needs its label at synthesis time:
    ``synthesize(latents, c=c)``.

    Example:

    >>> import torch
    >>> from sefa_plugin.models import PGGANGenerator
    >>> g = PGGANGenerator(z_dim=8, img_resolution=16, channel_base=128, channel_max=16).eval()
    >>> g.num_ws, g.latent_dim, g.layer_resolutions()
    (1, 8, [4])
    >>> img = g(torch.randn(2, 8))
    >>> tuple(img.shape)
    (2, 3, 16, 16)
    >>> [tuple(w.shape) for w in g.latent_weights([0])]
    [(256, 8)]
    """

    latent_space = "z"

    @register_to_config
    def __init__(
        self,
        z_dim: int = 512,
        c_dim: int = 0,
        img_resolution: int = 1024,
        img_channels: int = 3,
        channel_base: int = 16384,
        channel_max: int = 512,
    ) -> None:
        super().__init__()
        check_generator_config(
            img_resolution, channel_base, z_dim=z_dim, c_dim=c_dim, img_channels=img_channels, channel_max=channel_max
        )
        check_parameter_count(self)
        self.block_resolutions = [2**i for i in range(2, int(math.log2(img_resolution)) + 1)]
        for b, res in enumerate(self.block_resolutions):
            if res == INIT_RES:
                first = WScaleConvLayer(z_dim + c_dim, self.channels(res), kernel_size=INIT_RES, padding=INIT_RES - 1)
            else:
                first = WScaleConvLayer(self.channels(res // 2), self.channels(res), upsample=True)
            setattr(self, f"layer{2 * b}", first)
            setattr(self, f"layer{2 * b + 1}", WScaleConvLayer(self.channels(res), self.channels(res)))
        self.num_layers = 2 * len(self.block_resolutions)
        self.output = WScaleConvLayer(
            self.channels(img_resolution),
            img_channels,
            kernel_size=1,
            padding=0,
            gain=1.0,
            activation="linear",
        )

    def channels(self, res: int) -> int:
        """Feature maps at resolution `res`."""
        return min(int(self.config.channel_base) // res, int(self.config.channel_max))

    def layers(self) -> list[WScaleConvLayer]:
        """The convolution layers in order (``layer0`` … ``layer{num_layers - 1}``), without ToRGB."""
        return [getattr(self, f"layer{i}") for i in range(self.num_layers)]

    # ------------------------------------------------------------------ NVIDIA-style call
    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        noise_mode: str = "const",
    ) -> torch.Tensor:
        """Generate images ``[N, img_channels, img_resolution, img_resolution]``, roughly in [-1, 1]."""
        latents = self.sample_latents(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesize(latents, noise_mode=noise_mode, c=c)

    # ------------------------------------------------------------------ EditableGenerator
    @property
    def latent_dim(self) -> int:
        return int(self.config.z_dim)

    @property
    def num_ws(self) -> int:
        return 1

    def layer_resolutions(self) -> list[int]:
        return [INIT_RES]

    def latent_weights(self, layers: Sequence[int]) -> list[torch.Tensor]:
        """The dense view of ``layer0`` restricted to the ``z`` inputs, ``[C * 16, z_dim]`` (layer 0 only).

        Row ``c * 16 + y * 4 + x`` is the weight vector of channel ``c`` at pixel ``(y, x)`` of the 4×4
        map; the kernel is flipped because a kernel-4 convolution with padding 3 on a 1×1 input reads
        the kernel backwards. This is the transpose of the official SeFa code's
        ``weight.flip(2, 3).permute(1, 0, 2, 3).flatten(1)``. The label columns of a conditional model
        are left out: the editable latent is ``z``.
        """
        out = []
        for _ in check_layer_indices(layers, self.num_ws):
            w = self.layer0.effective_weight().detach().flip(2, 3)  # [C, z_dim + c_dim, 4, 4]
            w = w.permute(1, 0, 2, 3).flatten(1)  # [z_dim + c_dim, C * 16], official layout
            out.append(w[: self.latent_dim].T)
        return out

    def sample_latents(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
    ) -> torch.Tensor:
        """Pixel-normalised ``z`` as editable latents ``[N, 1, z_dim]``.

        `c` is not part of the latent (pass it to :meth:`synthesize`). PGGAN keeps no average latent, so
        `truncation_psi` must be 1; `truncation_cutoff` then has no effect and is ignored.
        """
        if truncation_psi != 1:
            raise ValueError(
                f"`truncation_psi` must be 1 for PGGANGenerator: it edits z directly and has no average "
                f"latent to truncate towards; got {truncation_psi}."
            )
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"`z` must have shape [N, {self.latent_dim}], got {list(z.shape)}.")
        return normalize_2nd_moment(z.to(self.device, torch.float32)).unsqueeze(1)

    def synthesize(
        self, latents: torch.Tensor, noise_mode: str = "const", c: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Render latents ``[N, 1, z_dim]`` to images; `c` ``[N, c_dim]`` is required when ``c_dim > 0``.

        PGGAN has no noise inputs: `noise_mode` is checked but changes nothing.
        """
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"`noise_mode` must be one of {NOISE_MODES}, got {noise_mode!r}.")
        if latents.ndim != 3 or latents.shape[1] != 1 or latents.shape[2] != self.latent_dim:
            raise ValueError(f"`latents` must have shape [N, 1, {self.latent_dim}], got {list(latents.shape)}.")
        x = normalize_2nd_moment(latents[:, 0].to(self.device, torch.float32))  # [N, z_dim]
        c_dim = int(self.config.c_dim)
        if c_dim > 0:
            if c is None or c.ndim != 2 or c.shape != (x.shape[0], c_dim):
                got = None if c is None else list(c.shape)
                raise ValueError(f"`c` must have shape [{x.shape[0]}, {c_dim}] for this conditional model, got {got}.")
            x = torch.cat([x, c.to(x)], dim=1)
        elif c is not None:
            raise ValueError("`c` was given but this generator is unconditional (c_dim = 0).")
        x = x.reshape(x.shape[0], -1, 1, 1)  # [N, z_dim + c_dim, 1, 1]
        for layer in self.layers():
            x = layer(x)
        return self.output(x)
