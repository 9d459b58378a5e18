"""Latent discovery core: direction matrix kinds, shift math, shift sampling, loss, errors."""

from __future__ import annotations

import pytest
import torch

from sefa_plugin import StyleGAN2Generator
from sefa_plugin.directions.latent_discovery import (
    DIRECTION_KINDS,
    DirectionMatrix,
    apply_shift,
    discovery_loss,
    sample_shifts,
)
from sefa_plugin.training.latent_discovery import LatentDiscoveryConfig, LatentDiscoveryTrainer


def tiny_stylegan2(seed: int = 0) -> StyleGAN2Generator:
    torch.manual_seed(seed)
    g = StyleGAN2Generator(z_dim=16, w_dim=16, img_resolution=16, channel_base=256, channel_max=16, mapping_layers=2)
    return g.eval()


def test_ortho_is_orthonormal_and_trainable():
    m = DirectionMatrix(latent_dim=12, num_directions=5, kind="ortho", seed=1)
    with torch.no_grad():
        m.log_half.normal_()  # far from the identity: still orthonormal
    d = m.directions()
    assert d.shape == (5, 12)
    assert torch.allclose(d @ d.T, torch.eye(5), atol=1e-5)
    assert m.trainable and sum(p.numel() for p in m.parameters()) == 144
    # Gradients reach the skew-symmetric generator.
    d.sum().backward()
    assert m.log_half.grad is not None and m.log_half.grad.abs().sum() > 0


def test_ortho_matches_the_exponential_of_a_skew_matrix():
    m = DirectionMatrix(latent_dim=6, num_directions=6, kind="ortho", seed=3)
    s = m.log_half.detach().double()
    expected = torch.linalg.matrix_exp(s - s.T).float()
    assert torch.allclose(m.matrix(), expected, atol=1e-6)


def test_proj_has_unit_columns_and_linear_is_free():
    proj = DirectionMatrix(latent_dim=8, num_directions=3, kind="proj")
    lin = DirectionMatrix(latent_dim=8, num_directions=3, kind="linear")
    with torch.no_grad():
        proj.weight.mul_(torch.tensor([2.0, 5.0, 0.5]))
        lin.weight.mul_(torch.tensor([2.0, 5.0, 0.5]))
    assert torch.allclose(proj.matrix().norm(dim=0), torch.ones(3), atol=1e-6)
    assert torch.allclose(lin.matrix().norm(dim=0), torch.tensor([2.0, 5.0, 0.5]))
    # Both start from the first axes, as the official code.
    assert torch.equal(DirectionMatrix(8, 3, kind="linear").directions(), torch.eye(8)[:3])


@pytest.mark.parametrize("kind", ["random", "coordinate"])
def test_fixed_kinds_have_no_parameters(kind):
    m = DirectionMatrix(latent_dim=10, num_directions=4, kind=kind, seed=7)
    assert not m.trainable and list(m.parameters()) == []
    d = m.directions()
    assert torch.allclose(d @ d.T, torch.eye(4), atol=1e-5)
    # Fixed: the same seed gives the same basis; the basis is saved in the state dict.
    assert torch.equal(DirectionMatrix(10, 4, kind=kind, seed=7).directions(), d)
    assert "basis" in m.state_dict()


def test_coordinate_is_the_first_axes_and_random_depends_on_seed():
    assert torch.equal(DirectionMatrix(5, 2, kind="coordinate").directions(), torch.eye(5)[:2])
    a = DirectionMatrix(16, 4, kind="random", seed=0).directions()
    b = DirectionMatrix(16, 4, kind="random", seed=1).directions()
    assert not torch.allclose(a, b)


def test_fixed_vectors():
    v = torch.randn(20, 4)  # more directions than dimensions is fine for fixed vectors
    m = DirectionMatrix(4, 0, kind="fixed", vectors=v)
    assert m.num_directions == 20 and torch.equal(m.directions(), v)
    with pytest.raises(ValueError, match="`vectors`"):
        DirectionMatrix(5, 1, kind="fixed", vectors=v)


def test_shift_math():
    m = DirectionMatrix(latent_dim=4, num_directions=3, kind="coordinate")
    latents = torch.arange(2 * 3 * 4, dtype=torch.float32).reshape(2, 3, 4)  # [N, num_ws, D]
    index, eps = torch.tensor([2, 0]), torch.tensor([1.5, -2.0])
    out = m.shift(latents, index, eps, layers=[0, 2])
    expected = latents.clone()
    expected[0, [0, 2], 2] += 1.5
    expected[1, [0, 2], 0] -= 2.0
    assert torch.equal(out, expected)
    # Default: every layer moves by the same shift.
    every = m.shift(latents, index, eps) - latents
    assert all(torch.equal(every[:, i], out[:, 0] - latents[:, 0]) for i in range(3))
    # Shifts are differentiable.
    shifts = torch.zeros(2, 4, requires_grad=True)
    apply_shift(latents, shifts).sum().backward()
    assert torch.equal(shifts.grad, torch.full((2, 4), 3.0))
    with pytest.raises(ValueError, match="`layers`"):
        apply_shift(latents, shifts, layers=[3])
    with pytest.raises(ValueError, match="`shifts`"):
        apply_shift(latents, torch.zeros(2, 5))


def test_shift_sampling_respects_the_range_and_is_uniform():
    index, eps = sample_shifts(40_000, 7, generator=torch.Generator().manual_seed(0))
    assert index.dtype == torch.long and set(index.tolist()) == set(range(7))
    counts = torch.bincount(index, minlength=7).float() / 40_000
    assert torch.allclose(counts, torch.full((7,), 1 / 7), atol=0.01)
    assert bool((eps.abs() >= 0.5).all()) and bool((eps.abs() <= 6.0).all())
    assert abs(float((eps > 0).float().mean()) - 0.5) < 0.01
    # |ε| uniform on [0.5, 6]: no point mass at ±0.5 (unlike clamping), mean 3.25.
    assert float((eps.abs() < 0.51).float().mean()) < 0.005
    assert abs(float(eps.abs().mean()) - 3.25) < 0.05
    # Seeded.
    again = sample_shifts(40_000, 7, generator=torch.Generator().manual_seed(0))
    assert torch.equal(again[0], index) and torch.equal(again[1], eps)


def test_shift_sampling_errors():
    with pytest.raises(ValueError, match="`min_shift`"):
        sample_shifts(4, 2, shift_scale=1.0, min_shift=2.0)
    with pytest.raises(ValueError, match="`shift_scale`"):
        sample_shifts(4, 2, shift_scale=float("inf"))
    with pytest.raises(ValueError, match="`batch_size`"):
        sample_shifts(0, 2)


def test_loss_is_cross_entropy_plus_weighted_l1():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    index = torch.tensor([0, 0])
    pred, eps = torch.tensor([1.0, -1.0]), torch.tensor([2.0, 1.0])
    loss, ce, l1 = discovery_loss(logits, pred, index, eps, reg_weight=0.25)
    assert torch.isclose(ce, torch.nn.functional.cross_entropy(logits, index))
    assert torch.isclose(l1, torch.tensor(1.5))
    assert torch.isclose(loss, ce + 0.25 * 1.5)


@pytest.mark.parametrize("k", [0, 17, -1, 2.5, True])
def test_num_directions_errors(k):
    with pytest.raises(ValueError, match=r"`num_directions`.*16"):
        DirectionMatrix(latent_dim=16, num_directions=k)
    with pytest.raises(ValueError, match="`num_directions`"):
        LatentDiscoveryTrainer(tiny_stylegan2(), LatentDiscoveryConfig(num_directions=k))


def test_unknown_kind_lists_the_kinds():
    with pytest.raises(ValueError, match=r"`kind`.*'ortho'.*'coordinate'"):
        DirectionMatrix(latent_dim=4, num_directions=2, kind="fc")
    with pytest.raises(ValueError, match="`kind`"):
        LatentDiscoveryTrainer(tiny_stylegan2(), LatentDiscoveryConfig(num_directions=2, kind="orthogonal"))
    assert DIRECTION_KINDS == ("ortho", "linear", "proj", "random", "coordinate")


@pytest.mark.parametrize("kind", ["ortho", "linear", "proj", "random", "coordinate"])
def test_editable_dim_keeps_the_rest_of_the_latent_fixed(kind):
    m = DirectionMatrix(latent_dim=10, num_directions=3, kind=kind, editable_dim=6)
    d = m.directions()
    assert d.shape == (3, 10) and torch.equal(d[:, 6:], torch.zeros(3, 4))
    assert torch.allclose(d.norm(dim=1), torch.ones(3), atol=1e-5)
    with pytest.raises(ValueError, match="num_directions"):
        DirectionMatrix(latent_dim=10, num_directions=7, kind=kind, editable_dim=6)
    with pytest.raises(ValueError, match="editable_dim"):
        DirectionMatrix(latent_dim=10, num_directions=3, kind=kind, editable_dim=11)
