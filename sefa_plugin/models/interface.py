"""The small interface that discovery methods and pipelines use to talk to any generator.

Every generator family implements :class:`EditableGenerator`. Methods such as SeFa or GANSpace only call
these members, so they never dispatch on a ``gan_type`` string or reach into attribute names.

The editable latent of a generator is always a tensor ``[N, num_ws, latent_dim]``:

* StyleGAN-family generators edit W+ (``latent_space == "w+"``): one ``w_dim`` vector per layer.
* Generators whose first layer reads ``z`` directly (PGGAN, DCGAN, SN-GAN) edit Z
  (``latent_space == "z"``) and have ``num_ws == 1``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .limits import CONFIG_LIMITS, MAX_SEEDS, check_config_ints, check_parameter_budget

LATENT_SPACES = ("w+", "z")


def check_generator_config(img_resolution: int, channel_base: int | None = None, **fields: int | None) -> None:
    """Validate the constructor arguments every generator family shares, before anything is allocated.

    Every field is checked against its bounds in :data:`~sefa_plugin.models.limits.CONFIG_LIMITS` (an
    integer, not a bool, float or string); errors name the field.

    Args:
        img_resolution: Must be a power of two in [4, 2048].
        channel_base: If given, must be ≥ `img_resolution` so that every layer has at least one channel.
        **fields: Other integer fields, by their config name (``z_dim=512, img_channels=3, ...``); None is
            skipped (an optional field left to its default).

    Example:

    >>> check_generator_config(64, 16384, z_dim=512, mapping_layers=8)
    >>> check_generator_config(64, z_dim=10**7)
    Traceback (most recent call last):
    ...
    ValueError: `z_dim` must be an integer in [1, 4096], got 10000000.
    """
    check_config_ints(img_resolution=img_resolution)
    if img_resolution & (img_resolution - 1):
        low, high = CONFIG_LIMITS["img_resolution"]
        raise ValueError(f"`img_resolution` must be a power of two in [{low}, {high}], got {img_resolution}.")
    check_config_ints(channel_base=channel_base, **fields)
    if channel_base is not None and channel_base // img_resolution < 1:
        raise ValueError(
            f"`channel_base` must be ≥ `img_resolution` ({img_resolution}) so that every layer has at "
            f"least one channel, got {channel_base}."
        )


def check_parameter_count(model: torch.nn.Module) -> None:
    """Refuse a generator whose parameters would exceed :data:`~sefa_plugin.models.limits.MAX_PARAMETERS`.

    Call it in a ``@register_to_config`` constructor after the field checks and before building layers: it
    rebuilds the same config on the ``meta`` device (no memory) to count.
    """
    config = {k: v for k, v in model.config.items() if not k.startswith("_")}  # type: ignore[attr-defined]
    check_parameter_budget(lambda: type(model)(**config), type(model).__name__)


def check_layer_indices(layers: Sequence[int], num_ws: int) -> list[int]:
    """Validate W+ layer indices for :meth:`EditableGenerator.latent_weights`; returns them as ints.

    Raises:
        ValueError: naming `layers` and the allowed range ``[0, num_ws - 1]``.

    Example:

    >>> check_layer_indices([0, 2], num_ws=4)
    [0, 2]
    >>> check_layer_indices([4], num_ws=4)
    Traceback (most recent call last):
    ...
    ValueError: `layers` must hold indices in [0, 3], got [4].
    """
    for i in layers:
        if isinstance(i, bool) or not isinstance(i, int | np.integer) or not 0 <= int(i) < num_ws:
            raise ValueError(f"`layers` must hold indices in [0, {num_ws - 1}], got {list(layers)}.")
    return [int(i) for i in layers]


class EditableGenerator:
    """Mixin declaring what a generator exposes to discovery methods and pipelines.

    Subclasses set :attr:`latent_space` and implement the abstract members below.
    """

    #: ``"w+"`` for style-based generators, ``"z"`` for generators fed directly by the latent code.
    latent_space: str = "z"

    @property
    def latent_dim(self) -> int:
        """Width of one editable latent vector (``w_dim`` or ``z_dim``)."""
        raise NotImplementedError

    @property
    def num_ws(self) -> int:
        """Number of editable latent vectors per image (W+ layers; 1 for z-input generators)."""
        raise NotImplementedError

    @property
    def editable_latent_dim(self) -> int:
        """How many independent directions edits can take: ``latent_dim`` unless part of the latent is fixed.

        A class-conditional BigGAN's latent is ``[z, class embedding]``: only the ``z_dim`` coordinates are
        edited, so SeFa returns at most ``z_dim`` directions by default.
        """
        return self.latent_dim

    def layer_resolutions(self) -> list[int]:
        """Resolution (in pixels) of the features that each editable layer modulates."""
        raise NotImplementedError

    def latent_weights(self, layers: Sequence[int]) -> list[torch.Tensor]:
        """The affine maps from the latent to the first representation it feeds, one per layer.

        Returns:
            For each layer index in `layers`, the effective weight ``[out_features, latent_dim]``
            (equalized-learning-rate gains applied), detached.
        """
        raise NotImplementedError

    def sample_latents(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
    ) -> torch.Tensor:
        """Map latent codes `z` ``[N, z_dim]`` to editable latents ``[N, num_ws, latent_dim]``."""
        raise NotImplementedError

    def synthesize(self, latents: torch.Tensor, noise_mode: str = "const") -> torch.Tensor:
        """Render editable latents ``[N, num_ws, latent_dim]`` to images ``[N, C, H, W]`` in [-1, 1]."""
        raise NotImplementedError

    def noise_buffers(self) -> list[str]:
        """State-dict names of the fixed noise maps that ``noise_mode="const"`` adds (empty: none).

        Inversion optimises these maps (one per image) next to the latents; generators without noise inputs
        (StyleGAN3, PGGAN, DCGAN, BigGAN) keep the default empty list.
        """
        return []

    # ------------------------------------------------------------------ shared helpers
    def layer_groups(self) -> dict[str, list[int]]:
        """Named layer ranges ``coarse``/``middle``/``fine`` (by resolution, as in the StyleGAN paper).

        Coarse layers act at ≤ 8², middle at 16²–32², fine at ≥ 64². For small generators where a band
        is empty, the layers are split into three contiguous, near-equal parts instead.
        """
        res = self.layer_resolutions()
        groups = {
            "coarse": [i for i, r in enumerate(res) if r <= 8],
            "middle": [i for i, r in enumerate(res) if 16 <= r <= 32],
            "fine": [i for i, r in enumerate(res) if r >= 64],
        }
        if len(res) >= 3 and any(not v for v in groups.values()):
            parts = np.array_split(np.arange(len(res)), 3)
            groups = {name: p.tolist() for name, p in zip(("coarse", "middle", "fine"), parts, strict=True)}
        return groups

    def z_from_seeds(self, seeds: Sequence[int]) -> torch.Tensor:
        """Latent codes for integer seeds, ``[len(seeds), z_dim]``.

        Uses ``numpy.random.RandomState(seed).randn(z_dim)`` like NVIDIA's ``gen_images.py``, so a
        converted official checkpoint renders the same image for the same seed.
        """
        z_dim = int(self.config.z_dim)  # type: ignore[attr-defined]
        if len(seeds) > MAX_SEEDS:
            raise ValueError(f"`seeds` must hold at most {MAX_SEEDS} seeds, got {len(seeds)}.")
        for s in seeds:
            if not isinstance(s, (int, np.integer)) or isinstance(s, bool) or not 0 <= int(s) < 2**32:
                raise ValueError(f"`seeds` must be integers in [0, 2**32), got {s!r}.")
        z = np.stack([np.random.RandomState(int(s)).randn(z_dim) for s in seeds]) if seeds else np.zeros((0, z_dim))
        return torch.from_numpy(z.astype(np.float32))

    def randn_z(self, num: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Random latent codes ``[num, z_dim]`` drawn with an optional ``torch.Generator`` (on CPU)."""
        z_dim = int(self.config.z_dim)  # type: ignore[attr-defined]
        return torch.randn([num, z_dim], generator=generator)
