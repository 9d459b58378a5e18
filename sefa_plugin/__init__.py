"""sefa_plugin: find, edit and share the semantic directions learned by pretrained GANs."""

from .models import StyleGAN2Generator

__all__ = ["StyleGAN2Generator"]
__version__ = "0.1.0"
