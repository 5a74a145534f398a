"""Object-store counters on the wire: what each batch's shard fetching cost, totalled per loader.

A batch source over remote shards appends a *tail* to a batch's ``aux``
(:func:`rrweb_dali.external_source.wire.with_tail`) when its process's fetcher counters
(:data:`rrweb_dali.store.fetcher.COUNTERS` and evictions) moved since the last tail it sent: the
epoch, then their deltas. A batch of a cached epoch then carries none, and costs the consumer no
more than a local one. Deltas, because a source may run in several DALI worker processes: their
sum is the loader's total whatever the number of workers. :class:`StoreStats` is the main
process's side; ``Loader.cache_stats()`` returns its :meth:`~StoreStats.as_dict`.
"""

from __future__ import annotations

import threading

import numpy as np

FIELDS = (
    "hits",
    "misses",
    "downloads",
    "download_bytes",
    "download_ns",
    "wait_ns",
    "shared",
    "evictions",
)


def pack_tail(epoch: int, before: dict[str, int], after: dict[str, int]) -> np.ndarray:
    """The tail of one batch: the epoch, then ``after - before`` in :data:`FIELDS` order."""
    tail = np.empty(1 + len(FIELDS), dtype=np.int64)
    tail[0] = epoch
    tail[1:] = [after[k] - before.get(k, 0) for k in FIELDS]
    return tail


class StoreStats:
    """Totals of the tails of the batches received; safe to read from another thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._totals = dict.fromkeys(FIELDS, 0)
        self._epochs: dict[int, dict[str, int]] = {}

    def record(self, tail: np.ndarray) -> None:
        epoch, deltas = int(tail[0]), tail[1:].tolist()
        with self._lock:
            ep = self._epochs.setdefault(epoch, {"hits": 0, "misses": 0, "downloads": 0})
            for k, d in zip(FIELDS, deltas, strict=True):
                self._totals[k] += d
                if k in ep:
                    ep[k] += d

    def as_dict(self) -> dict:
        """``hits``/``misses``/``evictions``/``bytes`` as the dashboard plots them (``bytes``:
        downloaded), the download and wait times in seconds, and the same per epoch."""
        with self._lock:
            t = dict(self._totals)
            epochs = {e: dict(v) for e, v in sorted(self._epochs.items())}
        for ep in epochs.values():
            ep["kind"] = "cold" if ep["misses"] or ep["downloads"] else "warm"
        return {
            "kind": "store",
            "hits": t["hits"],
            "misses": t["misses"],
            "evictions": t["evictions"],
            "bytes": t["download_bytes"],
            "downloads": t["downloads"],
            "download_bytes": t["download_bytes"],
            "download_s": t["download_ns"] * 1e-9,
            "wait_s": t["wait_ns"] * 1e-9,
            "shared": t["shared"],
            "epochs": epochs,
        }
