"""`BoundaryPipeline`: supervised directions from attribute scores (InterFaceGAN, Shen et al., CVPR 2020).

Sample latents, render them, score every image with a scorer (any callable image → score; by default
the factor predictor shipped with the embedded model), keep the top and bottom 2% and fit a linear SVM
per attribute: its unit normal is the edit direction, pointing towards higher scores. Boundaries are
fitted in W for style-based generators (one ``w`` per image, applied to the chosen W+ layers) and in the
editable ``z`` for z-input generators. :meth:`BoundaryPipeline.conditional` makes one boundary
orthogonal to others, so that an edit leaves those attributes unchanged (conditional manipulation).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from ..directions.boundary import fit_boundary, project_orthogonal
from ..directions.container import Directions
from ..directions.layers import LayerSpec, parse_layers
from ..models.limits import MAX_LATENT_ELEMENTS, check_count, check_render_batch
from .base import GANPipeline

logger = logging.getLogger(__name__)

#: A scorer maps images ``[n, C, H, W]`` in [-1, 1] to scores ``[n]`` or ``[n, A]`` (tensor or array).
Scorer = Callable[[torch.Tensor], "torch.Tensor | np.ndarray"]

#: Columns of the factor predictor's ``factor_vector`` used when `attribute_names` is not given: the
#: continuous, non-periodic factors (hues and rotation are angles; pass e.g. "object_hue_cos" for them).
DEFAULT_PREDICTOR_ATTRIBUTES = ("scale", "x", "y", "lighting", "floor_height")


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


class BoundaryPipeline(GANPipeline):
    """A generator plus InterFaceGAN boundaries and conditional editing.

    Args:
        generator: Any unconditional :class:`~sefa_plugin.models.interface.EditableGenerator`.

    Example:

    >>> from sefa_plugin import DEFAULT_MODEL, BoundaryPipeline
    >>> pipe = BoundaryPipeline.from_pretrained(DEFAULT_MODEL)
    >>> directions = pipe.fit(num_samples=5_000, attribute_names=["x", "y", "scale"])  # built-in predictor
    >>> directions.labels
    ['x', 'y', 'scale']
    >>> x_only = pipe.conditional(directions, primary="x", conditions=["y", "scale"])
    >>> out = pipe(seeds=[0], directions=x_only, strengths=[-2, 0, 2], sigma_units=True)
    """

    # ------------------------------------------------------------------ sampling and scoring
    @torch.no_grad()
    def sample_latents(
        self, num_samples: int = 10_000, seed: int = 0, truncation_psi: float = 1.0, batch_size: int = 10_000
    ) -> torch.Tensor:
        """The latents :meth:`fit` samples for a `seed`: ``[num_samples, D]`` on CPU.

        ``w`` for style-based generators (one per image; every W+ layer gets the same one), the
        editable ``z`` otherwise. Use it to score images yourself and pass ``scores=`` to :meth:`fit`.

        Example:

        >>> lat = pipe.sample_latents(1000, seed=0)  # doctest: +SKIP
        >>> ws = lat[:4, None].expand(-1, pipe.generator.num_ws, -1)  # doctest: +SKIP
        >>> images = pipe.generator.synthesize(ws)  # doctest: +SKIP
        """
        g = self.generator
        # The latents are held in memory: bound num_samples × latent size before drawing anything.
        limit = max(MAX_LATENT_ELEMENTS // max(g.latent_dim, int(g.config.z_dim)), 1)
        check_count("num_samples", num_samples, 1, limit, f" (at most {MAX_LATENT_ELEMENTS:,} latent values in memory)")
        if not _is_int(batch_size) or batch_size < 1:
            raise ValueError(f"`batch_size` must be a positive int, got {batch_size!r}.")
        z = g.randn_z(int(num_samples), generator=torch.Generator().manual_seed(int(seed)))
        chunks = [g.sample_latents(z[i : i + batch_size], truncation_psi=truncation_psi)[:, 0].cpu()
                  for i in range(0, num_samples, batch_size)]  # fmt: skip
        return torch.cat(chunks)

    def _score(self, scorer: Scorer, latents: torch.Tensor, batch_size: int) -> np.ndarray:
        """Render `latents` ``[N, D]`` in batches and score them: ``[N, A]`` float64."""
        g = self.generator
        parts: list[np.ndarray] = []
        for start in self.progress_bar(range(0, latents.shape[0], batch_size), desc="score samples"):
            batch = latents[start : start + batch_size]
            images = g.synthesize(batch.unsqueeze(1).expand(-1, g.num_ws, -1), noise_mode="const")
            out = scorer(images)
            if isinstance(out, torch.Tensor):
                out = out.detach().to("cpu", torch.float64).numpy()
            if not isinstance(out, np.ndarray) or out.dtype.kind not in "fiub":
                raise ValueError(f"`scorer` must return a tensor or array [n] or [n, A], got {type(out).__name__}.")
            out = out.astype(np.float64)
            if out.ndim == 1:
                out = out[:, None]
            if out.ndim != 2 or out.shape[0] != batch.shape[0] or out.shape[1] < 1:
                raise ValueError(
                    f"`scorer` must return one score (or one row of A scores) per image: expected shape "
                    f"[{batch.shape[0]}] or [{batch.shape[0]}, A] for a batch of {batch.shape[0]} images, "
                    f"got {list(out.shape)}."
                )
            if parts and out.shape[1] != parts[0].shape[1]:
                raise ValueError(
                    f"`scorer` returned {parts[0].shape[1]} scores per image, then {out.shape[1]}: it must "
                    f"return the same number of attributes for every batch."
                )
            if not np.isfinite(out).all():
                raise ValueError("`scorer` returned NaN or infinite scores.")
            parts.append(out)
        return np.concatenate(parts)

    @staticmethod
    def _predictor_scorer(predictor: Any, attribute_names: Sequence[str] | None) -> tuple[Scorer, list[str]]:
        """Wrap a ``FactorPredictor``: columns of its ``factor_vector`` (linear encodings of each factor)."""
        names = list(predictor.factor_vector_names)
        wanted = list(attribute_names) if attribute_names is not None else [
            n for n in DEFAULT_PREDICTOR_ATTRIBUTES if n in names
        ]  # fmt: skip
        unknown = [n for n in wanted if n not in names]
        if unknown or not wanted:
            raise ValueError(
                f"`attribute_names` must be a non-empty list of the factor predictor's columns {names}; "
                f"got unknown {unknown or wanted}."
            )
        cols = [names.index(n) for n in wanted]

        def scorer(images: torch.Tensor) -> torch.Tensor:
            return predictor.factor_vector(images.to(predictor.device))[:, cols]

        return scorer, wanted

    def _scores_and_names(
        self,
        scorer: Scorer | None,
        scores: torch.Tensor | np.ndarray | None,
        lat: torch.Tensor,
        attribute_names: Sequence[str] | None,
        batch_size: int,
    ) -> tuple[np.ndarray, list[str], str]:
        """Scores ``[N, A]`` (given, or from the scorer or the built-in predictor), names, source."""
        g = self.generator
        num = lat.shape[0]
        source = "scores"
        if scores is not None:
            if isinstance(scores, torch.Tensor):
                scores = scores.detach().to("cpu", torch.float64).numpy()
            s = np.asarray(scores, dtype=np.float64)
            s = s[:, None] if s.ndim == 1 else s
            if s.ndim != 2 or s.shape[0] != num:
                raise ValueError(
                    f"`scores` must have shape [{num}] or [{num}, A] (a row per latent), got {list(s.shape)}."
                )
            names = None
        else:
            if scorer is None:
                from ..embedded import DEFAULT_PREDICTOR
                from ..evaluation.predictor import FactorPredictor

                scorer = FactorPredictor.from_pretrained(DEFAULT_PREDICTOR).to(g.device)
            if _is_factor_predictor(scorer):
                source = type(scorer).__name__
                scorer, names = self._predictor_scorer(scorer, attribute_names)
            elif callable(scorer):
                source = getattr(scorer, "__name__", type(scorer).__name__)
                names = None
            else:
                raise ValueError(f"`scorer` must be callable (images -> scores), got {type(scorer).__name__}.")
            s = self._score(scorer, lat, batch_size)
        num_attr = s.shape[1]
        if names is None:
            if attribute_names is None:
                names = ["score"] if num_attr == 1 else [f"attribute {i}" for i in range(num_attr)]
            else:
                names = [str(n) for n in attribute_names]
                if len(names) != num_attr:
                    raise ValueError(f"`attribute_names` has {len(names)} names for {num_attr} score columns.")
        return s, names, source

    # ------------------------------------------------------------------ fitting
    @torch.no_grad()
    def fit(
        self,
        scorer: Scorer | None = None,
        scores: torch.Tensor | np.ndarray | None = None,
        latents: torch.Tensor | None = None,
        num_samples: int | None = None,
        ratio: float = 0.02,
        attribute_names: Sequence[str] | None = None,
        layers: LayerSpec = "all",
        truncation_psi: float = 1.0,
        batch_size: int = 64,
        seed: int = 0,
        val_split: float = 0.7,
        C: float = 1.0,  # noqa: N803  (scikit-learn's name for the SVM penalty)
        strength_range: tuple[float, float] | None = None,
    ) -> Directions:
        """Fit one boundary per attribute.

        Args:
            scorer: Callable mapping images ``[n, C, H, W]`` in [-1, 1] to scores ``[n]`` or ``[n, A]``
                (tensor or array), higher meaning "more" of each attribute. A ``FactorPredictor`` is
                accepted too. Default (with `scores` also None): the predictor at
                ``sefa_plugin.DEFAULT_PREDICTOR``, scoring the columns of its ``factor_vector`` named
                in `attribute_names` (default: ``scale``, ``x``, ``y``, ``lighting``, ``floor_height``;
                hues are circular, so name ``"object_hue_cos"``/``"object_hue_sin"`` to use them).
            scores: Precomputed scores ``[N]`` or ``[N, A]`` instead of a scorer, for `latents`, or for
                ``pipe.sample_latents(N, seed=seed, truncation_psi=truncation_psi)``.
            latents: Editable latents ``[N, D]`` (``w`` or ``z``; ``[N, num_ws, D]`` uses layer 0)
                instead of sampling.
            num_samples: Latents to sample when `latents` is None (default: 10,000, or ``len(scores)``).
            ratio: Fraction taken as positives and as negatives (the paper: 0.02).
            attribute_names: One label per score column (for the built-in predictor: which columns).
            layers: Layers an edit changes by default (``"all"`` as InterFaceGAN; ``"0-3"``, ``"coarse"``...).
            truncation_psi: Truncation of the sampled latents (1: none, as InterFaceGAN).
            batch_size: Images rendered and scored per batch.
            seed: Seed of the latent sampling and of the train/validation split.
            val_split: Fraction of the chosen samples used for training (the paper: 0.7).
            C: SVM regularisation (the paper: 1).
            strength_range: Default slider range (default: ±3σ of the widest direction).

        Returns:
            :class:`~sefa_plugin.directions.Directions` with ``method="boundary"``, one unit normal per
            attribute, ``values`` the validation accuracies and ``stds`` the standard deviation of the
            latents along each normal; per-attribute statistics in ``extra["stats"]``.

        Raises:
            ValueError: If both or neither of `scorer`/`scores` make sense, shapes disagree, the scorer
                returns the wrong shape, or ``num_samples × ratio`` leaves fewer than 10 examples per side.
        """
        g = self.generator
        if int(getattr(g.config, "c_dim", 0) or 0):
            raise ValueError("BoundaryPipeline supports unconditional generators only (this one has c_dim > 0).")
        if scorer is not None and scores is not None:
            raise ValueError("Give either `scorer` or `scores`, not both.")
        check_render_batch("batch_size", batch_size, g)
        if not math.isfinite(truncation_psi):
            raise ValueError(f"`truncation_psi` must be a finite number, got {truncation_psi}.")
        idx = parse_layers(layers, g.num_ws, g.layer_groups())

        # 1. Latents [N, D].
        if latents is not None:
            lat = torch.as_tensor(latents).detach().to("cpu", torch.float32)
            if lat.ndim == 3:
                lat = lat[:, 0]
            if lat.ndim != 2 or lat.shape[1] != g.latent_dim:
                raise ValueError(
                    f"`latents` must have shape [N, {g.latent_dim}] or [N, num_ws, {g.latent_dim}], "
                    f"got {list(torch.as_tensor(latents).shape)}."
                )
        else:
            n = num_samples
            if scores is not None:
                if num_samples is not None and num_samples != len(scores):
                    raise ValueError(f"`num_samples`={num_samples} but `scores` has {len(scores)} rows.")
                n = len(scores)
            n = 10_000 if n is None else n
            if not _is_int(n) or n < 2:
                raise ValueError(f"`num_samples` must be an int ≥ 2, got {n!r}.")
            lat = self.sample_latents(int(n), seed=seed, truncation_psi=truncation_psi)
        num = lat.shape[0]

        # 2. Scores [N, A] and their names.
        s, names, source = self._scores_and_names(scorer, scores, lat, attribute_names, batch_size)

        # 3. One linear SVM per attribute.
        normals, accuracies, stats = [], [], []
        for a, name in enumerate(names):
            try:
                normal, st = fit_boundary(lat, s[:, a], ratio=ratio, val_split=val_split, C=C, seed=seed)
            except ValueError as err:
                raise ValueError(f"attribute {name!r}: {err}") from err
            normals.append(normal)
            accuracies.append(st["val_accuracy"] if st["val_accuracy"] is not None else st["train_accuracy"])
            stats.append({"attribute": name, **st})
        vectors = torch.stack(normals)
        stds = (lat.to(torch.float64) @ vectors.T.to(torch.float64)).std(dim=0)
        if strength_range is None:
            top = float(stds.max())
            strength_range = (-3.0 * top, 3.0 * top) if top > 0 else (-5.0, 5.0)
        return Directions(
            vectors=vectors, values=torch.tensor(accuracies), stds=stds, method="boundary",
            latent_space=g.latent_space, layers=idx, labels=names, strength_range=strength_range,
            base_model=self.provenance(),
            extra={
                "ratio": float(ratio), "val_split": float(val_split), "C": float(C), "num_samples": int(num),
                "seed": int(seed), "truncation_psi": float(truncation_psi), "scorer": source,
                "space": "w" if g.latent_space == "w+" else "z",
                "values": "validation accuracy" if val_split < 1 else "training accuracy",
                "layers_spec": str(layers), "stats": stats,
            },
        )  # fmt: skip

    # ------------------------------------------------------------------ conditional editing
    @torch.no_grad()
    def conditional(
        self,
        directions: Directions,
        primary: int | str,
        conditions: Sequence[int | str],
        num_samples: int = 10_000,
        seed: int = 0,
    ) -> Directions:
        """Project one direction orthogonal to others (InterFaceGAN's conditional manipulation).

        Args:
            directions: Boundaries (or any directions) for this generator.
            primary: Index or label of the direction to edit along.
            conditions: Indices or labels of the directions that must not change (one, two or many).
            num_samples: Latents sampled to measure the new direction's standard deviation (σ units).
            seed: Seed of that sampling.

        Returns:
            A one-direction :class:`~sefa_plugin.directions.Directions` holding the projected unit vector,
            labelled ``"<primary> | <condition>, ..."``.

        Example:

        >>> cond = pipe.conditional(directions, primary="x", conditions=["y"])  # doctest: +SKIP
        >>> cond.labels  # doctest: +SKIP
        ['x | y']
        """
        g = self.generator
        directions.check_compatible(g)
        p = _resolve_index(directions, primary, "primary")
        if isinstance(conditions, (str, int)):
            conditions = [conditions]
        cond = [_resolve_index(directions, c, "conditions") for c in conditions]
        if not cond:
            raise ValueError("`conditions` must name at least one direction.")
        if p in cond:
            raise ValueError(f"`conditions` must not contain the primary direction {directions.labels[p]!r}.")
        vector = project_orthogonal(directions.vectors[p], directions.vectors[cond])
        if not _is_int(num_samples) or num_samples < 2:
            raise ValueError(f"`num_samples` must be an int ≥ 2, got {num_samples!r}.")
        lat = self.sample_latents(int(num_samples), seed=seed)
        std = (lat.to(torch.float64) @ vector.to(torch.float64)).std()
        label = f"{directions.labels[p]} | " + ", ".join(directions.labels[c] for c in cond)
        extra = {k: v for k, v in directions.extra.items() if k != "stats"}
        extra["conditional"] = {
            "primary": directions.labels[p],
            "conditions": [directions.labels[c] for c in cond],
        }
        return Directions(
            vectors=vector[None], method=directions.method, latent_space=directions.latent_space,
            layers=list(directions.layers), stds=std.reshape(1), labels=[label],
            strength_range=directions.strength_range, base_model=dict(directions.base_model), extra=extra,
        )  # fmt: skip


def _is_factor_predictor(obj: object) -> bool:
    from ..evaluation.predictor import FactorPredictor

    return isinstance(obj, FactorPredictor)


def _resolve_index(directions: Directions, key: int | str, name: str) -> int:
    if isinstance(key, str):
        if key not in directions.labels:
            raise ValueError(f"`{name}` {key!r} is not a label of these directions: {directions.labels}.")
        return directions.labels.index(key)
    if not _is_int(key) or not 0 <= int(key) < len(directions):
        raise ValueError(f"`{name}` must be a label or an index in [0, {len(directions) - 1}], got {key!r}.")
    return int(key)
