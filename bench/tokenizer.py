"""Bench: the structural tokenizer against a byte-level BPE over event JSON, per core.

Both sides start from the same bytes of the real corpus (each plain ``.json`` session read once)
and pay for ``orjson.loads``; ours then calls ``Tokenizer.encode``, the baseline serialises each
event with ``orjson.dumps`` and encodes the strings with ``encode_batch`` of a byte-level BPE from
the ``tokenizers`` library, trained here on the same corpus (training time reported, not counted).
The baseline runs with RAYON_NUM_THREADS=1, set in this process before ``tokenizers`` is imported,
so both numbers are per core. Each figure is the best of ``--repeat`` passes over the corpus.

    python bench/tokenizer.py [--corpus DIR] [--repeat N] [--json PATH]
"""

# Run as a script, bench/ comes first on sys.path, where a sibling could shadow a module: take
# it off before anything else is imported, and import from the repository root.
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]
_REPO = os.path.dirname(_HERE)
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)
os.environ["RAYON_NUM_THREADS"] = "1"  # the BPE baseline single-threaded: per-core numbers

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import orjson  # noqa: E402

from rrweb_dali.tokenizer import Tokenizer  # noqa: E402

DEFAULT_CORPUS = Path(_REPO).parent / "shared" / "corpus" / "recorded"


def load_corpus(directory: Path, max_files: int | None) -> list[bytes]:
    """Bytes of the plain JSON-array sessions (packed arrays of strings are left out)."""
    blobs = []
    for path in sorted(directory.glob("*.json")):
        data = path.read_bytes()
        if data.lstrip()[:2] == b'["':  # @rrweb/packer output: not plain events
            continue
        blobs.append(data)
        if max_files and len(blobs) >= max_files:
            break
    return blobs


def best_of(repeat: int, one_pass) -> tuple[float, float, int]:
    """Best wall and best CPU time (all threads of this process) of ``repeat`` passes, and the
    token count. The best of several passes, and CPU time, damp the noise of a shared machine."""
    best_wall = best_cpu = float("inf")
    tokens = 0
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        tokens = one_pass()
        best_cpu = min(best_cpu, time.process_time() - cpu)
        best_wall = min(best_wall, time.perf_counter() - wall)
    return best_wall, best_cpu, tokens


def bench_ours(blobs: list[bytes], repeat: int, max_text_bytes: int) -> dict:
    tok = Tokenizer(max_text_bytes=max_text_bytes)

    def one_pass() -> int:
        n = 0
        for data in blobs:
            n += len(tok.encode(orjson.loads(data)))
        return n

    def parse_only() -> int:
        for data in blobs:
            orjson.loads(data)
        return 0

    seconds, cpu_seconds, tokens = best_of(repeat, one_pass)
    parse_seconds, parse_cpu_seconds, _ = best_of(repeat, parse_only)
    return {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "tokens": tokens,
        "parse_seconds": parse_seconds,
        "parse_cpu_seconds": parse_cpu_seconds,
        "config": tok.config(),
    }


def event_strings(data: bytes) -> list[str]:
    return [orjson.dumps(event).decode() for event in orjson.loads(data)]


def bench_bpe(blobs: list[bytes], repeat: int, vocab_size: int) -> dict:
    import tokenizers
    from tokenizers import ByteLevelBPETokenizer

    bpe = ByteLevelBPETokenizer()
    start = time.perf_counter()
    bpe.train_from_iterator(
        (s for data in blobs for s in event_strings(data)),
        vocab_size=vocab_size,
        min_frequency=2,
        show_progress=False,
    )
    train_seconds = time.perf_counter() - start

    def one_pass() -> int:
        n = 0
        for data in blobs:
            for encoding in bpe.encode_batch(event_strings(data)):
                n += len(encoding.ids)
        return n

    seconds, cpu_seconds, tokens = best_of(repeat, one_pass)
    return {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "tokens": tokens,
        "train_seconds": train_seconds,
        "vocab_size": bpe.get_vocab_size(),
        "tokenizers_version": tokenizers.__version__,
        "threads": os.environ["RAYON_NUM_THREADS"],
    }


def machine() -> dict:
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "orjson": orjson.__version__,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    parser.add_argument("--bpe-vocab", type=int, default=32_000)
    parser.add_argument("--max-text-bytes", type=int, default=64)
    parser.add_argument("--max-files", type=int, default=None, help="first N sessions only")
    args = parser.parse_args(argv)

    if not args.corpus.is_dir():
        print(f"corpus not found: {args.corpus}", file=sys.stderr)
        return 2
    blobs = load_corpus(args.corpus, args.max_files)
    if not blobs:
        print(f"no plain .json sessions in {args.corpus}", file=sys.stderr)
        return 2
    total = sum(len(b) for b in blobs)
    sizes = sorted(len(b) for b in blobs)
    info = machine()
    print(f"{info['date']}  {info['platform']}  {info['processor']}  cpus={info['cpu_count']}")
    print(
        f"corpus: {len(blobs)} sessions, {total / 1e6:.1f} MB JSON, "
        f"median {sizes[len(sizes) // 2] / 1e3:.0f} KB; best of {args.repeat} passes, one process"
    )

    ours = bench_ours(blobs, args.repeat, args.max_text_bytes)
    bpe = bench_bpe(blobs, args.repeat, args.bpe_vocab)
    rows = []
    for name, r in (
        ("structural (orjson.loads + encode)", ours),
        (f"byte-level BPE {bpe['vocab_size']} (loads+dumps+encode_batch)", bpe),
    ):
        r["mb_per_s"] = total / 1e6 / r["seconds"]
        r["mb_per_cpu_s"] = total / 1e6 / r["cpu_seconds"]
        r["tokens_per_s"] = r["tokens"] / r["seconds"]
        r["bytes_per_token"] = total / r["tokens"]
        rows.append((name, r))
    ratio = ours["mb_per_s"] / bpe["mb_per_s"]
    ratio_cpu = ours["mb_per_cpu_s"] / bpe["mb_per_cpu_s"]

    header = f"{'method':<56} {'MB/s wall':>9} {'MB/cpu-s':>8} {'Mtok/s':>7} {'B/token':>8}"
    print(f"\n{header} {'tokens':>10}")
    for name, r in rows:
        print(
            f"{name:<56} {r['mb_per_s']:>9.1f} {r['mb_per_cpu_s']:>8.1f} "
            f"{r['tokens_per_s'] / 1e6:>7.2f} {r['bytes_per_token']:>8.1f} {r['tokens']:>10,}"
        )
    print(f"\nratio ours / BPE, per core: {ratio:.1f}x (wall), {ratio_cpu:.1f}x (CPU time)")
    print(
        f"orjson.loads alone: {total / 1e6 / ours['parse_seconds']:.1f} MB/s wall, "
        f"{total / 1e6 / ours['parse_cpu_seconds']:.1f} MB/cpu-s"
    )
    print(
        f"BPE: trained in {bpe['train_seconds']:.1f} s (not counted), "
        f"tokenizers {bpe['tokenizers_version']}, RAYON_NUM_THREADS={bpe['threads']}"
    )
    if args.json:
        result = {
            "machine": info,
            "corpus": {"dir": args.corpus.name, "sessions": len(blobs), "json_bytes": total},
            "repeat": args.repeat,
            "structural": ours,
            "bpe": bpe,
            "ratio_mb_per_s": ratio,
            "ratio_mb_per_cpu_s": ratio_cpu,
        }
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
