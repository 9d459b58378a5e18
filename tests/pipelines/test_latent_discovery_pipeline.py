"""LatentDiscoveryPipeline: training on a tiny generator, baselines, resumable checkpoints, bad input."""

from __future__ import annotations

import json

import pytest
import torch
from factories import tiny_stylegan2

from sefa_plugin import Directions, LatentDiscoveryOutput, LatentDiscoveryPipeline
from sefa_plugin.training.latent_discovery import CHECKPOINT_NAME
from sefa_plugin.training.reconstructor import Reconstructor

SMALL = {"num_directions": 4, "batch_size": 8, "eval_batches": 2}


@pytest.fixture(scope="module")
def pipe() -> LatentDiscoveryPipeline:
    p = LatentDiscoveryPipeline(generator=tiny_stylegan2())
    p.set_progress_bar_config(disable=True)
    return p


@pytest.fixture(scope="module")
def trained(pipe) -> LatentDiscoveryOutput:
    return pipe.train(steps=4, **SMALL)


def test_train_returns_learned_directions(pipe, trained):
    d = trained.directions
    assert isinstance(trained, LatentDiscoveryOutput) and isinstance(d, Directions)
    assert d.method == "learned" and d.latent_space == "w+" and len(d) == 4
    assert d.layers == list(range(pipe.generator.num_ws))
    assert torch.allclose(d.vectors @ d.vectors.T, torch.eye(4), atol=1e-5)  # "ortho"
    assert d.values is not None and d.values.shape == (4,) and bool(((d.values >= 0) & (d.values <= 1)).all())
    assert 0.0 <= trained.accuracy <= 1.0
    assert d.extra["kind"] == "ortho" and d.extra["steps"] == 4 and d.extra["reg_weight"] == 0.25
    assert d.strength_range == (-6.0, 6.0)
    assert d.base_model["class_name"] == "StyleGAN2Generator"
    assert isinstance(trained.reconstructor, Reconstructor) and not trained.reconstructor.training
    # The directions edit images like any other method's.
    out = pipe(seeds=[0], directions=d, index=1, strengths=[-3, 0, 3], output_type="pt")
    assert out.images.shape == (3, 3, 16, 16)
    assert not torch.allclose(out.images[0], out.images[1])


def test_directions_and_reconstructor_round_trip(trained, tmp_path):
    trained.directions.save_pretrained(tmp_path / "d")
    again = Directions.from_pretrained(tmp_path / "d")
    assert again.method == "learned" and torch.equal(again.vectors, trained.directions.vectors)
    trained.reconstructor.save_pretrained(tmp_path / "r")
    r = Reconstructor.from_pretrained(tmp_path / "r")
    x = torch.zeros(1, 3, 16, 16)
    assert torch.allclose(r(x, x)[0], trained.reconstructor(x, x)[0])


@pytest.mark.parametrize("kind", ["random", "coordinate"])
def test_baselines_keep_their_method(pipe, kind):
    out = pipe.train(kind=kind, steps=1, **SMALL)
    assert out.directions.method == kind
    if kind == "coordinate":
        assert torch.equal(out.directions.vectors, torch.eye(16)[:4])


def test_linear_directions_are_normalised_with_their_lengths_recorded(pipe):
    out = pipe.train(kind="linear", steps=2, lr=1e-2, **SMALL)
    assert torch.allclose(out.directions.vectors.norm(dim=1), torch.ones(4), atol=1e-6)
    assert len(out.directions.extra["norms"]) == 4 and out.directions.method == "learned"


def test_layers_are_recorded(pipe):
    out = pipe.train(steps=1, layers="0-1", **SMALL)
    assert out.directions.layers == [0, 1]


def test_resume_continues_the_step_count_and_matches_an_uninterrupted_run(pipe, tmp_path):
    first = pipe.train(steps=2, checkpoint_dir=tmp_path, checkpoint_every=1, **SMALL)
    assert first.directions.extra["steps"] == 2 and (tmp_path / CHECKPOINT_NAME).is_file()
    state = torch.load(tmp_path / CHECKPOINT_NAME, weights_only=True)
    assert state["step"] == 2
    resumed = pipe.train(steps=4, checkpoint_dir=tmp_path, **SMALL)
    assert resumed.directions.extra["steps"] == 4
    assert torch.load(tmp_path / CHECKPOINT_NAME, weights_only=True)["step"] == 4
    logged = [json.loads(line)["step"] for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert logged == [2, 4]
    # Batches are seeded per step, so stopping and resuming changes nothing.
    straight = pipe.train(steps=4, **SMALL)
    assert torch.allclose(resumed.directions.vectors, straight.directions.vectors, atol=1e-6)
    # A finished run resumes to the same result without training.
    again = pipe.train(steps=4, checkpoint_dir=tmp_path, **SMALL)
    assert torch.equal(again.directions.vectors, resumed.directions.vectors)


def test_resume_with_other_settings_is_refused(pipe, tmp_path):
    pipe.train(steps=1, checkpoint_dir=tmp_path, **SMALL)
    with pytest.raises(ValueError, match=r"`checkpoint_dir`.*num_directions"):
        pipe.train(steps=2, checkpoint_dir=tmp_path, **{**SMALL, "num_directions": 3})
    other = LatentDiscoveryPipeline(generator=tiny_stylegan2(seed=1))
    other.set_progress_bar_config(disable=True)
    with pytest.raises(ValueError, match="another generator"):
        other.train(steps=2, checkpoint_dir=tmp_path, **SMALL)


def test_bad_input(pipe):
    with pytest.raises(ValueError, match="`num_directions` must be an int in \\[1, 16\\]"):
        pipe.train(num_directions=17, steps=1)
    with pytest.raises(ValueError, match="`num_directions`"):
        pipe.train(num_directions=0, steps=1)
    with pytest.raises(ValueError, match="`kind` must be one of"):
        pipe.train(kind="fc", steps=1)
    with pytest.raises(ValueError, match="`layers`"):
        pipe.train(layers="0-99", steps=1)
    with pytest.raises(ValueError, match="`min_shift`"):
        pipe.train(min_shift=7.0, steps=1, num_directions=2)
    with pytest.raises(ValueError, match="`steps`"):
        pipe.train(steps=-1, num_directions=2)
