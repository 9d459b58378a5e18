"""Convert the pretrained generators of anvoynov/GANLatentDiscovery (Voynov & Babenko, ICML 2020).

Their ``download.py`` archives hold two generator layouts, both plain ``torch.save``\\ d state dicts, read
here with ``torch.load(weights_only=True)`` (nothing is executed):

* **SN-GAN ResNet** (``SN_MNIST``, ``SN_Anime``): a folder with ``args.json`` (``model``: ``sn_resnet32`` or
  ``sn_resnet64``, ``latent_dim``, ``image_channels``) and ``generator.pt``, the state dict of their
  ``GenWrapper`` (keys ``model.<i>.…`` of one ``nn.Sequential``; a bare ``Sequential``'s ``<i>.…`` is read too)
  → :class:`~sefa_plugin.models.SNGANResNetGenerator`. Every setting is inferred from the shapes (``args.json``
  is not needed; when present its ``latent_dim`` and ``image_channels`` are checked against them).

  ============================================  =====================================
  theirs (``model.`` prefix)                     ours
  ============================================  =====================================
  ``0.weight`` ``[C0·16, z_dim]``, ``0.bias``    ``dense.*``
  ``{2+i}.model.0.*`` (BatchNorm2d)              ``blocks.{i}.norm1.*``
  ``{2+i}.model.3.*`` (Conv2d 3×3)               ``blocks.{i}.conv1.*``
  ``{2+i}.model.4.*`` (BatchNorm2d)              ``blocks.{i}.norm2.*``
  ``{2+i}.model.6.*`` (Conv2d 3×3)               ``blocks.{i}.conv2.*``
  ``{2+i}.bypass.1.*`` (Conv2d 3×3, if any)      ``blocks.{i}.shortcut.*``
  ``{2+B}.*`` (BatchNorm2d), ``{4+B}.*``         ``norm_out.*``, ``to_rgb.*``
  ============================================  =====================================

* **ProgGAN** (``100_celeb_hq_network-snapshot-010403.pth``, from ptrblck/prog_gans_pytorch_inference): keys
  ``features.{i}.conv.weight`` (no bias), ``features.{i}.wscale.scale`` ``[1]``, ``features.{i}.wscale.b``,
  and ``output.{conv.weight, wscale.scale, wscale.b}``. Each layer is pixel norm → (nearest 2× up) → conv →
  ``x · scale + b`` → leaky ReLU 0.2 (none for ``output``), which is :class:`~sefa_plugin.models.PGGANGenerator`
  layer for layer: ``layer{i}.weight = conv.weight · scale / wscale`` (our run-time equalized-lr factor
  ``wscale = gain / sqrt(fan_in)``), ``layer{i}.bias = b``; ``output`` likewise (gain 1).

License: GANLatentDiscovery's code carries no license file for its own code; the ProgGAN weights are NVIDIA's
CelebA-HQ PGGAN (CC BY-NC 4.0). Check the original weights' license.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path

import torch

from ..models.pggan import PGGANGenerator
from ..models.sngan_resnet import SNGANResNetGenerator
from .genforce import load_genforce_checkpoint
from .nvidia import infer_channel_config, load_mapped_state_dict

__all__ = ["VOYNOV_SNGAN_FILE", "convert_voynov", "convert_voynov_state_dict", "voynov_layout"]

#: The SN-GAN generator's file inside one of their model folders (beside ``args.json``).
VOYNOV_SNGAN_FILE = "generator.pt"
# BatchNorm's step counter is training state; it is not used at inference.
_IGNORED = re.compile(r".*num_batches_tracked$")


def voynov_layout(state: Mapping[str, object]) -> str:
    """``"proggan"`` or ``"sngan"`` from marker keys; raises ValueError naming the expected keys."""
    if "features.0.conv.weight" in state and "output.wscale.scale" in state:
        return "proggan"
    if "model.0.weight" in state or "0.weight" in state:
        return "sngan"
    raise ValueError(
        "Not a GANLatentDiscovery generator: expected 'features.0.conv.weight' (ProgGAN) or 'model.0.weight' "
        f"(SN-GAN ResNet), got keys {sorted(state)[:6]}..."
    )


def _count(state: Mapping[str, object], pattern: str) -> int:
    found = {int(m.group(1)) for k in state if (m := re.fullmatch(pattern, k))}
    if found != set(range(len(found))):
        raise ValueError(f"Layer indices matching {pattern!r} are not consecutive from 0: {sorted(found)}.")
    return len(found)


def _convert_sngan(state: Mapping[str, torch.Tensor], args: Mapping[str, object]) -> SNGANResNetGenerator:
    pre = "model." if "model.0.weight" in state else ""
    blocks = 0
    while f"{pre}{2 + blocks}.model.3.weight" in state:  # their Sequential: dense, reshape, blocks, ...
        blocks += 1
    if blocks == 0:
        raise ValueError(f"SN-GAN checkpoint has no residual block: key '{pre}2.model.3.weight' is missing.")
    dense = state[f"{pre}0.weight"]
    c0, z_dim = dense.shape[0] // 16, dense.shape[1]
    channels = [c0] + [int(state[f"{pre}{2 + i}.model.3.weight"].shape[0]) for i in range(blocks)]
    rgb = state.get(f"{pre}{4 + blocks}.weight")
    if rgb is None:
        raise ValueError(f"SN-GAN checkpoint is missing key {pre}{4 + blocks}.weight (the final 3×3 convolution).")
    for name, inferred in (("latent_dim", z_dim), ("image_channels", int(rgb.shape[0]))):
        if name in args and int(args[name]) != inferred:  # type: ignore[call-overload]
            raise ValueError(f"args.json's {name!r} is {args[name]} but the weights have {inferred}.")
    g = SNGANResNetGenerator(
        z_dim=z_dim, img_resolution=4 * 2**blocks, img_channels=int(rgb.shape[0]), channels=channels
    )
    key_map = {"dense.weight": f"{pre}0.weight", "dense.bias": f"{pre}0.bias"}
    parts = {"norm1": "model.0", "conv1": "model.3", "norm2": "model.4", "conv2": "model.6", "shortcut": "bypass.1"}
    for ours in g.state_dict():
        m = re.fullmatch(r"blocks\.(\d+)\.(\w+)\.(\w+)", ours)
        if m:
            key_map[ours] = f"{pre}{2 + int(m.group(1))}.{parts[m.group(2)]}.{m.group(3)}"
        elif ours.startswith(("norm_out.", "to_rgb.")):
            index = 2 + blocks if ours.startswith("norm_out.") else 4 + blocks
            key_map[ours] = f"{pre}{index}.{ours.split('.', 1)[1]}"
    load_mapped_state_dict(g, state, key_map, ignored=_IGNORED.fullmatch, source_name="SN-GAN checkpoint")
    return g.eval()


def _convert_proggan(state: Mapping[str, torch.Tensor]) -> PGGANGenerator:
    layers = _count(state, r"features\.(\d+)\.conv\.weight")
    if layers < 2 or layers % 2:
        raise ValueError(f"ProgGAN checkpoint has {layers} 'features.<i>' layers; expected an even number ≥ 2.")
    first = state["features.0.conv.weight"]
    channels = {4 * 2**b: int(state[f"features.{2 * b + 1}.conv.weight"].shape[0]) for b in range(layers // 2)}
    base, cmax = infer_channel_config(channels)
    out = state["output.conv.weight"]
    g = PGGANGenerator(
        z_dim=int(first.shape[1]), img_resolution=4 * 2 ** (layers // 2 - 1), img_channels=int(out.shape[0]),
        channel_base=base, channel_max=cmax,
    )  # fmt: skip
    source = dict(state)
    key_map: dict[str, str] = {}
    for ours in [f"layer{i}" for i in range(layers)] + ["output"]:
        theirs = f"features.{ours[5:]}" if ours != "output" else "output"
        scale, weight = state.get(f"{theirs}.wscale.scale"), state.get(f"{theirs}.conv.weight")
        if not isinstance(scale, torch.Tensor) or scale.numel() != 1:
            raise ValueError(f"ProgGAN checkpoint key '{theirs}.wscale.scale' must be a one-element tensor.")
        if isinstance(weight, torch.Tensor):  # shapes are checked by load_mapped_state_dict, naming the key
            wscale = g.get_submodule(ours).wscale  # our run-time equalized-lr factor
            source[f"{theirs}.conv.weight"] = (weight.double() * scale.double() / wscale).float()
        key_map[f"{ours}.weight"], key_map[f"{ours}.bias"] = f"{theirs}.conv.weight", f"{theirs}.wscale.b"
    load_mapped_state_dict(
        g, source, key_map, ignored=lambda k: k.endswith(".wscale.scale"), source_name="ProgGAN checkpoint"
    )
    return g.eval()


def convert_voynov_state_dict(
    state: Mapping[str, torch.Tensor], args: Mapping[str, object] | None = None
) -> SNGANResNetGenerator | PGGANGenerator:
    """Convert a GANLatentDiscovery generator state dict (SN-GAN ResNet or ProgGAN), layout detected.

    Args:
        state: The state dict.
        args: Their ``args.json`` for an SN-GAN model (optional; checked against the weights).
    """
    if voynov_layout(state) == "proggan":
        return _convert_proggan(state)
    return _convert_sngan(state, args or {})


def convert_voynov(src: str | os.PathLike) -> SNGANResNetGenerator | PGGANGenerator:
    """Convert a GANLatentDiscovery generator: an SN-GAN folder (``args.json`` + ``generator.pt``) or file.

    Args:
        src: Their SN-GAN model folder (``SN_MNIST``, ``SN_Anime``), its ``generator.pt``, or the ProgGAN
            ``.pth`` state dict.

    Returns:
        :class:`SNGANResNetGenerator` or :class:`PGGANGenerator`, in eval mode on the CPU.

    Example:

    >>> from sefa_plugin.convert.voynov import convert_voynov
    >>> g = convert_voynov("models/pretrained/generators/SN_Anime")  # doctest: +SKIP
    >>> g.config.img_resolution  # doctest: +SKIP
    64
    """
    path = Path(src)
    weights = path / VOYNOV_SNGAN_FILE if path.is_dir() else path
    if not weights.is_file():
        raise FileNotFoundError(
            f"`src` {str(src)!r} is neither a checkpoint file nor a folder with {VOYNOV_SNGAN_FILE}."
        )
    args: dict[str, object] = {}
    if (weights.parent / "args.json").is_file():
        try:
            args = json.loads((weights.parent / "args.json").read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"{str(weights.parent / 'args.json')!r} is not valid JSON: {err}") from err
    return convert_voynov_state_dict(load_genforce_checkpoint(weights), args)
