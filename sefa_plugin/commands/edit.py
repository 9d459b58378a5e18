"""``sefa edit``: render a (seeds × strengths) grid along one direction, and optionally a walk."""

from __future__ import annotations

import argparse

from ._common import add_model_args

NAME = "edit"
HELP = "render a (seeds × strengths) grid along one direction"
FLAGS = {
    "index": "--index",
    "indices": "--index",
    "strengths": "--strengths",
    "seeds": "--seeds",
    "layers": "--layers",
    "truncation_psi": "--truncation-psi",
    "noise_mode": "--noise-mode",
    "class_label": "--class-label",
    "num_frames": "--frames",
    "path": "--out",
    "latents": "--latents",
}


def register(p: argparse.ArgumentParser) -> None:
    add_model_args(p)
    p.add_argument("--directions", required=True, help="direction folder, file or Hub repo id")
    p.add_argument("--index", type=int, default=0, help="which direction")
    p.add_argument("--strengths", type=float, nargs="+", default=[-3.0, 0.0, 3.0], help="edit strengths")
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="seeds (rows; default 0 1 2)")
    p.add_argument(
        "--latents",
        default=None,
        help="edit these latents instead of samples (rows): a `sefa invert` folder, NVIDIA's projected_w.npz or a "
        ".npy W/W+ array",
    )
    p.add_argument("--layers", default=None, help="override the directions' layers (spec like 0-3)")
    p.add_argument(
        "--truncation-psi",
        type=float,
        default=None,
        help="truncation psi (default: the model's, 0.7 for W+ models and 1 for z models)",
    )
    p.add_argument("--noise-mode", default="const", choices=["const", "random", "none"], help="noise mode")
    p.add_argument("--class-label", type=int, default=None, help="class for conditional models")
    p.add_argument("--out", required=True, help="grid PNG path")
    p.add_argument("--gif", default=None, help="also save an animated walk to this GIF path")
    p.add_argument("--mp4", default=None, help="also save the walk as an H.264 video to this MP4 path")
    p.add_argument("--frames", type=int, default=16, help="frames of the walk")


def run(args: argparse.Namespace) -> int:
    from ..directions import Directions
    from ..utils.images import make_grid, save_gif, save_image_atomic, save_video
    from ._common import check_output_file, load_pipeline

    check_output_file(args.out, "--out")
    if args.gif:
        check_output_file(args.gif, "--gif", (".gif",))
    if args.mp4:
        check_output_file(args.mp4, "--mp4", (".mp4",))
    pipe = load_pipeline(args)
    directions = Directions.from_pretrained(args.directions, token=args.token, cache_dir=args.cache_dir)
    psi = pipe.default_truncation_psi if args.truncation_psi is None else args.truncation_psi
    if args.latents is not None and args.seeds is not None:
        raise ValueError("Give `--latents` or `--seeds`, not both.")
    rows: dict = {}
    if args.latents is not None:
        from ..inversion import load_latents

        rows["latents"] = load_latents(args.latents, pipe.generator, what="--latents")
    else:
        rows["seeds"] = args.seeds or [0, 1, 2]
    common = {
        **rows,
        "layers": args.layers,
        "truncation_psi": psi,
        "noise_mode": args.noise_mode,
        "class_label": args.class_label,
    }
    out = pipe(directions=directions, index=args.index, strengths=args.strengths, **common)
    save_image_atomic(make_grid(out.images, nrow=len(args.strengths)), args.out, what="--out")
    num_rows = len(out.images) // len(args.strengths)
    print(f"saved a {num_rows}x{len(args.strengths)} grid to {args.out}")
    walks = [(flag, path) for flag, path in (("--gif", args.gif), ("--mp4", args.mp4)) if path]
    if walks:
        frames = pipe.walk_frames(directions, indices=args.index, num_frames=args.frames, **common)
        for flag, path in walks:
            (save_gif if flag == "--gif" else save_video)(frames, path, what=flag)
            print(f"saved a {args.frames}-frame walk to {path}")
    return 0
