"""Per-image noise maps for generators with noise inputs (StyleGAN, StyleGAN2), and their regulariser.

A StyleGAN2 renders with ``noise_mode="const"`` by adding a fixed map (``noise_const`` ``[r, r]``) scaled by a
learned strength; NVIDIA's projector optimises these maps together with ``w``. To invert a batch, each image
gets its own maps ``[N, 1, r, r]``, swapped in for the generator's buffers while it renders
(:func:`applied_noise`: the buffers broadcast over the batch, so one of shape ``[N, 1, r, r]`` renders each
image with its own map), and restored afterwards.

The regulariser is the one of NVIDIA's projector: the squared mean autocorrelation of every map at a shift of
one pixel in x and in y, summed over an average-pooling pyramid down to 8×8, which keeps the maps looking like
white noise so that they cannot carry the image's content.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import torch
import torch.nn.functional as F

from ..models.interface import EditableGenerator


def initial_noise_maps(generator: EditableGenerator, num: int) -> dict[str, torch.Tensor]:
    """The generator's constant noise maps, one copy per image: ``{buffer name: [num, 1, r, r]}``."""
    buffers = dict(generator.named_buffers())  # type: ignore[attr-defined]
    maps = {}
    for name in generator.noise_buffers():
        buf = buffers[name].detach().to(torch.float32)
        r = buf.shape[-1]
        maps[name] = buf.reshape(1, 1, r, r).repeat(num, 1, 1, 1).contiguous()
    return maps


def check_noise_maps(
    generator: EditableGenerator, noise: Mapping[str, torch.Tensor], num: int, what: str = "noise"
) -> None:
    """Raise ``ValueError`` (naming `what`) unless `noise` holds one ``[num, 1, r, r]`` map per noise buffer."""
    buffers = dict(generator.named_buffers())  # type: ignore[attr-defined]
    expected = generator.noise_buffers()
    if sorted(noise) != sorted(expected):
        raise ValueError(f"`{what}` must have the maps {expected} of this generator, got {sorted(noise)}.")
    for name, t in noise.items():
        r = buffers[name].shape[-1]
        if tuple(t.shape) != (num, 1, r, r):
            raise ValueError(f"`{what}`[{name!r}] must have shape [{num}, 1, {r}, {r}], got {list(t.shape)}.")
        if not torch.isfinite(t).all():
            raise ValueError(f"`{what}`[{name!r}] contains NaN or infinite values.")


@contextmanager
def applied_noise(generator: EditableGenerator, noise: Mapping[str, torch.Tensor]) -> Iterator[None]:
    """Render with per-image noise maps: inside the block the generator's noise buffers are `noise`.

    `noise` maps buffer names (:meth:`~sefa_plugin.models.interface.EditableGenerator.noise_buffers`) to
    ``[N, 1, r, r]`` tensors; images must then be rendered in batches of exactly ``N`` with
    ``noise_mode="const"``. The original buffers are restored on exit, also after an error.

    Example:

    >>> with applied_noise(generator, inversion.noise):  # doctest: +SKIP
    ...     images = generator.synthesize(inversion.latents)
    """
    module: torch.nn.Module = generator  # type: ignore[assignment]
    saved = []
    try:
        for name, t in noise.items():
            owner_name, _, attr = name.rpartition(".")
            owner = module.get_submodule(owner_name)
            saved.append((owner, attr, getattr(owner, attr)))
            setattr(owner, attr, t.to(saved[-1][2].device))
        yield
    finally:
        for owner, attr, original in reversed(saved):
            setattr(owner, attr, original)


def normalize_noise_(noise: Mapping[str, torch.Tensor]) -> None:
    """Give every map zero mean and unit variance (per image), in place, as NVIDIA does after each step."""
    with torch.no_grad():
        for t in noise.values():
            t -= t.mean(dim=(1, 2, 3), keepdim=True)
            t *= t.square().mean(dim=(1, 2, 3), keepdim=True).rsqrt()


def noise_regularization(noise: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Per-image penalty ``[N]``: squared mean autocorrelations (shift 1, x and y) over a pyramid to 8×8."""
    total: torch.Tensor | float = 0.0
    for t in noise.values():
        v = t
        while True:
            total = total + (v * v.roll(1, dims=3)).mean(dim=(1, 2, 3)).square()
            total = total + (v * v.roll(1, dims=2)).mean(dim=(1, 2, 3)).square()
            if v.shape[-1] <= 8:
                break
            v = F.avg_pool2d(v, 2)
    if isinstance(total, float):
        raise ValueError("`noise` must hold at least one map.")
    return total
