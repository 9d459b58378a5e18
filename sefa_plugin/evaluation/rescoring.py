"""Re-scoring (SeFa paper, Table 2): move along each direction and measure every factor's change.

For direction i, images are rendered at strengths ``-s`` and ``+s`` for the same seeds; the factor
predictor scores both, and the change of factor j is averaged over seeds, in units where 1.0 is the
mean change between two random scenes, so changes of different factors are comparable. Each row of the
matrix, normalised to sum to one, says which factor a direction controls.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..data.shapes import FACTOR_KINDS, FACTOR_NAMES, FACTOR_RANGES
from ..directions.container import Directions

#: Human names used when labelling directions.
FACTOR_LABELS = {
    "background_hue": "background hue",
    "object_hue": "object hue",
    "shape": "object shape",
    "scale": "object scale",
    "rotation": "rotation",
    "x": "x position",
    "y": "y position",
    "lighting": "lighting",
    "floor_height": "floor height",
}


#: Period of the rotation factor as the predictor reads it: a square turned -45° and +45° is the same image.
ROTATION_PERIOD = 90.0


def factor_change(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> torch.Tensor:
    """Per-sample change of every factor, ``[N, len(FACTOR_NAMES)]``, where 1.0 means "as different as two
    random scenes".

    Each change is divided by the mean change between two independent draws of the factor: a third of the
    range for continuous factors, a quarter period for circular ones (hues; rotation, whose period is
    :data:`ROTATION_PERIOD`), and 2/3 of total variation for the 3 shape classes. Rotation changes are
    ignored where either image shows a disc.
    """
    cols = []
    for name in FACTOR_NAMES:
        kind = FACTOR_KINDS[name]
        lo, hi = FACTOR_RANGES[name]
        if kind == "categorical":
            tv = 0.5 * (after["shape_probs"] - before["shape_probs"]).abs().sum(dim=1)
            num_classes = after["shape_probs"].shape[1]
            cols.append(tv / (1.0 - 1.0 / num_classes))
            continue
        delta = (after[name] - before[name]).abs().float()
        period = 1.0 if kind == "circular" else ROTATION_PERIOD if name == "rotation" else None
        if period is not None:
            delta = torch.remainder(delta, period)
            change = torch.minimum(delta, period - delta) / (period / 4.0)
        else:
            change = delta / ((hi - lo) / 3.0)
        if name == "rotation":
            disc = (before["shape"] == 1) | (after["shape"] == 1)
            change = torch.where(disc, torch.zeros_like(change), change)
        cols.append(change)
    return torch.stack(cols, dim=1).float()


@dataclass
class RescoringResult:
    """Mean factor change per direction.

    Attributes:
        matrix: ``[K, F]`` mean normalised change of factor j when moving along direction i.
        factor_names: The F factor names (columns).
        labels: The K direction labels (rows).
        strength: The strength ``s`` (images at ``-s`` and ``+s`` were compared).
    """

    matrix: torch.Tensor
    factor_names: tuple[str, ...]
    labels: list[str]
    strength: float

    def top_factor(self, index: int) -> tuple[str, float]:
        """The factor direction `index` changes most and its share of the row's total change."""
        row = self.matrix[index]
        share = row / row.sum().clamp_min(1e-12)
        j = int(torch.argmax(row))
        return self.factor_names[j], float(share[j])

    def to_markdown(self, digits: int = 2) -> str:
        """The matrix as a Markdown table (rows: directions, columns: factors)."""
        head = "| direction | " + " | ".join(FACTOR_LABELS.get(f, f) for f in self.factor_names) + " |"
        sep = "|---" * (len(self.factor_names) + 1) + "|"
        rows = [
            f"| {label} | " + " | ".join(f"{float(v):.{digits}f}" for v in self.matrix[i]) + " |"
            for i, label in enumerate(self.labels)
        ]
        return "\n".join([head, sep, *rows])


@torch.no_grad()
def rescore_directions(
    pipe,
    directions: Directions,
    predictor,
    indices: Sequence[int] | None = None,
    num_samples: int = 64,
    strength: float = 3.0,
    seed: int = 0,
    truncation_psi: float = 1.0,
    sigma_units: bool = False,
) -> RescoringResult:
    """Build the re-scoring matrix of `directions` on `pipe`'s generator with `predictor`.

    Args:
        pipe: A :class:`~sefa_plugin.pipelines.GANPipeline`.
        directions: The directions to score.
        predictor: A :class:`~sefa_plugin.evaluation.FactorPredictor` (its ``predict`` is used).
        indices: Which directions (default: all).
        num_samples: Seeds per direction (the same seeds for every direction).
        strength: Images at ``-strength`` and ``+strength`` are compared.
        seed: First seed; seeds ``seed … seed + num_samples - 1`` are used.
        truncation_psi: Truncation of the base latents.
        sigma_units: Strength in σ units (needs ``directions.stds``).

    Example:

    >>> from sefa_plugin import DEFAULT_MODEL, DEFAULT_PREDICTOR, SefaPipeline
    >>> from sefa_plugin.evaluation import FactorPredictor
    >>> pipe = SefaPipeline.from_pretrained(DEFAULT_MODEL)
    >>> result = rescore_directions(pipe, pipe.factorize(num_directions=3),
    ...                             FactorPredictor.from_pretrained(DEFAULT_PREDICTOR), num_samples=8)
    >>> tuple(result.matrix.shape)
    (3, 9)
    """
    if num_samples < 1:
        raise ValueError(f"`num_samples` must be ≥ 1, got {num_samples}.")
    if not math.isfinite(strength) or strength <= 0:
        raise ValueError(f"`strength` must be a positive finite number, got {strength}.")
    indices = list(range(len(directions))) if indices is None else [int(i) for i in indices]
    seeds = list(range(seed, seed + num_samples))
    rows = []
    for i in indices:
        out = pipe(
            seeds=seeds,
            directions=directions,
            index=i,
            strengths=[-strength, strength],
            truncation_psi=truncation_psi,
            sigma_units=sigma_units,
            output_type="pt",
        )
        images = out.images.reshape(num_samples, 2, *out.images.shape[1:])
        before, after = predictor.predict(images[:, 0]), predictor.predict(images[:, 1])
        rows.append(factor_change(before, after).mean(dim=0))
    return RescoringResult(
        matrix=torch.stack(rows),
        factor_names=FACTOR_NAMES,
        labels=[directions.labels[i] for i in indices],
        strength=float(strength),
    )
