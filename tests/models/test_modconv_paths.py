"""Modulated convolution paths of StyleGAN2: fused, unfused and the per-layer mix agree with the formula."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from factories import tiny_stylegan2

from sefa_plugin.models.modconv import modulated_conv2d, prefer_fused_modconv
from sefa_plugin.models.ops import bias_act, conv2d_up2, fir2d, make_resample_filter, upfirdn2d, upsample2d


def reference_layer(x, weight, styles, noise, up, f, demodulate, bias, activation, gain, clamp):
    """The StyleGAN2 layer written out: per-sample modulated (demodulated) weights, conv, noise, bias_act."""
    outs = []
    for i in range(x.shape[0]):
        w = weight * styles[i].reshape(1, -1, 1, 1)
        if demodulate:
            w = w * (w.square().sum(dim=[1, 2, 3], keepdim=True) + 1e-8).rsqrt()
        xi = x[i : i + 1]
        if up == 2:
            # Zero insertion, 3×3 convolution... as NVIDIA: transposed conv (stride 2), then the FIR.
            y = F.conv_transpose2d(xi, w.transpose(0, 1), stride=2)
            y = upfirdn2d(y, f, padding=(1, 1, 1, 1), gain=4)
        else:
            y = F.conv2d(xi, w, padding=weight.shape[-1] // 2)
        outs.append(y)
    y = torch.cat(outs)
    if noise is not None:
        y = y + noise
    return bias_act(y, bias, activation=activation, gain=gain, clamp=clamp)


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("up", [1, 2])
@pytest.mark.parametrize("channels_last", [True, False])
@pytest.mark.parametrize(
    "demodulate,bias,activation,gain,clamp",
    [(True, True, "lrelu", 2**0.5, None), (True, True, "lrelu", 2**0.5, 0.5), (False, True, "linear", 1.0, None),
     (True, False, "linear", 3.0, None)],
)  # fmt: skip
def test_every_path_matches_the_formula(fused, up, channels_last, demodulate, bias, activation, gain, clamp):
    gen = torch.Generator().manual_seed(0)
    n, cin, cout, res = 3, 6, 5, 8
    x = torch.randn(n, cin, res, res, generator=gen)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    weight = torch.randn(cout, cin, 3, 3, generator=gen)
    styles = torch.randn(n, cin, generator=gen) + 1
    b = torch.randn(cout, generator=gen) if bias else None
    noise = torch.randn(n, 1, res * up, res * up, generator=gen)
    f = make_resample_filter()
    ours = modulated_conv2d(
        x, weight, styles, noise=noise, up=up, resample_filter=f, demodulate=demodulate, fused_modconv=fused,
        bias=b, activation=activation, gain=gain, clamp=clamp,
    )  # fmt: skip
    ref = reference_layer(x, weight, styles, noise, up, f, demodulate, b, activation, gain, clamp)
    assert ours.shape == ref.shape
    assert torch.allclose(ours, ref, atol=1e-5 * ref.abs().max(), rtol=0)


def test_one_by_one_fused_is_a_batched_product():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 7, 5, 5, generator=gen).contiguous(memory_format=torch.channels_last)
    weight, styles, bias = torch.randn(3, 7, 1, 1, generator=gen), torch.randn(2, 7, generator=gen), torch.randn(3)
    for fused in (True, False):
        ours = modulated_conv2d(x, weight, styles, demodulate=False, fused_modconv=fused, bias=bias)
        ref = reference_layer(x, weight, styles, None, 1, None, False, bias, "linear", 1.0, None)
        assert torch.allclose(ours, ref, atol=1e-5)


def test_bad_activation_and_gain():
    x, w, s = torch.randn(1, 2, 4, 4), torch.randn(2, 2, 3, 3), torch.randn(1, 2)
    with pytest.raises(ValueError, match="`activation`"):
        modulated_conv2d(x, w, s, activation="relu")
    with pytest.raises(ValueError, match="`gain`"):
        modulated_conv2d(x, w, s, gain=0.0)


@pytest.mark.parametrize("taps", [(1, 3, 3, 1), (1, 2, 4, 1), (1, 1)])
def test_fir_shortcuts_equal_upfirdn2d(taps):
    x = torch.randn(2, 3, 6, 6, generator=torch.Generator().manual_seed(2))
    f = make_resample_filter(taps)
    fh = f.shape[0]
    p0, p1 = (fh + 1) // 2, (fh - 2) // 2
    ref = upfirdn2d(x, f, up=2, padding=(p0, p1, p0, p1), gain=4)
    assert torch.allclose(upsample2d(x, f), ref, atol=1e-6)  # one transposed depthwise convolution
    assert torch.allclose(fir2d(x, f, 1, gain=2.0), upfirdn2d(x, f, padding=(1, 1, 1, 1), gain=2.0), atol=1e-6)
    w, bias = torch.randn(4, 3, 3, 3), torch.randn(4)
    assert torch.allclose(conv2d_up2(x, w, f, bias=bias), conv2d_up2(x, w, f) + bias.reshape(1, -1, 1, 1), atol=1e-5)


def test_the_mix_equals_fused_and_unfused_on_a_model_that_mixes():
    g = tiny_stylegan2(0, trained_like=True, img_resolution=32)  # 16 channels up to 16², 8 at 32²
    rule = [b.prefers_fused() for b in g.synthesis.blocks()]
    assert rule == [False, False, False, True]  # 8·3² ≤ 16² from b32.conv0 on
    assert prefer_fused_modconv(16, 16, 3, 16) and not prefer_fused_modconv(16, 16, 3, 8)
    z = torch.randn(4, 16, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        ws = g.sample_latents(z)
        mix = g.synthesize(ws)  # the default: per layer, the fused tail one sample at a time
        fused = g.synthesis(ws, fused_modconv=True)
        unfused = g.synthesis(ws, fused_modconv=False)
        one_by_one = torch.cat([g.synthesize(ws[i : i + 1]) for i in range(4)])
    assert mix.is_contiguous() and mix.shape == (4, 3, 32, 32)
    for other in (fused, unfused, one_by_one):
        assert torch.allclose(mix, other, atol=1e-5)


@pytest.mark.parametrize("conv_clamp", [None, 0.5])
def test_gradients_agree_between_paths_including_double_backward(conv_clamp):
    g = tiny_stylegan2(0, trained_like=True, img_resolution=32, conv_clamp=conv_clamp).train()
    z = torch.randn(3, 16, generator=torch.Generator().manual_seed(4))
    grads = {}
    for fused in (None, True, False):
        g.zero_grad()
        ws = g.mapping(z).detach().requires_grad_(True)
        img = g.synthesis(ws, fused_modconv=fused)
        (grad_ws,) = torch.autograd.grad(img.square().sum(), ws, create_graph=True)  # as R1 / path length do
        grad_ws.square().sum().backward()
        grads[fused] = [grad_ws.detach()] + [p.grad.clone() for p in g.synthesis.parameters()]
    for fused in (None, True):
        for ours, ref in zip(grads[fused], grads[False], strict=True):
            assert torch.allclose(ours, ref, atol=1e-4 * (ref.abs().max() + 1e-6), rtol=1e-4)


def test_autograd_runs_unfused_and_inference_mixes(monkeypatch):
    """The default picks per layer only when no gradient is recorded; under autograd every layer is unfused."""
    import sefa_plugin.models.stylegan2 as sg2

    g = tiny_stylegan2(0, trained_like=True, img_resolution=32)
    seen = []
    real = sg2.modulated_conv2d
    monkeypatch.setattr(sg2, "modulated_conv2d", lambda *a, **k: seen.append(k["fused_modconv"]) or real(*a, **k))
    ws = g.sample_latents(torch.randn(2, 16, generator=torch.Generator().manual_seed(5))).detach()
    with torch.no_grad():
        g.synthesis(ws)
    assert True in seen and False in seen  # the per-layer mix (see the test above)
    seen.clear()
    g.synthesis(ws.clone().requires_grad_(True))  # inversion: gradients for the latents
    assert seen and not any(seen)
    seen.clear()
    g.synthesis(ws)  # weights require grad (a module in training): unfused as well
    assert seen and not any(seen)
    seen.clear()
    g.requires_grad_(False)
    g.synthesis(ws)  # nothing to differentiate: the inference mix again
    assert True in seen and False in seen
