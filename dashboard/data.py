"""Reading run folders for the dashboard: discovery, incremental sample reads, KPIs, frames.

Pure functions over files and pandas, no Streamlit, so everything here is testable on its own.
Two rules hold throughout:

* Nothing outside the runs directory is read. Every path is resolved and must stay below the
  resolved runs directory; a symlink that points elsewhere is reported as refused, not followed.
* A bad folder is a finding, not an error: a folder that is not a run, a run without samples, a
  half-written last line, an older schema all come back as a :class:`RunInfo` with ``kind`` and
  ``message`` for the page to show.
"""

from __future__ import annotations

import io
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from rrweb_dali.profiling.runfiles import (
    CACHE_FIELDS,
    META_NAME,
    MIN_READABLE_SCHEMA,
    SCHEMA_VERSION,
    STAGES,
    rank_files,
    read_json,
    read_jsonl_tail,
    warmup_end,
)

# How long a run without summary.json may go without a new sample before it counts as stopped.
STALE_AFTER_S = 60.0
# meta.json keys that differ between any two runs and say nothing about the configuration.
VOLATILE_META = {"run_id", "started_at", "status", "name"}
MB = 1024 * 1024


# ---- where runs are --------------------------------------------------------------------------


def runs_dir_from(argv: list[str], environ: dict) -> Path | None:
    """The runs directory: ``--runs DIR`` in the script arguments, else ``RRWEB_DALI_RUNS``."""
    for i, arg in enumerate(argv):
        if arg == "--runs" and i + 1 < len(argv):
            return Path(argv[i + 1])
        if arg.startswith("--runs="):
            return Path(arg.split("=", 1)[1])
    value = environ.get("RRWEB_DALI_RUNS")
    return Path(value) if value else None


def inside(root: Path, path: Path) -> Path | None:
    """``path`` resolved, if it lies inside the resolved ``root``; None otherwise."""
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    return real if real == root or real.is_relative_to(root) else None


@dataclass
class RunInfo:
    """One folder of the runs directory and what it turned out to be.

    ``kind``: "run" (readable), "not_run" (no meta.json), "old_schema", "broken" (meta.json not
    JSON), "refused" (a link out of the runs directory). ``status`` for runs: the summary's status,
    "running" while samples still come, "stopped" when they stopped without a summary.
    """

    run_id: str
    path: Path
    kind: str
    message: str = ""
    meta: dict = field(default_factory=dict)
    summaries: dict[int, dict] = field(default_factory=dict)
    sample_files: dict[int, Path] = field(default_factory=dict)
    status: str = "unknown"

    @property
    def ok(self) -> bool:
        return self.kind == "run"

    @property
    def world_size(self) -> int:
        return int(self.meta.get("world_size") or 1)


def _status(info: RunInfo, now: float, stale_after: float) -> str:
    statuses = [s.get("status", "finished") for s in info.summaries.values()]
    if statuses and len(statuses) >= info.world_size:
        for bad in ("failed", "interrupted"):
            if bad in statuses:
                return bad
        return "finished"
    newest = max((p.stat().st_mtime for p in info.sample_files.values()), default=0.0)
    return "running" if now - newest < stale_after else "stopped"


def inspect_run(
    root: Path, path: Path, now: float | None = None, stale_after: float = STALE_AFTER_S
) -> RunInfo:
    """Classify one folder of the runs directory (``root`` already resolved)."""
    info = RunInfo(run_id=path.name, path=path, kind="not_run")
    real = inside(root, path)
    if real is None:
        info.kind, info.message = "refused", "a link to outside the runs directory; not read"
        return info
    info.path = real
    meta_path = inside(root, real / META_NAME)
    if meta_path is None:
        info.message = "no meta.json: not a run folder"
        return info
    meta = read_json(meta_path)
    if meta is None:
        info.kind, info.message = "broken", "meta.json is not a JSON object (being written?)"
        return info
    info.meta = meta
    version = meta.get("schema_version")
    if not isinstance(version, int) or version < MIN_READABLE_SCHEMA:
        info.kind = "old_schema"
        info.message = (
            f"written with run schema {version!r}; this dashboard reads schema "
            f"{MIN_READABLE_SCHEMA} to {SCHEMA_VERSION}"
        )
        return info
    info.kind = "run"
    if version > SCHEMA_VERSION:
        info.message = f"schema {version} is newer than this dashboard's {SCHEMA_VERSION}"
    for rank, (samples, summary) in rank_files(real).items():
        s_path = inside(root, samples)
        if s_path is not None:
            info.sample_files[rank] = s_path
        m_path = inside(root, summary) if summary.exists() else None
        obj = read_json(m_path) if m_path is not None else None
        if obj is not None:
            info.summaries[rank] = obj
    info.status = _status(info, time.time() if now is None else now, stale_after)
    return info


def list_runs(runs_dir: Path, now: float | None = None) -> list[RunInfo]:
    """Every folder of ``runs_dir`` (not deeper), newest first by start time then name."""
    root = runs_dir.resolve()
    if not root.is_dir():
        return []
    found = [inspect_run(root, p, now) for p in root.iterdir() if p.is_dir() or p.is_symlink()]
    found.sort(key=lambda r: (str(r.meta.get("started_at", "")), r.run_id), reverse=True)
    return found


# ---- samples, read incrementally -------------------------------------------------------------


@dataclass
class SampleFile:
    """Records read so far from one samples file and the byte offset to continue from."""

    offset: int = 0
    records: list[dict] = field(default_factory=list)
    bad_lines: int = 0
    partial: bool = False


def refresh(store: dict[str, SampleFile], path: Path) -> SampleFile:
    """Read what was appended to ``path`` since the last call (the state lives in ``store``)."""
    entry = store.setdefault(str(path), SampleFile())
    tail = read_jsonl_tail(path, entry.offset)
    if tail.offset < entry.offset:  # the file was replaced: start over
        entry.records.clear()
    entry.records.extend(tail.records)
    entry.offset = tail.offset
    entry.bad_lines += tail.bad_lines
    entry.partial = tail.partial
    return entry


def run_samples(store: dict[str, SampleFile], info: RunInfo) -> dict[int, list[dict]]:
    return {rank: refresh(store, p).records for rank, p in info.sample_files.items()}


def series_label(info: RunInfo, rank: int) -> str:
    return info.run_id if info.world_size <= 1 else f"{info.run_id} [rank {rank}]"


def _num(x) -> float:
    return float("nan") if x is None else float(x)


def samples_frame(info: RunInfo, by_rank: dict[int, list[dict]]) -> pd.DataFrame:
    """One row per sample: rates, memory in MiB, per-interval stage ms per batch, cache rates."""
    rows = []
    for rank, records in by_rank.items():
        prev: dict | None = None
        for rec in records:
            row = {
                "run": info.run_id,
                "series": series_label(info, rank),
                "rank": rank,
                "t": _num(rec.get("t")),
                "batches": _num(rec.get("batches")),
                "rows": _num(rec.get("rows")),
                "tokens": _num(rec.get("tokens")),
                "samples_per_s": _num(rec.get("samples_per_s")),
                "tokens_per_s": _num(rec.get("tokens_per_s")),
                "padding_efficiency": _num(rec.get("padding_efficiency")),
                "wait_share": _num(rec.get("wait_share")),
                "rss_mb": _num(rec.get("rss_bytes")) / MB,
                "gpu_allocated_mb": _num(rec.get("gpu_allocated_bytes")) / MB,
                "gpu_reserved_mb": _num(rec.get("gpu_reserved_bytes")) / MB,
            }
            stages = rec.get("stages") or {}
            cache = rec.get("cache") if isinstance(rec.get("cache"), dict) else None
            pstages = (prev or {}).get("stages") or {}
            pcache = (prev or {}).get("cache") if prev is not None else None
            d_batches = row["batches"] - _num((prev or {}).get("batches", 0))
            for s in STAGES:
                d = _num(stages.get(s)) - _num(pstages.get(s, 0.0 if prev is None else None))
                row[f"{s}_ms"] = d * 1000 / d_batches if d_batches > 0 else float("nan")
            for c in CACHE_FIELDS:
                row[f"cache_{c}"] = _num((cache or {}).get(c))
            if cache is not None:
                hits = _num(cache.get("hits")) - _num((pcache or {}).get("hits", 0))
                misses = _num(cache.get("misses")) - _num((pcache or {}).get("misses", 0))
                row["cache_hit_rate"] = hits / (hits + misses) if hits + misses > 0 else np.nan
                row["cache_evictions_delta"] = _num(cache.get("evictions")) - _num(
                    (pcache or {}).get("evictions", 0)
                )
            else:
                row["cache_hit_rate"] = row["cache_evictions_delta"] = float("nan")
            rows.append(row)
            prev = rec
    return pd.DataFrame(rows)


# ---- KPIs ---------------------------------------------------------------------------------------

KPI_SPECS = (
    # key, label, unit, higher is better
    ("samples_per_s", "samples/s", "", True),
    ("tokens_per_s", "tokens/s", "", True),
    ("wait_share", "wait share", "%", False),
    ("peak_rss_mb", "peak RSS", "MiB", False),
    ("gpu_mb", "GPU memory", "MiB", False),
    ("cache_hit_rate", "cache hit rate", "%", True),
)


def _steady(records: list[dict]) -> list[dict]:
    end = warmup_end(records)
    return [r for r in records if end is not None and float(r.get("t") or 0) > end]


def _median(values: list) -> float | None:
    vals = [float(v) for v in values if v is not None]
    return float(np.median(vals)) if vals else None


def kpis(by_rank: dict[int, list[dict]]) -> dict[str, float | None]:
    """The KPI cards of one run, from its samples (so live and finished runs agree): steady-state
    median rates summed over ranks, the median wait share (mean over ranks), peak RSS and GPU
    reserved memory over the run, and the cache hit rate so far."""
    out: dict[str, float | None] = dict.fromkeys(k for k, *_ in KPI_SPECS)
    if not any(by_rank.values()):
        return out
    # Short runs have no steady interval: fall back to the whole run's average.
    overall = {"samples_per_s": "rows", "tokens_per_s": "tokens", "wait_share": "loop_wait_s"}
    for key, total in overall.items():
        per_rank = []
        for records in by_rank.values():
            value = _median([r.get(key) for r in _steady(records)])
            if value is None and records and records[-1].get(total) is not None:
                t = float(records[-1].get("t") or 0.0)
                value = float(records[-1][total]) / t if t > 0 else None
            per_rank.append(value)
        known = [v for v in per_rank if v is not None]
        if known:  # rates add up over ranks, the wait share is the ranks' mean
            out[key] = sum(known) if key != "wait_share" else float(np.mean(known))
    every = [r for rs in by_rank.values() for r in rs]
    rss = [r["rss_bytes"] for r in every if r.get("rss_bytes") is not None]
    out["peak_rss_mb"] = max(rss) / MB if rss else None
    gpu = [r["gpu_reserved_bytes"] for r in every if r.get("gpu_reserved_bytes") is not None]
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


def format_kpi(key: str, value: float | None) -> str:
    if value is None:
        return "n/a"
    if key in ("wait_share", "cache_hit_rate"):
        return f"{100 * value:.1f}%"
    if key.endswith("_mb"):
        return f"{value:,.0f} MiB"
    if abs(value) >= 1e6:  # a card is narrow: 16.56 M rather than 16,560,342
        return f"{value / 1e6:,.2f} M"
    return f"{value:,.0f}"


def kpi_delta(key: str, value: float | None, base: float | None) -> str | None:
    """Change against the baseline: relative for rates and memory, points for shares."""
    if value is None or base is None:
        return None
    if key in ("wait_share", "cache_hit_rate"):
        return f"{100 * (value - base):+.1f} pp"
    if base == 0:
        return None
    return f"{100 * (value / base - 1):+.1f}%"


# ---- per-run tables for the charts -------------------------------------------------------------


def stage_table(runs: dict[str, dict[int, list[dict]]]) -> tuple[pd.DataFrame, list[str]]:
    """Milliseconds per batch in each measured stage, per run (last sample of each rank), long
    form; and the stages no run measured (null in every sample)."""
    rows, measured = [], set()
    for label, by_rank in runs.items():
        totals: dict[str, float] = {}
        batches = 0
        for records in by_rank.values():
            if not records:
                continue
            last = records[-1]
            batches += int(last.get("batches") or 0)
            for s, v in (last.get("stages") or {}).items():
                if v is not None and s in STAGES:
                    totals[s] = totals.get(s, 0.0) + float(v)
        for s in STAGES:
            if s in totals and batches:
                measured.add(s)
                rows.append({"run": label, "stage": s, "ms_per_batch": 1000 * totals[s] / batches})
    frame = pd.DataFrame(rows, columns=["run", "stage", "ms_per_batch"])
    return frame, [s for s in STAGES if s not in measured]


def memory_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Long form for the memory chart: series, t, which memory, MiB (rows with a value only)."""
    cols = {
        "rss_mb": "host RSS",
        "gpu_allocated_mb": "GPU allocated",
        "gpu_reserved_mb": "GPU reserved",
    }
    if frame.empty:
        return pd.DataFrame(columns=["series", "t", "memory", "mib"])
    long = frame.melt(
        id_vars=["series", "t"], value_vars=list(cols), var_name="memory", value_name="mib"
    )
    long["memory"] = long["memory"].map(cols)
    return long.dropna(subset=["mib"]).reset_index(drop=True)


def warmup_marks(runs: dict[str, dict[int, list[dict]]], infos: dict[str, RunInfo]) -> pd.DataFrame:
    rows = []
    for label, by_rank in runs.items():
        for rank, records in by_rank.items():
            end = warmup_end(records)
            if end is not None:
                rows.append({"series": series_label(infos[label], rank), "t": end})
    return pd.DataFrame(rows, columns=["series", "t"])


# ---- configuration -----------------------------------------------------------------------------


def flatten(obj, prefix: str = "") -> dict[str, str]:
    """Nested dicts to ``a.b.c`` keys; lists and scalars as compact text."""
    out: dict[str, str] = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.update(flatten(v, f"{prefix}{k}."))
        return out
    out[prefix[:-1]] = obj if isinstance(obj, str) else json.dumps(obj, sort_keys=True, default=str)
    return out


def config_diff(metas: dict[str, dict], only_different: bool = True) -> pd.DataFrame:
    """Meta keys as rows, runs as columns; with ``only_different`` the rows where runs differ."""
    flat = {
        label: {k: v for k, v in flatten(m).items() if k.split(".")[0] not in VOLATILE_META}
        for label, m in metas.items()
    }
    keys = sorted(set().union(*flat.values())) if flat else []
    table = pd.DataFrame(
        {label: [f.get(k, "") for k in keys] for label, f in flat.items()}, index=keys
    )
    table.index.name = "setting"
    if only_different and len(flat) > 1:
        table = table[table.nunique(axis=1) > 1]
    return table


def csv_bytes(frame: pd.DataFrame) -> bytes:
    buf = io.StringIO()
    frame.to_csv(buf, index=False)
    return buf.getvalue().encode()


def frames_concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
