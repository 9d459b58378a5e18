"""Fréchet distance between two feature sets (FID, Heusel et al., 2017), with the factor predictor's
embedding standing in for Inception features on the procedural scenes.

For Gaussians ``N(μ₁, Σ₁)`` and ``N(μ₂, Σ₂)``::

    d² = ||μ₁ - μ₂||² + tr Σ₁ + tr Σ₂ - 2 tr (Σ₁ Σ₂)^{1/2}

The trace of the matrix square root is computed without ``scipy.linalg.sqrtm``: ``Σ₁ Σ₂`` is similar to
the symmetric positive semi-definite ``M = Σ₁^{1/2} Σ₂ Σ₁^{1/2}`` (``Σ₁^{1/2}`` from a symmetric
eigendecomposition), so ``tr (Σ₁ Σ₂)^{1/2} = Σᵢ sqrt(λᵢ(M))``. Both decompositions are symmetric
(``numpy.linalg.eigh``) in float64, so no complex values appear: eigenvalues that round-off makes
slightly negative are clipped to 0 (where ``sqrtm`` would give tiny imaginary parts). No scipy is needed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from .predictor import FactorPredictor


def _as_features(feats: np.ndarray | torch.Tensor, what: str) -> np.ndarray:
    if isinstance(feats, torch.Tensor):
        feats = feats.detach().cpu().double().numpy()
    arr = np.asarray(feats, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] < 2:
        raise ValueError(f"`{what}` must have shape [N, D] with N ≥ 2, got {list(arr.shape)}.")
    if not np.isfinite(arr).all():
        raise ValueError(f"`{what}` contains NaN or infinite values.")
    return arr


def _sqrt_psd(mat: np.ndarray) -> np.ndarray:
    """Symmetric square root of a (numerically) positive semi-definite matrix."""
    vals, vecs = np.linalg.eigh((mat + mat.T) / 2)
    return (vecs * np.sqrt(np.clip(vals, 0.0, None))) @ vecs.T


def frechet_distance_from_statistics(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Fréchet distance between ``N(mu1, sigma1)`` and ``N(mu2, sigma2)`` (float64).

    Example:

    >>> import numpy as np
    >>> round(frechet_distance_from_statistics(np.zeros(2), np.eye(2), np.ones(2), np.eye(2)), 6)
    2.0
    """
    mu1, mu2 = np.asarray(mu1, np.float64).reshape(-1), np.asarray(mu2, np.float64).reshape(-1)
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    d = mu1.shape[0]
    if mu2.shape != (d,) or s1.shape != (d, d) or s2.shape != (d, d):
        raise ValueError(
            f"`mu1`, `mu2` must be [D] and `sigma1`, `sigma2` [D, D] with the same D; got "
            f"{list(mu1.shape)}, {list(mu2.shape)}, {list(s1.shape)}, {list(s2.shape)}."
        )
    root1 = _sqrt_psd(s1)
    middle = root1 @ s2 @ root1
    tr_cross = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0.0, None)).sum()
    diff = mu1 - mu2
    value = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_cross)
    return max(value, 0.0)  # round-off can make identical sets give -1e-12


def frechet_distance(feats_a: np.ndarray | torch.Tensor, feats_b: np.ndarray | torch.Tensor) -> float:
    """Fréchet distance between the Gaussians fitted to two feature sets ``[N, D]`` and ``[M, D]``.

    Means and (unbiased) covariances are computed in float64; see the module docstring for the
    eigendecomposition-based matrix square root.

    Example:

    >>> import torch
    >>> a = torch.randn(1000, 4, generator=torch.Generator().manual_seed(0))
    >>> round(frechet_distance(a, a), 6), round(frechet_distance(a, a + 1.0), 6)
    (0.0, 4.0)
    """
    a, b = _as_features(feats_a, "feats_a"), _as_features(feats_b, "feats_b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"`feats_a` and `feats_b` must have the same feature size, got {a.shape[1]} and {b.shape[1]}.")
    return frechet_distance_from_statistics(
        a.mean(axis=0), np.cov(a, rowvar=False).reshape(a.shape[1], a.shape[1]),
        b.mean(axis=0), np.cov(b, rowvar=False).reshape(b.shape[1], b.shape[1]),
    )  # fmt: skip


def feature_statistics(
    predictor: FactorPredictor,
    images_or_iterable: torch.Tensor | Iterable[torch.Tensor],
    batch_size: int = 256,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``[D]`` and unbiased covariance ``[D, D]`` (float64) of `predictor`'s features of images.

    Args:
        predictor: A :class:`~sefa_plugin.evaluation.FactorPredictor`; its
            :meth:`~sefa_plugin.evaluation.FactorPredictor.features` are used (eval mode, no gradients).
        images_or_iterable: One tensor ``[N, C, R, R]`` in [-1, 1], or an iterable of such batches
            (e.g. a generator rendering GAN samples), accumulated in a streaming fashion.
        batch_size: Chunk size when a single tensor is given.

    Returns:
        ``(mu, sigma)``, to pass to :func:`frechet_distance_from_statistics`.

    Example:

    >>> import torch
    >>> from sefa_plugin.evaluation import FactorPredictor
    >>> model = FactorPredictor(channels=(8, 16), feature_dim=32)
    >>> mu, sigma = feature_statistics(model, torch.zeros(4, 3, 64, 64))
    >>> mu.shape, sigma.shape
    ((32,), (32, 32))
    """
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be ≥ 1, got {batch_size}.")
    if isinstance(images_or_iterable, torch.Tensor):
        images = images_or_iterable
        batches: Iterable[torch.Tensor] = (images[i : i + batch_size] for i in range(0, len(images), batch_size))
    else:
        batches = images_or_iterable
    dim = predictor.config.feature_dim
    total, outer, count = np.zeros(dim), np.zeros((dim, dim)), 0
    was_training = predictor.training
    predictor.eval()
    try:
        for batch in batches:
            if not isinstance(batch, torch.Tensor):
                raise TypeError(
                    f"`images_or_iterable` must be a tensor or yield tensors, got a {type(batch).__name__}."
                )
            if len(batch) == 0:
                continue
            f = predictor.features(batch, batch_size=batch_size).double().cpu().numpy()
            total += f.sum(axis=0)
            outer += f.T @ f
            count += f.shape[0]
    finally:
        predictor.train(was_training)
    if count < 2:
        raise ValueError(f"`images_or_iterable` must hold at least 2 images, got {count}.")
    mu = total / count
    sigma = (outer - count * np.outer(mu, mu)) / (count - 1)
    return mu, (sigma + sigma.T) / 2
