"""The embedded default model: it ships in the package, loads by DEFAULT_MODEL, and fails clearly when damaged."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

import sefa_plugin
from sefa_plugin import DEFAULT_MODEL, SefaPipeline, StyleGAN2Generator


def test_default_model_is_a_small_pipeline_folder():
    folder = Path(DEFAULT_MODEL)
    assert (folder / "model_index.json").is_file() and (folder / "generator" / "config.json").is_file()
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    assert size <= 30 * 2**20
    card = (folder / "README.md").read_text()
    assert "library_name: sefa_plugin" in card and "iterations" in card and "training time" in card


def test_default_model_loads_and_generates():
    pipe = SefaPipeline.from_pretrained(sefa_plugin.DEFAULT_MODEL)
    pipe.set_progress_bar_config(disable=True)
    g = pipe.generator
    assert isinstance(g, StyleGAN2Generator) and g.config.img_resolution == 64
    d = pipe.factorize(layers="all", num_directions=5)
    out = pipe(seeds=[0, 1], directions=d, index=0, strengths=[-2, 0, 2], output_type="pt")
    assert out.images.shape == (6, 3, 64, 64) and torch.isfinite(out.images).all()
    assert StyleGAN2Generator.from_pretrained(Path(DEFAULT_MODEL) / "generator").num_ws == g.num_ws


def test_damaged_copies_fail_clearly(tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(DEFAULT_MODEL, broken)
    weights = broken / "generator" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(OSError, match="missing or corrupt"):
        SefaPipeline.from_pretrained(broken)
    weights.unlink()
    # No silent fallback to pickled weights.
    (broken / "generator" / "diffusion_pytorch_model.bin").write_bytes(b"pickle would go here")
    with pytest.raises(OSError, match="missing or corrupt"):
        SefaPipeline.from_pretrained(broken)
    with pytest.raises(ValueError, match="use_safetensors"):
        SefaPipeline.from_pretrained(DEFAULT_MODEL, use_safetensors=False)
