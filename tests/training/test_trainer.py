"""A short training run: losses are finite, checkpoints resume exactly, the export loads."""

from __future__ import annotations

import math

import pytest
import torch
from factories import TINY_TRAINING as TINY
from factories import run_two_processes

from sefa_plugin import SefaPipeline, StyleGAN2Generator
from sefa_plugin.training import Discriminator, Trainer, TrainingConfig


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

    r0, r1 = run_two_processes(MULTI_PROCESS_SCRIPT, tmp_path, json.dumps(TINY))
    assert torch.equal(r0["G"], r1["G"]) and torch.equal(r0["D"], r1["D"])
    assert not torch.equal(r0["z"], r1["z"])  # each process draws its own latents and images
    assert r0["images"] == r1["images"] == 3 * 2 * TINY["batch_size"]
    assert (tmp_path / "checkpoint.pt").is_file()
