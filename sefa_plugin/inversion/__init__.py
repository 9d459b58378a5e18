"""Inverting real images into a generator's edit space, so that they can be edited like samples.

* :func:`~sefa_plugin.inversion.invert.invert` (``GANPipeline.invert``): images → :class:`Inversion`;
* :mod:`~sefa_plugin.inversion.projector`: the optimisation (NVIDIA's projector, batched, every family);
* :mod:`~sefa_plugin.inversion.losses` and :mod:`~sefa_plugin.inversion.perceptual`: multi-scale MSE, LPIPS-VGG16
  or the factor predictor's features;
* :mod:`~sefa_plugin.inversion.noise`: per-image noise maps and their regulariser;
* :mod:`~sefa_plugin.inversion.preprocess`: paths, PIL images, arrays → the target tensor;
* :mod:`~sefa_plugin.inversion.output` and :mod:`~sefa_plugin.inversion.latents_io`: the result's folder format,
  and loaders for NVIDIA's ``projected_w.npz`` and ``.npy`` W/W+ arrays.
"""

from .invert import invert
from .latents_io import LATENTS_FILE, check_latents
from .loading import load_latents
from .losses import ReconstructionLoss, multiscale_mse
from .noise import applied_noise
from .output import Inversion
from .perceptual import PERCEPTUAL_TERMS, PerceptualTerm, PredictorPerceptual, VGG16Perceptual, resolve_perceptual
from .preprocess import PreparedImages, prepare_images
from .projector import SPACES, Projection, ProjectorSettings, project

__all__ = [
    "LATENTS_FILE",
    "PERCEPTUAL_TERMS",
    "SPACES",
    "Inversion",
    "PerceptualTerm",
    "PredictorPerceptual",
    "PreparedImages",
    "Projection",
    "ProjectorSettings",
    "ReconstructionLoss",
    "VGG16Perceptual",
    "applied_noise",
    "check_latents",
    "invert",
    "load_latents",
    "multiscale_mse",
    "prepare_images",
    "project",
    "resolve_perceptual",
]
