"""`LatentDiscoveryPipeline`: latent discovery (Voynov & Babenko, ICML 2020).

A direction matrix and a reconstructor are trained together on the frozen generator: the reconstructor
must tell, from an image and the image moved along one of K directions, which direction was taken and
how far. The pipeline wraps :class:`~sefa_plugin.training.latent_discovery.LatentDiscoveryTrainer` (resumable
checkpoints, ``accelerate`` for devices) and returns the directions in the common
:class:`~sefa_plugin.directions.Directions` format, scored by the reconstructor's per-direction accuracy.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch
from diffusers.utils import BaseOutput

from ..directions.container import Directions
from ..directions.latent_discovery import TRAINABLE_KINDS, check_kind, check_num_directions
from ..directions.layers import LayerSpec, parse_layers
from ..training.latent_discovery import LatentDiscoveryConfig, LatentDiscoveryTrainer
from ..training.reconstructor import Reconstructor
from .base import GANPipeline

logger = logging.getLogger(__name__)

#: Training steps of the paper (10⁵ at batch 32).
PAPER_STEPS = 100_000


@dataclass
class LatentDiscoveryOutput(BaseOutput):
    """Result of :meth:`LatentDiscoveryPipeline.train`.

    Attributes:
        directions: The K directions (unit rows); ``values`` holds each direction's reconstructor
            accuracy on fresh batches (None when `eval_batches` is 0).
        reconstructor: The trained :class:`~sefa_plugin.training.reconstructor.Reconstructor`.
        accuracy: Overall argmax accuracy of the reconstructor on fresh batches (NaN when not evaluated).
    """

    directions: Directions
    reconstructor: Reconstructor
    accuracy: float


class LatentDiscoveryPipeline(GANPipeline):
    """A generator plus the directions latent discovery (Voynov & Babenko) learns unsupervised, and editing.

    Args:
        generator: Any :class:`~sefa_plugin.models.interface.EditableGenerator`.

    Example:

    >>> from sefa_plugin import DEFAULT_MODEL, LatentDiscoveryPipeline
    >>> pipe = LatentDiscoveryPipeline.from_pretrained(DEFAULT_MODEL)
    >>> out = pipe.train(num_directions=10, kind="ortho", steps=20_000, checkpoint_dir="runs/ld")  # doctest: +SKIP
    >>> out.directions.method, len(out.directions)  # doctest: +SKIP
    ('learned', 10)
    >>> images = pipe(seeds=[0], directions=out.directions, index=0, strengths=[-6, 0, 6]).images  # doctest: +SKIP
    """

    def train(
        self,
        num_directions: int = 10,
        kind: str = "ortho",
        steps: int = PAPER_STEPS,
        batch_size: int = 32,
        layers: LayerSpec = "all",
        lr: float = 1e-4,
        shift_scale: float = 6.0,
        min_shift: float = 0.5,
        reg_weight: float = 0.25,
        checkpoint_dir: str | os.PathLike | None = None,
        seed: int = 0,
        *,
        checkpoint_every: int = 1000,
        eval_batches: int = 10,
        device: str | torch.device | None = None,
        strength_range: tuple[float, float] | None = None,
    ) -> LatentDiscoveryOutput:
        """Learn `num_directions` directions (or train a reconstructor on a fixed baseline).

        Args:
            num_directions: K, at most the latent size.
            kind: ``"ortho"`` (orthonormal, the paper's choice for most GANs), ``"linear"``, ``"proj"``
                (unit columns), or the fixed baselines ``"random"`` and ``"coordinate"``.
            steps: Total training steps (the paper: 10⁵); a resumed run continues up to this number.
            batch_size: Image pairs per step (paper: 32).
            layers: W+ layers the shift is added to (``"all"``: a shift of ``w``); also the layers that
                edits change by default.
            lr: Adam learning rate of both networks (paper: 1e-4).
            shift_scale: Largest shift ``|ε|`` (paper: 6), in latent units.
            min_shift: Smallest shift ``|ε|`` (paper: 0.5).
            reg_weight: Weight λ of the shift's L1 loss (paper: 0.25).
            checkpoint_dir: Folder of the resumable checkpoint; training resumes from it.
            seed: Seed of the initialisation and of all batches.
            checkpoint_every: Checkpoint interval in steps.
            eval_batches: Fresh batches on which the final accuracy is measured (0: skip).
            device: ``"cpu"`` or ``"cuda"`` (default: the generator's device; the generator is moved).
            strength_range: Default slider range stored with the directions (default: ±`shift_scale`).

        Returns:
            :class:`LatentDiscoveryOutput`: directions with ``method="learned"`` for the trainable kinds
            (``"random"``/``"coordinate"`` for the baselines), the reconstructor and its accuracy.
        """
        g = self.generator
        check_kind(kind)
        num_directions = check_num_directions(num_directions, g.editable_latent_dim)
        idx = parse_layers(layers, g.num_ws, g.layer_groups())
        if isinstance(eval_batches, bool) or not isinstance(eval_batches, int) or eval_batches < 0:
            raise ValueError(f"`eval_batches` must be an int ≥ 0, got {eval_batches!r}.")
        config = LatentDiscoveryConfig(
            num_directions=num_directions, kind=kind, layers=idx, batch_size=batch_size, lr=lr,
            shift_scale=shift_scale, min_shift=min_shift, reg_weight=reg_weight, seed=seed,
        )  # fmt: skip
        # 1. Train (or resume) the direction matrix and the reconstructor.
        trainer = LatentDiscoveryTrainer(g, config, checkpoint_dir=checkpoint_dir, device=device)
        progress_bar = self.named_progress("latent discovery")
        stats = trainer.train(steps, checkpoint_every=checkpoint_every, progress_bar=progress_bar)
        logger.info("latent discovery: %d steps in %.1f s of training", trainer.step, trainer.wall_seconds)
        # 2. Measure the reconstructor on fresh batches.
        accuracy, per_direction = float("nan"), None
        if eval_batches:
            accuracy, per_direction = trainer.evaluate(num_batches=eval_batches)
        # 3. Wrap the directions: unit rows; "linear" directions' lengths are kept in `extra`.
        matrix = trainer.direction_matrix
        raw = matrix.directions().detach().cpu()
        norms = raw.norm(dim=1)
        method = "learned" if kind in TRAINABLE_KINDS else kind
        directions = Directions(
            vectors=raw / norms.clamp_min(1e-12)[:, None],
            values=per_direction,
            method=method,
            latent_space=g.latent_space,
            layers=idx,
            strength_range=strength_range or (-float(shift_scale), float(shift_scale)),
            base_model=self.provenance(),
            extra={
                "kind": kind, "steps": int(trainer.step), "batch_size": int(batch_size), "lr": float(lr),
                "shift_scale": float(shift_scale), "min_shift": float(min_shift), "reg_weight": float(reg_weight),
                "seed": int(seed), "layers_spec": str(layers), "eval_batches": eval_batches,
                "accuracy": accuracy if eval_batches else None,
                "train_seconds": round(trainer.wall_seconds, 3), "final_stats": stats,
                "norms": [round(float(n), 6) for n in norms], "values": "reconstructor accuracy per direction",
            },
        )  # fmt: skip
        return LatentDiscoveryOutput(
            directions=directions, reconstructor=trainer.unwrapped_reconstructor.eval(), accuracy=accuracy
        )
