"""Naming directions: which factor of the scene a direction changes, by the factor predictor.

One definition, used by ``sefa demo``, the editor's suggestions and the benchmarks: render
``num_samples`` seeds at ``-strength`` and ``+strength`` along the direction, score both with the
predictor, and take each factor's mean normalised change (:func:`~.rescoring.factor_change`: 1.0 is
the change between two random scenes). The **share** of a factor is its change divided by the sum of
all factors' changes; the direction is named after the factor with the largest share when that share
is at least :data:`MIXED_SHARE`, and called *mixed* otherwise (its two largest factors are named).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..directions.container import Directions
from .rescoring import FACTOR_LABELS, rescore_directions

#: Below this share of the total change, a direction's change is spread over several factors: "mixed".
MIXED_SHARE = 0.5
#: The labelling strength, as a fraction of the largest end of ``directions.strength_range``.
STRENGTH_FRACTION = 0.6


@dataclass(frozen=True)
class DirectionLabel:
    """What one direction changes.

    Attributes:
        factor: The factor with the largest share (a name of :data:`~sefa_plugin.data.shapes.FACTOR_NAMES`).
        share: That factor's share of the direction's total change, in [0, 1].
        runner_up: The factor with the second-largest share.
        runner_up_share: Its share.
    """

    factor: str
    share: float
    runner_up: str
    runner_up_share: float

    @property
    def mixed(self) -> bool:
        """Whether no factor holds at least :data:`MIXED_SHARE` of the change."""
        return self.share < MIXED_SHARE

    @property
    def label(self) -> str:
        """``"x position"``, or ``"mixed (x position / y position)"`` for a spread change."""
        name = FACTOR_LABELS.get(self.factor, self.factor)
        if not self.mixed:
            return name
        return f"mixed ({name} / {FACTOR_LABELS.get(self.runner_up, self.runner_up)})"

    def __str__(self) -> str:
        return f"{self.label} ({self.share:.2f})"


def label_directions(
    pipe,
    directions: Directions,
    predictor,
    indices: Sequence[int] | None = None,
    num_samples: int = 32,
    strength: float | None = None,
    seed: int = 1000,
) -> list[DirectionLabel]:
    """Name what each direction changes (see the module docstring for the definition of the share).

    Args:
        pipe: A :class:`~sefa_plugin.pipelines.GANPipeline` of the embedded model (the predictor knows its scenes).
        directions: The directions.
        predictor: A :class:`~sefa_plugin.evaluation.FactorPredictor`.
        indices: Which directions (default: all).
        num_samples: Seeds per direction (``seed … seed + num_samples - 1``, the same for every direction).
        strength: Images at ``±strength`` are compared (default: :data:`STRENGTH_FRACTION` of the largest
            end of ``directions.strength_range``, so every method is labelled within its own slider range).
        seed: First seed.

    Example:

    >>> from sefa_plugin import DEFAULT_MODEL, DEFAULT_PREDICTOR, SefaPipeline
    >>> from sefa_plugin.evaluation import FactorPredictor
    >>> pipe = SefaPipeline.from_pretrained(DEFAULT_MODEL)
    >>> labels = label_directions(pipe, pipe.factorize(num_directions=2),
    ...                           FactorPredictor.from_pretrained(DEFAULT_PREDICTOR), num_samples=4)
    >>> len(labels), 0.0 <= labels[0].share <= 1.0
    (2, True)
    """
    if strength is None:
        strength = STRENGTH_FRACTION * max(abs(v) for v in directions.strength_range)
    result = rescore_directions(
        pipe, directions, predictor, indices=indices, num_samples=num_samples, strength=strength, seed=seed
    )
    labels = []
    for row in result.matrix:
        share = row / row.sum().clamp_min(1e-12)
        top = share.argsort(descending=True)
        first, second = int(top[0]), int(top[1])
        labels.append(
            DirectionLabel(
                factor=result.factor_names[first],
                share=float(share[first]),
                runner_up=result.factor_names[second],
                runner_up_share=float(share[second]),
            )
        )
    return labels
