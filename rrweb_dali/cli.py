"""The ``rrweb-dali`` command line: one subcommand per module of :mod:`rrweb_dali.commands`.

Each command module exposes ``register(subparsers)``, which adds its parser and sets ``func`` to a
function ``(args) -> int``. The CLI is the only place that prints; the library logs.

Exit status: 0 done; 1 the command ran and found a problem (``verify``: a bad shard) or an
unexpected internal error; 2 a usage error: a bad option (argparse), a bad input path, a missing
optional dependency, an output that cannot be written. Either error is one ``error: ...`` line on
stderr; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from rrweb_dali import __version__
from rrweb_dali.commands._args import UsageError
from rrweb_dali.extras import install_hint

# Order here is the order in --help.
COMMANDS = (
    "demo",
    "inspect",
    "synth",
    "preprocess",
    "warm",
    "verify",
    "profile",
    "dashboard",
    "report",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rrweb-dali",
        allow_abbrev=False,
        epilog="Run `rrweb-dali COMMAND --help` for a command's options and an example.",
        description=(
            "Train sequence models on rrweb session recordings: read and tokenize sessions, "
            "preprocess them into memory-mapped token shards, and stream batches to the GPU "
            "through NVIDIA DALI."
        ),
    )
    parser.add_argument("--version", action="version", version=f"rrweb-dali {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="log more (-v info, -vv debug)"
    )
    parser.add_argument("--debug", action="store_true", help="on an error, show the full traceback")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"rrweb_dali.commands.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = {0: logging.WARNING, 1: logging.INFO}.get(args.verbose, logging.DEBUG)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return 0
    except Exception as exc:
        if args.debug:
            raise
        status, message = explain(exc)
        print(f"error: {message}", file=sys.stderr)
        return status


# What a user can cause and fix: bad values and paths (every library error is a ValueError),
# files that cannot be read or written, a missing optional dependency.
USER_ERRORS = (UsageError, ValueError, OSError, ImportError)


def explain(exc: BaseException) -> tuple[int, str]:
    """The exit status and the one-line message for an exception that ended a command."""
    if isinstance(exc, ModuleNotFoundError) and exc.name and install_hint(exc.name):
        text = f"{exc.name} is not installed: {install_hint(exc.name)}"
    elif isinstance(exc, OSError) and exc.strerror and exc.filename is not None:
        text = f"{exc.filename}: {exc.strerror}"
    else:
        text = str(exc) or type(exc).__name__
    text = " ".join(line.strip() for line in text.splitlines() if line.strip())
    if isinstance(exc, USER_ERRORS):
        return 2, text
    return 1, (
        f"unexpected {type(exc).__name__}: {text} (run `rrweb-dali --debug ...` for the traceback)"
    )
