"""`sefa invert` and `sefa edit --latents` on the embedded model: a rendered scene in, an edited grid out."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from sefa_plugin.cli import main
from sefa_plugin.data import render_scenes
from sefa_plugin.inversion import Inversion
from sefa_plugin.utils.images import to_pil


@pytest.fixture
def scenes(tmp_path):
    paths = []
    for i, image in enumerate(to_pil(render_scenes([0, 1], seed=3).images)):
        paths.append(tmp_path / f"scene{i}.png")
        image.save(paths[-1])
    return paths


def test_invert_then_edit(tmp_path, scenes, capsys):
    out = tmp_path / "inv"
    assert main(["invert", str(scenes[0]), str(scenes[1]), "--out", str(out), "--steps", "40"]) == 0
    printed = capsys.readouterr().out
    assert "PSNR" in printed and "perceptual term: predictor" in printed
    inv = Inversion.from_pretrained(out)
    assert tuple(inv.latents.shape) == (2, 10, 128) and (out / "comparison.png").is_file()
    assert main(["factorize", "-k", "2", "--out", str(tmp_path / "dirs"), "--no-preview"]) == 0
    grid, walk = tmp_path / "grid.png", tmp_path / "walk.gif"
    argv = ["edit", "--latents", str(out), "--directions", str(tmp_path / "dirs"), "--strengths", "-3", "0", "3"]
    assert main([*argv, "--out", str(grid), "--gif", str(walk), "--frames", "3"]) == 0
    assert Image.open(grid).size == (3 * 64 + 4 * 2, 2 * 64 + 3 * 2)  # 2 photos × 3 strengths
    # The middle column (strength 0) renders the inversion itself.
    middle = np.asarray(Image.open(grid))[2 : 2 + 64, 2 + 66 : 2 + 66 + 64]
    assert np.array_equal(middle, np.asarray(inv.images[0].convert("RGB")))
    # NVIDIA's projector output loads the same way.
    np.savez(tmp_path / "projected_w.npz", w=inv.latents[:1].numpy())
    assert main([*argv, "--latents", str(tmp_path / "projected_w.npz"), "--out", str(tmp_path / "g2.png")]) == 0


@pytest.mark.parametrize(
    "argv,message",
    [
        (["invert", "{tmp}/missing.png", "--out", "{tmp}/o"], "missing.png"),
        (["invert", "{tmp}/notes.txt", "--out", "{tmp}/o"], "not an image"),
        (["invert", "{scene}", "--out", "{tmp}/o", "--steps", "0"], "`--steps`"),
        (["edit", "--latents", "{tmp}/bad.npy", "--directions", "{tmp}/d", "--out", "{tmp}/g.png"], "`--latents`"),
        (["edit", "--latents", "{tmp}/nan.npy", "--directions", "{tmp}/d", "--out", "{tmp}/g.png"], "`--latents`"),
    ],
)
def test_bad_input_names_the_argument_and_writes_nothing(tmp_path, scenes, capsys, argv, message):
    (tmp_path / "notes.txt").write_text("hello")
    np.save(tmp_path / "bad.npy", np.zeros((1, 7), dtype=np.float32))  # another model's width
    np.save(tmp_path / "nan.npy", np.full((1, 128), np.nan, dtype=np.float32))
    assert main(["factorize", "-k", "2", "--out", str(tmp_path / "d"), "--no-preview"]) == 0
    argv = [a.format(tmp=tmp_path, scene=scenes[0]) for a in argv]
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists() and not (tmp_path / "g.png").exists()
