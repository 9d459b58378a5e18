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
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch

from ..models.limits import check_config_int, check_config_number
from ..models.ops import make_resample_filter
from ..models.stylegan2 import StyleGAN2Generator
from ..models.stylegan3 import StyleGAN3Generator
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


# ------------------------------------------------------------------------------------- shared helpers
def infer_channel_config(channels: Mapping[int, int], preferred: tuple[int, int] | None = None) -> tuple[int, int]:
    """Find ``(channel_base, channel_max)`` with ``channels[r] == min(channel_base // r, channel_max)``.

    Args:
        channels: Output channels of each synthesis block, keyed by resolution.
        preferred: A candidate to keep if it reproduces `channels` (e.g. the checkpoint's own kwargs).

    Raises:
        ValueError: No such pair exists (e.g. rosinality's ``channel_multiplier=4``, whose channels grow
            from 512 at 32x32 to 1024 at 64x64).
    """

    def reproduces(base: int, cmax: int) -> bool:
        return all(min(base // res, cmax) == c for res, c in channels.items())

    if preferred is not None and reproduces(*preferred):
        return int(preferred[0]), int(preferred[1])
    cmax = max(channels.values())
    below = sorted((res, c) for res, c in channels.items() if c < cmax)
    base = below[0][0] * below[0][1] if below else cmax * max(channels)
    if reproduces(base, cmax):
        return base, cmax
    raise ValueError(
        f"Synthesis channels {dict(sorted(channels.items()))} cannot be expressed as "
        "min(channel_base // resolution, channel_max), the layout StyleGAN2Generator supports."
    )


def load_mapped_state_dict(
    model: torch.nn.Module,
    source: Mapping[str, torch.Tensor],
    key_map: Mapping[str, str],
    *,
    source_shape: Callable[[str, torch.Size], tuple[int, ...]] | None = None,
    ignored: Callable[[str], bool] | None = None,
    source_name: str = "checkpoint",
    assign: bool = False,
) -> None:
    """Copy ``source[key_map[k]]`` into ``model``'s entry ``k`` for every key of ``model.state_dict()``.

    Args:
        model: The module to fill (all its parameters and buffers must be covered by `key_map`).
        source: The checkpoint's tensors.
        key_map: Our key to the checkpoint key.
        source_shape: ``(our_key, our_shape) -> expected checkpoint shape`` when the layouts differ only by
            a reshape (default: identical shapes).
        ignored: Predicate for checkpoint keys that are known and deliberately not copied.
        source_name: How errors refer to the checkpoint.
        assign: Make the checkpoint's tensors the model's parameters instead of copying them (for private,
            writable sources such as ``torch.load(..., mmap=True)``: the weights are then paged in from the
            file as they are used and never held twice).

    Raises:
        ValueError: naming the key, for a missing key, a shape mismatch, or a checkpoint key that nothing
            consumed.
    """
    target = model.state_dict()
    unmapped = [k for k in target if k not in key_map]
    if unmapped:
        raise ValueError(f"No {source_name} key is mapped to our key(s) {unmapped}.")
    new_state: dict[str, torch.Tensor] = {}
    for ours, theirs in key_map.items():
        if ours not in target:
            raise ValueError(f"Key map names {ours!r}, which our model does not have.")
        if theirs not in source:
            raise ValueError(f"{source_name} is missing key {theirs!r} (needed for {ours!r}).")
        tensor = source[theirs]
        if not isinstance(tensor, torch.Tensor):
            raise ValueError(f"{source_name} key {theirs!r} is a {type(tensor).__name__}, not a tensor.")
        shape = target[ours].shape
        expected = tuple(shape) if source_shape is None else tuple(source_shape(ours, shape))
        if tuple(tensor.shape) != expected:
            raise ValueError(
                f"{source_name} key {theirs!r} has shape {list(tensor.shape)}, expected {list(expected)} "
                f"(our {ours!r} is {list(shape)})."
            )
        new_state[ours] = tensor.detach().reshape(shape).to(target[ours].dtype)
    used = set(key_map.values())
    unused = sorted(k for k in source if k not in used and not (ignored is not None and ignored(k)))
    if unused:
        raise ValueError(f"{source_name} has keys the converter does not understand: {unused}.")
    model.load_state_dict(new_state, strict=True, assign=assign)


def resample_taps(filt: torch.Tensor, key: str) -> tuple[float, ...]:
    """Recover separable FIR taps (normalised to sum 1) from a 2-D resampling filter.

    Raises:
        ValueError: naming `key` when the filter is not a normalised outer product.
    """
    if filt.ndim != 2 or filt.shape[0] != filt.shape[1]:
        raise ValueError(f"{key!r} must be a square 2-D filter, got shape {list(filt.shape)}.")
    taps = filt.double().sum(dim=0)
    taps = taps / taps.sum()
    if not torch.allclose(make_resample_filter(taps.tolist()).double(), filt.double() / filt.double().sum(), atol=1e-6):
        raise ValueError(f"{key!r} is not a separable FIR filter; StyleGAN2Generator needs separable taps.")
    default = make_resample_filter((1, 3, 3, 1)).double()
    if filt.shape == default.shape and torch.allclose(filt.double() / filt.double().sum(), default, atol=1e-6):
        return (1, 3, 3, 1)
    return tuple(float(t) for t in taps)


# ------------------------------------------------------------------------------------------ NVIDIA
def key_map_from_patterns(keys: Iterable[str], patterns: Sequence[tuple[str, str]], table_name: str) -> dict[str, str]:
    r"""Our key to the checkpoint's, for every key in `keys`, from ``(regex, template)`` rows.

    The first row whose regex matches a key whole gives the checkpoint key (``match.expand(template)``).

    Raises:
        ValueError: naming a key that no row of `table_name` covers.

    Example:

    >>> from sefa_plugin.convert.nvidia import key_map_from_patterns
    >>> rows = [(r"fc(\d+)\.weight", r"dense\1.weight"), (r".*", r"\g<0>")]
    >>> key_map_from_patterns(["b4.const", "fc0.weight"], rows, "rows")
    {'b4.const': 'b4.const', 'fc0.weight': 'dense0.weight'}
    """
    out: dict[str, str] = {}
    for key in keys:
        for pattern, template in patterns:
            match = re.fullmatch(pattern, key)
            if match:
                out[key] = match.expand(template)
                break
        else:
            raise ValueError(f"Key {key!r} is not covered by {table_name}.")
    return out


def nvidia_key_map(generator: StyleGAN2Generator) -> dict[str, str]:
    """Our key to NVIDIA's key, for every parameter and buffer of `generator`.

    Raises:
        ValueError: naming a key of ours that no row of :data:`NVIDIA_KEY_PATTERNS` covers.
    """
    return key_map_from_patterns(generator.state_dict(), NVIDIA_KEY_PATTERNS, "NVIDIA_KEY_PATTERNS")


def _attr(record: PersistentRecord, name: str, default: Any = None) -> Any:
    return record.attributes.get(name, default)


def _require(value: Any, name: str) -> Any:
    if value is None:
        raise ValueError(f"The NVIDIA generator record does not say its `{name}` (init_kwargs or attributes).")
    return value


def nvidia_mapping_config(mapping: PersistentRecord, mapping_kw: Mapping[str, Any]) -> dict[str, Any]:
    """``mapping_layers``, ``mapping_lr_multiplier`` and ``w_avg_beta`` of an NVIDIA ``MappingNetwork`` record.

    The same network in StyleGAN2 and StyleGAN3 pickles: the recorded attributes win over `mapping_kw`
    (the generator's ``mapping_kwargs``), which win over NVIDIA's defaults.

    Raises:
        ValueError: The ``fc`` layers are not ``fc0 … fc{n-1}``, disagree with ``num_layers``, or use an
            activation other than leaky ReLU.
    """
    fc_names = sorted((n for n in mapping.modules if re.fullmatch(r"fc\d+", n)), key=lambda n: int(n[2:]))
    if not fc_names or fc_names != [f"fc{i}" for i in range(len(fc_names))]:
        raise ValueError(f"Unexpected mapping layers {fc_names} in the NVIDIA generator.")
    check_config_int("mapping_layers", len(fc_names))
    declared = _attr(mapping, "num_layers", mapping_kw.get("num_layers", len(fc_names)))
    if check_config_int("mapping_layers", declared) != len(fc_names):
        raise ValueError(f"mapping.num_layers says {declared}, but the record has {len(fc_names)} fc layers.")
    for name in fc_names:
        activation = _attr(mapping.get(name), "activation", mapping_kw.get("activation", "lrelu"))
        if activation != "lrelu":
            raise ValueError(f"mapping.{name} uses activation {activation!r}; only 'lrelu' is supported.")
    w_avg_beta = _attr(mapping, "w_avg_beta", mapping_kw.get("w_avg_beta", 0.998))
    lr_multiplier = _attr(mapping.get("fc0"), "bias_gain", mapping_kw.get("lr_multiplier", 0.01))
    return dict(
        mapping_layers=len(fc_names),
        mapping_lr_multiplier=check_config_number("mapping_lr_multiplier", lr_multiplier, 0, open_low=True),
        w_avg_beta=0.998 if w_avg_beta is None else check_config_number("w_avg_beta", w_avg_beta, 0, 1),
    )


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
    # Imported here: nvidia_stylegan3 reuses this module's helpers, so a top-level import would be circular.
    from .nvidia_stylegan3 import convert_stylegan3_record, is_stylegan3_record

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
