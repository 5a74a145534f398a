"""``rrweb-dali synth --out DIR -n N``: write a reproducible synthetic rrweb corpus."""

from __future__ import annotations

import argparse
import dataclasses
import sys

from rrweb_dali.commands._args import add_command, add_no_progress, positive_int
from rrweb_dali.commands._table import format_kv

# A quick corpus by default (about 50 MB); --scale asks for the benchmark corpus (about 8.4 GB).
DEFAULT_SESSIONS = 200
SCALE_SESSIONS = 31951


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "synth",
        help="write a synthetic rrweb corpus (for benchmarks and tests)",
        description=(
            "Generate N synthetic rrweb sessions shaped like the real recordings, in every file "
            "format the reader supports (json, json.gz, jsonl, packed), under DIR/NNN/. The same "
            "N and --seed give the same bytes on every machine, whatever --workers. Without -n "
            f"it writes {DEFAULT_SESSIONS} sessions; --scale writes the benchmark corpus of "
            f"{SCALE_SESSIONS:,} sessions (about 8.4 GB)."
        ),
        examples=[
            "rrweb-dali synth --out corpus/",
            "rrweb-dali synth --out corpus/ -n 5000 --seed 1",
            "rrweb-dali synth --out bench-corpus/ --scale",
        ],
    )
    p.add_argument("--out", required=True, metavar="DIR", help="directory to write the corpus into")
    size = p.add_mutually_exclusive_group()
    size.add_argument(
        "-n",
        "--sessions",
        metavar="N",
        type=positive_int,
        default=DEFAULT_SESSIONS,
        help="number of sessions",
    )
    size.add_argument(
        "--scale",
        action="store_true",
        help=f"the benchmark corpus: {SCALE_SESSIONS:,} sessions, about 8.4 GB",
    )
    p.add_argument("--seed", type=int, default=0, metavar="S", help="random seed")
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
        SCALE_SESSIONS if args.scale else args.sessions,
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
