"""pytorch-pretrained-BigGAN folders (config.json + pytorch_model.bin), written by the test's own code, converted."""

from __future__ import annotations

import json
import math
import pickle
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from sefa_plugin.convert.biggan import (
    BIGGAN_CONFIG_DEFAULTS,
    convert_biggan,
    convert_biggan_state_dict,
    spectral_normalized_weight,
)
from sefa_plugin.models.biggan import BigGANGenerator

# Their BigGANConfig fields for a tiny 16x16 model (BigGAN-deep's block rules, attention before block 2).
CONFIG = {
    "output_dim": 16,
    "z_dim": 8,
    "class_embed_dim": 8,
    "channel_width": 4,
    "num_classes": 5,
    "layers": [[False, 16, 16], [True, 16, 8], [False, 8, 4], [True, 4, 2], [False, 2, 1]],
    "attention_layer_position": 2,
    "eps": 1e-4,
    "n_stats": 11,
}

# Measured with pytorch-pretrained-BigGAN's own code (commit 1e18aed): `BigGAN(BigGANConfig(**CONFIG))` with
# `load_state_dict(their_state_dict(CONFIG, seed=0), strict=True)`, `.eval()`, then `model(t * z, c, t)` for
# t = 0.4, z = BigGANGenerator.z_from_seeds([0, 1]) and one-hot classes [3, 1]. Slices img[0, 0, 0, :4] and
# img[1, 2, -1, -4:].
EXPECTED_FIRST = [-0.04925364, -0.00654572, -0.00063797, 0.06622253]
EXPECTED_LAST = [0.09803608, 0.1700629, 0.09562322, 0.06053315]


def their_state_dict(config: dict, seed: int = 0) -> dict[str, torch.Tensor]:
    """A BigGAN state dict in pytorch-pretrained-BigGAN's names and layouts, written from the config.

    Spectrally normalised layers hold ``weight_orig`` (scaled so that σ is far from 1), ``weight_u`` and
    ``weight_v`` after one power-iteration step, as their TF converter leaves them.
    """
    gen = torch.Generator().manual_seed(seed)
    ch, n_stats, cond = config["channel_width"], config["n_stats"], 2 * config["z_dim"]
    state: dict[str, torch.Tensor] = {}

    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=gen)

    def spectral(prefix: str, *shape: int) -> None:
        weight = randn(*shape) * 3 / math.sqrt(math.prod(shape[1:]))
        matrix = weight.reshape(shape[0], -1)
        u = F.normalize(randn(shape[0]), dim=0)
        v = F.normalize(matrix.T @ u, dim=0)
        state[f"{prefix}.weight_orig"] = weight
        state[f"{prefix}.weight_u"] = F.normalize(matrix @ v, dim=0)
        state[f"{prefix}.weight_v"] = v

    def batch_norm(prefix: str, channels: int, conditional: bool = True) -> None:
        state[f"{prefix}.running_means"] = randn(n_stats, channels) * 0.3
        state[f"{prefix}.running_vars"] = torch.rand(n_stats, channels, generator=gen) + 0.5
        if conditional:
            spectral(f"{prefix}.scale", channels, cond)
            spectral(f"{prefix}.offset", channels, cond)
        else:
            state[f"{prefix}.weight"] = 1 + randn(channels) * 0.3
            state[f"{prefix}.bias"] = randn(channels) * 0.3

    state["embeddings.weight"] = randn(config["z_dim"], config["num_classes"])
    spectral("generator.gen_z", 16 * 16 * ch, cond)
    state["generator.gen_z.bias"] = randn(16 * 16 * ch) * 0.3
    index = 0
    for i, (_, c_in, c_out) in enumerate(config["layers"]):
        if i == config["attention_layer_position"]:
            attn = f"generator.layers.{index}"
            c = ch * c_in
            for name, shape in (
                ("theta", (c // 8, c)),
                ("phi", (c // 8, c)),
                ("g", (c // 2, c)),
                ("o_conv", (c, c // 2)),
            ):
                spectral(f"{attn}.snconv1x1_{name}", *shape, 1, 1)
            state[f"{attn}.gamma"] = torch.tensor([0.7])
            index += 1
        block = f"generator.layers.{index}"
        mid = ch * c_in // 4
        for k, (i_ch, o_ch, size) in enumerate(
            [(ch * c_in, mid, 1), (mid, mid, 3), (mid, mid, 3), (mid, ch * c_out, 1)]
        ):
            batch_norm(f"{block}.bn_{k}", i_ch)
            spectral(f"{block}.conv_{k}", o_ch, i_ch, size, size)
            state[f"{block}.conv_{k}.bias"] = randn(o_ch) * 0.3
        index += 1
    batch_norm("generator.bn", ch, conditional=False)
    spectral("generator.conv_to_rgb", ch, ch, 3, 3)
    state["generator.conv_to_rgb.bias"] = randn(ch) * 0.3
    return state


def write_folder(folder: Path, config: dict = CONFIG, state: dict | None = None, zip_format: bool = True) -> Path:
    """Save ``config.json`` (as their ``to_json_string``) and ``pytorch_model.bin`` into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    state = their_state_dict(config) if state is None else state
    torch.save(state, folder / "pytorch_model.bin", _use_new_zipfile_serialization=zip_format)
    return folder


def render(g: BigGANGenerator) -> torch.Tensor:
    with torch.no_grad():
        return g(g.z_from_seeds([0, 1]), torch.eye(5)[[3, 1]])


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_matches_official_slice(tmp_path: Path, zip_format: bool) -> None:
    folder = write_folder(tmp_path / "biggan", zip_format=zip_format)
    for src in (folder, folder / "pytorch_model.bin"):
        g = convert_biggan(src, truncation=0.4)
        assert isinstance(g, BigGANGenerator) and not g.training and g.config.truncation == 0.4
        img = render(g)
        assert img.shape == (2, 3, 16, 16)
        assert torch.allclose(img[0, 0, 0, :4], torch.tensor(EXPECTED_FIRST), atol=1e-5)
        assert torch.allclose(img[1, 2, -1, -4:], torch.tensor(EXPECTED_LAST), atol=1e-5)


def test_conversion_is_near_identity() -> None:
    state = their_state_dict(CONFIG)
    g = convert_biggan_state_dict(state, CONFIG)
    ours = g.state_dict()
    assert g.config.c_dim == 5 and g.config.img_resolution == 16 and g.config.layers == CONFIG["layers"]
    for key, tensor in ours.items():
        if key in state:  # embeddings, biases, BN statistics and affine, attention gain: copied
            assert torch.equal(tensor, state[key]), key
        else:  # spectrally normalised: weight_orig / (u · W v)
            prefix = key.removesuffix(".weight")
            w, u, v = (state[f"{prefix}.weight_{s}"] for s in ("orig", "u", "v"))
            sigma = u @ (w.reshape(w.shape[0], -1) @ v)
            assert abs(float(sigma) - 1) > 0.1 and torch.allclose(tensor, w / sigma, rtol=1e-6), key
    assert len(ours) == len(state) - 2 * sum(k.endswith("weight_orig") for k in state)


def test_plain_weights_without_spectral_norm(tmp_path: Path) -> None:
    state = their_state_dict(CONFIG)
    plain = {}
    for key, tensor in state.items():
        if key.endswith("weight_orig"):
            prefix = key.removesuffix("_orig")
            plain[prefix] = spectral_normalized_weight(tensor, state[f"{prefix}_u"], state[f"{prefix}_v"], key=prefix)
        elif not key.endswith(("weight_u", "weight_v")):
            plain[key] = tensor
    a = convert_biggan(write_folder(tmp_path / "sn"))
    b = convert_biggan(write_folder(tmp_path / "plain", state=plain))
    assert torch.equal(render(a), render(b))


def test_missing_fields_take_their_defaults(tmp_path: Path) -> None:
    config = {k: v for k, v in CONFIG.items() if k != "eps"}
    g = convert_biggan(write_folder(tmp_path / "m", config=config, state=their_state_dict(CONFIG)))
    assert g.config.eps == BIGGAN_CONFIG_DEFAULTS["eps"] == 1e-4


def test_save_and_load_converted(tmp_path: Path) -> None:
    g = convert_biggan(write_folder(tmp_path / "biggan"), truncation=0.4)
    g.save_pretrained(tmp_path / "ours")
    loaded = BigGANGenerator.from_pretrained(tmp_path / "ours")
    assert torch.equal(render(loaded), render(g))


def test_errors_name_the_key_or_field(tmp_path: Path) -> None:
    state = their_state_dict(CONFIG)
    with pytest.raises(ValueError, match=re.escape("'generator.gen_z.weight_u'")):
        convert_biggan_state_dict({k: v for k, v in state.items() if k != "generator.gen_z.weight_u"}, CONFIG)
    with pytest.raises(ValueError, match=re.escape("'generator.layers.3.conv_1.bias'")):
        convert_biggan_state_dict({k: v for k, v in state.items() if k != "generator.layers.3.conv_1.bias"}, CONFIG)
    bad = dict(state, **{"generator.layers.0.bn_1.running_vars": torch.ones(11, 3)})
    with pytest.raises(ValueError, match=r"'generator.layers.0.bn_1.running_vars' has shape \[11, 3\]"):
        convert_biggan_state_dict(bad, CONFIG)
    bad = dict(state, **{"generator.conv_to_rgb.weight_v": torch.ones(5)})
    with pytest.raises(ValueError, match=re.escape("'generator.conv_to_rgb.weight_v'")):
        convert_biggan_state_dict(bad, CONFIG)
    bad = dict(state, **{"generator.gen_z.weight_orig": torch.zeros(1024, 16)})
    with pytest.raises(ValueError, match=re.escape("'generator.gen_z.weight_orig'")):
        convert_biggan_state_dict(bad, CONFIG)
    with pytest.raises(ValueError, match=re.escape("'generator.extra.weight'")):
        convert_biggan_state_dict(dict(state, **{"generator.extra.weight": torch.ones(1)}), CONFIG)
    with pytest.raises(ValueError, match="`class_embed_dim`"):
        convert_biggan_state_dict(state, dict(CONFIG, class_embed_dim=4))
    with pytest.raises(ValueError, match="`output_dim`"):
        convert_biggan_state_dict(state, dict(CONFIG, output_dim=32))
    with pytest.raises(ValueError, match="`n_stats`"):
        convert_biggan_state_dict(state, dict(CONFIG, n_stats="11"))
    with pytest.raises(ValueError, match="hidden_dim"):
        convert_biggan_state_dict(state, dict(CONFIG, hidden_dim=3))
    with pytest.raises(ValueError, match="`truncation`"):
        convert_biggan_state_dict(state, CONFIG, truncation=0)
    folder = write_folder(tmp_path / "biggan")
    (folder / "config.json").unlink()
    with pytest.raises(FileNotFoundError, match=re.escape("config.json")):
        convert_biggan(folder / "pytorch_model.bin")
    with pytest.raises(FileNotFoundError, match=re.escape("pytorch_model.bin")):
        convert_biggan(tmp_path / "nowhere")


class NotATensor:
    """Pickled by reference: ``torch.load(weights_only=True)`` must refuse it."""


def test_never_unpickles_code(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "evil", state={"embeddings.weight": torch.ones(1)})
    torch.save({"embeddings.weight": NotATensor()}, folder / "pytorch_model.bin")
    with pytest.raises(pickle.UnpicklingError):
        convert_biggan(folder)
