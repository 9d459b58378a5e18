"""The ``sefa`` console script (``sefa = sefa_plugin.cli:main``); the commands live in :mod:`sefa_plugin.commands`."""

from __future__ import annotations

import sys

from .commands import build_parser, main

__all__ = ["build_parser", "main"]

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
