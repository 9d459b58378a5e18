"""`SefaPipeline`: closed-form factorization of latent semantics (Shen & Zhou, CVPR 2021).

SeFa reads the weights of the affine maps that first transform the latent code (StyleGAN's per-layer
style affines, PGGAN/DCGAN's first layer) and returns the eigenvectors of AᵀA with the largest
eigenvalues: the directions the generator is most sensitive to. No sampling, no training.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..directions.container import Directions
from ..directions.layers import parse_layers
from ..directions.sefa import sefa_factorize
from .base import GANPipeline


class SefaPipeline(GANPipeline):
    """A generator plus SeFa factorization and editing.

    Args:
        generator: Any :class:`~sefa_plugin.models.interface.EditableGenerator`.

    Example:

    >>> from sefa_plugin import DEFAULT_MODEL, SefaPipeline
    >>> pipe = SefaPipeline.from_pretrained(DEFAULT_MODEL)
    >>> directions = pipe.factorize(layers="all", num_directions=10)
    >>> directions.method, len(directions)
    ('sefa', 10)
    >>> out = pipe(seeds=[0, 1, 2], directions=directions, index=0, strengths=[-3, 0, 3])
    >>> len(out.images)
    9
    """

    def factorize(
        self,
        layers: str | int | Sequence[int] = "all",
        num_directions: int | None = None,
        normalize: bool = True,
        strength_range: tuple[float, float] = (-5.0, 5.0),
    ) -> Directions:
        """Find the top directions of the chosen layers in closed form.

        Args:
            layers: ``"all"``, a range ``"0-3"``, a list ``"0-1,4"`` or ``[0, 1, 4]``, or a named group
                ``"coarse"``, ``"middle"``, ``"fine"``. Edits change these layers by default.
            num_directions: How many directions to keep (default: ``editable_latent_dim``, which is
                ``latent_dim`` except for class-conditional BigGAN, whose class embedding stays fixed).
            normalize: Scale each output unit's weight vector to unit norm first, as the official code
                does; ``False`` gives the plain eigen-decomposition of AᵀA.
            strength_range: Default slider range stored with the directions.

        Returns:
            :class:`~sefa_plugin.directions.Directions`, sorted by eigenvalue (largest first).
        """
        g = self.generator
        idx = parse_layers(layers, g.num_ws, g.layer_groups())
        k = g.editable_latent_dim if num_directions is None else num_directions
        vectors, values = sefa_factorize(g.latent_weights(idx), normalize=normalize, num_directions=k)
        return Directions(
            vectors=vectors,
            values=values,
            method="sefa",
            latent_space=g.latent_space,
            layers=idx,
            strength_range=strength_range,
            base_model=self.provenance(),
            extra={"normalize": bool(normalize), "layers_spec": str(layers)},
        )
