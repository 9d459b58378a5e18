"""The optional loss terms of the GAN trainer, each checked against its formula on fixed batches."""

from __future__ import annotations

import math

import pytest
import torch
from factories import TINY_TRAINING as TINY

from sefa_plugin.training import Discriminator, Trainer, TrainingConfig


def _fixed_batches(t: Trainer, monkeypatch, shapes: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Make `t` train on one fixed real batch (with these shape labels) and one fixed leaf of "generated" images."""
    real = torch.rand(len(shapes), 3, 16, 16) * 2 - 1
    fake = (torch.rand(len(shapes), 3, 16, 16) * 2 - 1).requires_grad_()
    labels = torch.tensor(shapes)
    monkeypatch.setattr(t, "_real_batch", lambda: (real.clone(), labels))
    monkeypatch.setattr(t, "_generate", lambda n: (fake, None))
    return real, fake


def test_feature_matching_term(tmp_path, monkeypatch):
    """fm_weight adds ‖mean D-features(fake) − mean D-features(real)‖² to the generator loss."""
    torch.set_num_threads(1)
    d = Discriminator(16, channel_base=128, channel_max=16)
    x = torch.randn(4, 3, 16, 16)
    assert torch.equal(d(x), d.out(d.features(x)))
    cfg = TrainingConfig(**{**TINY, "pl_weight": 0.0, "fm_weight": 0.5})
    t = Trainer(cfg, run_dir=tmp_path / "run", device="cpu")
    real, fake = _fixed_batches(t, monkeypatch, [0, 1, 2, 0])
    with torch.no_grad():
        expected = (t.D.features(fake).mean(0) - t.D.features(real).mean(0)).square().sum()
    stats = t.step()
    assert stats["loss_FM"] == pytest.approx(float(expected), rel=1e-5) and stats["loss_FM"] > 0
    # Without it there is no such term, and a resumed run can switch it on (recorded like other overrides).
    plain = Trainer(TrainingConfig(**TINY), run_dir=tmp_path / "plain", device="cpu")
    assert "loss_FM" not in plain.step()
    plain.save_checkpoint()
    resumed = Trainer(TrainingConfig(), run_dir=tmp_path / "plain", device="cpu", overrides={"fm_weight": 0.1})
    assert resumed.config.fm_weight == 0.1
    assert resumed.config.extra["overrides"] == [{"iteration": 1, "fm_weight": 0.1}]


def test_shape_head_and_balance(tmp_path, monkeypatch):
    """aux_shape_weight trains a shape head of D on real labels; shape_balance_weight pulls G's shape mix."""
    import torch.nn.functional as F

    torch.set_num_threads(1)
    with pytest.raises(ValueError, match=r"shape_balance_weight.*aux_shape_weight"):
        Trainer(TrainingConfig(**{**TINY, "shape_balance_weight": 1.0}), run_dir=tmp_path / "bad", device="cpu")
    cfg = TrainingConfig(**{**TINY, "pl_weight": 0.0, "aux_shape_weight": 1.0, "shape_balance_weight": 2.0})
    t = Trainer(cfg, run_dir=tmp_path / "run", device="cpu")
    assert t.D.aux.weight.shape[0] == 3
    shapes = torch.tensor([0, 0, 1, 2])
    real, fake = _fixed_batches(t, monkeypatch, shapes.tolist())
    with torch.no_grad():
        freq = t.D.aux(t.D.features(fake)).softmax(1).mean(0)
        balance = (freq - torch.tensor([0.5, 0.25, 0.25])).square().sum()
    stats = t.step()
    assert stats["loss_balance"] == pytest.approx(float(balance), rel=1e-5)
    with torch.no_grad():  # the D step used the head's loss before its update; recompute after one more step
        before = F.cross_entropy(t.D.aux(t.D.features(real)), shapes)
    for _ in range(20):
        t.step()
    with torch.no_grad():
        after = F.cross_entropy(t.D.aux(t.D.features(real)), shapes)
    assert after < before  # the head learns the real labels
    # Real batches carry the shape column of the scene factors.
    monkeypatch.undo()
    images, labels = t._real_batch()
    assert images.shape == (4, 3, 16, 16) and labels.dtype == torch.long and set(labels.tolist()) <= {0, 1, 2}
    # A checkpoint without the head resumes with one added (fresh optimizer state for D) when it is switched on.
    plain = Trainer(TrainingConfig(**TINY), run_dir=tmp_path / "plain", device="cpu")
    plain.train(iterations=1, checkpoint_every=100)
    resumed = Trainer(TrainingConfig(), run_dir=tmp_path / "plain", device="cpu", overrides={"aux_shape_weight": 0.5})
    assert hasattr(resumed.D, "aux") and resumed.iteration == 1
    assert "loss_aux" in resumed.step()


def test_shape_confidence_game(tmp_path, monkeypatch):
    """shape_confidence_weight: G minimises the head's entropy on its samples, D maximises it (CatGAN)."""
    torch.set_num_threads(1)
    with pytest.raises(ValueError, match=r"shape_confidence_weight.*aux_shape_weight"):
        Trainer(TrainingConfig(**{**TINY, "shape_confidence_weight": 1.0}), run_dir=tmp_path / "bad", device="cpu")
    cfg = TrainingConfig(**{**TINY, "pl_weight": 0.0, "aux_shape_weight": 1.0, "shape_confidence_weight": 1.0})
    t = Trainer(cfg, run_dir=tmp_path / "run", device="cpu")
    _, fake = _fixed_batches(t, monkeypatch, [0, 1, 2, 0])

    def fake_entropy() -> float:
        with torch.no_grad():
            p = t.D.aux(t.D.features(fake)).softmax(1)
            return float(-(p * p.log()).sum(1).mean())

    before = fake_entropy()
    stats = t.step()
    assert stats["loss_entropy_G"] == pytest.approx(before, rel=1e-5)
    assert 0 < stats["loss_entropy_D"] <= math.log(3) + 1e-6
    for _ in range(20):  # the images stay fixed, so only D moves: it learns to be unsure about them
        t.step()
    assert fake_entropy() > before


def test_balanced_assignment_and_the_assign_term(tmp_path, monkeypatch):
    """shape_assign_weight: cross-entropy to balanced per-sample targets (Sinkhorn-Knopp on the head's logits)."""
    from sefa_plugin.training.loss import balanced_assignment

    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(30, 3, generator=gen) * 2
    logits[:, 0] += 3  # the head leans to class 0 for most samples
    q = balanced_assignment(logits, torch.tensor([0.2, 0.4, 0.4]))
    assert torch.allclose(q.sum(1), torch.ones(30), atol=1e-5)
    assert torch.allclose(q.sum(0), torch.tensor([6.0, 12.0, 12.0]), atol=0.1)
    assert q.max(1).values.mean() > 0.8  # targets are mostly hard
    # The samples that keep class 0 are those the head finds most class-0-like.
    margin = logits.log_softmax(1)[:, 0]
    kept = q.argmax(1) == 0
    assert margin[kept].min() > margin[~kept].median()
    with pytest.raises(ValueError, match="class_freq"):
        balanced_assignment(logits, torch.tensor([0.5, 0.5]))
    with pytest.raises(ValueError, match=r"shape_assign_weight.*aux_shape_weight"):
        Trainer(TrainingConfig(**{**TINY, "shape_assign_weight": 1.0}), run_dir=tmp_path / "bad", device="cpu")
    with pytest.raises(ValueError, match=r"`shape_assign_weight` must be a finite number ≥ 0"):
        Trainer(TrainingConfig(**{**TINY, "shape_assign_weight": -1.0}), run_dir=tmp_path / "neg", device="cpu")
    assert not (tmp_path / "bad").exists() and not (tmp_path / "neg").exists()  # a bad setting leaves no run folder
    cfg = TrainingConfig(**{**TINY, "pl_weight": 0.0, "aux_shape_weight": 1.0, "shape_assign_weight": 1.0})
    t = Trainer(cfg, run_dir=tmp_path / "run", device="cpu")
    _, fake = _fixed_batches(t, monkeypatch, [0, 1, 2, 2])
    with torch.no_grad():
        head = t.D.aux(t.D.features(fake))
        targets = balanced_assignment(head, torch.tensor([0.25, 0.25, 0.5]))
        expected = -(targets * head.log_softmax(1)).sum(1).mean()
    assert t.step()["loss_assign"] == pytest.approx(float(expected), rel=1e-5)


def test_shape_projection_term(tmp_path, monkeypatch):
    """shape_projection_weight adds the head's logit of each image's shape to D's real/fake logit."""
    import torch.nn.functional as F

    from sefa_plugin.training.loss import balanced_assignment, projection_logits

    torch.set_num_threads(1)
    with pytest.raises(ValueError, match=r"shape_projection_weight.*aux_shape_weight"):
        Trainer(TrainingConfig(**{**TINY, "shape_projection_weight": 1.0}), run_dir=tmp_path / "bad", device="cpu")
    cfg = TrainingConfig(**{**TINY, "pl_weight": 0.0, "aux_shape_weight": 1.0, "shape_projection_weight": 0.5})
    t = Trainer(cfg, run_dir=tmp_path / "run", device="cpu")
    real, fake = _fixed_batches(t, monkeypatch, [0, 1, 2, 2])
    freq = torch.tensor([0.25, 0.25, 0.5])
    with torch.no_grad():
        f = t.D.features(fake)
        head = t.D.aux(f)
        assigned = balanced_assignment(head, freq).argmax(1)
        plain = F.softplus(-t.D.out(f)).mean()
        expected = F.softplus(-(t.D.out(f) + 0.5 * head[torch.arange(4), assigned][:, None])).mean()
    assert not torch.isclose(plain, expected)  # the term changes the generator's loss
    assert t.step()["loss_G"] == pytest.approx(float(expected), rel=1e-5)

    def projected_gap() -> float:  # mean projected logit of the real batch minus that of the fixed samples
        with torch.no_grad():
            rf, ff = t.D.features(real), t.D.features(fake)
            real_proj = projection_logits(t.config, t.D.out(rf), t.D.aux(rf), torch.tensor([0, 1, 2, 2]))
            fake_proj = projection_logits(
                t.config, t.D.out(ff), t.D.aux(ff), balanced_assignment(t.D.aux(ff), freq).argmax(1)
            )
        return float((real_proj - fake_proj).mean())

    before = projected_gap()
    for _ in range(15):  # the images stay fixed, so only D moves: it learns to tell them apart
        t.step()
    assert projected_gap() > before
