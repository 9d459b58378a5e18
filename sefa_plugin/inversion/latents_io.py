"""Reading latents people already have, checked against the generator that will render them.

Accepted files (:func:`load_latents`):

* a folder or ``latents.safetensors`` written by :meth:`~sefa_plugin.inversion.output.Inversion.save_pretrained`;
* NVIDIA's projector output ``projected_w.npz`` (key ``w``, ``[1, num_ws, w_dim]``);
* a plain ``.npy`` array: W ``[N, w_dim]`` (broadcast to every layer), W+ ``[N, num_ws, w_dim]``, or for z-input
  generators ``z`` ``[N, z_dim]`` / ``[N, 1, z_dim]`` in the edit space.

Arrays are read without pickle, and every header's shape and dtype are checked *before* the data is read, so a
forged header cannot make us allocate; latents of another model, of the wrong shape or holding NaN raise errors
that name the argument.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..models.interface import EditableGenerator
from ..utils.arrays import load_array_file

#: The file inside an inversion folder.
LATENTS_FILE = "latents.safetensors"
#: The most latents one file may hold (a bound checked before reading).
MAX_LATENTS = 100_000


def check_latents(latents: torch.Tensor, generator: EditableGenerator, what: str = "latents") -> torch.Tensor:
    """Validate edit-space latents ``[N, num_ws, latent_dim]`` for `generator`; return them as float32.

    Raises:
        ValueError: naming `what`, for a wrong rank or shape (e.g. latents of another model) or NaN/inf values.

    Example:

    >>> import torch
    >>> from sefa_plugin.models import StyleGAN2Generator
    >>> g = StyleGAN2Generator(z_dim=8, w_dim=8, img_resolution=8, channel_base=64, channel_max=8)
    >>> check_latents(torch.zeros(2, 4, 8), g).shape
    torch.Size([2, 4, 8])
    >>> check_latents(torch.zeros(2, 5, 8), g)
    Traceback (most recent call last):
    ...
    ValueError: `latents` must have shape [N, 4, 8] for StyleGAN2Generator (N ≥ 1), got [2, 5, 8].
    """
    expected = f"[N, {generator.num_ws}, {generator.latent_dim}]"
    if not isinstance(latents, torch.Tensor):
        raise TypeError(f"`{what}` must be a torch.Tensor of shape {expected}, got {type(latents).__name__}.")
    if latents.ndim != 3 or latents.shape[0] < 1 or latents.shape[1:] != (generator.num_ws, generator.latent_dim):
        raise ValueError(
            f"`{what}` must have shape {expected} for {type(generator).__name__} (N ≥ 1), got {list(latents.shape)}."
        )
    if not latents.is_floating_point():
        raise ValueError(f"`{what}` must be floating point, got {latents.dtype}.")
    if not torch.isfinite(latents).all():
        raise ValueError(f"`{what}` contains NaN or infinite values.")
    return latents.to(torch.float32)


def _allowed_shapes(generator: EditableGenerator) -> str:
    d, k = generator.latent_dim, generator.num_ws
    if generator.latent_space == "w+":
        return f"[N, {d}] (W) or [N, {k}, {d}] (W+)"
    return f"[N, {d}] or [N, 1, {d}]"


def _check_header(shape: tuple[int, ...], dtype: np.dtype, generator: EditableGenerator, label: str) -> None:
    if dtype.kind != "f":  # (object arrays never get here: the reader refuses them first)
        raise ValueError(f"{label} holds {dtype} values; latents must be floating point.")
    d, k = generator.latent_dim, generator.num_ws
    ok = (len(shape) == 2 and shape[1] == d) or (len(shape) == 3 and shape[1:] == (k, d))
    if not ok or not 1 <= shape[0] <= MAX_LATENTS:
        raise ValueError(
            f"{label} holds an array of shape {list(shape)}; this {type(generator).__name__} needs "
            f"{_allowed_shapes(generator)} with 1 ≤ N ≤ {MAX_LATENTS} (latents of another model?)."
        )


def _read_array(path: Path, generator: EditableGenerator, what: str) -> np.ndarray:
    label = f"`{what}` {str(path)!r}"

    def check(key: str | None, shape: tuple[int, ...], dtype: np.dtype) -> None:
        if key is None or key == "w":  # an .npy, or the key NVIDIA's projector writes
            _check_header(shape, dtype, generator, label if key is None else f"{label} key `w`")

    with open(path, "rb") as fh:
        head = fh.read(6)
    if not head.startswith(b"PK") and head != b"\x93NUMPY":
        raise ValueError(f"{label} is neither a latents folder, a .safetensors, an .npz nor an .npy file.")
    bound = MAX_LATENTS * generator.num_ws * generator.latent_dim * 8  # float64 W+ at the most
    loaded = load_array_file(path, what, max_bytes=bound, check_header=check)
    if isinstance(loaded, dict):
        if "w" not in loaded:
            raise ValueError(f"{label} is not NVIDIA's projected_w.npz: no key `w` (has {sorted(loaded)}).")
        return loaded["w"]
    return loaded
