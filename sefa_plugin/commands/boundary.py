"""``sefa boundary``: InterFaceGAN's supervised boundaries from attribute scores (the predictor or a file)."""

from __future__ import annotations

import argparse

from ._common import LAYER_HELP, add_model_args, add_preview_args, default_of, load_pipeline, save_with_preview

NAME = "boundary"
HELP = "InterFaceGAN: supervised boundaries from attribute scores"
FLAGS = {
    "num_samples": "--num-samples",
    "ratio": "--ratio",
    "attribute_names": "--attributes",
    "scores": "--scores",
    "layers": "--layers",
    "batch_size": "--batch-size",
    "save_directory": "--out",
    "folder": "--out",
}


def register(p: argparse.ArgumentParser) -> None:
    from ..pipelines import BoundaryPipeline

    add_model_args(p)
    p.add_argument("--num-samples", type=int, default=10_000, help="latents to sample and score")
    p.add_argument(
        "--attributes",
        nargs="+",
        default=None,
        help="predictor columns to fit (default: scale x y lighting floor_height), or labels of the --scores columns",
    )
    p.add_argument("--predictor", default=None, help="FactorPredictor folder (default: the embedded one)")
    p.add_argument(
        "--scores", default=None, help=".npy scores [N] or [N, A] for the latents of --seed (instead of a predictor)"
    )
    p.add_argument(
        "--ratio",
        type=float,
        default=default_of(BoundaryPipeline.fit, "ratio"),
        help="fraction taken as positives and as negatives",
    )
    p.add_argument(
        "--layers", default=default_of(BoundaryPipeline.fit, "layers"), help="default edit layers: " + LAYER_HELP
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=default_of(BoundaryPipeline.fit, "batch_size"),
        help="images rendered and scored per batch",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=default_of(BoundaryPipeline.fit, "seed"),
        help="seed of the latent sampling and the split",
    )
    p.add_argument("--out", required=True, help="output folder (directions.safetensors + README.md)")
    add_preview_args(p)


def run(args: argparse.Namespace) -> int:
    from ..pipelines import BoundaryPipeline
    from ..utils.arrays import load_array_file
    from ._common import check_output_folder

    check_output_folder(args.out, "--out")
    pipe = load_pipeline(args, BoundaryPipeline)
    scorer = scores = None
    if args.scores:
        scores = load_array_file(args.scores, "--scores")
        if isinstance(scores, dict):
            raise ValueError(f"`--scores` {args.scores!r} must be one .npy array [N] or [N, A], not an .npz archive.")
    elif args.predictor:
        from ..evaluation.predictor import FactorPredictor

        scorer = FactorPredictor.from_pretrained(args.predictor).to(pipe.generator.device)
    directions = pipe.fit(
        scorer=scorer,
        scores=scores,
        num_samples=args.num_samples,
        ratio=args.ratio,
        attribute_names=args.attributes,
        layers=args.layers,
        batch_size=args.batch_size,
        seed=args.seed,
    )
    save_with_preview(pipe, directions, args)
    for i, st in enumerate(directions.extra["stats"]):
        val = "n/a" if st["val_accuracy"] is None else f"{st['val_accuracy']:.3f}"
        print(f"{directions.labels[i]}: validation accuracy {val} ({st['num_per_side']} per side)")
    print(f"saved {len(directions)} boundaries to {args.out}")
    return 0
