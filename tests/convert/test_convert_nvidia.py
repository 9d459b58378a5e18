"""NVIDIA StyleGAN2 pickles: fake network snapshots written by the test, converted back and compared."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from factories import tiny_stylegan2 as _tiny
from nvidia_fakes import EasyDict, Persistent, module_state, nvidia_pickle_bytes
from torch import nn

from sefa_plugin.convert import FORMATS, convert_checkpoint, convert_nvidia_pickle, detect_format
from sefa_plugin.models import StyleGAN2Generator


def tiny_generator(seed: int = 0, **kwargs) -> StyleGAN2Generator:
    return _tiny(seed, trained_like=True, **kwargs)


# Runtime attributes NVIDIA's modules carry in their pickled __dict__, besides weights.
_ATTRS = {
    "MappingNetwork": ("z_dim", "c_dim", "w_dim", "num_ws", "num_layers", "w_avg_beta"),
    "FullyConnectedLayer": ("activation", "weight_gain", "bias_gain"),
    "SynthesisNetwork": ("w_dim", "img_resolution", "img_channels", "block_resolutions", "num_ws"),
    "SynthesisBlock": ("in_channels", "resolution", "num_conv", "num_torgb"),
    "SynthesisLayer": ("resolution", "up", "use_noise", "conv_clamp"),
    "ToRGBLayer": ("conv_clamp", "weight_gain"),
}


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny convolutions are far faster on one thread, especially on a busy machine."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def to_persistent(module: nn.Module, channels_last: bool = False, **extra) -> Persistent:
    """Describe `module` the way NVIDIA's persistence pickles its own networks."""
    name = "Generator" if isinstance(module, StyleGAN2Generator) else type(module).__name__
    attributes = {a: getattr(module, a) for a in _ATTRS.get(name, ()) if hasattr(module, a)}
    if name == "SynthesisLayer":
        attributes["activation"] = "lrelu"
    if name == "SynthesisBlock":
        attributes.update(architecture="skip", use_fp16=False)
    attributes.update(extra.pop(name, {}))
    params = {}
    for key, p in module.named_parameters(recurse=False):
        params[key] = p.contiguous(memory_format=torch.channels_last) if channels_last and p.ndim == 4 else p
    children = {k: to_persistent(m, channels_last, **extra) for k, m in module.named_children()}
    buffers = dict(module.named_buffers(recurse=False))
    return Persistent(name, module_state(params, buffers, children, **attributes))


def nvidia_snapshot(g: StyleGAN2Generator, flat_kwargs: bool = False, **extra) -> dict:
    cfg = g.config
    synthesis_kwargs = EasyDict(
        channel_base=cfg.channel_base, channel_max=cfg.channel_max, num_fp16_res=0, conv_clamp=cfg.conv_clamp
    )
    init_kwargs = dict(
        z_dim=cfg.z_dim, c_dim=cfg.c_dim, w_dim=cfg.w_dim, img_resolution=cfg.img_resolution,
        img_channels=cfg.img_channels, mapping_kwargs=EasyDict(num_layers=cfg.mapping_layers),
    )  # fmt: skip
    if flat_kwargs:  # stylegan3's networks_stylegan2: Generator(..., **synthesis_kwargs)
        init_kwargs.update(synthesis_kwargs)
    else:  # stylegan2-ada-pytorch: Generator(..., synthesis_kwargs={...})
        init_kwargs["synthesis_kwargs"] = synthesis_kwargs
    g_ema = to_persistent(g, **extra)
    g_ema.meta["state"]["_init_kwargs"] = init_kwargs
    return {
        "G": to_persistent(g),
        "D": Persistent("Discriminator", module_state({"b4.fc.weight": torch.ones(2, 2)})),
        "G_ema": g_ema,
        "augment_pipe": None,
        "training_set_kwargs": EasyDict(path="scenes.zip", use_labels=cfg.c_dim > 0),
    }


def write(tmp_path: Path, obj: object, protocol: int = 4) -> Path:
    path = tmp_path / "network-snapshot.pkl"
    path.write_bytes(nvidia_pickle_bytes(obj, protocol=protocol))
    return path


@pytest.mark.parametrize(
    ("kwargs", "flat", "protocol", "channels_last"),
    [
        (dict(c_dim=3, conv_clamp=256.0, w_avg_beta=0.995), False, 4, True),
        (dict(mapping_layers=3, img_resolution=32), True, 3, False),
    ],
    ids=["ada-conditional", "stylegan3-flat-kwargs"],
)
def test_convert_matches_direct_load(
    tmp_path: Path, kwargs: dict, flat: bool, protocol: int, channels_last: bool
) -> None:
    g = tiny_generator(**kwargs)
    snapshot = nvidia_snapshot(g, flat_kwargs=flat)
    if channels_last:
        snapshot["G_ema"] = nvidia_snapshot(g, flat_kwargs=flat)["G_ema"]
        snapshot["G_ema"].meta["state"]["_modules"]["synthesis"] = to_persistent(g.synthesis, channels_last=True)
    path = write(tmp_path, snapshot, protocol)

    assert detect_format(path) == "nvidia"
    converted = convert_nvidia_pickle(path)
    assert "torch_utils" not in sys.modules and "dnnlib" not in sys.modules
    public = {k: v for k, v in g.config.items() if not k.startswith("_")}
    assert {k: converted.config[k] for k in public} == public
    want, got = g.state_dict(), converted.state_dict()
    assert want.keys() == got.keys()
    assert all(torch.equal(want[k], got[k]) for k in want)

    z = torch.randn(3, g.config.z_dim, generator=torch.Generator().manual_seed(1))
    c = torch.eye(3)[[0, 2, 1]] if g.config.c_dim else None
    with torch.no_grad():
        for psi, cutoff in [(1.0, None), (0.7, None), (0.5, 2)]:
            expected = g(z, c, truncation_psi=psi, truncation_cutoff=cutoff, noise_mode="const")
            actual = converted(z, c, truncation_psi=psi, truncation_cutoff=cutoff, noise_mode="const")
            torch.testing.assert_close(actual, expected, rtol=0, atol=1e-6)

    again = convert_checkpoint(path)
    assert all(torch.equal(again.state_dict()[k], want[k]) for k in want)


def test_stylegan3_records_go_to_the_stylegan3_converter(tmp_path: Path) -> None:
    # A `synthesis.input` (SynthesisInput) marks a networks_stylegan3 generator: it is converted by
    # sefa_plugin.convert.nvidia_stylegan3 (tests/convert/test_convert_stylegan3.py), which reports that
    # this StyleGAN2 synthesis network has none of StyleGAN3's `L<i>_<size>_<channels>` layers.
    snapshot = nvidia_snapshot(tiny_generator())
    synthesis = snapshot["G_ema"].meta["state"]["_modules"]["synthesis"]
    synthesis.meta["state"]["_modules"]["input"] = Persistent("SynthesisInput", module_state())
    with pytest.raises(ValueError, match="StyleGAN3 synthesis network has no layers"):
        convert_nvidia_pickle(write(tmp_path, snapshot))


def test_shape_mismatch_names_the_key(tmp_path: Path) -> None:
    g = tiny_generator()
    snapshot = nvidia_snapshot(g)
    affine = snapshot["G_ema"].meta["state"]["_modules"]["synthesis"].meta["state"]["_modules"]["b8"]
    affine = affine.meta["state"]["_modules"]["conv0"].meta["state"]["_modules"]["affine"]
    affine.meta["state"]["_parameters"]["weight"] = nn.Parameter(torch.ones(5, 16), requires_grad=False)
    with pytest.raises(ValueError, match=r"synthesis\.b8\.conv0\.affine\.weight.*\[5, 16\]"):
        convert_nvidia_pickle(write(tmp_path, snapshot))


def test_unknown_keys_and_architectures_are_reported(tmp_path: Path) -> None:
    g = tiny_generator()
    snapshot = nvidia_snapshot(g)
    block = snapshot["G_ema"].meta["state"]["_modules"]["synthesis"].meta["state"]["_modules"]["b16"]
    block.meta["state"]["_modules"]["skip"] = Persistent(
        "Conv2dLayer", module_state({"weight": torch.ones(16, 16, 1, 1)})
    )
    with pytest.raises(ValueError, match=r"synthesis\.b16\.skip\.weight"):
        convert_nvidia_pickle(write(tmp_path, snapshot))

    resnet = nvidia_snapshot(g, SynthesisBlock={"architecture": "resnet"})
    with pytest.raises(ValueError, match="architecture 'resnet'"):
        convert_nvidia_pickle(write(tmp_path, resnet))


def test_missing_network_and_bad_format(tmp_path: Path) -> None:
    path = write(tmp_path, nvidia_snapshot(tiny_generator()))
    with pytest.raises(ValueError, match="'G_missing'"):
        convert_nvidia_pickle(path, key="G_missing")
    with pytest.raises(ValueError, match="format") as info:
        convert_checkpoint(path, format="tensorflow")
    assert all(f in str(info.value) for f in FORMATS)
    plain = tmp_path / "plain.pt"
    torch.save({"weights": torch.ones(2)}, plain)
    with pytest.raises(ValueError, match=r"nvidia.*rosinality"):
        convert_checkpoint(plain)
