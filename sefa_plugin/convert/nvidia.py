"""Convert NVIDIA network pickles (stylegan2-ada-pytorch / stylegan3) to :class:`StyleGAN2Generator`.

StyleGAN3 generators (networks_stylegan3) found in such a pickle are handed to
:mod:`sefa_plugin.convert.nvidia_stylegan3` and become :class:`StyleGAN3Generator`.

NVIDIA's ``network-snapshot-*.pkl`` and released ``*.pkl`` files are plain pickles of a dict
``{"G": ..., "D": ..., "G_ema": ..., "augment_pipe": ..., "training_set_kwargs": ...}`` whose networks are
``torch_utils.persistence`` objects. They are read with :func:`~sefa_plugin.convert.safe_unpickler.safe_load`,
which never runs the pickled source code: every network comes back as an inert
:class:`~sefa_plugin.convert.safe_unpickler.PersistentRecord` (class name, init kwargs, parameters,
buffers, children).

Our generator uses NVIDIA's parameter and buffer names, so the key map is the identity restricted to the
StyleGAN2 "skip" generator (:data:`NVIDIA_KEY_PATTERNS`); any other key (``skip`` convolutions of the
``resnet`` architecture ...) is reported rather than silently dropped. The config is
read from the record's ``init_kwargs`` (stylegan2-ada-pytorch nests ``synthesis_kwargs``; stylegan3's
``networks_stylegan2`` passes them flat), cross-checked with the runtime attributes the records carry
(``num_layers``, ``w_avg_beta``, ``conv_clamp``, ``architecture``) and with every tensor shape.

NVIDIA runs the ``num_fp16_res`` highest resolutions in float16 on GPUs; the converted generator
computes in float32, which matches NVIDIA's output with ``force_fp32=True``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ..models.limits import check_config_int
from ..models.stylegan2 import StyleGAN2Generator
from ..models.stylegan3 import StyleGAN3Generator
from .keymap import (
    infer_channel_config,
    key_map_from_patterns,
    load_mapped_state_dict,
    resample_taps,
)
from .nvidia_common import _attr, _require, nvidia_mapping_config
from .nvidia_stylegan3 import convert_stylegan3_record, is_stylegan3_record
from .safe_unpickler import PersistentRecord, Source, safe_load

__all__ = [
    "NVIDIA_KEY_PATTERNS",
    "convert_nvidia_pickle",
    "convert_nvidia_record",
    "infer_channel_config",
    "key_map_from_patterns",
    "load_mapped_state_dict",
    "nvidia_generator_config",
    "nvidia_key_map",
    "nvidia_mapping_config",
    "resample_taps",
]

#: Regular expressions of the NVIDIA StyleGAN2 generator keys this converter accepts, each mapped to our
#: key by the replacement template (the identity: our module uses NVIDIA's names one to one).
NVIDIA_KEY_PATTERNS: tuple[tuple[str, str], ...] = (
    (r"mapping\.embed\.(weight|bias)", r"\g<0>"),  # class-label embedding (c_dim > 0)
    (r"mapping\.fc\d+\.(weight|bias)", r"\g<0>"),  # mapping MLP, stored / lr_multiplier
    (r"mapping\.w_avg", r"\g<0>"),  # tracked average w (truncation centre)
    (r"synthesis\.b\d+\.const", r"\g<0>"),  # learned 4x4 input
    (r"synthesis\.b\d+\.resample_filter", r"\g<0>"),  # FIR filter of the RGB skip upsampling
    (r"synthesis\.b\d+\.conv[01]\.(weight|bias|noise_const|noise_strength|resample_filter)", r"\g<0>"),
    (r"synthesis\.b\d+\.conv[01]\.affine\.(weight|bias)", r"\g<0>"),  # style affine (A)
    (r"synthesis\.b\d+\.torgb\.(weight|bias)", r"\g<0>"),
    (r"synthesis\.b\d+\.torgb\.affine\.(weight|bias)", r"\g<0>"),
)

#: Class names that identify a StyleGAN3 (networks_stylegan3) generator inside a pickle.
_STYLEGAN3_CLASSES = ("SynthesisInput",)


# ------------------------------------------------------------------------------------------ NVIDIA
def nvidia_key_map(generator: StyleGAN2Generator) -> dict[str, str]:
    """Our key to NVIDIA's key, for every parameter and buffer of `generator`.

    Raises:
        ValueError: naming a key of ours that no row of :data:`NVIDIA_KEY_PATTERNS` covers.
    """
    return key_map_from_patterns(generator.state_dict(), NVIDIA_KEY_PATTERNS, "NVIDIA_KEY_PATTERNS")


def nvidia_generator_config(g: PersistentRecord) -> dict[str, Any]:
    """Read a :class:`StyleGAN2Generator` config from NVIDIA's ``Generator`` record.

    Raises:
        ValueError: The record is not a StyleGAN2 generator (StyleGAN3 records are read by
            :func:`~sefa_plugin.convert.nvidia_stylegan3.stylegan3_generator_config`; the ``orig``/``resnet``
            synthesis architectures are not supported yet), or its kwargs and tensors disagree.
    """
    if g.class_name != "Generator":
        raise ValueError(f"Expected an NVIDIA `Generator` record, got class {g.class_name!r}.")
    found = sorted({r.class_name for _, r in g.named_records()} & set(_STYLEGAN3_CLASSES))
    if found or "input" in (g.modules.get("synthesis") or PersistentRecord("?")).modules:
        raise ValueError(
            "This pickle holds a StyleGAN3 generator (networks_stylegan3: "
            f"{found or ['synthesis.input']}): read its config with "
            "`nvidia_stylegan3.stylegan3_generator_config` (`convert_nvidia_record` does so by itself)."
        )
    for name in ("mapping", "synthesis"):
        if g.modules.get(name) is None:
            raise ValueError(f"The Generator record has no `{name}` child module.")
    kw = dict(g.init_kwargs)
    mapping_kw = dict(kw.get("mapping_kwargs") or {})
    # stylegan2-ada-pytorch: Generator(..., synthesis_kwargs={...}); stylegan3: Generator(..., **synthesis_kwargs)
    synth_kw = dict(kw.get("synthesis_kwargs") or {})
    for key in ("channel_base", "channel_max", "conv_clamp", "architecture", "resample_filter", "num_fp16_res"):
        if key in kw:
            synth_kw.setdefault(key, kw[key])
    mapping, synthesis = g.get("mapping"), g.get("synthesis")
    sd = g.state_dict()

    # Sizes are checked against the model limits before they are used for anything.
    z_dim, c_dim, w_dim, img_resolution, img_channels = (
        check_config_int(name, _require(kw.get(name, _attr(g, name, default)), name))
        for name, default in (("z_dim", None), ("c_dim", 0), ("w_dim", None), ("img_resolution", None),
                              ("img_channels", None))
    )  # fmt: skip

    mapping_config = nvidia_mapping_config(mapping, mapping_kw)
    num_layers = mapping_config["mapping_layers"]
    embed_features = sd["mapping.embed.weight"].shape[0] if c_dim else None
    layer_features = sd["mapping.fc0.weight"].shape[0] if num_layers > 1 else None

    log2 = int(math.log2(img_resolution))
    resolutions = [2**i for i in range(2, log2 + 1)]
    channels: dict[int, int] = {}
    for res in resolutions:
        block = synthesis.modules.get(f"b{res}")
        if block is None:
            raise ValueError(f"The NVIDIA synthesis network has no block `synthesis.b{res}`.")
        architecture = _attr(block, "architecture", synth_kw.get("architecture", "skip"))
        if architecture != "skip":
            raise ValueError(f"synthesis.b{res} uses architecture {architecture!r}; only 'skip' is supported so far.")
        key = f"synthesis.b{res}.conv1.weight"
        if key not in sd:
            raise ValueError(f"The NVIDIA generator is missing {key!r}.")
        if tuple(sd[key].shape[2:]) != (3, 3):
            raise ValueError(f"{key!r} has kernel {list(sd[key].shape[2:])}; only 3x3 convolutions are supported.")
        channels[res] = sd[key].shape[0]
        for conv in ("conv0", "conv1") if res > 4 else ("conv1",):
            layer = block.get(conv)
            if not _attr(layer, "use_noise", True) or _attr(layer, "activation", "lrelu") != "lrelu":
                raise ValueError(f"synthesis.b{res}.{conv} must use noise and 'lrelu' to be converted.")
    preferred = (
        check_config_int("channel_base", synth_kw.get("channel_base", 32768)),
        check_config_int("channel_max", synth_kw.get("channel_max", 512)),
    )
    channel_base, channel_max = infer_channel_config(channels, preferred)
    conv_clamp = _attr(synthesis.get("b4.conv1"), "conv_clamp", synth_kw.get("conv_clamp"))
    if "synthesis.b4.resample_filter" not in sd:
        raise ValueError("The NVIDIA generator is missing 'synthesis.b4.resample_filter'.")
    resample_filter = resample_taps(sd["synthesis.b4.resample_filter"], "synthesis.b4.resample_filter")

    config: dict[str, Any] = dict(
        z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels,
        channel_base=channel_base, channel_max=channel_max, **mapping_config,
        conv_clamp=None if conv_clamp is None else float(conv_clamp), resample_filter=resample_filter,
    )  # fmt: skip
    if embed_features is not None and embed_features != w_dim:
        config["mapping_embed_features"] = int(embed_features)
    if layer_features is not None and layer_features != w_dim:
        config["mapping_layer_features"] = int(layer_features)
    return config


def convert_nvidia_record(g: PersistentRecord) -> StyleGAN2Generator | StyleGAN3Generator:
    """Build our generator from an NVIDIA ``Generator`` record (see :func:`convert_nvidia_pickle`).

    A networks_stylegan3 record becomes a :class:`StyleGAN3Generator`
    (:func:`~sefa_plugin.convert.nvidia_stylegan3.convert_stylegan3_record`), any other a
    :class:`StyleGAN2Generator`.
    """

    if g.class_name == "Generator" and is_stylegan3_record(g):
        return convert_stylegan3_record(g)
    generator = StyleGAN2Generator(**nvidia_generator_config(g))
    load_mapped_state_dict(generator, g.state_dict(), nvidia_key_map(generator), source_name="NVIDIA pickle")
    return generator.eval()


def convert_nvidia_pickle(path: Source, key: str = "G_ema") -> StyleGAN2Generator | StyleGAN3Generator:
    """Convert an NVIDIA pickle: StyleGAN2 (stylegan2-ada-pytorch, stylegan3's networks_stylegan2) or StyleGAN3.

    Nothing in the pickle is executed (see :mod:`sefa_plugin.convert.safe_unpickler`).

    Args:
        path: The ``.pkl`` file (a path, its bytes or a binary stream).
        key: Which network of the pickle's dict to convert (``"G_ema"``, the EMA generator, by default).

    Returns:
        The generator in eval mode, on the CPU, in float32: a :class:`StyleGAN3Generator` for a
        networks_stylegan3 generator (configs T and R), a :class:`StyleGAN2Generator` otherwise.

    Raises:
        UnsafePickleError: The pickle names a global outside the allow-list.
        ValueError: `key` is missing, or the network is not a supported StyleGAN2/StyleGAN3 generator.

    Example:

    >>> from sefa_plugin.convert import convert_nvidia_pickle
    >>> g = convert_nvidia_pickle("stylegan2-ffhq-1024x1024.pkl")  # doctest: +SKIP
    >>> img = g(torch.randn(1, g.config.z_dim), truncation_psi=0.7)  # doctest: +SKIP
    """
    data = safe_load(path)
    if isinstance(data, Mapping):
        if key not in data:
            raise ValueError(f"The pickle has no `key` {key!r}; its keys are {sorted(map(str, data))}.")
        data = data[key]
    if not isinstance(data, PersistentRecord):
        raise ValueError(f"Entry {key!r} of the pickle is a {type(data).__name__}, not an NVIDIA persistent network.")
    return convert_nvidia_record(data)
