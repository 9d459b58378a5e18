"""Supervised boundaries: linear SVMs separating latents with high and low attribute scores.

Shen, Gu, Tang & Zhou, "Interpreting the Latent Space of GANs for Semantic Face Editing", CVPR 2020
(InterFaceGAN; https://arxiv.org/abs/1907.10786; official code: https://github.com/genforce/interfacegan).

For one attribute, the latents whose images score in the top and the bottom ``ratio`` (2% in the paper)
become positive and negative examples; a linear SVM (``C = 1``) is trained on 70% of them and validated
on the rest. The unit normal of its separating hyperplane (the intercept dropped) is the edit direction,
pointing towards higher scores. Conditional editing (:func:`project_orthogonal`) removes from one
normal its components along other normals, so that moving along it leaves those attributes unchanged
to first order.

These are pure functions of tensors; :class:`~sefa_plugin.pipelines.BoundaryPipeline` samples latents,
renders and scores images and wraps the results as :class:`~sefa_plugin.directions.Directions`.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import torch

__all__ = ["MIN_PER_SIDE", "fit_boundary", "project_orthogonal"]

logger = logging.getLogger(__name__)

#: Fewest positive (and negative) examples :func:`fit_boundary` accepts.
MIN_PER_SIDE = 10


def _as_numpy(value: Any, name: str) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().to("cpu", torch.float64).numpy()
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"`{name}` must be a numeric tensor or array, got {type(value).__name__}.") from err
    return arr


def _check_fraction(value: float, name: str, low_open: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low_open < value <= high:
        raise ValueError(f"`{name}` must be a number in ({low_open}, {high}], got {value!r}.")
    return float(value)


def fit_boundary(
    latents: torch.Tensor | np.ndarray,
    scores: torch.Tensor | np.ndarray,
    ratio: float = 0.02,
    val_split: float = 0.7,
    C: float = 1.0,  # noqa: N803  (scikit-learn's name for the SVM penalty)
    seed: int = 0,
    min_per_side: int = MIN_PER_SIDE,
) -> tuple[torch.Tensor, dict[str, Any]]:
    """Fit an InterFaceGAN boundary: a linear SVM between the top and bottom `ratio` of `scores`.

    Args:
        latents: ``[N, D]`` latent codes (``w`` for style-based generators, ``z`` otherwise).
        scores: ``[N]`` (or ``[N, 1]``) attribute score of each latent's image; higher is "more".
        ratio: Fraction of samples taken as positives (highest scores) and as negatives (lowest), in
            ``(0, 0.5]``; the paper uses 0.02.
        val_split: Fraction of the chosen samples used for training, in ``(0, 1]``; the rest validates.
        C: SVM regularisation (the paper uses scikit-learn's default, 1).
        seed: Seed of the train/validation shuffle.
        min_per_side: Fewest examples per side; fewer is an error (the fit would be meaningless).

    Returns:
        ``(normal, stats)``: the unit normal ``[D]`` (float32) pointing towards higher scores, and a dict
        with ``num_samples``, ``num_per_side``, ``num_train`` and ``num_val`` (per side),
        ``train_accuracy``, ``val_accuracy`` (None without validation samples), ``remaining_accuracy``
        (the unchosen samples labelled by the midpoint of the extreme scores, as InterFaceGAN reports;
        None if none remain) and the score thresholds ``positive_min`` and ``negative_max``.

    Raises:
        ValueError: On shape mismatches, non-finite values, out-of-range `ratio`/`val_split`, fewer than
            `min_per_side` examples per side (``int(num_samples * ratio)``), or scores that do not
            separate the chosen sides.

    Example:

    >>> import torch
    >>> from sefa_plugin.directions.boundary import fit_boundary
    >>> g = torch.Generator().manual_seed(0)
    >>> latents = torch.randn(2000, 4, generator=g)
    >>> normal, stats = fit_boundary(latents, latents[:, 2] - latents[:, 0])
    >>> (normal * torch.tensor([-1, 0, 1, 0]) / 2**0.5).sum().item() > 0.99, stats["num_per_side"]
    (True, 40)
    """
    from sklearn.svm import SVC  # imported here: only boundary fitting needs scikit-learn

    x = _as_numpy(latents, "latents")
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 1:
        raise ValueError(f"`latents` must have shape [N, D] with N ≥ 2, got {list(x.shape)}.")
    num_samples = x.shape[0]
    s = _as_numpy(scores, "scores")
    if s.ndim == 2 and s.shape[1] == 1:
        s = s[:, 0]
    if s.shape != (num_samples,):
        raise ValueError(f"`scores` must have shape [{num_samples}] (one score per latent), got {list(s.shape)}.")
    if not np.isfinite(x).all():
        raise ValueError("`latents` contains NaN or infinite values.")
    if not np.isfinite(s).all():
        raise ValueError(f"`scores` contains {int((~np.isfinite(s)).sum())} NaN or infinite values.")
    ratio = _check_fraction(ratio, "ratio", 0.0, 0.5)
    val_split = _check_fraction(val_split, "val_split", 0.0, 1.0)
    if isinstance(C, bool) or not isinstance(C, (int, float)) or not (math.isfinite(C) and C > 0):
        raise ValueError(f"`C` must be a positive number, got {C!r}.")
    chosen = int(num_samples * ratio)
    if chosen < min_per_side:
        need = math.ceil(min_per_side / ratio)
        raise ValueError(
            f"`num_samples` × `ratio` = {num_samples} × {ratio} gives {chosen} examples per side, fewer than "
            f"{min_per_side}: use `num_samples` ≥ {need} or a larger `ratio` (at most 0.5)."
        )
    num_train = int(chosen * val_split)
    if num_train < 1:
        raise ValueError(f"`val_split`={val_split} leaves no training examples out of {chosen} per side.")
    num_val = chosen - num_train

    # 1. Sort by score, highest first (stable, so ties keep the sampling order).
    order = np.argsort(-s, kind="stable")
    x, s = x[order], s[order]
    if s[chosen - 1] <= s[-chosen]:
        raise ValueError(
            f"`scores` do not separate the top and bottom {ratio:.0%}: the lowest chosen positive score "
            f"({s[chosen - 1]:.4g}) is not above the highest chosen negative one ({s[-chosen]:.4g})."
        )
    # 2. Shuffle each side and split it into training and validation examples.
    rng = np.random.default_rng(seed)
    pos, neg = x[:chosen][rng.permutation(chosen)], x[-chosen:][rng.permutation(chosen)]
    train_x = np.concatenate([pos[:num_train], neg[:num_train]])
    train_y = np.concatenate([np.ones(num_train, dtype=np.int64), np.zeros(num_train, dtype=np.int64)])
    # 3. Linear SVM; its weight vector points towards class 1 (the high scores).
    clf = SVC(kernel="linear", C=float(C)).fit(train_x, train_y)
    coef = clf.coef_.reshape(-1)
    norm = float(np.linalg.norm(coef))
    if not norm > 0:
        raise ValueError("The SVM found no separating direction (zero normal): check `scores`.")
    stats: dict[str, Any] = {
        "num_samples": num_samples, "num_per_side": chosen, "num_train": num_train, "num_val": num_val,
        "train_accuracy": float(clf.score(train_x, train_y)), "val_accuracy": None,
        "remaining_accuracy": None, "positive_min": float(s[chosen - 1]), "negative_max": float(s[-chosen]),
    }  # fmt: skip
    if num_val:
        val_x = np.concatenate([pos[num_train:], neg[num_train:]])
        val_y = np.concatenate([np.ones(num_val, dtype=np.int64), np.zeros(num_val, dtype=np.int64)])
        stats["val_accuracy"] = float(clf.score(val_x, val_y))
    if num_samples > 2 * chosen:
        rest_x, rest_s = x[chosen:-chosen], s[chosen:-chosen]
        rest_y = (rest_s >= (s[0] + s[-1]) / 2).astype(np.int64)
        stats["remaining_accuracy"] = float(clf.score(rest_x, rest_y))
    logger.info(
        "boundary: %d per side (%d train), train accuracy %.3f, validation accuracy %s",
        chosen, num_train, stats["train_accuracy"],
        "n/a" if stats["val_accuracy"] is None else f"{stats['val_accuracy']:.3f}",
    )  # fmt: skip
    return torch.from_numpy(coef / norm).to(torch.float32), stats


def project_orthogonal(
    primary: torch.Tensor,
    conditions: torch.Tensor,
    tol: float = 1e-6,
) -> torch.Tensor:
    """Conditional editing: the part of `primary` orthogonal to every direction in `conditions`.

    The least-squares projection of `primary` onto the span of the conditions is removed, using an
    orthonormal basis of that span from the SVD of `conditions` (so 1, 2 or many conditions work, and
    conditions need not be unit or independent; InterFaceGAN's closed form covers at most two unit
    ones). The residual is renormalised; it keeps a positive dot product with `primary`.

    Args:
        primary: ``[D]`` the direction to edit along.
        conditions: ``[M, D]`` (or ``[D]``) directions that must not change.
        tol: Relative size below which the residual counts as zero.

    Returns:
        A unit vector ``[D]`` (float32) orthogonal to every condition.

    Raises:
        ValueError: On shape mismatches, non-finite values, or if `primary` lies in the span of the
            conditions (nothing would be left to edit).

    Example:

    >>> import torch
    >>> from sefa_plugin.directions.boundary import project_orthogonal
    >>> project_orthogonal(torch.tensor([1.0, 1.0, 0.0]), torch.tensor([[1.0, 0.0, 0.0]]))
    tensor([0., 1., 0.])
    """
    p = torch.as_tensor(primary).detach().to("cpu", torch.float64)
    c = torch.as_tensor(conditions).detach().to("cpu", torch.float64)
    if p.ndim != 1 or p.shape[0] < 1:
        raise ValueError(f"`primary` must be a vector [D], got shape {list(p.shape)}.")
    if c.ndim == 1:
        c = c.unsqueeze(0)
    if c.ndim != 2 or c.shape[0] < 1 or c.shape[1] != p.shape[0]:
        raise ValueError(f"`conditions` must have shape [M, {p.shape[0]}] with M ≥ 1, got {list(c.shape)}.")
    if not (torch.isfinite(p).all() and torch.isfinite(c).all()):
        raise ValueError("`primary` and `conditions` must be finite.")
    p_norm = float(p.norm())
    if p_norm == 0:
        raise ValueError("`primary` is the zero vector.")
    _, sv, vh = torch.linalg.svd(c, full_matrices=False)
    if float(sv[0]) == 0:
        raise ValueError("`conditions` are all zero vectors.")
    basis = vh[sv > sv[0] * 1e-10]  # orthonormal rows spanning the conditions
    residual = p - basis.T @ (basis @ p)
    r_norm = float(residual.norm())
    if r_norm <= tol * p_norm:
        raise ValueError("`primary` lies in the span of `conditions`: removing them leaves nothing to edit along.")
    return (residual / r_norm).to(torch.float32)
