"""GANPipeline.invert end to end on a tiny model; the perceptual terms; bad arguments name themselves."""

from __future__ import annotations

import pytest
import torch
from factories import tiny_stylegan2

from sefa_plugin import GANPipeline
from sefa_plugin.evaluation.predictor import FactorPredictor
from sefa_plugin.inversion import Inversion, VGG16Perceptual, resolve_perceptual
from sefa_plugin.inversion.perceptual import _VGG16_LAYOUT, VGG16_FILE
from sefa_plugin.utils.images import to_pil


@pytest.fixture
def pipe(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # an empty torchvision cache
    p = GANPipeline(generator=tiny_stylegan2(trained_like=True))
    p.set_progress_bar_config(disable=True)
    return p


def test_invert_and_edit_round_trip(pipe, tmp_path):
    with torch.no_grad():
        target = pipe.generator.synthesize(pipe.generator.sample_latents(pipe.generator.z_from_seeds([3])))
    big = to_pil(target)[0].resize((40, 24))
    inv = pipe.invert([target[0], big], num_steps=30, generator=torch.Generator().manual_seed(0), mean_samples=200)
    assert inv.latents.shape == (2, pipe.generator.num_ws, pipe.generator.latent_dim)
    assert inv.resized == [False, True] and inv.perceptual == "none" and inv.latent_space == "w+"
    assert inv.base_model["class_name"] == "StyleGAN2Generator" and len(inv.base_model["weights_sha256"]) == 64
    assert inv.losses.shape == (2, 30) and len(inv.images) == len(inv.targets) == 2
    assert inv.settings["num_steps"] == 30 and inv.settings["init"] == "search"
    again = pipe.invert([target[0], big], num_steps=30, generator=torch.Generator().manual_seed(0), mean_samples=200)
    assert torch.equal(again.latents, inv.latents)  # deterministic for a seed
    inv.save_pretrained(tmp_path / "inv")
    back = Inversion.from_pretrained(tmp_path / "inv")
    edited = back.latents_for(pipe.generator) + 0.5
    assert back.render(pipe.generator, edited).shape == (2, 3, 16, 16)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(num_steps=0), ValueError, "`num_steps`"),
        (dict(space="q"), ValueError, "`space`"),
        (dict(perceptual="clip"), ValueError, "`perceptual`"),
        (dict(perceptual="lpips"), FileNotFoundError, "`perceptual`='lpips' needs VGG16 weights"),
        (dict(perceptual="predictor"), ValueError, "`perceptual`='predictor' needs a factor predictor"),
        (dict(batch_size=0), ValueError, "`batch_size`"),
        (dict(learning_rat=0.1), TypeError, "Unknown inversion settings"),
        (dict(class_label=1), ValueError, "`class_label`"),
    ],
)
def test_bad_arguments(pipe, kwargs, error, match):
    with pytest.raises(error, match=match):
        pipe.invert(torch.zeros(3, 16, 16), **kwargs)


def test_bad_images(pipe):
    with pytest.raises(ValueError, match="`images` must hold at least one image"):
        pipe.invert([])


def test_predictor_term(pipe):
    torch.manual_seed(0)
    predictor = FactorPredictor(img_resolution=16, channels=(8, 16), feature_dim=8)
    inv = pipe.invert(torch.zeros(3, 16, 16), num_steps=3, predictor=predictor, mean_samples=100)
    assert inv.perceptual == "predictor"
    term = resolve_perceptual("predictor", predictor=predictor, img_resolution=16)
    x, y = torch.zeros(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    assert term.distance(x, x).abs().max() < 1e-6 and (term.distance(x, y) > 0).all()
    with pytest.raises(ValueError, match="for 32² images"):
        resolve_perceptual("predictor", predictor=predictor, img_resolution=32)


def write_vgg16(path):
    """A random state dict in torchvision's VGG16 layout (`features.{i}.weight/bias`, plus a classifier key)."""
    gen = torch.Generator().manual_seed(0)
    state, idx, in_ch = {}, 0, 3
    for v in _VGG16_LAYOUT:
        if v == "M":
            idx += 1
            continue
        state[f"features.{idx}.weight"] = torch.randn(v, in_ch, 3, 3, generator=gen) * (2 / (9 * in_ch)) ** 0.5
        state[f"features.{idx}.bias"] = torch.zeros(v)
        idx, in_ch = idx + 2, v
    state["classifier.0.bias"] = torch.zeros(4)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)


def test_vgg16_from_torchvisions_cache_and_lpips_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    assert resolve_perceptual("auto") is None  # nothing on the machine: pixel losses only, nothing downloaded
    write_vgg16(tmp_path / "torch" / "hub" / "checkpoints" / VGG16_FILE)
    term = resolve_perceptual("auto")
    assert isinstance(term, VGG16Perceptual) and term.name == "vgg16"
    x, y = torch.zeros(1, 3, 32, 32), torch.rand(1, 3, 32, 32) * 2 - 1
    assert term.distance(x, x).item() == pytest.approx(0, abs=1e-6) and term.distance(x, y).item() > 0
    lin = {f"lin{k}.model.1.weight": torch.rand(1, c, 1, 1) for k, c in enumerate((64, 128, 256, 512, 512))}
    torch.save(lin, tmp_path / "vgg.pth")
    assert resolve_perceptual("lpips", lpips_weights=tmp_path / "vgg.pth").name == "lpips-vgg16"
    torch.save({"lin0.model.1.weight": torch.rand(1, 3, 1, 1)}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="`lpips_weights`"):
        resolve_perceptual("lpips", lpips_weights=tmp_path / "bad.pth")
    (tmp_path / "junk.pth").write_bytes(b"junk")
    with pytest.raises(ValueError, match="`vgg16_weights`"):
        resolve_perceptual("lpips", vgg16_weights=tmp_path / "junk.pth")
