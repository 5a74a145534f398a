"""``rrweb-dali profile SHARDS --out RUNS``: measure the loader, write a run folder for the dashboard."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rrweb_dali.commands._args import (
    UsageError,
    add_command,
    add_no_progress,
    flags_given,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
    storage_option,
    storage_options,
)
from rrweb_dali.commands._table import format_kv


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "profile",
        help="drive the loader and record throughput, waits and memory into a run folder",
        description=(
            "Iterate the DALI loader over preprocessed shards (optionally with a simulated training "
            "step), sampling its counters twice a second into RUNS/<run_id>/ (meta.json, "
            "samples.jsonl, summary.json). View runs with `rrweb-dali dashboard RUNS`."
        ),
        examples=[
            "rrweb-dali profile data/ --out runs --batch-size 64 --max-length 4096 --seconds 30",
            "rrweb-dali profile data/ --out runs --packing 8192 --step-ms 20 --epochs 2",
            "rrweb-dali profile s3://bucket/data --out runs --epochs 2 --cache-dir /local/cache "
            "--storage-option endpoint_url=http://127.0.0.1:9000",
        ],
    )
    p.add_argument(
        "shards",
        nargs="+",
        help="preprocessed dataset directories (with manifest.json), or s3://bucket/prefix URLs",
    )
    p.add_argument("--out", required=True, help="runs directory; one folder per run goes in it")
    p.add_argument(
        "--device",
        choices=("auto", "cuda", "cpu"),
        default="auto",
        help="auto: cuda when torch sees a GPU, else cpu",
    )
    p.add_argument("--batch-size", type=positive_int, default=32, help="sessions per batch")
    stop = p.add_mutually_exclusive_group()
    stop.add_argument(
        "--seconds", type=positive_float, help="run for this long, across epochs (default: off)"
    )
    stop.add_argument(
        "--epochs", type=positive_int, help="run this many epochs (default: 1 without --seconds)"
    )
    p.add_argument(
        "--step-ms",
        type=non_negative_float,
        default=0.0,
        help="simulated step per batch: GPU matmuls taking this long, or a sleep on the CPU",
    )
    p.add_argument("--name", help="run name (default: dali-<device>-b<batch size>)")
    p.add_argument(
        "--run-id",
        help="folder name; give the same one on every torchrun rank (default: name and time)",
    )
    p.add_argument("--seed", type=int, default=0, help="shuffling seed")
    p.add_argument("--interval", type=positive_float, default=0.5, help="seconds between samples")
    p.add_argument("--bucketing", action="store_true", help="group similar lengths in a batch")
    p.add_argument(
        "--max-length",
        type=positive_int,
        default=None,
        help="cut sessions to this many tokens (default: none, rows as long as the dataset's)",
    )
    p.add_argument(
        "--packing",
        type=positive_int,
        default=None,
        help="pack sessions into rows of this many tokens (default: off, padded rows)",
    )
    p.add_argument(
        "--prefetch",
        type=positive_int,
        default=2,
        help="DALI iterations prepared ahead, in DALI and again in the loader's thread",
    )
    p.add_argument(
        "--batches-per-call",
        type=positive_int,
        default=None,
        help="training batches per DALI iteration (default: about 512 rows)",
    )
    p.add_argument("--num-threads", type=positive_int, default=2, help="DALI CPU threads")
    p.add_argument(
        "--parallel", action="store_true", help="run the batch source in worker processes"
    )
    p.add_argument(
        "--py-workers", type=positive_int, default=2, help="worker processes with --parallel"
    )
    store = p.add_argument_group("object store (s3:// datasets)")
    store.add_argument(
        "--storage-option",
        type=storage_option,
        action="append",
        default=None,
        metavar="KEY=VALUE",
        help="an fsspec/s3fs option, repeatable (endpoint_url=http://..., anon=true; values that "
        "read as JSON are parsed); default: none, the standard AWS variables apply",
    )
    store.add_argument(
        "--cache-dir",
        default=None,
        help="the node's shard cache, shared by its ranks (default: ~/.cache/rrweb-dali/shards)",
    )
    store.add_argument(
        "--cache-bytes",
        type=positive_int,
        default=None,
        help="most bytes of shards the cache holds (default: 64 GiB)",
    )
    store.add_argument(
        "--fetch-ahead",
        type=non_negative_int,
        default=4,
        help="shards downloaded ahead of the ones in use, in the epoch's order",
    )
    store.add_argument(
        "--fetch-threads", type=positive_int, default=4, help="background download threads"
    )
    add_no_progress(p)
    p.set_defaults(func=run)


def check_paths(shards: list[str], out: str) -> None:
    """Refuse before the loader starts: inputs that are not datasets, an output that is a file.
    An ``s3://`` URL is checked for its form only; the loader reads its manifest (and says
    clearly when there is none)."""
    from rrweb_dali.store.location import check_url, is_remote

    for root in shards:
        if is_remote(root):
            try:
                check_url(root)
            except ValueError as exc:
                raise UsageError(str(exc)) from None
            continue
        if not (Path(root) / "manifest.json").is_file():
            what = "does not exist" if not Path(root).exists() else "has no manifest.json"
            raise UsageError(
                f"{root} is not a preprocessed dataset ({what}); make one with "
                "`rrweb-dali preprocess SRC --out DIR`"
            )
    if Path(out).exists() and not Path(out).is_dir():
        raise UsageError(f"--out {out} is a file; give a runs directory (made if missing)")


def store_options(args: argparse.Namespace) -> dict:
    """The ``make_loader`` keywords of the object-store options; refused for local datasets,
    where they would do nothing (a silently ignored ``--cache-dir`` misleads)."""
    from rrweb_dali.store.location import is_remote

    given = flags_given(
        ("--storage-option", args.storage_option),
        ("--cache-dir", args.cache_dir),
        ("--cache-bytes", args.cache_bytes),
    )
    if not any(is_remote(s) for s in args.shards):
        if given:
            raise UsageError(f"{', '.join(given)} apply to s3:// datasets; these are local")
        return {}
    return {
        "storage_options": storage_options(args.storage_option) or {},
        "cache_dir": args.cache_dir,
        "cache_bytes": args.cache_bytes,
        "fetch_ahead": args.fetch_ahead,
        "fetch_threads": args.fetch_threads,
    }


def run(args: argparse.Namespace) -> int:
    check_paths(args.shards, args.out)
    remote = store_options(args)
    from tqdm import tqdm

    from rrweb_dali.loader.make import resolve_device
    from rrweb_dali.profiling.session import ProfileSettings, run_profile

    settings = ProfileSettings(
        shards=args.shards,
        runs_dir=args.out,
        device=resolve_device(args.device),
        batch_size=args.batch_size,
        seconds=args.seconds,
        epochs=args.epochs,
        step_ms=args.step_ms,
        name=args.name,
        seed=args.seed,
        interval_s=args.interval,
        run_id=args.run_id,
        loader_options={
            "bucketing": args.bucketing,
            "max_length": args.max_length,
            "packing": args.packing,
            "prefetch": args.prefetch,
            "batches_per_call": args.batches_per_call,
            "num_threads": args.num_threads,
            "parallel": args.parallel,
            "py_workers": args.py_workers,
            **remote,
        },
    )
    timed = settings.seconds is not None
    bar = tqdm(
        total=settings.seconds if timed else None,
        unit="s" if timed else "batch",
        disable=args.no_progress or not sys.stderr.isatty(),
        bar_format="{l_bar}{bar}| {n:.1f}/{total:.0f}s {postfix}" if timed else None,
    )
    shown = [0.0]

    def on_progress(done: int, elapsed: float, planned: int | None) -> None:
        if planned is not None and bar.total != planned:
            bar.total = planned
        if timed:
            step = min(elapsed, settings.seconds) - shown[0]
            if step >= 0.1:
                bar.update(step)
                shown[0] += step
                bar.set_postfix_str(f"{done} batches", refresh=False)
        else:
            bar.update(1)

    try:
        summary = run_profile(settings, on_progress)
    finally:
        bar.close()
    rates, totals = summary.get("rates", {}), summary.get("totals", {})
    print(
        format_kv(
            [
                ("run", summary["run_dir"]),
                ("batches", totals.get("batches")),
                ("rows", totals.get("rows")),
                ("samples/s", _fmt(rates.get("samples_per_s"))),
                ("tokens/s", _fmt(rates.get("tokens_per_s"))),
                ("median samples/s", _fmt(summary.get("median", {}).get("samples_per_s"))),
                ("padding efficiency", _fmt(rates.get("padding_efficiency"), 3)),
                ("loop wait share", _fmt(rates.get("wait_share"), 3)),
                *store_lines(summary.get("store")),
                ("verdict", f"{summary.get('verdict') or 'n/a'}: {summary.get('verdict_reason')}"),
                *[
                    (f"advice {i}", f"{a['option'] or 'none'}: {a['why']} -> {a['expected']}")
                    for i, a in enumerate(summary.get("advice") or [], 1)
                ],
            ]
        )
    )
    return 0


def store_lines(store: dict | None) -> list[tuple[str, str]]:
    """The object store's figures of a run (none for local shards)."""
    if not store:
        return []
    hits, misses = store.get("hits") or 0, store.get("misses") or 0
    return [
        (
            "shards downloaded",
            f"{store.get('downloads') or 0} ({_bytes(store.get('download_bytes'))})",
        ),
        ("download time", f"{_fmt(store.get('download_s'), 2)} s (summed over fetch threads)"),
        ("download MiB/s", f"{_fmt(store.get('download_mib_per_s'))} per download"),
        ("shard cache hits/misses", f"{hits}/{misses}"),
        ("waits for shards", f"{_fmt(store.get('wait_s'), 2)} s"),
    ]


def _bytes(n: float | None) -> str:
    if n is None:
        return "n/a"
    return f"{n / (1 << 20):,.1f} MiB" if n >= 1 << 20 else f"{n / 1024:,.1f} KiB"


def _fmt(x: float | None, digits: int = 1) -> str:
    return "n/a" if x is None else f"{x:,.{digits}f}"
