"""StyleGAN2Generator: shapes, truncation, noise modes, modconv paths, W+ interface, I/O, errors."""

from __future__ import annotations

import json
import math

import pytest
import torch
from factories import tiny_stylegan2 as _tiny

from sefa_plugin.models import EditableGenerator, StyleGAN2Generator


def tiny_stylegan2(seed: int = 0, **kwargs) -> StyleGAN2Generator:
    return _tiny(seed, trained_like=True, **kwargs)


def public_config(model: StyleGAN2Generator) -> dict:
    """The config as stored in JSON (tuples become lists), without diffusers' private keys."""
    return json.loads(json.dumps({k: v for k, v in model.config.items() if not k.startswith("_")}))


@pytest.fixture(scope="module")
def g() -> StyleGAN2Generator:
    return tiny_stylegan2()


@pytest.fixture
def z() -> torch.Tensor:
    return torch.randn(3, 16, generator=torch.Generator().manual_seed(1))


def test_shapes(g, z):
    assert isinstance(g, EditableGenerator) and g.latent_space == "w+"
    assert g.num_ws == 6 and g.latent_dim == 16
    with torch.no_grad():
        ws = g.sample_latents(z)
        img = g(z)
    assert ws.shape == (3, 6, 16)
    assert torch.equal(ws, ws[:, :1].expand_as(ws))  # without truncation every layer gets the same w
    assert img.shape == (3, 3, 16, 16) and torch.isfinite(img).all()
    weights = g.latent_weights(range(g.num_ws))
    assert [tuple(w.shape) for w in weights] == [(16, 16)] * 6
    assert all(not w.requires_grad for w in weights)


def test_truncation_psi_zero_gives_the_same_image(g, z):
    with torch.no_grad():
        img = g(z, truncation_psi=0)
        assert torch.allclose(img, img[:1].expand_as(img), atol=1e-6)
        ws = g.sample_latents(z, truncation_psi=0)
        assert torch.allclose(ws, g.mapping.w_avg.expand_as(ws))
        assert not torch.allclose(g(z), g(z)[:1].expand_as(img))


def test_truncation_cutoff_only_affects_the_first_layers(g, z):
    with torch.no_grad():
        plain = g.sample_latents(z)
        cut = g.sample_latents(z, truncation_psi=0.5, truncation_cutoff=2)
    assert torch.allclose(cut[:, :2], g.mapping.w_avg.lerp(plain[:, :2], 0.5), atol=1e-6)
    assert torch.equal(cut[:, 2:], plain[:, 2:])
    assert not torch.allclose(cut[:, :2], plain[:, :2])


def test_noise_modes(g, z):
    with torch.no_grad():
        const = g(z, noise_mode="const")
        assert torch.equal(g(z, noise_mode="const"), const)
        r1, r2 = g(z, noise_mode="random"), g(z, noise_mode="random")
        assert not torch.allclose(r1, r2)
        none = g(z, noise_mode="none")
        assert torch.equal(g(z, noise_mode="none"), none) and not torch.allclose(none, const)
        # Without noise strength, the three modes agree.
        quiet = tiny_stylegan2()
        for name, p in quiet.named_parameters():
            if name.endswith("noise_strength"):
                p.zero_()
        assert torch.allclose(quiet(z, noise_mode="random"), quiet(z, noise_mode="none"), atol=1e-6)
    with pytest.raises(ValueError, match="`noise_mode`"):
        g(z, noise_mode="fixed")


def test_fused_and_unfused_modconv_agree(g, z):
    with torch.no_grad():
        assert torch.allclose(g(z, fused_modconv=True), g(z, fused_modconv=False), atol=1e-5)


def test_w_plus_synthesis_equals_forward(g, z):
    with torch.no_grad():
        ws = g.sample_latents(z, truncation_psi=0.7, truncation_cutoff=3)
        assert torch.equal(g.synthesize(ws), g(z, truncation_psi=0.7, truncation_cutoff=3))
        # Per-layer latents are used per layer: changing only the last one (final ToRGB) changes the image.
        edited = ws.clone()
        edited[:, -1] += 1
        assert not torch.allclose(g.synthesize(edited), g.synthesize(ws))
    with pytest.raises(ValueError, match="`ws`"):
        g.synthesize(ws[:, :5])


def test_save_and_load_round_trip(g, z, tmp_path):
    g.save_pretrained(tmp_path / "sg2")
    loaded = StyleGAN2Generator.from_pretrained(tmp_path / "sg2")
    assert public_config(loaded) == public_config(g)
    assert torch.equal(loaded.mapping.w_avg, g.mapping.w_avg)
    with torch.no_grad():
        assert torch.equal(loaded(z, truncation_psi=0.5), g(z, truncation_psi=0.5))


def test_conditioning_requires_c(z):
    g = tiny_stylegan2(c_dim=3)
    with pytest.raises(ValueError, match="`c`"):
        g(z)
    with pytest.raises(ValueError, match="`c`"):
        g(z, c=torch.zeros(3, 2))
    with torch.no_grad():
        a, b = g(z, c=torch.eye(3)[[0, 0, 0]]), g(z, c=torch.eye(3)[[1, 1, 1]])
    assert a.shape == (3, 3, 16, 16) and not torch.allclose(a, b)


@pytest.mark.parametrize("resolution", [4, 8, 16, 64, 1024])
def test_layer_resolutions_and_num_ws(resolution):
    g = StyleGAN2Generator(
        z_dim=4, w_dim=4, img_resolution=resolution, channel_base=resolution, channel_max=2, mapping_layers=1
    )
    log2 = int(math.log2(resolution))
    assert g.num_ws == 2 * log2 - 2
    expected = [4] + [2**i for i in range(3, log2 + 1) for _ in range(2)] + [resolution]
    assert g.layer_resolutions() == expected and len(expected) == g.num_ws
    assert len(g.latent_weights(range(g.num_ws))) == g.num_ws


def test_bad_img_resolution():
    for res in (0, 2, 3, 12, 100):
        with pytest.raises(ValueError, match="`img_resolution`"):
            StyleGAN2Generator(z_dim=4, w_dim=4, img_resolution=res, channel_base=64, channel_max=4)
    with pytest.raises(ValueError, match="`z_dim`"):
        StyleGAN2Generator(z_dim=0, w_dim=4, img_resolution=8, channel_base=64, channel_max=4)


def test_bad_z(g):
    with pytest.raises(ValueError, match="`z`"):
        g(torch.randn(2, 15))
