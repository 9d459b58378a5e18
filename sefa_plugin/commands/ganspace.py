"""``sefa ganspace``: GANSpace's PCA directions of a model, streamed over sampled latents."""

from __future__ import annotations

import argparse
import logging

from ._common import (
    LAYER_HELP,
    add_model_args,
    add_preview_args,
    check_output_folder,
    default_of,
    load_pipeline,
    save_with_preview,
)

logger = logging.getLogger("sefa_plugin.cli")

NAME = "ganspace"
HELP = "GANSpace: PCA directions of a model (streamed)"
FLAGS = {
    "num_samples": "--num-samples",
    "num_components": "-k",
    "batch_size": "--batch-size",
    "layers": "--layers",
    "save_directory": "--out",
    "folder": "--out",
}


def register(p: argparse.ArgumentParser) -> None:
    from ..pipelines import GANSpacePipeline

    add_model_args(p)
    p.add_argument(
        "--num-samples",
        type=int,
        default=default_of(GANSpacePipeline.fit, "num_samples"),
        help="latents to sample (the paper: 1000000)",
    )
    p.add_argument(
        "-k",
        "--num-components",
        dest="k",
        type=int,
        default=None,
        help="components to keep (default: 80, at most the latent size)",
    )
    p.add_argument(
        "--layers", default=default_of(GANSpacePipeline.fit, "layers"), help="default edit layers: " + LAYER_HELP
    )
    p.add_argument(
        "--batch-size", type=int, default=default_of(GANSpacePipeline.fit, "batch_size"), help="latents per batch"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the latent sampling")
    p.add_argument("--out", required=True, help="output folder (directions.safetensors + README.md)")
    add_preview_args(p)


def run(args: argparse.Namespace) -> int:
    import torch

    from ..pipelines import GANSpacePipeline

    check_output_folder(args.out, "--out")
    pipe = load_pipeline(args, GANSpacePipeline)
    directions = pipe.fit(
        num_samples=args.num_samples,
        num_components=args.k,
        batch_size=args.batch_size,
        layers=args.layers,
        generator=torch.Generator().manual_seed(args.seed),
    )
    save_with_preview(pipe, directions, args)
    for i in range(len(directions)):
        print(f"PC{i}: variance {float(directions.values[i]):.4g}, std {float(directions.stds[i]):.4g}")
    print(f"saved {len(directions)} directions to {args.out}")
    return 0
