"""Agreement of unsupervised directions with supervised boundaries (SeFa paper, Table 1).

For each factor with a supervised boundary (InterFaceGAN: the unit normal of a linear SVM separating
latents by that factor), the agreement of a method is the largest ``|cos|`` between the boundary and
any of the method's directions, together with the rank (0-based index) of that direction. A high
``|cos|`` at a low rank means the method found the factor without labels, and found it early.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import torch

from ..directions.container import Directions, DirectionsMismatchError

__all__ = ["Agreement", "agreement_table", "boundary_agreement", "format_agreement"]


class Agreement(NamedTuple):
    """Best match of one supervised boundary among a method's directions.

    Attributes:
        factor: The boundary's label (the factor name).
        best_abs_cos: Largest ``|cos|`` between the boundary and a direction, in [0, 1].
        rank: 0-based index of that direction in the method's list.
    """

    factor: str
    best_abs_cos: float
    rank: int


def boundary_agreement(directions: Directions, boundaries: Directions) -> list[Agreement]:
    """For each boundary, the direction of `directions` most aligned with it (up to sign).

    Args:
        directions: A method's directions (SeFa, GANSpace, learned ...), in rank order.
        boundaries: One supervised boundary per factor; ``labels`` are the factor names.

    Returns:
        One :class:`Agreement` ``(factor, best_abs_cos, rank)`` per boundary, in the boundaries' order.

    Raises:
        DirectionsMismatchError: If the two live in different latent spaces or have different sizes.

    Example:

    >>> import torch
    >>> from sefa_plugin import Directions
    >>> from sefa_plugin.evaluation.agreement import boundary_agreement
    >>> d = Directions(vectors=torch.eye(3), method="coordinate", latent_space="z", layers=[0])
    >>> b = Directions(vectors=torch.tensor([[0.0, -1.0, 0.0]]), method="boundary", latent_space="z",
    ...                layers=[0], labels=["scale"])
    >>> boundary_agreement(d, b)
    [Agreement(factor='scale', best_abs_cos=1.0, rank=1)]
    """
    for name, value in (("directions", directions), ("boundaries", boundaries)):
        if not isinstance(value, Directions):
            raise TypeError(f"`{name}` must be a Directions object, got {type(value).__name__}.")
    if directions.latent_space != boundaries.latent_space:
        raise DirectionsMismatchError(
            f"`directions` live in the {directions.latent_space!r} space but `boundaries` in "
            f"{boundaries.latent_space!r}: they cannot be compared."
        )
    if directions.latent_dim != boundaries.latent_dim:
        raise DirectionsMismatchError(
            f"`directions` have {directions.latent_dim} dimensions but `boundaries` have "
            f"{boundaries.latent_dim}: they were made for different models."
        )
    d = _unit_rows(directions.vectors.double(), "directions")  # [K, D]
    b = _unit_rows(boundaries.vectors.double(), "boundaries")  # [F, D]
    cos = (b @ d.T).abs()  # [F, K]
    best, rank = cos.max(dim=1)  # max returns the first (lowest-rank) maximum on ties
    return [
        Agreement(factor=label, best_abs_cos=min(float(c), 1.0), rank=int(r))
        for label, c, r in zip(boundaries.labels, best, rank, strict=True)
    ]


def _unit_rows(v: torch.Tensor, name: str) -> torch.Tensor:
    norms = v.norm(dim=1, keepdim=True)
    if bool((norms == 0).any()):
        raise ValueError(f"`{name}` contains a zero vector, which has no direction.")
    return v / norms


def format_agreement(rows: Sequence[Agreement], digits: int = 3) -> str:
    """One method's agreement as a Markdown table (factor, best |cos|, rank).

    Example:

    >>> print(format_agreement([Agreement("scale", 0.91234, 2)]))
    | factor | best abs(cos) | rank |
    |---|---|---|
    | scale | 0.912 | 2 |
    """
    lines = ["| factor | best abs(cos) | rank |", "|---|---|---|"]
    lines += [f"| {r.factor} | {r.best_abs_cos:.{digits}f} | {r.rank} |" for r in rows]
    return "\n".join(lines)


def agreement_table(results: Mapping[str, Sequence[Agreement]], digits: int = 3) -> str:
    """Several methods side by side: one row per factor, one column per method, cells ``|cos| (#rank)``.

    Example:

    >>> print(agreement_table({"sefa": [Agreement("scale", 0.9, 0)], "ganspace": [Agreement("scale", 0.5, 3)]}))
    | factor | sefa | ganspace |
    |---|---|---|
    | scale | 0.900 (#0) | 0.500 (#3) |
    """
    methods = list(results)
    factors: list[str] = []
    for rows in results.values():
        factors += [r.factor for r in rows if r.factor not in factors]
    lookup = {(m, r.factor): r for m in methods for r in results[m]}
    lines = ["| factor | " + " | ".join(methods) + " |", "|---" * (len(methods) + 1) + "|"]
    for f in factors:
        cells = []
        for m in methods:
            r = lookup.get((m, f))
            cells.append("–" if r is None else f"{r.best_abs_cos:.{digits}f} (#{r.rank})")
        lines.append(f"| {f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
