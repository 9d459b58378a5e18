"""Evaluation report: report.md tables, PIL heatmaps, atomic writing, bad input."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from sefa_plugin.data.shapes import FACTOR_NAMES
from sefa_plugin.evaluation.agreement import Agreement
from sefa_plugin.evaluation.rca import RCAResult
from sefa_plugin.evaluation.report import rescoring_heatmap, write_report
from sefa_plugin.evaluation.rescoring import RescoringResult


def rescoring(k: int = 3, seed: int = 0) -> RescoringResult:
    m = torch.rand(k, len(FACTOR_NAMES), generator=torch.Generator().manual_seed(seed))
    m[0] = 0
    m[0, FACTOR_NAMES.index("scale")] = 2.0  # direction 0 changes only the scale
    return RescoringResult(matrix=m, factor_names=FACTOR_NAMES, labels=[f"d{i}" for i in range(k)], strength=3.0)


def results():
    return {
        "sefa": {
            "rca": RCAResult(
                accuracy=0.875, steps=2000, seconds=12.5, per_direction=None, num_directions=4, eval_samples=3200
            ),
            "agreement": [Agreement("scale", 0.93, 1), Agreement("x", 0.41, 3)],
            "rescoring": rescoring(),
        },
        "learned/ortho": {"rca": 0.5, "agreement": [("scale", 0.7, 0)], "rescoring": rescoring(4, seed=1)},
        "random": {"rca": None},
    }


def test_report_tables_and_heatmaps(tmp_path):
    path = write_report(tmp_path / "report", "tiny-model", results())
    assert path == tmp_path / "report" / "report.md"
    text = path.read_text()
    assert text.startswith("# Direction evaluation: tiny-model")
    assert "| sefa | 4 | 0.875 | 0.250 | full | 2000 | 3200 | 12.5 |" in text
    # Which method recovered which factor: d0 changes only the scale (no side effect: ratio inf).
    assert "## Which method recovered which factor" in text
    assert "| sefa | " in text and "2.00 ×inf (#0) ✓" in text
    assert "| learned/ortho | – | 0.500 |" in text
    assert "| scale | 0.930 (#1) | 0.700 (#0) |" in text
    assert "| x | 0.410 (#3) | – |" in text
    assert "![re-scoring matrix of sefa](rescoring_sefa.png)" in text
    assert "| d0 | object scale | 1.00 |" in text  # top factor and its share of the row
    files = sorted(p.name for p in (tmp_path / "report").iterdir())
    assert files == ["report.md", "rescoring_learned_ortho.png", "rescoring_sefa.png"]  # no temporary left
    img = Image.open(tmp_path / "report" / "rescoring_sefa.png")
    assert img.format == "PNG" and img.mode == "RGB" and img.width > 400 and img.height > 100


def test_sections_without_data_are_left_out(tmp_path):
    text = write_report(tmp_path, "m", {"sefa": {"rca": 0.9}}).read_text()
    assert "RCA" in text and "Agreement" not in text and "Re-scoring" not in text


def test_heatmap_colours_follow_the_values():
    r = rescoring()
    img = rescoring_heatmap(r, title="t")
    assert img.mode == "RGB"
    small = rescoring_heatmap(RescoringResult(torch.zeros(1, 2), ("scale", "x"), ["only"], 1.0))
    assert small.size[1] >= 40  # one row still fits the colour bar
    with pytest.raises(ValueError, match=r"`result\.matrix`"):
        rescoring_heatmap(RescoringResult(torch.zeros(2, 2), ("scale", "x"), ["a"], 1.0))


def test_bad_results_are_refused(tmp_path):
    with pytest.raises(ValueError, match="`results`"):
        write_report(tmp_path, "m", {})
    with pytest.raises(ValueError, match="unknown keys \\['fid'\\]"):
        write_report(tmp_path, "m", {"sefa": {"fid": 1.0}})
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match="`out_dir`"):
        write_report(tmp_path / "file", "m", {"sefa": {"rca": 0.5}})
