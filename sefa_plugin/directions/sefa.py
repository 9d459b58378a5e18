"""SeFa: closed-form factorization of latent semantics in GANs.

Shen & Zhou, "Closed-Form Factorization of Latent Semantics in GANs", CVPR 2021
(https://arxiv.org/abs/2007.06600; official code: https://github.com/genforce/sefa).

The first operation a generator applies to its latent code is an affine map ``y = A z + b``. Moving the
latent along a unit direction ``n`` moves ``y`` by ``A n``, so the directions that change the
generator's first representation the most maximise ``‖A n‖² = nᵀ AᵀA n``: they are the eigenvectors of
``AᵀA`` with the largest eigenvalues. For several layers, the weights are stacked row-wise, which sums
their Gram matrices. Nothing is sampled and nothing is trained; this module is the pure tensor core
that :class:`~sefa_plugin.pipelines.SefaPipeline` wraps.
"""

from __future__ import annotations

import logging
import numbers
from collections.abc import Sequence

import torch

__all__ = ["sefa_factorize"]

logger = logging.getLogger(__name__)


def _check_num_directions(num_directions: int | None, latent_dim: int) -> int:
    if num_directions is None:
        return latent_dim
    if isinstance(num_directions, bool) or not isinstance(num_directions, numbers.Integral):
        raise ValueError(f"`num_directions` must be an int in [1, {latent_dim}] or None, got {num_directions!r}.")
    if not 1 <= num_directions <= latent_dim:
        raise ValueError(f"`num_directions` must be in [1, {latent_dim}] (the latent dimension), got {num_directions}.")
    return int(num_directions)


def _fix_signs(vectors: torch.Tensor) -> torch.Tensor:
    """Flip each row so that its entry of largest magnitude is positive (the first one on ties)."""
    pivot = vectors.abs().argmax(dim=1, keepdim=True)  # argmax returns the first maximum
    return vectors * torch.sign(vectors.gather(1, pivot)) + 0.0  # `+ 0.0` turns -0.0 into 0.0


def _stack_weights(weights: Sequence[torch.Tensor]) -> torch.Tensor:
    """Check the shapes and stack the weights into one float32 CPU matrix ``[sum_out, latent_dim]``."""
    if isinstance(weights, torch.Tensor) or not isinstance(weights, Sequence) or len(weights) == 0:
        raise ValueError(
            "`weights` must be a non-empty list of 2-D tensors [out_features, latent_dim], "
            f"got {type(weights).__name__}."
        )
    for i, w in enumerate(weights):
        if not isinstance(w, torch.Tensor) or w.ndim != 2 or w.shape[0] == 0:
            shape = list(w.shape) if isinstance(w, torch.Tensor) else type(w).__name__
            raise ValueError(f"`weights[{i}]` must be a 2-D tensor [out_features, latent_dim], got {shape}.")
        if w.shape[1] != weights[0].shape[1]:
            raise ValueError(
                f"All `weights` must share the latent dimension: `weights[0]` has {weights[0].shape[1]} "
                f"columns, `weights[{i}]` has {w.shape[1]}."
            )
    return torch.cat([w.detach().to("cpu", torch.float32) for w in weights], dim=0)


def sefa_factorize(
    weights: Sequence[torch.Tensor],
    normalize: bool = True,
    num_directions: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigen-decompose the Gram matrix of stacked latent weights (SeFa).

    Each weight is the effective affine ``[out_features, latent_dim]`` of one layer
    (:meth:`EditableGenerator.latent_weights`). They are stacked row-wise into ``A``
    ``[sum_out, latent_dim]``; with `normalize`, every row (one output unit's weight vector) is first
    scaled to unit L2 norm, as the official code does. The directions are the eigenvectors of ``AᵀA``,
    solved with :func:`torch.linalg.eigh` in float32 (the official code's precision), sorted by
    eigenvalue (largest first), each with a
    deterministic sign: its entry of largest magnitude is positive (the first such entry on ties).

    Differences from the official implementation, and why the results agree:
    the official ``factorize_weight`` builds the transposed matrix ``Aᵀ`` (style weights transposed and
    concatenated along axis 1), divides its *columns* by their norms (the same vectors as our rows) and
    calls ``np.linalg.eig`` on ``AᵀA`` in float32. ``eig`` is the general, non-symmetric solver: its
    eigenvalues come unsorted, each eigenvector has an arbitrary sign that may change between machines
    or library versions, and rounding can even make the output complex. The Gram matrix is symmetric
    positive semi-definite, so ``eigh`` is the right solver: real output, ascending order (reversed
    here), orthonormal vectors. The matrix, and therefore the eigenvalues and the line each eigenvector
    spans, are the same; only the order and the sign convention are fixed here. Where two eigenvalues
    coincide, any orthonormal basis of their eigenspace is a valid answer in both implementations.

    Rows whose norm is zero carry no information and contribute nothing to ``AᵀA`` (they are left at
    zero rather than divided by zero). Tiny negative eigenvalues from rounding are clipped to zero.

    Args:
        weights: One ``[out_features, latent_dim]`` tensor per layer; any device or float dtype.
        normalize: Scale each row of the stacked matrix to unit norm first (official semantics).
            ``False`` gives the plain eigen-decomposition of ``AᵀA``.
        num_directions: Keep only the top `num_directions` directions (default: all ``latent_dim``).

    Returns:
        ``(vectors, values)``: ``vectors`` ``[num_directions, latent_dim]`` float32 on CPU, one unit
        direction per row; ``values`` ``[num_directions]`` float32, the eigenvalues in descending order.

    Raises:
        ValueError: If `weights` is empty, holds non-2-D tensors, tensors of different latent widths or
            non-finite values, or if `num_directions` is not in ``[1, latent_dim]``.

    Example:

    >>> import torch
    >>> from sefa_plugin.directions import sefa_factorize
    >>> weights = [torch.diag(torch.tensor([3.0, 1.0, 2.0]))]
    >>> vectors, values = sefa_factorize(weights, normalize=False, num_directions=2)
    >>> values
    tensor([9., 4.])
    >>> vectors
    tensor([[1., 0., 0.],
            [0., 0., 1.]])
    """
    a = _stack_weights(weights)
    latent_dim = a.shape[1]
    k = _check_num_directions(num_directions, latent_dim)
    if not isinstance(normalize, bool):
        raise ValueError(f"`normalize` must be True or False, got {normalize!r}.")
    if normalize:
        norms = a.norm(dim=1, keepdim=True)
        zero_rows = int((norms == 0).sum())
        if zero_rows:
            logger.warning("%d of %d weight rows are zero; they do not contribute to SeFa.", zero_rows, len(a))
        a = a / norms.clamp_min(torch.finfo(a.dtype).tiny)
    # float32 throughout, as in the official code: the Gram product (sum_out × latent_dim²) dominates the
    # cost, and float32 eigh is ~2× faster than float64 while agreeing with it to ~1e-6 (relative).
    gram = a.T @ a  # [latent_dim, latent_dim], symmetric positive semi-definite
    # Checked here rather than on `a`: cheaper, and a NaN or inf anywhere in `a` reaches the Gram matrix.
    if not torch.isfinite(gram).all():
        raise ValueError("`weights` contain NaN or infinite values (or values so large that AᵀA overflows).")
    values, vectors = torch.linalg.eigh(gram)  # ascending; eigenvectors in columns
    values = values.flip(0)[:k].clamp_min(0)
    vectors = vectors.flip(1)[:, :k].T  # [k, latent_dim], one direction per row
    vectors = _fix_signs(vectors)
    return vectors.to(torch.float32).contiguous(), values.to(torch.float32).contiguous()
