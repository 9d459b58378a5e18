"""``sefa import``: direction files of other tools (InterFaceGAN, GANSpace, rosinality …) as direction folders."""

from __future__ import annotations

import argparse

from ._common import add_hub_args, load_pipeline

NAME = "import"
HELP = "convert others' direction files (InterFaceGAN, GANSpace, rosinality, Voynov & Babenko deformators)"
FLAGS = {
    "path": "FILE",
    "format": "--format",
    "latent_space": "--latent-space",
    "layers": "--layers",
    "folder": "--out",
}


def register(p: argparse.ArgumentParser) -> None:
    from ..directions.importers import IMPORT_FORMATS

    p.add_argument(
        "file",
        metavar="FILE",
        help="*_boundary.npy, a GANSpace .npz cache, a rosinality factor.pt, a Voynov deformator_N.pt or run",
    )
    p.add_argument("--format", required=True, choices=IMPORT_FORMATS, help="source format")
    p.add_argument("--out", required=True, help="output folder (directions.safetensors + README.md)")
    p.add_argument(
        "--latent-space",
        default=None,
        choices=["w+", "z"],
        help="latent space (default: w+; GANSpace: from the file name; voynov: from args.json, else z)",
    )
    p.add_argument("--layers", default=None, help="edit layers (default: all of --model; needed without it)")
    p.add_argument(
        "--model",
        default=None,
        help="target pipeline folder or Hub id: checks sizes and resolves layers (without it, give --layers)",
    )
    add_hub_args(p, what="--model")


def run(args: argparse.Namespace) -> int:
    from ..directions.importers import import_directions
    from ..pipelines import GANPipeline
    from ._common import check_output_folder

    check_output_folder(args.out, "--out")
    generator = load_pipeline(args, GANPipeline).generator if args.model else None
    directions = import_directions(
        args.file, format=args.format, latent_space=args.latent_space, layers=args.layers, generator=generator
    )
    directions.save_pretrained(args.out)
    print(
        f"imported {len(directions)} {args.format} directions ({directions.latent_space}, layers "
        f"{directions.layers}) to {args.out}"
    )
    return 0
