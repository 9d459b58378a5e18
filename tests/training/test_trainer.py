"""A short training run: losses are finite, checkpoints resume exactly, the export loads."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from sefa_plugin import SefaPipeline, StyleGAN2Generator
from sefa_plugin.training import Discriminator, Trainer, TrainingConfig

TINY = dict(
    resolution=16,
    z_dim=16,
    w_dim=16,
    mapping_layers=2,
    channel_base=128,
    channel_max=16,
    batch_size=4,
    r1_interval=2,
    pl_weight=2.0,
    pl_interval=2,
)


def test_discriminator_shapes():
    d = Discriminator(16, channel_base=128, channel_max=16)
    assert d(torch.randn(4, 3, 16, 16)).shape == (4, 1)
    with pytest.raises(ValueError, match="img_resolution"):
        Discriminator(12)


def test_short_run_checkpoints_and_resumes(tmp_path):
    torch.set_num_threads(1)
    run = tmp_path / "run"
    t = Trainer(TrainingConfig(**TINY), run_dir=run, device="cpu")
    t.train(iterations=4, checkpoint_every=2, log_every=1)
    assert (run / "checkpoint.pt").is_file() and list(run.glob("samples_*.png"))
    assert t.iteration == 4 and t.images_seen == 16
    # Resume continues where it stopped and matches an uninterrupted run.
    t2 = Trainer(TrainingConfig(seed=123), run_dir=run, device="cpu")  # config comes from the checkpoint
    assert t2.iteration == 4 and t2.config.resolution == 16
    t2.train(iterations=6, checkpoint_every=100)
    ref = Trainer(TrainingConfig(**TINY), run_dir=tmp_path / "ref", device="cpu")
    ref.train(iterations=4, checkpoint_every=100)
    ref = Trainer(TrainingConfig(**TINY), run_dir=tmp_path / "ref", device="cpu")
    ref.train(iterations=6, checkpoint_every=100)
    for a, b in zip(t2.G_ema.parameters(), ref.G_ema.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-6)
    for line in (run / "log.jsonl").read_text().splitlines():
        assert "loss_G" in line
    t2.export_generator(tmp_path / "export")
    g = StyleGAN2Generator.from_pretrained(tmp_path / "export")
    with torch.no_grad():
        img = g(torch.randn(2, 16))
    assert img.shape == (2, 3, 16, 16) and math.isfinite(float(img.abs().max()))
    pipe = SefaPipeline(generator=g)
    assert len(pipe.factorize(num_directions=3)) == 3


def test_bad_run_dir(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(OSError, match="run_dir"):
        Trainer(TrainingConfig(**TINY), run_dir=tmp_path / "file" / "run", device="cpu")


def test_warm_start_from_a_saved_generator(tmp_path):
    torch.set_num_threads(1)
    first = Trainer(TrainingConfig(**TINY), run_dir=tmp_path / "first", device="cpu")
    first.train(iterations=2, checkpoint_every=100)
    SefaPipeline(generator=first.G_ema).save_pretrained(tmp_path / "pipe")  # a pipeline folder
    cfg = TrainingConfig(**{**TINY, "seed": 7})
    warm = Trainer(cfg, run_dir=tmp_path / "warm", device="cpu", init_generator=tmp_path / "pipe")
    assert warm.iteration == 0
    for a, b in zip(warm.G_ema.parameters(), first.G_ema.parameters(), strict=True):
        assert torch.equal(a, b)
    assert warm.config.extra["init_generator"]["weights_sha256"]
    warm.train(iterations=1, checkpoint_every=100)
    # Resuming keeps the fingerprint (it is part of the checkpoint's config) and ignores a new init.
    again = Trainer(TrainingConfig(), run_dir=tmp_path / "warm", device="cpu", init_generator=tmp_path / "nowhere")
    assert again.iteration == 1 and again.config.extra == warm.config.extra
    with pytest.raises(FileNotFoundError, match="init_generator"):
        Trainer(cfg, run_dir=tmp_path / "x", device="cpu", init_generator=tmp_path / "nowhere")
    with pytest.raises(ValueError, match=r"init_generator.*does not match"):
        Trainer(
            TrainingConfig(**{**TINY, "w_dim": 8}),
            run_dir=tmp_path / "y",
            device="cpu",
            init_generator=tmp_path / "pipe",
        )


MULTI_PROCESS_SCRIPT = """
import json, sys, torch
torch.set_num_threads(1)
from sefa_plugin.training import Trainer, TrainingConfig
cfg = TrainingConfig(**json.loads(sys.argv[2]))
t = Trainer(cfg, run_dir=sys.argv[1], device="cpu")
t.train(iterations=3, checkpoint_every=100)
g = torch.cat([p.detach().flatten() for p in t.G.parameters()])
d = torch.cat([p.detach().flatten() for p in t.D.parameters()])
out = f"{sys.argv[1]}/rank{t.accelerator.process_index}.pt"
torch.save({"G": g, "D": d, "z": torch.randn(4), "images": t.images_seen}, out)
"""


def test_two_processes_stay_in_sync(tmp_path):
    """Two CPU processes (torchrun, gloo): gradients are averaged, so weights stay identical; data differs."""
    import json
    import shutil
    import subprocess
    import sys

    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    if torchrun is None:
        pytest.skip("torchrun is not installed next to the interpreter")
    script = tmp_path / "train.py"
    script.write_text(MULTI_PROCESS_SCRIPT)
    cmd = [torchrun, "--nproc_per_node", "2", str(script), str(tmp_path), json.dumps(TINY)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-2000:]
    r0, r1 = (torch.load(tmp_path / f"rank{i}.pt", weights_only=True) for i in range(2))
    assert torch.equal(r0["G"], r1["G"]) and torch.equal(r0["D"], r1["D"])
    assert not torch.equal(r0["z"], r1["z"])  # each process draws its own latents and images
    assert r0["images"] == r1["images"] == 3 * 2 * TINY["batch_size"]
    assert (tmp_path / "checkpoint.pt").is_file()


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


def test_changing_the_mapping_lr_multiplier_keeps_the_generator(tmp_path):
    """A new mapping lr multiplier rescales the stored mapping weights and Adam moments, not the function."""
    torch.set_num_threads(1)
    run = tmp_path / "run"
    first = Trainer(TrainingConfig(**TINY), run_dir=run, device="cpu")
    first.train(iterations=2, checkpoint_every=100)
    z = torch.randn(3, TINY["z_dim"], generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        before = [first.G(z, noise_mode="const"), first.G_ema(z, noise_mode="const")]
    old_moment = first.opt_g.state[first.G.mapping.fc0.weight]["exp_avg"].clone()
    t = Trainer(TrainingConfig(), run_dir=run, device="cpu", overrides={"mapping_lr_multiplier": 0.1})
    assert t.config.mapping_lr_multiplier == 0.1 and t.G.mapping.fc0.weight_gain == pytest.approx(0.1 / 4)
    assert t.config.extra["overrides"] == [{"iteration": 2, "mapping_lr_multiplier": 0.1}]
    assert torch.allclose(t.G.mapping.fc0.weight, first.G.mapping.fc0.weight / 10)
    assert torch.allclose(t.opt_g.state[t.G.mapping.fc0.weight]["exp_avg"], old_moment * 10)
    with torch.no_grad():
        after = [t.G(z, noise_mode="const"), t.G_ema(z, noise_mode="const")]
    for a, b in zip(before, after, strict=True):
        assert torch.allclose(a, b, atol=1e-5)
    t.train(iterations=3, checkpoint_every=100)
    # A warm start from a generator saved with another multiplier is rescaled the same way.
    SefaPipeline(generator=first.G_ema).save_pretrained(tmp_path / "pipe")
    cfg = TrainingConfig(**{**TINY, "mapping_lr_multiplier": 0.1})
    warm = Trainer(cfg, run_dir=tmp_path / "warm", device="cpu", init_generator=tmp_path / "pipe")
    with torch.no_grad():
        assert torch.allclose(warm.G_ema(z, noise_mode="const"), before[1], atol=1e-5)
    with pytest.raises(ValueError, match=r"`mapping_lr_multiplier` must be > 0"):
        Trainer(TrainingConfig(), run_dir=run, device="cpu", overrides={"mapping_lr_multiplier": 0.0})


def test_widening_the_generator_keeps_its_images(tmp_path):
    """A resumed run with more channels keeps the generator's function (up to ε) and the discriminator; the new
    channels then learn."""
    torch.set_num_threads(1)
    run = tmp_path / "run"
    first = Trainer(TrainingConfig(**TINY), run_dir=run, device="cpu")  # channels 16/16/8 at 4/8/16 px
    first.train(iterations=2, checkpoint_every=100)
    z = torch.randn(3, TINY["z_dim"], generator=torch.Generator().manual_seed(0))
    img = torch.rand(3, 3, 16, 16)
    with torch.no_grad():
        before = [first.G(z, noise_mode="const"), first.G_ema(z, noise_mode="const"), first.D(img)]
    t = Trainer(TrainingConfig(), run_dir=run, device="cpu", overrides={"channel_base": 256, "channel_max": 32})
    assert t.G.synthesis.b16.conv1.weight.shape[:2] == (16, 16) and t.G.synthesis.b4.const.shape[0] == 32
    assert (t.config.d_channel_base, t.config.d_channel_max) == (128, 16)
    assert t.config.extra["overrides"] == [{"iteration": 2, "channel_base": 256, "channel_max": 32}]
    with torch.no_grad():
        after = [t.G(z, noise_mode="const"), t.G_ema(z, noise_mode="const"), t.D(img)]
    assert torch.equal(before[2], after[2])
    for a, b in zip(before[:2], after[:2], strict=True):  # the new channels are read through 0.1% weights
        assert 0 < (a - b).abs().mean() < 5e-3 and (a - b).abs().max() < 0.05
    conv = t.G.synthesis.b16.conv1
    assert 0 < conv.weight[:8, 8:].abs().max() < 0.01 and conv.weight[8:].abs().max() > 1
    moments = t.opt_g.state[conv.weight]
    assert moments["exp_avg"].shape == conv.weight.shape and torch.count_nonzero(moments["exp_avg"][8:]) == 0
    assert torch.count_nonzero(moments["exp_avg_sq"][8:]) == 0 and torch.all(moments["exp_avg_sq"][:8, :8] > 0)
    new_rows = t.G.synthesis.b16.conv0.weight[8:].detach().clone()
    t.train(iterations=3, checkpoint_every=100)
    assert not torch.equal(t.G.synthesis.b16.conv0.weight[8:], new_rows)  # the new channels learn
    resumed = Trainer(TrainingConfig(), run_dir=run, device="cpu")
    assert resumed.iteration == 3 and resumed.G.synthesis.b16.torgb.weight.shape[1] == 16
    # Narrowing is refused before anything is written.
    stamp = (run / "checkpoint.pt").stat().st_mtime_ns
    with pytest.raises(ValueError, match=r"`channel_base`/`channel_max` can only widen"):
        Trainer(TrainingConfig(), run_dir=run, device="cpu", overrides={"channel_base": 128})
    with pytest.raises(ValueError, match=r"`channel_max` must be a positive integer"):
        Trainer(TrainingConfig(), run_dir=run, device="cpu", overrides={"channel_max": 0})
    assert (run / "checkpoint.pt").stat().st_mtime_ns == stamp


def test_widening_the_discriminator_keeps_its_logits(tmp_path):
    """`d_channel_base`/`d_channel_max` on resume widen the discriminator (the 4×4 epilogue too) unchanged."""
    torch.set_num_threads(1)
    run = tmp_path / "run"
    cfg = TrainingConfig(**TINY, aux_shape_weight=1.0)
    first = Trainer(cfg, run_dir=run, device="cpu")  # discriminator channels 8/16/16 at 16/8/4 px
    first.train(iterations=2, checkpoint_every=100)
    img = torch.rand(4, 3, 16, 16) * 2 - 1
    z = torch.randn(3, TINY["z_dim"], generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        before = [first.D(img), first.D.aux(first.D.features(img)), first.G_ema(z, noise_mode="const")]
    widths = {"d_channel_base": 256, "d_channel_max": 32}
    t = Trainer(TrainingConfig(), run_dir=run, device="cpu", overrides=widths)
    assert t.D.b16.conv0.weight.shape[:2] == (16, 16) and t.D.conv.weight.shape[:2] == (32, 33)
    assert t.D.fc.weight.shape == (32, 32 * 16) and t.G.synthesis.b16.conv1.weight.shape[:2] == (8, 8)
    assert t.config.extra["overrides"] == [{"iteration": 2, **widths}]
    with torch.no_grad():
        after = [t.D(img), t.D.aux(t.D.features(img)), t.G_ema(z, noise_mode="const")]
    assert torch.equal(before[2], after[2])
    for a, b in zip(before[:2], after[:2], strict=True):  # the new channels are read through 0.1% weights
        assert 0 < (a - b).abs().mean() < 5e-3 and (a - b).abs().max() < 0.05
    # The minibatch-std channel stays the last input of the 4x4 conv (scaled by 32 / 16 channels, as it now
    # averages over twice as many, of which the new ones start near zero); old outputs barely read new ones.
    old_w = first.D.conv.weight * first.D.conv.weight_gain
    new_w = t.D.conv.weight * t.D.conv.weight_gain
    assert torch.allclose(new_w[:16, :16], old_w[:, :16]) and torch.allclose(new_w[:16, 32], 2 * old_w[:, 16])
    assert 0 < t.D.conv.weight[:16, 16:32].abs().max() < 0.01 and 0 < t.D.fc.weight[:16, 256:].abs().max() < 0.01
    assert 0 < t.D.b8.conv1.weight[16:].abs().max() < 0.01 and t.D.b16.conv0.weight[8:].abs().max() > 1
    moments = t.opt_d.state[t.D.conv.weight]
    assert moments["exp_avg"].shape == t.D.conv.weight.shape and torch.count_nonzero(moments["exp_avg"][16:]) == 0
    assert torch.count_nonzero(moments["exp_avg_sq"][16:]) == 0
    new_rows = t.D.b16.conv0.weight[8:].detach().clone()
    t.train(iterations=3, checkpoint_every=100)
    assert not torch.equal(t.D.b16.conv0.weight[8:], new_rows)  # the new channels learn
    resumed = Trainer(TrainingConfig(), run_dir=run, device="cpu")
    assert resumed.iteration == 3 and resumed.D.out.weight.shape == (1, 32)
    assert (resumed.config.d_channel_base, resumed.config.d_channel_max) == (256, 32)
    # Narrowing is refused before anything is written.
    stamp = (run / "checkpoint.pt").stat().st_mtime_ns
    with pytest.raises(ValueError, match=r"`d_channel_base`/`d_channel_max` can only widen the discriminator"):
        Trainer(TrainingConfig(), run_dir=run, device="cpu", overrides={"d_channel_max": 16})
    with pytest.raises(ValueError, match=r"`d_channel_base` must be a positive integer"):
        Trainer(TrainingConfig(), run_dir=run, device="cpu", overrides={"d_channel_base": 0})
    assert (run / "checkpoint.pt").stat().st_mtime_ns == stamp


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
