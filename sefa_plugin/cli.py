"""The ``sefa`` command: parses arguments and calls the library.

Sub-commands: ``demo`` (the main job on the embedded model), ``factorize``, ``edit``, ``push``,
``train``. Run ``sefa COMMAND --help`` for each one's options.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

logger = logging.getLogger("sefa_plugin.cli")


def _model_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "model", nargs="?", default=None,
        help="pipeline folder or Hub repo id (default: the embedded 64x64 StyleGAN2 scene model)",
    )  # fmt: skip
    p.add_argument("--revision", default=None, help="Hub revision (branch, tag or commit)")
    p.add_argument("--token", default=None, help="Hub token (default: the logged-in token)")
    p.add_argument("--cache-dir", default=None, help="Hub cache folder")
    p.add_argument("--local-files-only", action="store_true", help="use the local Hub cache only")


def _load_pipeline(args: argparse.Namespace):
    from . import DEFAULT_MODEL
    from .pipelines import SefaPipeline

    model = args.model or DEFAULT_MODEL
    pipe = SefaPipeline.from_pretrained(
        model, revision=args.revision, token=args.token, cache_dir=args.cache_dir,
        local_files_only=args.local_files_only or None,
    )  # fmt: skip
    return pipe


def _cmd_factorize(args: argparse.Namespace) -> int:
    pipe = _load_pipeline(args)
    t0 = time.perf_counter()
    directions = pipe.factorize(layers=args.layers, num_directions=args.k, normalize=not args.no_normalize)
    logger.info("factorized %d directions over layers %s in %.1f ms", len(directions), directions.layers,
                (time.perf_counter() - t0) * 1000)  # fmt: skip
    preview = None if args.no_preview else pipe.direction_grid(
        directions, indices=range(min(len(directions), 5)), seed=args.seed, truncation_psi=args.truncation_psi
    )
    directions.save_pretrained(args.out, preview=preview)
    for i in range(len(directions)):
        print(f"direction {i}: eigenvalue {float(directions.values[i]):.4f}")
    print(f"saved {len(directions)} directions to {args.out}")
    return 0


def _cmd_edit(args: argparse.Namespace) -> int:
    from .directions import Directions
    from .utils.images import make_grid, save_gif, save_image_atomic

    pipe = _load_pipeline(args)
    directions = Directions.from_pretrained(args.directions, token=args.token, cache_dir=args.cache_dir)
    out = pipe(
        seeds=args.seeds, directions=directions, index=args.index, strengths=args.strengths,
        layers=args.layers, truncation_psi=args.truncation_psi, noise_mode=args.noise_mode,
        class_label=args.class_label,
    )  # fmt: skip
    save_image_atomic(make_grid(out.images, nrow=len(args.strengths)), args.out, what="--out")
    print(f"saved a {len(args.seeds)}x{len(args.strengths)} grid to {args.out}")
    if args.gif:
        frames = _walk_frames(pipe, directions, args.index, args.seeds, args.frames, args.layers,
                              args.truncation_psi, args.noise_mode, args.class_label)  # fmt: skip
        save_gif(frames, args.gif, what="--gif")
        print(f"saved a {args.frames}-frame walk to {args.gif}")
    return 0


def _walk_frames(pipe, directions, index, seeds, frames, layers, psi, noise_mode, class_label):
    import numpy as np

    from .utils.images import make_grid

    lo, hi = directions.strength_range
    strengths = np.linspace(lo, hi, frames).tolist()
    out = pipe(seeds=seeds, directions=directions, index=index, strengths=strengths, layers=layers,
               truncation_psi=psi, noise_mode=noise_mode, class_label=class_label)  # fmt: skip
    n = len(strengths)
    return [make_grid([out.images[s * n + f] for s in range(len(seeds))], nrow=len(seeds)) for f in range(n)]


def _cmd_push(args: argparse.Namespace) -> int:
    from .directions import Directions

    directions = Directions.from_pretrained(args.directory)
    preview_path = Path(args.directory) / "preview.png"
    preview = None
    if preview_path.is_file():
        from PIL import Image

        preview = Image.open(preview_path).convert("RGB")
    url = directions.push_to_hub(args.repo_id, token=args.token, private=args.private or None, preview=preview)
    print(f"pushed {args.directory} to {args.repo_id}: {url}")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from .training import Trainer, TrainingConfig

    cfg = TrainingConfig(
        resolution=args.resolution, batch_size=args.batch_size, channel_base=args.channel_base,
        channel_max=args.channel_max, z_dim=args.z_dim, w_dim=args.w_dim, mapping_layers=args.mapping_layers,
        pl_weight=args.pl_weight, seed=args.seed,
    )  # fmt: skip
    trainer = Trainer(cfg, run_dir=args.run_dir, device=args.device)
    trainer.train(iterations=args.iterations, checkpoint_every=args.checkpoint_every)
    if args.export:
        trainer.export_generator(args.export)
        print(f"exported the EMA generator to {args.export}")
    print(f"trained to iteration {trainer.iteration}; checkpoint in {args.run_dir}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    report = run_demo(out_dir=args.out, num_directions=args.k, layers=args.layers, seed=args.seed,
                      model=args.model)  # fmt: skip
    for line in report.lines():
        print(line)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sefa", description="Find, edit and share the semantic directions of pretrained GANs.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )  # fmt: skip
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    fmt = argparse.ArgumentDefaultsHelpFormatter

    p = sub.add_parser("demo", help="factorize the embedded model, render and label its top directions",
                       formatter_class=fmt)  # fmt: skip
    p.add_argument("model", nargs="?", default=None, help="pipeline folder or Hub id (default: embedded model)")
    p.add_argument("--out", default="outputs/demo", help="output folder")
    p.add_argument("-k", type=int, default=8, help="number of directions")
    p.add_argument("--layers", default="all", help="layer spec: all, coarse, middle, fine, 0-3, 0-1,4")
    p.add_argument("--seed", type=int, default=0, help="seed of the preview image")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("factorize", help="SeFa: closed-form directions of a model", formatter_class=fmt)
    _model_arg(p)
    p.add_argument("--layers", default="all", help="layer spec: all, coarse, middle, fine, 0-3, 0-1,4")
    p.add_argument("-k", "--num-directions", dest="k", type=int, default=10, help="directions to keep")
    p.add_argument("--no-normalize", action="store_true", help="plain AᵀA (no unit-norm rows)")
    p.add_argument("--out", required=True, help="output folder (directions.safetensors + README.md)")
    p.add_argument("--seed", type=int, default=0, help="seed of the preview grid")
    p.add_argument("--truncation-psi", type=float, default=0.7, help="truncation of the preview grid")
    p.add_argument("--no-preview", action="store_true", help="do not render preview.png")
    p.set_defaults(func=_cmd_factorize)

    p = sub.add_parser("edit", help="render a (seeds × strengths) grid along one direction", formatter_class=fmt)
    _model_arg(p)
    p.add_argument("--directions", required=True, help="direction folder, file or Hub repo id")
    p.add_argument("--index", type=int, default=0, help="which direction")
    p.add_argument("--strengths", type=float, nargs="+", default=[-3.0, 0.0, 3.0], help="edit strengths")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds (rows)")
    p.add_argument("--layers", default=None, help="override the directions' layers (spec like 0-3)")
    p.add_argument("--truncation-psi", type=float, default=0.7, help="truncation psi")
    p.add_argument("--noise-mode", default="const", choices=["const", "random", "none"], help="noise mode")
    p.add_argument("--class-label", type=int, default=None, help="class for conditional models")
    p.add_argument("--out", required=True, help="grid PNG path")
    p.add_argument("--gif", default=None, help="also save an animated walk to this GIF path")
    p.add_argument("--frames", type=int, default=16, help="frames of the GIF walk")
    p.set_defaults(func=_cmd_edit)

    p = sub.add_parser("push", help="push a direction folder to the Hub", formatter_class=fmt)
    p.add_argument("directory", help="folder written by `sefa factorize`")
    p.add_argument("repo_id", help="target Hub repo, e.g. someone/ffhq-sefa-directions")
    p.add_argument("--token", default=None, help="Hub token (default: the logged-in token)")
    p.add_argument("--private", action="store_true", help="create the repo as private")
    p.set_defaults(func=_cmd_push)

    p = sub.add_parser("train", help="train a StyleGAN2 on the procedural scenes (resumable)", formatter_class=fmt)
    p.add_argument("--run-dir", required=True, help="checkpoint folder; training resumes from it")
    p.add_argument("--iterations", type=int, required=True, help="total iterations to reach")
    p.add_argument("--resolution", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--channel-base", type=int, default=2048)
    p.add_argument("--channel-max", type=int, default=64)
    p.add_argument("--z-dim", type=int, default=128)
    p.add_argument("--w-dim", type=int, default=128)
    p.add_argument("--mapping-layers", type=int, default=4)
    p.add_argument("--pl-weight", type=float, default=0.0, help="path-length regularisation weight (0: off)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--checkpoint-every", type=int, default=250)
    p.add_argument("--export", default=None, help="save the EMA generator here when done")
    p.set_defaults(func=_cmd_train)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sefa`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(message)s")
    try:
        return int(args.func(args))
    except (ValueError, OSError, IndexError, KeyError) as err:
        logger.debug("failed", exc_info=True)
        print(f"sefa {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
