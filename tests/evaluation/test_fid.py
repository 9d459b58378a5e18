"""Fréchet distance: closed forms, symmetry, input checks and streaming feature statistics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sefa_plugin.evaluation import FactorPredictor, feature_statistics, frechet_distance
from sefa_plugin.evaluation.fid import frechet_distance_from_statistics


def _gaussian(n: int, d: int, seed: int, scale: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(d, d)) / np.sqrt(d)
    return scale * rng.normal(size=(n, d)) @ mix


def test_identical_sets_give_zero():
    a = _gaussian(500, 16, 0)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)
    t = torch.from_numpy(a).float()
    assert frechet_distance(t, t) == pytest.approx(0.0, abs=1e-5)


def test_shift_gives_squared_mean_difference():
    a = _gaussian(400, 8, 1)
    shift = np.arange(8, dtype=np.float64) / 4
    # Same sample covariance, so the trace terms cancel exactly: d² = ||shift||².
    assert frechet_distance(a, a + shift) == pytest.approx(float(shift @ shift), rel=1e-9)


def test_scaled_set_closed_form():
    a = _gaussian(600, 6, 2) + 1.0
    # Σ_b = 4 Σ_a: tr Σ_a + tr 4Σ_a - 2 tr (4 Σ_a²)^{1/2} = tr Σ_a; means differ by μ_a.
    mu = a.mean(axis=0)
    expected = float(mu @ mu + np.trace(np.cov(a, rowvar=False)))
    assert frechet_distance(a, 2 * a) == pytest.approx(expected, rel=1e-9)


def test_diagonal_gaussians_closed_form():
    va, vb = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    mu_a, mu_b = np.zeros(3), np.array([1.0, 0.0, 2.0])
    expected = 5.0 + float(((np.sqrt(va) - np.sqrt(vb)) ** 2).sum())
    assert frechet_distance_from_statistics(mu_a, np.diag(va), mu_b, np.diag(vb)) == pytest.approx(expected)


def test_symmetric_and_matches_scipy():
    a, b = _gaussian(300, 10, 3), _gaussian(250, 10, 4, scale=1.7) + 0.3
    d_ab, d_ba = frechet_distance(a, b), frechet_distance(b, a)
    assert d_ab == pytest.approx(d_ba, rel=1e-9) and d_ab > 0
    linalg = pytest.importorskip("scipy.linalg")
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2).real
    diff = a.mean(0) - b.mean(0)
    reference = diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)
    assert d_ab == pytest.approx(reference, rel=1e-7)


def test_rank_deficient_covariances_are_fine():
    a = np.zeros((50, 4))
    a[:, 0] = np.linspace(-1, 1, 50)  # rank 1: sqrtm would give complex round-off here
    value = frechet_distance(a, a[::-1] * 0.5)
    assert np.isfinite(value) and value >= 0


def test_bad_inputs():
    with pytest.raises(ValueError, match="`feats_a`"):
        frechet_distance(np.zeros(5), np.zeros((5, 2)))
    with pytest.raises(ValueError, match="`feats_b`"):
        frechet_distance(np.zeros((5, 2)), np.zeros((1, 2)))
    with pytest.raises(ValueError, match="same feature size"):
        frechet_distance(np.zeros((5, 2)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="NaN"):
        frechet_distance(np.full((5, 2), np.nan), np.zeros((5, 2)))


def test_feature_statistics_streaming_matches_direct():
    torch.manual_seed(0)
    model = FactorPredictor(channels=(4, 8), feature_dim=6).eval()
    images = torch.rand(10, 3, 64, 64) * 2 - 1
    mu, sigma = feature_statistics(model, images, batch_size=3)
    mu2, sigma2 = feature_statistics(model, (images[i : i + 4] for i in range(0, 10, 4)))
    feats = model.features(images).detach().double().numpy()
    np.testing.assert_allclose(mu, feats.mean(0), atol=1e-6)
    np.testing.assert_allclose(sigma, np.cov(feats, rowvar=False), atol=1e-6)
    np.testing.assert_allclose(mu2, mu, atol=1e-9)
    np.testing.assert_allclose(sigma2, sigma, atol=1e-9)
    assert frechet_distance_from_statistics(mu, sigma, mu2, sigma2) == pytest.approx(0, abs=1e-6)
    with pytest.raises(ValueError, match="`images_or_iterable`"):
        feature_statistics(model, images[:1])
    with pytest.raises(TypeError, match="`images_or_iterable`"):
        feature_statistics(model, [np.zeros((2, 3, 64, 64))])
