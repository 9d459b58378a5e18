"""PGGANGenerator: architecture against an independent reference, the z-space interface, I/O, errors."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from sefa_plugin.models import EditableGenerator, PGGANGenerator


def tiny_pggan(seed: int = 0, **kwargs) -> PGGANGenerator:
    torch.manual_seed(seed)
    cfg = dict(z_dim=8, img_resolution=16, channel_base=128, channel_max=16)
    cfg.update(kwargs)
    g = PGGANGenerator(**cfg).eval()
    with torch.no_grad():  # non-zero biases so that the reference check covers them
        for name, p in g.named_parameters():
            if name.endswith("bias"):
                p.normal_(0, 0.1)
    return g


def public_config(model: PGGANGenerator) -> dict:
    return {k: v for k, v in model.config.items() if not k.startswith("_")}


def pixel_norm(x: torch.Tensor) -> torch.Tensor:
    return x / torch.sqrt(x.pow(2).mean(dim=1, keepdim=True) + 1e-8)


def reference_forward(g: PGGANGenerator, z: torch.Tensor) -> torch.Tensor:
    """The paper's formulation, written from the state dict: a dense first layer (TF layout) and pixel
    norm *after* every activation; equalized lr with gain √2 (ToRGB: 1) over the fan-in."""
    sd = g.state_dict()
    n, z_dim = z.shape
    w0 = sd["layer0.weight"]  # [C, z_dim, 4, 4], stored as a kernel-4 conv with padding 3
    c0 = w0.shape[0]
    dense = w0.flip(2, 3).permute(0, 2, 3, 1).reshape(c0 * 16, z_dim) * math.sqrt(2) / math.sqrt(16 * z_dim)
    x = F.linear(pixel_norm(z), dense).reshape(n, c0, 4, 4) + sd["layer0.bias"].reshape(1, -1, 1, 1)
    x = pixel_norm(F.leaky_relu(x, 0.2))
    for i in range(1, g.num_layers):
        w = sd[f"layer{i}.weight"]
        if i % 2 == 0:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        x = F.conv2d(x, w * math.sqrt(2) / math.sqrt(w[0].numel()), sd[f"layer{i}.bias"], padding=1)
        x = pixel_norm(F.leaky_relu(x, 0.2))
    w = sd["output.weight"]
    return F.conv2d(x, w / math.sqrt(w.shape[1]), sd["output.bias"])


def test_shapes_layout_and_interface():
    g = tiny_pggan()
    assert isinstance(g, EditableGenerator) and g.latent_space == "z"
    assert g.num_ws == 1 and g.latent_dim == 8 and g.layer_resolutions() == [4]
    assert g.layer_groups() == {"coarse": [0], "middle": [], "fine": []}
    assert g.num_layers == 6 and [g.channels(r) for r in (4, 8, 16)] == [16, 16, 8]
    shapes = {k: tuple(v.shape) for k, v in g.state_dict().items()}
    assert shapes["layer0.weight"] == (16, 8, 4, 4)  # genforce's layout
    assert shapes["layer1.weight"] == (16, 16, 3, 3) and shapes["layer4.weight"] == (8, 16, 3, 3)
    assert shapes["output.weight"] == (3, 8, 1, 1)
    assert sorted(k.split(".")[0] for k in shapes) == sorted([f"layer{i}" for i in range(6)] * 2 + ["output"] * 2)
    img = g(torch.randn(3, 8))
    assert img.shape == (3, 3, 16, 16) and img.dtype == torch.float32


@pytest.mark.parametrize("resolution", [4, 8, 16])
def test_matches_independent_reference(resolution):
    g = tiny_pggan(img_resolution=resolution)
    z = torch.randn(4, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.allclose(g(z), reference_forward(g, z), atol=1e-5)


def test_first_layer_dense_view_equals_the_conv():
    g = tiny_pggan()
    z = pixel_norm(torch.randn(5, 8))
    with torch.no_grad():
        conv = F.conv2d(z.reshape(5, 8, 1, 1), g.layer0.effective_weight(), padding=3)  # genforce's form
        (dense,) = g.latent_weights([0])
    assert dense.shape == (16 * 16, 8) and not dense.requires_grad
    assert torch.allclose(F.linear(z, dense).reshape(5, 16, 4, 4), conv, atol=1e-6)
    # The official SeFa flattening, transposed.
    official = g.layer0.effective_weight().detach().flip(2, 3).permute(1, 0, 2, 3).flatten(1)
    assert torch.equal(dense, official.T)


def test_latents_are_pixel_normalised_z():
    g = tiny_pggan()
    z = torch.randn(4, 8)
    lat = g.sample_latents(z)
    assert lat.shape == (4, 1, 8)
    assert torch.allclose(lat.pow(2).mean(dim=2), torch.ones(4, 1), atol=1e-5)
    with torch.no_grad():
        assert torch.equal(g.synthesize(lat), g(z))
        # Pixel norm makes the output invariant to the scale of z.
        assert torch.allclose(g(z), g(3 * z), atol=1e-5)
        # Edits along a direction change the image.
        assert not torch.allclose(g.synthesize(lat + torch.eye(8)[0]), g.synthesize(lat))


def test_noise_mode_and_truncation():
    g = tiny_pggan()
    z = torch.randn(2, 8)
    with torch.no_grad():
        ref = g(z)
        for mode in ("const", "random", "none"):
            assert torch.equal(g(z, noise_mode=mode), ref)
        assert torch.equal(g(z, truncation_cutoff=3), ref)
    with pytest.raises(ValueError, match="`noise_mode`"):
        g(z, noise_mode="fixed")
    for psi in (0.5, 0.0, 2.0):
        with pytest.raises(ValueError, match="`truncation_psi`"):
            g.sample_latents(z, truncation_psi=psi)


def test_conditional_model_needs_c():
    g = tiny_pggan(c_dim=3)
    assert g.layer0.weight.shape == (16, 11, 4, 4)
    assert g.latent_weights([0])[0].shape == (256, 8)  # the label columns are not part of the latent
    z = torch.randn(2, 8)
    with pytest.raises(ValueError, match="`c`"):
        g(z)
    with pytest.raises(ValueError, match="`c`"):
        g(z, c=torch.zeros(2, 4))
    c0, c2 = torch.eye(3)[[0, 0]], torch.eye(3)[[2, 2]]
    with torch.no_grad():
        a, b = g(z, c0), g(z, c2)
        assert a.shape == (2, 3, 16, 16) and not torch.allclose(a, b)
        assert torch.equal(g.synthesize(g.sample_latents(z, c0), c=c0), a)
    unconditional = tiny_pggan()
    with pytest.raises(ValueError, match="`c`"):
        unconditional(z, c=c0)


def test_save_and_load_round_trip(tmp_path):
    g = tiny_pggan(c_dim=2)
    g.save_pretrained(tmp_path / "pggan")
    assert (tmp_path / "pggan" / "diffusion_pytorch_model.safetensors").is_file()
    loaded = PGGANGenerator.from_pretrained(tmp_path / "pggan")
    assert public_config(loaded) == public_config(g)
    z, c = torch.randn(2, 8), torch.eye(2)
    with torch.no_grad():
        assert torch.equal(loaded(z, c), g(z, c))


def test_bad_input():
    for res in (2, 12, 0):
        with pytest.raises(ValueError, match="`img_resolution`"):
            PGGANGenerator(z_dim=4, img_resolution=res, channel_base=64, channel_max=4)
    with pytest.raises(ValueError, match="`channel_base`"):
        PGGANGenerator(z_dim=4, img_resolution=16, channel_base=8, channel_max=4)
    with pytest.raises(ValueError, match="`z_dim`"):
        PGGANGenerator(z_dim=0, img_resolution=8, channel_base=64, channel_max=4)
    with pytest.raises(ValueError, match="`c_dim`"):
        PGGANGenerator(z_dim=4, c_dim=-1, img_resolution=8, channel_base=64, channel_max=4)
    g = tiny_pggan()
    with pytest.raises(ValueError, match="`z`"):
        g(torch.randn(2, 9))
    with pytest.raises(ValueError, match="`latents`"):
        g.synthesize(torch.randn(2, 2, 8))
    with pytest.raises(ValueError, match="`layers`"):
        g.latent_weights([1])
