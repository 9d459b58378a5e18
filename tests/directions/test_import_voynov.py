"""GANLatentDiscovery deformators (written here in their state-dict layout) imported as directions."""

from __future__ import annotations

import json
import pathlib

import pytest
import torch
import torch.nn.functional as F
from code_payload import TouchOnLoad

from sefa_plugin import Directions
from sefa_plugin.cli import main
from sefa_plugin.directions.importers import import_directions, load_voynov_deformator
from sefa_plugin.models import DCGANGenerator


def their_shift(kind: str, state: dict[str, torch.Tensor], shift: torch.Tensor) -> torch.Tensor:
    """Their `LatentDeformator.forward` for the fixed types, re-written from the paper's definitions."""
    if kind == "linear":
        return F.linear(shift, state["linear.weight"], state.get("linear.bias"))
    if kind == "proj":
        out = F.linear(shift, state["linear.weight"], state.get("linear.bias"))
        return shift.norm(dim=1, keepdim=True) / out.norm(dim=1, keepdim=True) * out
    log = state["log_mat_half"]
    return F.linear(shift, torch.linalg.matrix_exp(log - log.T))


def direction_of(kind: str, state: dict[str, torch.Tensor], k: int, dim: int) -> torch.Tensor:
    """Unit latent shift their deformator makes for input axis `k` (the bias-free part: out(εe_k) − out(0))."""
    eps = 3.0
    shift = torch.zeros(1, dim, dtype=torch.float64)
    shift[0, k] = eps
    nobias = {name: t for name, t in state.items() if name != "linear.bias"}
    out = their_shift(kind, nobias, shift)[0]
    return out / out.norm()


def write_run(root: pathlib.Path, state: dict, args: dict, notes: str | None = None) -> pathlib.Path:
    (root / "models").mkdir(parents=True)
    (root / "args.json").write_text(json.dumps(args))
    if notes is not None:
        (root / "human_annotation.txt").write_text(notes)
    torch.save(state, root / "models" / "deformator_100.pt")
    torch.save({name: t + 1 for name, t in state.items()}, root / "models" / "deformator_20.pt")  # older step
    return root


@pytest.mark.parametrize("kind", ["linear", "proj"])
def test_linear_and_proj_columns_are_the_directions(tmp_path, kind):
    g = torch.Generator().manual_seed(0)
    state = {"linear.weight": torch.randn(8, 5, generator=g, dtype=torch.float64) * 2,
             "linear.bias": torch.randn(8, generator=g, dtype=torch.float64)}  # fmt: skip
    run = write_run(tmp_path / "run", state, {"gan_type": "SN_Anime", "deformator": kind, "shift_scale": 4.0},
                    notes="0: hair color\n3: smile\n")  # fmt: skip
    d = load_voynov_deformator(run)  # the run folder: the last step is read
    assert d.method == "imported" and d.latent_space == "z" and d.layers == [0] and len(d) == 5
    for k in range(5):
        torch.testing.assert_close(d.vectors[k].double(), direction_of(kind, state, k, 5), atol=1e-6, rtol=0)
    assert d.labels == ["hair color", "direction 1", "direction 2", "smile", "direction 4"]
    norms = state["linear.weight"].norm(dim=0)
    assert d.extra["deformator"] == kind and d.extra["source_format"] == "voynov"
    assert d.extra["shift_norms"] == pytest.approx(norms.tolist())
    assert d.extra["bias_norm"] == pytest.approx(float(state["linear.bias"].norm()))
    assert d.strength_range == pytest.approx((-4.0 * float(norms.mean()), 4.0 * float(norms.mean())))
    d.save_pretrained(tmp_path / "out")
    assert torch.equal(Directions.from_pretrained(tmp_path / "out").vectors, d.vectors)


def test_ortho_from_a_training_checkpoint_pads_to_the_generator(tmp_path):
    g = torch.Generator().manual_seed(1)
    state = {"log_mat_half": torch.randn(6, 6, generator=g, dtype=torch.float64)}
    path = tmp_path / "checkpoint.pt"
    torch.save({"step": 7, "deformator": state, "shift_predictor": {"fc.weight": torch.zeros(2, 2)}}, path)
    d = load_voynov_deformator(path)
    assert d.extra["deformator"] == "ortho" and len(d) == 6 and "shift_norms" not in d.extra
    for k in range(6):
        torch.testing.assert_close(d.vectors[k].double(), direction_of("ortho", state, k, 6), atol=1e-6, rtol=0)
    torch.testing.assert_close(d.vectors @ d.vectors.T, torch.eye(6), atol=1e-5, rtol=0)
    # A generator with a wider latent: their deformator zero-pads its output.
    wide = DCGANGenerator(z_dim=8, img_resolution=8, channel_base=64, channel_max=8)
    padded = load_voynov_deformator(path, generator=wide)
    assert padded.vectors.shape == (6, 8) and torch.equal(padded.vectors[:, 6:], torch.zeros(6, 2))
    torch.testing.assert_close(padded.vectors[:, :6], d.vectors)
    assert padded.base_model["class_name"] == "DCGANGenerator"


def test_id_needs_args_and_stylegan2_runs_edit_w(tmp_path):
    run = write_run(tmp_path / "run", {}, {"gan_type": "StyleGAN2", "deformator": "id", "directions_count": 4})
    d = load_voynov_deformator(run / "models" / "deformator_100.pt", layers="0-3")  # args.json found upwards
    assert d.latent_space == "w+" and torch.equal(d.vectors, torch.eye(4)) and d.layers == [0, 1, 2, 3]
    lone = tmp_path / "deformator_5.pt"
    torch.save({}, lone)
    with pytest.raises(ValueError, match="empty state dict: an 'id' or a 'random' deformator"):
        load_voynov_deformator(lone)
    assert len(load_voynov_deformator(lone, deformator="id", generator=DCGANGenerator(z_dim=3, img_resolution=8,
               channel_base=64, channel_max=8))) == 3  # fmt: skip


def test_random_fc_and_unknown_types_are_refused(tmp_path):
    run = write_run(tmp_path / "random", {}, {"gan_type": "ProgGAN", "deformator": "random"})
    with pytest.raises(ValueError, match=r"'random' deformator: its orthogonal matrix .* not in the saved state"):
        load_voynov_deformator(run)
    fc = tmp_path / "fc.pt"
    torch.save({"fc1.weight": torch.zeros(4, 4), "bn1.running_mean": torch.zeros(4)}, fc)
    with pytest.raises(ValueError, match=r"'fc' deformator: a nonlinear network .* fixed directions cannot"):
        load_voynov_deformator(fc)
    with pytest.raises(ValueError, match=r"`deformator` must be one of \('linear', 'proj', 'ortho', 'id'\)"):
        load_voynov_deformator(fc, deformator="spline")
    with pytest.raises(ValueError, match=r"'linear' deformator needs 'linear.weight'"):
        load_voynov_deformator(fc, deformator="linear")
    with pytest.raises(FileNotFoundError, match=r"holds no models/deformator_<step>.pt"):
        load_voynov_deformator(tmp_path)


def test_pickled_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "deformator_1.pt"
    torch.save({"linear.weight": torch.eye(4), "payload": TouchOnLoad(marker)}, path)
    with pytest.raises(ValueError, match="refused: loading it would run pickled code"):
        load_voynov_deformator(path)
    assert not marker.exists()


def test_dispatch_and_cli(tmp_path, capsys):
    path = tmp_path / "deformator_3.pt"
    torch.save({"linear.weight": torch.eye(4)[:, :3] * 2}, path)
    d = import_directions(path, format="voynov")
    assert torch.equal(d.vectors, torch.eye(4)[:3]) and d.latent_space == "z"
    assert main(["import", str(path), "--format", "voynov", "--out", str(tmp_path / "out")]) == 0
    assert "imported 3 voynov directions (z, layers [0])" in capsys.readouterr().out
    assert torch.equal(Directions.from_pretrained(tmp_path / "out").vectors, d.vectors)


def test_cli_import_for_a_model_then_edit(tmp_path, capsys):
    from sefa_plugin import SefaPipeline
    from sefa_plugin.models import SNGANResNetGenerator

    torch.manual_seed(0)
    SefaPipeline(generator=SNGANResNetGenerator(z_dim=6, img_resolution=8, channels=[8, 4]).eval()).save_pretrained(
        tmp_path / "model"
    )
    state = {"log_mat_half": torch.randn(4, 4)}  # a 4-wide deformator on a 6-wide latent: zero-padded
    run = write_run(tmp_path / "run", state, {"gan_type": "SN_Anime", "deformator": "ortho"}, notes="1: thickness\n")
    out = tmp_path / "dirs"
    assert main(["import", str(run), "--format", "voynov", "--model", str(tmp_path / "model"), "--out", str(out)]) == 0
    d = Directions.from_pretrained(out)
    assert (
        d.vectors.shape == (4, 6)
        and d.labels[1] == "thickness"
        and d.base_model["class_name"] == "SNGANResNetGenerator"
    )
    grid = tmp_path / "grid.png"
    argv = ["edit", str(tmp_path / "model"), "--directions", str(out), "--index", "1", "--out", str(grid)]
    assert main([*argv, "--truncation-psi", "1"]) == 0 and grid.is_file()
