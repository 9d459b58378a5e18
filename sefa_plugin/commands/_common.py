"""What several ``sefa`` commands share: the model arguments, loading, previews, flag defaults and names."""

from __future__ import annotations

import argparse
import inspect
import os
from collections.abc import Callable, Sequence
from typing import Any

from ..utils.files import check_output_folder, check_output_path  # noqa: F401  (check_output_folder: for commands)

#: MODEL values that name the embedded model (besides leaving MODEL out).
EMBEDDED_NAMES = ("embedded", "default")
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
        help="pipeline folder or Hub repo id (default, or 'embedded': the embedded 64x64 StyleGAN2 scene model)",
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

    model = DEFAULT_MODEL if args.model in (None, "", *EMBEDDED_NAMES) else args.model
    return (pipeline_cls or SefaPipeline).from_pretrained(
        model,
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


def check_output_file(path: str | os.PathLike, flag: str, extensions: Sequence[str] = IMAGE_EXTENSIONS) -> None:
    """Refuse, before any work, an output file with an unsupported extension or in a folder that cannot be written.

    Example:

    >>> check_output_file("walk.bmp", "--gif", (".gif",))
    Traceback (most recent call last):
    ...
    ValueError: `--gif` 'walk.bmp' has an unsupported extension: it must end with one of ['.gif'].
    """
    check_output_path(path, flag, suffixes=extensions)
