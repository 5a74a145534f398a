"""Bench: ``preprocess`` throughput at 1 worker and at every core, peak memory, shard overhead.

For each corpus (a synthetic one of ``--synth N`` sessions, generated once into ``--data DIR`` and
reused, and the real recorded corpus when it is present) the whole preprocessing run is timed
twice into a fresh output directory: with one worker and with every usable core. Printed per run:
MB/s of input files, sessions/s, tokens/s, peak RSS of this process plus its workers (sampled with
psutil every 50 ms), CPU seconds of this process and its workers, the 1-minute load average before the run (a busy machine skews everything),
shard ``.bin`` bytes per session and ``.idx`` bytes per sequence (split into
the fixed per-sequence arrays and the file table of relative paths). Goals printed beside the
figures: scaling (rate at all cores / rate at one) >= 0.9 x cores, and index <= 16 bytes per
session.

    python bench/preprocess.py [--synth N] [--data DIR] [--real DIR] [--json PATH]
"""

from __future__ import annotations

# Run as a script, bench/ comes first on sys.path, where a sibling could shadow a module: take
# it off and import from the repository root (rrweb_dali, bench._data).
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

import argparse  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

_REPO = Path(__file__).resolve().parents[1]
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

import psutil  # noqa: E402
from rrweb_dali.external_source.reader import ShardReader  # noqa: E402

from bench._data import machine, synth_corpus  # noqa: E402
from rrweb_dali.ingest.discover import discover  # noqa: E402
from rrweb_dali.parallel import available_cpus  # noqa: E402
from rrweb_dali.preprocess import PreprocessOptions, preprocess  # noqa: E402
from rrweb_dali.shards.format import HEADER_SIZE  # noqa: E402

DEFAULT_REAL = _REPO.parent / "shared" / "corpus" / "recorded"
SCALING_GOAL = 0.9  # x cores
INDEX_GOAL = 16  # bytes per session


class PeakRSS:
    """Samples the RSS of this process and all its descendants; ``peak`` is the largest sum."""

    def __init__(self, interval: float = 0.05):
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> int:
        me = psutil.Process()
        total = 0
        for p in [me, *me.children(recursive=True)]:
            try:
                total += p.memory_info().rss
            except psutil.Error:
                continue
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._sample())
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def _cpu_seconds() -> float:
    """CPU time of this process and its reaped children (the pool's workers, once shut down)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def run_once(corpus: Path, out: Path, workers: int, options: PreprocessOptions) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    input_bytes = sum(f.size for f in discover([corpus]))
    load = os.getloadavg()[0]  # other work on the machine skews the figures: print it
    cpu0 = _cpu_seconds()
    with PeakRSS() as rss:
        start = time.perf_counter()
        result = preprocess([corpus], out, options, workers=workers, progress=sys.stderr.isatty())
        seconds = time.perf_counter() - start
    cpu = _cpu_seconds() - cpu0
    t = result.totals
    shards = result.manifest.shards
    windows = max(t["windows"], 1)
    idx_bytes = sum(s.idx_bytes for s in shards)
    arrays = sum(HEADER_SIZE + 8 * (s.sessions + 1) + 8 * s.sessions for s in shards)
    reader = ShardReader(out)  # what the loader keeps in memory per sequence
    _ = reader.lengths
    loader_index = reader.index_bytes / max(len(reader), 1)
    del reader
    shutil.rmtree(out, ignore_errors=True)
    return {
        "workers": workers,
        "load_before": load,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "input_bytes": input_bytes,
        "files": t["files_read"],
        "sessions": t["sessions"],
        "windows": t["windows"],
        "tokens": t["tokens"],
        "shards": len(shards),
        "mb_per_s": input_bytes / 1e6 / seconds,
        "sessions_per_s": t["sessions"] / seconds,
        "tokens_per_s": t["tokens"] / seconds,
        "peak_rss_mb": rss.peak / 1e6,
        "shard_bin_bytes_per_session": sum(s.bin_bytes for s in shards) / max(t["sessions"], 1),
        "index_bytes_per_sequence": idx_bytes / windows,
        "index_array_bytes_per_sequence": arrays / windows,
        "index_file_table_bytes_per_sequence": (idx_bytes - arrays) / windows,
        "loader_index_bytes_per_sequence": loader_index,
    }


def print_table(name: str, runs: list[dict], cores: int) -> dict:
    print(f"\n{name}: {runs[0]['files']:,} files, {runs[0]['input_bytes'] / 1e6:,.1f} MB on disk")
    header = (
        f"{'workers':>7} {'load':>5} {'seconds':>8} {'CPU s':>7} {'MB/s':>7} {'sess/s':>8} {'Mtok/s':>7} {'peak RSS MB':>11} "
        f"{'bin B/sess':>10} {'idx B/seq':>9} {'(arrays':>8} {'+ paths)':>8}"
    )
    print(header)
    print("-" * len(header))
    for r in runs:
        print(
            f"{r['workers']:>7} {r['load_before']:>5.1f} {r['seconds']:>8.1f} {r['cpu_seconds']:>7.1f} {r['mb_per_s']:>7.1f} {r['sessions_per_s']:>8.1f} "
            f"{r['tokens_per_s'] / 1e6:>7.2f} {r['peak_rss_mb']:>11.0f} "
            f"{r['shard_bin_bytes_per_session']:>10,.0f} {r['index_bytes_per_sequence']:>9.1f} "
            f"{r['index_array_bytes_per_sequence']:>8.1f} {r['index_file_table_bytes_per_sequence']:>8.1f}"
        )
    one, every = runs[0], runs[-1]
    scaling = every["mb_per_s"] / one["mb_per_s"]
    goal = SCALING_GOAL * cores
    cpu_eff = one["cpu_seconds"] / every["cpu_seconds"]
    print(
        f"CPU work 1 worker / {every['workers']} workers: {cpu_eff:.2f} (1.00: parallel costs no "
        "extra CPU; unlike the wall-clock scaling it holds on a busy machine)"
    )
    idx = every["index_bytes_per_sequence"]
    arrays = every["index_array_bytes_per_sequence"]
    mem = every["loader_index_bytes_per_sequence"]
    print(
        f"index memory of the loader (ShardReader): {mem:.1f} bytes per sequence "
        f"(goal <= {INDEX_GOAL}: {'met' if mem <= INDEX_GOAL else 'NOT met'})"
    )
    print(
        f"scaling {every['workers']} workers / 1: {scaling:.2f}x  "
        f"(goal >= {goal:.2f}x = {SCALING_GOAL} x {cores} cores: {'met' if scaling >= goal else 'NOT met'})"
    )
    print(
        f"index file on disk per sequence: {idx:.1f} in all, {arrays:.1f} without the file table "
        f"(goal <= {INDEX_GOAL}: {'met' if idx <= INDEX_GOAL else 'NOT met'} in all, "
        f"{'met' if arrays <= INDEX_GOAL else 'NOT met'} without the table)"
    )
    return {"runs": runs, "scaling": scaling, "scaling_goal": goal, "cpu_efficiency": cpu_eff}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--synth", type=int, default=31951, help="synthetic sessions (default 31951; 0: none)"
    )
    parser.add_argument("--seed", type=int, default=0, help="synthetic corpus seed (default 0)")
    parser.add_argument(
        "--data",
        type=Path,
        default=Path(".bench-data"),
        help="cache directory (default .bench-data)",
    )
    parser.add_argument(
        "--real", type=Path, default=DEFAULT_REAL, help="real corpus (skipped when absent)"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="the 'all cores' worker count (default: usable CPUs)",
    )
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args(argv)

    cores = args.workers or available_cpus()
    info = machine()
    print(
        f"{info['date']}  {info['platform']}  {info['processor']}  cpus={info['cpu_count']} "
        f"(usable {info['usable_cpus']})  {info['memory_gb']} GB  python {info['python']}  "
        f"load {info['load_avg_at_start'][0]:.1f}"
    )
    args.data.mkdir(parents=True, exist_ok=True)
    options = PreprocessOptions()
    corpora = []
    if args.synth > 0:
        corpora.append(
            (
                f"synthetic ({args.synth:,} sessions, seed {args.seed})",
                synth_corpus(args.data, args.synth, args.seed),
            )
        )
    if args.real.is_dir():
        corpora.append((f"real ({args.real.name})", args.real))
    else:
        print(f"real corpus not found at {args.real}: skipped", file=sys.stderr)
    results = {"machine": info, "options": options.__dict__, "corpora": {}}
    for name, corpus in corpora:
        runs = [run_once(corpus, args.data / "out", w, options) for w in sorted({1, cores})]
        results["corpora"][name] = print_table(name, runs, cores)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
