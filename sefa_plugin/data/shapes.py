"""A procedural scene dataset whose generative factors are known exactly.

Each scene is a room (a back wall and a darker floor, both of the background hue) holding one
saturated object: a square, a disc or a triangle, with its own hue, size, rotation and position, under
a global light intensity. Scenes are rendered with anti-aliased signed distance functions, vectorised in
PyTorch, so thousands of 64×64 images render per second on a CPU.

Factors (all in the ranges below; hues are circular in [0, 1)):

=================  ===========  ===============================================================
name               kind         meaning
=================  ===========  ===============================================================
background_hue     circular     hue of wall and floor
object_hue         circular     hue of the object
shape              categorical  0 square, 1 disc, 2 triangle
scale              continuous   object radius as a fraction of the image side, [0.10, 0.22]
rotation           continuous   degrees in [-45, 45); undefined (and ignored) for discs
x                  continuous   object centre, fraction of the width, [0.25, 0.75]
y                  continuous   object centre, fraction of the height, [0.25, 0.75]
lighting           continuous   global brightness, [0.55, 1.0]
floor_height       continuous   floor/wall boundary from the bottom, fraction of height, [0.2, 0.5]
=================  ===========  ===============================================================

Scene ``i`` of a dataset with seed ``s`` is always the same image: its factors come from
``numpy.random.default_rng([s, i])``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

SHAPES = ("square", "disc", "triangle")
FACTOR_NAMES = (
    "background_hue",
    "object_hue",
    "shape",
    "scale",
    "rotation",
    "x",
    "y",
    "lighting",
    "floor_height",
)
#: How each factor is compared: hues are angles, shape is a class, the rest are real numbers.
FACTOR_KINDS = {
    "background_hue": "circular",
    "object_hue": "circular",
    "shape": "categorical",
    "scale": "continuous",
    "rotation": "continuous",
    "x": "continuous",
    "y": "continuous",
    "lighting": "continuous",
    "floor_height": "continuous",
}
FACTOR_RANGES = {
    "background_hue": (0.0, 1.0),
    "object_hue": (0.0, 1.0),
    "shape": (0, len(SHAPES) - 1),
    "scale": (0.10, 0.22),
    "rotation": (-45.0, 45.0),
    "x": (0.25, 0.75),
    "y": (0.25, 0.75),
    "lighting": (0.55, 1.0),
    "floor_height": (0.2, 0.5),
}

# Saturation/value of the background and the object: the object is always more saturated, so it
# stands out whatever the two hues are.
_WALL_SV = (0.45, 0.95)
_FLOOR_VALUE_RATIO = 0.7
_OBJECT_SV = (0.95, 1.0)


@dataclass
class ShapesBatch:
    """Rendered scenes and their factors.

    Attributes:
        images: ``[N, 3, R, R]`` float32 in [-1, 1].
        factors: ``[N, len(factor_names)]`` float32, columns in `factor_names` order.
        factor_names: Names of the factor columns.
    """

    images: torch.Tensor
    factors: torch.Tensor
    factor_names: tuple[str, ...] = FACTOR_NAMES

    def factor(self, name: str) -> torch.Tensor:
        """One factor column by name."""
        if name not in self.factor_names:
            raise KeyError(f"Unknown factor {name!r}; available: {', '.join(self.factor_names)}.")
        return self.factors[:, self.factor_names.index(name)]


def sample_factors(indices: Sequence[int], seed: int = 0) -> np.ndarray:
    """Factors of scenes `indices` of the dataset with `seed`, ``[len(indices), 9]`` float64."""
    out = np.empty((len(indices), len(FACTOR_NAMES)), dtype=np.float64)
    for row, idx in enumerate(indices):
        rng = np.random.default_rng([int(seed), int(idx)])
        u = rng.random(len(FACTOR_NAMES))
        for col, name in enumerate(FACTOR_NAMES):
            lo, hi = FACTOR_RANGES[name]
            if name == "shape":
                out[row, col] = min(int(u[col] * len(SHAPES)), len(SHAPES) - 1)
            else:
                out[row, col] = lo + (hi - lo) * u[col]
    return out


def hsv_to_rgb(h: torch.Tensor, s: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Vectorised HSV → RGB; inputs broadcast together, output has a trailing channel axis of 3."""
    k = torch.tensor([5.0, 3.0, 1.0], dtype=h.dtype, device=h.device)
    t = torch.remainder(k + h.unsqueeze(-1) * 6.0, 6.0)
    return v.unsqueeze(-1) - v.unsqueeze(-1) * s.unsqueeze(-1) * torch.clamp(torch.minimum(t, 4.0 - t), 0.0, 1.0)


def _object_sdf(px: torch.Tensor, py: torch.Tensor, shape: torch.Tensor, radius: torch.Tensor) -> torch.Tensor:
    """Signed distance (in image-side units) to a square, disc or triangle of equal area."""
    disc = torch.sqrt(px * px + py * py) - radius
    half_side = radius * math.sqrt(math.pi) / 2.0
    square = torch.maximum(px.abs(), py.abs()) - half_side
    # Equilateral triangle with the same area as the disc, pointing up (image y grows downwards).
    circumradius = radius * math.sqrt(4.0 * math.pi / (3.0 * math.sqrt(3.0)))
    tri = None
    for k in range(3):
        ang = -math.pi / 2 + math.pi + 2.0 * math.pi * k / 3.0  # outward normals of the three edges
        d = px * math.cos(ang) + py * math.sin(ang)
        tri = d if tri is None else torch.maximum(tri, d)
    tri = tri - circumradius / 2.0
    return torch.where(shape == 0, square, torch.where(shape == 1, disc, tri))


def render_factors(factors: np.ndarray | torch.Tensor, resolution: int = 64) -> torch.Tensor:
    """Render scenes from a factor table ``[N, 9]`` (columns in :data:`FACTOR_NAMES` order).

    Returns:
        Images ``[N, 3, resolution, resolution]``, float32 in [-1, 1].
    """
    if resolution < 8:
        raise ValueError(f"`resolution` must be at least 8, got {resolution}.")
    f = torch.as_tensor(np.asarray(factors), dtype=torch.float32)
    if f.ndim != 2 or f.shape[1] != len(FACTOR_NAMES):
        raise ValueError(f"`factors` must have shape [N, {len(FACTOR_NAMES)}], got {list(f.shape)}.")
    col = {name: f[:, i].reshape(-1, 1, 1) for i, name in enumerate(FACTOR_NAMES)}
    coords = (torch.arange(resolution, dtype=torch.float32) + 0.5) / resolution
    gy, gx = coords.reshape(1, -1, 1), coords.reshape(1, 1, -1)
    aa = 1.0 / resolution  # one pixel of anti-aliasing ramp

    light = col["lighting"]
    wall = hsv_to_rgb(col["background_hue"], torch.full_like(light, _WALL_SV[0]), _WALL_SV[1] * light)
    floor = wall * _FLOOR_VALUE_RATIO
    floor_cover = torch.clamp((gy - (1.0 - col["floor_height"])) / aa + 0.5, 0.0, 1.0)  # [N, R, 1]
    img = wall + (floor - wall) * floor_cover.unsqueeze(-1)  # [N, R, R|1, 3]
    img = img.expand(-1, resolution, resolution, 3)

    theta = col["rotation"] * (math.pi / 180.0)
    dx, dy = gx - col["x"], gy - col["y"]
    px = dx * torch.cos(theta) + dy * torch.sin(theta)
    py = -dx * torch.sin(theta) + dy * torch.cos(theta)
    sdf = _object_sdf(px, py, col["shape"].round(), col["scale"])
    cover = torch.clamp(0.5 - sdf / aa, 0.0, 1.0).unsqueeze(-1)  # [N, R, R, 1]
    obj = hsv_to_rgb(col["object_hue"], torch.full_like(light, _OBJECT_SV[0]), _OBJECT_SV[1] * light)
    img = img + (obj - img) * cover
    return (img.permute(0, 3, 1, 2) * 2.0 - 1.0).contiguous()


def render_scenes(indices: Sequence[int] | int, seed: int = 0, resolution: int = 64) -> ShapesBatch:
    """Render scenes by index (or the first `indices` scenes when an int is given).

    Example:

    >>> from sefa_plugin.data import render_scenes
    >>> batch = render_scenes(4, seed=0, resolution=32)
    >>> tuple(batch.images.shape), tuple(batch.factors.shape)
    ((4, 3, 32, 32), (4, 9))
    """
    idx = list(range(indices)) if isinstance(indices, int) else list(indices)
    factors = sample_factors(idx, seed=seed)
    images = render_factors(factors, resolution=resolution)
    return ShapesBatch(images=images, factors=torch.from_numpy(factors.astype(np.float32)))


class ShapesDataset(Dataset):
    """Torch dataset of procedural scenes: item ``i`` is ``(image [3, R, R] in [-1, 1], factors [9])``.

    Args:
        length: Number of scenes.
        resolution: Image side in pixels.
        seed: Dataset seed; two seeds give disjoint-in-distribution, independent scene sets.

    Batched fetching (``__getitems__``) renders a whole batch at once, which a ``DataLoader`` uses.
    """

    factor_names = FACTOR_NAMES

    def __init__(self, length: int = 100_000, resolution: int = 64, seed: int = 0) -> None:
        if length < 1:
            raise ValueError(f"`length` must be positive, got {length}.")
        self.length, self.resolution, self.seed = length, resolution, seed

    def __len__(self) -> int:
        return self.length

    def _check(self, idx: int) -> int:
        if not -self.length <= idx < self.length:
            raise IndexError(f"index {idx} out of range for a dataset of {self.length} scenes")
        return idx % self.length

    def __getitem__(self, idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        batch = render_scenes([self._check(idx)], seed=self.seed, resolution=self.resolution)
        return batch.images[0], batch.factors[0]

    def __getitems__(self, indices: Sequence[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        batch = render_scenes([self._check(i) for i in indices], seed=self.seed, resolution=self.resolution)
        return list(zip(batch.images, batch.factors, strict=True))
