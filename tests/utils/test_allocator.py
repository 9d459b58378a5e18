"""Large CPU buffers kept by the allocator: fewer page faults, the same images, and off again on request."""

from __future__ import annotations

import json
import resource
import subprocess
import sys

import pytest
import torch

from sefa_plugin.models import StyleGAN2Generator
from sefa_plugin.pipelines import SefaPipeline
from sefa_plugin.utils.allocator import _glibc, set_cpu_buffer_reuse

MEASURE = r"""
import ctypes, json, mmap, resource, torch
from sefa_plugin.utils.allocator import _glibc, set_cpu_buffer_reuse

BLOCK = 48 << 20  # above glibc's largest dynamic mmap threshold (32 MiB): mapped fresh on every allocation
PAGE = resource.getpagesize()
torch.set_num_threads(1)  # the pages are touched by this thread, whose faults alone are counted


class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                "fsmblks", "uordblks", "fordblks", "keepcost")]


libc = _glibc()
libc.mallinfo2.restype = MallInfo2


def faults():
    return resource.getrusage(resource.RUSAGE_THREAD).ru_minflt


def counter_works():  # some sandboxes (gVisor) count no page faults at all
    region = mmap.mmap(-1, 4 << 20)
    before = faults()
    for offset in range(0, 4 << 20, PAGE):
        region[offset] = 1
    region.close()
    return faults() - before > (4 << 20) // PAGE // 2


def rounds(n):
    out = []
    for _ in range(n):
        before, mapped = faults(), libc.mallinfo2().hblkhd
        buffer = torch.empty(BLOCK // 4)
        mapped = libc.mallinfo2().hblkhd - mapped
        buffer.fill_(1.0)
        del buffer
        out.append({"faults": faults() - before, "mapped": mapped})
    return out


result = {"block": BLOCK, "pages": BLOCK // PAGE, "counter_works": counter_works()}
result["set_off"] = set_cpu_buffer_reuse(False)
result["off"] = rounds(3)
result["set_on"] = set_cpu_buffer_reuse(True)
result["on"] = rounds(4)
print(json.dumps(result))
"""


@pytest.fixture(scope="module")
def measured() -> dict:
    """The allocator measured in a fresh process: a heap no other test has shaped (a freed block left inside the
    heap would serve the next one whatever the thresholds say)."""
    run = subprocess.run([sys.executable, "-c", MEASURE], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(run.stdout.splitlines()[-1])


glibc_only = pytest.mark.skipif(
    _glibc() is None or not hasattr(_glibc(), "mallinfo2") or not hasattr(resource, "RUSAGE_THREAD"),
    reason="glibc >= 2.33 (Linux) only",
)


@glibc_only
def test_kept_buffers_come_from_the_heap(measured):
    assert measured["set_off"] and measured["set_on"]
    assert all(r["mapped"] >= measured["block"] for r in measured["off"])  # each mapped fresh from the kernel
    assert all(r["mapped"] == 0 for r in measured["on"])  # served by (and given back to) the heap


@glibc_only
def test_kept_buffers_are_not_faulted_in_again(measured):
    if not measured["counter_works"]:
        pytest.skip("this kernel counts no page faults per thread")
    pages = measured["pages"]
    assert min(r["faults"] for r in measured["off"]) > pages // 2  # every page of a fresh mapping faults
    assert min(r["faults"] for r in measured["on"][1:]) < pages // 10  # once the heap has grown, none


def test_images_unchanged_and_pipeline_switch():
    torch.manual_seed(0)
    g = StyleGAN2Generator(z_dim=16, w_dim=16, img_resolution=16, channel_base=64, channel_max=32).eval()
    pipe = SefaPipeline(generator=g)
    pipe.set_progress_bar_config(disable=True)
    expected = set_cpu_buffer_reuse(True)
    try:
        kept = pipe(seeds=[1, 2], output_type="pt").images
        assert pipe.enable_cpu_buffer_reuse(False) is expected
        plain = pipe(seeds=[1, 2], output_type="pt").images
        assert torch.equal(kept, plain)
    finally:
        set_cpu_buffer_reuse(True)


def test_other_c_libraries_are_left_alone(monkeypatch):
    monkeypatch.setattr(sys, "platform", "darwin")
    _glibc.cache_clear()
    try:
        assert set_cpu_buffer_reuse(True) is False
    finally:
        monkeypatch.undo()
        _glibc.cache_clear()
