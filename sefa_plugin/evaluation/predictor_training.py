"""Training the factor predictor on rendered scenes, and measuring it on held-out ones.

:func:`train_predictor` fits a :class:`~sefa_plugin.evaluation.predictor.FactorPredictor` on procedural
scenes of dataset seed :data:`TRAIN_DATA_SEED` (the GAN trains on seed 0), rendered on the fly and
mildly degraded like GAN samples (:func:`degrade_images`); :func:`evaluate_predictor` measures it on
held-out scenes of seed :data:`EVAL_DATA_SEED`. ``scripts/train_predictor.py`` runs both for the
predictor shipped with the package.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..data.shapes import FACTOR_NAMES, SHAPES, render_scenes
from .predictor import FactorPredictor

__all__ = [
    "EVAL_DATA_SEED",
    "TRAIN_DATA_SEED",
    "degrade_images",
    "evaluate_predictor",
    "format_metrics",
    "predictor_loss",
    "train_predictor",
]

logger = logging.getLogger(__name__)

#: Dataset seed of the predictor's training scenes (the GAN trains on seed 0).
TRAIN_DATA_SEED = 1
#: Dataset seed of the held-out scenes used by :func:`evaluate_predictor`.
EVAL_DATA_SEED = 2
#: Indices of the disc (rotation is undefined for it) and of the square (rotation has period 90° for it) in
#: :data:`~sefa_plugin.data.shapes.SHAPES`.
DISC = SHAPES.index("disc")
SQUARE = SHAPES.index("square")


def _gaussian_blur(images: torch.Tensor, sigma: torch.Tensor, radius: int = 2) -> torch.Tensor:
    """Blur each image with its own isotropic Gaussian (`sigma` in pixels, ``[N]``; 0 = identity)."""
    n, c, h, w = images.shape
    t = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    s = sigma.clamp_min(1e-3).reshape(n, 1)
    k = torch.exp(-0.5 * (t.reshape(1, -1) / s) ** 2)
    k = (k / k.sum(dim=1, keepdim=True)).repeat_interleave(c, dim=0)  # [N*C, K]
    x = F.pad(images.reshape(1, n * c, h, w), (radius,) * 4, mode="replicate")
    x = F.conv2d(x, k.reshape(n * c, 1, 1, -1), groups=n * c)
    x = F.conv2d(x, k.reshape(n * c, 1, -1, 1), groups=n * c)
    return x.reshape(n, c, h, w)


def degrade_images(
    images: torch.Tensor,
    blur_sigma: float | tuple[float, float] = (0.0, 1.0),
    noise_std: float | tuple[float, float] = (0.0, 0.04),
    prob: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Mild GAN-like degradation: a per-image random Gaussian blur and additive Gaussian noise.

    GAN samples are slightly blurry and carry some high-frequency noise; training the predictor on
    rendered scenes degraded like this keeps it from relying on the renderer's perfectly crisp edges.
    Colours are not jittered (hue and lighting are factors).

    Args:
        images: ``[N, C, H, W]`` in [-1, 1].
        blur_sigma: Blur σ in pixels, or a ``(min, max)`` range sampled uniformly per image.
        noise_std: Noise standard deviation (image units, [-1, 1] scale), or a ``(min, max)`` range.
        prob: Fraction of the images degraded (the others are returned unchanged).
        generator: Random generator (on `images`' device) for reproducibility.

    Example:

    >>> import torch
    >>> x = torch.zeros(4, 3, 16, 16)
    >>> tuple(degrade_images(x, blur_sigma=0.5, noise_std=0.0).shape)
    (4, 3, 16, 16)
    """
    n = images.shape[0]

    def draw(v: float | tuple[float, float]) -> torch.Tensor:
        lo, hi = (v, v) if isinstance(v, int | float) else v
        u = torch.rand(n, generator=generator, device=images.device, dtype=images.dtype)
        return lo + (hi - lo) * u

    sigma, std = draw(blur_sigma), draw(noise_std)
    keep = torch.rand(n, generator=generator, device=images.device) >= prob
    sigma, std = sigma.masked_fill(keep, 0.0), std.masked_fill(keep, 0.0)
    out = _gaussian_blur(images, sigma)
    noise = torch.randn(images.shape, generator=generator, device=images.device, dtype=images.dtype)
    return (out + noise * std.reshape(n, 1, 1, 1)).clamp(-1.0, 1.0)


def predictor_loss(
    predictor: FactorPredictor, raw: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor]
) -> tuple[torch.Tensor, dict[str, float]]:
    """Training loss: every factor's error divided by its target variance (so each term reads as
    ``1 - R²``), plus cross-entropy for categorical factors. ``rotation`` is masked out for discs.
    """
    terms: dict[str, torch.Tensor] = {}
    not_disc = targets["shape"] != DISC if "shape" in targets else None
    for n in predictor.factor_names:
        r, t = raw[n].float(), targets[n]
        if predictor.kinds[n] == "categorical":
            terms[n] = F.cross_entropy(r, t)
            continue
        # Divide by the target variance: 1 for a uniform angle's unit vector, 1/12 for U(0, 1).
        err = (r - t).square().sum(dim=1) if predictor.is_angular(n) else (r - t).square() * 12.0
        if n == "rotation" and not_disc is not None:
            w = not_disc.float()
            terms[n] = (err * w).sum() / w.sum().clamp_min(1.0)
        else:
            terms[n] = err.mean()
    total = sum(terms.values())
    return total, {k: float(v.detach()) for k, v in terms.items()}


def train_predictor(
    num_train: int = 1_000_000,
    steps: int = 3000,
    batch_size: int = 128,
    seed: int = 0,
    resolution: int = 64,
    progress: bool = True,
    *,
    lr: float = 3e-3,
    weight_decay: float = 1e-4,
    augment_prob: float = 0.5,
    channels: Sequence[int] = (32, 64, 128, 128),
    feature_dim: int = 128,
    device: str | torch.device = "cpu",
    log_every: int = 250,
) -> FactorPredictor:
    """Train a :class:`FactorPredictor` on procedural scenes rendered on the fly.

    Each step renders `batch_size` scenes whose indices are drawn uniformly from ``0 … num_train - 1`` of
    the dataset with seed :data:`TRAIN_DATA_SEED` (1; the GAN is trained on seed 0, evaluation uses seed
    2), degrades a fraction `augment_prob` of them with :func:`degrade_images` (mild blur and noise, for
    robustness to GAN samples), and takes one AdamW step; the learning rate follows a one-cycle schedule
    (warm-up, then cosine decay).

    Args:
        num_train: Number of distinct training scenes.
        steps: Optimisation steps.
        batch_size: Scenes per step.
        seed: Seed of the initialisation, the scene sampling and the augmentation.
        resolution: Image side in pixels.
        progress: Show a tqdm progress bar.
        lr: Peak learning rate.
        weight_decay: AdamW weight decay.
        augment_prob: Fraction of training images degraded by :func:`degrade_images` (0 disables it).
        channels: Convolution stage widths of the model.
        feature_dim: Embedding size of the model.
        device: Where to train.
        log_every: Log the running losses every this many steps (0: never).

    Returns:
        The trained predictor, in eval mode, on CPU.

    Example:

    >>> from sefa_plugin.evaluation import train_predictor
    >>> model = train_predictor(steps=2, batch_size=4, resolution=32, channels=(8, 8), progress=False)
    >>> model.config.img_resolution
    32
    """
    if num_train < 1:
        raise ValueError(f"`num_train` must be ≥ 1, got {num_train}.")
    if steps < 1:
        raise ValueError(f"`steps` must be ≥ 1, got {steps}.")
    if batch_size < 2:
        raise ValueError(f"`batch_size` must be ≥ 2 (batch norm), got {batch_size}.")
    if not 0.0 <= augment_prob <= 1.0:
        raise ValueError(f"`augment_prob` must be in [0, 1], got {augment_prob}.")
    torch.manual_seed(seed)
    model = FactorPredictor(img_resolution=resolution, channels=tuple(channels), feature_dim=feature_dim)
    model.to(device).train()
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
    logger.info(
        "Training a FactorPredictor (%d parameters) for %d steps of %d scenes on %s",
        sum(p.numel() for p in model.parameters()), steps, batch_size, device,
    )  # fmt: skip
    running: dict[str, float] = {}
    t0 = time.perf_counter()
    bar = tqdm(range(steps), desc="predictor", disable=not progress)
    for step in bar:
        idx = rng.integers(0, num_train, size=batch_size)
        batch = render_scenes(idx.tolist(), seed=TRAIN_DATA_SEED, resolution=resolution)
        images = batch.images
        if augment_prob > 0:
            images = degrade_images(images, prob=augment_prob, generator=gen)
        targets = {k: v.to(device) for k, v in model.encode_targets(batch.factors).items()}
        loss, terms = predictor_loss(model, model(images.to(device)), targets)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        for k, v in terms.items():
            running[k] = 0.98 * running.get(k, v) + 0.02 * v
        if progress and step % 10 == 0:
            bar.set_postfix(loss=f"{sum(running.values()):.3f}")
        if log_every and (step + 1) % log_every == 0:
            logger.info(
                "step %d/%d (%.0f s): %s", step + 1, steps, time.perf_counter() - t0,
                ", ".join(f"{k}={v:.4f}" for k, v in running.items()),
            )  # fmt: skip
    return model.cpu().eval()


def _r2(err_sq: torch.Tensor, target: torch.Tensor) -> float:
    """``1 - Σ err² / Σ ||t - mean t||²`` (rows of `target` may be vectors)."""
    t = target.double().reshape(len(target), -1)
    denom = (t - t.mean(dim=0)).square().sum()
    return float(1.0 - err_sq.double().sum() / denom.clamp_min(1e-12))


@torch.no_grad()
def evaluate_predictor(
    predictor: FactorPredictor,
    num: int = 5000,
    seed: int = EVAL_DATA_SEED,
    batch_size: int = 250,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    progress: bool = False,
) -> dict[str, float]:
    """Accuracy of `predictor` on `num` held-out rendered scenes (indices ``0 … num - 1`` of `seed`).

    Metrics (keys of the returned dict):

    * ``shape_accuracy``: fraction of correctly classified shapes;
    * ``<factor>_r2`` for every other factor: the coefficient of determination
      ``1 - Σ err² / Σ (t - mean t)²``. For circular factors (hues) ``t`` is the unit vector
      ``(cos 2πh, sin 2πh)`` and ``err`` the distance between the predicted and true unit vectors
      (the chord ``2 sin(πΔ)`` for a hue error of Δ turns), so a perfect predictor scores 1 and a
      constant one about 0, as for a real-valued factor. ``rotation_r2`` uses non-disc scenes only
      (rotation is undefined for discs), in degrees, with squares' errors taken modulo 90° (a square
      at -45° and at +45° is the same image); ``rotation_r2_unwrapped`` skips that wrap.
    * ``<factor>_mae``: mean absolute error in the data's units (hues: circular, in turns; rotation:
      degrees, wrapped for squares as above);
    * ``num_images``.

    Args:
        predictor: The predictor to evaluate.
        num: Number of held-out scenes.
        seed: Dataset seed of the held-out scenes (2; the predictor trains on 1, the GAN on 0).
        batch_size: Scenes rendered and scored at a time.
        transform: Optional function applied to each image batch before scoring (e.g. a degradation,
            to measure robustness).
        progress: Show a tqdm progress bar.

    Example:

    >>> from sefa_plugin import DEFAULT_PREDICTOR
    >>> from sefa_plugin.evaluation import FactorPredictor, evaluate_predictor
    >>> metrics = evaluate_predictor(FactorPredictor.from_pretrained(DEFAULT_PREDICTOR), num=500)
    >>> metrics["shape_accuracy"] > 0.95 and metrics["x_r2"] > 0.95
    True
    """
    if num < 2:
        raise ValueError(f"`num` must be ≥ 2, got {num}.")
    res = predictor.config.img_resolution
    preds: list[dict[str, torch.Tensor]] = []
    truth: list[torch.Tensor] = []
    for start in tqdm(range(0, num, batch_size), desc="evaluate", disable=not progress):
        batch = render_scenes(list(range(start, min(start + batch_size, num))), seed=seed, resolution=res)
        images = batch.images if transform is None else transform(batch.images)
        preds.append({k: v.cpu() for k, v in predictor.predict(images, batch_size=batch_size).items()})
        truth.append(batch.factors)
    pred = {k: torch.cat([p[k] for p in preds]) for k in preds[0]}
    true = torch.cat(truth).double()
    col = {n: true[:, FACTOR_NAMES.index(n)] for n in predictor.factor_names if n in FACTOR_NAMES}
    metrics: dict[str, float] = {"num_images": float(num)}
    shape = col["shape"].round().long() if "shape" in col else None
    for n in predictor.factor_names:
        if n not in col:
            continue
        kind, (lo, hi) = predictor.kinds[n], predictor.ranges[n]
        p, t = pred[n].double(), col[n]
        if kind == "categorical":
            metrics[f"{n}_accuracy"] = float((p.long() == t.round().long()).double().mean())
            continue
        if kind == "circular":
            period = hi - lo
            ang_p, ang_t = 2 * math.pi * (p - lo) / period, 2 * math.pi * (t - lo) / period
            vp = torch.stack([ang_p.cos(), ang_p.sin()], dim=1)
            vt = torch.stack([ang_t.cos(), ang_t.sin()], dim=1)
            metrics[f"{n}_r2"] = _r2((vp - vt).square().sum(dim=1), vt)
            d = torch.remainder(p - t, period)
            metrics[f"{n}_mae"] = float(torch.minimum(d, period - d).mean())
            continue
        err = p - t
        if n == "rotation" and shape is not None:
            keep = shape != DISC
            raw_err, t_keep = err[keep], t[keep]
            square = shape[keep] == SQUARE
            period = hi - lo  # 90°: the square's symmetry
            wrapped = torch.remainder(raw_err + period / 2, period) - period / 2
            err_w = torch.where(square, wrapped, raw_err)
            metrics[f"{n}_r2"] = _r2(err_w.square(), t_keep)
            metrics[f"{n}_r2_unwrapped"] = _r2(raw_err.square(), t_keep)
            metrics[f"{n}_mae"] = float(err_w.abs().mean())
            continue
        metrics[f"{n}_r2"] = _r2(err.square(), t)
        metrics[f"{n}_mae"] = float(err.abs().mean())
    return metrics


def format_metrics(metrics: Mapping[str, float], digits: int = 4) -> str:
    """One line per metric, for logs."""
    return "\n".join(f"{k:>26s}: {v:.{digits}f}" for k, v in metrics.items())
