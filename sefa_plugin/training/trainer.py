"""Training the project's own StyleGAN2 on the procedural scene dataset: the training loop.

The recipe is StyleGAN2's (Karras et al. 2020): non-saturating logistic loss, lazy R1 regularisation
of the discriminator, optional lazy path-length regularisation of the generator, style mixing, and an
exponential moving average of the generator weights (the EMA generator is what gets shipped). The
losses live in :mod:`~sefa_plugin.training.loss`, the settings and how a resumed run merges new ones in
:mod:`~sefa_plugin.training.config`, and the carrying of saved weights into wider networks in
:mod:`~sefa_plugin.training.widening`.

Training is resumable: a checkpoint holds both networks, the EMA generator, the optimizers, the RNG
states and the iteration count, and is written atomically every ``checkpoint_every`` iterations
together with a sample grid. Several processes (GPUs, or CPU processes with gloo) are started by
``accelerate launch`` or ``torchrun``; ``accelerate`` supplies the process group, each process trains on
its own batch (``batch_size`` is per process) and gradients are averaged, e.g.

    torchrun --nproc_per_node 2 $(which sefa) train --run-dir runs/x --iterations 10000

A single process is the default and needs no launcher.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..data.shapes import SHAPES, render_scenes
from ..utils.images import save_grid
from .checkpoint import append_log, load_checkpoint, save_checkpoint_atomic
from .config import (
    RESUME_OVERRIDABLE,
    TrainingConfig,
    build_generator,
    check_overrides,
    discriminator_widths,
    resolve_run,
)
from .discriminator import Discriminator
from .loss import discriminator_loss, generator_loss, path_length_penalty
from .widening import restore_generator, widen_discriminator_state

__all__ = ["CHECKPOINT_NAME", "RESUME_OVERRIDABLE", "Trainer", "TrainingConfig", "build_generator"]

logger = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pt"


def _lazy_ratio(interval: int | None) -> float:
    """StyleGAN2's lr/beta scaling for a network regularised lazily every `interval` steps."""
    return 1.0 if interval is None else interval / (interval + 1)


class Trainer:
    """StyleGAN2 training loop on the scene dataset.

    Args:
        config: The run's :class:`TrainingConfig` (ignored when resuming: the checkpoint's is used).
        run_dir: Folder for checkpoints, sample grids and the log; resumed from when it holds a checkpoint.
        device: ``"cpu"``, ``"cuda"`` ... (ignored when ``accelerate`` manages devices).
        init_generator: Warm start for a *new* run: a generator folder (``config.json`` + safetensors, as
            ``save_pretrained`` writes it) or a pipeline folder holding ``generator/``. Its weights become
            both the trained and the EMA generator (the discriminator starts fresh); its fingerprint is
            recorded in ``config.extra["init_generator"]``. Must match the configuration's architecture.
        overrides: Settings that replace the checkpoint's when resuming (or the configuration's on a new
            run), e.g. ``{"r1_gamma": 0.2}``; keys from :data:`~.config.RESUME_OVERRIDABLE`. Each change is
            recorded with the iteration it took effect at in ``config.extra["overrides"]``. A larger
            ``channel_base`` or ``channel_max`` on resume widens the generator, a larger ``d_channel_base`` or
            ``d_channel_max`` the discriminator (see :class:`TrainingConfig`).

    Example:

    >>> from sefa_plugin.training import Trainer, TrainingConfig
    >>> cfg = TrainingConfig(resolution=16, z_dim=16, w_dim=16, channel_base=256, channel_max=16, batch_size=4)
    >>> trainer = Trainer(cfg, run_dir="/tmp/sefa-doctest-run")  # doctest: +SKIP
    >>> trainer.train(iterations=2)  # doctest: +SKIP
    """

    def __init__(
        self,
        config: TrainingConfig,
        run_dir: str | os.PathLike,
        device: str | None = None,
        init_generator: str | os.PathLike | None = None,
        overrides: dict[str, float | None] | None = None,
    ) -> None:
        from accelerate import Accelerator

        overrides = check_overrides(overrides)
        self.run_dir = Path(run_dir)
        ckpt_path = self.run_dir / CHECKPOINT_NAME
        state = load_checkpoint(ckpt_path)
        run = resolve_run(config, state, overrides, init_generator, checkpoint=ckpt_path)
        try:  # only once the settings are known to be valid, so a bad one leaves nothing behind
            self.run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise OSError(f"`run_dir` {str(run_dir)!r} cannot be created: {err}") from err
        self.config = config = run.config
        use_cpu = device == "cpu" or (device is None and not torch.cuda.is_available())
        self.accelerator = Accelerator(cpu=use_cpu)
        torch.manual_seed(config.seed)
        self.G = build_generator(config)
        has_aux = config.aux_shape_weight > 0 or (state is not None and "aux.weight" in state["D"])
        d_base, d_max = discriminator_widths(config)
        self.D = Discriminator(
            config.resolution, channel_base=d_base, channel_max=d_max, num_aux_classes=len(SHAPES) if has_aux else 0
        )
        if run.init_weights is not None:
            self.G.load_state_dict(run.init_weights)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        # Lazy regularisation: rescale lr and betas so that the effective optimisation matches (StyleGAN2).
        g_interval = config.pl_interval if config.pl_weight > 0 else None
        self.opt_g = self._adam(self.G, g_interval)
        self.opt_d = self._adam(self.D, config.r1_interval)
        self.rng = np.random.default_rng(config.seed)  # data order
        self.iteration = 0
        self.pl_mean = torch.zeros([])
        self.images_seen = 0
        self.wall_seconds = 0.0  # training time summed over all resumed runs
        if state is not None:
            self._resume(state, run.widen_generator, run.widen_discriminator, run.saved_mapping_lr, ckpt_path)
            if "lr" in run.changed:  # the loaded optimizer states carry the old learning rate
                for opt, interval in ((self.opt_g, g_interval), (self.opt_d, config.r1_interval)):
                    for group in opt.param_groups:
                        group["lr"] = config.lr * _lazy_ratio(interval)
        # The networks are not wrapped in DistributedDataParallel: the generator's forward (mapping, style
        # mixing, synthesis) and the frozen discriminator in the generator step do not fit DDP's one-forward-
        # one-backward contract, so gradients are averaged across processes explicitly (as NVIDIA's
        # training loop does) by `_sync_gradients`. Every process starts from the same weights.
        device = self.accelerator.device
        self.G, self.D, self.G_ema = self.G.to(device), self.D.to(device), self.G_ema.to(device)
        if self.accelerator.num_processes > 1:
            # Distinct latents and real images per process (the checkpoint's RNG state is the main process's).
            rank = self.accelerator.process_index
            torch.manual_seed(config.seed * 1_000_003 + self.iteration * 7_919 + rank)
            self.rng = np.random.default_rng([config.seed, self.iteration, rank])
        self.sample_z = torch.from_numpy(np.random.RandomState(123).randn(64, config.z_dim).astype(np.float32))

    def _resume(self, state: dict, widen_g: bool, widen_d: bool, saved_mapping_lr: float, path: Path) -> None:
        """Load the checkpoint's networks, optimizers, counters and RNG states (widening where asked)."""
        restore_generator(
            state, self.G, self.G_ema, self.opt_g, widen_g, saved_mapping_lr, self.config.mapping_lr_multiplier
        )
        d_state = widen_discriminator_state(state, self.D) if widen_d else state["D"]
        missing, unexpected = self.D.load_state_dict(d_state, strict=False)
        if unexpected or any(not k.startswith("aux.") for k in missing):
            raise RuntimeError(f"{path}: discriminator weights do not match ({missing + unexpected})")
        if missing:  # the shape head is new: its optimizer state starts fresh with the others'
            logger.info("Adding the discriminator's shape head at iteration %d", state["iteration"])
        else:
            self.opt_d.load_state_dict(state["opt_D"])
        self.iteration = int(state["iteration"])
        self.images_seen = int(state["images_seen"])
        self.pl_mean = state["pl_mean"]
        self.wall_seconds = float(state.get("wall_seconds", 0.0))
        self.rng.bit_generator.state = json.loads(state["rng_numpy"])
        torch.set_rng_state(state["rng_cpu"])

    def _adam(self, module: torch.nn.Module, interval: int | None) -> torch.optim.Optimizer:
        ratio = _lazy_ratio(interval)
        return torch.optim.Adam(module.parameters(), lr=self.config.lr * ratio, betas=(0.0, 0.99**ratio), eps=1e-8)

    # ------------------------------------------------------------------ one step
    def _real_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """A batch of real scenes and their shape labels."""
        cfg = self.config
        idx = self.rng.integers(0, cfg.dataset_size, size=cfg.batch_size)
        batch = render_scenes(idx.tolist(), seed=cfg.dataset_seed, resolution=cfg.resolution)
        device = self.accelerator.device
        return batch.images.to(device), batch.factor("shape").long().to(device)

    def _mapping_with_mixing(self, z: torch.Tensor) -> torch.Tensor:
        g = self.G
        ws = g.mapping(z, update_emas=True)
        if self.config.style_mixing_prob > 0 and torch.rand([]) < self.config.style_mixing_prob:
            cutoff = int(torch.randint(1, ws.shape[1], []))
            ws2 = g.mapping(torch.randn_like(z), update_emas=False)
            ws = torch.cat([ws[:, :cutoff], ws2[:, cutoff:]], dim=1)
        return ws

    def _generate(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        g = self.G
        z = torch.randn([n, self.config.z_dim], device=self.accelerator.device)
        ws = self._mapping_with_mixing(z)
        return g.synthesis(ws, noise_mode="random"), ws

    def step(self) -> dict[str, float]:
        """One generator and one discriminator update (plus due regularisation); returns the losses."""
        cfg, acc = self.config, self.accelerator
        # Generator: non-saturating loss plus the enabled optional terms, and lazy path-length regularisation.
        self.D.requires_grad_(False)
        self.G.requires_grad_(True)
        fake, _ = self._generate(cfg.batch_size)
        loss_g, stats = generator_loss(cfg, self.D, fake, self._real_batch)
        self.opt_g.zero_grad(set_to_none=True)
        acc.backward(loss_g)
        if cfg.pl_weight > 0 and self.iteration % cfg.pl_interval == 0:
            fake, ws = self._generate(max(cfg.batch_size // 2, 1))
            loss_pl, self.pl_mean = path_length_penalty(cfg, fake, ws, self.pl_mean)
            acc.backward(loss_pl)
            stats["loss_PL"] = float(loss_pl.detach())
        self._sync_gradients(self.G)
        self.opt_g.step()
        # Discriminator: logistic loss (plus the shape-head terms), lazy R1 on reals.
        self.G.requires_grad_(False)
        self.D.requires_grad_(True)
        with torch.no_grad():
            fake, _ = self._generate(cfg.batch_size)
        real, real_shapes = self._real_batch()
        do_r1 = cfg.r1_interval > 0 and self.iteration % cfg.r1_interval == 0
        loss_d, d_stats = discriminator_loss(cfg, self.D, real, real_shapes, fake, r1=do_r1)
        self.opt_d.zero_grad(set_to_none=True)
        acc.backward(loss_d)
        self._sync_gradients(self.D)
        self.opt_d.step()
        stats.update(d_stats)
        self.images_seen += cfg.batch_size * acc.num_processes
        self._update_ema()
        self.iteration += 1
        return stats

    @torch.no_grad()
    def _sync_gradients(self, module: torch.nn.Module) -> None:
        """Average the gradients of `module` over all processes (one all-reduce of a flat buffer)."""
        if self.accelerator.num_processes == 1:
            return
        params = [p for p in module.parameters() if p.requires_grad]
        flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).flatten() for p in params])
        flat = self.accelerator.reduce(flat, reduction="mean")
        for p, g in zip(params, flat.split([p.numel() for p in params]), strict=True):
            p.grad = g.view_as(p).clone()

    @torch.no_grad()
    def _update_ema(self) -> None:
        cfg = self.config
        ema_nimg = cfg.ema_kimg * 1000
        if cfg.ema_rampup is not None:
            ema_nimg = min(ema_nimg, self.images_seen * cfg.ema_rampup)
        beta = 0.5 ** (cfg.batch_size * self.accelerator.num_processes / max(ema_nimg, 1e-8))
        g = self.G
        for p_ema, p in zip(self.G_ema.parameters(), g.parameters(), strict=True):
            p_ema.copy_(p.detach().lerp(p_ema, beta))
        for b_ema, b in zip(self.G_ema.buffers(), g.buffers(), strict=True):
            b_ema.copy_(b)

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self) -> Path:
        """Write the resumable checkpoint and a sample grid of the EMA generator; returns the path."""
        path = self.run_dir / CHECKPOINT_NAME
        if not self.accelerator.is_main_process:
            return path
        state = {
            "config": asdict(self.config),
            "iteration": self.iteration,
            "images_seen": self.images_seen,
            "wall_seconds": self.wall_seconds,
            "G": self.G.state_dict(),
            "D": self.D.state_dict(),
            "G_ema": self.G_ema.state_dict(),
            "opt_G": self.opt_g.state_dict(),
            "opt_D": self.opt_d.state_dict(),
            "pl_mean": self.pl_mean.detach().cpu(),
            "rng_cpu": torch.get_rng_state(),
            "rng_numpy": json.dumps(self.rng.bit_generator.state),
        }
        save_checkpoint_atomic(state, path)
        with torch.no_grad():
            imgs = self.G_ema(self.sample_z.to(self.accelerator.device), noise_mode="const").cpu()
        save_grid(imgs, self.run_dir / f"samples_{self.iteration:07d}.png", nrow=8)
        return path

    def export_generator(self, out_dir: str | os.PathLike) -> None:
        """Save the EMA generator with ``save_pretrained`` (``config.json`` + safetensors)."""
        self.G_ema.save_pretrained(out_dir)

    def train(self, iterations: int, checkpoint_every: int = 500, log_every: int = 50) -> None:
        """Run until `iterations` total iterations (counting resumed ones), checkpointing on the way."""
        if iterations < 0:
            raise ValueError(f"`iterations` must be ≥ 0, got {iterations}.")
        log_path = self.run_dir / "log.jsonl"
        bar = tqdm(total=iterations, initial=self.iteration, desc="train", disable=not self.accelerator.is_main_process)
        start = last = time.time()
        while self.iteration < iterations:
            stats = self.step()
            now = time.time()
            self.wall_seconds += now - last
            last = now
            bar.update(1)
            if self.iteration % log_every == 0 and self.accelerator.is_main_process:
                stats.update(iteration=self.iteration, images_seen=self.images_seen, seconds=time.time() - start)
                append_log(log_path, stats)
                bar.set_postfix(G=f"{stats['loss_G']:.3f}", D=f"{stats['loss_D']:.3f}")
            if self.iteration % checkpoint_every == 0:
                self.save_checkpoint()
        bar.close()
        self.save_checkpoint()
