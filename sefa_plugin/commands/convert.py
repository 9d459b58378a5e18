"""``sefa convert``: a third-party checkpoint (read safely, format detected) as a pipeline folder."""

from __future__ import annotations

import argparse

NAME = "convert"
HELP = "convert a checkpoint (safely) to a pipeline folder"
FLAGS = {"src": "SRC", "format": "--format", "save_directory": "--out", "repo_id": "--push"}


def register(p: argparse.ArgumentParser) -> None:
    from ..convert import FORMATS

    p.add_argument(
        "src",
        metavar="SRC",
        help="checkpoint: NVIDIA .pkl (StyleGAN2-ADA, StyleGAN3 T/R), rosinality .pt, genforce .pth, huggan folder",
    )
    p.add_argument("--format", choices=FORMATS, default=None, help="source format (by default detected)")
    p.add_argument("--out", required=True, help="pipeline folder to write (model_index.json, generator/, card)")
    p.add_argument("--push", default=None, metavar="REPO_ID", help="also push the folder to this Hub repo")
    p.add_argument("--token", default=None, help="Hub token for --push")
    p.add_argument("--private", action="store_true", help="create the --push repo as private")


def run(args: argparse.Namespace) -> int:
    from ..pipelines import SefaPipeline
    from ._common import check_output_folder

    check_output_folder(args.out, "--out")
    pipe = SefaPipeline.from_checkpoint(args.src, format=args.format)
    pipe.save_pretrained(args.out)
    g = pipe.generator
    print(
        f"converted {args.src} ({pipe.source['source_format']}) to {args.out}: {type(g).__name__}, "
        f"{g.config.img_resolution}x{g.config.img_resolution}, {g.num_ws} W+ layers"
    )
    if args.push:
        url = pipe.push_to_hub(args.push, token=args.token, private=args.private or None)
        print(f"pushed to {args.push}: {url}")
    return 0
