"""``rrweb-dali inspect PATH``: what the reader saw in one file and the tokens it becomes, or the
summary of a preprocessed dataset directory (its manifest: shards, totals, options; then, from
:func:`~rrweb_dali.open_dataset`, sessions, length percentiles, file kinds, a length histogram
and a few decoded rows)."""

from __future__ import annotations

import argparse
import collections
import sys
from pathlib import Path

from rrweb_dali.commands._args import UsageError, add_command, non_negative_int, positive_int
from rrweb_dali.commands._table import format_kv, format_table
from rrweb_dali.dataset import Dataset, open_dataset
from rrweb_dali.errors import SessionError
from rrweb_dali.ingest import ReadLimits, load_session
from rrweb_dali.shards.manifest import read_manifest
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
    p = add_command(
        sub,
        "inspect",
        help="summarise one session file (and its tokens) or a preprocessed dataset",
        description=(
            "FILE: read one rrweb file (any supported format), print what the reader found "
            "(format, compression, events by type, missing timestamps, flags, duplicates "
            "dropped, salvage) and the decoded "
            "tokens. DATASET_DIR (written by `rrweb-dali preprocess`): print its manifest's "
            "summary: shards, sessions, tokens, files rejected by reason, tokenizer and options; "
            "then sessions, tokens per sequence (percentiles), sessions by file kind, a length "
            "histogram and the first --rows sequences decoded."
        ),
        examples=[
            "rrweb-dali inspect session.json.gz --max-lines 20",
            "rrweb-dali inspect data/",
            "rrweb-dali inspect data/ --rows 5 --row-lines 4 --bins 20",
        ],
    )
    p.add_argument("path", metavar="PATH", help="an rrweb session file, or a dataset directory")
    p.add_argument(
        "--max-lines",
        type=non_negative_int,
        default=60,
        help="decoded token lines to print for a FILE (0: all)",
    )
    p.add_argument(
        "--max-line-chars",
        type=non_negative_int,
        default=160,
        help="characters per decoded line, the rest counted as '... [+N tokens]' (0: no bound)",
    )
    p.add_argument(
        "--rows", type=non_negative_int, default=3, help="sequences of a DATASET_DIR to decode"
    )
    p.add_argument(
        "--row-lines",
        type=non_negative_int,
        default=12,
        help="decoded lines to print per sequence of a DATASET_DIR (0: all)",
    )
    p.add_argument(
        "--bins", type=positive_int, default=10, help="bins of a DATASET_DIR's length histogram"
    )
    p.add_argument(
        "--max-text-bytes",
        type=non_negative_int,
        default=None,
        help=f"tokenizer cap on UTF-8 bytes per text field (default: {Tokenizer().max_text_bytes})",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if Path(args.path).is_dir():
        return inspect_dataset(args.path, args)
    if not Path(args.path).exists():
        raise UsageError(f"{args.path} does not exist")
    # A file the reader rejects is a finding, not a usage error: its reason, exit 1.
    try:
        session = load_session(args.path, ReadLimits())
    except SessionError as exc:
        print(f"error: {exc.reason}: {exc.detail}", file=sys.stderr)
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
    ts = [e["timestamp"] for e in session.events if type(e.get("timestamp")) in (int, float)]
    print(
        format_kv(
            [
                ("file", args.path),
                ("format", r.format),
                ("compression", r.compression or "none"),
                ("bytes on disk", r.bytes_in),
                ("bytes decoded", r.bytes_decoded),
                ("events", r.events),
                ("by type", types),
                ("duration ms", (max(ts) - min(ts)) if ts else 0),
                ("missing timestamps", r.missing_timestamps),
                ("flags", ", ".join(r.flags) or "none"),
                ("duplicates dropped", r.duplicates_dropped),
                ("reordered", r.reordered),
                ("salvaged", r.salvage_detail if r.salvaged else False),
                ("skipped parts", dict(r.skipped) or "none"),
                ("tokens", len(ids)),
                *((f"{kind} parts", n) for kind, n in tok.fault_counts(ids).items()),
                ("bytes per token", round(r.bytes_decoded / max(len(ids), 1), 2)),
                ("tokenizer", f"version {tok.version}, vocab {tok.vocab_size}"),
            ]
        )
    )
    print()
    lines = tok.decode(ids, max_line_chars=args.max_line_chars or None).splitlines()
    shown = lines if args.max_lines <= 0 else lines[: args.max_lines]
    print("\n".join(shown))
    if len(shown) < len(lines):
        print(f"... {len(lines) - len(shown)} more lines (--max-lines 0 prints all)")
    return 0


def inspect_dataset(root: str, args: argparse.Namespace | None = None) -> int:
    """The manifest's summary of a dataset directory, then the dataset's (from the shards'
    indexes) and ``args.rows`` decoded rows."""
    if not (Path(root) / "manifest.json").is_file():
        raise UsageError(
            f"{root} is a directory but not a preprocessed dataset (no manifest.json); "
            "give a session file or a directory written by `rrweb-dali preprocess`"
        )
    manifest = read_manifest(root)
    t = manifest.totals
    tokens = sum(s.tokens for s in manifest.shards)
    sequences = sum(s.sessions for s in manifest.shards)
    tok = manifest.tokenizer
    print(
        format_kv(
            [
                ("dataset", root),
                (
                    "format",
                    f"{manifest.dtype} token shards, format version {manifest.format_version}",
                ),
                (
                    "shards",
                    f"{len(manifest.shards)} ({sum(s.bin_bytes + s.idx_bytes for s in manifest.shards) / 1e6:,.1f} MB)",
                ),
                ("sequences", sequences),
                ("tokens", tokens),
                ("mean tokens per sequence", round(tokens / max(sequences, 1), 1)),
                ("files read", t.get("files_read", "n/a")),
                ("sessions kept", t.get("sessions", "n/a")),
                ("files rejected", t.get("files_rejected", "n/a")),
                ("files kept with notes", t.get("files_noted", "n/a")),
                ("parts skipped by the reader", t.get("parts_skipped", "n/a")),
                ("events without a timestamp", t.get("missing_timestamps", "n/a")),
                ("malformed / unknown parts", _pair(t, "malformed_parts", "unknown_parts")),
                ("workers crashed", t.get("workers_crashed", "n/a")),
                (
                    "tokenizer",
                    f"{tok.get('tokenizer')} version {tok.get('version')}, "
                    f"vocab {tok.get('vocab_size')}, options {tok.get('options')}",
                ),
                ("options", ", ".join(f"{k}={v}" for k, v in sorted(manifest.options.items()))),
            ]
        )
    )
    rejected = t.get("rejected_by_reason") or {}
    if rejected:
        print()
        print(format_table(["rejected by reason", "files"], sorted(rejected.items())))
    flags = t.get("flags") or {}
    if flags:
        print()
        print(format_table(["sessions flagged", "files"], sorted(flags.items())))
    if args is not None:
        show_dataset(open_dataset(root), args)
    return 0


def show_dataset(ds: Dataset, args: argparse.Namespace) -> None:
    """Sessions, percentiles, file kinds, the length histogram and the first rows decoded.

    Every printed line holds at least two words (decoded lines start with ``|``), so the output
    still parses as ``label  value`` lines."""
    s = ds.summary()
    lengths = ", ".join(f"{k} {v:,}" for k, v in s.lengths.items()) or "none"
    kinds = ", ".join(f"{k} {v:,}" for k, v in s.formats.items()) or "none"
    print()
    print(
        format_kv(
            [
                ("sessions", f"{s.sessions:,} ({s.split_sessions:,} split into windows)"),
                ("tokens per sequence", f"{lengths}; mean {s.mean_length:,.1f}"),
                ("sessions by file kind", f"{kinds} ({s.formats_note})"),
            ]
        )
    )
    if not len(ds):
        return
    print()
    print(f"tokens per sequence: sequences ({args.bins} bins)")
    print(ds.length_histogram(args.bins).render())
    rows = min(args.rows, len(ds))
    if not rows:
        return
    try:
        tok = ds.tokenizer
    except ValueError as exc:
        print()
        print(f"rows not decoded: {exc}")
        return
    max_chars = args.max_line_chars or None
    for k in range(rows):
        record = ds[k]
        print()
        print(
            f"sequence {record.index}: {record.source} window {record.window}, "
            f"session {record.session}, {len(record):,} tokens"
        )
        lines = tok.decode(record.tokens, max_line_chars=max_chars).splitlines() or ["(empty)"]
        shown = lines if args.row_lines <= 0 else lines[: args.row_lines]
        print("\n".join(f"  | {line}" for line in shown))
        if len(shown) < len(lines):
            print(f"  | ... {len(lines) - len(shown)} more lines (--row-lines 0 prints all)")


def _pair(totals: dict, a: str, b: str) -> str:
    """Two totals as ``a / b`` (``n/a`` for a manifest written before they were counted)."""
    if a not in totals or b not in totals:
        return "n/a"
    return f"{totals[a]:,} / {totals[b]:,}"
