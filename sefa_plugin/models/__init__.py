"""GAN generator families, one file each, all implementing :class:`EditableGenerator`."""

from .biggan import BigGANGenerator
from .dcgan import DCGANGenerator, DCGANTutorialGenerator
from .interface import LATENT_SPACES, EditableGenerator
from .lightweight_gan import LightweightGANGenerator
from .pggan import PGGANGenerator
from .sngan_resnet import SNGANResNetGenerator
from .stylegan import StyleGANGenerator
from .stylegan2 import StyleGAN2Generator
from .stylegan3 import StyleGAN3Generator

__all__ = [
    "LATENT_SPACES",
    "BigGANGenerator",
    "DCGANGenerator",
    "DCGANTutorialGenerator",
    "EditableGenerator",
    "LightweightGANGenerator",
    "PGGANGenerator",
    "SNGANResNetGenerator",
    "StyleGAN2Generator",
    "StyleGAN3Generator",
    "StyleGANGenerator",
]
