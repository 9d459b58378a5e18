"""``sefa evaluate``: RCA, boundary agreement and re-scoring of direction sets, written as a report."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ._common import add_model_args, check_output_folder, default_of, load_pipeline

logger = logging.getLogger("sefa_plugin.cli")

NAME = "evaluate"
HELP = "RCA, boundary agreement and re-scoring of direction sets: a report"
FLAGS = {
    "steps": "--rca-steps",
    "mode": "--rca-mode",
    "train_pairs": "--rca-pairs",
    "resolution": "--rca-resolution",
    "eval_batches": "--rca-batches",
    "batch_size": "--batch-size",
    "num_samples": "--rescoring-samples",
    "strength": "--strength",
    "out_dir": "--out",
    "folder": "--out",
}


def register(p: argparse.ArgumentParser) -> None:
    from ..evaluation.fast_rca import RCAEvaluator

    add_model_args(p)
    p.add_argument("--directions", nargs="+", required=True, help="direction folders, files or Hub ids")
    p.add_argument("--out", required=True, help="report folder (report.md + rescoring_<method>.png)")
    p.add_argument("--rca-steps", type=int, default=2000, help="reconstructor training steps per method (0: no RCA)")
    p.add_argument("--rca-batches", type=int, default=100, help="fresh batches for RCA (the paper: 100)")
    p.add_argument("--batch-size", type=int, default=32, help="image pairs per RCA step")
    p.add_argument(
        "--rca-mode",
        choices=("fast", "full"),
        default="fast",
        help="fast: a smaller reconstructor on 32x32 images of a rendered pool of pairs, originals shared by all "
        "methods; full: the paper's protocol (new pairs at every step, full resolution)",
    )
    p.add_argument(
        "--rca-pairs",
        type=int,
        default=default_of(RCAEvaluator, "train_pairs"),
        help="rendered training pairs (fast mode)",
    )
    p.add_argument("--rca-resolution", type=int, default=32, help="image side the reconstructor sees (fast mode)")
    p.add_argument("--boundaries", default=None, help="supervised boundaries (`sefa boundary` output) to compare with")
    p.add_argument("--predictor", default=None, help="FactorPredictor folder (default: the embedded one, if any)")
    p.add_argument("--no-rescoring", action="store_true", help="skip the re-scoring matrices")
    p.add_argument("--rescoring-samples", type=int, default=64, help="seeds per direction for re-scoring")
    p.add_argument("--strength", type=float, default=3.0, help="re-scoring compares -strength and +strength")
    p.add_argument("--seed", type=int, default=0, help="seed of RCA batches and first re-scoring seed")


def run(args: argparse.Namespace) -> int:
    from ..directions import Directions
    from ..embedded import DEFAULT_PREDICTOR
    from ..evaluation.agreement import boundary_agreement
    from ..evaluation.rca import reconstructor_classification_accuracy
    from ..evaluation.report import write_report
    from ..evaluation.rescoring import rescore_directions
    from ..pipelines import GANPipeline

    rescoring = not args.no_rescoring and (args.predictor or Path(DEFAULT_PREDICTOR).is_dir())
    if args.rca_steps == 0 and not rescoring and not args.boundaries:
        why = "`--no-rescoring`" if args.no_rescoring else f"no factor predictor (none at {DEFAULT_PREDICTOR})"
        raise ValueError(
            f"nothing to evaluate: `--rca-steps 0`, {why} and no `--boundaries`; give `--rca-steps N` (N > 0), "
            f"`--boundaries DIR` or re-scoring (`--predictor DIR`)."
        )
    check_output_folder(args.out, "--out")
    pipe = load_pipeline(args, GANPipeline)
    boundaries = None
    if args.boundaries:
        boundaries = Directions.from_pretrained(args.boundaries, token=args.token, cache_dir=args.cache_dir)
    predictor = None
    predictor_path = args.predictor or DEFAULT_PREDICTOR
    if rescoring:
        from ..evaluation.predictor import FactorPredictor

        predictor = FactorPredictor.from_pretrained(predictor_path).to(pipe.generator.device).eval()
    elif not args.no_rescoring:
        logger.warning("no factor predictor at %s: skipping the re-scoring matrices", DEFAULT_PREDICTOR)
    sets = [
        Directions.from_pretrained(source, token=args.token, cache_dir=args.cache_dir) for source in args.directions
    ]
    evaluator = None
    if args.rca_steps > 0 and args.rca_mode == "fast":
        from ..evaluation.fast_rca import RCAEvaluator

        evaluator = RCAEvaluator(
            pipe, train_pairs=args.rca_pairs, eval_batches=args.rca_batches, batch_size=args.batch_size,
            resolution=args.rca_resolution, seed=args.seed,
        )  # fmt: skip
        rescoring = 0 if predictor is None else sum(2 * args.rescoring_samples * len(d) for d in sets)
        seconds = evaluator.estimate_seconds(len(sets), args.rca_steps, max(len(d) for d in sets), rescoring)
        print(f"estimated {seconds / 60:.1f} min for {len(sets)} direction sets (fast RCA and re-scoring)")
    results: dict[str, dict] = {}
    for source, directions in zip(args.directions, sets, strict=True):
        name, n = directions.method, 2
        while name in results:
            name, n = f"{directions.method} ({Path(source).name or n})", n + 1
        res: dict = {}
        if evaluator is not None:
            res["rca"] = evaluator(directions, steps=args.rca_steps)
            print(f"{name}: RCA {res['rca'].accuracy:.3f} (chance {res['rca'].chance:.3f}, fast)")
        elif args.rca_steps > 0:
            res["rca"] = reconstructor_classification_accuracy(
                pipe,
                directions,
                steps=args.rca_steps,
                batch_size=args.batch_size,
                eval_batches=args.rca_batches,
                seed=args.seed,
                mode="full",
            )
            print(f"{name}: RCA {res['rca'].accuracy:.3f} (chance {res['rca'].chance:.3f}, full)")
        if boundaries is not None:
            res["agreement"] = boundary_agreement(directions, boundaries)
            best = ", ".join(f"{a.factor} {a.best_abs_cos:.2f} (#{a.rank})" for a in res["agreement"])
            print(f"{name}: agreement {best}")
        if predictor is not None:
            res["rescoring"] = rescore_directions(
                pipe,
                directions,
                predictor,
                num_samples=args.rescoring_samples,
                strength=args.strength,
                seed=args.seed,
            )
        results[name] = res
    model_name = pipe.source.get("repo_id") or Path(args.model or "stylegan2-shapes64 (embedded)").name
    path = write_report(args.out, model_name, results)
    print(f"wrote {path}")
    return 0
