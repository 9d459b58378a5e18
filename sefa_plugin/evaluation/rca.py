"""Reconstructor classification accuracy (RCA) of any set of directions (Voynov & Babenko, ICML 2020).

RCA asks how distinguishable the effects of K directions are: a reconstructor is trained, with the
directions held **fixed**, to tell from an image and its shifted copy which direction moved it (same
loss, shift distribution and optimiser as learned directions), then its argmax accuracy is measured on
fresh batches (the paper: 100 batches of 32). Chance level is ``1 / K``. This makes SeFa, GANSpace,
learned, random and coordinate directions comparable on one model.

Two protocols: ``mode="full"`` is the paper's (new pairs rendered at every step, full-resolution
reconstructor; :class:`~sefa_plugin.training.latent_discovery.LatentDiscoveryTrainer`), ``mode="fast"``
(the default) trains a smaller reconstructor on downsampled images of a rendered pool of pairs and
scores it on the same number of fresh pairs (:class:`~sefa_plugin.evaluation.fast_rca.RCAEvaluator`).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence

import torch

from ..directions.container import Directions
from ..models.interface import EditableGenerator
from ..training.latent_discovery import LatentDiscoveryConfig, LatentDiscoveryTrainer
from .fast_rca import DEFAULT_TRAIN_PAIRS, RCAEvaluator, RCAResult

__all__ = ["RCA_MODES", "RCAResult", "reconstructor_classification_accuracy"]

#: The RCA protocols: the fast default and the paper's.
RCA_MODES = ("fast", "full")

logger = logging.getLogger(__name__)


def reconstructor_classification_accuracy(
    pipe,
    directions: Directions,
    steps: int = 2000,
    batch_size: int = 32,
    eval_batches: int = 100,
    seed: int = 0,
    *,
    layers: Sequence[int] | None = None,
    shift_scale: float = 6.0,
    min_shift: float = 0.5,
    lr: float | None = None,
    reg_weight: float = 0.25,
    checkpoint_dir: str | os.PathLike | None = None,
    device: str | torch.device | None = None,
    mode: str = "fast",
    train_pairs: int = DEFAULT_TRAIN_PAIRS,
    resolution: int = 32,
) -> RCAResult:
    """Train a reconstructor on fixed `directions` and measure its accuracy on fresh batches.

    Args:
        pipe: A :class:`~sefa_plugin.pipelines.GANPipeline` (its progress bar is used), or a generator.
        directions: The directions to score (any method; they are not changed).
        steps: Reconstructor training steps (the paper trains as long as the learned directions).
        batch_size: Image pairs per step and per evaluation batch (paper: 32).
        eval_batches: Fresh batches for the accuracy (paper: 100).
        seed: Seed of the reconstructor's initialisation and of every batch.
        layers: W+ layers the shifts are added to (default: the directions' own layers).
        shift_scale: Largest shift ``|ε|`` (paper: 6).
        min_shift: Smallest shift ``|ε|`` (paper: 0.5).
        lr: Adam learning rate of the reconstructor (default: the paper's 1e-4 in full mode, 5e-4 in fast mode).
        reg_weight: Weight of the shift's L1 loss (paper: 0.25).
        checkpoint_dir: Folder of a resumable checkpoint of the reconstructor's training.
        device: ``"cpu"`` or ``"cuda"`` (default: the generator's device; full mode only).
        mode: ``"fast"`` (a rendered pool of `train_pairs` pairs, images downsampled to `resolution`, a
            smaller reconstructor) or ``"full"`` (the paper's protocol; see the module docstring).
        train_pairs: Rendered training pairs (fast mode).
        resolution: Image side the reconstructor sees (fast mode).

    Returns:
        :class:`RCAResult`.

    Example:

    >>> from sefa_plugin import DEFAULT_MODEL, SefaPipeline
    >>> from sefa_plugin.evaluation.rca import reconstructor_classification_accuracy
    >>> pipe = SefaPipeline.from_pretrained(DEFAULT_MODEL)
    >>> directions = pipe.factorize(num_directions=10)
    >>> result = reconstructor_classification_accuracy(pipe, directions, steps=2000)  # doctest: +SKIP
    >>> result.accuracy > result.chance  # doctest: +SKIP
    True
    """
    generator: EditableGenerator = getattr(pipe, "generator", pipe)
    if not isinstance(directions, Directions):
        raise TypeError(f"`directions` must be a Directions object, got {type(directions).__name__}.")
    use = list(directions.layers) if layers is None else [int(i) for i in layers]
    directions.check_compatible(generator, use)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"`steps` must be an int ≥ 0, got {steps!r}.")
    if isinstance(eval_batches, bool) or not isinstance(eval_batches, int) or eval_batches < 1:
        raise ValueError(f"`eval_batches` must be a positive int, got {eval_batches!r}.")
    if mode not in RCA_MODES:
        raise ValueError(f"`mode` must be one of {RCA_MODES}, got {mode!r}.")
    if mode == "fast":
        if checkpoint_dir is not None:
            raise ValueError("`checkpoint_dir` is only used with `mode`='full' (fast RCA takes minutes).")

        evaluator = RCAEvaluator(
            pipe, train_pairs=train_pairs, eval_batches=eval_batches, batch_size=batch_size, resolution=resolution,
            lr=5e-4 if lr is None else lr, shift_scale=shift_scale, min_shift=min_shift, reg_weight=reg_weight,
            seed=seed,
        )  # fmt: skip
        return evaluator(directions, steps=steps, layers=use)
    config = LatentDiscoveryConfig(
        layers=use, batch_size=batch_size, lr=1e-4 if lr is None else lr, shift_scale=shift_scale, min_shift=min_shift,
        reg_weight=reg_weight, seed=seed, extra={"purpose": "rca"},
    )  # fmt: skip
    t0 = time.perf_counter()
    trainer = LatentDiscoveryTrainer(
        generator, config, checkpoint_dir=checkpoint_dir, device=device, vectors=directions.vectors
    )
    named = getattr(pipe, "named_progress", None)
    progress_bar = named("RCA reconstructor") if named is not None else None
    trainer.train(steps, checkpoint_every=max(steps // 10, 100), progress_bar=progress_bar)
    accuracy, per_direction = trainer.evaluate(num_batches=eval_batches, batch_size=batch_size)
    seconds = time.perf_counter() - t0
    logger.info(
        "RCA of %d %s directions: %.3f (chance %.3f) after %d steps, %.1f s",
        len(directions), directions.method, accuracy, 1 / len(directions), trainer.step, seconds,
    )  # fmt: skip
    return RCAResult(
        accuracy=accuracy,
        steps=int(trainer.step),
        seconds=seconds,
        per_direction=per_direction,
        num_directions=len(directions),
        eval_samples=eval_batches * batch_size * trainer.accelerator.num_processes,
    )
