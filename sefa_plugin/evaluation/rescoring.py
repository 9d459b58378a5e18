"""Re-scoring (SeFa paper, Table 2): move along each direction and measure every factor's change.

For direction i, images are rendered at strengths ``-s`` and ``+s`` for the same seeds; the factor
predictor scores both, and the change of factor j is averaged over seeds, in units where 1.0 is the
mean change between two random scenes, so changes of different factors are comparable. Each row of the
matrix, normalised to sum to one, says which factor a direction controls.

:func:`disentanglement` reads the matrix per factor (columns), as the paper's Table 2 is read: the
direction that changes the factor most, that change, and the ratio of that change to the same
direction's largest change of any *other* factor. A ratio above 1 means the factor is that direction's
main effect; :data:`RECOVERED_RATIO` (2) marks a factor as recovered by the method.
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


#: A factor counts as recovered when its best direction changes it this many times more than any other factor.
RECOVERED_RATIO = 2.0


@dataclass(frozen=True)
class FactorScore:
    """How well one factor is recovered by a direction set (one column of the re-scoring matrix).

    Attributes:
        factor: The factor name.
        direction: Row index of the direction that changes the factor most.
        label: That direction's label.
        change: Its mean normalised change of the factor.
        side_factor: The other factor that direction changes most.
        side_change: Its change of `side_factor`.
    """

    factor: str
    direction: int
    label: str
    change: float
    side_factor: str
    side_change: float

    @property
    def ratio(self) -> float:
        """``change / side_change``: above 1, the factor is the direction's main effect (inf without side effect)."""
        return self.change / self.side_change if self.side_change > 0 else math.inf

    @property
    def recovered(self) -> bool:
        """The ratio reaches :data:`RECOVERED_RATIO`."""
        return self.ratio >= RECOVERED_RATIO


def disentanglement(result: RescoringResult, factors: Sequence[str] | None = None) -> list[FactorScore]:
    """Per factor, the direction that changes it most and that change against the direction's largest other change.

    Args:
        result: A re-scoring matrix (rows: directions, columns: factors).
        factors: Which factors (default: all columns).

    Example:

    >>> import torch
    >>> r = RescoringResult(torch.tensor([[0.9, 0.3], [0.2, 0.1]]), ("scale", "x"), ["d0", "d1"], 3.0)
    >>> [(s.factor, s.label, round(s.ratio, 2)) for s in disentanglement(r)]
    [('scale', 'd0', 3.0), ('x', 'd0', 0.33)]
    """
    matrix = torch.as_tensor(result.matrix, dtype=torch.float64).cpu()
    names = list(result.factor_names)
    if matrix.ndim != 2 or matrix.shape != (len(result.labels), len(names)) or len(names) < 2:
        raise ValueError(
            f"`result.matrix` must have shape [{len(result.labels)}, {len(names)}] with at least 2 factors, "
            f"got {list(matrix.shape)}."
        )
    wanted = names if factors is None else list(factors)
    unknown = [f for f in wanted if f not in names]
    if unknown:
        raise ValueError(f"`factors` must be among {names}, got unknown {unknown}.")
    scores = []
    for factor in wanted:
        j = names.index(factor)
        i = int(torch.argmax(matrix[:, j]))
        others = matrix[i].clone()
        others[j] = -math.inf
        side = int(torch.argmax(others))
        scores.append(FactorScore(factor, i, str(result.labels[i]), float(matrix[i, j]), names[side],
                                  float(matrix[i, side])))  # fmt: skip
    return scores


def disentanglement_table(results: dict[str, RescoringResult], factors: Sequence[str] | None = None) -> str:
    """Markdown: one row per method, one column per factor, cells ``change ×ratio (#direction)``.

    A ✓ marks a recovered factor (ratio ≥ :data:`RECOVERED_RATIO`).

    Example:

    >>> import torch
    >>> r = RescoringResult(torch.tensor([[0.9, 0.3], [0.2, 0.1]]), ("scale", "x"), ["d0", "d1"], 3.0)
    >>> print(disentanglement_table({"sefa": r}))
    | method | object scale | x position | recovered |
    |---|---|---|---|
    | sefa | 0.90 ×3.0 (#0) ✓ | 0.30 ×0.3 (#0) | 1/2 |
    """
    if not results:
        raise ValueError("`results` must be a non-empty mapping {method: RescoringResult}.")
    first = next(iter(results.values()))
    cols = list(first.factor_names) if factors is None else list(factors)
    head = "| method | " + " | ".join(FACTOR_LABELS.get(f, f) for f in cols) + " | recovered |"
    rows = [head, "|---" * (len(cols) + 2) + "|"]
    for method, result in results.items():
        scores = disentanglement(result, cols)
        cells = [f"{s.change:.2f} ×{s.ratio:.1f} (#{s.direction})" + (" ✓" if s.recovered else "") for s in scores]
        rows.append(f"| {method} | " + " | ".join(cells) + f" | {sum(s.recovered for s in scores)}/{len(scores)} |")
    return "\n".join(rows)


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
