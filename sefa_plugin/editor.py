"""`EditorSession`: the editing logic behind the Gradio editor, usable from Python without any UI.

The editor loads a model (the embedded default, a Hub id, a pipeline folder or a third-party checkpoint),
finds or loads directions (SeFa, GANSpace, or a direction repo), and renders samples moved along several
directions at once: the latents are ``w + Σ_i strength_i · n_i`` on each direction's layers. Base latents
are cached per ``(seed, truncation_psi, num_samples)``, so moving a slider only re-runs the synthesis
network, which is what keeps a slider change under 100 ms on a CPU for the embedded model.

Example:

>>> from sefa_plugin.editor import EditorSession
>>> session = EditorSession()                       # the embedded model
>>> directions = session.compute_directions("sefa", layers="all", num_directions=5)
>>> image = session.render(seed=0, truncation_psi=0.7, num_samples=2, strengths=[3.0, 0, -2.0])
>>> image.size
(134, 68)
>>> session.export_grid("grid.png", seed=0)  # doctest: +SKIP
>>> session.push_to_hub("someone/shapes-sefa-directions")  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import shutil
import tempfile
import threading
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import PIL.Image
import torch

from .directions.container import Directions, DirectionsMismatchError
from .directions.layers import GROUP_NAMES, parse_layers
from .model_sources import is_embedded_model, load_pipeline
from .model_sources import load_predictor as _load_predictor  # module-level: tests swap it
from .pipelines.base import GANPipeline
from .pipelines.sefa import SefaPipeline
from .utils.errors import argument_names
from .utils.images import make_grid, save_image_atomic, save_walk

try:  # GANSpace is optional: the editor offers it only when its pipeline imports.
    from .pipelines.ganspace import GANSpacePipeline
except ImportError:  # pragma: no cover - depends on the installed version
    GANSpacePipeline = None  # type: ignore[assignment,misc]

logger = logging.getLogger(__name__)

__all__ = [
    "GANSPACE_AVAILABLE",
    "LAYER_PRESETS",
    "METHODS",
    "EditorSession",
    "describe_error",
    "is_embedded_model",
    "layer_spec",
    "load_pipeline",
    "parse_seed",
]

#: Whether :class:`~sefa_plugin.pipelines.ganspace.GANSpacePipeline` is available.
GANSPACE_AVAILABLE = GANSpacePipeline is not None
#: Ways to get directions: closed-form SeFa, GANSpace (when available), or a direction repo/folder.
METHODS: tuple[str, ...] = ("sefa", "ganspace", "repo") if GANSPACE_AVAILABLE else ("sefa", "repo")
#: Layer presets of the editor; ``"custom"`` takes a spec such as ``"0-3"`` or ``"0-1,4"``.
LAYER_PRESETS: tuple[str, ...] = ("all", *GROUP_NAMES, "custom")
MAX_SEED = 2**32 - 1
#: The most latents the editor's GANSpace samples (a request beyond is refused before any work); a hosted
#: editor, shared by its visitors, allows fewer.
MAX_GANSPACE_SAMPLES = 1_000_000
HOSTED_MAX_GANSPACE_SAMPLES = 100_000
#: Walk export formats.
WALK_FORMATS = ("gif", "mp4")
#: The editor's words for the pipeline's arguments (its sliders are the per-direction `strengths`).
EDITOR_NAMES = {"edit_strengths": "strengths", "indices": "index"}

_SUGGESTIONS: OrderedDict[tuple, list[tuple[str, float] | None]] = OrderedDict()
_SUGGESTIONS_LOCK = threading.Lock()


# ---------------------------------------------------------------------------------------------- helpers
def parse_seed(value: int | float | str | None) -> int:
    """Turn a seed typed in a UI (``"42"``, ``42.0``) into an int in ``[0, 2**32 - 1]``.

    Raises:
        ValueError: `value` is not a whole number in range; the message names ``seed``.

    Example:

    >>> parse_seed(" 42 ")
    42
    """
    text = "" if value is None else str(value).strip()
    try:
        number = float(text)
    except ValueError:
        raise ValueError(f"`seed` must be a whole number in [0, {MAX_SEED}], got {text!r}.") from None
    if not math.isfinite(number) or number != int(number) or not 0 <= number <= MAX_SEED:
        raise ValueError(f"`seed` must be a whole number in [0, {MAX_SEED}], got {text!r}.")
    return int(number)


def layer_spec(preset: str, custom: str | None = None) -> str:
    """The layer spec for a preset of :data:`LAYER_PRESETS` (``"custom"`` returns `custom`).

    Example:

    >>> layer_spec("coarse"), layer_spec("custom", " 0-3 ")
    ('coarse', '0-3')
    """
    if preset not in LAYER_PRESETS:
        raise ValueError(f"`layers` preset must be one of {LAYER_PRESETS}, got {preset!r}.")
    if preset != "custom":
        return preset
    text = (custom or "").strip()
    if not text:
        raise ValueError("`custom layers` is empty: give a range like '0-3' or a list like '0-1,4'.")
    return text


def describe_error(err: BaseException) -> str:
    """A one-line message for the UI: what went wrong and what to do (never the token).

    Hub errors are told apart by kind: offline, no connection, unauthorised, missing repository.
    """
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled, RepositoryNotFoundError

    if isinstance(err, OfflineModeIsEnabled):
        return "The Hub is not reachable: offline mode is on (HF_HUB_OFFLINE=1)."
    if isinstance(err, RepositoryNotFoundError):
        return "No such repository on the Hub, or the token has no access to it."
    if isinstance(err, HfHubHTTPError):
        status = getattr(getattr(err, "response", None), "status_code", None)
        if status in (401, 403):
            return (
                "Not authorised: the Hub refused the token (it is missing, invalid or cannot write to this "
                "repository). Log in or paste a token with write access."
            )
        return f"The Hub answered with an error{f' ({status})' if status else ''}: {str(err).splitlines()[0]}"
    names = {cls.__name__ for cls in type(err).__mro__}
    if names & {"ConnectError", "ConnectTimeout", "TimeoutException", "NetworkError", "ConnectionError"}:
        return "The Hub is not reachable (no network connection). Try again when online."
    if isinstance(err, DirectionsMismatchError):
        return f"These directions do not fit the loaded model: {err}"
    if isinstance(err, IndexError | KeyError | ValueError | OSError):
        return str(err).strip("'\"") or type(err).__name__
    return f"Unexpected error ({type(err).__name__}): {err}"


# ---------------------------------------------------------------------------------------------- session
class EditorSession:
    """One user's editor state: a model, its directions, and cached base latents.

    Every action of the Gradio editor is a method here, so everything the app does can be scripted.

    Args:
        model: The model to load first (see :func:`load_pipeline`; None: the embedded model).
        revision: Hub revision of `model`.
        token: Hub token to load `model` (used once, never stored).
        allow_local: Accept local paths as models and direction sources.
        latent_cache_size: How many ``(seed, truncation_psi, num_samples)`` base latents to keep.

    Example:

    >>> session = EditorSession()
    >>> session.compute_directions("sefa", layers="coarse", num_directions=3).layers
    [0, 1, 2]
    """

    def __init__(
        self,
        model: str | os.PathLike | None = None,
        *,
        revision: str | None = None,
        token: str | None = None,
        allow_local: bool = True,
        latent_cache_size: int = 32,
    ) -> None:
        self.allow_local = allow_local
        self.latent_cache_size = int(latent_cache_size)
        self.pipe: GANPipeline
        self.model_name = ""
        self.directions: Directions | None = None
        #: Per direction: ``(label, share)`` suggested by the factor predictor, or None.
        self.suggestions: list[tuple[str, float] | None] = []
        #: The latents of the user's inverted image (``[1, num_ws, D]``), edited instead of samples; or None.
        self.image_latents: torch.Tensor | None = None
        #: Warnings about the current directions (e.g. computed on other weights), for the UI to keep showing.
        self.notes: list[str] = []
        self._latents: OrderedDict[tuple, torch.Tensor] = OrderedDict()
        self._lock = threading.Lock()
        self._workdir: Path | None = None
        #: Class rendered by a class-conditional generator (BigGAN, conditional StyleGAN2); None otherwise.
        self.class_label: int | None = None
        self.load_model(model, revision=revision, token=token)

    # ------------------------------------------------------------------ model and directions
    @property
    def is_embedded(self) -> bool:
        """Whether the loaded model is the embedded default (the only one the predictor knows)."""
        return is_embedded_model(self.model_name)

    def load_model(
        self, model: str | os.PathLike | None = None, *, revision: str | None = None, token: str | None = None
    ) -> GANPipeline:
        """Load `model` (cached), forgetting the directions and latents of the previous one."""
        pipe = load_pipeline(model, revision=revision, token=token, allow_local=self.allow_local)
        with self._lock:
            if getattr(self, "pipe", None) is not pipe:
                self.directions, self.suggestions, self.notes = None, [], []
                self.image_latents = None  # an inversion belongs to the model it was made with
                self._latents.clear()
            self.pipe = pipe
            self.model_name = str(model or "").strip()
            self.class_label = 0 if self.num_classes else None
        return pipe

    @property
    def num_classes(self) -> int:
        """Number of classes of a conditional generator (``c_dim``); 0 for an unconditional one."""
        return int(getattr(self.pipe.generator.config, "c_dim", 0) or 0)

    def set_class_label(self, class_label: int | float | str | None) -> int | None:
        """Choose the class a conditional generator renders; None (or blank) for unconditional models.

        Raises:
            ValueError: naming `class_label` and its range, when it does not fit the loaded model.

        Example:

        >>> session = EditorSession("biggan-deep-128")  # doctest: +SKIP
        >>> session.set_class_label("207")  # doctest: +SKIP
        207
        """
        if class_label is None or (isinstance(class_label, str) and not class_label.strip()):
            label = None
        else:
            try:
                value = float(class_label)
            except ValueError:
                raise ValueError(f"`class_label` must be an integer, got {class_label!r}.") from None
            if not value.is_integer():
                raise ValueError(f"`class_label` must be an integer, got {class_label!r}.")
            label = int(value)
        n = self.num_classes
        if n == 0:
            if label is not None:
                raise ValueError("`class_label` applies to class-conditional models only; this one is unconditional.")
        elif label is None:
            label = 0
        elif not 0 <= label < n:
            raise ValueError(f"`class_label` must be an integer in [0, {n - 1}] for this model, got {label}.")
        with self._lock:
            self.class_label = label
        return label

    def compute_directions(
        self,
        method: str = "sefa",
        *,
        layers: str | Sequence[int] = "all",
        num_directions: int = 10,
        num_samples: int = 20_000,
        seed: int = 0,
    ) -> Directions:
        """Find directions of the loaded model.

        Args:
            method: ``"sefa"`` (closed form) or ``"ganspace"`` (PCA of sampled latents, when available).
            layers: Layer spec (``"all"``, ``"coarse"``, ``"0-3"`` ...): SeFa reads these layers' weights;
                edits change these layers.
            num_directions: How many directions (K).
            num_samples: Latents sampled by GANSpace.
            seed: Seed of GANSpace's sampling.
        """
        g = self.pipe.generator
        idx = parse_layers(layers, g.num_ws, g.layer_groups())
        k = int(num_directions)
        if method == "sefa":
            pipe = self.pipe if isinstance(self.pipe, SefaPipeline) else SefaPipeline.from_pipe(self.pipe)
            directions = pipe.factorize(layers=idx, num_directions=k)
        elif method == "ganspace" and GANSPACE_AVAILABLE:
            pipe = GANSpacePipeline.from_pipe(self.pipe)
            with argument_names({"num_components": "num_directions"}):  # the session's name for K
                directions = pipe.fit(
                    max_samples=MAX_GANSPACE_SAMPLES if self.allow_local else HOSTED_MAX_GANSPACE_SAMPLES,
                    num_samples=int(num_samples),
                    num_components=k,
                    batch_size=min(10_000, int(num_samples)),
                    layers=idx,
                    generator=torch.Generator().manual_seed(int(seed)),
                )
        else:
            raise ValueError(f"`method` must be one of {tuple(m for m in METHODS if m != 'repo')}, got {method!r}.")
        self._set_directions(directions)
        return directions

    def load_directions(
        self, name_or_path: str | os.PathLike, *, revision: str | None = None, token: str | None = None
    ) -> tuple[Directions, list[str]]:
        """Load directions from a Hub repo, a folder or a ``.safetensors`` file, checked against the model.

        Returns:
            The directions and a list of warnings (e.g. they were computed on other weights).

        Raises:
            DirectionsMismatchError: They cannot edit the loaded model (other latent size or layers).
        """
        text = str(name_or_path).strip()
        if not text:
            raise ValueError("`directions` is empty: give a Hub id like 'org/name', a folder or a .safetensors file.")
        with argument_names({"pretrained_directions_name_or_path": "directions"}):
            directions = Directions.from_pretrained(
                text, revision=revision or None, token=token or None, allow_local=self.allow_local
            )
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            directions.check_compatible(self.pipe.generator)
        notes = [str(w.message) for w in caught]
        self._set_directions(directions, notes)
        return directions, notes

    def _set_directions(self, directions: Directions, notes: Sequence[str] = ()) -> None:
        with self._lock:
            self.directions = directions
            self.suggestions = [None] * len(directions)
            self.notes = list(notes)

    def require_directions(self) -> Directions:
        """The current directions; raises a readable error when there are none yet."""
        if self.directions is None:
            raise ValueError("No directions yet: compute directions or load a direction repo first.")
        return self.directions

    def suggest_labels(self, num_samples: int = 32, strength: float | None = None) -> list[tuple[str, float] | None]:
        """Per direction, its label and the labelled factor's share (embedded model only).

        The labels are :func:`~sefa_plugin.evaluation.labels.label_directions`'s, as ``sefa demo`` prints them
        (``"mixed (…)"`` when no factor holds half of the change). Returns a list of None when the model is not
        the embedded one or no predictor is available.
        """
        directions = self.require_directions()
        suggestions: list[tuple[str, float] | None] = [None] * len(directions)
        predictor = _load_predictor() if self.is_embedded else None
        if predictor is not None:
            # Every visitor of the hosted editor starts on the same directions: score them once.
            digest = hashlib.sha256(directions.vectors.numpy().tobytes()).hexdigest()
            key = (id(self.pipe), id(predictor), digest, tuple(directions.layers), int(num_samples), strength)
            with _SUGGESTIONS_LOCK:
                cached = _SUGGESTIONS.get(key)
            if cached is None:
                from .evaluation.labels import label_directions

                found = label_directions(self.pipe, directions, predictor, num_samples=num_samples, strength=strength)
                cached = [(lab.label, lab.share) for lab in found]
                with _SUGGESTIONS_LOCK:
                    _SUGGESTIONS[key] = cached
                    while len(_SUGGESTIONS) > 64:
                        _SUGGESTIONS.popitem(last=False)
            suggestions = list(cached)
        with self._lock:
            if self.directions is directions:
                self.suggestions = suggestions
        return suggestions

    def set_labels(self, labels: Sequence[str | None]) -> list[str]:
        """Set the labels of the first ``len(labels)`` directions (blank entries keep the old label)."""
        directions = self.require_directions()
        if len(labels) > len(directions):
            raise ValueError(f"`labels` has {len(labels)} entries for {len(directions)} directions.")
        for i, label in enumerate(labels):
            text = (label or "").strip()
            if text:
                directions.labels[i] = text
        return list(directions.labels)

    # ------------------------------------------------------------------ rendering
    def base_latents(self, seed: int, truncation_psi: float, num_samples: int) -> torch.Tensor:
        """Truncated latents ``[num_samples, num_ws, D]`` of seeds ``seed … seed + num_samples - 1`` (cached)."""
        seed = parse_seed(seed)
        if isinstance(num_samples, bool) or not 1 <= int(num_samples) <= 64:
            raise ValueError(f"`num_samples` must be an int in [1, 64], got {num_samples!r}.")
        num_samples = int(num_samples)
        if seed + num_samples - 1 > MAX_SEED:
            raise ValueError(f"`seed` must be at most {MAX_SEED - num_samples + 1} for {num_samples} samples.")
        psi = float(truncation_psi)
        class_label = self.class_label
        key = (id(self.pipe), seed, psi, num_samples, class_label)
        with self._lock:
            cached = self._latents.get(key)
            if cached is not None:
                self._latents.move_to_end(key)
                return cached
        latents, _ = self.pipe.base_latents(
            seeds=list(range(seed, seed + num_samples)), truncation_psi=psi, class_label=class_label
        )
        with self._lock:
            self._latents[key] = latents
            while len(self._latents) > self.latent_cache_size:
                self._latents.popitem(last=False)
        return latents

    def _edits(self, strengths: Sequence[float | None] | None) -> tuple[Directions | None, list[float]]:
        """The directions and the slider strengths for them (the UI has more sliders than directions)."""
        values = [0.0 if s is None else float(s) for s in (strengths or [])]
        if not any(values):
            return self.directions, []
        directions = self.require_directions()
        return directions, values[: len(directions)]

    # ------------------------------------------------------------------ the user's own image
    def invert_image(
        self, image: Any, num_steps: int = 300, seed: int = 0, progress: bool = False
    ) -> tuple[PIL.Image.Image, float]:
        """Invert the user's image into the model's edit space; from then on every edit applies to it.

        Args:
            image: A PIL image, an array or a file path (converted to RGB, centre-cropped, resized).
            num_steps: Optimisation steps (see :meth:`~sefa_plugin.pipelines.base.GANPipeline.invert`).
            seed: Seed of the optimisation.
            progress: Show the optimisation's progress bar (the UI tracks it).

        Returns:
            The reconstruction and its PSNR (dB) against the (resized) image.

        Example:

        >>> from sefa_plugin.data import render_scenes
        >>> session = EditorSession()
        >>> recon, psnr = session.invert_image(render_scenes([0], seed=3).images[0], num_steps=20)
        >>> session.image_latents.shape[0]
        1
        """
        if image is None:
            raise ValueError("`image` is empty: upload an image first.")
        pipe = self.pipe
        pipe.set_progress_bar_config(disable=not progress)
        try:
            inv = pipe.invert(
                [image],
                num_steps=int(num_steps),
                generator=torch.Generator().manual_seed(int(seed)),
                class_label=self.class_label,
            )
        finally:
            pipe.set_progress_bar_config(disable=True)
        with self._lock:
            self.image_latents = inv.latents
        return inv.images[0], float(inv.psnr()[0])

    def clear_image(self) -> None:
        """Edit samples again instead of the user's image."""
        with self._lock:
            self.image_latents = None

    def current_latents(self, seed: int, truncation_psi: float, num_samples: int) -> torch.Tensor:
        """What the editor edits: the inverted image's latents when one was given, else the samples' latents."""
        with self._lock:
            image = self.image_latents
        if image is not None:
            return image
        return self.base_latents(seed, truncation_psi, num_samples)

    def edited_latents(
        self, seed: int, truncation_psi: float, num_samples: int, strengths: Sequence[float]
    ) -> torch.Tensor:
        """Base latents moved by ``Σ strengths[i] · n_i`` (see :meth:`Directions.edit_many`)."""
        base = self.current_latents(seed, truncation_psi, num_samples)
        directions, current = self._edits(strengths)
        if not current:
            return base
        with argument_names(EDITOR_NAMES):
            return self.pipe.edit_latents(base, directions, edit_strengths=current)

    def render(
        self,
        seed: int = 0,
        truncation_psi: float = 0.7,
        num_samples: int = 4,
        strengths: Sequence[float] = (),
    ) -> PIL.Image.Image:
        """Render ``num_samples`` images side by side, each edited along all directions at once.

        Args:
            seed: First seed; sample ``j`` uses seed ``seed + j``.
            truncation_psi: Truncation towards the average latent.
            num_samples: How many samples (one row).
            strengths: One strength per direction (missing ones are 0).

        Returns:
            One PIL image: the samples in a row (2-pixel white gaps when there are several).
        """
        base = self.current_latents(seed, truncation_psi, num_samples)
        directions, current = self._edits(strengths)
        with argument_names(EDITOR_NAMES):
            images = self.pipe(latents=base, directions=directions if current else None, edit_strengths=current).images
        return images[0] if len(images) == 1 else make_grid(images, nrow=len(images))

    def direction_grid(
        self,
        seed: int = 0,
        truncation_psi: float = 0.7,
        strengths: Sequence[float] = (),
        num_steps: int = 7,
        indices: Sequence[int] | None = None,
    ) -> PIL.Image.Image:
        """One row per direction, its strength swept over ``strength_range``, other strengths held.

        The base is sample `seed` with the current `strengths`, so the grid shows what each slider does
        from the image on screen.
        """
        directions = self.require_directions()
        _, current = self._edits(strengths)
        base = self.current_latents(seed, truncation_psi, 1)
        with argument_names(EDITOR_NAMES):
            return self.pipe.direction_grid(
                directions, indices=indices, num_steps=int(num_steps), latents=base, edit_strengths=current
            )

    def walk_frames(
        self,
        index: int,
        seed: int = 0,
        truncation_psi: float = 0.7,
        num_samples: int = 4,
        strengths: Sequence[float] = (),
        num_frames: int = 16,
    ) -> list[PIL.Image.Image]:
        """Frames of a walk along direction `index` over ``strength_range``, the other strengths held."""
        directions = self.require_directions()
        if not 2 <= int(num_frames) <= 120:
            raise ValueError(f"`num_frames` must be in [2, 120], got {num_frames!r}.")
        _, current = self._edits(strengths)
        base = self.current_latents(seed, truncation_psi, num_samples)
        with argument_names(EDITOR_NAMES):
            return self.pipe.walk_frames(
                directions, indices=int(index), num_frames=int(num_frames), latents=base, edit_strengths=current
            )

    # ------------------------------------------------------------------ export and sharing
    @property
    def workdir(self) -> Path:
        """A private temporary folder for exported files (removed by :meth:`close`)."""
        if self._workdir is None:
            self._workdir = Path(tempfile.mkdtemp(prefix="sefa-editor-"))
        return self._workdir

    def export_grid(self, path: str | os.PathLike | None = None, **grid_kwargs: Any) -> Path:
        """Save :meth:`direction_grid` as a PNG (default: in :attr:`workdir`)."""
        path = Path(path) if path is not None else self.workdir / "directions_grid.png"
        return save_image_atomic(self.direction_grid(**grid_kwargs), path, what="path")

    def export_walk(
        self, index: int, path: str | os.PathLike | None = None, format: str = "gif", **walk_kwargs: Any
    ) -> Path:
        """Save :meth:`walk_frames` along direction `index` as a looping GIF or an MP4 (default: in :attr:`workdir`).

        Args:
            index: The direction walked.
            path: Target file (its extension, ``.gif`` or ``.mp4``, decides the format).
            format: ``"gif"`` or ``"mp4"``, when `path` is not given.
            **walk_kwargs: Passed to :meth:`walk_frames`.
        """
        if path is None:
            if format not in WALK_FORMATS:
                raise ValueError(f"`format` must be one of {WALK_FORMATS}, got {format!r}.")
            path = self.workdir / f"walk_direction_{int(index)}.{format}"
        return save_walk(self.walk_frames(index, **walk_kwargs), path, what="path")

    def export_directions(
        self,
        folder: str | os.PathLike | None = None,
        labels: Sequence[str | None] | None = None,
        preview: PIL.Image.Image | None = None,
    ) -> Path:
        """Write the direction folder (``directions.safetensors``, ``README.md``, ``preview.png``).

        Args:
            folder: Target folder (default: ``workdir/directions``).
            labels: Labels to set first (blank entries keep the current label).
            preview: Preview grid for the card (default: :meth:`direction_grid` of seed 0).
        """
        directions = self.require_directions()
        if labels is not None:
            self.set_labels(labels)
        folder = Path(folder) if folder is not None else self.workdir / "directions"
        if preview is None:
            preview = self.direction_grid(seed=0, truncation_psi=self.pipe.default_truncation_psi, num_steps=5)
        return directions.save_pretrained(folder, preview=preview)

    def push_to_hub(
        self,
        repo_id: str,
        *,
        token: str | None = None,
        private: bool | None = None,
        labels: Sequence[str | None] | None = None,
        preview: PIL.Image.Image | None = None,
    ) -> str:
        """Push ``directions.safetensors`` and a card (preview grid, labels, provenance) in one commit.

        The token is passed to the Hub client only: it is never logged or stored.

        Returns:
            The commit URL.
        """
        directions = self.require_directions()
        repo = (repo_id or "").strip()
        if not repo or repo.count("/") > 1 or " " in repo:
            raise ValueError(f"`repo_id` must look like 'name' or 'user/name', got {repo_id!r}.")
        if labels is not None:
            self.set_labels(labels)
        if preview is None:
            preview = self.direction_grid(seed=0, truncation_psi=self.pipe.default_truncation_psi, num_steps=5)
        url = directions.push_to_hub(repo, token=token or None, private=private, preview=preview)
        logger.info("Pushed %d directions to %s", len(directions), repo)
        return url

    def close(self) -> None:
        """Remove exported files."""
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None
