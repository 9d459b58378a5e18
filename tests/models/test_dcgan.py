"""DCGANGenerator: SN-GAN layout, reference forward, the z-space interface, I/O, errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from sefa_plugin.models import DCGANGenerator, EditableGenerator


def tiny_dcgan(seed: int = 0, **kwargs) -> DCGANGenerator:
    torch.manual_seed(seed)
    cfg = dict(z_dim=8, img_resolution=16, channel_base=128, channel_max=16)
    cfg.update(kwargs)
    g = DCGANGenerator(**cfg)
    with torch.no_grad():  # non-trivial batch-norm statistics, as after training
        for name, buf in g.named_buffers():
            if name.endswith("running_mean"):
                buf.normal_(0, 0.01)
            elif name.endswith("running_var"):
                buf.uniform_(0.5, 1.5)
    return g.eval()


def public_config(model: DCGANGenerator) -> dict:
    return {k: v for k, v in model.config.items() if not k.startswith("_")}


def reference_forward(g: DCGANGenerator, z: torch.Tensor) -> torch.Tensor:
    """linear → BN → ReLU → reshape → (deconv 4/2/1 → BN → ReLU)* → conv 3×3 → tanh, from the state dict."""
    sd = g.state_dict()

    def bn(x: torch.Tensor, name: str) -> torch.Tensor:
        return F.batch_norm(
            x, sd[f"{name}.running_mean"], sd[f"{name}.running_var"], sd[f"{name}.weight"], sd[f"{name}.bias"]
        )

    x = F.relu(bn(F.linear(z, sd["l0.weight"], sd["l0.bias"]), "bn0")).reshape(z.shape[0], -1, 4, 4)
    k = 1
    while f"dc{k}.weight" in sd:
        x = F.conv_transpose2d(x, sd[f"dc{k}.weight"], sd[f"dc{k}.bias"], stride=2, padding=1)
        x = F.relu(bn(x, f"bn{k}"))
        k += 1
    return torch.tanh(F.conv2d(x, sd[f"c{k}.weight"], sd[f"c{k}.bias"], padding=1))


def test_default_config_is_sngan_cifar():
    g = DCGANGenerator()
    shapes = {k: tuple(v.shape) for k, v in g.state_dict().items() if k.endswith("weight")}
    assert shapes == {
        "l0.weight": (512 * 16, 128),
        "bn0.weight": (512 * 16,),
        "dc1.weight": (512, 256, 4, 4),
        "bn1.weight": (256,),
        "dc2.weight": (256, 128, 4, 4),
        "bn2.weight": (128,),
        "dc3.weight": (128, 64, 4, 4),
        "bn3.weight": (64,),
        "c4.weight": (3, 64, 3, 3),
    }
    assert g.config.z_dim == 128 and g.config.img_resolution == 32


@pytest.mark.parametrize("resolution", [4, 8, 16])
def test_shapes_and_reference(resolution):
    g = tiny_dcgan(img_resolution=resolution)
    assert isinstance(g, EditableGenerator) and g.latent_space == "z"
    assert g.num_ws == 1 and g.latent_dim == 8 and g.layer_resolutions() == [4]
    z = torch.randn(3, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        img = g(z)
        assert img.shape == (3, 3, resolution, resolution)
        assert img.abs().max() <= 1
        assert torch.allclose(img, reference_forward(g, z), atol=1e-5)


def test_latent_interface():
    g = tiny_dcgan()
    (w,) = g.latent_weights([0])
    assert w.shape == (16 * 16, 8) and torch.equal(w, g.l0.weight) and not w.requires_grad
    z = torch.randn(2, 8)
    lat = g.sample_latents(z)
    assert lat.shape == (2, 1, 8) and torch.equal(lat[:, 0], z)
    with torch.no_grad():
        ref = g(z)
        assert torch.equal(g.synthesize(lat), ref)
        for mode in ("const", "random", "none"):
            assert torch.equal(g.synthesize(lat, noise_mode=mode), ref)
        assert not torch.allclose(g.synthesize(lat + 2 * torch.eye(8)[0]), ref)
    assert g.layer_groups() == {"coarse": [0], "middle": [], "fine": []}


def test_save_and_load_round_trip(tmp_path):
    g = tiny_dcgan()
    g.save_pretrained(tmp_path / "dcgan")
    loaded = DCGANGenerator.from_pretrained(tmp_path / "dcgan")
    assert public_config(loaded) == public_config(g) and not loaded.training
    z = torch.randn(2, 8)
    with torch.no_grad():
        assert torch.equal(loaded(z), g(z))


def test_bad_input():
    for res in (2, 24, 0):
        with pytest.raises(ValueError, match="`img_resolution`"):
            DCGANGenerator(z_dim=4, img_resolution=res, channel_base=64, channel_max=4)
    with pytest.raises(ValueError, match="`channel_base`"):
        DCGANGenerator(z_dim=4, img_resolution=16, channel_base=8)
    g = tiny_dcgan()
    z = torch.randn(2, 8)
    with pytest.raises(ValueError, match="`truncation_psi`"):
        g(z, truncation_psi=0.7)
    with pytest.raises(ValueError, match="`c`"):
        g(z, c=torch.ones(2, 1))
    with pytest.raises(ValueError, match="`noise_mode`"):
        g(z, noise_mode="fixed")
    with pytest.raises(ValueError, match="`z`"):
        g(torch.randn(2, 3))
    with pytest.raises(ValueError, match="`latents`"):
        g.synthesize(torch.randn(2, 8))
    with pytest.raises(ValueError, match="`layers`"):
        g.latent_weights([0, 1])


# ------------------------------------------------------------------ the PyTorch-tutorial form
def test_tutorial_layout_matches_the_tutorial_indices():
    from sefa_plugin.models.dcgan import DCGANTutorialGenerator

    g = DCGANTutorialGenerator()  # nz=100, ngf=64, 64×64 RGB, as in the tutorial
    shapes = {k: tuple(v.shape) for k, v in g.state_dict().items() if k.endswith("weight")}
    assert shapes["main.0.weight"] == (100, 512, 4, 4) and shapes["main.12.weight"] == (64, 3, 4, 4)
    assert [type(m).__name__ for m in g.main][-3:] == ["ReLU", "ConvTranspose2d", "Tanh"]
    assert not any(k.endswith(".bias") and k.startswith(("main.0.", "main.3.")) for k in g.state_dict())


def test_tutorial_save_load_and_latent_weights(tmp_path):
    from sefa_plugin.models.dcgan import DCGANTutorialGenerator

    torch.manual_seed(0)
    g = DCGANTutorialGenerator(z_dim=8, img_resolution=16, ngf=4, conv_bias=True).eval()
    z = torch.randn(3, 8)
    g.save_pretrained(tmp_path / "g")
    loaded = DCGANTutorialGenerator.from_pretrained(tmp_path / "g").eval()
    torch.testing.assert_close(loaded(z), g(z), rtol=0, atol=0)
    (matrix,) = g.latent_weights([0])  # [C·16, z_dim]: the first layer applied to z as a matrix
    first = torch.nn.functional.conv_transpose2d(z[:, :, None, None], g.main[0].weight)  # [N, C, 4, 4]
    torch.testing.assert_close(first.flatten(1), z @ matrix.T)
    assert isinstance(g, EditableGenerator) and g.num_ws == 1 and g.latent_space == "z"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(img_resolution=4), "`img_resolution` must be ≥ 8"),
        (dict(img_resolution=48), "`img_resolution` must be a power of two"),
        (dict(ngf=0), r"`ngf` must be an integer in \[1, 16384\]"),
        (dict(img_resolution=1024, ngf=256), "must be ≤ 16384"),
        (dict(img_resolution=1024, ngf=128), "more than the 268435456 allowed"),
        (dict(z_dim=10**7), r"`z_dim` must be an integer in \[1, 4096\]"),
    ],
)
def test_tutorial_bad_config(kwargs, match):
    from sefa_plugin.models.dcgan import DCGANTutorialGenerator

    with pytest.raises(ValueError, match=match):
        DCGANTutorialGenerator(**kwargs)
