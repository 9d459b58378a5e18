"""Re-scoring: factor changes in comparable units, the matrix, and labels from the predictor."""

from __future__ import annotations

import pytest
import torch

from sefa_plugin import DEFAULT_MODEL, DEFAULT_PREDICTOR, SefaPipeline
from sefa_plugin.data import FACTOR_NAMES, render_factors, sample_factors
from sefa_plugin.evaluation import FactorPredictor
from sefa_plugin.evaluation.rescoring import factor_change, rescore_directions


def _pred(**values) -> dict[str, torch.Tensor]:
    base = {name: torch.zeros(1) for name in FACTOR_NAMES}
    base["shape"] = torch.zeros(1, dtype=torch.long)
    base["shape_probs"] = torch.tensor([[1.0, 0.0, 0.0]])
    base.update({k: torch.as_tensor(v).reshape(1, *torch.as_tensor(v).shape) for k, v in values.items()})
    return base


def test_factor_change_units():
    col = {n: i for i, n in enumerate(FACTOR_NAMES)}
    same = factor_change(_pred(), _pred())
    assert torch.all(same == 0)
    # Hues wrap around: 0.95 → 0.05 is a 0.1 turn = 0.4 of the mean random distance (0.25).
    hue = factor_change(_pred(object_hue=0.95), _pred(object_hue=0.05))
    assert hue[0, col["object_hue"]] == pytest.approx(0.4, abs=1e-5)
    # x over its whole range [0.25, 0.75] is 3x the mean random change (a third of the range).
    x = factor_change(_pred(x=0.25), _pred(x=0.75))
    assert x[0, col["x"]] == pytest.approx(3.0, abs=1e-5)
    # Rotation is periodic (90°) and ignored for discs.
    rot = factor_change(_pred(rotation=-44.0), _pred(rotation=44.0))
    assert rot[0, col["rotation"]] == pytest.approx(2.0 / 22.5, abs=1e-5)
    disc = factor_change(_pred(rotation=-20.0, shape=torch.tensor(1)), _pred(rotation=20.0))
    assert disc[0, col["rotation"]] == 0
    # A full class swap is 1.5x the mean random change of 3 classes (2/3).
    shape = factor_change(_pred(), _pred(shape_probs=torch.tensor([0.0, 1.0, 0.0])))
    assert shape[0, col["shape"]] == pytest.approx(1.5, abs=1e-5)


def test_predictor_sees_the_factor_that_moves():
    predictor = FactorPredictor.from_pretrained(DEFAULT_PREDICTOR)
    f = torch.from_numpy(sample_factors(range(16), seed=5)).float()
    moved = f.clone()
    moved[:, FACTOR_NAMES.index("object_hue")] = (moved[:, FACTOR_NAMES.index("object_hue")] + 0.3) % 1.0
    change = factor_change(predictor.predict(render_factors(f)), predictor.predict(render_factors(moved))).mean(0)
    assert int(change.argmax()) == FACTOR_NAMES.index("object_hue")


def test_rescoring_matrix_on_embedded_model():
    pipe = SefaPipeline.from_pretrained(DEFAULT_MODEL)
    pipe.set_progress_bar_config(disable=True)
    d = pipe.factorize(num_directions=3)
    result = rescore_directions(pipe, d, FactorPredictor.from_pretrained(DEFAULT_PREDICTOR), num_samples=4)
    assert result.matrix.shape == (3, len(FACTOR_NAMES)) and torch.all(result.matrix >= 0)
    name, share = result.top_factor(0)
    assert name in FACTOR_NAMES and 0 < share <= 1
    assert result.to_markdown().count("\n") == 4
    with pytest.raises(ValueError, match="strength"):
        rescore_directions(pipe, d, None, strength=0)


def test_disentanglement_of_a_known_matrix():
    from sefa_plugin.evaluation.rescoring import RescoringResult, disentanglement, disentanglement_table

    # Rows: directions; columns: factors. d0 moves scale 4x more than anything else; d1 moves x most but
    # also y nearly as much; nothing moves y more than d1 does, and d1 moves x more than y.
    m = torch.tensor([[0.8, 0.1, 0.2], [0.1, 0.9, 0.6], [0.05, 0.3, 0.1]])
    r = RescoringResult(m, ("scale", "x", "y"), ["d0", "d1", "d2"], 3.0)
    scores = {s.factor: s for s in disentanglement(r)}
    assert scores["scale"].label == "d0" and scores["scale"].ratio == pytest.approx(4.0)
    assert scores["scale"].side_factor == "y" and scores["scale"].recovered
    assert scores["x"].direction == 1 and scores["x"].ratio == pytest.approx(1.5) and not scores["x"].recovered
    assert scores["y"].direction == 1 and scores["y"].ratio == pytest.approx(0.6 / 0.9)
    assert [s.factor for s in disentanglement(r, ["y"])] == ["y"]
    table = disentanglement_table({"m": r})
    assert "| m | 0.80 ×4.0 (#0) ✓ | 0.90 ×1.5 (#1) | 0.60 ×0.7 (#1) | 1/3 |" in table
    # A direction that changes nothing else has an infinite ratio.
    clean = RescoringResult(torch.tensor([[0.5, 0.0]]), ("scale", "x"), ["d0"], 3.0)
    assert disentanglement(clean)[0].ratio == float("inf")
    with pytest.raises(ValueError, match="`factors`"):
        disentanglement(r, ["hue"])
    with pytest.raises(ValueError, match=r"`result\.matrix`"):
        disentanglement(RescoringResult(torch.zeros(2, 1), ("scale",), ["a", "b"], 3.0))
