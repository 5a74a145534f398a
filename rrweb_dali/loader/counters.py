"""The loader's counters: what the training loop received, and where the time went.

Counted as each batch is handed out (never when it is produced ahead), so the figures describe
exactly the batches received. Written by the consumer's thread (and, for builds and finishing
time, by the background thread); read by the profiler from its own thread, which only needs a
consistent-enough snapshot of plain numbers.
"""

from __future__ import annotations

from rrweb_dali.external_source.wire import META
from rrweb_dali.loader.assemble import Finished

_ROWS, _WIDTH, _TOKENS = META["rows"], META["width"], META["tokens"]
_READS, _GATHER_NS, _BYTES = META["reads"], META["gather_ns"], META["bytes"]
# What each received batch adds to, in the order of Counters._received (a list: the consumer's
# per-batch cost is then a few list additions; measured ~20 us with dicts after an 8 ms step).
_RECEIVED = ("batches", "rows", "tokens", "slots", "reads", "bytes", "gather_s", "wait_s")


class Counters:
    """Totals since the loader was made; ``cache`` adds raw mode's cache tails."""

    def __init__(self, cache=None):
        self.cache = cache  # rrweb_dali.external_source.raw's CacheStats, or None on shards
        self._received = [0, 0, 0, 0, 0, 0, 0.0, 0.0]
        self._builds, self._build_s, self._finish_s = 0, 0.0, 0.0

    def received(self, finished: Finished, wait_s: float) -> None:
        """Count one batch as the loop receives it, with the time ``next()`` waited for it."""
        if finished.tail is not None and self.cache is not None:
            self.cache.record(finished.tail)
        meta, r = finished.meta, self._received
        r[0] += 1
        r[1] += meta[_ROWS]
        r[2] += meta[_TOKENS]
        r[3] += meta[_ROWS] * meta[_WIDTH]
        r[4] += meta[_READS]
        r[5] += meta[_BYTES]
        r[6] += meta[_GATHER_NS] * 1e-9
        r[7] += wait_s

    def built(self, seconds: float) -> None:
        self._builds += 1
        self._build_s += seconds

    def finished(self, seconds: float) -> None:
        self._finish_s += seconds

    def as_dict(self) -> dict:
        s = dict(zip(_RECEIVED, list(self._received), strict=True))
        s.update(pipeline_builds=self._builds, build_s=self._build_s, finish_s=self._finish_s)
        s["padding_efficiency"] = s["tokens"] / s["slots"] if s["slots"] else 1.0
        return s
