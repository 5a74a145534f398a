"""Bench: a weighted mixture of two datasets against one dataset, same run, same loader options.

Two preprocessed datasets (by default two synthetic corpora of ``--synth N`` sessions, seeds
``--seed`` and ``--seed + 1``, cached under ``.bench-data/`` like ``bench/loader.py``'s; or
``--shards A --second B``) are read by three loaders at each batch size:

* ``single``: ``make_loader(A)``;
* ``concat``: ``make_loader([A, B])`` (two directories, no weights: one concatenated dataset);
* ``mixture``: ``make_loader([A, B], weights=--weights)`` (a ``dataset`` tensor per batch,
  ``index`` within its source; ``mixture="repeat"``).

Rounds alternate the three (``--rounds`` of ``--seconds`` each, after a warm-up, epochs chained),
so a busy machine's drift hits all alike; the figure is the median of each loader's rounds, and
the ratio printed is mixture samples/s over single samples/s. Goal: >= 0.9 (within 10%). The
epoch plan's cost (the stratified merge) is paid at each epoch start and is in the figures.

    python bench/mixture.py [--device cpu|cuda] [--seconds S] [--rounds R] [--batch-sizes 64,256]
                            [--weights 0.7,0.3] [--shards A --second B | --synth N] [--json PATH]
"""

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [str(_ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "bench"]

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402

from bench._data import (  # noqa: E402
    DEFAULT_SYNTH,
    add_data_args,
    dataset_stats,
    machine,
    preprocessed,
    synth_corpus,
)
from rrweb_dali.loader import make_loader  # noqa: E402

GOAL = 0.9


def _forever(loader):
    """Batches of ``loader`` across epochs."""
    while True:
        yield from loader


def measure(batches, seconds: float, device: str) -> dict:
    """Rows and tokens per second of ``batches`` over ``seconds`` (the loop only counts)."""
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    rows = tokens = 0
    sync()
    start = time.perf_counter()
    while True:
        batch = next(batches)
        rows += int(batch["lengths"].shape[0])
        tokens += int(batch["lengths"].sum())
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            break
    sync()
    elapsed = time.perf_counter() - start
    return {"samples_per_s": rows / elapsed, "tokens_per_s": tokens / elapsed}


def datasets(args: argparse.Namespace) -> tuple[Path, Path]:
    """The two dataset directories (built once and cached, when synthetic)."""
    if args.shards is not None:
        if args.second is None:
            raise SystemExit("--shards needs --second (the mixture's other dataset)")
        return args.shards, args.second
    out = []
    for seed in (args.seed, args.seed + 1):
        corpus = synth_corpus(args.data, args.synth, seed)
        name = f"shards-synth-{args.synth}-seed{seed}-max{args.max_tokens}"
        out.append(preprocessed(corpus, args.data / name, args.max_tokens))
    return out[0], out[1]


def run(args: argparse.Namespace) -> dict:
    a, b = datasets(args)
    weights = [float(w) for w in args.weights.split(",")]
    common = {"device": args.device, "seed": 0, "max_length": args.max_tokens}
    results = {}
    for bs in [int(x) for x in args.batch_sizes.split(",")]:
        loaders = {
            "single": make_loader(a, batch_size=bs, **common),
            "concat": make_loader([a, b], batch_size=bs, **common),
            "mixture": make_loader([a, b], batch_size=bs, weights=weights, **common),
        }
        streams = {name: _forever(loader) for name, loader in loaders.items()}
        for name, stream in streams.items():  # warm-up: pipeline build, first epoch plan
            print(f"  bs {bs}: warming up {name} ...", file=sys.stderr, flush=True)
            measure(stream, min(1.0, args.seconds), args.device)
        rounds: dict[str, list[dict]] = {name: [] for name in loaders}
        for r in range(args.rounds):
            for name, stream in streams.items():
                rounds[name].append(measure(stream, args.seconds, args.device))
            print(f"  bs {bs}: round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)
        row = {}
        for name, rs in rounds.items():
            row[name] = {
                "samples_per_s": statistics.median(x["samples_per_s"] for x in rs),
                "tokens_per_s": statistics.median(x["tokens_per_s"] for x in rs),
                "rounds": rs,
            }
        row["ratio"] = row["mixture"]["samples_per_s"] / row["single"]["samples_per_s"]
        row["goal_met"] = row["ratio"] >= GOAL
        results[str(bs)] = row
        for loader in loaders.values():
            loader.close()
    return {
        "machine": machine(),
        "device": args.device,
        "datasets": {"a": dataset_stats(a), "b": dataset_stats(b)},
        "weights": weights,
        "settings": {k: str(v) for k, v in vars(args).items()},
        "results": results,
    }


def print_report(report: dict) -> None:
    m = report["machine"]
    print(
        f"machine: {m['processor']}, {m['usable_cpus']} usable CPUs, Python {m['python']}, "
        f"device {report['device']}"
    )
    for key, d in report["datasets"].items():
        print(f"dataset {key}: {d['sequences']:,} sequences, {d['tokens']:,} tokens")
    print(f"weights {report['weights']} (mixture='repeat')\n")
    print(f"{'bs':>4s} {'loader':8s} {'samples/s':>11s} {'Mtok/s':>8s}")
    for bs, row in report["results"].items():
        for name in ("single", "concat", "mixture"):
            r = row[name]
            print(f"{bs:>4s} {name:8s} {r['samples_per_s']:11,.0f} {r['tokens_per_s'] / 1e6:8.2f}")
        verdict = "met" if row["goal_met"] else "NOT met"
        print(
            f"{bs:>4s} mixture / single samples/s = {row['ratio']:.3f}  (goal >= {GOAL}: {verdict})"
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--seconds", type=float, default=3.0, help="seconds per round per loader")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds (median taken)")
    ap.add_argument("--batch-sizes", default="64,256")
    ap.add_argument("--weights", default="0.7,0.3", help="mixture weights of A and B")
    ap.add_argument("--second", type=Path, help="with --shards: the other dataset directory")
    ap.add_argument("--json", type=Path, help="also write the report as JSON here")
    add_data_args(ap, synth=DEFAULT_SYNTH)
    args = ap.parse_args(argv)
    report = run(args)
    print_report(report)
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
