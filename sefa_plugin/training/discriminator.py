"""StyleGAN2's residual discriminator, used to train the project's own generators."""

from __future__ import annotations

import math

import torch
from torch import nn

from ..models.ops import Conv2dLayer, FullyConnectedLayer


class DiscriminatorBlock(nn.Module):
    """Two 3×3 convolutions (the second halves the resolution) plus a 1×1 residual skip."""

    def __init__(self, in_channels: int, out_channels: int, from_rgb: bool, img_channels: int) -> None:
        super().__init__()
        if from_rgb:
            self.fromrgb = Conv2dLayer(img_channels, in_channels, kernel_size=1, activation="lrelu")
        self.conv0 = Conv2dLayer(in_channels, in_channels, kernel_size=3, activation="lrelu")
        self.conv1 = Conv2dLayer(in_channels, out_channels, kernel_size=3, activation="lrelu", down=2)
        self.skip = Conv2dLayer(in_channels, out_channels, kernel_size=1, bias=False, down=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if hasattr(self, "fromrgb"):
            x = self.fromrgb(x)
        y = self.skip(x, gain=math.sqrt(0.5))
        return y + self.conv1(self.conv0(x), gain=math.sqrt(0.5))


class Discriminator(nn.Module):
    """Residual discriminator with a minibatch-standard-deviation epilogue at 4×4.

    Args:
        img_resolution: Input resolution (power of two ≥ 8).
        img_channels: Input channels.
        channel_base: Channels at resolution ``r`` are ``min(channel_base // r, channel_max)``.
        channel_max: Upper bound on channels.
        mbstd_group_size: Group size of the minibatch standard-deviation feature.
        num_aux_classes: Size of an auxiliary classification head on the penultimate features (0: none);
            the trainer uses it to make the discriminator predict the object shape of real scenes.

    Example:

    >>> import torch
    >>> from sefa_plugin.training import Discriminator
    >>> d = Discriminator(16, channel_base=128, channel_max=16, num_aux_classes=3)
    >>> x = torch.randn(4, 3, 16, 16)
    >>> d(x).shape, d.features(x).shape, d.aux(d.features(x)).shape
    (torch.Size([4, 1]), torch.Size([4, 16]), torch.Size([4, 3]))
    """

    def __init__(
        self,
        img_resolution: int,
        img_channels: int = 3,
        channel_base: int = 32768,
        channel_max: int = 512,
        mbstd_group_size: int = 4,
        num_aux_classes: int = 0,
    ) -> None:
        super().__init__()
        log2 = int(math.log2(img_resolution))
        if img_resolution < 8 or 2**log2 != img_resolution:
            raise ValueError(f"`img_resolution` must be a power of two ≥ 8, got {img_resolution}.")
        self.block_resolutions = [2**i for i in range(log2, 2, -1)]
        ch = {r: min(channel_base // r, channel_max) for r in [*self.block_resolutions, 4]}
        for res in self.block_resolutions:
            block = DiscriminatorBlock(ch[res], ch[res // 2], res == img_resolution, img_channels)
            setattr(self, f"b{res}", block)
        self.mbstd_group_size = mbstd_group_size
        self.conv = Conv2dLayer(ch[4] + 1, ch[4], kernel_size=3, activation="lrelu")
        self.fc = FullyConnectedLayer(ch[4] * 16, ch[4], activation="lrelu")
        self.out = FullyConnectedLayer(ch[4], 1)
        if num_aux_classes:
            self.aux = FullyConnectedLayer(ch[4], num_aux_classes)

    def _minibatch_std(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = min(self.mbstd_group_size, n)
        if n % g:
            g = 1
        y = x.reshape(g, -1, c, h, w)
        y = (y - y.mean(dim=0)).square().mean(dim=0).add(1e-8).sqrt()  # [N/g, C, H, W]
        y = y.mean(dim=[1, 2, 3]).reshape(-1, 1, 1, 1).repeat(g, 1, h, w)  # [N, 1, H, W]
        return torch.cat([x, y], dim=1)

    def features(self, img: torch.Tensor) -> torch.Tensor:
        """The penultimate activations ``[N, C]`` that the output layer turns into logits."""
        x = img
        for res in self.block_resolutions:
            x = getattr(self, f"b{res}")(x)
        x = self.conv(self._minibatch_std(x))
        return self.fc(x.flatten(1))

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return self.out(self.features(img))  # [N, 1] logits
