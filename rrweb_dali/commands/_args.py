"""argparse helpers shared by the subcommands."""

from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    """argparse type: an integer of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def add_no_progress(parser: argparse._ActionsContainer) -> None:
    """The ``--no-progress`` flag of the commands that show a tqdm bar on stderr (``parser`` may
    be an argument group)."""
    parser.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bar (shown on stderr only when it is a terminal)",
    )
