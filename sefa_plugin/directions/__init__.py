"""Latent directions: the `Directions` container, layer selection, and one pure tensor core per method."""

from .container import Directions, DirectionsMismatchError
from .layers import parse_layers
from .sefa import sefa_factorize

__all__ = ["Directions", "DirectionsMismatchError", "parse_layers", "sefa_factorize"]
