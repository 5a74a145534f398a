"""Cache warming: tokenize files into the disk token cache ahead of training, on every core.

``rrweb-dali warm SRC --cache-dir DIR`` runs :func:`warm`; raw-mode packing runs it too, because
its plan needs every file's exact length. Files go to a process pool in chunks; each task opens
the cache, serves or tokenizes its files and makes them durable every ``flush_files`` files (a
segment each time), so a killed warm loses at most that many files per worker and a rerun
continues where it stopped: what is cached is a hit.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass, field

import numpy as np
from rrweb_dali.external_source.raw.files import RawFiles
from rrweb_dali.external_source.raw.token_cache import (
    COUNTER_FIELDS,
    GAUGE_FIELDS,
    CacheOptions,
    TokenCache,
)
from tqdm import tqdm

from rrweb_dali.ingest.names import portable_name
from rrweb_dali.parallel import LocalExecutor

logger = logging.getLogger(__name__)

FLUSH_FILES = 64


@dataclass(frozen=True)
class WarmTask:
    options: CacheOptions
    ids: tuple[int, ...]
    paths: tuple[str, ...]
    flush_files: int = FLUSH_FILES


@dataclass
class WarmResult:
    """What warming did: per-file token counts (0 for a bad file) and summed cache counters."""

    files: int
    lengths: np.ndarray
    counts: dict[str, int]
    # (relpath as portable_name gives it, reason, detail)
    bad: list[tuple[str, str, str]] = field(default_factory=list)
    seconds: float = 0.0
    disk_bytes: int = 0
    disk_entries: int = 0
    namespace: str | None = None
    max_tokens: int = 0

    @property
    def hits(self) -> int:
        return self.counts["memory_hits"] + self.counts["disk_hits"]

    @property
    def bad_by_reason(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for _, reason, _ in self.bad:
            out[reason] = out.get(reason, 0) + 1
        return dict(sorted(out.items()))


def warm_chunk(task: WarmTask) -> dict:
    """Serve or tokenize one chunk of files (runs in a pool worker); returns lengths and counts."""
    cache = TokenCache(task.options)
    before = cache.snapshot()
    lengths, bad = [], []
    for k, (i, path) in enumerate(zip(task.ids, task.paths, strict=True)):
        fetched = cache.get(path)
        if fetched.tokens is None:
            lengths.append(0)
            bad.append((i, fetched.error or "io_error", fetched.detail))
        else:
            lengths.append(int(fetched.tokens.size))
        if (k + 1) % task.flush_files == 0:
            cache.flush()
    cache.flush()
    after = cache.snapshot()
    n = len(COUNTER_FIELDS)
    return {
        "ids": list(task.ids),
        "lengths": lengths,
        "bad": bad,
        "counts": {k: after[j] - before[j] for j, k in enumerate(COUNTER_FIELDS)},
        "gauges": dict(zip(GAUGE_FIELDS, after[n:], strict=True)),
    }


def warm(
    files: RawFiles,
    options: CacheOptions,
    workers: int | None = None,
    progress: bool = False,
    chunk_files: int = 256,
) -> WarmResult:
    """Tokenize every file of ``files`` into ``options.cache_dir`` (hits cost a lookup)."""
    if chunk_files < 1:
        raise ValueError(f"chunk_files must be at least 1, got {chunk_files}")
    executor = LocalExecutor(workers)
    n = len(files)
    # Enough chunks to keep every worker busy to the end, not so many that each reopens the
    # cache for a handful of files.
    per = max(1, min(chunk_files, -(-n // (4 * executor.workers))))
    tasks = [
        WarmTask(options, tuple(range(a, min(a + per, n))), files.paths[a : a + per])
        for a in range(0, n, per)
    ]
    lengths = np.zeros(n, dtype=np.int64)
    counts = dict.fromkeys(COUNTER_FIELDS, 0)
    bad: list[tuple[str, str, str]] = []
    gauges: dict[str, int] = {}
    start = time.perf_counter()
    with tqdm(
        total=n, unit="file", desc="warm", file=sys.stderr, disable=not progress, dynamic_ncols=True
    ) as bar:
        for res in executor.map_unordered(warm_chunk, tasks):
            lengths[res["ids"]] = res["lengths"]
            for k, v in res["counts"].items():
                counts[k] += v
            bad += [
                (portable_name(files.relpaths[i]), reason, detail)
                for i, reason, detail in res["bad"]
            ]
            gauges = (
                res["gauges"]
                if res["gauges"]["disk_bytes"] >= gauges.get("disk_bytes", 0)
                else gauges
            )
            bar.set_postfix_str(
                f"tokenized {counts['tokenized']}, cached {counts['memory_hits'] + counts['disk_hits']}, "
                f"bad {len(bad)}",
                refresh=False,
            )
            bar.update(len(res["ids"]))
    seconds = time.perf_counter() - start
    for relpath, reason, detail in sorted(bad):
        logger.info("bad file %s: %s (%s)", relpath, reason, detail)
    return WarmResult(
        files=n,
        lengths=lengths,
        counts=counts,
        bad=sorted(bad),
        seconds=seconds,
        disk_bytes=int(gauges.get("disk_bytes", 0)),
        disk_entries=int(gauges.get("disk_entries", 0)),
        namespace=options.namespace() if options.cache_dir else None,
        max_tokens=options.max_tokens,
    )
