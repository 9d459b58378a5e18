"""Training the project's own GANs (the recipe of the embedded default model)."""

from .discriminator import Discriminator
from .trainer import Trainer, TrainingConfig, build_generator

__all__ = ["Discriminator", "Trainer", "TrainingConfig", "build_generator"]
