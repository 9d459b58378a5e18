"""Convert huggingface/pytorch-pretrained-BigGAN checkpoints to :class:`BigGANGenerator`.

A pytorch-pretrained-BigGAN model is a folder with ``config.json`` (their ``BigGANConfig``: ``output_dim``,
``z_dim``, ``class_embed_dim``, ``channel_width``, ``num_classes``, ``layers``, ``attention_layer_position``,
``eps``, ``n_stats``) and ``pytorch_model.bin``, a ``torch.save``\\ d state dict (DeepMind's BigGAN-deep
128/256/512 converted from TF Hub). The state dict is loaded with ``torch.load(weights_only=True)``; no code
from the checkpoint runs.

Our generator uses their state-dict keys (:data:`BIGGAN_KEY_PATTERNS`). The only change is spectral
normalisation: every layer wrapped in ``torch.nn.utils.spectral_norm`` (everything except ``embeddings``
and the final ``generator.bn``) is stored by them as ``weight_orig`` (the raw weight), ``weight_u`` and
``weight_v`` (the power-iteration vectors). In eval mode their forward uses
``weight_orig / σ`` with ``σ = u · (W v)``, ``W`` being ``weight_orig`` flattened to ``[out, -1]``, and runs
no power iteration. The converter computes that effective weight once, with the same float32 operations,
and stores it as our plain ``weight``. (In train mode, which their README example never leaves, each call
would first run one power-iteration step and update ``u`` and ``v`` in place; the converted model
reproduces eval mode.) A state dict whose spectral norm was removed (plain ``weight``, no
``weight_orig``) is copied as it is.

Example:

>>> from sefa_plugin.convert.biggan import convert_biggan
>>> g = convert_biggan("biggan-deep-128/")  # doctest: +SKIP
>>> g.save_pretrained("biggan-deep-128-sefa")  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ..models.biggan import BIGGAN_DEEP_128_LAYERS, BigGANGenerator
from ..utils.files import read_json_config

__all__ = [
    "BIGGAN_CONFIG_DEFAULTS",
    "BIGGAN_KEY_PATTERNS",
    "biggan_config",
    "convert_biggan",
    "convert_biggan_state_dict",
    "load_biggan_files",
    "spectral_normalized_weight",
]

logger = logging.getLogger(__name__)

#: The fields of their ``BigGANConfig`` and its defaults (the BigGAN-deep-128 model), which their loader
#: uses for fields that ``config.json`` leaves out.
BIGGAN_CONFIG_DEFAULTS: dict[str, Any] = {
    "output_dim": 128,
    "z_dim": 128,
    "class_embed_dim": 128,
    "channel_width": 128,
    "num_classes": 1000,
    "layers": [list(layer) for layer in BIGGAN_DEEP_128_LAYERS],
    "attention_layer_position": 8,
    "eps": 1e-4,
    "n_stats": 51,
}

#: Our state-dict keys (regular expressions) and how each is read from their state dict: ``"same"`` copies
#: the tensor of the same name; ``"spectral"`` builds our ``<prefix>.weight`` from their
#: ``<prefix>.weight_orig``, ``<prefix>.weight_u`` and ``<prefix>.weight_v`` (:func:`spectral_normalized_weight`).
#: Block indices count the attention layer, as theirs do.
BIGGAN_KEY_PATTERNS: tuple[tuple[str, str], ...] = (
    (r"embeddings\.weight", "same"),  # class embedding [class_embed_dim, num_classes], no spectral norm
    (r"generator\.gen_z\.weight", "spectral"),  # condition vector -> 4x4 map (TF row, column, channel order)
    (r"generator\.gen_z\.bias", "same"),
    (r"generator\.layers\.\d+\.bn_[0-3]\.(scale|offset)\.weight", "spectral"),  # conditional BN projections
    (r"generator\.layers\.\d+\.bn_[0-3]\.running_(means|vars)", "same"),  # [n_stats, C] standing statistics
    (r"generator\.layers\.\d+\.conv_[0-3]\.weight", "spectral"),
    (r"generator\.layers\.\d+\.conv_[0-3]\.bias", "same"),
    (r"generator\.layers\.\d+\.snconv1x1_(theta|phi|g|o_conv)\.weight", "spectral"),  # self-attention
    (r"generator\.layers\.\d+\.gamma", "same"),
    (r"generator\.bn\.(weight|bias|running_means|running_vars)", "same"),  # final BN, no spectral norm
    (r"generator\.conv_to_rgb\.weight", "spectral"),
    (r"generator\.conv_to_rgb\.bias", "same"),
)

_SOURCE = "pytorch-pretrained-BigGAN state dict"


def _kind(key: str) -> str:
    for pattern, kind in BIGGAN_KEY_PATTERNS:
        if re.fullmatch(pattern, key):
            return kind
    raise ValueError(f"Our key {key!r} matches no entry of BIGGAN_KEY_PATTERNS.")


def spectral_normalized_weight(
    weight_orig: torch.Tensor, weight_u: torch.Tensor, weight_v: torch.Tensor, key: str = "weight"
) -> torch.Tensor:
    """``weight_orig / σ`` with ``σ = u · (W v)``: what ``spectral_norm`` applies in eval mode.

    Args:
        weight_orig: The raw weight ``[out, ...]``.
        weight_u: Left power-iteration vector ``[out]``.
        weight_v: Right power-iteration vector ``[prod(...)]``.
        key: Their key prefix, for error messages.

    Raises:
        ValueError: naming `key` when the shapes disagree or ``σ`` is zero or not finite.
    """
    matrix = weight_orig.reshape(weight_orig.shape[0], -1)
    if weight_u.shape != (matrix.shape[0],) or weight_v.shape != (matrix.shape[1],):
        raise ValueError(
            f"{_SOURCE} key {key + '_u'!r} / {key + '_v'!r} have shapes {list(weight_u.shape)} / "
            f"{list(weight_v.shape)}, expected [{matrix.shape[0]}] / [{matrix.shape[1]}] for {key + '_orig'!r}."
        )
    sigma = torch.dot(weight_u, torch.mv(matrix, weight_v))
    if not torch.isfinite(sigma) or sigma == 0:
        raise ValueError(f"{_SOURCE}: the spectral norm of {key + '_orig'!r} is {float(sigma)}; the file is corrupt.")
    return weight_orig / sigma


def biggan_config(config: Mapping[str, Any], truncation: float = 1.0) -> dict[str, Any]:
    """Our :class:`BigGANGenerator` arguments from their ``config.json`` contents.

    Missing fields take ``BigGANConfig``'s defaults (as their loader does, logged); unknown fields and
    configurations their model would not honour are errors.

    Args:
        config: The parsed ``config.json``.
        truncation: The converted model's truncation (see :class:`BigGANGenerator`).

    Raises:
        ValueError: naming the field.
    """
    if not isinstance(config, Mapping):
        raise ValueError(f"config.json must hold a JSON object, got {type(config).__name__}.")
    unknown = sorted(set(config) - set(BIGGAN_CONFIG_DEFAULTS))
    if unknown:
        raise ValueError(f"config.json has fields BigGANConfig does not define: {unknown}.")
    missing = sorted(set(BIGGAN_CONFIG_DEFAULTS) - set(config))
    if missing:
        logger.info("config.json lacks %s; using BigGANConfig's defaults (the BigGAN-deep-128 values).", missing)
    kwargs = {**BIGGAN_CONFIG_DEFAULTS, **config}
    for name in ("output_dim", "z_dim", "class_embed_dim", "channel_width", "num_classes", "n_stats"):
        value = kwargs[name]
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"config.json field `{name}` must be an integer, got {value!r}.")
    if isinstance(kwargs["eps"], bool) or not isinstance(kwargs["eps"], (int, float)):
        raise ValueError(f"config.json field `eps` must be a number, got {kwargs['eps']!r}.")
    # Their BigGAN sizes the class embedding (and the condition vector, 2 * z_dim) by z_dim and never reads
    # class_embed_dim, so a different value would describe another model than the weights.
    if kwargs["class_embed_dim"] != kwargs["z_dim"]:
        raise ValueError(
            f"config.json field `class_embed_dim` ({kwargs['class_embed_dim']}) must equal `z_dim` "
            f"({kwargs['z_dim']}): pytorch-pretrained-BigGAN builds the class embedding with z_dim outputs."
        )
    kwargs["eps"] = float(kwargs["eps"])
    kwargs["truncation"] = truncation
    return kwargs


def convert_biggan_state_dict(
    state: Mapping[str, Any], config: Mapping[str, Any], truncation: float = 1.0
) -> BigGANGenerator:
    """Build a :class:`BigGANGenerator` from their state dict and parsed ``config.json``.

    Args:
        state: Their ``BigGAN.state_dict()``.
        config: The parsed ``config.json``.
        truncation: The converted model's truncation in (0, 1].

    Raises:
        ValueError: naming the key or field that is missing, misshapen or not understood.
    """
    try:
        generator = BigGANGenerator(**biggan_config(config, truncation=truncation))
    except ValueError as err:
        raise ValueError(f"config.json does not describe a BigGAN-deep model: {err}") from err
    target = generator.state_dict()
    new_state: dict[str, torch.Tensor] = {}
    used: set[str] = set()

    def take(key: str, needed_for: str) -> torch.Tensor:
        if key not in state:
            raise ValueError(f"{_SOURCE} is missing key {key!r} (needed for {needed_for!r}).")
        tensor = state[key]
        if not isinstance(tensor, torch.Tensor):
            raise ValueError(f"{_SOURCE} key {key!r} is a {type(tensor).__name__}, not a tensor.")
        used.add(key)
        return tensor.detach().to("cpu", torch.float32)

    for ours, expected in target.items():
        prefix = ours.removesuffix(".weight")
        spectral = _kind(ours) == "spectral" and f"{prefix}.weight_orig" in state
        theirs = f"{prefix}.weight_orig" if spectral else ours
        tensor = take(theirs, ours)
        if tensor.shape != expected.shape:
            raise ValueError(
                f"{_SOURCE} key {theirs!r} has shape {list(tensor.shape)}, expected {list(expected.shape)} "
                f"(our {ours!r})."
            )
        if spectral:
            u, v = take(f"{prefix}.weight_u", ours), take(f"{prefix}.weight_v", ours)
            tensor = spectral_normalized_weight(tensor, u, v, key=f"{prefix}.weight")
        new_state[ours] = tensor
    unused = sorted(k for k in state if k not in used)
    if unused:
        raise ValueError(f"{_SOURCE} has keys the converter does not understand: {unused}.")
    generator.load_state_dict(new_state, strict=True)
    return generator.eval()


def load_biggan_files(src: str | os.PathLike) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read ``(state_dict, config)`` from their folder, or from the ``.bin`` with ``config.json`` beside it.

    Raises:
        FileNotFoundError: naming the missing file.
        ValueError: when the files are not a state dict and a JSON object.
    """
    path = Path(src)
    weights = path / "pytorch_model.bin" if path.is_dir() else path
    config_path = weights.parent / "config.json"
    for file in (weights, config_path):
        if not file.is_file():
            raise FileNotFoundError(
                f"`src` {str(src)!r}: {str(file)!r} not found (a pytorch-pretrained-BigGAN model is a folder with "
                f"config.json and pytorch_model.bin)."
            )
    config = read_json_config(config_path, "src")
    # Their released files use the legacy (non-zip) format; memory-map the zip format when given one.
    state = torch.load(weights, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(weights))
    if not isinstance(state, Mapping):
        raise ValueError(f"{str(weights)!r} must hold a state dict, got {type(state).__name__}.")
    return dict(state), config


def convert_biggan(src: str | os.PathLike, *, truncation: float = 1.0) -> BigGANGenerator:
    """Convert a pytorch-pretrained-BigGAN model (BigGAN-deep 128/256/512) to :class:`BigGANGenerator`.

    Args:
        src: The model folder, or its ``pytorch_model.bin`` (``config.json`` must sit beside it).
        truncation: The converted model's truncation in (0, 1]; their ``model(t * z, c, t)`` equals our
            ``convert_biggan(src, truncation=t)(z, c)`` for unit truncated-normal ``z``.

    Returns:
        The generator in eval mode, on the CPU, in float32.

    Raises:
        FileNotFoundError: `src` lacks ``config.json`` or ``pytorch_model.bin``.
        ValueError: A config field or state-dict key is missing, misshapen or not understood.

    Example:

    >>> g = convert_biggan("biggan-deep-256/pytorch_model.bin", truncation=0.4)  # doctest: +SKIP
    >>> g.config.img_resolution  # doctest: +SKIP
    256
    """
    state, config = load_biggan_files(src)
    return convert_biggan_state_dict(state, config, truncation=truncation)
