"""Convert rosinality/stylegan2-pytorch checkpoints to :class:`StyleGAN2Generator`.

rosinality's ``.pt`` files are ordinary ``torch.save`` dicts: ``{"g_ema": state_dict, "latent_avg": w}``
for weights converted from NVIDIA's TensorFlow release, or training checkpoints
``{"g", "d", "g_ema", "g_optim", "d_optim", "args", "ada_aug_p"}`` (``args`` is an
``argparse.Namespace``, which is allow-listed). They are loaded with ``torch.load(weights_only=True)``.

Architecture differences, all pure re-layouts (see :data:`ROSINALITY_LAYOUTS` and
:func:`rosinality_key_map`):

* ``style.{i}`` (``i`` >= 1; ``style.0`` is the PixelNorm) are the mapping layers ``mapping.fc{i-1}``:
  EqualLinear with ``lr_mul`` stores weights divided by ``lr_mul`` and scales weights and biases by it at run
  time, exactly like NVIDIA's FullyConnectedLayer, so they copy as they are.
* ``ModulatedConv2d.modulation`` is our style ``affine``; its weight has a leading batch axis
  ``[1, out, in, k, k]``. rosinality multiplies it by ``1/sqrt(fan_in)`` before demodulation while NVIDIA
  does not; demodulation cancels that constant (NVIDIA's own TF converter copies these weights
  unscaled too), so they copy as they are.
* ``noise.weight`` ``[1]`` is ``noise_strength`` ``[]``; ``noises.noise_{i}`` ``[1, 1, r, r]`` is the
  ``i``-th layer's ``noise_const`` ``[r, r]``; ``activate.bias`` (FusedLeakyReLU) is the layer ``bias``.
* ``input.input`` ``[1, C, 4, 4]`` is ``synthesis.b4.const``; ``conv1``/``to_rgb1`` are block ``b4``;
  ``convs.{2j}``/``convs.{2j+1}``/``to_rgbs.{j}`` are ``conv0``/``conv1``/``torgb`` of block ``b{2**(j+3)}``;
  ToRGB biases are ``[1, 3, 1, 1]``.
* The upsampling convolution is a stride-2 transposed convolution followed by a ``Blur`` whose kernel is
  the normalised FIR filter times 4, which is NVIDIA's ``conv2d_resample(up=2)`` exactly; the blur and
  ``Upsample`` kernels are checked against our ``resample_filter`` instead of copied.
* ``latent_avg`` is ``mapping.w_avg``. Training checkpoints have none: it is then estimated as the mean of
  `w_avg_samples` mapped latents, as rosinality's ``generate.py`` does with ``mean_latent(4096)``.

Channel widths come from rosinality's table (512 up to 32x32, then ``channel_multiplier`` times 256, 128,
...), which is ``channel_base = 16384 * channel_multiplier``, ``channel_max = 512`` for multipliers 1 and 2.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import re
import zipfile
from collections.abc import Callable, Mapping
from typing import Any

import torch

from ..models.stylegan2 import StyleGAN2Generator
from .keymap import infer_channel_config, load_mapped_state_dict, resample_taps

__all__ = [
    "ROSINALITY_LAYOUTS",
    "convert_rosinality",
    "convert_rosinality_state_dict",
    "load_rosinality_checkpoint",
    "rosinality_config",
    "rosinality_key_map",
]

#: How a rosinality tensor's shape relates to ours, keyed by the layout names of :func:`rosinality_key_map`.
ROSINALITY_LAYOUTS: dict[str, Callable[[tuple[int, ...]], tuple[int, ...]]] = {
    "same": lambda shape: tuple(shape),
    "batch1": lambda shape: (1, *shape),  # ModulatedConv2d weight [1, O, I, k, k], ConstantInput [1, C, 4, 4]
    "noise": lambda shape: (1, 1, *shape),  # noises.noise_i [1, 1, r, r]
    "scalar": lambda shape: (1,),  # NoiseInjection.weight [1]
    "rgb_bias": lambda shape: (1, shape[0], 1, 1),  # ToRGB.bias [1, 3, 1, 1]
}


def rosinality_key_map(img_resolution: int, mapping_layers: int) -> dict[str, tuple[str, str]]:
    """Our key to ``(rosinality key, layout)`` for a generator of the given size.

    The ``resample_filter`` buffers are not listed: rosinality keeps the scaled blur kernels instead, which
    :func:`convert_rosinality_state_dict` checks against them. ``mapping.w_avg`` maps to the checkpoint's
    top-level ``latent_avg``.

    Args:
        img_resolution: Output resolution (rosinality's ``size``).
        mapping_layers: Depth of the mapping network (rosinality's ``n_mlp``).
    """
    table: dict[str, tuple[str, str]] = {}
    for i in range(mapping_layers):
        for p in ("weight", "bias"):
            table[f"mapping.fc{i}.{p}"] = (f"style.{i + 1}.{p}", "same")
    table["mapping.w_avg"] = ("latent_avg", "same")

    def styled_conv(ours: str, theirs: str, noise_index: int) -> None:
        table[f"{ours}.weight"] = (f"{theirs}.conv.weight", "batch1")
        table[f"{ours}.affine.weight"] = (f"{theirs}.conv.modulation.weight", "same")
        table[f"{ours}.affine.bias"] = (f"{theirs}.conv.modulation.bias", "same")
        table[f"{ours}.bias"] = (f"{theirs}.activate.bias", "same")
        table[f"{ours}.noise_strength"] = (f"{theirs}.noise.weight", "scalar")
        table[f"{ours}.noise_const"] = (f"noises.noise_{noise_index}", "noise")

    def to_rgb(ours: str, theirs: str) -> None:
        table[f"{ours}.weight"] = (f"{theirs}.conv.weight", "batch1")
        table[f"{ours}.affine.weight"] = (f"{theirs}.conv.modulation.weight", "same")
        table[f"{ours}.affine.bias"] = (f"{theirs}.conv.modulation.bias", "same")
        table[f"{ours}.bias"] = (f"{theirs}.bias", "rgb_bias")

    table["synthesis.b4.const"] = ("input.input", "batch1")
    styled_conv("synthesis.b4.conv1", "conv1", 0)
    to_rgb("synthesis.b4.torgb", "to_rgb1")
    for j, log2 in enumerate(range(3, int(math.log2(img_resolution)) + 1)):
        block = f"synthesis.b{2**log2}"
        styled_conv(f"{block}.conv0", f"convs.{2 * j}", 2 * j + 1)
        styled_conv(f"{block}.conv1", f"convs.{2 * j + 1}", 2 * j + 2)
        to_rgb(f"{block}.torgb", f"to_rgbs.{j}")
    return table


def _indices(state: Mapping[str, Any], pattern: str) -> list[int]:
    return sorted(int(m.group(1)) for k in state if (m := re.fullmatch(pattern, k)))


def rosinality_config(state: Mapping[str, torch.Tensor], lr_mlp: float = 0.01) -> dict[str, Any]:
    """Infer the :class:`StyleGAN2Generator` config of a rosinality ``g_ema`` state dict from its keys/shapes.

    Args:
        state: rosinality ``Generator.state_dict()``.
        lr_mlp: The mapping network's learning-rate multiplier (rosinality's ``lr_mlp``; it does not appear
            in the weights).

    Raises:
        ValueError: naming the key that is missing or inconsistent.
    """
    for key in ("style.1.weight", "input.input", "conv1.conv.weight"):
        if key not in state:
            raise ValueError(f"Not a rosinality generator state dict: key {key!r} is missing.")
    styles = _indices(state, r"style\.(\d+)\.weight")
    if styles != list(range(1, len(styles) + 1)):
        raise ValueError(f"rosinality mapping layers must be style.1 ... style.N, got style indices {styles}.")
    style_dim = state["style.1.weight"].shape[1]
    rgbs = _indices(state, r"to_rgbs\.(\d+)\.bias")
    if rgbs != list(range(len(rgbs))):
        raise ValueError(f"rosinality to_rgbs must be numbered 0 ... N-1, got {rgbs}.")
    log_size = len(rgbs) + 2
    noises = _indices(state, r"noises\.noise_(\d+)")
    if noises != list(range(2 * log_size - 3)):
        raise ValueError(
            f"Expected noises.noise_0 ... noises.noise_{2 * log_size - 4} for size {2**log_size}, got {noises}."
        )
    img_channels = state["to_rgb1.bias"].shape[1] if "to_rgb1.bias" in state else 3
    channels = {4: state["conv1.conv.weight"].shape[1]}
    for j in range(len(rgbs)):
        key = f"convs.{2 * j}.conv.weight"
        if key not in state:
            raise ValueError(f"rosinality generator of size {2**log_size} is missing {key!r}.")
        channels[2 ** (j + 3)] = state[key].shape[1]
    channel_base, channel_max = infer_channel_config(channels)
    resample_filter: tuple[float, ...] = (1, 3, 3, 1)
    if "convs.0.conv.blur.kernel" in state:
        resample_filter = resample_taps(state["convs.0.conv.blur.kernel"], "convs.0.conv.blur.kernel")
    return dict(
        z_dim=int(style_dim), w_dim=int(style_dim), img_resolution=2**log_size, img_channels=int(img_channels),
        channel_base=channel_base, channel_max=channel_max, mapping_layers=len(styles),
        mapping_lr_multiplier=float(lr_mlp), resample_filter=resample_filter,
    )  # fmt: skip


def _estimate_w_avg(generator: StyleGAN2Generator, num_samples: int, seed: int = 0) -> torch.Tensor:
    """Mean of ``num_samples`` mapped latents (rosinality's ``mean_latent``), deterministic in `seed`."""
    rng = torch.Generator().manual_seed(seed)
    total = torch.zeros(generator.config.w_dim, dtype=torch.float64)
    done = 0
    with torch.no_grad():
        while done < num_samples:
            n = min(1024, num_samples - done)
            z = torch.randn(n, generator.config.z_dim, generator=rng)
            total += generator.mapping(z)[:, 0].double().sum(dim=0)
            done += n
    return (total / num_samples).float()


def convert_rosinality_state_dict(
    state: Mapping[str, torch.Tensor],
    latent_avg: torch.Tensor | None = None,
    *,
    lr_mlp: float = 0.01,
    w_avg_samples: int = 4096,
    copy: bool = True,
) -> StyleGAN2Generator:
    """Build a :class:`StyleGAN2Generator` from a rosinality ``g_ema`` state dict.

    Args:
        state: rosinality ``Generator.state_dict()``.
        latent_avg: The average ``w`` (``[w_dim]`` or ``[1, w_dim]``); None estimates it.
        lr_mlp: The mapping network's learning-rate multiplier.
        w_avg_samples: Number of latents averaged when `latent_avg` is None.
        copy: Copy the weights (default). ``False`` makes the given tensors the generator's parameters, which
            :func:`convert_rosinality` does for the memory-mapped file it loaded itself.

    Raises:
        ValueError: naming the key that is missing, misshapen or not understood.
    """
    generator = StyleGAN2Generator(**rosinality_config(state, lr_mlp=lr_mlp))
    table = rosinality_key_map(generator.config.img_resolution, generator.config.mapping_layers)
    source = dict(state)
    if latent_avg is not None:
        if not isinstance(latent_avg, torch.Tensor) or latent_avg.numel() != generator.config.w_dim:
            got = getattr(latent_avg, "shape", type(latent_avg).__name__)
            raise ValueError(f"`latent_avg` must hold {generator.config.w_dim} values, got {got}.")
        source["latent_avg"] = latent_avg.reshape(-1)
    else:
        table = {k: v for k, v in table.items() if k != "mapping.w_avg"}

    # rosinality keeps its FIR kernels scaled by 4 (the upsampling gain); ours are normalised buffers that
    # keep their initial values (checked against rosinality's kernels below), as does w_avg until estimated.
    kept = {k: v for k, v in generator.state_dict().items() if k.endswith("resample_filter") or k not in table}
    scaled_filter = kept["synthesis.b4.resample_filter"] * 4
    for key in state:
        if not re.fullmatch(r"(convs\.\d+\.conv\.blur|to_rgbs\.\d+\.upsample)\.kernel", key):
            continue
        if state[key].shape != scaled_filter.shape or not torch.allclose(state[key].float(), scaled_filter):
            raise ValueError(f"rosinality key {key!r} does not match the blur kernel of convs.0.conv.blur.kernel.")
    source.update({f"__ours__.{k}": v for k, v in kept.items()})
    key_map = {ours: theirs for ours, (theirs, _) in table.items()} | {k: f"__ours__.{k}" for k in kept}
    layouts = {ours: layout for ours, (_, layout) in table.items()}

    def source_shape(ours: str, shape: torch.Size) -> tuple[int, ...]:
        return ROSINALITY_LAYOUTS[layouts.get(ours, "same")](tuple(shape))

    load_mapped_state_dict(
        generator, source, key_map, source_shape=source_shape, source_name="rosinality checkpoint",
        ignored=lambda k: k.endswith((".blur.kernel", ".upsample.kernel")), assign=not copy,
    )  # fmt: skip
    if latent_avg is None:
        generator.mapping.w_avg.copy_(_estimate_w_avg(generator, w_avg_samples))
    return generator.eval()


def load_rosinality_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """``torch.load(path, weights_only=True)`` on the CPU, also accepting ``argparse.Namespace`` (``args``).

    Raises:
        pickle.UnpicklingError: From ``torch.load`` when the file names any other non-tensor global.
    """
    safe_globals = getattr(torch.serialization, "safe_globals", None)
    context = safe_globals([argparse.Namespace]) if safe_globals is not None else contextlib.nullcontext()
    # Memory-map zip checkpoints: only the tensors the converter reads (g_ema's, not g/d or the optimizer
    # states of a training checkpoint) are ever paged in.
    mmap = zipfile.is_zipfile(path)
    with context:
        data = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    if not isinstance(data, dict):
        raise ValueError(f"A rosinality checkpoint is a dict, got {type(data).__name__} from {path!s}.")
    return data


def convert_rosinality(
    path: str | os.PathLike | Mapping[str, Any],
    *,
    lr_mlp: float = 0.01,
    w_avg_samples: int = 4096,
) -> StyleGAN2Generator:
    """Convert a rosinality/stylegan2-pytorch checkpoint (its ``g_ema`` and ``latent_avg``).

    Args:
        path: The ``.pt`` file, or an already loaded checkpoint dict (or bare ``g_ema`` state dict).
        lr_mlp: The mapping network's learning-rate multiplier (rosinality's default 0.01).
        w_avg_samples: Latents averaged for ``mapping.w_avg`` when the checkpoint has no ``latent_avg``.

    Returns:
        The generator in eval mode, on the CPU, in float32. rosinality's
        ``g_ema([z], truncation=psi, truncation_latent=latent_avg, randomize_noise=False)`` equals
        ``generator(z, truncation_psi=psi, noise_mode="const")``.

    Raises:
        ValueError: The checkpoint has no ``g_ema`` generator, or a key is missing or misshapen.

    Example:

    >>> from sefa_plugin.convert import convert_rosinality
    >>> g = convert_rosinality("stylegan2-ffhq-config-f.pt")  # doctest: +SKIP
    >>> g.config.img_resolution  # doctest: +SKIP
    1024
    """
    data = path if isinstance(path, Mapping) else load_rosinality_checkpoint(path)
    if "g_ema" in data:
        state, latent_avg = data["g_ema"], data.get("latent_avg")
    elif "style.1.weight" in data:
        state, latent_avg = data, None
    else:
        raise ValueError(f"Not a rosinality checkpoint: no 'g_ema' key (keys: {sorted(map(str, data))[:10]}).")
    if not isinstance(state, Mapping):
        raise ValueError(f"rosinality checkpoint key 'g_ema' is a {type(state).__name__}, not a state dict.")
    # A checkpoint we loaded ourselves (memory-mapped, private) lends its tensors to the generator: the weights
    # are not held twice. A dict from the caller is copied.
    return convert_rosinality_state_dict(
        state, latent_avg, lr_mlp=lr_mlp, w_avg_samples=w_avg_samples, copy=isinstance(path, Mapping)
    )
