"""GANLatentDiscovery generators (SN-GAN ResNet folders, ProgGAN), written here in their layout, converted."""

from __future__ import annotations

import json
import pathlib
from itertools import pairwise

import pytest
import torch
import torch.nn.functional as F
from all_methods import check_all_methods
from code_payload import TouchOnLoad

from sefa_plugin import SefaPipeline
from sefa_plugin.cli import main
from sefa_plugin.convert import convert_checkpoint, detect_format
from sefa_plugin.convert.voynov import convert_voynov, convert_voynov_state_dict
from sefa_plugin.models import PGGANGenerator, SNGANResNetGenerator

Z = 8


# ------------------------------------------------------------------------------------------ SN-GAN ResNet
def sngan_state(channels=(16, 8, 8), img_channels=3, seed=0, prefix="model.") -> dict[str, torch.Tensor]:
    """Their `GenWrapper` state dict: Sequential(dense, Reshape, blocks..., BN, ReLU, conv, Tanh)."""
    g = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}

    def conv(name: str, cin: int, cout: int) -> None:
        state[f"{name}.weight"] = torch.randn(cout, cin, 3, 3, generator=g) / (3 * cin**0.5)
        state[f"{name}.bias"] = 0.1 * torch.randn(cout, generator=g)

    def bn(name: str, c: int) -> None:
        state[f"{name}.weight"] = 1 + 0.2 * torch.randn(c, generator=g)
        state[f"{name}.bias"] = 0.1 * torch.randn(c, generator=g)
        state[f"{name}.running_mean"] = 0.3 * torch.randn(c, generator=g)
        state[f"{name}.running_var"] = 0.5 + torch.rand(c, generator=g)
        state[f"{name}.num_batches_tracked"] = torch.tensor(100)

    state[f"{prefix}0.weight"] = torch.randn(channels[0] * 16, Z, generator=g) / Z**0.5
    state[f"{prefix}0.bias"] = 0.1 * torch.randn(channels[0] * 16, generator=g)
    for i, (cin, cout) in enumerate(pairwise(channels)):
        bn(f"{prefix}{2 + i}.model.0", cin)
        conv(f"{prefix}{2 + i}.model.3", cin, cout)
        bn(f"{prefix}{2 + i}.model.4", cout)
        conv(f"{prefix}{2 + i}.model.6", cout, cout)
        if cin != cout:
            conv(f"{prefix}{2 + i}.bypass.1", cin, cout)
    n = len(channels) - 1
    bn(f"{prefix}{2 + n}", channels[-1])
    conv(f"{prefix}{4 + n}", channels[-1], img_channels)
    return state


def their_sngan(state: dict[str, torch.Tensor], z: torch.Tensor, prefix="model.") -> torch.Tensor:
    """Their forward in eval mode, written from `sn_gen_resnet.py`'s layer sequence."""

    def p(name: str) -> dict[str, torch.Tensor]:
        return {k[len(prefix + name) + 1 :]: v for k, v in state.items() if k.startswith(prefix + name + ".")}

    def bn(x: torch.Tensor, s: dict) -> torch.Tensor:
        return F.batch_norm(x, s["running_mean"], s["running_var"], s["weight"], s["bias"], False, 0.0, 1e-5)

    def conv(x: torch.Tensor, s: dict) -> torch.Tensor:
        return F.conv2d(x, s["weight"], s["bias"], padding=1)

    def up(x: torch.Tensor) -> torch.Tensor:
        return x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)

    x = F.linear(z, state[f"{prefix}0.weight"], state[f"{prefix}0.bias"])
    x = x.view(z.shape[0], -1, 4, 4)
    i = 2
    while f"{prefix}{i}.model.3.weight" in state:
        h = conv(F.relu(bn(conv(up(F.relu(bn(x, p(f"{i}.model.0")))), p(f"{i}.model.3")), p(f"{i}.model.4"))),
                 p(f"{i}.model.6"))  # fmt: skip
        skip = up(x) if f"{prefix}{i}.bypass.1.weight" not in state else conv(up(x), p(f"{i}.bypass.1"))
        x, i = h + skip, i + 1
    return torch.tanh(conv(F.relu(bn(x, p(str(i)))), p(str(i + 2))))


def write_sngan_folder(root: pathlib.Path, state: dict, model="sn_resnet32", image_channels=3) -> pathlib.Path:
    root.mkdir(parents=True)
    (root / "args.json").write_text(json.dumps({"model": model, "latent_dim": Z, "image_channels": image_channels}))
    torch.save(state, root / "generator.pt")
    return root


@pytest.mark.parametrize(("channels", "img_channels"), [((16, 8, 8), 3), ((8, 8, 8, 8), 1)])
def test_sngan_folder_matches_their_forward(tmp_path, channels, img_channels):
    state = sngan_state(channels, img_channels)
    folder = write_sngan_folder(tmp_path / "SN_Anime", state, image_channels=img_channels)
    assert detect_format(folder) == "voynov" and detect_format(folder / "generator.pt") == "voynov"
    assert main(["convert", str(folder), "--out", str(tmp_path / "ours")]) == 0
    g = SefaPipeline.from_pretrained(tmp_path / "ours").generator
    assert isinstance(g, SNGANResNetGenerator) and list(g.config.channels) == list(channels)
    assert g.config.img_resolution == 4 * 2 ** (len(channels) - 1) and g.config.img_channels == img_channels
    z = torch.randn(3, Z, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        diff = (g(z) - their_sngan(state, z)).abs().max()
    assert diff <= 1e-4
    # SeFa reads their dense weight: eigenvectors of AᵀA with unit-norm rows, as the formula says.
    a = F.normalize(state["model.0.weight"].double(), dim=1)
    values = torch.linalg.eigvalsh(a.T @ a).flip(0)
    torch.testing.assert_close(SefaPipeline(generator=g).factorize().values.double(), values, rtol=1e-4, atol=1e-5)


def test_bare_sequential_state_dict_and_training_layout(tmp_path):
    state = sngan_state(prefix="")
    g = convert_voynov_state_dict(state)
    z = torch.randn(2, Z)
    with torch.no_grad():
        assert (g(z) - their_sngan(state, z, prefix="")).abs().max() <= 1e-4


def test_sngan_all_methods(tmp_path):
    folder = write_sngan_folder(tmp_path / "SN_MNIST", sngan_state((8, 8, 8), 1), image_channels=1)
    SefaPipeline.from_checkpoint(folder).save_pretrained(tmp_path / "ours")
    check_all_methods(tmp_path / "ours")


def test_sngan_errors_name_the_key(tmp_path):
    state = sngan_state()
    state["model.3.model.6.weight"] = torch.zeros(8, 8, 1, 1)
    with pytest.raises(ValueError, match=r"key 'model\.3\.model\.6\.weight' has shape \[8, 8, 1, 1\], expected"):
        convert_voynov_state_dict(state)
    extra = {**sngan_state(), "model.9.weight": torch.zeros(1)}
    with pytest.raises(ValueError, match=r"keys the converter does not understand: \['model\.9\.weight'\]"):
        convert_voynov_state_dict(extra)
    folder = write_sngan_folder(tmp_path / "bad", sngan_state(), image_channels=1)
    with pytest.raises(ValueError, match=r"args.json's 'image_channels' is 1 but the weights have 3"):
        convert_voynov(folder)
    with pytest.raises(ValueError, match="Not a GANLatentDiscovery generator"):
        convert_voynov_state_dict({"x": torch.zeros(1)})


def test_pickled_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    folder = write_sngan_folder(tmp_path / "evil", {**sngan_state(), "hook": TouchOnLoad(marker)})
    with pytest.raises(Exception, match=r"Unsupported global|weights_only"):
        convert_checkpoint(folder)
    assert not marker.exists()


# ------------------------------------------------------------------------------------------ ProgGAN
def proggan_state(res=16, seed=0, channels=None) -> dict[str, torch.Tensor]:
    """ptrblck/prog_gans_pytorch_inference's layout: features.{i}.{conv.weight, wscale.scale, wscale.b}, output."""
    g = torch.Generator().manual_seed(seed)
    channels = channels or {4: 16, 8: 16, 16: 8}
    state: dict[str, torch.Tensor] = {}

    def layer(name: str, cin: int, cout: int, k: int) -> None:
        state[f"{name}.conv.weight"] = torch.randn(cout, cin, k, k, generator=g)
        state[f"{name}.wscale.scale"] = torch.rand(1, generator=g) * 0.2 + 0.05
        state[f"{name}.wscale.b"] = 0.1 * torch.randn(cout, generator=g)

    cin, i, r = Z, 0, 4
    while r <= res:
        layer(f"features.{i}", cin if r == 4 else channels[r // 2], channels[r], 4 if r == 4 else 3)
        layer(f"features.{i + 1}", channels[r], channels[r], 3)
        cin, i, r = channels[r], i + 2, r * 2
    layer("output", channels[res], 3, 1)
    return state


def their_proggan(state: dict[str, torch.Tensor], z: torch.Tensor) -> torch.Tensor:
    """Their forward on z [N, Z, 1, 1]: per layer pixel norm, (nearest up), conv, x·scale + b, leaky ReLU."""

    def layer(x: torch.Tensor, name: str, up: bool, pad: int, act: bool) -> torch.Tensor:
        x = x / torch.sqrt(torch.mean(x**2, dim=1, keepdim=True) + 1e-8)
        x = F.interpolate(x, scale_factor=2, mode="nearest") if up else x
        x = F.conv2d(x, state[f"{name}.conv.weight"], padding=pad)
        x = x * state[f"{name}.wscale.scale"] + state[f"{name}.wscale.b"].view(1, -1, 1, 1)
        return F.leaky_relu(x, 0.2) if act else x

    x = z[:, :, None, None]
    i = 0
    while f"features.{i}.conv.weight" in state:
        x = layer(x, f"features.{i}", up=i > 0 and i % 2 == 0, pad=3 if i == 0 else 1, act=True)
        i += 1
    return layer(x, "output", up=False, pad=0, act=False)


def test_proggan_matches_their_forward_and_maps_onto_pggan(tmp_path):
    state = proggan_state()
    path = tmp_path / "100_celeb_hq_network-snapshot-010403.pth"
    torch.save(state, path)
    assert detect_format(path) == "voynov"
    pipe = SefaPipeline.from_checkpoint(path)
    assert pipe.source["source_format"] == "voynov" and "CC BY-NC" in pipe.source["license_note"]
    pipe.save_pretrained(tmp_path / "ours")
    g = SefaPipeline.from_pretrained(tmp_path / "ours").generator
    assert isinstance(g, PGGANGenerator) and g.config.img_resolution == 16 and g.config.z_dim == Z
    z = torch.randn(3, Z, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        diff = (g(z) - their_proggan(state, z)).abs().max()
    assert diff <= 1e-4
    # SeFa: their 4×4 conv on a 1×1 input is a dense map; its rows (one per output unit) are the flipped kernel.
    w = state["features.0.conv.weight"].double() * state["features.0.wscale.scale"].double()
    a = F.normalize(w.flip(2, 3).permute(0, 2, 3, 1).reshape(-1, Z), dim=1)
    values = torch.linalg.eigvalsh(a.T @ a).flip(0)
    torch.testing.assert_close(SefaPipeline(generator=g).factorize().values.double(), values, rtol=1e-4, atol=1e-5)
    check_all_methods(tmp_path / "ours")


def test_proggan_errors_name_the_key():
    state = proggan_state()
    state["features.2.conv.weight"] = torch.zeros(16, 16, 1, 1)
    with pytest.raises(ValueError, match=r"key 'features\.2\.conv\.weight' has shape \[16, 16, 1, 1\]"):
        convert_voynov_state_dict(state)
    state = proggan_state()
    state["features.1.wscale.scale"] = torch.ones(2)
    with pytest.raises(ValueError, match=r"'features\.1\.wscale\.scale' must be a one-element tensor"):
        convert_voynov_state_dict(state)
    state = proggan_state()
    del state["features.3.wscale.b"]
    with pytest.raises(ValueError, match=r"missing key 'features\.3\.wscale\.b'"):
        convert_voynov_state_dict(state)
