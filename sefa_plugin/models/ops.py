"""Pure-PyTorch building blocks shared by the GAN families.

These follow the arithmetic of NVIDIA's StyleGAN2 reference implementation (equalized learning rate,
`bias_act`, `upfirdn2d`) so that official checkpoints map onto our modules parameter for parameter,
but they are written for clarity and run on any device without custom CUDA kernels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

#: Gain that keeps the variance of a leaky-ReLU(0.2) activation at one (NVIDIA's ``def_gain``).
LRELU_GAIN = math.sqrt(2.0)


def normalize_2nd_moment(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    """Scale `x` so that its mean square along `dim` is one (StyleGAN's latent normalisation)."""
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


def bias_act(
    x: torch.Tensor,
    bias: torch.Tensor | None = None,
    activation: str = "linear",
    gain: float | None = None,
    clamp: float | None = None,
) -> torch.Tensor:
    """Add a per-channel bias, apply the activation, multiply by `gain`, then clamp.

    The order (bias → activation → gain → clamp) matches NVIDIA's ``bias_act``. `gain` defaults to the
    activation's variance-preserving gain (√2 for ``"lrelu"``, 1 for ``"linear"``).
    """
    if activation not in ("linear", "lrelu"):
        raise ValueError(f"`activation` must be 'linear' or 'lrelu', got {activation!r}.")
    if bias is not None:
        x = x + bias.reshape([1, -1] + [1] * (x.ndim - 2))
    if activation == "lrelu":
        x = F.leaky_relu(x, 0.2)
    if gain is None:
        gain = LRELU_GAIN if activation == "lrelu" else 1.0
    if gain != 1:
        x = x * gain
    if clamp is not None and clamp >= 0:
        x = x.clamp(-clamp, clamp)
    return x


def make_resample_filter(taps: Sequence[float] = (1, 3, 3, 1)) -> torch.Tensor:
    """Return the normalised 2-D separable filter (outer product of `taps`, summing to one)."""
    f = torch.as_tensor(taps, dtype=torch.float32)
    f = torch.outer(f, f)
    return f / f.sum()


def upfirdn2d(
    x: torch.Tensor,
    f: torch.Tensor | None,
    up: int = 1,
    down: int = 1,
    padding: Sequence[int] = (0, 0, 0, 0),
    gain: float = 1.0,
) -> torch.Tensor:
    """Upsample by zero insertion, pad, filter with `f`, then downsample (NVIDIA's reference semantics).

    `f` is a 2-D filter, separable 1-D taps (applied along the width, then along the height, each scaled
    by ``sqrt(gain)``; StyleGAN3's filters) or ``None`` (the identity filter).

    Args:
        x: Images ``[N, C, H, W]``.
        f: ``None``, 1-D taps ``[k]`` (separable) or a 2-D filter ``[kh, kw]``.
        up: Upsampling factor (``up - 1`` zeros after each pixel).
        down: Downsampling factor (every `down`-th pixel is kept).
        padding: ``(x0, x1, y0, y1)`` with respect to the upsampled image; negative values crop.
        gain: Overall gain of the filter (``up**2`` keeps the signal magnitude when upsampling).
    """
    n, c, h, w = x.shape
    if up > 1:
        x = F.pad(x.reshape(n, c, h, 1, w, 1), [0, up - 1, 0, 0, 0, up - 1]).reshape(n, c, h * up, w * up)
    px0, px1, py0, py1 = padding
    x = F.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    x = x[:, :, max(-py0, 0) : x.shape[2] - max(-py1, 0), max(-px0, 0) : x.shape[3] - max(-px1, 0)]
    if f is None:
        x = x * gain if gain != 1 else x
    elif f.ndim == 1:
        taps = (f * gain**0.5).flip(0).to(x.dtype)  # flipped: a convolution, not a correlation
        x = F.conv2d(x, taps.reshape(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)  # along the width
        x = F.conv2d(x, taps.reshape(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)  # along the height
    else:
        kernel = (f * gain).flip([0, 1]).to(x.dtype)
        x = F.conv2d(x, kernel[None, None].repeat(c, 1, 1, 1), groups=c)
    if down > 1:
        x = x[:, :, ::down, ::down]
    return x


def fir2d(
    x: torch.Tensor, f: torch.Tensor, pad: int, gain: float = 1.0, bias: torch.Tensor | None = None
) -> torch.Tensor:
    """Filter every channel with the 2-D FIR `f` and `pad` zeros on each side (+ an optional bias per channel).

    The same result as ``upfirdn2d(x, f, padding=(pad,) * 4, gain=gain)`` (plus `bias`), as one depthwise
    convolution: no padded copy, and with channels-last inputs oneDNN's fast depthwise kernel.
    """
    c = x.shape[1]
    kernel = (f * gain).flip([0, 1]).to(x.dtype)  # flipped: a convolution, not a correlation
    return F.conv2d(x, kernel[None, None].expand(c, 1, *f.shape), bias=bias, padding=pad, groups=c)


def upsample2d(x: torch.Tensor, f: torch.Tensor, up: int = 2) -> torch.Tensor:
    """2× FIR upsampling that keeps the image centred (used on the skip RGB path)."""
    fh = f.shape[0]
    p0, p1 = (fh + up - 1) // 2, (fh - up) // 2
    if f.ndim == 2 and up == 2 and p1 == p0 - 1:
        # Zero insertion, padding and the filter in one depthwise transposed convolution (stride 2): output
        # pixel j reads x[i] through f[fh - 1 - p0 + j - 2i], which is conv_transpose2d's k[j + P - 2i]
        # with k = f unflipped and P = fh - 1 - p0; the output size 2H + 2·p0 - fh is 2H when p1 = p0 - 1.
        c = x.shape[1]
        kernel = (f * (up * up)).to(x.dtype)[None, None].expand(c, 1, *f.shape)
        return F.conv_transpose2d(x, kernel, stride=2, padding=fh - 1 - p0, groups=c)
    return upfirdn2d(x, f, up=up, padding=(p0, p1, p0, p1), gain=up * up)


def downsample2d(x: torch.Tensor, f: torch.Tensor, down: int = 2) -> torch.Tensor:
    """2× FIR downsampling (blur, then keep every other pixel)."""
    fh = f.shape[0]
    p0, p1 = (fh - down + 1) // 2, (fh - down) // 2
    return upfirdn2d(x, f, down=down, padding=(p0, p1, p0, p1))


def conv2d_up2(
    x: torch.Tensor, weight: torch.Tensor, f: torch.Tensor, groups: int = 1, bias: torch.Tensor | None = None
) -> torch.Tensor:
    """3×3 convolution fused with 2× upsampling, as NVIDIA's ``conv2d_resample(up=2)`` (+ an optional bias).

    A stride-2 transposed convolution followed by the FIR filter `f`. `weight` has the usual conv
    layout ``[out, in/groups, k, k]``; `bias` ``[out]`` is added after the filter, in the same pass.
    """
    out_ch, in_per_group, kh, kw = weight.shape
    if groups == 1:
        w = weight.transpose(0, 1)
    else:
        w = weight.reshape(groups, out_ch // groups, in_per_group, kh, kw).transpose(1, 2)
        w = w.reshape(groups * in_per_group, out_ch // groups, kh, kw)
    x = F.conv_transpose2d(x, w, stride=2, groups=groups)
    fh = f.shape[0]
    # Padding of NVIDIA's `conv2d_resample` for up=2, padding=k//2: its transposed conv plus FIR crop.
    p0 = kw // 2 + (fh + 1) // 2 - (kw - 1)
    p1 = kw // 2 + (fh - 2) // 2 - (kw - 2)
    if f.ndim == 2 and p0 == p1 >= 0:
        return fir2d(x, f, p0, gain=4, bias=bias)
    x = upfirdn2d(x, f, padding=(p0, p1, p0, p1), gain=4)
    return x if bias is None else x + bias.reshape(1, -1, 1, 1)


class FullyConnectedLayer(nn.Module):
    """Linear layer with equalized learning rate (weights stored unscaled, scaled at run time).

    Args:
        in_features: Input width.
        out_features: Output width.
        bias: Whether to learn a bias.
        activation: ``"linear"`` or ``"lrelu"``.
        lr_multiplier: Learning-rate multiplier (0.01 in StyleGAN's mapping network).
        bias_init: Initial bias value (1 for style affines so that styles start at one).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        activation: str = "linear",
        lr_multiplier: float = 1.0,
        bias_init: float = 0.0,
    ) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.activation = activation
        self.weight = nn.Parameter(torch.randn([out_features, in_features]) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init))) if bias else None
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def effective_weight(self) -> torch.Tensor:
        """The weight actually applied, ``[out_features, in_features]``."""
        return self.weight * self.weight_gain

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.effective_weight().to(x.dtype)
        b = None if self.bias is None else (self.bias * self.bias_gain).to(x.dtype)
        if self.activation == "linear":
            return F.linear(x, w, b)
        return bias_act(F.linear(x, w), b, activation=self.activation)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, activation={self.activation}"


class Conv2dLayer(nn.Module):
    """Convolution with equalized learning rate, optional FIR down-sampling (discriminator side).

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        kernel_size: Square kernel size.
        bias: Whether to learn a bias.
        activation: ``"linear"`` or ``"lrelu"``.
        down: 1 or 2; with 2 the input is blurred and the convolution has stride 2.
        conv_clamp: Clamp the output to ``±conv_clamp`` (None: no clamping).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        bias: bool = True,
        activation: str = "linear",
        down: int = 1,
        conv_clamp: float | None = None,
    ) -> None:
        super().__init__()
        self.activation = activation
        self.down = down
        self.conv_clamp = conv_clamp
        self.padding = kernel_size // 2
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.bias = nn.Parameter(torch.zeros([out_channels])) if bias else None
        self.register_buffer("resample_filter", make_resample_filter())

    def forward(self, x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
        w = self.weight * self.weight_gain
        if self.down == 2:
            k = w.shape[-1]
            fh = self.resample_filter.shape[0]
            # Blur with enough padding that the strided valid convolution halves the size exactly.
            p = (fh - 2) + (k - 1)
            x = upfirdn2d(x, self.resample_filter, padding=((p + 1) // 2, p // 2, (p + 1) // 2, p // 2))
            x = F.conv2d(x, w, stride=2)
        else:
            x = F.conv2d(x, w, padding=self.padding)
        act_gain = (LRELU_GAIN if self.activation == "lrelu" else 1.0) * gain
        clamp = None if self.conv_clamp is None else self.conv_clamp * gain
        return bias_act(x, self.bias, activation=self.activation, gain=act_gain, clamp=clamp)
