"""BigGANGenerator: shapes, the condition-vector latent, truncation, SeFa, class labels, I/O, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from factories import TINY_BIGGAN as TINY
from factories import tiny_biggan

from sefa_plugin.models.biggan import BigGANGenerator, truncation_statistics
from sefa_plugin.models.interface import EditableGenerator
from sefa_plugin.pipelines.sefa import SefaPipeline

# Measured with pytorch-pretrained-BigGAN's own `BigGAN` (commit 1e18aed, spectral norm removed with
# `torch.nn.utils.remove_spectral_norm` and every tensor of `tiny_biggan(0).state_dict()` copied into it):
# `model(t * z, c, t)` for z = tiny_biggan(0).z_from_seeds([0, 1]), c = one-hot classes [3, 1].
# Slices img[0, 0, 0, :4] and img[1, 2, -1, -4:].
EXPECTED = {
    1.0: ([-0.20397414, -0.15041287, -0.15692173, -0.14888808], [0.57956403, 0.52875209, 0.52880192, 0.54391181]),
    0.4: ([-0.17246534, -0.14945704, -0.15211129, -0.14748831], [0.57024521, 0.54313076, 0.54146141, 0.54970711]),
}


def public_config(model: BigGANGenerator) -> dict:
    return {k: v for k, v in model.config.items() if not k.startswith("_")}


def one_hot(labels: list[int], num_classes: int = 5) -> torch.Tensor:
    return torch.eye(num_classes)[labels]


def test_shapes_layout_and_interface():
    g = tiny_biggan()
    assert isinstance(g, EditableGenerator) and g.latent_space == "z"
    assert g.num_ws == 1 and g.latent_dim == 16 and g.layer_resolutions() == [4]
    assert g.config.c_dim == 5 and g.config.img_resolution == 16 and g.config.truncation == 1.0
    shapes = {k: tuple(v.shape) for k, v in g.state_dict().items()}
    # pytorch-pretrained-BigGAN's keys; attention is layers.2, so the third block is layers.3.
    assert shapes["embeddings.weight"] == (8, 5)
    assert shapes["generator.gen_z.weight"] == (16 * 4 * 16, 16) and shapes["generator.gen_z.bias"] == (1024,)
    assert shapes["generator.layers.0.bn_0.scale.weight"] == (64, 16)
    assert shapes["generator.layers.0.bn_0.running_means"] == (11, 64)
    assert shapes["generator.layers.1.conv_3.weight"] == (32, 16, 1, 1)
    assert shapes["generator.layers.2.snconv1x1_g.weight"] == (16, 32, 1, 1) and shapes["generator.layers.2.gamma"] == (
        1,
    )
    assert shapes["generator.layers.3.conv_1.weight"] == (8, 8, 3, 3)
    assert shapes["generator.conv_to_rgb.weight"] == (4, 4, 3, 3) and shapes["generator.bn.running_vars"] == (11, 4)
    z = g.z_from_seeds([0, 1, 2])
    with torch.no_grad():
        img = g(z, one_hot([0, 1, 4]))
    assert img.shape == (3, 3, 16, 16) and img.dtype == torch.float32 and img.abs().max() <= 1


@pytest.mark.parametrize("truncation", [1.0, 0.4])
def test_matches_official_slice(truncation):
    g = tiny_biggan()
    g.set_truncation(truncation)
    with torch.no_grad():
        img = g(g.z_from_seeds([0, 1]), one_hot([3, 1]))
    first, last = EXPECTED[truncation]
    assert torch.allclose(img[0, 0, 0, :4], torch.tensor(first), atol=1e-5)
    assert torch.allclose(img[1, 2, -1, -4:], torch.tensor(last), atol=1e-5)


def test_latents_are_the_condition_vector():
    g = tiny_biggan(truncation=0.5)
    z, c = g.z_from_seeds([3, 4]), one_hot([2, 0])
    lat = g.sample_latents(z, c, truncation_psi=0.8)
    assert lat.shape == (2, 1, 16)
    assert torch.allclose(lat[:, 0, :8], 0.5 * 0.8 * z)
    assert torch.equal(lat[:, 0, 8:], g.embeddings.weight.detach()[:, [2, 0]].T)
    assert torch.equal(g.sample_latents(z, c, truncation_psi=0.8), lat)  # deterministic given z
    with torch.no_grad():
        assert torch.equal(g.synthesize(g.sample_latents(z, c)), g(z, c))
        # truncation_psi only scales z: the batch-norm statistics stay those of config.truncation.
        assert torch.equal(g(z, c, truncation_psi=0.8), g(0.8 * z, c))
        # An explicit synthesis truncation picks other statistics.
        assert not torch.allclose(g.synthesize(lat, truncation=1.0), g.synthesize(lat))
        for mode in ("const", "random", "none"):
            assert torch.equal(g.synthesize(lat, noise_mode=mode), g.synthesize(lat))


def test_truncation_statistics_follow_their_rounding():
    running = torch.arange(51, dtype=torch.float32)[:, None].repeat(1, 2)  # statistic k stores the value k
    assert torch.equal(truncation_statistics(running, 0.5), torch.tensor([25.0, 25.0]))  # 0.5 / 0.02 == 25
    assert torch.equal(truncation_statistics(running, 1.0), torch.tensor([50.0, 50.0]))
    assert torch.equal(truncation_statistics(running, 0.4), torch.tensor([20.0, 20.0]))
    # 0.14 / 0.02 == 7.000000000000001: statistic 8 gets weight 1 - 1e-15; 0.58 / 0.02 == 28.999999999999996.
    assert torch.allclose(truncation_statistics(running, 0.14), torch.tensor([8.0, 8.0]))
    assert torch.allclose(truncation_statistics(running, 0.58), torch.tensor([28.0, 28.0]))
    # Between grid points the two weights are swapped with respect to linear interpolation.
    assert torch.allclose(truncation_statistics(running, 0.405), torch.tensor([20.75, 20.75]))


def test_seeds_and_random_codes_are_truncated_and_deterministic():
    g = tiny_biggan(z_dim=64, class_embed_dim=64)
    z = g.z_from_seeds([0, 1, 7])
    assert z.shape == (3, 64) and z.dtype == torch.float32 and z.abs().max() <= 2
    assert torch.equal(z, g.z_from_seeds([0, 1, 7]))
    # Values inside [-2, 2] are the NumPy normal stream; only outliers are redrawn.
    raw = torch.from_numpy(np.random.RandomState(0).randn(64).astype(np.float32))
    inside = raw.abs() <= 2
    assert torch.equal(z[0][inside], raw[inside]) and not torch.equal(z[0], raw)
    a = g.randn_z(50, generator=torch.Generator().manual_seed(0))
    b = g.randn_z(50, generator=torch.Generator().manual_seed(0))
    assert a.shape == (50, 64) and torch.equal(a, b) and a.abs().max() <= 2
    assert g.z_from_seeds([]).shape == (0, 64)
    for bad in (-1, 2**32, 1.5, True):
        with pytest.raises(ValueError, match="`seeds`"):
            g.z_from_seeds([bad])


def test_latent_weights_stack_every_projection_with_zero_class_columns():
    g = tiny_biggan()
    (w,) = g.latent_weights([0])
    blocks = g.generator.blocks()
    rows = 1024 + 2 * sum(bn.running_means.shape[1] for b in blocks for bn in b.batch_norms())
    assert w.shape == (rows, 16) and not w.requires_grad
    assert torch.equal(w[:1024, :8], g.generator.gen_z.weight.detach()[:, :8])
    assert torch.equal(w[1024:1088, :8], blocks[0].bn_0.scale.weight.detach()[:, :8])
    assert torch.equal(w[:, 8:], torch.zeros(rows, 8))
    assert w.data_ptr() != g.generator.gen_z.weight.data_ptr()  # a copy: zeroing did not touch the model
    assert g.generator.gen_z.weight[:, 8:].abs().sum() > 0


def test_factorize_keeps_the_class():
    g = tiny_biggan()
    pipe = SefaPipeline(generator=g)
    directions = pipe.factorize(num_directions=8)
    assert directions.vectors.shape == (8, 16) and directions.latent_space == "z"
    assert torch.equal(directions.vectors[:, 8:], torch.zeros(8, 8))
    assert torch.all(directions.values > 0)
    # By default SeFa returns the z_dim editable directions; asking for all latent_dim coordinates adds the
    # class-embedding ones last, with eigenvalue 0.
    assert g.editable_latent_dim == 8 and len(pipe.factorize()) == 8
    everything = pipe.factorize(num_directions=16)
    assert torch.equal(everything.values[8:], torch.zeros(8))
    assert torch.equal(everything.vectors[:8, 8:], torch.zeros(8, 8))
    out = pipe(seeds=[0], class_label=3, directions=directions, index=0, strengths=[-3, 0, 3], output_type="pt")
    assert out.images.shape == (3, 3, 16, 16)
    assert torch.equal(out.latents[0, 0, 8:], out.latents[2, 0, 8:])  # the class embedding did not move
    assert not torch.allclose(out.images[0], out.images[2])


def test_pipeline_class_label():
    g = tiny_biggan()
    pipe = SefaPipeline(generator=g)
    out = pipe(seeds=[0], class_label=3, output_type="pt")
    with torch.no_grad():
        expected = g(g.z_from_seeds([0]), one_hot([3]))
    assert torch.equal(out.images, expected)
    other = pipe(seeds=[0], class_label=1, output_type="pt")
    assert not torch.allclose(out.images, other.images)
    for bad in (None, 5, -1):
        with pytest.raises(ValueError, match="`class_label`"):
            pipe(seeds=[0], class_label=bad)


def test_save_and_load_round_trip(tmp_path):
    g = tiny_biggan(truncation=0.4)
    g.save_pretrained(tmp_path / "biggan")
    loaded = BigGANGenerator.from_pretrained(tmp_path / "biggan")
    assert public_config(loaded) == public_config(g)
    assert loaded.config.layers == TINY["layers"] and loaded.config.truncation == 0.4
    z, c = g.z_from_seeds([0, 1]), one_hot([0, 4])
    with torch.no_grad():
        assert torch.equal(loaded(z, c), g(z, c))
    other = BigGANGenerator.from_pretrained(tmp_path / "biggan", truncation=1.0)
    assert other.config.truncation == 1.0


def test_bad_arguments():
    cases = [
        ({"output_dim": 32}, "`output_dim`"),
        ({"z_dim": 0}, "`z_dim`"),
        ({"channel_width": 2}, "`channel_width`"),
        ({"num_classes": 0}, "`num_classes`"),
        ({"n_stats": 1}, "`n_stats`"),
        ({"eps": 0.0}, "`eps`"),
        ({"truncation": 0.0}, "`truncation`"),
        ({"truncation": 1.5}, "`truncation`"),
        ({"c_dim": 4}, "`c_dim`"),
        ({"img_resolution": 32}, "`img_resolution`"),
        ({"layers": []}, "`layers`"),
        ({"layers": [[True, 8, 8], [False, 8, 1]]}, r"`layers\[0\]`"),
        ({"layers": [[True, 16, 4], [False, 4, 1]]}, r"`layers\[0\]`"),
        ({"layers": [[True, 16, 8], [True, 8, 4]]}, "`layers`"),
        ({"layers": [[1, 16, 8], [False, 8, 1]]}, r"`layers\[0\]`"),
        ({"attention_layer_position": 5}, "`attention_layer_position`"),
        ({"channel_width": 3, "attention_layer_position": 4}, "`attention_layer_position`"),  # 6 channels
    ]
    for kwargs, match in cases:
        with pytest.raises(ValueError, match=match):
            BigGANGenerator(**{**TINY, **kwargs})
    g = tiny_biggan()
    z, c = torch.randn(2, 8), one_hot([0, 1])
    with pytest.raises(ValueError, match="`c`"):
        g.sample_latents(z)
    with pytest.raises(ValueError, match="`c`"):
        g.sample_latents(z, torch.zeros(2, 4))
    with pytest.raises(ValueError, match="`z`"):
        g.sample_latents(torch.randn(2, 9), c)
    for psi in (-0.5, float("nan"), True):
        with pytest.raises(ValueError, match="`truncation_psi`"):
            g.sample_latents(z, c, truncation_psi=psi)
    with pytest.raises(ValueError, match="`latents`"):
        g.synthesize(torch.randn(2, 2, 16))
    with pytest.raises(ValueError, match="`noise_mode`"):
        g.synthesize(torch.randn(2, 1, 16), noise_mode="fixed")
    with pytest.raises(ValueError, match="`truncation`"):
        g.synthesize(torch.randn(2, 1, 16), truncation=0)
    with pytest.raises(ValueError, match="`truncation`"):
        g.set_truncation(2.0)
    with pytest.raises(ValueError, match="`layers`"):
        g.latent_weights([1])
