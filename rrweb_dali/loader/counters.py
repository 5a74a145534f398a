"""The loader's counters: what the training loop received, and where the time went.

Counted as each batch is handed out (never when it is produced ahead), so the figures describe
exactly the batches received. Written by the consumer's thread (and, for builds and finishing
time, by the background thread); read by the profiler from its own thread, which only needs a
consistent-enough snapshot of plain numbers.
"""

from __future__ import annotations

from rrweb_dali.loader.assemble import Finished

_COUNTS = ("batches", "rows", "tokens", "slots", "reads", "bytes", "pipeline_builds")
_TIMES = ("gather_s", "wait_s", "finish_s", "build_s")


class Counters:
    """Totals since the loader was made; ``cache`` adds raw mode's cache tails."""

    def __init__(self, cache=None):
        self.cache = cache  # external_source.raw's CacheStats, or None on shards
        self._counts = dict.fromkeys(_COUNTS, 0)
        self._times = dict.fromkeys(_TIMES, 0.0)

    def received(self, finished: Finished, wait_s: float) -> None:
        """Count one batch as the loop receives it, with the time ``next()`` waited for it."""
        if finished.tail is not None and self.cache is not None:
            self.cache.record(finished.tail)
        rows, width = finished.field("rows"), finished.field("width")
        c = self._counts
        c["batches"] += 1
        c["rows"] += rows
        c["tokens"] += finished.field("tokens")
        c["slots"] += rows * width
        c["reads"] += finished.field("reads")
        c["bytes"] += finished.field("bytes")
        self._times["gather_s"] += finished.field("gather_ns") * 1e-9
        self._times["wait_s"] += wait_s

    def built(self, seconds: float) -> None:
        self._counts["pipeline_builds"] += 1
        self._times["build_s"] += seconds

    def finished(self, seconds: float) -> None:
        self._times["finish_s"] += seconds

    def as_dict(self) -> dict:
        s = {**self._counts, **self._times}
        s["padding_efficiency"] = s["tokens"] / s["slots"] if s["slots"] else 1.0
        return s
