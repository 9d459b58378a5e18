"""`SefaPipeline`: closed-form factorization of latent semantics (Shen & Zhou, CVPR 2021).

SeFa reads the weights of the affine maps that first transform the latent code (StyleGAN's per-layer
style affines, PGGAN/DCGAN's first layer) and returns the eigenvectors of AᵀA with the largest
eigenvalues: the directions the generator is most sensitive to. No sampling, no training.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence

import torch

from ..directions.container import Directions
from ..directions.layers import parse_layers
from ..directions.sefa import sefa_eigh, sefa_gram
from ..models.interface import EditableGenerator
from ..utils.tensor_state import TensorsSnapshot
from .base import GANPipeline


class LayerGramCache:
    """Each layer's SeFa Gram matrix of one generator, computed once and reused while its weights are unchanged.

    SeFa over several layers decomposes the sum of the layers' own Gram matrices (:func:`sefa_gram`), so
    a new layer selection (what the editor asks for when a user moves the layer range) only adds cached
    ``[latent_dim, latent_dim]`` matrices before the eigen-solve. The cache is dropped when the generator
    is another object or any of its tensors changed (:class:`~sefa_plugin.utils.tensor_state.TensorsSnapshot`:
    in-place writes, replaced parameters, ``.to()``); it holds at most ``num_ws`` float32 matrices
    (18 × 1 MiB for a 1024² StyleGAN2) and no reference to the generator.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._generator: weakref.ref | None = None
        self._snapshot: TensorsSnapshot | None = None
        self._grams: dict[tuple[int, bool], torch.Tensor] = {}

    def __getstate__(self) -> dict:  # a copied or pickled pipeline starts with an empty cache (and its own lock)
        return {}

    def __setstate__(self, state: dict) -> None:
        self.__init__()

    def gram(self, generator: EditableGenerator, layers: Sequence[int], normalize: bool) -> torch.Tensor:
        """The SeFa Gram matrix of `layers` (valid indices) of `generator`: the sum of the layers' own."""
        with self._lock:
            state = generator.state_dict(keep_vars=True)
            same = self._generator is not None and self._generator() is generator
            if not (same and self._snapshot is not None and self._snapshot.matches(state)):
                self._grams.clear()
                self._generator, self._snapshot = weakref.ref(generator), TensorsSnapshot.of(state)
            missing = [i for i in dict.fromkeys(layers) if (i, normalize) not in self._grams]
            if missing:
                for i, w in zip(missing, generator.latent_weights(missing), strict=True):
                    self._grams[(i, normalize)] = sefa_gram([w], normalize=normalize)
            total = self._grams[(layers[0], normalize)].clone()
            for i in layers[1:]:
                total += self._grams[(i, normalize)]
            if self._snapshot is None:  # changes could not be detected (inference tensors): keep nothing
                self._grams.clear()
            return total


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

        Each layer's Gram matrix is computed once per generator and reused until a weight changes
        (:class:`LayerGramCache`), and the weights' fingerprint in ``base_model`` is cached the same way
        (:func:`~sefa_plugin.hub.weights_sha256`), so a new `layers` selection on the same generator
        costs about one eigen-solve.
        """
        g = self.generator
        idx = parse_layers(layers, g.num_ws, g.layer_groups())
        k = g.editable_latent_dim if num_directions is None else num_directions
        if not isinstance(normalize, bool):
            raise ValueError(f"`normalize` must be True or False, got {normalize!r}.")
        # Per-layer Gram matrices are cached per generator, so only the first call pays for the products
        # (sum_out × latent_dim² multiply-adds); `sefa_factorize(g.latent_weights(idx), ...)` equals this.
        cache = self.__dict__.setdefault("_layer_grams", LayerGramCache())
        vectors, values = sefa_eigh(cache.gram(g, idx, normalize), num_directions=k)
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
