"""Bench: every hostile input of the reader, each read in a fresh subprocess, timed and measured.

The inputs are those of ``rrweb_dali.synth.hostile`` (parse amplification: ``[{},{},...]``,
``{}`` JSON Lines, ``[[],[],...]``, a wrapper of ``{}``; a gzip bomb of 2 GiB of zeros; 400,000
gzip members; a 130-level DOM stored twice; a packed string 20,000 levels deep), at the sizes of
the reports that found them, and the hostile set of the tests
(``rrweb_dali.synth.hostile_set``, so both read the same files). Each file is read with
``load_session`` and the default ``ReadLimits`` in a new interpreter that first imports the
reader and reads one small session, so the numbers are the file's alone. Printed per file:
bytes on disk, decompressed bytes (the whole file's, counted here by streaming), the outcome
(``loaded`` or the reason), seconds inside ``load_session``, the subprocess's peak RSS and its
growth over that warmed-up baseline, MB/s, and the goals:

* memory: peak RSS <= 1.5 GB, and RSS growth <= 4 x the input (the larger of the bytes on disk
  and decompressed) + 8 MiB of allocator granularity, for every file refused (a file that loads
  keeps its events, 4-6x their JSON for recordings: the cap alone applies, its ratio is shown);
* speed: >= 5 MB/s of input (or done within 50 ms: a tiny file's rate is its fixed costs);
* outcome: the one the generator expects (``rrweb_dali.synth.hostile.SHAPES``).

``--quick`` divides the sizes and the byte and event limits by 100 (a smoke test of a few
seconds: the 1.5 GB cap then says nothing).

    python bench/hostile.py [--quick] [--only NAME,...] [--json PATH]
"""

# Run as a script, bench/ comes first on sys.path, where a sibling could shadow a module: take
# it off and import from the repository root.
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]
_REPO = os.path.dirname(_HERE)
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import zlib  # noqa: E402
from pathlib import Path  # noqa: E402

RSS_CAP = 1.5e9  # bytes
RSS_FACTOR = 4  # x the input bytes
RSS_SLACK = 8 << 20
SPEED_GOAL = 5.0  # MB/s of input
SPEED_FLOOR_S = 0.05  # files read in this time pass whatever their size (per-call costs)
QUICK_SCALE = 0.01


def scaled_limits(scale: float):
    from rrweb_dali.ingest import ReadLimits

    base = ReadLimits()
    if scale == 1:
        return base
    # max_memory stays: the deep packed string alone is estimated at ~14 MB
    return dataclasses.replace(
        base, max_bytes=int(base.max_bytes * scale), max_events=int(base.max_events * scale)
    )


# ---------------------------------------------------------------- the child: read one file


def child(path: str, scale: float) -> int:
    """Read ``path`` once and print one JSON line: outcome, seconds, RSS (bytes)."""
    import orjson

    from rrweb_dali.ingest import SessionError, load_session, parse_session_bytes

    limits = scaled_limits(scale)
    warm = orjson.dumps([{"type": 4, "timestamp": 1, "data": {}}, {"type": 3, "timestamp": 2}])
    parse_session_bytes(warm, limits)
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    result: dict = {"baseline_rss": baseline}
    start = time.perf_counter()
    try:
        session = load_session(path, limits)
        report = session.report
        result.update(outcome="loaded", events=report.events, skipped=report.skipped)
        result.update(duplicates=report.duplicates_dropped, bytes_decoded=report.bytes_decoded)
    except SessionError as exc:
        result.update(outcome=exc.reason, detail=exc.detail[:160])
    result["seconds"] = time.perf_counter() - start
    result["peak_rss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps(result))
    return 0


# ---------------------------------------------------------------- the parent


def decompressed_size(path: Path) -> int:
    """The whole file's decompressed bytes, streamed (every gzip member; zlib; else its size)."""
    from rrweb_dali.ingest.decompress import detect_compression

    data = path.read_bytes()
    kind = detect_compression(data)
    if kind is None:
        return len(data)
    wbits = 16 + zlib.MAX_WBITS if kind == "gzip" else zlib.MAX_WBITS
    view, pos, total = memoryview(data), 0, 0
    try:
        while pos < len(view):
            inflater, step, pending = zlib.decompressobj(wbits), 64, b""
            while not inflater.eof:
                if not pending and pos < len(view):
                    pending = view[pos : pos + step]
                    pos, step = pos + len(pending), min(2 * step, 1 << 16)
                out = len(inflater.decompress(pending, 1 << 22))
                total += out
                pending = inflater.unconsumed_tail
                if not out and not pending and pos >= len(view):
                    return total  # cut short: what decoded before the cut
            pos -= len(inflater.unused_data)
            if kind != "gzip" or view[pos : pos + 2] != b"\x1f\x8b":
                break
    except zlib.error:
        pass  # a corrupt stream: what decoded before the damage
    return total


def measure(path: Path, scale: float, timeout: float) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--child", str(path), "--scale", str(scale)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=_REPO)
    except subprocess.TimeoutExpired:
        return {"outcome": "timeout", "seconds": timeout}
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["?"]
        return {"outcome": f"crashed rc={proc.returncode}", "detail": tail[0][:160]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def judge(row: dict) -> None:
    """Add the goal checks to one row."""
    size = max(row["disk_bytes"], row["decompressed_bytes"])
    peak, growth = row.get("peak_rss"), None
    if peak is not None:
        growth = max(0, peak - row["baseline_rss"])
        row["rss_growth"] = growth
        row["growth_x_input"] = growth / size if size else 0.0
        # A file that loads keeps its events: those take what they take (4-6x for recordings),
        # so only the cap applies to it; the 4x is for what the reader pays to refuse a file.
        within = growth <= RSS_FACTOR * size + RSS_SLACK or row["outcome"] == "loaded"
        row["rss_ok"] = peak <= RSS_CAP and within
    else:
        row["rss_ok"] = False
    seconds = row.get("seconds") or 0
    row["mb_per_s"] = size / 1e6 / seconds if seconds > 0 else float("inf")
    allowed = max(size / (SPEED_GOAL * 1e6), SPEED_FLOOR_S)  # tiny files: a fixed cost
    row["speed_ok"] = seconds <= allowed and row["outcome"] != "timeout"
    expected = row.get("expect")
    row["outcome_ok"] = expected is None or row["outcome"] == expected
    row["pass"] = row["rss_ok"] and row["speed_ok"] and row["outcome_ok"]


def print_table(rows: list[dict]) -> None:
    header = (
        f"{'input':<42} {'on disk':>11} {'decompressed':>13} {'outcome':<16} {'seconds':>8} "
        f"{'peak RSS MB':>11} {'growth MB':>9} {'x input':>7} {'MB/s':>8}  goals"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        peak = f"{r['peak_rss'] / 1e6:.0f}" if "peak_rss" in r else "-"
        growth = f"{r['rss_growth'] / 1e6:.0f}" if "rss_growth" in r else "-"
        fails = [k for k in ("rss", "speed", "outcome") if not r[f"{k}_ok"]]
        verdict = "PASS" if r["pass"] else "FAIL (" + ", ".join(fails) + ")"
        outcome = r["outcome"] + ("" if r["outcome_ok"] else f" (want {r['expect']})")
        print(
            f"{r['name']:<42} {r['disk_bytes']:>11,} {r['decompressed_bytes']:>13,} "
            f"{outcome:<16} {r.get('seconds', 0):>8.2f} {peak:>11} {growth:>9} "
            f"{r.get('growth_x_input', 0):>7.2f} "
            f"{r['mb_per_s']:>8.1f}  {verdict}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="sizes and limits / 100 (smoke test)")
    parser.add_argument("--only", default=None, help="comma-separated input names (substrings)")
    parser.add_argument("--no-conftest", action="store_true", help="skip the tests' hostile set")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per file (default 600)")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--scale", type=float, default=1.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args.child, args.scale)

    from bench._data import machine
    from rrweb_dali.synth.hostile import shapes
    from rrweb_dali.synth.hostile_set import write_hostile_inputs

    scale = QUICK_SCALE if args.quick else 1.0
    info = machine()
    print(
        f"{info['date']}  {info['platform']}  {info['processor']}  cpus={info['cpu_count']}  "
        f"{info['memory_gb']} GB  python {info['python']}  load {info['load_avg_at_start'][0]:.1f}"
    )
    limits = scaled_limits(scale)
    print(f"limits: {limits}")
    wanted = args.only.split(",") if args.only else None
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="hostile-") as tmp:
        files: list[tuple[str, Path, str | None]] = []
        for name, shape in shapes(scale).items():
            if wanted and not any(w in name for w in wanted):
                continue
            path = Path(tmp, name)
            path.write_bytes(shape.make())
            files.append((name, path, shape.expect))
        if not args.no_conftest:
            conftest_dir = Path(tmp, "conftest")
            for name in sorted(write_hostile_inputs(conftest_dir)):
                if wanted and not any(w in f"conftest:{name}" for w in wanted):
                    continue
                if (conftest_dir / name).is_file():
                    files.append((f"conftest:{name}", conftest_dir / name, None))
        for name, path, expect in files:
            row = {"name": name, "expect": expect, "disk_bytes": path.stat().st_size}
            row["decompressed_bytes"] = decompressed_size(path)
            row.update(measure(path, scale, args.timeout))
            judge(row)
            rows.append(row)
            path.unlink()
    print_table(rows)
    failed = [r["name"] for r in rows if not r["pass"]]
    print(
        f"goals: peak RSS <= {RSS_CAP / 1e9} GB and growth <= {RSS_FACTOR} x input + "
        f"{RSS_SLACK >> 20} MiB; >= {SPEED_GOAL} MB/s; the expected outcome. "
        + (f"FAILED: {', '.join(failed)}" if failed else f"all {len(rows)} passed")
    )
    if args.json:
        report = {
            "machine": info,
            "settings": {"quick": args.quick, "scale": scale, "limits": dataclasses.asdict(limits)},
            "goals": {
                "rss_cap": RSS_CAP,
                "rss_factor": RSS_FACTOR,
                "rss_slack": RSS_SLACK,
                "mb_per_s": SPEED_GOAL,
            },
            "rows": rows,
            "failed": failed,
        }
        args.json.write_text(json.dumps(report, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
