"""The ``sefa`` command: one module per sub-command, each registering its flags beside its handler.

Each module has ``NAME``, ``HELP``, ``FLAGS`` (the library's argument names → the command's flags, so that
errors name what the user typed), ``register(parser)`` and ``run(args) -> int``. :func:`main` parses, runs
and turns every error into one line on stderr (``-v`` adds the traceback).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import pickle
import sys
import traceback
from collections.abc import Iterator, Sequence
from types import ModuleType

from ..utils.allocator import set_cpu_buffer_reuse
from ..utils.errors import argument_names
from . import (
    app,
    boundary,
    convert,
    demo,
    edit,
    evaluate,
    factorize,
    ganspace,
    import_directions,
    invert,
    learn,
    push,
    space,
    train,
)
from ._common import HelpFormatter

logger = logging.getLogger("sefa_plugin.cli")

#: The sub-commands, in the order ``sefa --help`` lists them.
COMMANDS: tuple[ModuleType, ...] = (
    demo,
    factorize,
    ganspace,
    boundary,
    import_directions,
    edit,
    invert,
    app,
    space,
    learn,
    evaluate,
    convert,
    push,
    train,
)
#: The loggers whose INFO lines a command prints; other libraries' (one per HTTP request) need `-v`.
COMMAND_LOGGERS = ("sefa_plugin",)
#: Errors of the user's input or environment: exit status 2 and the message alone.
USER_ERRORS = (ValueError, OSError, IndexError, KeyError, pickle.UnpicklingError)


def build_parser() -> argparse.ArgumentParser:
    """The ``sefa`` argument parser with every sub-command."""
    from ..version import __version__

    parser = argparse.ArgumentParser(
        prog="sefa",
        description="Find, edit and share the semantic directions of pretrained GANs.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging and tracebacks")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        p = sub.add_parser(module.NAME, help=module.HELP, formatter_class=HelpFormatter)
        module.register(p)
        p.set_defaults(module=module)
    return parser


@contextlib.contextmanager
def command_logging(verbose: bool) -> Iterator[None]:
    """Unless `verbose`: INFO lines of this package only (the root logger is at WARNING, so httpx's
    ``HTTP Request`` lines stay quiet), and diffusers' instant "Loading pipeline components..." bar is off
    (the command's own bars are named). Undone on exit (tests call :func:`main` in-process)."""
    if verbose:
        yield
        return
    from diffusers.utils import logging as diffusers_logging

    levels = {name: logging.getLogger(name).level for name in COMMAND_LOGGERS}
    bars = diffusers_logging.is_progress_bar_enabled()
    for name in COMMAND_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO)
    diffusers_logging.disable_progress_bar()
    try:
        yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
        if bars:
            diffusers_logging.enable_progress_bar()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sefa`` console script: 0 on success, 2 for bad input, 1 for anything else."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    module = args.module
    set_cpu_buffer_reuse(True)  # this process renders; large CPU buffers are not faulted in again per layer
    try:
        with argument_names(module.FLAGS), command_logging(args.verbose):
            return int(module.run(args))
    except KeyboardInterrupt:
        print(f"sefa {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # one readable line; the traceback only with -v
        if args.verbose:
            traceback.print_exc()
        known = isinstance(err, USER_ERRORS)
        text = " ".join(str(err).split()) or type(err).__name__
        if not known:
            text = f"unexpected {type(err).__name__}: {text} (run with -v for the traceback)"
        print(f"sefa {args.command}: error: {text}", file=sys.stderr)
        return 2 if known else 1
