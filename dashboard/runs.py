"""The runs on the page: readable unique labels over several runs directories, each run's samples
and verdict, and its KPI cards (steady state, warm-up apart). Pure functions, no Streamlit.

Labels: a run is shown by its name (``meta.json``'s ``name``, else its folder), with its runs
directory in brackets when several are open, and its start time (then its folder) only where two
runs would otherwise read the same. A folder name is ``<UTC time>-<name>``, which a selector cuts
to the time; the name first keeps what tells runs apart visible.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rrweb_dali.dashboard.data import RunInfo, SampleFile, list_runs, run_samples

from rrweb_dali.profiling.figures import (
    epoch_figures,
    steady_figures,
    store_totals,
    warmup_figures,
)
from rrweb_dali.profiling.verdict import assess

MB = 1024 * 1024


def _started(info: RunInfo) -> str:
    text = str(info.meta.get("started_at") or "")
    return text[11:19] if len(text) >= 19 else text


def label_runs(found: dict[Path, list[RunInfo]]) -> dict[str, RunInfo]:
    """``{label: info}`` for the readable runs of every runs directory (see the module doc),
    in the directories' order, newest first within one."""
    several = len(found) > 1
    names: list[tuple[str, RunInfo]] = []
    for root, infos in found.items():
        for info in infos:
            if not info.ok:
                continue
            base = str(info.meta.get("name") or info.run_id)
            names.append((f"{base} [{root.name}]" if several else base, info))
    counts: dict[str, int] = {}
    for base, _ in names:
        counts[base] = counts.get(base, 0) + 1
    out: dict[str, RunInfo] = {}
    for base, info in names:
        label = base if counts[base] == 1 else f"{base} · {_started(info)}"
        if label in out:
            label = f"{base} · {info.run_id}"
        out[label] = info
    return out


def discover(dirs: list[Path]) -> tuple[dict[str, RunInfo], list[tuple[Path, RunInfo]]]:
    """Labelled readable runs of ``dirs``, and the folders that are findings (not runs)."""
    found = {d: list_runs(d) for d in dirs}
    notes = [(d, i) for d, infos in found.items() for i in infos if not i.ok]
    return label_runs(found), notes


@dataclass
class RunView:
    """One selected run with the samples read so far."""

    label: str
    info: RunInfo
    samples: dict[int, list[dict]]

    @property
    def world_size(self) -> int:
        return self.info.world_size

    @property
    def has_samples(self) -> bool:
        return any(self.samples.values())

    def epochs(self, rank: int | None = None) -> list[dict]:
        """The passes over the data that ended, from the samples (so a live run has them)."""
        ranks = [rank] if rank is not None else sorted(self.samples)
        out = []
        for r in ranks:
            for rec in self.samples.get(r, []):
                out.extend(p for p in rec.get("passes") or [] if isinstance(p, dict))
        return out

    def assessment(self) -> dict:
        """The verdict of the rank that waited most (one slow rank holds every rank back)."""
        best: dict | None = None
        for rank, records in self.samples.items():
            summary = dict(self.info.summaries.get(rank) or {})
            summary["epochs"] = self.epochs(rank)
            out = assess(self.info.meta, records, summary)
            share = (out["steady"] or {}).get("wait_share")
            if best is None or (share is not None and share > (best["_share"] or -1.0)):
                best = {**out, "_share": share, "rank": rank}
        if best is None:
            return assess(self.info.meta, [])
        best.pop("_share")
        return best


def read_views(
    store: dict[str, SampleFile], runs: dict[str, RunInfo], selected: list[str]
) -> dict[str, RunView]:
    return {
        label: RunView(label, runs[label], run_samples(store, runs[label]))
        for label in selected
        if label in runs
    }


KPI_SPECS = (
    # key, label, higher is better
    ("samples_per_s", "samples/s", True),
    ("tokens_per_s", "tokens/s", True),
    ("wait_share", "wait share", False),
    ("warmup_s", "warm-up", False),
    ("peak_memory_mb", "peak loader memory", False),
    ("gpu_mb", "GPU memory", False),
    ("cache_hit_rate", "cache hit rate", True),
)
SHARES = ("wait_share", "cache_hit_rate")


def _peak(records: list[dict], *keys: str) -> float | None:
    for key in keys:
        vals = [r[key] for r in records if r.get(key) is not None]
        if vals:
            return float(max(vals))
    return None


def kpis(by_rank: dict[int, list[dict]]) -> dict[str, float | None]:
    """The KPI cards of one run, from its samples (so live and finished runs agree): steady-state
    rates summed over ranks (the warm-up left out; a run too short for a steady state uses the
    whole run), the wait share (mean over ranks), the warm-up (the slowest rank's), the peak
    memory of the whole loader (main process and workers; summed over ranks), GPU reserved
    memory, and the cache hit rate so far."""
    out: dict[str, float | None] = dict.fromkeys(k for k, *_ in KPI_SPECS)
    figs = [steady_figures(r) for r in by_rank.values() if r]
    figs = [f for f in figs if f is not None]
    for key in ("samples_per_s", "tokens_per_s", "wait_share"):
        known = [f[key] for f in figs if f.get(key) is not None]
        if known:  # rates add up over ranks, the wait share is the ranks' mean
            out[key] = float(np.mean(known)) if key == "wait_share" else float(sum(known))
    warm = [w["seconds"] for w in (warmup_figures(r) for r in by_rank.values()) if w]
    out["warmup_s"] = max(warm) if warm else None
    peaks = [_peak(r, "loader_rss_bytes", "rss_bytes") for r in by_rank.values()]
    known_peaks = [p for p in peaks if p is not None]
    out["peak_memory_mb"] = sum(known_peaks) / MB if known_peaks else None
    gpu = [_peak(r, "gpu_reserved_bytes") for r in by_rank.values()]
    gpu = [g for g in gpu if g is not None]
    out["gpu_mb"] = max(gpu) / MB if gpu else None
    hits = misses = 0
    for records in by_rank.values():
        cache = next(
            (r["cache"] for r in reversed(records) if isinstance(r.get("cache"), dict)), None
        )
        if cache:
            hits += int(cache.get("hits") or 0)
            misses += int(cache.get("misses") or 0)
    out["cache_hit_rate"] = hits / (hits + misses) if hits + misses else None
    return out


STORE_KPI_SPECS = (
    # key, label, higher is better
    ("download_mib", "downloaded", False),
    ("download_s", "download time", False),
    ("download_mib_per_s", "MiB/s per download", True),
    ("wait_s", "waits for shards", False),
    ("downloads", "shards downloaded", False),
    ("hits_misses", "shard hits / misses", True),
)  # the hit rate is the run's "cache hit rate" card


def store_kpis(by_rank: dict[int, list[dict]]) -> dict[str, float | None] | None:
    """The object-store cards of one run (None when it reads local shards): the whole run's
    downloads, their MiB and seconds (summed over ranks: every rank downloads its own share,
    or waits for a node neighbour's), the seconds the batch sources waited for shards, the MiB/s
    one download achieved and the hit rate of shard uses."""
    found = [t for t in (store_totals(r) for r in by_rank.values() if r) if t is not None]
    if not found:
        return None
    out: dict[str, float | None] = {}
    for key in ("downloads", "download_mib", "download_s", "wait_s", "hits", "misses"):
        known = [t[key] for t in found if t.get(key) is not None]
        out[key] = float(sum(known)) if known else None
    mib, sec = out["download_mib"], out["download_s"]
    out["download_mib_per_s"] = mib / sec if mib is not None and sec else None
    uses = (out["hits"] or 0) + (out["misses"] or 0)
    out["hit_rate"] = (out["hits"] or 0) / uses if uses else None
    return out


def format_store_kpi(key: str, values: dict[str, float | None]) -> str:
    """One object-store card's text from :func:`store_kpis`' values."""
    if key == "hits_misses":
        hits, misses = values.get("hits"), values.get("misses")
        return "n/a" if hits is None or misses is None else f"{hits:,.0f} / {misses:,.0f}"
    value = values.get(key)
    if value is None:
        return "n/a"
    if key == "download_mib":  # a test dataset is KiB, a real one GiB: keep digits that say
        return f"{value:,.1f} MiB" if value >= 1 else f"{1024 * value:,.1f} KiB"
    if key == "download_mib_per_s":
        return f"{value:,.1f}"
    if key == "downloads":
        return f"{value:,.0f}"
    if key == "hit_rate":
        return f"{100 * value:.1f}%"
    return f"{value:,.2f} s"


def cold_warm(epochs: list[dict]) -> dict:
    """Cold and warm epochs apart, raw mode's or an object store's
    (:func:`rrweb_dali.profiling.figures.epoch_figures`)."""
    return epoch_figures(epochs)


def format_kpi(key: str, value: float | None) -> str:
    if value is None:
        return "n/a"
    if key in SHARES:
        return f"{100 * value:.1f}%"
    if key.endswith("_mb"):
        return f"{value:,.0f} MiB"
    if key.endswith("_s") and not key.endswith("per_s"):
        return f"{value:,.1f} s"
    if abs(value) >= 1e6:  # a card is narrow: 16.56 M rather than 16,560,342
        return f"{value / 1e6:,.2f} M"
    return f"{value:,.0f}"


def kpi_delta(key: str, value: float | None, base: float | None) -> str | None:
    """Change against the baseline: relative for rates and memory, points for shares."""
    if value is None or base is None:
        return None
    if key in SHARES:
        return f"{100 * (value - base):+.1f} pp"
    if base == 0:
        return None
    return f"{100 * (value / base - 1):+.1f}%"
