"""StyleGANGenerator: genforce-faithful outputs, the W+ interface, SeFa weights, I/O and argument errors."""

from __future__ import annotations

import pytest
import torch

from sefa_plugin.directions import sefa_factorize
from sefa_plugin.models import EditableGenerator
from sefa_plugin.models.stylegan import StyleGANGenerator
from sefa_plugin.pipelines import SefaPipeline

TINY = dict(z_dim=16, w_dim=16, img_resolution=16, channel_base=256, channel_max=32, mapping_layers=2)
SMALL = ("bias", "apply_noise.weight", "w_avg")  # filled with 0.3 * randn, like trained values


def seeded(seed: int = 0, **kwargs) -> StyleGANGenerator:
    """A tiny generator whose every parameter and buffer is drawn, in sorted key order, from one seed.

    Independent of the module's own initialisation order, so that the official slices below stay valid.
    """
    g = StyleGANGenerator(**{**TINY, **kwargs}).eval()
    rng = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for key, tensor in sorted(g.state_dict().items()):
            tensor.copy_(torch.randn(tensor.shape, generator=rng) * (0.3 if key.endswith(SMALL) else 1.0))
    return g


def z_batch(n: int = 2, dim: int = 16, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed))


# image[0, :, 7, 6:10] measured with genforce/sefa's official StyleGANGenerator after loading the same
# tensors (our state dict, `synthesis.output.*` stored as `synthesis.output2.*`, `lod` = 0):
# (a) `seeded()`; G(z, trunc_psi=0.7, trunc_layers=8, randomize_noise=False)
# (b) `seeded(fused_scale=True, c_dim=2, mapping_layer_features=24)`, label [[1, 0], [0, 1]];
#     G(z, label, trunc_psi=0.5, trunc_layers=2, randomize_noise=False)
OFFICIAL_A = [1.05953, 0.80667, -0.51787, -1.08125, 1.06269, 0.99068, 2.53303, 1.28569,
              -1.52073, -1.86885, -1.53721, -1.95136]  # fmt: skip
OFFICIAL_B = [-1.22774, -0.22533, 0.24798, -0.4196, 1.11235, -0.27383, -0.50555, -0.99564,
              -0.87714, -0.31691, -0.03872, -0.00203]  # fmt: skip


def test_matches_official_genforce_slice():
    with torch.no_grad():
        img = seeded()(z_batch(), truncation_psi=0.7, truncation_cutoff=8, noise_mode="const")
    assert img.shape == (2, 3, 16, 16) and img.dtype == torch.float32
    torch.testing.assert_close(img[0, :, 7, 6:10].flatten(), torch.tensor(OFFICIAL_A), atol=1e-4, rtol=0)


def test_matches_official_fused_conditional_slice():
    g = seeded(fused_scale=True, c_dim=2, mapping_layer_features=24)
    with torch.no_grad():
        img = g(z_batch(), c=torch.eye(2), truncation_psi=0.5, truncation_cutoff=2, noise_mode="const")
    torch.testing.assert_close(img[0, :, 7, 6:10].flatten(), torch.tensor(OFFICIAL_B), atol=1e-4, rtol=0)


def test_shapes_layout_and_interface():
    g = seeded()
    assert isinstance(g, EditableGenerator) and g.latent_space == "w+"
    assert g.num_ws == 6 and g.latent_dim == 16
    assert g.layer_resolutions() == [4, 4, 8, 8, 16, 16]
    keys = set(g.state_dict())
    # genforce names, so that the converter is the identity apart from the final ToRGB.
    expected = {"mapping.dense1.weight", "truncation.w_avg", "synthesis.layer0.const", "synthesis.layer2.weight"}
    expected |= {"synthesis.layer5.apply_noise.noise", "synthesis.layer3.style.bias", "synthesis.output.weight"}
    assert expected <= keys
    assert not any("lod" in k or "blur" in k for k in keys)
    assert g.state_dict()["synthesis.layer0.style.weight"].shape == (64, 16)
    ws = g.sample_latents(z_batch(3))
    assert ws.shape == (3, 6, 16)
    with torch.no_grad():
        assert g.synthesize(ws).shape == (3, 3, 16, 16)


def test_fused_scale_auto_fuses_from_128():
    g = StyleGANGenerator(z_dim=4, w_dim=4, img_resolution=256, channel_base=256, channel_max=4, mapping_layers=1)
    fused = {
        res: getattr(g.synthesis, f"layer{2 * b}").fused_scale for b, res in enumerate(g.synthesis.block_resolutions)
    }
    assert fused == {4: False, 8: False, 16: False, 32: False, 64: False, 128: True, 256: True}
    a, b = seeded(fused_scale=True), seeded(fused_scale=False)
    with torch.no_grad():  # the two upsampling schemes are not the same function: the setting matters
        assert not torch.allclose(a(z_batch()), b(z_batch()), atol=1e-3)


def test_truncation():
    g = seeded()
    z = z_batch()
    ws = g.sample_latents(z)
    torch.testing.assert_close(ws, ws[:, :1].expand_as(ws))
    cut = g.sample_latents(z, truncation_psi=0.0, truncation_cutoff=2)
    torch.testing.assert_close(cut[:, :2], g.truncation.w_avg.expand(2, 2, -1))
    torch.testing.assert_close(cut[:, 2:], ws[:, 2:])
    half = g.sample_latents(z, truncation_psi=0.5)
    torch.testing.assert_close(half, g.truncation.w_avg.lerp(ws, 0.5))


def test_noise_modes():
    g = seeded()
    ws = g.sample_latents(z_batch())
    with torch.no_grad():
        const = g.synthesize(ws, noise_mode="const")
        torch.testing.assert_close(g.synthesize(ws, noise_mode="const"), const)
        assert not torch.allclose(g.synthesize(ws, noise_mode="random"), const)
        assert not torch.allclose(g.synthesize(ws, noise_mode="none"), const)


def test_latent_weights_are_full_style_affines():
    g = seeded()
    weights = g.latent_weights([0, 3])
    raw = g.state_dict()
    for w, i in zip(weights, (0, 3), strict=True):
        assert w.shape == (2 * g.synthesis.layers()[i].style.channels, 16)
        torch.testing.assert_close(w, raw[f"synthesis.layer{i}.style.weight"] / 4)  # 1 / sqrt(w_dim)
    # Row normalisation cancels the gain: the official code's raw weights give the same directions.
    layers = list(range(g.num_ws))
    ours = sefa_factorize(g.latent_weights(layers))
    official = sefa_factorize([raw[f"synthesis.layer{i}.style.weight"] for i in layers])
    torch.testing.assert_close(ours[1], official[1], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ours[0].abs(), official[0].abs(), rtol=1e-4, atol=1e-4)
    unnormalised = sefa_factorize(g.latent_weights(layers), normalize=False)[1]
    raw_values = sefa_factorize([raw[f"synthesis.layer{i}.style.weight"] for i in layers], normalize=False)[1]
    torch.testing.assert_close(unnormalised * 16, raw_values, rtol=1e-4, atol=1e-3)  # documented: / w_dim


def test_sefa_pipeline_factorize():
    directions = SefaPipeline(generator=seeded()).factorize(layers="0-1", num_directions=4)
    assert directions.vectors.shape == (4, 16) and directions.layers == [0, 1]
    assert torch.all(directions.values[:-1] >= directions.values[1:])


def test_save_and_load_round_trip(tmp_path):
    g = seeded(fused_scale=True, c_dim=2)
    g.save_pretrained(tmp_path)
    loaded = StyleGANGenerator.from_pretrained(tmp_path).eval()
    assert loaded.config.fused_scale is True and loaded.config.c_dim == 2
    with torch.no_grad():
        c = torch.eye(2)
        torch.testing.assert_close(loaded(z_batch(), c=c), g(z_batch(), c=c), atol=0, rtol=0)


def test_conditioning_requires_c():
    g = seeded(c_dim=2)
    with pytest.raises(ValueError, match="`c`"):
        g(z_batch())
    with pytest.raises(ValueError, match="`c`"):
        seeded()(z_batch(), c=torch.eye(2))


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"img_resolution": 4}, "img_resolution"),
        ({"img_resolution": 24}, "img_resolution"),
        ({"fused_scale": "yes"}, "fused_scale"),
        ({"fused_scale": 1}, "fused_scale"),
        ({"c_dim": -1}, "c_dim"),
        ({"z_dim": 0}, "z_dim"),
        ({"mapping_layers": 0}, "mapping_layers"),
        ({"mapping_layer_features": 0}, "mapping_layer_features"),
        ({"mapping_lr_multiplier": 0.0}, "mapping_lr_multiplier"),
        ({"channel_base": 8}, "channel_base"),
    ],
)
def test_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        StyleGANGenerator(**{**TINY, **kwargs})


def test_bad_call_arguments():
    g = seeded()
    with pytest.raises(ValueError, match="`z`"):
        g(torch.zeros(2, 15))
    with pytest.raises(ValueError, match="`ws`"):
        g.synthesize(torch.zeros(2, 5, 16))
    with pytest.raises(ValueError, match="`noise_mode`"):
        g.synthesize(torch.zeros(2, 6, 16), noise_mode="fixed")
    with pytest.raises(ValueError, match="`layers`"):
        g.latent_weights([6])
