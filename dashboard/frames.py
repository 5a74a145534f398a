"""Tidy frames for the charts, from the runs' sample records (pure pandas, no Streamlit).

Every frame is keyed by ``series``: the run's label (:mod:`.runs`), with ``[rank N]`` for the
ranks of a torchrun job, so one run keeps one colour on the page and in the report.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

from rrweb_dali.profiling.figures import (
    LOOP_PARTS,
    PART_LABELS,
    PARTS,
    STORE_PARTS,
    WORK_PARTS,
    store_cache,
    window_figures,
)
from rrweb_dali.profiling.runfiles import CACHE_FIELDS, warmup_end

MB = 1024 * 1024
Runs = dict[str, dict[int, list[dict]]]  # label -> rank -> sample records


def series_label(label: str, world_size: int, rank: int) -> str:
    return label if world_size <= 1 else f"{label} [rank {rank}]"


def _num(x) -> float:
    return float("nan") if x is None else float(x)


def _mb(x) -> float:
    return _num(x) / MB


def samples_frame(label: str, world_size: int, by_rank: dict[int, list[dict]]) -> pd.DataFrame:
    """One row per sample: rates, memory in MiB, per-interval ms per batch of each part
    (:data:`rrweb_dali.profiling.figures.PARTS`; NaN where unmeasured), cache rates, and for an
    object store the MiB downloaded so far and the download rate over the interval (NaN for
    runs over local shards)."""
    rows = []
    for rank, records in by_rank.items():
        prev: dict | None = None
        for rec in records:
            row = {
                "run": label,
                "series": series_label(label, world_size, rank),
                "rank": rank,
                "t": _num(rec.get("t")),
                "batches": _num(rec.get("batches")),
                "rows": _num(rec.get("rows")),
                "tokens": _num(rec.get("tokens")),
                "samples_per_s": _num(rec.get("samples_per_s")),
                "tokens_per_s": _num(rec.get("tokens_per_s")),
                "padding_efficiency": _num(rec.get("padding_efficiency")),
                "wait_share": _num(rec.get("wait_share")),
                "rss_mb": _mb(rec.get("rss_bytes")),
                "workers_rss_mb": _mb(rec.get("workers_rss_bytes")),
                "loader_rss_mb": _mb(rec.get("loader_rss_bytes")),
                "shm_mb": _mb(rec.get("shm_bytes")),
                "gpu_allocated_mb": _mb(rec.get("gpu_allocated_bytes")),
                "gpu_reserved_mb": _mb(rec.get("gpu_reserved_bytes")),
            }
            parts = window_figures(prev, rec)["ms_per_batch"] if prev is not None else {}
            for key, *_ in PARTS:
                row[f"{key}_ms"] = _num(parts.get(key))
            cache = rec.get("cache") if isinstance(rec.get("cache"), dict) else None
            pcache = (prev or {}).get("cache") if prev is not None else None
            for c in CACHE_FIELDS:
                row[f"cache_{c}"] = _num((cache or {}).get(c))
            row["cache_hit_rate"] = row["cache_evictions_delta"] = float("nan")
            if cache is not None:
                hits = _num(cache.get("hits")) - _num((pcache or {}).get("hits", 0))
                misses = _num(cache.get("misses")) - _num((pcache or {}).get("misses", 0))
                row["cache_hit_rate"] = hits / (hits + misses) if hits + misses > 0 else np.nan
                row["cache_evictions_delta"] = _num(cache.get("evictions")) - _num(
                    (pcache or {}).get("evictions", 0)
                )
            row.update(_store_columns(rec, prev))
            rows.append(row)
            prev = rec
    return pd.DataFrame(rows)


def _store_columns(rec: dict, prev: dict | None) -> dict[str, float]:
    """Downloaded MiB (cumulative) and MiB/s over the interval since ``prev`` (wall time: the
    node's rate, whatever the number of fetch threads); NaN without a store cache."""
    store, before = store_cache(rec), store_cache(prev)
    out = {"store_download_mib": float("nan"), "store_download_mib_per_s": float("nan")}
    if store is None:
        return out
    out["store_download_mib"] = _mb(store.get("download_bytes") or 0)
    if prev is not None:
        dt = _num(rec.get("t")) - _num(prev.get("t"))
        got = _num(store.get("download_bytes") or 0) - _num((before or {}).get("download_bytes", 0))
        out["store_download_mib_per_s"] = got / MB / dt if dt > 0 else float("nan")
    return out


def store_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Long form of the object-store downloads (series, t, what, value): the MiB downloaded so
    far and the MiB/s per interval; empty when no run reads a store."""
    cols = {
        "store_download_mib": "downloaded (MiB)",
        "store_download_mib_per_s": "download rate (MiB/s)",
    }
    if frame.empty or not all(c in frame.columns for c in cols):
        return pd.DataFrame(columns=["series", "t", "what", "value"])
    return _long_form(frame, cols, "what", "value")


def time_split(frame: pd.DataFrame) -> pd.DataFrame:
    """Long form of the step time split over time: ms per batch waiting for input vs the
    loop's own time, per interval (TensorBoard's step-time graph)."""
    cols = {"wait_ms": PART_LABELS["wait"], "step_ms": PART_LABELS["step"]}
    return _long_form(frame, cols, "part", "ms")


def _long_form(frame: pd.DataFrame, cols: dict[str, str], name: str, value: str) -> pd.DataFrame:
    """``frame``'s columns ``cols`` (column -> label) melted into ``series, t, name, value``
    rows, labelled, the rows without a value dropped (altair draws long form)."""
    if frame.empty:
        return pd.DataFrame(columns=["series", "t", name, value])
    long = frame.melt(
        id_vars=["series", "t"], value_vars=list(cols), var_name=name, value_name=value
    )
    long[name] = long[name].map(cols)
    return long.dropna(subset=[value]).reset_index(drop=True)


def parts_table(steady: dict[str, dict | None]) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """Where the time goes per run over its steady state, long form (``run``, ``what``:
    "loader work" or "loop wall time", ``part``, ``ms_per_batch``); and per run the parts that
    are not measured in its mode (left out, not drawn as zero)."""
    rows, unmeasured = [], {}
    for label, fig in steady.items():
        if not fig:
            continue
        ms = fig["ms_per_batch"]
        missing = []
        for key, part_label, _where in PARTS:
            value = ms.get(key)
            if value is None:
                if key not in STORE_PARTS:  # a local run has no store: nothing is missing
                    missing.append(part_label)
                continue
            what = "loader work" if key in WORK_PARTS else "loop wall time"
            rows.append(
                {"run": label, "what": what, "part": part_label, "ms_per_batch": float(value)}
            )
        unmeasured[label] = missing
    frame = pd.DataFrame(rows, columns=["run", "what", "part", "ms_per_batch"])
    return frame, unmeasured


PART_ORDER = [PART_LABELS[k] for k in (*WORK_PARTS, *LOOP_PARTS)]


def memory_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Long form for the memory chart: series, t, which memory, MiB (rows with a value only)."""
    cols = {
        "rss_mb": "main process RSS",
        "loader_rss_mb": "loader RSS (main + workers)",
        "shm_mb": "/dev/shm in use (host)",
        "gpu_allocated_mb": "GPU allocated",
        "gpu_reserved_mb": "GPU reserved",
    }
    cols = {k: v for k, v in cols.items() if k in frame.columns}
    return _long_form(frame, cols, "memory", "mib")


def warmup_marks(runs: Runs, world_sizes: dict[str, int]) -> pd.DataFrame:
    rows = []
    for label, by_rank in runs.items():
        for rank, records in by_rank.items():
            end = warmup_end(records)
            if end is not None:
                rows.append({"series": series_label(label, world_sizes[label], rank), "t": end})
    return pd.DataFrame(rows, columns=["series", "t"])


def epochs_table(epochs: dict[str, list[dict]]) -> pd.DataFrame:
    """Every pass over the data per run: epoch, kind (cold/warm, raw mode), seconds, rows/s."""
    rows = []
    for label, passes in epochs.items():
        for p in passes:
            seconds = float(p.get("seconds") or 0.0)
            rows.append(
                {
                    "run": label,
                    "epoch": p.get("epoch"),
                    "kind": p.get("kind") or "",
                    "complete": bool(p.get("complete")),
                    "seconds": seconds,
                    "rows": p.get("rows"),
                    "samples/s": (p.get("rows") or 0) / seconds if seconds > 0 else None,
                }
            )
    return pd.DataFrame(
        rows, columns=["run", "epoch", "kind", "complete", "seconds", "rows", "samples/s"]
    )


def csv_bytes(frame: pd.DataFrame) -> bytes:
    buf = io.StringIO()
    frame.to_csv(buf, index=False)
    return buf.getvalue().encode()


def frames_concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
