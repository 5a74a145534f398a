"""``rrweb-dali preprocess SRC... --out DIR``: rrweb files -> memory-mapped token shards.

``--out s3://bucket/prefix`` makes the dataset in a local staging directory and uploads it
(:mod:`rrweb_dali.preprocess.publish`).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rrweb_dali.commands._args import (
    UsageError,
    add_command,
    add_no_progress,
    flags_given,
    positive_int,
    storage_option,
    storage_options,
)
from rrweb_dali.commands._table import format_kv, format_table
from rrweb_dali.ingest import ReadLimits
from rrweb_dali.parallel import available_cpus
from rrweb_dali.preprocess import PreprocessOptions, PreprocessResult, preprocess
from rrweb_dali.shards.manifest import ERRORS_NAME
from rrweb_dali.store.location import StoreError, is_remote
from rrweb_dali.store.options import RetryPolicy
from rrweb_dali.tokenizer.windows import POLICIES

_DEFAULTS = PreprocessOptions()
_LIMITS = ReadLimits()


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "preprocess",
        help="turn a tree of rrweb files into memory-mapped token shards",
        description=(
            "Read every rrweb file under SRC (directories are walked, globs expanded; hidden files "
            "are skipped), tokenize each session and write token shards, manifest.json and "
            "errors.jsonl into --out. Bad files never stop the run: each is listed in errors.jsonl "
            "with a reason.\n\n"
            "Safe to interrupt: run the same command again and it skips the finished groups and "
            "ends byte-identical to an uninterrupted run. Incremental: run it again after adding "
            "files and only the new files are read, into new shards. The output bytes never "
            "depend on --workers or --executor. --out must be new, empty or a dataset.\n\n"
            "--out s3://BUCKET/PREFIX writes the dataset to an S3-compatible object store: it is "
            "made in a local --staging directory and each shard is uploaded as soon as it is "
            "complete, errors.jsonl and manifest.json last, so readers never see a half-written "
            "dataset. The prefix must be empty (a finished dataset there is never changed in "
            "place: choose a new prefix). If the run fails, the staging directory is kept; the "
            "same command with --staging DIR resumes it. Endpoint and credentials come from the "
            "standard AWS variables (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, ...) or --storage-option."
        ),
        examples=[
            "rrweb-dali preprocess sessions/ --out data/",
            "rrweb-dali preprocess 'exports/**/*.json.gz' --out data/ --max-tokens 8192 "
            "--overflow split --workers 8",
            "rrweb-dali preprocess sessions/ --out s3://training/rrweb/v1 --staging /scratch/v1 "
            "--storage-option endpoint_url=http://minio:9000",
        ],
    )
    p.add_argument("sources", nargs="+", metavar="SRC", help="input directory, file or glob")
    p.add_argument(
        "--out",
        required=True,
        metavar="DIR|URL",
        help="dataset directory to create, resume or extend; or s3://BUCKET/PREFIX to upload to",
    )
    run = p.add_argument_group("how to run (does not change the output)")
    run.add_argument(
        "--workers",
        metavar="N",
        type=positive_int,
        default=None,
        help=f"parallel workers (default: every usable CPU, here {available_cpus()})",
    )
    run.add_argument(
        "--executor",
        choices=("local", "ray"),
        default="local",
        help="local process pool, or Ray tasks (pip install 'rrweb-dali[ray]') (default: local)",
    )
    run.add_argument(
        "--ray-address",
        metavar="ADDR",
        default=None,
        help="Ray cluster to join, e.g. ray://head:10001 (default: start a local Ray)",
    )
    run.add_argument(
        "--worker-memory",
        metavar="MB",
        type=positive_int,
        default=None,
        help=(
            "cap each worker process's address space at MB megabytes (at least 256; local "
            "executor): a file that needs more is rejected (too_large or worker_crashed in "
            "errors.jsonl) instead of the machine running out of memory; the output changes only "
            "for such files (default: no cap)"
        ),
    )
    add_no_progress(run)
    store = p.add_argument_group("object store (--out s3://...)")
    store.add_argument(
        "--staging",
        metavar="DIR",
        default=None,
        help=(
            "local directory the dataset is made in before upload, kept afterwards; give the "
            "one a failed run named to resume it (default: a new temporary directory, removed "
            "after success; kept and named on failure)"
        ),
    )
    store.add_argument(
        "--storage-option",
        metavar="KEY=VALUE",
        type=storage_option,
        action="append",
        default=None,
        dest="storage_options",
        help=(
            "an fsspec/s3fs option, repeatable: endpoint_url=http://host:9000, key=..., "
            'secret=..., client_kwargs=\'{"region_name": "eu-west-1"}\'; VALUE is read as JSON '
            "when it parses (quote a string that looks like a number: key='\"123\"') "
            "(default: none, the standard AWS variables apply)"
        ),
    )
    store.add_argument(
        "--store-attempts",
        metavar="N",
        type=positive_int,
        default=None,
        help=(
            "tries of each object-store request before the run stops, with growing waits "
            f"between them (default {RetryPolicy().attempts})"
        ),
    )
    out = p.add_argument_group("what to write (recorded in the manifest; fixed per --out)")
    out.add_argument(
        "--max-tokens",
        metavar="N",
        type=positive_int,
        default=_DEFAULTS.max_tokens,
        help=f"longest sequence written; longer sessions follow --overflow (default {_DEFAULTS.max_tokens})",
    )
    out.add_argument(
        "--overflow",
        choices=POLICIES,
        default=_DEFAULTS.overflow,
        help=(
            "split: consecutive windows of --max-tokens (only window 0 starts with BOS, only the "
            "last ends with EOS); truncate: keep the first window; skip: drop the session "
            f"(default {_DEFAULTS.overflow})"
        ),
    )
    out.add_argument(
        "--shard-tokens",
        metavar="N",
        type=positive_int,
        default=_DEFAULTS.shard_tokens,
        help=f"start a new shard after this many tokens (default {_DEFAULTS.shard_tokens:,})",
    )
    out.add_argument(
        "--group-files",
        metavar="N",
        type=positive_int,
        default=_DEFAULTS.group_files,
        help=f"files per task at most (default {_DEFAULTS.group_files})",
    )
    out.add_argument(
        "--group-bytes",
        metavar="N",
        type=positive_int,
        default=_DEFAULTS.group_bytes,
        help=f"bytes on disk per task at most (default {_DEFAULTS.group_bytes:,})",
    )
    out.add_argument(
        "--max-bytes",
        metavar="N",
        type=positive_int,
        default=None,
        help=f"reject a file whose on-disk or decompressed size passes this (default {_LIMITS.max_bytes:,})",
    )
    out.add_argument(
        "--max-depth",
        metavar="N",
        type=positive_int,
        default=None,
        help=f"reject a file whose DOM nesting passes this (default {_LIMITS.max_depth})",
    )
    out.add_argument(
        "--max-events",
        metavar="N",
        type=positive_int,
        default=None,
        help=f"reject a file with more events than this (default {_LIMITS.max_events:,})",
    )
    out.add_argument(
        "--max-memory",
        metavar="N",
        type=positive_int,
        default=None,
        help=(
            "reject a file whose parse is estimated to need more bytes of memory than this "
            f"(default {_LIMITS.max_memory:,})"
        ),
    )
    out.add_argument(
        "--require-timestamps",
        action="store_true",
        help="reject a file with events that have no numeric timestamp (kept by default)",
    )
    out.add_argument(
        "--require-full-snapshot",
        action="store_true",
        help="reject a session with no FullSnapshot holding a DOM tree (kept and flagged by default)",
    )
    out.add_argument(
        "--max-text-bytes",
        metavar="N",
        type=int,
        default=None,
        help="tokenizer cap on UTF-8 bytes per text field (default: the tokenizer's, 64)",
    )
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    remote = is_remote(args.out)
    if not remote:
        given = flags_given(
            ("--staging", args.staging),
            ("--storage-option", args.storage_options),
            ("--store-attempts", args.store_attempts),
        )
        if given:
            raise UsageError(f"{', '.join(given)} need(s) --out s3://BUCKET/PREFIX")
    store_kw: dict[str, Any] = {}
    if remote:
        store_kw = {
            "staging": args.staging,
            "storage_options": storage_options(args.storage_options),
            "retry": None if args.store_attempts is None else RetryPolicy(args.store_attempts),
        }
    options = PreprocessOptions(
        max_tokens=args.max_tokens,
        overflow=args.overflow,
        shard_tokens=args.shard_tokens,
        group_files=args.group_files,
        group_bytes=args.group_bytes,
        max_bytes=args.max_bytes,
        max_depth=args.max_depth,
        max_events=args.max_events,
        max_memory=args.max_memory,
        max_text_bytes=args.max_text_bytes,
        require_timestamps=args.require_timestamps,
        require_full_snapshot=args.require_full_snapshot,
    )
    try:
        result = preprocess(
            args.sources,
            args.out,
            options,
            workers=args.workers,
            executor=args.executor,
            ray_address=args.ray_address,
            progress=not args.no_progress and sys.stderr.isatty(),
            worker_memory=None if args.worker_memory is None else args.worker_memory << 20,
            **store_kw,
        )
    except (FileNotFoundError, NotADirectoryError, RuntimeError, StoreError) as exc:
        raise UsageError(_one_line(exc)) from None
    except OSError as exc:  # the output side: a full disk, a read-only mount, ...
        if remote:  # the staging directory's files; the note says where they are kept
            raise UsageError(f"writing the dataset failed: {_one_line(exc)}") from None
        raise UsageError(
            f"writing the dataset {args.out} failed: {_one_line(exc)}; the groups already "
            "finished are kept, run the same command again to continue"
        ) from None
    print(format_summary(result))
    if result.store_url is not None:
        print(f"\nuploaded {result.uploaded_bytes / 1e6:,.1f} MB to {result.store_url}")
    return 0


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        text = f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
    else:
        text = str(exc)
    notes = getattr(exc, "__notes__", None) or []  # e.g. where a failed upload's files are kept
    return "; ".join([text, *notes])


def format_summary(result: PreprocessResult) -> str:
    """The run summary and dataset totals the CLI (and the demo) print after preprocessing."""
    parts: list[str] = []
    t = result.totals
    secs = max(result.seconds, 1e-9)
    parts.append(
        format_kv(
            [
                ("dataset", result.store_url or str(result.out)),
                (
                    "groups",
                    f"{result.groups_total} ({result.groups_run} run now, {result.groups_reused} done before)",
                ),
                (
                    "this run",
                    f"{result.files_run:,} files, {result.bytes_run / 1e6:,.1f} MB in {secs:,.1f} s",
                ),
                (
                    "rate",
                    f"{result.bytes_run / 1e6 / secs:,.1f} MB/s, {result.tokens_run / secs / 1e6:,.2f} M tokens/s",
                ),
                (
                    "shards",
                    f"{t['shards']} ({sum(s.bin_bytes + s.idx_bytes for s in result.manifest.shards) / 1e6:,.1f} MB)",
                ),
            ]
        )
    )
    parts.append("")
    rows = [
        ("files read", t["files_read"]),
        ("  sessions kept", t["sessions"]),
        ("  files rejected", t["files_rejected"]),
        ("  skipped (--overflow skip)", t["skipped_overflow"]),
        ("sessions salvaged", t["salvaged"]),
        ("sessions split", t["split"]),
        ("sessions truncated", t["truncated"]),
        ("sequences written (windows)", t["windows"]),
        ("tokens", t["tokens"]),
    ]
    rows += [(f"rejected: {reason}", n) for reason, n in t["rejected_by_reason"].items()]
    rows += [
        (label, t[key])
        for label, key in (
            ("files kept with notes", "files_noted"),
            ("parts skipped by the reader", "parts_skipped"),
            ("events without a timestamp", "missing_timestamps"),
            ("malformed parts (tokens)", "malformed_parts"),
            ("unknown parts (tokens)", "unknown_parts"),
        )
        if t.get(key)
    ]
    rows += [(f"flagged: {flag}", n) for flag, n in t.get("flags", {}).items()]
    parts.append(format_table(["dataset totals", "count"], rows))
    if t.get("workers_crashed"):
        parts.append(
            f"\n{t['workers_crashed']} file(s) killed the worker process reading them, even "
            "alone (worker_crashed in errors.jsonl)"
        )
    if t["unexpected_errors"]:
        parts.append(
            f"\n{t['unexpected_errors']} file(s) failed with an unexpected error (tracebacks logged)"
        )
    if t["inputs_changed"] or t["inputs_missing"]:
        parts.append(
            f"\nwarning: {t['inputs_changed']} input(s) changed and {t['inputs_missing']} vanished "
            "after they were preprocessed; the dataset keeps what was read first (manifest.json: "
            "stale_inputs)"
        )
    if t["error_lines"]:
        where = (
            f"{result.store_url}/{ERRORS_NAME}" if result.store_url else result.out / ERRORS_NAME
        )
        parts.append(f"\nper-file problems: {where} ({t['error_lines']} lines)")
    return "\n".join(parts)
