"""rosinality/stylegan2-pytorch checkpoints: written from our generator via the inverse key map, read back."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import torch
from factories import tiny_stylegan2

from sefa_plugin.convert import convert_checkpoint, convert_rosinality, detect_format
from sefa_plugin.convert.rosinality import ROSINALITY_LAYOUTS, rosinality_key_map
from sefa_plugin.models import StyleGAN2Generator


def tiny_generator(seed: int = 0, **kwargs) -> StyleGAN2Generator:
    # rosinality has z_dim == w_dim (its style_dim) and no class conditioning.
    return tiny_stylegan2(seed, trained_like=True, **{"channel_max": 32, "mapping_layers": 3, **kwargs})


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny convolutions are far faster on one thread, especially on a busy machine."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def to_rosinality(g: StyleGAN2Generator) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """The inverse of the converter's key map: our state dict in rosinality's names and layouts."""
    ours = g.state_dict()
    state: dict[str, torch.Tensor] = {}
    for key, (theirs, layout) in rosinality_key_map(g.config.img_resolution, g.config.mapping_layers).items():
        state[theirs] = ours[key].reshape(ROSINALITY_LAYOUTS[layout](tuple(ours[key].shape))).clone()
    latent_avg = state.pop("latent_avg")
    kernel = ours["synthesis.b4.resample_filter"] * 4  # rosinality's Blur/Upsample kernels carry the gain 4
    for j in range(int(torch.log2(torch.tensor(g.config.img_resolution))) - 2):
        state[f"convs.{2 * j}.conv.blur.kernel"] = kernel.clone()
        state[f"to_rgbs.{j}.upsample.kernel"] = kernel.clone()
    return state, latent_avg


def test_inverse_map_has_rosinality_layout() -> None:
    state, latent_avg = to_rosinality(tiny_generator())
    # Names and shapes of rosinality's Generator(size=16, style_dim=16, n_mlp=3) with 32/32/32 channels.
    expected = {
        "style.1.weight": [16, 16],
        "style.3.bias": [16],
        "input.input": [1, 32, 4, 4],
        "conv1.conv.weight": [1, 32, 32, 3, 3],
        "conv1.conv.modulation.weight": [32, 16],
        "conv1.conv.modulation.bias": [32],
        "conv1.noise.weight": [1],
        "conv1.activate.bias": [32],
        "to_rgb1.conv.weight": [1, 3, 32, 1, 1],
        "to_rgb1.bias": [1, 3, 1, 1],
        "convs.0.conv.weight": [1, 32, 32, 3, 3],
        "convs.0.conv.blur.kernel": [4, 4],
        "convs.3.conv.weight": [1, 16, 16, 3, 3],
        "convs.3.noise.weight": [1],
        "to_rgbs.1.conv.weight": [1, 3, 16, 1, 1],
        "to_rgbs.1.upsample.kernel": [4, 4],
        "noises.noise_0": [1, 1, 4, 4],
        "noises.noise_4": [1, 1, 16, 16],
    }
    assert {k: list(state[k].shape) for k in expected} == expected
    assert "style.0.weight" not in state and "noises.noise_5" not in state
    assert len([k for k in state if k.startswith("noises.")]) == 5
    assert latent_avg.shape == (16,)


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_roundtrip(tmp_path: Path, zip_format: bool) -> None:
    g = tiny_generator()
    state, latent_avg = to_rosinality(g)
    path = tmp_path / "550000.pt"
    torch.save({"g_ema": state, "latent_avg": latent_avg}, path, _use_new_zipfile_serialization=zip_format)

    assert detect_format(path) == "rosinality"
    converted = convert_checkpoint(path)
    assert converted.config.channel_base // 16 == 16 and converted.config.channel_max == 32
    for key in ("z_dim", "w_dim", "img_resolution", "mapping_layers", "resample_filter"):
        assert converted.config[key] == g.config[key], key
    want, got = g.state_dict(), converted.state_dict()
    assert want.keys() == got.keys()
    assert all(torch.equal(want[k], got[k]) for k in want)

    z = torch.randn(2, 16, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(
            converted(z, truncation_psi=0.7, noise_mode="const"), g(z, truncation_psi=0.7, noise_mode="const")
        )
    # The file's (memory-mapped) tensors became the weights: writing to them must not touch the file or a
    # second conversion, and a caller's dict is copied, never aliased.
    before = path.read_bytes()
    with torch.no_grad():
        for p in converted.parameters():
            p.add_(1.0)
    assert path.read_bytes() == before
    assert all(torch.equal(want[k], v) for k, v in convert_checkpoint(path).state_dict().items())
    from_dict = convert_rosinality({"g_ema": state, "latent_avg": latent_avg})
    with torch.no_grad():
        from_dict.mapping.fc0.weight.add_(1.0)
    assert torch.equal(state["style.1.weight"], to_rosinality(g)[0]["style.1.weight"])


def test_training_checkpoint_without_latent_avg(tmp_path: Path) -> None:
    g = tiny_generator(seed=1)
    state, _ = to_rosinality(g)
    path = tmp_path / "train.pt"
    torch.save(
        {
            "g": state,
            "d": {"convs.0.0.weight": torch.ones(2)},
            "g_ema": state,
            "g_optim": {"state": {}, "param_groups": [{"lr": 0.002, "betas": (0.0, 0.99)}]},
            "args": argparse.Namespace(size=16, latent=16, n_mlp=3, channel_multiplier=2),
            "ada_aug_p": 0.0,
        },
        path,
    )
    converted = convert_rosinality(path, w_avg_samples=2048)
    with torch.no_grad():
        mean_w = g.mapping(torch.randn(4096, 16, generator=torch.Generator().manual_seed(5)))[:, 0].mean(0)
    spread = g.mapping(torch.randn(64, 16))[:, 0].std(0).max().item()
    assert (converted.mapping.w_avg - mean_w).abs().max().item() < 0.2 * spread
    without_avg = {k: v for k, v in g.state_dict().items() if k != "mapping.w_avg"}
    assert all(torch.equal(converted.state_dict()[k], v) for k, v in without_avg.items())


def test_bare_state_dict_and_errors(tmp_path: Path) -> None:
    g = tiny_generator()
    state, latent_avg = to_rosinality(g)
    assert torch.equal(convert_rosinality(state, w_avg_samples=8).synthesis.b4.const, g.synthesis.b4.const)

    bad = dict(state)
    bad["convs.1.conv.modulation.weight"] = torch.ones(7, 16)
    with pytest.raises(ValueError, match=r"convs\.1\.conv\.modulation\.weight.*\[7, 16\]"):
        convert_rosinality({"g_ema": bad, "latent_avg": latent_avg})

    extra = dict(state, **{"convs.9.conv.weight": torch.ones(1)})
    with pytest.raises(ValueError, match=r"convs\.9\.conv\.weight"):
        convert_rosinality({"g_ema": extra, "latent_avg": latent_avg})

    missing = {k: v for k, v in state.items() if k != "noises.noise_3"}
    with pytest.raises(ValueError, match="noises"):
        convert_rosinality({"g_ema": missing, "latent_avg": latent_avg})

    with pytest.raises(ValueError, match="latent_avg"):
        convert_rosinality({"g_ema": state, "latent_avg": torch.ones(3)})
    with pytest.raises(ValueError, match="g_ema"):
        convert_rosinality({"generator": state})
