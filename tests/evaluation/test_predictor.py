"""The factor predictor model: outputs and units, input validation, save/load."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sefa_plugin.data import FACTOR_NAMES, FACTOR_RANGES, render_scenes
from sefa_plugin.evaluation import FactorPredictor

CONTINUOUS = ("scale", "rotation", "x", "y", "lighting", "floor_height")


@pytest.fixture(scope="module")
def tiny() -> FactorPredictor:
    torch.manual_seed(0)
    return FactorPredictor(channels=(4, 8), feature_dim=16).eval()


def test_forward_and_feature_shapes(tiny):
    images = torch.rand(5, 3, 64, 64) * 2 - 1
    raw = tiny(images)
    assert set(raw) == set(FACTOR_NAMES)
    assert raw["background_hue"].shape == (5, 2) and raw["object_hue"].shape == (5, 2)
    assert raw["shape"].shape == (5, 3) and raw["rotation"].shape == (5, 2)  # rotation goes round a circle
    assert all(raw[n].shape == (5,) for n in ("scale", "x", "y", "lighting", "floor_height"))
    assert tiny.features(images).shape == (5, 16)
    torch.testing.assert_close(tiny.features(images, batch_size=2), tiny.features(images).detach())
    vec = tiny.factor_vector(images, batch_size=2)
    assert vec.shape == (5, len(tiny.factor_vector_names)) == (5, 14)
    assert tiny.factor_vector_names[:2] == ["background_hue_cos", "background_hue_sin"]
    assert "shape_disc" in tiny.factor_vector_names


def test_predict_units(tiny):
    pred = tiny.predict(torch.rand(7, 3, 64, 64) * 2 - 1, batch_size=3)
    assert set(pred) == {*FACTOR_NAMES, "shape_probs"}
    assert all(v.shape[0] == 7 for v in pred.values())
    for hue in ("background_hue", "object_hue"):
        assert ((pred[hue] >= 0) & (pred[hue] < 1)).all()
    assert pred["shape"].dtype == torch.long and set(pred["shape"].tolist()) <= {0, 1, 2}
    torch.testing.assert_close(pred["shape_probs"].sum(dim=1), torch.ones(7))
    for name in CONTINUOUS:
        lo, hi = FACTOR_RANGES[name]
        assert ((pred[name] >= lo) & (pred[name] <= hi)).all(), name
    empty = tiny.predict(torch.zeros(0, 3, 64, 64))
    assert set(empty) == set(pred) and all(len(v) == 0 for v in empty.values())
    assert tiny.factor_vector(torch.zeros(0, 3, 64, 64)).shape == (0, 14)


def test_overshooting_pixels_are_scored_as_shown(tiny):
    # A generator's raw output leaves [-1, 1] a little; the predictor scores the clamped image.
    images = torch.randn(4, 3, 64, 64) * 1.5
    assert (images.abs() > 1).any()
    clamped = images.clamp(-1, 1)
    torch.testing.assert_close(tiny.features(images), tiny.features(clamped))
    for key, value in tiny.predict(images).items():
        torch.testing.assert_close(value, tiny.predict(clamped)[key], msg=key)


def test_decode_inverts_targets(tiny):
    batch = render_scenes(range(50), seed=5, resolution=16)
    targets = tiny.encode_targets(batch.factors)
    raw = dict(targets, shape=torch.nn.functional.one_hot(targets["shape"], 3).float() * 20)
    dec = tiny.decode(raw)
    for j, name in enumerate(FACTOR_NAMES):
        true = batch.factors[:, j]
        if name == "shape":
            assert torch.equal(dec[name], true.long())
        elif name.endswith("hue"):
            d = (dec[name] - true).abs() % 1.0
            assert torch.minimum(d, 1 - d).max() < 1e-5, name
        else:
            torch.testing.assert_close(dec[name], true, atol=1e-4, rtol=0, msg=name)


def test_bad_inputs(tiny):
    with pytest.raises(ValueError, match=r"`images` must have shape \[N, 3, 64, 64\]"):
        tiny.predict(torch.zeros(2, 3, 32, 32))  # another resolution: refused, not resized
    with pytest.raises(ValueError, match="`images`"):
        tiny(torch.zeros(2, 1, 64, 64))
    with pytest.raises(ValueError, match="`images`"):
        tiny.features(torch.zeros(3, 64, 64))
    with pytest.raises(ValueError, match=r"`images`.*floating"):
        tiny.predict(torch.zeros(2, 3, 64, 64, dtype=torch.uint8))
    with pytest.raises(TypeError, match="`images`"):
        tiny.predict([[0.0]])
    with pytest.raises(ValueError, match="`batch_size`"):
        tiny.predict(torch.zeros(1, 3, 64, 64), batch_size=0)
    with pytest.raises(ValueError, match="`factor_kinds`"):
        FactorPredictor(factor_kinds={**dict.fromkeys(FACTOR_NAMES, "continuous"), "shape": "ordinal"})
    with pytest.raises(ValueError, match="`periodic_factors`"):
        FactorPredictor(periodic_factors=("object_hue",))
    with pytest.raises(ValueError, match="`channels`"):
        FactorPredictor(img_resolution=8, channels=(4, 4, 4, 4))


def test_save_load_roundtrip(tiny, tmp_path: Path):
    tiny.save_pretrained(tmp_path / "pred")
    files = {p.name for p in (tmp_path / "pred").iterdir()}
    assert files == {"config.json", "diffusion_pytorch_model.safetensors"}
    loaded = FactorPredictor.from_pretrained(tmp_path / "pred")
    assert loaded.factor_names == tiny.factor_names and loaded.config.channels == [4, 8]
    images = torch.rand(3, 3, 64, 64) * 2 - 1
    for key, value in tiny.predict(images).items():
        torch.testing.assert_close(loaded.predict(images)[key], value, msg=key)
