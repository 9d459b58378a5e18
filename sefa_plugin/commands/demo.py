"""``sefa demo``: the main job — factorize the embedded model, render and label its top directions."""

from __future__ import annotations

import argparse

from ._common import LAYER_HELP

NAME = "demo"
HELP = "factorize the embedded model, render and label its top directions"
#: The library's argument names → this command's flags, for error messages.
FLAGS = {"out_dir": "--out", "num_directions": "-k", "layers": "--layers", "seed": "--seed", "model": "MODEL"}


def register(p: argparse.ArgumentParser) -> None:
    from ..demo import run_demo
    from ._common import default_of

    p.add_argument("model", nargs="?", default=None, help="pipeline folder or Hub id (default: embedded model)")
    p.add_argument("--out", default=default_of(run_demo, "out_dir"), help="output folder")
    p.add_argument("-k", type=int, default=default_of(run_demo, "num_directions"), help="number of directions")
    p.add_argument("--layers", default=default_of(run_demo, "layers"), help=LAYER_HELP)
    p.add_argument("--seed", type=int, default=default_of(run_demo, "seed"), help="seed of the preview image")


def run(args: argparse.Namespace) -> int:
    from ..demo import run_demo
    from ._common import check_output_folder

    check_output_folder(args.out, "--out")
    report = run_demo(out_dir=args.out, num_directions=args.k, layers=args.layers, seed=args.seed, model=args.model)
    for line in report.lines():
        print(line)
    return 0
