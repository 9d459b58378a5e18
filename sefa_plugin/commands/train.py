"""``sefa train``: resumable StyleGAN2 training on the procedural scenes (the embedded model's recipe).

Every flag's default is :class:`~sefa_plugin.training.TrainingConfig`'s; on resume, the settings the
trainer lets change (``RESUME_OVERRIDABLE``) replace the checkpoint's only when their flag is given.
"""

from __future__ import annotations

import argparse
import dataclasses

NAME = "train"
HELP = "train a StyleGAN2 on the procedural scenes (resumable)"
FLAGS = {"run_dir": "--run-dir", "iterations": "--iterations", "init_generator": "--init-generator"}

#: Flags given as ``--name value`` whose help text says what they do; their defaults come from TrainingConfig.
_HELP = {
    "batch_size": "images per step and process; on resume, a new value applies from then on",
    "channel_base": "channels at resolution r are min(channel_base // r, channel_max); on resume, a larger value "
    "widens the generator, barely changing its images (the discriminator keeps its width unless "
    "--d-channel-base/--d-channel-max change it)",
    "channel_max": "upper bound on channels; on resume, a larger value widens the generator as above",
    "d_channel_base": "the discriminator's channel_base (None: the generator's); on resume, a larger value widens "
    "the discriminator, barely changing its outputs",
    "d_channel_max": "the discriminator's channel_max (None: the generator's); on resume, a larger value widens it",
    "lr": "Adam learning rate; on resume, replaces the checkpoint's value",
    "fm_weight": "feature-matching weight in the generator loss (0: off); on resume, replaces the checkpoint's",
    "aux_shape_weight": "weight of the discriminator's shape-classification loss on real scenes (0: off)",
    "shape_balance_weight": "weight of the generator's shape-frequency term (needs --aux-shape-weight; 0: off)",
    "shape_confidence_weight": "weight of the CatGAN entropy game on the shape head: D unsure on samples, G confident "
    "(needs --aux-shape-weight; 0: off)",
    "shape_assign_weight": "weight of the generator's cross-entropy to balanced per-sample shape targets "
    "(needs --aux-shape-weight; 0: off)",
    "shape_projection_weight": "weight of the shape head's logit in D's real/fake logit (projection discriminator; "
    "real labels, balanced assignments for samples; needs --aux-shape-weight; 0: off)",
    "style_mixing_prob": "probability of mixing two latents at a random layer, in [0, 1]; on resume, replaces the "
    "checkpoint's",
    "mapping_lr_multiplier": "learning-rate multiplier of the mapping network, > 0; on resume, replaces the "
    "checkpoint's and rescales the stored mapping weights so the generator is unchanged",
    "ema_kimg": "half-life of the generator EMA in thousands of images; on resume, replaces the checkpoint's",
    "resolution": "image side",
    "z_dim": "width of z",
    "w_dim": "width of w",
    "mapping_layers": "depth of the mapping network",
    "pl_weight": "path-length regularisation weight (0: off)",
    "seed": "seed of the initialisation and the batches",
}
#: Settings fixed when a run starts: their flags always pass a value (the configuration's default).
_NEW_RUN = ("resolution", "z_dim", "w_dim", "mapping_layers", "pl_weight", "seed")


def _config_default(name: str):
    from ..training import TrainingConfig

    field = {f.name: f for f in dataclasses.fields(TrainingConfig)}[name]
    return field.default


def register(p: argparse.ArgumentParser) -> None:
    from ..training import RESUME_OVERRIDABLE

    p.add_argument("--run-dir", required=True, help="checkpoint folder; training resumes from it")
    p.add_argument("--iterations", type=int, required=True, help="total iterations to reach")
    for name, text in _HELP.items():
        flag = "--" + name.replace("_", "-")
        default = _config_default(name)
        kind = type(default) if default is not None else int
        if name in _NEW_RUN:
            p.add_argument(flag, type=kind, default=default, help=text)
        else:  # None: the checkpoint's value on resume, the configuration's default for a new run
            p.add_argument(flag, type=kind, default=None, help=f"{text} (default {default})")
    p.add_argument(
        "--r1-gamma",
        default=None,
        help="R1 weight or 'auto' (default: 0.0002*resolution^2/batch_size); on resume, replaces the checkpoint's",
    )
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--checkpoint-every", type=int, default=250, help="checkpoint interval in iterations")
    p.add_argument("--export", default=None, help="save the EMA generator here when done")
    p.add_argument(
        "--init-generator",
        default=None,
        help="warm-start a new run from this generator or pipeline folder (same architecture; fresh discriminator)",
    )
    missing = set(RESUME_OVERRIDABLE) - set(_HELP) - {"r1_gamma"}
    if missing:  # a setting the trainer can change on resume without a flag of its own
        raise RuntimeError(f"sefa train has no flag for the resumable settings {sorted(missing)}")


def run(args: argparse.Namespace) -> int:
    from ..training import RESUME_OVERRIDABLE, Trainer, TrainingConfig
    from ._common import check_output_folder

    check_output_folder(args.run_dir, "--run-dir")
    if args.export:
        check_output_folder(args.export, "--export")

    given = {  # flags without a default of their own: the configuration's defaults apply
        k: getattr(args, k)
        for k in ("batch_size", "channel_base", "channel_max", "d_channel_base", "d_channel_max")
        if getattr(args, k) is not None
    }
    cfg = TrainingConfig(**{name: getattr(args, name) for name in _NEW_RUN}, **given)
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
