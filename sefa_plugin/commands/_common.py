"""What several ``sefa`` commands share: the model arguments, loading, previews, flag defaults and names."""

from __future__ import annotations

import argparse
import inspect
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

LAYER_HELP = "layer spec: all, coarse, middle, fine, 0-3, 0-1,4"


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows ``(default: …)`` once: not when the help text already tells the default, nor for None/False."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or action.default in (None, False, argparse.SUPPRESS):
            return text
        return super()._get_help_string(action)


def default_of(function: Callable[..., Any], name: str) -> Any:
    """The default of parameter `name` of `function`, so that a flag's default is the library's.

    Example:

    >>> def f(num_samples: int = 10_000): ...
    >>> default_of(f, "num_samples")
    10000
    """
    value = inspect.signature(function).parameters[name].default
    if value is inspect.Parameter.empty:
        raise TypeError(f"{function.__qualname__}() has no default for {name!r}")
    return value


def add_model_args(p: argparse.ArgumentParser) -> None:
    """MODEL (positional, default: the embedded model) and the Hub options that go with it."""
    p.add_argument(
        "model",
        nargs="?",
        default=None,
        help="pipeline folder or Hub repo id (default: the embedded 64x64 StyleGAN2 scene model)",
    )
    add_hub_args(p, what="MODEL")


def add_hub_args(p: argparse.ArgumentParser, what: str = "MODEL") -> None:
    p.add_argument("--revision", default=None, help=f"Hub revision of {what} (branch, tag or commit)")
    p.add_argument("--token", default=None, help="Hub token (by default the logged-in token)")
    p.add_argument("--cache-dir", default=None, help="Hub cache folder")
    p.add_argument("--local-files-only", action="store_true", help="use the local Hub cache only")


def load_pipeline(args: argparse.Namespace, pipeline_cls=None):
    """Load `args.model` (default: the embedded model) as `pipeline_cls` (default: SefaPipeline)."""
    from ..embedded import DEFAULT_MODEL
    from ..pipelines import SefaPipeline

    return (pipeline_cls or SefaPipeline).from_pretrained(
        args.model or DEFAULT_MODEL,
        revision=args.revision,
        token=args.token,
        cache_dir=args.cache_dir,
        local_files_only=args.local_files_only or None,
    )


def add_preview_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preview-seed", type=int, default=0, help="seed of the preview grid")
    p.add_argument(
        "--truncation-psi",
        type=float,
        default=None,
        help="truncation of the preview grid (default: the model's, 0.7 for W+ models and 1 for z models)",
    )
    p.add_argument("--no-preview", action="store_true", help="do not render preview.png")


def save_with_preview(pipe, directions, args: argparse.Namespace) -> None:
    """Save `directions` to `args.out`, with a preview grid of the first five unless `--no-preview`."""
    preview = None
    if not args.no_preview:
        psi = pipe.default_truncation_psi if args.truncation_psi is None else args.truncation_psi
        indices = range(min(len(directions), 5))
        preview = pipe.direction_grid(directions, indices=indices, seed=args.preview_seed, truncation_psi=psi)
    directions.save_pretrained(args.out, preview=preview)


#: What ``--out`` of an image accepts (``save_image_atomic`` picks the format by extension).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".gif")


def check_output_folder(path: str | os.PathLike, flag: str) -> None:
    """Refuse, before any work, an output folder that is a file or cannot be created or written.

    Example:

    >>> check_output_folder("/proc/sefa-out", "--out")  # doctest: +SKIP
    Traceback (most recent call last):
    PermissionError: `--out` '/proc/sefa-out' cannot be written: ...
    """
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise NotADirectoryError(f"`{flag}` {str(target)!r} exists and is not a folder.")
    _probe_writable(target, flag, str(target))


def check_output_file(path: str | os.PathLike, flag: str, extensions: Sequence[str] = IMAGE_EXTENSIONS) -> None:
    """Refuse, before any work, an output file with an unsupported extension or in a folder we cannot write.

    Example:

    >>> check_output_file("walk.bmp", "--gif", (".gif",))
    Traceback (most recent call last):
    ValueError: `--gif` 'walk.bmp' has the unsupported extension '.bmp'; use one of: .gif.
    """
    target = Path(path)
    if target.suffix.lower() not in extensions:
        raise ValueError(
            f"`{flag}` {str(target)!r} has the unsupported extension {target.suffix!r}; use one of: "
            f"{', '.join(extensions)}."
        )
    if target.is_dir():
        raise IsADirectoryError(f"`{flag}` {str(target)!r} is a folder; give a file path.")
    _probe_writable(target.parent, flag, str(target))


def _probe_writable(folder: Path, flag: str, shown: str) -> None:
    """Create (and remove) a temporary file in `folder` or its nearest existing parent: a real write test."""
    existing = folder.absolute()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise NotADirectoryError(f"`{flag}` {shown!r} cannot be created: {str(existing)!r} is not a folder.")
    try:
        with tempfile.TemporaryFile(dir=existing, prefix=".sefa-check-"):
            pass
    except OSError as err:
        raise PermissionError(
            f"`{flag}` {shown!r} cannot be written: {str(existing)!r} is not writable ({err.strerror or err})."
        ) from err
