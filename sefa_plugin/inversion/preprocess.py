"""Turning user images (paths, PIL images, arrays, tensors) into the generator's target tensor.

Every image is converted to the generator's channel count (RGBA is composited over white first, greyscale is
repeated to RGB), centre-cropped to a square and resized to ``img_resolution`` with a Lanczos filter, as the
inversion literature prepares FFHQ-style targets. :class:`PreparedImages` records which inputs were cropped or
resized, so callers can say so.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import PIL.Image
import torch

#: What :func:`prepare_images` accepts, one image or a list of them.
ImageInput = str | os.PathLike | PIL.Image.Image | np.ndarray | torch.Tensor


@dataclass
class PreparedImages:
    """Targets for inversion.

    Attributes:
        images: ``[N, C, R, R]`` float32 in [-1, 1].
        original_sizes: ``(width, height)`` of each input before cropping and resizing.
        resized: Whether each input was cropped or resized to fit.
    """

    images: torch.Tensor
    original_sizes: list[tuple[int, int]]
    resized: list[bool]


def _as_list(images: Any, what: str) -> list[Any]:
    if isinstance(images, (str, os.PathLike, PIL.Image.Image)):
        return [images]
    if isinstance(images, (np.ndarray, torch.Tensor)):
        if images.ndim == 4:  # a batch
            return list(images)
        return [images]
    if isinstance(images, Sequence):
        items = list(images)
        if not items:
            raise ValueError(f"`{what}` must hold at least one image, got an empty list.")
        return items
    raise TypeError(
        f"`{what}` must be an image (a path, a PIL image, an array [H, W(, C)] or a tensor [C, H, W]) or a list of "
        f"them, got {type(images).__name__}."
    )


def _open(item: Any, label: str) -> PIL.Image.Image:
    """Any accepted input → a PIL image (not yet converted)."""
    if isinstance(item, PIL.Image.Image):
        return item
    if isinstance(item, (str, os.PathLike)):
        if not os.path.isfile(item):
            raise FileNotFoundError(f"{label} {str(item)!r} is not a file.")
        try:
            with PIL.Image.open(item) as img:
                img.load()
                return img.copy()
        except (PIL.UnidentifiedImageError, OSError, ValueError) as err:
            raise ValueError(f"{label} {str(item)!r} is not an image file PIL can read: {err}") from None
    if isinstance(item, torch.Tensor):
        # The project's image convention: [C, H, W] in [-1, 1].
        if item.ndim != 3 or item.shape[0] not in (1, 3, 4) or not item.is_floating_point():
            raise ValueError(
                f"{label} as a tensor must be float [C, H, W] in [-1, 1] (C 1, 3 or 4), got "
                f"{item.dtype} {list(item.shape)}."
            )
        item = ((item.detach().cpu().float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
        item = item[..., 0] if item.shape[-1] == 1 else item
    if isinstance(item, np.ndarray):
        arr = item
        if arr.ndim == 3 and arr.shape[-1] == 1:
            arr = arr[..., 0]
        if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] not in (3, 4)) or min(arr.shape[:2]) < 1:
            raise ValueError(f"{label} as an array must be [H, W] or [H, W, 3|4], got {list(item.shape)}.")
        if np.issubdtype(arr.dtype, np.floating):
            if not np.isfinite(arr).all():
                raise ValueError(f"{label} holds NaN or infinite values.")
            arr = np.clip(arr * 255.0 + 0.5, 0, 255).astype(np.uint8)  # floats in [0, 1], as PIL/matplotlib
        elif arr.dtype != np.uint8:
            raise ValueError(f"{label} as an array must be uint8 in [0, 255] or float in [0, 1], got {arr.dtype}.")
        return PIL.Image.fromarray(np.ascontiguousarray(arr))
    raise TypeError(f"{label} must be a path, a PIL image, a NumPy array or a tensor, got {type(item).__name__}.")


def _to_mode(img: PIL.Image.Image, channels: int) -> PIL.Image.Image:
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = PIL.Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = PIL.Image.alpha_composite(background, rgba)
    return img.convert("L" if channels == 1 else "RGB")


def square_resize(img: PIL.Image.Image, resolution: int) -> tuple[PIL.Image.Image, bool]:
    """Centre-crop `img` to a square, then resize it to ``resolution²``; also return whether it changed.

    Example:

    >>> import PIL.Image
    >>> out, changed = square_resize(PIL.Image.new("RGB", (40, 30)), 16)
    >>> out.size, changed
    ((16, 16), True)
    """
    w, h = img.size
    side = min(w, h)
    changed = (w, h) != (resolution, resolution)
    if w != h:
        left, top = (w - side) // 2, (h - side) // 2
        img = img.crop((left, top, left + side, top + side))
    if side != resolution:
        img = img.resize((resolution, resolution), PIL.Image.Resampling.LANCZOS)
    return img, changed


def prepare_images(
    images: ImageInput | Sequence[ImageInput], resolution: int, channels: int = 3, what: str = "images"
) -> PreparedImages:
    """Load and convert images into the target tensor of an inversion.

    Args:
        images: One image or a list: file paths, PIL images, NumPy arrays (``[H, W]`` or ``[H, W, 3|4]``,
            uint8 or float in [0, 1]) or tensors ``[C, H, W]`` in [-1, 1] (a 4-D array or tensor is a batch).
        resolution: The generator's ``img_resolution``.
        channels: The generator's ``img_channels`` (1 or 3).
        what: Argument name used in error messages.

    Returns:
        :class:`PreparedImages` with ``images`` ``[N, channels, resolution, resolution]`` in [-1, 1].

    Raises:
        ValueError: naming `what` (and the index), for an empty list, a file that is not an image, or an
            array of the wrong shape or type.

    Example:

    >>> import numpy as np
    >>> prepared = prepare_images([np.zeros((20, 30, 4), np.uint8)], resolution=16)
    >>> tuple(prepared.images.shape), prepared.resized
    ((1, 3, 16, 16), [True])
    """
    if channels not in (1, 3):
        raise ValueError(f"`channels` must be 1 or 3, got {channels}.")
    items = _as_list(images, what)
    tensors, sizes, resized = [], [], []
    for i, item in enumerate(items):
        label = f"`{what}`[{i}]" if len(items) > 1 or isinstance(images, Sequence) else f"`{what}`"
        img = _to_mode(_open(item, label), channels)
        sizes.append(img.size)
        img, changed = square_resize(img, resolution)
        resized.append(changed)
        arr = np.asarray(img, dtype=np.float32).reshape(resolution, resolution, channels)
        tensors.append(torch.from_numpy(arr).permute(2, 0, 1) / 127.5 - 1.0)
    return PreparedImages(images=torch.stack(tensors).contiguous(), original_sizes=sizes, resized=resized)
