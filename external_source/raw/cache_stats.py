"""Token cache counters from the worker processes to the main process, riding on each batch.

The raw batch source runs in DALI's worker processes, whose memory the main process cannot read.
So every batch carries its own accounting: the ``aux`` vector of the batch gets a source-specific
*tail* of int64 values (:func:`rrweb_dali.external_source.wire.with_tail`; the loader finds it as
``wire.decode(aux).tail``)::

    [epoch, worker pid, counter deltas (COUNTER_FIELDS), gauges (GAUGE_FIELDS),
     n_bad, bad file ids (n_bad), bad reason codes (n_bad)]

Counter *deltas* (the work done to produce this batch) add up exactly over the batches the loop
received; gauges (bytes held) are the worker's latest values. Bad file ids travel too, so the
main process can log each skipped file once, with its reason, whichever worker met it.

:class:`CacheStats` is the main process's side: it strips tails and keeps the totals that
``Loader.cache_stats()`` returns (and the profiler writes into every sample).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

import numpy as np
from rrweb_dali.external_source.raw.token_cache import COUNTER_FIELDS, GAUGE_FIELDS

from rrweb_dali.errors import REASONS
from rrweb_dali.ingest.names import portable_name

logger = logging.getLogger(__name__)

REASON_CODES = tuple(sorted(REASONS))
_N_COUNTERS = len(COUNTER_FIELDS)
_N_GAUGES = len(GAUGE_FIELDS)
_FIXED = 2 + _N_COUNTERS + _N_GAUGES + 1  # epoch, pid, counters, gauges, n_bad


def pack_tail(
    epoch: int,
    worker: int,
    before: Sequence[int],
    after: Sequence[int],
    bad: Sequence[tuple[int, str]],
) -> np.ndarray:
    """The tail of one batch: counter deltas ``after - before``, the gauges of ``after``."""
    n_bad = len(bad)
    tail = np.empty(_FIXED + 2 * n_bad, dtype=np.int64)
    tail[0], tail[1] = epoch, worker
    a = np.asarray(after, dtype=np.int64)
    tail[2 : 2 + _N_COUNTERS] = a[:_N_COUNTERS] - np.asarray(before[:_N_COUNTERS], dtype=np.int64)
    tail[2 + _N_COUNTERS : _FIXED - 1] = a[_N_COUNTERS:]
    tail[_FIXED - 1] = n_bad
    if n_bad:
        tail[_FIXED : _FIXED + n_bad] = [i for i, _ in bad]
        tail[_FIXED + n_bad : _FIXED + 2 * n_bad] = [REASON_CODES.index(r) for _, r in bad]
    return tail


class CacheStats:
    """Totals of the tails of the batches received; safe to read from another thread."""

    def __init__(self, relpaths: Sequence[str]):
        self._relpaths = relpaths
        self._lock = threading.Lock()
        self._totals = dict.fromkeys(COUNTER_FIELDS, 0)
        self._gauges: dict[int, np.ndarray] = {}  # worker pid -> its latest gauges
        self._epochs: dict[int, dict[str, int]] = {}
        self._bad: dict[int, str] = {}
        self._bad_rows = 0

    def record(self, tail: np.ndarray) -> None:
        """Add one received batch's tail (``wire.decode(aux).tail``, a numpy array)."""
        epoch, worker = int(tail[0]), int(tail[1])
        deltas = tail[2 : 2 + _N_COUNTERS].tolist()
        gauges = tail[2 + _N_COUNTERS : _FIXED - 1].copy()
        n_bad = int(tail[_FIXED - 1])
        ids = tail[_FIXED : _FIXED + n_bad].tolist()
        codes = tail[_FIXED + n_bad : _FIXED + 2 * n_bad].tolist()
        new_bad = []
        with self._lock:
            for k, d in zip(COUNTER_FIELDS, deltas, strict=True):
                self._totals[k] += d
            self._gauges[worker] = gauges
            ep = self._epochs.setdefault(epoch, {"hits": 0, "misses": 0, "batches": 0})
            ep["hits"] += deltas[COUNTER_FIELDS.index("memory_hits")]
            ep["hits"] += deltas[COUNTER_FIELDS.index("disk_hits")]
            ep["misses"] += deltas[COUNTER_FIELDS.index("tokenized")]
            ep["batches"] += 1
            self._bad_rows += n_bad
            for i, code in zip(ids, codes, strict=True):
                if i not in self._bad:
                    self._bad[i] = REASON_CODES[code]
                    new_bad.append((i, REASON_CODES[code]))
        for i, reason in new_bad:  # once per file, whichever worker met it and however often
            where = (
                portable_name(self._relpaths[i]) if 0 <= i < len(self._relpaths) else f"file #{i}"
            )
            logger.warning("raw file skipped (%s): %s", reason, where)

    def as_dict(self) -> dict:
        """``hits``/``misses``/``evictions``/``bytes`` (what the dashboard plots) and the detail."""
        with self._lock:
            t = dict(self._totals)
            gauges = np.sum(list(self._gauges.values()), axis=0) if self._gauges else None
            disk_now = max((int(g[2]) for g in self._gauges.values()), default=0)
            disk_entries = max((int(g[3]) for g in self._gauges.values()), default=0)
            epochs = {e: dict(v) for e, v in sorted(self._epochs.items())}
            bad = dict(self._bad)
            bad_rows = self._bad_rows
            workers = len(self._gauges)
        memory_bytes = 0 if gauges is None else int(gauges[0])
        memory_entries = 0 if gauges is None else int(gauges[1])
        by_reason: dict[str, int] = {}
        for reason in bad.values():
            by_reason[reason] = by_reason.get(reason, 0) + 1
        for ep in epochs.values():
            ep["kind"] = "cold" if ep["misses"] else "warm"
        return {
            "hits": t["memory_hits"] + t["disk_hits"],
            "misses": t["tokenized"],
            "evictions": t["memory_evictions"] + t["disk_evictions"],
            # Disk bytes are shared by every worker (one directory): the largest view, not a sum.
            "bytes": memory_bytes + disk_now,
            "memory": {
                "hits": t["memory_hits"],
                "misses": t["memory_misses"],
                "evictions": t["memory_evictions"],
                "bytes": memory_bytes,
                "entries": memory_entries,
            },
            "disk": {
                "hits": t["disk_hits"],
                "misses": t["disk_misses"],
                "content_hits": t["content_hits"],
                "evictions": t["disk_evictions"],
                "appended": t["disk_appended"],
                "bytes": disk_now,
                "entries": disk_entries,
            },
            "invalidations": t["invalidations"],
            "corrupt": t["corrupt"],
            "tokenize_s": t["tokenize_ns"] * 1e-9,
            "cached_read_s": t["cached_ns"] * 1e-9,
            "write_s": t["write_ns"] * 1e-9,
            "bytes_read": t["bytes_read"],
            "tokens": t["tokens"],
            "bad_files": len(bad),
            "bad_rows": bad_rows,
            "bad_by_reason": dict(sorted(by_reason.items())),
            "workers": workers,
            "epochs": {str(e): v for e, v in epochs.items()},
            "cold_epochs": sum(v["kind"] == "cold" for v in epochs.values()),
            "warm_epochs": sum(v["kind"] == "warm" for v in epochs.values()),
        }
