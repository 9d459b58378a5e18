"""StyleGAN2 generator (Karras et al., CVPR 2020) as a diffusers model.

The architecture follows NVIDIA's reference implementation (``networks_stylegan2.py`` in
stylegan2-ada-pytorch / stylegan3): equalized learning rate, an 8-layer mapping network with learning
rate multiplier 0.01, modulated and demodulated 3×3 convolutions, the [1, 3, 3, 1] resampling filter,
per-layer noise inputs, skip-connected ToRGB layers, truncation around the tracked average ``w``, and
optional class conditioning. Parameter and buffer names are NVIDIA's (``mapping.fc0.weight``,
``synthesis.b4.conv1.affine.weight``, ``synthesis.b8.torgb.weight``, ``mapping.w_avg`` ...), so official
checkpoints map onto this module one to one.

W+ layout: ``ws[:, i]`` feeds the i-th convolution (``b4.conv1`` is 0, ``b8.conv0`` is 1, ``b8.conv1``
is 2, ...); each block's ToRGB shares the ``w`` of the next block's first convolution, and the last
index ``num_ws - 1`` feeds only the final ToRGB.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from torch import nn

from .interface import EditableGenerator, check_generator_config, check_layer_indices, check_parameter_count
from .limits import check_config_number, check_resample_filter
from .modconv import modulated_conv2d, prefer_fused_modconv
from .ops import (
    LRELU_GAIN,
    FullyConnectedLayer,
    make_resample_filter,
    normalize_2nd_moment,
    upsample2d,
)

NOISE_MODES = ("random", "const", "none")


class MappingNetwork(nn.Module):
    """Maps ``z`` (and an optional class label ``c``) to ``w``, broadcast to ``[N, num_ws, w_dim]``."""

    def __init__(
        self,
        z_dim: int,
        c_dim: int,
        w_dim: int,
        num_ws: int,
        num_layers: int = 8,
        embed_features: int | None = None,
        layer_features: int | None = None,
        lr_multiplier: float = 0.01,
        w_avg_beta: float = 0.998,
    ) -> None:
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, c_dim, w_dim, num_ws
        self.num_layers = num_layers
        self.w_avg_beta = w_avg_beta
        embed_features = (w_dim if embed_features is None else embed_features) if c_dim else 0
        layer_features = w_dim if layer_features is None else layer_features
        features = [z_dim + embed_features] + [layer_features] * (num_layers - 1) + [w_dim]
        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed_features)
        for idx in range(num_layers):
            layer = FullyConnectedLayer(
                features[idx], features[idx + 1], activation="lrelu", lr_multiplier=lr_multiplier
            )
            setattr(self, f"fc{idx}", layer)
        self.register_buffer("w_avg", torch.zeros([w_dim]))

    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        update_emas: bool = False,
    ) -> torch.Tensor:
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"`z` must have shape [N, {self.z_dim}], got {list(z.shape)}.")
        x = normalize_2nd_moment(z.to(torch.float32))
        if self.c_dim > 0:
            if c is None or c.ndim != 2 or c.shape[1] != self.c_dim:
                got = None if c is None else list(c.shape)
                raise ValueError(f"`c` must have shape [N, {self.c_dim}] for this conditional model, got {got}.")
            y = normalize_2nd_moment(self.embed(c.to(torch.float32)))
            x = torch.cat([x, y], dim=1)
        for idx in range(self.num_layers):
            x = getattr(self, f"fc{idx}")(x)
        if update_emas:
            self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        x = x.unsqueeze(1).repeat(1, self.num_ws, 1)  # [N, num_ws, w_dim]
        if truncation_psi != 1:
            cutoff = self.num_ws if truncation_cutoff is None else truncation_cutoff
            x[:, :cutoff] = self.w_avg.lerp(x[:, :cutoff], truncation_psi)
        return x


class SynthesisLayer(nn.Module):
    """Modulated 3×3 convolution + noise + bias + leaky ReLU (optionally with 2× upsampling)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        up: int = 1,
        use_noise: bool = True,
        conv_clamp: float | None = None,
        resample_filter: Sequence[float] = (1, 3, 3, 1),
        kernel_size: int = 3,
    ) -> None:
        super().__init__()
        self.resolution, self.up, self.use_noise, self.conv_clamp = resolution, up, use_noise, conv_clamp
        self.register_buffer("resample_filter", make_resample_filter(resample_filter))
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        if use_noise:
            self.register_buffer("noise_const", torch.randn([resolution, resolution]))
            self.noise_strength = nn.Parameter(torch.zeros([]))

    def forward(
        self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "random", fused_modconv: bool | None = None
    ) -> torch.Tensor:
        styles = self.affine(w)
        noise = None
        if self.use_noise and noise_mode == "random":
            shape = [x.shape[0], 1, self.resolution, self.resolution]
            noise = torch.randn(shape, device=x.device, dtype=x.dtype) * self.noise_strength
        elif self.use_noise and noise_mode == "const":
            noise = self.noise_const * self.noise_strength
        if fused_modconv is None:
            fused_modconv = x.device.type == "cpu" and prefer_fused_modconv(
                self.weight.shape[1], self.weight.shape[0], self.weight.shape[2], x.shape[2]
            )
        return modulated_conv2d(
            x,
            self.weight,
            styles,
            noise=noise,
            up=self.up,
            resample_filter=self.resample_filter,
            fused_modconv=fused_modconv,
            bias=self.bias,
            activation="lrelu",
            gain=LRELU_GAIN,
            clamp=self.conv_clamp,
        )


class ToRGBLayer(nn.Module):
    """Modulated 1×1 convolution to image channels, without demodulation."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, conv_clamp: float | None = None) -> None:
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, 1, 1]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = 1 / math.sqrt(in_channels)

    def forward(self, x: torch.Tensor, w: torch.Tensor, fused_modconv: bool | None = None) -> torch.Tensor:
        styles = self.affine(w) * self.weight_gain
        if fused_modconv is None:
            fused_modconv = x.device.type == "cpu" and prefer_fused_modconv(
                self.weight.shape[1], self.weight.shape[0], self.weight.shape[2], x.shape[2]
            )
        return modulated_conv2d(
            x, self.weight, styles, demodulate=False, fused_modconv=fused_modconv, bias=self.bias, clamp=self.conv_clamp
        )


class SynthesisBlock(nn.Module):
    """One resolution of the synthesis network (skip architecture)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        img_channels: int,
        conv_clamp: float | None = None,
        resample_filter: Sequence[float] = (1, 3, 3, 1),
    ) -> None:
        super().__init__()
        self.in_channels, self.resolution = in_channels, resolution
        self.register_buffer("resample_filter", make_resample_filter(resample_filter))
        self.num_conv = 0
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn([out_channels, resolution, resolution]))
        else:
            self.conv0 = SynthesisLayer(
                in_channels,
                out_channels,
                w_dim,
                resolution,
                up=2,
                conv_clamp=conv_clamp,
                resample_filter=resample_filter,
            )
            self.num_conv += 1
        self.conv1 = SynthesisLayer(
            out_channels, out_channels, w_dim, resolution, conv_clamp=conv_clamp, resample_filter=resample_filter
        )
        self.num_conv += 1
        self.torgb = ToRGBLayer(out_channels, img_channels, w_dim, conv_clamp=conv_clamp)
        self.num_torgb = 1

    def prefers_fused(self) -> bool:
        """Whether every modulated convolution of this block runs fused on CPU (:func:`prefer_fused_modconv`)."""
        layers = [(self.conv1, self.resolution), (self.torgb, self.resolution)]
        if self.in_channels:
            layers.append((self.conv0, self.resolution // 2))
        return all(prefer_fused_modconv(m.weight.shape[1], m.weight.shape[0], m.weight.shape[2], r) for m, r in layers)

    def forward(
        self,
        x: torch.Tensor | None,
        img: torch.Tensor | None,
        ws: torch.Tensor,
        noise_mode: str = "random",
        fused_modconv: bool | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        w_iter = iter(ws.unbind(dim=1))
        if self.in_channels == 0:
            # Channels-last from here on: oneDNN's convolutions run 2-6× faster on it than on NCHW on CPU.
            x = self.const.unsqueeze(0).repeat(ws.shape[0], 1, 1, 1).contiguous(memory_format=torch.channels_last)
        else:
            x = self.conv0(x, next(w_iter), noise_mode=noise_mode, fused_modconv=fused_modconv)
        x = self.conv1(x, next(w_iter), noise_mode=noise_mode, fused_modconv=fused_modconv)
        if img is not None:
            img = upsample2d(img, self.resample_filter)
        y = self.torgb(x, next(w_iter), fused_modconv=fused_modconv)
        img = y if img is None else img + y
        return x, img


class SynthesisNetwork(nn.Module):
    """Renders W+ latents ``[N, num_ws, w_dim]`` to images ``[N, img_channels, R, R]``."""

    def __init__(
        self,
        w_dim: int,
        img_resolution: int,
        img_channels: int,
        channel_base: int = 32768,
        channel_max: int = 512,
        conv_clamp: float | None = None,
        resample_filter: Sequence[float] = (1, 3, 3, 1),
    ) -> None:
        super().__init__()
        log2 = int(math.log2(img_resolution))
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        self.block_resolutions = [2**i for i in range(2, log2 + 1)]
        channels = {res: min(channel_base // res, channel_max) for res in self.block_resolutions}
        self.num_ws = 0
        for res in self.block_resolutions:
            in_channels = channels[res // 2] if res > 4 else 0
            block = SynthesisBlock(
                in_channels,
                channels[res],
                w_dim,
                res,
                img_channels,
                conv_clamp=conv_clamp,
                resample_filter=resample_filter,
            )
            self.num_ws += block.num_conv
            setattr(self, f"b{res}", block)
        self.num_ws += 1  # the last block's ToRGB

    def blocks(self) -> list[SynthesisBlock]:
        return [getattr(self, f"b{res}") for res in self.block_resolutions]

    def forward(self, ws: torch.Tensor, noise_mode: str = "const", fused_modconv: bool | None = None) -> torch.Tensor:
        """Render `ws`; `fused_modconv` None picks per layer on CPU (:func:`prefer_fused_modconv`) when no gradient
        is recorded and unfused under autograd; True/False applies to every layer."""
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"`noise_mode` must be one of {NOISE_MODES}, got {noise_mode!r}.")
        if ws.ndim != 3 or ws.shape[1] != self.num_ws or ws.shape[2] != self.w_dim:
            raise ValueError(f"`ws` must have shape [N, {self.num_ws}, {self.w_dim}], got {list(ws.shape)}.")
        ws = ws.to(torch.float32)
        if (
            fused_modconv is None
            and torch.is_grad_enabled()
            and (ws.requires_grad or any(p.requires_grad for p in self.parameters()))
        ):
            # Under autograd every layer runs unfused, as NVIDIA's code does in training: one weight gradient
            # for the batch instead of one per sample, and no per-sample weights kept for the backward pass
            # (an inversion step of the embedded model: 1.2× faster on 2 CPU cores, benchmarks/RESULTS.md).
            fused_modconv = False
        blocks = self.blocks()
        w_start = [0]
        for block in blocks:
            w_start.append(w_start[-1] + block.num_conv)
        # From the first block whose layers all run fused, render one sample at a time: a fused layer
        # convolves each sample alone anyway, and batch-1 layers need no concatenation of their outputs.
        split = len(blocks)
        if ws.shape[0] > 1 and (fused_modconv or (fused_modconv is None and ws.device.type == "cpu")):
            split = next((i for i, b in enumerate(blocks) if fused_modconv or b.prefers_fused()), split)
        x = img = None
        for i, block in enumerate(blocks[:split]):
            block_ws = ws.narrow(1, w_start[i], block.num_conv + block.num_torgb)
            x, img = block(x, img, block_ws, noise_mode=noise_mode, fused_modconv=fused_modconv)
        if split == len(blocks):
            return img.contiguous()  # NCHW, as callers expect
        images = []
        for k in range(ws.shape[0]):
            xk, imgk = (None, None) if x is None else (x[k : k + 1], img[k : k + 1])
            for i, block in enumerate(blocks[split:], start=split):
                block_ws = ws[k : k + 1].narrow(1, w_start[i], block.num_conv + block.num_torgb)
                xk, imgk = block(xk, imgk, block_ws, noise_mode=noise_mode, fused_modconv=fused_modconv)
            images.append(imgk)
        return torch.cat(images).contiguous()


class StyleGAN2Generator(ModelMixin, ConfigMixin, EditableGenerator):
    """StyleGAN2 generator: mapping network followed by the synthesis network.

    Args:
        z_dim: Width of the input latent ``z``.
        c_dim: Width of the class label ``c`` (0: unconditional).
        w_dim: Width of the intermediate latent ``w``.
        img_resolution: Output resolution, a power of two ≥ 4.
        img_channels: Output channels (3 for RGB).
        channel_base: Channels at resolution ``r`` are ``min(channel_base // r, channel_max)``.
        channel_max: Upper bound on channels per layer.
        mapping_layers: Depth of the mapping network.
        mapping_lr_multiplier: Learning-rate multiplier of the mapping network.
        mapping_embed_features: Width of the label embedding (default ``w_dim``).
        mapping_layer_features: Width of the hidden mapping layers (default ``w_dim``).
        w_avg_beta: Decay of the tracked average ``w`` used for truncation.
        conv_clamp: Clamp convolution outputs to ``±conv_clamp`` (NVIDIA trains with 256; None: off).
        resample_filter: Taps of the separable FIR resampling filter.

    Example:

    >>> import torch
    >>> from sefa_plugin.models import StyleGAN2Generator
    >>> g = StyleGAN2Generator(z_dim=16, w_dim=16, img_resolution=16, channel_base=256, channel_max=32)
    >>> g.num_ws
    6
    >>> img = g(torch.randn(2, 16), truncation_psi=0.7, noise_mode="const")
    >>> tuple(img.shape)
    (2, 3, 16, 16)
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
        channel_base: int = 32768,
        channel_max: int = 512,
        mapping_layers: int = 8,
        mapping_lr_multiplier: float = 0.01,
        mapping_embed_features: int | None = None,
        mapping_layer_features: int | None = None,
        w_avg_beta: float = 0.998,
        conv_clamp: float | None = None,
        resample_filter: tuple[float, ...] = (1, 3, 3, 1),
    ) -> None:
        super().__init__()
        check_generator_config(
            img_resolution, channel_base, z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, img_channels=img_channels,
            channel_max=channel_max, mapping_layers=mapping_layers, mapping_embed_features=mapping_embed_features,
            mapping_layer_features=mapping_layer_features,
        )  # fmt: skip
        check_config_number("mapping_lr_multiplier", mapping_lr_multiplier, 0, open_low=True)
        check_config_number("w_avg_beta", w_avg_beta, 0, 1)
        if conv_clamp is not None:
            check_config_number("conv_clamp", conv_clamp, 0)
        check_resample_filter(resample_filter)
        check_parameter_count(self)
        self.synthesis = SynthesisNetwork(
            w_dim,
            img_resolution,
            img_channels,
            channel_base=channel_base,
            channel_max=channel_max,
            conv_clamp=conv_clamp,
            resample_filter=resample_filter,
        )
        self.mapping = MappingNetwork(
            z_dim,
            c_dim,
            w_dim,
            self.synthesis.num_ws,
            num_layers=mapping_layers,
            embed_features=mapping_embed_features,
            layer_features=mapping_layer_features,
            lr_multiplier=mapping_lr_multiplier,
            w_avg_beta=w_avg_beta,
        )

    # ------------------------------------------------------------------ NVIDIA-style calls
    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        noise_mode: str = "const",
        update_emas: bool = False,
        fused_modconv: bool | None = None,
    ) -> torch.Tensor:
        """Generate images in [-1, 1], ``[N, img_channels, img_resolution, img_resolution]``.

        `fused_modconv`: None (default) picks fused or unfused modulated convolutions per layer on CPU
        (:func:`prefer_fused_modconv`) and unfused elsewhere; True or False forces one kind everywhere.
        The results agree to float rounding.
        """
        ws = self.mapping(
            z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff, update_emas=update_emas
        )
        return self.synthesis(ws, noise_mode=noise_mode, fused_modconv=fused_modconv)

    # ------------------------------------------------------------------ EditableGenerator
    @property
    def num_ws(self) -> int:
        return self.synthesis.num_ws

    @property
    def latent_dim(self) -> int:
        return int(self.config.w_dim)

    def layer_resolutions(self) -> list[int]:
        res = [4]
        for r in self.synthesis.block_resolutions[1:]:
            res += [r, r]
        return [*res, int(self.config.img_resolution)]

    def style_affines(self) -> list[FullyConnectedLayer]:
        """The style affine of each W+ layer: the convolutions in order, then the final ToRGB."""
        affines = []
        for block in self.synthesis.blocks():
            if block.in_channels:
                affines.append(block.conv0.affine)
            affines.append(block.conv1.affine)
        affines.append(self.synthesis.blocks()[-1].torgb.affine)
        return affines

    def latent_weights(self, layers: Sequence[int]) -> list[torch.Tensor]:
        affines = self.style_affines()
        return [affines[i].effective_weight().detach() for i in check_layer_indices(layers, len(affines))]

    def noise_buffers(self) -> list[str]:
        """The ``noise_const`` map ``[r, r]`` of every convolution with a noise input."""
        return [
            f"{name}.noise_const" for name, m in self.named_modules() if isinstance(m, SynthesisLayer) and m.use_noise
        ]

    def sample_latents(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
    ) -> torch.Tensor:
        return self.mapping(
            z.to(self.device),
            None if c is None else c.to(self.device),
            truncation_psi=truncation_psi,
            truncation_cutoff=truncation_cutoff,
        )

    def synthesize(self, latents: torch.Tensor, noise_mode: str = "const") -> torch.Tensor:
        return self.synthesis(latents.to(self.device), noise_mode=noise_mode)
