"""Train the factor predictor shipped with the package and report its held-out accuracy.

The predictor is trained on procedural scenes rendered on the fly (dataset seed 1; the GAN trains on
seed 0) and evaluated on held-out scenes (seed 2), then saved with ``save_pretrained`` (``config.json``
+ ``diffusion_pytorch_model.safetensors``) to ``sefa_plugin/assets/predictor`` by default.

Example (the command behind ``benchmarks/RESULTS.md``)::

    nice -n 10 .venv/bin/python scripts/train_predictor.py --steps 2400 --threads 1
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from functools import partial
from pathlib import Path

import torch

from sefa_plugin.evaluation.predictor_training import (
    degrade_images,
    evaluate_predictor,
    format_metrics,
    train_predictor,
)

logger = logging.getLogger("train_predictor")
DEFAULT_OUTPUT = Path(__file__).resolve().parents[1] / "sefa_plugin" / "assets" / "predictor"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    add = p.add_argument
    add("--output", type=Path, default=DEFAULT_OUTPUT, help="folder the trained predictor is saved to")
    add("--steps", type=int, default=2400, help="optimisation steps")
    add("--batch-size", type=int, default=128, help="scenes rendered per step")
    add("--num-train", type=int, default=1_000_000, help="distinct training scenes (dataset seed 1)")
    add("--seed", type=int, default=0, help="seed of initialisation, scene sampling and augmentation")
    add("--resolution", type=int, default=64, help="image side in pixels")
    add("--lr", type=float, default=3e-3, help="peak learning rate (one-cycle schedule)")
    add("--augment-prob", type=float, default=0.5,
        help="fraction of training images given a mild random blur and noise (0 disables)")  # fmt: skip
    add("--channels", type=int, nargs="+", default=[32, 64, 128, 128], help="conv stage widths")
    add("--feature-dim", type=int, default=128, help="embedding size")
    add("--eval-num", type=int, default=5000, help="held-out scenes (dataset seed 2) for evaluation")
    add("--threads", type=int, default=1, help="torch CPU threads (1 is fastest on a busy 2-core box)")
    add("--device", default="cpu", help="torch device to train on")
    add("--metrics-json", type=Path, default=None, help="also write the metrics to this JSON file")
    add("--no-progress", action="store_true", help="hide progress bars")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, float]:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    model = train_predictor(
        num_train=args.num_train, steps=args.steps, batch_size=args.batch_size, seed=args.seed,
        resolution=args.resolution, progress=not args.no_progress, lr=args.lr, augment_prob=args.augment_prob,
        channels=args.channels, feature_dim=args.feature_dim, device=args.device,
    )  # fmt: skip
    train_s = time.perf_counter() - t0
    model.save_pretrained(args.output)
    size_mb = sum(f.stat().st_size for f in args.output.iterdir()) / 2**20
    logger.info("Saved to %s (%.2f MB) after %.0f s of training", args.output, size_mb, train_s)

    t1 = time.perf_counter()
    metrics = evaluate_predictor(model, num=args.eval_num, progress=not args.no_progress)
    # Robustness to GAN-like degradation: every held-out image blurred (σ = 0.7 px) with noise (std 0.02).
    gen = torch.Generator().manual_seed(0)
    degrade = partial(degrade_images, blur_sigma=0.7, noise_std=0.02, generator=gen)
    degraded = evaluate_predictor(model, num=args.eval_num, transform=degrade, progress=not args.no_progress)
    eval_s = time.perf_counter() - t1
    logger.info("Held-out accuracy, %d rendered scenes (seed 2):\n%s", args.eval_num, format_metrics(metrics))
    logger.info("Same scenes, blurred (σ=0.7 px) + noise (0.02):\n%s", format_metrics(degraded))
    logger.info("Wall time: training %.0f s, evaluation %.0f s", train_s, eval_s)
    result = {
        **metrics,
        **{f"degraded/{k}": v for k, v in degraded.items()},
        "train_seconds": train_s,
        "eval_seconds": eval_s,
        "steps": args.steps,
        "batch_size": args.batch_size,
        "num_parameters": sum(p.numel() for p in model.parameters()),
        "size_mb": size_mb,
    }
    if args.metrics_json is not None:
        args.metrics_json.parent.mkdir(parents=True, exist_ok=True)
        args.metrics_json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
