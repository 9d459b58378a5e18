"""Key-map helpers every converter shares: pattern tables, mapped state-dict loading, channel layouts.

A converter describes a checkpoint layout as a table of ``(regex, template)`` rows (our key → the
checkpoint's key), checks every shape against our model, and refuses keys it does not understand.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence

import torch

from ..models.ops import make_resample_filter


def infer_channel_config(channels: Mapping[int, int], preferred: tuple[int, int] | None = None) -> tuple[int, int]:
    """Find ``(channel_base, channel_max)`` with ``channels[r] == min(channel_base // r, channel_max)``.

    Args:
        channels: Output channels of each synthesis block, keyed by resolution.
        preferred: A candidate to keep if it reproduces `channels` (e.g. the checkpoint's own kwargs).

    Raises:
        ValueError: No such pair exists (e.g. rosinality's ``channel_multiplier=4``, whose channels grow
            from 512 at 32x32 to 1024 at 64x64).
    """

    def reproduces(base: int, cmax: int) -> bool:
        return all(min(base // res, cmax) == c for res, c in channels.items())

    if preferred is not None and reproduces(*preferred):
        return int(preferred[0]), int(preferred[1])
    cmax = max(channels.values())
    below = sorted((res, c) for res, c in channels.items() if c < cmax)
    base = below[0][0] * below[0][1] if below else cmax * max(channels)
    if reproduces(base, cmax):
        return base, cmax
    raise ValueError(
        f"Synthesis channels {dict(sorted(channels.items()))} cannot be expressed as "
        "min(channel_base // resolution, channel_max), the layout StyleGAN2Generator supports."
    )


def load_mapped_state_dict(
    model: torch.nn.Module,
    source: Mapping[str, torch.Tensor],
    key_map: Mapping[str, str],
    *,
    source_shape: Callable[[str, torch.Size], tuple[int, ...]] | None = None,
    ignored: Callable[[str], bool] | None = None,
    source_name: str = "checkpoint",
    assign: bool = False,
) -> None:
    """Copy ``source[key_map[k]]`` into ``model``'s entry ``k`` for every key of ``model.state_dict()``.

    Args:
        model: The module to fill (all its parameters and buffers must be covered by `key_map`).
        source: The checkpoint's tensors.
        key_map: Our key to the checkpoint key.
        source_shape: ``(our_key, our_shape) -> expected checkpoint shape`` when the layouts differ only by
            a reshape (default: identical shapes).
        ignored: Predicate for checkpoint keys that are known and deliberately not copied.
        source_name: How errors refer to the checkpoint.
        assign: Make the checkpoint's tensors the model's parameters instead of copying them (for private,
            writable sources such as ``torch.load(..., mmap=True)``: the weights are then paged in from the
            file as they are used and never held twice).

    Raises:
        ValueError: naming the key, for a missing key, a shape mismatch, or a checkpoint key that nothing
            consumed.
    """
    target = model.state_dict()
    unmapped = [k for k in target if k not in key_map]
    if unmapped:
        raise ValueError(f"No {source_name} key is mapped to our key(s) {unmapped}.")
    new_state: dict[str, torch.Tensor] = {}
    for ours, theirs in key_map.items():
        if ours not in target:
            raise ValueError(f"Key map names {ours!r}, which our model does not have.")
        if theirs not in source:
            raise ValueError(f"{source_name} is missing key {theirs!r} (needed for {ours!r}).")
        tensor = source[theirs]
        if not isinstance(tensor, torch.Tensor):
            raise ValueError(f"{source_name} key {theirs!r} is a {type(tensor).__name__}, not a tensor.")
        shape = target[ours].shape
        expected = tuple(shape) if source_shape is None else tuple(source_shape(ours, shape))
        if tuple(tensor.shape) != expected:
            raise ValueError(
                f"{source_name} key {theirs!r} has shape {list(tensor.shape)}, expected {list(expected)} "
                f"(our {ours!r} is {list(shape)})."
            )
        new_state[ours] = tensor.detach().reshape(shape).to(target[ours].dtype)
    used = set(key_map.values())
    unused = sorted(k for k in source if k not in used and not (ignored is not None and ignored(k)))
    if unused:
        raise ValueError(f"{source_name} has keys the converter does not understand: {unused}.")
    model.load_state_dict(new_state, strict=True, assign=assign)


def resample_taps(filt: torch.Tensor, key: str) -> tuple[float, ...]:
    """Recover separable FIR taps (normalised to sum 1) from a 2-D resampling filter.

    Raises:
        ValueError: naming `key` when the filter is not a normalised outer product.
    """
    if filt.ndim != 2 or filt.shape[0] != filt.shape[1]:
        raise ValueError(f"{key!r} must be a square 2-D filter, got shape {list(filt.shape)}.")
    taps = filt.double().sum(dim=0)
    taps = taps / taps.sum()
    if not torch.allclose(make_resample_filter(taps.tolist()).double(), filt.double() / filt.double().sum(), atol=1e-6):
        raise ValueError(f"{key!r} is not a separable FIR filter; StyleGAN2Generator needs separable taps.")
    default = make_resample_filter((1, 3, 3, 1)).double()
    if filt.shape == default.shape and torch.allclose(filt.double() / filt.double().sum(), default, atol=1e-6):
        return (1, 3, 3, 1)
    return tuple(float(t) for t in taps)


def key_map_from_patterns(keys: Iterable[str], patterns: Sequence[tuple[str, str]], table_name: str) -> dict[str, str]:
    r"""Our key to the checkpoint's, for every key in `keys`, from ``(regex, template)`` rows.

    The first row whose regex matches a key whole gives the checkpoint key (``match.expand(template)``).

    Raises:
        ValueError: naming a key that no row of `table_name` covers.

    Example:

    >>> from sefa_plugin.convert.keymap import key_map_from_patterns
    >>> rows = [(r"fc(\d+)\.weight", r"dense\1.weight"), (r".*", r"\g<0>")]
    >>> key_map_from_patterns(["b4.const", "fc0.weight"], rows, "rows")
    {'b4.const': 'b4.const', 'fc0.weight': 'dense0.weight'}
    """
    out: dict[str, str] = {}
    for key in keys:
        for pattern, template in patterns:
            match = re.fullmatch(pattern, key)
            if match:
                out[key] = match.expand(template)
                break
        else:
            raise ValueError(f"Key {key!r} is not covered by {table_name}.")
    return out
