"""Fast RCA: agrees with the paper's protocol on a tiny GAN, shares the originals, and estimates its time."""

from __future__ import annotations

import logging

import pytest
import torch
from factories import run_two_processes, tiny_stylegan2

from sefa_plugin import Directions, GANPipeline
from sefa_plugin.evaluation.fast_rca import RCAEvaluator
from sefa_plugin.evaluation.rca import reconstructor_classification_accuracy


@pytest.fixture(scope="module")
def pipe():
    torch.manual_seed(0)
    p = GANPipeline(generator=tiny_stylegan2(seed=0).eval())
    p.set_progress_bar_config(disable=True)
    return p


def _sets(pipe) -> dict[str, Directions]:
    g = pipe.generator
    d, ws = g.latent_dim, list(range(g.num_ws))
    eye = torch.eye(d)
    # Distinct axes are told apart; two copies of each of two axes can only be told apart up to the pair.
    return {
        "distinct": Directions(vectors=eye[:4], method="coordinate", latent_space="w+", layers=ws),
        "duplicated": Directions(vectors=eye[[0, 0, 1, 1]], method="coordinate", latent_space="w+", layers=ws),
    }


def test_fast_rca_agrees_with_the_full_protocol_on_a_tiny_gan(pipe):
    kw = {"batch_size": 16, "eval_batches": 12, "seed": 0, "lr": 1e-3}
    for name, directions in _sets(pipe).items():
        full = reconstructor_classification_accuracy(pipe, directions, steps=150, mode="full", **kw)
        fast = reconstructor_classification_accuracy(pipe, directions, steps=150, mode="fast", train_pairs=1024,
                                                     resolution=8, **kw)  # fmt: skip
        assert fast.protocol == "fast" and fast.eval_samples == full.eval_samples == 192
        assert abs(fast.accuracy - full.accuracy) < 0.15, (name, fast.accuracy, full.accuracy)
        if name == "distinct":
            assert fast.accuracy > 0.8 and full.accuracy > 0.8
        else:  # duplicates: at best half of the pairs are right
            assert fast.accuracy < 0.65 and full.accuracy < 0.65


def test_originals_are_rendered_once_for_all_methods(pipe, monkeypatch):
    evaluator = RCAEvaluator(pipe, train_pairs=32, eval_batches=2, batch_size=16, resolution=8)
    calls = []
    synthesize = pipe.generator.synthesize
    monkeypatch.setattr(pipe.generator, "synthesize", lambda w, **kw: calls.append(len(w)) or synthesize(w, **kw))
    sets = _sets(pipe)
    first = evaluator(sets["distinct"], steps=2)
    assert sum(calls) == 2 * (32 + 32)  # originals and shifted images of 2 train and 2 eval chunks
    calls.clear()
    evaluator(sets["duplicated"], steps=2)
    assert sum(calls) == 32 + 32  # only the shifted images
    again = RCAEvaluator(pipe, train_pairs=32, eval_batches=2, batch_size=16, resolution=8)(sets["distinct"], steps=2)
    assert again.accuracy == first.accuracy and torch.equal(again.per_direction, first.per_direction)


def test_estimate_is_logged_before_the_run(pipe, caplog):
    evaluator = RCAEvaluator(pipe, train_pairs=64, eval_batches=2, batch_size=16, resolution=8)
    with caplog.at_level(logging.INFO, logger="sefa_plugin.evaluation.fast_rca"):
        seconds = evaluator.estimate_seconds(num_methods=5, steps=100, num_directions=4)
    assert seconds > 0
    assert any("estimated" in r.getMessage() and " min " in r.getMessage() for r in caplog.records)
    more = evaluator.estimate_seconds(num_methods=10, steps=100, num_directions=4)
    assert more > seconds


def test_bad_arguments_name_themselves(pipe):
    with pytest.raises(ValueError, match="`train_pairs`"):
        RCAEvaluator(pipe, train_pairs=0)
    with pytest.raises(ValueError, match="`resolution`"):
        RCAEvaluator(pipe, resolution=2)
    with pytest.raises(ValueError, match="`steps`"):
        RCAEvaluator(pipe, train_pairs=16, eval_batches=1, batch_size=16)(_sets(pipe)["distinct"], steps=-1)


MULTI_PROCESS_SCRIPT = """
import json, sys
import torch
sys.path.insert(0, sys.argv[2])
torch.set_num_threads(1)
from factories import tiny_stylegan2
from sefa_plugin import Directions, GANPipeline
from sefa_plugin.evaluation.fast_rca import RCAEvaluator
pipe = GANPipeline(generator=tiny_stylegan2(seed=0).eval())
pipe.set_progress_bar_config(disable=True)
g = pipe.generator
layers = list(range(g.num_ws))
d = Directions(vectors=torch.eye(g.latent_dim)[:4], method="coordinate", latent_space="w+", layers=layers)
evaluator = RCAEvaluator(pipe, train_pairs=64, eval_batches=4, batch_size=16, resolution=8, lr=1e-3)
rendered = []
synthesize = g.synthesize
g.synthesize = lambda w, **kw: rendered.append(len(w)) or synthesize(w, **kw)
models = []
new_reconstructor = evaluator._new_reconstructor
evaluator._new_reconstructor = lambda k, images: models.append(new_reconstructor(k, images)) or models[-1]
result = evaluator(d, steps=20)
rank = evaluator.accelerator.process_index
weights = torch.cat([p.detach().flatten() for p in models[0].parameters()])
out = {"accuracy": result.accuracy, "eval_samples": result.eval_samples, "rendered": sum(rendered)}
torch.save({"weights": weights, **{k: torch.tensor(v) for k, v in out.items()}}, f"{sys.argv[1]}/rank{rank}.pt")
"""


def test_two_processes_share_the_rendering(tmp_path):
    """Two CPU processes (torchrun, gloo): each renders half the chunks; one averaged model; one accuracy."""
    from pathlib import Path

    r0, r1 = run_two_processes(MULTI_PROCESS_SCRIPT, tmp_path, str(Path(__file__).resolve().parents[1]))
    assert torch.equal(r0["weights"], r1["weights"])  # gradients averaged: the same reconstructor
    assert float(r0["accuracy"]) == float(r1["accuracy"])  # hits summed over both processes
    assert int(r0["eval_samples"]) == int(r1["eval_samples"]) == 4 * 16
    # 4 train chunks and 4 eval chunks of 16, originals and shifted: 256 renders in all, half per process.
    assert int(r0["rendered"]) == int(r1["rendered"]) == 128
