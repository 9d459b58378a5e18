"""Convert PyTorch-tutorial DCGAN generators and HugGAN DCGAN Hub folders to :class:`DCGANTutorialGenerator`.

Sources (their code is BSD-3 / Apache-2.0; read, never run):

* the PyTorch DCGAN tutorial and ``pytorch/examples/dcgan``: ``netG.state_dict()`` saved with ``torch.save``
  (keys ``main.{i}.*``), often wrapped as ``{"netG_state_dict": ...}`` or in a training checkpoint that also
  holds the discriminator and the optimisers (``netD_state_dict``, ``optimizerG_state_dict`` ...); keys
  prefixed ``module.`` (``nn.DataParallel``) are accepted;
* the HugGAN sprint's ``huggan/pytorch/dcgan`` Hub repos: ``Generator(num_channels, latent_dim, hidden_size)``
  saved by ``PyTorchModelHubMixin`` as ``config.json`` + ``pytorch_model.bin`` or ``model.safetensors``
  (keys ``model.{i}.*``);
* whole-module pickles of either (``torch.save(netG, "G.pth")``), flattened to a state dict by
  :mod:`.module_pickle` first.

The key map is the identity up to the prefix (``main.`` / ``model.`` / ``module.main.`` → ``main.``). The
configuration is inferred from the keys and shapes (:func:`dcgan_generator_config`): the transposed
convolutions sit at indices ``0, 3, …, 3K`` with batch norms at ``3i + 1``; ``z_dim`` is the first weight's
input width, ``ngf`` the last hidden width, ``img_channels`` the last output width, the resolution
``4 · 2**K``. A ``config.json`` (``latent_dim``, ``hidden_size``, ``num_channels``) must agree with them.
Every tensor's shape is checked against the tutorial's formula, and errors name the key.

Loading: ``torch.load(weights_only=True)`` (or safetensors); nothing is executed.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ..models.dcgan import DCGANTutorialGenerator
from .nvidia import load_mapped_state_dict

__all__ = [
    "HUGGAN_DCGAN_CONFIG_KEYS",
    "convert_dcgan",
    "convert_dcgan_state_dict",
    "dcgan_generator_config",
    "extract_dcgan_state",
    "is_dcgan_folder",
    "is_dcgan_keys",
]

logger = logging.getLogger(__name__)

#: The ``config.json`` fields of a HugGAN DCGAN repo, and the config field each one is.
HUGGAN_DCGAN_CONFIG_KEYS = {"latent_dim": "z_dim", "hidden_size": "ngf", "num_channels": "img_channels"}
#: Where a training checkpoint keeps the generator's state dict, in the order they are tried.
_WRAPPER_KEYS = ("netG_state_dict", "netG", "generator_state_dict", "generator", "G", "state_dict", "model")
_KEY = re.compile(r"^(?P<prefix>(?:module\.)?(?:main|model)\.)(?P<index>\d+)\.(?P<name>\w+)$")
_BN_KEYS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def is_dcgan_keys(keys: Any) -> bool:
    """Whether checkpoint keys (or the string constants of a pickle) hold a tutorial/HugGAN DCGAN generator.

    The first layer is a 4-D transposed convolution followed by a batch norm at index 1 (a tutorial
    discriminator has a LeakyReLU there, so its keys are not taken).
    """
    keys = set(keys)
    return any(
        f"{prefix}0.weight" in keys and f"{prefix}1.running_mean" in keys
        for prefix in ("main.", "model.", "module.main.", "module.model.")
    )


def is_dcgan_folder(folder: str | os.PathLike) -> bool:
    """Whether `folder` is a HugGAN DCGAN Hub folder: its ``config.json`` names :data:`HUGGAN_DCGAN_CONFIG_KEYS`."""
    path = Path(folder) / "config.json"
    if not path.is_file() or path.stat().st_size > 1 << 20:
        return False
    try:
        config = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError, RecursionError):
        return False
    return isinstance(config, dict) and all(k in config for k in HUGGAN_DCGAN_CONFIG_KEYS)


def extract_dcgan_state(checkpoint: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The generator's state dict, keyed ``main.{i}.*``, from a bare state dict or a training checkpoint.

    Raises:
        ValueError: No DCGAN generator state dict is found, or its keys mix layouts.
    """
    state: Mapping[str, Any] = checkpoint
    if not is_dcgan_keys(state):
        for key in _WRAPPER_KEYS:
            value = checkpoint.get(key)
            if isinstance(value, Mapping) and is_dcgan_keys(value):
                state = value
                break
        else:
            raise ValueError(
                f"Not a DCGAN generator checkpoint: no `main.0.weight` + `main.1.running_mean` keys (nor `model.*`), "
                f"directly or under one of {list(_WRAPPER_KEYS)}; top-level keys: {sorted(map(str, checkpoint))[:12]}."
            )
    out: dict[str, torch.Tensor] = {}
    prefixes = set()
    for key, value in state.items():
        match = _KEY.match(str(key))
        if match is None:
            raise ValueError(f"DCGAN checkpoint key {key!r} is not a `main.<index>.<name>` key.")
        prefixes.add(match["prefix"])
        out[f"main.{match['index']}.{match['name']}"] = value
    if len(prefixes) != 1:
        raise ValueError(f"DCGAN checkpoint keys mix the prefixes {sorted(prefixes)}.")
    return out


def _weight(state: Mapping[str, Any], index: int) -> torch.Tensor:
    key = f"main.{index}.weight"
    tensor = state.get(key)
    if not isinstance(tensor, torch.Tensor) or tensor.ndim != 4 or tuple(tensor.shape[2:]) != (4, 4):
        got = list(tensor.shape) if isinstance(tensor, torch.Tensor) else type(tensor).__name__
        raise ValueError(f"DCGAN checkpoint key {key!r} must be a 4×4 transposed-convolution weight, got {got}.")
    return tensor


def dcgan_generator_config(state: Mapping[str, Any], hub_config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """:class:`DCGANTutorialGenerator` arguments inferred from a ``main.{i}.*`` state dict.

    Raises:
        ValueError: naming the key (or the ``config.json`` field) that does not fit the tutorial layout.
    """
    conv = sorted(
        int(k.split(".")[1]) for k, v in state.items() if k.endswith(".weight") and getattr(v, "ndim", 0) == 4
    )
    num_blocks = len(conv) - 1
    if num_blocks < 1 or conv != [3 * i for i in range(num_blocks + 1)]:
        raise ValueError(
            f"DCGAN checkpoint: the 4-D weights sit at main indices {conv}; the tutorial layout puts its "
            f"transposed convolutions at 0, 3, 6, … (each followed by a batch norm and a ReLU)."
        )
    for i in range(num_blocks):
        for name in ("weight", "running_mean", "running_var"):
            if f"main.{3 * i + 1}.{name}" not in state:
                key = f"main.{3 * i + 1}.{name}"
                raise ValueError(f"DCGAN checkpoint is missing key {key!r} (the batch norm of block {i}).")
    config = {
        "z_dim": int(_weight(state, 0).shape[0]),
        "img_resolution": 4 * 2**num_blocks,
        "img_channels": int(_weight(state, 3 * num_blocks).shape[1]),
        "ngf": int(_weight(state, 3 * (num_blocks - 1)).shape[1]),
        "conv_bias": "main.0.bias" in state,
    }
    for field, ours in HUGGAN_DCGAN_CONFIG_KEYS.items():
        if hub_config is not None and field in hub_config and hub_config[field] != config[ours]:
            raise ValueError(
                f"config.json's `{field}` is {hub_config[field]!r} but the weights have {ours} = {config[ours]}."
            )
    return config


def convert_dcgan_state_dict(
    state: Mapping[str, Any], hub_config: Mapping[str, Any] | None = None
) -> DCGANTutorialGenerator:
    """Build a :class:`DCGANTutorialGenerator` from a tutorial/HugGAN state dict or training checkpoint.

    Example:

    >>> import torch
    >>> from sefa_plugin.convert.dcgan import convert_dcgan_state_dict
    >>> from sefa_plugin.models.dcgan import DCGANTutorialGenerator
    >>> sd = DCGANTutorialGenerator(z_dim=8, img_resolution=16, ngf=4).state_dict()
    >>> g = convert_dcgan_state_dict({"netG_state_dict": {k.replace("main.", "model."): v for k, v in sd.items()}})
    >>> g.config.z_dim, g.config.img_resolution, g.config.ngf
    (8, 16, 4)
    """
    state = extract_dcgan_state(state)
    config = dcgan_generator_config(state, hub_config)
    logger.info("Converting a DCGAN generator: %s.", config)
    generator = DCGANTutorialGenerator(**config)
    load_mapped_state_dict(generator, state, {k: k for k in generator.state_dict()}, source_name="DCGAN checkpoint")
    return generator.eval()


def _load_weights(path: Path) -> dict[str, Any]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return dict(load_file(str(path)))
    from .module_pickle import load_checkpoint_state

    return load_checkpoint_state(path)


def convert_dcgan(src: str | os.PathLike | Mapping[str, Any]) -> DCGANTutorialGenerator:
    """Convert a tutorial DCGAN checkpoint (``.pth``), a whole-module pickle or a HugGAN DCGAN folder.

    Args:
        src: A ``torch.save`` file (a ``netG`` state dict, a training checkpoint, or the pickled module),
            a folder with ``config.json`` and ``pytorch_model.bin`` / ``model.safetensors``, or a loaded dict.

    Returns:
        :class:`DCGANTutorialGenerator` in eval mode, on the CPU, in float32.

    Raises:
        ValueError: The checkpoint is not a tutorial-layout DCGAN generator; the message names the key.

    Example:

    >>> from sefa_plugin.convert.dcgan import convert_dcgan
    >>> g = convert_dcgan("netG_epoch_24.pth")  # doctest: +SKIP
    """
    if isinstance(src, Mapping):
        return convert_dcgan_state_dict(src)
    path = Path(src)
    if not path.is_dir():
        return convert_dcgan_state_dict(_load_weights(path))
    from .genforce import WEIGHT_FILES

    weights = next((path / name for name in WEIGHT_FILES if (path / name).is_file()), None)
    if weights is None:
        raise ValueError(f"Folder {path} has none of {WEIGHT_FILES}: not a HugGAN DCGAN folder.")
    hub_config: dict[str, Any] = {}
    if (path / "config.json").is_file():
        hub_config = json.loads((path / "config.json").read_text())
        if not isinstance(hub_config, dict):
            raise ValueError(f"{path / 'config.json'} must hold a JSON object, got {type(hub_config).__name__}.")
    return convert_dcgan_state_dict(_load_weights(weights), hub_config)
