"""Small argument checks shared by the library's validators."""

from __future__ import annotations

import numbers


def is_int(value: object) -> bool:
    """Whether `value` is an integer (Python or NumPy), not a bool.

    Example:

    >>> is_int(3), is_int(True), is_int(3.0)
    (True, False, False)
    """
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)
