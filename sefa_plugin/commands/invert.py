"""``sefa invert``: real images into a model's edit space — latents, reconstructions and a side-by-side PNG."""

from __future__ import annotations

import argparse

from ._common import add_model_args, check_output_folder, load_pipeline

NAME = "invert"
HELP = "invert photos into a model's latent space, to edit them with `sefa edit --latents`"
FLAGS = {
    "images": "IMAGE",
    "num_steps": "--steps",
    "space": "--space",
    "perceptual": "--perceptual",
    "vgg16_weights": "--vgg16-weights",
    "lpips_weights": "--lpips-weights",
    "batch_size": "--batch-size",
    "class_label": "--class-label",
    "save_directory": "--out",
}


def register(p: argparse.ArgumentParser) -> None:
    from ..inversion import PERCEPTUAL_TERMS
    from ..inversion.projector import ProjectorSettings

    add_model_args(p)
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (PNG, JPEG …); resized to the model's size")
    p.add_argument("--out", required=True, help="output folder (latents.safetensors, reconstructions, comparison.png)")
    p.add_argument(
        "--space",
        default=None,
        choices=["w+", "w", "z"],
        help="edit space to fit (default: w+ for the StyleGAN family, z for PGGAN/DCGAN/BigGAN)",
    )
    p.add_argument("--steps", type=int, default=ProjectorSettings.num_steps, help="optimisation steps")
    p.add_argument("--perceptual", default="auto", choices=PERCEPTUAL_TERMS, help="perceptual loss term")
    p.add_argument("--vgg16-weights", default=None, help="torchvision VGG16 weights for LPIPS (never downloaded)")
    p.add_argument("--lpips-weights", default=None, help="LPIPS linear-layer weights (vgg.pth)")
    p.add_argument("--batch-size", type=int, default=8, help="images optimised together")
    p.add_argument("--class-label", type=int, default=None, help="class for conditional models")
    p.add_argument("--seed", type=int, default=0, help="seed of the optimisation")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import torch

    check_output_folder(args.out, "--out")
    if args.model and Path(args.model).is_file():  # `sefa invert photo.png ...`: MODEL left out
        args.images.insert(0, args.model)
        args.model = None
    pipe = load_pipeline(args)
    inv = pipe.invert(
        args.images,
        num_steps=args.steps,
        space=args.space,
        generator=torch.Generator().manual_seed(args.seed),
        class_label=args.class_label,
        perceptual=args.perceptual,
        vgg16_weights=args.vgg16_weights,
        lpips_weights=args.lpips_weights,
        batch_size=args.batch_size,
    )
    inv.save_pretrained(args.out)
    for path, value, resized in zip(args.images, inv.psnr(), inv.resized, strict=True):
        note = " (resized to the model's resolution)" if resized else ""
        print(f"{path}: PSNR {value:.1f} dB{note}")
    print(f"perceptual term: {inv.perceptual}")
    print(f"saved {len(inv)} inverted images to {args.out} (edit them: sefa edit --latents {args.out} ...)")
    return 0
