"""StyleGAN3 generator (Karras et al., "Alias-Free Generative Adversarial Networks", NeurIPS 2021).

The architecture follows NVIDIA's reference implementation (``training/networks_stylegan3.py`` in
NVlabs/stylegan3), configs T (translation equivariant: 3×3 convolutions, separable Kaiser filters) and
R (rotation equivariant: ``conv_kernel=1``, ``use_radial_filters=True``, usually with doubled
``channel_base``/``channel_max``):

* a mapping network (the StyleGAN2 one, 2 layers by default),
* ``synthesis.input``: Fourier features of a fixed set of random frequencies, rotated and translated by
  an affine map of ``ws[:, 0]``, then mixed by a learned matrix,
* ``num_layers`` modulated convolutions whose cut-off frequencies follow a geometric progression from
  ``first_cutoff`` to ``img_resolution / 2`` (the last ``num_critical`` critically sampled), each followed
  by a *filtered leaky ReLU* (upsample, low-pass, leaky ReLU, low-pass, downsample) that keeps the
  non-linearity from aliasing,
* a final modulated 1×1 "ToRGB" layer and a constant ``output_scale``.

Parameter and buffer names are NVIDIA's (``synthesis.input.freqs``, ``synthesis.L3_52_512.affine.weight``,
``synthesis.L3_52_512.up_filter``, ``mapping.w_avg`` ...), so an official checkpoint maps onto this module
one to one (:mod:`sefa_plugin.convert.nvidia_stylegan3`). The resampling filters are ordinary buffers:
they are designed here exactly as NVIDIA designs them, but a converted checkpoint brings its own.

Everything runs in float32 with plain PyTorch ops (NVIDIA's reference, non-CUDA code path), on any
device; NVIDIA runs the ``num_fp16_res`` highest resolutions in float16 on GPUs, so this model matches
NVIDIA's output with ``force_fp32=True``.

W+ layout (``num_ws = num_layers + 2``): ``ws[:, 0]`` feeds ``synthesis.input.affine`` (the rotation and
translation of the Fourier features), ``ws[:, i]`` for ``1 ≤ i ≤ num_layers`` feeds the style affine of
layer ``L{i-1}``, and ``ws[:, num_ws - 1]`` feeds the final ToRGB layer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from torch import nn

from .interface import EditableGenerator, check_generator_config, check_layer_indices, check_parameter_count
from .limits import check_config_number
from .ops import LRELU_GAIN, FullyConnectedLayer, upfirdn2d
from .stylegan2 import MappingNetwork, StyleGAN2Generator

__all__ = [
    "LayerSpec",
    "StyleGAN3Generator",
    "design_lowpass_filter",
    "filtered_lrelu",
    "layer_specs",
]

#: Accepted for interface compatibility; StyleGAN3 has no noise inputs, so every mode renders the same.
NOISE_MODES = ("random", "const", "none")


# ----------------------------------------------------------------------------------------- filters
def _kaiser_beta(numtaps: int, width: float) -> float:
    """Kaiser window shape for `numtaps` taps and a transition width given as a fraction of Nyquist.

    Kaiser's empirical formulas (the ones ``scipy.signal.kaiser_atten``/``kaiser_beta`` implement).
    """
    atten = 2.285 * (numtaps - 1) * math.pi * width + 7.95  # stop-band attenuation in dB
    if atten > 50:
        return 0.1102 * (atten - 8.7)
    if atten > 21:
        return 0.5842 * (atten - 21) ** 0.4 + 0.07886 * (atten - 21)
    return 0.0


def design_lowpass_filter(
    numtaps: int, cutoff: float, width: float, fs: float, radial: bool = False
) -> torch.Tensor | None:
    """Kaiser-windowed low-pass FIR filter, as NVIDIA's ``SynthesisLayer.design_lowpass_filter``.

    Args:
        numtaps: Number of taps; 1 means "no filter" (returns None).
        cutoff: Cut-off frequency, in the units of `fs`.
        width: Width of the transition band (twice the half-width ``f_h``), in the units of `fs`.
        fs: Sampling rate.
        radial: Return a radially symmetric 2-D (jinc) filter instead of separable 1-D taps.

    Returns:
        None, 1-D taps ``[numtaps]`` normalised to unit DC gain (a windowed sinc, what
        ``scipy.signal.firwin(numtaps, cutoff, width=width, fs=fs)`` returns), or with `radial` a 2-D filter
        ``[numtaps, numtaps]`` summing to one.
    """
    if numtaps < 1:
        raise ValueError(f"`numtaps` must be ≥ 1, got {numtaps}.")
    if numtaps == 1:
        return None
    nyquist = fs / 2
    window = np.kaiser(numtaps, _kaiser_beta(numtaps, width / nyquist))
    if not radial:
        m = np.arange(numtaps) - (numtaps - 1) / 2
        taps = (cutoff / nyquist) * np.sinc((cutoff / nyquist) * m) * window
        return torch.as_tensor(taps / taps.sum(), dtype=torch.float32)
    x = (np.arange(numtaps) - (numtaps - 1) / 2) / fs
    r = torch.from_numpy(np.hypot(*np.meshgrid(x, x)))
    # Ideal radial low-pass (jinc); its limit at r = 0 (odd `numtaps`) is `cutoff`.
    jinc = torch.special.bessel_j1(2 * cutoff * math.pi * r) / (math.pi * r)
    f = torch.where(r == 0, torch.full_like(r, cutoff), jinc).numpy() * np.outer(window, window)
    return torch.as_tensor(f / f.sum(), dtype=torch.float32)


def filtered_lrelu(
    x: torch.Tensor,
    fu: torch.Tensor | None,
    fd: torch.Tensor | None,
    bias: torch.Tensor,
    up: int = 1,
    down: int = 1,
    padding: Sequence[int] = (0, 0, 0, 0),
    gain: float = LRELU_GAIN,
    slope: float = 0.2,
    clamp: float | None = None,
) -> torch.Tensor:
    """Bias, upsample with `fu`, leaky ReLU, clamp, low-pass with `fd`, downsample (alias-free activation).

    The arithmetic of NVIDIA's reference ``filtered_lrelu`` (the path it takes off CUDA): add the
    per-channel bias; :func:`upfirdn2d` with ``up``, `padding` and gain ``up**2``; ``leaky_relu(slope)``
    times `gain`, clamped to ``±clamp``; :func:`upfirdn2d` with `fd` and ``down``.
    """
    x = x + bias.to(x.dtype).reshape(1, -1, 1, 1)
    x = upfirdn2d(x, fu, up=up, padding=padding, gain=up**2)
    x = F.leaky_relu(x, slope)
    if gain != 1:
        x = x * gain
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return upfirdn2d(x, fd, down=down)


def modulated_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    styles: torch.Tensor,
    demodulate: bool = True,
    padding: int = 0,
    input_gain: torch.Tensor | None = None,
) -> torch.Tensor:
    """StyleGAN3's modulated convolution, one grouped convolution with per-sample weights.

    With `demodulate`, the weight is first scaled to unit mean square per output channel and the styles to
    unit mean square over the *whole batch* (as NVIDIA does); demodulation then cancels both scalings up to
    its ``1e-8`` epsilon, so the batch has no visible influence on an image.

    Args:
        x: Features ``[N, I, H, W]``.
        weight: Convolution weight ``[O, I, k, k]``.
        styles: Per-sample input-channel scales ``[N, I]``.
        demodulate: Normalise each output channel of the modulated weight to unit norm.
        padding: Zero padding of the convolution (StyleGAN3 pads ``k - 1``: a "full" convolution).
        input_gain: Scalar (or ``[I]``/``[N, I]``) factors applied to the input channels after demodulation.
    """
    n = x.shape[0]
    _out_ch, in_ch, kh, kw = weight.shape
    if demodulate:
        weight = weight * weight.square().mean([1, 2, 3], keepdim=True).rsqrt()
        styles = styles * styles.square().mean().rsqrt()
    w = weight.unsqueeze(0) * styles.reshape(n, 1, in_ch, 1, 1)  # [N, O, I, k, k]
    if demodulate:
        w = w * (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt().reshape(n, -1, 1, 1, 1)
    if input_gain is not None:
        w = w * input_gain.expand(n, in_ch).reshape(n, 1, in_ch, 1, 1)
    x = F.conv2d(x.reshape(1, -1, *x.shape[2:]), w.reshape(-1, in_ch, kh, kw).to(x.dtype), padding=padding, groups=n)
    return x.reshape(n, -1, *x.shape[2:])


# ------------------------------------------------------------------------------------ layer layout
@dataclass(frozen=True)
class LayerSpec:
    """Frequencies and sizes of one synthesis layer (NVIDIA's ``s[i]``, ``f_c[i]``, ``f_h[i]`` ...).

    Entry 0 of :func:`layer_specs` describes the Fourier-feature input, entry ``i + 1`` the output of layer
    ``L{i}`` (the last entry is the ToRGB layer).
    """

    sampling_rate: int  #: s[i], samples per unit length (the image spans one unit).
    cutoff: float  #: f_c[i], cut-off frequency.
    half_width: float  #: f_h[i], half-width of the transition band.
    size: int  #: width = height of the feature map, including the margin.
    channels: int  #: number of channels.


def layer_specs(
    img_resolution: int,
    img_channels: int,
    channel_base: int,
    channel_max: int,
    num_layers: int,
    num_critical: int,
    first_cutoff: float,
    first_stopband: float,
    last_stopband_rel: float,
    margin_size: int,
) -> list[LayerSpec]:
    """The ``num_layers + 1`` layer specs of the synthesis network (input first), as NVIDIA computes them.

    Cut-offs and minimum stop-bands grow geometrically from the first layer to the last
    ``num_critical + 1`` layers (which share ``f_c = img_resolution / 2``); each sampling rate is the
    smallest power of two ≥ twice the stop-band (at most ``img_resolution``); feature maps carry
    ``margin_size`` extra pixels on every side except the last two (image-sized); channels are
    ``min(channel_base / 2 / f_c, channel_max)`` rounded, and the ToRGB layer has ``img_channels``.
    """
    last_cutoff = img_resolution / 2
    last_stopband = last_cutoff * last_stopband_rel
    exponents = np.minimum(np.arange(num_layers + 1) / (num_layers - num_critical), 1)
    cutoffs = first_cutoff * (last_cutoff / first_cutoff) ** exponents
    stopbands = first_stopband * (last_stopband / first_stopband) ** exponents
    sampling_rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, img_resolution))))
    half_widths = np.maximum(stopbands, sampling_rates / 2) - cutoffs
    sizes = sampling_rates + margin_size * 2
    sizes[-2:] = img_resolution
    channels = np.rint(np.minimum((channel_base / 2) / cutoffs, channel_max))
    channels[-1] = img_channels
    return [
        LayerSpec(int(s), float(fc), float(fh), int(size), int(ch))
        for s, fc, fh, size, ch in zip(sampling_rates, cutoffs, half_widths, sizes, channels, strict=True)
    ]


# ------------------------------------------------------------------------------------------ layers
class SynthesisInput(nn.Module):
    """Fourier features ``[N, channels, size, size]``, rotated and translated by an affine map of ``w``."""

    def __init__(self, w_dim: int, channels: int, size: int, sampling_rate: float, bandwidth: float) -> None:
        super().__init__()
        self.w_dim, self.channels, self.size = w_dim, channels, size
        self.sampling_rate, self.bandwidth = sampling_rate, bandwidth
        # Frequencies drawn from a 2-D distribution concentrated in the disc of radius `bandwidth`.
        freqs = torch.randn([channels, 2])
        radii = freqs.square().sum(dim=1, keepdim=True).sqrt()
        freqs = freqs / (radii * radii.square().exp().pow(0.25)) * bandwidth
        phases = torch.rand([channels]) - 0.5
        self.weight = nn.Parameter(torch.randn([channels, channels]))
        # Predicts (cos, sin, tx, ty); it starts as the identity transform (no rotation, no translation).
        self.affine = FullyConnectedLayer(w_dim, 4)
        with torch.no_grad():
            self.affine.weight.zero_()
            self.affine.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 0.0]))
        self.register_buffer("transform", torch.eye(3, 3))  # user-set inverse transform of the output
        self.register_buffer("freqs", freqs)
        self.register_buffer("phases", phases)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        n, device = w.shape[0], w.device
        t = self.affine(w)  # [N, 4]
        t = t / t[:, :2].norm(dim=1, keepdim=True)  # unit rotation (cos, sin), translation (tx, ty)
        m_r = torch.eye(3, device=device).unsqueeze(0).repeat(n, 1, 1)  # inverse rotation of the image
        m_r[:, 0, 0], m_r[:, 0, 1], m_r[:, 1, 0], m_r[:, 1, 1] = t[:, 0], -t[:, 1], t[:, 1], t[:, 0]
        m_t = torch.eye(3, device=device).unsqueeze(0).repeat(n, 1, 1)  # inverse translation of the image
        m_t[:, 0, 2], m_t[:, 1, 2] = -t[:, 2], -t[:, 3]
        transforms = m_r @ m_t @ self.transform.unsqueeze(0)  # [N, 3, 3]

        phases = self.phases.unsqueeze(0) + (self.freqs.unsqueeze(0) @ transforms[:, :2, 2:]).squeeze(2)
        freqs = self.freqs.unsqueeze(0) @ transforms[:, :2, :2]  # [N, C, 2]
        # Fade out frequencies that the user transform pushed beyond the band the layer can represent.
        amplitudes = (1 - (freqs.norm(dim=2) - self.bandwidth) / (self.sampling_rate / 2 - self.bandwidth)).clamp(0, 1)

        theta = torch.eye(2, 3, device=device)
        theta[0, 0] = theta[1, 1] = 0.5 * self.size / self.sampling_rate
        grid = F.affine_grid(theta.unsqueeze(0), [1, 1, self.size, self.size], align_corners=False)  # [1, H, W, 2]
        x = (grid.unsqueeze(3) @ freqs.permute(0, 2, 1).unsqueeze(1).unsqueeze(2)).squeeze(3)  # [N, H, W, C]
        x = torch.sin((x + phases.unsqueeze(1).unsqueeze(2)) * (np.pi * 2)) * amplitudes.unsqueeze(1).unsqueeze(2)
        x = x @ (self.weight / np.sqrt(self.channels)).t()
        return x.permute(0, 3, 1, 2)  # [N, C, H, W]

    def extra_repr(self) -> str:
        return f"w_dim={self.w_dim}, channels={self.channels}, size={self.size}, sampling_rate={self.sampling_rate:g}"


class SynthesisLayer(nn.Module):
    """Modulated convolution + filtered leaky ReLU that moves features from one layer spec to the next.

    The ToRGB layer (`is_torgb`) is a modulated 1×1 convolution without demodulation, bias and clamp only.
    """

    def __init__(
        self,
        w_dim: int,
        is_torgb: bool,
        is_critically_sampled: bool,
        spec_in: LayerSpec,
        spec_out: LayerSpec,
        conv_kernel: int = 3,
        filter_size: int = 6,
        lrelu_upsampling: int = 2,
        use_radial_filters: bool = False,
        conv_clamp: float | None = 256,
        magnitude_ema_beta: float = 0.999,
    ) -> None:
        super().__init__()
        self.is_torgb, self.is_critically_sampled = is_torgb, is_critically_sampled
        self.in_channels, self.out_channels = spec_in.channels, spec_out.channels
        self.in_size, self.out_size = spec_in.size, spec_out.size
        self.conv_kernel = 1 if is_torgb else conv_kernel
        self.conv_clamp, self.magnitude_ema_beta = conv_clamp, magnitude_ema_beta
        tmp_rate = max(spec_in.sampling_rate, spec_out.sampling_rate) * (1 if is_torgb else lrelu_upsampling)
        self.up_factor = tmp_rate // spec_in.sampling_rate
        self.down_factor = tmp_rate // spec_out.sampling_rate

        self.affine = FullyConnectedLayer(w_dim, self.in_channels, bias_init=1)
        self.weight = nn.Parameter(
            torch.randn([self.out_channels, self.in_channels, self.conv_kernel, self.conv_kernel])
        )
        self.bias = nn.Parameter(torch.zeros([self.out_channels]))
        self.register_buffer("magnitude_ema", torch.ones([]))  # running mean square of the input

        up_taps = filter_size * self.up_factor if self.up_factor > 1 and not is_torgb else 1
        down_taps = filter_size * self.down_factor if self.down_factor > 1 and not is_torgb else 1
        self.down_radial = use_radial_filters and not is_critically_sampled
        # A None buffer is not part of the state dict (as in NVIDIA's checkpoints).
        self.register_buffer(
            "up_filter", design_lowpass_filter(up_taps, spec_in.cutoff, spec_in.half_width * 2, tmp_rate)
        )
        self.register_buffer(
            "down_filter",
            design_lowpass_filter(
                down_taps, spec_out.cutoff, spec_out.half_width * 2, tmp_rate, radial=self.down_radial
            ),
        )
        # Pad so that the output has `out_size` samples, centred as in NVIDIA's Appendix C.3.
        pad_total = (self.out_size - 1) * self.down_factor + 1  # size before downsampling
        pad_total -= (self.in_size + self.conv_kernel - 1) * self.up_factor  # size after upsampling
        pad_total += up_taps + down_taps - 2  # shrinkage of the two filters
        pad_lo = (pad_total + self.up_factor) // 2
        self.padding = (pad_lo, pad_total - pad_lo, pad_lo, pad_total - pad_lo)

    def forward(self, x: torch.Tensor, w: torch.Tensor, update_emas: bool = False) -> torch.Tensor:
        if update_emas:
            magnitude = x.detach().to(torch.float32).square().mean()
            self.magnitude_ema.copy_(magnitude.lerp(self.magnitude_ema, self.magnitude_ema_beta))
        styles = self.affine(w)
        if self.is_torgb:
            styles = styles * (1 / np.sqrt(self.in_channels * self.conv_kernel**2))
        x = modulated_conv2d(
            x,
            self.weight,
            styles,
            demodulate=not self.is_torgb,
            padding=self.conv_kernel - 1,
            input_gain=self.magnitude_ema.rsqrt(),
        )
        return filtered_lrelu(
            x,
            self.up_filter,
            self.down_filter,
            self.bias,
            up=self.up_factor,
            down=self.down_factor,
            padding=self.padding,
            gain=1 if self.is_torgb else LRELU_GAIN,
            slope=1 if self.is_torgb else 0.2,
            clamp=self.conv_clamp,
        )

    def extra_repr(self) -> str:
        return (
            f"in_channels={self.in_channels}, out_channels={self.out_channels}, in_size={self.in_size}, "
            f"out_size={self.out_size}, up={self.up_factor}, down={self.down_factor}, is_torgb={self.is_torgb}"
        )


class SynthesisNetwork(nn.Module):
    """Renders W+ latents ``[N, num_layers + 2, w_dim]`` to images ``[N, img_channels, R, R]``."""

    def __init__(
        self,
        w_dim: int,
        img_resolution: int,
        img_channels: int,
        channel_base: int = 32768,
        channel_max: int = 512,
        num_layers: int = 14,
        num_critical: int = 2,
        first_cutoff: float = 2,
        first_stopband: float = 2**2.1,
        last_stopband_rel: float = 2**0.3,
        margin_size: int = 10,
        output_scale: float = 0.25,
        **layer_kwargs,
    ) -> None:
        super().__init__()
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        self.num_ws = num_layers + 2
        self.num_layers, self.num_critical, self.margin_size = num_layers, num_critical, margin_size
        self.output_scale = output_scale
        self.specs = layer_specs(
            img_resolution, img_channels, channel_base, channel_max, num_layers, num_critical,
            first_cutoff, first_stopband, last_stopband_rel, margin_size,
        )  # fmt: skip
        first = self.specs[0]
        self.input = SynthesisInput(w_dim, first.channels, first.size, first.sampling_rate, first.cutoff)
        self.layer_names: list[str] = []
        for idx in range(num_layers + 1):
            layer = SynthesisLayer(
                w_dim,
                is_torgb=idx == num_layers,
                is_critically_sampled=idx >= num_layers - num_critical,
                spec_in=self.specs[max(idx - 1, 0)],
                spec_out=self.specs[idx],
                **layer_kwargs,
            )
            name = f"L{idx}_{layer.out_size}_{layer.out_channels}"  # NVIDIA's names, e.g. "L3_52_512"
            setattr(self, name, layer)
            self.layer_names.append(name)

    def layers(self) -> list[SynthesisLayer]:
        return [getattr(self, name) for name in self.layer_names]

    def forward(self, ws: torch.Tensor, update_emas: bool = False) -> torch.Tensor:
        if ws.ndim != 3 or ws.shape[1] != self.num_ws or ws.shape[2] != self.w_dim:
            raise ValueError(f"`ws` must have shape [N, {self.num_ws}, {self.w_dim}], got {list(ws.shape)}.")
        ws_list = ws.to(torch.float32).unbind(dim=1)
        x = self.input(ws_list[0])
        for layer, w in zip(self.layers(), ws_list[1:], strict=True):
            x = layer(x, w, update_emas=update_emas)
        if self.output_scale != 1:
            x = x * self.output_scale
        return x.to(torch.float32)


# --------------------------------------------------------------------------------------- generator
class StyleGAN3Generator(ModelMixin, ConfigMixin, EditableGenerator):
    """StyleGAN3 generator (config T or R): mapping network followed by the alias-free synthesis network.

    Args:
        z_dim: Width of the input latent ``z``.
        c_dim: Width of the class label ``c`` (0: unconditional).
        w_dim: Width of the intermediate latent ``w``.
        img_resolution: Output resolution, a power of two ≥ 4.
        img_channels: Output channels (3 for RGB).
        channel_base: A layer with cut-off ``f_c`` has ``min(channel_base / 2 / f_c, channel_max)`` channels
            (NVIDIA: 32768 for T, 65536 for R).
        channel_max: Upper bound on channels per layer (NVIDIA: 512 for T, 1024 for R).
        num_layers: Synthesis layers, excluding the Fourier-feature input and ToRGB.
        num_critical: Critically sampled layers at the end.
        first_cutoff: Cut-off frequency of the first layer, ``f_{c,0}``.
        first_stopband: Minimum stop-band of the first layer, ``f_{t,0}``.
        last_stopband_rel: Minimum stop-band of the last layer, relative to its cut-off.
        margin_size: Extra pixels on each side of the internal feature maps.
        output_scale: Constant factor on the output image.
        conv_kernel: Convolution kernel size (3 for config T, 1 for config R; ToRGB is always 1×1).
        filter_size: Low-pass filter taps per unit of the up/downsampling factor.
        lrelu_upsampling: Oversampling factor at which the leaky ReLU is evaluated.
        use_radial_filters: Radially symmetric downsampling filters in the non-critical layers (config R).
        conv_clamp: Clamp every layer's output to ``±conv_clamp`` (None: off). NVIDIA trains with 256.
        magnitude_ema_beta: Decay of each layer's running input magnitude (used with ``update_emas``).
        mapping_layers: Depth of the mapping network (NVIDIA: 2 for StyleGAN3).
        mapping_lr_multiplier: Learning-rate multiplier of the mapping network.
        w_avg_beta: Decay of the tracked average ``w`` used for truncation.

    Example:

    >>> import torch
    >>> from sefa_plugin.models.stylegan3 import StyleGAN3Generator
    >>> g = StyleGAN3Generator(
    ...     z_dim=8, w_dim=8, img_resolution=16, channel_base=128, channel_max=16, num_layers=4,
    ...     num_critical=1, first_cutoff=1, first_stopband=2, margin_size=2,
    ... )
    >>> g.num_ws
    6
    >>> img = g(torch.randn(2, 8), truncation_psi=0.7)
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
        num_layers: int = 14,
        num_critical: int = 2,
        first_cutoff: float = 2.0,
        first_stopband: float = 2**2.1,
        last_stopband_rel: float = 2**0.3,
        margin_size: int = 10,
        output_scale: float = 0.25,
        conv_kernel: int = 3,
        filter_size: int = 6,
        lrelu_upsampling: int = 2,
        use_radial_filters: bool = False,
        conv_clamp: float | None = 256.0,
        magnitude_ema_beta: float = 0.999,
        mapping_layers: int = 2,
        mapping_lr_multiplier: float = 0.01,
        w_avg_beta: float = 0.998,
    ) -> None:
        super().__init__()
        check_generator_config(
            img_resolution, channel_base, z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, img_channels=img_channels,
            channel_max=channel_max, num_layers=num_layers, num_critical=num_critical, margin_size=margin_size,
            conv_kernel=conv_kernel, filter_size=filter_size, lrelu_upsampling=lrelu_upsampling,
            mapping_layers=mapping_layers,
        )  # fmt: skip
        for name, value in (("first_cutoff", first_cutoff), ("first_stopband", first_stopband),
                            ("last_stopband_rel", last_stopband_rel), ("output_scale", output_scale),
                            ("mapping_lr_multiplier", mapping_lr_multiplier)):  # fmt: skip
            check_config_number(name, value)
        check_config_number("w_avg_beta", w_avg_beta, 0, 1)
        _check_frequencies(num_layers, num_critical, first_cutoff, first_stopband, last_stopband_rel, img_resolution)
        if c_dim < 0:
            raise ValueError(f"`c_dim` must be ≥ 0, got {c_dim}.")
        if margin_size < 0:
            raise ValueError(f"`margin_size` must be ≥ 0, got {margin_size}.")
        if conv_clamp is not None:
            check_config_number("conv_clamp", conv_clamp, 0)
        check_config_number("magnitude_ema_beta", magnitude_ema_beta, 0, 1)
        check_parameter_count(self)
        self.synthesis = SynthesisNetwork(
            w_dim, img_resolution, img_channels, channel_base=channel_base, channel_max=channel_max,
            num_layers=num_layers, num_critical=num_critical, first_cutoff=first_cutoff,
            first_stopband=first_stopband, last_stopband_rel=last_stopband_rel, margin_size=margin_size,
            output_scale=output_scale, conv_kernel=conv_kernel, filter_size=filter_size,
            lrelu_upsampling=lrelu_upsampling, use_radial_filters=use_radial_filters, conv_clamp=conv_clamp,
            magnitude_ema_beta=magnitude_ema_beta,
        )  # fmt: skip
        self.mapping = MappingNetwork(
            z_dim,
            c_dim,
            w_dim,
            self.synthesis.num_ws,
            num_layers=mapping_layers,
            lr_multiplier=mapping_lr_multiplier,
            w_avg_beta=w_avg_beta,
        )

    # ------------------------------------------------------------------ NVIDIA-style call
    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        noise_mode: str = "const",
        update_emas: bool = False,
    ) -> torch.Tensor:
        """Generate images in about [-1, 1], ``[N, img_channels, img_resolution, img_resolution]``.

        `noise_mode` is validated but has no effect (StyleGAN3 has no noise inputs). `update_emas` updates
        the tracked average ``w`` and every layer's input magnitude, as during NVIDIA's training.
        """
        _check_noise_mode(noise_mode)
        ws = self.mapping(
            z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff, update_emas=update_emas
        )
        return self.synthesis(ws, update_emas=update_emas)

    # ------------------------------------------------------------------ EditableGenerator
    @property
    def num_ws(self) -> int:
        return self.synthesis.num_ws

    @property
    def latent_dim(self) -> int:
        return int(self.config.w_dim)

    def layer_resolutions(self) -> list[int]:
        """Sampling rate of the features each W+ entry modulates (the input, each layer's output, ToRGB).

        This is the resolution the signal represents; the feature maps are ``2 * margin_size`` pixels
        larger, except in the last two layers.
        """
        return [spec.sampling_rate for spec in self.synthesis.specs] + [int(self.config.img_resolution)]

    def style_affines(self) -> list[FullyConnectedLayer]:
        """The affine of each W+ entry: ``synthesis.input.affine``, then each layer's (ToRGB last)."""
        return [self.synthesis.input.affine] + [layer.affine for layer in self.synthesis.layers()]

    def latent_weights(self, layers: Sequence[int]) -> list[torch.Tensor]:
        """The effective affine weight of each W+ entry in `layers`.

        * Entry 0 is ``synthesis.input.affine`` ``[4, w_dim]``: what ``ws[:, 0]`` feeds, the rotation
          (cos, sin) and translation (x, y) of the Fourier features. It is returned like every other affine,
          so ``layers="all"`` factorizes over all of the synthesis network's affines; with SeFa's row
          normalisation its 4 rows weigh as much as 4 channels. Leave index 0 out to factorize over the
          style-modulated layers only.
        * Entries ``1 .. num_ws - 2`` are the style affines ``[in_channels, w_dim]`` of layers
          ``L0 .. L{num_layers-1}``.
        * Entry ``num_ws - 1`` is the ToRGB affine, without the constant ``1 / sqrt(in_channels)`` that
          the layer multiplies its styles by (a scalar, which does not change row-normalised SeFa; the same
          choice as :meth:`StyleGAN2Generator.latent_weights`).
        """
        affines = self.style_affines()
        return [affines[i].effective_weight().detach() for i in check_layer_indices(layers, len(affines))]

    # Same mapping network (`self.mapping`) as StyleGAN2, so the same truncation and device handling.
    sample_latents = StyleGAN2Generator.sample_latents

    def synthesize(self, latents: torch.Tensor, noise_mode: str = "const") -> torch.Tensor:
        """Render W+ latents ``[N, num_ws, w_dim]``; `noise_mode` is validated and otherwise ignored."""
        _check_noise_mode(noise_mode)
        return self.synthesis(latents.to(self.device))


def _check_noise_mode(noise_mode: str) -> None:
    if noise_mode not in NOISE_MODES:
        raise ValueError(f"`noise_mode` must be one of {NOISE_MODES}, got {noise_mode!r}.")


def _check_frequencies(
    num_layers: int,
    num_critical: int,
    first_cutoff: float,
    first_stopband: float,
    last_stopband_rel: float,
    img_resolution: int,
) -> None:
    """Reject layouts whose filters cannot be designed (errors name the argument)."""
    if not 0 <= num_critical < num_layers:
        raise ValueError(f"`num_critical` must be in [0, num_layers - 1] = [0, {num_layers - 1}], got {num_critical}.")
    if not 0 < first_cutoff <= img_resolution / 2:
        raise ValueError(
            f"`first_cutoff` must be in (0, img_resolution / 2 = {img_resolution / 2:g}], got {first_cutoff}."
        )
    if not first_stopband > first_cutoff:
        raise ValueError(f"`first_stopband` must be > `first_cutoff` ({first_cutoff}), got {first_stopband}.")
    if not last_stopband_rel > 1:
        raise ValueError(f"`last_stopband_rel` must be > 1 (relative to the last cut-off), got {last_stopband_rel}.")
