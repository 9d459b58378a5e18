"""The main job: factorize a model, render its top directions, and label them with the predictor.

``sefa demo`` runs this on the embedded default model with no network: SeFa directions, a grid PNG
(one row per direction, strengths left to right), an animated GIF and an MP4 walking all of them at once, the
direction file, and for each direction the factor it changes most according to the factor predictor.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from .directions.container import Directions
from .evaluation.labels import DirectionLabel
from .utils.images import save_gif, save_image_atomic, save_video

logger = logging.getLogger(__name__)


@dataclass
class DemoReport:
    """What :func:`run_demo` produced.

    Attributes:
        directions: The SeFa directions (labels filled in from the predictor when available).
        factors: For each direction, what it changes (:class:`~sefa_plugin.evaluation.labels.DirectionLabel`),
            or None when the model is not the embedded one.
        files: Paths written.
        seconds: Wall time.
    """

    directions: Directions
    factors: list[DirectionLabel | None]
    files: dict[str, Path] = field(default_factory=dict)
    seconds: float = 0.0

    def lines(self) -> list[str]:
        out = []
        for i, fac in enumerate(self.factors):
            ev = float(self.directions.values[i]) if self.directions.values is not None else float("nan")
            what = str(fac) if fac else "no factor predictor for this model"
            out.append(f"direction {i}: {what}  [eigenvalue {ev:.3f}]")
        out += [f"wrote {name}: {path}" for name, path in self.files.items()]
        out.append(f"done in {self.seconds:.1f} s")
        return out


def run_demo(
    out_dir: str | os.PathLike = "outputs/demo",
    num_directions: int = 8,
    layers: str = "all",
    seed: int = 0,
    model: str | None = None,
    num_label_samples: int = 32,
) -> DemoReport:
    """Factorize, render and label the top directions of `model` (default: the embedded model).

    Example:

    >>> from sefa_plugin.demo import run_demo
    >>> report = run_demo("/tmp/sefa-demo", num_directions=3, num_label_samples=4)  # doctest: +SKIP
    >>> print(report.lines()[0])  # doctest: +SKIP
    direction 0: object hue (0.61)  [eigenvalue 12.345]
    """
    from .embedded import DEFAULT_MODEL, DEFAULT_PREDICTOR
    from .evaluation.labels import label_directions
    from .evaluation.predictor import FactorPredictor
    from .pipelines import SefaPipeline

    t0 = time.perf_counter()
    out = Path(out_dir)
    try:  # fail before the work, not after it
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OSError(f"`out_dir` {str(out)!r} cannot be created: {err}") from err
    if not os.access(out, os.W_OK):
        raise PermissionError(f"`out_dir` {str(out)!r} is not writable.")
    pipe = SefaPipeline.from_pretrained(model or DEFAULT_MODEL)
    pipe.set_progress_bar_config(disable=True)
    directions = pipe.factorize(layers=layers, num_directions=num_directions)
    factors: list[DirectionLabel | None] = [None] * len(directions)
    if model is None:  # the predictor knows the embedded model's scenes only
        predictor = FactorPredictor.from_pretrained(DEFAULT_PREDICTOR)
        factors = list(label_directions(pipe, directions, predictor, num_samples=num_label_samples))
        for i, found in enumerate(factors):
            directions.labels[i] = found.label
    psi = pipe.default_truncation_psi
    grid = pipe.direction_grid(directions, seed=seed, num_steps=7, truncation_psi=psi)
    frames = pipe.walk_frames(directions, indices=range(len(directions)), seeds=[seed], truncation_psi=psi)
    files = {
        "grid": save_image_atomic(grid, out / "directions_grid.png", what="out_dir"),
        "gif": save_gif(frames, out / "directions_walk.gif", what="out_dir"),
        "mp4": save_video(frames, out / "directions_walk.mp4", what="out_dir"),
        "directions": directions.save_pretrained(out / "directions", preview=grid),
    }
    return DemoReport(directions=directions, factors=factors, files=files, seconds=time.perf_counter() - t0)
