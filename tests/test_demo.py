"""The main job on the embedded model: grid, GIF, direction folder and one labelled line per direction."""

from __future__ import annotations

import re

import pytest
from PIL import Image

from sefa_plugin import Directions
from sefa_plugin.cli import main
from sefa_plugin.demo import run_demo


def test_run_demo_writes_files_and_labels(tmp_path):
    report = run_demo(tmp_path / "demo", num_directions=2, num_label_samples=2)
    grid = Image.open(report.files["grid"])
    assert grid.size[1] > 2 * 64 and grid.size[0] > 7 * 64
    assert Image.open(report.files["gif"]).n_frames > 2
    assert report.files["mp4"].read_bytes()[4:8] == b"ftyp"  # an MP4 container
    d = Directions.from_pretrained(report.files["directions"])
    assert len(d) == 2 and d.labels == report.directions.labels
    lines = report.lines()
    assert re.match(r"direction 0: ([a-z ]+|mixed \([a-z ]+ / [a-z ]+\)) \(\d\.\d\d\)", lines[0])


def test_demo_cli_reports_an_unwritable_folder(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["demo", "--out", str(blocker / "demo"), "-k", "1"]) == 2
    assert "`--out`" in capsys.readouterr().err  # checked before the work, naming the flag


@pytest.mark.parametrize("k", [0, 999])
def test_demo_rejects_bad_k(tmp_path, k):
    with pytest.raises(ValueError, match="num_directions"):
        run_demo(tmp_path / "demo", num_directions=k)
