"""``rrweb-dali profile SHARDS --out RUNS``: measure the loader, write a run folder for the dashboard."""

from __future__ import annotations

import argparse

from rrweb_dali.commands._args import positive_int
from rrweb_dali.commands._table import format_kv


def _auto_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "profile",
        help="drive the loader and record throughput, waits and memory into a run folder",
        description=(
            "Iterate the DALI loader over preprocessed shards (optionally with a simulated training "
            "step), sampling its counters twice a second into RUNS/<run_id>/ (meta.json, "
            "samples.jsonl, summary.json). View runs with `rrweb-dali dashboard RUNS`."
        ),
    )
    p.add_argument(
        "shards", nargs="+", help="preprocessed dataset directories (with manifest.json)"
    )
    p.add_argument("--out", required=True, help="runs directory; one folder per run goes in it")
    p.add_argument(
        "--device", choices=("cuda", "cpu"), default=None, help="default: cuda when available"
    )
    p.add_argument("--batch-size", type=int, default=32)
    stop = p.add_mutually_exclusive_group()
    stop.add_argument("--seconds", type=float, help="run for this long (across epochs)")
    stop.add_argument("--epochs", type=int, help="run this many epochs (default 1)")
    p.add_argument(
        "--step-ms",
        type=float,
        default=0.0,
        help="simulated step per batch: GPU matmuls taking this long, or a sleep on the CPU",
    )
    p.add_argument("--name", help="run name (default dali-<device>-b<batch size>)")
    p.add_argument("--run-id", help="folder name; give the same one on every torchrun rank")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--interval", type=float, default=0.5, help="seconds between samples")
    p.add_argument("--bucketing", action="store_true", help="group similar lengths in a batch")
    p.add_argument("--max-length", type=int, default=None, help="cut sessions to this many tokens")
    p.add_argument("--packing", type=int, default=None, help="pack sessions into rows of L tokens")
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
    p.add_argument("--py-workers", type=int, default=2, help="worker processes with --parallel")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from rrweb_dali.profiling.session import ProfileSettings, run_profile

    settings = ProfileSettings(
        shards=args.shards,
        runs_dir=args.out,
        device=args.device or _auto_device(),
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
        disable=args.no_progress,
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
            ]
        )
    )
    return 0


def _fmt(x: float | None, digits: int = 1) -> str:
    return "n/a" if x is None else f"{x:,.{digits}f}"
