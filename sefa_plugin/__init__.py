"""sefa_plugin: find, edit and share the semantic directions learned by pretrained GANs.

>>> from sefa_plugin import DEFAULT_MODEL, SefaPipeline
>>> pipe = SefaPipeline.from_pretrained(DEFAULT_MODEL)
>>> directions = pipe.factorize(layers="all", num_directions=4)
>>> len(directions)
4
"""

from .directions.container import Directions, DirectionsMismatchError
from .embedded import DEFAULT_MODEL, DEFAULT_PREDICTOR
from .models import EditableGenerator, StyleGAN2Generator
from .pipelines import (
    BoundaryPipeline,
    GANPipeline,
    GANPipelineOutput,
    GANSpacePipeline,
    LatentDiscoveryOutput,
    LatentDiscoveryPipeline,
    SefaPipeline,
)
from .version import __version__

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_PREDICTOR",
    "BoundaryPipeline",
    "Directions",
    "DirectionsMismatchError",
    "EditableGenerator",
    "GANPipeline",
    "GANPipelineOutput",
    "GANSpacePipeline",
    "LatentDiscoveryOutput",
    "LatentDiscoveryPipeline",
    "SefaPipeline",
    "StyleGAN2Generator",
    "__version__",
]
