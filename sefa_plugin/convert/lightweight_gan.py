"""Convert lucidrains/lightweight-gan checkpoints and HugGAN lightweight-GAN Hub folders.

lucidrains' trainer saves ``models/<name>/model_<N>.pt`` = ``torch.save({"GAN": state_dict, "version": ...,
"G_scaler": ..., "D_scaler": ...})``; the HugGAN port (huggingface/community-events
``huggan/pytorch/lightweight_gan``) pushes ``pytorch_model.bin`` = ``{"GAN": state_dict}`` beside a
``config.json``. Both are read with ``torch.load(weights_only=True)``; nothing is executed. The ``GAN`` state
dict holds the generator ``G.*``, its moving average ``GE.*`` (converted by default, as their samplers use
it for the "-ema" images), the discriminator ``D.*`` and ``D_aug.*`` (ignored). A bare generator state dict
is read too.

Every setting of :class:`~sefa_plugin.models.LightweightGANGenerator` is inferred from keys and shapes:
``z_dim`` from ``initial_conv.0.weight`` ``[L, 2L, 4, 4]``; the resolution from the number of
``layers.<i>``; each block's width from its batch norm; ``attn_res_layers`` from the blocks that have
``layers.<i>.2.*``; ``upsample`` from ``layers.<i>.0.0.net.0.weight`` (pixel shuffle) or its absence
(nearest); ``attention`` from ``fn.to_lin_q.weight`` (full) or its absence (linear); ``antialias`` from the
blur buffer ``layers.<i>.0.1.f`` (checked against [1, 2, 1]). Their frequency-channel attention
(``--freq_chan_attn``, buffers ``dct_weights``) is refused.

Key map (theirs → ours; per block ``i``):

================================================  ========================================
``initial_conv.0.*`` / ``initial_conv.1.*``        ``initial_conv.*`` / ``initial_norm.*``
``layers.i.0.0.net.0.*`` (pixel shuffle's 1×1)     ``blocks.i.up_conv.*``
``layers.i.0.2.1.*`` (pixel shuffle), ``.0.2.*``   ``blocks.i.conv.*``
``layers.i.0.3.weight`` (noise, pixel shuffle)     ``blocks.i.noise_strength``
``layers.i.0.4.*`` (pixel shuffle), ``.0.3.*``     ``blocks.i.norm.*``
``layers.i.1.{to_k, net.0, net.2}.*``              ``sle{i}.{key, fc1, fc2}.*``
``layers.i.2.norm.{g, b}``                         ``blocks.i.attn_norm.{g, b}``
``layers.i.2.fn.to_lin_q`` (``to_q`` if linear)    ``blocks.i.attn.lin_q``
``layers.i.2.fn.to_lin_kv.net.{0, 1}`` (``to_kv``) ``blocks.i.attn.{lin_kv_depthwise, lin_kv}``
``layers.i.2.fn.{to_q, to_kv}`` (full only)        ``blocks.i.attn.{q, kv}``
``layers.i.2.fn.to_out.*``                         ``blocks.i.attn.out.*``
``out_conv.*``                                     ``out_conv.*``
================================================  ========================================

License: lucidrains/lightweight-gan and huggingface/community-events are MIT; the weights carry the license of
whoever trained them and of their training data.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ..models.lightweight_gan import LightweightGANGenerator
from .genforce import WEIGHT_FILES, load_genforce_checkpoint
from .nvidia import load_mapped_state_dict

__all__ = ["convert_lightweight_gan", "convert_lightweight_gan_state_dict", "lightweight_gan_generator_state"]

# Training-only state (batch-norm step counters) and the constant blur taps (checked separately).
_IGNORED = re.compile(r".*num_batches_tracked|layers\.\d+\.0\.1\.f")
_ATTN_FULL = {"lin_q": "to_lin_q", "lin_kv_depthwise": "to_lin_kv.net.0", "lin_kv": "to_lin_kv.net.1",
              "q": "to_q", "kv": "to_kv", "out": "to_out"}  # fmt: skip
_SLE = {"key": "to_k", "fc1": "net.0", "fc2": "net.2"}
_ATTN_LINEAR = {"lin_q": "to_q", "lin_kv_depthwise": "to_kv.net.0", "lin_kv": "to_kv.net.1", "out": "to_out"}


def lightweight_gan_generator_state(checkpoint: Mapping[str, Any], use_ema: bool = True) -> dict[str, torch.Tensor]:
    """The generator's tensors from a checkpoint: ``GAN.GE.*`` (or ``GAN.G.*``), or a bare generator state dict."""
    state = checkpoint.get("GAN", checkpoint)
    if not isinstance(state, Mapping):
        raise ValueError(f"The checkpoint's 'GAN' entry must be a state dict, got {type(state).__name__}.")
    for prefix in ("GE.", "G.") if use_ema else ("G.",):
        if f"{prefix}initial_conv.0.weight" in state:
            return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    if "initial_conv.0.weight" in state:
        return dict(state)
    raise ValueError(
        "Not a lightweight-gan checkpoint: no 'GAN' state dict with 'GE.initial_conv.0.weight' or "
        f"'G.initial_conv.0.weight', and no bare 'initial_conv.0.weight' (keys: {sorted(state)[:6]}...)."
    )


def _block_count(state: Mapping[str, Any]) -> int:
    found = {int(m.group(1)) for k in state if (m := re.match(r"layers\.(\d+)\.", k))}
    if not found or found != set(range(len(found))):
        raise ValueError(f"Generator blocks 'layers.<i>' must be numbered from 0 without gaps, got {sorted(found)}.")
    return len(found)


def _tensor(state: Mapping[str, Any], key: str) -> torch.Tensor:
    value = state.get(key)
    if not isinstance(value, torch.Tensor):
        raise ValueError(f"lightweight-gan checkpoint is missing key {key!r}.")
    return value


def convert_lightweight_gan_state_dict(state: Mapping[str, torch.Tensor]) -> LightweightGANGenerator:
    """Convert a lightweight-gan generator state dict (``Generator.state_dict()``'s keys) to our generator."""
    if any(k.endswith("dct_weights") for k in state):
        raise ValueError(
            "This lightweight-gan generator uses frequency channel attention (--freq_chan_attn, 'dct_weights' "
            "buffers), which LightweightGANGenerator does not implement."
        )
    n = _block_count(state)
    shuffle = "layers.0.0.0.net.0.weight" in state
    noise = shuffle and tuple(state.get("layers.0.0.3.weight", torch.empty(0)).shape) == (1,)
    norm = "4" if noise else "3"
    initial = _tensor(state, "initial_conv.0.weight")
    for i in range(n):
        f = state.get(f"layers.{i}.0.1.f")
        if f is not None and not torch.equal(f.float(), torch.tensor([1.0, 2.0, 1.0])):
            raise ValueError(
                f"lightweight-gan key 'layers.{i}.0.1.f' must be the blur taps [1, 2, 1], got {f.tolist()}."
            )
    g = LightweightGANGenerator(
        z_dim=int(initial.shape[0]),
        img_resolution=4 * 2**n,
        img_channels=int(_tensor(state, "out_conv.weight").shape[0]),
        channels=[int(_tensor(state, f"layers.{i}.0.{norm}.weight").shape[0]) // 2 for i in range(n)],
        attn_res_layers=[4 * 2**i for i in range(n) if f"layers.{i}.2.norm.g" in state],
        upsample="pixel_shuffle" if shuffle else "nearest",
        attention="full" if any(k.endswith("fn.to_lin_q.weight") for k in state) else "linear",
        antialias="layers.0.0.1.f" in state,
    )
    source = dict(state)
    parts = {"up_conv": "0.0.net.0", "conv": "0.2.1" if shuffle else "0.2", "norm": f"0.{norm}", "attn_norm": "2.norm"}
    key_map: dict[str, str] = {}
    for ours, value in g.state_dict().items():
        head, _, leaf = ours.rpartition(".")
        if m := re.fullmatch(r"blocks\.(\d+)\.(\w+)", head):
            key_map[ours] = f"layers.{m.group(1)}.{parts[m.group(2)]}.{leaf}"
        elif m := re.fullmatch(r"blocks\.(\d+)\.attn\.(\w+)", head):
            names = _ATTN_FULL if g.config.attention == "full" else _ATTN_LINEAR
            key_map[ours] = f"layers.{m.group(1)}.2.fn.{names[m.group(2)]}.{leaf}"
        elif m := re.fullmatch(r"sle(\d+)\.(\w+)", head):
            key_map[ours] = f"layers.{m.group(1)}.1.{_SLE[m.group(2)]}.{leaf}"
        elif leaf == "noise_strength" and noise:
            key_map[ours] = f"layers.{head.split('.')[1]}.0.3.weight"
        elif leaf == "noise_strength":  # a pixel-shuffle release without noise: strength 0
            source[f"(no noise) {ours}"] = torch.zeros(1)
            key_map[ours] = f"(no noise) {ours}"
        elif leaf == "noise_const":  # our fixed noise for noise_mode="const"; they draw fresh noise each call
            source[f"(ours) {ours}"] = value
            key_map[ours] = f"(ours) {ours}"
        elif head in ("initial_conv", "initial_norm"):
            key_map[ours] = f"initial_conv.{0 if head == 'initial_conv' else 1}.{leaf}"
        else:
            key_map[ours] = ours  # out_conv
    load_mapped_state_dict(g, source, key_map, ignored=_IGNORED.fullmatch, source_name="lightweight-gan checkpoint")
    return g.eval()


def convert_lightweight_gan(src: str | os.PathLike, use_ema: bool = True) -> LightweightGANGenerator:
    """Convert a lightweight-gan ``model_<N>.pt`` or a HugGAN lightweight-GAN folder (``pytorch_model.bin``).

    Args:
        src: The checkpoint file, or a folder holding one of ``pytorch_model.bin``/``model.safetensors``.
        use_ema: Convert the moving-average generator ``GE`` (default) rather than ``G``.

    Returns:
        :class:`LightweightGANGenerator` in eval mode, on the CPU.

    Example:

    >>> from sefa_plugin.convert.lightweight_gan import convert_lightweight_gan
    >>> g = convert_lightweight_gan("models/default/model_150.pt")  # doctest: +SKIP
    >>> g.save_pretrained("my-lightweight-gan")  # doctest: +SKIP
    """
    path = Path(src)
    if path.is_dir():
        found = [path / name for name in WEIGHT_FILES if (path / name).is_file()]
        if not found:
            raise FileNotFoundError(f"`src` folder {str(src)!r} holds none of {WEIGHT_FILES}.")
        path = found[0]
    elif not path.is_file():
        raise FileNotFoundError(f"`src` {str(src)!r} is not a checkpoint file or folder.")
    return convert_lightweight_gan_state_dict(lightweight_gan_generator_state(load_genforce_checkpoint(path), use_ema))
