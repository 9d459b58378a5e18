"""Whole-module pickles: module trees rebuilt as inert records, flattened, and mapped by each format's key table."""

from __future__ import annotations

import sys

import pytest
import torch
from factories import tiny_stylegan2
from test_convert_genforce import genforce_pggan_state
from test_convert_rosinality import to_rosinality
from torch import nn

from sefa_plugin.convert import convert_checkpoint, convert_genforce, convert_rosinality, detect_format
from sefa_plugin.convert.module_pickle import ModuleRecord, load_module_pickle
from sefa_plugin.convert.safe_unpickler import safe_load


def module_from_state(state: dict[str, torch.Tensor]) -> nn.Module:
    """A plain `nn.Module` tree whose state dict is `state` (as a user's own model class would hold it)."""
    root = nn.Module()
    for key, tensor in state.items():
        *path, name = key.split(".")
        module = root
        for part in path:
            if part not in module._modules:
                module.add_module(part, nn.Module())
            module = module._modules[part]
        if tensor.is_floating_point():
            module.register_parameter(name, nn.Parameter(tensor.clone(), requires_grad=False))
        else:
            module.register_buffer(name, tensor.clone())
    return root


def test_state_dict_matches_torch_and_nothing_is_imported(tmp_path):
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Linear(4, 2))
    net.register_buffer("scratch", torch.ones(1), persistent=False)
    shared = nn.Linear(2, 2)
    net.add_module("tied", shared)
    path = tmp_path / "net.pth"
    torch.save(net, path)
    before = set(sys.modules)
    flat = load_module_pickle(path)
    assert list(flat) == list(net.state_dict())  # same keys, same order; the non-persistent buffer is left out
    for key, value in net.state_dict().items():
        assert torch.equal(flat[key], value)
    assert set(sys.modules) == before
    record = safe_load(path, find_global=lambda m, n: type("R", (ModuleRecord,), {"pickled_class": f"{m}.{n}"}))
    assert isinstance(record, ModuleRecord) and record.class_name == "torch.nn.modules.container.Sequential"
    assert repr(record) == "R('torch.nn.modules.container.Sequential', 0 parameters, 1 buffers, 5 modules)"


def test_genforce_and_rosinality_modules_map_by_their_key_tables(tmp_path):
    state = genforce_pggan_state()
    torch.save(module_from_state(state), tmp_path / "pggan.pth")
    assert detect_format(tmp_path / "pggan.pth") == "genforce"
    expected = convert_genforce(state)
    z = torch.randn(2, expected.config.z_dim)
    torch.testing.assert_close(convert_checkpoint(tmp_path / "pggan.pth")(z), expected(z), rtol=0, atol=0)

    g = tiny_stylegan2(trained_like=True, channel_max=32, mapping_layers=3)
    ros_state, latent_avg = to_rosinality(g)
    torch.save({"g_ema": module_from_state(ros_state), "latent_avg": latent_avg}, tmp_path / "ros.pt")
    assert detect_format(tmp_path / "ros.pt") == "rosinality"
    z = torch.randn(2, g.config.z_dim)
    expected = convert_rosinality({"g_ema": ros_state, "latent_avg": latent_avg})(z, noise_mode="const")
    got = convert_checkpoint(tmp_path / "ros.pt")(z, noise_mode="const")
    torch.testing.assert_close(got, expected, rtol=0, atol=0)


@pytest.mark.parametrize("zip_format", [True, False])
def test_detection_leaves_tensor_data_unread(tmp_path, zip_format):
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    torch.save(net, tmp_path / "net.pth", _use_new_zipfile_serialization=zip_format)
    meta = load_module_pickle(tmp_path / "net.pth", read_data=False)
    assert {k: (v.shape, v.device.type) for k, v in meta.items()} == {
        k: (v.shape, "meta") for k, v in net.state_dict().items()
    }
