"""Importers: files written here in each source format, round trips, refusals and mismatches."""

from __future__ import annotations

import hashlib
import pathlib

import numpy as np
import pytest
import torch

from sefa_plugin import Directions, DirectionsMismatchError, StyleGAN2Generator
from sefa_plugin.directions.importers import (
    import_directions,
    load_ganspace_npz,
    load_interfacegan_boundary,
    load_rosinality_factor,
)
from sefa_plugin.models import DCGANGenerator


@pytest.fixture(scope="module")
def stylegan() -> StyleGAN2Generator:
    torch.manual_seed(0)
    return StyleGAN2Generator(z_dim=8, w_dim=8, img_resolution=8, channel_base=64, channel_max=8, mapping_layers=2)


def unit_rows(k: int, d: int, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(k, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def sha256(path: pathlib.Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------------------------------- InterFaceGAN
def test_interfacegan_boundary_round_trip(tmp_path, stylegan):
    path = tmp_path / "stylegan_ffhq_age_w_boundary.npy"
    normal = unit_rows(1, 8)
    np.save(path, normal)
    d = load_interfacegan_boundary(path, generator=stylegan)
    assert d.method == "imported" and d.latent_space == "w+" and len(d) == 1
    assert d.layers == list(range(stylegan.num_ws))
    assert d.labels == ["stylegan_ffhq_age_w"]
    np.testing.assert_allclose(d.vectors.numpy(), normal, atol=1e-6)
    assert d.extra["source_format"] == "interfacegan" and d.extra["source_sha256"] == sha256(path)
    assert d.base_model["class_name"] == "StyleGAN2Generator"
    d.save_pretrained(tmp_path / "out")
    again = Directions.from_pretrained(tmp_path / "out")
    assert torch.equal(again.vectors, d.vectors) and again.extra == d.extra
    # Explicit layers need no generator.
    assert load_interfacegan_boundary(path, layers="0-3").layers == [0, 1, 2, 3]


def test_interfacegan_z_boundary_and_errors(tmp_path, stylegan):
    path = tmp_path / "pggan_celebahq_smile_boundary.npy"
    np.save(path, unit_rows(1, 8))
    d = load_interfacegan_boundary(path, latent_space="z")
    assert d.latent_space == "z" and d.layers == [0]
    dc = DCGANGenerator(z_dim=8, img_resolution=8, channel_base=64, channel_max=8)
    assert load_interfacegan_boundary(path, latent_space="z", generator=dc).layers == [0]
    with pytest.raises(DirectionsMismatchError, match=r"`path` .* does not fit `generator`.*'z' space"):
        load_interfacegan_boundary(path, latent_space="z", generator=stylegan)
    with pytest.raises(ValueError, match="`latent_space` must be one of"):
        load_interfacegan_boundary(path, latent_space="w")
    with pytest.raises(ValueError, match="needs `generator`"):
        load_interfacegan_boundary(path)  # W+ without a generator or explicit layers
    with pytest.raises(ValueError, match="needs `generator`"):
        load_interfacegan_boundary(path, layers="coarse")
    wide = tmp_path / "wide_boundary.npy"
    np.save(wide, unit_rows(1, 16))
    with pytest.raises(DirectionsMismatchError, match="16 dimensions"):
        load_interfacegan_boundary(wide, generator=stylegan)
    two = tmp_path / "two_boundary.npy"
    np.save(two, unit_rows(2, 8))
    with pytest.raises(ValueError, match=r"not an InterFaceGAN boundary: expected \[1, D\]"):
        load_interfacegan_boundary(two, layers=[0])
    with pytest.raises(FileNotFoundError, match="`path`"):
        load_interfacegan_boundary(tmp_path / "missing.npy", layers=[0])


def test_npy_needing_pickle_is_refused(tmp_path):
    path = tmp_path / "object_boundary.npy"
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="pickle, refused"):
        load_interfacegan_boundary(path, layers=[0])
    junk = tmp_path / "junk_boundary.npy"
    junk.write_bytes(b"not an array")
    with pytest.raises(ValueError, match="`path`"):
        load_interfacegan_boundary(junk, layers=[0])


# ---------------------------------------------------------------------------------------- GANSpace
def write_ganspace(path: pathlib.Path, k: int = 5, d: int = 8, act_dims: int = 8) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    arrays = {
        "act_comp": unit_rows(k, act_dims, 2).reshape(k, 1, act_dims),
        "act_mean": rng.normal(size=(1, act_dims)).astype(np.float32),
        "act_stdev": np.linspace(3, 1, k).astype(np.float32),
        "lat_comp": unit_rows(k, d, 3).reshape(k, 1, d),
        "lat_mean": rng.normal(size=(1, d)).astype(np.float32),
        "lat_stdev": np.linspace(2.5, 0.5, k).astype(np.float32),
        "var_ratio": np.linspace(0.3, 0.05, k).astype(np.float32),
        "random_stdevs": np.ones(k, dtype=np.float32),
    }
    np.savez_compressed(path, **arrays)
    return arrays


def test_ganspace_cache_round_trip(tmp_path, stylegan):
    path = tmp_path / "stylegan2-ffhq_style_ipca_c5_n1000000_w.npz"
    arrays = write_ganspace(path)
    d = load_ganspace_npz(path, generator=stylegan)
    assert d.latent_space == "w+" and len(d) == 5 and d.labels[0] == "PC0"
    np.testing.assert_allclose(d.vectors.numpy(), arrays["lat_comp"][:, 0], atol=1e-6)
    np.testing.assert_allclose(d.stds.numpy(), arrays["lat_stdev"], rtol=1e-6)
    np.testing.assert_allclose(d.values.numpy(), arrays["act_stdev"] ** 2, rtol=1e-6)
    np.testing.assert_allclose(d.extra["var_ratio"], arrays["var_ratio"], rtol=1e-6)
    assert d.strength_range == pytest.approx((-7.5, 7.5))
    assert d.extra["source_sha256"] == sha256(path)
    d.save_pretrained(tmp_path / "out")
    again = Directions.from_pretrained(tmp_path / "out")
    assert torch.equal(again.stds, d.stds) and torch.equal(again.values, d.values)
    # Sigma-unit edits use the imported stds.
    lat = torch.zeros(1, stylegan.num_ws, 8)
    moved = d.edit(lat, index=1, strength=2.0, sigma_units=True)
    assert torch.allclose(moved[0, 0], 2.0 * d.stds[1] * d.vectors[1])
    assert len(load_ganspace_npz(path, layers="0-2", num_components=2)) == 2


def test_ganspace_latent_space_from_name_and_errors(tmp_path):
    z_path = tmp_path / "proggan-celebahq_layer0_ipca_c5_n100000.npz"
    write_ganspace(z_path)
    assert load_ganspace_npz(z_path).latent_space == "z"
    renamed = tmp_path / "my_components.npz"
    write_ganspace(renamed)
    with pytest.raises(ValueError, match="`latent_space` must be given"):
        load_ganspace_npz(renamed, layers=[0])
    assert load_ganspace_npz(renamed, latent_space="w+", layers=[0, 1]).layers == [0, 1]
    bad = tmp_path / "bad_n10_w.npz"
    np.savez(bad, act_comp=np.ones((2, 8)))
    with pytest.raises(ValueError, match=r"not a GANSpace cache: missing \['lat_comp', 'lat_stdev'\]"):
        load_ganspace_npz(bad, layers=[0])
    multi = tmp_path / "multi_n10_w.npz"
    np.savez(multi, lat_comp=np.ones((2, 3, 8)), lat_stdev=np.ones(2))
    with pytest.raises(ValueError, match=r"`lat_comp` must have shape \[K, 1, D\]"):
        load_ganspace_npz(multi, layers=[0])
    with pytest.raises(ValueError, match="`num_components`"):
        load_ganspace_npz(z_path, num_components=6)


# ---------------------------------------------------------------------------------------- rosinality
def test_rosinality_factor_columns_become_rows(tmp_path, stylegan):
    path = tmp_path / "factor.pt"
    eigvec = torch.linalg.qr(torch.randn(8, 8, generator=torch.Generator().manual_seed(0)))[0]
    torch.save({"ckpt": "checkpoint/550000.pt", "eigvec": eigvec}, path)
    d = load_rosinality_factor(path, generator=stylegan)
    assert d.latent_space == "w+" and len(d) == 8 and d.values is None
    assert torch.allclose(d.vectors, eigvec.T, atol=1e-6)
    assert d.extra["ckpt"] == "checkpoint/550000.pt" and d.extra["source_format"] == "rosinality"
    assert torch.allclose(load_rosinality_factor(path, layers="0-3", num_components=3).vectors, eigvec.T[:3], atol=1e-6)


class _Payload:
    """Unpickling this would create a marker file: proof that pickled code ran."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


def test_pickled_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "factor.pt"
    torch.save({"ckpt": "x", "eigvec": torch.eye(4), "payload": _Payload(marker)}, path)
    with pytest.raises(ValueError, match="refused: loading it would run pickled code"):
        load_rosinality_factor(path, layers=[0])
    assert not marker.exists()


def test_rosinality_bad_files(tmp_path):
    no_eigvec = tmp_path / "a.pt"
    torch.save({"ckpt": "x", "weights": torch.eye(4)}, no_eigvec)
    with pytest.raises(ValueError, match="not a rosinality factor file: expected a dict with a tensor 'eigvec'"):
        load_rosinality_factor(no_eigvec, layers=[0])
    junk = tmp_path / "b.pt"
    junk.write_bytes(b"\x00\x01garbage")
    with pytest.raises(ValueError, match="not a readable torch file"):
        load_rosinality_factor(junk, layers=[0])


def test_import_directions_dispatch(tmp_path):
    path = tmp_path / "factor.pt"
    torch.save({"ckpt": "x", "eigvec": torch.eye(4)}, path)
    assert import_directions(path, format="rosinality", layers=[0]).extra["source_format"] == "rosinality"
    with pytest.raises(ValueError, match="`format` must be one of"):
        import_directions(path, format="sefa", layers=[0])
    with pytest.raises(ValueError, match="'w\\+' for rosinality"):
        import_directions(path, format="rosinality", latent_space="z", layers=[0])
