"""``sefa learn``: latent discovery (Voynov & Babenko): a direction matrix and a reconstructor, resumable."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ._common import LAYER_HELP, add_model_args, add_preview_args, default_of, load_pipeline, save_with_preview

logger = logging.getLogger("sefa_plugin.cli")

NAME = "learn"
HELP = "latent discovery (Voynov & Babenko): learn a direction matrix with a reconstructor (resumable)"
FLAGS = {
    "num_directions": "-k",
    "kind": "--kind",
    "steps": "--steps",
    "batch_size": "--batch-size",
    "layers": "--layers",
    "lr": "--lr",
    "shift_scale": "--shift-scale",
    "min_shift": "--min-shift",
    "reg_weight": "--reg-weight",
    "checkpoint_dir": "--checkpoint-dir",
    "checkpoint_every": "--checkpoint-every",
    "eval_batches": "--eval-batches",
    "device": "--device",
    "folder": "--out",
    "save_directory": "--out",
}


def register(p: argparse.ArgumentParser) -> None:
    from ..pipelines import LatentDiscoveryPipeline

    train = LatentDiscoveryPipeline.train
    add_model_args(p)
    p.add_argument(
        "-k",
        "--num-directions",
        dest="k",
        type=int,
        default=default_of(train, "num_directions"),
        help="directions to learn",
    )
    p.add_argument(
        "--kind",
        default=default_of(train, "kind"),
        choices=["ortho", "linear", "proj", "random", "coordinate"],
        help="direction matrix (random and coordinate are fixed baselines)",
    )
    p.add_argument(
        "--steps",
        type=int,
        default=default_of(train, "steps"),
        help="total training steps (paper: 100000; ~0.7 steps/s on a CPU core)",
    )
    p.add_argument("--batch-size", type=int, default=default_of(train, "batch_size"), help="image pairs per step")
    p.add_argument("--layers", default=default_of(train, "layers"), help="W+ layers shifted: " + LAYER_HELP)
    p.add_argument("--lr", type=float, default=default_of(train, "lr"), help="Adam learning rate of both networks")
    p.add_argument("--shift-scale", type=float, default=default_of(train, "shift_scale"), help="largest shift |eps|")
    p.add_argument("--min-shift", type=float, default=default_of(train, "min_shift"), help="smallest shift |eps|")
    p.add_argument(
        "--reg-weight", type=float, default=default_of(train, "reg_weight"), help="weight of the shift's L1 loss"
    )
    p.add_argument(
        "--seed", type=int, default=default_of(train, "seed"), help="seed of the initialisation and the batches"
    )
    p.add_argument("--out", required=True, help="output folder (directions.safetensors, README.md, reconstructor/)")
    p.add_argument("--checkpoint-dir", default=None, help="resumable checkpoint folder (default: OUT/checkpoint)")
    p.add_argument(
        "--checkpoint-every",
        type=int,
        default=default_of(train, "checkpoint_every"),
        help="checkpoint interval in steps",
    )
    p.add_argument(
        "--eval-batches",
        type=int,
        default=default_of(train, "eval_batches"),
        help="fresh batches for the final accuracy (0: skip)",
    )
    p.add_argument(
        "--device",
        default=None,
        help="cpu or cuda (default: cuda when available); for several processes launch with torchrun or accelerate",
    )
    add_preview_args(p)


def run(args: argparse.Namespace) -> int:
    from ..hub import atomic_folder
    from ..pipelines import LatentDiscoveryPipeline
    from ._common import check_output_folder

    check_output_folder(args.out, "--out")
    if args.checkpoint_dir:
        check_output_folder(args.checkpoint_dir, "--checkpoint-dir")
    pipe = load_pipeline(args, LatentDiscoveryPipeline)
    checkpoint_dir = args.checkpoint_dir or str(Path(args.out) / "checkpoint")
    out = pipe.train(
        num_directions=args.k,
        kind=args.kind,
        steps=args.steps,
        batch_size=args.batch_size,
        layers=args.layers,
        lr=args.lr,
        shift_scale=args.shift_scale,
        min_shift=args.min_shift,
        reg_weight=args.reg_weight,
        checkpoint_dir=checkpoint_dir,
        seed=args.seed,
        checkpoint_every=args.checkpoint_every,
        eval_batches=args.eval_batches,
        device=args.device,
    )
    directions = out.directions
    seconds = directions.extra["train_seconds"]
    logger.info(
        "latent discovery: %d steps in %.1f s (%.2f steps/s)",
        directions.extra["steps"],
        seconds,
        directions.extra["steps"] / seconds if seconds else float("nan"),
    )
    save_with_preview(pipe, directions, args)
    with atomic_folder(Path(args.out) / "reconstructor", what="--out") as tmp:
        out.reconstructor.save_pretrained(tmp)
    for i in range(len(directions)):
        acc = "n/a" if directions.values is None else f"{float(directions.values[i]):.3f}"
        print(f"direction {i}: reconstructor accuracy {acc}")
    if directions.values is not None:
        print(f"accuracy {out.accuracy:.3f} (chance {1 / len(directions):.3f})")
    print(f"saved {len(directions)} {directions.method} directions to {args.out} (checkpoint: {checkpoint_dir})")
    return 0
