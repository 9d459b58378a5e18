"""Benchmark: batched StyleGAN2 generation on CPU, fused vs unfused modulated convolutions vs the per-layer mix.

Builds StyleGAN2 generators with config-F shapes and random weights (no checkpoint needed): 256² with
channel_base 16384 (≈ 30 GFLOP per image) and 1024² with channel_base 32768 (≈ 151 GFLOP per image),
z_dim = w_dim = 512, 8 mapping layers. For each resolution it renders a batch (``noise_mode="const"``,
``torch.inference_mode``) with every modulated convolution fused (per-sample modulated weights), every
one unfused (styles on the activations, one shared convolution, demodulation after), and the default
per-layer choice (:func:`~sefa_plugin.models.modconv.prefer_fused_modconv`), all three with large CPU
buffers kept by the allocator (``GANPipeline.enable_cpu_buffer_reuse``, on in the ``sefa`` CLI), and the
per-layer choice again with glibc's default allocator settings ("not kept"), interleaved, `--repeats`
rounds after one warm-up each, and prints the median images/s, GFLOP/s and "× limit": the run's time
over the time the same FLOPs take at the rate of a plain float32 2048³ matmul measured right before
that run (the median of the per-run ratios; 1.0 would be the matmul's rate; 4096³ products are
printed at the start and the end to show how much the machine's load drifted).

FLOPs counted per image: 2 · multiply-adds of every convolution (an upsampling convolution at its
input resolution, as a transposed convolution does it), of the ToRGB layers and of the mapping and
style affines; the FIR filters and element-wise passes are not counted (they are the overhead).

With `--per-layer`, every synthesis layer and ToRGB is also timed alone, fused against unfused, on
channels-last inputs of its shape (the data behind the per-layer rule).

Run from the repository root::

    .venv/bin/python benchmarks/bench_generation.py --repeats 3
    .venv/bin/python benchmarks/bench_generation.py --repeats 3 --per-layer --sizes 256
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
from bench_factorize import config_f, matmul_gflops, print_header

from sefa_plugin.models import StyleGAN2Generator
from sefa_plugin.models.modconv import prefer_fused_modconv
from sefa_plugin.models.stylegan2 import SynthesisLayer, ToRGBLayer
from sefa_plugin.utils.allocator import set_cpu_buffer_reuse

SIZES = {256: (16384, 8), 1024: (32768, 2)}  # resolution: (channel_base, batch)
# name: (fused_modconv, large CPU buffers kept by the allocator)
VARIANTS = {
    "fused": (True, True),
    "unfused": (False, True),
    "per-layer mix": (None, True),  # the library's default, with `GANPipeline.enable_cpu_buffer_reuse()` (the CLI's)
    "mix, not kept": (None, False),  # the same with glibc's default allocator settings
}


def modulated_layers(g: StyleGAN2Generator) -> list[tuple[str, torch.nn.Module, int]]:
    """(name, layer, input resolution) of every modulated convolution, in order."""
    layers = []
    for block in g.synthesis.blocks():
        res = block.resolution
        if block.in_channels:
            layers.append((f"b{res}.conv0", block.conv0, res // 2))
        layers += [(f"b{res}.conv1", block.conv1, res), (f"b{res}.torgb", block.torgb, res)]
    return layers


def flops_per_image(g: StyleGAN2Generator) -> float:
    w_dim = g.synthesis.w_dim
    mapping = sum(2 * m.weight.numel() for m in g.mapping.modules() if hasattr(m, "effective_weight"))
    total = float(mapping)
    for _, layer, in_res in modulated_layers(g):
        out_ch, in_ch, kh, kw = layer.weight.shape
        total += 2 * out_ch * in_ch * kh * kw * in_res * in_res + 2 * w_dim * in_ch
    return total


def bench_resolution(resolution: int, repeats: int, batch: int | None) -> None:
    channel_base, default_batch = SIZES[resolution]
    batch = batch or default_batch
    g = config_f(resolution, channel_base)
    flops = flops_per_image(g)
    z = g.randn_z(batch, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        ws = g.sample_latents(z)
        outputs = {name: g.synthesis(ws, noise_mode="const", fused_modconv=f) for name, (f, _) in VARIANTS.items()}
        times: dict[str, list[float]] = {name: [] for name in VARIANTS}
        ratios: dict[str, list[float]] = {name: [] for name in VARIANTS}
        for _ in range(repeats):
            for name, (fused, kept) in VARIANTS.items():
                set_cpu_buffer_reuse(kept)
                rate = matmul_gflops(2048)  # the limit right before this run: the machine's load drifts
                start = time.perf_counter()
                g.synthesis(ws, noise_mode="const", fused_modconv=fused)
                times[name].append(time.perf_counter() - start)
                ratios[name].append(times[name][-1] / (batch * flops / (rate * 1e9)))
    set_cpu_buffer_reuse(True)
    diff = max(float((outputs[k] - outputs["unfused"]).abs().max()) for k in VARIANTS)
    chosen = sum(
        prefer_fused_modconv(layer.weight.shape[1], layer.weight.shape[0], layer.weight.shape[2], in_res)
        for _, layer, in_res in modulated_layers(g)
    )
    print(f"{resolution}² (channel_base {channel_base}), batch {batch}, {flops / 1e9:.1f} GFLOP per image, "
          f"median of {repeats}; mix = {chosen} of {len(modulated_layers(g))} layers fused; "
          f"max |Δ| between variants {diff:.1e}")  # fmt: skip
    print(f"  {'variant':<15s} {'s/batch':>8s} {'images/s':>9s} {'GFLOP/s':>8s} {'× limit':>8s}   runs (s; × limit)")
    for name, ts in times.items():
        med = statistics.median(ts)
        rate = batch * flops / med / 1e9
        runs = ", ".join(f"{t:.2f}; {r:.2f}" for t, r in zip(ts, ratios[name], strict=True))
        print(
            f"  {name:<15s} {med:8.2f} {batch / med:9.3f} {rate:8.1f} {statistics.median(ratios[name]):8.2f}   {runs}"
        )


def bench_layers(resolution: int, repeats: int, batch: int | None) -> None:
    channel_base, default_batch = SIZES[resolution]
    batch = batch or default_batch
    g = config_f(resolution, channel_base)
    gen = torch.Generator().manual_seed(1)
    set_cpu_buffer_reuse(True)
    print(f"per layer, {resolution}², batch {batch}, channels-last, buffers kept, median of {repeats} (ms):")
    print(f"  {'layer':<12s} {'in→out':>9s} {'in res':>6s} {'fused':>9s} {'unfused':>9s} {'faster':>8s} {'rule':>8s}")
    with torch.inference_mode():
        for name, layer, in_res in modulated_layers(g):
            out_ch, in_ch, k, _ = layer.weight.shape
            x = torch.randn(batch, in_ch, in_res, in_res, generator=gen).contiguous(memory_format=torch.channels_last)
            w = torch.randn(batch, g.synthesis.w_dim, generator=gen)
            kwargs = {"noise_mode": "const"} if isinstance(layer, SynthesisLayer) else {}
            assert isinstance(layer, SynthesisLayer | ToRGBLayer)
            times: dict[bool, list[float]] = {True: [], False: []}
            for fused in (True, False):
                layer(x, w, fused_modconv=fused, **kwargs)  # warm-up
            for _ in range(repeats):
                for fused in (True, False):
                    start = time.perf_counter()
                    layer(x, w, fused_modconv=fused, **kwargs)
                    times[fused].append(time.perf_counter() - start)
            tf, tu = statistics.median(times[True]), statistics.median(times[False])
            rule = "fused" if prefer_fused_modconv(in_ch, out_ch, k, in_res) else "unfused"
            faster = "fused" if tf < tu else "unfused"
            print(f"  {name:<12s} {in_ch:>4d}→{out_ch:<4d} {in_res:6d} {tf * 1e3:9.1f} {tu * 1e3:9.1f} "
                  f"{faster:>8s} {rule:>8s}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds (default: %(default)s)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 1024], choices=sorted(SIZES))
    parser.add_argument("--batch", type=int, default=None, help="batch size (default: 8 at 256², 2 at 1024²)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: the library's choice)")
    parser.add_argument("--per-layer", action="store_true", help="also time every layer alone, fused vs unfused")
    args = parser.parse_args()
    print_header(args.threads)
    peaks = [matmul_gflops() for _ in range(3)]
    peak = statistics.median(peaks)
    print(f"plain float32 matmul 4096³: {peak:.1f} GFLOP/s (median of 3: " + ", ".join(f"{p:.0f}" for p in peaks) + ")")
    for resolution in args.sizes:
        bench_resolution(resolution, args.repeats, args.batch)
        if args.per_layer:
            bench_layers(resolution, args.repeats, args.batch)
    peaks = [matmul_gflops() for _ in range(3)]
    print(f"matmul again at the end: {statistics.median(peaks):.1f} GFLOP/s")
    if hasattr(os, "getloadavg"):
        print("load average at end: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
