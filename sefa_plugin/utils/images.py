"""Image conversion and output helpers: tensors in [-1, 1] → PIL/NumPy, grids, animated walks."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .files import atomic_file


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """``[N, C, H, W]`` in [-1, 1] → ``[N, H, W, C]`` uint8."""
    x = ((images.detach().float().cpu() + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8)
    return x.permute(0, 2, 3, 1).numpy()


def to_pil(images: torch.Tensor) -> list[Image.Image]:
    """``[N, C, H, W]`` in [-1, 1] → a list of RGB (or L) PIL images."""
    arr = to_uint8(images)
    if arr.shape[-1] == 1:
        return [Image.fromarray(a[..., 0], mode="L") for a in arr]
    return [Image.fromarray(a) for a in arr]


def make_grid(images: Sequence[Image.Image], nrow: int, padding: int = 2) -> Image.Image:
    """Tile equally sized PIL images row by row, `nrow` per row, on a white background."""
    if not images:
        raise ValueError("`images` must not be empty.")
    if nrow < 1:
        raise ValueError(f"`nrow` must be ≥ 1, got {nrow}.")
    w, h = images[0].size
    rows = (len(images) + nrow - 1) // nrow
    cols = min(nrow, len(images))
    grid = Image.new("RGB", (cols * w + (cols + 1) * padding, rows * h + (rows + 1) * padding), "white")
    for i, img in enumerate(images):
        r, c = divmod(i, nrow)
        grid.paste(img.convert("RGB"), (padding + c * (w + padding), padding + r * (h + padding)))
    return grid


def save_image_atomic(image: Image.Image, path: str | os.PathLike, what: str = "out", **save_kwargs) -> Path:
    """Save a PIL image (PNG by extension) through a temporary file, so no partial file is left."""
    image_format = save_kwargs.pop("format", None) or _format_for(Path(path))
    with atomic_file(path, what) as tmp:
        image.save(tmp, format=image_format, **save_kwargs)
    return Path(path)


def _format_for(path: Path) -> str:
    ext = path.suffix.lower()
    formats = {".png": "PNG", ".gif": "GIF", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}
    if ext not in formats:
        raise ValueError(f"Unsupported image extension {ext!r} for {str(path)!r}; use one of {sorted(formats)}.")
    return formats[ext]


def save_grid(images: torch.Tensor, path: str | os.PathLike, nrow: int = 8) -> Path:
    """Save ``[N, C, H, W]`` images in [-1, 1] as one grid PNG, atomically."""
    return save_image_atomic(make_grid(to_pil(images), nrow=nrow), path)


def save_gif(frames: Sequence[Image.Image], path: str | os.PathLike, duration_ms: int = 80, what: str = "gif") -> Path:
    """Save frames as a looping animated GIF (forward then back), atomically."""
    if len(frames) < 2:
        raise ValueError("An animation needs at least two frames.")
    seq = list(frames) + list(frames[-2:0:-1])
    with atomic_file(path, what) as tmp:
        seq[0].save(tmp, format="GIF", save_all=True, append_images=seq[1:], duration=duration_ms, loop=0)
    return Path(path)


#: Walk files: animated GIF (loops everywhere, lossless palette) or H.264 MP4 (small, plays in players).
WALK_FORMATS = (".gif", ".mp4")


def save_video(
    frames: Sequence[Image.Image], path: str | os.PathLike, fps: int = 12, min_height: int = 256, what: str = "video"
) -> Path:
    """Save frames as an H.264 MP4 (forward then back, like :func:`save_gif`), atomically.

    Small GAN images are enlarged with nearest-neighbour sampling to at least `min_height` pixels, and padded
    to even sizes (H.264 with 4:2:0 colour needs them). The encoder is the ffmpeg binary shipped by the
    ``imageio-ffmpeg`` wheel: no system ffmpeg is needed.

    Example:

    >>> from PIL import Image
    >>> frames = [Image.new("RGB", (64, 64), (v, 0, 0)) for v in (0, 128, 255)]
    >>> save_video(frames, "/tmp/walk.mp4").suffix
    '.mp4'
    """
    import imageio_ffmpeg

    if len(frames) < 2:
        raise ValueError("An animation needs at least two frames.")
    if Path(path).suffix.lower() != ".mp4":
        raise ValueError(f"`{what}` must end in .mp4, got {str(path)!r}.")
    seq = list(frames) + list(frames[-2:0:-1])
    w, h = seq[0].size
    scale = max(1, -(-min_height // h))
    size = (w * scale + (w * scale) % 2, h * scale + (h * scale) % 2)
    with atomic_file(path, what) as tmp:
        writer = imageio_ffmpeg.write_frames(
            str(tmp),
            size,
            fps=fps,
            codec="libx264",
            pix_fmt_out="yuv420p",
            macro_block_size=1,
            output_params=["-f", "mp4", "-movflags", "+faststart"],
            ffmpeg_log_level="error",
        )
        writer.send(None)  # start the encoder
        for frame in seq:
            big = frame.convert("RGB").resize((w * scale, h * scale), Image.NEAREST)
            canvas = Image.new("RGB", size, "white")
            canvas.paste(big, (0, 0))
            writer.send(np.ascontiguousarray(np.asarray(canvas)))
        writer.close()
    return Path(path)


def save_walk(frames: Sequence[Image.Image], path: str | os.PathLike, what: str = "walk") -> Path:
    """Save a walk as a GIF or an MP4, by the extension of `path` (one of :data:`WALK_FORMATS`)."""
    ext = Path(path).suffix.lower()
    if ext == ".gif":
        return save_gif(frames, path, what=what)
    if ext == ".mp4":
        return save_video(frames, path, what=what)
    raise ValueError(f"`{what}` must end in one of {WALK_FORMATS}, got {str(path)!r}.")
