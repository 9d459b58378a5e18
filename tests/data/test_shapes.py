"""The procedural scene renderer: determinism, label correctness, speed-relevant batching."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sefa_plugin.data import FACTOR_NAMES, FACTOR_RANGES, ShapesDataset, render_factors, render_scenes, sample_factors


def test_deterministic_and_seed_dependent():
    a = render_scenes([0, 5, 9], seed=3, resolution=32)
    b = render_scenes([9, 0, 5], seed=3, resolution=32)
    assert torch.equal(a.images[0], b.images[1]) and torch.equal(a.factors[2], b.factors[0])
    c = render_scenes([0], seed=4, resolution=32)
    assert not torch.equal(a.factors[0], c.factors[0])
    assert a.images.shape == (3, 3, 32, 32) and a.images.min() >= -1 and a.images.max() <= 1


def test_factors_in_range():
    f = sample_factors(range(500), seed=0)
    for j, name in enumerate(FACTOR_NAMES):
        lo, hi = FACTOR_RANGES[name]
        assert f[:, j].min() >= lo and f[:, j].max() <= hi
    assert set(np.unique(f[:, FACTOR_NAMES.index("shape")])) == {0.0, 1.0, 2.0}


def _scene(**overrides) -> np.ndarray:
    base = dict(
        background_hue=0.6,
        object_hue=0.0,
        shape=1,
        scale=0.15,
        rotation=0.0,
        x=0.5,
        y=0.5,
        lighting=1.0,
        floor_height=0.3,
    )
    base.update(overrides)
    return np.array([[base[n] for n in FACTOR_NAMES]])


def _object_mask(img: torch.Tensor) -> torch.Tensor:
    # The object is pure red here (hue 0, fully saturated): high R, low G and B.
    r, g, b = img[0], img[1], img[2]
    return (r > 0.8) & (g < -0.7) & (b < -0.7)


def test_labels_match_rendered_pixels():
    res = 64
    img = render_factors(_scene(x=0.3, y=0.6), resolution=res)[0]
    mask = _object_mask(img)
    ys, xs = torch.nonzero(mask, as_tuple=True)
    assert abs((xs.float().mean() + 0.5) / res - 0.3) < 0.02
    assert abs((ys.float().mean() + 0.5) / res - 0.6) < 0.02
    # Disc area matches scale (radius as a fraction of the side).
    area = mask.float().sum() / res**2
    assert abs(area - np.pi * 0.15**2) < 0.01
    # Equal-area shapes.
    for shape in (0, 2):
        m = _object_mask(render_factors(_scene(shape=shape), resolution=res)[0])
        assert abs(m.float().sum() / res**2 - np.pi * 0.15**2) < 0.012
    # Lighting scales brightness; floor is darker than the wall.
    dark = render_factors(_scene(lighting=0.6), resolution=res)[0]
    bright = render_factors(_scene(lighting=1.0), resolution=res)[0]
    assert dark[:, 2, 2].mean() < bright[:, 2, 2].mean()
    assert bright[:, -2, 2].mean() < bright[:, 2, 2].mean()
    # Rotation turns a square (a rotated square covers other pixels) but not a disc.
    sq0 = render_factors(_scene(shape=0, rotation=0.0), resolution=res)[0]
    sq30 = render_factors(_scene(shape=0, rotation=30.0), resolution=res)[0]
    assert (sq0 - sq30).abs().max() > 0.5
    d0 = render_factors(_scene(shape=1, rotation=0.0), resolution=res)[0]
    d30 = render_factors(_scene(shape=1, rotation=30.0), resolution=res)[0]
    assert (d0 - d30).abs().max() < 1e-5


def test_dataset_interface():
    ds = ShapesDataset(length=10, resolution=16, seed=1)
    img, f = ds[3]
    assert img.shape == (3, 16, 16) and f.shape == (len(FACTOR_NAMES),)
    batch = ds.__getitems__([3, 4])
    assert torch.equal(batch[0][0], img)
    loader = torch.utils.data.DataLoader(ds, batch_size=4)
    images, factors = next(iter(loader))
    assert images.shape == (4, 3, 16, 16) and factors.shape == (4, len(FACTOR_NAMES))
    with pytest.raises(IndexError):
        ds[10]


def test_bad_input():
    with pytest.raises(ValueError, match="factors"):
        render_factors(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="resolution"):
        render_scenes(2, resolution=4)
    with pytest.raises(ValueError, match="length"):
        ShapesDataset(length=0)
