"""StyleGAN generator (Karras et al., CVPR 2019, https://arxiv.org/abs/1812.04948) as a diffusers model.

The arithmetic is that of the official TensorFlow release as ported to PyTorch by genforce
(``stylegan_generator.py`` in genforce/sefa), in its final, fully grown form:

* mapping: ``z`` (with an optional label embedding ``c @ label_weight`` appended) is pixel-normalised,
  then passes ``mapping_layers`` dense layers with leaky ReLU 0.2. Equalized learning rate puts the
  He gain √2 into the weight scale (``√2 / sqrt(fan_in) * lr_multiplier``); weights are stored divided by
  the learning-rate multiplier (0.01), biases are multiplied by it; the activation has no extra gain;
* truncation: ``w`` is broadcast to the ``num_ws`` layers; the first ``truncation_cutoff`` of them are
  pulled towards the tracked average ``w_avg`` by ``truncation_psi``;
* synthesis: a learned 4×4 constant, then per resolution two layers, each: (2× upsampling + 3×3
  convolution + [1, 2, 1] blur for the first layer of a block, or a plain 3×3 convolution) → per-channel
  scaled noise → bias → leaky ReLU 0.2 → instance norm → AdaIN style modulation ``x * (1 + s) + b``,
  where the dense "style" layer maps ``w`` to the scale rows ``s`` and bias rows ``b`` (2·C outputs).
  The upsampling is nearest-neighbour followed by the convolution, or, with ``fused_scale`` (by
  default at resolutions ≥ 128, as genforce's ``"auto"``), a stride-2 transposed convolution whose 4×4
  kernel sums the four shifted copies of the 3×3 kernel. The final 1×1 ToRGB is linear (gain 1);
  there is no tanh and no clamp: outputs are roughly in [-1, 1].

Parameter layout (for converters): names and shapes are genforce's (``mapping.dense{i}.weight``,
``mapping.label_weight``, ``truncation.w_avg``, ``synthesis.layer{i}.weight``, ``.bias``, ``.const``,
``.apply_noise.noise`` ``[1, 1, r, r]``, ``.apply_noise.weight`` ``[C]``, ``.style.weight`` ``[2C, w_dim]``,
``.style.bias`` ``[2C]``). genforce's ``synthesis.output{num_blocks - 1}.*`` is our ``synthesis.output.*``;
its lower-resolution ``output{b}`` layers, the ``lod`` buffer (progressive training) and the constant blur
kernels are not stored.

W+ layout: ``ws[:, i]`` feeds the style of ``synthesis.layer{i}``: layers ``2b`` and ``2b + 1`` act at
resolution ``4 · 2**b``; ``num_ws = 2 · log2(img_resolution) − 2`` (18 at 1024²).
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
from .limits import check_config_number
from .ops import LRELU_GAIN, normalize_2nd_moment

NOISE_MODES = ("random", "const", "none")
#: Allowed values of ``fused_scale``; ``"auto"`` fuses at resolutions ≥ :data:`AUTO_FUSED_SCALE_MIN_RES`.
FUSED_SCALE_OPTIONS = (True, False, "auto")
AUTO_FUSED_SCALE_MIN_RES = 128
#: Side of the learned constant input.
INIT_RES = 4


class DenseLayer(nn.Module):
    """Mapping-network layer: ``lrelu(x @ (weight * wscale).T + bias * lr_multiplier)``, He gain in `wscale`."""

    def __init__(self, in_features: int, out_features: int, lr_multiplier: float = 0.01) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn([out_features, in_features]) / lr_multiplier)
        self.bias = nn.Parameter(torch.zeros([out_features]))
        self.wscale = LRELU_GAIN / math.sqrt(in_features) * lr_multiplier
        self.bscale = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(F.linear(x, self.weight * self.wscale, self.bias * self.bscale), 0.2)


class MappingNetwork(nn.Module):
    """Maps ``z`` ``[N, z_dim]`` (and a label ``c`` ``[N, c_dim]``) to ``w`` ``[N, w_dim]``."""

    def __init__(
        self, z_dim: int, c_dim: int, w_dim: int, num_layers: int, layer_features: int, lr_multiplier: float
    ) -> None:
        super().__init__()
        self.z_dim, self.c_dim, self.num_layers = z_dim, c_dim, num_layers
        if c_dim > 0:
            self.label_weight = nn.Parameter(torch.randn([c_dim, z_dim]))
        features = [z_dim * (2 if c_dim else 1)] + [layer_features] * (num_layers - 1) + [w_dim]
        for i in range(num_layers):
            setattr(self, f"dense{i}", DenseLayer(features[i], features[i + 1], lr_multiplier))

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"`z` must have shape [N, {self.z_dim}], got {list(z.shape)}.")
        x = z.to(torch.float32)
        if self.c_dim > 0:
            if c is None or c.ndim != 2 or c.shape != (z.shape[0], self.c_dim):
                got = None if c is None else list(c.shape)
                raise ValueError(f"`c` must have shape [{z.shape[0]}, {self.c_dim}] (conditional model), got {got}.")
            x = torch.cat([x, c.to(x) @ self.label_weight], dim=1)
        elif c is not None:
            raise ValueError("`c` was given but this generator is unconditional (c_dim = 0).")
        x = normalize_2nd_moment(x)
        for i in range(self.num_layers):
            x = getattr(self, f"dense{i}")(x)
        return x


class Truncation(nn.Module):
    """Broadcasts ``w`` to ``[N, num_ws, w_dim]`` and truncates the first layers towards ``w_avg``."""

    def __init__(self, w_dim: int, num_ws: int) -> None:
        super().__init__()
        self.num_ws = num_ws
        self.register_buffer("w_avg", torch.zeros([w_dim]))

    def forward(
        self, w: torch.Tensor, truncation_psi: float = 1.0, truncation_cutoff: int | None = None
    ) -> torch.Tensor:
        ws = w.unsqueeze(1).repeat(1, self.num_ws, 1)  # [N, num_ws, w_dim]
        if truncation_psi != 1:
            cutoff = self.num_ws if truncation_cutoff is None else truncation_cutoff
            ws[:, :cutoff] = self.w_avg.lerp(ws[:, :cutoff], truncation_psi)
        return ws


class NoiseInput(nn.Module):
    """Adds single-channel noise scaled per feature channel (``noise`` is the fixed map of ``"const"`` mode)."""

    def __init__(self, resolution: int, channels: int) -> None:
        super().__init__()
        self.resolution = resolution
        self.register_buffer("noise", torch.randn([1, 1, resolution, resolution]))
        self.weight = nn.Parameter(torch.zeros([channels]))

    def forward(self, x: torch.Tensor, noise_mode: str) -> torch.Tensor:
        if noise_mode == "none":
            return x
        if noise_mode == "random":
            noise = torch.randn([x.shape[0], 1, self.resolution, self.resolution], device=x.device, dtype=x.dtype)
        else:
            noise = self.noise.to(x.dtype)
        return x + noise * self.weight.reshape(1, -1, 1, 1)


class StyleMod(nn.Module):
    """AdaIN modulation: the dense "style" layer maps ``w`` to ``[scale rows; bias rows]`` (``2 * channels``)."""

    def __init__(self, w_dim: int, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.weight = nn.Parameter(torch.randn([2 * channels, w_dim]))
        self.bias = nn.Parameter(torch.zeros([2 * channels]))
        self.wscale = 1 / math.sqrt(w_dim)  # equalized lr with gain 1

    def effective_weight(self) -> torch.Tensor:
        """The weight actually applied, ``[2 * channels, w_dim]``: scale rows first, then bias rows."""
        return self.weight * self.wscale

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        style = F.linear(w, self.effective_weight().to(w.dtype), self.bias.to(w.dtype))
        scale, shift = style.reshape(-1, 2, self.channels, 1, 1).unbind(dim=1)
        return x * (scale + 1) + shift


def instance_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Normalise each feature map to zero mean and unit mean square."""
    x = x - x.mean(dim=[2, 3], keepdim=True)
    return x * (x.square().mean(dim=[2, 3], keepdim=True) + eps).rsqrt()


class SynthesisLayer(nn.Module):
    """One style layer: (const | [upsample] conv [blur]) → noise → bias → lrelu → instance norm → AdaIN.

    Args:
        in_channels: Input channels (unused for the constant layer).
        out_channels: Output channels.
        w_dim: Width of ``w``.
        resolution: Output resolution.
        kind: ``"const"`` (learned 4×4 input), ``"up"`` (2× upsampling, convolution, blur) or ``"conv"``.
        fused_scale: For ``"up"``: one stride-2 transposed convolution instead of nearest upsampling + conv.
    """

    def __init__(
        self, in_channels: int, out_channels: int, w_dim: int, resolution: int, kind: str, fused_scale: bool = False
    ) -> None:
        super().__init__()
        self.kind, self.fused_scale = kind, fused_scale
        if kind == "const":
            self.const = nn.Parameter(torch.ones([1, out_channels, resolution, resolution]))
        else:
            self.weight = nn.Parameter(torch.randn([out_channels, in_channels, 3, 3]))
            self.wscale = LRELU_GAIN / math.sqrt(in_channels * 9)
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.apply_noise = NoiseInput(resolution, out_channels)
        self.style = StyleMod(w_dim, out_channels)

    def convolve(self, x: torch.Tensor, blur_filter: torch.Tensor) -> torch.Tensor:
        weight = (self.weight * self.wscale).to(x.dtype)
        if self.kind == "up" and self.fused_scale:
            # Nearest 2x upsampling followed by a 3x3 conv equals a stride-2 transposed conv whose 4x4 kernel
            # is the sum of the 3x3 kernel shifted to the four corners (TF StyleGAN's fused upscale2d_conv2d).
            w = F.pad(weight, [1, 1, 1, 1])
            w = w[:, :, 1:, 1:] + w[:, :, :-1, 1:] + w[:, :, 1:, :-1] + w[:, :, :-1, :-1]
            x = F.conv_transpose2d(x, w.transpose(0, 1), stride=2, padding=1)
        else:
            if self.kind == "up":
                x = F.interpolate(x, scale_factor=2, mode="nearest")
            x = F.conv2d(x, weight, padding=1)
        if self.kind == "up":
            channels = x.shape[1]
            kernel = blur_filter.to(x.dtype)[None, None].expand(channels, 1, -1, -1)
            x = F.conv2d(x, kernel, padding=1, groups=channels)  # symmetric filter: no flip needed
        return x

    def forward(
        self, x: torch.Tensor | None, w: torch.Tensor, blur_filter: torch.Tensor, noise_mode: str = "const"
    ) -> torch.Tensor:
        if self.kind == "const":
            x = self.const.to(w.dtype).expand(w.shape[0], -1, -1, -1)
        else:
            x = self.convolve(x, blur_filter)
        x = self.apply_noise(x, noise_mode)
        x = F.leaky_relu(x + self.bias.to(x.dtype).reshape(1, -1, 1, 1), 0.2)
        return self.style(instance_norm(x), w)


class ToRGB(nn.Module):
    """Linear 1×1 convolution to image channels (equalized lr, gain 1)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, 1, 1]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.wscale = 1 / math.sqrt(in_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, (self.weight * self.wscale).to(x.dtype), self.bias.to(x.dtype))


class SynthesisNetwork(nn.Module):
    """Renders W+ latents ``[N, num_ws, w_dim]`` to images ``[N, img_channels, R, R]``."""

    def __init__(
        self,
        w_dim: int,
        img_resolution: int,
        img_channels: int,
        channel_base: int,
        channel_max: int,
        fused_scale: bool | str,
    ) -> None:
        super().__init__()
        self.w_dim = w_dim
        self.block_resolutions = [2**i for i in range(2, int(math.log2(img_resolution)) + 1)]
        self.num_ws = 2 * len(self.block_resolutions)

        def channels(res: int) -> int:
            return min(channel_base // res, channel_max)

        for b, res in enumerate(self.block_resolutions):
            if res == INIT_RES:
                first = SynthesisLayer(channels(res), channels(res), w_dim, res, "const")
            else:
                fused = res >= AUTO_FUSED_SCALE_MIN_RES if fused_scale == "auto" else bool(fused_scale)
                first = SynthesisLayer(channels(res // 2), channels(res), w_dim, res, "up", fused_scale=fused)
            setattr(self, f"layer{2 * b}", first)
            setattr(self, f"layer{2 * b + 1}", SynthesisLayer(channels(res), channels(res), w_dim, res, "conv"))
        self.output = ToRGB(channels(img_resolution), img_channels)
        blur = torch.tensor([1.0, 2.0, 1.0])
        self.register_buffer("blur_filter", torch.outer(blur, blur) / 16, persistent=False)

    def layers(self) -> list[SynthesisLayer]:
        """The style layers in W+ order (``layer0`` … ``layer{num_ws - 1}``)."""
        return [getattr(self, f"layer{i}") for i in range(self.num_ws)]

    def forward(self, ws: torch.Tensor, noise_mode: str = "const") -> torch.Tensor:
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"`noise_mode` must be one of {NOISE_MODES}, got {noise_mode!r}.")
        if ws.ndim != 3 or ws.shape[1] != self.num_ws or ws.shape[2] != self.w_dim:
            raise ValueError(f"`ws` must have shape [N, {self.num_ws}, {self.w_dim}], got {list(ws.shape)}.")
        ws = ws.to(torch.float32)
        x = None
        for i, layer in enumerate(self.layers()):
            x = layer(x, ws[:, i], self.blur_filter, noise_mode=noise_mode)
        return self.output(x)


class StyleGANGenerator(ModelMixin, ConfigMixin, EditableGenerator):
    """StyleGAN (v1) generator: mapping network, truncation, then the AdaIN synthesis network.

    Args:
        z_dim: Width of the input latent ``z``.
        c_dim: Width of the class label ``c`` (0: unconditional). genforce's conditional models embed the
            label with ``c @ mapping.label_weight`` and append it to ``z`` before pixel normalisation.
        w_dim: Width of the intermediate latent ``w``.
        img_resolution: Output resolution, a power of two ≥ 8.
        img_channels: Output channels (3 for RGB).
        channel_base: Channels at resolution ``r`` are ``min(channel_base // r, channel_max)`` (16384, i.e.
            genforce's ``fmaps_base = 16 << 10``, reproduces the official models).
        channel_max: Upper bound on channels per layer.
        mapping_layers: Depth of the mapping network.
        mapping_layer_features: Width of the hidden mapping layers (default ``w_dim``; genforce's
            ``mapping_fmaps``).
        mapping_lr_multiplier: Learning-rate multiplier of the mapping network (it scales the stored
            weights and biases at run time, so it must match the checkpoint).
        fused_scale: ``True``, ``False`` or ``"auto"`` (fused upsampling convolutions at resolutions ≥ 128,
            genforce's and NVIDIA's default). It does not change the parameter shapes, only the arithmetic.

    Truncation: genforce's ``trunc_psi=0.7, trunc_layers=8`` (the official SeFa defaults) is
    ``truncation_psi=0.7, truncation_cutoff=8`` here; ``truncation_cutoff=None`` truncates every layer.

    Example:

    >>> import torch
    >>> from sefa_plugin.models import StyleGANGenerator
    >>> g = StyleGANGenerator(z_dim=16, w_dim=16, img_resolution=16, channel_base=256, channel_max=32).eval()
    >>> g.num_ws, g.layer_resolutions()
    (6, [4, 4, 8, 8, 16, 16])
    >>> img = g(torch.randn(2, 16), truncation_psi=0.7, truncation_cutoff=8, noise_mode="const")
    >>> tuple(img.shape)
    (2, 3, 16, 16)
    >>> tuple(g.latent_weights([0])[0].shape)  # scale rows and bias rows of layer0's style
    (64, 16)
    """

    latent_space = "w+"

    @register_to_config
    def __init__(
        self,
        z_dim: int = 512,
        c_dim: int = 0,
        w_dim: int = 512,
        img_resolution: int = 1024,
        img_channels: int = 3,
        channel_base: int = 16384,
        channel_max: int = 512,
        mapping_layers: int = 8,
        mapping_layer_features: int | None = None,
        mapping_lr_multiplier: float = 0.01,
        fused_scale: bool | str = "auto",
    ) -> None:
        super().__init__()
        check_generator_config(
            img_resolution,
            channel_base,
            z_dim=z_dim,
            w_dim=w_dim,
            img_channels=img_channels,
            c_dim=c_dim,
            channel_max=channel_max,
            mapping_layers=mapping_layers,
            mapping_layer_features=mapping_layer_features,
        )
        if img_resolution < 8:
            raise ValueError(f"`img_resolution` must be a power of two ≥ 8 (StyleGANGenerator), got {img_resolution}.")
        if isinstance(c_dim, bool) or c_dim < 0:
            raise ValueError(f"`c_dim` must be 0 (unconditional) or a positive integer, got {c_dim}.")
        if not (fused_scale is True or fused_scale is False or fused_scale == "auto"):
            raise ValueError(f"`fused_scale` must be one of {FUSED_SCALE_OPTIONS}, got {fused_scale!r}.")
        check_config_number("mapping_lr_multiplier", mapping_lr_multiplier, 0, open_low=True)
        layer_features = w_dim if mapping_layer_features is None else mapping_layer_features
        if layer_features < 1:
            raise ValueError(f"`mapping_layer_features` must be a positive integer, got {mapping_layer_features}.")
        check_parameter_count(self)
        self.synthesis = SynthesisNetwork(w_dim, img_resolution, img_channels, channel_base, channel_max, fused_scale)
        self.mapping = MappingNetwork(z_dim, c_dim, w_dim, mapping_layers, layer_features, mapping_lr_multiplier)
        self.truncation = Truncation(w_dim, self.synthesis.num_ws)

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
        ws = self.sample_latents(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, noise_mode=noise_mode)

    # ------------------------------------------------------------------ EditableGenerator
    @property
    def num_ws(self) -> int:
        return self.synthesis.num_ws

    @property
    def latent_dim(self) -> int:
        return int(self.config.w_dim)

    def layer_resolutions(self) -> list[int]:
        return [res for res in self.synthesis.block_resolutions for _ in range(2)]

    def latent_weights(self, layers: Sequence[int]) -> list[torch.Tensor]:
        """The style affine of each layer in `layers`, ``[2 * C, w_dim]``: AdaIN scale rows, then bias rows.

        Both halves are returned, as the official SeFa code factorizes ``layer.style.weight`` whole. The
        weight includes the equalized-lr scale ``1 / sqrt(w_dim)`` (the official code uses the stored
        weight). Every row is normalised before factorizing by default, which cancels any per-matrix
        scalar, so the eigenvalues and eigenvectors equal the official ones; with ``normalize=False`` the
        eigenvalues are the official Gram matrix's divided by ``w_dim`` (same eigenvectors).
        """
        all_layers = self.synthesis.layers()
        return [all_layers[i].style.effective_weight().detach() for i in check_layer_indices(layers, self.num_ws)]

    def noise_buffers(self) -> list[str]:
        """The fixed ``noise`` map ``[1, 1, r, r]`` of every synthesis layer."""
        return [f"{name}.noise" for name, m in self.named_modules() if isinstance(m, NoiseInput)]

    def sample_latents(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
    ) -> torch.Tensor:
        w = self.mapping(z.to(self.device), None if c is None else c.to(self.device))
        return self.truncation(w, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)

    def synthesize(self, latents: torch.Tensor, noise_mode: str = "const") -> torch.Tensor:
        return self.synthesis(latents.to(self.device), noise_mode=noise_mode)
