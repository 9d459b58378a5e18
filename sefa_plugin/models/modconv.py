"""StyleGAN2's modulated convolution, with its noise, bias and activation, fused or unfused.

NVIDIA's layers either modulate each sample's weights and run one grouped convolution ("fused"), or scale
the activations by the styles around one shared convolution and demodulate after ("unfused"). Both give
the same result; which is faster depends on the layer's shapes (:func:`prefer_fused_modconv`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .ops import conv2d_up2


def prefer_fused_modconv(in_channels: int, out_channels: int, kernel_size: int, in_resolution: int) -> bool:
    """Whether a modulated convolution runs faster fused (per-sample modulated weights) on CPU.

    Fused, each sample's modulated weight ``[O, I, k, k]`` is built and the activations are touched only
    by the convolution; unfused, the weight is shared and the activations take two extra passes (scaled
    by the styles before, by the demodulation after). Fused wins where the weight is smaller than an
    input feature map, ``O·k² ≤ H·W``. Measured per layer on a 2-core AVX-512 Xeon (oneDNN, channels-last,
    ``benchmarks/bench_generation.py --per-layer``, 1024² config-F, batch 2): unfused was 1.1–2.4× faster
    at 4²–32² with 512 channels, the two tied within noise around 64²–128², fused was up to 1.6× faster
    for the 3×3 layers above and 2–4× for ToRGB from 128² up (see benchmarks/RESULTS.md).
    """
    return out_channels * kernel_size * kernel_size <= in_resolution * in_resolution


def modulated_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    styles: torch.Tensor,
    noise: torch.Tensor | None = None,
    up: int = 1,
    resample_filter: torch.Tensor | None = None,
    demodulate: bool = True,
    fused_modconv: bool = False,
    bias: torch.Tensor | None = None,
    activation: str = "linear",
    gain: float = 1.0,
    clamp: float | None = None,
) -> torch.Tensor:
    """Modulated (and optionally demodulated) convolution of StyleGAN2, with its noise, bias and activation.

    The result is ``bias_act(conv + noise, bias, activation, gain, clamp)`` as NVIDIA's layers compute it,
    in fewer passes over the activations: the gain (> 0) is folded into the per-channel scale, the bias
    and the noise (``lrelu(g·y) = g·lrelu(y)``), and the activation and clamp run in place.

    Args:
        x: Input features ``[N, I, H, W]`` (channels-last is kept, and fastest on CPU).
        weight: Unscaled convolution weight ``[O, I, k, k]``.
        styles: Per-sample input-channel scales ``[N, I]``.
        noise: Optional noise added after demodulation, broadcastable to the output.
        up: 1, or 2 for a convolution fused with 2× FIR upsampling.
        resample_filter: The FIR filter for ``up == 2``.
        demodulate: Normalise each output channel's modulated weight to unit norm.
        fused_modconv: Convolve each sample with its own modulated weight (bias added by the
            convolution) instead of scaling the activations around one shared convolution. Both give
            the same result; which is faster depends on the shapes (:func:`prefer_fused_modconv`).
        bias: Optional per-output-channel bias ``[O]``, added after the noise.
        activation: ``"linear"`` or ``"lrelu"`` (slope 0.2).
        gain: Positive factor applied after the activation.
        clamp: Optional clamp of the output to ``[-clamp, clamp]``.
    """
    if activation not in ("linear", "lrelu"):
        raise ValueError(f"`activation` must be 'linear' or 'lrelu', got {activation!r}.")
    if not gain > 0:
        raise ValueError(f"`gain` must be positive, got {gain!r}.")
    n = x.shape[0]
    out_ch, _in_ch, kh, _kw = weight.shape
    scale = None  # per-sample, per-output-channel factor of the convolution's output: [N, O]
    if demodulate:
        # Σ_{i,k} (w_oik·s_i)² = Σ_i s_i²·Σ_k w_oik²: an [N, I] × [I, O] product, not the modulated weights.
        scale = (styles.square() @ weight.square().sum(dim=[2, 3]).T + 1e-8).rsqrt()
        if gain != 1:
            scale = scale * gain
    bias = None if bias is None else (bias * gain if gain != 1 else bias).to(x.dtype)
    if noise is not None and gain != 1:
        noise = noise * gain

    def conv(inp: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
        if up == 2:
            return conv2d_up2(inp, w, resample_filter, bias=b)
        return F.conv2d(inp, w, bias=b, padding=kh // 2)

    if fused_modconv:
        w = weight.unsqueeze(0) * styles.reshape(n, 1, -1, 1, 1)  # [N, O, I, k, k]
        if scale is not None:
            w = w * scale.reshape(n, -1, 1, 1, 1)
        elif gain != 1:
            w = w * gain
        # 1×1 (ToRGB) on a batch: one matrix product over the pixels, [N, HW, I] @ [N, I, O]; one sample
        # (the network's fused tail) takes the convolution below, which oneDNN runs faster on channels-last.
        if kh == 1 and up == 1 and n > 1:
            h, wd = x.shape[2:]
            pixels = x.permute(0, 2, 3, 1).reshape(n, h * wd, -1)  # a view when `x` is channels-last
            w_t = w.reshape(n, out_ch, -1).transpose(1, 2).to(x.dtype)
            y = torch.bmm(pixels, w_t) if bias is None else torch.baddbmm(bias.reshape(1, 1, -1), pixels, w_t)
            x = y.reshape(n, h, wd, out_ch).permute(0, 3, 1, 2)  # channels-last [N, O, H, W]
        elif n == 1:
            x = conv(x, w[0], bias)
        else:
            # One convolution per sample: a slice of a channels-last batch stays channels-last (a grouped
            # convolution over [1, N·I, H, W] would need an NCHW copy). SynthesisNetwork avoids the
            # concatenation by running the fused tail of the network one sample at a time.
            x = torch.cat([conv(x[i : i + 1], w[i], bias) for i in range(n)])
    else:
        x = conv(x * styles.reshape(n, -1, 1, 1).to(x.dtype), weight, None)
        if scale is None and gain != 1:
            scale = x.new_full((n, out_ch), gain)
        if scale is not None and bias is not None:
            x = torch.addcmul(bias.reshape(1, -1, 1, 1), x, scale.reshape(n, -1, 1, 1).to(x.dtype))
        elif scale is not None:
            x = x * scale.reshape(n, -1, 1, 1).to(x.dtype)
        elif bias is not None:
            x = x + bias.reshape(1, -1, 1, 1)
    if noise is not None:
        x = x.add_(noise.to(x.dtype))
    if activation == "lrelu":
        x = F.leaky_relu_(x, 0.2)
    if clamp is not None and clamp >= 0:
        # Not in place under autograd: the in-place leaky ReLU's backward needs its output unchanged.
        x = x.clamp(-clamp, clamp) if x.requires_grad else x.clamp_(-clamp, clamp)
    return x
