"""Where a new user stumbles: quiet Hub logs, named progress bars, refusals before the work, short reprs."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sefa_plugin import Directions, GANSpacePipeline, SefaPipeline, StyleGAN2Generator
from sefa_plugin.cli import main
from sefa_plugin.commands import COMMAND_LOGGERS
from sefa_plugin.directions.ganspace import ganspace_w
from sefa_plugin.hub import resolve_folder

CLI = [sys.executable, "-c", "import sys; from sefa_plugin.cli import main; sys.exit(main())"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> str:
    torch.manual_seed(0)
    g = StyleGAN2Generator(z_dim=8, w_dim=8, img_resolution=8, channel_base=64, channel_max=8, mapping_layers=2)
    folder = tmp_path_factory.mktemp("polish") / "model"
    SefaPipeline(generator=g.eval()).save_pretrained(folder)
    return str(folder)


def _run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=180, env=env)


def test_hub_commands_print_no_http_lines_unless_verbose(model_dir, tmp_path, hub_env):
    SefaPipeline.from_pretrained(model_dir).push_to_hub("tester/tiny-gan")
    out = tmp_path / "dirs"
    result = _run(["factorize", "tester/tiny-gan", "-k", "2", "--out", str(out)], env=dict(os.environ))
    assert result.returncode == 0, result.stderr
    assert "HTTP Request" not in result.stderr
    assert "Loading pipeline components" not in result.stderr
    assert "render:" in result.stderr  # the preview's bar has a name
    assert "INFO factorized 2 directions" in result.stderr  # our own INFO lines stay
    verbose = _run(["-v", "factorize", "tester/tiny-gan", "-k", "2", "--out", str(out)], env=dict(os.environ))
    assert verbose.returncode == 0 and "HTTP Request" in verbose.stderr


def test_main_restores_library_log_levels(model_dir, tmp_path):
    before = {name: logging.getLogger(name).level for name in COMMAND_LOGGERS}
    assert main(["factorize", model_dir, "-k", "2", "--out", str(tmp_path / "d"), "--no-preview"]) == 0
    assert {name: logging.getLogger(name).level for name in COMMAND_LOGGERS} == before


def test_progress_bars_are_named(model_dir, capsys):
    pipe = GANSpacePipeline.from_pretrained(model_dir)
    assert pipe.progress_bar(range(2), desc="render").desc == "render"
    pipe.set_progress_bar_config(desc="mine")
    assert pipe.progress_bar(range(2), desc="render").desc == "mine"  # the user's name wins
    pipe.set_progress_bar_config()
    pipe.fit(num_samples=200, num_components=3, batch_size=100, generator=torch.Generator().manual_seed(0))
    assert "GANSpace samples: 100%" in capsys.readouterr().err
    pipe(seeds=[0], num_images=None)
    assert "render: 100%" in capsys.readouterr().err


def test_ganspace_refuses_fewer_samples_than_components(model_dir, tmp_path, capsys):
    g = SefaPipeline.from_pretrained(model_dir).generator
    with pytest.raises(ValueError, match=r"`num_samples`=8 must be greater than `num_components`=8"):
        ganspace_w(g, num_samples=8, num_components=8)
    out = tmp_path / "g"
    assert main(["ganspace", model_dir, "--num-samples", "5", "-k", "6", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "`--num-samples`=5 must be greater than `-k`=6" in err and "noise" in err
    assert not out.exists()
    assert main(["ganspace", model_dir, "--num-samples", "7", "-k", "6", "--out", str(out), "--no-preview"]) == 0


def test_evaluate_refuses_an_empty_report(model_dir, tmp_path, capsys):
    dirs, report = tmp_path / "d", tmp_path / "report"
    assert main(["factorize", model_dir, "-k", "2", "--out", str(dirs), "--no-preview"]) == 0
    argv = ["evaluate", model_dir, "--directions", str(dirs), "--out", str(report), "--rca-steps", "0"]
    assert main([*argv, "--no-rescoring"]) == 2
    err = capsys.readouterr().err
    assert "nothing to evaluate" in err and "`--rca-steps 0`" in err and "`--no-rescoring`" in err
    assert not report.exists()
    assert main([*argv, "--no-rescoring", "--boundaries", str(dirs)]) == 0  # agreement alone is a report
    assert (report / "report.md").is_file()


def test_directions_repr_is_one_short_line():
    d = Directions(vectors=torch.randn(300, 512), method="ganspace", latent_space="w+", layers=[0, 1, 2, 3, 8])
    text = repr(d)
    assert "\n" not in text and "tensor" not in text and len(text) < 200
    assert "method='ganspace'" in text and "K=300" in text and "dim=512" in text and "layers=0-3,8" in text
    assert "'direction 0'" in text and "'direction 3'" not in text and "…" in text


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_offline_errors_name_the_real_cause(tmp_path, hub_env):
    with pytest.raises(OSError, match=r"`local_files_only=True` was given"):
        resolve_folder("org/name", local_files_only=True)
    hub_env.set_offline(True)
    with pytest.raises(OSError, match=r"offline mode is on \(`HF_HUB_OFFLINE=1`\)"):
        resolve_folder("org/name")
    hub_env.set_offline(False)
    # No network, neither setting: the message says the Hub could not be reached, not "offline mode".
    env = dict(os.environ, HF_ENDPOINT=f"http://127.0.0.1:{_closed_port()}", HF_HUB_OFFLINE="0")
    result = _run(["factorize", "org/name", "--out", str(tmp_path / "x")], env=env)
    assert result.returncode == 2
    assert "could not be reached" in result.stderr and "ConnectError" in result.stderr
    assert "offline mode" not in result.stderr and "local_files_only" not in result.stderr


@pytest.mark.parametrize(
    "argv,message",
    [
        (["edit", "{model}", "--directions", "{dirs}", "--out", "{tmp}/g.png", "--gif", "/proc/x.gif"], "`--gif`"),
        (["edit", "{model}", "--directions", "{dirs}", "--out", "{tmp}/g.png", "--gif", "{tmp}/w.mp3"], ".gif"),
        (["edit", "{model}", "--directions", "{dirs}", "--out", "{tmp}/a-file/g.png"], "is not a folder"),
        (["factorize", "{model}", "--out", "/proc/sefa/x"], "`--out` '/proc/sefa/x' cannot be written"),
        (["factorize", "{model}", "--out", "{tmp}/a-file"], "exists and is not a folder"),
        (["space", "{tmp}/a-file"], "`DIR`"),
    ],
)
def test_output_paths_are_checked_before_the_work(model_dir, tmp_path, capsys, argv, message):
    dirs = tmp_path / "dirs"
    assert main(["factorize", model_dir, "-k", "2", "--out", str(dirs), "--no-preview"]) == 0
    (tmp_path / "a-file").write_text("not a folder")
    capsys.readouterr()
    argv = [a.format(model=model_dir, tmp=tmp_path, dirs=dirs) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr()
    assert message in err.err and "Traceback" not in err.err
    assert "render" not in err.err  # refused before rendering anything
    assert not (tmp_path / "g.png").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "dirs"]
    assert not list(Path("/tmp").glob(".sefa-check-*"))
