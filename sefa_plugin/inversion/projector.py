"""Optimisation-based inversion: find the latents whose rendering matches target images.

The method is that of NVIDIA's projector (stylegan2-ada-pytorch ``projector.py``, after Karras et al., CVPR 2020,
§5), generalised to a batch and to every generator family of this package:

* start from the best of ``num_candidates`` sampled latents (``init="search"``, the default, measured better on the
  embedded model) or, as NVIDIA does, from the mean ``w`` (``init="mean"``, estimated from ``mean_samples``
  mapped ``z`` drawn with a fixed seed);
* Adam (β = 0.9, 0.999) with a learning rate ramped up linearly over the first ``lr_rampup`` of the steps and down
  along a half cosine over the last ``lr_rampdown``;
* Gaussian noise added to the latents, of scale ``latent_std · latent_noise · max(0, 1 − t / latent_noise_ramp)²``,
  so the early steps explore;
* with ``optimize_noise=True``, when the generator has noise inputs (StyleGAN, StyleGAN2), per-image noise maps
  optimised alongside, renormalised after each step and kept white by NVIDIA's regulariser
  (:mod:`~sefa_plugin.inversion.noise`); off by default (see :class:`ProjectorSettings`).

Differences from NVIDIA's script: the latent space is W+ by default (one ``w`` per layer, as the inversion
literature does for editing; ``space="w"`` gives their single ``w``); the loss is the multi-scale pixel MSE plus a
perceptual term (:mod:`~sefa_plugin.inversion.losses`); several images are optimised at once, each with its own
loss, so a batch gives the images that one-at-a-time runs would (up to floating-point order).

z-input generators (PGGAN, DCGAN, BigGAN) are inverted in their edit space, the (possibly truncation-scaled) ``z``
``[N, 1, z_dim]``: the part of the latent that edits never touch (BigGAN's class embedding) stays fixed, and a
penalty ``prior_weight · (‖z‖ / r − 1)²`` keeps ``z`` near the shell of radius ``r`` (the mean norm of prior
samples) where a Gaussian prior puts nearly all its mass (the mean start makes no sense there: the mean of ``z``
is the origin, which a generator never sees).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from ..models.interface import EditableGenerator
from .losses import ReconstructionLoss, multiscale_mse
from .noise import applied_noise, initial_noise_maps, noise_regularization, normalize_noise_
from .perceptual import PerceptualTerm

SPACES = ("w", "w+", "z")
INITS = ("mean", "search")
#: Seed of the ``z`` that estimate the mean latent (NVIDIA's projector uses 123 as well).
STATS_SEED = 123


@dataclass(frozen=True)
class ProjectorSettings:
    """Settings of :func:`project` (defaults chosen by ``benchmarks/bench_inversion.py``).

    Attributes:
        num_steps: Optimisation steps.
        space: ``"w+"`` or ``"w"`` (style-based generators), ``"z"`` (z-input ones); None: the generator's edit
            space (``"w+"`` or ``"z"``).
        learning_rate: Peak Adam learning rate.
        lr_rampup: Fraction of the steps of linear warm-up.
        lr_rampdown: Fraction of the steps of cosine decay at the end.
        latent_noise: Initial scale of the noise added to the latents, in units of the latents' spread.
        latent_noise_ramp: Fraction of the steps over which that noise decays (quadratically) to 0.
        init: ``"mean"`` (NVIDIA's start) or ``"search"`` (None, the default): measured on the embedded model
            (3 held-out scenes + 3 samples, 300 steps), the search start raised the worst sample from 33.9 to
            37.8 dB (means 35.9 → 36.1 dB on scenes, 39.9 → 40.9 dB on samples) for one extra batch of renders.
        num_candidates: Sampled latents tried by ``init="search"``.
        mean_samples: Samples that estimate the mean latent and its spread.
        optimize_noise: Optimise per-image noise maps (NVIDIA's projector does) when the generator has noise
            inputs. Off by default: measured, it lowered the PSNR of a tiny StyleGAN2's own samples from 42 to
            27 dB (the maps' renormalisation moves them off the generator's constant maps, which the W+ latents
            then fight), it changes nothing on the embedded model (noise strengths ~1e-4), and a
            reconstruction that needs its own maps is not what ``pipe(latents=...)`` renders.
        noise_weight: Weight of the noise regulariser.
        mse_weight: Weight of the multi-scale pixel MSE.
        num_scales: Scales of the pixel MSE.
        perceptual_weight: Weight of the perceptual term (when one is used).
        prior_weight: Weight of the z-shell penalty (z space only).
    """

    num_steps: int = 300
    space: str | None = None
    learning_rate: float = 0.1
    lr_rampup: float = 0.05
    lr_rampdown: float = 0.25
    latent_noise: float = 0.05
    latent_noise_ramp: float = 0.75
    init: str | None = None
    num_candidates: int = 64
    mean_samples: int = 10_000
    optimize_noise: bool = False
    noise_weight: float = 1e5
    mse_weight: float = 1.0
    num_scales: int = 3
    perceptual_weight: float = 0.1
    prior_weight: float = 1.0

    def resolved(self, generator: EditableGenerator) -> ProjectorSettings:
        """Check every field (errors name it) and fill ``space``/``init`` for `generator`."""
        for name in ("num_steps", "num_candidates", "mean_samples", "num_scales"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"`{name}` must be a positive int, got {v!r}.")
        for name in ("learning_rate",):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ValueError(f"`{name}` must be a finite number > 0, got {v!r}.")
        for name in ("latent_noise", "noise_weight", "mse_weight", "perceptual_weight", "prior_weight"):
            v = getattr(self, name)
            if isinstance(v, bool) or not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ValueError(f"`{name}` must be a finite number ≥ 0, got {v!r}.")
        for name in ("lr_rampup", "lr_rampdown", "latent_noise_ramp"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and 0 < v <= 1):
                raise ValueError(f"`{name}` must be a fraction in (0, 1], got {v!r}.")
        allowed = ("w+", "w") if generator.latent_space == "w+" else ("z",)
        space = self.space if self.space is not None else allowed[0]
        if space not in allowed:
            why = "" if space in SPACES else f" (spaces: {SPACES})"
            raise ValueError(
                f"`space` must be one of {allowed} for {type(generator).__name__}, got {self.space!r}{why}."
            )
        init = self.init if self.init is not None else "search"
        if init not in INITS:
            raise ValueError(f"`init` must be one of {INITS}, got {self.init!r}.")
        return ProjectorSettings(**{**asdict(self), "space": space, "init": init})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Projection:
    """What :func:`project` returns (tensors on the CPU).

    Attributes:
        latents: The edit-space latents ``[N, num_ws, latent_dim]``.
        images: Their renderings ``[N, C, R, R]`` in [-1, 1] (with `noise`).
        losses: The reconstruction loss (pixel + perceptual, without the regularisers) of every image at every
            step ``[N, num_steps]``.
        noise: Optimised noise maps ``{buffer name: [N, 1, r, r]}`` (empty when none).
    """

    latents: torch.Tensor
    images: torch.Tensor
    losses: torch.Tensor
    noise: dict[str, torch.Tensor] = field(default_factory=dict)


def learning_rate_at(t: float, settings: ProjectorSettings) -> float:
    """The learning rate at progress ``t`` ∈ [0, 1): linear ramp-up, cosine ramp-down.

    Example:

    >>> s = ProjectorSettings(learning_rate=0.1, lr_rampup=0.05, lr_rampdown=0.25)
    >>> [round(learning_rate_at(t, s), 4) for t in (0.0, 0.025, 0.5, 0.875)]
    [0.0, 0.05, 0.1, 0.05]
    """
    ramp = min(1.0, (1.0 - t) / settings.lr_rampdown)
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    return settings.learning_rate * ramp * min(1.0, t / settings.lr_rampup)


@torch.no_grad()
def latent_statistics(
    generator: EditableGenerator, num: int, c: torch.Tensor | None = None, batch_size: int = 1000
) -> tuple[torch.Tensor, float, float]:
    """Mean editable latent ``[num_ws, D]``, its spread (RMS distance to the mean) and the mean norm of the
    editable part (the prior's shell radius), from `num` samples with a fixed seed."""
    rng = torch.Generator().manual_seed(STATS_SEED)
    d_edit = generator.editable_latent_dim
    total = sq = norm = None
    for start in range(0, num, batch_size):
        n = min(batch_size, num - start)
        z = generator.randn_z(n, generator=rng)
        cc = None if c is None else c[:1].expand(n, -1)
        lat = generator.sample_latents(z, c=cc).to(torch.float64)  # [n, num_ws, D]
        s, q = lat.sum(dim=0), lat.square().sum(dim=0)
        r = lat[:, 0, :d_edit].norm(dim=1).sum()
        total, sq, norm = (s, q, r) if total is None else (total + s, sq + q, norm + r)
    mean = total / num
    var = (sq / num - mean.square()).clamp_min(0)  # per coordinate
    spread = float(var[0].sum().sqrt())  # RMS distance of one layer's latent to the mean
    return mean.float(), spread, float(norm / num)


@torch.no_grad()
def _search_init(
    generator: EditableGenerator,
    targets: torch.Tensor,
    settings: ProjectorSettings,
    c: torch.Tensor | None,
    rng: torch.Generator | None,
    batch_size: int = 64,
) -> torch.Tensor:
    """For each target, the sampled latent ``[num_ws, D]`` whose rendering has the lowest pixel loss."""
    best_loss = torch.full([targets.shape[0]], math.inf, device=targets.device)
    best = None
    for start in range(0, settings.num_candidates, batch_size):
        n = min(batch_size, settings.num_candidates - start)
        z = generator.randn_z(n, generator=rng)
        cc = None if c is None else c[:1].expand(n, -1)
        lat = generator.sample_latents(z, c=cc)
        imgs = generator.synthesize(lat).to(targets.dtype)
        # Pairwise loss [targets, candidates] at every scale of the pixel term.
        loss = torch.stack([multiscale_mse(imgs, t.expand_as(imgs), settings.num_scales) for t in targets])  # [N, n]
        val, idx = loss.min(dim=1)
        if best is None:
            best = lat[idx].clone()
        better = val < best_loss
        best[better] = lat[idx[better]]
        best_loss = torch.where(better, val, best_loss)
    return best  # type: ignore[return-value]


def project(
    generator: EditableGenerator,
    targets: torch.Tensor,
    settings: ProjectorSettings | None = None,
    *,
    perceptual: PerceptualTerm | None = None,
    c: torch.Tensor | None = None,
    rng: torch.Generator | None = None,
    progress: Callable[[Iterable[int]], Iterable[int]] | None = None,
) -> Projection:
    """Invert `targets` into `generator`'s edit space.

    Args:
        generator: Any :class:`~sefa_plugin.models.interface.EditableGenerator`, on the device to run on.
        targets: ``[N, img_channels, img_resolution, img_resolution]`` in [-1, 1].
        settings: :class:`ProjectorSettings` (default: the defaults).
        perceptual: The perceptual term of the loss (None: pixel losses only).
        c: Class vectors ``[N, c_dim]`` for a conditional generator (one class for the batch).
        rng: ``torch.Generator`` (CPU) for the latent noise and the search candidates: a fixed seed gives the
            same result on every run.
        progress: Wraps the step iterator (e.g. a pipeline's ``progress_bar``).

    Returns:
        :class:`Projection` (latents in the layout :meth:`EditableGenerator.synthesize` reads).

    Example:

    >>> proj = project(generator, targets, ProjectorSettings(num_steps=100))  # doctest: +SKIP
    >>> proj.latents.shape  # doctest: +SKIP
    torch.Size([1, 10, 128])
    """
    s = (settings or ProjectorSettings()).resolved(generator)
    module: torch.nn.Module = generator  # type: ignore[assignment]
    device = next(module.parameters()).device
    cfg = generator.config  # type: ignore[attr-defined]
    r, ch = int(cfg.img_resolution), int(getattr(cfg, "img_channels", 3))  # BigGAN is RGB without the field
    if not isinstance(targets, torch.Tensor) or targets.ndim != 4 or targets.shape[1:] != (ch, r, r):
        got = list(targets.shape) if isinstance(targets, torch.Tensor) else type(targets).__name__
        raise ValueError(f"`targets` must have shape [N, {ch}, {r}, {r}], got {got}.")
    if targets.shape[0] < 1:
        raise ValueError("`targets` must hold at least one image.")
    targets = targets.to(device, torch.float32)
    n = targets.shape[0]
    was_training = module.training
    grad_flags = [p.requires_grad for p in module.parameters()]
    module.eval().requires_grad_(False)
    try:
        mean, spread, shell = latent_statistics(generator, s.mean_samples, c=c)
        mean = mean.to(device)
        loss_fn = ReconstructionLoss(targets, perceptual, s.mse_weight, s.perceptual_weight, s.num_scales)
        if s.init == "search":
            start = _search_init(generator, targets, s, None if c is None else c.to(device), rng)
        else:
            start = mean.unsqueeze(0).repeat(n, 1, 1)
        d_edit = generator.editable_latent_dim
        fixed = start[:, :, d_edit:]  # BigGAN's class embedding; empty otherwise
        var = start[:, :1, :d_edit] if s.space == "w" else start[:, :, :d_edit]
        var = var.clone().requires_grad_(True)
        noise = {}
        if s.optimize_noise and s.space != "z" and generator.noise_buffers():
            noise = {k: v.to(device).requires_grad_(True) for k, v in initial_noise_maps(generator, n).items()}
        opt = torch.optim.Adam([var, *noise.values()], betas=(0.9, 0.999), lr=s.learning_rate)
        losses = torch.zeros(n, s.num_steps)

        def latents_of(v: torch.Tensor) -> torch.Tensor:
            v = v.expand(-1, generator.num_ws, -1) if s.space == "w" else v
            return torch.cat([v, fixed], dim=2) if fixed.shape[2] else v

        steps: Iterable[int] = range(s.num_steps)
        for step in progress(steps) if progress is not None else steps:
            t = step / s.num_steps
            for group in opt.param_groups:
                group["lr"] = learning_rate_at(t, s)
            scale = spread * s.latent_noise * max(0.0, 1.0 - t / s.latent_noise_ramp) ** 2
            v = var
            if scale > 0:
                v = var + scale * torch.randn(var.shape, generator=rng).to(device)
            with applied_noise(generator, noise):
                images = generator.synthesize(latents_of(v))
            recon = loss_fn(images)
            loss = recon
            if noise:
                loss = loss + s.noise_weight * noise_regularization(noise)
            if s.space == "z" and s.prior_weight > 0:
                loss = loss + s.prior_weight * (var[:, 0].norm(dim=1) / shell - 1).square()
            opt.zero_grad(set_to_none=True)
            loss.sum().backward()
            opt.step()
            normalize_noise_(noise)
            losses[:, step] = recon.detach().cpu()
        with torch.no_grad(), applied_noise(generator, noise):
            latents = latents_of(var.detach())
            images = generator.synthesize(latents)
    finally:
        for p, flag in zip(module.parameters(), grad_flags, strict=True):
            p.requires_grad_(flag)
        module.train(was_training)
    return Projection(
        latents=latents.detach().cpu().contiguous(),
        images=images.detach().cpu(),
        losses=losses,
        noise={k: v.detach().cpu().contiguous() for k, v in noise.items()},
    )
