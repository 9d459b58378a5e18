"""Inversion: save/load round trip, atomic writes, loaders for projected_w.npz and .npy, and their errors."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
import torch
from factories import tiny_stylegan2

from sefa_plugin.inversion import LATENTS_FILE, Inversion, check_latents, load_latents
from sefa_plugin.models import DCGANGenerator
from sefa_plugin.utils.images import to_pil


def make_inversion(g, n=2, noise=True) -> Inversion:
    torch.manual_seed(0)
    latents = torch.randn(n, g.num_ws, g.latent_dim)
    maps = {}
    if noise:
        buffers = dict(g.named_buffers())
        maps = {k: torch.randn(n, 1, buffers[k].shape[-1], buffers[k].shape[-1]) for k in g.noise_buffers()}
    images = torch.rand(n, 3, 16, 16) * 2 - 1
    return Inversion(
        latents=latents,
        images=to_pil(images),
        targets=to_pil(-images),
        losses=torch.rand(n, 5),
        noise=maps,
        perceptual="none",
        latent_space="w+",
        settings={"num_steps": 5},
        resized=[True] + [False] * (n - 1),
        base_model={"class_name": type(g).__name__, "num_ws": g.num_ws},
    )


def test_round_trip(tmp_path):
    g = tiny_stylegan2(trained_like=True)  # non-zero noise strengths
    inv = make_inversion(g)
    inv.save_pretrained(tmp_path / "inv")
    assert sorted(p.name for p in (tmp_path / "inv").iterdir()) == [
        "comparison.png", LATENTS_FILE, "reconstructions", "targets",
    ]  # fmt: skip
    back = Inversion.from_pretrained(tmp_path / "inv")
    assert torch.equal(back.latents, inv.latents) and torch.equal(back.losses, inv.losses)
    assert sorted(back.noise) == sorted(inv.noise)
    assert all(torch.equal(back.noise[k], inv.noise[k]) for k in inv.noise)
    assert (back.settings, back.resized, back.base_model) == (inv.settings, inv.resized, inv.base_model)
    assert [np.asarray(a).tolist() for a in back.images] == [np.asarray(a).tolist() for a in inv.images]
    assert back.psnr() == inv.psnr()
    torch.testing.assert_close(load_latents(tmp_path / "inv", g), inv.latents)
    # The reconstruction renders with the stored noise maps: different from the generator's own.
    with_noise = back.render(g)
    assert with_noise.shape == (2, 3, 16, 16)
    assert not torch.allclose(with_noise, g.synthesize(inv.latents))


def test_failed_save_leaves_nothing(tmp_path, monkeypatch):
    g = tiny_stylegan2()
    inv = make_inversion(g)

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("sefa_plugin.inversion.output.Inversion.comparison", broken)
    with pytest.raises(OSError, match="disk full"):
        inv.save_pretrained(tmp_path / "inv")
    assert not (tmp_path / "inv").exists() or list((tmp_path / "inv").iterdir()) == []
    assert list(tmp_path.iterdir()) in ([], [tmp_path / "inv"])  # no temporary folder left beside it either


def test_latents_of_another_model_are_refused(tmp_path):
    g = tiny_stylegan2()
    make_inversion(g).save_pretrained(tmp_path / "inv")
    other = tiny_stylegan2(img_resolution=32)  # one more block: more layers
    with pytest.raises(ValueError, match=r"`latents` must have shape \[N, 8, 16\]"):
        load_latents(tmp_path / "inv", other)
    dcgan = DCGANGenerator(z_dim=16, img_resolution=16, channel_base=128, channel_max=16)
    with pytest.raises(ValueError, match="`--latents` were inverted with a StyleGAN2Generator"):
        load_latents(tmp_path / "inv", dcgan, what="--latents")
    # Same shapes, other weights: a warning only.
    with pytest.warns(UserWarning, match="weights sha256"):
        inv = make_inversion(g)
        inv.base_model["weights_sha256"] = "0" * 64
        inv.latents_for(g)


def test_nvidia_projected_w_npz(tmp_path):
    g = tiny_stylegan2()
    w = np.random.default_rng(0).standard_normal((1, g.num_ws, g.latent_dim)).astype(np.float32)
    np.savez(tmp_path / "projected_w.npz", w=w)
    torch.testing.assert_close(load_latents(tmp_path / "projected_w.npz", g), torch.from_numpy(w))
    np.savez(tmp_path / "other.npz", latents=w)
    with pytest.raises(ValueError, match=r"`latents` .*no key `w`"):
        load_latents(tmp_path / "other.npz", g)


def test_npy_w_and_w_plus(tmp_path):
    g = tiny_stylegan2()
    rng = np.random.default_rng(0)
    w = rng.standard_normal((3, g.latent_dim))
    np.save(tmp_path / "w.npy", w)
    out = load_latents(tmp_path / "w.npy", g)
    assert out.shape == (3, g.num_ws, g.latent_dim) and out.dtype == torch.float32
    torch.testing.assert_close(out[:, 4], torch.from_numpy(w).float())
    wp = rng.standard_normal((2, g.num_ws, g.latent_dim)).astype(np.float32)
    np.save(tmp_path / "wp.npy", wp)
    torch.testing.assert_close(load_latents(tmp_path / "wp.npy", g), torch.from_numpy(wp))


@pytest.mark.parametrize(
    "array, match",
    [
        (np.zeros((2, 5, 16), np.float32), r"shape \[2, 5, 16\].*\[N, 16\] \(W\) or \[N, 6, 16\] \(W\+\)"),
        (np.zeros((2, 8), np.float32), r"shape \[2, 8\]"),
        (np.zeros((0, 16), np.float32), r"1 ≤ N"),
        (np.zeros((2, 16), np.int64), "floating point"),
        (np.full((1, 16), np.nan, np.float32), "NaN"),
    ],
)
def test_bad_npy_names_the_argument(tmp_path, array, match):
    np.save(tmp_path / "bad.npy", array)
    with pytest.raises(ValueError, match=f"`--latents`.*{match}|`--latents` contains NaN"):
        load_latents(tmp_path / "bad.npy", tiny_stylegan2(), what="--latents")


def test_pickled_and_forged_arrays_are_refused_before_reading(tmp_path, monkeypatch):
    g = tiny_stylegan2()
    np.save(tmp_path / "obj.npy", np.array([{"w": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="needs pickle, refused"):
        load_latents(tmp_path / "obj.npy", g)
    # A header claiming 10¹² latents in a tiny file: refused from the header, the data is never read.
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f4", "fortran_order": False, "shape": (10**12, 16)})
    (tmp_path / "forged.npy").write_bytes(buf.getvalue())
    reads = []
    monkeypatch.setattr(np.lib.format, "read_array", lambda *a, **k: reads.append(1))
    with pytest.raises(ValueError, match=r"shape \[1000000000000, 16\]"):
        load_latents(tmp_path / "forged.npy", g)
    with zipfile.ZipFile(tmp_path / "forged.npz", "w") as zf:
        zf.writestr("w.npy", buf.getvalue())
    with pytest.raises(ValueError, match=r"key `w` holds an array of shape \[1000000000000, 16\]"):
        load_latents(tmp_path / "forged.npz", g)
    assert reads == []


def test_other_files_and_checks(tmp_path):
    g = tiny_stylegan2()
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(ValueError, match=r"`latents` .*neither"):
        load_latents(tmp_path / "x.txt", g)
    with pytest.raises(FileNotFoundError, match="`latents`"):
        load_latents(tmp_path / "missing.npy", g)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"no latents\.safetensors"):
        load_latents(tmp_path / "empty", g)
    with pytest.raises(ValueError, match="NaN"):
        check_latents(torch.full((1, g.num_ws, g.latent_dim), float("nan")), g)
    with pytest.raises(TypeError, match=r"torch\.Tensor"):
        check_latents(np.zeros((1, g.num_ws, g.latent_dim)), g)
