"""Reconstructor classification accuracy: runs on a tiny GAN; near 1 where directions are recognisable."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from sefa_plugin import Directions, DirectionsMismatchError, GANPipeline, StyleGAN2Generator
from sefa_plugin.evaluation.rca import RCAResult, reconstructor_classification_accuracy
from sefa_plugin.models.interface import EditableGenerator


class LinearToyGenerator(torch.nn.Module, EditableGenerator):
    """A "generator" whose 8×8 grey image is a fixed linear function of z; it ignores z's last `ignored` axes."""

    latent_space = "z"

    def __init__(self, z_dim: int = 8, resolution: int = 8, ignored: int = 4, seed: int = 0) -> None:
        super().__init__()
        self.config = SimpleNamespace(z_dim=z_dim, c_dim=0, img_resolution=resolution)
        a = 0.2 * torch.randn(resolution * resolution, z_dim, generator=torch.Generator().manual_seed(seed))
        a[:, z_dim - ignored :] = 0
        self.register_buffer("a", a)

    @property
    def latent_dim(self) -> int:
        return self.config.z_dim

    @property
    def num_ws(self) -> int:
        return 1

    def layer_resolutions(self) -> list[int]:
        return [self.config.img_resolution]

    def sample_latents(self, z, c=None, truncation_psi=1.0, truncation_cutoff=None):
        return z.to(self.a.device)[:, None]  # [N, 1, z_dim]

    def synthesize(self, latents, noise_mode="const"):
        r = self.config.img_resolution
        return (latents[:, 0] @ self.a.T).reshape(-1, 1, r, r)


def axes(indices, dim: int = 8) -> Directions:
    return Directions(vectors=torch.eye(dim)[list(indices)], method="coordinate", latent_space="z", layers=[0])


@pytest.mark.parametrize("mode", ["fast", "full"])
def test_recognisable_directions_score_near_one_and_invisible_ones_near_chance(mode):
    g = LinearToyGenerator()
    kw = {"steps": 100, "batch_size": 16, "eval_batches": 10, "lr": 1e-3, "mode": mode, "train_pairs": 512}
    visible = reconstructor_classification_accuracy(g, axes(range(4)), **kw)
    assert isinstance(visible, RCAResult) and visible.steps == 100 and visible.num_directions == 4
    assert visible.protocol == mode
    assert visible.accuracy > 0.9, visible
    assert visible.per_direction.shape == (4,) and visible.eval_samples == 160
    assert visible.chance == 0.25 and visible.seconds > 0
    # Axes the generator ignores change nothing in the image: the reconstructor can only guess.
    invisible = reconstructor_classification_accuracy(g, axes(range(4, 8)), **kw)
    assert invisible.accuracy < 0.45, invisible


def test_rca_of_coordinate_directions_on_a_tiny_gan_runs():
    torch.manual_seed(0)
    g = StyleGAN2Generator(z_dim=16, w_dim=16, img_resolution=16, channel_base=256, channel_max=16, mapping_layers=2)
    pipe = GANPipeline(generator=g.eval())
    pipe.set_progress_bar_config(disable=True)
    d = Directions(vectors=torch.eye(16)[:3], method="coordinate", latent_space="w+", layers=[0, 1])
    result = reconstructor_classification_accuracy(pipe, d, steps=3, batch_size=6, eval_batches=2, seed=1, mode="full")
    assert result.steps == 3 and 0.0 <= result.accuracy <= 1.0 and result.eval_samples == 12
    # Directions are held fixed.
    assert torch.equal(d.vectors, torch.eye(16)[:3])


def test_rca_checks_the_directions_fit():
    g = LinearToyGenerator()
    with pytest.raises(DirectionsMismatchError):
        reconstructor_classification_accuracy(g, axes(range(2), dim=6), steps=1)
    wplus = Directions(vectors=torch.eye(8)[:2], method="coordinate", latent_space="w+", layers=[0])
    with pytest.raises(DirectionsMismatchError):
        reconstructor_classification_accuracy(g, wplus, steps=1)
    with pytest.raises(ValueError, match="`eval_batches`"):
        reconstructor_classification_accuracy(g, axes(range(2)), steps=1, eval_batches=0)
    with pytest.raises(ValueError, match="`mode` must be one of"):
        reconstructor_classification_accuracy(g, axes(range(2)), steps=1, mode="quick")
    with pytest.raises(ValueError, match="`checkpoint_dir`"):
        reconstructor_classification_accuracy(g, axes(range(2)), steps=1, checkpoint_dir="/tmp/x")
