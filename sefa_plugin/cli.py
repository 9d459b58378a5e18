"""The ``sefa`` command: parses arguments and calls the library.

Sub-commands: ``demo`` (the main job on the embedded model), ``factorize``, ``ganspace``, ``boundary``,
``import``, ``edit``, ``app``, ``push``, ``train``, ``learn``, ``evaluate``. Run ``sefa COMMAND --help`` for
each one's options.
"""

from __future__ import annotations

import argparse
import logging
import pickle
import sys
import time
from collections.abc import Sequence
from pathlib import Path

logger = logging.getLogger("sefa_plugin.cli")


def _model_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "model",
        nargs="?",
        default=None,
        help="pipeline folder or Hub repo id (default: the embedded 64x64 StyleGAN2 scene model)",
    )
    p.add_argument("--revision", default=None, help="Hub revision (branch, tag or commit)")
    p.add_argument("--token", default=None, help="Hub token (default: the logged-in token)")
    p.add_argument("--cache-dir", default=None, help="Hub cache folder")
    p.add_argument("--local-files-only", action="store_true", help="use the local Hub cache only")


def _load_pipeline(args: argparse.Namespace, pipeline_cls=None):
    """Load `args.model` (default: the embedded model) as `pipeline_cls` (default: SefaPipeline)."""
    from . import DEFAULT_MODEL
    from .pipelines import SefaPipeline

    return (pipeline_cls or SefaPipeline).from_pretrained(
        args.model or DEFAULT_MODEL,
        revision=args.revision,
        token=args.token,
        cache_dir=args.cache_dir,
        local_files_only=args.local_files_only or None,
    )


def _preview_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preview-seed", type=int, default=0, help="seed of the preview grid")
    p.add_argument(
        "--truncation-psi",
        type=float,
        default=None,
        help="truncation of the preview grid (default: 0.7 for W+ models, 1 for z models)",
    )
    p.add_argument("--no-preview", action="store_true", help="do not render preview.png")


def _save_with_preview(pipe, directions, args: argparse.Namespace) -> None:
    """Save `directions` to `args.out`, with a preview grid of the first five unless `--no-preview`."""
    preview = None
    if not args.no_preview:
        # z-input generators have no average latent to truncate towards.
        psi = args.truncation_psi
        if psi is None:
            psi = 0.7 if pipe.generator.latent_space == "w+" else 1.0
        indices = range(min(len(directions), 5))
        preview = pipe.direction_grid(directions, indices=indices, seed=args.preview_seed, truncation_psi=psi)
    directions.save_pretrained(args.out, preview=preview)


def _cmd_factorize(args: argparse.Namespace) -> int:
    pipe = _load_pipeline(args)
    t0 = time.perf_counter()
    directions = pipe.factorize(layers=args.layers, num_directions=args.k, normalize=not args.no_normalize)
    logger.info(
        "factorized %d directions over layers %s in %.1f ms",
        len(directions),
        directions.layers,
        (time.perf_counter() - t0) * 1000,
    )
    _save_with_preview(pipe, directions, args)
    for i in range(len(directions)):
        print(f"direction {i}: eigenvalue {float(directions.values[i]):.4f}")
    print(f"saved {len(directions)} directions to {args.out}")
    return 0


def _cmd_ganspace(args: argparse.Namespace) -> int:
    import torch

    from .pipelines import GANSpacePipeline

    pipe = _load_pipeline(args, GANSpacePipeline)
    t0 = time.perf_counter()
    directions = pipe.fit(
        num_samples=args.num_samples,
        num_components=args.k,
        batch_size=args.batch_size,
        layers=args.layers,
        generator=torch.Generator().manual_seed(args.seed),
    )
    logger.info(
        "GANSpace: %d components from %d samples in %.1f s", len(directions), args.num_samples, time.perf_counter() - t0
    )
    _save_with_preview(pipe, directions, args)
    for i in range(len(directions)):
        print(f"PC{i}: variance {float(directions.values[i]):.4g}, std {float(directions.stds[i]):.4g}")
    print(f"saved {len(directions)} directions to {args.out}")
    return 0


def _cmd_boundary(args: argparse.Namespace) -> int:
    import numpy as np

    from .pipelines import BoundaryPipeline

    pipe = _load_pipeline(args, BoundaryPipeline)
    scorer = scores = None
    if args.scores:
        scores = np.load(args.scores, allow_pickle=False)
    elif args.predictor:
        from .evaluation.predictor import FactorPredictor

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
    _save_with_preview(pipe, directions, args)
    for i, st in enumerate(directions.extra["stats"]):
        val = "n/a" if st["val_accuracy"] is None else f"{st['val_accuracy']:.3f}"
        print(f"{directions.labels[i]}: validation accuracy {val} ({st['num_per_side']} per side)")
    print(f"saved {len(directions)} boundaries to {args.out}")
    return 0


def _cmd_import(args: argparse.Namespace) -> int:
    from .directions.importers import import_directions

    generator = None
    if args.model:
        from .pipelines import GANPipeline

        generator = _load_pipeline(args, GANPipeline).generator
    directions = import_directions(
        args.file, format=args.format, latent_space=args.latent_space, layers=args.layers, generator=generator
    )
    directions.save_pretrained(args.out)
    print(
        f"imported {len(directions)} {args.format} directions ({directions.latent_space}, layers "
        f"{directions.layers}) to {args.out}"
    )
    return 0


def _cmd_edit(args: argparse.Namespace) -> int:
    from .directions import Directions
    from .utils.images import make_grid, save_gif, save_image_atomic

    pipe = _load_pipeline(args)
    directions = Directions.from_pretrained(args.directions, token=args.token, cache_dir=args.cache_dir)
    out = pipe(
        seeds=args.seeds,
        directions=directions,
        index=args.index,
        strengths=args.strengths,
        layers=args.layers,
        truncation_psi=args.truncation_psi,
        noise_mode=args.noise_mode,
        class_label=args.class_label,
    )
    save_image_atomic(make_grid(out.images, nrow=len(args.strengths)), args.out, what="--out")
    print(f"saved a {len(args.seeds)}x{len(args.strengths)} grid to {args.out}")
    if args.gif:
        frames = _walk_frames(
            pipe,
            directions,
            args.index,
            args.seeds,
            args.frames,
            args.layers,
            args.truncation_psi,
            args.noise_mode,
            args.class_label,
        )
        save_gif(frames, args.gif, what="--gif")
        print(f"saved a {args.frames}-frame walk to {args.gif}")
    return 0


def _walk_frames(pipe, directions, index, seeds, frames, layers, psi, noise_mode, class_label):
    import numpy as np

    from .utils.images import make_grid

    lo, hi = directions.strength_range
    strengths = np.linspace(lo, hi, frames).tolist()
    out = pipe(
        seeds=seeds,
        directions=directions,
        index=index,
        strengths=strengths,
        layers=layers,
        truncation_psi=psi,
        noise_mode=noise_mode,
        class_label=class_label,
    )
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
    from .training.trainer import RESUME_OVERRIDABLE

    given = {  # flags without a default of their own: the configuration's defaults apply
        k: getattr(args, k)
        for k in ("batch_size", "channel_base", "channel_max", "d_channel_base", "d_channel_max")
        if getattr(args, k) is not None
    }
    cfg = TrainingConfig(
        resolution=args.resolution,
        **given,
        z_dim=args.z_dim,
        w_dim=args.w_dim,
        mapping_layers=args.mapping_layers,
        pl_weight=args.pl_weight,
        seed=args.seed,
    )
    # Settings that a resumed run may change: every one with a flag of its own (r1_gamma is parsed below).
    overrides = {
        key: getattr(args, key)
        for key in RESUME_OVERRIDABLE
        if key != "r1_gamma" and getattr(args, key, None) is not None
    }
    if args.r1_gamma is not None:
        try:
            overrides["r1_gamma"] = None if args.r1_gamma == "auto" else float(args.r1_gamma)
        except ValueError:
            raise ValueError(f"--r1-gamma must be 'auto' or a number >= 0, got {args.r1_gamma!r}") from None
    trainer = Trainer(
        cfg, run_dir=args.run_dir, device=args.device, init_generator=args.init_generator, overrides=overrides
    )
    trainer.train(iterations=args.iterations, checkpoint_every=args.checkpoint_every)
    if not trainer.accelerator.is_main_process:  # other processes of a multi-process run stop here
        return 0
    if args.export:
        trainer.export_generator(args.export)
        print(f"exported the EMA generator to {args.export}")
    print(f"trained to iteration {trainer.iteration}; checkpoint in {args.run_dir}")
    return 0


def _cmd_app(args: argparse.Namespace) -> int:
    """Serve the Gradio editor (``gradio_app/app.py`` of the repository checkout)."""
    import importlib.util

    app_file = Path(__file__).resolve().parents[1] / "gradio_app" / "app.py"
    if importlib.util.find_spec("gradio") is None:
        raise OSError("the editor needs Gradio: pip install 'sefa_plugin[app]'")
    if not app_file.is_file():
        raise OSError(f"the editor is gradio_app/app.py of the repository checkout; it is not at {app_file}")
    spec = importlib.util.spec_from_file_location("sefa_gradio_app", app_file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.launch(host=args.host, port=args.port, share=args.share, threads=args.threads)
    return 0


def _cmd_learn(args: argparse.Namespace) -> int:
    from .hub import atomic_folder
    from .pipelines import LatentDiscoveryPipeline

    pipe = _load_pipeline(args, LatentDiscoveryPipeline)
    checkpoint_dir = args.checkpoint_dir or str(Path(args.out) / "checkpoint")
    out = pipe.train(
        num_directions=args.k,
        kind=args.kind,
        steps=args.steps,
        batch_size=args.batch_size,
        layers=args.layers,
        lr=args.lr,
        shift_scale=args.shift_scale,
        min_shift=args.min_shift,
        reg_weight=args.reg_weight,
        checkpoint_dir=checkpoint_dir,
        seed=args.seed,
        checkpoint_every=args.checkpoint_every,
        eval_batches=args.eval_batches,
        device=args.device,
    )
    directions = out.directions
    seconds = directions.extra["train_seconds"]
    logger.info(
        "learned directions: %d steps in %.1f s (%.2f steps/s)",
        directions.extra["steps"],
        seconds,
        directions.extra["steps"] / seconds if seconds else float("nan"),
    )
    _save_with_preview(pipe, directions, args)
    with atomic_folder(Path(args.out) / "reconstructor", what="--out") as tmp:
        out.reconstructor.save_pretrained(tmp)
    for i in range(len(directions)):
        acc = "n/a" if directions.values is None else f"{float(directions.values[i]):.3f}"
        print(f"direction {i}: reconstructor accuracy {acc}")
    if directions.values is not None:
        print(f"accuracy {out.accuracy:.3f} (chance {1 / len(directions):.3f})")
    print(f"saved {len(directions)} {directions.method} directions to {args.out} (checkpoint: {checkpoint_dir})")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from . import DEFAULT_PREDICTOR
    from .directions import Directions
    from .evaluation.agreement import boundary_agreement
    from .evaluation.rca import reconstructor_classification_accuracy
    from .evaluation.report import write_report
    from .evaluation.rescoring import rescore_directions
    from .pipelines import GANPipeline

    pipe = _load_pipeline(args, GANPipeline)
    boundaries = None
    if args.boundaries:
        boundaries = Directions.from_pretrained(args.boundaries, token=args.token, cache_dir=args.cache_dir)
    predictor = None
    predictor_path = args.predictor or DEFAULT_PREDICTOR
    if not args.no_rescoring and (args.predictor or Path(DEFAULT_PREDICTOR).is_dir()):
        from .evaluation.predictor import FactorPredictor

        predictor = FactorPredictor.from_pretrained(predictor_path).to(pipe.generator.device).eval()
    elif not args.no_rescoring:
        logger.warning("no factor predictor at %s: skipping the re-scoring matrices", DEFAULT_PREDICTOR)
    results: dict[str, dict] = {}
    for source in args.directions:
        directions = Directions.from_pretrained(source, token=args.token, cache_dir=args.cache_dir)
        name, n = directions.method, 2
        while name in results:
            name, n = f"{directions.method} ({Path(source).name or n})", n + 1
        res: dict = {}
        if args.rca_steps > 0:
            res["rca"] = reconstructor_classification_accuracy(
                pipe,
                directions,
                steps=args.rca_steps,
                batch_size=args.batch_size,
                eval_batches=args.rca_batches,
                seed=args.seed,
            )
            print(f"{name}: RCA {res['rca'].accuracy:.3f} (chance {res['rca'].chance:.3f})")
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


def _cmd_convert(args: argparse.Namespace) -> int:
    from .pipelines import SefaPipeline

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


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    report = run_demo(out_dir=args.out, num_directions=args.k, layers=args.layers, seed=args.seed, model=args.model)
    for line in report.lines():
        print(line)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sefa",
        description="Find, edit and share the semantic directions of pretrained GANs.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    fmt = argparse.ArgumentDefaultsHelpFormatter

    p = sub.add_parser(
        "demo", help="factorize the embedded model, render and label its top directions", formatter_class=fmt
    )
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
    _preview_args(p)
    p.set_defaults(func=_cmd_factorize)

    p = sub.add_parser("ganspace", help="GANSpace: PCA directions of a model (streamed)", formatter_class=fmt)
    _model_arg(p)
    p.add_argument("--num-samples", type=int, default=100_000, help="latents to sample (the paper: 1000000)")
    p.add_argument(
        "-k",
        "--num-components",
        dest="k",
        type=int,
        default=None,
        help="components to keep (default: 80, at most the latent size)",
    )
    p.add_argument("--layers", default="all", help="default edit layers: all, coarse, middle, fine, 0-3, 0-1,4")
    p.add_argument("--batch-size", type=int, default=10_000, help="latents per batch")
    p.add_argument("--seed", type=int, default=0, help="seed of the latent sampling")
    p.add_argument("--out", required=True, help="output folder (directions.safetensors + README.md)")
    _preview_args(p)
    p.set_defaults(func=_cmd_ganspace)

    p = sub.add_parser(
        "boundary", help="InterFaceGAN: supervised boundaries from attribute scores", formatter_class=fmt
    )
    _model_arg(p)
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
    p.add_argument("--ratio", type=float, default=0.02, help="fraction taken as positives and as negatives")
    p.add_argument("--layers", default="all", help="default edit layers: all, coarse, middle, fine, 0-3, 0-1,4")
    p.add_argument("--batch-size", type=int, default=64, help="images rendered and scored per batch")
    p.add_argument("--seed", type=int, default=0, help="seed of the latent sampling and the split")
    p.add_argument("--out", required=True, help="output folder (directions.safetensors + README.md)")
    _preview_args(p)
    p.set_defaults(func=_cmd_boundary)

    from .directions.importers import IMPORT_FORMATS

    formats = ", ".join(IMPORT_FORMATS)
    p = sub.add_parser("import", help=f"convert others' direction files ({formats})", formatter_class=fmt)
    p.add_argument(
        "file", help="*_boundary.npy, a GANSpace .npz cache, a rosinality factor.pt, a Voynov deformator_N.pt or run"
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
    p.add_argument("--model", default=None, help="target pipeline folder or Hub id (checks sizes, resolves layers)")
    p.add_argument("--revision", default=None, help="Hub revision of --model")
    p.add_argument("--token", default=None, help="Hub token (default: the logged-in token)")
    p.add_argument("--cache-dir", default=None, help="Hub cache folder")
    p.add_argument("--local-files-only", action="store_true", help="use the local Hub cache only")
    p.set_defaults(func=_cmd_import)

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

    p = sub.add_parser("app", help="open the editor (Gradio) in the browser, embedded model", formatter_class=fmt)
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (0.0.0.0: all)")
    p.add_argument("--port", type=int, default=None, help="port (None: 7860 or the next free one)")
    p.add_argument("--share", action="store_true", help="also open a public gradio.live link (needs network)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per render (0: torch's default)")
    p.set_defaults(func=_cmd_app)

    p = sub.add_parser(
        "learn", help="learned directions (Voynov & Babenko): train a direction matrix (resumable)", formatter_class=fmt
    )
    _model_arg(p)
    p.add_argument("-k", "--num-directions", dest="k", type=int, default=10, help="directions to learn")
    p.add_argument(
        "--kind",
        default="ortho",
        choices=["ortho", "linear", "proj", "random", "coordinate"],
        help="direction matrix (random and coordinate are fixed baselines)",
    )
    p.add_argument(
        "--steps", type=int, default=100_000, help="total training steps (paper: 100000; ~0.7 steps/s on a CPU core)"
    )
    p.add_argument("--batch-size", type=int, default=32, help="image pairs per step")
    p.add_argument("--layers", default="all", help="W+ layers shifted: all, coarse, middle, fine, 0-3, 0-1,4")
    p.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate of both networks")
    p.add_argument("--shift-scale", type=float, default=6.0, help="largest shift |eps|")
    p.add_argument("--min-shift", type=float, default=0.5, help="smallest shift |eps|")
    p.add_argument("--reg-weight", type=float, default=0.25, help="weight of the shift's L1 loss")
    p.add_argument("--seed", type=int, default=0, help="seed of the initialisation and the batches")
    p.add_argument("--out", required=True, help="output folder (directions.safetensors, README.md, reconstructor/)")
    p.add_argument("--checkpoint-dir", default=None, help="resumable checkpoint folder (default: OUT/checkpoint)")
    p.add_argument("--checkpoint-every", type=int, default=1000, help="checkpoint interval in steps")
    p.add_argument("--eval-batches", type=int, default=10, help="fresh batches for the final accuracy (0: skip)")
    p.add_argument(
        "--device",
        default=None,
        help="cpu or cuda (default: cuda when available); for several processes launch with torchrun or accelerate",
    )
    _preview_args(p)
    p.set_defaults(func=_cmd_learn)

    p = sub.add_parser(
        "evaluate", help="RCA, boundary agreement and re-scoring of direction sets: a report", formatter_class=fmt
    )
    _model_arg(p)
    p.add_argument("--directions", nargs="+", required=True, help="direction folders, files or Hub ids")
    p.add_argument("--out", required=True, help="report folder (report.md + rescoring_<method>.png)")
    p.add_argument("--rca-steps", type=int, default=2000, help="reconstructor training steps per method (0: no RCA)")
    p.add_argument("--rca-batches", type=int, default=100, help="fresh batches for RCA (the paper: 100)")
    p.add_argument("--batch-size", type=int, default=32, help="image pairs per RCA step")
    p.add_argument("--boundaries", default=None, help="supervised boundaries (`sefa boundary` output) to compare with")
    p.add_argument("--predictor", default=None, help="FactorPredictor folder (default: the embedded one, if any)")
    p.add_argument("--no-rescoring", action="store_true", help="skip the re-scoring matrices")
    p.add_argument("--rescoring-samples", type=int, default=64, help="seeds per direction for re-scoring")
    p.add_argument("--strength", type=float, default=3.0, help="re-scoring compares -strength and +strength")
    p.add_argument("--seed", type=int, default=0, help="seed of RCA batches and first re-scoring seed")
    p.set_defaults(func=_cmd_evaluate)

    from .convert import FORMATS

    p = sub.add_parser("convert", help="convert a checkpoint (safely) to a pipeline folder", formatter_class=fmt)
    p.add_argument(
        "src",
        help="checkpoint: NVIDIA .pkl (StyleGAN2-ADA, StyleGAN3 T/R), rosinality .pt, genforce .pth, huggan folder",
    )
    p.add_argument("--format", choices=FORMATS, default=None, help="source format (default: detected)")
    p.add_argument("--out", required=True, help="pipeline folder to write (model_index.json, generator/, card)")
    p.add_argument("--push", default=None, metavar="REPO_ID", help="also push the folder to this Hub repo")
    p.add_argument("--token", default=None, help="Hub token for --push")
    p.add_argument("--private", action="store_true", help="create the --push repo as private")
    p.set_defaults(func=_cmd_convert)

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
    p.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="images per step and process (default 32); on resume, a new value applies from then on",
    )
    p.add_argument(
        "--channel-base",
        type=int,
        default=None,
        help="channels at resolution r are min(channel_base // r, channel_max) (default 2048); on resume, a "
        "larger value widens the generator, barely changing its images (the discriminator keeps its width "
        "unless --d-channel-base/--d-channel-max change it)",
    )
    p.add_argument(
        "--channel-max",
        type=int,
        default=None,
        help="upper bound on channels (default 64); on resume, a larger value widens the generator as above",
    )
    p.add_argument(
        "--d-channel-base",
        type=int,
        default=None,
        help="the discriminator's channel_base (default: the generator's); on resume, a larger value widens "
        "the discriminator, barely changing its outputs",
    )
    p.add_argument(
        "--d-channel-max",
        type=int,
        default=None,
        help="the discriminator's channel_max (default: the generator's); on resume, a larger value widens it",
    )
    p.add_argument("--z-dim", type=int, default=128)
    p.add_argument("--w-dim", type=int, default=128)
    p.add_argument("--mapping-layers", type=int, default=4)
    p.add_argument("--pl-weight", type=float, default=0.0, help="path-length regularisation weight (0: off)")
    p.add_argument(
        "--lr",
        type=float,
        default=None,
        help="Adam learning rate (default 0.002; on resume, replaces the checkpoint's value)",
    )
    p.add_argument(
        "--r1-gamma",
        default=None,
        help="R1 weight or 'auto' (default: 0.0002*resolution^2/batch_size); on resume, replaces the checkpoint's",
    )
    p.add_argument(
        "--fm-weight",
        type=float,
        default=None,
        help="feature-matching weight in the generator loss (default 0: off); on resume, replaces the checkpoint's",
    )
    p.add_argument(
        "--aux-shape-weight",
        type=float,
        default=None,
        help="weight of the discriminator's shape-classification loss on real scenes (default 0: off)",
    )
    p.add_argument(
        "--shape-balance-weight",
        type=float,
        default=None,
        help="weight of the generator's shape-frequency term (needs --aux-shape-weight; default 0: off)",
    )
    p.add_argument(
        "--shape-confidence-weight",
        type=float,
        default=None,
        help="weight of the CatGAN entropy game on the shape head: D unsure on samples, G confident "
        "(needs --aux-shape-weight; default 0: off)",
    )
    p.add_argument(
        "--shape-assign-weight",
        type=float,
        default=None,
        help="weight of the generator's cross-entropy to balanced per-sample shape targets "
        "(needs --aux-shape-weight; default 0: off)",
    )
    p.add_argument(
        "--shape-projection-weight",
        type=float,
        default=None,
        help="weight of the shape head's logit in D's real/fake logit (projection discriminator; real "
        "labels, balanced assignments for samples; needs --aux-shape-weight; default 0: off)",
    )
    p.add_argument(
        "--style-mixing-prob",
        type=float,
        default=None,
        help="probability of mixing two latents at a random layer, in [0, 1] (default 0.9); on resume, "
        "replaces the checkpoint's",
    )
    p.add_argument(
        "--mapping-lr-multiplier",
        type=float,
        default=None,
        help="learning-rate multiplier of the mapping network, > 0 (default 0.01); on resume, replaces the "
        "checkpoint's and rescales the stored mapping weights so the generator is unchanged",
    )
    p.add_argument(
        "--ema-kimg",
        type=float,
        default=None,
        help="half-life of the generator EMA in thousands of images (default 10); on resume, replaces the checkpoint's",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--checkpoint-every", type=int, default=250)
    p.add_argument("--export", default=None, help="save the EMA generator here when done")
    p.add_argument(
        "--init-generator",
        default=None,
        help="warm-start a new run from this generator or pipeline folder (same architecture; fresh discriminator)",
    )
    p.set_defaults(func=_cmd_train)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sefa`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(message)s")
    try:
        return int(args.func(args))
    except (ValueError, OSError, IndexError, KeyError, pickle.UnpicklingError) as err:  # incl. UnsafePickleError
        logger.debug("failed", exc_info=True)
        print(f"sefa {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
