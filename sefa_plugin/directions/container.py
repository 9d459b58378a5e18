"""`Directions`: a set of latent directions, whatever method found them, with its file format.

A direction file is one ``directions.safetensors`` holding the tensors ``vectors`` ``[K, D]`` (unit rows)
and, when the method provides them, ``values`` ``[K]`` (eigenvalues, explained variance, accuracy...)
and ``stds`` ``[K]`` (standard deviation of latents along each direction, for strengths in σ units).
Everything else lives in the safetensors ``__metadata__`` as JSON strings (safetensors metadata is
str → str): method, latent space, layers, labels, default strength range and the base model's
provenance. A ``README.md`` model card is written next to it.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..hub import push_folder, resolve_folder, warn_if_other_weights
from ..models.interface import LATENT_SPACES

if TYPE_CHECKING:
    from PIL import Image

    from ..models.interface import EditableGenerator

logger = logging.getLogger(__name__)

DIRECTIONS_FILE = "directions.safetensors"
FORMAT_VERSION = "1"
METHOD_NAMES = {
    "sefa": "SeFa (closed-form factorization)",
    "ganspace": "GANSpace (PCA)",
    "learned": "latent discovery (Voynov & Babenko)",  # the stored tag of latent discovery's directions
    "boundary": "supervised boundaries (InterFaceGAN)",
    "random": "random directions (baseline)",
    "coordinate": "coordinate directions (baseline)",
    "imported": "imported directions",
}


#: How many labels ``repr(directions)`` shows.
_REPR_LABELS = 3


def _layer_text(layers: Sequence[int]) -> str:
    """``[0, 1, 2, 3, 6]`` → ``"0-3,6"`` (runs of consecutive layers as ranges, the layer-spec syntax)."""
    runs: list[list[int]] = []
    for i in layers:
        if runs and i == runs[-1][-1] + 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    return ",".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs)


class DirectionsMismatchError(ValueError):
    """Raised when directions are used with a generator they do not fit."""


#: The deepest nesting accepted in the JSON metadata of a direction file (real files nest 2-3 levels).
MAX_METADATA_DEPTH = 16

#: The longest JSON text accepted in one metadata field (labels of thousands of directions fit in far less).
MAX_METADATA_CHARS = 1 << 20


def _json_depth_ok(text: str, limit: int) -> bool:
    """Whether the brackets of a JSON text nest at most `limit` deep (strings skipped); linear, no recursion."""
    depth, in_string, escaped = 0, False, False
    for ch in text:
        if in_string:
            escaped, in_string = (not escaped and ch == "\\"), in_string and (escaped or ch != '"')
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > limit:
                return False
        elif ch in "]}":
            depth -= 1
    return True


def _metadata_json(
    meta: dict[str, str], key: str, kind: type, items: tuple[type, ...] | None = None, default: str | None = None
) -> Any:
    """Parse one JSON field of a direction file's metadata, bounded in depth and checked in type."""
    text = meta[key] if default is None else meta.get(key, default)
    if len(text) > MAX_METADATA_CHARS:
        raise ValueError(f"`{key}` is longer than {MAX_METADATA_CHARS:,} characters")
    if not _json_depth_ok(text, MAX_METADATA_DEPTH):
        raise ValueError(f"`{key}` nests deeper than {MAX_METADATA_DEPTH} levels")
    value = json.loads(text)
    if not isinstance(value, kind):
        raise ValueError(f"`{key}` must be a JSON {kind.__name__}, got {type(value).__name__}")
    if items is not None and any(isinstance(v, bool) or not isinstance(v, items) for v in value):
        raise ValueError(f"`{key}` must hold only {'/'.join(t.__name__ for t in items)} values")
    return value


@dataclass
class Directions:
    """Latent directions for one generator.

    Attributes:
        vectors: ``[K, D]`` float32, one unit direction per row.
        method: Which method found them (a key of ``METHOD_NAMES``).
        latent_space: ``"w+"`` or ``"z"``.
        layers: W+ layers an edit changes by default (``[0]`` for z-space generators).
        values: Optional ``[K]`` scores (eigenvalues for SeFa, variances for GANSpace ...).
        stds: Optional ``[K]`` standard deviations of latents along each direction (σ units).
        labels: One human label per direction (editable: ``directions.labels[0] = "pose"``).
        strength_range: Default ``(min, max)`` strength for sliders and walks.
        base_model: Provenance of the generator: ``repo_id``, ``revision``, ``weights_sha256``,
            ``class_name``, ``num_ws``.
        extra: Method settings worth recording (JSON-serialisable).

    Example:

    >>> import torch
    >>> from sefa_plugin import Directions
    >>> d = Directions(vectors=torch.eye(4)[:2], method="coordinate", latent_space="z", layers=[0])
    >>> d.labels[0] = "first axis"
    >>> len(d), d.labels
    (2, ['first axis', 'direction 1'])
    """

    vectors: torch.Tensor
    method: str
    latent_space: str
    layers: list[int]
    values: torch.Tensor | None = None
    stds: torch.Tensor | None = None
    labels: list[str] = field(default_factory=list)
    strength_range: tuple[float, float] = (-5.0, 5.0)
    base_model: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        v = torch.as_tensor(self.vectors).detach().to("cpu", torch.float32)
        if v.ndim != 2 or v.shape[0] < 1 or v.shape[1] < 1:
            raise ValueError(f"`vectors` must have shape [K, D] with K, D ≥ 1, got {list(v.shape)}.")
        if not torch.isfinite(v).all():
            raise ValueError("`vectors` contains NaN or infinite values.")
        self.vectors = v.contiguous()
        if self.method not in METHOD_NAMES:
            raise ValueError(f"`method` must be one of {sorted(METHOD_NAMES)}, got {self.method!r}.")
        if self.latent_space not in LATENT_SPACES:
            raise ValueError(f"`latent_space` must be one of {LATENT_SPACES}, got {self.latent_space!r}.")
        self.layers = [int(i) for i in self.layers]
        if not self.layers or any(i < 0 for i in self.layers):
            raise ValueError(f"`layers` must be a non-empty list of non-negative ints, got {self.layers}.")
        for name in ("values", "stds"):
            t = getattr(self, name)
            if t is not None:
                t = torch.as_tensor(t).detach().to("cpu", torch.float32).reshape(-1).contiguous()
                if not torch.isfinite(t).all():
                    raise ValueError(f"`{name}` contains NaN or infinite values.")
                if t.shape[0] != len(self):
                    raise ValueError(f"`{name}` must have {len(self)} entries (one per direction), got {t.shape[0]}.")
                setattr(self, name, t)
        labels = list(self.labels)
        if len(labels) > len(self):
            raise ValueError(f"`labels` has {len(labels)} entries for {len(self)} directions.")
        self.labels = labels + [f"direction {i}" for i in range(len(labels), len(self))]
        lo, hi = (float(x) for x in self.strength_range)
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise ValueError(f"`strength_range` must be two finite numbers (min < max), got {self.strength_range}.")
        self.strength_range = (lo, hi)

    # ------------------------------------------------------------------ basics
    def __len__(self) -> int:
        return int(self.vectors.shape[0])

    def __repr__(self) -> str:
        """One line: method, K, latent space and width, layers, the first labels (never the tensors).

        Example:

        >>> import torch
        >>> labels = ["pose", "hue", "size", "light"]
        >>> Directions(vectors=torch.eye(8)[:4], method="sefa", latent_space="w+", layers=[0, 1, 2, 3], labels=labels)
        Directions(method='sefa', K=4, latent_space='w+', dim=8, layers=0-3, labels=['pose', 'hue', 'size', …])
        """
        shown = ", ".join(repr(label) for label in self.labels[:_REPR_LABELS])
        more = ", …" if len(self.labels) > _REPR_LABELS else ""
        return (
            f"Directions(method={self.method!r}, K={len(self)}, latent_space={self.latent_space!r}, "
            f"dim={self.latent_dim}, layers={_layer_text(self.layers)}, labels=[{shown}{more}])"
        )

    @property
    def latent_dim(self) -> int:
        """Width ``D`` of each direction."""
        return int(self.vectors.shape[1])

    def __getitem__(self, index: int | slice | Sequence[int]) -> Directions:
        """A subset of the directions (labels, values and stds follow)."""
        idx = list(range(len(self)))[index] if isinstance(index, slice) else index
        idx = [idx] if isinstance(idx, int) else list(idx)
        for i in idx:
            self._check_index(i)
        return Directions(
            vectors=self.vectors[idx],
            method=self.method,
            latent_space=self.latent_space,
            layers=list(self.layers),
            values=None if self.values is None else self.values[idx],
            stds=None if self.stds is None else self.stds[idx],
            labels=[self.labels[i] for i in idx],
            strength_range=self.strength_range,
            base_model=dict(self.base_model),
            extra=dict(self.extra),
        )

    def _check_index(self, index: int) -> int:
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(self):
            raise IndexError(f"`index` must be an int in [0, {len(self) - 1}], got {index!r}.")
        return index

    # ------------------------------------------------------------------ editing
    def check_compatible(self, generator: EditableGenerator, layers: Sequence[int] | None = None) -> None:
        """Raise :class:`DirectionsMismatchError` if these directions cannot edit `generator`.

        A different latent space, latent size or layer count is an error; different weights (by the
        recorded SHA-256) only warn, since directions often transfer between fine-tuned models.
        """
        if generator.latent_space != self.latent_space:
            raise DirectionsMismatchError(
                f"These directions live in the {self.latent_space!r} space but the generator edits "
                f"{generator.latent_space!r}."
            )
        if generator.latent_dim != self.latent_dim:
            raise DirectionsMismatchError(
                f"These directions have {self.latent_dim} dimensions but the generator's latent has "
                f"{generator.latent_dim}: they were made for another model."
            )
        use = self.layers if layers is None else list(layers)
        bad = [i for i in use if not 0 <= i < generator.num_ws]
        if bad:
            raise DirectionsMismatchError(
                f"`layers` {bad} out of range: the generator has {generator.num_ws} editable layers "
                f"(0-{generator.num_ws - 1})."
            )
        warn_if_other_weights(
            self.base_model.get("weights_sha256"),
            generator,  # type: ignore[arg-type]
            "These directions were computed on a generator with weights sha256",
            "Edits may not mean the same.",
            stacklevel=3,
        )

    def edit(
        self,
        latents: torch.Tensor,
        index: int,
        strength: float,
        layers: Sequence[int] | None = None,
        sigma_units: bool = False,
    ) -> torch.Tensor:
        """Move latents ``[N, num_ws, D]`` by ``strength · vectors[index]`` on the chosen layers.

        Args:
            latents: Editable latents (after truncation).
            index: Which direction.
            strength: How far to move; in σ units (times ``stds[index]``) when `sigma_units` is True.
            layers: W+ layers to change (default: :attr:`layers`).
            sigma_units: Interpret `strength` in standard deviations of the latent distribution.
        """
        self._check_index(index)
        if not math.isfinite(float(strength)):
            raise ValueError(f"`strength` must be a finite number, got {strength}.")
        if latents.ndim != 3 or latents.shape[2] != self.latent_dim:
            raise DirectionsMismatchError(
                f"`latents` must have shape [N, num_ws, {self.latent_dim}], got {list(latents.shape)}."
            )
        use = self.layers if layers is None else [int(i) for i in layers]
        if any(not 0 <= i < latents.shape[1] for i in use):
            raise ValueError(f"`layers` {use} out of range for latents with {latents.shape[1]} layers.")
        scale = float(strength)
        if sigma_units:
            if self.stds is None:
                raise ValueError("`sigma_units=True` needs per-direction `stds`, which these directions lack.")
            scale *= float(self.stds[index])
        out = latents.clone()
        out[:, use] += scale * self.vectors[index].to(out.device, out.dtype)
        return out

    def edit_many(
        self,
        latents: torch.Tensor,
        strengths: Sequence[float],
        layers: Sequence[int] | None = None,
        sigma_units: bool = False,
    ) -> torch.Tensor:
        """Move latents ``[N, num_ws, D]`` along several directions at once: ``+ Σ_i strengths[i] · vectors[i]``.

        Direction ``i`` moves the latents on its layers (the directions' own, or `layers`); zero strengths
        are skipped, and strengths beyond ``len(strengths)`` count as zero.

        Example:

        >>> import torch
        >>> d = Directions(vectors=torch.eye(3)[:2], method="coordinate", latent_space="w+", layers=[0, 1])
        >>> d.edit_many(torch.zeros(1, 2, 3), [1.0, -2.0])[0, 0].tolist()
        [1.0, -2.0, 0.0]
        """
        strengths = [float(s) for s in strengths]
        if len(strengths) > len(self):
            raise ValueError(f"`strengths` has {len(strengths)} entries for {len(self)} directions.")
        out = latents
        for i, s in enumerate(strengths):
            if s != 0.0:
                out = self.edit(out, i, s, layers=layers, sigma_units=sigma_units)
        return out

    # ------------------------------------------------------------------ files
    def _metadata(self) -> dict[str, str]:
        return {
            "format": "sefa_plugin.directions",
            "format_version": FORMAT_VERSION,
            "method": self.method,
            "latent_space": self.latent_space,
            "layers": json.dumps(self.layers),
            "labels": json.dumps(self.labels),
            "strength_range": json.dumps(list(self.strength_range)),
            "base_model": json.dumps(self.base_model, sort_keys=True),
            "extra": json.dumps(self.extra, sort_keys=True),
        }

    def _write(self, folder: Path, preview: Image.Image | None = None, repo_id: str | None = None) -> None:
        tensors = {"vectors": self.vectors}
        if self.values is not None:
            tensors["values"] = self.values
        if self.stds is not None:
            tensors["stds"] = self.stds
        save_file(tensors, str(folder / DIRECTIONS_FILE), metadata=self._metadata())
        if preview is not None:
            preview.save(folder / "preview.png", format="PNG")
        self.model_card(preview="preview.png" if preview is not None else None, repo_id=repo_id).save(
            str(folder / "README.md")
        )

    def save_pretrained(
        self,
        save_directory: str | os.PathLike,
        preview: Image.Image | None = None,
        push_to_hub: bool = False,
        repo_id: str | None = None,
        **push_kwargs: Any,
    ) -> Path:
        """Write ``directions.safetensors`` and ``README.md`` (and ``preview.png``) atomically.

        Args:
            save_directory: Target folder (created if needed). The files written replace their old versions
                whole (see :func:`~sefa_plugin.hub.atomic_folder`); other entries are kept; a folder holding
                files sefa_plugin did not write is refused rather than overwritten.
            preview: Optional preview grid shown on the card.
            push_to_hub: Also push the folder's content to `repo_id`.
            repo_id: Hub repo for `push_to_hub` (default: the folder name).
            **push_kwargs: Passed to :meth:`push_to_hub` (``token``, ``private`` ...).

        Example:

        >>> d.save_pretrained("my-directions")  # doctest: +SKIP
        """
        from ..hub import atomic_folder

        with atomic_folder(save_directory) as tmp:
            self._write(tmp, preview=preview, repo_id=repo_id)
        if push_to_hub:
            self.push_to_hub(repo_id or Path(save_directory).name, preview=preview, **push_kwargs)
        return Path(save_directory)

    def push_to_hub(
        self,
        repo_id: str,
        *,
        token: str | None = None,
        private: bool | None = None,
        revision: str | None = None,
        commit_message: str = "Upload directions with sefa_plugin",
        create_pr: bool = False,
        preview: Image.Image | None = None,
    ) -> str:
        """Upload the direction file and its card to a Hub model repo in one commit.

        A failed push leaves the repository as it was. Returns the commit URL.

        Example:

        >>> d.push_to_hub("someone/ffhq-sefa-directions")  # doctest: +SKIP
        """
        return push_folder(
            lambda folder: self._write(folder, preview=preview, repo_id=repo_id),
            repo_id,
            token=token,
            private=private,
            revision=revision,
            commit_message=commit_message,
            create_pr=create_pr,
        )

    @classmethod
    def from_pretrained(
        cls,
        pretrained_directions_name_or_path: str | os.PathLike,
        *,
        revision: str | None = None,
        cache_dir: str | os.PathLike | None = None,
        token: str | bool | None = None,
        local_files_only: bool | None = None,
        allow_local: bool = True,
    ) -> Directions:
        """Load directions from a folder, a ``.safetensors`` file or a Hub repo id.

        ``allow_local=False`` takes the name as a Hub id only (hosted apps: the server's files are never read).

        Example:

        >>> d = Directions.from_pretrained("someone/ffhq-sefa-directions")  # doctest: +SKIP
        """
        path = Path(pretrained_directions_name_or_path)
        if allow_local and path.is_file():
            file = path
        else:
            folder, _ = resolve_folder(
                pretrained_directions_name_or_path,
                revision=revision,
                cache_dir=cache_dir,
                token=token,
                local_files_only=local_files_only,
                what="pretrained_directions_name_or_path",
                allow_local=allow_local,
            )
            file = folder / DIRECTIONS_FILE
            if not file.is_file():
                raise FileNotFoundError(
                    f"`pretrained_directions_name_or_path` {str(pretrained_directions_name_or_path)!r} has no "
                    f"{DIRECTIONS_FILE}: it is not a direction repository."
                )
        return cls._read(file)

    @classmethod
    def _read(cls, file: Path) -> Directions:
        try:
            tensors = load_file(str(file))
            from safetensors import safe_open

            with safe_open(str(file), framework="pt") as fh:
                meta = fh.metadata() or {}
        except (SafetensorError, OSError) as err:
            raise ValueError(f"{str(file)!r} is not a readable safetensors file: {err}") from err
        if meta.get("format") != "sefa_plugin.directions" or "vectors" not in tensors:
            raise ValueError(f"{str(file)!r} is not a sefa_plugin direction file (no directions metadata).")
        try:
            return cls(
                vectors=tensors["vectors"],
                values=tensors.get("values"),
                stds=tensors.get("stds"),
                method=meta["method"],
                latent_space=meta["latent_space"],
                layers=_metadata_json(meta, "layers", list, (int,)),
                labels=_metadata_json(meta, "labels", list, (str,)),
                strength_range=tuple(_metadata_json(meta, "strength_range", list, (int, float))),
                base_model=_metadata_json(meta, "base_model", dict, default="{}"),
                extra=_metadata_json(meta, "extra", dict, default="{}"),
            )
        except (KeyError, TypeError, json.JSONDecodeError) as err:
            raise ValueError(f"{str(file)!r} has incomplete or corrupt directions metadata: {err}") from None
        except ValueError as err:
            raise ValueError(f"{str(file)!r} has invalid directions metadata: {err}") from None

    # ------------------------------------------------------------------ card
    def model_card(self, preview: str | None = None, repo_id: str | None = None):  # -> ModelCard
        """The Hub model card for these directions (rendered from ``hub_cards/directions_card.md``)."""
        from ..cards import render_card

        value_name = {"sefa": "eigenvalue", "ganspace": "variance"}.get(self.method, "score")
        rows = [
            {
                "index": i,
                "label": self.labels[i],
                "value": "–" if self.values is None else f"{float(self.values[i]):.4g}",
            }
            for i in range(len(self))
        ]
        base = self.base_model.get("repo_id")
        return render_card(
            "directions_card.md",
            base_model=base,
            tags=["gan", "latent-directions", "sefa-plugin", self.method],
            title=f"{METHOD_NAMES[self.method]} directions" + (f" for {base}" if base else ""),
            method_name=METHOD_NAMES[self.method],
            latent_space=self.latent_space,
            latent_dim=self.latent_dim,
            layers=",".join(str(i) for i in self.layers),
            num_directions=len(self),
            strength_range=self.strength_range,
            base_revision=self.base_model.get("revision"),
            weights_sha256=self.base_model.get("weights_sha256"),
            preview=preview,
            rows=rows,
            value_name=value_name,
            repo_id=repo_id,
        )
