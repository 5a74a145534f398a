"""``rrweb-dali warm SRC... --cache-dir DIR``: tokenize rrweb files into the token cache ahead of
training, so that even the first epoch of a raw-mode loader (``make_loader(raw=...)``) reads
cached tokens instead of parsing JSON."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from rrweb_dali.commands._args import (
    UsageError,
    add_command,
    add_no_progress,
    non_negative_int,
    positive_int,
)
from rrweb_dali.commands._table import format_kv, format_table
from rrweb_dali.ingest import ReadLimits
from rrweb_dali.tokenizer import Tokenizer

if TYPE_CHECKING:
    from rrweb_dali.external_source.raw import WarmResult


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "warm",
        help="fill the token cache of raw-mode training ahead of time",
        description=(
            "Read and tokenize every rrweb file under SRC (directories are walked, globs "
            "expanded; hidden files are skipped) into the token cache in --cache-dir, on every "
            "core. Files already cached (same path, size and mtime, or same content) are not read "
            "again, so running it twice is cheap and an interrupted run continues. Bad files are "
            "cached as bad with their reason and listed in the summary.\n\n"
            "Use the same --max-text-bytes and read limits as the training loader: they select "
            "the cache namespace, like the tokenizer version does."
        ),
        examples=[
            "rrweb-dali warm sessions/ --cache-dir token-cache/",
            "rrweb-dali warm 'exports/**/*.json.gz' --cache-dir token-cache/ --cache-bytes "
            "20000000000",
        ],
    )
    p.add_argument("sources", nargs="+", metavar="SRC", help="input directory, file or glob")
    p.add_argument("--cache-dir", required=True, metavar="DIR", help="token cache directory")
    p.add_argument(
        "--cache-bytes",
        metavar="N",
        type=positive_int,
        default=None,
        help="size limit of the cache; the oldest segments are evicted past it (default: none)",
    )
    p.add_argument(
        "--workers",
        metavar="N",
        type=positive_int,
        default=None,
        help="worker processes (default: every usable CPU)",
    )
    limits = ReadLimits()
    same = "as make_loader's / preprocess's"
    p.add_argument(
        "--max-text-bytes",
        metavar="N",
        type=non_negative_int,
        default=None,
        help=f"tokenizer option, {same} (default: {Tokenizer().max_text_bytes})",
    )
    for name in ("bytes", "depth", "events"):
        p.add_argument(
            f"--max-{name}",
            metavar="N",
            type=positive_int,
            default=None,
            help=f"read limit, {same} (default: {getattr(limits, 'max_' + name):,})",
        )
    add_no_progress(p)
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from rrweb_dali.external_source.raw import CacheOptions, RawFiles, warm

    given = {
        "max_bytes": args.max_bytes,
        "max_depth": args.max_depth,
        "max_events": args.max_events,
    }
    try:
        limits = ReadLimits(**{k: v for k, v in given.items() if v is not None})
        options = CacheOptions(
            cache_dir=args.cache_dir,
            disk_bytes=args.cache_bytes,
            max_text_bytes=args.max_text_bytes,
            limits=limits,
        )
        files = RawFiles.discover(args.sources)
    except FileNotFoundError as exc:
        raise UsageError(str(exc)) from None
    result = warm(
        files,
        options,
        workers=args.workers,
        progress=not args.no_progress and sys.stderr.isatty(),
    )
    print(format_summary(result, args.cache_dir))
    return 0


def format_summary(result: WarmResult, cache_dir: str) -> str:
    """The table ``rrweb-dali warm`` prints: what was cached before, tokenized now, and bad."""
    c = result.counts
    secs = max(result.seconds, 1e-9)
    parts = [
        format_kv(
            [
                ("cache", f"{cache_dir} (namespace {result.namespace})"),
                (
                    "files",
                    f"{result.files:,} in {secs:,.1f} s ({result.files / secs:,.1f} files/s)",
                ),
                (
                    "read",
                    f"{c['bytes_read'] / 1e6:,.1f} MB ({c['bytes_read'] / 1e6 / secs:,.1f} MB/s)",
                ),
                (
                    "cache size",
                    f"{result.disk_bytes / 1e6:,.1f} MB, {result.disk_entries:,} entries",
                ),
            ]
        ),
        "",
    ]
    rows = [
        ("already cached", result.hits),
        ("  found by content", c["content_hits"]),
        ("tokenized now", c["tokenized"]),
        ("  changed since cached", c["invalidations"]),
        ("bad files", len(result.bad)),
        (f"tokens (at most {result.max_tokens:,} a file)", c["tokens"]),
        ("segments evicted", c["disk_evictions"]),
    ]
    rows += [(f"bad: {reason}", n) for reason, n in result.bad_by_reason.items()]
    parts.append(format_table(["warm", "count"], rows))
    if result.bad:
        shown = result.bad[:10]
        parts.append("")
        parts += [f"bad  {path}: {reason} ({detail[:100]})" for path, reason, detail in shown]
        if len(result.bad) > len(shown):
            parts.append(f"... and {len(result.bad) - len(shown)} more")
    return "\n".join(parts)
