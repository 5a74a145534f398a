"""Reading run folders for the dashboard: discovery and incremental sample reads.

Pure functions over files, no Streamlit, so everything here is testable on its own (the frames
for the charts are in ``frames.py``, labels, verdicts and KPIs in ``runs.py``, the configuration
diff in ``config.py``).
Two rules hold throughout:

* Nothing outside the runs directory is read. Every path is resolved and must stay below the
  resolved runs directory; a symlink that points elsewhere is reported as refused, not followed.
* Only regular files are opened (:func:`regular_file`): a FIFO, socket or device named
  ``meta.json``, ``summary.json`` or ``samples.jsonl`` would block the page's reader forever (or
  read without end), so such an entry is a finding, never opened.
* A bad folder is a finding, not an error: a folder that is not a run, a run without samples, a
  half-written last line, an older schema all come back as a :class:`RunInfo` with ``kind`` and
  ``message`` for the page to show.
"""

from __future__ import annotations

import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path

from rrweb_dali.profiling.runfiles import (
    META_NAME,
    MIN_READABLE_SCHEMA,
    SCHEMA_VERSION,
    rank_files,
    read_json,
    read_jsonl_tail,
)

# How long a run without summary.json may go without a new sample before it counts as stopped.
STALE_AFTER_S = 60.0


# ---- where runs are --------------------------------------------------------------------------


def runs_dirs_from(argv: list[str], environ: dict) -> list[Path]:
    """The runs directories: every ``--runs DIR`` of the script arguments, in order, else
    ``RRWEB_DALI_RUNS`` (one directory, or several joined by ``os.pathsep``)."""
    out: list[Path] = []
    for i, arg in enumerate(argv):
        if arg == "--runs" and i + 1 < len(argv):
            out.append(Path(argv[i + 1]))
        elif arg.startswith("--runs="):
            out.append(Path(arg.split("=", 1)[1]))
    if out:
        return out
    value = environ.get("RRWEB_DALI_RUNS")
    return [Path(v) for v in value.split(os.pathsep) if v] if value else []


def runs_dir_from(argv: list[str], environ: dict) -> Path | None:
    """The first runs directory of :func:`runs_dirs_from`, or None."""
    dirs = runs_dirs_from(argv, environ)
    return dirs[0] if dirs else None


def inside(root: Path, path: Path) -> Path | None:
    """``path`` resolved, if it lies inside the resolved ``root``; None otherwise."""
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    return real if real == root or real.is_relative_to(root) else None


def regular_file(path: Path) -> bool:
    """Whether ``path`` is a regular file (after links), the only kind the dashboard opens."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


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
    if not regular_file(meta_path):
        info.kind, info.message = "broken", "meta.json is not a regular file; not read"
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
        if s_path is not None and regular_file(s_path):
            info.sample_files[rank] = s_path
        m_path = inside(root, summary) if summary.exists() else None
        obj = read_json(m_path) if m_path is not None and regular_file(m_path) else None
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
    """Read what was appended to ``path`` since the last call (the state lives in ``store``);
    a path that is no longer a regular file is left as it was read."""
    entry = store.setdefault(str(path), SampleFile())
    if not regular_file(path):
        return entry
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
