"""Training: the project's own GANs (the embedded model's recipe) and the resumable latent discovery."""

from .config import RESUME_OVERRIDABLE, TrainingConfig, build_generator
from .discriminator import Discriminator
from .latent_discovery import LatentDiscoveryConfig, LatentDiscoveryTrainer
from .reconstructor import Reconstructor
from .trainer import Trainer

__all__ = [
    "RESUME_OVERRIDABLE",
    "Discriminator",
    "LatentDiscoveryConfig",
    "LatentDiscoveryTrainer",
    "Reconstructor",
    "Trainer",
    "TrainingConfig",
    "build_generator",
]
