"""Bench: what the profiling hook costs a training loop.

Iterates the same DALI loader (CPU-only here unless --device cuda) for --epochs epochs, bare and
inside ``rrweb_dali.profiling.profile(...)``, in --pairs pairs of passes (order alternating) so
that drift on a shared machine hits both alike, and prints seconds per batch side by side with
the overhead (median of the per-pair ratios, with quartiles: the spread is the noise floor).
With no step the loop is bound by the loader, the worst case for a relative overhead. It also
times the two parts of the hook on their own: the wrapper around ``next`` (per batch, over a plain
list) and one sample (``loader.stats()`` + RSS + a JSON line), which the background thread takes
every --interval seconds.

    python bench/profile_overhead.py [--shards DIR] [--batch-size N] [--epochs E] [--pairs P]
                                     [--step-ms M] [--device cpu|cuda] [--runs DIR] [--json PATH]
"""

# Run as a script, bench/ comes first on sys.path, where a sibling could shadow a module: take
# it off before anything is imported, and put the repository root on.
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]
_REPO = os.path.dirname(_HERE)
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from rrweb_dali.profiling import RunWriter, profile  # noqa: E402
from rrweb_dali.profiling.recorder import LoaderProfiler, ProfiledLoader  # noqa: E402
from rrweb_dali.shards.format import ShardWriter  # noqa: E402
from rrweb_dali.shards.manifest import Manifest, write_manifest  # noqa: E402


def synthetic_dataset(root: Path, sessions: int, seed: int = 0) -> Path:
    """``sessions`` sessions of 64..4096 tokens (log-uniform) in 4 shards: a dataset of its own,
    so the bench runs without preprocessing anything."""
    rng = np.random.default_rng(seed)
    infos = []
    per = -(-sessions // 4)
    for s in range(4):
        w = ShardWriter(root / "shards", f"shard-{s:06d}")
        fid = w.add_file("synthetic")
        for i in range(min(per, sessions - s * per)):
            n = int(np.exp(rng.uniform(np.log(64), np.log(4096))))
            w.add(rng.integers(1, 30000, size=n, dtype=np.uint16), fid, window=i)
        infos.append(w.close())
    write_manifest(root, Manifest(tokenizer={"synthetic": True}, shards=infos))
    return root


def run_epochs(iterable, epochs: int, step_s: float) -> tuple[float, int]:
    batches = 0
    start = time.perf_counter()
    for _ in range(epochs):
        for _batch in iterable:
            batches += 1
            if step_s:
                time.sleep(step_s)
    return time.perf_counter() - start, batches


def wrapper_ns_per_item(n: int = 200_000) -> tuple[float, float]:
    """ns per item of iterating a list bare and through ``ProfiledLoader`` (no thread running)."""
    items = list(range(n))

    class Fake:
        def stats(self) -> dict:
            return {}

    with tempfile.TemporaryDirectory() as tmp:
        writer = RunWriter(tmp, "micro")
        prof = LoaderProfiler(Fake(), writer, interval_s=3600)
        wrapped = ProfiledLoader(items, prof)
        bare = min(_time_iter(items) for _ in range(5))
        hooked = min(_time_iter(wrapped) for _ in range(5))
        writer.finish()
    return bare / n * 1e9, hooked / n * 1e9


def _time_iter(iterable) -> float:
    start = time.perf_counter()
    for _ in iterable:
        pass
    return time.perf_counter() - start


def sample_us(loader, runs: Path, n: int = 300) -> float:
    """Microseconds for one sample of the real loader (what the thread does per interval)."""
    writer = RunWriter(runs, "sample-cost")
    prof = LoaderProfiler(loader, writer, interval_s=3600)
    start = time.perf_counter()
    for _ in range(n):
        prof.sample()
    elapsed = time.perf_counter() - start
    writer.finish()
    return elapsed / n * 1e6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shards", help="dataset directory (default: a synthetic one in a temp dir)")
    ap.add_argument("--sessions", type=int, default=2000, help="synthetic dataset size")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--epochs", type=int, default=2, help="epochs per timed pass")
    ap.add_argument(
        "--pairs", type=int, default=20, help="bare/profiled pass pairs, order alternating"
    )
    ap.add_argument("--step-ms", type=float, default=0.0)
    ap.add_argument("--interval", type=float, default=0.5, help="profiler sampling interval")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--runs", help="keep the profiled runs here (default: a temp dir)")
    ap.add_argument("--json", help="also write the results as JSON to this path")
    args = ap.parse_args()

    from rrweb_dali.loader import make_loader

    with tempfile.TemporaryDirectory() as tmp:
        shards = (
            Path(args.shards) if args.shards else synthetic_dataset(Path(tmp) / "ds", args.sessions)
        )
        runs = Path(args.runs) if args.runs else Path(tmp) / "runs"
        loader = make_loader(str(shards), batch_size=args.batch_size, device=args.device, seed=0)
        step_s = args.step_ms / 1000
        run_epochs(loader, 1, 0.0)  # warm: pipeline built, pages cached
        bare, hooked, ratios, batches = [], [], [], 0
        for r in range(args.pairs):
            pair = {}
            for variant in ("bare", "hooked") if r % 2 == 0 else ("hooked", "bare"):
                if variant == "bare":
                    seconds, batches = run_epochs(loader, args.epochs, step_s)
                else:
                    with profile(loader, runs, "overhead", interval_s=args.interval) as timed:
                        seconds, batches = run_epochs(timed, args.epochs, step_s)
                pair[variant] = seconds / batches
            bare.append(pair["bare"])
            hooked.append(pair["hooked"])
            ratios.append(pair["hooked"] / pair["bare"])
        per_sample = sample_us(loader, runs)
        loader.close()
    wrap_bare, wrap_hooked = wrapper_ns_per_item()

    med_b, med_h = statistics.median(bare), statistics.median(hooked)
    best_b, best_h = min(bare), min(hooked)
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.python_version()}",
        "device": args.device,
        "batch_size": args.batch_size,
        "batches_per_pass": batches,
        "pairs": args.pairs,
        "step_ms": args.step_ms,
        "interval_s": args.interval,
        "bare_ms_per_batch": {"median": med_b * 1e3, "best": best_b * 1e3},
        "hooked_ms_per_batch": {"median": med_h * 1e3, "best": best_h * 1e3},
        "overhead_pct": {
            "median_of_pairs": 100 * (statistics.median(ratios) - 1),
            "quartiles_of_pairs": [100 * (q - 1) for q in statistics.quantiles(ratios, n=4)],
            "best": 100 * (best_h / best_b - 1),
        },
        "wrapper_ns_per_batch": wrap_hooked - wrap_bare,
        "sample_us": per_sample,
        "sample_share_pct": 100 * per_sample * 1e-6 / args.interval,
    }
    print(f"profiling hook overhead ({result['machine']}, device {args.device})")
    print(
        f"  {batches} batches of {args.batch_size} per pass, {args.pairs} pairs of passes, "
        f"step {args.step_ms} ms"
    )
    print(f"  {'':24}{'bare':>12}{'profiled':>12}{'overhead':>12}")
    for key, b, h in (("median ms/batch", med_b, med_h), ("best ms/batch", best_b, best_h)):
        print(f"  {key:24}{b * 1e3:12.4f}{h * 1e3:12.4f}{100 * (h / b - 1):+11.2f}%")
    q1, _, q3 = result["overhead_pct"]["quartiles_of_pairs"]
    print(
        f"  overhead, median of paired passes: {result['overhead_pct']['median_of_pairs']:+.2f}% "
        f"(quartiles {q1:+.2f}% .. {q3:+.2f}%)"
    )
    print(f"  wrapper around next(): {result['wrapper_ns_per_batch']:.0f} ns per batch")
    print(
        f"  one sample: {per_sample:.0f} us, every {args.interval} s in a background thread "
        f"({result['sample_share_pct']:.3f}% of one core)"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
