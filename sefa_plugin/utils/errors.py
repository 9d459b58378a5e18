"""Front ends speak their own argument names: translate the library's errors into them.

The library validates each argument once, in the core that owns it, and names it in backticks
(`` `num_directions` must be ...``). A front end (the CLI, the editor) wraps its calls in
:func:`argument_names` so that the message names what the user typed (``-k``, ``strengths``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager


def rename_arguments(message: str, names: Mapping[str, str]) -> str:
    """Replace backticked argument names in `message` by the front end's names.

    Example:

    >>> rename_arguments("`num_directions` must be ≥ 1, got 0.", {"num_directions": "-k"})
    '`-k` must be ≥ 1, got 0.'
    """
    return re.sub(r"`([A-Za-z_][A-Za-z0-9_]*)`", lambda m: f"`{names.get(m.group(1), m.group(1))}`", message)


@contextmanager
def argument_names(names: Mapping[str, str]) -> Iterator[None]:
    """Re-raise ``ValueError``/``IndexError``/``OSError`` from the block with the argument names of `names` translated.

    The exception keeps its type (subclasses included) and chains the original.

    Example:

    >>> with argument_names({"edit_strengths": "strengths"}):  # doctest: +IGNORE_EXCEPTION_DETAIL
    ...     raise ValueError("`edit_strengths` must be finite numbers, got [inf].")
    Traceback (most recent call last):
    ValueError: `strengths` must be finite numbers, got [inf].
    """
    try:
        yield
    except (ValueError, IndexError, OSError) as err:
        text = str(err.args[0]) if len(err.args) == 1 and isinstance(err.args[0], str) else None
        if text is None:
            raise
        renamed = rename_arguments(text, names)
        if renamed == text:
            raise
        try:
            new = type(err)(renamed)
        except Exception:  # an exception type with another constructor: keep it as it is
            raise err from None
        raise new from err
