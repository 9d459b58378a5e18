"""NVIDIA StyleGAN3 pickles: fake network snapshots written by the test, converted back and compared."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from factories import TINY_R, tiny_stylegan3
from nvidia_fakes import EasyDict, Persistent, module_state, nvidia_pickle_bytes
from torch import nn

from sefa_plugin.convert import convert_checkpoint, convert_nvidia_pickle, detect_format
from sefa_plugin.convert.nvidia_stylegan3 import STYLEGAN3_KEY_PATTERNS, stylegan3_key_map
from sefa_plugin.models.stylegan3 import StyleGAN3Generator

#: The generator's synthesis arguments, as NVIDIA's train.py passes them to ``Generator(**G_kwargs)`` (flat).
_SYNTHESIS_KWARGS = (
    "channel_base", "channel_max", "num_layers", "num_critical", "first_cutoff", "first_stopband",
    "last_stopband_rel", "margin_size", "output_scale", "conv_kernel", "filter_size", "lrelu_upsampling",
    "use_radial_filters", "conv_clamp", "magnitude_ema_beta",
)  # fmt: skip
# Runtime attributes NVIDIA's modules carry in their pickled __dict__, besides weights.
_ATTRS = {
    "MappingNetwork": ("z_dim", "c_dim", "w_dim", "num_ws", "num_layers", "w_avg_beta"),
    "FullyConnectedLayer": ("activation", "weight_gain", "bias_gain"),
    "SynthesisNetwork": ("w_dim", "img_resolution", "img_channels", "num_ws", "num_layers", "num_critical",
                         "margin_size", "output_scale"),
    "SynthesisInput": ("w_dim", "channels", "sampling_rate", "bandwidth"),
    "SynthesisLayer": ("is_torgb", "is_critically_sampled", "conv_kernel", "conv_clamp", "magnitude_ema_beta",
                       "up_factor", "down_factor", "down_radial"),
}  # fmt: skip


def to_persistent(module: nn.Module, name: str | None = None) -> Persistent:
    """Describe `module` the way NVIDIA's persistence pickles its networks_stylegan3 objects."""
    name = name or type(module).__name__
    attributes = {a: getattr(module, a) for a in _ATTRS.get(name, ()) if hasattr(module, a)}
    if name == "SynthesisNetwork":
        attributes.update(layer_names=list(module.layer_names))
    if name == "SynthesisInput":  # NVIDIA keeps sizes as numpy [width, height] and rates as numpy floats
        attributes.update(size=np.array([module.size, module.size]), sampling_rate=np.float64(module.sampling_rate))
    if name == "SynthesisLayer":
        attributes.update(padding=list(module.padding), in_size=np.array([module.in_size] * 2), use_fp16=np.False_)
    children = {k: to_persistent(m) for k, m in module.named_children()}
    present = {k: v for k, v in module._buffers.items() if v is not None}
    state = module_state(dict(module.named_parameters(recurse=False)), present, children, **attributes)
    for key, value in module._buffers.items():  # NVIDIA pickles absent filters as None buffers
        if value is None:
            state["_buffers"][key] = None
    return Persistent(name, state)


def nvidia_snapshot(g: StyleGAN3Generator, omit: tuple[str, ...] = ()) -> dict:
    cfg = g.config
    init_kwargs = dict(
        z_dim=cfg.z_dim, c_dim=cfg.c_dim, w_dim=cfg.w_dim, img_resolution=cfg.img_resolution,
        img_channels=cfg.img_channels, mapping_kwargs=EasyDict(num_layers=cfg.mapping_layers), num_fp16_res=4,
        **{k: cfg[k] for k in _SYNTHESIS_KWARGS if k not in omit},
    )  # fmt: skip
    g_ema = to_persistent(g, "Generator")
    g_ema.meta["state"]["_init_kwargs"] = init_kwargs
    return {
        "G": to_persistent(g, "Generator"),
        "D": Persistent("Discriminator", module_state({"b4.fc.weight": torch.ones(2, 2)})),
        "G_ema": g_ema,
        "augment_pipe": None,
        "training_set_kwargs": EasyDict(path="scenes.zip", use_labels=cfg.c_dim > 0),
    }


def write(tmp_path: Path, obj: object) -> Path:
    path = tmp_path / "network-snapshot.pkl"
    path.write_bytes(nvidia_pickle_bytes(obj))
    return path


def child(record: Persistent, path: str) -> Persistent:
    for part in path.split("."):
        record = record.meta["state"]["_modules"][part]
    return record


@pytest.mark.parametrize(
    "kwargs",
    [dict(c_dim=3, conv_clamp=0.5, mapping_layers=3), dict(**TINY_R, magnitude_ema_beta=0.99, output_scale=0.5)],
    ids=["T-conditional", "R"],
)
def test_convert_matches_direct_model(tmp_path: Path, kwargs: dict) -> None:
    g = tiny_stylegan3(**kwargs)
    path = write(tmp_path, nvidia_snapshot(g))

    assert detect_format(path) == "nvidia"
    converted = convert_nvidia_pickle(path)
    assert isinstance(converted, StyleGAN3Generator) and not converted.training
    assert "torch_utils" not in sys.modules and "dnnlib" not in sys.modules
    public = {k: v for k, v in g.config.items() if not k.startswith("_")}
    assert {k: converted.config[k] for k in public} == public
    want, got = g.state_dict(), converted.state_dict()
    assert want.keys() == got.keys() and all(torch.equal(want[k], got[k]) for k in want)

    z = torch.randn(3, 8, generator=torch.Generator().manual_seed(1))
    c = torch.eye(3)[[0, 2, 1]] if g.config.c_dim else None
    with torch.no_grad():
        for psi, cutoff in [(1.0, None), (0.7, None), (0.5, 2)]:
            expected = g(z, c, truncation_psi=psi, truncation_cutoff=cutoff)
            torch.testing.assert_close(converted(z, c, truncation_psi=psi, truncation_cutoff=cutoff), expected)

    again = convert_checkpoint(path)
    assert isinstance(again, StyleGAN3Generator)
    assert all(torch.equal(again.state_dict()[k], want[k]) for k in want)


def test_key_map_is_the_identity_on_every_key() -> None:
    g = tiny_stylegan3(c_dim=2)
    key_map = stylegan3_key_map(g)
    assert key_map == {k: k for k in g.state_dict()}
    assert len(STYLEGAN3_KEY_PATTERNS) == 7


def test_missing_kwargs_fall_back_to_the_recorded_layers(tmp_path: Path) -> None:
    g = tiny_stylegan3(**TINY_R)
    # conv_kernel, use_radial_filters, num_layers ... are also recorded as attributes of the layers.
    omit = ("num_layers", "num_critical", "margin_size", "conv_kernel", "use_radial_filters", "first_cutoff")
    converted = convert_nvidia_pickle(write(tmp_path, nvidia_snapshot(g, omit=omit)))
    assert {k: converted.config[k] for k in omit} == {k: g.config[k] for k in omit}


def test_inconsistent_frequency_layout_is_reported(tmp_path: Path) -> None:
    g = tiny_stylegan3()
    snapshot = nvidia_snapshot(g, omit=("first_stopband",))  # NVIDIA's default 2**2.1 is then assumed
    with pytest.raises(ValueError, match=r"layers \[.*\], but the checkpoint has"):
        convert_nvidia_pickle(write(tmp_path, snapshot))
    snapshot = nvidia_snapshot(g, omit=("last_stopband_rel",))
    snapshot["G_ema"].meta["state"]["_init_kwargs"]["last_stopband_rel"] = 2**0.5  # same layers, other filters
    with pytest.raises(ValueError, match=r"'synthesis\.L\d+_\d+_\d+\.(up|down)_filter' differs"):
        convert_nvidia_pickle(write(tmp_path, snapshot))


def test_kwargs_that_contradict_the_layers_are_reported(tmp_path: Path) -> None:
    snapshot = nvidia_snapshot(tiny_stylegan3())
    snapshot["G_ema"].meta["state"]["_init_kwargs"]["conv_kernel"] = 1
    with pytest.raises(ValueError, match=r"`conv_kernel`=1.*built with 3"):
        convert_nvidia_pickle(write(tmp_path, snapshot))
    snapshot = nvidia_snapshot(tiny_stylegan3())
    snapshot["G_ema"].meta["state"]["_init_kwargs"]["fused_modconv_default"] = True
    with pytest.raises(ValueError, match="fused_modconv_default"):
        convert_nvidia_pickle(write(tmp_path, snapshot))


def test_shape_mismatch_and_unknown_keys_name_the_key(tmp_path: Path) -> None:
    g = tiny_stylegan3()
    snapshot = nvidia_snapshot(g)
    affine = child(snapshot["G_ema"], "synthesis.L1_12_16.affine")
    affine.meta["state"]["_parameters"]["weight"] = nn.Parameter(torch.ones(5, 8), requires_grad=False)
    with pytest.raises(ValueError, match=r"synthesis\.L1_12_16\.affine\.weight.*\[5, 8\]"):
        convert_nvidia_pickle(write(tmp_path, snapshot))

    snapshot = nvidia_snapshot(g)
    child(snapshot["G_ema"], "synthesis.L2_20_16").meta["state"]["_buffers"]["extra"] = torch.ones(2)
    with pytest.raises(ValueError, match=r"synthesis\.L2_20_16\.extra"):
        convert_nvidia_pickle(write(tmp_path, snapshot))


def test_stylegan3_record_without_layers_is_reported(tmp_path: Path) -> None:
    snapshot = nvidia_snapshot(tiny_stylegan3())
    synthesis = child(snapshot["G_ema"], "synthesis")
    for name in [n for n in synthesis.meta["state"]["_modules"] if n.startswith("L")]:
        del synthesis.meta["state"]["_modules"][name]
    del synthesis.meta["state"]["layer_names"]
    with pytest.raises(ValueError, match="StyleGAN3 synthesis network has no layers"):
        convert_nvidia_pickle(write(tmp_path, snapshot))
