"""Write a synthetic corpus to disk, in the file formats of the real recordings.

WHY the format mix: the reader must be benchmarked on what it meets (plain arrays, gzip, JSON
Lines, @rrweb/packer strings) in the proportions of the real corpus, 91 / 12 / 5 / 12 per 120.
Each file is a pure function of (seed, index), so the corpus is byte-identical whatever the
number of worker processes, and a file is written under a temporary name and renamed, so a run
that is killed leaves no half-written session behind.
"""

from __future__ import annotations

import gzip
import logging
import multiprocessing
import os
import time
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import orjson

from rrweb_dali.synth import dom, profile
from rrweb_dali.synth.session import session_events, session_site

logger = logging.getLogger(__name__)

EXTENSIONS: dict[str, str] = {
    "json": ".json",
    "json.gz": ".json.gz",
    "jsonl": ".jsonl",
    "packed": ".packed.json",
}
FILES_PER_FOLDER = 1000
# Sessions per task, all of one site. WHY by site: a process spends ~2 s building a seed's page
# templates; when tasks hold one site each, a small corpus (up to ~4k sessions, one task per
# site) has each site built by one worker only, instead of every worker building all of them.
_CHUNK = 500
# Level 3, not the usual 6: 2.5x faster on this JSON for 7.8x compression instead of 8.9x (the
# recordings shrink ~9x); the readers decompress any level alike.
_GZIP_LEVEL = 3


def _format_table() -> tuple[str, ...]:
    """120 slots holding each format as often as the corpus does, each spread evenly.

    WHY spread rather than shuffled: any 24 consecutive sessions then hold every format, so a
    small test corpus exercises all readers.
    """
    slots: list[str | None] = [None] * sum(profile.FORMAT_WEIGHTS.values())
    size = len(slots)
    for fmt, count in sorted(profile.FORMAT_WEIGHTS.items(), key=lambda kv: kv[1]):
        for k in range(count):
            pos = int((k + 0.5) * size / count)
            while slots[pos % size] is not None:
                pos += 1
            slots[pos % size] = fmt
    return tuple(f for f in slots if f is not None)


_FORMATS = _format_table()


def session_format(seed: int, index: int) -> str:
    """The file format of session ``index``: one of :data:`EXTENSIONS`, fixed by (seed, index)."""
    return _FORMATS[(index + dom.derive_seed(seed, 0xF0F) % len(_FORMATS)) % len(_FORMATS)]


def session_path(out_dir: str | Path, seed: int, index: int) -> Path:
    """``out_dir/NNN/synth-NNNNNN.<ext>``, 1,000 files per folder."""
    ext = EXTENSIONS[session_format(seed, index)]
    return Path(out_dir) / f"{index // FILES_PER_FOLDER:03d}" / f"synth-{index:06d}{ext}"


def encode(events: list[dict], fmt: str) -> bytes:
    """The bytes of a session file in format ``fmt`` (see :data:`EXTENSIONS`)."""
    if fmt == "json":
        return orjson.dumps(events)
    if fmt == "json.gz":
        return gzip.compress(orjson.dumps(events), compresslevel=_GZIP_LEVEL, mtime=0)
    if fmt == "jsonl":
        return b"".join([orjson.dumps(e, option=orjson.OPT_APPEND_NEWLINE) for e in events])
    if fmt == "packed":  # @rrweb/packer's pack(): zlib of the event plus "v", bytes as latin-1
        packed = [
            zlib.compress(orjson.dumps({**e, "v": "v1"}), _GZIP_LEVEL).decode("latin-1")
            for e in events
        ]
        return orjson.dumps(packed)
    raise ValueError(f"unknown format {fmt!r}; expected one of {sorted(EXTENSIONS)}")


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _usable_cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))  # respects taskset / container CPU limits
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _jobs(out_dir: str, seed: int, n: int) -> list[tuple[str, int, tuple[int, ...]]]:
    """The sessions grouped by site, in chunks of at most :data:`_CHUNK`, in index order."""
    by_site: list[list[int]] = [[] for _ in range(dom.SITES_PER_SEED)]
    for index in range(n):
        by_site[session_site(seed, index)].append(index)
    return [
        (out_dir, seed, tuple(indices[a : a + _CHUNK]))
        for indices in by_site
        for a in range(0, len(indices), _CHUNK)
    ]


def _write_sessions(job: tuple[str, int, tuple[int, ...]]) -> tuple[int, int, int, dict[str, int]]:
    """Write the sessions of a job; return (files, bytes, events, files per format)."""
    out_dir, seed, indices = job
    n_bytes = n_events = 0
    formats: Counter[str] = Counter()
    for index in indices:
        fmt = session_format(seed, index)
        events = session_events(seed, index)
        data = encode(events, fmt)
        path = session_path(out_dir, seed, index)
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_atomically(path, data)
        n_bytes += len(data)
        n_events += len(events)
        formats[fmt] += 1
    return len(indices), n_bytes, n_events, dict(formats)


@dataclass
class SynthSummary:
    """What :func:`write_synth_corpus` wrote."""

    sessions: int
    files: int
    bytes: int
    events: int
    seconds: float
    formats: dict[str, int]


def write_synth_corpus(
    out_dir: str | Path,
    n: int = 31_951,
    seed: int = 0,
    workers: int | None = None,
    progress: bool = False,
) -> SynthSummary:
    """Write ``n`` synthetic sessions under ``out_dir`` (``NNN/synth-NNNNNN.<ext>``).

    ``workers`` processes share the work (default: one per usable CPU); the bytes written do
    not depend on it. ``progress`` shows a tqdm bar with files and MB/s.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("*/.synth-*.tmp"):  # left by a run that was killed mid-write
        stale.unlink()
    jobs = _jobs(str(out), seed, n)
    workers = min(len(jobs), workers if workers is not None else _usable_cpus())
    logger.info("writing %d synthetic sessions (seed %d) to %s, %d workers", n, seed, out, workers)
    started = time.perf_counter()
    totals = [0, 0, 0]
    formats: Counter[str] = Counter()
    pool = multiprocessing.get_context().Pool(workers) if workers > 1 else None
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=n, unit="file", desc="synth")
    try:
        results = pool.imap_unordered(_write_sessions, jobs) if pool else map(_write_sessions, jobs)
        for files, n_bytes, n_events, fmts in results:
            totals[0] += files
            totals[1] += n_bytes
            totals[2] += n_events
            formats.update(fmts)
            if bar is not None:
                bar.update(files)
                elapsed = max(1e-9, time.perf_counter() - started)
                bar.set_postfix_str(f"{totals[1] / elapsed / 1e6:.1f} MB/s")
        if pool is not None:
            pool.close()
    finally:
        if bar is not None:
            bar.close()
        if pool is not None:
            pool.terminate()  # a no-op after close() once the work is done; stops it on errors
            pool.join()
    seconds = time.perf_counter() - started
    summary = SynthSummary(
        sessions=n,
        files=totals[0],
        bytes=totals[1],
        events=totals[2],
        seconds=seconds,
        formats={f: formats.get(f, 0) for f in EXTENSIONS},
    )
    logger.info("wrote %d files, %.1f MB in %.1f s", summary.files, summary.bytes / 1e6, seconds)
    return summary
