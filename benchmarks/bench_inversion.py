"""Benchmark: inverting images into the embedded model (issue 22), at the library's default settings.

1. The generator's own samples (seeds 1000…): PSNR of the reconstruction (goal ≥ 35 dB).
2. Held-out rendered scenes (dataset seed 3: the GAN trained on 0, the predictor on 1 and was evaluated on 2):
   PSNR (goal: mean ≥ 30 dB), and agreement of the factor predictor on target vs reconstruction: shape
   agreement (goal ≥ 95 %) and R² of the reconstruction's predicted factors against the target's (hues as unit
   vectors, as in ``evaluate_predictor``; scale, x, y, lighting; goal ≥ 0.95).
3. Editing inverted scenes: SeFa directions of the embedded model, labelled by re-scoring on samples
   (``rescore_directions``); for each, the labelled factor's mean change at strength ±3 on the inverted scenes
   vs on samples (same units: 1.0 = two random scenes apart).
4. Time on ``--threads`` CPU threads: the batch of scenes of part 2 (wall time of the whole ``invert`` call), one
   image alone, and a 256² config-F-like StyleGAN2 with random weights (``--big-steps`` steps, scaled to the
   default step count) for cost scaling.

Run from the repository root (the CPU is shared: re-measure timings on a quiet machine)::

    nice .venv/bin/python benchmarks/bench_inversion.py            # prints a Markdown block
    nice .venv/bin/python benchmarks/bench_inversion.py --append   # ... and appends it to benchmarks/RESULTS.md
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import torch

import sefa_plugin
from sefa_plugin import SefaPipeline, StyleGAN2Generator
from sefa_plugin.data.shapes import render_scenes
from sefa_plugin.evaluation.predictor import FactorPredictor
from sefa_plugin.evaluation.rescoring import FACTOR_LABELS, factor_change, rescore_directions
from sefa_plugin.inversion import ProjectorSettings, project

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """PSNR (dB) per image of two batches in [-1, 1] (clamped, as the images a user sees)."""
    mse = ((a.clamp(-1, 1) - b.clamp(-1, 1)) / 2).square().mean(dim=(1, 2, 3))
    return -10 * torch.log10(mse)


def r2(pred: torch.Tensor, ref: torch.Tensor) -> float:
    ref2 = ref.double().reshape(len(ref), -1)
    err = (pred.double().reshape(len(ref), -1) - ref2).square().sum()
    return float(1 - err / (ref2 - ref2.mean(dim=0)).square().sum().clamp_min(1e-12))


def hue_vec(h: torch.Tensor) -> torch.Tensor:
    return torch.stack([torch.cos(2 * math.pi * h), torch.sin(2 * math.pi * h)], dim=1)


def agreement(predictor: FactorPredictor, targets: torch.Tensor, recons: torch.Tensor) -> dict[str, float]:
    t, r = predictor.predict(targets), predictor.predict(recons)
    out = {"shape": float((t["shape"] == r["shape"]).double().mean())}
    for name in ("background_hue", "object_hue"):
        out[name] = r2(hue_vec(r[name]), hue_vec(t[name]))
    for name in ("scale", "x", "y", "lighting"):
        out[name] = r2(r[name], t[name])
    return out


def fmt(values: torch.Tensor) -> str:
    return f"mean {values.mean():.1f}, min {values.min():.1f}, max {values.max():.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--num-samples", type=int, default=8)
    parser.add_argument("--num-scenes", type=int, default=8)
    parser.add_argument("--scene-seed", type=int, default=3)
    parser.add_argument("--num-directions", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--big-steps", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0, help="torch.Generator seed of the inversions")
    parser.add_argument("--append", action="store_true", help=f"append the block to {RESULTS}")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    steps = ProjectorSettings.num_steps
    pipe = SefaPipeline.from_pretrained(sefa_plugin.DEFAULT_MODEL)
    pipe.set_progress_bar_config(disable=True)
    g = pipe.generator
    predictor = FactorPredictor.from_pretrained(sefa_plugin.DEFAULT_PREDICTOR).eval()
    lines = []

    # 1. The generator's own samples.
    seeds = list(range(1000, 1000 + args.num_samples))
    with torch.no_grad():
        samples = g.synthesize(g.sample_latents(g.z_from_seeds(seeds)))
    t0 = time.perf_counter()
    inv_s = pipe.invert(samples, generator=torch.Generator().manual_seed(args.seed))
    t_samples = time.perf_counter() - t0
    p_s = psnr(pipe.generator.synthesize(inv_s.latents).detach(), samples)
    lines.append(f"| samples (seeds {seeds[0]}–{seeds[-1]}) | PSNR {fmt(p_s)} dB | ≥ 35 dB |")

    # 2. Held-out scenes.
    scenes = render_scenes(list(range(args.num_scenes)), seed=args.scene_seed).images
    t0 = time.perf_counter()
    inv = pipe.invert(scenes, generator=torch.Generator().manual_seed(args.seed))
    t_scenes = time.perf_counter() - t0
    with torch.no_grad():
        recons = g.synthesize(inv.latents)
    p_sc = psnr(recons, scenes)
    agree = agreement(predictor, scenes, recons)
    lines.append(
        f"| scenes (dataset seed {args.scene_seed}, 0–{args.num_scenes - 1}) | PSNR {fmt(p_sc)} dB | mean ≥ 30 dB |"
    )
    lines.append(f"| scenes: predicted shape, target vs reconstruction | {100 * agree['shape']:.1f} % agree | ≥ 95 % |")
    r2s = ", ".join(f"{k} {v:.3f}" for k, v in agree.items() if k != "shape")
    lines.append(f"| scenes: R², reconstruction's predicted factors vs target's | {r2s} | ≥ 0.95 |")
    lines.append(f"| perceptual term | {inv.perceptual} | |")

    # 3. Edits on inverted scenes vs on samples.
    directions = pipe.factorize(num_directions=args.num_directions)
    rescored = rescore_directions(pipe, directions, predictor, num_samples=32, seed=1000)
    edit_rows = []
    for i in range(len(directions)):
        name, share = rescored.top_factor(i)
        j = rescored.factor_names.index(name)
        with torch.no_grad():
            lo = g.synthesize(directions.edit(inv.latents, i, -3.0))
            hi = g.synthesize(directions.edit(inv.latents, i, 3.0))
        change = factor_change(predictor.predict(lo), predictor.predict(hi))
        on_scenes = float(change[:, j].mean())
        top_on_scenes = rescored.factor_names[int(change.mean(dim=0).argmax())]
        edit_rows.append(
            f"| {i} | {FACTOR_LABELS[name]} ({share:.2f}) | {float(rescored.matrix[i, j]):.3f} | {on_scenes:.3f} | "
            f"{FACTOR_LABELS[top_on_scenes]} |"
        )

    # 4. Time.
    one = scenes[:1]
    t0 = time.perf_counter()
    pipe.invert(one, generator=torch.Generator().manual_seed(args.seed))
    t_one = time.perf_counter() - t0
    torch.manual_seed(0)
    big = StyleGAN2Generator(z_dim=512, w_dim=512, img_resolution=256, channel_base=16384, channel_max=512).eval()
    with torch.no_grad():
        target = big(torch.randn(1, 512))
    t0 = time.perf_counter()
    project(big, target, ProjectorSettings(num_steps=args.big_steps, num_candidates=1, mean_samples=1000))
    t_big = (time.perf_counter() - t0) / args.big_steps

    cmd = "nice .venv/bin/python benchmarks/bench_inversion.py " + " ".join(sys.argv[1:])
    s = ProjectorSettings()
    block = [
        "",
        f"## Inverting images (issue 22, {time.strftime('%Y-%m-%d')})",
        "",
        f"`{cmd.strip()}` — the embedded model, library defaults: {steps} steps, W+, init `{s.init or 'search'}`, "
        f"lr {s.learning_rate}, latent noise {s.latent_noise}, {s.num_scales}-scale MSE + {s.perceptual_weight} × "
        f"perceptual (`{inv.perceptual}`), noise maps not optimised; `torch.Generator` seed {args.seed}; "
        f"{args.threads} threads on a CPU shared with other jobs (load average {os.getloadavg()[0]:.1f} at the end): "
        "timings are noisy, re-measure on a quiet machine.",
        "",
        "| what | measured | goal |",
        "|---|---|---|",
        *lines,
        f"| time: batch of {args.num_scenes} scenes, 64² ({steps} steps) | {t_scenes:.1f} s | ≤ 15 s |",
        f"| time: batch of {args.num_samples} samples, 64² | {t_samples:.1f} s | |",
        f"| time: 1 image, 64² | {t_one:.1f} s | ≤ 5 s |",
        f"| time: 1 image, 256² StyleGAN2 (config-F-like, random weights) | {t_big:.2f} s/step → "
        f"{t_big * steps:.0f} s for {steps} steps | (scaling) |",
        "",
        "Edits of inverted scenes (strength ±3; change of the factor that re-scoring on 32 samples labels the "
        "direction with; 1.0 = two random scenes apart):",
        "",
        "| direction | label (share) | change on samples | change on inverted scenes | top factor on scenes |",
        "|---|---|---|---|---|",
        *edit_rows,
        "",
    ]
    text = "\n".join(block)
    print(text)
    if args.append:
        with open(RESULTS, "a", encoding="utf-8") as fh:
            fh.write(text)


if __name__ == "__main__":
    main()
