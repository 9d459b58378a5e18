"""Carrying a saved run into networks built for new settings, without changing what they compute.

Two settings of :class:`~sefa_plugin.training.config.TrainingConfig` may change when a run resumes
although the checkpoint's tensors were built for the old value:

* wider networks (``channel_base``/``channel_max`` for the generator, ``d_channel_base``/
  ``d_channel_max`` for the discriminator), Net2Net-style (Chen et al. 2016): old weights are kept,
  new channels start from a fresh initialisation, and the weights that read new channels into old
  ones start at ``_WIDEN_EPS`` of one, so the networks' outputs change by O(ε); the equalized-lr gains
  ``1 / sqrt(fan_in)`` that depend on the width are compensated;
* the mapping network's learning-rate multiplier: equalized-lr layers store ``weight / lr_multiplier``,
  so the stored mapping weights are re-expressed for the new multiplier (same function) and their Adam
  moments rescaled like the gradients.

The Adam moments of new entries start at zero: a second moment sized for the old weights' gradients
would shrink their steps for hundreds of iterations.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

import torch

__all__ = ["rescale_mapping", "restore_generator", "widen_discriminator_state"]

#: The generator parameters that the mapping network's lr multiplier scales.
MAPPING_PARAM = re.compile(r"mapping\.fc\d+\.(weight|bias)")
#: On widening, the weights that read new channels into old ones (and the last discriminator block's new
#: outputs) start at this fraction of a fresh initialisation. Not zero: the new channels' input weights get
#: gradients through them, none while they are zero; this small, those gradients are small but Adam's steps
#: do not depend on the gradient's scale, so the new channels learn at once while the function changes by
#: O(ε).
_WIDEN_EPS = 1e-3
#: The synthesis convolution weights ``[out, in, k, k]`` whose new input channels start at ``_WIDEN_EPS``
#: when the generator is widened, and the ToRGB weights among them (scaled by a width-dependent gain).
_SYNTHESIS_WEIGHT = re.compile(r"synthesis\.b\d+\.(conv0|conv1|torgb)\.weight")
_TORGB_WEIGHT = re.compile(r"synthesis\.b\d+\.torgb\.weight")
#: The discriminator weight whose last input channel is the minibatch standard deviation.
_D_MBSTD_WEIGHT = "conv.weight"
#: The last discriminator block's weights (8 → 4 px): their new output channels start at ``_WIDEN_EPS``.
_D_LAST_BLOCK_WEIGHT = re.compile(r"b8\.(conv1|skip)\.(weight|bias)")


def rescale_mapping(state_dict: dict[str, torch.Tensor], old: float, new: float) -> dict[str, torch.Tensor]:
    """Generator weights stored for mapping lr multiplier `old`, re-expressed for `new` (same function).

    Equalized-lr layers store ``weight / lr_multiplier`` and scale by ``lr_multiplier`` at run time, so
    the stored mapping weights and biases are multiplied by ``old / new``.
    """
    ratio = old / new
    return {k: v * ratio if MAPPING_PARAM.fullmatch(k) else v for k, v in state_dict.items()}


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


def restore_generator(
    state: dict,
    generator: torch.nn.Module,
    generator_ema: torch.nn.Module,
    opt_g: torch.optim.Optimizer,
    widened: bool,
    old_mapping_lr: float,
    new_mapping_lr: float,
) -> None:
    """Load a checkpoint's generator, EMA generator and generator optimizer into (possibly wider)
    `generator`, `generator_ema` and `opt_g`, re-expressing the mapping for the lr multiplier
    `new_mapping_lr`."""
    g_state, ema_state = state["G"], state["G_ema"]
    if widened:
        fresh = generator.state_dict()
        g_state = {k: _widen_tensor(k, v, fresh[k]) for k, v in g_state.items()}
        ema_state = {k: _widen_tensor(k, v, fresh[k]) for k, v in ema_state.items()}
        _widen_adam_state(state["opt_G"], generator, _widen_moment)
    generator.load_state_dict(rescale_mapping(g_state, old_mapping_lr, new_mapping_lr))
    generator_ema.load_state_dict(rescale_mapping(ema_state, old_mapping_lr, new_mapping_lr))
    opt_g.load_state_dict(state["opt_G"])
    if new_mapping_lr != old_mapping_lr:  # gradients w.r.t. the rescaled weights scale by new / old
        ratio = new_mapping_lr / old_mapping_lr
        for name, param in generator.named_parameters():
            moments = opt_g.state.get(param, {})
            if MAPPING_PARAM.fullmatch(name) and moments:
                moments["exp_avg"].mul_(ratio)
                moments["exp_avg_sq"].mul_(ratio**2)


def widen_discriminator_state(state: dict, discriminator: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A checkpoint's discriminator weights embedded in the wider `discriminator`; widens ``state["opt_D"]`` in place.

    Keys that it lacks (a shape head `discriminator` does not have) are passed through unchanged.
    """
    fresh = discriminator.state_dict()
    _widen_adam_state(state["opt_D"], discriminator, _widen_d_moment)
    return {k: _widen_d_tensor(k, v, fresh[k]) if k in fresh else v for k, v in state["D"].items()}
