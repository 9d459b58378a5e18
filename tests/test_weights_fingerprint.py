"""weights_sha256: cached per weights, recomputed on every tracked change, same digest as the uncached hash."""

from __future__ import annotations

import copy
import hashlib

import pytest
import torch
from factories import tiny_stylegan2

from sefa_plugin import SefaPipeline
from sefa_plugin.hub import forget_weights_sha256, weights_sha256
from sefa_plugin.utils.tensor_state import TensorsSnapshot

SHA256 = hashlib.sha256  # kept before any test replaces it with a counting wrapper


def reference_sha256(module: torch.nn.Module) -> str:
    """The fingerprint's definition, written out without any cache (names, shapes, dtypes, bytes; sorted)."""
    h = SHA256()
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}|{list(t.shape)}|{t.dtype}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


class CountingSha256:
    """Stands in for `hashlib.sha256` inside sefa_plugin.hub and counts the hashes started."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, *args):
        self.calls += 1
        return SHA256(*args)


@pytest.fixture
def counter(monkeypatch) -> CountingSha256:
    counting = CountingSha256()
    monkeypatch.setattr("sefa_plugin.hub.hashlib.sha256", counting)
    return counting


def test_fingerprint_is_cached_and_matches_the_definition(counter):
    g = tiny_stylegan2(0)
    first = weights_sha256(g)
    assert first == reference_sha256(g)
    assert weights_sha256(g) == first and counter.calls == 1  # the second call hashed nothing
    assert weights_sha256(tiny_stylegan2(1)) != first


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda g: g.synthesis.b4.conv1.affine.weight.add_(1e-3), id="in-place add_"),
        pytest.param(lambda g: g.mapping.w_avg.copy_(torch.randn_like(g.mapping.w_avg)), id="buffer copy_"),
        pytest.param(lambda g: g.synthesis.b8.torgb.weight[0, 0, 0, 0].mul_(2), id="write through a view"),
        pytest.param(lambda g: g.load_state_dict(tiny_stylegan2(5).state_dict()), id="load_state_dict"),
        pytest.param(lambda g: g.half().float(), id="half then float"),
        pytest.param(
            lambda g: setattr(g.synthesis.b4.conv1, "bias", torch.nn.Parameter(g.synthesis.b4.conv1.bias + 1)),
            id="replaced parameter",
        ),
    ],
)
def test_any_tracked_change_gives_the_fingerprint_of_the_new_weights(change, counter):
    g = tiny_stylegan2(0)
    before = weights_sha256(g)
    with torch.no_grad():
        change(g)
    after = weights_sha256(g)
    assert after != before
    assert after == reference_sha256(g)
    assert counter.calls == 2


def test_undoing_a_change_gives_back_the_first_fingerprint():
    g = tiny_stylegan2(0)
    before = weights_sha256(g)
    w = g.synthesis.b4.conv1.affine.weight
    with torch.no_grad():
        w.add_(1.0)
        changed = weights_sha256(g)
        w.sub_(1.0)
    assert changed != before
    assert weights_sha256(g) == reference_sha256(g)


def test_writes_through_data_are_not_seen_until_forgotten():
    g = tiny_stylegan2(0)
    before = weights_sha256(g)
    g.synthesis.b4.conv1.affine.weight.data.add_(1.0)  # bypasses the version counter (documented limit)
    assert weights_sha256(g) == before
    forget_weights_sha256(g)
    assert weights_sha256(g) == reference_sha256(g) != before


def test_inference_tensors_are_hashed_every_time(counter):
    with torch.inference_mode():
        g = tiny_stylegan2(0)
        assert TensorsSnapshot.of(g.state_dict(keep_vars=True)) is None
        assert weights_sha256(g) == weights_sha256(g) == reference_sha256(g)
    assert counter.calls == 2


def test_copies_have_their_own_entry():
    g = tiny_stylegan2(0)
    digest = weights_sha256(g)
    twin = copy.deepcopy(g)
    assert weights_sha256(twin) == digest
    with torch.no_grad():
        twin.synthesis.b4.conv1.weight.neg_()
    assert weights_sha256(twin) != digest and weights_sha256(g) == digest


def test_from_pretrained_fingerprints_once_at_load(tmp_path, counter):
    SefaPipeline(generator=tiny_stylegan2(0)).save_pretrained(tmp_path / "pipe")
    pipe = SefaPipeline.from_pretrained(tmp_path / "pipe")
    loaded = counter.calls
    assert loaded >= 1
    d = pipe.factorize(num_directions=2)
    assert d.base_model["weights_sha256"] == reference_sha256(pipe.generator)
    assert counter.calls == loaded  # factorize reused the fingerprint taken at load
