"""GANSpace cores: streaming PCA against full-batch PCA, the z-space regression, the generator paths."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sefa_plugin.directions.ganspace import (
    StreamingPCA,
    ganspace_w,
    ganspace_z,
    regress_activation_components,
    stream_latent_pca,
)
from sefa_plugin.models import DCGANGenerator, PGGANGenerator, StyleGAN2Generator


def anisotropic_data(n: int = 1000, d: int = 6, seed: int = 0, offset: float = 1000.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.normal(size=(d, d)))
    scales = np.array([5.0, 3.0, 2.0, 1.0, 0.5, 0.1])[:d]
    return rng.normal(size=(n, d)) * scales @ basis.T + offset  # a large mean tests numerical stability


def numpy_pca(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    values, vectors = np.linalg.eigh(np.cov(x, rowvar=False))  # ddof = 1
    return values[::-1].copy(), vectors[:, ::-1].T.copy()


def assert_same_axes(a: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray, atol: float = 1e-6) -> None:
    cos = (torch.as_tensor(a, dtype=torch.float64) * torch.as_tensor(b, dtype=torch.float64)).sum(dim=1)
    assert torch.allclose(cos.abs(), torch.ones_like(cos), atol=atol), cos


def tiny_stylegan2(seed: int = 0) -> StyleGAN2Generator:
    torch.manual_seed(seed)
    g = StyleGAN2Generator(z_dim=8, w_dim=8, img_resolution=8, channel_base=64, channel_max=8, mapping_layers=2)
    return g.eval()


# ---------------------------------------------------------------------------------------- StreamingPCA
@pytest.mark.parametrize("splits", [[1000], [1, 7, 300, 692], [2] * 500, [999, 1]])
def test_streaming_pca_equals_full_batch_numpy(splits):
    x = anisotropic_data()
    pca = StreamingPCA(6)
    for chunk in torch.from_numpy(x).split(splits):
        pca.update(chunk)
    assert pca.count == 1000
    np.testing.assert_allclose(pca.covariance().numpy(), np.cov(x, rowvar=False), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(pca.mean.numpy(), x.mean(axis=0), rtol=1e-12)
    res = pca.result(num_components=4)
    values, vectors = numpy_pca(x)
    np.testing.assert_allclose(res.variances.numpy(), values[:4], rtol=1e-5)
    np.testing.assert_allclose(res.stds.numpy(), np.sqrt(values[:4]), rtol=1e-5)
    assert_same_axes(res.components, vectors[:4])
    assert np.isclose(pca.total_variance, values.sum())


def test_streaming_pca_is_independent_of_batch_split():
    x = torch.from_numpy(anisotropic_data(n=777, seed=1))
    results = []
    for splits in ([777], [100] * 7 + [77], [5, 500, 272]):
        pca = StreamingPCA(6)
        for chunk in x.split(splits):
            pca.update(chunk.float())  # float32 input, float64 statistics
        results.append(pca.result(6))
    for other in results[1:]:
        assert torch.allclose(results[0].components, other.components, atol=1e-5)
        assert torch.allclose(results[0].variances, other.variances, rtol=1e-5)


def test_streaming_pca_matches_sklearn_pca():
    from sklearn.decomposition import PCA

    x = anisotropic_data(n=500, seed=2, offset=3.0)
    pca = StreamingPCA(6).update(torch.from_numpy(x[:123])).update(torch.from_numpy(x[123:]))
    res = pca.result(3)
    ref = PCA(n_components=3, svd_solver="full").fit(x)
    np.testing.assert_allclose(res.variances.numpy(), ref.explained_variance_, rtol=1e-5)
    assert_same_axes(res.components, ref.components_)


def test_known_dominant_axis_and_sign_convention():
    g = torch.Generator().manual_seed(0)
    axis = torch.tensor([0.1, -0.9, 0.3, 0.0, 0.2])
    axis = axis / axis.norm()
    x = 0.1 * torch.randn(20_000, 5, generator=g) + 4.0 * torch.randn(20_000, 1, generator=g) * axis
    res = StreamingPCA(5).update(x).result(2)
    # The dominant axis, with its largest-magnitude entry made positive (here: -0.9 -> +0.9).
    assert torch.allclose(res.components[0], -axis, atol=1e-3)
    assert abs(float(res.variances[0]) - 16.0) < 0.5
    assert float(res.variances[1]) < 0.02
    assert torch.allclose(res.components.norm(dim=1), torch.ones(2), atol=1e-6)


def test_streaming_pca_bad_input():
    pca = StreamingPCA(3)
    with pytest.raises(ValueError, match="`batch` must be a tensor of shape"):
        pca.update(torch.zeros(4, 2))
    with pytest.raises(ValueError, match="NaN"):
        pca.update(torch.tensor([[0.0, float("nan"), 1.0]]))
    with pytest.raises(ValueError, match="at least 2"):
        pca.update(torch.zeros(1, 3)).result(1)
    pca.update(torch.randn(10, 3))
    with pytest.raises(ValueError, match=r"`num_components` must be an int in \[1, 3\]"):
        pca.result(4)
    with pytest.raises(ValueError, match="`dim`"):
        StreamingPCA(0)


# ---------------------------------------------------------------------------------------- z regression
def test_regression_equals_explicit_lstsq_on_the_samples():
    """The closed form equals GANSpace's recipe: PCA of x = A z, then lstsq(coords / s, Z)."""
    rng = np.random.default_rng(0)
    z = rng.normal(size=(5000, 6)) * np.array([1.0, 1.2, 0.8, 1.0, 1.1, 0.9]) + 0.05
    a = rng.normal(size=(20, 6))
    x = z @ a.T
    values, vectors = numpy_pca(x)
    k = 4
    coords = (x - x.mean(axis=0)) @ vectors[:k].T / np.sqrt(values[:k])
    m = np.linalg.lstsq(coords, z, rcond=None)[0]  # [K, D], no intercept as in GANSpace
    expected = m / np.linalg.norm(m, axis=1, keepdims=True)
    dirs, var, stds = regress_activation_components(torch.from_numpy(np.cov(z, rowvar=False)), torch.from_numpy(a), k)
    assert_same_axes(dirs, expected, atol=1e-6)
    np.testing.assert_allclose(var.numpy(), values[:k], rtol=1e-5)
    sample_std = (z @ dirs.double().numpy().T).std(axis=0, ddof=1)
    np.testing.assert_allclose(stds.numpy(), sample_std, rtol=1e-5)


def test_regression_with_isotropic_latents_is_unnormalised_sefa():
    a = torch.randn(12, 5, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    dirs, var, _ = regress_activation_components(torch.eye(5, dtype=torch.float64), a, 3)
    _, s, vh = torch.linalg.svd(a)
    assert_same_axes(dirs, vh[:3], atol=1e-6)
    assert torch.allclose(var.double(), s[:3] ** 2, rtol=1e-5)


def test_regression_bad_input():
    with pytest.raises(ValueError, match="`weight` must have shape"):
        regress_activation_components(torch.eye(3), torch.zeros(4, 2), 1)
    with pytest.raises(ValueError, match="`num_components`"):
        regress_activation_components(torch.eye(3), torch.randn(4, 3), 4)
    with pytest.raises(ValueError, match="exceeds the rank"):
        regress_activation_components(torch.eye(3), torch.tensor([[1.0, 0.0, 0.0]]), 2)


# ---------------------------------------------------------------------------------------- generators
def test_ganspace_w_equals_pca_of_the_same_w_samples():
    g = tiny_stylegan2()
    res = ganspace_w(g, num_samples=3000, num_components=4, batch_size=700, generator=torch.Generator().manual_seed(5))
    rng = torch.Generator().manual_seed(5)
    with torch.no_grad():
        w = torch.cat([g.sample_latents(g.randn_z(n, generator=rng))[:, 0] for n in (700, 700, 700, 700, 200)])
    values, vectors = numpy_pca(w.double().numpy())
    assert_same_axes(res.components, vectors[:4], atol=1e-4)
    np.testing.assert_allclose(res.variances.numpy(), values[:4], rtol=1e-4)
    np.testing.assert_allclose(res.mean.numpy(), w.double().mean(0).numpy(), rtol=1e-4, atol=1e-6)


def test_ganspace_z_equals_explicit_recipe_on_dcgan():
    g = DCGANGenerator(z_dim=6, img_resolution=8, channel_base=64, channel_max=8).eval()
    res = ganspace_z(g, num_samples=2000, num_components=3, batch_size=500, generator=torch.Generator().manual_seed(1))
    rng = torch.Generator().manual_seed(1)
    z = torch.cat([g.randn_z(500, generator=rng) for _ in range(4)]).double().numpy()
    a = g.latent_weights([0])[0].double().numpy()
    x = z @ a.T
    values, vectors = numpy_pca(x)
    coords = (x - x.mean(axis=0)) @ vectors[:3].T / np.sqrt(values[:3])
    m = np.linalg.lstsq(coords, z, rcond=None)[0]
    assert_same_axes(res.components, m / np.linalg.norm(m, axis=1, keepdims=True), atol=1e-4)
    np.testing.assert_allclose(res.variances.numpy(), values[:3], rtol=1e-4)
    assert torch.allclose(res.stds, torch.ones(3), atol=0.1)  # Gaussian z: unit spread in every direction


def test_ganspace_z_on_pggan_uses_the_editable_latent_and_reports_progress():
    torch.manual_seed(0)
    g = PGGANGenerator(z_dim=8, img_resolution=8, channel_base=64, channel_max=8).eval()
    seen = []

    def progress(it):
        seen.append(len(it))
        return it

    res = ganspace_z(g, num_samples=1000, num_components=8, batch_size=300, progress=progress)
    assert seen == [4]
    assert res.components.shape == (8, 8) and torch.all(res.variances[:-1] >= res.variances[1:])
    gram = res.components @ res.components.T
    assert torch.allclose(gram.diagonal(), torch.ones(8), atol=1e-5)


def test_space_checks_and_sample_count_errors():
    dc = DCGANGenerator(z_dim=6, img_resolution=8, channel_base=64, channel_max=8).eval()
    sg = tiny_stylegan2()
    with pytest.raises(ValueError, match="ganspace_z"):
        ganspace_w(dc, num_samples=100, num_components=2)
    with pytest.raises(ValueError, match="ganspace_w"):
        ganspace_z(sg, num_samples=100, num_components=2)
    with pytest.raises(ValueError, match=r"`num_components` must be an int in \[1, 8\]"):
        ganspace_w(sg, num_samples=100, num_components=9)
    with pytest.raises(ValueError, match="`num_samples`"):
        stream_latent_pca(sg, num_samples=1)
    with pytest.raises(ValueError, match="`batch_size`"):
        stream_latent_pca(sg, num_samples=10, batch_size=0)


def test_ganspace_z_on_biggan_moves_z_only():
    """BigGAN's latent is [z, class embedding]: GANSpace's directions are zero on the class part."""
    from factories import TINY_BIGGAN, tiny_biggan

    g = tiny_biggan()
    z_dim = TINY_BIGGAN["z_dim"]
    res = ganspace_z(g, num_samples=3000, num_components=4, generator=torch.Generator().manual_seed(0))
    assert res.components.shape == (4, g.latent_dim)
    assert torch.equal(res.components[:, z_dim:], torch.zeros(4, g.latent_dim - z_dim))
    assert torch.allclose(res.components.norm(dim=1), torch.ones(4), atol=1e-5)
    with pytest.raises(ValueError, match="num_components"):
        ganspace_z(g, num_samples=100, num_components=z_dim + 1)
