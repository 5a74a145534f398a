"""``--help`` of every command: each option shows its default, an example ends it, and no long
option matches by prefix. Plus the defaults that protect a new user (``synth``'s size)."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from rrweb_dali.cli import COMMANDS, build_parser
from rrweb_dali.commands.synth import DEFAULT_SESSIONS, SCALE_SESSIONS


def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


PARSER = build_parser()
SUB = subparsers(PARSER)


def test_every_command_is_registered():
    assert sorted(SUB) == sorted(COMMANDS)


@pytest.mark.parametrize("name", COMMANDS)
def test_every_option_shows_its_default_and_an_example_ends_the_help(name):
    parser = SUB[name]
    text = parser.format_help()
    assert "\nexample" in text and f"rrweb-dali {name}" in text.split("\nexample", 1)[1]
    for action in parser._actions:
        if not action.option_strings or action.nargs == 0 or action.required:
            continue  # positionals, flags (off unless given), required options
        help_text = parser._get_formatter()._expand_help(action)
        assert "default" in help_text, f"{name} {action.option_strings[0]}: {help_text!r}"
        assert "the library's" not in help_text  # the value, not a reference to it


@pytest.mark.parametrize("parser", [PARSER, *SUB.values()], ids=["rrweb-dali", *SUB])
def test_no_prefix_matching(parser):
    assert parser.allow_abbrev is False


def test_a_prefix_of_a_long_option_is_refused():
    with pytest.raises(SystemExit) as exc:
        PARSER.parse_args(["preprocess", "src", "--out", "x", "--max-token", "100"])
    assert exc.value.code == 2


def test_synth_writes_a_small_corpus_unless_asked_for_the_scale_one():
    assert DEFAULT_SESSIONS == 200
    args = PARSER.parse_args(["synth", "--out", "x"])
    assert args.sessions == DEFAULT_SESSIONS and not args.scale
    assert PARSER.parse_args(["synth", "--out", "x", "--scale"]).scale
    assert SCALE_SESSIONS > 30_000


def test_help_runs_as_a_command():
    result = subprocess.run(
        [sys.executable, "-m", "rrweb_dali", "profile", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0
    assert "--batch-size BATCH_SIZE" in result.stdout and "(default: 32)" in result.stdout
