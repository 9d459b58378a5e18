"""GAN generator families, one file each, all implementing :class:`EditableGenerator`."""

from .interface import LATENT_SPACES, EditableGenerator
from .stylegan2 import StyleGAN2Generator

__all__ = ["LATENT_SPACES", "EditableGenerator", "StyleGAN2Generator"]
