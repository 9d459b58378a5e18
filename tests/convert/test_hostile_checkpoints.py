"""Hostile checkpoints: code in whole-module pickles and DCGAN files, memory bombs, deep and cyclic records.

Each refusal must be one clean line (an UnsafePickleError / CheckpointLimitError / ValueError naming what
was wrong), never a RecursionError, MemoryError or crash; the bombs are loaded in a subprocess that reports
its peak RSS above its own baseline (goal: < 1 GB) and the time taken (< 10 s).
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import zipfile
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from test_convert_dcgan import tutorial_sequential, write_huggan_folder
from test_safe_unpickler import ATTACKS, Reduce, attacks
from torch import nn

from sefa_plugin import SefaPipeline
from sefa_plugin.convert import UnsafePickleError, convert_checkpoint, detect_format, safe_load
from sefa_plugin.convert.module_pickle import load_module_pickle
from sefa_plugin.convert.pickle_scan import MAX_NESTING, CheckpointLimitError
from sefa_plugin.convert.safe_unpickler import LEGACY_MAGIC_NUMBER, AttrDict

# ------------------------------------------------------------------------------- code at the new entry points


class Carrier(nn.Module):
    """A generator that carries a payload as a plain attribute (pickled with the module)."""

    def __init__(self, payload: object) -> None:
        super().__init__()
        self.main = tutorial_sequential(8)
        self.payload = payload


class Evil:
    """A user class that a pickle calls with arguments, as it would call `os.system`."""


@pytest.mark.parametrize("attack", ATTACKS)
def test_whole_module_pickles_with_code_are_refused(tmp_path: Path, attack: str) -> None:
    sentinel = tmp_path / "sentinel"
    payload, names = attacks(sentinel)[attack]
    path = tmp_path / "G.pth"
    torch.save(Carrier(payload), path)
    for load in (load_module_pickle, detect_format, convert_checkpoint):
        with pytest.raises(UnsafePickleError) as info:
            load(path)
        assert info.value.global_name in names and "\n" not in str(info.value)
    assert not sentinel.exists()


def test_user_class_called_as_a_function_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "G.pth"
    torch.save(Carrier(Reduce(Evil, "touch x")), path)
    with pytest.raises(UnsafePickleError, match=r"calls it with arguments"):
        load_module_pickle(path)


def test_record_never_given_module_state_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "G.pth"
    torch.save(Reduce(Evil), path)  # `Evil()`: a record, but no module __dict__ ever arrives
    with pytest.raises(UnsafePickleError, match="never given its state"):
        load_module_pickle(path)


@pytest.mark.parametrize("attack", ATTACKS)
def test_dcgan_files_folders_and_hub_repos_with_code_are_refused(tmp_path: Path, hub_env, attack: str) -> None:
    sentinel = tmp_path / "sentinel"
    payload, _ = attacks(sentinel)[attack]
    net = tutorial_sequential(8)
    sd = {f"main.{k}": v for k, v in net.state_dict().items()}
    torch.save({"netG_state_dict": sd, "x": payload}, tmp_path / "netG.pth")
    write_huggan_folder(tmp_path / "repo", net)
    hub_sd = {f"model.{k}": v for k, v in net.state_dict().items()}
    torch.save({**hub_sd, "x": payload}, tmp_path / "repo" / "pytorch_model.bin")
    for src in (tmp_path / "netG.pth", tmp_path / "repo"):
        with pytest.raises(UnsafePickleError):
            convert_checkpoint(src)
    repo_id = hub_env.api.create_repo("evil-dcgan").repo_id
    hub_env.api.upload_folder(repo_id=repo_id, folder_path=tmp_path / "repo")
    with pytest.raises(UnsafePickleError):
        SefaPipeline.from_pretrained(repo_id)
    assert not sentinel.exists()


# ------------------------------------------------------------------------------- records: BUILD, cycles, depth
def _global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _str(text: str) -> bytes:
    data = text.encode()
    return b"X" + len(data).to_bytes(4, "little") + data


def _module_record(modules: bytes) -> bytes:
    """`__main__.Net` via NEWOBJ, memoised as 0, then BUILD with `{"_parameters": {}, "_modules": {...}}`."""
    state = b"}(" + _str("_parameters") + b"}" + _str("_modules") + b"}(" + modules + b"uu"
    return b"\x80\x02" + _global("__main__", "Net") + b")\x81q\x00" + state + b"b"


def test_cyclic_module_tree_is_refused() -> None:
    data = _module_record(_str("self") + b"h\x00") + b"."  # the record is its own child
    with pytest.raises(CheckpointLimitError, match=r"cyclic|deeper"):
        load_module_pickle(data)


def test_build_twice_on_a_module_record_is_refused() -> None:
    state = b"}(" + _str("_parameters") + b"}" + _str("_modules") + b"}u"
    with pytest.raises(UnsafePickleError, match="built only once"):
        load_module_pickle(_module_record(b"") + state + b"b.")


def test_build_on_rebuilt_objects_is_refused() -> None:
    tensor = pickle.dumps(torch.ones(2), protocol=2)[:-1]  # without STOP
    other = b"\x80\x02" + _global("torch", "FloatStorage") + b"."
    cases = {
        # Tensor.__setstate__ would `set_` the tensor to a 4-tuple (storage, offset, size, stride)
        "tensor": tensor + b"(K\x00K\x00K\x00K\x00tb.",  # a 4-tuple state on the tensor on top of the stack
        "global": other[:-1] + b"}b.",
        "persistent record": b"\x80\x02"
        + _global("torch_utils.persistence", "_reconstruct_persistent_obj")
        + b"}(" + _str("type") + _str("class") + _str("class_name") + _str("G") + _str("state") + b"}u\x85R"
        + b"}(" + _str("class_name") + _str("X") + b"ub.",
    }  # fmt: skip
    for name, data in cases.items():
        with pytest.raises((UnsafePickleError, CheckpointLimitError)) as info:
            safe_load(data)
        assert "BUILD" in str(info.value), name


def test_attrdict_keys_cannot_answer_for_setstate() -> None:
    data = (
        b"\x80\x02" + _global("dnnlib", "EasyDict") + b")R"
        + b"(" + _str("__setstate__") + _global("torch.storage", "_load_from_bytes") + b"u"  # the dict's items
        + b"}b."  # BUILD: through the key, it would call _load_from_bytes({}), which raises
    )  # fmt: skip
    loaded = safe_load(data)  # the key is data: BUILD only sets a plain attribute on the instance
    assert isinstance(loaded, AttrDict) and list(loaded) == ["__setstate__"]


# --------------------------------------------------------------------------------------------- bombs
class _Storage:
    """Pickled as a torch storage persistent id claiming `numel` elements."""

    def __init__(self, numel: int) -> None:
        self.numel = numel


class _StoragePickler(pickle.Pickler):
    legacy = False

    def persistent_id(self, obj: object) -> object:
        if isinstance(obj, _Storage):
            return ("storage", torch.FloatStorage, "0", "cpu", obj.numel) + ((None,) if self.legacy else ())
        return None


def _tensor_pickle(numel: int, legacy: bool) -> bytes:
    import io

    buffer = io.BytesIO()
    pickler = _StoragePickler(buffer, protocol=2)
    pickler.legacy = legacy
    pickler.dump(Reduce(torch._utils._rebuild_tensor_v2, _Storage(numel), 0, (numel,), (1,), False, OrderedDict()))
    return buffer.getvalue()


def write_bombs(folder: Path) -> dict[str, Path]:
    """Small files that claim gigabytes (or unbounded recursion), each in its own file."""
    n = 10**6
    tensor = pickle.dumps(torch.zeros(1), protocol=4)
    huge = b"\x8a\x06" + (10**12).to_bytes(6, "little")  # LONG1 10**12
    stride0 = tensor.replace(
        b"K\x01\x85\x94K\x01\x85\x94", huge + b"\x85\x94K\x00\x85\x94"
    )  # size (10**12,), stride (0,)
    assert stride0 != tensor
    bombs = {
        "binbytes8": b"\x80\x04\x8e" + (1 << 40).to_bytes(8, "little") + b"xx.",
        "frame": b"\x80\x04\x95" + (1 << 40).to_bytes(8, "little") + b"N.",
        "memo": b"\x80\x02N" + b"r" + (1 << 30).to_bytes(4, "little") + b".",
        "deep_tuple_key": b"\x80\x02}N" + b"\x85" * n + b"Ns.",
        "deep_list": b"\x80\x02" + b"]" * n + b"a" * (n - 1) + b".",
        "cycle_list": b"\x80\x02]q\x00" + b"h\x00a" * (MAX_NESTING + 5) + b".",
        "bytearray": b"\x80\x02" + _global("builtins", "bytearray") + huge + b"\x85R.",
        "ndarray_call": b"\x80\x02" + _global("numpy", "ndarray") + b"J\x00\x00\x01\x00J\x00\x00\x01\x00\x86\x85R.",
        "reconstruct": b"\x80\x02" + _global("numpy.core.multiarray", "_reconstruct") + _global("numpy", "ndarray")
        + b"J\x00\x00\x01\x00J\x00\x00\x01\x00\x86C\x01b\x87R.",
        "stride0": stride0,
    }  # fmt: skip
    paths = {name: folder / f"{name}.pkl" for name in bombs}
    for name, data in bombs.items():
        paths[name].write_bytes(data)
    # a torch zip whose storage member inflates to 256 MB (the archive is ~256 KB)
    numel = (256 << 20) // 4
    paths["zip_inflate"] = folder / "zip_inflate.pth"
    with zipfile.ZipFile(paths["zip_inflate"], "w") as archive:
        archive.writestr("archive/data.pkl", _tensor_pickle(numel, legacy=False))
        archive.writestr("archive/byteorder", "little")
        info = zipfile.ZipInfo("archive/data/0")
        info.compress_type = zipfile.ZIP_DEFLATED
        with archive.open(info, "w", force_zip64=True) as member:
            for _ in range(256):
                member.write(bytes(1 << 20))
    # a legacy torch.save file whose storage claims 2**38 floats
    header = b"".join(pickle.dumps(x, protocol=2) for x in (LEGACY_MAGIC_NUMBER, 1001, {"little_endian": True}))
    keys = pickle.dumps(["0"], protocol=2)
    legacy = header + _tensor_pickle(1 << 38, legacy=True) + keys + (1 << 38).to_bytes(8, "little")
    paths["legacy_storage"] = folder / "legacy_storage.pth"
    paths["legacy_storage"].write_bytes(legacy + bytes(64))
    return paths


_RUNNER = """
import json, resource, sys, time
from sefa_plugin.convert import convert_checkpoint, detect_format, safe_load
from sefa_plugin.convert.module_pickle import load_module_pickle

def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

paths = json.loads(sys.argv[1])
baseline = peak_mb()
results = {}
for name, path in paths.items():
    for entry in (safe_load, load_module_pickle, detect_format, convert_checkpoint):
        start = time.perf_counter()
        try:
            entry(path)
            outcome = ("loaded", "")
        except BaseException as err:
            outcome = (type(err).__name__, str(err))
        results[f"{name}/{entry.__name__}"] = {
            "error": outcome[0], "message": outcome[1],
            "seconds": time.perf_counter() - start, "peak_above_baseline_mb": peak_mb() - baseline,
        }
print(json.dumps(results))
"""


def test_bombs_are_refused_cleanly_within_bounds(tmp_path: Path) -> None:
    paths = write_bombs(tmp_path)
    ordered = {"zip_inflate": str(paths.pop("zip_inflate"))} | {k: str(v) for k, v in paths.items()}
    proc = subprocess.run(
        [sys.executable, "-c", _RUNNER, json.dumps(ordered)], capture_output=True, text=True, timeout=600,
        env={**os.environ, "PYTHONFAULTHANDLER": "1"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    clean = {"UnsafePickleError", "CheckpointLimitError", "NotAPickleError", "UnpicklingError", "ValueError"}
    for case, result in results.items():
        assert result["error"] in clean, (case, result)
        assert "\n" not in result["message"] and len(result["message"]) < 600, (case, result)
        assert result["seconds"] < 10, (case, result)
        assert result["peak_above_baseline_mb"] < 1024, (case, result)
    # the inflating member was refused before it was read (reading it costs 256 MB)
    assert results["zip_inflate/safe_load"]["peak_above_baseline_mb"] < 128
    assert "more than the whole archive" in results["zip_inflate/safe_load"]["message"]
    assert "claims" in results["stride0/safe_load"]["message"]
    assert "left in the file" in results["legacy_storage/safe_load"]["message"]
    for name in ("binbytes8", "frame", "memo", "deep_tuple_key", "deep_list", "cycle_list"):
        assert results[f"{name}/safe_load"]["error"] == "CheckpointLimitError", results[f"{name}/safe_load"]
    for name in ("bytearray", "reconstruct"):
        assert results[f"{name}/safe_load"]["error"] == "CheckpointLimitError", results[f"{name}/safe_load"]
