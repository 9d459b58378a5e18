"""Benchmark: training speed of learned directions (Voynov & Babenko) in steps per second.

Model: the embedded model (``sefa_plugin.DEFAULT_MODEL``) when its folder exists, else a randomly
initialised 64×64 StyleGAN2Generator with the embedded model's shape (z_dim = w_dim = 128, channel_base
2048, channel_max 64, 4 mapping layers); the output says which. Speed does not depend on the weights.

One step = sample ``batch_size`` latents, indices and shifts; render the original images (no grad) and
the shifted images (through the generator, so gradients reach the direction matrix); reconstructor
forward and backward; one Adam update. For each direction-matrix kind, ``--warmup`` steps are run and
discarded, then ``--steps`` steps are timed (wall clock, ``LatentDiscoveryTrainer.train`` as the
pipeline runs it, progress bar disabled, no checkpoints).

Run from the repository root::

    nice -n 10 .venv/bin/python benchmarks/bench_learned.py --threads 1
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import torch
from tqdm.auto import tqdm

import sefa_plugin
from sefa_plugin.models import EditableGenerator, StyleGAN2Generator
from sefa_plugin.training.latent_discovery import LatentDiscoveryConfig, LatentDiscoveryTrainer


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def build_generator(force_random: bool) -> tuple[EditableGenerator, str]:
    if os.path.isdir(sefa_plugin.DEFAULT_MODEL) and not force_random:
        from sefa_plugin import GANPipeline

        g = GANPipeline.from_pretrained(sefa_plugin.DEFAULT_MODEL).generator.eval()
        return g, f"embedded model {sefa_plugin.DEFAULT_MODEL} (w_dim {g.latent_dim}, num_ws {g.num_ws})"
    torch.manual_seed(0)
    g = StyleGAN2Generator(
        z_dim=128, w_dim=128, img_resolution=64, channel_base=2048, channel_max=64, mapping_layers=4
    ).eval()
    return g, f"random 64×64 StyleGAN2Generator, z_dim = w_dim = 128, num_ws {g.num_ws}"


def no_bar(total: int) -> tqdm:
    return tqdm(total=total, disable=True)


def time_kind(g: EditableGenerator, kind: str, args: argparse.Namespace) -> dict[str, float]:
    cfg = LatentDiscoveryConfig(num_directions=args.k, kind=kind, batch_size=args.batch_size, seed=0)
    trainer = LatentDiscoveryTrainer(g, cfg, device=args.device)
    trainer.train(steps=args.warmup, progress_bar=no_bar, log_every=10**9)
    if trainer.accelerator.device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    trainer.train(steps=args.warmup + args.steps, progress_bar=no_bar, log_every=10**9)
    if trainer.accelerator.device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    return {
        "steps_per_s": args.steps / seconds,
        "s_per_step": seconds / args.steps,
        "device": str(trainer.accelerator.device),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kinds", nargs="+", default=["ortho", "coordinate"], help="direction matrix kinds")
    parser.add_argument("-k", type=int, default=10, help="number of directions")
    parser.add_argument("--batch-size", type=int, default=32, help="image pairs per step (paper: 32)")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per kind")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--random-model", action="store_true", help="use a random generator of the same shape")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    g, what = build_generator(args.random_model)
    print(f"torch {torch.__version__}, numpy {np.__version__}, python {platform.python_version()}")
    print(f"CPU: {cpu_name()}; os.cpu_count() = {os.cpu_count()}; torch threads = {torch.get_num_threads()}")
    if args.device.startswith("cuda"):
        print(f"GPU: {torch.cuda.get_device_name()}")
    print(f"model: {what}")
    print(f"K = {args.k}, batch size {args.batch_size}, {args.warmup} warm-up + {args.steps} timed steps per kind")
    if hasattr(os, "getloadavg"):
        print("load average at start: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    print("| kind | device | steps/s | s/step | image pairs/s |")
    print("|---|---|---|---|---|")
    for kind in args.kinds:
        r = time_kind(g, kind, args)
        print(f"| {kind} | {r['device']} | {r['steps_per_s']:.3f} | {r['s_per_step']:.3f} "
              f"| {r['steps_per_s'] * args.batch_size:.1f} |", flush=True)  # fmt: skip
    if hasattr(os, "getloadavg"):
        print("load average at end: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
