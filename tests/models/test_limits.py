"""The config bounds accept real models and refuse absurd ones by name; the parameter count is exact."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sefa_plugin.models import BigGANGenerator, PGGANGenerator, StyleGAN2Generator, StyleGAN3Generator
from sefa_plugin.models.limits import (
    CONFIG_LIMITS,
    MAX_PARAMETERS,
    check_config_number,
    check_int,
    check_parameter_budget,
)

# BigGAN-deep-512's block layout (pytorch-pretrained-BigGAN's 512 config), in units of channel_width.
BIGGAN_DEEP_512_LAYERS = [
    [False, 16, 16], [True, 16, 16], [False, 16, 16], [True, 16, 8], [False, 8, 8], [True, 8, 8], [False, 8, 8],
    [True, 8, 4], [False, 4, 4], [True, 4, 2], [False, 2, 2], [True, 2, 1], [False, 1, 1], [True, 1, 1],
]  # fmt: skip

REAL_MODELS = {
    "stylegan2-ffhq-1024": (StyleGAN2Generator, {}),
    "stylegan2-wide-latent": (StyleGAN2Generator, dict(z_dim=2048, w_dim=2048, img_resolution=256)),
    "stylegan3-r-1024": (
        StyleGAN3Generator,
        dict(channel_base=65536, channel_max=1024, conv_kernel=1, use_radial_filters=True),
    ),
    "stylegan-xl-like-1024": (StyleGAN3Generator, dict(z_dim=64, c_dim=1000, num_layers=40)),
    "biggan-deep-512": (
        BigGANGenerator,
        dict(output_dim=512, layers=BIGGAN_DEEP_512_LAYERS, attention_layer_position=8),
    ),
    "pggan-celebahq-1024": (PGGANGenerator, {}),
}


@pytest.mark.parametrize("name", list(REAL_MODELS))
def test_real_model_configs_are_accepted(name: str) -> None:
    cls, config = REAL_MODELS[name]
    with torch.device("meta"):  # the full size, without the memory
        model = cls(**config)
    count = sum(p.numel() for p in model.parameters()) + sum(b.numel() for b in model.buffers())
    assert 1_000_000 < count < MAX_PARAMETERS


def test_parameter_budget_counts_exactly() -> None:
    g = StyleGAN2Generator(z_dim=8, w_dim=8, img_resolution=16, channel_base=64, channel_max=16, mapping_layers=2)
    real = sum(p.numel() for p in g.parameters()) + sum(b.numel() for b in g.buffers())
    counted: list[int] = []

    def build() -> torch.nn.Module:
        m = StyleGAN2Generator(**g.config)
        counted.append(sum(t.numel() for t in m.state_dict().values()))
        return m

    check_parameter_budget(build, "StyleGAN2Generator")
    assert counted == [real]


@pytest.mark.parametrize(
    ("cls", "fields", "match"),
    [
        (StyleGAN2Generator, dict(z_dim=10**7), r"`z_dim` must be an integer in \[1, 4096\], got 10000000"),
        (StyleGAN2Generator, dict(img_resolution=4096), r"`img_resolution` must be an integer in \[4, 2048\]"),
        (StyleGAN2Generator, dict(img_resolution=48), r"`img_resolution` must be a power of two"),
        (StyleGAN2Generator, dict(c_dim=-1), r"`c_dim`"),
        (StyleGAN2Generator, dict(mapping_lr_multiplier=float("inf")), r"`mapping_lr_multiplier` must be a finite"),
        (StyleGAN2Generator, dict(conv_clamp="256"), r"`conv_clamp`"),
        (StyleGAN2Generator, dict(resample_filter=[0, 0]), r"`resample_filter` must have a non-zero sum"),
        (StyleGAN3Generator, dict(magnitude_ema_beta=2.0), r"`magnitude_ema_beta` must be a finite number in \[0, 1\]"),
        (PGGANGenerator, dict(z_dim=np.bool_(True)), r"`z_dim`"),
    ],
)
def test_bad_fields_are_named(cls: type, fields: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        cls(**fields)


def test_check_helpers() -> None:
    assert check_int("z_dim", np.int64(512), *CONFIG_LIMITS["z_dim"]) == 512
    with pytest.raises(ValueError, match=r"`x` must be an integer in \[0, 3\], got '1+\.\.\."):
        check_int("x", "1" * 200, 0, 3)
    assert check_config_number("psi", 0.5, 0, 1) == 0.5
    with pytest.raises(ValueError, match=r"`psi` must be a finite number in \(0, 1\], got 0"):
        check_config_number("psi", 0, 0, 1, open_low=True)


def test_width_lists_of_the_z_input_families_are_bounded_before_allocating():
    import pytest

    from sefa_plugin.models.lightweight_gan import LightweightGANGenerator
    from sefa_plugin.models.sngan_resnet import SNGANResNetGenerator

    with pytest.raises(ValueError, match=r"= 3 widths \(integers in \[1, 8192\]"):
        SNGANResNetGenerator(z_dim=8, img_resolution=16, channels=[10**7, 8, 8])
    with pytest.raises(ValueError, match="parameters, more than the limit"):
        SNGANResNetGenerator(z_dim=8, img_resolution=16, channels=[8192, 8192, 8192])
    with pytest.raises(ValueError, match=r"`channels` must hold 2 widths"):
        LightweightGANGenerator(z_dim=8, img_resolution=16, channels=[64.0, 8])
