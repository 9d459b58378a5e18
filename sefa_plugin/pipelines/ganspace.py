"""`GANSpacePipeline`: principal components of the latent distribution (Härkönen et al., NeurIPS 2020).

GANSpace samples the generator's latent distribution and takes its principal components: in W for
style-based generators, and for z-input generators the components of the first layer's activations,
regressed back to ``z``. The PCA streams (float64 running statistics, one ``eigh``), so the paper's
10⁶ samples never sit in memory. Each component keeps its standard deviation, so edits can be given in
σ units (``pipe(..., sigma_units=True)``); edits apply to a layer range, as the paper's ``E(v_i, j-k)``.
"""

from __future__ import annotations

import logging
import time

import torch

from ..directions.container import Directions
from ..directions.ganspace import ganspace_w, ganspace_z
from ..directions.layers import LayerSpec, parse_layers
from ..models.limits import MAX_NUM_SAMPLES, check_count
from .base import GANPipeline

logger = logging.getLogger(__name__)

#: Components kept by default (the paper's caches), capped at the latent size.
DEFAULT_NUM_COMPONENTS = 80


class GANSpacePipeline(GANPipeline):
    """A generator plus GANSpace (PCA) directions and editing.

    Args:
        generator: Any :class:`~sefa_plugin.models.interface.EditableGenerator`.

    Example:

    >>> import torch
    >>> from sefa_plugin import DEFAULT_MODEL, GANSpacePipeline
    >>> pipe = GANSpacePipeline.from_pretrained(DEFAULT_MODEL)
    >>> rng = torch.Generator().manual_seed(0)
    >>> directions = pipe.fit(num_samples=100_000, num_components=10, generator=rng)
    >>> directions.method, len(directions), directions.stds is not None
    ('ganspace', 10, True)
    >>> out = pipe(seeds=[0], directions=directions, index=0, strengths=[-2, 0, 2], sigma_units=True,
    ...            layers="0-3")
    >>> len(out.images)
    3
    """

    @torch.no_grad()
    def fit(
        self,
        num_samples: int = 100_000,
        num_components: int | None = None,
        batch_size: int = 10_000,
        layers: LayerSpec = "all",
        generator: torch.Generator | None = None,
        strength_range: tuple[float, float] | None = None,
        *,
        max_samples: int = MAX_NUM_SAMPLES,
    ) -> Directions:
        """Sample latents, stream their PCA and return the components as directions.

        Args:
            num_samples: Latents to sample (the paper's caches use 10⁶; 10⁵ gives nearly the same top
                components on small models).
            num_components: Components to keep, at most ``editable_latent_dim`` (default: 80, or
                ``editable_latent_dim`` if smaller).
            batch_size: Latents per batch (memory is ``O(batch_size · D + D²)``).
            layers: Layers an edit changes by default: ``"all"``, ``"0-3"``, ``"coarse"`` ... Any range
                can still be given per call with ``pipe(..., layers="0-2")``.
            generator: ``torch.Generator`` for reproducible sampling.
            strength_range: Default slider range in raw latent units (default: ±3σ of the first
                component). Per-component σ units: ``pipe(..., sigma_units=True)``.
            max_samples: The most `num_samples` accepted, checked before any sampling (default
                :data:`~sefa_plugin.models.limits.MAX_NUM_SAMPLES`; a hosted editor passes a stricter one).

        Returns:
            :class:`~sefa_plugin.directions.Directions` with ``method="ganspace"``, ``values`` the
            explained variances (of ``w`` for W, of the first layer's activations for z-input
            generators) and ``stds`` the standard deviation of the latents along each direction.
        """
        g = self.generator
        check_count("num_samples", num_samples, 2, max_samples)
        idx = parse_layers(layers, g.num_ws, g.layer_groups())
        dim = g.editable_latent_dim
        if num_components is None:
            num_components = min(DEFAULT_NUM_COMPONENTS, dim)
        if isinstance(num_components, bool) or not isinstance(num_components, int) or not (1 <= num_components <= dim):
            raise ValueError(
                f"`num_components` must be an int in [1, {dim}] (the editable latent dimension of this "
                f"generator), got {num_components!r}."
            )
        core = ganspace_w if g.latent_space == "w+" else ganspace_z
        t0 = time.perf_counter()
        result = core(
            g, num_samples=num_samples, num_components=num_components, batch_size=batch_size,
            generator=generator, progress=self.named_progress("GANSpace samples"), max_samples=max_samples,
        )  # fmt: skip
        logger.info("GANSpace: %d components from %d samples in %.1f s", num_components, num_samples,
                    time.perf_counter() - t0)  # fmt: skip
        if strength_range is None:
            top = float(result.stds.max())
            strength_range = (-3.0 * top, 3.0 * top) if top > 0 else (-5.0, 5.0)
        return Directions(
            vectors=result.components, values=result.variances, stds=result.stds, method="ganspace",
            latent_space=g.latent_space, layers=idx, labels=[f"PC{i}" for i in range(num_components)],
            strength_range=strength_range, base_model=self.provenance(),
            extra={
                "num_samples": int(num_samples), "batch_size": int(batch_size), "layers_spec": str(layers),
                "pca_space": "w" if g.latent_space == "w+" else "first-layer activations, regressed to z",
                "values": "explained variance",
            },
        )  # fmt: skip
