"""Import direction files made by other projects as :class:`~sefa_plugin.directions.Directions`.

Supported formats (each read without executing code: ``numpy.load(allow_pickle=False)`` and
``torch.load(weights_only=True)``):

=============  ========================================================  ====================================
format         file                                                      content
=============  ========================================================  ====================================
interfacegan   ``*_boundary.npy`` from genforce/interfacegan             one unit normal, ``[1, D]``
ganspace       ``cache/components/*.npz`` from harskish/ganspace         ``lat_comp`` ``[K, 1, D]``,
                                                                         ``lat_stdev``, ``act_stdev``,
                                                                         ``var_ratio``, ``lat_mean`` …
rosinality     ``factor.pt`` from rosinality/stylegan2-pytorch's          ``{"ckpt": str, "eigvec": [D, K]}``
               ``closed_form_factorization.py``                          (directions in *columns*)
voynov         ``models/deformator_<step>.pt`` (or its run folder)       ``linear.weight`` ``[D, K]`` or
               from anvoynov/GANLatentDiscovery                          ``log_mat_half`` ``[D, D]``
=============  ========================================================  ====================================

A file does not say which generator it belongs to, so the latent space and the edited layers are
arguments; pass the target `generator` to check the latent size and space and to resolve layer specs
such as ``"all"`` or ``"coarse"``. Every result has ``method="imported"`` and records the source format,
file name and SHA-256 in ``extra``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import re
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..models.interface import LATENT_SPACES
from ..utils.arrays import load_array_file
from .container import Directions, DirectionsMismatchError
from .layers import LayerSpec, parse_layers

if TYPE_CHECKING:
    from ..models.interface import EditableGenerator

__all__ = [
    "IMPORT_FORMATS",
    "import_directions",
    "load_ganspace_npz",
    "load_interfacegan_boundary",
    "load_rosinality_factor",
    "load_voynov_deformator",
]

logger = logging.getLogger(__name__)

#: Accepted values of ``format`` in :func:`import_directions` and ``sefa import --format``.
IMPORT_FORMATS = ("interfacegan", "ganspace", "rosinality", "voynov")

#: The most bytes of array data an imported ``.npy``/``.npz`` file may hold (real files are a few MB).
MAX_IMPORT_BYTES = 256 << 20

# GANSpace cache names end with ``_n{N}[_w][_seed{S}].npz``; ``_w`` marks components computed in W.
_GANSPACE_NAME = re.compile(r"_n\d+(?P<w>_w)?(?:_seed\d+)?\.npz$")


# ---------------------------------------------------------------------------------------- helpers
def _file(path: str | os.PathLike) -> Path:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"`path` {str(path)!r} is not a file.")
    return p


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _check_latent_space(latent_space: str) -> str:
    if latent_space not in LATENT_SPACES:
        raise ValueError(
            f"`latent_space` must be one of {LATENT_SPACES} (InterFaceGAN and GANSpace 'w' files edit "
            f"'w+'), got {latent_space!r}."
        )
    return latent_space


def _resolve_layers(layers: LayerSpec | None, latent_space: str, generator: EditableGenerator | None) -> list[int]:
    """Edit layers: z-space directions edit layer 0; W+ ones need `generator` for specs like 'all'."""
    if generator is not None:
        return parse_layers("all" if layers is None else layers, generator.num_ws, generator.layer_groups())
    if latent_space == "z":
        return parse_layers(0 if layers is None else layers, 1)
    if layers is None or (isinstance(layers, str) and not re.fullmatch(r"[\d\s,\-]+", layers)):
        raise ValueError(
            f"`layers`={layers!r} for W+ directions needs `generator` (`--model` in the CLI) to know its "
            f"layers; without it, give explicit indices such as '0-13' or [0, 1, 2]."
        )
    if isinstance(layers, str):
        top = max(int(n) for n in re.findall(r"\d+", layers))
    elif isinstance(layers, int):
        top = int(layers)
    else:
        top = max([int(i) for i in layers], default=0)
    return parse_layers(layers, top + 1)


def _base_model(generator: EditableGenerator | None) -> dict[str, Any]:
    if generator is None:
        return {}
    from ..hub import weights_sha256

    return {
        "class_name": type(generator).__name__, "num_ws": generator.num_ws,
        "weights_sha256": weights_sha256(generator),  # type: ignore[arg-type]
    }  # fmt: skip


def _finish(
    path: Path,
    fmt: str,
    vectors: np.ndarray | torch.Tensor,
    latent_space: str,
    layers: LayerSpec | None,
    generator: EditableGenerator | None,
    values: Any = None,
    stds: Any = None,
    labels: list[str] | None = None,
    strength_range: tuple[float, float] = (-5.0, 5.0),
    extra: dict[str, Any] | None = None,
) -> Directions:
    v = torch.as_tensor(np.asarray(vectors, dtype=np.float64) if isinstance(vectors, np.ndarray) else vectors)
    v = v.to(torch.float64)
    if not torch.isfinite(v).all():
        raise ValueError(f"`path` {str(path)!r} holds NaN or infinite direction values.")
    norms = v.norm(dim=1, keepdim=True)
    if (norms == 0).any():
        raise ValueError(f"`path` {str(path)!r} holds a zero direction vector.")
    v = v / norms  # stored files are unit up to float32 rounding; make them exact
    idx = _resolve_layers(layers, latent_space, generator)
    d = Directions(
        vectors=v.to(torch.float32), method="imported", latent_space=latent_space, layers=idx,
        values=values, stds=stds, labels=labels or [], strength_range=strength_range,
        base_model=_base_model(generator),
        extra={"source_format": fmt, "source_file": path.name, "source_sha256": _sha256(path),
               **(extra or {})},
    )  # fmt: skip
    if generator is not None:
        try:
            d.check_compatible(generator)
        except DirectionsMismatchError as err:
            raise DirectionsMismatchError(f"`path` {str(path)!r} ({fmt}) does not fit `generator`: {err}") from err
    return d


def _load_npy_or_npz(path: Path, what: str) -> np.ndarray | dict[str, np.ndarray]:
    # Headers and zip members are size-checked before any data is read (a forged shape cannot allocate).
    try:
        return load_array_file(path, "path", max_bytes=MAX_IMPORT_BYTES)
    except ValueError as err:
        raise ValueError(f"{str(err).rstrip('.')} (expected a {what}).") from None


def _torch_load(p: Path, expected: str) -> Any:
    """``torch.load(p, weights_only=True)`` on the CPU; errors say why in one line and what was `expected`."""
    try:
        return torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        # torch's message is long; keep its one-line reason ("WeightsUnpickler error: ...").
        reason = re.search(r"WeightsUnpickler error:\s*([^\n]+(?:\n[^\n]+)?)", str(err))
        detail = (" ".join(reason.group(1).split()) if reason else str(err).splitlines()[0]).split(". ")[0]
        if "unsupported global" not in detail.lower():
            raise ValueError(f"`path` {str(p)!r} is not a readable torch file: {detail}") from err
        raise ValueError(
            f"`path` {str(p)!r} holds objects other than tensors and plain containers (refused: loading it "
            f"would run pickled code: {detail}). Expected {expected}."
        ) from err
    except (RuntimeError, OSError, EOFError, zipfile.BadZipFile) as err:
        raise ValueError(f"`path` {str(p)!r} is not a readable torch file: {err}") from err


# ---------------------------------------------------------------------------------------- formats
def load_interfacegan_boundary(
    path: str | os.PathLike,
    latent_space: str = "w+",
    layers: LayerSpec | None = None,
    generator: EditableGenerator | None = None,
    label: str | None = None,
) -> Directions:
    """Load an InterFaceGAN boundary (``.npy`` holding one unit normal ``[1, D]``).

    InterFaceGAN trains StyleGAN boundaries in W (files named ``*_w_boundary.npy``) and applies them
    to every layer: import those with ``latent_space="w+"``; PGGAN and ``*_z_boundary.npy`` files are
    ``latent_space="z"``.

    Args:
        path: The ``.npy`` file.
        latent_space: ``"w+"`` or ``"z"``.
        layers: Layers an edit changes (default: all of `generator`'s; layer 0 in z space).
        generator: Target generator: checks latent size and space, resolves ``"all"``/group specs.
        label: Name of the attribute (default: the file name without ``_boundary.npy``).

    Example:

    >>> from sefa_plugin.directions.importers import load_interfacegan_boundary
    >>> d = load_interfacegan_boundary("stylegan_ffhq_age_w_boundary.npy", layers="0-17")  # doctest: +SKIP
    >>> d.labels  # doctest: +SKIP
    ['stylegan_ffhq_age_w']
    """
    p = _file(path)
    latent_space = _check_latent_space(latent_space)
    arr = _load_npy_or_npz(p, ".npy array")
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "fiu":
        raise ValueError(f"`path` {str(p)!r} is not an InterFaceGAN boundary: expected a numeric .npy array [1, D].")
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[0] != 1:
        raise ValueError(f"`path` {str(p)!r} is not an InterFaceGAN boundary: expected [1, D], got {list(arr.shape)}.")
    name = label or re.sub(r"_boundary$", "", p.stem)
    return _finish(p, "interfacegan", arr, latent_space, layers, generator, labels=[name],
                   strength_range=(-3.0, 3.0))  # fmt: skip


def load_ganspace_npz(
    path: str | os.PathLike,
    latent_space: str | None = None,
    layers: LayerSpec | None = None,
    generator: EditableGenerator | None = None,
    num_components: int | None = None,
) -> Directions:
    """Load a GANSpace component cache (``np.savez_compressed`` output of its ``decomposition.py``).

    Reads ``lat_comp`` ``[K, 1, D]`` (latent directions, unit rows), ``lat_stdev`` ``[K]`` (standard
    deviation of the latents along each, so strengths work in σ units; ones for Gaussian ``z``) and
    ``act_stdev`` ``[K]`` (σ of the principal coordinates; ``values`` = its square, the explained
    variance). ``var_ratio`` is kept in ``extra``. Other keys (``act_comp``, ``act_mean``, ``lat_mean``,
    ``random_stdevs``) are not needed for editing.

    Args:
        path: The ``.npz`` file.
        latent_space: ``"w+"`` or ``"z"``. Default: from GANSpace's file name, which ends in
            ``_n{N}_w.npz`` for components computed in W (``"w+"``) and ``_n{N}.npz`` otherwise (``"z"``);
            give it explicitly for renamed files.
        layers: Layers an edit changes (default: all of `generator`'s; layer 0 in z space).
        generator: Target generator (checks, layer specs).
        num_components: Keep only the first this many components (default: all).

    Example:

    >>> from sefa_plugin.directions.importers import load_ganspace_npz
    >>> d = load_ganspace_npz("stylegan2-ffhq_style_ipca_c80_n1000000_w.npz", layers="0-17")  # doctest: +SKIP
    >>> d.latent_space, len(d)  # doctest: +SKIP
    ('w+', 80)
    """
    p = _file(path)
    if latent_space is None:
        match = _GANSPACE_NAME.search(p.name)
        if match is None:
            raise ValueError(
                f"`latent_space` must be given for `path` {str(p)!r}: its name does not follow GANSpace's "
                f"'..._n<N>[_w].npz' pattern. Allowed values: {LATENT_SPACES}."
            )
        latent_space = "w+" if match.group("w") else "z"
        logger.info("%s: latent space %r from the file name", p.name, latent_space)
    latent_space = _check_latent_space(latent_space)
    data = _load_npy_or_npz(p, "GANSpace .npz cache")
    if not isinstance(data, dict):
        raise ValueError(f"`path` {str(p)!r} is not a GANSpace cache: expected an .npz archive with `lat_comp`.")
    missing = [k for k in ("lat_comp", "lat_stdev") if k not in data]
    if missing:
        raise ValueError(f"`path` {str(p)!r} is not a GANSpace cache: missing {missing} (has {sorted(data)}).")
    comp = data["lat_comp"]
    if comp.ndim == 3 and comp.shape[1] == 1:
        comp = comp[:, 0]
    if comp.ndim != 2:
        raise ValueError(
            f"`path` {str(p)!r}: `lat_comp` must have shape [K, 1, D] or [K, D] (one latent vector per "
            f"component), got {list(data['lat_comp'].shape)}."
        )
    k = comp.shape[0]
    arrays = {name: data[name].reshape(-1) for name in ("lat_stdev", "act_stdev", "var_ratio") if name in data}
    for name, arr in arrays.items():
        if arr.shape[0] != k:
            raise ValueError(f"`path` {str(p)!r}: `{name}` has {arr.shape[0]} entries for {k} components.")
    if num_components is not None:
        if isinstance(num_components, bool) or not isinstance(num_components, int) or not 1 <= num_components <= k:
            raise ValueError(f"`num_components` must be an int in [1, {k}], got {num_components!r}.")
        comp = comp[:num_components]
        arrays = {name: arr[:num_components] for name, arr in arrays.items()}
    values = arrays["act_stdev"].astype(np.float64) ** 2 if "act_stdev" in arrays else None
    stds = arrays["lat_stdev"].astype(np.float64)
    extra = {"var_ratio": arrays["var_ratio"].astype(float).tolist()} if "var_ratio" in arrays else {}
    # Default slider: ±3σ of the first (widest) component in raw units; use `sigma_units=True` per component.
    top = float(stds.max()) if stds.size and np.isfinite(stds).all() and stds.max() > 0 else 5 / 3
    return _finish(
        p, "ganspace", comp, latent_space, layers, generator, values=values, stds=stds,
        labels=[f"PC{i}" for i in range(comp.shape[0])], strength_range=(-3.0 * top, 3.0 * top), extra=extra,
    )  # fmt: skip


def load_rosinality_factor(
    path: str | os.PathLike,
    layers: LayerSpec | None = None,
    generator: EditableGenerator | None = None,
    num_components: int | None = None,
) -> Directions:
    """Load a ``factor.pt`` from rosinality/stylegan2-pytorch's ``closed_form_factorization.py``.

    The file is ``torch.save({"ckpt": <checkpoint path>, "eigvec": V})`` where ``V`` ``[D, D]`` holds the
    right singular vectors of the stacked modulation weights in its *columns*, strongest first; it is
    read with ``torch.load(weights_only=True)`` (no code runs) and transposed to one direction per row.
    These are SeFa directions in W, applied to every layer in rosinality's ``apply_factor.py``. No
    eigenvalues are stored, so ``values`` is None.

    Args:
        path: The ``.pt`` file.
        layers: Layers an edit changes (default: all of `generator`'s).
        generator: Target generator (checks, layer specs).
        num_components: Keep only the first this many directions (default: all).

    Example:

    >>> from sefa_plugin.directions.importers import load_rosinality_factor
    >>> d = load_rosinality_factor("factor.pt", layers="0-13")  # doctest: +SKIP
    >>> d.latent_space  # doctest: +SKIP
    'w+'
    """
    p = _file(path)
    obj = _torch_load(p, "rosinality's factor.pt {'ckpt': str, 'eigvec': [D, K]}")
    if not isinstance(obj, dict) or not isinstance(obj.get("eigvec"), torch.Tensor):
        keys = sorted(obj) if isinstance(obj, dict) else type(obj).__name__
        raise ValueError(
            f"`path` {str(p)!r} is not a rosinality factor file: expected a dict with a tensor 'eigvec' "
            f"[D, K], got {keys}."
        )
    eigvec = obj["eigvec"]
    if eigvec.ndim != 2:
        raise ValueError(f"`path` {str(p)!r}: 'eigvec' must have shape [D, K], got {list(eigvec.shape)}.")
    vectors = eigvec.detach().to(torch.float64).T  # columns -> rows
    if num_components is not None:
        k = vectors.shape[0]
        if isinstance(num_components, bool) or not isinstance(num_components, int) or not 1 <= num_components <= k:
            raise ValueError(f"`num_components` must be an int in [1, {k}], got {num_components!r}.")
        vectors = vectors[:num_components]
    extra = {"ckpt": obj["ckpt"]} if isinstance(obj.get("ckpt"), str) else {}
    return _finish(p, "rosinality", vectors, "w+", layers, generator, extra=extra)


# Voynov & Babenko's `DeformatorType` names (their args.json "deformator") that are fixed linear maps.
_VOYNOV_TYPES = ("linear", "proj", "ortho", "id", "random", "fc")


def _voynov_run(path: str | os.PathLike) -> tuple[Path, Path | None]:
    """The deformator file and its run folder (holding ``args.json``) for a file or a run folder."""
    p = Path(path)
    if p.is_dir():
        steps = {int(m.group(1)): f for f in (p / "models").glob("deformator_*.pt")
                 if (m := re.fullmatch(r"deformator_(\d+)\.pt", f.name))}  # fmt: skip
        if not steps:
            raise FileNotFoundError(f"`path` folder {str(path)!r} holds no models/deformator_<step>.pt.")
        return steps[max(steps)], p  # the last step, as their `load_from_dir` picks
    p = _file(path)
    run = next((d for d in (p.parent, p.parent.parent) if (d / "args.json").is_file()), None)
    return p, run


def _voynov_labels(run: Path | None, k: int) -> list[str]:
    """Labels from the run's ``human_annotation.txt`` (lines ``index: name``); unnamed ones keep a number."""
    labels = [f"direction {i}" for i in range(k)]
    notes = run / "human_annotation.txt" if run is not None else None
    if notes is not None and notes.is_file():
        for line in notes.read_text(encoding="utf-8").splitlines():
            m = re.fullmatch(r"\s*(\d+)\s*:\s*(.*\S)\s*", line)
            if m and int(m.group(1)) < k:
                labels[int(m.group(1))] = m.group(2)
    return labels


def load_voynov_deformator(
    path: str | os.PathLike,
    latent_space: str | None = None,
    layers: LayerSpec | None = None,
    generator: EditableGenerator | None = None,
    deformator: str | None = None,
) -> Directions:
    """Load a deformator of anvoynov/GANLatentDiscovery (Voynov & Babenko, ICML 2020) as fixed directions.

    Their ``LatentDeformator`` maps a shift ``ε·e_k`` along input axis ``k`` to a latent shift; for the
    linear types that shift is ``ε`` times one fixed vector, which becomes direction ``k``:

    * ``linear`` (``linear.weight`` ``[out, K]``): column ``k``; its norm (the latent step per unit of ``ε``)
      is kept in ``extra["shift_norms"]``. ``proj`` (same weight; the shift is rescaled to norm ``|ε|``) gives
      the same unit columns, so the two need not be told apart. Their ``linear.bias``, a constant offset
      added to every shift, is not a direction: it is dropped and its norm kept in ``extra["bias_norm"]``.
    * ``ortho`` (``log_mat_half`` ``[D, D]``): column ``k`` of ``expm(L - Lᵀ)``.
    * ``id`` (an empty state dict): the coordinate axes; needs the run's ``args.json`` (``directions_count``).
    * ``random`` and ``fc`` are refused: a random deformator's matrix is drawn when it is built and never
      saved, and ``fc`` is a nonlinear network whose shift depends on ``ε``, not a fixed direction.

    Vectors longer than the latent are cut and shorter ones zero-padded, as their deformator does, when
    `generator` is given. The file is read with ``torch.load(weights_only=True)``.

    Args:
        path: A ``models/deformator_<step>.pt`` state dict, a training ``checkpoint.pt``
            (``{"deformator": ..., "shift_predictor": ..., "step": ...}``) or a run folder (``args.json`` +
            ``models/``; the last step is read). A run's ``args.json`` gives the type and latent space and its
            ``human_annotation.txt`` the labels.
        latent_space: ``"z"`` or ``"w+"`` (default: ``"w+"`` for their StyleGAN2 runs shifted in W, else ``"z"``).
        layers: Layers an edit changes (default: all of `generator`'s; layer 0 in z space).
        generator: Target generator (checks sizes, pads or cuts vectors, resolves layer specs).
        deformator: Their type name (one of ``"linear"``, ``"proj"``, ``"ortho"``, ``"id"``; default: from
            ``args.json``, else from the state-dict keys).

    Example:

    >>> from sefa_plugin.directions.importers import load_voynov_deformator
    >>> d = load_voynov_deformator("results/anime/models/deformator_100000.pt")  # doctest: +SKIP
    >>> d.latent_space, d.extra["deformator"]  # doctest: +SKIP
    ('z', 'ortho')
    """
    file, run = _voynov_run(path)
    args: dict[str, Any] = {}
    if run is not None:
        try:
            args = json.loads((run / "args.json").read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"{str(run / 'args.json')!r} is not valid JSON: {err}") from err
    state = _torch_load(file, "a GANLatentDiscovery deformator state dict")
    if isinstance(state, dict) and isinstance(state.get("deformator"), dict):
        state = state["deformator"]  # a training checkpoint
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"`path` {str(file)!r} is not a deformator state dict (a dict of tensors).")
    kind = deformator or args.get("deformator")
    if kind is None and not state:
        raise ValueError(
            f"`path` {str(file)!r} is an empty state dict: an 'id' or a 'random' deformator. Keep it in its run "
            f"folder (args.json) or pass `deformator`; 'random' cannot be imported (its matrix is never saved)."
        )
    if kind is None:
        kind = "ortho" if "log_mat_half" in state else "linear" if "linear.weight" in state else "fc"
    if kind not in _VOYNOV_TYPES:
        raise ValueError(f"`deformator` must be one of {_VOYNOV_TYPES[:4]}, got {kind!r}.")
    if kind == "random":
        raise ValueError(
            f"`path` {str(file)!r} is a 'random' deformator: its orthogonal matrix is drawn when the deformator is "
            "built and is not in the saved state dict, so there are no directions to import."
        )
    if kind == "fc":
        raise ValueError(
            f"`path` {str(file)!r} is an 'fc' deformator: a nonlinear network whose shift depends on its size, "
            "which fixed directions cannot represent. Train a linear, proj or ortho deformator instead."
        )
    extra: dict[str, Any] = {"deformator": kind}
    if kind == "id":
        k = int(args.get("directions_count") or (generator.latent_dim if generator is not None else 0))
        if k < 1:
            raise ValueError(f"`path` {str(file)!r}: an 'id' deformator needs args.json's directions_count.")
        vectors = torch.eye(k, dtype=torch.float64)
    elif kind == "ortho":
        log = state.get("log_mat_half")
        if log is None or log.ndim != 2 or log.shape[0] != log.shape[1]:
            raise ValueError(f"`path` {str(file)!r}: an 'ortho' deformator needs 'log_mat_half' [D, D].")
        vectors = torch.linalg.matrix_exp(log.double() - log.double().T).T  # column k -> row k
    else:
        weight = state.get("linear.weight")
        if weight is None or weight.ndim != 2:
            raise ValueError(f"`path` {str(file)!r}: a '{kind}' deformator needs 'linear.weight' [out, K].")
        vectors = weight.double().T
        extra["shift_norms"] = vectors.norm(dim=1).tolist()
        if "linear.bias" in state:
            extra["bias_norm"] = float(state["linear.bias"].double().norm())
            logger.info("%s: dropped the deformator's constant bias (norm %.4g)", file.name, extra["bias_norm"])
    if generator is not None and vectors.shape[1] != generator.latent_dim:
        d = generator.latent_dim  # their deformator cuts or zero-pads its output to the latent size
        vectors = torch.nn.functional.pad(vectors[:, :d], (0, max(0, d - vectors.shape[1])))
    if latent_space is None:
        latent_space = "w+" if "StyleGAN2" in str(args.get("gan_type", "")) and args.get("w_shift", True) else "z"
    scale = float(args.get("shift_scale", 6.0)) * (
        float(np.mean(extra["shift_norms"])) if "shift_norms" in extra else 1.0
    )
    return _finish(
        file, "voynov", vectors, _check_latent_space(latent_space), layers, generator,
        labels=_voynov_labels(run, vectors.shape[0]), strength_range=(-scale, scale), extra=extra,
    )  # fmt: skip


def import_directions(
    path: str | os.PathLike,
    format: str,
    latent_space: str | None = None,
    layers: LayerSpec | None = None,
    generator: EditableGenerator | None = None,
) -> Directions:
    """Dispatch to the loader of `format` (one of :data:`IMPORT_FORMATS`).

    `latent_space` defaults to ``"w+"`` for InterFaceGAN, to the file name's hint for GANSpace, and must
    be ``"w+"`` (or None) for rosinality files.

    Example:

    >>> from sefa_plugin.directions.importers import import_directions
    >>> d = import_directions("factor.pt", format="rosinality", layers="0-13")  # doctest: +SKIP
    """
    if format == "interfacegan":
        return load_interfacegan_boundary(path, latent_space=latent_space or "w+", layers=layers,
                                          generator=generator)  # fmt: skip
    if format == "ganspace":
        return load_ganspace_npz(path, latent_space=latent_space, layers=layers, generator=generator)
    if format == "rosinality":
        if latent_space not in (None, "w+"):
            raise ValueError(f"`latent_space` must be 'w+' for rosinality factor files, got {latent_space!r}.")
        return load_rosinality_factor(path, layers=layers, generator=generator)
    if format == "voynov":
        return load_voynov_deformator(path, latent_space=latent_space, layers=layers, generator=generator)
    raise ValueError(f"`format` must be one of {IMPORT_FORMATS}, got {format!r}.")
