"""The training-loop hook: ``with profile(loader, RUNS) as loader: for batch in loader: ...``.

A background thread wakes every ``interval_s`` and turns ``loader.stats()`` into a sample line, so
the hot path pays only for timing ``next`` (two clock reads and an add per batch) and the samples
keep coming while the loop is stuck (a long step, or a loader that stalls). The yielded
:class:`ProfiledLoader` is the loader with its iteration timed; everything else (``set_epoch``,
``state_dict``, ``len``) passes through.

``Loader.stats()`` must be safe to call from another thread while the loop runs: it only reads
counters and never moves the loader's position.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from rrweb_dali.profiling import system
from rrweb_dali.profiling.dataset import loader_dataset
from rrweb_dali.profiling.meter import SampleBuilder
from rrweb_dali.profiling.runfiles import RunWriter, safe_name

logger = logging.getLogger(__name__)

# What each stage of a sample means for the DALI loader, and why two are null. Goes to meta.json.
LOADER_STAGE_NOTES = {
    "read": "Loader.stats() gather_s: the batch source's memory-mapped reads and the concatenate "
    "of a batch's rows into one host buffer, summed wherever the source ran (worker processes "
    "included); it includes the host copy",
    "host_copy": None,
    "h2d": None,
    "pad": "Loader.stats() finish_s: the step after the pipeline that completes a batch; on the "
    "CPU device the mask (and labels, positions) for rows the source padded, in the loader's "
    "background thread; on a GPU the time to launch the device-side gather (the kernels run "
    "asynchronously)",
    "null": "host_copy is part of read (one concatenate is the copy); h2d happens inside the DALI "
    "graph and is not timed on its own: both are null, not estimated",
}


def loader_stages(stats: dict) -> dict[str, float | None]:
    """Map ``Loader.stats()`` onto the sample stages (null where the loader has no timer)."""
    return {
        "read": stats.get("gather_s"),
        "host_copy": None,
        "h2d": None,
        "pad": stats.get("finish_s"),
    }


def loader_cache(loader) -> dict | None:
    """``loader.cache_stats()`` when the loader has a cache: hits, misses, evictions, bytes; for
    an ``s3://`` dataset (``"kind": "store"``) also the downloads, their bytes and seconds and
    the seconds the source waited for shards (see :data:`~.runfiles.STORE_FIELDS`)."""
    fn = getattr(loader, "cache_stats", None)
    if fn is None:
        return None
    stats = fn()
    return dict(stats) if stats is not None else None


def describe_loader(loader) -> dict:
    """Loader options for ``meta.json``: the loader's own ``describe()`` when it has one (the
    DALI loader does: plan, outputs, pipeline, dataset), else what any iterable tells."""
    describe = getattr(loader, "describe", None)
    if callable(describe):
        return dict(describe())
    out: dict = {"class": f"{type(loader).__module__}.{type(loader).__qualname__}"}
    with contextlib.suppress(TypeError):
        out["batches_per_epoch"] = len(loader)
    for attr in ("rank", "world_size"):
        if hasattr(loader, attr):
            out[attr] = getattr(loader, attr)
    return out


def shared_run_id(name: str, world_size: int) -> str | None:
    """A run folder name every rank of a torchrun job agrees on, or None for a single process.

    torchrun gives all ranks of one job the same ``TORCHELASTIC_RUN_ID`` (a fresh UUID under
    ``--standalone``); without one (or with torchrun's default ``none``) ranks cannot agree
    without talking, so the caller must pass ``run_id``.
    """
    if world_size <= 1:
        return None
    job = os.environ.get("TORCHELASTIC_RUN_ID", "")
    if not job or job == "none":
        raise ValueError(
            "several ranks but no shared job id (torchrun --standalone sets one); pass run_id"
        )
    return f"{safe_name(name)}-{safe_name(job)[:12]}"


def _pass_kind(misses: int | None, hits: int | None, downloads: int | None = None) -> str | None:
    """A pass was "cold" when its cache missed (raw files tokenized, or shards downloaded from
    the store), "warm" when it only hit."""
    if misses is None:
        return None
    if misses > 0 or (downloads or 0) > 0:
        return "cold"
    return "warm" if (hits or 0) > 0 else None


# The store counters a pass's record carries (its differences over the pass), for s3:// data.
PASS_STORE_FIELDS = ("hits", "misses", "downloads", "download_bytes", "download_s", "wait_s")


def _sub(a, b) -> int | float | None:
    if a is None or b is None:
        return None
    out = a - b
    return round(out, 6) if isinstance(out, float) else out


class LoaderProfiler:
    """Samples a loader's counters from a background thread into a :class:`RunWriter`, and
    times each pass over the data (epochs: the loop's ``iter``, to its end or its break)."""

    def __init__(
        self,
        loader,
        writer: RunWriter,
        interval_s: float = 0.5,
        gpu_device: int | None = None,
        memory: bool = True,
    ):
        self.loader = loader
        self.writer = writer
        self.interval_s = float(interval_s)
        self.builder = SampleBuilder(gpu_device, memory=memory, min_rate_dt=interval_s / 4)
        self.loop_wait_s = 0.0  # written by the loop's thread only
        self.waiting_since: float | None = None  # perf_counter() while the loop is in next()
        self._lock = threading.Lock()  # one sample at a time (thread vs. final sample)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.summary: dict | None = None
        self.epochs: list[dict] = []  # every pass that ended, for the summary
        self._pending: list[dict] = []  # passes that ended since the last sample
        self._passes_lock = threading.Lock()
        self._pass_start: dict | None = None

    def _counts(self) -> dict:
        stats = self.loader.stats()
        cache = loader_cache(self.loader) or {}
        out = {
            "t": self.writer.elapsed(),
            "epoch": stats.get("epoch"),
            **{k: stats.get(k) for k in ("batches", "rows", "tokens")},
            "wait_s": self.loop_wait_s,
            "misses": cache.get("misses"),
            "hits": cache.get("hits"),
        }
        if cache.get("kind") == "store":
            out["store"] = {k: cache.get(k) for k in PASS_STORE_FIELDS}
        return out

    def pass_started(self) -> None:
        """Called by the loop's thread as a pass begins."""
        self._pass_start = self._counts()

    def pass_ended(self, complete: bool) -> None:
        """Called by the loop's thread as a pass ends (``complete``: it ran to its end)."""
        start, self._pass_start = self._pass_start, None
        if start is None:
            return
        end = self._counts()

        def d(key: str) -> int | float | None:
            a, b = end[key], start[key]
            return None if a is None or b is None else a - b

        rec = {
            "epoch": start["epoch"],
            "t0": round(start["t"], 6),
            "seconds": round(end["t"] - start["t"], 6),
            "batches": d("batches"),
            "rows": d("rows"),
            "tokens": d("tokens"),
            "wait_s": None if d("wait_s") is None else round(d("wait_s"), 6),
            "complete": complete,
        }
        store = None
        if "store" in start and "store" in end:
            store = {k: _sub(end["store"].get(k), start["store"].get(k)) for k in PASS_STORE_FIELDS}
            rec["store"] = store
        rec["kind"] = _pass_kind(d("misses"), d("hits"), (store or {}).get("downloads"))
        if not rec["batches"]:
            return  # a pass that yielded nothing (a peek, an empty epoch) says nothing
        with self._passes_lock:
            self.epochs.append(rec)
            self._pending.append(rec)

    def _take_passes(self) -> dict | None:
        with self._passes_lock:
            ended, self._pending = self._pending, []
        return {"passes": ended} if ended else None

    def _loop_wait_now(self) -> float:
        """Cumulative wait including a wait still in progress, read without locking the loop."""
        since = self.waiting_since
        total = self.loop_wait_s
        if since is not None and since is self.waiting_since:
            total += time.perf_counter() - since
        return total

    def sample(self) -> dict:
        with self._lock:
            stats = self.loader.stats()
            rec = self.builder.build(
                self.writer.elapsed(),
                stats,
                loader_stages(stats),
                self._loop_wait_now(),
                loader_cache(self.loader),
                {"loader": stats, **(self._take_passes() or {})},
            )
            return self.writer.sample(rec)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.sample()
            except Exception:  # never take the training run down with the profiler
                logger.exception("profiler sample failed; sampling stops")
                return

    def start(self) -> LoaderProfiler:
        self.sample()
        self._thread = threading.Thread(target=self._run, name="rrweb-dali-profiler", daemon=True)
        self._thread.start()
        return self

    def stop(self, status: str = "finished", error: str | None = None) -> dict:
        """Stop the thread, write the final sample and the summary (with the loader's stats)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.sample()
        summary = self.builder.summary(self.writer.meta, self.epochs)
        summary["loader_stats"] = self.loader.stats()
        if error:
            summary["error"] = error
        self.writer.finish(summary, status=status)
        self.summary = summary
        return summary


class ProfiledLoader:
    """The loader with ``next`` timed: what the loop waited is the profile's ``loop_wait_s``."""

    def __init__(self, loader, profiler: LoaderProfiler):
        self._loader = loader
        self.profiler = profiler

    @property
    def run_dir(self) -> Path:
        return self.profiler.writer.path

    def __iter__(self) -> Iterator:
        prof = self.profiler
        clock = time.perf_counter
        it = iter(self._loader)
        prof.pass_started()
        complete = False
        try:
            while True:
                t0 = prof.waiting_since = clock()
                try:
                    batch = next(it)
                except StopIteration:
                    complete = True
                    return
                finally:
                    prof.loop_wait_s += clock() - t0
                    prof.waiting_since = None
                yield batch
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()
            prof.pass_ended(complete)

    def __len__(self) -> int:
        return len(self._loader)

    def __getattr__(self, name: str):
        return getattr(self._loader, name)


@contextlib.contextmanager
def profile(
    loader,
    runs_dir: str | Path,
    name: str = "train",
    *,
    interval_s: float = 0.5,
    meta: dict | None = None,
    run_id: str | None = None,
    gpu_device: int | None = None,
) -> Iterator[ProfiledLoader]:
    """Record a profile run of ``loader`` while the block runs; iterate the yielded object.

    Writes ``RUNS/<run_id>/`` (see :mod:`rrweb_dali.profiling.runfiles`); the summary's status is
    "finished", "failed" (the block raised) or "interrupted" (Ctrl-C). Under torchrun each rank
    writes its own samples file into the shared folder (see :func:`shared_run_id`).
    """
    rank = int(getattr(loader, "rank", 0))
    world = int(getattr(loader, "world_size", 1))
    if run_id is None:
        run_id = shared_run_id(name, world)
    description = describe_loader(loader)
    manifests = getattr(getattr(loader, "reader", None), "manifests", None)
    full_meta = {
        "kind": "train",
        **system.environment_meta(),
        "loader": description,
        "dataset": loader_dataset(description, manifests),
        "stage_notes": LOADER_STAGE_NOTES,
        "interval_s": interval_s,
        **(meta or {}),
    }
    writer = RunWriter(runs_dir, name, full_meta, run_id=run_id, rank=rank, world_size=world)
    profiler = LoaderProfiler(loader, writer, interval_s, gpu_device).start()
    status, error = "finished", None
    try:
        yield ProfiledLoader(loader, profiler)
    except KeyboardInterrupt:
        status, error = "interrupted", "KeyboardInterrupt"
        raise
    except BaseException as exc:
        status, error = "failed", f"{type(exc).__name__}: {exc}"
        raise
    finally:
        profiler.stop(status, error)
