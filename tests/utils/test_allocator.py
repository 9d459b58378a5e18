"""Large CPU buffers kept by the allocator: fewer page faults, the same images, and off again on request."""

from __future__ import annotations

import resource
import sys

import pytest
import torch

from sefa_plugin.models import StyleGAN2Generator
from sefa_plugin.pipelines import SefaPipeline
from sefa_plugin.utils.allocator import _glibc, set_cpu_buffer_reuse

BLOCK = 48 << 20  # above glibc's largest dynamic mmap threshold (32 MiB): mapped fresh on every allocation


def faults_of_one_buffer() -> int:
    """Minor page faults of this thread allocating and filling one BLOCK-sized tensor (the fewest of three).

    One torch thread, so that the pages are touched here, and this thread's count only (other tests may leave
    threads running in this process).
    """
    counts = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for _ in range(3):
            before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
            buffer = torch.empty(BLOCK // 4)
            buffer.fill_(1.0)
            del buffer
            counts.append(resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before)
    finally:
        torch.set_num_threads(threads)
    return min(counts)


@pytest.mark.skipif(_glibc() is None or not hasattr(resource, "RUSAGE_THREAD"), reason="glibc (Linux) only")
def test_kept_buffers_are_not_faulted_in_again():
    pages = BLOCK // resource.getpagesize()
    try:
        assert set_cpu_buffer_reuse(False)
        assert faults_of_one_buffer() > pages // 2  # every page of a fresh mapping faults
        assert set_cpu_buffer_reuse(True)
        faults_of_one_buffer()  # the heap grows once
        assert faults_of_one_buffer() < pages // 10
    finally:
        set_cpu_buffer_reuse(True)


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
