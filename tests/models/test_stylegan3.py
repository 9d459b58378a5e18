"""StyleGAN3Generator (configs T and R): shapes, expected outputs, truncation, W+ interface, I/O, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from factories import TINY_R, TINY_T, tiny_stylegan3

from sefa_plugin.models import EditableGenerator
from sefa_plugin.models.stylegan3 import StyleGAN3Generator, design_lowpass_filter, layer_specs
from sefa_plugin.pipelines import SefaPipeline

# Expected `g(z)[0, 0, 4:7, 4:7]` for `tiny_stylegan3(0, **config)` and `z` from `latent_codes()`. Measured
# with NVIDIA's official networks_stylegan3.Generator (NVlabs/stylegan3 @ c233a91, CPU reference ops,
# force_fp32=True, num_fp16_res=0) after loading these very weights into it with `load_state_dict`.
EXPECTED = {
    "T": {
        1.0: [[-0.012115, -0.012657, -0.009331], [-0.023626, -0.027118, -0.026083], [-0.028501, -0.034335, -0.035379]],
        0.7: [[0.010808, 0.013489, 0.017099], [0.011826, 0.014076, 0.016698], [0.013473, 0.015205, 0.016892]],
    },
    "R": {
        1.0: [[-0.170796, -0.175685, -0.17838], [-0.184651, -0.188586, -0.189923], [-0.196819, -0.200036, -0.200198]],
        0.7: [[0.13924, 0.138665, 0.137107], [0.139883, 0.13951, 0.138207], [0.140896, 0.140708, 0.13963]],
    },
}


def latent_codes(n: int = 3, z_dim: int = 8) -> torch.Tensor:
    return torch.randn(n, z_dim, generator=torch.Generator().manual_seed(1))


def public_config(model: StyleGAN3Generator) -> dict:
    return json.loads(json.dumps({k: v for k, v in model.config.items() if not k.startswith("_")}))


@pytest.fixture(scope="module")
def g() -> StyleGAN3Generator:
    return tiny_stylegan3()


@pytest.fixture(scope="module")
def g_r() -> StyleGAN3Generator:
    return tiny_stylegan3(**TINY_R)


def test_shapes_and_latent_interface(g):
    assert isinstance(g, EditableGenerator) and g.latent_space == "w+"
    assert g.num_ws == 6 and g.latent_dim == 8  # input + 4 layers + ToRGB
    assert g.synthesis.layer_names == ["L0_8_16", "L1_12_16", "L2_20_16", "L3_16_8", "L4_16_3"]
    z = latent_codes()
    with torch.no_grad():
        ws = g.sample_latents(z)
        img = g(z)
    assert ws.shape == (3, 6, 8) and torch.equal(ws, ws[:, :1].expand_as(ws))
    assert img.shape == (3, 3, 16, 16) and img.dtype == torch.float32 and torch.isfinite(img).all()
    weights = g.latent_weights(range(g.num_ws))
    assert [tuple(w.shape) for w in weights] == [(4, 8), (16, 8), (16, 8), (16, 8), (16, 8), (8, 8)]
    assert all(not w.requires_grad for w in weights)
    torch.testing.assert_close(weights[0], g.synthesis.input.affine.weight / np.sqrt(8))
    assert g.layer_resolutions() == [4, 8, 16, 16, 16, 16]
    assert sorted(i for group in g.layer_groups().values() for i in group) == list(range(6))


def test_layer_specs_follow_the_frequency_progression():
    specs = layer_specs(16, 3, 128, 16, num_layers=4, num_critical=1, first_cutoff=1, first_stopband=2,
                        last_stopband_rel=2**0.3, margin_size=2)  # fmt: skip
    assert [s.sampling_rate for s in specs] == [4, 8, 16, 16, 16]
    assert [s.size for s in specs] == [8, 12, 20, 16, 16]  # margins, then image-sized last two layers
    assert [s.channels for s in specs] == [16, 16, 16, 8, 3]  # min(128 / 2 / f_c, 16); ToRGB: 3
    assert specs[0].cutoff == 1 and specs[-1].cutoff == specs[-2].cutoff == 8  # critically sampled end


@pytest.mark.parametrize("config", ["T", "R"])
def test_expected_output_slice(config, g, g_r):
    model = g if config == "T" else g_r
    z = latent_codes()
    with torch.no_grad():
        for psi, expected in EXPECTED[config].items():
            out = model(z, truncation_psi=psi)[0, 0, 4:7, 4:7]
            torch.testing.assert_close(out, torch.tensor(expected), rtol=0, atol=1e-5)


def test_config_r_uses_1x1_convolutions_and_radial_filters(g_r):
    layers = g_r.synthesis.layers()
    assert all(layer.weight.shape[2:] == (1, 1) for layer in layers)
    assert [layer.down_filter is not None and layer.down_filter.ndim == 2 for layer in layers] == [
        True, True, True, False, False  # critically sampled layers and ToRGB keep separable (or no) filters
    ]  # fmt: skip


def test_truncation(g):
    z = latent_codes()
    with torch.no_grad():
        img = g(z, truncation_psi=0)
        torch.testing.assert_close(img, img[:1].expand_as(img), rtol=0, atol=1e-6)
        ws = g.sample_latents(z, truncation_psi=0.5, truncation_cutoff=2)
        plain = g.sample_latents(z)
    torch.testing.assert_close(ws[:, :2], g.mapping.w_avg.lerp(plain[:, :2], 0.5))
    assert torch.equal(ws[:, 2:], plain[:, 2:])


def test_determinism_and_batch_independence(g):
    z = latent_codes()
    with torch.no_grad():
        first, again = g(z), g(z)
        alone = g(z[1:2])
    assert torch.equal(first, again)
    # NVIDIA normalises the styles over the whole batch before demodulation; demodulation cancels it.
    torch.testing.assert_close(alone, first[1:2], rtol=0, atol=1e-6)
    other = tiny_stylegan3()
    assert all(torch.equal(a, b) for a, b in zip(g.state_dict().values(), other.state_dict().values(), strict=True))


def test_noise_mode_is_validated_and_has_no_effect(g):
    ws = g.sample_latents(latent_codes(2))
    with torch.no_grad():
        images = [g.synthesize(ws, noise_mode=mode) for mode in ("const", "random", "none")]
    assert torch.equal(images[0], images[1]) and torch.equal(images[0], images[2])
    with pytest.raises(ValueError, match=r"`noise_mode`.*'random'.*'const'.*'none'"):
        g.synthesize(ws, noise_mode="fixed")
    with pytest.raises(ValueError, match="`noise_mode`"):
        g(latent_codes(1), noise_mode="off")


def test_conditional_generator_needs_c():
    g = tiny_stylegan3(c_dim=3)
    z, c = latent_codes(2), torch.eye(3)[:2]
    with torch.no_grad():
        a, b = g(z, c), g(z, c.flip(0))
    assert a.shape == (2, 3, 16, 16) and not torch.allclose(a, b)
    with pytest.raises(ValueError, match="`c` must have shape"):
        g(z)


def test_shape_errors(g):
    with pytest.raises(ValueError, match=r"`ws` must have shape \[N, 6, 8\]"):
        g.synthesize(torch.zeros(1, 5, 8))
    with pytest.raises(ValueError, match=r"`z` must have shape \[N, 8\]"):
        g.sample_latents(torch.zeros(1, 9))
    with pytest.raises(ValueError, match=r"`layers`.*\[0, 5\]"):
        g.latent_weights([6])


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        (dict(img_resolution=24), "img_resolution"),
        (dict(channel_base=8), "channel_base"),
        (dict(num_layers=0), "num_layers"),
        (dict(num_critical=4), "num_critical"),
        (dict(first_cutoff=0), "first_cutoff"),
        (dict(first_stopband=1), "first_stopband"),
        (dict(last_stopband_rel=1), "last_stopband_rel"),
        (dict(margin_size=-1), "margin_size"),
        (dict(conv_kernel=0), "conv_kernel"),
        (dict(conv_clamp=-1.0), "conv_clamp"),
        (dict(magnitude_ema_beta=1.5), "magnitude_ema_beta"),
        (dict(c_dim=-1), "c_dim"),
        (dict(mapping_layers=0), "mapping_layers"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        StyleGAN3Generator(**{**TINY_T, **kwargs})


def test_update_emas_tracks_w_avg_and_input_magnitudes():
    g = tiny_stylegan3()
    before = {k: v.clone() for k, v in g.state_dict().items()}
    with torch.no_grad():
        g(latent_codes(), update_emas=True)
    after = g.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"mapping.w_avg"} | {f"synthesis.{n}.magnitude_ema" for n in g.synthesis.layer_names}


def test_lowpass_filters_match_scipy():
    signal = pytest.importorskip("scipy.signal")
    special = pytest.importorskip("scipy.special")
    taps = design_lowpass_filter(12, cutoff=2.5, width=7.0, fs=32)
    expected = signal.firwin(numtaps=12, cutoff=2.5, width=7.0, fs=32)
    np.testing.assert_allclose(taps.numpy(), expected, rtol=0, atol=1e-7)
    # The radial (jinc) filter, written out from its definition with scipy's Kaiser helpers.
    x = (np.arange(12) - 5.5) / 32
    r = np.hypot(*np.meshgrid(x, x))
    jinc = special.j1(2 * 2.5 * np.pi * r) / (np.pi * r)
    window = np.kaiser(12, signal.kaiser_beta(signal.kaiser_atten(12, 7.0 / 16)))
    radial = jinc * np.outer(window, window)
    np.testing.assert_allclose(design_lowpass_filter(12, 2.5, 7.0, 32, radial=True).numpy(), radial / radial.sum(),
                               rtol=0, atol=1e-7)  # fmt: skip
    assert design_lowpass_filter(1, 2.5, 7.0, 32) is None


def test_save_and_load_round_trip(tmp_path, g_r):
    g_r.save_pretrained(tmp_path)
    loaded = StyleGAN3Generator.from_pretrained(tmp_path).eval()
    assert public_config(loaded) == public_config(g_r)
    want, got = g_r.state_dict(), loaded.state_dict()
    assert want.keys() == got.keys() and all(torch.equal(want[k], got[k]) for k in want)
    with torch.no_grad():
        assert torch.equal(loaded(latent_codes()), g_r(latent_codes()))


def test_sefa_pipeline_factorizes_and_edits(g):
    pipe = SefaPipeline(generator=g)
    directions = pipe.factorize(layers="all", num_directions=3)
    assert directions.vectors.shape == (3, 8) and directions.layers == list(range(6))
    assert torch.all(directions.values[:-1] >= directions.values[1:])
    out = pipe(seeds=[0], directions=directions, index=0, strengths=[-2.0, 0.0, 2.0], output_type="pt")
    assert out.images.shape == (3, 3, 16, 16)
    assert not torch.allclose(out.images[0], out.images[2])
