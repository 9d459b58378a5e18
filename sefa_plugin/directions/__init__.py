"""Latent directions: the `Directions` container, layer selection, and one pure tensor core per method."""

from .boundary import fit_boundary, project_orthogonal
from .container import Directions, DirectionsMismatchError
from .ganspace import StreamingPCA
from .importers import IMPORT_FORMATS, import_directions
from .layers import parse_layers
from .sefa import sefa_eigh, sefa_factorize, sefa_gram

__all__ = [
    "IMPORT_FORMATS",
    "Directions",
    "DirectionsMismatchError",
    "StreamingPCA",
    "fit_boundary",
    "import_directions",
    "parse_layers",
    "project_orthogonal",
    "sefa_eigh",
    "sefa_factorize",
    "sefa_gram",
]
