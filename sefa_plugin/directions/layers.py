"""Parsing of layer selections such as ``"all"``, ``"0-3"``, ``"0-1,4"`` or ``"coarse"``.

Discovery methods (SeFa reads the weights of the chosen layers) and edits (which W+ layers an edit
changes) both take a layer selection. This module turns every accepted spelling into one sorted list
of unique indices and rejects everything else with an error that says what is allowed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["GROUP_NAMES", "LayerSpec", "parse_layers"]

#: The named groups of :meth:`EditableGenerator.layer_groups`, in the order they are listed in errors.
GROUP_NAMES = ("coarse", "middle", "fine")

#: Every accepted type of layer selection.
LayerSpec = str | int | Sequence[int]

# One comma-separated item: an index "4" or an inclusive range "0-3" (spaces around numbers allowed).
_ITEM = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def _error(reason: str, spec: object, num_layers: int, groups: Mapping[str, Sequence[int]] | None) -> ValueError:
    names = ", ".join(groups) if groups else ", ".join(GROUP_NAMES)
    shown = spec if isinstance(spec, range) else _short(repr(spec), 80)
    return ValueError(
        f"`layers` {reason}. It must be 'all', a group name ({names}), a range like '0-3', a list like "
        f"'0-1,4' or a list of ints, with indices in [0, {num_layers - 1}]; got {shown}."
    )


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _parse_string(spec: str, num_layers: int, groups: Mapping[str, Sequence[int]] | None) -> list[int]:
    text = spec.strip()
    if text == "all":
        return list(range(num_layers))
    if groups is not None and text in groups:
        return [int(i) for i in groups[text]]
    if text in GROUP_NAMES:
        raise _error(f"names the group {text!r}, but no layer groups were given", spec, num_layers, groups)
    indices: list[int] = []
    for item in text.split(","):
        match = _ITEM.match(item)
        if match is None:
            raise _error(f"could not be parsed (bad item {item.strip()!r})", spec, num_layers, groups)
        # Check the bounds before expanding, so that '0-1000000000' never builds a billion-element list.
        digits = [g for g in match.groups() if g is not None]
        if any(len(d) > 9 or int(d) >= num_layers for d in digits):
            bad = next(d for d in digits if len(d) > 9 or int(d) >= num_layers)
            raise _error(f"contains the index {_short(bad)} out of range", spec, num_layers, groups)
        start = int(match.group(1))
        stop = start if match.group(2) is None else int(match.group(2))
        if stop < start:
            raise _error(f"contains the reversed range '{start}-{stop}'", spec, num_layers, groups)
        indices.extend(range(start, stop + 1))
    return indices


def parse_layers(
    spec: LayerSpec,
    num_layers: int,
    groups: Mapping[str, Sequence[int]] | None = None,
) -> list[int]:
    """Turn a layer selection into a sorted list of unique layer indices.

    Args:
        spec: Which layers: ``"all"``; a group name ``"coarse"``, ``"middle"`` or ``"fine"`` (looked up
            in `groups`); an inclusive range ``"0-3"``; a comma-separated list of indices and ranges
            ``"0-1,4"`` (spaces are ignored); a single int; or a list, tuple or range of ints.
        num_layers: How many layers there are (``generator.num_ws``); indices must be in
            ``[0, num_layers - 1]``.
        groups: Named layer groups, usually ``generator.layer_groups()``.

    Returns:
        The selected indices, sorted and without duplicates; never empty.

    Raises:
        ValueError: If `spec` has another type (bools and floats included), cannot be parsed, holds a
            reversed range or an index out of range, or selects no layer (e.g. an empty group).

    Example:

    >>> from sefa_plugin.directions import parse_layers
    >>> parse_layers("0-1,4", num_layers=6)
    [0, 1, 4]
    >>> parse_layers([3, 1, 3], num_layers=6)
    [1, 3]
    >>> parse_layers("coarse", num_layers=6, groups={"coarse": [0, 1], "middle": [2, 3], "fine": [4, 5]})
    [0, 1]
    >>> parse_layers("all", num_layers=3)
    [0, 1, 2]
    """
    if not _is_int(num_layers) or num_layers < 1:
        raise ValueError(f"`num_layers` must be a positive int, got {num_layers!r}.")
    num_layers = int(num_layers)
    if isinstance(spec, str):
        indices = _parse_string(spec, num_layers, groups)
    elif _is_int(spec):
        indices = [int(spec)]  # type: ignore[arg-type]
    elif isinstance(spec, range):
        # A range is checked by its ends: `range(10**9)` must not be walked.
        if len(spec) and (min(spec[0], spec[-1]) < 0 or max(spec[0], spec[-1]) >= num_layers):
            bad = spec[0] if not 0 <= spec[0] < num_layers else spec[-1]
            raise _error(f"contains the index {bad} out of range", spec, num_layers, groups)
        indices = list(spec)
    elif isinstance(spec, (list, tuple)):
        bad = [i for i in spec if not _is_int(i)]
        if bad:
            raise _error(f"contains the non-integer {bad[0]!r}", spec, num_layers, groups)
        indices = [int(i) for i in spec]
    else:
        raise _error(f"has the unsupported type {type(spec).__name__}", spec, num_layers, groups)
    if not indices:
        raise _error("selects no layer", spec, num_layers, groups)
    out_of_range = [i for i in indices if not 0 <= i < num_layers]
    if out_of_range:
        raise _error(f"contains the index {out_of_range[0]} out of range", spec, num_layers, groups)
    return sorted(set(indices))
