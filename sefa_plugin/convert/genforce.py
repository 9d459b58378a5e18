"""Convert genforce checkpoints (PGGAN, StyleGAN, StyleGAN2) and huggan Hub folders to our generators.

genforce (https://github.com/genforce/genforce, and the official SeFa code https://github.com/genforce/sefa,
both MIT) stores generators as ``torch.save`` dicts: ``{"generator_smooth": state_dict, "generator": ...,
...}`` (the smoothed EMA generator is preferred, as the official ``load_generator`` does), or a bare state
dict. They are read with ``torch.load(weights_only=True)``; nothing is executed. The huggan organisation's
Hub repos (e.g. ``huggan/pggan-celebahq-1024``, ``huggan/stylegan_car512``) could not be inspected from
here: they are treated as genforce state dicts saved as ``pytorch_model.bin`` (or ``model.safetensors``)
next to a ``config.json`` holding genforce's constructor arguments (``resolution``, ``z_space_dim``,
``fused_scale`` ...), as ``huggingface_hub.PyTorchModelHubMixin`` writes them.

The state dict names no configuration, so it is inferred from keys and shapes
(:func:`genforce_generator_config`):

* the architecture from marker keys (:func:`detect_genforce_architecture`);
* the resolution from the number of synthesis layers (``2 · log2(resolution) − 2``);
* ``z_dim`` from the first layer's input width (PGGAN: ``layer0.weight`` ``[C, z_dim + c_dim, 4, 4]``;
  StyleGAN/StyleGAN2: ``mapping.dense0.weight`` ``[F, z_dim · (2 if labels else 1)]``), ``c_dim`` from
  ``mapping.label_weight`` ``[c_dim, z_dim]`` (PGGAN: from `c_dim` or ``config.json``'s ``label_size``,
  as its label columns cannot be told from ``z`` columns), ``w_dim`` from the last mapping layer's output,
  the mapping depth and hidden width from the ``mapping.dense{i}`` layers;
* ``channel_base``/``channel_max`` from the per-resolution output channels
  (:func:`~sefa_plugin.convert.nvidia.infer_channel_config`), ``img_channels`` from the final ToRGB.

What the weights cannot tell is taken from ``config.json`` when present, else from genforce's defaults,
overridable by argument: the mapping learning-rate multiplier (0.01) and StyleGAN's ``fused_scale``
(``"auto"``). Settings the targets do not implement (``final_tanh``, ``use_wscale=False``,
``const_input=False``, ``repeat_w=False``, StyleGAN2 ``architecture`` other than ``"skip"``, conditional
StyleGAN2, a PGGAN/StyleGAN ``lod`` ≠ 0, i.e. a generator caught mid-growth) are errors.

Key mappings (:func:`genforce_key_map`):

* PGGAN → :class:`~sefa_plugin.models.PGGANGenerator`: identity, except ``output{last}.*`` → ``output.*``;
  lower-resolution ``output{b}`` layers and ``lod`` are dropped.
* StyleGAN → :class:`~sefa_plugin.models.StyleGANGenerator`: identity, except
  ``synthesis.output{last}.*`` → ``synthesis.output.*``; lower-resolution ToRGBs, ``synthesis.lod`` and the
  constant blur kernels (checked) are dropped.
* StyleGAN2 (genforce layout) → :class:`~sefa_plugin.models.StyleGAN2Generator` (NVIDIA layout):
  ``mapping.dense{i}`` → ``mapping.fc{i}``; ``truncation.w_avg`` → ``mapping.w_avg``;
  ``synthesis.early_layer.const`` ``[1, C, 4, 4]`` → ``synthesis.b4.const`` ``[C, 4, 4]``;
  ``synthesis.layer0`` → ``b4.conv1``, ``layer{2k−1}``/``layer{2k}`` → ``conv0``/``conv1`` of block
  ``b{4·2**k}``, ``output{k}`` → its ``torgb``; per layer ``style.weight`` → ``affine.weight``,
  ``style.bias`` → ``affine.bias`` **+ 1** (genforce adds the constant 1 at run time, NVIDIA stores it in
  the bias), ``noise`` ``[1, 1, r, r]`` → ``noise_const`` ``[r, r]``, ``noise_strength``, ``weight``,
  ``bias`` as they are. The upsampling convolutions (``layer{2k−1}.weight``) are flipped spatially: genforce
  flips the kernel of its transposed convolution, NVIDIA's ``conv2d_resample(up=2)`` does not. genforce
  scales the conv weights by ``1/sqrt(fan_in)`` before (de)modulation and NVIDIA does not; demodulation
  cancels that constant, and for ToRGB (not demodulated) NVIDIA applies the same ``1/sqrt(fan_in)`` to
  the styles, so the weights copy unscaled. The FIR kernels (``filter.kernel``, ``upsample.kernel``) are
  checked against the [1, 3, 3, 1] filter and dropped.

Outputs agree with genforce's ``G(z, trunc_psi=ψ, trunc_layers=L, randomize_noise=False)['image']`` as
``G(z, truncation_psi=ψ, truncation_cutoff=L, noise_mode="const")`` (for ψ < 1; genforce ignores ψ ≥ 1).

License: genforce's code is MIT; the official PGGAN and StyleGAN weights it redistributes were
released by NVIDIA under CC BY-NC 4.0 (non-commercial); StyleGAN2's under the Nvidia Source Code License-NC.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from ..models.pggan import PGGANGenerator
from ..models.stylegan import StyleGANGenerator
from ..models.stylegan2 import StyleGAN2Generator
from ..utils.files import read_json_config
from .keymap import infer_channel_config, load_mapped_state_dict

__all__ = [
    "GENFORCE_ARCHITECTURES",
    "GENFORCE_LAYOUTS",
    "convert_genforce",
    "convert_genforce_state_dict",
    "detect_genforce_architecture",
    "extract_genforce_state",
    "genforce_generator_config",
    "genforce_key_map",
    "load_genforce_checkpoint",
]

logger = logging.getLogger(__name__)

#: Architectures :func:`convert_genforce` understands, and the model each becomes.
GENFORCE_ARCHITECTURES: dict[str, type] = {
    "pggan": PGGANGenerator,
    "stylegan": StyleGANGenerator,
    "stylegan2": StyleGAN2Generator,
}

#: How a genforce tensor relates to ours, keyed by the layout names of :func:`genforce_key_map`:
#: ``(genforce shape from our shape, our value from the genforce tensor)``.
_Layout = tuple[Callable[[tuple[int, ...]], tuple[int, ...]], Callable[[torch.Tensor], torch.Tensor]]
GENFORCE_LAYOUTS: dict[str, _Layout] = {
    "same": (lambda shape: shape, lambda t: t),
    "batch1": (lambda shape: (1, *shape), lambda t: t),  # StyleGAN2 const [1, C, 4, 4] -> [C, 4, 4]
    "noise": (lambda shape: (1, 1, *shape), lambda t: t),  # StyleGAN2 noise [1, 1, r, r] -> noise_const [r, r]
    "plus_one": (lambda shape: shape, lambda t: t + 1),  # StyleGAN2 style bias: genforce adds 1 at run time
    "flip": (lambda shape: shape, lambda t: t.flip(-2, -1)),  # StyleGAN2 upsampling conv kernel
}

#: Files of a huggan / PyTorchModelHubMixin folder, in the order they are tried.
WEIGHT_FILES = ("pytorch_model.bin", "model.safetensors")
_BLUR_TAPS = (1.0, 2.0, 1.0)  # StyleGAN's blur after upsampling
_FIR_TAPS = (1.0, 3.0, 3.0, 1.0)  # StyleGAN2's resampling filter

# genforce constructor arguments our models cannot express, with the only value they support.
_REQUIRED_SETTINGS: dict[str, dict[str, Any]] = {
    "pggan": {"final_tanh": False, "use_wscale": True, "fused_scale": False},
    "stylegan": {"final_tanh": False, "use_wscale": True, "const_input": True, "repeat_w": True},
    "stylegan2": {
        "final_tanh": False, "use_wscale": True, "const_input": True, "repeat_w": True, "architecture": "skip",
        "demodulate": True, "label_size": 0,
    },
}  # fmt: skip


# ------------------------------------------------------------------------------------------ detection
def extract_genforce_state(checkpoint: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The generator state dict of a genforce checkpoint: ``generator_smooth``, else ``generator``, else itself.

    Raises:
        ValueError: The checkpoint holds neither key and is not a state dict of tensors.
    """
    for key in ("generator_smooth", "generator"):
        if key in checkpoint:
            state = checkpoint[key]
            if not isinstance(state, Mapping):
                raise ValueError(f"genforce checkpoint key {key!r} is a {type(state).__name__}, not a state dict.")
            return dict(state)
    not_tensors = sorted(str(k) for k, v in checkpoint.items() if not isinstance(v, torch.Tensor))
    if not_tensors or not checkpoint:
        raise ValueError(
            "Not a genforce checkpoint: no 'generator_smooth' or 'generator' key, and not a bare state dict "
            f"(non-tensor keys: {not_tensors[:10]})."
        )
    return dict(checkpoint)


def detect_genforce_architecture(state: Mapping[str, Any]) -> str:
    """Tell which genforce generator a state dict belongs to: ``"pggan"``, ``"stylegan"`` or ``"stylegan2"``.

    StyleGAN2 has ``synthesis.early_layer.const``; StyleGAN has ``synthesis.layer0.style.weight``; PGGAN has a
    top-level ``layer0.weight`` and no mapping network.

    Raises:
        ValueError: None of these marker keys is present (the message shows some of the keys found).

    Example:

    >>> detect_genforce_architecture({"layer0.weight": None, "layer0.bias": None, "lod": None})
    'pggan'
    """
    if "synthesis.early_layer.const" in state or "synthesis.early_layer.weight" in state:
        return "stylegan2"
    if "synthesis.layer0.style.weight" in state:
        return "stylegan"
    if "layer0.weight" in state and not any(str(k).startswith("mapping.") for k in state):
        return "pggan"
    raise ValueError(
        "Cannot tell the genforce architecture: expected 'synthesis.early_layer.const' (StyleGAN2), "
        "'synthesis.layer0.style.weight' (StyleGAN) or 'layer0.weight' (PGGAN); "
        f"found keys such as {sorted(map(str, state))[:8]}."
    )


# ------------------------------------------------------------------------------------------ key maps
def _num_blocks(img_resolution: int) -> int:
    return int(math.log2(img_resolution)) - 1


def genforce_key_map(
    architecture: str, img_resolution: int, mapping_layers: int = 8, c_dim: int = 0
) -> dict[str, tuple[str, str]]:
    """Our key to ``(genforce key, layout)`` (see :data:`GENFORCE_LAYOUTS`) for one generator size.

    Our StyleGAN2 ``resample_filter`` buffers are not listed (genforce keeps scaled FIR kernels instead,
    which the converter checks); nor are genforce's dropped keys (``lod``, lower-resolution ToRGBs, blur
    and FIR kernels).

    Args:
        architecture: One of :data:`GENFORCE_ARCHITECTURES`.
        img_resolution: Output resolution.
        mapping_layers: Depth of the mapping network (StyleGAN/StyleGAN2).
        c_dim: Label width (adds ``mapping.label_weight`` for a conditional StyleGAN).
    """
    if architecture not in GENFORCE_ARCHITECTURES:
        raise ValueError(f"`architecture` must be one of {tuple(GENFORCE_ARCHITECTURES)}, got {architecture!r}.")
    nb = _num_blocks(img_resolution)
    table: dict[str, tuple[str, str]] = {}
    if architecture == "pggan":
        for i in range(2 * nb):
            table |= {f"layer{i}.{p}": (f"layer{i}.{p}", "same") for p in ("weight", "bias")}
        table |= {f"output.{p}": (f"output{nb - 1}.{p}", "same") for p in ("weight", "bias")}
        return table
    if architecture == "stylegan":
        for i in range(mapping_layers):
            table |= {f"mapping.dense{i}.{p}": (f"mapping.dense{i}.{p}", "same") for p in ("weight", "bias")}
        if c_dim:
            table["mapping.label_weight"] = ("mapping.label_weight", "same")
        table["truncation.w_avg"] = ("truncation.w_avg", "same")
        for i in range(2 * nb):
            params = ["const"] if i == 0 else ["weight"]
            params += ["bias", "apply_noise.noise", "apply_noise.weight", "style.weight", "style.bias"]
            table |= {f"synthesis.layer{i}.{p}": (f"synthesis.layer{i}.{p}", "same") for p in params}
        table |= {f"synthesis.output.{p}": (f"synthesis.output{nb - 1}.{p}", "same") for p in ("weight", "bias")}
        return table
    # StyleGAN2: genforce layout -> NVIDIA layout.
    for i in range(mapping_layers):
        table |= {f"mapping.fc{i}.{p}": (f"mapping.dense{i}.{p}", "same") for p in ("weight", "bias")}
    table["mapping.w_avg"] = ("truncation.w_avg", "same")
    table["synthesis.b4.const"] = ("synthesis.early_layer.const", "batch1")

    def modulated(ours: str, theirs: str, weight: str = "same", noise: bool = True) -> None:
        table[f"{ours}.weight"] = (f"{theirs}.weight", weight)
        table[f"{ours}.bias"] = (f"{theirs}.bias", "same")
        table[f"{ours}.affine.weight"] = (f"{theirs}.style.weight", "same")
        table[f"{ours}.affine.bias"] = (f"{theirs}.style.bias", "plus_one")
        if noise:
            table[f"{ours}.noise_const"] = (f"{theirs}.noise", "noise")
            table[f"{ours}.noise_strength"] = (f"{theirs}.noise_strength", "same")

    for k in range(nb):
        block = f"synthesis.b{4 * 2**k}"
        if k > 0:
            modulated(f"{block}.conv0", f"synthesis.layer{2 * k - 1}", weight="flip")
        modulated(f"{block}.conv1", f"synthesis.layer{2 * k}")
        modulated(f"{block}.torgb", f"synthesis.output{k}", noise=False)
    return table


def _ignored_keys(architecture: str, nb: int) -> Callable[[str], bool]:
    """Predicate for genforce keys that are known and deliberately not copied."""
    if architecture == "pggan":
        pattern = rf"lod|output(?!{nb - 1}\.)\d+\.(weight|bias)"
    elif architecture == "stylegan":
        pattern = rf"synthesis\.lod|synthesis\.output(?!{nb - 1}\.)\d+\.(weight|bias)|synthesis\.layer\d+\.blur\.kernel"
    else:
        pattern = r"synthesis\.upsample\.kernel|synthesis\.layer\d+\.filter\.kernel"
    return lambda key: re.fullmatch(pattern, key) is not None


# ------------------------------------------------------------------------------------------ config
def _indices(state: Mapping[str, Any], pattern: str) -> list[int]:
    return sorted(int(m.group(1)) for k in state if (m := re.fullmatch(pattern, str(k))))


def _require(state: Mapping[str, Any], key: str, ndim: int) -> torch.Tensor:
    tensor = state.get(key)
    if tensor is None:
        raise ValueError(f"genforce state dict is missing key {key!r}.")
    if not isinstance(tensor, torch.Tensor) or tensor.ndim != ndim:
        got = list(tensor.shape) if isinstance(tensor, torch.Tensor) else type(tensor).__name__
        raise ValueError(f"genforce key {key!r} must be a {ndim}-D tensor, got {got}.")
    return tensor


def _consecutive(indices: list[int], what: str) -> int:
    if not indices or indices != list(range(len(indices))):
        raise ValueError(f"genforce {what} must be numbered 0 ... N-1, got {indices}.")
    return len(indices)


def _check_lod(state: Mapping[str, Any], key: str) -> None:
    if key in state and float(state[key]) != 0:
        raise ValueError(
            f"genforce key {key!r} is {float(state[key])}: the generator is mid-way through progressive growing; "
            "only fully grown generators (lod = 0) can be converted."
        )


def _mapping_config(state: Mapping[str, Any]) -> dict[str, int]:
    layers = _consecutive(_indices(state, r"mapping\.dense(\d+)\.weight"), "mapping layers 'mapping.dense{i}'")
    first = _require(state, "mapping.dense0.weight", 2)
    last = _require(state, f"mapping.dense{layers - 1}.weight", 2)
    c_dim = 0
    z_dim = int(first.shape[1])
    if "mapping.label_weight" in state:
        label = _require(state, "mapping.label_weight", 2)
        c_dim, z_dim = int(label.shape[0]), int(label.shape[1])
        if first.shape[1] != 2 * z_dim:
            raise ValueError(
                f"genforce key 'mapping.dense0.weight' has {first.shape[1]} inputs, expected 2 * {z_dim} "
                "(z and its label embedding, from 'mapping.label_weight')."
            )
    w_dim = int(last.shape[0])
    w_avg = _require(state, "truncation.w_avg", 1)
    if w_avg.numel() != w_dim:
        raise ValueError(
            f"genforce key 'truncation.w_avg' has {w_avg.numel()} values, expected w_dim = {w_dim}; generators "
            "with repeat_w=False (one w per layer) are not supported."
        )
    config = {"z_dim": z_dim, "c_dim": c_dim, "w_dim": w_dim, "mapping_layers": layers}
    config["mapping_layer_features"] = int(first.shape[0]) if layers > 1 else w_dim
    return config


def genforce_generator_config(
    state: Mapping[str, Any], architecture: str | None = None, c_dim: int | None = None
) -> tuple[str, dict[str, Any]]:
    """Infer ``(architecture, config)`` of our generator from a genforce state dict's keys and shapes.

    The config holds what the weights tell (see the module docstring); the mapping learning-rate multiplier
    and StyleGAN's ``fused_scale`` are not in the weights and are left to the caller.

    Args:
        state: genforce generator state dict.
        architecture: One of :data:`GENFORCE_ARCHITECTURES`, or None to detect it.
        c_dim: PGGAN only: how many of ``layer0``'s input channels are the label (default 0).

    Raises:
        ValueError: naming the key that is missing or inconsistent.
    """
    architecture = detect_genforce_architecture(state) if architecture is None else architecture
    if architecture not in GENFORCE_ARCHITECTURES:
        raise ValueError(f"`architecture` must be one of {tuple(GENFORCE_ARCHITECTURES)}, got {architecture!r}.")
    if architecture == "pggan":
        _check_lod(state, "lod")
        nb, _ = divmod(_consecutive(_indices(state, r"layer(\d+)\.weight"), "PGGAN layers 'layer{i}'"), 2)
        key = f"output{nb - 1}.weight"
        rgb = _require(state, key, 4)
        inputs = int(_require(state, "layer0.weight", 4).shape[1])
        c_dim = 0 if c_dim is None else int(c_dim)
        if not 0 <= c_dim < inputs:
            raise ValueError(
                f"`c_dim` must be in [0, {inputs - 1}] ('layer0.weight' has {inputs} inputs), got {c_dim}."
            )
        channels = {4 * 2**b: int(_require(state, f"layer{2 * b}.weight", 4).shape[0]) for b in range(nb)}
        config = {"z_dim": inputs - c_dim, "c_dim": c_dim, "img_channels": int(rgb.shape[0])}
    elif architecture == "stylegan":
        _check_lod(state, "synthesis.lod")
        config = _mapping_config(state)
        num = _consecutive(
            _indices(state, r"synthesis\.layer(\d+)\.style\.weight"), "style layers 'synthesis.layer{i}'"
        )
        nb = num // 2
        channels = {4: int(_require(state, "synthesis.layer0.const", 4).shape[1])}
        channels |= {4 * 2**b: int(_require(state, f"synthesis.layer{2 * b}.weight", 4).shape[0]) for b in range(1, nb)}
        config["img_channels"] = int(_require(state, f"synthesis.output{nb - 1}.weight", 4).shape[0])
    else:
        config = _mapping_config(state)
        if config.pop("c_dim"):
            raise ValueError(
                "genforce key 'mapping.label_weight' found: conditional genforce StyleGAN2 generators (label "
                "concatenated to z before normalisation) have no NVIDIA-layout equivalent and are not supported."
            )
        if config["mapping_layer_features"] == config["w_dim"]:
            del config["mapping_layer_features"]
        skips = _indices(state, r"synthesis\.skip_layer(\d+)\.weight")
        if skips:
            raise ValueError(
                "genforce key 'synthesis.skip_layer0.weight' found: only the 'skip' architecture is supported."
            )
        nb = (_consecutive(_indices(state, r"synthesis\.layer(\d+)\.style\.weight"), "StyleGAN2 layers") + 1) // 2
        outputs = _indices(state, r"synthesis\.output(\d+)\.weight")
        if outputs != list(range(nb)):
            raise ValueError(
                f"genforce StyleGAN2 ToRGB layers are {outputs}, expected synthesis.output0 ... output{nb - 1} "
                "(the 'skip' architecture; 'origin' is not supported)."
            )
        channels = {4: int(_require(state, "synthesis.early_layer.const", 4).shape[1])}
        channels |= {4 * 2**b: int(_require(state, f"synthesis.layer{2 * b}.weight", 4).shape[0]) for b in range(1, nb)}
        config["img_channels"] = int(_require(state, f"synthesis.output{nb - 1}.weight", 4).shape[0])
    config["img_resolution"] = 4 * 2 ** (nb - 1)
    config["channel_base"], config["channel_max"] = infer_channel_config(channels)
    return architecture, config


# ------------------------------------------------------------------------------------------ conversion
def _fir_filter(taps: tuple[float, ...]) -> torch.Tensor:
    f = torch.tensor(taps)
    f = torch.outer(f, f)
    return f / f.sum()


def _check_kernels(state: Mapping[str, Any], ignored: Callable[[str], bool], architecture: str) -> None:
    """genforce's constant blur/FIR kernels must be the standard ones our models hard-code."""
    if architecture == "pggan":
        return
    expected = _fir_filter(_BLUR_TAPS) if architecture == "stylegan" else _fir_filter(_FIR_TAPS) * 4
    for key, tensor in state.items():
        if not (ignored(key) and key.endswith(".kernel")):
            continue
        ok = isinstance(tensor, torch.Tensor) and tensor.shape[-2:] == expected.shape
        if ok:
            flat = tensor.detach().float().reshape(-1, *expected.shape)
            ok = torch.allclose(flat, expected.expand_as(flat), atol=1e-6)
        if not ok:
            kind = "[1, 2, 1] blur" if architecture == "stylegan" else "[1, 3, 3, 1] FIR filter (times 4)"
            raise ValueError(f"genforce key {key!r} is not the standard {kind} that the converted model uses.")


def _settings(architecture: str, hub_config: Mapping[str, Any], state_config: Mapping[str, Any]) -> None:
    """Check a huggan ``config.json`` (genforce constructor arguments) against our support and the weights."""
    for name, value in _REQUIRED_SETTINGS[architecture].items():
        if name in hub_config and hub_config[name] != value:
            raise ValueError(f"config.json sets `{name}` = {hub_config[name]!r}; only {value!r} can be converted.")
    for theirs, ours in (("resolution", "img_resolution"), ("z_space_dim", "z_dim"), ("w_space_dim", "w_dim"),
                         ("image_channels", "img_channels"), ("mapping_layers", "mapping_layers"),
                         ("label_size", "c_dim")):  # fmt: skip
        given = hub_config.get(theirs)
        if given is not None and ours in state_config and int(given) != int(state_config[ours]):
            raise ValueError(
                f"config.json says `{theirs}` = {hub_config[theirs]}, but the weights have "
                f"{ours} = {state_config[ours]}."
            )


def convert_genforce_state_dict(
    state: Mapping[str, Any],
    architecture: str | None = None,
    *,
    hub_config: Mapping[str, Any] | None = None,
    c_dim: int | None = None,
    mapping_lr_multiplier: float | None = None,
    fused_scale: bool | str | None = None,
) -> PGGANGenerator | StyleGANGenerator | StyleGAN2Generator:
    """Build our generator from a genforce generator state dict.

    Args:
        state: genforce generator state dict (see :func:`extract_genforce_state` for whole checkpoints).
        architecture: One of :data:`GENFORCE_ARCHITECTURES`, or None to detect it.
        hub_config: genforce constructor arguments (a huggan ``config.json``), checked and used for the
            settings the weights do not tell.
        c_dim: PGGAN label width (default: ``hub_config["label_size"]`` or 0).
        mapping_lr_multiplier: Mapping learning-rate multiplier (default: ``hub_config["mapping_lr_mul"]`` or
            genforce's 0.01).
        fused_scale: StyleGAN upsampling mode (default: ``hub_config["fused_scale"]`` or genforce's ``"auto"``).

    Raises:
        ValueError: naming the key that is missing, misshapen or not understood, or the unsupported setting.
    """
    hub_config = dict(hub_config or {})
    state = {str(k): v for k, v in state.items()}
    if c_dim is None:
        c_dim = hub_config.get("label_size")
    architecture, config = genforce_generator_config(state, architecture, c_dim=c_dim)
    _settings(architecture, hub_config, config)
    if architecture != "pggan":
        lr = hub_config.get("mapping_lr_mul", 0.01) if mapping_lr_multiplier is None else mapping_lr_multiplier
        config["mapping_lr_multiplier"] = float(lr)
    if architecture == "stylegan":
        config["fused_scale"] = hub_config.get("fused_scale", "auto") if fused_scale is None else fused_scale
    elif fused_scale is not None:
        raise ValueError(f"`fused_scale` only applies to StyleGAN, not {architecture!r}.")
    generator = GENFORCE_ARCHITECTURES[architecture](**config)

    nb = _num_blocks(generator.config.img_resolution)
    table = genforce_key_map(architecture, generator.config.img_resolution,
                             generator.config.get("mapping_layers", 0), generator.config.c_dim)  # fmt: skip
    ignored = _ignored_keys(architecture, nb)
    _check_kernels(state, ignored, architecture)
    # genforce tensors enter with their values transformed (the +1 bias, the flip), shapes untouched, so that
    # the shape checks below name the genforce key and its own shape.
    source: dict[str, Any] = dict(state)
    for theirs, layout in table.values():
        tensor = state.get(theirs)
        if isinstance(tensor, torch.Tensor) and (layout == "plus_one" or (layout == "flip" and tensor.ndim == 4)):
            source[theirs] = GENFORCE_LAYOUTS[layout][1](tensor.detach().float())
    key_map = {ours: theirs for ours, (theirs, _) in table.items()}
    for key, tensor in generator.state_dict().items():
        if key not in table:  # our StyleGAN2 resample_filter buffers keep their defaults (genforce's are checked)
            source[f"__ours__.{key}"] = tensor
            key_map[key] = f"__ours__.{key}"

    def source_shape(ours: str, shape: torch.Size) -> tuple[int, ...]:
        return GENFORCE_LAYOUTS[table[ours][1]][0](tuple(shape)) if ours in table else tuple(shape)

    load_mapped_state_dict(
        generator, source, key_map, source_shape=source_shape, ignored=ignored, source_name="genforce state dict"
    )
    return generator.eval()


def load_genforce_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """``torch.load(path, weights_only=True)`` on the CPU (``.safetensors`` files via safetensors)."""
    if str(path).endswith(".safetensors"):
        from safetensors.torch import load_file

        return dict(load_file(str(path)))
    data = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(data, Mapping):
        raise ValueError(f"A genforce checkpoint is a dict, got {type(data).__name__} from {path!s}.")
    return dict(data)


def convert_genforce(
    src: str | os.PathLike | Mapping[str, Any],
    *,
    architecture: str | None = None,
    c_dim: int | None = None,
    mapping_lr_multiplier: float | None = None,
    fused_scale: bool | str | None = None,
) -> PGGANGenerator | StyleGANGenerator | StyleGAN2Generator:
    """Convert a genforce checkpoint (``.pth``) or a huggan Hub folder to our generator.

    Args:
        src: A genforce ``.pth`` file (``{"generator_smooth": ..., "generator": ...}`` or a bare state dict),
            a folder with ``pytorch_model.bin`` (or ``model.safetensors``) and optionally ``config.json``
            (huggan repos; download them first with ``huggingface_hub.snapshot_download``), or an already
            loaded checkpoint dict.
        architecture: ``"pggan"``, ``"stylegan"`` or ``"stylegan2"``; None detects it from the keys.
        c_dim: PGGAN label width (default: ``config.json``'s ``label_size``, else 0).
        mapping_lr_multiplier: StyleGAN/StyleGAN2 mapping learning-rate multiplier (default:
            ``config.json``'s ``mapping_lr_mul``, else 0.01).
        fused_scale: StyleGAN upsampling mode ``True``/``False``/``"auto"`` (default: ``config.json``'s
            ``fused_scale``, else ``"auto"``, genforce's default and that of all official models).

    Returns:
        :class:`PGGANGenerator`, :class:`StyleGANGenerator` or :class:`StyleGAN2Generator` in eval mode, on
        the CPU, in float32.

    Raises:
        ValueError: The checkpoint is not a supported genforce generator; the message names the key.

    Example:

    >>> from sefa_plugin.convert import convert_genforce
    >>> g = convert_genforce("stylegan_animeface512.pth")  # doctest: +SKIP
    >>> img = g(torch.randn(1, 512), truncation_psi=0.7, truncation_cutoff=8)  # doctest: +SKIP
    """
    hub_config: dict[str, Any] = {}
    if isinstance(src, Mapping):
        checkpoint = dict(src)
    elif Path(src).is_dir():
        folder = Path(src)
        weights = next((folder / name for name in WEIGHT_FILES if (folder / name).is_file()), None)
        if weights is None:
            raise ValueError(f"Folder {folder} has none of {WEIGHT_FILES}: not a huggan/genforce model folder.")
        if (folder / "config.json").is_file():
            hub_config = read_json_config(folder / "config.json", "src")
        checkpoint = load_genforce_checkpoint(weights)
    else:
        checkpoint = load_genforce_checkpoint(src)
    state = extract_genforce_state(checkpoint)
    if architecture is None and "gan_type" in hub_config:
        architecture = str(hub_config["gan_type"]).lower()
    logger.info("Converting a genforce %s generator.", architecture or detect_genforce_architecture(state))
    return convert_genforce_state_dict(
        state, architecture, hub_config=hub_config, c_dim=c_dim,
        mapping_lr_multiplier=mapping_lr_multiplier, fused_scale=fused_scale,
    )  # fmt: skip
