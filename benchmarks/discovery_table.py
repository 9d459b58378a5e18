"""All discovery methods side by side on one model (issues 4 and 25): RCA, agreement, re-scoring, layer groups.

For SeFa, GANSpace, learned (ortho), random and coordinate directions (K each, fixed seeds) it prints:

* RCA with the fast protocol (`sefa_plugin.evaluation.fast_rca`): one rendered set of scenes shared by all
  methods, a reconstructor per method trained with the directions fixed, accuracy on fresh pairs;
* per factor, the best |cos| between the method's directions and the supervised (InterFaceGAN)
  boundary of that factor, and that direction's rank (SeFa paper, Table 1);
* which method recovered which factor: per factor, the direction that changes it most in the re-scoring
  matrix, that change and its ratio to the same direction's largest change of another factor (the
  reading of the SeFa paper's Table 2);
* the same two tables for SeFa restricted to the coarse / middle / fine layer groups and to single
  layers (the paper's layer-wise analysis),

and writes a report (Markdown + heatmaps) to `--out`. Before the RCA it prints "estimated N min".

    python benchmarks/discovery_table.py --out outputs/discovery
    # reuse boundaries and learned directions made by the CLI:
    sefa boundary --num-samples 5000 --out outputs/boundaries
    sefa learn -k 10 --steps 200 --out outputs/learned
    python benchmarks/discovery_table.py --boundaries outputs/boundaries --learned outputs/learned
"""

from __future__ import annotations

import argparse
import logging
import time

import torch

from sefa_plugin import DEFAULT_MODEL, DEFAULT_PREDICTOR, Directions, SefaPipeline
from sefa_plugin.evaluation import FactorPredictor
from sefa_plugin.evaluation.agreement import agreement_table, boundary_agreement
from sefa_plugin.evaluation.fast_rca import DEFAULT_TRAIN_PAIRS, RCAEvaluator
from sefa_plugin.evaluation.report import write_report
from sefa_plugin.evaluation.rescoring import disentanglement_table, rescore_directions
from sefa_plugin.pipelines import BoundaryPipeline, GANSpacePipeline, LatentDiscoveryPipeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=DEFAULT_MODEL, help="pipeline folder (default: embedded model)")
    parser.add_argument("-k", type=int, default=10, help="directions per method")
    parser.add_argument("--ganspace-samples", type=int, default=100_000)
    parser.add_argument("--learned", default=None, help="learned directions (`sefa learn` output) instead of training")
    parser.add_argument("--learned-steps", type=int, default=2000, help="training steps without --learned")
    parser.add_argument("--boundaries", default=None, help="boundaries (`sefa boundary` output) instead of fitting")
    parser.add_argument("--boundary-samples", type=int, default=20_000, help="latents scored without --boundaries")
    parser.add_argument("--rca-steps", type=int, default=2000, help="reconstructor steps per method (fast RCA)")
    parser.add_argument("--rca-pairs", type=int, default=DEFAULT_TRAIN_PAIRS, help="rendered training pairs (fast RCA)")
    parser.add_argument("--rca-batches", type=int, default=100, help="fresh batches RCA is measured on")
    parser.add_argument("--rescoring-samples", type=int, default=64, help="seeds per direction for re-scoring")
    parser.add_argument("--layer-rescoring-samples", type=int, default=64, help="the same, for SeFa per layer")
    parser.add_argument("--strength", type=float, default=3.0, help="re-scoring compares -s and +s")
    parser.add_argument("--no-layers", action="store_true", help="skip SeFa per layer group and single layer")
    parser.add_argument("--no-methods", action="store_true", help="only SeFa per layer (no RCA, no method tables)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--out", default="outputs/discovery", help="report folder")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("sefa_plugin.evaluation.fast_rca").setLevel(logging.INFO)
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

    # 1. Supervised boundaries: the reference directions, one per factor the predictor scores linearly.
    if args.boundaries:
        boundaries = Directions.from_pretrained(args.boundaries)
    else:
        bpipe = BoundaryPipeline(generator=g)
        bpipe.set_progress_bar_config(disable=True)
        boundaries = timed("boundaries", lambda: bpipe.fit(scorer=predictor, num_samples=args.boundary_samples))

    # 2. The direction sets.
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
    if args.learned:
        methods["learned (ortho)"] = Directions.from_pretrained(args.learned)
    else:
        out = timed("learned (ortho)", lambda: lpipe.train(args.k, kind="ortho", steps=args.learned_steps, seed=0))
        methods["learned (ortho)"] = out.directions
    for kind in ("random", "coordinate"):
        methods[kind] = lpipe.train(args.k, kind=kind, steps=0, seed=0).directions

    # 3. RCA (one shared set of scenes), agreement and re-scoring per method.
    if args.no_methods:
        methods = {}
    evaluator = RCAEvaluator(pipe, train_pairs=args.rca_pairs, eval_batches=args.rca_batches, seed=0)
    rescoring_images = 2 * args.rescoring_samples * sum(len(d) for d in methods.values())
    if methods:
        estimate = evaluator.estimate_seconds(len(methods), args.rca_steps, args.k, rescoring_images)
        print(f"estimated {estimate / 60:.1f} min for RCA and re-scoring of {len(methods)} methods", flush=True)
    results = {}
    for name, directions in methods.items():
        rca = timed(f"rca {name}", lambda d=directions: evaluator(d, steps=args.rca_steps))
        rescoring = timed(
            f"rescoring {name}",
            lambda d=directions: rescore_directions(
                pipe, d, predictor, num_samples=args.rescoring_samples, strength=args.strength, seed=1000
            ),
        )
        results[name] = {"rca": rca, "agreement": boundary_agreement(directions, boundaries), "rescoring": rescoring}
        print(f"{name}: RCA {rca.accuracy:.3f} ({rca.seconds:.0f} s)", flush=True)

    # 4. SeFa per layer group and per single layer.
    layer_sets: dict[str, Directions] = {}
    if not args.no_layers:
        groups = g.layer_groups()
        for spec in ("all", "coarse", "middle", "fine", *map(str, range(g.num_ws))):
            label = f"{spec} {groups[spec]}" if spec in groups else ("all" if spec == "all" else f"layer {spec}")
            k = min(args.k, g.editable_latent_dim)
            layer_sets[label] = pipe.factorize(layers=spec if spec in groups or spec == "all" else int(spec),
                                               num_directions=k)  # fmt: skip
        layer_rescoring = timed("rescoring sefa per layer", lambda: {
            label: rescore_directions(pipe, d, predictor, num_samples=args.layer_rescoring_samples,
                                      strength=args.strength, seed=1000)
            for label, d in layer_sets.items()
        })  # fmt: skip

    rca = f"fast RCA: {args.rca_steps} steps on {args.rca_pairs} rendered pairs, {args.rca_batches} eval batches of 32"
    source = args.boundaries or f"{args.boundary_samples} scored samples"
    print(
        f"\nmodel: {args.model}; K = {args.k}; boundaries: {source}"
        + ("" if args.no_methods else f"; learned: {args.learned or f'{args.learned_steps} steps'}; {rca}")
        + f"; re-scoring at ±{args.strength:g}: {args.rescoring_samples} seeds per method"
        + ("" if args.no_layers else f", {args.layer_rescoring_samples} per SeFa layer selection")
    )
    if results:
        print("\n## RCA (chance = 1/K)\n\n| method | RCA | seconds |\n|---|---|---|")
        for name, r in results.items():
            print(f"| {name} | {r['rca'].accuracy:.3f} | {r['rca'].seconds:.0f} |")
        print("\n## Best |cos| to the supervised boundary (rank of that direction)\n")
        print(agreement_table({name: r["agreement"] for name, r in results.items()}))
        print("\n## Which method recovered which factor (change ×ratio to its largest side effect, #direction)\n")
        print(disentanglement_table({name: r["rescoring"] for name, r in results.items()}))
    if layer_sets:
        print("\n## SeFa per layer selection: best |cos| to the supervised boundary (rank)\n")
        print(agreement_table({label: boundary_agreement(d, boundaries) for label, d in layer_sets.items()}))
        print("\n## SeFa per layer selection: which factor it recovers (change ×ratio, #direction)\n")
        print(disentanglement_table(layer_rescoring))
    report = write_report(args.out, args.model, results) if results else "none (--no-methods)"
    print("\n## Wall times (s)\n\n" + "\n".join(f"- {k}: {v:.1f}" for k, v in timings.items()))
    print(f"\nreport: {report}; total {time.perf_counter() - start:.0f} s, torch threads {args.threads}")


if __name__ == "__main__":
    main()
