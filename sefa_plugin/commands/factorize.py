"""``sefa factorize``: SeFa's closed-form directions of a model, saved with a card and a preview grid."""

from __future__ import annotations

import argparse
import logging
import time

from ._common import (
    LAYER_HELP,
    add_model_args,
    add_preview_args,
    check_output_folder,
    load_pipeline,
    save_with_preview,
)

logger = logging.getLogger("sefa_plugin.cli")

NAME = "factorize"
HELP = "SeFa: closed-form directions of a model"
FLAGS = {"num_directions": "-k", "layers": "--layers", "save_directory": "--out", "folder": "--out"}


def register(p: argparse.ArgumentParser) -> None:
    from ..pipelines import SefaPipeline
    from ._common import default_of

    add_model_args(p)
    p.add_argument("--layers", default=default_of(SefaPipeline.factorize, "layers"), help=LAYER_HELP)
    p.add_argument(
        "-k",
        "--num-directions",
        dest="k",
        type=int,
        default=10,
        help="directions to keep (the library's default, None, keeps all)",
    )
    p.add_argument("--no-normalize", action="store_true", help="plain AᵀA (no unit-norm rows)")
    p.add_argument("--out", required=True, help="output folder (directions.safetensors + README.md)")
    add_preview_args(p)


def run(args: argparse.Namespace) -> int:
    check_output_folder(args.out, "--out")
    pipe = load_pipeline(args)
    t0 = time.perf_counter()
    directions = pipe.factorize(layers=args.layers, num_directions=args.k, normalize=not args.no_normalize)
    logger.info(
        "factorized %d directions over layers %s in %.1f ms",
        len(directions),
        directions.layers,
        (time.perf_counter() - t0) * 1000,
    )
    save_with_preview(pipe, directions, args)
    for i in range(len(directions)):
        print(f"direction {i}: eigenvalue {float(directions.values[i]):.4f}")
    print(f"saved {len(directions)} directions to {args.out}")
    return 0
