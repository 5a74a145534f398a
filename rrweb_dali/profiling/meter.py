"""Turning cumulative counters into sample lines and a summary; ``ThroughputMeter`` for bench loops.

Every producer of run files (the loader hook, ``rrweb-dali profile``, the bench variants) goes
through :class:`SampleBuilder`, so the same field means the same thing in every run the dashboard
overlays: counters are cumulative, rates are over the interval since the previous sample, and the
summary's medians and p95 cover the steady state only (the samples after the warm-up).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator

import numpy as np

from rrweb_dali.profiling.memory import loader_memory
from rrweb_dali.profiling.runfiles import COUNTERS, MEMORY_FIELDS, STAGES, RunWriter
from rrweb_dali.profiling.verdict import assess

STEADY_FIELDS = ("samples_per_s", "tokens_per_s", "padding_efficiency", "wait_share")


def _ratio(num: float | None, den: float | None) -> float | None:
    if num is None or den is None or den <= 0:
        return None
    return num / den


def _round(x: float | None, digits: int = 6) -> float | None:
    return None if x is None else round(float(x), digits)


class SampleBuilder:
    """Builds sample records from cumulative counters and keeps what the summary needs.

    ``memory=False`` leaves the memory readings out (tests that want exact, machine-free records).
    Intervals shorter than ``min_rate_dt`` (the stub between the last periodic sample and the
    final one) get null rates: a few milliseconds say nothing about throughput.
    """

    def __init__(
        self, gpu_device: int | None = None, memory: bool = True, min_rate_dt: float = 0.0
    ):
        self._gpu_device = gpu_device
        self._memory = memory
        self._min_rate_dt = float(min_rate_dt)
        self._prev: dict | None = None
        self._steady: dict[str, list[float]] = {k: [] for k in STEADY_FIELDS}
        self._peaks: dict[str, int | None] = dict.fromkeys(MEMORY_FIELDS)
        self.warmup_end_s: float | None = None
        self.samples = 0
        self.first: dict | None = None
        self.warmup_record: dict | None = None  # the sample that ends the warm-up
        self.last: dict | None = None

    def memory(self) -> dict[str, int | None]:
        """The whole loader's memory now (:func:`rrweb_dali.profiling.memory.loader_memory`)."""
        if not self._memory:
            return dict.fromkeys(MEMORY_FIELDS)
        return loader_memory(self._gpu_device)

    def window_records(self) -> list[dict]:
        """The samples that bound the run and its steady state (first, warm-up end, last): all
        :func:`rrweb_dali.profiling.figures.steady_window` needs, without keeping every sample."""
        out: list[dict] = []
        for rec in (self.first, self.warmup_record, self.last):
            if rec is not None and all(rec is not r for r in out):
                out.append(rec)
        return out

    def build(
        self,
        t: float,
        counters: dict,
        stages: dict[str, float | None] | None = None,
        loop_wait_s: float | None = None,
        cache: dict | None = None,
        extra: dict | None = None,
    ) -> dict:
        """One sample at time ``t`` (seconds since the run started) from cumulative counters
        (``batches``, ``rows``, ``tokens``, ``slots``; tokens/slots may be None when unknown)."""
        cur = {k: counters.get(k) for k in COUNTERS}
        cur["batches"] = int(cur["batches"] or 0)
        cur["rows"] = int(cur["rows"] or 0)
        prev = self._prev
        if prev is not None and loop_wait_s is not None and prev["loop_wait_s"] is not None:
            loop_wait_s = max(loop_wait_s, prev["loop_wait_s"])  # a racy read never goes back
        rec: dict = {"t": _round(t), **cur}
        if prev is None or t - prev["t"] < self._min_rate_dt or t <= prev["t"]:
            rates = dict.fromkeys(STEADY_FIELDS)
        else:
            dt = t - prev["t"]

            def delta(key: str, _cur=cur, _prev=prev) -> float | None:
                a, b = _cur.get(key), _prev.get(key)
                return None if a is None or b is None else a - b

            wait = None
            if loop_wait_s is not None and prev["loop_wait_s"] is not None:
                wait = loop_wait_s - prev["loop_wait_s"]
            rates = {
                "samples_per_s": _ratio(delta("rows"), dt),
                "tokens_per_s": _ratio(delta("tokens"), dt),
                "padding_efficiency": _ratio(delta("tokens"), delta("slots")),
                "wait_share": _ratio(wait, dt),
            }
        rec.update({k: _round(v) for k, v in rates.items()})
        mem = self.memory()
        rec.update(mem)
        for k, v in mem.items():
            if v is not None:
                self._peaks[k] = max(v, self._peaks[k] or 0)
        rec["stages"] = {s: _round((stages or {}).get(s)) for s in STAGES}
        rec["loop_wait_s"] = _round(loop_wait_s)
        if cache is not None:
            rec["cache"] = dict(cache)
        if extra:
            rec.update(extra)
        # Steady state: intervals that began after the first batch had arrived.
        if prev is not None and prev["batches"] > 0:
            for k in STEADY_FIELDS:
                if rates[k] is not None:
                    self._steady[k].append(rates[k])
        elif self.warmup_end_s is None and cur["batches"] > 0:
            self.warmup_end_s = rec["t"]
            self.warmup_record = rec
        self._prev = {"t": t, **cur, "loop_wait_s": loop_wait_s}
        self.samples += 1
        if self.first is None:
            self.first = rec
        self.last = rec
        return rec

    def summary(self, meta: dict | None = None, epochs: list[dict] | None = None) -> dict:
        """Totals (from the last sample), whole-run rates, steady-state medians and p95, peaks,
        the passes ``epochs`` and the verdict on ``meta`` (the run's meta.json) and them."""
        last = self.last or {}
        duration = float(last.get("t") or 0.0)
        rows, tokens, slots = last.get("rows"), last.get("tokens"), last.get("slots")
        stats = {k: np.asarray(v, dtype=float) for k, v in self._steady.items()}
        out = {
            "totals": {
                **{k: last.get(k) for k in COUNTERS},
                "stages": last.get("stages"),
                "loop_wait_s": last.get("loop_wait_s"),
                **({"cache": last["cache"]} if "cache" in last else {}),
            },
            "rates": {
                "samples_per_s": _round(_ratio(rows, duration)),
                "tokens_per_s": _round(_ratio(tokens, duration)),
                "padding_efficiency": _round(_ratio(tokens, slots)),
                "wait_share": _round(_ratio(last.get("loop_wait_s"), duration)),
            },
            "median": {k: _round(np.median(a)) if a.size else None for k, a in stats.items()},
            "p95": {k: _round(np.percentile(a, 95)) if a.size else None for k, a in stats.items()},
            "peak": dict(self._peaks),
            "warmup_end_s": self.warmup_end_s,
            "samples": self.samples,
            "epochs": list(epochs or []),
        }
        out.update(assess(meta or {}, self.window_records(), out))
        return out


def batch_counts(batch) -> tuple[int, int | None, int | None]:
    """``(rows, real tokens, padded slots)`` of a batch dict with ``input_ids`` and either
    ``lengths`` or ``attention_mask`` (tensors or arrays). Reading a count off a GPU tensor waits
    for the GPU, so bench loops over device batches should pass counts they already know."""
    ids = batch["input_ids"]
    rows = int(ids.shape[0])
    slots = int(np.prod(ids.shape))
    if "lengths" in batch:
        tokens = int(batch["lengths"].sum())
    elif "attention_mask" in batch:
        tokens = int(batch["attention_mask"].sum())
    else:
        tokens = None
    return rows, tokens, slots


class ThroughputMeter:
    """Per-batch bookkeeping for a bench loop that writes the same run files as the profiler.

    ``for batch in meter.wrap(loader): ...; meter.batch(rows, tokens, slots)`` times how long the
    loop waited for each batch (the time spent in ``next``), counts rows and tokens, and appends a
    sample whenever ``interval_s`` has passed; :meth:`finish` writes the last sample and the
    summary. Sampling happens in the caller's thread, between batches, so it needs no locking.
    """

    def __init__(
        self,
        writer: RunWriter,
        interval_s: float = 0.5,
        gpu_device: int | None = None,
        memory: bool = True,
    ):
        self.writer = writer
        self.interval_s = float(interval_s)
        self.builder = SampleBuilder(gpu_device, memory=memory, min_rate_dt=interval_s / 4)
        self.counters: dict[str, int | None] = {"batches": 0, "rows": 0, "tokens": 0, "slots": 0}
        self.loop_wait_s = 0.0
        self.stages: dict[str, float | None] = {}
        self.cache: dict | None = None
        self._next_sample = self.interval_s
        writer.sample(self.builder.build(writer.elapsed(), self.counters, None, 0.0))

    def wrap(self, iterable: Iterable) -> Iterator:
        """Yield from ``iterable``, adding the time each ``next`` took to the loop's wait."""
        it = iter(iterable)
        clock = time.perf_counter
        while True:
            t0 = clock()
            try:
                item = next(it)
            except StopIteration:
                self.loop_wait_s += clock() - t0
                return
            self.loop_wait_s += clock() - t0
            yield item

    def batch(
        self,
        rows: int,
        tokens: int | None = None,
        slots: int | None = None,
        *,
        stages: dict[str, float | None] | None = None,
        cache: dict | None = None,
    ) -> None:
        """Count one batch; ``stages``/``cache`` are cumulative values when the variant has them.
        Unknown ``tokens``/``slots`` make the token rates and padding efficiency null."""
        c = self.counters
        c["batches"] += 1
        c["rows"] += int(rows)
        for key, value in (("tokens", tokens), ("slots", slots)):
            c[key] = None if value is None or c[key] is None else c[key] + int(value)
        if stages is not None:
            self.stages = stages
        if cache is not None:
            self.cache = cache
        if self.writer.elapsed() >= self._next_sample:
            self.sample()

    def sample(self) -> dict:
        t = self.writer.elapsed()
        self._next_sample = t + self.interval_s
        rec = self.builder.build(t, self.counters, self.stages, self.loop_wait_s, self.cache)
        return self.writer.sample(rec)

    def finish(self, status: str = "finished", extra: dict | None = None) -> dict:
        """Write the final sample and the summary; returns the summary."""
        self.sample()
        summary = {**self.builder.summary(self.writer.meta), **(extra or {})}
        self.writer.finish(summary, status=status)
        return summary
