"""sefa_plugin: find, edit and share the semantic directions learned by pretrained GANs.

>>> from sefa_plugin import DEFAULT_MODEL, SefaPipeline
>>> pipe = SefaPipeline.from_pretrained(DEFAULT_MODEL)
>>> directions = pipe.factorize(layers="all", num_directions=4)
>>> len(directions)
4
"""

from pathlib import Path as _Path

from .directions.container import Directions, DirectionsMismatchError
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

_ASSETS = _Path(__file__).resolve().parent / "assets"
#: The embedded default: a 64×64 StyleGAN2 trained by this project on procedural scenes (a pipeline folder).
DEFAULT_MODEL = str(_ASSETS / "stylegan2-shapes64")
#: The factor predictor shipped with the embedded model (a ``FactorPredictor`` folder).
DEFAULT_PREDICTOR = str(_ASSETS / "predictor")

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
]
__version__ = "0.1.0"
