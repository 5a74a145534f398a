"""``rrweb-dali inspect FILE``: what the reader saw in one file and the tokens it becomes."""

from __future__ import annotations

import argparse
import collections

from rrweb_dali.commands._table import format_kv
from rrweb_dali.errors import SessionError
from rrweb_dali.ingest import ReadLimits, load_session
from rrweb_dali.tokenizer import Tokenizer

EVENT_NAMES = {
    0: "DomContentLoaded",
    1: "Load",
    2: "FullSnapshot",
    3: "Incremental",
    4: "Meta",
    5: "Custom",
    6: "Plugin",
    7: "Asset",
    8: "Annotation",
}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "inspect",
        help="summarise one session file and print its decoded tokens",
        description=(
            "Read one rrweb file (any supported format), print what the reader found (format, "
            "compression, events by type, duplicates dropped, salvage) and the decoded tokens."
        ),
    )
    p.add_argument("file", help="an rrweb session file (JSON, JSON Lines, gzip/zlib, packed, ...)")
    p.add_argument(
        "--max-lines",
        type=int,
        default=60,
        help="decoded token lines to print (0: all; default 60)",
    )
    p.add_argument(
        "--max-text-bytes",
        type=int,
        default=None,
        help="tokenizer cap on UTF-8 bytes per text field (default: the tokenizer's)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        session = load_session(args.file, ReadLimits())
    except SessionError as exc:
        print(f"error: {exc.reason}: {exc.detail}")
        return 1
    tok = (
        Tokenizer()
        if args.max_text_bytes is None
        else Tokenizer(max_text_bytes=args.max_text_bytes)
    )
    ids = tok.encode(session.events)
    r = session.report
    by_type = collections.Counter(e.get("type") for e in session.events)
    types = ", ".join(f"{EVENT_NAMES.get(t, t)} {n}" for t, n in sorted(by_type.items(), key=str))
    ts = [e["timestamp"] for e in session.events]
    print(
        format_kv(
            [
                ("file", args.file),
                ("format", r.format),
                ("compression", r.compression or "none"),
                ("bytes on disk", r.bytes_in),
                ("bytes decoded", r.bytes_decoded),
                ("events", r.events),
                ("by type", types),
                ("duration ms", (max(ts) - min(ts)) if ts else 0),
                ("duplicates dropped", r.duplicates_dropped),
                ("reordered", r.reordered),
                ("salvaged", r.salvage_detail if r.salvaged else False),
                ("skipped parts", dict(r.skipped) or "none"),
                ("tokens", len(ids)),
                ("bytes per token", round(r.bytes_decoded / max(len(ids), 1), 2)),
                ("tokenizer", f"version {tok.version}, vocab {tok.vocab_size}"),
            ]
        )
    )
    print()
    lines = tok.decode(ids).splitlines()
    shown = lines if args.max_lines <= 0 else lines[: args.max_lines]
    print("\n".join(shown))
    if len(shown) < len(lines):
        print(f"... {len(lines) - len(shown)} more lines (--max-lines 0 prints all)")
    return 0
