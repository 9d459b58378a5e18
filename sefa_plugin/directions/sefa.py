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
import threading
from collections.abc import Sequence

import torch

__all__ = ["sefa_eigh", "sefa_factorize", "sefa_gram"]

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


def sefa_gram(weights: Sequence[torch.Tensor], normalize: bool = True) -> torch.Tensor:
    """The Gram matrix ``AᵀA`` of the stacked (row-normalised) weights, the matrix SeFa decomposes.

    Row normalisation acts on each row alone, so the Gram matrix of several layers is the sum of the
    layers' own Gram matrices: a caller may compute them once per layer and add them per selection
    (:meth:`SefaPipeline.factorize <sefa_plugin.pipelines.SefaPipeline.factorize>` does), then call
    :func:`sefa_eigh`. ``sefa_eigh(sefa_gram(w, n), k)`` is :func:`sefa_factorize` ``(w, n, k)``.

    Args:
        weights: One ``[out_features, latent_dim]`` tensor per layer; any device or float dtype.
        normalize: Scale each row to unit norm first (official semantics); zero rows stay zero.

    Returns:
        ``[latent_dim, latent_dim]`` float32 on CPU, symmetric positive semi-definite.

    Raises:
        ValueError: For the bad `weights` that :func:`sefa_factorize` rejects, or a non-bool `normalize`.

    Example:

    >>> import torch
    >>> sefa_gram([torch.tensor([[3.0, 0.0]]), torch.tensor([[0.0, 2.0]])])
    tensor([[1., 0.],
            [0., 1.]])
    """
    a = _stack_weights(weights)
    if not isinstance(normalize, bool):
        raise ValueError(f"`normalize` must be True or False, got {normalize!r}.")
    if normalize:
        norms = a.norm(dim=1, keepdim=True)
        zero_rows = int((norms == 0).sum())
        if zero_rows:
            logger.warning("%d of %d weight rows are zero; they do not contribute to SeFa.", zero_rows, len(a))
        a = a / norms.clamp_min(torch.finfo(a.dtype).tiny)
    # float32 throughout, as in the official code: the Gram product (sum_out × latent_dim²) dominates the
    # cost of a first factorization.
    gram = a.T @ a  # [latent_dim, latent_dim], symmetric positive semi-definite
    # Checked here rather than on `a`: cheaper. A NaN or inf anywhere in `a` reaches the diagonal (the
    # columns' squared norms), and a finite diagonal bounds every other entry (|G_ij|² ≤ G_ii·G_jj).
    if not torch.isfinite(gram.diagonal()).all():
        raise ValueError("`weights` contain NaN or infinite values (or values so large that AᵀA overflows).")
    return gram


_EIGH_LOCK = threading.Lock()
_BLAS_THREADS = None  # a threadpoolctl controller, made on first use (after SciPy's LAPACK is loaded)


def _top_eigh(gram: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The `k` largest eigenpairs (ascending) of a symmetric float32 matrix: LAPACK ``syevr`` on an index range.

    Solved on one thread: a solve this small gains little from more, and OpenBLAS's spinning threads
    lose whole scheduler slices when the cores are shared (a 512×512 solve took 0.1–6 s with two
    threads on a busy 2-core machine, against ~70 ms with one). The lock keeps concurrent callers from
    interleaving threadpoolctl's save and restore of the thread count.
    """
    global _BLAS_THREADS
    import scipy.linalg  # dependencies of this package (and of scikit-learn); imported when first needed
    from threadpoolctl import ThreadpoolController

    n = gram.shape[0]
    with _EIGH_LOCK:
        if _BLAS_THREADS is None:
            _BLAS_THREADS = ThreadpoolController()
        with _BLAS_THREADS.limit(limits=1, user_api="blas"):
            values, vectors = scipy.linalg.eigh(
                gram.numpy(), subset_by_index=[n - k, n - 1], driver="evr", check_finite=False
            )
    return torch.from_numpy(values), torch.from_numpy(vectors)


def sefa_eigh(gram: torch.Tensor, num_directions: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The top eigenvectors of a SeFa Gram matrix, sorted, with :func:`sefa_factorize`'s sign convention.

    When few directions are asked for (at most an eighth of ``latent_dim``), only those are computed,
    with LAPACK's ``syevr`` on an index range (SciPy, one thread), which skips most of the full
    decomposition's back-transformation (about half the time of a full ``eigh`` at 512); otherwise
    :func:`torch.linalg.eigh` solves the whole spectrum. Both are float32 symmetric solvers and agree
    to rounding.

    Args:
        gram: ``[latent_dim, latent_dim]`` symmetric positive semi-definite matrix (:func:`sefa_gram`).
        num_directions: Keep only the top `num_directions` directions (default: all ``latent_dim``).

    Returns:
        ``(vectors, values)`` as :func:`sefa_factorize` returns them.

    Raises:
        ValueError: If `gram` is not a finite square matrix, or `num_directions` is not in ``[1, latent_dim]``.

    Example:

    >>> import torch
    >>> sefa_eigh(torch.diag(torch.tensor([1.0, 4.0])), num_directions=1)
    (tensor([[0., 1.]]), tensor([4.]))
    """
    if not isinstance(gram, torch.Tensor) or gram.ndim != 2 or gram.shape[0] != gram.shape[1] or not len(gram):
        shape = list(gram.shape) if isinstance(gram, torch.Tensor) else type(gram).__name__
        raise ValueError(f"`gram` must be a square 2-D tensor [latent_dim, latent_dim], got {shape}.")
    latent_dim = gram.shape[0]
    k = _check_num_directions(num_directions, latent_dim)
    gram = gram.detach().to("cpu", torch.float32)
    if not torch.isfinite(gram.sum()):  # one pass, no mask: any NaN or inf makes the sum non-finite
        raise ValueError("`gram` contains NaN or infinite values (or values so large that their sum overflows).")
    if 8 * k <= latent_dim:
        values, vectors = _top_eigh(gram, k)
    else:
        values, vectors = torch.linalg.eigh(gram)  # ascending; eigenvectors in columns
    values = values.flip(0)[:k].clamp_min(0)
    vectors = vectors.flip(1)[:, :k].T  # [k, latent_dim], one direction per row
    vectors = _fix_signs(vectors)
    return vectors.to(torch.float32).contiguous(), values.to(torch.float32).contiguous()


def sefa_factorize(
    weights: Sequence[torch.Tensor],
    normalize: bool = True,
    num_directions: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigen-decompose the Gram matrix of stacked latent weights (SeFa).

    Each weight is the effective affine ``[out_features, latent_dim]`` of one layer
    (:meth:`EditableGenerator.latent_weights`). They are stacked row-wise into ``A``
    ``[sum_out, latent_dim]``; with `normalize`, every row (one output unit's weight vector) is first
    scaled to unit L2 norm, as the official code does (:func:`sefa_gram`). The directions are the
    eigenvectors of ``AᵀA``, solved by a symmetric solver in float32 (the official code's precision;
    :func:`sefa_eigh`), sorted by eigenvalue (largest first), each with a
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
    gram = sefa_gram(weights, normalize=normalize)
    return sefa_eigh(gram, num_directions=num_directions)
