"""Agreement with supervised boundaries: best |cos| and its rank, Markdown tables, mismatches."""

from __future__ import annotations

import pytest
import torch

from sefa_plugin import Directions, DirectionsMismatchError
from sefa_plugin.evaluation.agreement import Agreement, agreement_table, boundary_agreement, format_agreement


def make(vectors, method="sefa", space="w+", labels=()):
    vectors = torch.stack(list(vectors)) if isinstance(vectors, list) else torch.as_tensor(vectors)
    return Directions(vectors=vectors.float(), method=method, latent_space=space, layers=[0], labels=list(labels))


def test_best_abs_cos_and_rank():
    q, _ = torch.linalg.qr(torch.randn(6, 6, generator=torch.Generator().manual_seed(0)))
    directions = make(q.T[:4])  # 4 orthonormal directions
    b_scale = -q.T[2]  # exactly direction 2, opposite sign
    b_x = 0.6 * q.T[1] + 0.8 * q.T[3]  # between 1 and 3, closer to 3
    b_y = q.T[5] * 3.0  # orthogonal to all four (and not unit length)
    rows = boundary_agreement(directions, make([b_scale, b_x, b_y], "boundary", labels=["scale", "x", "y"]))
    assert [r.factor for r in rows] == ["scale", "x", "y"]
    assert rows[0] == Agreement("scale", pytest.approx(1.0, abs=1e-6), 2)
    assert rows[1].rank == 3 and rows[1].best_abs_cos == pytest.approx(0.8, abs=1e-6)
    assert rows[2].best_abs_cos == pytest.approx(0.0, abs=1e-6)
    # Plain tuples, as the issue asks.
    factor, _, rank = rows[0]
    assert (factor, rank) == ("scale", 2)


def test_ties_pick_the_lowest_rank():
    rows = boundary_agreement(
        make(torch.tensor([[1.0, 0.0], [1.0, 0.0]])), make(torch.tensor([[1.0, 0.0]]), "boundary", labels=["a"])
    )
    assert rows[0].rank == 0


def test_mismatched_spaces_and_sizes_are_errors():
    with pytest.raises(DirectionsMismatchError, match="'z'"):
        boundary_agreement(make(torch.eye(3), space="z"), make(torch.eye(3)[:1], "boundary"))
    with pytest.raises(DirectionsMismatchError, match="4 dimensions"):
        boundary_agreement(make(torch.eye(4)), make(torch.eye(3)[:1], "boundary"))
    with pytest.raises(TypeError, match="`boundaries`"):
        boundary_agreement(make(torch.eye(3)), torch.eye(3))


def test_markdown():
    rows = [Agreement("scale", 0.98765, 0), Agreement("x", 0.5, 7)]
    text = format_agreement(rows)
    assert text.splitlines()[2] == "| scale | 0.988 | 0 |"
    table = agreement_table({"sefa": rows, "ganspace": [Agreement("x", 0.25, 1)]})
    lines = table.splitlines()
    assert lines[0] == "| factor | sefa | ganspace |"
    assert lines[2] == "| scale | 0.988 (#0) | – |"
    assert lines[3] == "| x | 0.500 (#7) | 0.250 (#1) |"
