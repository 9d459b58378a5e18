"""File-system helpers."""

from __future__ import annotations

import os


def default_file_mode() -> int:
    """The mode a newly created file gets under the current umask (temporary files start as 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask
