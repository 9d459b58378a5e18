"""All discovery methods side by side on one model (issue 4): RCA, agreement with boundaries, re-scoring.

For SeFa, GANSpace, learned (ortho), random and coordinate directions (K each, fixed seeds) it prints:

* RCA: a reconstructor trained with the directions fixed (`--rca-steps`), accuracy on fresh batches;
* per factor, the best |cos| between the method's directions and the supervised (InterFaceGAN)
  boundary of that factor, and that direction's rank;
* the re-scoring matrix of the top directions (SeFa paper, Table 2),

and writes the same as a report (Markdown + heatmaps) to `--out`. Training steps and wall times are
printed with the results.

    python benchmarks/discovery_table.py --out outputs/discovery
"""

from __future__ import annotations

import argparse
import logging
import time

import torch

from sefa_plugin import DEFAULT_MODEL, DEFAULT_PREDICTOR, SefaPipeline
from sefa_plugin.evaluation import FactorPredictor
from sefa_plugin.evaluation.agreement import agreement_table, boundary_agreement
from sefa_plugin.evaluation.rca import reconstructor_classification_accuracy
from sefa_plugin.evaluation.report import write_report
from sefa_plugin.evaluation.rescoring import rescore_directions
from sefa_plugin.pipelines import BoundaryPipeline, GANSpacePipeline, LatentDiscoveryPipeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=DEFAULT_MODEL, help="pipeline folder (default: embedded model)")
    parser.add_argument("-k", type=int, default=10, help="directions per method")
    parser.add_argument("--ganspace-samples", type=int, default=100_000)
    parser.add_argument("--learned-steps", type=int, default=2000, help="training steps of the learned directions")
    parser.add_argument("--rca-steps", type=int, default=1000, help="reconstructor training steps for RCA")
    parser.add_argument("--rca-batches", type=int, default=100, help="fresh batches RCA is measured on")
    parser.add_argument("--boundary-samples", type=int, default=20_000, help="latents scored for boundaries")
    parser.add_argument("--rescoring-samples", type=int, default=64, help="seeds per direction for re-scoring")
    parser.add_argument("--strength", type=float, default=3.0, help="re-scoring compares -s and +s")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--out", default="outputs/discovery", help="report folder")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    pipe = SefaPipeline.from_pretrained(args.model)
    pipe.set_progress_bar_config(disable=True)
    g = pipe.generator
    predictor = FactorPredictor.from_pretrained(DEFAULT_PREDICTOR)
    timings: dict[str, float] = {}

    def timed(name, fn):
        t0 = time.perf_counter()
        value = fn()
        timings[name] = time.perf_counter() - t0
        return value

    # Supervised boundaries: the reference directions, one per factor the predictor scores linearly.
    bpipe = BoundaryPipeline(generator=g)
    bpipe.set_progress_bar_config(disable=True)
    boundaries = timed("boundaries", lambda: bpipe.fit(scorer=predictor, num_samples=args.boundary_samples, seed=0))
    methods = {
        "sefa": timed("sefa", lambda: pipe.factorize(layers="all", num_directions=args.k)),
        "ganspace": timed(
            "ganspace",
            lambda: GANSpacePipeline(generator=g).fit(
                num_samples=args.ganspace_samples, num_components=args.k, generator=torch.Generator().manual_seed(0)
            ),
        ),
    }
    lpipe = LatentDiscoveryPipeline(generator=g)
    lpipe.set_progress_bar_config(disable=True)
    for kind in ("ortho", "random", "coordinate"):
        steps = args.learned_steps if kind == "ortho" else 0
        name = "learned (ortho)" if kind == "ortho" else kind
        out = timed(name, lambda kind=kind, steps=steps: lpipe.train(args.k, kind=kind, steps=steps, seed=0))
        methods[name] = out.directions

    results = {}
    for name, directions in methods.items():
        rca = timed(
            f"rca {name}",
            lambda d=directions: reconstructor_classification_accuracy(
                pipe, d, steps=args.rca_steps, eval_batches=args.rca_batches, seed=0
            ),
        )
        rescoring = rescore_directions(
            pipe, directions, predictor, num_samples=args.rescoring_samples, strength=args.strength, seed=1000
        )
        results[name] = {"rca": rca, "agreement": boundary_agreement(directions, boundaries), "rescoring": rescoring}

    print(
        f"model: {args.model}; K = {args.k}; learned steps {args.learned_steps}; RCA steps {args.rca_steps}, "
        f"{args.rca_batches} eval batches; boundaries from {args.boundary_samples} scored samples"
    )
    print("\n## RCA (chance = 1/K)\n\n| method | RCA |\n|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['rca'].accuracy:.3f} |")
    print("\n## Best |cos| to the supervised boundary (rank of that direction)\n")
    print(agreement_table({name: r["agreement"] for name, r in results.items()}))
    for name, r in results.items():
        print(f"\n## Re-scoring matrix: {name} (1.0 = change between two random scenes)\n")
        print(r["rescoring"].to_markdown())
    report = write_report(args.out, args.model, results)
    print("\n## Wall times (s)\n\n" + "\n".join(f"- {k}: {v:.1f}" for k, v in timings.items()))
    print(f"\nreport: {report}; total {time.perf_counter() - start:.0f} s, torch threads {args.threads}")


if __name__ == "__main__":
    main()
