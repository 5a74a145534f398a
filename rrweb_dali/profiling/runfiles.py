"""The run folder format shared by ``rrweb-dali profile``, the ``bench/`` scripts and the dashboard.

A runs directory holds one folder per run::

    RUNS/<run_id>/meta.json          written once at the start (status "running")
    RUNS/<run_id>/samples.jsonl      one JSON object a line, appended and flushed as the run goes
    RUNS/<run_id>/summary.json       written once at the end (status, totals, medians, p95)

Under torchrun (``world_size > 1``) every rank writes ``samples.rank{N}.jsonl`` and
``summary.rank{N}.json`` in the same folder and rank 0 writes ``meta.json``.

Why JSON Lines with cumulative counters: a reader (the dashboard, while the run is live) can read
only what was appended since its last look, a half-written last line is simply not complete yet,
and a lost line loses one point of a curve, never a total. Times ``t`` are seconds since the
writer started, from a monotonic clock, so they never go backwards.

A sample holds (``null`` where a value is not measured; see :data:`SAMPLE_FIELDS`): ``t``,
``wall``, ``rank``, the cumulative ``batches``/``rows``/``tokens``/``slots``, the rates over the
interval since the previous sample, the memory of the whole loader (:data:`MEMORY_FIELDS`: the
main process, its worker processes, GPU memory, ``/dev/shm``), cumulative per-stage seconds in
``stages`` (keys :data:`STAGES`), the cumulative seconds the loop waited on the loader, an
optional ``cache`` object (:data:`CACHE_FIELDS`), absent for loaders without a cache, and
``passes``: the passes over the data (epochs) that ended since the previous sample, with their
seconds, rows and cache kind ("cold": the cache missed; "warm"), absent when none ended.

For a dataset in an object store (``s3://``) the ``cache`` object has ``"kind": "store"`` and
the cumulative :data:`STORE_FIELDS` besides :data:`CACHE_FIELDS` (``bytes`` is then the bytes
downloaded): ``downloads`` (shards this loader downloaded), ``download_bytes``, ``download_s``
(seconds of the downloads, summed over the fetch threads), ``wait_s`` (seconds the batch source
waited for shards that were not local yet, summed over its processes), ``shared`` (downloads of
another process of the node that it waited for) and ``epochs`` (per epoch: hits, misses,
downloads, kind). Its passes carry ``store``: the differences of those counters over the pass.

The summary adds the verdict (:mod:`rrweb_dali.profiling.verdict`): ``verdict``,
``verdict_reason``, ``advice``, and the figures they rest on (``steady``, ``warmup``,
``epoch_kinds``, and for an object store ``store``: the whole run's downloads), plus every pass
in ``epochs``.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
# Oldest schema the readers still understand; a run below it is shown as "old schema".
MIN_READABLE_SCHEMA = 1
META_NAME = "meta.json"
SAMPLES_NAME = "samples.jsonl"
SUMMARY_NAME = "summary.json"
RANK_SAMPLES = re.compile(r"^samples\.rank(\d+)\.jsonl$")
RANK_SUMMARY = re.compile(r"^summary\.rank(\d+)\.json$")

# Loader stages a sample reports, in pipeline order. A stage the loader cannot time on its own is
# null in every sample, and meta.json's "stage_notes" says why.
STAGES = ("read", "host_copy", "h2d", "pad")
COUNTERS = ("batches", "rows", "tokens", "slots")
RATE_FIELDS = ("samples_per_s", "tokens_per_s", "padding_efficiency")
# Memory of the whole loader (rrweb_dali.profiling.memory): this process, its worker processes,
# GPU memory, /dev/shm in use.
MEMORY_FIELDS = (
    "rss_bytes",
    "workers_rss_bytes",
    "workers",
    "loader_rss_bytes",
    "gpu_allocated_bytes",
    "gpu_reserved_bytes",
    "shm_bytes",
)
CACHE_FIELDS = ("hits", "misses", "evictions", "bytes")
# Besides CACHE_FIELDS in the cache object of an s3:// dataset ("kind": "store").
STORE_CACHE_KIND = "store"
STORE_FIELDS = ("downloads", "download_bytes", "download_s", "wait_s", "shared")
SAMPLE_FIELDS = ("t", "wall", "rank", *COUNTERS, *RATE_FIELDS, *MEMORY_FIELDS, "loop_wait_s")
STATUSES = ("running", "finished", "failed", "interrupted")

_RUN_ID_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def safe_name(name: str) -> str:
    """``name`` reduced to characters that are safe in a folder name (and never empty)."""
    return _RUN_ID_SAFE.sub("-", name).strip("-.") or "run"


def samples_name(rank: int, world_size: int) -> str:
    return SAMPLES_NAME if world_size <= 1 else f"samples.rank{rank}.jsonl"


def summary_name(rank: int, world_size: int) -> str:
    return SUMMARY_NAME if world_size <= 1 else f"summary.rank{rank}.json"


def write_json_atomic(path: Path, obj: dict) -> None:
    """Write ``obj`` under a temporary name and rename, so a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")
    os.replace(tmp, path)


def _make_run_dir(runs_dir: Path, name: str, run_id: str | None) -> Path:
    """Create the run's folder; a fresh id is ``<UTC time>-<name>``, suffixed when taken."""
    runs_dir.mkdir(parents=True, exist_ok=True)
    if run_id is not None:
        path = runs_dir / safe_name(run_id)
        path.mkdir(exist_ok=True)  # other ranks of the same run share the folder
        return path
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S")
    base = f"{stamp}-{safe_name(name)}"
    for n in range(1000):
        path = runs_dir / (base if n == 0 else f"{base}-{n + 1}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"{runs_dir}: could not find a free folder name for run {base!r}")


class RunWriter:
    """Writes one run folder: ``meta.json`` now, a sample line per :meth:`sample`, a summary at the
    end. Each sample is flushed at once, so a live reader sees it and a crash loses nothing before.

    ``run_id`` names the folder; give the same one on every rank of a torchrun job (otherwise a
    fresh ``<time>-<name>`` id is made). As a context manager it finishes the run with status
    "failed" (or "interrupted" on Ctrl-C) if the block raises before :meth:`finish`.
    """

    def __init__(
        self,
        runs_dir: str | Path,
        name: str,
        meta: dict | None = None,
        *,
        run_id: str | None = None,
        rank: int = 0,
        world_size: int = 1,
        clock=time.monotonic,
    ):
        self.name = name
        self.rank, self.world_size = int(rank), int(world_size)
        self.path = _make_run_dir(Path(runs_dir), name, run_id)
        self.run_id = self.path.name
        self._clock = clock
        self._t0 = clock()
        self._last_t = 0.0
        self.finished = False
        self.meta = {
            **(meta or {}),
            "schema_version": SCHEMA_VERSION,
            "run_id": self.run_id,
            "name": name,
            "started_at": utc_now(),
            "status": "running",
            "world_size": self.world_size,
        }
        if self.rank == 0:
            write_json_atomic(self.path / META_NAME, self.meta)
        self.samples_path = self.path / samples_name(self.rank, self.world_size)
        self.summary_path = self.path / summary_name(self.rank, self.world_size)
        self._fh = open(self.samples_path, "a", encoding="utf-8")  # noqa: SIM115 - closed in finish
        logger.info("profiling run %s in %s", self.run_id, self.path)

    def elapsed(self) -> float:
        """Seconds since the writer started, on the writer's monotonic clock."""
        return self._clock() - self._t0

    def sample(self, record: dict) -> dict:
        """Append one sample; ``t``, ``wall`` and ``rank`` are filled in when absent. ``t`` never
        goes backwards (a smaller given ``t`` is raised to the previous one)."""
        rec = dict(record)
        t = float(rec.get("t", self.elapsed()))
        rec["t"] = round(max(t, self._last_t), 6)
        self._last_t = rec["t"]
        rec.setdefault("wall", round(time.time(), 3))
        rec.setdefault("rank", self.rank)
        self._fh.write(json.dumps(rec, separators=(",", ":"), default=str) + "\n")
        self._fh.flush()
        return rec

    def finish(self, summary: dict | None = None, status: str = "finished") -> Path:
        """Write the summary (with ``status``) and close the samples file; idempotent."""
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
        if self.finished:
            return self.summary_path
        self.finished = True
        self._fh.close()
        out = {
            **(summary or {}),
            "schema_version": SCHEMA_VERSION,
            "run_id": self.run_id,
            "rank": self.rank,
            "status": status,
            "ended_at": utc_now(),
            "duration_s": round(self.elapsed(), 6),
        }
        write_json_atomic(self.summary_path, out)
        return self.summary_path

    def __enter__(self) -> RunWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if not self.finished:
            if exc_type is None:
                self.finish()
            else:
                status = "interrupted" if issubclass(exc_type, KeyboardInterrupt) else "failed"
                self.finish({"error": f"{exc_type.__name__}: {exc}"}, status=status)


# ---- reading ----------------------------------------------------------------------------------


@dataclass
class JsonlTail:
    """What :func:`read_jsonl_tail` found after ``offset``: the complete records, the offset to
    read from next time, how many complete lines were not JSON objects, and whether an unfinished
    last line was left for next time."""

    records: list[dict] = field(default_factory=list)
    offset: int = 0
    bad_lines: int = 0
    partial: bool = False


def read_jsonl_tail(path: str | Path, offset: int = 0, max_bytes: int = 64 << 20) -> JsonlTail:
    """Read the complete lines appended to ``path`` since byte ``offset``.

    A last line without its newline is being written: it is not consumed (``offset`` stops before
    it). A file that shrank (rewritten) is read again from the start. ``max_bytes`` bounds one read
    so a huge file is taken in pieces rather than all at once.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError:
        return JsonlTail(offset=0)
    if size < offset:
        offset = 0
    with open(path, "rb") as fh:
        fh.seek(offset)
        data = fh.read(max_bytes)
    end = data.rfind(b"\n")
    out = JsonlTail(offset=offset)
    if end < 0:
        out.partial = bool(data)
        return out
    out.partial = end + 1 < len(data)
    for line in data[: end + 1].splitlines():
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            out.bad_lines += 1
            continue
        if isinstance(rec, dict):
            out.records.append(rec)
        else:
            out.bad_lines += 1
    out.offset = offset + end + 1
    return out


def read_json(path: str | Path) -> dict | None:
    """A JSON object from ``path``, or None when it is missing, unreadable or not an object."""
    try:
        obj = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return obj if isinstance(obj, dict) else None


def rank_files(run_dir: str | Path) -> dict[int, tuple[Path, Path]]:
    """``{rank: (samples path, summary path)}`` for the ranks that wrote a samples file."""
    run_dir = Path(run_dir)
    out: dict[int, tuple[Path, Path]] = {}
    if (run_dir / SAMPLES_NAME).is_file():
        out[0] = (run_dir / SAMPLES_NAME, run_dir / SUMMARY_NAME)
    for p in sorted(run_dir.iterdir()) if run_dir.is_dir() else ():
        m = RANK_SAMPLES.match(p.name)
        if m:
            rank = int(m.group(1))
            out[rank] = (p, run_dir / f"summary.rank{rank}.json")
    return dict(sorted(out.items()))


def warmup_end(samples: Iterable[dict]) -> float | None:
    """The ``t`` of the first sample by which a batch had arrived: the end of the warm-up.

    Intervals up to it carry the pipeline build and first fill; the steady state is the samples
    after it, and only those count in medians and percentiles.
    """
    for rec in samples:
        if int(rec.get("batches") or 0) > 0:
            return float(rec.get("t") or 0.0)
    return None
