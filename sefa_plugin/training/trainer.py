"""Training the project's own StyleGAN2 on the procedural scene dataset.

The recipe is StyleGAN2's (Karras et al. 2020): non-saturating logistic loss, lazy R1 regularisation
of the discriminator, optional lazy path-length regularisation of the generator, style mixing, and an
exponential moving average of the generator weights (the EMA generator is what gets shipped).

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
import math
import os
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..data.shapes import SHAPES, render_scenes
from ..models.stylegan2 import StyleGAN2Generator
from ..utils.images import save_grid
from .discriminator import Discriminator

logger = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pt"

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
_SHAPE_HEAD_TERMS = (
    "shape_balance_weight",
    "shape_confidence_weight",
    "shape_assign_weight",
    "shape_projection_weight",
)
_LOSS_WEIGHTS = ("fm_weight", "aux_shape_weight", *_SHAPE_HEAD_TERMS)
#: The generator parameters that the mapping network's lr multiplier scales.
_MAPPING_PARAM = re.compile(r"mapping\.fc\d+\.(weight|bias)")
#: On widening, the weights that read new channels into old ones (and the last discriminator block's new
#: outputs) start at this fraction of a fresh initialisation. Not zero: the new channels' input weights get
#: gradients through them, none while they are zero; this small, those gradients are small but Adam's steps
#: do not depend on the gradient's scale, so the new channels learn at once while the function changes by
#: O(ε). Their Adam moments start at zero for the same reason (a second moment sized for the old weights'
#: gradients would shrink their steps for hundreds of iterations).
_WIDEN_EPS = 1e-3
#: The synthesis convolution weights ``[out, in, k, k]`` whose new input channels start at ``_WIDEN_EPS``
#: when the generator is widened, and the ToRGB weights among them (scaled by a width-dependent gain).
_SYNTHESIS_WEIGHT = re.compile(r"synthesis\.b\d+\.(conv0|conv1|torgb)\.weight")
_TORGB_WEIGHT = re.compile(r"synthesis\.b\d+\.torgb\.weight")
#: The discriminator weight whose last input channel is the minibatch standard deviation.
_D_MBSTD_WEIGHT = "conv.weight"
#: The last discriminator block's weights (8 → 4 px): their new output channels start at ``_WIDEN_EPS``.
_D_LAST_BLOCK_WEIGHT = re.compile(r"b8\.(conv1|skip)\.(weight|bias)")
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


def _load_init_generator(source: str | os.PathLike, cfg: TrainingConfig) -> tuple[dict, dict]:
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
    theirs = _rescale_mapping(loaded.state_dict(), loaded.config.mapping_lr_multiplier, cfg.mapping_lr_multiplier)
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


def _rescale_mapping(state_dict: dict[str, torch.Tensor], old: float, new: float) -> dict[str, torch.Tensor]:
    """Generator weights stored for mapping lr multiplier `old`, re-expressed for `new` (same function).

    Equalized-lr layers store ``weight / lr_multiplier`` and scale by ``lr_multiplier`` at run time, so
    the stored mapping weights and biases are multiplied by ``old / new``.
    """
    ratio = old / new
    return {k: v * ratio if _MAPPING_PARAM.fullmatch(k) else v for k, v in state_dict.items()}


def _or(value: int | None, default: int) -> int:
    """`value`, or `default` where it is None (a discriminator width that follows the generator's)."""
    return default if value is None else value


def _channels(cfg: TrainingConfig) -> dict[int, int]:
    """The generator's channels per synthesis resolution."""
    resolutions = [2**i for i in range(2, int(math.log2(cfg.resolution)) + 1)]
    return {r: min(cfg.channel_base // r, cfg.channel_max) for r in resolutions}


def _d_channels(cfg: TrainingConfig) -> dict[int, int]:
    """The discriminator's channels per resolution (its blocks' and the 4×4 epilogue's)."""
    base, cap = _or(cfg.d_channel_base, cfg.channel_base), _or(cfg.d_channel_max, cfg.channel_max)
    resolutions = [2**i for i in range(2, int(math.log2(cfg.resolution)) + 1)]
    return {r: min(base // r, cap) for r in resolutions}


def _unchanged_by_widening(name: str, old: torch.Tensor, fresh: torch.Tensor) -> bool:
    """Whether a tensor keeps its shape when its network is widened; raises if `fresh` is not a widening."""
    if old.shape == fresh.shape:
        return True
    if old.ndim != fresh.ndim or any(o > f for o, f in zip(old.shape, fresh.shape, strict=True)):
        raise ValueError(f"cannot widen {name} from {list(old.shape)} to {list(fresh.shape)}")
    return False


def _widen_adam_state(
    opt_state: dict,
    module: torch.nn.Module,
    widen_moment: Callable[[str, torch.Tensor, torch.Size, bool], torch.Tensor],
) -> None:
    """Widen, in place, the Adam moments of a saved optimizer state to `module`'s (wider) parameters."""
    params = list(module.named_parameters())
    for index, moments in opt_state["state"].items():
        name, param = params[index]
        for key, squared in (("exp_avg", False), ("exp_avg_sq", True)):
            moments[key] = widen_moment(name, moments[key], param.shape, squared)


def _widen_tensor(name: str, old: torch.Tensor, fresh: torch.Tensor) -> torch.Tensor:
    """One generator tensor of a narrower run embedded in `fresh` (the wider network's initial value).

    The old entries are kept; a synthesis weight's new *input* channels of old outputs are scaled down to
    ``_WIDEN_EPS`` of `fresh`, so the old channels barely see the new ones; a ToRGB weight's old columns
    are rescaled for its gain ``1 / sqrt(in_channels)``, so the output is the same up to O(ε).
    """
    if _unchanged_by_widening(name, old, fresh):
        return old.clone()
    out = fresh.clone()
    if _SYNTHESIS_WEIGHT.fullmatch(name):
        out[: old.shape[0], old.shape[1] :] *= _WIDEN_EPS
    scale = math.sqrt(fresh.shape[1] / old.shape[1]) if _TORGB_WEIGHT.fullmatch(name) else 1.0
    out[tuple(slice(0, n) for n in old.shape)] = old * scale
    return out


def _widen_moment(name: str, old: torch.Tensor, shape: torch.Size, squared: bool) -> torch.Tensor:
    """An Adam moment of a widened generator tensor: old entries kept, new ones 0; ToRGB's old columns
    rescaled like the weights they belong to."""
    if old.shape == shape:
        return old
    scale = math.sqrt(old.shape[1] / shape[1]) if _TORGB_WEIGHT.fullmatch(name) else 1.0
    old = old * (scale**2 if squared else scale)
    out = torch.zeros(shape, dtype=old.dtype)
    out[tuple(slice(0, n) for n in old.shape)] = old
    return out


def _d_columns(name: str, old_in: int, new_in: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Where a discriminator weight's old input columns go in the widened weight, and the factor each is
    scaled by: ``sqrt(new_in / old_in)`` for the layer's gain ``1 / sqrt(fan_in)``. The minibatch-std
    channel stays the last input of the 4×4 convolution, and its column is also scaled by
    ``C_new / C_old``, because that feature averages over ``C`` channels of which the new ones start
    near zero. (A flattened ``[C, 4, 4]`` input keeps its first ``C·16`` columns.)"""
    scale = torch.full([old_in], math.sqrt(new_in / old_in))
    if name != _D_MBSTD_WEIGHT:
        return torch.arange(old_in), scale
    scale[-1] *= (new_in - 1) / (old_in - 1)
    return torch.cat([torch.arange(old_in - 1), torch.tensor([new_in - 1])]), scale


def _widen_d_tensor(name: str, old: torch.Tensor, fresh: torch.Tensor) -> torch.Tensor:
    """One discriminator tensor of a narrower run embedded in `fresh` (the wider network's initial value).

    Old output channels keep their weights (scaled as :func:`_d_columns` says) and read new input
    channels through ``_WIDEN_EPS`` of `fresh`; new output channels keep `fresh`, scaled by ``_WIDEN_EPS``
    in the last block (the 4×4 features that the minibatch standard deviation averages over).
    """
    if _unchanged_by_widening(name, old, fresh):
        return old.clone()
    out = fresh.clone()
    if _D_LAST_BLOCK_WEIGHT.fullmatch(name):
        out[old.shape[0] :] *= _WIDEN_EPS
    if old.ndim == 1:  # a bias
        out[: old.shape[0]] = old
        return out
    cols, scale = _d_columns(name, old.shape[1], fresh.shape[1])
    out[: old.shape[0]] *= _WIDEN_EPS
    out[: old.shape[0], cols] = old * scale.reshape(1, -1, *[1] * (old.ndim - 2))
    return out


def _widen_d_moment(name: str, old: torch.Tensor, shape: torch.Size, squared: bool) -> torch.Tensor:
    """An Adam moment of a widened discriminator tensor: old entries kept (divided by their weight's
    scale, as the gradients are), new ones 0."""
    if old.shape == shape:
        return old
    cols = None
    if old.ndim > 1:
        cols, scale = _d_columns(name, old.shape[1], shape[1])
        old = old / scale.reshape(1, -1, *[1] * (old.ndim - 2)) ** (2 if squared else 1)
    out = torch.zeros(shape, dtype=old.dtype)
    if cols is None:
        out[: old.shape[0]] = old
    else:
        out[: old.shape[0], cols] = old
    return out


def _lazy_ratio(interval: int | None) -> float:
    """StyleGAN2's lr/beta scaling for a network regularised lazily every `interval` steps."""
    return 1.0 if interval is None else interval / (interval + 1)


def _entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy (nats) of each row's softmax distribution."""
    log_p = logits.log_softmax(dim=1)
    return -(log_p.exp() * log_p).sum(dim=1)


def _shape_frequencies(labels: torch.Tensor) -> torch.Tensor:
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


def _save_atomic(obj: dict, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


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
            run), e.g. ``{"r1_gamma": 0.2}``; keys from :data:`RESUME_OVERRIDABLE`. Each change is recorded
            with the iteration it took effect at in ``config.extra["overrides"]``. A larger ``channel_base``
            or ``channel_max`` on resume widens the generator, a larger ``d_channel_base`` or ``d_channel_max``
            the discriminator (see :class:`TrainingConfig`).

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

        overrides = dict(overrides or {})
        unknown = sorted(set(overrides) - set(RESUME_OVERRIDABLE))
        if unknown:
            raise ValueError(f"`overrides` has unknown keys {unknown}; allowed: {list(RESUME_OVERRIDABLE)}.")
        for key, value in overrides.items():
            if value is not None and (not isinstance(value, int | float) or not math.isfinite(value) or value < 0):
                raise ValueError(f"`overrides[{key!r}]` must be a finite number ≥ 0, got {value!r}.")
        if overrides.get("lr") is None:
            overrides.pop("lr", None)

        self.run_dir = Path(run_dir)
        ckpt_path = self.run_dir / CHECKPOINT_NAME
        state = torch.load(ckpt_path, map_location="cpu", weights_only=True) if ckpt_path.exists() else None
        if state is not None:
            config = TrainingConfig(**state["config"])
            saved_mapping_mult = config.mapping_lr_multiplier
            logger.info("Resuming %s at iteration %d", ckpt_path, state["iteration"])
            if init_generator is not None:
                logger.warning("`init_generator` is ignored: %s resumes from its checkpoint.", ckpt_path)
                init_generator = None
        init_weights = None
        if init_generator is not None:
            init_weights, fingerprint = _load_init_generator(init_generator, config)
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
        widened_nets = set()
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
            widened_nets.add(net)
        widened, d_widened = "generator" in widened_nets, "discriminator" in widened_nets
        for key in _LOSS_WEIGHTS:
            value = getattr(config, key)
            if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise ValueError(f"`{key}` must be a finite number ≥ 0 (0: off), got {value!r}.")
        if not 0 <= config.style_mixing_prob <= 1:
            raise ValueError(f"`style_mixing_prob` must be in [0, 1], got {config.style_mixing_prob!r}.")
        if not config.mapping_lr_multiplier > 0:
            raise ValueError(f"`mapping_lr_multiplier` must be > 0, got {config.mapping_lr_multiplier!r}.")
        for key in _SHAPE_HEAD_TERMS:
            if getattr(config, key) > 0 and config.aux_shape_weight <= 0:
                raise ValueError(
                    f"`{key}` needs the discriminator's shape head: set `aux_shape_weight` > 0 too "
                    f"(got aux_shape_weight={config.aux_shape_weight})."
                )
        try:  # only once the settings are known to be valid, so a bad one leaves nothing behind
            self.run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise OSError(f"`run_dir` {str(run_dir)!r} cannot be created: {err}") from err
        self.config = config
        use_cpu = device == "cpu" or (device is None and not torch.cuda.is_available())
        self.accelerator = Accelerator(cpu=use_cpu)
        torch.manual_seed(config.seed)
        self.G = build_generator(config)
        has_aux = config.aux_shape_weight > 0 or (state is not None and "aux.weight" in state["D"])
        self.D = Discriminator(
            config.resolution,
            channel_base=_or(config.d_channel_base, config.channel_base),
            channel_max=_or(config.d_channel_max, config.channel_max),
            num_aux_classes=len(SHAPES) if has_aux else 0,
        )
        if init_weights is not None:
            self.G.load_state_dict(init_weights)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        # Lazy regularisation: rescale lr and betas so that the effective optimisation matches (StyleGAN2).
        g_interval = config.pl_interval if config.pl_weight > 0 else None
        opt_g = self._adam(self.G, g_interval)
        opt_d = self._adam(self.D, config.r1_interval)
        self.rng = np.random.default_rng(config.seed)  # data order
        self.iteration = 0
        self.pl_mean = torch.zeros([])
        self.images_seen = 0
        self.wall_seconds = 0.0  # training time summed over all resumed runs
        if state is not None:
            g_state, ema_state = state["G"], state["G_ema"]
            if widened:
                fresh = self.G.state_dict()
                g_state = {k: _widen_tensor(k, v, fresh[k]) for k, v in g_state.items()}
                ema_state = {k: _widen_tensor(k, v, fresh[k]) for k, v in ema_state.items()}
                _widen_adam_state(state["opt_G"], self.G, _widen_moment)
            old_mult, new_mult = saved_mapping_mult, config.mapping_lr_multiplier
            self.G.load_state_dict(_rescale_mapping(g_state, old_mult, new_mult))
            self.G_ema.load_state_dict(_rescale_mapping(ema_state, old_mult, new_mult))
            opt_g.load_state_dict(state["opt_G"])
            if new_mult != old_mult:  # gradients w.r.t. the rescaled weights scale by new / old
                for name, param in self.G.named_parameters():
                    moments = opt_g.state.get(param, {})
                    if _MAPPING_PARAM.fullmatch(name) and moments:
                        moments["exp_avg"].mul_(new_mult / old_mult)
                        moments["exp_avg_sq"].mul_((new_mult / old_mult) ** 2)
            d_state = state["D"]
            if d_widened:
                fresh = self.D.state_dict()
                d_state = {k: _widen_d_tensor(k, v, fresh[k]) if k in fresh else v for k, v in d_state.items()}
                _widen_adam_state(state["opt_D"], self.D, _widen_d_moment)
            missing, unexpected = self.D.load_state_dict(d_state, strict=False)
            if unexpected or any(not k.startswith("aux.") for k in missing):
                raise RuntimeError(f"{ckpt_path}: discriminator weights do not match ({missing + unexpected})")
            if missing:  # the shape head is new: its optimizer state starts fresh with the others'
                logger.info("Adding the discriminator's shape head at iteration %d", state["iteration"])
            else:
                opt_d.load_state_dict(state["opt_D"])
            if "lr" in changed:  # the loaded optimizer states carry the old learning rate
                for opt, interval in ((opt_g, g_interval), (opt_d, config.r1_interval)):
                    for group in opt.param_groups:
                        group["lr"] = config.lr * _lazy_ratio(interval)
            self.iteration = int(state["iteration"])
            self.images_seen = int(state["images_seen"])
            self.pl_mean = state["pl_mean"]
            self.wall_seconds = float(state.get("wall_seconds", 0.0))
            self.rng.bit_generator.state = json.loads(state["rng_numpy"])
            torch.set_rng_state(state["rng_cpu"])
        # The networks are not wrapped in DistributedDataParallel: the generator's forward (mapping, style
        # mixing, synthesis) and the frozen discriminator in the generator step do not fit DDP's one-forward-
        # one-backward contract, so gradients are averaged across processes explicitly (as NVIDIA's
        # training loop does) by `_sync_gradients`. Every process starts from the same weights.
        device = self.accelerator.device
        self.G, self.D, self.G_ema = self.G.to(device), self.D.to(device), self.G_ema.to(device)
        self.opt_g, self.opt_d = opt_g, opt_d
        if self.accelerator.num_processes > 1:
            # Distinct latents and real images per process (the checkpoint's RNG state is the main process's).
            rank = self.accelerator.process_index
            torch.manual_seed(config.seed * 1_000_003 + self.iteration * 7_919 + rank)
            self.rng = np.random.default_rng([config.seed, self.iteration, rank])
        self.sample_z = torch.from_numpy(np.random.RandomState(123).randn(64, config.z_dim).astype(np.float32))

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

    def _project(self, logits: torch.Tensor, shape_logits: torch.Tensor, shapes: torch.Tensor) -> torch.Tensor:
        """Projection-discriminator logits ``[N, 1]``: add the shape head's logit of each image's shape."""
        return logits + self.config.shape_projection_weight * shape_logits.gather(1, shapes[:, None])

    def step(self) -> dict[str, float]:
        """One generator and one discriminator update (plus due regularisation); returns the losses."""
        cfg, acc = self.config, self.accelerator
        stats: dict[str, float] = {}
        # Generator: non-saturating loss (plus feature matching and shape balance when enabled).
        self.D.requires_grad_(False)
        self.G.requires_grad_(True)
        fake, _ = self._generate(cfg.batch_size)
        fake_features = self.D.features(fake)
        fake_logits = self.D.out(fake_features)
        shape_terms = any(getattr(cfg, key) > 0 for key in _SHAPE_HEAD_TERMS)
        if cfg.fm_weight > 0 or shape_terms:
            real, real_shapes = self._real_batch()
        if shape_terms:
            shape_logits = self.D.aux(fake_features)
            real_freq = _shape_frequencies(real_shapes)
        if cfg.shape_assign_weight > 0 or cfg.shape_projection_weight > 0:
            targets = balanced_assignment(shape_logits.detach(), real_freq)
        if cfg.shape_projection_weight > 0:
            fake_logits = self._project(fake_logits, shape_logits, targets.argmax(dim=1))
        loss_g = F.softplus(-fake_logits).mean()
        stats["loss_G"] = float(loss_g.detach())
        if cfg.fm_weight > 0:
            with torch.no_grad():
                real_mean = self.D.features(real).mean(dim=0)
            loss_fm = (fake_features.mean(dim=0) - real_mean).square().sum()
            stats["loss_FM"] = float(loss_fm.detach())
            loss_g = loss_g + cfg.fm_weight * loss_fm
        if cfg.shape_balance_weight > 0:
            fake_freq = shape_logits.softmax(dim=1).mean(dim=0)
            loss_balance = (fake_freq - real_freq).square().sum()
            stats["loss_balance"] = float(loss_balance.detach())
            loss_g = loss_g + cfg.shape_balance_weight * loss_balance
        if cfg.shape_confidence_weight > 0:
            loss_entropy = _entropy(shape_logits).mean()
            stats["loss_entropy_G"] = float(loss_entropy.detach())
            loss_g = loss_g + cfg.shape_confidence_weight * loss_entropy
        if cfg.shape_assign_weight > 0:
            loss_assign = -(targets * shape_logits.log_softmax(dim=1)).sum(dim=1).mean()
            stats["loss_assign"] = float(loss_assign.detach())
            loss_g = loss_g + cfg.shape_assign_weight * loss_assign
        self.opt_g.zero_grad(set_to_none=True)
        acc.backward(loss_g)
        if cfg.pl_weight > 0 and self.iteration % cfg.pl_interval == 0:
            fake, ws = self._generate(max(cfg.batch_size // 2, 1))
            noise = torch.randn_like(fake) / math.sqrt(fake.shape[2] * fake.shape[3])
            (grads,) = torch.autograd.grad((fake * noise).sum(), ws, create_graph=True)
            lengths = grads.square().sum(2).mean(1).sqrt()
            self.pl_mean = self.pl_mean.to(lengths.device).lerp(lengths.mean().detach(), 0.01)
            loss_pl = (lengths - self.pl_mean).square().mean() * cfg.pl_weight * cfg.pl_interval
            acc.backward(loss_pl)
            stats["loss_PL"] = float(loss_pl.detach())
        self._sync_gradients(self.G)
        self.opt_g.step()
        # Discriminator: logistic loss, lazy R1 on reals.
        self.G.requires_grad_(False)
        self.D.requires_grad_(True)
        with torch.no_grad():
            fake, _ = self._generate(cfg.batch_size)
        real, real_shapes = self._real_batch()
        do_r1 = cfg.r1_interval > 0 and self.iteration % cfg.r1_interval == 0
        real.requires_grad_(do_r1)
        real_features, fake_features = self.D.features(real), self.D.features(fake)
        real_logits, fake_logits = self.D.out(real_features), self.D.out(fake_features)
        if cfg.aux_shape_weight > 0:
            real_shape_logits = self.D.aux(real_features)
        if cfg.shape_confidence_weight > 0 or cfg.shape_projection_weight > 0:
            fake_shape_logits = self.D.aux(fake_features)
        if cfg.shape_projection_weight > 0:
            real_logits = self._project(real_logits, real_shape_logits, real_shapes)
            fake_assigned = balanced_assignment(fake_shape_logits.detach(), _shape_frequencies(real_shapes))
            fake_logits = self._project(fake_logits, fake_shape_logits, fake_assigned.argmax(dim=1))
        loss_d = F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean()
        if cfg.shape_confidence_weight > 0:  # D: be unsure about the shape of generated images
            loss_entropy_d = _entropy(fake_shape_logits).mean()
            stats["loss_entropy_D"] = float(loss_entropy_d.detach())
            loss_d = loss_d - cfg.shape_confidence_weight * loss_entropy_d
        if cfg.aux_shape_weight > 0:
            loss_aux = F.cross_entropy(real_shape_logits, real_shapes)
            stats["loss_aux"] = float(loss_aux.detach())
            loss_d = loss_d + cfg.aux_shape_weight * loss_aux
        if do_r1:
            (r1_grads,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
            r1 = r1_grads.square().sum(dim=[1, 2, 3]).mean()
            loss_d = loss_d + r1 * (cfg.effective_r1_gamma() / 2) * cfg.r1_interval
            stats["r1"] = float(r1.detach())
        self.opt_d.zero_grad(set_to_none=True)
        acc.backward(loss_d)
        self._sync_gradients(self.D)
        self.opt_d.step()
        stats["loss_D"] = float(loss_d.detach())
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
        if not self.accelerator.is_main_process:
            return self.run_dir / CHECKPOINT_NAME
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
        path = self.run_dir / CHECKPOINT_NAME
        _save_atomic(state, path)
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
                with log_path.open("a") as fh:
                    fh.write(json.dumps(stats) + "\n")
                bar.set_postfix(G=f"{stats['loss_G']:.3f}", D=f"{stats['loss_D']:.3f}")
            if self.iteration % checkpoint_every == 0:
                self.save_checkpoint()
        bar.close()
        self.save_checkpoint()
