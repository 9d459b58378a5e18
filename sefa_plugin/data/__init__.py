"""The procedural ground-truth scene dataset."""

from .shapes import (
    FACTOR_KINDS,
    FACTOR_NAMES,
    FACTOR_RANGES,
    SHAPES,
    ShapesBatch,
    ShapesDataset,
    render_factors,
    render_scenes,
    sample_factors,
)

__all__ = [
    "FACTOR_KINDS",
    "FACTOR_NAMES",
    "FACTOR_RANGES",
    "SHAPES",
    "ShapesBatch",
    "ShapesDataset",
    "render_factors",
    "render_scenes",
    "sample_factors",
]
