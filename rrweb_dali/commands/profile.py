"""``rrweb-dali profile SHARDS --out RUNS``: measure the loader, write a run folder for the dashboard."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rrweb_dali.commands._args import (
    UsageError,
    add_command,
    add_no_progress,
    non_negative_float,
    positive_float,
    positive_int,
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
        ],
    )
    p.add_argument(
        "shards", nargs="+", help="preprocessed dataset directories (with manifest.json)"
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
    add_no_progress(p)
    p.set_defaults(func=run)


def check_paths(shards: list[str], out: str) -> None:
    """Refuse before the loader starts: inputs that are not datasets, an output that is a file."""
    for root in shards:
        if not (Path(root) / "manifest.json").is_file():
            what = "does not exist" if not Path(root).exists() else "has no manifest.json"
            raise UsageError(
                f"{root} is not a preprocessed dataset ({what}); make one with "
                "`rrweb-dali preprocess SRC --out DIR`"
            )
    if Path(out).exists() and not Path(out).is_dir():
        raise UsageError(f"--out {out} is a file; give a runs directory (made if missing)")


def run(args: argparse.Namespace) -> int:
    check_paths(args.shards, args.out)
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
                ("verdict", f"{summary.get('verdict') or 'n/a'}: {summary.get('verdict_reason')}"),
                *[
                    (f"advice {i}", f"{a['option'] or 'none'}: {a['why']} -> {a['expected']}")
                    for i, a in enumerate(summary.get("advice") or [], 1)
                ],
            ]
        )
    )
    return 0


def _fmt(x: float | None, digits: int = 1) -> str:
    return "n/a" if x is None else f"{x:,.{digits}f}"
