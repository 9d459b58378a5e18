"""Resumable training state on disk: one atomic checkpoint file and one JSON-lines log per run.

Both trainers (the GAN's :class:`~sefa_plugin.training.trainer.Trainer` and latent discovery's
:class:`~sefa_plugin.training.latent_discovery.LatentDiscoveryTrainer`) keep their state in a plain
dict of tensors, numbers and strings, written with ``torch.save`` and read back with
``torch.load(weights_only=True)``, so a checkpoint names no Python class and never runs code on load.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ..utils.files import atomic_file

__all__ = ["append_log", "load_checkpoint", "save_checkpoint_atomic"]


def save_checkpoint_atomic(state: Mapping[str, Any], path: str | os.PathLike) -> Path:
    """Write `state` with ``torch.save`` through a temporary file beside `path`, then rename it.

    A run killed mid-write leaves the previous checkpoint intact (the rename is atomic on POSIX).

    Example:

    >>> import tempfile, torch
    >>> folder = tempfile.mkdtemp()
    >>> path = save_checkpoint_atomic({"step": 3, "w": torch.ones(2)}, f"{folder}/run.pt")
    >>> load_checkpoint(path)["step"]
    3
    """
    with atomic_file(path, "checkpoint") as tmp:
        torch.save(dict(state), tmp)
    return Path(path)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any] | None:
    """The state saved at `path` (on CPU, tensors and plain data only), or None when there is none."""
    path = Path(path)
    if not path.is_file():
        return None
    return torch.load(path, map_location="cpu", weights_only=True)


def append_log(path: str | os.PathLike, record: Mapping[str, Any]) -> None:
    """Append one JSON record as a line of the run's log (``log.jsonl``)."""
    with Path(path).open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(dict(record)) + "\n")
