"""The datasets the loader benches read: shared by ``bench/loader.py`` and ``bench/train.py``.

By default a synthetic corpus (``--synth N`` sessions, generated once and cached under
``.bench-data/``, named like ``bench/preprocess.py``'s cache so both share it) is preprocessed with
``--max-tokens 2048`` and the ``split`` overflow policy: every session becomes consecutive windows
of at most 2048 tokens, the length a training run would feed a model. ``--real`` adds the recorded
corpus beside the repository, preprocessed the same way; ``--shards DIR`` uses a preprocessed
dataset as it is and skips all of that.

Both preprocessed datasets are cached too (a hidden marker says a run completed), so only the first
bench run pays for generating and preprocessing.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO / ".bench-data"
DEFAULT_REAL = REPO.parent / "shared" / "corpus" / "recorded"
DEFAULT_SYNTH = 2000
DEFAULT_MAX_TOKENS = 2048


@dataclass
class BenchData:
    """One preprocessed dataset directory and what it holds."""

    name: str
    path: Path
    origin: str
    stats: dict = field(default_factory=dict)


def add_data_args(parser: argparse.ArgumentParser, synth: int = DEFAULT_SYNTH) -> None:
    """The data options both benches take."""
    g = parser.add_argument_group("data")
    g.add_argument("--shards", type=Path, help="a preprocessed dataset directory (skips the rest)")
    g.add_argument(
        "--synth", type=int, default=synth, help=f"synthetic sessions (default {synth}; 0: none)"
    )
    g.add_argument("--seed", type=int, default=0, help="synthetic corpus seed (default 0)")
    g.add_argument(
        "--real",
        nargs="?",
        const=DEFAULT_REAL,
        type=Path,
        default=None,
        help="also bench the real corpus (default ../shared/corpus/recorded beside the repo)",
    )
    g.add_argument(
        "--max-tokens",
        type=int,
        default=DEFAULT_MAX_TOKENS,
        help=f"preprocess window length (split policy; default {DEFAULT_MAX_TOKENS})",
    )
    g.add_argument(
        "--data", type=Path, default=DEFAULT_DATA, help="cache directory (default .bench-data)"
    )


def dataset_stats(path: Path) -> dict:
    """Sequences (windows), tokens and the length distribution of a dataset directory."""
    from rrweb_dali.external_source.reader import ShardReader

    reader = ShardReader(path)
    lengths = reader.lengths
    if lengths.size == 0:
        return {"sequences": 0, "tokens": 0, "shards": len(reader.shards)}
    p5, p50, p95 = np.percentile(lengths, [5, 50, 95]).tolist()
    return {
        "sequences": len(reader),
        "tokens": int(lengths.sum()),
        "shards": len(reader.shards),
        "mean_len": float(lengths.mean()),
        "p5_len": p5,
        "median_len": p50,
        "p95_len": p95,
        "max_len": int(lengths.max()),
    }


def _note(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def synth_corpus(data: Path, n: int, seed: int) -> Path:
    """The cached synthetic corpus (written once; a hidden marker says it is complete)."""
    from rrweb_dali.synth import write_synth_corpus

    corpus = data / f"synth-{n}-seed{seed}"
    marker = corpus / ".complete"
    if not marker.is_file():
        shutil.rmtree(corpus, ignore_errors=True)
        _note(f"generating {n:,} synthetic sessions into {corpus} (once) ...")
        write_synth_corpus(corpus, n, seed=seed, progress=sys.stderr.isatty())
        marker.write_text("done\n")
    return corpus


def preprocessed(source: Path, out: Path, max_tokens: int) -> Path:
    """``source`` preprocessed into ``out`` with split windows of ``max_tokens`` (cached)."""
    from rrweb_dali.preprocess import PreprocessOptions, preprocess

    marker = out / ".bench-complete"
    if not marker.is_file():
        shutil.rmtree(out, ignore_errors=True)
        _note(f"preprocessing {source} -> {out} (--max-tokens {max_tokens}, split; once) ...")
        preprocess([source], out, PreprocessOptions(max_tokens=max_tokens, overflow="split"))
        marker.write_text("done\n")
    return out


def bench_datasets(args: argparse.Namespace) -> list[BenchData]:
    """The datasets the options ask for, built on first use. Call under ``__main__`` only: the
    preprocessor's worker pool spawns processes that import the main module again."""
    if args.shards is not None:
        found = [BenchData("shards", args.shards, f"given dataset {args.shards}")]
    else:
        found = []
        if args.synth > 0:
            corpus = synth_corpus(args.data, args.synth, args.seed)
            out = args.data / f"shards-synth-{args.synth}-seed{args.seed}-max{args.max_tokens}"
            origin = (
                f"synthetic corpus of {args.synth:,} sessions (seed {args.seed}), preprocessed "
                f"with --max-tokens {args.max_tokens} (split windows)"
            )
            found.append(BenchData("synth", preprocessed(corpus, out, args.max_tokens), origin))
        if args.real is not None:
            if args.real.is_dir():
                out = args.data / f"shards-real-{args.real.name}-max{args.max_tokens}"
                origin = (
                    f"real corpus {args.real.name}/, preprocessed with --max-tokens "
                    f"{args.max_tokens} (split windows)"
                )
                found.append(
                    BenchData("real", preprocessed(args.real, out, args.max_tokens), origin)
                )
            else:
                _note(f"real corpus not found at {args.real}: skipped")
    if not found:
        raise SystemExit("no dataset: give --shards DIR, --synth N > 0 or --real")
    for d in found:
        d.stats = dataset_stats(d.path)
    return found


def machine() -> dict:
    """What a bench ran on, printed and stored with its figures (imports kept light)."""
    import datetime
    import os
    import platform

    import psutil

    from rrweb_dali.parallel import available_cpus

    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "usable_cpus": available_cpus(),
        "memory_gb": round(psutil.virtual_memory().total / 1e9, 1),
        "python": platform.python_version(),
        "load_avg_at_start": os.getloadavg(),
    }
