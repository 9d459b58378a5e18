"""The bounds on generator configs, in one place, and the checks that apply them before anything is allocated.

A ``config.json`` (or the ``init_kwargs`` of a converted pickle) decides how much memory a generator takes:
a ten-million-wide ``z_dim``, a mapping network a million layers deep or a ``channel_base`` of 2⁴⁰ would
allocate gigabytes, or never finish, before a single weight is read. Every generator family therefore
checks its integer fields against :data:`CONFIG_LIMITS` first, then counts its parameters on the ``meta``
device (no memory) and refuses more than :data:`MAX_PARAMETERS`, before it builds a real tensor.

The bounds are generous for the real models this project converts (StyleGAN-XL at 1024², BigGAN-deep at
512, StyleGAN3-R with ``channel_base`` 65536, ``z_dim`` up to 2048, ImageNet-21k's 21,843 classes), and
far below the sizes that would exhaust a machine.
"""

from __future__ import annotations

import contextvars
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch

__all__ = [
    "CONFIG_LIMITS",
    "MAX_BATCH_PIXELS",
    "MAX_LATENT_ELEMENTS",
    "MAX_NUM_SAMPLES",
    "MAX_PARAMETERS",
    "MAX_RESAMPLE_TAPS",
    "MAX_SEEDS",
    "check_config_int",
    "check_config_ints",
    "check_config_number",
    "check_count",
    "check_int",
    "check_parameter_budget",
    "check_render_batch",
    "check_resample_filter",
    "is_channel_width",
]

#: Inclusive ``(low, high)`` bounds of every integer config field a generator family reads.
CONFIG_LIMITS: Mapping[str, tuple[int, int]] = {
    "img_resolution": (4, 2048),  # a power of two; StyleGAN-XL goes to 1024
    "output_dim": (4, 2048),  # BigGAN's name for img_resolution
    "img_channels": (1, 16),
    "z_dim": (1, 4096),
    "w_dim": (1, 4096),
    "c_dim": (0, 100_000),  # number of classes (0: unconditional)
    "num_classes": (1, 100_000),
    "class_embed_dim": (1, 4096),
    "channel_base": (1, 2**20),  # StyleGAN3-R uses 65536
    "channel_max": (1, 8192),
    "channel_width": (3, 4096),  # BigGAN
    "mapping_layers": (1, 64),  # real models use 2-8
    "mapping_layer_features": (1, 8192),
    "mapping_embed_features": (1, 8192),
    "num_layers": (1, 64),  # StyleGAN3 synthesis layers (14 in the paper)
    "num_critical": (0, 64),
    "margin_size": (0, 1024),
    "conv_kernel": (1, 15),
    "filter_size": (1, 64),
    "lrelu_upsampling": (1, 16),
    "n_stats": (2, 1024),  # BigGAN's truncation statistics
    "attention_layer_position": (0, 128),
    "num_blocks": (1, 128),  # BigGAN's `layers` list
    "ngf": (1, 16384),  # the DCGAN tutorial's feature width (channels before the last layer)
}

#: The most parameters and buffers a generator may have (5·10⁸ ≈ 2 GB in float32; real GANs have < 2·10⁸).
MAX_PARAMETERS = 500_000_000

#: The most taps of a 1-D resampling filter (StyleGAN uses 4).
MAX_RESAMPLE_TAPS = 16


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_int(name: str, value: Any, low: int, high: int) -> int:
    """Return `value` as an int if it is an integer (not a bool, float or string) in ``[low, high]``.

    Raises:
        ValueError: naming `name`, the allowed range and what was given.

    Example:

    >>> check_int("z_dim", 512, 1, 4096)
    512
    >>> check_int("z_dim", 10**7, 1, 4096)
    Traceback (most recent call last):
    ...
    ValueError: `z_dim` must be an integer in [1, 4096], got 10000000.
    """
    if not _is_int(value) or not low <= int(value) <= high:
        shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
        raise ValueError(f"`{name}` must be an integer in [{low}, {high}], got {shown}.")
    return int(value)


def is_channel_width(value: Any) -> bool:
    """Whether `value` is an integer layer width within ``CONFIG_LIMITS["channel_max"]`` (for width lists).

    Example:

    >>> is_channel_width(512), is_channel_width(10**7), is_channel_width(64.0)
    (True, False, False)
    """
    low, high = CONFIG_LIMITS["channel_max"]
    return _is_int(value) and low <= int(value) <= high


def check_config_int(name: str, value: Any) -> int:
    """Check one integer config field against its bounds in :data:`CONFIG_LIMITS`; return it as an int."""
    return check_int(name, value, *CONFIG_LIMITS[name])


def check_config_ints(**fields: Any) -> None:
    """Check integer config fields against :data:`CONFIG_LIMITS` (``None`` values are skipped).

    Example:

    >>> check_config_ints(z_dim=512, mapping_layers=8, mapping_layer_features=None)
    >>> check_config_ints(mapping_layers=10**6)
    Traceback (most recent call last):
    ...
    ValueError: `mapping_layers` must be an integer in [1, 64], got 1000000.
    """
    for name, value in fields.items():
        if value is not None:
            check_config_int(name, value)


def check_config_number(
    name: str, value: Any, low: float | None = None, high: float | None = None, *, open_low: bool = False
) -> float:
    """Return `value` as a float if it is a finite real number (not a bool or string) within the bounds.

    Args:
        low, high: Inclusive bounds (``None``: unbounded); `open_low` makes the lower bound exclusive.
    """
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
    ok = ok and math.isfinite(float(value))
    ok = ok and (low is None or (float(value) > low if open_low else float(value) >= low))
    ok = ok and (high is None or float(value) <= high)
    if not ok:
        lo = "(-inf" if low is None else ("(" if open_low else "[") + f"{low:g}"
        hi = "inf)" if high is None else f"{high:g}]"
        raise ValueError(f"`{name}` must be a finite number in {lo}, {hi}, got {value!r}.")
    return float(value)


def check_resample_filter(taps: Any, name: str = "resample_filter") -> list[float]:
    """Check a 1-D FIR filter: 1 to :data:`MAX_RESAMPLE_TAPS` finite numbers with a non-zero sum."""
    if isinstance(taps, (str, bytes)) or not hasattr(taps, "__len__") or not 1 <= len(taps) <= MAX_RESAMPLE_TAPS:
        raise ValueError(f"`{name}` must be a list of 1 to {MAX_RESAMPLE_TAPS} numbers, got {str(taps)[:80]}.")
    values = [check_config_number(f"{name}[{i}]", t) for i, t in enumerate(taps)]
    if sum(values) == 0:
        raise ValueError(f"`{name}` must have a non-zero sum, got {values}.")
    return values


# ------------------------------------------------------------------------------------------ work limits
#: The most latents a streamed statistic (GANSpace's PCA) may sample; the paper uses 10⁶. Front ends such as
#: a hosted editor pass stricter limits (``max_samples=``).
MAX_NUM_SAMPLES = 100_000_000

#: The most latent values held in memory at once (``num_samples × latent_dim``): 2²⁸ float32 = 1 GiB.
MAX_LATENT_ELEMENTS = 2**28

#: The most seeds one call may render or map to latents.
MAX_SEEDS = 100_000

#: The most output values one rendering batch may hold (``batch × img_channels × img_resolution²``):
#: 2²⁸ float32 = 1 GiB (85 images at 1024², 21,845 at 64²); the generator's activations are a few times more.
MAX_BATCH_PIXELS = 2**28


def check_render_batch(name: str, batch_size: Any, generator: Any, images_per_item: int = 1) -> int:
    """Check a batch size of rendered images against :data:`MAX_BATCH_PIXELS` for `generator`'s output size.

    Args:
        name: The argument name used in the error (``"batch_size"``).
        batch_size: Items per batch.
        generator: Any generator with ``config.img_channels`` (default 3) and ``config.img_resolution``.
        images_per_item: Images each item renders (2 for the image pairs of latent discovery).
    """
    channels = int(getattr(generator.config, "img_channels", 3) or 3)
    per_image = channels * int(generator.config.img_resolution) ** 2 * images_per_item
    limit = max(MAX_BATCH_PIXELS // per_image, 1)
    return check_count(name, batch_size, 1, limit, f" (at most {MAX_BATCH_PIXELS:,} output values per batch)")


def check_count(name: str, value: Any, minimum: int, maximum: int, why: str = "") -> int:
    """Check a work size (samples, seeds, frames ...) before the work starts; the error states the limit.

    Example:

    >>> check_count("num_samples", 10**12, 2, MAX_NUM_SAMPLES)
    Traceback (most recent call last):
    ...
    ValueError: `num_samples` must be an int in [2, 100000000], got 1000000000000.
    """
    if not _is_int(value) or not minimum <= int(value) <= maximum:
        raise ValueError(f"`{name}` must be an int in [{minimum}, {maximum}]{why}, got {value!r}.")
    return int(value)


# Set while a generator is being counted on the meta device, so that the count does not recurse.
_COUNTING: contextvars.ContextVar[bool] = contextvars.ContextVar("sefa_counting_parameters", default=False)


def check_parameter_budget(build: Callable[[], torch.nn.Module], what: str) -> None:
    """Build a generator on the ``meta`` device (no memory) and refuse it above :data:`MAX_PARAMETERS`.

    Generator constructors call this after their field checks, with a closure that builds the same
    generator again; inside that build the check is skipped.

    Args:
        build: Builds the module (called once, under ``torch.device("meta")``).
        what: The class name used in the error.

    Raises:
        ValueError: The parameters and buffers would number more than :data:`MAX_PARAMETERS`.
    """
    if _COUNTING.get():
        return
    token = _COUNTING.set(True)
    try:
        with torch.device("meta"):
            module = build()
    finally:
        _COUNTING.reset(token)
    count = sum(t.numel() for t in module.parameters()) + sum(t.numel() for t in module.buffers())
    if count > MAX_PARAMETERS:
        raise ValueError(
            f"This {what} config asks for {count:,} parameters, more than the limit of {MAX_PARAMETERS:,} "
            f"(`sefa_plugin.models.limits.MAX_PARAMETERS`): check `channel_base`, `channel_max` and the widths."
        )


def counting_parameters() -> bool:
    """True inside :func:`check_parameter_budget`'s meta-device build (constructors skip costly set-up there)."""
    return _COUNTING.get()
