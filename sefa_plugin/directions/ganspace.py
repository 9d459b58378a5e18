"""GANSpace: principal components of the latent distribution as edit directions.

Härkönen, Hertzmann, Lehtinen & Paris, "GANSpace: Discovering Interpretable GAN Controls", NeurIPS 2020
(https://arxiv.org/abs/2004.02546; official code: https://github.com/harskish/ganspace).

* Style-based generators (``latent_space == "w+"``): sample ``z``, map it to ``w`` (no truncation) and
  take the principal components of the ``w`` samples. Directions live in W and can be applied to any
  range of W+ layers ("layer-wise edits" in the paper).
* Generators fed directly by ``z`` (PGGAN, DCGAN): take the principal components of the first layer's
  activations, then find, by least-squares regression over the sampled latents, the latent direction
  that best predicts each principal coordinate (see :func:`regress_activation_components`).

The PCA is computed in one streaming pass (:class:`StreamingPCA`): running mean and scatter matrix in
float64, merged batch by batch (Chan et al.'s pairwise update), then one symmetric eigen-decomposition.
Memory is ``O(D²)`` whatever the number of samples, so the paper's 10⁶ samples never sit in memory.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import NamedTuple

import torch

from ..models.interface import EditableGenerator
from ..models.limits import MAX_LATENT_ELEMENTS, MAX_NUM_SAMPLES, check_count
from .sefa import _fix_signs

__all__ = [
    "PCAResult",
    "StreamingPCA",
    "ganspace_w",
    "ganspace_z",
    "regress_activation_components",
    "stream_latent_pca",
]

logger = logging.getLogger(__name__)

#: Progress wrapper for the sampling loop (e.g. ``tqdm`` or a pipeline's ``progress_bar``).
Progress = Callable[[Iterable[int]], Iterable[int]]


class PCAResult(NamedTuple):
    """Principal components and their spread.

    Attributes:
        components: ``[K, D]`` float32, unit rows, sorted by variance (largest first); each row's entry
            of largest magnitude is positive.
        variances: ``[K]`` float32, explained variance of each component (descending).
        stds: ``[K]`` float32, standard deviation of the latents along each component (σ units).
        mean: ``[D]`` float32, the mean of the samples.
    """

    components: torch.Tensor
    variances: torch.Tensor
    stds: torch.Tensor
    mean: torch.Tensor


def _check_num_components(num_components: int, dim: int) -> int:
    if isinstance(num_components, bool) or not isinstance(num_components, int) or not 1 <= num_components <= dim:
        raise ValueError(
            f"`num_components` must be an int in [1, {dim}] (the latent dimension), got {num_components!r}."
        )
    return num_components


def _check_enough_samples(num_samples: int, num_components: int) -> None:
    """PCA of n samples has at most n - 1 nonzero components: the rest would be saved as rounding noise."""
    if isinstance(num_samples, int) and not isinstance(num_samples, bool) and num_samples <= num_components:
        raise ValueError(
            f"`num_samples`={num_samples} must be greater than `num_components`={num_components}: the PCA of n "
            f"samples has at most n - 1 components with nonzero variance (the rest would be noise). Sample more "
            f"latents (the paper: 10⁶) or keep fewer components."
        )


def _check_positive_int(value: int, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"`{name}` must be an int ≥ {minimum}, got {value!r}.")
    return value


def _top_eigh(matrix: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-`k` eigenpairs of a symmetric matrix: values ``[k]`` (descending, ≥ 0), vectors ``[k, D]``."""
    values, vectors = torch.linalg.eigh(matrix)  # ascending, eigenvectors in columns
    values = values.flip(0)[:k].clamp_min(0)
    vectors = _fix_signs(vectors.flip(1)[:, :k].T)
    return values, vectors


class StreamingPCA:
    """PCA of a stream of batches in one pass, with float64 running statistics.

    Each :meth:`update` merges the batch's mean and centred scatter matrix into the running ones
    (Chan, Golub & LeVeque's pairwise formula), which stays accurate even when the mean is large
    compared with the spread. :meth:`result` eigen-decomposes the sample covariance (``ddof = 1``, as
    scikit-learn's ``PCA.explained_variance_``) with :func:`torch.linalg.eigh`.

    Args:
        dim: Width ``D`` of each sample.

    Example:

    >>> import torch
    >>> from sefa_plugin.directions.ganspace import StreamingPCA
    >>> x = torch.randn(1000, 3, generator=torch.Generator().manual_seed(0)) * torch.tensor([5.0, 1.0, 0.1])
    >>> pca = StreamingPCA(3)
    >>> for batch in x.split(300):
    ...     _ = pca.update(batch)
    >>> res = pca.result(num_components=2)
    >>> res.components.abs().round()
    tensor([[1., 0., 0.],
            [0., 1., 0.]])
    >>> pca.count
    1000
    """

    def __init__(self, dim: int) -> None:
        self.dim = _check_positive_int(dim, "dim")
        self.count = 0
        self._mean: torch.Tensor | None = None  # [D] float64
        self._scatter: torch.Tensor | None = None  # [D, D] float64, sum of centred outer products

    def update(self, batch: torch.Tensor) -> StreamingPCA:
        """Add a batch of samples ``[n, D]`` (any float dtype and device); returns ``self``."""
        if not isinstance(batch, torch.Tensor) or batch.ndim != 2 or batch.shape[1] != self.dim:
            shape = list(batch.shape) if isinstance(batch, torch.Tensor) else type(batch).__name__
            raise ValueError(f"`batch` must be a tensor of shape [n, {self.dim}], got {shape}.")
        n = int(batch.shape[0])
        if n == 0:
            return self
        x = batch.detach().to(torch.float64)
        if not torch.isfinite(x).all():
            raise ValueError("`batch` contains NaN or infinite values.")
        batch_mean = x.mean(dim=0)
        centred = x - batch_mean
        batch_scatter = centred.T @ centred
        if self._mean is None or self._scatter is None:
            self._mean, self._scatter, self.count = batch_mean, batch_scatter, n
            return self
        total = self.count + n
        delta = batch_mean.to(self._mean.device) - self._mean
        self._scatter += batch_scatter.to(self._scatter.device) + torch.outer(delta, delta) * (self.count * n / total)
        self._mean += delta * (n / total)
        self.count = total
        return self

    @property
    def mean(self) -> torch.Tensor:
        """The running mean ``[D]`` (float64)."""
        self._check_ready(1)
        return self._mean.clone()  # type: ignore[union-attr]

    def covariance(self) -> torch.Tensor:
        """The sample covariance ``[D, D]`` (float64, ``ddof = 1``)."""
        self._check_ready(2)
        cov = self._scatter / (self.count - 1)  # type: ignore[operator]
        return (cov + cov.T) / 2  # exactly symmetric for eigh

    @property
    def total_variance(self) -> float:
        """Sum of the variances of all ``D`` coordinates (the trace of the covariance)."""
        return float(torch.diagonal(self.covariance()).sum())

    def _check_ready(self, minimum: int) -> None:
        if self.count < minimum:
            raise ValueError(f"StreamingPCA has seen {self.count} samples; at least {minimum} are needed.")

    def result(self, num_components: int) -> PCAResult:
        """The top `num_components` principal components (see :class:`PCAResult`)."""
        k = _check_num_components(num_components, self.dim)
        values, vectors = _top_eigh(self.covariance(), k)
        return PCAResult(
            components=vectors.to("cpu", torch.float32).contiguous(),
            variances=values.to("cpu", torch.float32).contiguous(),
            stds=values.sqrt().to("cpu", torch.float32).contiguous(),
            mean=self.mean.to("cpu", torch.float32).contiguous(),
        )


def regress_activation_components(
    latent_covariance: torch.Tensor,
    weight: torch.Tensor,
    num_components: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """GANSpace for z-input generators: PCA of ``x = A z`` mapped back to ``z`` by least squares.

    The paper takes the principal components ``u_k`` of the first layer's activations ``x``, projects
    every sampled ``z`` to its (σ-scaled) principal coordinates ``c = diag(1/s) Uᵀ (x - x̄)`` and solves the
    least-squares problem ``min_M ‖C M - Z‖`` over the samples: row ``k`` of ``M`` is the latent direction
    of component ``k``. Here the activations are the linear part of the first layer, ``x = A z``
    (``A = latent_weights([0])[0]``; the bias only shifts the mean, which PCA removes), so every moment
    that PCA and the regression need is a function of the covariance ``Σ`` of the sampled ``z``:

    * activation covariance ``A Σ Aᵀ``; its nonzero eigenpairs come from the SVD of ``A Σ^½``
      (``[F, D]``), never forming the ``F × F`` matrix (``F`` = C·16 features for PGGAN);
    * the normal equations of the regression, ``(Cᵀ C / n) M = Cᵀ Z / n`` with
      ``Cᵀ C / n = diag(1/s) Uᵀ A Σ Aᵀ U diag(1/s)`` (the identity, up to rounding) and
      ``Cᵀ Z / n = diag(1/s) Uᵀ A Σ``, solved with :func:`torch.linalg.lstsq` (centred ``z``: the
      intercept is the mean, which a direction does not need).

    The result is therefore exactly the least-squares solution over the streamed samples, computed
    without keeping them. (With isotropic ``z``, ``Σ = I`` and the directions are the right singular
    vectors of ``A``: SeFa without row normalisation.)

    Args:
        latent_covariance: ``Σ`` ``[D, D]``, covariance of the sampled editable latents.
        weight: ``A`` ``[F, D]``, the first layer's linear map.
        num_components: How many components ``K`` (at most ``D``).

    Returns:
        ``(directions, variances, stds)``: unit latent directions ``[K, D]`` (float32, sign-fixed),
        the activation variances of the components ``[K]`` (descending) and the standard deviation of
        the latents along each direction ``[K]``.

    Example:

    >>> import torch
    >>> from sefa_plugin.directions.ganspace import regress_activation_components
    >>> a = torch.diag(torch.tensor([1.0, 3.0, 2.0]))
    >>> dirs, var, std = regress_activation_components(torch.eye(3), a, num_components=2)
    >>> dirs, var
    (tensor([[0., 1., 0.],
            [0., 0., 1.]]), tensor([9., 4.]))
    """
    sigma = torch.as_tensor(latent_covariance).detach().to("cpu", torch.float64)
    a = torch.as_tensor(weight).detach().to("cpu", torch.float64)
    if sigma.ndim != 2 or sigma.shape[0] != sigma.shape[1]:
        raise ValueError(f"`latent_covariance` must be a square matrix [D, D], got {list(sigma.shape)}.")
    if a.ndim != 2 or a.shape[1] != sigma.shape[0]:
        raise ValueError(f"`weight` must have shape [F, {sigma.shape[0]}], got {list(a.shape)}.")
    k = _check_num_components(num_components, sigma.shape[0])
    sigma = (sigma + sigma.T) / 2
    evals, evecs = torch.linalg.eigh(sigma)
    sqrt_sigma = (evecs * evals.clamp_min(0).sqrt()) @ evecs.T  # Σ^½
    u, s, _ = torch.linalg.svd(a @ sqrt_sigma, full_matrices=False)  # A Σ^½ = U S Vᵀ
    if k > s.shape[0] or s[k - 1] <= s[0] * 1e-10:
        raise ValueError(
            f"`num_components`={k} exceeds the rank of the first layer's activations "
            f"(only {int((s > s[0] * 1e-10).sum())} components have nonzero variance)."
        )
    u_k, s_k = u[:, :k], s[:k]  # activation components [F, K], their standard deviations [K]
    # Regression of z on the σ-scaled principal coordinates: C^T C / n = I, C^T Z / n = diag(1/s) U^T A Σ.
    proj = u_k.T @ a  # [K, D]: principal coordinates of x = A z (before scaling)
    gram = (proj @ sigma @ proj.T) / torch.outer(s_k, s_k)  # C^T C / n (the identity, up to rounding)
    cross = (proj @ sigma) / s_k[:, None]  # C^T Z / n, [K, D]
    m = torch.linalg.lstsq(gram, cross).solution  # [K, D], row k: latent direction of component k
    directions = _fix_signs(m / m.norm(dim=1, keepdim=True))
    stds = torch.einsum("kd,de,ke->k", directions, sigma, directions).clamp_min(0).sqrt()
    return (
        directions.to(torch.float32).contiguous(),
        s_k.square().to(torch.float32).contiguous(),
        stds.to(torch.float32).contiguous(),
    )


def _class_labels(gan: EditableGenerator, n: int, generator: torch.Generator | None) -> torch.Tensor | None:
    """Uniformly random one-hot labels for conditional generators (the whole class mixture), else None."""
    c_dim = int(getattr(gan.config, "c_dim", 0) or 0)  # type: ignore[attr-defined]
    if c_dim == 0:
        return None
    c = torch.zeros([n, c_dim])
    c[torch.arange(n), torch.randint(c_dim, [n], generator=generator)] = 1
    return c


@torch.no_grad()
def stream_latent_pca(
    gan: EditableGenerator,
    num_samples: int,
    batch_size: int = 10_000,
    generator: torch.Generator | None = None,
    progress: Progress | None = None,
    *,
    max_samples: int = MAX_NUM_SAMPLES,
) -> StreamingPCA:
    """Sample editable latents batch by batch and accumulate their statistics.

    Each batch draws ``z`` with `generator` and maps it with ``gan.sample_latents`` without truncation;
    layer 0 of the result is kept (all W+ layers are equal before truncation; z-input generators have
    one). Conditional generators get uniformly random class labels.

    Args:
        gan: The generator.
        num_samples: How many latents to draw (the paper uses 10⁶).
        batch_size: Latents per batch.
        generator: ``torch.Generator`` for reproducible sampling.
        progress: Optional wrapper around the batch iterator (e.g. a pipeline's ``progress_bar``).
        max_samples: The most `num_samples` accepted (checked before sampling; front ends pass stricter ones).

    Returns:
        The filled :class:`StreamingPCA`.
    """
    num_samples = check_count("num_samples", num_samples, 2, max_samples)
    batch_limit = max(MAX_LATENT_ELEMENTS // max(gan.latent_dim, int(gan.config.z_dim)), 1)  # type: ignore[attr-defined]
    batch_size = check_count("batch_size", batch_size, 1, batch_limit, " (latents per batch held in memory)")
    pca = StreamingPCA(gan.latent_dim)
    starts: Iterable[int] = range(0, num_samples, batch_size)
    for start in progress(starts) if progress is not None else starts:
        n = min(batch_size, num_samples - start)
        z = gan.randn_z(n, generator=generator)
        c = _class_labels(gan, n, generator)
        latents = gan.sample_latents(z, c=c, truncation_psi=1.0)  # [n, num_ws, D]
        pca.update(latents[:, 0])
    return pca


def ganspace_w(
    gan: EditableGenerator,
    num_samples: int = 1_000_000,
    num_components: int = 80,
    batch_size: int = 10_000,
    generator: torch.Generator | None = None,
    progress: Progress | None = None,
    *,
    max_samples: int = MAX_NUM_SAMPLES,
) -> PCAResult:
    """GANSpace in W: principal components of untruncated ``w`` samples, streamed.

    Args:
        gan: A style-based generator (``latent_space == "w+"``).
        num_samples: How many ``w`` to sample.
        num_components: How many components (at most ``w_dim``).
        batch_size: Samples per batch.
        generator: ``torch.Generator`` for reproducible sampling.
        progress: Optional wrapper around the batch iterator.
        max_samples: The most `num_samples` accepted (see :func:`stream_latent_pca`).

    Example:

    >>> import torch
    >>> from sefa_plugin.models import StyleGAN2Generator
    >>> from sefa_plugin.directions.ganspace import ganspace_w
    >>> g = StyleGAN2Generator(z_dim=8, w_dim=8, img_resolution=8, channel_base=64, channel_max=8)
    >>> res = ganspace_w(g, num_samples=2000, num_components=3, generator=torch.Generator().manual_seed(0))
    >>> tuple(res.components.shape), bool((res.variances[:-1] >= res.variances[1:]).all())
    ((3, 8), True)
    """
    if gan.latent_space != "w+":
        raise ValueError(
            f"`gan` edits the {gan.latent_space!r} space: ganspace_w needs a style-based generator "
            f"(latent_space 'w+'); use ganspace_z for z-input generators."
        )
    _check_num_components(num_components, gan.latent_dim)
    _check_enough_samples(num_samples, num_components)
    pca = stream_latent_pca(
        gan, num_samples, batch_size=batch_size, generator=generator, progress=progress, max_samples=max_samples
    )
    return pca.result(num_components)


def ganspace_z(
    gan: EditableGenerator,
    num_samples: int = 1_000_000,
    num_components: int = 80,
    batch_size: int = 10_000,
    generator: torch.Generator | None = None,
    progress: Progress | None = None,
    *,
    max_samples: int = MAX_NUM_SAMPLES,
) -> PCAResult:
    """GANSpace for z-input generators: PCA of the first layer's activations, regressed back to ``z``.

    Streams the editable latents (``z``, pixel-normalised for PGGAN), then calls
    :func:`regress_activation_components` with their covariance and ``gan.latent_weights([0])[0]``,
    both restricted to the first ``gan.editable_latent_dim`` coordinates: a class-conditional BigGAN's
    directions move ``z`` only (their class-embedding part is zero).
    ``variances`` are those of the activation-space components; ``stds`` are measured along the
    latent directions.

    Example:

    >>> import torch
    >>> from sefa_plugin.models import DCGANGenerator
    >>> from sefa_plugin.directions.ganspace import ganspace_z
    >>> g = DCGANGenerator(z_dim=8, img_resolution=8, channel_base=64, channel_max=8).eval()
    >>> res = ganspace_z(g, num_samples=2000, num_components=3, generator=torch.Generator().manual_seed(0))
    >>> tuple(res.components.shape), tuple(res.stds.shape)
    ((3, 8), (3,))
    """
    if gan.latent_space != "z":
        raise ValueError(
            f"`gan` edits the {gan.latent_space!r} space: ganspace_z needs a z-input generator "
            f"(latent_space 'z'); use ganspace_w for style-based generators."
        )
    edim = gan.editable_latent_dim
    _check_num_components(num_components, edim)
    _check_enough_samples(num_samples, num_components)
    pca = stream_latent_pca(
        gan, num_samples, batch_size=batch_size, generator=generator, progress=progress, max_samples=max_samples
    )
    # Only the editable coordinates enter the regression (BigGAN: z, not the class embedding), so the
    # directions never move the fixed part of the latent.
    directions, variances, stds = regress_activation_components(
        pca.covariance()[:edim, :edim], gan.latent_weights([0])[0][:, :edim], num_components
    )
    directions = torch.nn.functional.pad(directions, (0, gan.latent_dim - edim))
    return PCAResult(directions, variances, stds, pca.mean.to("cpu", torch.float32))
