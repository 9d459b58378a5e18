"""Convert third-party GAN checkpoints to our diffusers-style generators, without running their code.

Supported formats (:data:`FORMATS`):

* ``"nvidia"``: NVIDIA network pickles: StyleGAN2 (stylegan2-ada-pytorch, stylegan3's
  ``networks_stylegan2``) and StyleGAN3 configs T/R (``networks_stylegan3``, converted to
  ``StyleGAN3Generator``), read by a restricted unpickler (:mod:`.safe_unpickler`) that never executes
  the source code NVIDIA pickles alongside the weights. See :func:`convert_nvidia_pickle`.
* ``"rosinality"``: rosinality/stylegan2-pytorch ``.pt`` checkpoints, loaded with
  ``torch.load(weights_only=True)``. See :func:`convert_rosinality`.
* ``"biggan"``: huggingface/pytorch-pretrained-BigGAN models (BigGAN-deep 128/256/512: ``config.json`` +
  ``pytorch_model.bin``, a folder or the ``.bin`` beside its config), loaded with
  ``torch.load(weights_only=True)``. See :func:`convert_biggan`.
* ``"genforce"``: genforce ``.pth`` checkpoints (the official SeFa models: PGGAN, StyleGAN, StyleGAN2;
  ``generator_smooth`` preferred) and huggan Hub folders (``pytorch_model.bin`` + ``config.json``), loaded
  with ``torch.load(weights_only=True)``. See :func:`convert_genforce`.
* ``"voynov"``: anvoynov/GANLatentDiscovery's generators: SN-GAN ResNet folders (``args.json`` +
  ``generator.pt``) and their ProgGAN ``.pth``, loaded with ``torch.load(weights_only=True)``. See
  :func:`convert_voynov`.
* ``"lightweight-gan"``: lucidrains/lightweight-gan ``model_<N>.pt`` checkpoints and HugGAN lightweight-GAN
  folders, loaded with ``torch.load(weights_only=True)``. See :func:`convert_lightweight_gan`.
* ``"dcgan"``: PyTorch-tutorial / ``pytorch/examples`` DCGAN generators (``main.{i}.*``, bare or in a training
  checkpoint) and HugGAN DCGAN Hub folders (``model.{i}.*`` + ``config.json``), read by the restricted
  unpickler. See :func:`convert_dcgan`.

Whole-module pickles (``torch.save(netG, "G.pth")``) of the ``dcgan``, ``rosinality`` and ``genforce`` layouts
are read by :mod:`.module_pickle` (module classes become inert records) and mapped by the same key tables.

Example:

>>> from sefa_plugin.convert import convert_checkpoint
>>> g = convert_checkpoint("network-snapshot-025000.pkl")  # doctest: +SKIP
>>> g.save_pretrained("my-stylegan2")  # doctest: +SKIP
"""

from __future__ import annotations

import io
import os
import zipfile
from typing import IO

from ..models.interface import EditableGenerator
from ..utils.files import file_sha256
from .biggan import convert_biggan, convert_biggan_state_dict
from .dcgan import convert_dcgan, convert_dcgan_state_dict, is_dcgan_folder, is_dcgan_keys
from .genforce import WEIGHT_FILES, convert_genforce, detect_genforce_architecture, genforce_key_map
from .lightweight_gan import convert_lightweight_gan, convert_lightweight_gan_state_dict
from .module_pickle import is_module_pickle, load_checkpoint_state
from .nvidia import convert_nvidia_pickle, convert_nvidia_record, nvidia_generator_config
from .pickle_scan import CheckpointLimitError, NotAPickleError, scan_pickle, stream_end
from .rosinality import convert_rosinality, convert_rosinality_state_dict, rosinality_key_map
from .safe_unpickler import (
    NVIDIA_PERSISTENT_GLOBAL,
    ZIP_MAGIC,
    PersistentRecord,
    UnsafePickleError,
    read_zip_member,
    safe_load,
    torch_zip_pickle,
)
from .voynov import VOYNOV_SNGAN_FILE, convert_voynov, convert_voynov_state_dict

__all__ = [
    "FORMATS",
    "LICENSE_NOTES",
    "PersistentRecord",
    "UnsafePickleError",
    "checkpoint_weights_file",
    "convert_biggan",
    "convert_biggan_state_dict",
    "convert_checkpoint",
    "convert_dcgan",
    "convert_dcgan_state_dict",
    "convert_folder",
    "convert_genforce",
    "convert_lightweight_gan",
    "convert_lightweight_gan_state_dict",
    "convert_nvidia_pickle",
    "convert_nvidia_record",
    "convert_rosinality",
    "convert_rosinality_state_dict",
    "convert_voynov",
    "convert_voynov_state_dict",
    "detect_format",
    "detect_genforce_architecture",
    "genforce_key_map",
    "nvidia_generator_config",
    "rosinality_key_map",
    "safe_load",
]

#: Checkpoint formats :func:`convert_checkpoint` understands.
FORMATS: tuple[str, ...] = ("nvidia", "rosinality", "genforce", "biggan", "dcgan", "voynov", "lightweight-gan")
#: What a converted folder's card says about the license of the weights, per source format.
LICENSE_NOTES = {
    "nvidia": "NVIDIA's official StyleGAN2-ADA/StyleGAN3 weights are under the NVIDIA Source Code License-NC "
    "(non-commercial); for other pickles in this format, check the original weights' license.",
    "rosinality": "rosinality/stylegan2-pytorch's code is MIT; the weights carry the license of whoever trained "
    "them (and of their training data): check the original weights' license.",
    "genforce": "genforce/sefa's code is MIT. The official PGGAN and StyleGAN weights it redistributes are NVIDIA's, "
    "under CC BY-NC 4.0 (non-commercial); official StyleGAN2 weights are under the NVIDIA Source Code License-NC. "
    "For other checkpoints, check the original weights' license.",
    "biggan": "huggingface/pytorch-pretrained-BigGAN's code is MIT; DeepMind's BigGAN-deep weights were released as "
    "TF Hub modules under Apache-2.0 (verify on the module's page). For other checkpoints, check the original "
    "weights' license.",
    "voynov": "anvoynov/GANLatentDiscovery states no license for its code or SN-GAN weights; its ProgGAN weights are "
    "NVIDIA's CelebA-HQ PGGAN (CC BY-NC 4.0, non-commercial). Check the original weights' license.",
    "lightweight-gan": "lucidrains/lightweight-gan's code (and the HugGAN port's) is MIT; the weights carry the "
    "license of whoever trained them (and of their training data): check the original weights' license.",
    "dcgan": "The PyTorch DCGAN tutorial and pytorch/examples are BSD-3-Clause, huggingface/community-events is "
    "Apache-2.0; the weights carry the license of whoever trained them (and of their training data): check the "
    "original weights' license.",
}


# A legacy torch.save stream is 4 pickles (magic, protocol, sys_info, object) before the raw storage data.
_MAX_PICKLES = 4


def _pickle_strings(file: IO[bytes]) -> set[str]:
    """Every string constant and global name in the leading pickles of `file`, read without unpickling.

    The file is streamed by :func:`~.pickle_scan.scan_pickle`: strings are read, byte blobs (tensor data)
    skipped, and declared sizes checked against the file before anything is read.
    """
    found: set[str] = set()
    head = file.read(4)
    file.seek(-len(head), os.SEEK_CUR)
    if head == ZIP_MAGIC:
        size = stream_end(file)
        with zipfile.ZipFile(file) as archive:
            scan_pickle(io.BytesIO(read_zip_member(archive, torch_zip_pickle(archive), size)), strings=found)
        return found
    end = stream_end(file)
    for i in range(_MAX_PICKLES):
        if file.tell() == end:
            break
        try:
            scan_pickle(file, end, strings=found)
        except CheckpointLimitError as err:
            if i == 0 and not isinstance(err, NotAPickleError):  # the first program is the checkpoint (or a
                raise  # legacy file's magic number): refuse a bomb there rather than report "unknown format"
            break  # raw storage bytes after a legacy file's pickles
    return found


def checkpoint_weights_file(src: str | os.PathLike) -> str:
    """The file that holds a checkpoint's weights: `src` itself, or the weights file of a checkpoint folder.

    A folder (huggan, pytorch-pretrained-BigGAN) holds one of :data:`~sefa_plugin.convert.genforce.WEIGHT_FILES`
    (tried in order) beside its ``config.json``.

    Raises:
        FileNotFoundError: `src` is neither a file nor a folder holding a weights file.

    Example:

    >>> checkpoint_weights_file("biggan-deep-128")  # doctest: +SKIP
    'biggan-deep-128/pytorch_model.bin'
    """
    if os.path.isfile(src):
        return str(src)
    if os.path.isdir(src):
        for name in (*WEIGHT_FILES, VOYNOV_SNGAN_FILE):
            if os.path.isfile(os.path.join(src, name)):
                return os.path.join(src, name)
        raise FileNotFoundError(
            f"`src` folder {str(src)!r} holds none of {(*WEIGHT_FILES, VOYNOV_SNGAN_FILE)}: it is not a checkpoint "
            "folder."
        )
    raise FileNotFoundError(f"`src` {str(src)!r} is not a checkpoint file or folder.")


def _format_from_strings(strings: set[str]) -> str | None:
    persistence = NVIDIA_PERSISTENT_GLOBAL in strings or "_reconstruct_persistent_obj" in strings
    if "G_ema" in strings and persistence:
        return "nvidia"
    if "g_ema" in strings or {"style.1.weight", "conv1.conv.weight"} <= strings:
        return "rosinality"
    if "embeddings.weight" in strings and (
        "generator.gen_z.weight_orig" in strings or "generator.gen_z.weight" in strings
    ):
        return "biggan"
    genforce_keys = ("generator_smooth", "synthesis.early_layer.const", "synthesis.layer0.style.weight")
    if any(k in strings for k in genforce_keys) or {"layer0.weight", "lod"} <= strings:
        return "genforce"
    if "features.0.wscale.scale" in strings or {"model.0.weight", "model.2.model.3.weight"} <= strings:
        return "voynov"  # their ProgGAN (ptrblck's layout) or SN-GAN ResNet
    if {"GE.initial_conv.0.weight", "G.initial_conv.0.weight", "initial_conv.0.weight"} & strings:
        return "lightweight-gan"
    if is_dcgan_keys(strings):
        return "dcgan"
    return None


def _is_module_file(src: str | os.PathLike) -> bool:
    """Whether `src` is a file holding pickled ``torch.nn.Module`` objects (a whole-module pickle)."""
    if not os.path.isfile(src):
        return False
    with open(src, "rb") as handle:
        return is_module_pickle(_pickle_strings(handle))


def detect_format(src: str | os.PathLike | bytes | IO[bytes]) -> str:
    """Tell which of :data:`FORMATS` a checkpoint is in, from its pickle opcodes (nothing is unpickled).

    An NVIDIA pickle has a ``"G_ema"`` key and NVIDIA's persistence hook; a rosinality checkpoint has a
    ``"g_ema"`` key (or is a bare state dict with ``style.1.weight`` and ``conv1.conv.weight``); a genforce
    checkpoint has ``generator_smooth`` or genforce's layer names; a pytorch-pretrained-BigGAN state dict has
    ``embeddings.weight`` and ``generator.gen_z``; a tutorial DCGAN has ``main.0.weight`` and
    ``main.1.running_mean`` (HugGAN: ``model.*``); a GANLatentDiscovery generator has
    ``features.0.wscale.scale`` (ProgGAN) or ``model.2.model.3.weight`` (SN-GAN); a lightweight-gan one
    ``initial_conv.0.weight``. A whole-module pickle names no keys: its module tree is
    read with the restricted unpickler (:mod:`.module_pickle`) and the same rules run on its state dict keys.
    A folder with ``generator.pt`` is a GANLatentDiscovery SN-GAN; other folders are read through their weights
    file: a HugGAN DCGAN if its ``config.json`` has ``latent_dim``, ``hidden_size`` and ``num_channels``, BigGAN or
    lightweight-gan if its ``pytorch_model.bin`` is, else a huggan (genforce-layout) checkpoint.

    Raises:
        ValueError: The format cannot be recognised; the message lists :data:`FORMATS`.
        FileNotFoundError: `src` is a folder without a weights file.
    """
    if isinstance(src, str | os.PathLike) and os.path.isdir(src):
        if os.path.isfile(os.path.join(src, VOYNOV_SNGAN_FILE)):
            return "voynov"  # a GANLatentDiscovery SN-GAN folder
        weights = checkpoint_weights_file(src)
        if is_dcgan_folder(src):
            return "dcgan"
        inner = detect_format(weights) if weights.endswith(".bin") else "genforce"
        return inner if inner in ("biggan", "lightweight-gan") else "genforce"  # else a huggan genforce folder
    if isinstance(src, bytes | bytearray):
        src = io.BytesIO(src)
    if isinstance(src, str | os.PathLike):
        with open(src, "rb") as handle:
            strings = _pickle_strings(handle)
    else:
        start = src.tell()
        strings = _pickle_strings(src)
        src.seek(start)
    if is_module_pickle(strings):
        state = load_checkpoint_state(src, read_data=False)  # the module tree's keys; tensor data stays unread
        strings = {str(k) for k in state} | {str(k) for v in state.values() if isinstance(v, dict) for k in v}
    found = _format_from_strings(strings)
    if found is None:
        raise ValueError(
            f"Cannot detect the checkpoint format of {src if isinstance(src, str | os.PathLike) else 'the data'}: "
            f"pass `format=` as one of {FORMATS}."
        )
    return found


def convert_checkpoint(src: str | os.PathLike, format: str | None = None) -> EditableGenerator:
    """Convert a third-party GAN checkpoint to one of our generators.

    Args:
        src: Path of the checkpoint file (or of a huggan / HugGAN DCGAN checkpoint folder).
        format: One of :data:`FORMATS`, or None to detect it with :func:`detect_format`.

    Returns:
        The generator (``StyleGAN2Generator``, ``StyleGAN3Generator``, ``StyleGANGenerator``,
        ``PGGANGenerator``, ``BigGANGenerator``, ``DCGANTutorialGenerator``, ``SNGANResNetGenerator``,
        ``LightweightGANGenerator``) in eval mode,
        on the CPU, in float32 (``save_pretrained`` writes it as a diffusers model folder).

    Raises:
        ValueError: `format` is not one of :data:`FORMATS`, or the checkpoint does not match it.
        UnsafePickleError: The checkpoint names a global outside the allow-list (nothing was executed).
    """
    if format is None:
        format = detect_format(src)
    if format not in FORMATS:
        raise ValueError(f"`format` must be one of {FORMATS} (or None to detect it), got {format!r}.")
    if format == "nvidia":
        return convert_nvidia_pickle(src)
    if format == "biggan":
        return convert_biggan(src)
    if format == "dcgan":
        return convert_dcgan(src)
    if format == "voynov":
        return convert_voynov(src)
    if format == "lightweight-gan":
        return convert_lightweight_gan(src)
    checkpoint = load_checkpoint_state(src) if _is_module_file(src) else src  # whole-module pickles
    if format == "genforce":
        return convert_genforce(checkpoint)
    return convert_rosinality(checkpoint)


def convert_folder(folder: str | os.PathLike) -> tuple[EditableGenerator, dict[str, str]] | None:
    """Convert a downloaded third-party model folder in memory, or return None if it is not one we know.

    Used by ``GANPipeline.from_pretrained`` for folders without ``model_index.json``: a HugGAN DCGAN Hub repo
    (``config.json`` with ``latent_dim``/``hidden_size``/``num_channels`` + ``pytorch_model.bin`` or
    ``model.safetensors``) loads directly.

    Returns:
        ``(generator, source)``, where `source` holds ``source_file``, ``source_sha256``, ``source_format``
        and ``license_note`` for the pipeline's provenance; or None.

    Example:

    >>> from sefa_plugin.convert import convert_folder
    >>> generator, source = convert_folder("huggan-dcgan-folder")  # doctest: +SKIP
    >>> source["source_format"]  # doctest: +SKIP
    'dcgan'
    """
    if not is_dcgan_folder(folder):
        return None
    weights = checkpoint_weights_file(folder)
    source = {
        "source_file": os.path.basename(weights),
        "source_sha256": file_sha256(weights),
        "source_format": "dcgan",
        "license_note": LICENSE_NOTES["dcgan"],
    }
    return convert_dcgan(folder), source
