"""Tiny seeded models shared by the tests (resolution 16, built in milliseconds)."""

from __future__ import annotations

import torch

from sefa_plugin import StyleGAN2Generator

TINY_STYLEGAN2 = dict(z_dim=16, w_dim=16, img_resolution=16, channel_base=256, channel_max=16, mapping_layers=2)


def tiny_stylegan2(seed: int = 0, trained_like: bool = False, **kwargs) -> StyleGAN2Generator:
    """A tiny StyleGAN2Generator in eval mode; `kwargs` override :data:`TINY_STYLEGAN2`.

    With `trained_like`, biases and noise strengths are non-zero and the average ``w`` is random, as after
    training (fresh initialisation leaves them at zero, which hides mistakes in truncation, noise and bias
    handling).
    """
    torch.manual_seed(seed)
    g = StyleGAN2Generator(**{**TINY_STYLEGAN2, **kwargs}).eval()
    if trained_like:
        with torch.no_grad():
            for name, p in g.named_parameters():
                if name.endswith(("noise_strength", "bias")):
                    p.copy_(torch.randn_like(p) * 0.3)
            g.mapping.w_avg.normal_()
    return g
