"""Bench: the structural tokenizer against a byte-level BPE over event JSON, per corpus and per core.

Corpora: ``recorded``, ``fixtures`` and ``wild`` beside the repository (``../shared/corpus/``),
each file read with ``rrweb_dali.ingest.load_session`` (a file it cannot read is skipped and
counted by reason), and ``synthetic``: ``--synth`` sessions of ``rrweb_dali.synth`` plus the first
``--synth-svg`` SVG-heavy ones (animated force graphs and charts). A session's size is its events
as compact JSON (``orjson.dumps``), the same bytes for both tokenizers whatever the file's format.

Bytes per token: ours is ``Tokenizer.encode(events)``; the baseline is a byte-level BPE of the
``tokenizers`` library trained here on all the corpora (``--bpe-vocab``, training time reported,
not counted) encoding each event's JSON. Per corpus: total bytes / total tokens, and the per-file
minimum of ours / BPE (goal: at least 1 on every file).

Speed, per core: ``orjson.loads`` + ``encode`` over the recorded corpus' JSON, best of
``--repeat`` passes, wall and CPU time; beside it ``orjson.loads`` alone (the ratio of the two is
the machine-independent figure) and the BPE (``loads`` + ``dumps`` per event + ``encode_batch``,
RAYON_NUM_THREADS=1, set before ``tokenizers`` is imported, one pass).

    python bench/tokenizer.py [--corpus-root DIR] [--repeat N] [--synth N] [--json PATH]
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
import logging  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import orjson  # noqa: E402

from rrweb_dali.errors import SessionError  # noqa: E402
from rrweb_dali.ingest import load_session  # noqa: E402
from rrweb_dali.ingest.names import portable_name  # noqa: E402
from rrweb_dali.tokenizer import Tokenizer  # noqa: E402

DEFAULT_ROOT = Path(_REPO).parent / "shared" / "corpus"
REAL_CORPORA = ("recorded", "fixtures", "wild")
_NOT_SESSIONS = {"SOURCES.md", "README.md", "MANIFEST.json"}  # documentation beside the files


@dataclass
class Item:
    """One session: where it came from and its events as compact JSON."""

    name: str
    json: bytes


def load_real(directory: Path) -> tuple[list[Item], Counter]:
    """The sessions of a corpus directory, and the files skipped, by reason."""
    items, skipped = [], Counter()
    for path in sorted(p for p in directory.iterdir() if p.is_file()):
        if path.name in _NOT_SESSIONS:
            continue
        try:
            events = load_session(path).events
        except SessionError as exc:
            skipped[exc.reason] += 1
            continue
        except Exception as exc:  # a reader bug: counted visibly, the bench goes on
            skipped[f"crash-{type(exc).__name__}"] += 1
            continue
        items.append(Item(portable_name(path.name), orjson.dumps(events)))
    return items, skipped


def load_synth(n: int, n_svg: int, seed: int) -> list[Item]:
    """Sessions 0..n-1 of the synthetic corpus plus the first ``n_svg`` SVG-heavy ones."""
    from rrweb_dali.synth.session import session_events
    from rrweb_dali.synth.svg import is_svg_session, svg_kind

    indices = list(range(n))
    extra, index = [], n
    while len(extra) < n_svg - sum(is_svg_session(seed, i) for i in indices):
        if is_svg_session(seed, index):
            extra.append(index)
        index += 1
    items = []
    for i in indices + extra:
        kind = f"svg-{svg_kind(seed, i)}" if is_svg_session(seed, i) else "docs"
        items.append(Item(f"synth-{i:06d} ({kind})", orjson.dumps(session_events(seed, i))))
    return items


def best_of(repeat: int, one_pass) -> tuple[float, float]:
    """Best wall and best CPU time (all threads of this process) of ``repeat`` passes. The best
    of several passes, and CPU time, damp the noise of a shared machine."""
    best_wall = best_cpu = float("inf")
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        one_pass()
        best_cpu = min(best_cpu, time.process_time() - cpu)
        best_wall = min(best_wall, time.perf_counter() - wall)
    return best_wall, best_cpu


def event_strings(data: bytes) -> list[str]:
    return [orjson.dumps(event).decode() for event in orjson.loads(data)]


def train_bpe(corpora: dict[str, list[Item]], vocab_size: int):
    from tokenizers import ByteLevelBPETokenizer

    bpe = ByteLevelBPETokenizer()
    start = time.perf_counter()
    bpe.train_from_iterator(
        (s for items in corpora.values() for item in items for s in event_strings(item.json)),
        vocab_size=vocab_size,
        min_frequency=2,
        show_progress=False,
    )
    return bpe, time.perf_counter() - start


def bpe_tokens(bpe, data: bytes) -> int:
    return sum(len(e.ids) for e in bpe.encode_batch(event_strings(data)))


def per_corpus(tok: Tokenizer, bpe, items: list[Item]) -> dict:
    """Bytes per token of both tokenizers over a corpus, and the worst file."""
    files = []
    for item in items:
        ours = len(tok.encode(orjson.loads(item.json)))
        theirs = bpe_tokens(bpe, item.json)
        files.append((item.name, len(item.json), ours, theirs))
    total = sum(f[1] for f in files)
    ours_tokens, bpe_tokens_ = sum(f[2] for f in files), sum(f[3] for f in files)
    ratios = [(f[1] / f[2]) / (f[1] / f[3]) for f in files]
    worst = int(np.argmin(ratios))
    return {
        "sessions": len(files),
        "json_bytes": total,
        "tokens": ours_tokens,
        "bpe_tokens": bpe_tokens_,
        "bytes_per_token": total / ours_tokens,
        "bpe_bytes_per_token": total / bpe_tokens_,
        "min_file_bytes_per_token": min(f[1] / f[2] for f in files),
        "min_ratio_to_bpe": ratios[worst],
        "min_ratio_file": files[worst][0],
        "files_below_bpe": sum(r < 1 for r in ratios),
        "max_tokens_per_event": max(
            max(len(tok.encode([e])) - 2 for e in orjson.loads(item.json)) for item in items
        ),
        "files": [
            {"name": n, "json_bytes": b, "tokens": o, "bpe_tokens": t} for n, b, o, t in files
        ],
    }


def speed(tok: Tokenizer, bpe, blobs: list[bytes], repeat: int) -> dict:
    total = sum(len(b) for b in blobs)

    def ours() -> None:
        for data in blobs:
            tok.encode(orjson.loads(data))

    def parse_only() -> None:
        for data in blobs:
            orjson.loads(data)

    def baseline() -> None:
        for data in blobs:
            bpe_tokens(bpe, data)

    wall, cpu = best_of(repeat, ours)
    parse_wall, parse_cpu = best_of(repeat, parse_only)
    bpe_wall, bpe_cpu = best_of(1, baseline)
    mb = total / 1e6
    return {
        "json_bytes": total,
        "repeat": repeat,
        "mb_per_s": mb / wall,
        "mb_per_cpu_s": mb / cpu,
        "loads_mb_per_s": mb / parse_wall,
        "loads_mb_per_cpu_s": mb / parse_cpu,
        "ratio_to_loads_cpu": parse_cpu / cpu,
        "bpe_mb_per_s": mb / bpe_wall,
        "bpe_mb_per_cpu_s": mb / bpe_cpu,
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
        "load_avg_at_start": os.getloadavg(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus-root", type=Path, default=DEFAULT_ROOT)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--synth", type=int, default=40, help="synthetic sessions 0..N-1")
    parser.add_argument("--synth-svg", type=int, default=8, help="SVG-heavy synthetic sessions")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    parser.add_argument("--bpe-vocab", type=int, default=32_000)
    parser.add_argument("--max-text-bytes", type=int, default=64)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)  # the reader's salvage warnings are not results

    corpora: dict[str, list[Item]] = {}
    skipped: dict[str, dict[str, int]] = {}
    for name in REAL_CORPORA:
        directory = args.corpus_root / name
        if not directory.is_dir():
            print(f"corpus {name}: not found at {directory}, skipped", file=sys.stderr)
            continue
        corpora[name], why = load_real(directory)
        skipped[name] = dict(why)
    if args.synth or args.synth_svg:
        corpora["synthetic"] = load_synth(args.synth, args.synth_svg, args.seed)
    corpora = {k: v for k, v in corpora.items() if v}
    if not corpora:
        print("no sessions to bench", file=sys.stderr)
        return 2

    info = machine()
    print(f"{info['date']}  {info['platform']}  {info['processor']}  cpus={info['cpu_count']}")
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in info['load_avg_at_start'])}")
    tok = Tokenizer(max_text_bytes=args.max_text_bytes)
    bpe, train_seconds = train_bpe(corpora, args.bpe_vocab)
    import tokenizers

    print(
        f"BPE: {bpe.get_vocab_size()} tokens trained on all corpora in {train_seconds:.1f} s "
        f"(not counted), tokenizers {tokenizers.__version__}, RAYON_NUM_THREADS=1\n"
    )
    results = {name: per_corpus(tok, bpe, items) for name, items in corpora.items()}
    header = (
        f"{'corpus':<10} {'files':>5} {'skipped':>18} {'MB JSON':>8} {'B/tok':>6} {'BPE':>5} "
        f"{'min file':>8} {'min ours/BPE':>12} {'<BPE':>4} {'max tok/ev':>10}  worst file"
    )
    print(header)
    for name, r in results.items():
        why = ",".join(f"{k}:{v}" for k, v in sorted(skipped.get(name, {}).items())) or "-"
        print(
            f"{name:<10} {r['sessions']:>5} {why:>18} {r['json_bytes'] / 1e6:>8.1f} "
            f"{r['bytes_per_token']:>6.2f} {r['bpe_bytes_per_token']:>5.2f} "
            f"{r['min_file_bytes_per_token']:>8.2f} {r['min_ratio_to_bpe']:>12.2f} "
            f"{r['files_below_bpe']:>4} {r['max_tokens_per_event']:>10,}  {r['min_ratio_file']}"
        )

    speed_result = None
    if "recorded" in corpora:
        blobs = [item.json for item in corpora["recorded"]]
        s = speed_result = speed(tok, bpe, blobs, args.repeat)
        print(
            f"\nspeed, recorded ({len(blobs)} sessions, {s['json_bytes'] / 1e6:.1f} MB JSON), "
            f"one process, best of {args.repeat}:\n"
            f"  structural (orjson.loads + encode): {s['mb_per_s']:.1f} MB/s wall, "
            f"{s['mb_per_cpu_s']:.1f} MB/cpu-s\n"
            f"  orjson.loads alone:                 {s['loads_mb_per_s']:.1f} MB/s wall, "
            f"{s['loads_mb_per_cpu_s']:.1f} MB/cpu-s (ours at {s['ratio_to_loads_cpu']:.2f}x)\n"
            f"  byte-level BPE (one pass):          {s['bpe_mb_per_s']:.1f} MB/s wall, "
            f"{s['bpe_mb_per_cpu_s']:.1f} MB/cpu-s"
        )
    if args.json:
        result = {
            "machine": info,
            "tokenizer": tok.config(),
            "bpe": {"vocab_size": bpe.get_vocab_size(), "train_seconds": train_seconds},
            "skipped": skipped,
            "corpora": results,
            "speed": speed_result,
        }
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
