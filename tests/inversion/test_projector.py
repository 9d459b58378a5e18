"""project(): recovers a sample's latent, the loss falls, every family, determinism, settings errors."""

from __future__ import annotations

import math

import pytest
import torch
from factories import tiny_biggan, tiny_stylegan2, tiny_stylegan3

from sefa_plugin.hub import weights_sha256
from sefa_plugin.inversion import ProjectorSettings, applied_noise, project
from sefa_plugin.inversion.noise import noise_regularization
from sefa_plugin.models import DCGANGenerator, PGGANGenerator, StyleGANGenerator


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    mse = ((a.clamp(-1, 1) - b.clamp(-1, 1)) / 2).square().mean(dim=(1, 2, 3))
    return -10 * torch.log10(mse)


def samples(g, seeds, c=None):
    with torch.no_grad():
        lat = g.sample_latents(g.z_from_seeds(seeds), c=c)
        return lat, g.synthesize(lat)


def quick(**kw):
    return ProjectorSettings(**{"num_steps": 60, "mean_samples": 500, **kw})


def test_a_samples_latent_is_recovered():
    g = tiny_stylegan2(trained_like=True)
    true, targets = samples(g, [1, 2])
    # In W the sample's own latent is the unique optimum: it is found.
    proj = project(g, targets, quick(num_steps=200, space="w", latent_noise=0.0), rng=torch.Generator().manual_seed(0))
    assert ((proj.latents - true).norm(dim=(1, 2)) < 0.01 * true.norm(dim=(1, 2))).all()
    assert (psnr(proj.images, targets) > 50).all(), psnr(proj.images, targets)
    # W+ (the default) has more freedom, and reaches a close reconstruction too.
    proj = project(g, targets, quick(num_steps=400, latent_noise=0.0), rng=torch.Generator().manual_seed(0))
    assert proj.latents.shape == (2, g.num_ws, g.latent_dim)
    assert (psnr(proj.images, targets) > 30).all(), psnr(proj.images, targets)
    # The reconstruction is what the latents render (the generator's own noise: maps are not optimised by default).
    assert proj.noise == {}
    with torch.no_grad():
        torch.testing.assert_close(g.synthesize(proj.latents), proj.images)


def test_loss_falls_and_generator_is_untouched():
    g = tiny_stylegan2(trained_like=True)
    before = weights_sha256(g)
    _, targets = samples(g, [3])
    proj = project(g, targets, quick(), rng=torch.Generator().manual_seed(0))
    assert proj.losses.shape == (1, 60)
    assert proj.losses[0, -5:].mean() < 0.2 * proj.losses[0, :5].mean()
    assert weights_sha256(g) == before  # buffers restored, nothing trained
    assert all(p.requires_grad for p in g.parameters())


def test_noise_maps_are_per_image_normalised_and_regularised():
    g = tiny_stylegan2(trained_like=True)
    _, targets = samples(g, [4, 5])
    proj = project(g, targets, quick(optimize_noise=True), rng=torch.Generator().manual_seed(0))
    assert sorted(proj.noise) == sorted(g.noise_buffers())
    for name, t in proj.noise.items():
        r = dict(g.named_buffers())[name].shape[-1]
        assert t.shape == (2, 1, r, r)
        torch.testing.assert_close(t.mean(dim=(1, 2, 3)), torch.zeros(2), atol=1e-5, rtol=0)
        torch.testing.assert_close(t.square().mean(dim=(1, 2, 3)), torch.ones(2), atol=1e-4, rtol=0)
    assert not torch.equal(proj.noise[name][0], proj.noise[name][1])
    assert noise_regularization(proj.noise).shape == (2,)
    with torch.no_grad(), applied_noise(g, proj.noise):
        torch.testing.assert_close(g.synthesize(proj.latents), proj.images)


def test_deterministic_and_batch_independent():
    g = tiny_stylegan2(trained_like=True)
    _, targets = samples(g, [6, 7])
    kw = dict(settings=quick(optimize_noise=False, latent_noise=0.0))
    a = project(g, targets, rng=torch.Generator().manual_seed(0), **kw)
    b = project(g, targets, rng=torch.Generator().manual_seed(0), **kw)
    assert torch.equal(a.latents, b.latents)
    single = project(g, targets[1:], rng=torch.Generator().manual_seed(0), **kw)
    torch.testing.assert_close(single.latents[0], a.latents[1], atol=1e-4, rtol=1e-4)


def test_w_space_gives_equal_layers():
    g = tiny_stylegan2(trained_like=True)
    _, targets = samples(g, [8])
    proj = project(g, targets, quick(space="w"), rng=torch.Generator().manual_seed(0))
    assert torch.equal(proj.latents, proj.latents[:, :1].expand_as(proj.latents))


def test_search_init_starts_closer():
    g = tiny_stylegan2(trained_like=True)
    _, targets = samples(g, [9, 10])
    mean = project(g, targets, quick(num_steps=1, init="mean"), rng=torch.Generator().manual_seed(0))
    search = project(g, targets, quick(num_steps=1, init="search"), rng=torch.Generator().manual_seed(0))
    assert search.losses[:, 0].mean() < mean.losses[:, 0].mean()


def tiny_stylegan(seed=0):
    torch.manual_seed(seed)
    g = StyleGANGenerator(z_dim=8, w_dim=8, img_resolution=16, channel_base=64, channel_max=8, mapping_layers=2)
    with torch.no_grad():
        for name, p in g.named_parameters():
            if name.endswith(("bias", "apply_noise.weight")):
                p.normal_(0, 0.2)
    return g.eval()


def tiny_dcgan(seed=0):
    torch.manual_seed(seed)
    g = DCGANGenerator(z_dim=8, img_resolution=16, channel_base=128, channel_max=16).eval()
    with torch.no_grad():  # fresh batch-norm statistics (variance 1) make every image the same grey
        for name, buf in g.named_buffers():
            if name.endswith("running_var"):
                buf.fill_(1e-3)
    return g


def tiny_pggan(seed=0):
    torch.manual_seed(seed)
    return PGGANGenerator(z_dim=8, img_resolution=16, channel_base=128, channel_max=16).eval()


@pytest.mark.parametrize("make", [tiny_stylegan, tiny_stylegan3, tiny_dcgan, tiny_pggan])
def test_every_family_fits_its_own_sample(make):
    g = make()
    _, targets = samples(g, [11, 12])
    proj = project(g, targets, quick(num_steps=80, optimize_noise=True), rng=torch.Generator().manual_seed(0))
    assert proj.latents.shape == (2, g.num_ws, g.latent_dim)
    assert (proj.losses[:, -5:].mean(dim=1) < 0.5 * proj.losses[:, :5].mean(dim=1)).all()
    assert bool(proj.noise) == bool(g.noise_buffers())  # StyleGAN's maps; none for the others
    with torch.no_grad(), applied_noise(g, proj.noise):
        torch.testing.assert_close(g.synthesize(proj.latents), proj.images)


@pytest.mark.parametrize("make", [tiny_dcgan, tiny_pggan])
def test_z_stays_near_the_prior_shell(make):
    g = make()
    _, targets = samples(g, [13, 14])
    proj = project(g, targets, quick(num_steps=80, prior_weight=10.0), rng=torch.Generator().manual_seed(0))
    norms = proj.latents[:, 0].norm(dim=1)
    assert ((norms / math.sqrt(g.latent_dim) - 1).abs() < 0.25).all(), norms


def test_biggan_keeps_its_class_embedding():
    g = tiny_biggan()
    c = torch.zeros(2, g.config.num_classes)
    c[:, 3] = 1
    start, targets = samples(g, [15, 16], c=c)
    settings = quick(num_steps=60, num_candidates=1)  # from a random z: a search lands close on this tiny model
    proj = project(g, targets, settings, c=c, rng=torch.Generator().manual_seed(0))
    d = g.editable_latent_dim
    torch.testing.assert_close(proj.latents[:, :, d:], start[:, :, d:])
    # The tiny BigGAN's images depend little on z (across-z std 0.03), so the fall is modest.
    assert (proj.losses[:, -1] < proj.losses[:, 0]).all()


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(num_steps=0), "num_steps"),
        (dict(num_steps=-3), "num_steps"),
        (dict(num_steps=2.5), "num_steps"),
        (dict(space="s"), "space"),
        (dict(space="z"), "space"),
        (dict(learning_rate=0), "learning_rate"),
        (dict(init="zero"), "init"),
        (dict(lr_rampup=0), "lr_rampup"),
        (dict(noise_weight=float("nan")), "noise_weight"),
    ],
)
def test_bad_settings_name_the_argument(kwargs, name):
    g = tiny_stylegan2()
    with pytest.raises(ValueError, match=f"`{name}`"):
        project(g, torch.zeros(1, 3, 16, 16), ProjectorSettings(**kwargs))


def test_z_models_refuse_w_spaces_and_bad_targets():
    with pytest.raises(ValueError, match=r"`space` must be one of \('z',\)"):
        project(tiny_dcgan(), torch.zeros(1, 3, 16, 16), ProjectorSettings(space="w+"))
    with pytest.raises(ValueError, match=r"`targets` must have shape \[N, 3, 16, 16\]"):
        project(tiny_stylegan2(), torch.zeros(1, 3, 8, 8))
