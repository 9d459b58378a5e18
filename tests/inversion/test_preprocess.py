"""prepare_images: every accepted input becomes [N, C, R, R] in [-1, 1]; bad inputs name the argument."""

from __future__ import annotations

import numpy as np
import PIL.Image
import pytest
import torch

from sefa_plugin.inversion import prepare_images
from sefa_plugin.inversion.preprocess import square_resize


def test_paths_pil_arrays_and_tensors(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    PIL.Image.fromarray(rgb).save(tmp_path / "a.png")
    tensor = torch.from_numpy(rgb).permute(2, 0, 1).float() / 127.5 - 1
    out = prepare_images([tmp_path / "a.png", PIL.Image.fromarray(rgb), rgb, rgb / 255.0, tensor], resolution=16)
    assert tuple(out.images.shape) == (5, 3, 16, 16)
    assert out.resized == [False] * 5
    for i in range(1, 5):  # every route gives the same pixels
        torch.testing.assert_close(out.images[i], out.images[0], atol=1 / 127.5, rtol=0)
    assert out.images.min() >= -1 and out.images.max() <= 1


def test_rgba_greyscale_and_other_sizes():
    rgba = np.zeros((30, 40, 4), np.uint8)  # fully transparent: composited over white
    grey = np.full((20, 20), 128, np.uint8)
    out = prepare_images([rgba, grey, PIL.Image.new("RGB", (16, 16), (255, 0, 0))], resolution=16)
    assert out.resized == [True, True, False]
    assert out.original_sizes == [(40, 30), (20, 20), (16, 16)]
    assert torch.allclose(out.images[0], torch.ones(3, 16, 16))
    assert torch.allclose(out.images[1], torch.full((3, 16, 16), 128 / 127.5 - 1), atol=1e-5)
    single = prepare_images(grey, resolution=8, channels=1)
    assert tuple(single.images.shape) == (1, 1, 8, 8)


def test_centre_crop_keeps_the_middle():
    img = PIL.Image.new("RGB", (30, 10), (0, 0, 0))
    img.paste((255, 255, 255), (10, 0, 20, 10))  # the central square is white
    out, changed = square_resize(img, 10)
    assert changed and np.asarray(out).min() == 255


def test_not_an_image_names_the_argument(tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    with pytest.raises(ValueError, match=r"`images`\[1\] .*notes.png.* not an image"):
        prepare_images([PIL.Image.new("RGB", (8, 8)), bad], resolution=8)
    with pytest.raises(FileNotFoundError, match="`images`"):
        prepare_images([tmp_path / "missing.png"], resolution=8)


@pytest.mark.parametrize(
    "images, match",
    [
        ([], "at least one image"),
        (np.zeros((4, 4, 2), np.uint8), r"\[H, W\] or \[H, W, 3\|4\]"),
        (np.zeros((4, 4), np.int64), "uint8"),
        (np.full((4, 4), np.nan), "NaN"),
        (torch.zeros(2, 8, 8), "float"),
        (42, "must be an image"),
    ],
)
def test_bad_inputs(images, match):
    with pytest.raises((ValueError, TypeError), match=f"`images`.*{match}|{match}"):
        prepare_images(images, resolution=8)
