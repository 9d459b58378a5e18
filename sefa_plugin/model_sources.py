"""Where an editing session's model comes from: the embedded default, a Hub id, a pipeline folder or a
third-party checkpoint, loaded once and cached (up to 3 pipelines, shared between sessions), and the embedded
factor predictor that suggests direction labels.

Example:

>>> from sefa_plugin.model_sources import is_embedded_model, load_pipeline
>>> is_embedded_model("default")
True
>>> load_pipeline() is load_pipeline("embedded")  # the embedded model, loaded once
True
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from .pipelines.base import GANPipeline
from .pipelines.sefa import SefaPipeline
from .utils.errors import argument_names

logger = logging.getLogger(__name__)

__all__ = ["CHECKPOINT_SUFFIXES", "EMBEDDED_NAMES", "is_embedded_model", "load_pipeline", "load_predictor"]

#: Names that select the embedded default model.
EMBEDDED_NAMES = ("", "embedded", "default")
#: Checkpoint suffixes converted with :func:`sefa_plugin.convert.convert_checkpoint`.
CHECKPOINT_SUFFIXES = (".pkl", ".pt", ".pth")

_PIPELINES: OrderedDict[tuple, GANPipeline] = OrderedDict()
_PIPELINES_LOCK = threading.Lock()
_PIPELINE_CACHE_SIZE = 3
_PREDICTOR: dict[str, Any] = {}
_PREDICTOR_LOCK = threading.Lock()


def is_embedded_model(source: str | os.PathLike | None) -> bool:
    """Whether `source` names the embedded default model."""
    from .embedded import DEFAULT_MODEL

    if source is None or str(source).strip() in EMBEDDED_NAMES:
        return True
    try:
        return Path(source).resolve() == Path(DEFAULT_MODEL).resolve()
    except OSError:  # pragma: no cover - unusual paths
        return False


def _pipeline_key(source: str, revision: str | None) -> tuple:
    path = Path(source)
    if path.exists():
        stat = path.stat()
        return ("path", str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    return ("hub", source, revision or "main")


def load_pipeline(
    model: str | os.PathLike | None = None,
    *,
    revision: str | None = None,
    token: str | None = None,
    local_files_only: bool | None = None,
    allow_local: bool = True,
) -> GANPipeline:
    """Load a model for editing, cached by source (up to 3 pipelines, shared between sessions).

    Args:
        model: None or ``""`` for the embedded model; a Hub id ``"org/name"``; a pipeline folder; or a
            third-party checkpoint file (``.pkl``/``.pt``, converted with :mod:`sefa_plugin.convert`).
        revision: Hub revision.
        token: Hub token for private repositories. Pipelines loaded with a token are not cached, so
            another session never gets a private model without the token.
        local_files_only: Only use the Hub cache (default: ``HF_HUB_OFFLINE``).
        allow_local: Accept local paths; a hosted app turns this off so that users cannot read the
            server's files.

    Returns:
        A :class:`~sefa_plugin.pipelines.SefaPipeline` (progress bars off).
    """
    from .embedded import DEFAULT_MODEL

    source = str(model).strip() if model is not None else ""
    embedded = source in EMBEDDED_NAMES
    if embedded:
        source = DEFAULT_MODEL
    path = Path(source).expanduser()
    # A hosted app never looks at the server's files for a visitor's text: it is a Hub id, or refused.
    is_local = embedded or (allow_local and (path.exists() or source.startswith(("/", ".", "~"))))
    key = _pipeline_key(str(path) if is_local else source, revision)
    with _PIPELINES_LOCK:
        if key in _PIPELINES:
            _PIPELINES.move_to_end(key)
            return _PIPELINES[key]
    # Loading runs outside the lock, so a slow download does not hold up other sessions.
    if is_local and path.is_file():
        pipe = _convert_checkpoint(path)
    else:
        with argument_names({"pretrained_model_name_or_path": "model"}):
            pipe = SefaPipeline.from_pretrained(
                str(path) if is_local else source,
                revision=revision,
                token=token or None,
                local_files_only=local_files_only,
                allow_local=is_local,
            )
    pipe.set_progress_bar_config(disable=True)
    if not token:
        with _PIPELINES_LOCK:
            pipe = _PIPELINES.setdefault(key, pipe)
            _PIPELINES.move_to_end(key)
            while len(_PIPELINES) > _PIPELINE_CACHE_SIZE:
                _PIPELINES.popitem(last=False)
    return pipe


def _convert_checkpoint(path: Path) -> GANPipeline:
    if path.suffix.lower() not in CHECKPOINT_SUFFIXES:
        raise ValueError(
            f"`model` {str(path)!r} is a file: give a pipeline folder, a Hub id, or a checkpoint with one of "
            f"the suffixes {CHECKPOINT_SUFFIXES}."
        )
    try:
        from .convert import convert_checkpoint
    except ImportError as err:  # pragma: no cover - depends on the installed version
        raise ValueError("Converting checkpoints needs `sefa_plugin.convert`, which is not available.") from err
    pipe = SefaPipeline(generator=convert_checkpoint(path))
    pipe.source = {"path": str(path.resolve())}
    return pipe


def load_predictor() -> Any | None:
    """The embedded factor predictor, loaded once; None (and a log line) when it is unavailable."""
    with _PREDICTOR_LOCK:
        if "predictor" not in _PREDICTOR:
            try:
                from .embedded import DEFAULT_PREDICTOR
                from .evaluation.predictor import FactorPredictor

                # A missing folder would make diffusers look for a Hub repo of that name: check first.
                if not Path(DEFAULT_PREDICTOR).is_dir():
                    raise FileNotFoundError(f"no predictor folder at {DEFAULT_PREDICTOR}")
                _PREDICTOR["predictor"] = FactorPredictor.from_pretrained(DEFAULT_PREDICTOR).eval()
            except Exception as err:  # any failure just means "no suggestions"
                logger.info("No label suggestions: the factor predictor is unavailable (%s).", err)
                _PREDICTOR["predictor"] = None
        return _PREDICTOR["predictor"]
