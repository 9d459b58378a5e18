"""The ``sefa`` command: one module per sub-command, each registering its flags beside its handler.

Each module has ``NAME``, ``HELP``, ``FLAGS`` (the library's argument names → the command's flags, so that
errors name what the user typed), ``register(parser)`` and ``run(args) -> int``. :func:`main` parses, runs
and turns every error into one line on stderr (``-v`` adds the traceback).
"""

from __future__ import annotations

import argparse
import logging
import pickle
import sys
import traceback
from collections.abc import Sequence
from types import ModuleType

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
    app,
    space,
    learn,
    evaluate,
    convert,
    push,
    train,
)
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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sefa`` console script: 0 on success, 2 for bad input, 1 for anything else."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(message)s")
    module = args.module
    try:
        with argument_names(module.FLAGS):
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
