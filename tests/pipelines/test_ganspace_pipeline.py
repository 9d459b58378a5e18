"""GANSpacePipeline: fit on tiny generators, σ-unit and layer-range edits, provenance, bad input."""

from __future__ import annotations

import pytest
import torch
from factories import tiny_stylegan2

from sefa_plugin import Directions, GANSpacePipeline
from sefa_plugin.directions.sefa import sefa_factorize
from sefa_plugin.models import PGGANGenerator


@pytest.fixture(autouse=True, scope="module")
def _single_thread():
    """Tiny models run fastest on one thread (and do not fight a busy machine's other jobs for cores)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def pipe() -> GANSpacePipeline:
    p = GANSpacePipeline(generator=tiny_stylegan2())
    p.set_progress_bar_config(disable=True)
    return p


@pytest.fixture(scope="module")
def directions(pipe) -> Directions:
    return pipe.fit(num_samples=4000, num_components=5, batch_size=1000, generator=torch.Generator().manual_seed(0))


def test_fit_returns_sorted_components_with_stds(pipe, directions):
    d = directions
    assert d.method == "ganspace" and d.latent_space == "w+" and len(d) == 5
    assert d.layers == list(range(pipe.generator.num_ws))
    assert d.labels == [f"PC{i}" for i in range(5)]
    assert torch.allclose(d.vectors.norm(dim=1), torch.ones(5), atol=1e-5)
    assert torch.allclose(d.vectors @ d.vectors.T, torch.eye(5), atol=1e-5)
    assert torch.all(d.values[:-1] >= d.values[1:])
    assert torch.allclose(d.stds, d.values.sqrt())
    assert d.strength_range == pytest.approx((-3 * float(d.stds[0]), 3 * float(d.stds[0])))
    assert d.extra["num_samples"] == 4000 and d.base_model["class_name"] == "StyleGAN2Generator"
    # The stds are the spread of fresh w samples along each component.
    with torch.no_grad():
        w = pipe.generator.sample_latents(torch.randn(4000, 16, generator=torch.Generator().manual_seed(9)))[:, 0]
    assert torch.allclose((w @ d.vectors.T).std(dim=0), d.stds, rtol=0.1)


def test_fit_is_deterministic(pipe, directions):
    again = pipe.fit(num_samples=4000, num_components=5, batch_size=1000, generator=torch.Generator().manual_seed(0))
    assert torch.equal(again.vectors, directions.vectors)


def test_sigma_units_and_layer_range_edits(pipe, directions):
    out = pipe(seeds=[0], directions=directions, index=0, strengths=[-2, 0, 2], sigma_units=True, layers="0-1",
               output_type="pt")  # fmt: skip
    assert out.images.shape == (3, 3, 16, 16)
    moved = out.latents[2] - out.latents[1]
    assert torch.allclose(moved[:2], (2 * directions.stds[0] * directions.vectors[0]).expand(2, -1), atol=1e-5)
    assert torch.all(moved[2:] == 0)  # the other layers are untouched
    plain = pipe(seeds=[0], output_type="pt")
    assert torch.allclose(out.images[1], plain.images[0], atol=1e-6)


def test_layer_groups_and_default_component_count(pipe):
    d = pipe.fit(num_samples=500, batch_size=250, layers="coarse")
    assert d.layers == pipe.generator.layer_groups()["coarse"]
    assert len(d) == 16  # default 80, capped at w_dim


def test_bad_input(pipe):
    with pytest.raises(ValueError, match=r"`num_components` must be an int in \[1, 16\]"):
        pipe.fit(num_samples=100, num_components=80)
    with pytest.raises(ValueError, match="`num_samples`"):
        pipe.fit(num_samples=1, num_components=2)
    with pytest.raises(ValueError, match="`layers`"):
        pipe.fit(num_samples=100, num_components=2, layers="0-99")


def test_save_and_reload_keeps_stds(tmp_path, directions):
    directions.save_pretrained(tmp_path / "pcs")
    again = Directions.from_pretrained(tmp_path / "pcs")
    assert again.method == "ganspace" and torch.equal(again.stds, directions.stds)


def test_z_generator_regresses_to_z_and_matches_sefa_axes():
    torch.manual_seed(0)
    g = PGGANGenerator(z_dim=8, img_resolution=8, channel_base=64, channel_max=8).eval()
    pipe = GANSpacePipeline(generator=g)
    pipe.set_progress_bar_config(disable=True)
    d = pipe.fit(num_samples=20_000, num_components=3, batch_size=5000, generator=torch.Generator().manual_seed(0))
    assert d.latent_space == "z" and d.layers == [0] and d.extra["pca_space"].startswith("first-layer")
    # Pixel-normalised z is isotropic, so PCA of A z regressed to z gives A's right singular vectors.
    sefa, values = sefa_factorize(g.latent_weights([0]), normalize=False, num_directions=3)
    assert float((d.vectors[0] @ sefa[0]).abs()) > 0.95
    assert torch.allclose(d.values, values, rtol=0.1)
    assert torch.allclose(d.stds, torch.ones(3), atol=0.05)
