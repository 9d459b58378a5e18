"""Resuming into wider networks or another mapping lr multiplier keeps what the networks compute."""

from __future__ import annotations

import pytest
import torch
from factories import TINY_TRAINING as TINY

from sefa_plugin import SefaPipeline
from sefa_plugin.training import Trainer, TrainingConfig


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
