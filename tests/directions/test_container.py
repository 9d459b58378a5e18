"""Directions: validation, editing, file round trips, cards, and Hub round trips on the local server."""

from __future__ import annotations

import json

import pytest
import torch
from huggingface_hub.errors import HfHubHTTPError
from PIL import Image
from safetensors import safe_open

from sefa_plugin import Directions
from sefa_plugin.directions.container import DIRECTIONS_FILE


def make_directions(k: int = 3, d: int = 6) -> Directions:
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=torch.Generator().manual_seed(0)))
    return Directions(
        vectors=q[:k],
        values=torch.arange(k, 0, -1).float(),
        method="sefa",
        latent_space="w+",
        layers=[0, 2],
        base_model={"repo_id": "org/gan", "revision": "a" * 40, "weights_sha256": "b" * 64},
    )


def test_defaults_and_labels():
    d = make_directions()
    assert d.labels == ["direction 0", "direction 1", "direction 2"]
    d.labels[0] = "pose"
    assert d.labels[0] == "pose" and len(d) == 3 and d.latent_dim == 6
    sub = d[[2, 0]]
    assert sub.labels == ["direction 2", "pose"] and torch.equal(sub.vectors[1], d.vectors[0])


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(vectors=torch.zeros(3)), "vectors"),
        (dict(vectors=torch.full((2, 3), float("nan"))), "NaN"),
        (dict(method="magic"), "method"),
        (dict(latent_space="s"), "latent_space"),
        (dict(layers=[]), "layers"),
        (dict(values=torch.ones(5)), "values"),
        (dict(labels=["a"] * 9), "labels"),
        (dict(strength_range=(3, -3)), "strength_range"),
    ],
)
def test_validation(kwargs, match):
    base = dict(vectors=torch.eye(4)[:2], method="sefa", latent_space="w+", layers=[0])
    base.update(kwargs)
    with pytest.raises(ValueError, match=match):
        Directions(**base)


def test_edit_moves_selected_layers_only():
    d = make_directions()
    latents = torch.zeros(2, 4, 6)
    out = d.edit(latents, index=1, strength=2.0)
    assert torch.allclose(out[:, 0], 2 * d.vectors[1].expand(2, 6)) and torch.allclose(out[:, 2], out[:, 0])
    assert torch.all(out[:, 1] == 0) and torch.all(out[:, 3] == 0)
    assert torch.equal(d.edit(latents, 0, 0.0), latents)
    with pytest.raises(ValueError, match="strength"):
        d.edit(latents, 0, float("inf"))
    with pytest.raises(IndexError, match="index"):
        d.edit(latents, 5, 1.0)
    with pytest.raises(ValueError, match="sigma_units"):
        d.edit(latents, 0, 1.0, sigma_units=True)


def test_save_load_round_trip(tmp_path):
    d = make_directions()
    d.labels[1] = "colour"
    d.stds = torch.tensor([1.0, 2.0, 3.0])
    preview = Image.new("RGB", (8, 8), "red")
    d.save_pretrained(tmp_path / "dirs", preview=preview)
    files = sorted(p.name for p in (tmp_path / "dirs").iterdir())
    assert files == ["README.md", DIRECTIONS_FILE, "preview.png"]
    with safe_open(str(tmp_path / "dirs" / DIRECTIONS_FILE), framework="pt") as fh:
        meta = fh.metadata()
    assert json.loads(meta["layers"]) == [0, 2] and json.loads(meta["labels"])[1] == "colour"
    loaded = Directions.from_pretrained(tmp_path / "dirs")
    assert torch.equal(loaded.vectors, d.vectors) and torch.equal(loaded.values, d.values)
    assert torch.equal(loaded.stds, d.stds) and loaded.labels == d.labels and loaded.layers == d.layers
    assert loaded.base_model == d.base_model and loaded.strength_range == d.strength_range
    card = (tmp_path / "dirs" / "README.md").read_text()
    assert "library_name: sefa_plugin" in card and "base_model: org/gan" in card
    assert "colour" in card and "preview.png" in card
    # A single file works too.
    assert len(Directions.from_pretrained(tmp_path / "dirs" / DIRECTIONS_FILE)) == 3


def test_failed_save_leaves_nothing_half_written(tmp_path, monkeypatch):
    d = make_directions()
    d.save_pretrained(tmp_path / "dirs")
    before = (tmp_path / "dirs" / DIRECTIONS_FILE).read_bytes()

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(Directions, "model_card", boom)
    d2 = make_directions(k=2)
    with pytest.raises(RuntimeError):
        d2.save_pretrained(tmp_path / "dirs")
    assert (tmp_path / "dirs" / DIRECTIONS_FILE).read_bytes() == before
    assert sorted(p.name for p in (tmp_path / "dirs").iterdir()) == ["README.md", DIRECTIONS_FILE]


def test_unwritable_and_bad_files(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match="save_directory"):
        make_directions().save_pretrained(tmp_path / "file")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / DIRECTIONS_FILE).write_bytes(b"not safetensors")
    with pytest.raises(ValueError, match="safetensors"):
        Directions.from_pretrained(tmp_path / "bad")
    (tmp_path / "none").mkdir()
    with pytest.raises(FileNotFoundError, match="not a direction repository"):
        Directions.from_pretrained(tmp_path / "none")


def test_hub_round_trip(hub_env):
    d = make_directions()
    d.labels[0] = "pose"
    url = d.push_to_hub("tester/dirs", token=hub_env.token, preview=Image.new("RGB", (4, 4)))
    assert "/tester/dirs/commit/" in url
    files = hub_env.server.repo_files("tester/dirs")
    assert set(files) >= {DIRECTIONS_FILE, "README.md", "preview.png"}
    loaded = Directions.from_pretrained("tester/dirs", token=hub_env.token)
    assert loaded.labels[0] == "pose" and torch.equal(loaded.vectors, d.vectors)
    # Offline, from the cache.
    hub_env.set_offline(True)
    again = Directions.from_pretrained("tester/dirs")
    assert torch.equal(again.vectors, d.vectors)
    with pytest.raises(OSError, match="local Hub cache"):
        Directions.from_pretrained("tester/never-pushed")


def test_failed_push_leaves_repo_as_it_was(hub_env):
    d = make_directions()
    d.push_to_hub("tester/dirs", token=hub_env.token)
    before = hub_env.server.repo_files("tester/dirs")
    n_commits = len(hub_env.server.commits("tester/dirs"))
    hub_env.server.fail_next_commit(status=422)
    d2 = make_directions(k=1)
    with pytest.raises(HfHubHTTPError):
        d2.push_to_hub("tester/dirs", token=hub_env.token)
    assert hub_env.server.repo_files("tester/dirs") == before
    assert len(hub_env.server.commits("tester/dirs")) == n_commits
    # A failed first push to a new repo removes the empty repo again.
    hub_env.server.fail_next_commit(status=422)
    with pytest.raises(HfHubHTTPError):
        d2.push_to_hub("tester/new-dirs", token=hub_env.token)
    assert not hub_env.server.has_repo("tester/new-dirs")
