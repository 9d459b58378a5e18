"""`invert`: images in, an :class:`~sefa_plugin.inversion.output.Inversion` out — what ``GANPipeline.invert`` runs.

It prepares the images for the pipeline's generator, picks the perceptual term (LPIPS-VGG16 when its weights are
on the machine; for the embedded model otherwise its factor predictor), projects them in batches with the
pipeline's progress bar and device, and records the model's provenance with the result.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..embedded import DEFAULT_MODEL, DEFAULT_PREDICTOR
from ..evaluation.predictor import FactorPredictor
from ..utils.images import to_pil
from .output import Inversion
from .perceptual import PerceptualTerm, resolve_perceptual
from .preprocess import ImageInput, prepare_images
from .projector import ProjectorSettings, project

if TYPE_CHECKING:
    from ..pipelines.base import GANPipeline


logger = logging.getLogger(__name__)

_EMBEDDED_MODEL = Path(DEFAULT_MODEL)
_EMBEDDED_PREDICTOR = Path(DEFAULT_PREDICTOR)


def _embedded_predictor(pipe: GANPipeline) -> FactorPredictor | None:
    """The factor predictor shipped with the embedded model, when `pipe` is that model; else None."""
    path = pipe.source.get("path")
    if path is None or Path(path).resolve() != _EMBEDDED_MODEL.resolve() or not _EMBEDDED_PREDICTOR.is_dir():
        return None
    return FactorPredictor.from_pretrained(str(_EMBEDDED_PREDICTOR))


def invert(
    pipe: GANPipeline,
    images: ImageInput | Sequence[ImageInput],
    *,
    num_steps: int = ProjectorSettings.num_steps,
    space: str | None = None,
    generator: torch.Generator | None = None,
    class_label: int | None = None,
    perceptual: str | PerceptualTerm = "auto",
    predictor: FactorPredictor | str | os.PathLike | None = None,
    vgg16_weights: str | os.PathLike | None = None,
    lpips_weights: str | os.PathLike | None = None,
    batch_size: int = 8,
    **settings: Any,
) -> Inversion:
    """Invert images into `pipe`'s edit space (see :meth:`sefa_plugin.pipelines.base.GANPipeline.invert`)."""
    g = pipe.generator
    known = {f.name for f in dataclasses.fields(ProjectorSettings)} - {"num_steps", "space"}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise TypeError(f"Unknown inversion settings {unknown}; allowed: {sorted(known)}.")
    opts = ProjectorSettings(num_steps=num_steps, space=space, **settings).resolved(g)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive int, got {batch_size!r}.")
    cfg = g.config
    prepared = prepare_images(images, int(cfg.img_resolution), int(getattr(cfg, "img_channels", 3)))
    for i, (changed, size) in enumerate(zip(prepared.resized, prepared.original_sizes, strict=True)):
        if changed:
            logger.info("image %d (%d×%d) centre-cropped and resized to %d²", i, *size, int(cfg.img_resolution))
    if isinstance(predictor, (str, os.PathLike)):
        predictor = FactorPredictor.from_pretrained(str(predictor))
    if predictor is None and perceptual in ("auto", "predictor"):
        predictor = _embedded_predictor(pipe)
    device = next(g.parameters()).device
    term = resolve_perceptual(
        perceptual,
        vgg16_weights=vgg16_weights,
        lpips_weights=lpips_weights,
        predictor=predictor,
        img_resolution=int(cfg.img_resolution),
    )
    if term is not None:
        term = term.to(device)
    n = prepared.images.shape[0]
    c = pipe.class_vector(class_label, n)
    parts = []
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        parts.append(
            project(
                g,
                prepared.images[start:stop],
                opts,
                perceptual=term,
                c=None if c is None else c[start:stop].to(device),
                rng=generator,
                progress=pipe.named_progress("invert"),
            )
        )
    noise_names = parts[0].noise.keys()
    return Inversion(
        latents=torch.cat([p.latents for p in parts]),
        images=to_pil(torch.cat([p.images for p in parts])),
        targets=to_pil(prepared.images),
        losses=torch.cat([p.losses for p in parts]),
        noise={k: torch.cat([p.noise[k] for p in parts]) for k in noise_names},
        perceptual=term.name if term is not None else "none",
        latent_space=str(opts.space),
        settings=opts.to_dict(),
        resized=list(prepared.resized),
        base_model=pipe.provenance(),
    )
