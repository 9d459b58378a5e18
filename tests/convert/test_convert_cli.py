"""`sefa convert` / `GANPipeline.from_checkpoint`: checkpoint → pipeline folder (+ card) → factorize, and push."""

from __future__ import annotations

import hashlib
import os

import torch
from factories import tiny_stylegan2
from test_convert_rosinality import to_rosinality

from sefa_plugin import SefaPipeline
from sefa_plugin.cli import main


def _rosinality_file(tmp_path):
    g = tiny_stylegan2(trained_like=True, channel_max=32, mapping_layers=3)
    state, latent_avg = to_rosinality(g)
    path = tmp_path / "550000.pt"
    torch.save({"g_ema": state, "latent_avg": latent_avg}, path)
    return g, path


def test_convert_command_writes_a_loadable_folder(tmp_path, capsys):
    g, path = _rosinality_file(tmp_path)
    out = tmp_path / "converted"
    assert main(["convert", str(path), "--out", str(out)]) == 0
    assert "rosinality" in capsys.readouterr().out
    pipe = SefaPipeline.from_pretrained(out)
    pipe.set_progress_bar_config(disable=True)
    z = torch.randn(2, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(pipe.generator(z, truncation_psi=0.7), g(z, truncation_psi=0.7))
    assert len(pipe.factorize(num_directions=4)) == 4
    card = (out / "README.md").read_text()
    assert "550000.pt" in card and hashlib.sha256(path.read_bytes()).hexdigest() in card
    assert "rosinality" in card and "license" in card.lower()


def test_convert_and_push(tmp_path, hub_env):
    _, path = _rosinality_file(tmp_path)
    argv = [
        "convert",
        str(path),
        "--out",
        str(tmp_path / "out"),
        "--push",
        "tester/converted",
        "--token",
        hub_env.token,
    ]
    assert main(argv) == 0
    files = hub_env.server.repo_files("tester/converted")
    assert "model_index.json" in files and b"550000.pt" in files["README.md"]
    assert SefaPipeline.from_pretrained("tester/converted", token=hub_env.token).generator.num_ws == 6


def test_convert_refuses_code_and_unknown_files(tmp_path, capsys):
    sentinel = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {sentinel}",))

    bad = tmp_path / "evil.pt"
    torch.save({"g_ema": Evil()}, bad)
    assert main(["convert", str(bad), "--format", "rosinality", "--out", str(tmp_path / "x")]) == 2
    assert "system" in capsys.readouterr().err and not sentinel.exists()
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"not a checkpoint")
    assert main(["convert", str(junk), "--out", str(tmp_path / "y")]) == 2
    assert "format" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_convert_detects_genforce_files_and_huggan_folders(tmp_path, capsys):
    from test_convert_genforce import genforce_pggan_state, genforce_stylegan_state

    pth = tmp_path / "stylegan_tiny.pth"
    torch.save({"generator": genforce_stylegan_state(seed=1), "generator_smooth": genforce_stylegan_state()}, pth)
    folder = tmp_path / "huggan-pggan"
    folder.mkdir()
    torch.save(genforce_pggan_state(), folder / "pytorch_model.bin")
    for src, cls in ((pth, "StyleGANGenerator"), (folder, "PGGANGenerator")):
        out = tmp_path / f"out-{src.name}"
        assert main(["convert", str(src), "--out", str(out)]) == 0
        assert "genforce" in capsys.readouterr().out
        pipe = SefaPipeline.from_pretrained(out)
        assert type(pipe.generator).__name__ == cls
        assert len(pipe.factorize(num_directions=3)) == 3
        card = (out / "README.md").read_text()
        weights = pth if src == pth else folder / "pytorch_model.bin"
        assert hashlib.sha256(weights.read_bytes()).hexdigest() in card and "CC BY-NC" in card
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["convert", str(empty), "--out", str(tmp_path / "z")]) == 2
    assert "pytorch_model.bin" in capsys.readouterr().err and not (tmp_path / "z").exists()


def test_convert_detects_biggan_folders_and_edits_with_a_class(tmp_path, capsys):
    from test_convert_biggan import write_folder

    folder = write_folder(tmp_path / "biggan-deep-tiny")
    out = tmp_path / "out"
    assert main(["convert", str(folder), "--out", str(out)]) == 0
    assert "biggan" in capsys.readouterr().out
    pipe = SefaPipeline.from_pretrained(out)
    pipe.set_progress_bar_config(disable=True)
    assert type(pipe.generator).__name__ == "BigGANGenerator"
    directions = pipe.factorize()
    assert len(directions) == pipe.generator.config.z_dim
    images = pipe(seeds=[0], class_label=1, directions=directions, index=0, strengths=[-2, 2], output_type="pt").images
    assert images.shape[0] == 2 and not torch.allclose(images[0], images[1])
    card = (out / "README.md").read_text()
    assert hashlib.sha256((folder / "pytorch_model.bin").read_bytes()).hexdigest() in card and "BigGAN" in card
    assert "class_label=0" in card and "one of 5 classes" in card


def test_convert_stylegan3_pickle(tmp_path, capsys):
    from factories import TINY_R, tiny_stylegan3
    from test_convert_stylegan3 import nvidia_snapshot, write

    g = tiny_stylegan3(**TINY_R)
    path = write(tmp_path, nvidia_snapshot(g))
    out = tmp_path / "out"
    assert main(["convert", str(path), "--out", str(out)]) == 0
    assert "nvidia" in capsys.readouterr().out
    pipe = SefaPipeline.from_pretrained(out)
    assert type(pipe.generator).__name__ == "StyleGAN3Generator"
    z = torch.randn(2, g.config.z_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(pipe.generator(z, truncation_psi=0.7), g(z, truncation_psi=0.7), atol=0, rtol=0)
    assert len(pipe.factorize(layers="1-3", num_directions=4)) == 4
