"""Discovery pipelines: one ``DiffusionPipeline`` per method over a shared generator loader."""

from .base import GANPipeline, GANPipelineOutput
from .sefa import SefaPipeline

__all__ = ["GANPipeline", "GANPipelineOutput", "SefaPipeline"]
