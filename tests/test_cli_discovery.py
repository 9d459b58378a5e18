"""CLI smoke tests for `sefa ganspace`, `sefa boundary` and `sefa import` on a tiny saved model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sefa_plugin import BoundaryPipeline, Directions, SefaPipeline, StyleGAN2Generator
from sefa_plugin.cli import main
from sefa_plugin.evaluation.predictor import FactorPredictor


@pytest.fixture(autouse=True, scope="module")
def _single_thread():
    """Tiny models run fastest on one thread (and do not fight a busy machine's other jobs for cores)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> str:
    torch.manual_seed(0)
    g = StyleGAN2Generator(z_dim=16, w_dim=16, img_resolution=16, channel_base=256, channel_max=16, mapping_layers=2)
    folder = tmp_path_factory.mktemp("cli") / "model"
    SefaPipeline(generator=g.eval()).save_pretrained(folder)
    return str(folder)


def test_ganspace_command(model_dir, tmp_path, capsys):
    out = tmp_path / "pcs"
    rc = main(["ganspace", model_dir, "--num-samples", "2000", "-k", "4", "--batch-size", "500", "--layers", "0-3",
               "--out", str(out)])  # fmt: skip
    assert rc == 0
    d = Directions.from_pretrained(out)
    assert d.method == "ganspace" and len(d) == 4 and d.layers == [0, 1, 2, 3] and d.stds is not None
    assert (out / "preview.png").is_file() and (out / "README.md").is_file()
    assert "PC0: variance" in capsys.readouterr().out


def test_ganspace_command_rejects_too_many_components(model_dir, tmp_path, capsys):
    rc = main(["ganspace", model_dir, "--num-samples", "100", "-k", "99", "--out", str(tmp_path / "x")])
    assert rc == 2
    assert "`-k` must be an int in [1, 16]" in capsys.readouterr().err


def test_boundary_command_with_a_predictor(model_dir, tmp_path, capsys):
    torch.manual_seed(0)
    predictor = FactorPredictor(img_resolution=16, channels=(8,), feature_dim=8)
    with torch.no_grad():  # keep the random heads inside [0, 1], where factor_vector does not clip them
        predictor.head.weight.mul_(0.01)
        predictor.head.bias.fill_(0.5)
    predictor.save_pretrained(tmp_path / "predictor")
    out = tmp_path / "boundaries"
    rc = main(["boundary", model_dir, "--num-samples", "500", "--predictor", str(tmp_path / "predictor"),
               "--attributes", "x", "y", "--batch-size", "250", "--out", str(out)])  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    d = Directions.from_pretrained(out)
    assert d.method == "boundary" and d.labels == ["x", "y"]
    assert "x: validation accuracy" in capsys.readouterr().out


def test_boundary_command_with_scores_file(model_dir, tmp_path, capsys):
    lat = BoundaryPipeline.from_pretrained(model_dir).sample_latents(1000, seed=3)
    normal = torch.nn.functional.normalize(torch.randn(16, generator=torch.Generator().manual_seed(0)), dim=0)
    np.save(tmp_path / "scores.npy", (lat @ normal).numpy())
    out = tmp_path / "b"
    rc = main(["boundary", model_dir, "--scores", str(tmp_path / "scores.npy"), "--num-samples", "1000",
               "--seed", "3", "--ratio", "0.4", "--attributes", "mine", "--no-preview", "--out", str(out)])  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    d = Directions.from_pretrained(out)
    assert d.labels == ["mine"] and float(d.vectors[0] @ normal) > 0.98
    rc = main(["boundary", model_dir, "--scores", str(tmp_path / "scores.npy"), "--num-samples", "1000",
               "--ratio", "0.005", "--no-preview", "--out", str(tmp_path / "c")])  # fmt: skip
    assert rc == 2 and "`--num-samples` × `--ratio`" in capsys.readouterr().err


def test_import_command(model_dir, tmp_path, capsys):
    np.save(tmp_path / "age_w_boundary.npy", np.eye(16, dtype=np.float32)[:1])
    rc = main(["import", str(tmp_path / "age_w_boundary.npy"), "--format", "interfacegan", "--model", model_dir,
               "--out", str(tmp_path / "age")])  # fmt: skip
    assert rc == 0
    d = Directions.from_pretrained(tmp_path / "age")
    assert d.method == "imported" and d.labels == ["age_w"] and len(d.layers) == 6

    torch.save({"ckpt": "x.pt", "eigvec": torch.eye(16)}, tmp_path / "factor.pt")
    rc = main(["import", str(tmp_path / "factor.pt"), "--format", "rosinality", "--layers", "0-3",
               "--out", str(tmp_path / "rosi")])  # fmt: skip
    assert rc == 0 and Directions.from_pretrained(tmp_path / "rosi").layers == [0, 1, 2, 3]

    rc = main(["import", str(tmp_path / "factor.pt"), "--format", "rosinality", "--out", str(tmp_path / "no")])
    assert rc == 2 and "`--model` in the CLI" in capsys.readouterr().err
    np.save(tmp_path / "wide_boundary.npy", np.ones((1, 8), dtype=np.float32))
    rc = main(["import", str(tmp_path / "wide_boundary.npy"), "--format", "interfacegan", "--model", model_dir,
               "--out", str(tmp_path / "wide")])  # fmt: skip
    assert rc == 2 and "8 dimensions" in capsys.readouterr().err


def test_evaluate_command_fast_rca_prints_the_estimate_first(model_dir, tmp_path, capsys):
    d = Directions(vectors=torch.eye(16)[:3], method="coordinate", latent_space="w+", layers=[0, 1, 2, 3])
    d.save_pretrained(tmp_path / "dirs")
    out = tmp_path / "report"
    rc = main(["evaluate", model_dir, "--directions", str(tmp_path / "dirs"), "--out", str(out), "--rca-steps", "3",
               "--rca-batches", "2", "--batch-size", "8", "--rca-pairs", "16", "--rca-resolution", "8",
               "--no-rescoring"])  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("estimated ") and " min for 1 direction sets" in lines[0]
    assert lines[1].startswith("coordinate: RCA ") and "fast" in lines[1]
    assert (
        "| coordinate | 3 |" in (out / "report.md").read_text()
        and "| fast | 3 | 16 |" in (out / "report.md").read_text()
    )
