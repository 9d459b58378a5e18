"""The settings of a GAN training run, and how a resumed run merges new settings into its checkpoint's.

A run's :class:`TrainingConfig` is stored in every checkpoint. Resuming uses the stored one; only the
settings of :data:`RESUME_OVERRIDABLE` may then change (each change is recorded with the iteration it
took effect at), and :func:`resolve_run` checks the result before anything is built or written.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..models.stylegan2 import StyleGAN2Generator
from .widening import rescale_mapping

__all__ = [
    "RESUME_OVERRIDABLE",
    "ResolvedRun",
    "TrainingConfig",
    "build_generator",
    "check_overrides",
    "discriminator_widths",
    "load_init_generator",
    "resolve_run",
]

logger = logging.getLogger(__name__)

#: Settings that may change when a run resumes (``Trainer(..., overrides=...)``); the others fix the
#: architecture, the data or the lazy-regularisation schedule that the optimizer states were built for.
RESUME_OVERRIDABLE = (
    "batch_size",
    "channel_base",
    "channel_max",
    "d_channel_base",
    "d_channel_max",
    "lr",
    "mapping_lr_multiplier",
    "r1_gamma",
    "style_mixing_prob",
    "ema_kimg",
    "fm_weight",
    "aux_shape_weight",
    "shape_balance_weight",
    "shape_confidence_weight",
    "shape_assign_weight",
    "shape_projection_weight",
)

#: Optional loss terms (0: off) and, of those, the generator terms built on the discriminator's shape head.
SHAPE_HEAD_TERMS = (
    "shape_balance_weight",
    "shape_confidence_weight",
    "shape_assign_weight",
    "shape_projection_weight",
)
LOSS_WEIGHTS = ("fm_weight", "aux_shape_weight", *SHAPE_HEAD_TERMS)
_WIDTHS = ("channel_base", "channel_max", "d_channel_base", "d_channel_max")


@dataclass
class TrainingConfig:
    """Everything that defines a training run (stored in every checkpoint).

    Attributes:
        resolution: Image side; the generator and discriminator are built for it.
        z_dim: Width of ``z``.
        w_dim: Width of ``w``.
        mapping_layers: Depth of the mapping network.
        mapping_lr_multiplier: Learning-rate multiplier of the mapping network (> 0; StyleGAN's 0.01). A
            resumed run that changes it rescales the stored mapping weights and their Adam moments (a
            warm start, the loaded generator's weights), so the generator's function is unchanged and
            only the mapping's learning speed is.
        channel_base: Generator channels at resolution r: ``min(channel_base // r, channel_max)`` (and the
            discriminator's, unless ``d_channel_base`` is set). A resumed run that raises it or
            ``channel_max`` *widens* the generator almost without changing its function (Net2Net-style, Chen et
            al. 2016): old weights are kept, new output channels start from a fresh initialisation, and
            the weights that read new channels into old ones start at 0.1% of one (not at zero, which
            would leave the new channels without gradient under Adam), so the images change slightly at
            the switch; the ToRGB weights are rescaled for their width-dependent gain. The Adam moments
            of the new entries start at zero. The discriminator keeps its width unless
            ``d_channel_base``/``d_channel_max`` change it. Narrowing is refused.
        channel_max: Upper bound on the generator's channels.
        d_channel_base: The discriminator's ``channel_base`` (None: the generator's). A resumed run pins
            it to the width its discriminator was built with; raising it (or ``d_channel_max``) widens the
            discriminator in the same way (its logits change slightly): old weights are kept and
            rescaled for their equalized-lr gain ``1 / sqrt(fan_in)``, new output channels start from a
            fresh initialisation (those of the last block at 0.1% of one), the weights that read new
            channels into old ones at 0.1% of one, and the minibatch-std channel stays the last input of
            the 4×4 convolution. Adam moments as above.
        d_channel_max: The discriminator's ``channel_max`` (None: the generator's).
        batch_size: Images per step (per process); a resumed run may change it (the EMA half-life and
            the automatic R1 γ follow it; the learning rate does not).
        lr: Adam learning rate of both networks (betas 0, 0.99, as StyleGAN2).
        r1_gamma: R1 weight; None picks StyleGAN2-ADA's heuristic ``0.0002 · resolution² / batch_size``.
        r1_interval: Lazy R1: apply every this many steps.
        pl_weight: Path-length regularisation weight (0 disables it; StyleGAN2 uses 2).
        pl_interval: Lazy path-length regularisation interval.
        style_mixing_prob: Probability of mixing two latents at a random layer, in [0, 1].
        fm_weight: Weight of a feature-matching term in the generator loss (Salimans et al. 2016): the
            squared distance between the batch means of the discriminator's penultimate features on
            generated and on real images. It penalises a generator that drops modes of the data (0: off).
        aux_shape_weight: Weight of an auxiliary loss that trains a classification head of the
            discriminator to predict the object shape of *real* scenes (the procedural data comes with
            its labels; the generator stays unconditional). Without it the discriminator's features
            need not tell shapes apart, and the generator can drop shapes unpunished (0: off).
        shape_balance_weight: Weight of a generator term that pulls the batch mean of the auxiliary
            head's shape probabilities on generated images towards the shape frequencies of a real
            batch; needs ``aux_shape_weight > 0`` (0: off).
        shape_confidence_weight: Weight of a two-sided entropy game on the shape head, as in CatGAN
            (Springenberg 2016): the discriminator is trained to be *uncertain* about the shape of generated
            images (it maximises the entropy of the head's prediction on them) and the generator to make
            each image *confidently* one shape (it minimises that entropy). A head trained on real labels
            alone can be fooled by shapeless blobs; this term keeps it from calling them a shape. Needs
            ``aux_shape_weight > 0`` (0: off).
        shape_assign_weight: Weight of a generator term that assigns each generated image of a batch a
            target shape, so that the targets come in the real batch's proportions and each image gets
            the shape the head finds most likely for it (balanced Sinkhorn-Knopp assignment, as in
            SwAV), then applies cross-entropy to those targets. Unlike ``shape_balance_weight``, which
            a head that is unsure about every sample satisfies, it asks each sample to be a clear shape
            *and* the batch to be balanced. Needs ``aux_shape_weight > 0`` (0: off).
        shape_projection_weight: Makes the real/fake logit class-conditional, as in the projection
            discriminator (Miyato & Koyama 2018), with the shape head's weights as the class embeddings:
            the discriminator's logit for an image becomes ``out(f) + weight · aux(f)[y]``, where ``y`` is
            the label of a real scene and, for a generated image, the shape of its balanced assignment
            (as in ``shape_assign_weight``). The discriminator then judges "is this a real square",
            not only "is this a real scene", so a sample halfway between two shapes is penalised under
            either label. Needs ``aux_shape_weight > 0`` (0: off).
        ema_kimg: Half-life of the generator EMA in thousands of images.
        ema_rampup: EMA half-life ramp-up as a fraction of images seen (None disables).
        dataset_seed: Seed of the scene dataset.
        dataset_size: Number of distinct scenes to draw from.
        seed: Seed of the training run (initialisation, latents, data order).
    """

    resolution: int = 64
    z_dim: int = 128
    w_dim: int = 128
    mapping_layers: int = 4
    mapping_lr_multiplier: float = 0.01
    channel_base: int = 2048
    channel_max: int = 64
    d_channel_base: int | None = None
    d_channel_max: int | None = None
    batch_size: int = 32
    lr: float = 0.002
    r1_gamma: float | None = None
    r1_interval: int = 16
    pl_weight: float = 0.0
    pl_interval: int = 4
    style_mixing_prob: float = 0.9
    fm_weight: float = 0.0
    aux_shape_weight: float = 0.0
    shape_balance_weight: float = 0.0
    shape_confidence_weight: float = 0.0
    shape_assign_weight: float = 0.0
    shape_projection_weight: float = 0.0
    ema_kimg: float = 10.0
    ema_rampup: float | None = 0.05
    dataset_seed: int = 0
    dataset_size: int = 1_000_000
    seed: int = 0
    extra: dict = field(default_factory=dict)

    def effective_r1_gamma(self) -> float:
        if self.r1_gamma is not None:
            return self.r1_gamma
        return 0.0002 * self.resolution**2 / self.batch_size


def build_generator(cfg: TrainingConfig) -> StyleGAN2Generator:
    """The generator described by a training configuration."""
    return StyleGAN2Generator(
        z_dim=cfg.z_dim,
        w_dim=cfg.w_dim,
        img_resolution=cfg.resolution,
        channel_base=cfg.channel_base,
        channel_max=cfg.channel_max,
        mapping_layers=cfg.mapping_layers,
        mapping_lr_multiplier=cfg.mapping_lr_multiplier,
    )


def load_init_generator(source: str | os.PathLike, cfg: TrainingConfig) -> tuple[dict, dict]:
    """Weights of a saved generator for a warm start, checked against the run's architecture."""
    from ..hub import weights_sha256

    folder = Path(source)
    if (folder / "generator" / "config.json").is_file():
        folder = folder / "generator"
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(
            f"`init_generator` {str(source)!r} holds no generator: expected config.json (a generator folder) "
            "or generator/config.json (a pipeline folder)."
        )
    loaded = StyleGAN2Generator.from_pretrained(folder)
    expected = build_generator(cfg)
    ours = expected.state_dict()
    theirs = rescale_mapping(loaded.state_dict(), loaded.config.mapping_lr_multiplier, cfg.mapping_lr_multiplier)
    mismatched = sorted(
        k for k in ours.keys() | theirs.keys() if k not in ours or k not in theirs or ours[k].shape != theirs[k].shape
    )
    if mismatched:
        raise ValueError(
            f"`init_generator` {str(source)!r} does not match the training configuration "
            f"(resolution {cfg.resolution}, z_dim {cfg.z_dim}, w_dim {cfg.w_dim}, channel_base {cfg.channel_base}, "
            f"channel_max {cfg.channel_max}, mapping_layers {cfg.mapping_layers}); differing keys: {mismatched[:5]}"
        )
    return theirs, {"source": str(source), "weights_sha256": weights_sha256(loaded)}


def _or(value: int | None, default: int) -> int:
    """`value`, or `default` where it is None (a discriminator width that follows the generator's)."""
    return default if value is None else value


def _channels(cfg: TrainingConfig) -> dict[int, int]:
    """The generator's channels per synthesis resolution."""
    resolutions = [2**i for i in range(2, int(math.log2(cfg.resolution)) + 1)]
    return {r: min(cfg.channel_base // r, cfg.channel_max) for r in resolutions}


def discriminator_widths(cfg: TrainingConfig) -> tuple[int, int]:
    """The discriminator's ``(channel_base, channel_max)``: its own, or the generator's where unset."""
    return _or(cfg.d_channel_base, cfg.channel_base), _or(cfg.d_channel_max, cfg.channel_max)


def _d_channels(cfg: TrainingConfig) -> dict[int, int]:
    """The discriminator's channels per resolution (its blocks' and the 4×4 epilogue's)."""
    base, cap = discriminator_widths(cfg)
    resolutions = [2**i for i in range(2, int(math.log2(cfg.resolution)) + 1)]
    return {r: min(base // r, cap) for r in resolutions}


@dataclass
class ResolvedRun:
    """What a trainer builds: the run's settings from now on and what the checkpoint's tensors need.

    Attributes:
        config: The settings in force (the checkpoint's when resuming, with the overrides applied).
        init_weights: Generator weights of a warm start (``init_generator``), None otherwise.
        saved_mapping_lr: The mapping lr multiplier the checkpoint's generator weights are stored for.
        widen_generator: Whether the checkpoint's generator must be widened to `config`'s channels.
        widen_discriminator: Likewise for the discriminator.
        changed: The overrides that changed a setting (empty: none).
    """

    config: TrainingConfig
    init_weights: dict | None = None
    saved_mapping_lr: float = 0.01
    widen_generator: bool = False
    widen_discriminator: bool = False
    changed: dict[str, Any] = field(default_factory=dict)


def check_overrides(overrides: dict[str, float | None] | None) -> dict[str, float | None]:
    """Valid `overrides` (keys of :data:`RESUME_OVERRIDABLE`, finite numbers ≥ 0), without a None ``lr``."""
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(RESUME_OVERRIDABLE))
    if unknown:
        raise ValueError(f"`overrides` has unknown keys {unknown}; allowed: {list(RESUME_OVERRIDABLE)}.")
    for key, value in overrides.items():
        if value is not None and (not isinstance(value, int | float) or not math.isfinite(value) or value < 0):
            raise ValueError(f"`overrides[{key!r}]` must be a finite number ≥ 0, got {value!r}.")
    if overrides.get("lr") is None:
        overrides.pop("lr", None)
    return overrides


def resolve_run(
    config: TrainingConfig,
    state: dict | None,
    overrides: dict[str, float | None],
    init_generator: str | os.PathLike | None = None,
    checkpoint: str | os.PathLike = "the checkpoint",
) -> ResolvedRun:
    """Merge a run's settings: the checkpoint's (`state`, when resuming) or `config`, a warm start, and
    the checked `overrides` (see :func:`check_overrides`); then validate the result.

    Raises:
        ValueError: A setting is out of range, a shape-head term lacks ``aux_shape_weight``, or a resumed
            run's widths would narrow a network.
    """
    saved_mapping_lr = config.mapping_lr_multiplier
    if state is not None:
        config = TrainingConfig(**state["config"])
        saved_mapping_lr = config.mapping_lr_multiplier
        logger.info("Resuming %s at iteration %d", checkpoint, state["iteration"])
        if init_generator is not None:
            logger.warning("`init_generator` is ignored: %s resumes from its checkpoint.", checkpoint)
            init_generator = None
    init_weights = None
    if init_generator is not None:
        init_weights, fingerprint = load_init_generator(init_generator, config)
        config = replace(config, extra={**config.extra, "init_generator": fingerprint})
    changed = {k: v for k, v in overrides.items() if getattr(config, k) != v}
    saved_config = config
    if changed:
        at = int(state["iteration"]) if state is not None else 0
        history = [*config.extra.get("overrides", []), {"iteration": at, **changed}]
        config = replace(config, **changed, extra={**config.extra, "overrides": history})
        logger.info("Settings from iteration %d on: %s", at, changed)
    for key in ("batch_size", *_WIDTHS):
        value = getattr(config, key)
        if value is None and key.startswith("d_"):
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"`{key}` must be a positive integer, got {value!r}.")
    if state is not None:  # the discriminator keeps the width it was built with unless told otherwise
        config = replace(
            config,
            d_channel_base=_or(config.d_channel_base, saved_config.channel_base),
            d_channel_max=_or(config.d_channel_max, saved_config.channel_max),
        )
    widened = set()
    for net, channels, keys in (
        ("generator", _channels, "`channel_base`/`channel_max`"),
        ("discriminator", _d_channels, "`d_channel_base`/`d_channel_max`"),
    ):
        old_ch, new_ch = channels(saved_config), channels(config)
        if state is None or new_ch == old_ch:
            continue
        if any(new_ch[r] < old_ch[r] for r in old_ch):
            raise ValueError(
                f"{keys} can only widen the {net} of a resumed run; they would change its channels per "
                f"resolution from {old_ch} to {new_ch}."
            )
        logger.info("Widening the %s at iteration %d: channels %s -> %s", net, state["iteration"], old_ch, new_ch)
        widened.add(net)
    _check_objective(config)
    return ResolvedRun(
        config=config,
        init_weights=init_weights,
        saved_mapping_lr=saved_mapping_lr,
        widen_generator="generator" in widened,
        widen_discriminator="discriminator" in widened,
        changed=changed,
    )


def _check_objective(config: TrainingConfig) -> None:
    """Check the loss weights and the other settings of the training objective."""
    for key in LOSS_WEIGHTS:
        value = getattr(config, key)
        if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
            raise ValueError(f"`{key}` must be a finite number ≥ 0 (0: off), got {value!r}.")
    if not 0 <= config.style_mixing_prob <= 1:
        raise ValueError(f"`style_mixing_prob` must be in [0, 1], got {config.style_mixing_prob!r}.")
    if not config.mapping_lr_multiplier > 0:
        raise ValueError(f"`mapping_lr_multiplier` must be > 0, got {config.mapping_lr_multiplier!r}.")
    for key in SHAPE_HEAD_TERMS:
        if getattr(config, key) > 0 and config.aux_shape_weight <= 0:
            raise ValueError(
                f"`{key}` needs the discriminator's shape head: set `aux_shape_weight` > 0 too "
                f"(got aux_shape_weight={config.aux_shape_weight})."
            )
