"""A run's figures: the steady state, the warm-up, cold and warm epochs, and where the time goes.

Pure functions of the run files' records (sample lines and the summary's ``epochs``), shared by
the verdict (:mod:`.verdict`), the dashboard and the HTML report, so all three say the same.

The steady state is the window from the first sample by which a batch had arrived (the end of the
warm-up: pipeline build, worker start, first fill) to the last sample; its figures are the
differences of the cumulative counters over that window, so a rate is exact whatever the
sampling interval. A run too short to have a window uses the whole run and says so
(``steady["window"] == "whole run"``).

Stage times are work summed wherever it ran (DALI threads, worker processes), so per batch they
may exceed the wall time per batch when the work runs in parallel; the loop's wait and its own
time (the step) are wall time and add up to the wall time per batch.

A dataset in an object store adds the *shard waits*: seconds the batch source blocked until a
shard it needed was downloaded (not part of its gather time), and :func:`store_totals` /
``figures["store"]``: downloads, their bytes and seconds, hits and misses.
"""

from __future__ import annotations

from collections.abc import Sequence

from rrweb_dali.profiling.runfiles import STORE_CACHE_KIND, STORE_FIELDS

MIB = 1024 * 1024
# What goes into "where the time goes", in pipeline order: (key, label, measured where).
PARTS = (
    ("gather", "source gather", "all modes"),
    ("shard_wait", "waiting for shard downloads", "s3:// datasets"),
    ("tokenize", "tokenizing", "raw mode"),
    ("cache_read", "cache reads", "raw mode"),
    ("dali", "DALI (copy, cast)", "never: inside the DALI graph, not timed on its own"),
    ("pad", "padding / finish", "all modes"),
    ("wait", "loop waits for input", "all modes"),
    ("step", "step (the loop's own time)", "all modes"),
)
PART_LABELS = {k: label for k, label, _ in PARTS}
# Parts that are work of the loader (summed over threads and workers) vs wall time of the loop.
WORK_PARTS = ("gather", "shard_wait", "tokenize", "cache_read", "dali", "pad")
# Parts only a run over an object store has: a local run does not list them as unmeasured.
STORE_PARTS = ("shard_wait",)
# The store counters whose differences make a window's store figures.
STORE_COUNTERS = ("hits", "misses", *STORE_FIELDS)
LOOP_PARTS = ("wait", "step")


def _f(x) -> float | None:
    return None if x is None else float(x)


def _delta(a, b) -> float | None:
    return None if a is None or b is None else float(a) - float(b)


def _div(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b <= 0 else a / b


def steady_window(samples: Sequence[dict]) -> tuple[dict, dict, str] | None:
    """``(start, end, kind)``: the samples bounding the steady state, ``kind`` "steady"; or the
    first and last samples and "whole run" when no interval follows the warm-up; None without
    two samples."""
    if not samples:
        return None
    last = samples[-1]
    start = next((r for r in samples if int(r.get("batches") or 0) > 0), None)
    if start is not None and float(last.get("t") or 0) > float(start.get("t") or 0):
        return start, last, "steady"
    first = samples[0]
    if float(last.get("t") or 0) > float(first.get("t") or 0):
        return first, last, "whole run"
    return None


def _cache_time(rec: dict, key: str) -> float | None:
    cache = rec.get("cache")
    return _f(cache.get(key)) if isinstance(cache, dict) else None


def store_cache(rec: dict | None) -> dict | None:
    """A sample's ``cache`` object when it is an object store's (``"kind": "store"``)."""
    cache = (rec or {}).get("cache")
    return cache if isinstance(cache, dict) and cache.get("kind") == STORE_CACHE_KIND else None


def store_window(start: dict | None, end: dict, loop_wait_s: float | None = None) -> dict | None:
    """The store's counters over a window (a start without a store cache counts from zero),
    with the download rate (MiB over the downloads' summed seconds: what one download stream
    achieved), the hit rate of shard uses and the shard waits' share of the loop's wait; None
    when ``end`` has no store cache."""
    s1 = store_cache(end)
    if s1 is None:
        return None
    s0 = store_cache(start) or {}
    out: dict = {}
    for k in STORE_COUNTERS:
        d = _delta(s1.get(k, 0), s0.get(k, 0))
        out[k] = None if d is None else (d if k.endswith("_s") else round(d))
    uses = (out["hits"] or 0) + (out["misses"] or 0)
    out["download_mib"] = None if out["download_bytes"] is None else out["download_bytes"] / MIB
    out["download_mib_per_s"] = _div(out["download_mib"], out["download_s"])
    out["hit_rate"] = _div(out["hits"], float(uses))
    out["wait_share_of_loop_wait"] = _div(out["wait_s"], loop_wait_s)
    return out


def store_totals(samples: Sequence[dict]) -> dict | None:
    """The whole run's store figures (:func:`store_window` from zero to the last sample with a
    store cache), or None for a run that reads local shards."""
    last = next((r for r in reversed(samples) if store_cache(r) is not None), None)
    if last is None:
        return None
    return store_window(None, last, _f(last.get("loop_wait_s")))


def window_figures(start: dict, end: dict) -> dict:
    """Counter differences and rates between two samples (see the module doc)."""
    dt = _delta(end.get("t"), start.get("t"))
    out: dict = {"t0": _f(start.get("t")), "t1": _f(end.get("t")), "seconds": dt}
    for key in ("batches", "rows", "tokens", "slots", "loop_wait_s"):
        out[key] = _delta(end.get(key), start.get(key))
    s0, s1 = start.get("stages") or {}, end.get("stages") or {}
    stages = {s: _delta(s1.get(s), s0.get(s)) for s in ("read", "pad")}
    cache = {
        k: _delta(_cache_time(end, k), _cache_time(start, k))
        for k in ("tokenize_s", "cached_read_s", "misses", "hits")
    }
    batches = out["batches"]
    out.update(
        samples_per_s=_div(out["rows"], dt),
        tokens_per_s=_div(out["tokens"], dt),
        padding_efficiency=_div(out["tokens"], out["slots"]),
        wait_share=_div(out["loop_wait_s"], dt),
        row_width=_div(out["slots"], out["rows"]),
        rows_per_batch=_div(out["rows"], batches),
    )
    ms = {}
    read = stages["read"]
    tok, cached = cache["tokenize_s"], cache["cached_read_s"]
    gather = read
    if read is not None and (tok is not None or cached is not None):
        gather = max(0.0, read - (tok or 0.0) - (cached or 0.0))  # raw mode: read includes both
    wait = out["loop_wait_s"]
    store = store_window(start, end, wait)
    parts = {
        "gather": gather,
        "shard_wait": None if store is None else store["wait_s"],
        "tokenize": tok,
        "cache_read": cached,
        "dali": None,
        "pad": stages["pad"],
        "wait": wait,
        "step": None if wait is None or dt is None else max(0.0, dt - wait),
    }
    for key, seconds in parts.items():
        per = _div(seconds, batches)
        ms[key] = None if per is None else 1000 * per
    out["ms_per_batch"] = ms
    out["wall_ms_per_batch"] = None if _div(dt, batches) is None else 1000 * dt / batches
    out["cache"] = cache
    out["store"] = store
    return out


def steady_figures(samples: Sequence[dict]) -> dict | None:
    """:func:`window_figures` over the steady window, with ``window`` ("steady"/"whole run")."""
    found = steady_window(samples)
    if found is None:
        return None
    start, end, kind = found
    return {**window_figures(start, end), "window": kind}


def warmup_figures(samples: Sequence[dict]) -> dict | None:
    """The warm-up on its own: seconds to the first batch's sample, batches and rows by then."""
    start = next((r for r in samples if int(r.get("batches") or 0) > 0), None)
    if start is None:
        return None
    return {
        "seconds": _f(start.get("t")),
        "batches": int(start.get("batches") or 0),
        "rows": int(start.get("rows") or 0),
    }


def epoch_figures(epochs: Sequence[dict]) -> dict:
    """Cold and warm epochs (raw mode's cache, or an object store's) apart: for each kind the
    epochs, seconds, rows and rows/s, and over a store the shards downloaded and their bytes;
    epochs of unknown kind (no cache) are "all"."""
    out: dict = {}
    for ep in epochs:
        kind = ep.get("kind") or "all"
        agg = out.setdefault(kind, {"epochs": 0, "seconds": 0.0, "rows": 0, "tokens": 0})
        agg["epochs"] += 1
        agg["seconds"] += float(ep.get("seconds") or 0.0)
        agg["rows"] += int(ep.get("rows") or 0)
        agg["tokens"] += int(ep.get("tokens") or 0)
        store = ep.get("store")
        if isinstance(store, dict):
            for key in ("downloads", "download_bytes"):
                agg[key] = agg.get(key, 0) + int(store.get(key) or 0)
    for agg in out.values():
        agg["samples_per_s"] = _div(float(agg["rows"]), agg["seconds"])
        agg["tokens_per_s"] = _div(float(agg["tokens"]), agg["seconds"])
    return out
