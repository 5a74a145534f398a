"""The ``rrweb-dali`` command line: one subcommand per module of :mod:`rrweb_dali.commands`.

Each command module exposes ``register(subparsers)``, which adds its parser and sets ``func`` to a
function ``(args) -> int``. The CLI is the only place that prints; the library logs.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from rrweb_dali import __version__

# Order here is the order in --help.
COMMANDS = ("demo", "inspect", "synth", "preprocess", "warm", "verify", "profile", "dashboard")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rrweb-dali",
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
