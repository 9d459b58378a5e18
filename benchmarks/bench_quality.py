"""Quality of the shipped GAN, measured with the factor predictor (issue 3).

Prints, for the embedded model (or `--model`):

* the Fréchet distance in the predictor's feature space between N real and N generated images, next
  to the same distance between two disjoint real sets of N (the floor a perfect generator would reach);
* per continuous factor, the Kolmogorov–Smirnov distance between the predicted factor distributions of
  generated and real images (circular hues compared on [0, 1)); shape-class frequencies;
* the fraction of generated samples whose shape prediction has confidence ≥ 0.9 (goal ≥ 90%);
* with ``--breakdown``, where the unsure generated samples are: their share per predicted shape (and
  the runner-up class among them) and per fifth of each predicted continuous factor.

    python benchmarks/bench_quality.py --num 10000
    python benchmarks/bench_quality.py --num 2000 --breakdown
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from sefa_plugin import DEFAULT_MODEL, DEFAULT_PREDICTOR, SefaPipeline
from sefa_plugin.data import FACTOR_KINDS, SHAPES, render_scenes
from sefa_plugin.evaluation import FactorPredictor
from sefa_plugin.evaluation.fid import feature_statistics, frechet_distance_from_statistics


def ks_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sample Kolmogorov–Smirnov statistic (max distance between the empirical CDFs)."""
    grid = np.sort(np.concatenate([a, b]))
    cdf_a = np.searchsorted(np.sort(a), grid, side="right") / len(a)
    cdf_b = np.searchsorted(np.sort(b), grid, side="right") / len(b)
    return float(np.abs(cdf_a - cdf_b).max())


def real_batches(num: int, seed: int, batch: int, resolution: int):
    for start in range(0, num, batch):
        yield render_scenes(range(start, min(start + batch, num)), seed=seed, resolution=resolution).images


def fake_batches(pipe: SefaPipeline, num: int, batch: int, psi: float):
    gen = torch.Generator().manual_seed(12345)
    for start in range(0, num, batch):
        n = min(batch, num - start)
        yield pipe(num_images=n, generator=gen, truncation_psi=psi, output_type="pt", batch_size=n).images


def predict_all(predictor: FactorPredictor, batches) -> dict[str, np.ndarray]:
    parts: dict[str, list[np.ndarray]] = {}
    for images in batches:
        for key, value in predictor.predict(images).items():
            parts.setdefault(key, []).append(value.numpy())
    return {k: np.concatenate(v) for k, v in parts.items()}


def print_breakdown(fake: dict[str, np.ndarray]) -> None:
    """Share of generated samples with shape confidence < 0.9, per predicted shape and factor quintile."""
    probs = fake["shape_probs"]
    unsure = probs.max(axis=1) < 0.9
    runner_up = np.argsort(probs, axis=1)[:, -2]
    print("unsure (confidence < 0.9) share by predicted shape, and the runner-up class among them:")
    for idx, shape in enumerate(SHAPES):
        mask = fake["shape"] == idx
        if not mask.any():
            print(f"  {shape:9s} no samples")
            continue
        counts = np.bincount(runner_up[mask & unsure], minlength=len(SHAPES))
        seconds = ", ".join(f"{s} {c}" for s, c in zip(SHAPES, counts, strict=True) if s != shape)
        print(f"  {shape:9s} {unsure[mask].mean():.3f} of {mask.sum()}  (runner-up: {seconds})")
    print("unsure share per fifth of each predicted factor (range: share):")
    for name, kind in FACTOR_KINDS.items():
        if kind == "categorical":
            continue
        keep = fake["shape"] != 1 if name == "rotation" else np.ones(len(unsure), bool)  # discs have none
        values, flags = fake[name][keep], unsure[keep]
        edges = np.quantile(values, np.linspace(0, 1, 6))
        bins = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, 4)
        cells = "  ".join(f"{edges[i]:.2f}..{edges[i + 1]:.2f}: {flags[bins == i].mean():.3f}" for i in range(5))
        print(f"  {name:15s} {cells}" + ("  (squares and triangles)" if name == "rotation" else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=DEFAULT_MODEL, help="pipeline folder (default: embedded model)")
    parser.add_argument("--num", type=int, default=10_000, help="images per set")
    parser.add_argument("--batch", type=int, default=250, help="batch size")
    parser.add_argument("--truncation-psi", type=float, default=1.0, help="truncation of generated samples")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--breakdown", action="store_true", help="where the unsure generated samples are")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    pipe = SefaPipeline.from_pretrained(args.model)
    pipe.set_progress_bar_config(disable=True)
    res = int(pipe.generator.config.img_resolution)
    predictor = FactorPredictor.from_pretrained(DEFAULT_PREDICTOR)

    # Fréchet distances: real (seed 2) vs generated, and real (seed 2) vs real (seed 3).
    mu_r, sig_r = feature_statistics(predictor, real_batches(args.num, 2, args.batch, res))
    mu_r2, sig_r2 = feature_statistics(predictor, real_batches(args.num, 3, args.batch, res))
    mu_g, sig_g = feature_statistics(predictor, fake_batches(pipe, args.num, args.batch, args.truncation_psi))
    fd_gen = frechet_distance_from_statistics(mu_r, sig_r, mu_g, sig_g)
    fd_real = frechet_distance_from_statistics(mu_r, sig_r, mu_r2, sig_r2)

    real = predict_all(predictor, real_batches(args.num, 2, args.batch, res))
    fake = predict_all(predictor, fake_batches(pipe, args.num, args.batch, args.truncation_psi))
    print(f"model: {args.model}  ({res}x{res}, truncation_psi={args.truncation_psi}, N={args.num} per set)")
    print(f"Frechet distance (predictor features): real vs generated {fd_gen:.3f}; real vs real {fd_real:.3f}")
    print("KS distance of predicted factor distributions (generated vs real):")
    for name, kind in FACTOR_KINDS.items():
        if kind == "categorical":
            continue
        a, b = fake[name], real[name]
        if name == "rotation":  # meaningless for discs
            a, b = a[fake["shape"] != 1], b[real["shape"] != 1]
        print(f"  {name:15s} {ks_distance(a, b):.3f}")
    freq_f = np.bincount(fake["shape"], minlength=len(SHAPES)) / len(fake["shape"])
    freq_r = np.bincount(real["shape"], minlength=len(SHAPES)) / len(real["shape"])
    print(
        "shape frequencies (generated / real): "
        + ", ".join(f"{s} {f:.3f}/{r:.3f}" for s, f, r in zip(SHAPES, freq_f, freq_r, strict=True))
    )
    conf_f = (fake["shape_probs"].max(axis=1) >= 0.9).mean()
    conf_r = (real["shape_probs"].max(axis=1) >= 0.9).mean()
    print(f"shape confidence >= 0.9: generated {conf_f:.1%}, real {conf_r:.1%} (goal for generated: >= 90%)")
    if args.breakdown:
        print_breakdown(fake)
    print(f"wall time {time.perf_counter() - t0:.0f} s, torch threads {args.threads}")


if __name__ == "__main__":
    main()
