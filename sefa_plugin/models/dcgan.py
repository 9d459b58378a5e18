"""DCGAN generators (Radford et al., ICLR 2016): the SN-GAN "standard CNN" form and the PyTorch-tutorial form.

:class:`DCGANGenerator` is the "standard CNN" generator of the SN-GAN paper (Miyato et al., ICLR 2018), as in
pfnet-research's chainer-gan-lib (``DCGANGenerator``), generalised to any power-of-two resolution:

* ``l0``: linear map from ``z`` to ``C * 16`` features, then ``bn0`` (batch norm over those
  ``C * 16`` features) and ReLU, reshaped to a ``[C, 4, 4]`` map;
* per doubling of the resolution, ``dc{i}``: 4×4 transposed convolution with stride 2 and padding 1,
  then ``bn{i}`` (batch norm over channels) and ReLU;
* ``c{K+1}`` (``K`` = number of upsamplings): 3×3 convolution to image channels, then tanh.

Module names follow chainer-gan-lib (``l0``, ``bn0``, ``dc1``, ``bn1``, …, ``c4`` at 32×32) and the weight
layouts agree with chainer's (``Linear.W`` ``[out, in]``, ``Deconvolution2D.W`` ``[in, out, k, k]``), so
a converter is a key map. The editable latent is ``z`` itself (``latent_space == "z"``); SeFa reads the
weight of ``l0``.

:class:`DCGANTutorialGenerator` is the generator of the PyTorch DCGAN tutorial and of ``pytorch/examples/dcgan``
(also the HugGAN sprint's ``huggan/pytorch/dcgan``): one ``nn.Sequential`` named ``main`` holding a 4×4
transposed convolution from the 1×1 latent (stride 1, no padding), batch norm and ReLU, then per doubling a
4×4 transposed convolution (stride 2, padding 1) halving the channels with batch norm and ReLU, and a last
stride-2 transposed convolution to image channels followed by tanh. Its module indices are the tutorial's
(``main.0`` … ``main.{3K+1}``), so a converter is a key map; SeFa reads ``main.0.weight`` ``[z_dim, C, 4, 4]``
as the ``[C·4·4, z_dim]`` matrix it applies to ``z``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from torch import nn

from .interface import check_generator_config, check_layer_indices, check_parameter_count
from .zspace import INIT_RES, NOISE_MODES, ZSpaceGenerator  # noqa: F401  (NOISE_MODES: this module's before)

#: Upper bound on any layer's channels in :class:`DCGANTutorialGenerator` (checked before allocating).
MAX_CHANNELS = 1 << 14
#: Upper bound on the number of convolution weights of a :class:`DCGANTutorialGenerator` (1 GiB in float32).
MAX_WEIGHTS = 1 << 28


class DCGANGenerator(ZSpaceGenerator, ModelMixin, ConfigMixin):
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

    def latent_weights(self, layers: Sequence[int]) -> list[torch.Tensor]:
        """The weight of ``l0``, ``[C * 16, z_dim]`` (layer 0 only).

        Batch norm after ``l0`` rescales each row at inference; SeFa's default row normalisation removes
        such scales, so the raw linear weight is returned.
        """
        return [self.l0.weight.detach() for _ in check_layer_indices(layers, self.num_ws)]

    def render(self, z: torch.Tensor, noise_mode: str = "const") -> torch.Tensor:
        x = torch.relu(self.bn0(self.l0(z)))
        x = x.reshape(x.shape[0], -1, INIT_RES, INIT_RES)  # [N, C, 4, 4]
        for i in range(1, self.num_upsamplings + 1):
            x = torch.relu(getattr(self, f"bn{i}")(getattr(self, f"dc{i}")(x)))
        return torch.tanh(self.to_image()(x))


class DCGANTutorialGenerator(ZSpaceGenerator, ModelMixin, ConfigMixin):
    """The PyTorch-tutorial DCGAN: (transposed conv → BN → ReLU)* → transposed conv → tanh, from a 1×1 latent.

    ``main`` is laid out exactly as the tutorial's ``nn.Sequential`` (``K = log2(img_resolution) − 2``):

    * ``main.{3i}``: ``ConvTranspose2d(c_in, ngf · 2**(K−1−i), 4, stride, padding)``, stride 1 and padding 0
      for ``i = 0`` (the 1×1 latent becomes a 4×4 map), stride 2 and padding 1 after;
      ``main.{3i+1}``: ``BatchNorm2d``; ``main.{3i+2}``: ``ReLU``;
    * ``main.{3K}``: ``ConvTranspose2d(ngf, img_channels, 4, 2, 1)``; ``main.{3K+1}``: ``Tanh``.

    Args:
        z_dim: Width of the latent ``z`` (the tutorial's ``nz``, HugGAN's ``latent_dim``; 100 there).
        img_resolution: Output resolution, a power of two ≥ 8 (64 in the tutorial).
        img_channels: Output channels (``nc`` / ``num_channels``; 3 for RGB).
        ngf: Channels of the last hidden layer (``ngf`` / ``hidden_size``); the first has ``ngf · 2**(K−1)``.
        conv_bias: Whether the transposed convolutions have biases (the tutorial's have none).

    Weights are initialised as in the tutorial (convolutions N(0, 0.02), batch-norm scales N(1, 0.02)).
    Use ``.eval()`` for generation: in training mode, batch norm normalises with the current batch.

    Example:

    >>> import torch
    >>> from sefa_plugin.models.dcgan import DCGANTutorialGenerator
    >>> g = DCGANTutorialGenerator(z_dim=8, img_resolution=32, ngf=4).eval()
    >>> [tuple(m.weight.shape) for m in g.main if isinstance(m, torch.nn.ConvTranspose2d)]
    [(8, 16, 4, 4), (16, 8, 4, 4), (8, 4, 4, 4), (4, 3, 4, 4)]
    >>> tuple(g(torch.randn(2, 8)).shape)
    (2, 3, 32, 32)
    >>> [tuple(w.shape) for w in g.latent_weights([0])]
    [(256, 8)]
    """

    @register_to_config
    def __init__(
        self,
        z_dim: int = 100,
        img_resolution: int = 64,
        img_channels: int = 3,
        ngf: int = 64,
        conv_bias: bool = False,
    ) -> None:
        super().__init__()
        check_generator_config(img_resolution, z_dim=z_dim, img_channels=img_channels, ngf=ngf)
        if img_resolution < 8:
            raise ValueError(f"`img_resolution` must be ≥ 8 for DCGANTutorialGenerator, got {img_resolution}.")
        num_blocks = int(math.log2(img_resolution)) - 2
        widths = [ngf * 2 ** (num_blocks - 1 - i) for i in range(num_blocks)]
        for name, value in (("z_dim", z_dim), ("img_channels", img_channels), ("ngf · 2**(K−1)", widths[0])):
            if value > MAX_CHANNELS:
                raise ValueError(f"`{name}` must be ≤ {MAX_CHANNELS}, got {value}.")
        chain = [z_dim, *widths, img_channels]
        num_weights = sum(16 * a * b for a, b in itertools.pairwise(chain))
        if num_weights > MAX_WEIGHTS:  # checked before allocating
            raise ValueError(
                f"`z_dim`={z_dim}, `ngf`={ngf} and `img_resolution`={img_resolution} give {num_weights} weights, "
                f"more than the {MAX_WEIGHTS} allowed."
            )
        layers: list[nn.Module] = []
        c_in = z_dim
        for i, width in enumerate(widths):
            stride, padding = (1, 0) if i == 0 else (2, 1)
            layers += [nn.ConvTranspose2d(c_in, width, 4, stride, padding, bias=conv_bias), nn.BatchNorm2d(width)]
            layers.append(nn.ReLU(True))
            c_in = width
        layers += [nn.ConvTranspose2d(c_in, img_channels, 4, 2, 1, bias=conv_bias), nn.Tanh()]
        self.main = nn.Sequential(*layers)
        self.num_blocks = num_blocks
        self._init_weights()

    def _init_weights(self) -> None:
        for module in self.main:
            if isinstance(module, nn.ConvTranspose2d):
                nn.init.normal_(module.weight, 0.0, 0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.normal_(module.weight, 1.0, 0.02)
                nn.init.zeros_(module.bias)

    def latent_weights(self, layers: Sequence[int]) -> list[torch.Tensor]:
        """``main.0.weight`` ``[z_dim, C, 4, 4]`` as the ``[C·4·4, z_dim]`` matrix it applies to ``z`` (layer 0 only).

        A transposed convolution on a 1×1 input is the linear map ``out[c, i, j] = Σ_k z_k · W[k, c, i, j]``.
        Batch norm after it rescales channels at inference; SeFa's default row normalisation removes such
        scales, so the raw weight is returned.
        """
        weight = self.main[0].weight.detach()
        matrix = weight.reshape(weight.shape[0], -1).T.contiguous()
        return [matrix for _ in check_layer_indices(layers, self.num_ws)]

    def render(self, z: torch.Tensor, noise_mode: str = "const") -> torch.Tensor:
        return self.main(z[:, :, None, None])  # the latent as a 1×1 map [N, z_dim, 1, 1]
