"""Discovery pipelines: one ``DiffusionPipeline`` per method over a shared generator loader."""

from .base import GANPipeline, GANPipelineOutput
from .boundary import BoundaryPipeline
from .ganspace import GANSpacePipeline
from .latent_discovery import LatentDiscoveryOutput, LatentDiscoveryPipeline
from .sefa import SefaPipeline

__all__ = [
    "BoundaryPipeline",
    "GANPipeline",
    "GANPipelineOutput",
    "GANSpacePipeline",
    "LatentDiscoveryOutput",
    "LatentDiscoveryPipeline",
    "SefaPipeline",
]
