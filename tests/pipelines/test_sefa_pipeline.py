"""SefaPipeline: loading, factorize, rendering edits, provenance, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from factories import tiny_stylegan2 as _tiny

from sefa_plugin import Directions, DirectionsMismatchError, SefaPipeline, StyleGAN2Generator
from sefa_plugin.directions import sefa_factorize
from sefa_plugin.models import PGGANGenerator


def tiny_stylegan2(seed: int = 0, **kwargs) -> StyleGAN2Generator:
    return _tiny(seed, trained_like=True, **kwargs)


@pytest.fixture
def pipe() -> SefaPipeline:
    p = SefaPipeline(generator=tiny_stylegan2())
    p.set_progress_bar_config(disable=True)
    return p


def test_factorize_returns_sorted_unit_directions(pipe):
    d = pipe.factorize(layers="all", num_directions=5)
    assert isinstance(d, Directions) and len(d) == 5 and d.method == "sefa"
    assert d.layers == list(range(pipe.generator.num_ws))
    assert torch.allclose(d.vectors.norm(dim=1), torch.ones(5), atol=1e-5)
    assert torch.all(d.values[:-1] >= d.values[1:])
    assert d.base_model["class_name"] == "StyleGAN2Generator"
    assert len(d.base_model["weights_sha256"]) == 64


@pytest.mark.parametrize(
    "spec,expected", [("0-2", [0, 1, 2]), ("0-1,4", [0, 1, 4]), ([3, 1], [1, 3]), ("coarse", None)]
)
def test_factorize_layer_specs(pipe, spec, expected):
    d = pipe.factorize(layers=spec, num_directions=3)
    assert d.layers == (expected or pipe.generator.layer_groups()["coarse"])


def test_cached_layer_grams_give_the_direct_factorization_for_every_selection(pipe, monkeypatch):
    g = pipe.generator
    calls = []
    latent_weights = g.latent_weights
    monkeypatch.setattr(g, "latent_weights", lambda layers: calls.append(list(layers)) or latent_weights(layers))
    for spec in ("all", "0-1", [2, 4], "fine", "all"):
        d = pipe.factorize(layers=spec, num_directions=4)
        vectors, values = sefa_factorize(latent_weights(d.layers), num_directions=4)
        assert torch.allclose(d.values, values, rtol=1e-5)
        assert torch.allclose(d.vectors, vectors, atol=1e-4)
    assert calls == [list(range(g.num_ws))]  # each layer's Gram matrix was computed once
    pipe.factorize(num_directions=4, normalize=False)
    assert len(calls) == 2  # the unnormalised ones are other matrices


def test_a_weight_change_reaches_the_next_factorization(pipe):
    before = pipe.factorize(layers="0-2", num_directions=3)
    affine = pipe.generator.style_affines()[1]
    with torch.no_grad():
        affine.weight[:4].add_(torch.randn(4, affine.weight.shape[1]))  # in place, through a view
    after = pipe.factorize(layers="0-2", num_directions=3)
    vectors, values = sefa_factorize(pipe.generator.latent_weights([0, 1, 2]), num_directions=3)
    assert not torch.allclose(before.values, after.values)
    assert torch.allclose(after.values, values, rtol=1e-5) and torch.allclose(after.vectors, vectors, atol=1e-4)
    assert after.base_model["weights_sha256"] != before.base_model["weights_sha256"]
    pipe.generator = tiny_stylegan2(seed=7)  # another generator: nothing of the first one is reused
    other = pipe.factorize(layers="0-2", num_directions=3)
    vectors, _ = sefa_factorize(pipe.generator.latent_weights([0, 1, 2]), num_directions=3)
    assert torch.allclose(other.vectors, vectors, atol=1e-4)


def test_call_shapes_order_and_determinism(pipe):
    d = pipe.factorize(num_directions=3)
    out = pipe(seeds=[0, 1], directions=d, index=1, strengths=[-2, 0, 2], output_type="pt")
    assert out.images.shape == (6, 3, 16, 16)
    assert out.seeds == [0, 0, 0, 1, 1, 1] and out.strengths == [-2, 0, 2, -2, 0, 2]
    again = pipe(seeds=[0, 1], directions=d, index=1, strengths=[-2, 0, 2], output_type="pt")
    assert torch.equal(out.images, again.images)
    # Strength 0 is the unedited image.
    plain = pipe(seeds=[0, 1], output_type="pt")
    assert torch.allclose(out.images[1], plain.images[0], atol=1e-6)
    assert torch.allclose(out.images[4], plain.images[1], atol=1e-6)
    # Batching does not change results.
    small = pipe(seeds=[0, 1], directions=d, index=1, strengths=[-2, 0, 2], output_type="pt", batch_size=1)
    assert torch.allclose(out.images, small.images, atol=1e-5)


def test_edit_is_linear_in_latent_space(pipe):
    d = pipe.factorize(layers="0-1", num_directions=2)
    out = pipe(seeds=[3], directions=d, index=0, strengths=[0, 1, 2], output_type="pt")
    lat = out.latents
    assert torch.allclose(lat[2] - lat[1], lat[1] - lat[0], atol=1e-5)
    delta = lat[1] - lat[0]
    assert torch.allclose(delta[0], d.vectors[0], atol=1e-5) and torch.allclose(delta[1], d.vectors[0], atol=1e-5)
    assert torch.all(delta[2:] == 0)


def test_output_types(pipe):
    pil = pipe(seeds=[0], output_type="pil").images
    arr = pipe(seeds=[0], output_type="np").images
    assert pil[0].size == (16, 16) and pil[0].mode == "RGB"
    assert arr.shape == (1, 16, 16, 3) and arr.min() >= 0 and arr.max() <= 1
    assert np.allclose(np.asarray(pil[0]) / 255.0, arr[0], atol=1 / 255 + 1e-6)
    images, latents, seeds, strengths = pipe(seeds=[0], return_dict=False)
    assert len(images) == 1 and latents.shape[0] == 1 and seeds == [0] and strengths == [0.0]


def test_torch_generator_is_deterministic(pipe):
    a = pipe(num_images=2, generator=torch.Generator().manual_seed(7), output_type="pt").images
    b = pipe(num_images=2, generator=torch.Generator().manual_seed(7), output_type="pt").images
    assert torch.equal(a, b)


def test_seeds_match_nvidia_z(pipe):
    z = pipe.generator.z_from_seeds([5])
    assert np.allclose(z[0].numpy(), np.random.RandomState(5).randn(16).astype(np.float32))


def test_save_and_load_pipeline_round_trip(pipe, tmp_path):
    pipe.save_pretrained(tmp_path / "model")
    assert (tmp_path / "model" / "model_index.json").is_file()
    assert any((tmp_path / "model" / "generator").glob("*.safetensors"))
    loaded = SefaPipeline.from_pretrained(tmp_path / "model")
    loaded.set_progress_bar_config(disable=True)
    a = pipe(seeds=[1], output_type="pt").images
    b = loaded(seeds=[1], output_type="pt").images
    assert torch.equal(a, b)
    assert loaded.source["path"] == str((tmp_path / "model").resolve())


def test_pggan_pipeline_edits_z():
    torch.manual_seed(0)
    g = PGGANGenerator(z_dim=8, img_resolution=8, channel_base=64, channel_max=16).eval()
    p = SefaPipeline(generator=g)
    p.set_progress_bar_config(disable=True)
    d = p.factorize(num_directions=4)
    assert d.latent_space == "z" and d.layers == [0]
    out = p(seeds=[0], directions=d, index=0, strengths=[-1, 0, 1], output_type="pt")
    assert out.images.shape == (3, 3, 8, 8)
    with pytest.raises(ValueError, match="truncation_psi"):
        p(seeds=[0], truncation_psi=0.5)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(layers="0-99"), "layers"),
        (dict(layers="sideways"), "layers"),
        (dict(num_directions=17), "num_directions"),
        (dict(num_directions=0), "num_directions"),
    ],
)
def test_factorize_bad_input(pipe, kwargs, match):
    with pytest.raises(ValueError, match=match):
        pipe.factorize(**kwargs)


def test_call_bad_input(pipe):
    d = pipe.factorize(num_directions=3)
    with pytest.raises(ValueError, match="strengths"):
        pipe(seeds=[0], directions=d, strengths=[float("nan")])
    with pytest.raises(IndexError, match="index"):
        pipe(seeds=[0], directions=d, index=3, strengths=[1])
    with pytest.raises(ValueError, match="output_type"):
        pipe(seeds=[0], output_type="jpeg")
    with pytest.raises(ValueError, match="seeds"):
        pipe(seeds=[-1])
    with pytest.raises(ValueError, match="class_label"):
        pipe(seeds=[0], class_label=1)
    other = SefaPipeline(generator=tiny_stylegan2(w_dim=8, z_dim=8))
    with pytest.raises(DirectionsMismatchError, match="dimensions"):
        other(seeds=[0], directions=d, strengths=[1])


def test_directions_from_other_weights_warn(pipe):
    d = pipe.factorize(num_directions=2)
    other = SefaPipeline(generator=tiny_stylegan2(seed=1))
    other.set_progress_bar_config(disable=True)
    with pytest.warns(UserWarning, match="sha256"):
        other(seeds=[0], directions=d, strengths=[1])


def test_not_a_model_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"model_index\.json"):
        SefaPipeline.from_pretrained(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="pretrained_model_name_or_path"):
        SefaPipeline.from_pretrained(str(tmp_path / "missing" / "deeper" / "x"))


def test_conditional_generator_needs_class_label():
    g = tiny_stylegan2(c_dim=3)
    p = SefaPipeline(generator=g)
    p.set_progress_bar_config(disable=True)
    with pytest.raises(ValueError, match="class_label"):
        p(seeds=[0])
    a = p(seeds=[0], class_label=0, output_type="pt").images
    b = p(seeds=[0], class_label=2, output_type="pt").images
    assert not torch.allclose(a, b)


def test_pipeline_hub_round_trip(pipe, hub_env):
    url = pipe.push_to_hub("tester/tiny-gan", token=hub_env.token)
    assert "/tester/tiny-gan/commit/" in url
    files = hub_env.server.repo_files("tester/tiny-gan")
    assert "model_index.json" in files and "README.md" in files
    assert b"library_name: sefa_plugin" in files["README.md"]
    assert any(name.startswith("generator/") and name.endswith(".safetensors") for name in files)
    first = hub_env.server.commits("tester/tiny-gan")[-1]
    first_oid = first.oid if hasattr(first, "oid") else first["oid"]

    loaded = SefaPipeline.from_pretrained("tester/tiny-gan", token=hub_env.token)
    loaded.set_progress_bar_config(disable=True)
    assert loaded.source["repo_id"] == "tester/tiny-gan" and len(loaded.source["revision"]) == 40
    assert torch.equal(loaded(seeds=[2], output_type="pt").images, pipe(seeds=[2], output_type="pt").images)
    d = loaded.factorize(num_directions=2)
    assert d.base_model["repo_id"] == "tester/tiny-gan"

    # A second version; the first stays reachable by revision.
    SefaPipeline(generator=tiny_stylegan2(seed=3)).push_to_hub("tester/tiny-gan", token=hub_env.token)
    old = SefaPipeline.from_pretrained("tester/tiny-gan", revision=first_oid, token=hub_env.token)
    old.set_progress_bar_config(disable=True)
    assert torch.equal(old(seeds=[2], output_type="pt").images, pipe(seeds=[2], output_type="pt").images)

    # Offline: the cached snapshot loads; an uncached repo gives a clear error.
    hub_env.set_offline(True)
    cached = SefaPipeline.from_pretrained("tester/tiny-gan")
    assert cached.generator.config.img_resolution == 16
    with pytest.raises(OSError, match="offline"):
        SefaPipeline.from_pretrained("tester/unknown-gan")


def test_unknown_hub_repo(hub_env):
    with pytest.raises(OSError, match="no such repository"):
        SefaPipeline.from_pretrained("tester/does-not-exist", token=hub_env.token)
