"""The reconstructor of latent discovery (Voynov & Babenko, ICML 2020): which direction moved an image, and how far.

It is trained with the direction matrix by :class:`~sefa_plugin.training.latent_discovery.LatentDiscoveryTrainer`
and saved with ``save_pretrained`` beside the directions it was trained for (a ``reconstructor/`` folder).
"""

from __future__ import annotations

import math

import torch
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from torch import nn

from ..utils.checks import is_int

__all__ = ["Reconstructor"]


class Reconstructor(ModelMixin, ConfigMixin):
    """Tells which direction, and how far, moved an image: a small CNN with two heads.

    The original and shifted images are concatenated on channels (``[N, 2C, H, W]``), go through a
    stride-2 convolution stack down to 4×4 (GroupNorm, so results do not depend on the batch, nor on the
    number of processes), then a hidden layer, and two linear heads: logits over the K directions and one
    scalar shift.

    Args:
        num_directions: K, the number of classes.
        img_channels: C of the generator's images.
        img_resolution: Side of the (square) images.
        base_channels: Channels of the first convolution; doubled at each downsampling.
        max_channels: Upper bound on channels.
        hidden_features: Width of the hidden layer before the heads.

    Example:

    >>> import torch
    >>> from sefa_plugin.training.reconstructor import Reconstructor
    >>> r = Reconstructor(num_directions=5, img_channels=3, img_resolution=16)
    >>> logits, shift = r(torch.zeros(2, 3, 16, 16), torch.zeros(2, 3, 16, 16))
    >>> tuple(logits.shape), tuple(shift.shape)
    ((2, 5), (2,))
    """

    @register_to_config
    def __init__(
        self,
        num_directions: int,
        img_channels: int = 3,
        img_resolution: int = 64,
        base_channels: int = 32,
        max_channels: int = 128,
        hidden_features: int = 256,
    ) -> None:
        super().__init__()
        for name, value in (("num_directions", num_directions), ("img_channels", img_channels),
                            ("base_channels", base_channels), ("max_channels", max_channels),
                            ("hidden_features", hidden_features)):  # fmt: skip
            if not is_int(value) or value < 1:
                raise ValueError(f"`{name}` must be a positive int, got {value!r}.")
        if not is_int(img_resolution) or img_resolution < 4:
            raise ValueError(f"`img_resolution` must be an int ≥ 4, got {img_resolution!r}.")
        ch = min(base_channels, max_channels)
        layers: list[nn.Module] = [nn.Conv2d(2 * img_channels, ch, 3, padding=1), nn.LeakyReLU(0.2)]
        res = img_resolution
        while res > 4:
            out = min(ch * 2, max_channels)
            layers += [
                nn.Conv2d(ch, out, 3, stride=2, padding=1),
                nn.GroupNorm(math.gcd(8, out), out),
                nn.LeakyReLU(0.2),
                nn.Conv2d(out, out, 3, padding=1),
                nn.GroupNorm(math.gcd(8, out), out),
                nn.LeakyReLU(0.2),
            ]
            ch, res = out, (res + 1) // 2
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.hidden = nn.Sequential(nn.Flatten(), nn.Linear(ch * 16, hidden_features), nn.LeakyReLU(0.2))
        self.direction_head = nn.Linear(hidden_features, num_directions)
        self.shift_head = nn.Linear(hidden_features, 1)

    def forward(self, original: torch.Tensor, shifted: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Direction logits ``[N, K]`` and predicted shifts ``[N]`` for image pairs ``[N, C, H, W]``."""
        cfg = self.config
        expected = [cfg.img_channels, cfg.img_resolution, cfg.img_resolution]
        for name, x in (("original", original), ("shifted", shifted)):
            if x.ndim != 4 or list(x.shape[1:]) != expected:
                raise ValueError(f"`{name}` must have shape [N, {', '.join(map(str, expected))}], got {list(x.shape)}.")
        if original.shape[0] != shifted.shape[0]:
            raise ValueError(
                f"`original` and `shifted` differ in batch size: {original.shape[0]} vs {shifted.shape[0]}."
            )
        x = torch.cat([original, shifted], dim=1)
        if x.device.type == "cpu":
            # oneDNN's small convolutions and their backward run 1.2–1.5× faster channels-last on CPU (a training
            # step of the fast RCA's reconstructor: benchmarks/RESULTS.md); the result is the same function.
            x = x.contiguous(memory_format=torch.channels_last)
        h = self.hidden(self.pool(self.features(x)))  # [N, hidden]
        return self.direction_head(h), self.shift_head(h).squeeze(1)
