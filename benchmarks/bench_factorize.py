"""Benchmark: SeFa factorization (ours vs the official NumPy path) and batched generation throughput.

Builds StyleGAN2 generators with config-F shapes and random weights (no checkpoint needed):

1. Factorization over all 18 W+ layers of a 1024² generator (z_dim = w_dim = 512, channel_base 32768,
   channel_max 512, 8 mapping layers), timed in the same run, median of `--repeats` runs each:
   * ours: ``sefa_factorize(generator.latent_weights(range(num_ws)))`` (float32 Gram and ``eigh``, sorted,
     sign fixed);
   * official: the style weights as NumPy ``[w_dim, out]`` arrays concatenated along axis 1, columns
     scaled to unit norm, ``np.linalg.eig`` of the 512×512 Gram matrix (as genforce/sefa's
     ``factorize_weight``), plus the argsort our output already includes.
2. Generation throughput (images/s, ``noise_mode="const"``): batch 8 at 256² (config-F-like, channel_base
   16384) and batch 2 at 1024².

Run from the repository root::

    nice .venv/bin/python benchmarks/bench_factorize.py
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

from sefa_plugin.directions import sefa_factorize
from sefa_plugin.models import StyleGAN2Generator


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def median_seconds(fn: Callable[[], object], repeats: int, warmup: int = 1) -> tuple[float, list[float]]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def config_f(img_resolution: int, channel_base: int) -> StyleGAN2Generator:
    torch.manual_seed(0)
    return StyleGAN2Generator(
        z_dim=512, w_dim=512, img_resolution=img_resolution, channel_base=channel_base, channel_max=512,
        mapping_layers=8,
    ).eval()  # fmt: skip


def official_factorize(generator: StyleGAN2Generator) -> tuple[np.ndarray, np.ndarray]:
    """genforce/sefa's ``factorize_weight`` for StyleGAN2, on our modules (then sorted, as ours is)."""
    weights = [affine.weight.detach().cpu().numpy().T for affine in generator.style_affines()]
    weight = np.concatenate(weights, axis=1).astype(np.float32)
    weight = weight / np.linalg.norm(weight, axis=0, keepdims=True)
    values, vectors = np.linalg.eig(weight.dot(weight.T))
    order = np.argsort(-values.real)
    return vectors.T[order], values[order]


def bench_factorize(repeats: int) -> None:
    start = time.perf_counter()
    g = config_f(1024, 32768)
    print(f"built 1024² config-F generator in {time.perf_counter() - start:.1f} s (num_ws = {g.num_ws})")
    layers = range(g.num_ws)

    def ours() -> tuple[torch.Tensor, torch.Tensor]:
        return sefa_factorize(g.latent_weights(layers))

    ours_s, _ = median_seconds(ours, repeats)
    official_s, _ = median_seconds(lambda: official_factorize(g), repeats)

    # The two agree: same eigenvalues; the same lines for the top directions.
    vectors, values = ours()
    ref_vectors, ref_values = official_factorize(g)
    max_rel = float(np.max(np.abs(values.numpy() - ref_values.real)) / ref_values.real.max())
    cos = np.abs(np.sum(vectors[:10].numpy() * ref_vectors[:10].real, axis=1))
    print(f"agreement: max |Δeigenvalue| / max eigenvalue = {max_rel:.1e}; top-10 min |cos| = {cos.min():.6f}")
    print(f"factorize, all {g.num_ws} layers, median of {repeats}:")
    print(f"  ours (torch eigh, float32)        {ours_s * 1e3:8.2f} ms")
    print(f"  official (np.linalg.eig)          {official_s * 1e3:8.2f} ms")
    print(f"  speed-up                          {official_s / ours_s:8.2f}x")


def bench_generation(resolution: int, channel_base: int, batch: int, repeats: int) -> None:
    g = config_f(resolution, channel_base)
    z = g.randn_z(batch, generator=torch.Generator().manual_seed(0))

    def generate() -> torch.Tensor:
        with torch.inference_mode():
            return g.synthesize(g.sample_latents(z), noise_mode="const")

    med, times = median_seconds(generate, repeats)
    runs = ", ".join(f"{t:.2f}" for t in times)
    print(f"generation {resolution}² (channel_base {channel_base}), batch {batch}, median of {repeats}: "
          f"{batch / med:.2f} images/s ({med:.2f} s per batch; runs: {runs} s)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20, help="factorization runs per method (default: %(default)s)")
    parser.add_argument("--gen-repeats", type=int, default=3, help="generation runs per size (default: %(default)s)")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch and NumPy BLAS threads (default: the libraries' choice)",
    )
    parser.add_argument("--skip-generation", action="store_true", help="only benchmark the factorization")
    args = parser.parse_args()
    blas = "unknown (install threadpoolctl to report and limit it)"
    try:
        from threadpoolctl import threadpool_info, threadpool_limits
    except ImportError:
        threadpool_info = threadpool_limits = None
    if args.threads is not None:
        torch.set_num_threads(args.threads)
        if threadpool_limits is not None:  # NumPy's BLAS/LAPACK gets the same number of threads
            threadpool_limits(limits=args.threads, user_api="blas")
    if threadpool_info is not None:
        pools = [p for p in threadpool_info() if p.get("user_api") == "blas" and "numpy" in p.get("filepath", "")]
        blas = ", ".join(f"{p['internal_api']} {p['version']} ({p['num_threads']} threads)" for p in pools) or blas

    print(f"torch {torch.__version__}, numpy {np.__version__}, python {platform.python_version()}")
    print(f"CPU: {cpu_name()}; os.cpu_count() = {os.cpu_count()}; torch threads = {torch.get_num_threads()}")
    print(f"NumPy BLAS/LAPACK: {blas}")
    if hasattr(os, "getloadavg"):
        print("load average at start: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    bench_factorize(args.repeats)
    if not args.skip_generation:
        bench_generation(256, 16384, batch=8, repeats=args.gen_repeats)
        bench_generation(1024, 32768, batch=2, repeats=args.gen_repeats)
    if hasattr(os, "getloadavg"):
        print("load average at end: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
