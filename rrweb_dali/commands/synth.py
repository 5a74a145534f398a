"""``rrweb-dali synth --out DIR -n N``: write a reproducible synthetic rrweb corpus."""

from __future__ import annotations

import argparse
import dataclasses
import sys

from rrweb_dali.commands._args import add_no_progress, positive_int
from rrweb_dali.commands._table import format_kv

DEFAULT_SESSIONS = 31951


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "synth",
        help="write a synthetic rrweb corpus (for benchmarks and tests)",
        description=(
            "Generate N synthetic rrweb sessions shaped like the real recordings, in every file "
            "format the reader supports (json, json.gz, jsonl, packed), under DIR/NNN/. The same "
            "N and --seed give the same bytes on every machine, whatever --workers."
        ),
    )
    p.add_argument("--out", required=True, metavar="DIR", help="directory to write the corpus into")
    p.add_argument(
        "-n",
        "--sessions",
        metavar="N",
        type=positive_int,
        default=DEFAULT_SESSIONS,
        help=f"number of sessions (default {DEFAULT_SESSIONS:,})",
    )
    p.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default 0)")
    p.add_argument(
        "--workers",
        metavar="N",
        type=positive_int,
        default=None,
        help="parallel workers (default: every usable CPU)",
    )
    add_no_progress(p)
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from rrweb_dali.synth import write_synth_corpus

    summary = write_synth_corpus(
        args.out,
        args.sessions,
        seed=args.seed,
        workers=args.workers,
        progress=not args.no_progress and sys.stderr.isatty(),
    )
    if dataclasses.is_dataclass(summary):
        pairs = [(f.name, getattr(summary, f.name)) for f in dataclasses.fields(summary)]
    else:
        pairs = [("summary", summary)]
    print(format_kv([("corpus", args.out), *pairs]))
    return 0
