"""Export the embedded default model from a training run into the package.

Reads the resumable checkpoint written by ``sefa train`` (or ``Trainer``), takes the EMA generator and
writes a diffusers pipeline folder (``model_index.json``, ``generator/``, ``README.md`` with how it was
trained) to ``sefa_plugin/assets/stylegan2-shapes64`` — the folder ``sefa_plugin.DEFAULT_MODEL`` names.

    python scripts/export_embedded.py --run-dir /root/sefa_runs/embedded
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
from pathlib import Path

import torch

from sefa_plugin.cards import render_card
from sefa_plugin.hub import atomic_folder, weights_sha256
from sefa_plugin.pipelines import SefaPipeline
from sefa_plugin.training import TrainingConfig, build_generator
from sefa_plugin.training.checkpoint import load_checkpoint
from sefa_plugin.training.trainer import CHECKPOINT_NAME
from sefa_plugin.utils.images import make_grid, to_pil

logger = logging.getLogger("export_embedded")

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "sefa_plugin" / "assets" / "stylegan2-shapes64"
TRAIN_COMMAND = (
    "sefa train --run-dir RUN_DIR --iterations N  (defaults: 64x64, batch 32, channel_base 2048, channel_max 64)"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-dir", required=True, help="training run folder holding checkpoint.pt")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="pipeline folder to write")
    parser.add_argument(
        "--hardware",
        default=f"{platform.processor() or platform.machine()} CPU, 2 cores",
        help="hardware description recorded in the card",
    )
    parser.add_argument("--command", default=TRAIN_COMMAND, help="the training command(s) recorded in the card")
    parser.add_argument(
        "--earlier",
        default=None,
        help="for a warm-started run: what trained the starting weights (recorded in the card)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)

    state = load_checkpoint(Path(args.run_dir) / CHECKPOINT_NAME)
    if state is None:
        raise SystemExit(f"no {CHECKPOINT_NAME} in --run-dir {args.run_dir}")
    cfg = TrainingConfig(**state["config"])
    generator = build_generator(cfg)
    generator.load_state_dict(state["G_ema"])
    generator.eval()
    pipe = SefaPipeline(generator=generator)
    hours = float(state.get("wall_seconds", 0.0)) / 3600
    with torch.no_grad():
        samples = to_pil(generator(pipe.generator.z_from_seeds(list(range(16))), truncation_psi=1.0))
    provenance = {
        "training command": args.command,
        "iterations": state["iteration"],
        "images seen": state["images_seen"],
        "training time (hours)": f"{hours:.2f}",
        "hardware": args.hardware,
        "training config": "`" + json.dumps(state["config"], sort_keys=True) + "`",
        "weights sha256": weights_sha256(generator),
    }
    init = cfg.extra.get("init_generator")
    if init is not None:
        if args.command == TRAIN_COMMAND:
            provenance["training command"] += f"  --init-generator {init['source']}"
        provenance["warm start"] = f"weights sha256 {init['weights_sha256']}" + (
            f": {args.earlier}" if args.earlier else ""
        )
    card = render_card(
        "model_card.md",
        base_model=None,
        tags=["gan", "stylegan2", "sefa-plugin", "unconditional-image-generation"],
        title="StyleGAN2 on procedural scenes (sefa_plugin's embedded default)",
        class_name="StyleGAN2Generator",
        img_resolution=cfg.resolution,
        latent_space="w+",
        latent_dim=cfg.w_dim,
        num_ws=generator.num_ws,
        num_classes=0,
        description=(
            "Trained by sefa_plugin's own `sefa train` on the procedural scene dataset "
            "(`sefa_plugin.data`: background hue, object hue, shape, scale, rotation, x, y, lighting, "
            "floor height), so the factors its directions should recover are known."
        ),
        preview="samples.png",
        provenance=provenance,
        repo_id=None,
    )
    with atomic_folder(args.out, what="--out") as tmp:
        pipe.save_pretrained(tmp, safe_serialization=True)
        make_grid(samples, nrow=8).save(tmp / "samples.png")
        card.save(str(tmp / "README.md"))
    logger.info("exported iteration %d (%.2f h) to %s", state["iteration"], hours, args.out)


if __name__ == "__main__":
    main()
