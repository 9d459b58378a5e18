"""InterFaceGAN cores: boundary fitting on data with a known normal, errors, conditional projection."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sefa_plugin.directions.boundary import fit_boundary, project_orthogonal


def unit(v: torch.Tensor) -> torch.Tensor:
    return v / v.norm()


@pytest.fixture
def separable() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    latents = torch.randn(5000, 8, generator=g)
    normal = unit(torch.randn(8, generator=g))
    scores = latents @ normal + 0.05 * torch.randn(5000, generator=g)
    return latents, scores, normal


def test_recovers_known_normal(separable):
    latents, scores, normal = separable
    found, stats = fit_boundary(latents, scores)
    assert found.shape == (8,) and found.dtype == torch.float32
    assert abs(float(found.norm()) - 1) < 1e-6
    assert float(found @ normal) > 0.99  # same orientation: towards higher scores
    assert stats["num_per_side"] == 100 and stats["num_train"] == 70 and stats["num_val"] == 30
    assert stats["val_accuracy"] == 1.0 and stats["train_accuracy"] == 1.0
    assert stats["remaining_accuracy"] > 0.9
    assert stats["positive_min"] > stats["negative_max"]


def test_accepts_numpy_and_column_scores_and_is_seeded(separable):
    latents, scores, normal = separable
    a, _ = fit_boundary(latents.numpy(), scores.numpy()[:, None], seed=3)
    b, _ = fit_boundary(latents, scores, seed=3)
    assert torch.allclose(a, b, atol=1e-6)
    flipped, _ = fit_boundary(latents, -scores)
    assert float(flipped @ normal) < -0.99


def test_ratio_and_num_samples_errors(separable):
    latents, scores, _ = separable
    with pytest.raises(ValueError, match=r"`num_samples` × `ratio`.*use `num_samples` ≥ 500"):
        fit_boundary(latents[:400], scores[:400], ratio=0.02)
    for bad in (0, -0.1, 0.6, True):
        with pytest.raises(ValueError, match=r"`ratio` must be a number in \(0.0, 0.5\]"):
            fit_boundary(latents, scores, ratio=bad)
    with pytest.raises(ValueError, match="`val_split`"):
        fit_boundary(latents, scores, val_split=1.5)
    with pytest.raises(ValueError, match="`C`"):
        fit_boundary(latents, scores, C=0)
    # 2% of 500 is exactly 10 per side: accepted.
    fit_boundary(latents[:500], scores[:500])


def test_scores_errors(separable):
    latents, scores, _ = separable
    with pytest.raises(ValueError, match=r"`scores` must have shape \[5000\]"):
        fit_boundary(latents, scores[:10])
    with pytest.raises(ValueError, match=r"`scores` must have shape \[5000\]"):
        fit_boundary(latents, torch.stack([scores, scores], dim=1))
    bad = scores.clone()
    bad[3] = float("nan")
    with pytest.raises(ValueError, match="`scores` contains 1 NaN"):
        fit_boundary(latents, bad)
    with pytest.raises(ValueError, match="do not separate"):
        fit_boundary(latents, torch.ones(5000))
    with pytest.raises(ValueError, match=r"`latents` must have shape \[N, D\]"):
        fit_boundary(latents[:, None], scores)


# ---------------------------------------------------------------------------------------- projection
def test_project_one_condition():
    out = project_orthogonal(torch.tensor([1.0, 1.0, 0.0]), torch.tensor([1.0, 0.0, 0.0]))
    assert torch.allclose(out, torch.tensor([0.0, 1.0, 0.0]))


@pytest.mark.parametrize("num_conditions", [1, 2, 5])
def test_projection_is_orthogonal_unit_and_keeps_orientation(num_conditions):
    g = torch.Generator().manual_seed(num_conditions)
    primary = unit(torch.randn(10, generator=g))
    conditions = torch.randn(num_conditions, 10, generator=g) + 0.5 * primary  # correlated with the primary
    out = project_orthogonal(primary, conditions)
    assert abs(float(out.norm()) - 1) < 1e-6
    assert torch.allclose(conditions @ out, torch.zeros(num_conditions), atol=1e-5)
    assert float(out @ primary) > 0


def test_two_conditions_match_interfacegan_closed_form():
    g = torch.Generator().manual_seed(7)
    p, c1, c2 = (unit(torch.randn(6, generator=g, dtype=torch.float64)) for _ in range(3))
    pc1, pc2, c12 = p @ c1, p @ c2, c1 @ c2
    alpha = (pc1 - pc2 * c12) / (1 - c12**2)
    beta = (pc2 - pc1 * c12) / (1 - c12**2)
    expected = unit(p - alpha * c1 - beta * c2)
    out = project_orthogonal(p, torch.stack([c1, c2]))
    assert torch.allclose(out.double(), expected, atol=1e-6)


def test_dependent_conditions_are_handled():
    primary = torch.tensor([1.0, 2.0, 3.0])
    cond = torch.tensor([[1.0, 0.0, 0.0], [2.0, 0.0, 0.0], [1.0, 1.0, 0.0]])  # rank 2
    assert torch.allclose(project_orthogonal(primary, cond), torch.tensor([0.0, 0.0, 1.0]), atol=1e-6)


def test_projection_errors():
    with pytest.raises(ValueError, match="span of `conditions`"):
        project_orthogonal(torch.tensor([1.0, 1.0, 0.0]), torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]))
    with pytest.raises(ValueError, match="span of `conditions`"):
        project_orthogonal(torch.randn(3), torch.eye(3))
    with pytest.raises(ValueError, match=r"`conditions` must have shape \[M, 3\]"):
        project_orthogonal(torch.randn(3), torch.randn(2, 4))
    with pytest.raises(ValueError, match="`primary` must be a vector"):
        project_orthogonal(torch.randn(1, 3), torch.randn(2, 3))
    with pytest.raises(ValueError, match="zero vector"):
        project_orthogonal(torch.zeros(3), torch.randn(1, 3))
    with pytest.raises(ValueError, match="all zero"):
        project_orthogonal(torch.ones(3), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="finite"):
        project_orthogonal(torch.tensor([np.nan, 1.0, 0.0]), torch.eye(3)[:1])
