"""CLI: `sefa factorize`, `sefa edit` (grid + GIF), `sefa push`, `sefa train`, and error reporting."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from sefa_plugin import Directions, SefaPipeline, StyleGAN2Generator
from sefa_plugin.cli import main


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> str:
    torch.manual_seed(0)
    g = StyleGAN2Generator(z_dim=16, w_dim=16, img_resolution=16, channel_base=256, channel_max=16, mapping_layers=2)
    folder = tmp_path_factory.mktemp("cli-core") / "model"
    SefaPipeline(generator=g.eval()).save_pretrained(folder)
    return str(folder)


def test_factorize_edit_push(model_dir, tmp_path, hub_env, capsys):
    out = tmp_path / "dirs"
    assert main(["factorize", model_dir, "--layers", "0-3", "-k", "4", "--out", str(out)]) == 0
    d = Directions.from_pretrained(out)
    assert len(d) == 4 and d.layers == [0, 1, 2, 3] and d.method == "sefa"
    assert (out / "preview.png").is_file()
    assert "direction 0: eigenvalue" in capsys.readouterr().out

    grid, gif = tmp_path / "grid.png", tmp_path / "walk.gif"
    argv = [
        "edit",
        model_dir,
        "--directions",
        str(out),
        "--index",
        "1",
        "--strengths",
        "-3",
        "0",
        "3",
        "--seeds",
        "0",
        "1",
        "--out",
        str(grid),
        "--gif",
        str(gif),
        "--frames",
        "4",
    ]
    assert main(argv) == 0
    img = Image.open(grid)
    assert img.size == (3 * 16 + 4 * 2, 2 * 16 + 3 * 2)  # 3 strengths × 2 seeds with 2-px padding
    anim = Image.open(gif)
    assert anim.n_frames == 6  # 4 frames forward, 2 back
    video = tmp_path / "walk.mp4"
    argv[argv.index("--gif") : argv.index("--gif") + 2] = ["--mp4", str(video)]
    assert main(argv) == 0 and video.read_bytes()[4:8] == b"ftyp"

    assert main(["push", str(out), "tester/cli-dirs", "--token", hub_env.token]) == 0
    assert "directions.safetensors" in hub_env.server.repo_files("tester/cli-dirs")
    assert "pushed" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv,message",
    [
        (["factorize", "{model}", "--layers", "9-1", "--out", "{tmp}/x"], "`--layers`"),
        (["factorize", "{model}", "-k", "99", "--out", "{tmp}/x"], "`-k`"),
        (["factorize", "{tmp}/not-a-model", "--out", "{tmp}/x"], "model_index.json"),
        (["edit", "{model}", "--directions", "{tmp}/none", "--out", "{tmp}/g.png"], "pretrained_directions"),
    ],
)
def test_errors_name_the_argument(model_dir, tmp_path, capsys, argv, message):
    (tmp_path / "not-a-model").mkdir()
    (tmp_path / "none").mkdir()
    argv = [a.format(model=model_dir, tmp=tmp_path) for a in argv]
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_edit_rejects_unknown_image_format(model_dir, tmp_path, capsys):
    out = tmp_path / "dirs"
    assert main(["factorize", model_dir, "-k", "2", "--out", str(out), "--no-preview"]) == 0
    assert main(["edit", model_dir, "--directions", str(out), "--out", str(tmp_path / "grid.bmp")]) == 2
    assert "extension" in capsys.readouterr().err
    assert not (tmp_path / "grid.bmp").exists()


def test_train_command(tmp_path, capsys):
    run = tmp_path / "run"
    argv = [
        "train",
        "--run-dir",
        str(run),
        "--iterations",
        "2",
        "--resolution",
        "16",
        "--batch-size",
        "4",
        "--channel-base",
        "128",
        "--channel-max",
        "16",
        "--z-dim",
        "16",
        "--w-dim",
        "16",
        "--mapping-layers",
        "2",
        "--checkpoint-every",
        "1",
        "--export",
        str(tmp_path / "export"),
        "--device",
        "cpu",
    ]
    assert main(argv) == 0
    assert (run / "checkpoint.pt").is_file()
    assert StyleGAN2Generator.from_pretrained(tmp_path / "export").config.img_resolution == 16
    # Resume with a new R1 weight; a bad value is a clear error that names the flag.
    resume = ["train", "--run-dir", str(run), "--iterations", "3", "--device", "cpu"]
    assert main([*resume, "--r1-gamma", "0.3", "--lr", "0.001", "--fm-weight", "0.2"]) == 0
    state = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert state["iteration"] == 3 and state["config"]["r1_gamma"] == 0.3 and state["config"]["lr"] == 0.001
    assert state["config"]["fm_weight"] == 0.2
    assert main([*resume, "--r1-gamma", "big"]) == 2
    assert "--r1-gamma must be 'auto' or a number" in capsys.readouterr().err
    assert main([*resume, "--shape-balance-weight", "1"]) == 2  # needs the discriminator's shape head
    assert "aux_shape_weight" in capsys.readouterr().err
    assert main([*resume, "--shape-confidence-weight", "1"]) == 2
    assert "shape_confidence_weight" in capsys.readouterr().err
    assert (
        main(
            [
                *resume[:4],
                "4",
                *resume[5:],
                "--aux-shape-weight",
                "1",
                "--shape-confidence-weight",
                "0.5",
                "--shape-assign-weight",
                "2",
            ]
        )
        == 0
    )
    state = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert state["iteration"] == 4 and state["config"]["shape_confidence_weight"] == 0.5
    assert state["config"]["shape_assign_weight"] == 2.0
    mix = ["--style-mixing-prob", "0.5", "--ema-kimg", "5", "--mapping-lr-multiplier", "0.05"]
    assert main([*resume[:4], "5", *resume[5:], *mix]) == 0
    state = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert state["config"]["style_mixing_prob"] == 0.5 and state["config"]["ema_kimg"] == 5.0
    assert state["config"]["mapping_lr_multiplier"] == 0.05
    assert main([*resume, "--mapping-lr-multiplier", "0"]) == 2
    assert "`mapping_lr_multiplier` must be > 0, got 0.0" in capsys.readouterr().err
    assert main([*resume, "--style-mixing-prob", "1.5"]) == 2
    assert "`style_mixing_prob` must be in [0, 1], got 1.5" in capsys.readouterr().err
    # A wider generator on resume; the discriminator keeps its width; narrowing is refused.
    assert main([*resume[:4], "6", *resume[5:], "--channel-base", "256"]) == 0
    state = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert state["config"]["channel_base"] == 256 and state["config"]["d_channel_base"] == 128
    assert state["G_ema"]["synthesis.b16.conv1.weight"].shape[:2] == (16, 16)
    assert main([*resume, "--channel-base", "128"]) == 2
    assert "can only widen the generator" in capsys.readouterr().err
