"""Benchmark: GANSpace's streaming PCA against scikit-learn's IncrementalPCA on the same W samples.

Model: the embedded model (``sefa_plugin.DEFAULT_MODEL``) when its folder exists, else a randomly
initialised 64×64 StyleGAN2Generator with its training configuration (z_dim = w_dim = 128, channel_base
2048, channel_max 64, 4 mapping layers); the output says which.

For each N (default 10⁵ and 10⁶), in one run: batch ``i`` of ``w`` is sampled once (``z`` from
``torch.Generator().manual_seed(seed + i)``, mapped with ``sample_latents`` without truncation; timed
separately as "sampling") and fed to both estimators, so both see identical data:

* ours: ``StreamingPCA.update`` (float64 mean and scatter merged per batch), then ``result(K)`` (one
  ``torch.linalg.eigh``);
* scikit-learn: ``IncrementalPCA(n_components=K, batch_size=B).partial_fit`` (an SVD per batch; it
  keeps float32 input in float32).

It reports both times, their ratio, and the agreement of the results: |cos| between the top-5
components and the relative difference of their explained variances.

Run from the repository root::

    nice -n 10 .venv/bin/python benchmarks/bench_ganspace.py --threads 1
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import torch

import sefa_plugin
from sefa_plugin.directions.ganspace import StreamingPCA
from sefa_plugin.models import EditableGenerator, StyleGAN2Generator


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def build_generator() -> tuple[EditableGenerator, str]:
    if os.path.isdir(sefa_plugin.DEFAULT_MODEL):
        from sefa_plugin import GANSpacePipeline

        g = GANSpacePipeline.from_pretrained(sefa_plugin.DEFAULT_MODEL).generator.eval()
        return g, f"embedded model {sefa_plugin.DEFAULT_MODEL} (w_dim {g.latent_dim})"
    torch.manual_seed(0)
    g = StyleGAN2Generator(
        z_dim=128, w_dim=128, img_resolution=64, channel_base=2048, channel_max=64, mapping_layers=4
    ).eval()
    return g, "random 64×64 StyleGAN2Generator, z_dim = w_dim = 128, 4 mapping layers (no embedded model found)"


def run(g: EditableGenerator, num_samples: int, batch_size: int, k: int, seed: int) -> dict[str, float]:
    from sklearn.decomposition import IncrementalPCA

    ours = StreamingPCA(g.latent_dim)
    ipca = IncrementalPCA(n_components=k, batch_size=batch_size)
    t_sample = t_ours = t_ipca = 0.0
    for i, start in enumerate(range(0, num_samples, batch_size)):
        n = min(batch_size, num_samples - start)
        t0 = time.perf_counter()
        with torch.inference_mode():
            z = g.randn_z(n, generator=torch.Generator().manual_seed(seed + i))
            w = g.sample_latents(z, truncation_psi=1.0)[:, 0].contiguous().cpu()
        w_np = w.numpy()
        t1 = time.perf_counter()
        ours.update(w)
        t2 = time.perf_counter()
        ipca.partial_fit(w_np)
        t3 = time.perf_counter()
        t_sample, t_ours, t_ipca = t_sample + (t1 - t0), t_ours + (t2 - t1), t_ipca + (t3 - t2)
    t0 = time.perf_counter()
    res = ours.result(k)
    t_ours += time.perf_counter() - t0
    top = 5
    cos = np.abs(np.sum(res.components[:top].numpy().astype(np.float64) * ipca.components_[:top], axis=1))
    ref_var = ipca.explained_variance_[:top]
    var_rel = float(np.max(np.abs(res.variances[:top].numpy() - ref_var) / ref_var))
    return {"sampling": t_sample, "ours": t_ours, "sklearn": t_ipca, "min_cos": float(cos.min()), "var_rel": var_rel}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000], help="values of N")
    parser.add_argument("--batch-size", type=int, default=10_000, help="samples per batch (both estimators)")
    parser.add_argument("-k", "--num-components", dest="k", type=int, default=80, help="components (GANSpace: 80)")
    parser.add_argument("--seed", type=int, default=0, help="base seed of the per-batch sampling")
    parser.add_argument("--threads", type=int, default=None, help="torch and NumPy BLAS threads (default: libraries')")
    args = parser.parse_args()
    from threadpoolctl import threadpool_info, threadpool_limits  # installed with scikit-learn

    if args.threads is not None:
        torch.set_num_threads(args.threads)
        threadpool_limits(limits=args.threads, user_api="blas")
    pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
    blas = ", ".join(f"{p['internal_api']} {p['version']} ({p['num_threads']} threads)" for p in pools)
    import sklearn

    g, what = build_generator()
    print(f"torch {torch.__version__}, numpy {np.__version__}, scikit-learn {sklearn.__version__}, "
          f"python {platform.python_version()}")  # fmt: skip
    print(f"CPU: {cpu_name()}; os.cpu_count() = {os.cpu_count()}; torch threads = {torch.get_num_threads()}")
    print(f"BLAS: {blas}")
    print(f"model: {what}")
    print(f"batch size {args.batch_size}, {args.k} components")
    if hasattr(os, "getloadavg"):
        print("load average at start: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    print("| N | sampling (s) | ours: StreamingPCA (s) | sklearn IncrementalPCA (s) | ratio sklearn/ours "
          "| top-5 min abs(cos) | top-5 max rel. variance diff |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for n in args.sizes:
        r = run(g, n, args.batch_size, args.k, args.seed)
        print(f"| {n:,} | {r['sampling']:.2f} | {r['ours']:.2f} | {r['sklearn']:.2f} | {r['sklearn'] / r['ours']:.1f}× "
              f"| {r['min_cos']:.6f} | {r['var_rel']:.1e} |", flush=True)  # fmt: skip
    if hasattr(os, "getloadavg"):
        print("load average at end: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
