"""One check that every discovery method and the renderer run on a converted pipeline folder."""

from __future__ import annotations

import os

import torch

from sefa_plugin import BoundaryPipeline, GANSpacePipeline, LatentDiscoveryPipeline, SefaPipeline


def check_all_methods(folder: str | os.PathLike, k: int = 3) -> None:
    """SeFa, GANSpace, learned directions and a boundary from `folder`; SeFa's first direction renders."""
    sefa = SefaPipeline.from_pretrained(folder)
    sefa.set_progress_bar_config(disable=True)
    g = sefa.generator
    directions = sefa.factorize(num_directions=k)
    images = sefa(seeds=[0, 1], directions=directions, strengths=[-2.0, 2.0], output_type="pt").images
    assert images.shape == (4, g.config.img_channels, g.config.img_resolution, g.config.img_resolution)
    assert torch.isfinite(images).all() and not torch.equal(images[0], images[1])  # the edit changes the image
    ganspace = GANSpacePipeline.from_pretrained(folder)
    ganspace.set_progress_bar_config(disable=True)
    assert len(ganspace.fit(num_samples=64, batch_size=32, num_components=k)) == k
    learn = LatentDiscoveryPipeline.from_pretrained(folder)
    learn.set_progress_bar_config(disable=True)
    out = learn.train(steps=2, num_directions=k, batch_size=4, eval_batches=1)
    assert len(out.directions) == k
    boundary = BoundaryPipeline.from_pretrained(folder)
    boundary.set_progress_bar_config(disable=True)
    latents = boundary.sample_latents(200, seed=0)
    assert (
        boundary.fit(scores=latents[:, 0, 0] if latents.ndim == 3 else latents[:, 0], seed=0, ratio=0.1).latent_space
        == "z"
    )
