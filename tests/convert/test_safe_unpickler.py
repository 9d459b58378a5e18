"""Restricted unpickler: what it rebuilds (torch.save zip/legacy, plain pickles) and what it refuses."""

from __future__ import annotations

import builtins
import io
import os
import pickle
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from nvidia_fakes import EasyDict, Persistent, module_state, nvidia_pickle_bytes

from sefa_plugin.convert import UnsafePickleError, convert_checkpoint, convert_nvidia_pickle, safe_load
from sefa_plugin.convert.safe_unpickler import LEGACY_MAGIC_NUMBER, AttrDict, PersistentRecord

# --------------------------------------------------------------------------------------------- loading


def sample_object() -> dict:
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    return {
        "view": base[:, 1:],  # non-contiguous view of a shared storage
        "base": base,
        "param": nn_param(torch.randn(2, 3)),
        "half": torch.randn(4).half(),
        "long": torch.arange(3),
        "bool": torch.tensor([True, False]),
        "empty": torch.empty(0),
        "od": OrderedDict(a=1, b=[1.5, "x"]),
        "set": {1, 2},
        "bytes": b"\x00\xff",
        "array": np.arange(6, dtype=np.float32).reshape(2, 3),
        "scalar": np.float64(2.5),
        "size": torch.Size([2, 3]),
        "dtype": torch.float16,
    }


def nn_param(t: torch.Tensor) -> torch.nn.Parameter:
    return torch.nn.Parameter(t, requires_grad=False)


def assert_same(got: dict, want: dict, shared_storage: bool = True) -> None:
    assert got.keys() == want.keys()
    for key, value in want.items():
        if isinstance(value, torch.Tensor):
            assert type(got[key]) is type(value), key
            assert got[key].dtype == value.dtype and torch.equal(got[key], value), key
        elif isinstance(value, np.ndarray):
            np.testing.assert_array_equal(got[key], value)
        else:
            assert got[key] == value and type(got[key]) is type(value), key
    if shared_storage:  # torch.save keeps one storage per storage; plain pickles copy each tensor's
        assert got["view"].untyped_storage().data_ptr() == got["base"].untyped_storage().data_ptr()


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_plain_pickle_roundtrip(protocol: int) -> None:
    obj = sample_object()
    assert_same(safe_load(pickle.dumps(obj, protocol=protocol)), obj, shared_storage=False)


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_torch_save_roundtrip(tmp_path: Path, zip_format: bool) -> None:
    obj = sample_object()
    path = tmp_path / "ckpt.pt"
    torch.save(obj, path, _use_new_zipfile_serialization=zip_format)
    assert_same(safe_load(path), obj)
    assert_same(safe_load(path.read_bytes()), obj)
    with open(path, "rb") as handle:
        assert_same(safe_load(handle), obj)


def test_persistent_objects_become_inert_records() -> None:
    child = Persistent("FullyConnectedLayer", module_state({"weight": torch.ones(2, 3)}, bias_gain=0.01))
    root = Persistent(
        "Generator",
        module_state(
            buffers={"w_avg": torch.zeros(3)},
            modules={"fc0": child, "missing": None},
            init_kwargs={"z_dim": 3, "mapping_kwargs": EasyDict(num_layers=1)},
            z_dim=3,
        ),
    )
    data = safe_load(nvidia_pickle_bytes({"G_ema": root, "kwargs": EasyDict(path="x")}))
    assert "torch_utils" not in sys.modules and "dnnlib" not in sys.modules
    record = data["G_ema"]
    assert isinstance(record, PersistentRecord) and record.class_name == "Generator"
    assert isinstance(data["kwargs"], AttrDict) and data["kwargs"].path == "x"
    assert record.init_kwargs["mapping_kwargs"].num_layers == 1
    assert record.attributes == {"z_dim": 3}
    assert record.get("fc0").attributes == {"bias_gain": 0.01}
    assert list(record.state_dict()) == ["w_avg", "fc0.weight"]
    assert record.module_src_sha256 is not None and len(record.module_src_sha256) == 64


# ------------------------------------------------------------------------------------------ refusing
class Reduce:
    """Pickles as ``func(*args)``."""

    def __init__(self, func, *args) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> tuple:
        return (self.func, self.args)


def attacks(sentinel: Path) -> dict[str, tuple[object, tuple[str, ...]]]:
    """Payloads that would create `sentinel` if unpickled naively, and the global names they use."""
    code = f"open({str(sentinel)!r}, 'w').write('pwned')"
    return {
        "os.system": (Reduce(os.system, f"touch {sentinel}"), ("posix.system", "os.system", "nt.system")),
        "builtins.eval": (Reduce(builtins.eval, code), ("builtins.eval",)),
        "builtins.exec": (Reduce(builtins.exec, code), ("builtins.exec",)),
        "subprocess.Popen": (Reduce(subprocess.Popen, ["touch", str(sentinel)]), ("subprocess.Popen",)),
    }


ATTACKS = ["os.system", "builtins.eval", "builtins.exec", "subprocess.Popen"]


def wrap(kind: str, payload: object, tmp_path: Path) -> bytes:
    """Hide `payload` in the different containers the loader accepts."""
    if kind == "plain":
        return pickle.dumps({"weights": torch.ones(2), "x": payload}, protocol=4)
    if kind == "protocol0":
        return pickle.dumps(payload, protocol=0)
    if kind in ("zip", "legacy"):
        buffer = io.BytesIO()
        torch.save({"w": torch.ones(2), "x": payload}, buffer, _use_new_zipfile_serialization=kind == "zip")
        return buffer.getvalue()
    if kind == "nvidia-state":  # inside a persistent object's state
        return nvidia_pickle_bytes({"G_ema": Persistent("Generator", module_state(extra=payload))})
    if kind == "nested-storage":  # inside the legacy blob a tensor storage is pickled as
        blob = b"".join(
            pickle.dumps(part, protocol=2) for part in (LEGACY_MAGIC_NUMBER, 1001, {"little_endian": True})
        ) + pickle.dumps(payload, protocol=2)
        return pickle.dumps(Reduce(torch.storage._load_from_bytes, blob), protocol=4)
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["plain", "protocol0", "zip", "legacy", "nvidia-state", "nested-storage"])
@pytest.mark.parametrize("attack", ATTACKS)
def test_malicious_globals_are_refused(tmp_path: Path, attack: str, kind: str) -> None:
    sentinel = tmp_path / "sentinel"
    payload, names = attacks(sentinel)[attack]
    data = wrap(kind, payload, tmp_path)
    with pytest.raises(UnsafePickleError) as info:
        safe_load(data)
    assert info.value.global_name in names
    assert info.value.global_name in str(info.value)
    assert not sentinel.exists()


@pytest.mark.parametrize("attack", ATTACKS)
def test_converters_refuse_malicious_files(tmp_path: Path, attack: str) -> None:
    sentinel = tmp_path / "sentinel"
    payload, _ = attacks(sentinel)[attack]
    path = tmp_path / "net.pkl"
    path.write_bytes(wrap("nvidia-state", payload, tmp_path))
    with pytest.raises(UnsafePickleError):
        convert_nvidia_pickle(path)
    with pytest.raises(UnsafePickleError):
        convert_checkpoint(path)
    assert not sentinel.exists()


def test_module_src_is_never_executed(tmp_path: Path) -> None:
    sentinel = tmp_path / "sentinel"
    src = f"open({str(sentinel)!r}, 'w').write('pwned')\nclass Generator:\n    pass\n"
    obj = Persistent("Generator", module_state({"w": torch.ones(1)}), module_src=src)
    data = nvidia_pickle_bytes({"G_ema": obj})
    record = safe_load(data)["G_ema"]  # loads as an inert description of the object
    assert isinstance(record, PersistentRecord) and torch.equal(record.parameters["w"], torch.ones(1))
    path = tmp_path / "net.pkl"
    path.write_bytes(data)
    with pytest.raises(ValueError, match="mapping"):  # not a StyleGAN2 generator: refused, still nothing ran
        convert_nvidia_pickle(path)
    assert not sentinel.exists()
    assert "torch_utils" not in sys.modules


@pytest.mark.parametrize(
    "name",
    ["builtins.getattr", "copyreg._reconstructor", "torch.load", "numpy.load", "functools.partial"],
)
def test_other_globals_are_refused(name: str) -> None:
    module, attr = name.rsplit(".", 1)
    data = b"\x80\x02c" + module.encode() + b"\n" + attr.encode() + b"\n."  # PROTO 2, GLOBAL, STOP
    with pytest.raises(UnsafePickleError, match=name.replace(".", r"\.")):
        safe_load(data)


def test_object_arrays_and_tensor_hooks_are_refused() -> None:
    with pytest.raises(UnsafePickleError, match="numpy"):
        safe_load(pickle.dumps(np.array([1, "a"], dtype=object)))
    hooked = Reduce(torch._utils._rebuild_parameter, torch.ones(2), False, OrderedDict(hook=1))
    with pytest.raises(UnsafePickleError, match="hooks"):
        safe_load(pickle.dumps(hooked))


def test_out_of_bounds_tensor_is_rejected() -> None:
    data = pickle.dumps(torch.arange(4.0))
    evil = data.replace(b"K\x04\x85", b"K\x40\x85")  # size (4,) -> (64,) over a 4-element storage
    assert evil != data
    with pytest.raises(pickle.UnpicklingError, match="does not fit"):
        safe_load(evil)
    evil_offset = data.replace(b"K\x00K\x04\x85", b"K\x02K\x04\x85")  # offset 0 -> 2
    assert evil_offset != data
    with pytest.raises(pickle.UnpicklingError, match="does not fit"):
        safe_load(evil_offset)
