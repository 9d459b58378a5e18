"""Where the packaged assets live: the embedded default model and its factor predictor.

A low module (it imports nothing of the package), so every layer can name the defaults without importing
the package face back up.
"""

from __future__ import annotations

from pathlib import Path

ASSETS = Path(__file__).resolve().parent / "assets"
#: The embedded default: a 64×64 StyleGAN2 trained by this project on procedural scenes (a pipeline folder).
DEFAULT_MODEL = str(ASSETS / "stylegan2-shapes64")
#: The factor predictor shipped with the embedded model (a ``FactorPredictor`` folder).
DEFAULT_PREDICTOR = str(ASSETS / "predictor")
