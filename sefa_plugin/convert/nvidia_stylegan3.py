"""Convert NVIDIA StyleGAN3 network pickles (NVlabs/stylegan3, configs T and R) to :class:`StyleGAN3Generator`.

The pickles are the same container as NVIDIA's StyleGAN2 ones (``{"G_ema": ..., ...}`` of
``torch_utils.persistence`` objects) and are read with the same restricted unpickler
(:func:`~sefa_plugin.convert.safe_unpickler.safe_load`): nothing in the file is executed and every network
comes back as an inert :class:`~sefa_plugin.convert.safe_unpickler.PersistentRecord`.
:func:`sefa_plugin.convert.nvidia.convert_nvidia_pickle` sends StyleGAN3 generators here
(:func:`is_stylegan3_record`).

Our module uses NVIDIA's parameter and buffer names, so the key map is the identity restricted to the
keys of :data:`STYLEGAN3_KEY_PATTERNS`; any other key is reported. The resampling filters are buffers of
the checkpoint and are copied like the weights.

The config is read from the record's ``init_kwargs`` (``Generator(z_dim, c_dim, w_dim, img_resolution,
img_channels, mapping_kwargs={...}, **synthesis_kwargs)``, where ``synthesis_kwargs`` also carries the
``SynthesisLayer`` arguments ``conv_kernel``, ``use_radial_filters``, ``conv_clamp``,
``magnitude_ema_beta`` ...), falling back to the runtime attributes the records carry and to NVIDIA's
defaults. It is then cross-checked: the layer names NVIDIA derives from each layer's size and channels,
each layer's up/down factors and padding, and every resampling filter we design from the config must
agree with the checkpoint, so a wrongly inferred frequency layout cannot go unnoticed.

``num_fp16_res`` is ignored: the converted generator computes in float32, which matches NVIDIA's output
with ``force_fp32=True``.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import torch

from ..models.limits import check_config_int, check_config_number
from ..models.stylegan3 import StyleGAN3Generator
from .keymap import key_map_from_patterns, load_mapped_state_dict
from .nvidia_common import nvidia_mapping_config
from .safe_unpickler import PersistentRecord

__all__ = [
    "STYLEGAN3_KEY_PATTERNS",
    "convert_stylegan3_record",
    "is_stylegan3_record",
    "stylegan3_generator_config",
    "stylegan3_key_map",
]

#: Regular expressions of the NVIDIA StyleGAN3 generator keys this converter accepts, each mapped to our
#: key by the replacement template (the identity: our module uses NVIDIA's names one to one).
STYLEGAN3_KEY_PATTERNS: tuple[tuple[str, str], ...] = (
    (r"mapping\.embed\.(weight|bias)", r"\g<0>"),  # class-label embedding (c_dim > 0)
    (r"mapping\.fc\d+\.(weight|bias)", r"\g<0>"),  # mapping MLP, stored / lr_multiplier
    (r"mapping\.w_avg", r"\g<0>"),  # tracked average w (truncation centre)
    (r"synthesis\.input\.(weight|transform|freqs|phases)", r"\g<0>"),  # Fourier-feature input
    (r"synthesis\.input\.affine\.(weight|bias)", r"\g<0>"),  # w -> (cos, sin, tx, ty)
    (r"synthesis\.L\d+_\d+_\d+\.(weight|bias|magnitude_ema|up_filter|down_filter)", r"\g<0>"),
    (r"synthesis\.L\d+_\d+_\d+\.affine\.(weight|bias)", r"\g<0>"),  # style affine (A)
)

#: NVIDIA's defaults for the synthesis arguments a pickle's ``init_kwargs`` may leave out
#: (``SynthesisNetwork`` and ``SynthesisLayer`` signatures of networks_stylegan3).
_SYNTHESIS_DEFAULTS: dict[str, Any] = dict(
    channel_base=32768, channel_max=512, num_layers=14, num_critical=2, first_cutoff=2.0, first_stopband=2**2.1,
    last_stopband_rel=2**0.3, margin_size=10, output_scale=0.25, conv_kernel=3, filter_size=6,
    lrelu_upsampling=2, use_radial_filters=False, conv_clamp=256, magnitude_ema_beta=0.999,
)  # fmt: skip
_INT_KWARGS = ("channel_base", "channel_max", "num_layers", "num_critical", "margin_size", "conv_kernel",
               "filter_size", "lrelu_upsampling")  # fmt: skip
_FLOAT_KWARGS = ("first_cutoff", "first_stopband", "last_stopband_rel", "output_scale", "magnitude_ema_beta")
#: Synthesis arguments that are recorded as plain attributes of the ``synthesis`` record.
_SYNTHESIS_ATTRIBUTES = ("num_layers", "num_critical", "margin_size", "output_scale")
#: Synthesis arguments recorded by every ``SynthesisLayer`` (our name: NVIDIA's attribute name).
_LAYER_ATTRIBUTES = {
    "conv_kernel": "conv_kernel",
    "conv_clamp": "conv_clamp",
    "magnitude_ema_beta": "magnitude_ema_beta",
    "use_radial_filters": "down_radial",
}
#: Arguments that change only NVIDIA's run-time precision, not the computation we reproduce.
_IGNORED_KWARGS = ("num_fp16_res",)
_FILTER_ATOL = 1e-5


def is_stylegan3_record(g: PersistentRecord) -> bool:
    """Whether an NVIDIA ``Generator`` record is a networks_stylegan3 one (it has ``synthesis.input``)."""
    synthesis = g.modules.get("synthesis")
    return any(r.class_name == "SynthesisInput" for _, r in g.named_records()) or (
        synthesis is not None and synthesis.modules.get("input") is not None
    )


def stylegan3_key_map(generator: StyleGAN3Generator) -> dict[str, str]:
    """Our key to NVIDIA's key, for every parameter and buffer of `generator`.

    Raises:
        ValueError: naming a key of ours that no row of :data:`STYLEGAN3_KEY_PATTERNS` covers.
    """
    return key_map_from_patterns(generator.state_dict(), STYLEGAN3_KEY_PATTERNS, "STYLEGAN3_KEY_PATTERNS")


def _plain(value: Any) -> Any:
    """numpy scalars and arrays (as NVIDIA records them) to Python numbers and lists; tuples to lists."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray | tuple):
        return [_plain(v) for v in value]
    return value


def _layer_names(synthesis: PersistentRecord) -> list[str]:
    names = synthesis.attributes.get("layer_names")
    if names is None:
        names = sorted(
            (n for n in synthesis.modules if re.fullmatch(r"L\d+_\d+_\d+", n)), key=lambda n: int(n[1:].split("_")[0])
        )
    return [str(n) for n in names]


def _recorded_synthesis_kwargs(synthesis: PersistentRecord) -> dict[str, Any]:
    """Synthesis arguments as the built modules recorded them (attributes of the synthesis, L0 and input)."""
    names = _layer_names(synthesis)
    first_layer = synthesis.modules.get(names[0]) if names else None
    if first_layer is None:
        raise ValueError("The NVIDIA StyleGAN3 synthesis network has no layers `L0_...`.")
    recorded = {k: synthesis.attributes[k] for k in _SYNTHESIS_ATTRIBUTES if k in synthesis.attributes}
    recorded.setdefault("num_layers", len(names) - 1)  # every layer but ToRGB
    # L0 is never ToRGB nor critically sampled, so it shows `conv_kernel` and `use_radial_filters` as given.
    for key, attr in _LAYER_ATTRIBUTES.items():
        if attr in first_layer.attributes:
            recorded[key] = first_layer.attributes[attr]
    bandwidth = synthesis.get("input").attributes.get("bandwidth")
    if bandwidth is not None:
        recorded["first_cutoff"] = bandwidth
    return {k: _plain(v) for k, v in recorded.items()}


def _synthesis_config(synthesis: PersistentRecord, kw: dict[str, Any]) -> dict[str, Any]:
    """Pop the synthesis arguments from `kw`; fall back to the recorded values, then to NVIDIA's defaults."""
    recorded = _recorded_synthesis_kwargs(synthesis)
    config: dict[str, Any] = {}
    for key, default in _SYNTHESIS_DEFAULTS.items():
        value = kw.pop(key, recorded.get(key, default))
        if key in recorded and recorded[key] != value:
            raise ValueError(
                f"The NVIDIA generator's init_kwargs say `{key}`={value!r}, but its layers were built with "
                f"{recorded[key]!r}."
            )
        config[key] = value
    # Plain Python types, as our config stores them; sizes checked against the model limits before any use.
    for key in _INT_KWARGS:
        config[key] = check_config_int(key, config[key])
    for key in _FLOAT_KWARGS:
        config[key] = check_config_number(key, config[key])
    config["use_radial_filters"] = bool(config["use_radial_filters"])
    config["conv_clamp"] = (
        None if config["conv_clamp"] is None else check_config_number("conv_clamp", config["conv_clamp"])
    )
    return config


def _mapping_config(mapping: PersistentRecord, mapping_kw: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(mapping_kw) - {"num_layers", "lr_multiplier", "w_avg_beta"})
    if unknown:
        raise ValueError(f"The NVIDIA generator has mapping_kwargs the converter does not understand: {unknown}.")
    return nvidia_mapping_config(mapping, mapping_kw)


def stylegan3_generator_config(g: PersistentRecord) -> dict[str, Any]:
    """Read a :class:`StyleGAN3Generator` config from NVIDIA's networks_stylegan3 ``Generator`` record.

    Raises:
        ValueError: The record is not a StyleGAN3 generator, lacks a required value, has init kwargs we do
            not understand, or its kwargs and runtime attributes disagree (the message names the argument).
    """
    if g.class_name != "Generator" or not is_stylegan3_record(g):
        raise ValueError(f"Expected an NVIDIA networks_stylegan3 `Generator` record, got class {g.class_name!r}.")
    for name in ("mapping", "synthesis"):
        if g.modules.get(name) is None:
            raise ValueError(f"The Generator record has no `{name}` child module.")
    kw = {k: _plain(v) for k, v in g.init_kwargs.items()}
    mapping_kw = {k: _plain(v) for k, v in dict(kw.pop("mapping_kwargs", None) or {}).items()}
    config: dict[str, Any] = {}
    for name in ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels"):
        value = kw.pop(name, g.attributes.get(name))
        if value is None:
            raise ValueError(f"The NVIDIA generator record does not say its `{name}` (init_kwargs or attributes).")
        config[name] = check_config_int(name, value)
    config.update(_synthesis_config(g.get("synthesis"), kw))
    for key in _IGNORED_KWARGS:
        kw.pop(key, None)
    if kw:
        raise ValueError(
            f"The NVIDIA StyleGAN3 generator has init_kwargs the converter does not understand: {sorted(kw)}."
        )
    config.update(_mapping_config(g.get("mapping"), mapping_kw))
    return config


def _check_layout(generator: StyleGAN3Generator, g: PersistentRecord) -> None:
    """Check that the layers we built from the config are the checkpoint's (names, resampling, filters)."""
    synthesis = g.get("synthesis")
    theirs = _layer_names(synthesis)
    ours = generator.synthesis.layer_names
    if theirs != ours:
        raise ValueError(
            f"The config read from the NVIDIA pickle gives layers {ours}, but the checkpoint has {theirs} "
            "(layer names encode each layer's size and channels)."
        )
    sd = g.state_dict()
    for name, layer in zip(ours, generator.synthesis.layers(), strict=True):
        attrs = synthesis.get(name).attributes
        for attr in ("up_factor", "down_factor", "padding", "is_torgb"):
            if attr in attrs and _plain(attrs[attr]) != _plain(getattr(layer, attr)):
                raise ValueError(
                    f"synthesis.{name}.{attr} is {_plain(attrs[attr])!r} in the NVIDIA pickle but "
                    f"{_plain(getattr(layer, attr))!r} from the config read from it."
                )
        for buffer in ("up_filter", "down_filter"):
            key = f"synthesis.{name}.{buffer}"
            designed = getattr(layer, buffer)
            stored = sd.get(key)
            if (designed is None) != (stored is None):
                raise ValueError(f"NVIDIA pickle key {key!r} is {'missing' if stored is None else 'unexpected'}.")
            if designed is not None and (
                stored.shape != designed.shape or not torch.allclose(stored.float(), designed, atol=_FILTER_ATOL)
            ):
                raise ValueError(
                    f"NVIDIA pickle key {key!r} differs from the filter designed from the config read from the "
                    "pickle (its frequency layout kwargs are inconsistent with its weights)."
                )


def convert_stylegan3_record(g: PersistentRecord) -> StyleGAN3Generator:
    """Build a :class:`StyleGAN3Generator` from an NVIDIA networks_stylegan3 ``Generator`` record.

    Example:

    >>> from sefa_plugin.convert import convert_nvidia_pickle
    >>> g = convert_nvidia_pickle("stylegan3-t-ffhq-1024x1024.pkl")  # doctest: +SKIP
    >>> type(g).__name__  # doctest: +SKIP
    'StyleGAN3Generator'
    """
    generator = StyleGAN3Generator(**stylegan3_generator_config(g))
    _check_layout(generator, g)
    load_mapped_state_dict(generator, g.state_dict(), stylegan3_key_map(generator), source_name="NVIDIA pickle")
    return generator.eval()
