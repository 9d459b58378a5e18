"""Resuming a GAN run with new settings: overrides are checked, applied, recorded; the optimizers follow."""

from __future__ import annotations

import pytest
import torch
from factories import TINY_TRAINING as TINY

from sefa_plugin.training import Trainer, TrainingConfig


def test_resume_with_overrides(tmp_path):
    """A resumed run can change lr/R1 γ: the optimizers and the config follow, and the change is recorded."""
    torch.set_num_threads(1)
    run = tmp_path / "run"
    Trainer(TrainingConfig(**TINY), run_dir=run, device="cpu").train(iterations=2, checkpoint_every=100)
    t = Trainer(TrainingConfig(), run_dir=run, device="cpu", overrides={"lr": 0.001, "r1_gamma": 0.5})
    assert t.iteration == 2 and t.config.lr == 0.001 and t.config.effective_r1_gamma() == 0.5
    assert t.config.extra["overrides"] == [{"iteration": 2, "lr": 0.001, "r1_gamma": 0.5}]
    assert t.opt_d.param_groups[0]["lr"] == pytest.approx(0.001 * 2 / 3)  # r1_interval 2
    assert t.opt_g.param_groups[0]["lr"] == pytest.approx(0.001 * 2 / 3)  # pl_interval 2
    t.train(iterations=3, checkpoint_every=100)
    # The new settings persist; giving the same values again records nothing new; "auto" γ is None.
    again = Trainer(TrainingConfig(), run_dir=run, device="cpu", overrides={"lr": 0.001, "r1_gamma": None})
    assert again.config.lr == 0.001 and again.config.r1_gamma is None
    assert [o["iteration"] for o in again.config.extra["overrides"]] == [2, 3]
    assert again.opt_d.param_groups[0]["lr"] == pytest.approx(0.001 * 2 / 3)
    # The batch size may change too: the images per step follow.
    bigger = Trainer(TrainingConfig(), run_dir=run, device="cpu", overrides={"batch_size": 8})
    seen = bigger.images_seen
    bigger.train(iterations=4, checkpoint_every=100)
    assert bigger.images_seen == seen + 8 and bigger.config.extra["overrides"][-1] == {"iteration": 3, "batch_size": 8}
    with pytest.raises(ValueError, match=r"`batch_size` must be a positive integer"):
        Trainer(TrainingConfig(), run_dir=run, device="cpu", overrides={"batch_size": 2.5})
    with pytest.raises(ValueError, match=r"overrides.*allowed"):
        Trainer(TrainingConfig(), run_dir=run, device="cpu", overrides={"resolution": 32})
    with pytest.raises(ValueError, match=r"overrides\['lr'\]"):
        Trainer(TrainingConfig(), run_dir=run, device="cpu", overrides={"lr": -1.0})
