"""sefa_factorize: known eigenvectors, agreement with the official formula, determinism, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sefa_plugin.directions import sefa_eigh, sefa_factorize, sefa_gram
from sefa_plugin.directions.sefa import _fix_signs
from sefa_plugin.models import PGGANGenerator, StyleGAN2Generator


def random_orthonormal(rows: int, cols: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(rows, cols, generator=g, dtype=torch.float64))
    return q  # [rows, cols], orthonormal columns


def official_factorize(weights_t: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The official SeFa formula, written independently: each input is ``[latent_dim, out]``.

    Columns (one per output unit) are scaled to unit norm, ``np.linalg.eig`` decomposes the Gram
    matrix, then the (unsorted) result is sorted by eigenvalue, largest first. Rows of the returned
    vectors are the eigenvectors.
    """
    w = np.concatenate(weights_t, axis=1).astype(np.float32)
    w = w / np.linalg.norm(w, axis=0, keepdims=True)
    values, vectors = np.linalg.eig(w.dot(w.T))
    values, vectors = np.real(values), np.real(vectors)
    order = np.argsort(-values)
    return vectors.T[order], values[order]


def assert_matches_official(ours: tuple[torch.Tensor, torch.Tensor], official: tuple[np.ndarray, np.ndarray]):
    vectors, values = ours
    ref_vectors, ref_values = official
    assert np.allclose(values.numpy(), ref_values, rtol=1e-4, atol=1e-4 * ref_values.max())
    # Compare vectors where the eigenvalue is well separated from its neighbours (else any basis of the
    # eigenspace is right).
    gaps = np.abs(np.diff(ref_values))
    separated = [
        i
        for i in range(len(ref_values))
        if min(gaps[i - 1] if i > 0 else np.inf, gaps[i] if i < len(gaps) else np.inf) > 1e-3 * ref_values[0]
    ]
    assert len(separated) >= 4
    for i in separated:
        cos = np.dot(vectors[i].numpy().astype(np.float64), ref_vectors[i]) / np.linalg.norm(ref_vectors[i])
        assert abs(cos) > 0.9999, (i, cos)


def tiny_stylegan2() -> StyleGAN2Generator:
    torch.manual_seed(0)
    return StyleGAN2Generator(
        z_dim=16, w_dim=16, img_resolution=16, channel_base=256, channel_max=16, mapping_layers=2
    ).eval()


# ---------------------------------------------------------------------------------------------- (a)
def test_known_eigenvectors_sorted_by_squared_singular_values():
    latent_dim = 6
    s = torch.tensor([0.5, 3.0, 1.0, 2.0, 4.0, 1.5], dtype=torch.float64)
    v = random_orthonormal(latent_dim, latent_dim, seed=1)
    u = random_orthonormal(10, latent_dim, seed=2)
    a = u @ torch.diag(s) @ v.T  # [10, 6], AᵀA = V diag(s²) Vᵀ
    # Split into two "layers": stacking them must give the same matrix.
    vectors, values = sefa_factorize([a[:4].float(), a[4:].float()], normalize=False)
    order = torch.argsort(s, descending=True)
    assert torch.allclose(values.double(), s[order] ** 2, rtol=1e-5)
    expected = v[:, order].T  # columns of V, sorted, one per row
    cos = (vectors.double() * expected).sum(dim=1)
    assert torch.allclose(cos.abs(), torch.ones(latent_dim, dtype=torch.float64), atol=1e-5)
    assert vectors.shape == (6, 6) and vectors.dtype == torch.float32 and values.dtype == torch.float32


def test_num_directions_keeps_the_top_ones():
    a = torch.randn(20, 8, generator=torch.Generator().manual_seed(3))
    all_vectors, all_values = sefa_factorize([a])
    vectors, values = sefa_factorize([a], num_directions=3)
    assert vectors.shape == (3, 8) and values.shape == (3,)
    assert torch.equal(vectors, all_vectors[:3]) and torch.equal(values, all_values[:3])
    assert torch.equal(sefa_factorize([a], num_directions=np.int64(3))[0], vectors)


def test_normalize_scales_rows_not_columns():
    a = torch.randn(12, 5, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    row_scales = torch.rand(12, 1, generator=torch.Generator().manual_seed(5), dtype=torch.float64) * 10 + 0.1
    ref = sefa_factorize([a])
    scaled = sefa_factorize([a * row_scales])
    assert torch.allclose(ref[0], scaled[0], atol=1e-5) and torch.allclose(ref[1], scaled[1], atol=1e-5)
    # With unit rows, the eigenvalues sum to the number of rows (trace of AᵀA).
    assert torch.isclose(ref[1].sum(), torch.tensor(12.0), atol=1e-4)
    # Without normalisation, the row scales matter.
    assert not torch.allclose(sefa_factorize([a], normalize=False)[1], sefa_factorize([a * row_scales], False)[1])


# ---------------------------------------------------------------------------------------------- (b)
def test_stylegan2_matches_official_formula():
    g = tiny_stylegan2()
    sd = g.state_dict()
    # Independently of `latent_weights`: the raw style weights by their NVIDIA names, in W+ order.
    names = ["synthesis.b4.conv1"]
    for res in g.synthesis.block_resolutions[1:]:
        names += [f"synthesis.b{res}.conv0", f"synthesis.b{res}.conv1"]
    names.append(f"synthesis.b{g.config.img_resolution}.torgb")
    assert len(names) == g.num_ws
    official = official_factorize([sd[f"{n}.affine.weight"].numpy().T for n in names])
    ours = sefa_factorize(g.latent_weights(range(g.num_ws)))
    assert_matches_official(ours, official)
    # A subset of layers, too.
    official = official_factorize([sd[f"{n}.affine.weight"].numpy().T for n in names[1:3]])
    assert_matches_official(sefa_factorize(g.latent_weights([1, 2])), official)


def test_pggan_matches_official_formula():
    torch.manual_seed(0)
    g = PGGANGenerator(z_dim=8, img_resolution=8, channel_base=64, channel_max=16).eval()
    # The official code: the raw first-layer conv weight [C, z_dim, 4, 4], flipped, permuted, flattened.
    weight = g.state_dict()["layer0.weight"]
    official = official_factorize([weight.flip(2, 3).permute(1, 0, 2, 3).flatten(1).numpy()])
    assert official[0].shape == (8, 8)
    ours = sefa_factorize(g.latent_weights([0]))
    assert_matches_official(ours, official)


# ---------------------------------------------------------------------------------------------- (c)
def test_sign_is_deterministic_and_vectors_are_orthonormal():
    gen = torch.Generator().manual_seed(6)
    weights = [torch.randn(7, 9, generator=gen), torch.randn(11, 9, generator=gen)]
    vectors, values = sefa_factorize(weights)
    assert torch.allclose(vectors.norm(dim=1), torch.ones(9), atol=1e-6)
    assert torch.allclose(vectors @ vectors.T, torch.eye(9), atol=1e-5)
    assert torch.all(values[:-1] >= values[1:]) and torch.all(values >= 0)
    pivot = vectors.abs().argmax(dim=1)
    assert torch.all(vectors[torch.arange(9), pivot] > 0)
    # Same answer again, for negated weights, for float64 input and for another layer order.
    for other in (weights, [-w for w in weights], [w.double() for w in weights], weights[::-1]):
        v2, e2 = sefa_factorize(other)
        assert torch.allclose(v2, vectors, atol=1e-5) and torch.allclose(e2, values, atol=1e-5)
    assert torch.equal(sefa_factorize(weights)[0], vectors)


def test_sign_tie_goes_to_the_first_entry():
    rows = torch.tensor([[-0.5, 0.5, 0.0], [0.5, -0.5, 0.0], [0.0, -0.6, 0.6], [-0.0, 0.0, -1.0]])
    fixed = _fix_signs(rows)
    expected = torch.tensor([[0.5, -0.5, 0.0], [0.5, -0.5, 0.0], [0.0, 0.6, -0.6], [0.0, 0.0, 1.0]])
    assert torch.equal(fixed, expected)
    assert not torch.signbit(fixed[fixed == 0]).any()  # no -0.0
    # Through eigh: the top eigenvector of this Gram matrix is ±(1, -1, 0)/√2.
    a = torch.tensor([[1.0, -1.0, 0.0], [0.0, 0.0, 0.5]])
    vectors, _ = sefa_factorize([a], normalize=False, num_directions=1)
    assert torch.allclose(vectors[0].abs(), torch.tensor([1.0, 1.0, 0.0]) / 2**0.5, atol=1e-6)
    assert vectors[0, vectors[0].abs().argmax()] > 0


def test_zero_rows_are_ignored_when_normalizing():
    a = torch.randn(6, 4, generator=torch.Generator().manual_seed(7))
    with_zero = torch.cat([a, torch.zeros(2, 4)])
    v1, e1 = sefa_factorize([a])
    v2, e2 = sefa_factorize([with_zero])
    assert torch.allclose(v1, v2, atol=1e-5) and torch.allclose(e1, e2, atol=1e-5)


# ---------------------------------------------------------------------------------------------- (d)
@pytest.mark.parametrize("num_directions", [0, -1, 9, True, 2.5, "3"])
def test_bad_num_directions(num_directions):
    with pytest.raises(ValueError, match=r"`num_directions`.*\[1, 8\]"):
        sefa_factorize([torch.randn(4, 8)], num_directions=num_directions)


@pytest.mark.parametrize(
    "weights,match",
    [
        ([], "`weights` must be a non-empty list"),
        (torch.randn(4, 8), "`weights` must be a non-empty list"),
        ([torch.randn(8)], r"`weights\[0\]` must be a 2-D tensor"),
        ([torch.randn(4, 8), torch.randn(4, 7)], "latent dimension"),
        ([torch.tensor([[1.0, float("nan")]])], "NaN"),
        ([torch.tensor([[1.0, float("inf")], [1.0, 2.0]])], "infinite"),
        ([np.ones((2, 2))], r"`weights\[0\]` must be a 2-D tensor"),
    ],
)
def test_bad_weights(weights, match):
    with pytest.raises(ValueError, match=match):
        sefa_factorize(weights)


def test_bad_normalize():
    with pytest.raises(ValueError, match="`normalize`"):
        sefa_factorize([torch.randn(4, 3)], normalize="yes")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------- split core
def test_gram_of_layers_is_the_sum_of_their_grams_and_eigh_of_it_is_factorize():
    gen = torch.Generator().manual_seed(4)
    layers = [torch.randn(n, 12, generator=gen) for n in (5, 9, 3)]
    for normalize in (True, False):
        total = sum(sefa_gram([w], normalize=normalize) for w in layers)
        assert torch.allclose(total, sefa_gram(layers, normalize=normalize), rtol=1e-5, atol=1e-5)
        vectors, values = sefa_eigh(total, num_directions=4)
        ref_vectors, ref_values = sefa_factorize(layers, normalize=normalize, num_directions=4)
        assert torch.allclose(values, ref_values, rtol=1e-5)
        assert torch.allclose(vectors, ref_vectors, atol=1e-4)


def test_top_few_directions_agree_with_the_full_decomposition():
    # num_directions ≤ latent_dim / 8 takes the partial solver (LAPACK syevr on an index range).
    a = torch.randn(300, 128, generator=torch.Generator().manual_seed(5)) * torch.linspace(0.2, 3.0, 128)
    gram = sefa_gram([a])
    all_vectors, all_values = sefa_eigh(gram)
    vectors, values = sefa_eigh(gram, num_directions=16)
    assert vectors.shape == (16, 128) and vectors.dtype == values.dtype == torch.float32
    assert torch.allclose(values, all_values[:16], rtol=1e-5)
    assert torch.allclose(vectors, all_vectors[:16], atol=1e-4)  # same sign convention, same lines


@pytest.mark.parametrize(
    "gram,match",
    [
        (torch.ones(3, 4), "square"),
        (torch.ones(3), "square"),
        ("gram", "square"),
        (torch.full((2, 2), float("nan")), "NaN"),
    ],
)
def test_bad_gram(gram, match):
    with pytest.raises(ValueError, match=match):
        sefa_eigh(gram)
