"""BoundaryPipeline: boundaries from scorers and scores, conditional editing, the predictor path, bad input."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from factories import tiny_stylegan2

from sefa_plugin import DEFAULT_MODEL, DEFAULT_PREDICTOR, BoundaryPipeline
from sefa_plugin.evaluation.predictor import FactorPredictor
from sefa_plugin.models import DCGANGenerator


@pytest.fixture(autouse=True, scope="module")
def _single_thread():
    """Tiny models run fastest on one thread (and do not fight a busy machine's other jobs for cores)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def unit(v: torch.Tensor) -> torch.Tensor:
    return v / v.norm()


@pytest.fixture(scope="module")
def pipe() -> BoundaryPipeline:
    p = BoundaryPipeline(generator=tiny_stylegan2())
    p.set_progress_bar_config(disable=True)
    return p


@pytest.fixture(scope="module")
def normals() -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return torch.stack([unit(torch.randn(16, generator=g)) for _ in range(3)])


def test_scores_of_a_known_linear_function_give_its_normal(pipe, normals):
    # The tiny model's W is strongly anisotropic (variances 4 ... 0.03): with the paper's 2% extremes, far
    # apart, many hyperplanes separate them and the max-margin one may tilt. Nearly adjacent sets (40%
    # per side) pin the hyperplane, so the recovered normal can be compared with the true one.
    lat = pipe.sample_latents(3000, seed=0)
    assert lat.shape == (3000, 16)
    d = pipe.fit(scores=lat @ normals.T, num_samples=3000, ratio=0.4, attribute_names=["a", "b", "c"], seed=0)
    assert d.method == "boundary" and d.latent_space == "w+" and d.labels == ["a", "b", "c"]
    cos = (d.vectors * normals).sum(dim=1)
    assert torch.all(cos > 0.99), cos
    assert torch.all(d.values > 0.95)  # validation accuracies
    assert torch.allclose(d.stds, (lat.double() @ d.vectors.T.double()).std(dim=0).float(), rtol=1e-4)
    assert d.layers == list(range(pipe.generator.num_ws))
    stats = d.extra["stats"]
    assert [s["attribute"] for s in stats] == ["a", "b", "c"] and stats[0]["num_per_side"] == 1200
    assert d.extra["ratio"] == 0.4 and d.extra["space"] == "w"


def test_given_latents_and_w_plus_latents(pipe, normals):
    lat = torch.randn(1000, 16, generator=torch.Generator().manual_seed(3))
    d = pipe.fit(latents=lat[:, None].expand(-1, pipe.generator.num_ws, -1), scores=lat @ normals[0], ratio=0.3)
    assert float(d.vectors[0] @ normals[0]) > 0.99 and d.labels == ["score"]


def test_image_scorer_boundary_increases_the_score(pipe):
    weights = torch.randn(3 * 16 * 16, generator=torch.Generator().manual_seed(4))

    def brightness_pattern(images: torch.Tensor) -> torch.Tensor:
        return images.flatten(1) @ weights

    d = pipe.fit(scorer=brightness_pattern, num_samples=600, batch_size=300, ratio=0.05, seed=1, layers="0-3")
    assert d.extra["scorer"] == "brightness_pattern" and d.layers == [0, 1, 2, 3]
    assert len(d) == 1 and d.values[0] > 0.8
    out = pipe(seeds=list(range(8)), directions=d, index=0, strengths=[-2, 2], sigma_units=True, output_type="pt")
    lo, hi = brightness_pattern(out.images[0::2]), brightness_pattern(out.images[1::2])
    assert float((hi - lo).mean()) > 0


def test_scorer_errors(pipe):
    with pytest.raises(ValueError, match=r"`scorer` must return one score .* expected shape \[4\]"):
        pipe.fit(scorer=lambda im: torch.zeros(im.shape[0], 1, 1), num_samples=500, batch_size=4)
    with pytest.raises(ValueError, match="`scorer` must return one score"):
        pipe.fit(scorer=lambda im: torch.zeros(im.shape[0] + 1), num_samples=500, batch_size=4)
    with pytest.raises(ValueError, match="`scorer` must return a tensor or array"):
        pipe.fit(scorer=lambda im: [0.0] * im.shape[0], num_samples=500, batch_size=4)
    calls = iter(range(10))

    def changing(im):
        return torch.zeros(im.shape[0], 1 + next(calls) % 2)

    with pytest.raises(ValueError, match="same number of attributes"):
        pipe.fit(scorer=changing, num_samples=500, batch_size=4)
    with pytest.raises(ValueError, match="NaN"):
        pipe.fit(scorer=lambda im: torch.full((im.shape[0],), float("nan")), num_samples=500, batch_size=4)
    with pytest.raises(ValueError, match="`scorer` must be callable"):
        pipe.fit(scorer=3, num_samples=500)


def test_sample_count_and_argument_errors(pipe, normals):
    lat = pipe.sample_latents(400, seed=0)
    with pytest.raises(ValueError, match=r"attribute 'score': `num_samples` × `ratio` = 400 × 0.02"):
        pipe.fit(scores=lat @ normals[0], seed=0)
    with pytest.raises(ValueError, match="either `scorer` or `scores`"):
        pipe.fit(scorer=lambda im: im.mean((1, 2, 3)), scores=np.zeros(10))
    with pytest.raises(ValueError, match="`num_samples`=500 but `scores` has 400 rows"):
        pipe.fit(scores=lat @ normals[0], num_samples=500)
    with pytest.raises(ValueError, match=r"`scores` must have shape \[400\] or \[400, A\]"):
        pipe.fit(scores=np.zeros((400, 2, 2)), latents=lat)
    with pytest.raises(ValueError, match="`attribute_names` has 2 names for 1 score columns"):
        pipe.fit(scores=(lat @ normals[0]).numpy(), latents=lat, ratio=0.1, attribute_names=["a", "b"])
    with pytest.raises(ValueError, match=r"`latents` must have shape \[N, 16\]"):
        pipe.fit(scores=np.zeros(10), latents=torch.zeros(10, 8))


def test_conditional_is_orthogonal_to_its_conditions(pipe, normals):
    lat = pipe.sample_latents(3000, seed=0)
    d = pipe.fit(scores=lat @ normals.T, attribute_names=["a", "b", "c"])
    one = pipe.conditional(d, primary="a", conditions=["b"])
    assert one.labels == ["a | b"] and len(one) == 1 and one.stds is not None
    assert abs(float(one.vectors[0] @ d.vectors[1])) < 1e-5 and float(one.vectors[0] @ d.vectors[0]) > 0
    many = pipe.conditional(d, primary=0, conditions=[1, "c"])
    assert torch.allclose(d.vectors[1:] @ many.vectors[0], torch.zeros(2), atol=1e-5)
    assert many.extra["conditional"] == {"primary": "a", "conditions": ["b", "c"]}
    out = pipe(seeds=[0], directions=many, strengths=[-1, 1], sigma_units=True, output_type="pt")
    assert out.images.shape == (2, 3, 16, 16)
    with pytest.raises(ValueError, match=r"`conditions` 'z' is not a label .*\['a', 'b', 'c'\]"):
        pipe.conditional(d, primary="a", conditions=["z"])
    with pytest.raises(ValueError, match="must not contain the primary"):
        pipe.conditional(d, primary="a", conditions=["a", "b"])
    with pytest.raises(ValueError, match=r"`primary` must be a label or an index in \[0, 2\]"):
        pipe.conditional(d, primary=5, conditions=["b"])


def test_factor_predictor_scorer(pipe):
    torch.manual_seed(0)
    predictor = FactorPredictor(img_resolution=16, channels=(8,), feature_dim=8).eval()
    with torch.no_grad():  # keep the random heads inside [0, 1], where factor_vector does not clip them
        predictor.head.weight.mul_(0.01)
        predictor.head.bias.fill_(0.5)
    d = pipe.fit(scorer=predictor, num_samples=500, batch_size=250, attribute_names=["x", "object_hue_cos"])
    assert d.labels == ["x", "object_hue_cos"] and d.extra["scorer"] == "FactorPredictor"
    _, default = BoundaryPipeline._predictor_scorer(predictor, None)
    assert default == ["scale", "x", "y", "lighting", "floor_height"]
    with pytest.raises(ValueError, match="`attribute_names` must be a non-empty list of the factor predictor"):
        pipe.fit(scorer=predictor, num_samples=600, attribute_names=["object_hue"])


def test_z_generator_fits_in_z(normals):
    g = DCGANGenerator(z_dim=16, img_resolution=8, channel_base=64, channel_max=8).eval()
    pipe = BoundaryPipeline(generator=g)
    lat = pipe.sample_latents(2000, seed=2)
    d = pipe.fit(scores=lat @ normals[0], seed=2)
    assert d.latent_space == "z" and d.layers == [0] and d.extra["space"] == "z"
    assert float(d.vectors[0] @ normals[0]) > 0.99


@pytest.mark.slow
@pytest.mark.skipif(
    not (os.path.isdir(DEFAULT_MODEL) and os.path.isdir(DEFAULT_PREDICTOR)), reason="no embedded model or predictor"
)
def test_default_predictor_on_the_embedded_model():
    pipe = BoundaryPipeline.from_pretrained(DEFAULT_MODEL)
    pipe.set_progress_bar_config(disable=True)
    d = pipe.fit(num_samples=2000, attribute_names=["x"], batch_size=100)
    assert d.extra["scorer"] == "FactorPredictor" and float(d.values[0]) > 0.8
    out = pipe(seeds=list(range(8)), directions=d, strengths=[-2, 2], sigma_units=True, output_type="pt")
    x = FactorPredictor.from_pretrained(DEFAULT_PREDICTOR).predict(out.images)["x"]
    assert float((x[1::2] - x[0::2]).mean()) > 0  # moving along +x moves the object to the right
