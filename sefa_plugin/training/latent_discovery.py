"""Latent discovery's resumable training: a direction matrix and a reconstructor on a frozen generator.

Voynov & Babenko, "Unsupervised Discovery of Interpretable Directions in the GAN Latent Space", ICML
2020 (https://arxiv.org/abs/2002.03754). Each step draws latents, direction indices and shifts
(:func:`~sefa_plugin.directions.latent_discovery.sample_shifts`), renders each image and its shifted
copy, and trains the :class:`~sefa_plugin.training.reconstructor.Reconstructor` (and, for the
trainable kinds, the :class:`~sefa_plugin.directions.latent_discovery.DirectionMatrix`) on
:func:`~sefa_plugin.directions.latent_discovery.discovery_loss`. Every batch has its own seed, so a
run resumed from its checkpoint (:mod:`~sefa_plugin.training.checkpoint`) continues exactly; several
processes are handled by ``accelerate``.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..directions.latent_discovery import (
    DirectionMatrix,
    apply_shift,
    check_kind,
    check_num_directions,
    check_shift_range,
    discovery_loss,
    sample_shifts,
)
from ..models.interface import EditableGenerator
from ..models.limits import check_render_batch
from ..utils.checks import is_int
from .checkpoint import append_log, load_checkpoint, save_checkpoint_atomic
from .reconstructor import Reconstructor

__all__ = ["CHECKPOINT_NAME", "LatentDiscoveryConfig", "LatentDiscoveryTrainer", "keyed_generator", "random_codes"]

logger = logging.getLogger(__name__)

#: File name of the resumable checkpoint inside a run's `checkpoint_dir`.
CHECKPOINT_NAME = "latent_discovery.pt"
NOISE_MODES = ("const", "random", "none")
#: Steps timed before the "estimated N min" line of a long run is logged.
ESTIMATE_AFTER = 5


@dataclass
class LatentDiscoveryConfig:
    """Settings of one run (stored in its checkpoint; resuming needs the same settings).

    Attributes:
        num_directions: K (at most the latent size; ignored with fixed `vectors`).
        kind: One of :data:`DIRECTION_KINDS`, or ``"fixed"`` (set by the trainer for given vectors).
        layers: W+ layers the shift is added to (None: all layers).
        batch_size: Image pairs per step (per process).
        lr: Adam learning rate of both networks (paper: 1e-4).
        shift_scale: Largest ``|ε|`` (paper: 6).
        min_shift: Smallest ``|ε|`` (paper: 0.5).
        reg_weight: λ, the weight of the shift L1 term (paper: 0.25).
        seed: Seed of the initialisation and of every batch.
        noise_mode: Noise of the generator's synthesis (``"const"``: only the shift changes the image).
        base_channels: Reconstructor width (see :class:`Reconstructor`).
        max_channels: Reconstructor's widest layer.
    """

    num_directions: int = 10
    kind: str = "ortho"
    layers: list[int] | None = None
    batch_size: int = 32
    lr: float = 1e-4
    shift_scale: float = 6.0
    min_shift: float = 0.5
    reg_weight: float = 0.25
    seed: int = 0
    noise_mode: str = "const"
    base_channels: int = 32
    max_channels: int = 128
    extra: dict = field(default_factory=dict)


def keyed_generator(*keys: int) -> torch.Generator:
    """An independent CPU RNG per tuple of keys, e.g. (run seed, stream, step, process): runs resume exactly.

    Example:

    >>> a, b = keyed_generator(0, 1, 2), keyed_generator(0, 1, 3)
    >>> bool(torch.equal(torch.rand(2, generator=a), torch.rand(2, generator=keyed_generator(0, 1, 2))))
    True
    """
    state = np.random.SeedSequence([int(k) for k in keys]).generate_state(2, np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def random_codes(
    generator: EditableGenerator, n: int, rng: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Latent codes ``z`` ``[n, z_dim]`` and, for class-conditional generators, one-hot classes ``c`` (on CPU)."""
    z = generator.randn_z(n, generator=rng)
    c_dim = int(getattr(getattr(generator, "config", None), "c_dim", 0) or 0)
    c = F.one_hot(torch.randint(c_dim, (n,), generator=rng), c_dim).float() if c_dim else None
    return z, c


def _module_device(module: nn.Module) -> torch.device:
    for t in (*module.parameters(), *module.buffers()):
        return t.device
    return torch.device("cpu")


class LatentDiscoveryTrainer:
    """Joint training of a :class:`DirectionMatrix` and a :class:`Reconstructor` on a frozen generator.

    Args:
        generator: Any :class:`~sefa_plugin.models.interface.EditableGenerator` (moved to the device).
        config: The run's :class:`LatentDiscoveryConfig`.
        checkpoint_dir: Folder of the resumable checkpoint (``latent_discovery.pt``) and ``log.jsonl``;
            training resumes from it when it holds a checkpoint of the same run. None: no checkpoints.
        device: ``"cpu"`` or ``"cuda"``; default: the generator's device (a multi-process
            ``accelerate launch`` always uses one accelerator per process).
        vectors: ``[K, D]`` directions to hold fixed (RCA of existing directions); sets ``kind="fixed"``.

    Example:

    >>> from sefa_plugin.training.latent_discovery import LatentDiscoveryConfig, LatentDiscoveryTrainer
    >>> trainer = LatentDiscoveryTrainer(generator, LatentDiscoveryConfig(num_directions=5))  # doctest: +SKIP
    >>> trainer.train(steps=1000)  # doctest: +SKIP
    >>> accuracy, per_direction = trainer.evaluate(num_batches=100)  # doctest: +SKIP
    """

    def __init__(
        self,
        generator: EditableGenerator,
        config: LatentDiscoveryConfig,
        checkpoint_dir: str | os.PathLike | None = None,
        device: str | torch.device | None = None,
        vectors: torch.Tensor | None = None,
    ) -> None:
        from accelerate import Accelerator

        if not isinstance(generator, EditableGenerator):
            raise TypeError(f"`generator` must implement EditableGenerator, got {type(generator).__name__}.")
        self.config = config = self._validated(config, generator, vectors)
        if device is None:  # follow the generator, but a multi-process launch uses one GPU per process
            distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
            use_cpu = _module_device(generator).type == "cpu" and not (distributed and torch.cuda.is_available())
        else:
            use_cpu = torch.device(device).type == "cpu"
        self.accelerator = acc = Accelerator(cpu=use_cpu)
        self.generator = generator.to(acc.device)
        z, c, _, _ = self._sample(1, keyed_generator(config.seed, 2, 0, 0))
        with torch.no_grad():
            probe = generator.synthesize(generator.sample_latents(z, c=c), noise_mode=config.noise_mode)
        if probe.ndim != 4 or probe.shape[2] != probe.shape[3]:
            raise ValueError(f"The generator must render square images [N, C, H, W], got {list(probe.shape)}.")
        matrix = DirectionMatrix(
            generator.latent_dim, config.num_directions, config.kind, config.seed, vectors,
            editable_dim=generator.editable_latent_dim,
        )  # fmt: skip
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            reconstructor = Reconstructor(
                num_directions=matrix.num_directions, img_channels=int(probe.shape[1]),
                img_resolution=int(probe.shape[2]), base_channels=config.base_channels,
                max_channels=config.max_channels,
            )  # fmt: skip
        params = list(reconstructor.parameters()) + (list(matrix.parameters()) if matrix.trainable else [])
        optimizer = torch.optim.Adam(params, lr=config.lr)
        self.step = 0
        self.wall_seconds = 0.0
        self.checkpoint_dir = None if checkpoint_dir is None else Path(checkpoint_dir)
        if self.checkpoint_dir is not None:
            self._load_checkpoint(matrix, reconstructor, optimizer)
        matrix.to(acc.device)
        if matrix.trainable:
            self.matrix, self.reconstructor, self.optimizer = acc.prepare(matrix, reconstructor, optimizer)
        else:
            self.matrix = matrix
            self.reconstructor, self.optimizer = acc.prepare(reconstructor, optimizer)
        self._window: list[dict[str, float]] = []

    # ------------------------------------------------------------------ setup
    @staticmethod
    def _validated(
        config: LatentDiscoveryConfig, generator: EditableGenerator, vectors: torch.Tensor | None
    ) -> LatentDiscoveryConfig:
        cfg = LatentDiscoveryConfig(**asdict(config))
        if vectors is not None:
            cfg.kind, cfg.num_directions = "fixed", int(vectors.shape[0])
        else:
            check_kind(cfg.kind)
            cfg.num_directions = check_num_directions(cfg.num_directions, generator.editable_latent_dim)
        if cfg.layers is not None:
            cfg.layers = sorted({int(i) for i in cfg.layers})
            if not cfg.layers or any(not 0 <= i < generator.num_ws for i in cfg.layers):
                raise ValueError(f"`layers` must be indices in [0, {generator.num_ws - 1}], got {config.layers}.")
            if cfg.layers == list(range(generator.num_ws)):
                cfg.layers = None
        check_render_batch("batch_size", cfg.batch_size, generator, images_per_item=2)  # image pairs
        if not (math.isfinite(cfg.lr) and cfg.lr > 0):
            raise ValueError(f"`lr` must be a positive finite number, got {cfg.lr!r}.")
        if not (math.isfinite(cfg.reg_weight) and cfg.reg_weight >= 0):
            raise ValueError(f"`reg_weight` must be a finite number ≥ 0, got {cfg.reg_weight!r}.")
        check_shift_range(cfg.shift_scale, cfg.min_shift)
        if cfg.noise_mode not in NOISE_MODES:
            raise ValueError(f"`noise_mode` must be one of {NOISE_MODES}, got {cfg.noise_mode!r}.")
        return cfg

    def _load_checkpoint(self, matrix: DirectionMatrix, reconstructor: Reconstructor, optimizer) -> None:
        assert self.checkpoint_dir is not None
        try:
            self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise OSError(f"`checkpoint_dir` {str(self.checkpoint_dir)!r} cannot be created: {err}") from err
        path = self.checkpoint_dir / CHECKPOINT_NAME
        state = load_checkpoint(path)
        if state is None:
            return
        saved, current = state.get("config", {}), asdict(self.config)
        diff = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
        if diff:
            detail = ", ".join(f"{k}: {saved.get(k)!r} there, {current.get(k)!r} now" for k in diff)
            raise ValueError(
                f"`checkpoint_dir` {str(self.checkpoint_dir)!r} holds a run with other settings ({detail}); "
                f"use the same settings to resume, or another folder."
            )
        if matrix.kind == "fixed" and not torch.equal(state["direction_matrix"]["basis"], matrix.basis):
            raise ValueError(f"`checkpoint_dir` {str(self.checkpoint_dir)!r} holds a run with other directions.")
        from ..hub import weights_sha256

        if state.get("generator_sha256") != weights_sha256(self.generator):  # type: ignore[arg-type]
            raise ValueError(
                f"`checkpoint_dir` {str(self.checkpoint_dir)!r} holds a run on another generator (weights differ)."
            )
        matrix.load_state_dict(state["direction_matrix"])
        reconstructor.load_state_dict(state["reconstructor"])
        optimizer.load_state_dict(state["optimizer"])
        self.step = int(state["step"])
        self.wall_seconds = float(state.get("wall_seconds", 0.0))
        logger.info("Resuming latent discovery from %s at step %d", path, self.step)

    # ------------------------------------------------------------------ one batch
    def _sample(self, n: int, rng: torch.Generator, balanced_offset: int | None = None):
        cfg = self.config
        z, c = random_codes(self.generator, n, rng)
        k = self.config.num_directions
        index, eps = sample_shifts(n, k, cfg.shift_scale, cfg.min_shift, generator=rng)
        if balanced_offset is not None:  # every direction equally often over the batches (evaluation)
            index = ((torch.arange(n) + balanced_offset) % k)[torch.randperm(n, generator=rng)]
        dev = self.accelerator.device
        return z.to(dev), None if c is None else c.to(dev), index.to(dev), eps.to(dev)

    def _render(self, z, c, index, eps, grad: bool = False):
        """Original and shifted images for one batch (untruncated latents)."""
        g, cfg = self.generator, self.config
        with torch.no_grad():
            latents = g.sample_latents(z, c=c, truncation_psi=1.0)  # [N, num_ws, D]
            original = g.synthesize(latents, noise_mode=cfg.noise_mode)
        with torch.set_grad_enabled(grad):
            shifts = self.matrix(index, eps)  # [N, D]; through DDP when the matrix is trainable
            shifted = g.synthesize(apply_shift(latents, shifts, cfg.layers), noise_mode=cfg.noise_mode)
        return original, shifted

    def train_step(self) -> dict[str, float]:
        """One update of the reconstructor (and of the matrix, for trainable kinds); returns its stats."""
        acc = self.accelerator
        rng = keyed_generator(self.config.seed, 0, self.step, acc.process_index)
        z, c, index, eps = self._sample(self.config.batch_size, rng)
        original, shifted = self._render(z, c, index, eps, grad=self.matrix_trainable)
        logits, shift_pred = self.reconstructor(original, shifted)
        loss, ce, l1 = discovery_loss(logits, shift_pred, index, eps, self.config.reg_weight)
        self.optimizer.zero_grad(set_to_none=True)
        acc.backward(loss)
        self.optimizer.step()
        self.step += 1
        accuracy = (logits.argmax(dim=1) == index).float().mean()
        return {"loss": float(loss.detach()), "cross_entropy": float(ce.detach()),
                "shift_l1": float(l1.detach()), "accuracy": float(accuracy)}  # fmt: skip

    @property
    def matrix_trainable(self) -> bool:
        return self.direction_matrix.trainable

    @property
    def direction_matrix(self) -> DirectionMatrix:
        """The (unwrapped) direction matrix."""
        return self.accelerator.unwrap_model(self.matrix)

    @property
    def unwrapped_reconstructor(self) -> Reconstructor:
        """The (unwrapped) reconstructor."""
        return self.accelerator.unwrap_model(self.reconstructor)

    # ------------------------------------------------------------------ loops
    @contextmanager
    def _frozen_generator(self) -> Iterator[None]:
        g = self.generator
        flags = [p.requires_grad for p in g.parameters()]  # type: ignore[attr-defined]
        was_training = g.training  # type: ignore[attr-defined]
        g.requires_grad_(False).eval()  # type: ignore[attr-defined]
        try:
            yield
        finally:
            for p, flag in zip(g.parameters(), flags, strict=True):  # type: ignore[attr-defined]
                p.requires_grad_(flag)
            g.train(was_training)  # type: ignore[attr-defined]

    def train(
        self,
        steps: int,
        checkpoint_every: int = 1000,
        log_every: int = 100,
        progress_bar: Callable[..., Any] | None = None,
    ) -> dict[str, float]:
        """Train until `steps` steps in total (counting resumed ones), checkpointing on the way.

        Args:
            steps: Total steps to reach.
            checkpoint_every: Write the checkpoint every this many steps (and at the end).
            log_every: Log (and append to ``log.jsonl``) the mean stats of this many steps.
            progress_bar: A callable like ``tqdm`` taking ``total=`` (e.g. ``pipe.progress_bar``).

        Returns:
            The mean stats (loss, cross_entropy, shift_l1, accuracy) of the last logged window
            (empty if no step was run).
        """
        if not is_int(steps) or steps < 0:
            raise ValueError(f"`steps` must be an int ≥ 0, got {steps!r}.")
        for name, value in (("checkpoint_every", checkpoint_every), ("log_every", log_every)):
            if not is_int(value) or value < 1:
                raise ValueError(f"`{name}` must be a positive int, got {value!r}.")
        main = self.accelerator.is_main_process
        remaining = max(steps - self.step, 0)
        if progress_bar is None or not main:
            bar = tqdm(total=remaining, desc="latent discovery", disable=not main)
        else:
            bar = progress_bar(total=remaining)
        summary: dict[str, float] = {}
        self.reconstructor.train()
        with self._frozen_generator():
            last = started = time.perf_counter()
            while self.step < steps:
                self._window.append(self.train_step())
                now = time.perf_counter()
                self.wall_seconds, last = self.wall_seconds + (now - last), now
                done = remaining - (steps - self.step)
                if done == ESTIMATE_AFTER and remaining > 2 * ESTIMATE_AFTER:
                    logger.info(
                        "latent discovery: estimated %.1f min for %d steps (%.2f s per step)",
                        (now - started) / done * remaining / 60, remaining, (now - started) / done,
                    )  # fmt: skip
                bar.update(1)
                if self.step % log_every == 0 or self.step == steps:
                    summary = self._flush_log()
                    bar.set_postfix(loss=f"{summary['loss']:.3f}", acc=f"{summary['accuracy']:.2f}")
                if self.step % checkpoint_every == 0:
                    self.save_checkpoint()
        bar.close()
        if remaining:
            self.save_checkpoint()
        return summary

    def _flush_log(self) -> dict[str, float]:
        window, self._window = self._window, []
        summary = {k: float(np.mean([s[k] for s in window])) for k in window[0]}
        logger.info("latent discovery step %d: %s", self.step, ", ".join(f"{k} {v:.4f}" for k, v in summary.items()))
        if self.checkpoint_dir is not None and self.accelerator.is_main_process:
            append_log(
                self.checkpoint_dir / "log.jsonl", {"step": self.step, "wall_seconds": self.wall_seconds, **summary}
            )
        return summary

    @torch.no_grad()
    def evaluate(self, num_batches: int = 100, batch_size: int | None = None, seed: int | None = None):
        """Argmax accuracy of the reconstructor on fresh batches (RCA), overall and per direction.

        Every direction is drawn equally often (the overall accuracy has the same expectation as with
        uniform indices); batches are independent of the training batches.

        Returns:
            ``(accuracy, per_direction)``: a float and a ``[K]`` CPU tensor.
        """
        if not is_int(num_batches) or num_batches < 1:
            raise ValueError(f"`num_batches` must be a positive int, got {num_batches!r}.")
        n = check_render_batch(
            "batch_size", self.config.batch_size if batch_size is None else batch_size, self.generator, 2
        )
        acc, k = self.accelerator, self.config.num_directions
        correct = torch.zeros(k, device=acc.device)
        total = torch.zeros(k, device=acc.device)
        was_training = self.reconstructor.training
        self.reconstructor.eval()
        with self._frozen_generator():
            for b in range(num_batches):
                rng = keyed_generator(self.config.seed if seed is None else seed, 1, b, acc.process_index)
                z, c, index, eps = self._sample(n, rng, balanced_offset=b * n)
                logits, _ = self.reconstructor(*self._render(z, c, index, eps))
                hit = (logits.argmax(dim=1) == index).float()
                correct.index_add_(0, index, hit)
                total.index_add_(0, index, torch.ones_like(hit))
        self.reconstructor.train(was_training)
        correct, total = acc.reduce(correct, "sum"), acc.reduce(total, "sum")
        per_direction = (correct / total.clamp_min(1)).cpu()
        return float(correct.sum() / total.sum()), per_direction

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self) -> Path | None:
        """Write the resumable checkpoint atomically (main process only); None without `checkpoint_dir`."""
        if self.checkpoint_dir is None:
            return None
        path = self.checkpoint_dir / CHECKPOINT_NAME
        if not self.accelerator.is_main_process:
            return path
        from ..hub import weights_sha256

        state = {
            "format": "sefa_plugin.latent_discovery",
            "config": asdict(self.config),
            "step": self.step,
            "wall_seconds": self.wall_seconds,
            "generator_sha256": weights_sha256(self.generator),  # type: ignore[arg-type]
            "direction_matrix": self.direction_matrix.state_dict(),
            "reconstructor": self.unwrapped_reconstructor.state_dict(),
            "optimizer": self.optimizer.state_dict(),
        }
        return save_checkpoint_atomic(state, path)
