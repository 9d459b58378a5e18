"""RCA speed and agreement (issue 25): where the paper's protocol spends its time, and full vs fast RCA.

1. Profile: one training step of each protocol split into its parts (rendering the original and the
   shifted images, reconstructor forward, backward + Adam), median of `--profile-steps` steps; then the
   fast protocol's chunk rendering with torch's intra-op threads against chunks side by side.
2. Table: full (the paper's protocol) and fast RCA of the same direction sets, side by side, with the
   wall time of each and the ratio.

    python benchmarks/bench_rca.py --threads 1                     # defaults: 2000 steps, 100 eval batches
    python benchmarks/bench_rca.py --threads 2 --no-table          # the profile only (and chunk rendering)
    python benchmarks/bench_rca.py --threads 1 --no-full           # the fast column only
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from sefa_plugin import DEFAULT_MODEL, Directions, SefaPipeline
from sefa_plugin.directions.latent_discovery import apply_shift, discovery_loss, sample_shifts
from sefa_plugin.evaluation.fast_rca import DEFAULT_TRAIN_PAIRS, RCAEvaluator
from sefa_plugin.evaluation.rca import reconstructor_classification_accuracy
from sefa_plugin.pipelines import GANSpacePipeline, LatentDiscoveryPipeline
from sefa_plugin.training.reconstructor import Reconstructor
from sefa_plugin.utils.parallel import map_on_cpu_threads


def profile(g, directions: Directions, steps: int, batch_size: int) -> dict[str, dict[str, float]]:
    """Median ms per part of one training step: full protocol (64², base 32) vs fast (32², base 16)."""
    out: dict[str, dict[str, float]] = {}
    vectors = directions.vectors
    for name, res, base, top in (("full", g.config.img_resolution, 32, 128), ("fast", 32, 16, 64)):
        model = Reconstructor(len(directions), 3, res, base, top)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, fused=name == "fast")  # as each protocol runs
        parts: dict[str, list[float]] = {"render original": [], "render shifted": [], "reconstructor forward": [],
                                         "backward + Adam": []}  # fmt: skip
        for step in range(steps + 1):
            rng = torch.Generator().manual_seed(step)
            z = g.randn_z(batch_size, generator=rng)
            index, eps = sample_shifts(batch_size, len(directions), generator=rng)
            t0 = time.perf_counter()
            with torch.no_grad():
                w = g.sample_latents(z, truncation_psi=1.0)
                original = g.synthesize(w, noise_mode="const")
                t1 = time.perf_counter()
                shifted = g.synthesize(apply_shift(w, eps[:, None] * vectors[index], None), noise_mode="const")
                t2 = time.perf_counter()
                if res < original.shape[-1]:
                    original = torch.nn.functional.interpolate(original, size=(res, res), mode="area")
                    shifted = torch.nn.functional.interpolate(shifted, size=(res, res), mode="area")
            t3 = time.perf_counter()
            logits, shift = model(original, shifted)
            loss = discovery_loss(logits, shift, index, eps)[0]
            t4 = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            t5 = time.perf_counter()
            if step:  # the first step warms up
                for key, dt in zip(parts, (t1 - t0, t2 - t1, t4 - t3, t5 - t4), strict=True):
                    parts[key].append(1000 * dt)
        out[name] = {k: statistics.median(v) for k, v in parts.items()}
    return out


def render_rates(pipe, chunks: int, batch_size: int = 32) -> dict[str, float]:
    """ms per image of the fast protocol's chunk renders: torch's intra-op threads on one chunk at a time vs
    chunks side by side, one torch thread each (what RCAEvaluator does), alternated over two rounds."""
    g = pipe.generator
    latents = [
        g.sample_latents(g.randn_z(batch_size, generator=torch.Generator().manual_seed(i)), truncation_psi=1.0)
        for i in range(chunks)
    ]

    @torch.no_grad()
    def render(w: torch.Tensor) -> torch.Tensor:
        return g.synthesize(w, noise_mode="const")

    ways = {"one chunk at a time": lambda: [render(w) for w in latents],
            "chunks side by side": lambda: map_on_cpu_threads(render, latents)}  # fmt: skip
    times: dict[str, list[float]] = {k: [] for k in ways}
    for _ in range(2):
        for name, run in ways.items():
            t0 = time.perf_counter()
            run()
            times[name].append(1000 * (time.perf_counter() - t0) / (chunks * batch_size))
    return {k: min(v) for k, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--methods", nargs="+", default=["sefa", "ganspace", "random", "coordinate"])
    parser.add_argument("--learned", default=None, help="also learned directions (`sefa learn` output)")
    parser.add_argument("--full-steps", type=int, default=2000, help="steps of the paper's protocol")
    parser.add_argument("--fast-steps", type=int, default=2000, help="reconstructor steps of the fast protocol")
    parser.add_argument(
        "--pairs", type=int, default=DEFAULT_TRAIN_PAIRS, help="rendered training pairs of the fast protocol"
    )
    parser.add_argument("--no-full", action="store_true", help="the fast protocol only (its column of the table)")
    parser.add_argument("--eval-batches", type=int, default=100)
    parser.add_argument("--lr", type=float, default=None, help="one learning rate for both (default: each its own)")
    parser.add_argument("--profile-steps", type=int, default=3)
    parser.add_argument("--no-table", action="store_true", help="the profile only")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    pipe = SefaPipeline.from_pretrained(args.model)
    pipe.set_progress_bar_config(disable=True)
    g = pipe.generator.eval().requires_grad_(False)
    sets: dict[str, Directions] = {}
    lpipe = LatentDiscoveryPipeline(generator=g)
    lpipe.set_progress_bar_config(disable=True)
    for name in args.methods:
        if name == "sefa":
            sets[name] = pipe.factorize(layers="all", num_directions=args.k)
        elif name == "ganspace":
            sets[name] = GANSpacePipeline(generator=g).fit(
                num_samples=20_000, num_components=args.k, generator=torch.Generator().manual_seed(0)
            )
        else:
            sets[name] = lpipe.train(args.k, kind=name, steps=0, seed=0).directions
    if args.learned:
        sets["learned"] = Directions.from_pretrained(args.learned)

    parts = profile(g, sets[next(iter(sets))], args.profile_steps, 32)
    print(f"## One training step, batch 32, ms (median of {args.profile_steps}; torch threads {args.threads})\n")
    print("| part | full (paper), every step | fast: once per pool chunk | fast, every step |\n|---|---|---|---|")
    renders = ("render original", "render shifted")
    for key in parts["full"]:
        once, each = (parts["fast"][key], 0.0) if key in renders else (0.0, parts["fast"][key])
        print(f"| {key} | {parts['full'][key]:.0f} | {once:.0f} | {each:.0f} |")
    full_total = sum(parts["full"].values())
    fast_step = sum(v for k, v in parts["fast"].items() if k not in renders)
    print(f"| total | {full_total:.0f} | | {fast_step:.0f} |")
    gen = sum(parts["full"][k] for k in renders)
    print(
        f"\nfull protocol: generator {100 * gen / full_total:.0f} % of a step; the fast protocol renders its pool "
        "and evaluation pairs once (originals shared by all methods), then only trains."
    )
    rates = render_rates(pipe, chunks=2 * args.threads * 8)
    base = rates["one chunk at a time"]
    print("\n## Rendering the pool's chunks (32 images each), ms per image, best of 2 alternated rounds\n")
    print("| how | ms per image | speed-up |\n|---|---|---|")
    for name, ms in rates.items():
        print(f"| {name} | {ms:.2f} | {base / ms:.2f}× |")
    if args.no_table:
        return
    print(f"\n## Full vs fast RCA (K = {args.k}; full: {args.full_steps} steps; fast: {args.fast_steps} steps on "
          f"{args.pairs} pairs; both {args.eval_batches} eval batches of 32; lr {args.lr or 'default'})\n")  # fmt: skip
    print("| method | full RCA | fast RCA | difference | full s | fast s | speed-up |\n|---|---|---|---|---|---|---|")
    fast_lr = {} if args.lr is None else {"lr": args.lr}
    evaluator = RCAEvaluator(pipe, train_pairs=args.pairs, eval_batches=args.eval_batches, **fast_lr)
    for name, d in sets.items():
        fast = evaluator(d, steps=args.fast_steps)
        if args.no_full:
            print(f"| {name} | | {fast.accuracy:.3f} | | | {fast.seconds:.0f} | |", flush=True)
            continue
        full = reconstructor_classification_accuracy(
            pipe, d, steps=args.full_steps, eval_batches=args.eval_batches, mode="full", lr=args.lr
        )
        diff, ratio = fast.accuracy - full.accuracy, full.seconds / fast.seconds
        print(f"| {name} | {full.accuracy:.3f} | {fast.accuracy:.3f} | {diff:+.3f} "
              f"| {full.seconds:.0f} | {fast.seconds:.0f} | {ratio:.1f}× |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
