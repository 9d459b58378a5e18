"""SN-GAN ResNet generator (Miyato et al., ICLR 2018), as used by Voynov & Babenko (ICML 2020).

This is the residual generator of the SN-GAN paper in the form of anvoynov/GANLatentDiscovery's
``models/SNGAN/sn_gen_resnet.py`` (their MNIST and Anime Faces models, ``sn_resnet32`` and ``sn_resnet64``),
for any number of blocks:

* ``dense``: linear map from ``z`` to ``channels[0] * 16`` features, reshaped to a ``[channels[0], 4, 4]`` map
  (no normalisation or activation here: the first block starts with them);
* ``blocks.{i}``: batch norm → ReLU → nearest 2× upsampling → 3×3 convolution → batch norm → ReLU → 3×3
  convolution, plus a shortcut: nearest 2× upsampling, followed by a 3×3 convolution (``shortcut``) when the
  block changes the number of channels;
* ``norm_out`` → ReLU → ``to_rgb`` (3×3 convolution) → tanh.

The resolution is ``4 · 2**(len(channels) - 1)``. The editable latent is ``z`` itself (``latent_space ==
"z"``); SeFa reads the weight of ``dense``, ``[channels[0] * 16, z_dim]``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise

import torch
import torch.nn.functional as F
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from torch import nn

from .interface import check_generator_config, check_layer_indices, check_parameter_count
from .limits import CONFIG_LIMITS, is_channel_width
from .zspace import INIT_RES, ZSpaceGenerator


class ResidualUpBlock(nn.Module):
    """BN → ReLU → up 2× → conv 3×3 → BN → ReLU → conv 3×3, plus an upsampled (and projected) shortcut."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm2 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        # A projection only when the width changes, as in the SN-GAN code.
        self.shortcut = nn.Conv2d(in_channels, out_channels, 3, padding=1) if in_channels != out_channels else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(torch.relu(self.norm1(x)), scale_factor=2, mode="nearest")
        h = self.conv2(torch.relu(self.norm2(self.conv1(h))))
        skip = F.interpolate(x, scale_factor=2, mode="nearest")
        return h + (skip if self.shortcut is None else self.shortcut(skip))


class SNGANResNetGenerator(ZSpaceGenerator, ModelMixin, ConfigMixin):
    """SN-GAN ResNet generator: dense → residual up-blocks → BN → ReLU → conv 3×3 → tanh; SeFa edits ``z``.

    Args:
        z_dim: Width of the latent ``z``.
        img_resolution: Output resolution, ``4 · 2**(len(channels) - 1)``.
        img_channels: Output channels (1 for MNIST, 3 for RGB).
        channels: Feature channels at 4×4, then after each residual block (``[256] * 4`` for SN-GAN's 32×32
            models, ``[1024, 512, 256, 128, 64]`` for 64×64).

    Use ``.eval()`` for generation: in training mode, batch norm uses the statistics of the current batch.

    Example:

    >>> import torch
    >>> from sefa_plugin.models import SNGANResNetGenerator
    >>> g = SNGANResNetGenerator(z_dim=8, img_resolution=16, channels=[16, 8, 8]).eval()
    >>> g.num_ws, g.latent_dim, g.layer_resolutions()
    (1, 8, [4])
    >>> img = g(torch.randn(2, 8))
    >>> tuple(img.shape), bool(img.abs().max() <= 1)
    ((2, 3, 16, 16), True)
    >>> [tuple(w.shape) for w in g.latent_weights([0])]
    [(256, 8)]
    """

    @register_to_config
    def __init__(
        self,
        z_dim: int = 128,
        img_resolution: int = 32,
        img_channels: int = 3,
        channels: Sequence[int] = (256, 256, 256, 256),
    ) -> None:
        super().__init__()
        check_generator_config(img_resolution, z_dim=z_dim, img_channels=img_channels)
        channels = list(channels)
        if len(channels) != int(math.log2(img_resolution)) - 1 or not all(is_channel_width(c) for c in channels):
            raise ValueError(
                f"`channels` must hold log2(img_resolution) - 1 = {int(math.log2(img_resolution)) - 1} widths "
                f"(integers in [1, {CONFIG_LIMITS['channel_max'][1]}]: 4×4, then one per block) for `img_resolution` "
                f"{img_resolution}, got {channels}."
            )
        check_parameter_count(self)
        self.dense = nn.Linear(z_dim, channels[0] * INIT_RES * INIT_RES)
        self.blocks = nn.ModuleList(ResidualUpBlock(a, b) for a, b in pairwise(channels))
        self.norm_out = nn.BatchNorm2d(channels[-1])
        self.to_rgb = nn.Conv2d(channels[-1], img_channels, 3, padding=1)

    def latent_weights(self, layers: Sequence[int]) -> list[torch.Tensor]:
        """The weight of ``dense``, ``[channels[0] * 16, z_dim]`` (layer 0 only)."""
        return [self.dense.weight.detach() for _ in check_layer_indices(layers, self.num_ws)]

    def render(self, z: torch.Tensor, noise_mode: str) -> torch.Tensor:
        """``z`` ``[N, z_dim]`` to images in [-1, 1]; the model has no noise (`noise_mode` is unused)."""
        x = self.dense(z).reshape(z.shape[0], -1, INIT_RES, INIT_RES)  # [N, channels[0], 4, 4]
        for block in self.blocks:
            x = block(x)
        return torch.tanh(self.to_rgb(torch.relu(self.norm_out(x))))
