"""A pickled object that would run code when unpickled naively: it touches a marker file."""

from __future__ import annotations

import pathlib


class TouchOnLoad:
    """Unpickles as ``pathlib.Path.touch(marker)``: a loader that refuses it leaves `marker` absent."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (pathlib.Path.touch, (self.marker,))
