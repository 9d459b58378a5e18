"""genforce checkpoints (PGGAN, StyleGAN, StyleGAN2) and huggan folders: written by the test's own code, converted.

The writers below lay out seeded random tensors under genforce's parameter names and shapes (those of
``models/{pggan,stylegan,stylegan2}_generator.py`` in genforce/sefa). The expected image slices and SeFa
eigenvalues were measured once with the official genforce code: the very state dicts these writers
produce were loaded (``load_state_dict(strict=True)``) into the official generators, which rendered the
same ``z`` (``trunc_psi=0.7, trunc_layers=8, randomize_noise=False`` for the style-based ones) and ran the
official ``utils.factorize_weight``. No official code is imported here.
"""

from __future__ import annotations

import json

import pytest
import torch

from sefa_plugin.convert.genforce import (
    GENFORCE_ARCHITECTURES,
    convert_genforce,
    convert_genforce_state_dict,
    detect_genforce_architecture,
    extract_genforce_state,
    genforce_generator_config,
    genforce_key_map,
)
from sefa_plugin.models import PGGANGenerator
from sefa_plugin.models.stylegan import StyleGANGenerator
from sefa_plugin.pipelines import SefaPipeline

RES, Z, W, MAPPING = 16, 16, 16, 2
SMALL = ("bias", "apply_noise.weight", "w_avg", "noise_strength")  # keys filled with 0.3 * randn


def channels(res: int, base: int = 256, cmax: int = 32) -> int:
    return min(base // res, cmax)


def _fill(shapes: dict[str, tuple[int, ...]], seed: int) -> dict[str, torch.Tensor]:
    """Seeded values for `shapes`, drawn in key order: N(0, 1), or N(0, 0.3²) for biases and noise gains."""
    rng = torch.Generator().manual_seed(seed)
    return {k: torch.randn(s, generator=rng) * (0.3 if k.endswith(SMALL) else 1.0) for k, s in shapes.items()}


def _fir(taps: list[float], gain: float = 1.0) -> torch.Tensor:
    f = torch.tensor(taps)
    f = torch.outer(f, f)
    return f / f.sum() * gain


def _mapping_shapes(z_dim: int = Z, w_dim: int = W, layers: int = MAPPING, label: int = 0) -> dict:
    shapes: dict[str, tuple[int, ...]] = {}
    for i in range(layers):
        fan_in = z_dim * (2 if label else 1) if i == 0 else w_dim
        shapes |= {f"mapping.dense{i}.weight": (w_dim, fan_in), f"mapping.dense{i}.bias": (w_dim,)}
    if label:
        shapes["mapping.label_weight"] = (label, z_dim)
    shapes["truncation.w_avg"] = (w_dim,)
    return shapes


def genforce_pggan_state(res: int = RES, z_dim: int = 8, seed: int = 0) -> dict[str, torch.Tensor]:
    """genforce ``PGGANGenerator(res, z_space_dim=z_dim, fmaps_base=128, fmaps_max=16).state_dict()`` layout."""
    shapes: dict[str, tuple[int, ...]] = {}
    for b in range(len(range(2, res.bit_length()))):
        r = 4 * 2**b
        c = channels(r, 128, 16)
        first = (c, z_dim, 4, 4) if b == 0 else (c, channels(r // 2, 128, 16), 3, 3)
        shapes |= {f"layer{2 * b}.weight": first, f"layer{2 * b}.bias": (c,)}
        shapes |= {f"layer{2 * b + 1}.weight": (c, c, 3, 3), f"layer{2 * b + 1}.bias": (c,)}
        shapes |= {f"output{b}.weight": (3, c, 1, 1), f"output{b}.bias": (3,)}
    return {"lod": torch.zeros(()), **_fill(shapes, seed)}


def genforce_stylegan_state(res: int = RES, seed: int = 0, label: int = 0) -> dict[str, torch.Tensor]:
    """genforce ``StyleGANGenerator(res, z_space_dim=16, w_space_dim=16, mapping_layers=2, fmaps_base=256,
    fmaps_max=32)`` layout."""
    shapes = _mapping_shapes(label=label)
    kernels = {}
    for b in range(len(range(2, res.bit_length()))):
        r = 4 * 2**b
        c = channels(r)
        for i in (2 * b, 2 * b + 1):
            name = f"synthesis.layer{i}"
            if i == 0:
                shapes[f"{name}.const"] = (1, c, 4, 4)
            else:
                shapes[f"{name}.weight"] = (c, channels(r // 2) if i == 2 * b else c, 3, 3)
            shapes |= {f"{name}.bias": (c,), f"{name}.apply_noise.noise": (1, 1, r, r)}
            shapes |= {f"{name}.apply_noise.weight": (c,), f"{name}.style.weight": (2 * c, W)}
            shapes[f"{name}.style.bias"] = (2 * c,)
            if i == 2 * b and b > 0:
                kernels[f"{name}.blur.kernel"] = _fir([1, 2, 1])[None, None].repeat(c, 1, 1, 1)
        shapes |= {f"synthesis.output{b}.weight": (3, c, 1, 1), f"synthesis.output{b}.bias": (3,)}
    return {"synthesis.lod": torch.zeros(()), **_fill(shapes, seed), **kernels}


def genforce_stylegan2_state(res: int = RES, seed: int = 0) -> dict[str, torch.Tensor]:
    """genforce ``StyleGAN2Generator(res, z_space_dim=16, w_space_dim=16, mapping_layers=2, fmaps_base=256,
    fmaps_max=32)`` ("skip" architecture) layout."""
    shapes = _mapping_shapes()
    shapes["synthesis.early_layer.const"] = (1, channels(4), 4, 4)
    kernels = {"synthesis.upsample.kernel": _fir([1, 3, 3, 1], 4)[None, None]}
    for b in range(len(range(2, res.bit_length()))):
        r = 4 * 2**b
        c = channels(r)
        convs = [(0, c)] if b == 0 else [(2 * b - 1, channels(r // 2)), (2 * b, c)]
        for i, c_in in convs:
            name = f"synthesis.layer{i}"
            shapes |= {f"{name}.weight": (c, c_in, 3, 3), f"{name}.style.weight": (c_in, W)}
            shapes |= {f"{name}.style.bias": (c_in,), f"{name}.bias": (c,), f"{name}.noise": (1, 1, r, r)}
            shapes[f"{name}.noise_strength"] = ()
            if i % 2:
                kernels[f"{name}.filter.kernel"] = _fir([1, 3, 3, 1], 4)[None, None]
        name = f"synthesis.output{b}"
        shapes |= {f"{name}.weight": (3, c, 1, 1), f"{name}.bias": (3,), f"{name}.style.weight": (c, W)}
        shapes[f"{name}.style.bias"] = (c,)
    return {**_fill(shapes, seed), **kernels}


WRITERS = {"pggan": genforce_pggan_state, "stylegan": genforce_stylegan_state, "stylegan2": genforce_stylegan2_state}


def z_for(arch: str) -> torch.Tensor:
    return torch.randn(2, 8 if arch == "pggan" else Z, generator=torch.Generator().manual_seed(1))


def render(g: torch.nn.Module, arch: str) -> torch.Tensor:
    with torch.no_grad():
        if arch == "pggan":
            return g(z_for(arch))
        return g(z_for(arch), truncation_psi=0.7, truncation_cutoff=8, noise_mode="const")


# Official genforce outputs image[0, :, 5, 4:8] (3 x 4 values) for the writers' seed-0 state dicts.
EXPECTED = {
    "pggan": [-2.11823, -2.19935, -2.40581, -2.09845, -0.03812, -0.14333, -0.17049, -0.07397,
              0.35581, 0.49932, 0.10527, 0.05131],
    "stylegan": [-1.25519, -1.27538, -1.33345, -0.47066, -2.19251, -1.72546, -0.72558, -0.53725,
                 0.99273, 0.59842, 1.38279, 1.08887],
    "stylegan2": [0.0244, 0.30598, -0.18159, 0.60266, 1.5158, 3.00721, 0.97347, 1.26428,
                  -1.38431, -1.65572, -1.26769, -2.26275],
    # genforce StyleGANGenerator(..., fused_scale=True)
    "stylegan_fused": [-2.24973, -0.75287, 0.51643, 1.0678, 0.46876, 0.94205, 0.69237, 0.06482,
                       0.32388, 2.52592, 2.71034, 2.09497],
}  # fmt: skip
# Official `factorize_weight(G, "all")` eigenvalues (sorted, largest three) for the same state dicts.
EXPECTED_EIGENVALUES = {
    "pggan": [40.025, 37.9769, 35.2963],
    "stylegan": [26.245, 25.6126, 25.3459],
    "stylegan2": [15.833, 14.96, 13.3301],
}


def expected_slice(name: str) -> torch.Tensor:
    return torch.tensor(EXPECTED[name])


# ------------------------------------------------------------------------------------------ layout
@pytest.mark.parametrize("arch", sorted(WRITERS))
def test_detect_and_infer_config(arch):
    state = WRITERS[arch]()
    assert detect_genforce_architecture(state) == arch
    found, config = genforce_generator_config(state)
    assert found == arch and config["img_resolution"] == RES
    if arch == "pggan":
        assert config == dict(z_dim=8, c_dim=0, img_channels=3, img_resolution=16, channel_base=128, channel_max=16)
    else:
        assert config["z_dim"] == Z and config["w_dim"] == W and config["mapping_layers"] == MAPPING
        assert (config["channel_base"], config["channel_max"]) == (256, 32)


def test_key_map_covers_every_key():
    for arch, model in GENFORCE_ARCHITECTURES.items():
        g = convert_genforce(WRITERS[arch]())
        assert isinstance(g, model)
        table = genforce_key_map(arch, RES, MAPPING)
        ours = set(g.state_dict())
        assert set(table) == {k for k in ours if not k.endswith("resample_filter")}
    table = genforce_key_map("stylegan2", RES, MAPPING)
    assert table["synthesis.b8.conv0.weight"] == ("synthesis.layer1.weight", "flip")
    assert table["synthesis.b8.conv1.affine.bias"] == ("synthesis.layer2.style.bias", "plus_one")
    assert table["synthesis.b16.torgb.affine.weight"] == ("synthesis.output2.style.weight", "same")
    assert table["mapping.w_avg"] == ("truncation.w_avg", "same")
    assert genforce_key_map("stylegan", RES, MAPPING)["synthesis.output.weight"] == ("synthesis.output2.weight", "same")


# ------------------------------------------------------------------------------------------ faithfulness
@pytest.mark.parametrize("arch", sorted(WRITERS))
def test_matches_official_output(arch, tmp_path):
    path = tmp_path / f"{arch}.pth"
    state = WRITERS[arch]()
    # Training checkpoints hold both; the smoothed (EMA) generator must be preferred.
    torch.save({"generator": WRITERS[arch](seed=1), "generator_smooth": state, "step": 10}, path)
    g = convert_genforce(path)
    img = render(g, arch)
    assert img.shape == (2, 3, RES, RES)
    torch.testing.assert_close(img[0, :, 5, 4:8], expected_slice(arch).reshape(3, 4), atol=1e-4, rtol=0)
    # Without generator_smooth, "generator" is used.
    torch.save({"generator": state}, path)
    torch.testing.assert_close(render(convert_genforce(path), arch), img, atol=0, rtol=0)


def test_generator_smooth_is_preferred():
    smooth, raw = genforce_stylegan_state(seed=0), genforce_stylegan_state(seed=1)
    assert extract_genforce_state({"generator": raw, "generator_smooth": smooth}) == smooth
    assert extract_genforce_state({"generator": raw}) == raw
    assert extract_genforce_state(smooth) == smooth


def test_huggan_folder_with_config(tmp_path):
    torch.save(genforce_stylegan_state(), tmp_path / "pytorch_model.bin")
    config = dict(gan_type="stylegan", resolution=16, z_space_dim=16, w_space_dim=16, mapping_layers=2)
    config |= dict(fmaps_base=256, fmaps_max=32, fused_scale=True, mapping_lr_mul=0.01)
    (tmp_path / "config.json").write_text(json.dumps(config))
    g = convert_genforce(tmp_path)
    assert isinstance(g, StyleGANGenerator) and g.config.fused_scale is True
    torch.testing.assert_close(
        render(g, "stylegan")[0, :, 5, 4:8], expected_slice("stylegan_fused").reshape(3, 4), atol=1e-4, rtol=0
    )


def test_huggan_folder_without_config_uses_genforce_defaults(tmp_path):
    torch.save(genforce_pggan_state(), tmp_path / "pytorch_model.bin")
    g = convert_genforce(tmp_path)
    assert isinstance(g, PGGANGenerator)
    torch.testing.assert_close(
        render(g, "pggan")[0, :, 5, 4:8], expected_slice("pggan").reshape(3, 4), atol=1e-4, rtol=0
    )


@pytest.mark.parametrize("arch", sorted(WRITERS))
def test_sefa_matches_official_eigenvalues(arch):
    g = convert_genforce(WRITERS[arch]())
    directions = SefaPipeline(generator=g).factorize()
    assert directions.vectors.shape == (g.latent_dim, g.latent_dim)
    torch.testing.assert_close(directions.values[:3], torch.tensor(EXPECTED_EIGENVALUES[arch]), rtol=1e-4, atol=1e-4)


def test_save_and_load_round_trip(tmp_path):
    for arch in WRITERS:
        g = convert_genforce(WRITERS[arch]())
        g.save_pretrained(tmp_path / arch)
        loaded = type(g).from_pretrained(tmp_path / arch).eval()
        torch.testing.assert_close(render(loaded, arch), render(g, arch), atol=0, rtol=0)


def test_conditional_stylegan_and_pggan():
    g = convert_genforce(genforce_stylegan_state(label=3))
    assert g.config.c_dim == 3 and g.config.z_dim == Z
    c = torch.eye(3)[:2]
    with torch.no_grad():
        assert g(z_for("stylegan"), c=c).shape == (2, 3, RES, RES)
    g = convert_genforce(genforce_pggan_state(z_dim=11), c_dim=3)
    assert (g.config.z_dim, g.config.c_dim) == (8, 3)


# ------------------------------------------------------------------------------------------ errors
def test_unknown_key_is_named():
    state = genforce_stylegan_state()
    state["synthesis.layer3.extra"] = torch.zeros(3)
    with pytest.raises(ValueError, match=r"synthesis\.layer3\.extra"):
        convert_genforce(state)


def test_missing_key_is_named():
    state = genforce_stylegan2_state()
    del state["synthesis.layer2.noise_strength"]
    with pytest.raises(ValueError, match=r"synthesis\.layer2\.noise_strength"):
        convert_genforce(state)


@pytest.mark.parametrize(
    ("arch", "key", "shape"),
    [
        ("pggan", "layer3.bias", (5,)),
        ("stylegan", "synthesis.layer2.style.weight", (64, 15)),
        ("stylegan2", "synthesis.layer1.noise", (1, 1, 4, 4)),
        ("stylegan2", "synthesis.early_layer.const", (32, 4, 4)),
    ],
)
def test_shape_mismatch_is_named(arch, key, shape):
    state = WRITERS[arch]()
    state[key] = torch.zeros(shape)
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        convert_genforce(state)


def test_unknown_layout_and_bad_checkpoints():
    with pytest.raises(ValueError, match="Cannot tell the genforce architecture"):
        detect_genforce_architecture({"conv1.weight": torch.zeros(1)})
    with pytest.raises(ValueError, match="generator_smooth"):
        extract_genforce_state({"args": "x"})
    with pytest.raises(ValueError, match="`architecture`"):
        convert_genforce_state_dict(genforce_pggan_state(), "stylegan3")


def test_unsupported_settings_are_errors(tmp_path):
    state = genforce_pggan_state()
    state["lod"] = torch.tensor(1.0)
    with pytest.raises(ValueError, match="'lod'"):
        convert_genforce(state)
    state = genforce_stylegan2_state()
    state["mapping.label_weight"] = torch.zeros(3, Z)
    with pytest.raises(ValueError, match="label_weight"):
        convert_genforce(state)
    state = genforce_stylegan_state()
    state["synthesis.layer2.blur.kernel"] = torch.ones_like(state["synthesis.layer2.blur.kernel"])
    with pytest.raises(ValueError, match=r"synthesis\.layer2\.blur\.kernel"):
        convert_genforce(state)
    with pytest.raises(ValueError, match="`fused_scale`"):
        convert_genforce(genforce_pggan_state(), fused_scale=True)
    torch.save(genforce_stylegan_state(), tmp_path / "pytorch_model.bin")
    (tmp_path / "config.json").write_text(json.dumps({"final_tanh": True}))
    with pytest.raises(ValueError, match="`final_tanh`"):
        convert_genforce(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"resolution": 32}))
    with pytest.raises(ValueError, match="`resolution`"):
        convert_genforce(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"pytorch_model\.bin"):
        convert_genforce(tmp_path / "empty")
