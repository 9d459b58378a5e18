"""Benchmark: SeFa through the pipeline, cold and warm, against the official NumPy path and the matmul limit.

Builds a StyleGAN2 generator with 1024² config-F shapes and random weights (z_dim = w_dim = 512,
channel_base 32768, channel_max 512, 8 mapping layers, 18 W+ layers), saves it as a pipeline folder once,
then repeats, interleaved, `--repeats` rounds of:

* **load**: ``SefaPipeline.from_pretrained(folder)`` (safetensors read + the weights' SHA-256 fingerprint,
  which `from_pretrained` takes once; the time of that fingerprint alone is shown as well);
* **cold**: the first ``pipe.factorize(layers="all", num_directions=10)`` on the freshly loaded pipeline
  (every layer's Gram matrix, the eigen-solve, the provenance with the fingerprint cached at load);
* **cold, not fingerprinted**: the same first call on a pipeline built around a generator that was never
  fingerprinted (``SefaPipeline(generator=...)`` in memory), so it hashes all weights itself;
* **warm**: a new layer selection on the same pipeline (``"coarse"``, ``"middle"``, ``"fine"``, ``"0-7"``,
  ``"all"``; what the editor does when a user moves the layer range), the median over them;
* **official**: genforce/sefa's ``factorize_weight`` path on the same weights (style weights as NumPy
  ``[w_dim, out]`` arrays concatenated along axis 1, columns scaled to unit norm, ``np.linalg.eig`` of
  the 512×512 Gram matrix, then sorted as ours are);
* **matmul limit**: a plain float32 ``4096 × 4096 @ 4096 × 4096`` product in torch, in GFLOP/s.

Each time is the median over rounds; "vs official" and "× limit" are medians of per-round ratios (the
load of a shared machine drifts between rounds). "× limit" is time / (FLOPs / that round's matmul
GFLOP/s): how many times longer than the same FLOPs would take at the plain matmul's rate. FLOPs
counted: the Gram products (2 · rows · 512²) and a symmetric eigen-solve's tridiagonal reduction
(4/3 · 512³).

Run from the repository root (`--threads 1` for one core per library)::

    .venv/bin/python benchmarks/bench_factorize.py --repeats 7
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable

import numpy as np
import torch
from diffusers.utils import logging as diffusers_logging

from sefa_plugin.directions import sefa_factorize
from sefa_plugin.hub import forget_weights_sha256, weights_sha256
from sefa_plugin.models import StyleGAN2Generator
from sefa_plugin.pipelines import SefaPipeline

WARM_SELECTIONS = ("coarse", "middle", "fine", "0-7", "all")


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def config_f(img_resolution: int = 1024, channel_base: int = 32768, seed: int = 0) -> StyleGAN2Generator:
    torch.manual_seed(seed)
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


def matmul_gflops(n: int = 4096) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b  # warm-up
    return 2 * n**3 / seconds(lambda: a @ b) / 1e9


def setup_threads(threads: int | None) -> str:
    """Set torch's and NumPy's BLAS threads (when given); describe NumPy's BLAS."""
    try:
        from threadpoolctl import threadpool_info, threadpool_limits
    except ImportError:
        threadpool_info = threadpool_limits = None
    if threads is not None:
        torch.set_num_threads(threads)
        if threadpool_limits is not None:  # NumPy's and SciPy's BLAS/LAPACK get the same number of threads
            threadpool_limits(limits=threads, user_api="blas")
    if threadpool_info is None:
        return "unknown (install threadpoolctl to report and limit it)"
    pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
    return ", ".join(f"{p['internal_api']} {p['version']} ({p['num_threads']} threads)" for p in pools)


def print_header(threads: int | None) -> None:
    blas = setup_threads(threads)
    print(f"torch {torch.__version__}, numpy {np.__version__}, python {platform.python_version()}")
    print(f"CPU: {cpu_name()}; os.cpu_count() = {os.cpu_count()}; torch threads = {torch.get_num_threads()}")
    print(f"BLAS/LAPACK libraries loaded: {blas}")
    if hasattr(os, "getloadavg"):
        print("load average at start: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))


def bench(repeats: int) -> None:
    g = config_f()
    rows = sum(w.shape[0] for w in g.latent_weights(range(g.num_ws)))
    gram_flops, eigh_flops = 2 * rows * 512**2, 4 / 3 * 512**3
    with tempfile.TemporaryDirectory() as tmp:
        SefaPipeline(generator=g).save_pretrained(tmp)
        times: dict[str, list[float]] = {
            k: [] for k in ("load", "fingerprint", "cold", "cold_unhashed", "warm", "official", "gflops")
        }
        for _ in range(repeats):
            start = time.perf_counter()
            pipe = SefaPipeline.from_pretrained(tmp)
            times["load"].append(time.perf_counter() - start)
            forget_weights_sha256(pipe.generator)
            times["fingerprint"].append(seconds(lambda p=pipe: weights_sha256(p.generator)))
            times["cold"].append(seconds(lambda p=pipe: p.factorize(layers="all", num_directions=10)))
            warm = [seconds(lambda p=pipe, s=s: p.factorize(layers=s, num_directions=10)) for s in WARM_SELECTIONS]
            times["warm"].append(statistics.median(warm))
            fresh = SefaPipeline(generator=config_f(seed=1))
            times["cold_unhashed"].append(seconds(lambda p=fresh: p.factorize(layers="all", num_directions=10)))
            times["official"].append(seconds(lambda p=pipe: official_factorize(p.generator)))
            times["gflops"].append(matmul_gflops())
            del pipe, fresh

        # The pipeline and the official path agree.
        pipe = SefaPipeline.from_pretrained(tmp)
        d = pipe.factorize(layers="all", num_directions=10)
        ref_vectors, ref_values = official_factorize(pipe.generator)
        direct_vectors, _ = sefa_factorize(pipe.generator.latent_weights(range(pipe.generator.num_ws)), True, 10)
    max_rel = float(np.max(np.abs(d.values.numpy() - ref_values[:10].real)) / ref_values.real.max())
    cos = np.abs(np.sum(d.vectors.numpy() * ref_vectors[:10].real, axis=1))
    print(f"agreement with the official path: max |Δeigenvalue| / max eigenvalue = {max_rel:.1e}; "
          f"top-10 min |cos| = {cos.min():.6f}; max |Δ| to sefa_factorize = "
          f"{float((d.vectors - direct_vectors).abs().max()):.1e}")  # fmt: skip

    med = {k: statistics.median(v) for k, v in times.items()}
    peak = med["gflops"]
    print(f"plain float32 matmul 4096³: {peak:.1f} GFLOP/s (median of {repeats}; runs: "
          + ", ".join(f"{x:.0f}" for x in times["gflops"]) + ")")  # fmt: skip
    print(f"1024² config-F, {rows} weight rows, medians of {repeats} interleaved rounds:")
    print(f"  load (from_pretrained, incl. fingerprint)   {med['load'] * 1e3:8.1f} ms")
    print(f"    of which the SHA-256 fingerprint           {med['fingerprint'] * 1e3:8.1f} ms")
    rows_out = [
        ("official (np.linalg.eig)", "official", gram_flops),
        ("cold (first call after load)", "cold", gram_flops + eigh_flops),
        ("cold, generator not fingerprinted", "cold_unhashed", gram_flops + eigh_flops),
        ("warm (new layer selection)", "warm", eigh_flops),
    ]
    print(f"  {'path':<38s} {'time':>9s} {'vs official':>12s} {'× limit':>8s}   (medians of the per-round ratios)")
    for name, key, flops in rows_out:
        speedup = statistics.median(o / t for o, t in zip(times["official"], times[key], strict=True))
        limit = statistics.median(t / (flops / (r * 1e9)) for t, r in zip(times[key], times["gflops"], strict=True))
        print(f"  {name:<38s} {med[key] * 1e3:7.2f} ms {speedup:11.2f}x {limit:8.1f}")
    print("  runs (ms): " + "; ".join(
        f"{k} " + ", ".join(f"{x * 1e3:.0f}" for x in times[k]) for k in ("official", "cold", "warm")
    ))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="interleaved rounds (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=None, help="torch and NumPy/SciPy BLAS threads")
    args = parser.parse_args()
    diffusers_logging.disable_progress_bar()
    print_header(args.threads)
    bench(args.repeats)
    if hasattr(os, "getloadavg"):
        print("load average at end: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
