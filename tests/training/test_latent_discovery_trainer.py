"""Latent discovery training: which parameters move, and BigGAN's z-only directions."""

from __future__ import annotations

import pytest
import torch
from factories import tiny_stylegan2

from sefa_plugin.training.latent_discovery import LatentDiscoveryConfig, LatentDiscoveryTrainer


def test_trainer_on_biggan_learns_z_directions_only():
    from factories import TINY_BIGGAN, tiny_biggan

    g = tiny_biggan()
    z_dim = TINY_BIGGAN["z_dim"]
    trainer = LatentDiscoveryTrainer(g, LatentDiscoveryConfig(num_directions=3, kind="ortho", batch_size=4, lr=1e-1))
    trainer.train(steps=2, progress_bar=None)
    d = trainer.direction_matrix.directions().detach()
    assert d.shape == (3, g.latent_dim) and torch.equal(d[:, z_dim:], torch.zeros(3, g.latent_dim - z_dim))
    assert not torch.allclose(d[:, :z_dim], torch.eye(z_dim)[:3], atol=1e-4)  # it trained
    with pytest.raises(ValueError, match="num_directions"):
        LatentDiscoveryTrainer(g, LatentDiscoveryConfig(num_directions=z_dim + 1))


def test_trainer_updates_matrix_only_for_trainable_kinds():
    g = tiny_stylegan2()
    before = {n: p.detach().clone() for n, p in g.named_parameters()}
    ortho = LatentDiscoveryTrainer(g, LatentDiscoveryConfig(num_directions=3, kind="ortho", batch_size=4, lr=1e-2))
    start = ortho.direction_matrix.directions().detach().clone()
    ortho.train(steps=2, progress_bar=None)
    assert not torch.allclose(ortho.direction_matrix.directions(), start)
    assert ortho.step == 2
    coord = LatentDiscoveryTrainer(g, LatentDiscoveryConfig(num_directions=3, kind="coordinate", batch_size=4))
    coord.train(steps=2)
    assert torch.equal(coord.direction_matrix.directions(), torch.eye(16)[:3])
    # The generator is frozen and left as it was (weights and requires_grad flags).
    assert all(torch.equal(before[n], p) for n, p in g.named_parameters())
    assert all(p.requires_grad for p in g.parameters()) and all(p.grad is None for p in g.parameters())


def test_a_long_run_logs_its_estimated_time_after_the_first_steps(caplog):
    import logging

    from sefa_plugin.training.latent_discovery import ESTIMATE_AFTER

    trainer = LatentDiscoveryTrainer(tiny_stylegan2(), LatentDiscoveryConfig(num_directions=3, kind="coordinate",
                                                                             batch_size=2))  # fmt: skip
    with caplog.at_level(logging.INFO, logger="sefa_plugin.training.latent_discovery"):
        trainer.train(steps=2 * ESTIMATE_AFTER + 1, progress_bar=None)
    lines = [r.getMessage() for r in caplog.records if "estimated" in r.getMessage()]
    assert len(lines) == 1 and f"for {2 * ESTIMATE_AFTER + 1} steps" in lines[0] and " min " in lines[0]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="sefa_plugin.training.latent_discovery"):
        trainer.train(steps=trainer.step + ESTIMATE_AFTER, progress_bar=None)  # a short run: no estimate
    assert not any("estimated" in r.getMessage() for r in caplog.records)
