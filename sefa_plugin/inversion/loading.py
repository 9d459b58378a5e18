"""Loading latents people already have: an inversion folder, NVIDIA's ``projected_w.npz`` or an ``.npy`` array."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ..models.interface import EditableGenerator
from .latents_io import _read_array, check_latents
from .output import Inversion


def load_latents(path: str | os.PathLike, generator: EditableGenerator, what: str = "latents") -> torch.Tensor:
    """Load latents from a file or an inversion folder, in `generator`'s edit layout ``[N, num_ws, latent_dim]``.

    Args:
        path: An inversion folder (or its ``latents.safetensors``), NVIDIA's ``projected_w.npz``, or an ``.npy``
            array (W ``[N, w_dim]`` is broadcast to every layer).
        generator: The generator that will render them (its ``num_ws`` and ``latent_dim`` are checked).
        what: Argument name used in errors (``"--latents"`` for the CLI).

    Example:

    >>> latents = load_latents("projected_w.npz", pipe.generator)  # doctest: +SKIP
    >>> out = pipe(latents=latents, directions=directions, index=0, strengths=[-3, 0, 3])  # doctest: +SKIP
    """
    p = Path(path)
    if p.is_dir() or p.suffix == ".safetensors":
        return Inversion.from_pretrained(p, what=what).latents_for(generator, what=what)
    if not p.is_file():
        raise FileNotFoundError(f"`{what}` {str(p)!r} does not exist.")
    arr = _read_array(p, generator, what)
    t = torch.from_numpy(np.ascontiguousarray(arr)).to(torch.float32)
    if t.ndim == 2:
        t = t.unsqueeze(1).repeat(1, generator.num_ws, 1)
    return check_latents(t, generator, what=what)
