"""The losses of the GAN trainer: StyleGAN2's objective and the optional terms of the scene recipe.

StyleGAN2 (Karras et al. 2020): the non-saturating logistic loss for both networks, lazy R1 on real
images for the discriminator and lazy path-length regularisation for the generator. The optional
terms (each off at weight 0; see :class:`~sefa_plugin.training.config.TrainingConfig` for what each
one is for):

* ``fm_weight``: feature matching (Salimans et al. 2016) of the discriminator's penultimate features;
* ``aux_shape_weight``: a shape-classification head of the discriminator trained on real labels;
* on that head, for the generator: ``shape_balance_weight`` (batch shape frequencies),
  ``shape_confidence_weight`` (CatGAN's entropy game, both networks), ``shape_assign_weight``
  (balanced Sinkhorn-Knopp targets, as SwAV) and ``shape_projection_weight`` (a projection
  discriminator, Miyato & Koyama 2018).

Each function returns the loss to back-propagate and its terms (unweighted, as floats) for the log.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from ..data.shapes import SHAPES
from .config import SHAPE_HEAD_TERMS, TrainingConfig
from .discriminator import Discriminator

__all__ = [
    "balanced_assignment",
    "discriminator_loss",
    "generator_loss",
    "path_length_penalty",
    "projection_logits",
]

#: A real batch of scenes and their shape labels, drawn on demand.
RealBatch = Callable[[], tuple[torch.Tensor, torch.Tensor]]


def entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy (nats) of each row's softmax distribution."""
    log_p = logits.log_softmax(dim=1)
    return -(log_p.exp() * log_p).sum(dim=1)


def shape_frequencies(labels: torch.Tensor) -> torch.Tensor:
    """Share of each shape class among a batch's labels ``[N]`` (a ``[len(SHAPES)]`` vector)."""
    return F.one_hot(labels, len(SHAPES)).float().mean(dim=0)


def balanced_assignment(
    logits: torch.Tensor, class_freq: torch.Tensor, epsilon: float = 0.25, iterations: int = 50
) -> torch.Tensor:
    """Soft targets for a batch: each row favours its most likely class, the columns sum to `class_freq`.

    Sinkhorn-Knopp on ``exp(log_softmax(logits) / epsilon)`` (as SwAV's equipartition): alternately
    rescale the columns to the wanted class mass and the rows to one sample's mass. Returns rows that
    sum to 1. A class with zero frequency gets no mass.

    Args:
        logits: Classifier logits of one batch, ``[batch, classes]``.
        class_freq: Wanted share of each class in the batch, ``[classes]``, summing to 1.
        epsilon: Temperature on the log-probabilities; smaller gives harder targets but needs more iterations.
        iterations: Sinkhorn-Knopp rounds.

    Example:

    >>> import torch
    >>> logits = torch.tensor([[4.0, 0.0], [3.0, 0.0], [2.0, 0.0], [1.0, 0.0]])  # all lean to class 0
    >>> balanced_assignment(logits, torch.tensor([0.5, 0.5])).argmax(dim=1).tolist()
    [0, 0, 1, 1]
    """
    if logits.ndim != 2 or class_freq.shape != logits.shape[1:]:
        raise ValueError(
            f"logits must be [batch, classes] and class_freq [classes], got {tuple(logits.shape)} "
            f"and {tuple(class_freq.shape)}"
        )
    log_q = logits.log_softmax(dim=1) / epsilon
    q = (log_q - log_q.max()).exp()
    col = class_freq.to(q) * logits.shape[0]
    for _ in range(iterations):
        q = q * (col / q.sum(dim=0).clamp_min(1e-30))
        q = q / q.sum(dim=1, keepdim=True).clamp_min(1e-30)
    return q


def projection_logits(
    cfg: TrainingConfig, logits: torch.Tensor, shape_logits: torch.Tensor, shapes: torch.Tensor
) -> torch.Tensor:
    """Projection-discriminator logits ``[N, 1]``: add the shape head's logit of each image's shape."""
    return logits + cfg.shape_projection_weight * shape_logits.gather(1, shapes[:, None])


def generator_loss(
    cfg: TrainingConfig, disc: Discriminator, fake: torch.Tensor, real_batch: RealBatch
) -> tuple[torch.Tensor, dict[str, float]]:
    """The generator's loss on generated images `fake`: non-saturating, plus the enabled optional terms.

    `real_batch` is called (once) only when a term compares with real scenes (feature matching and the
    shape-head terms).
    """
    stats: dict[str, float] = {}
    fake_features = disc.features(fake)
    fake_logits = disc.out(fake_features)
    shape_terms = any(getattr(cfg, key) > 0 for key in SHAPE_HEAD_TERMS)
    if cfg.fm_weight > 0 or shape_terms:
        real, real_shapes = real_batch()
    if shape_terms:
        shape_logits = disc.aux(fake_features)
        real_freq = shape_frequencies(real_shapes)
    if cfg.shape_assign_weight > 0 or cfg.shape_projection_weight > 0:
        targets = balanced_assignment(shape_logits.detach(), real_freq)
    if cfg.shape_projection_weight > 0:
        fake_logits = projection_logits(cfg, fake_logits, shape_logits, targets.argmax(dim=1))
    loss = F.softplus(-fake_logits).mean()
    stats["loss_G"] = float(loss.detach())
    if cfg.fm_weight > 0:
        with torch.no_grad():
            real_mean = disc.features(real).mean(dim=0)
        loss_fm = (fake_features.mean(dim=0) - real_mean).square().sum()
        stats["loss_FM"] = float(loss_fm.detach())
        loss = loss + cfg.fm_weight * loss_fm
    if cfg.shape_balance_weight > 0:
        fake_freq = shape_logits.softmax(dim=1).mean(dim=0)
        loss_balance = (fake_freq - real_freq).square().sum()
        stats["loss_balance"] = float(loss_balance.detach())
        loss = loss + cfg.shape_balance_weight * loss_balance
    if cfg.shape_confidence_weight > 0:
        loss_entropy = entropy(shape_logits).mean()
        stats["loss_entropy_G"] = float(loss_entropy.detach())
        loss = loss + cfg.shape_confidence_weight * loss_entropy
    if cfg.shape_assign_weight > 0:
        loss_assign = -(targets * shape_logits.log_softmax(dim=1)).sum(dim=1).mean()
        stats["loss_assign"] = float(loss_assign.detach())
        loss = loss + cfg.shape_assign_weight * loss_assign
    return loss, stats


def path_length_penalty(
    cfg: TrainingConfig, fake: torch.Tensor, ws: torch.Tensor, pl_mean: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """StyleGAN2's lazy path-length regulariser of images `fake` rendered from `ws` (which need grad).

    Returns the loss (already scaled by ``pl_weight · pl_interval``) and the updated running mean of the
    path lengths.
    """
    noise = torch.randn_like(fake) / math.sqrt(fake.shape[2] * fake.shape[3])
    (grads,) = torch.autograd.grad((fake * noise).sum(), ws, create_graph=True)
    lengths = grads.square().sum(2).mean(1).sqrt()
    pl_mean = pl_mean.to(lengths.device).lerp(lengths.mean().detach(), 0.01)
    loss = (lengths - pl_mean).square().mean() * cfg.pl_weight * cfg.pl_interval
    return loss, pl_mean


def discriminator_loss(
    cfg: TrainingConfig,
    disc: Discriminator,
    real: torch.Tensor,
    real_shapes: torch.Tensor,
    fake: torch.Tensor,
    r1: bool,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The discriminator's logistic loss on `real` and `fake`, the enabled shape-head terms and, when
    `r1` is set (lazy R1 is due), the R1 penalty on `real` (scaled by ``γ / 2 · r1_interval``)."""
    stats: dict[str, float] = {}
    real.requires_grad_(r1)
    real_features, fake_features = disc.features(real), disc.features(fake)
    real_logits, fake_logits = disc.out(real_features), disc.out(fake_features)
    if cfg.aux_shape_weight > 0:
        real_shape_logits = disc.aux(real_features)
    if cfg.shape_confidence_weight > 0 or cfg.shape_projection_weight > 0:
        fake_shape_logits = disc.aux(fake_features)
    if cfg.shape_projection_weight > 0:
        real_logits = projection_logits(cfg, real_logits, real_shape_logits, real_shapes)
        fake_assigned = balanced_assignment(fake_shape_logits.detach(), shape_frequencies(real_shapes))
        fake_logits = projection_logits(cfg, fake_logits, fake_shape_logits, fake_assigned.argmax(dim=1))
    loss = F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean()
    if cfg.shape_confidence_weight > 0:  # D: be unsure about the shape of generated images
        loss_entropy = entropy(fake_shape_logits).mean()
        stats["loss_entropy_D"] = float(loss_entropy.detach())
        loss = loss - cfg.shape_confidence_weight * loss_entropy
    if cfg.aux_shape_weight > 0:
        loss_aux = F.cross_entropy(real_shape_logits, real_shapes)
        stats["loss_aux"] = float(loss_aux.detach())
        loss = loss + cfg.aux_shape_weight * loss_aux
    if r1:
        (r1_grads,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
        penalty = r1_grads.square().sum(dim=[1, 2, 3]).mean()
        loss = loss + penalty * (cfg.effective_r1_gamma() / 2) * cfg.r1_interval
        stats["r1"] = float(penalty.detach())
    stats["loss_D"] = float(loss.detach())
    return loss, stats
