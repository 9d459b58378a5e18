"""DCGAN generator (Radford et al., ICLR 2016) in the form used by SN-GAN (Miyato et al., ICLR 2018).

This is the "standard CNN" generator of the SN-GAN paper, as in pfnet-research's chainer-gan-lib
(``DCGANGenerator``), generalised to any power-of-two resolution:

* ``l0``: linear map from ``z`` to ``C * 16`` features, then ``bn0`` (batch norm over those
  ``C * 16`` features) and ReLU, reshaped to a ``[C, 4, 4]`` map;
* per doubling of the resolution, ``dc{i}``: 4×4 transposed convolution with stride 2 and padding 1,
  then ``bn{i}`` (batch norm over channels) and ReLU;
* ``c{K+1}`` (``K`` = number of upsamplings): 3×3 convolution to image channels, then tanh.

Module names follow chainer-gan-lib (``l0``, ``bn0``, ``dc1``, ``bn1``, …, ``c4`` at 32×32) and the weight
layouts agree with chainer's (``Linear.W`` ``[out, in]``, ``Deconvolution2D.W`` ``[in, out, k, k]``), so
a converter is a key map. The editable latent is ``z`` itself (``latent_space == "z"``); SeFa reads the
weight of ``l0``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from torch import nn

from .interface import EditableGenerator, check_generator_config, check_layer_indices, check_parameter_count

NOISE_MODES = ("random", "const", "none")

#: Side of the first feature map.
INIT_RES = 4


class DCGANGenerator(ModelMixin, ConfigMixin, EditableGenerator):
    """DCGAN / SN-GAN generator: linear → BN → ReLU → (transposed conv → BN → ReLU)* → conv 3×3 → tanh.

    Args:
        z_dim: Width of the latent ``z`` (128 in SN-GAN).
        img_resolution: Output resolution, a power of two ≥ 4 (32 for CIFAR-10; SN-GAN's 48×48 STL-10
            model starts from 6×6 and is not covered).
        img_channels: Output channels (3 for RGB).
        channel_base: Channels at resolution ``r`` are ``min(channel_base // r, channel_max)``
            (2048 with ``channel_max=512`` gives SN-GAN's 512-256-128-64 at 4-8-16-32).
        channel_max: Upper bound on channels per layer.

    Weights are initialised from N(0, 0.02) as in DCGAN. Use ``.eval()`` for generation: in training
    mode, batch norm normalises with the statistics of the current batch.

    Example:

    >>> import torch
    >>> from sefa_plugin.models import DCGANGenerator
    >>> g = DCGANGenerator(z_dim=8, img_resolution=16, channel_base=128, channel_max=16).eval()
    >>> g.num_ws, g.latent_dim, g.layer_resolutions()
    (1, 8, [4])
    >>> img = g(torch.randn(2, 8))
    >>> tuple(img.shape), bool(img.abs().max() <= 1)
    ((2, 3, 16, 16), True)
    >>> [tuple(w.shape) for w in g.latent_weights([0])]
    [(256, 8)]
    """

    latent_space = "z"

    @register_to_config
    def __init__(
        self,
        z_dim: int = 128,
        img_resolution: int = 32,
        img_channels: int = 3,
        channel_base: int = 2048,
        channel_max: int = 512,
    ) -> None:
        super().__init__()
        check_generator_config(
            img_resolution, channel_base, z_dim=z_dim, img_channels=img_channels, channel_max=channel_max
        )
        check_parameter_count(self)

        def channels(res: int) -> int:
            return min(channel_base // res, channel_max)

        self.block_resolutions = [2**i for i in range(2, int(math.log2(img_resolution)) + 1)]
        self.num_upsamplings = len(self.block_resolutions) - 1
        c0 = channels(INIT_RES)
        self.l0 = nn.Linear(z_dim, c0 * INIT_RES * INIT_RES)
        self.bn0 = nn.BatchNorm1d(c0 * INIT_RES * INIT_RES)
        for i, res in enumerate(self.block_resolutions[1:], start=1):
            setattr(self, f"dc{i}", nn.ConvTranspose2d(channels(res // 2), channels(res), 4, stride=2, padding=1))
            setattr(self, f"bn{i}", nn.BatchNorm2d(channels(res)))
        setattr(
            self,
            f"c{self.num_upsamplings + 1}",
            nn.Conv2d(channels(img_resolution), img_channels, 3, padding=1),
        )
        self._init_weights()

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)

    def to_image(self) -> nn.Conv2d:
        """The final 3×3 convolution to image channels (``c{K+1}``)."""
        return getattr(self, f"c{self.num_upsamplings + 1}")

    # ------------------------------------------------------------------ NVIDIA-style call
    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        noise_mode: str = "const",
    ) -> torch.Tensor:
        """Generate images in [-1, 1], ``[N, img_channels, img_resolution, img_resolution]``."""
        latents = self.sample_latents(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesize(latents, noise_mode=noise_mode)

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
        """The weight of ``l0``, ``[C * 16, z_dim]`` (layer 0 only).

        Batch norm after ``l0`` rescales each row at inference; SeFa's default row normalisation removes
        such scales, so the raw linear weight is returned.
        """
        return [self.l0.weight.detach() for _ in check_layer_indices(layers, self.num_ws)]

    def sample_latents(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
    ) -> torch.Tensor:
        """``z`` itself as editable latents ``[N, 1, z_dim]``.

        The generator is unconditional, so `c` must be None; it keeps no average latent, so
        `truncation_psi` must be 1 (`truncation_cutoff` then has no effect and is ignored).
        """
        if c is not None:
            raise ValueError("`c` was given but DCGANGenerator is unconditional.")
        if truncation_psi != 1:
            raise ValueError(
                f"`truncation_psi` must be 1 for DCGANGenerator: it edits z directly and has no average "
                f"latent to truncate towards; got {truncation_psi}."
            )
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"`z` must have shape [N, {self.latent_dim}], got {list(z.shape)}.")
        return z.to(self.device, torch.float32).unsqueeze(1)

    def synthesize(self, latents: torch.Tensor, noise_mode: str = "const") -> torch.Tensor:
        """Render latents ``[N, 1, z_dim]`` to images in [-1, 1]; `noise_mode` is checked, then unused."""
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"`noise_mode` must be one of {NOISE_MODES}, got {noise_mode!r}.")
        if latents.ndim != 3 or latents.shape[1] != 1 or latents.shape[2] != self.latent_dim:
            raise ValueError(f"`latents` must have shape [N, 1, {self.latent_dim}], got {list(latents.shape)}.")
        x = torch.relu(self.bn0(self.l0(latents[:, 0].to(self.device, torch.float32))))
        x = x.reshape(x.shape[0], -1, INIT_RES, INIT_RES)  # [N, C, 4, 4]
        for i in range(1, self.num_upsamplings + 1):
            x = torch.relu(getattr(self, f"bn{i}")(getattr(self, f"dc{i}")(x)))
        return torch.tanh(self.to_image()(x))
