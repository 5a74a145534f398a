"""argparse helpers shared by the subcommands: one way to declare a command, typed values that
fail as usage errors (exit 2) rather than tracebacks, and help that always shows defaults."""

from __future__ import annotations

import argparse
import json
import textwrap


class UsageError(Exception):
    """A mistake on the command line the parser cannot see (a path that is not a dataset, a
    device this machine lacks): the CLI prints its message as one ``error:`` line, exit 2."""


class HelpFormatter(argparse.HelpFormatter):
    """Wraps descriptions by paragraph (blank lines kept; indented lines, like the examples, kept
    as written) and appends ``(default: X)`` to every option whose help does not already say its
    default. Options whose default is ``None`` (decided at run time) say in their help what that
    means; ``tests/commands`` checks every option of every command."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        paragraphs = []
        for block in text.split("\n\n"):
            lines = block.splitlines()
            if lines and lines[-1].startswith(" "):  # a block of indented lines: as written
                head = [ln for ln in lines if not ln.startswith(" ")]
                body = [indent + ln for ln in lines if ln.startswith(" ")]
                filled = (
                    [textwrap.fill(" ".join(head), width, initial_indent=indent)] if head else []
                )
                paragraphs.append("\n".join(filled + body))
            else:
                paragraphs.append(
                    textwrap.fill(
                        " ".join(block.split()),
                        width,
                        initial_indent=indent,
                        subsequent_indent=indent,
                    )
                )
        return "\n\n".join(paragraphs)

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (
            "default" in text
            or not action.option_strings
            or action.nargs == 0  # flags: off unless given
            or action.default in (None, argparse.SUPPRESS)
        ):
            return text
        return f"{text} (default: %(default)s)"


def add_command(
    sub: argparse._SubParsersAction,
    name: str,
    *,
    help: str,
    description: str,
    examples: list[str],
) -> argparse.ArgumentParser:
    """A subcommand's parser: no prefix matching of long options (``--max-token`` must not be taken
    for ``--max-tokens``), defaults in ``--help`` and example invocations at its end."""
    shown = "\n".join(f"  {line}" for line in examples)
    return sub.add_parser(
        name,
        help=help,
        description=description,
        epilog=f"example{'s' if len(examples) > 1 else ''}:\n{shown}",
        formatter_class=HelpFormatter,
        allow_abbrev=False,
    )


def positive_int(text: str) -> int:
    """argparse type: an integer of at least 1."""
    value = _parse(int, text, "an integer")
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def non_negative_int(text: str) -> int:
    """argparse type: an integer of at least 0."""
    value = _parse(int, text, "an integer")
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite number above 0."""
    value = _parse(float, text, "a number")
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number above 0, got {text}")
    return value


def non_negative_float(text: str) -> float:
    """argparse type: a finite number of at least 0."""
    value = _parse(float, text, "a number")
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number of at least 0, got {text}")
    return value


def _parse(kind: type, text: str, what: str) -> int | float:
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None


def add_no_progress(parser: argparse._ActionsContainer) -> None:
    """The ``--no-progress`` flag of the commands that show a tqdm bar on stderr (``parser`` may
    be an argument group)."""
    parser.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bar (shown on stderr only when it is a terminal)",
    )


def storage_option(text: str) -> tuple[str, object]:
    """argparse type of ``--storage-option KEY=VALUE`` (repeatable): ``(KEY, VALUE)``, the value
    parsed as JSON when it is JSON (``anon=true``, ``client_kwargs={"region_name": "x"}``, a
    number) and kept as the string otherwise (``endpoint_url=http://...``), as fsspec's
    ``storage_options`` take them."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"must be KEY=VALUE, got {text!r}")
    try:
        value: object = json.loads(raw)
    except ValueError:
        value = raw
    return key, value


def storage_options(pairs: list[tuple[str, object]] | None) -> dict[str, object] | None:
    """The ``--storage-option`` pairs as one dict (None when none were given); a key given twice
    is a usage error, not a silent last-one-wins."""
    if pairs is None:
        return None
    found: dict[str, object] = {}
    for key, value in pairs:
        if key in found:
            raise UsageError(f"--storage-option {key} given twice")
        found[key] = value
    return found


def flags_given(*flags: tuple[str, object]) -> list[str]:
    """The names of the ``(flag, value)`` pairs whose value is not None: what a refusal of
    options that do not apply names."""
    return [flag for flag, value in flags if value is not None]
