"""Executors: run :func:`~rrweb_dali.preprocess.task.run_group` over many groups.

Both executors run the *same* task function and yield its results as groups finish, in whatever
order they finish; the outputs do not depend on that order because each group writes only its own
files and the parent merges the records in group order.

``local``
    A process pool over the CPUs this process may use (``os.sched_getaffinity``, which respects
    ``taskset`` and container CPU sets). ``workers=1`` runs the groups in this process: the same
    code, no pickling, easy to debug and profile. The pool uses the ``spawn`` start method: fresh
    interpreters, not forks of a parent that may hold threads (tqdm's monitor, a logging handler)
    whose locks a fork would copy; and on Linux each worker dies with the main process (see
    :func:`_die_with_parent`).
``ray``
    Each group is a Ray task (``num_cpus=1``) on ``ray.init(address)``, or on a local Ray started
    for the run. The workers write the shards themselves, so on a multi-node cluster the output
    directory must be on a file system every node sees at the same path. Ray retries a group whose
    worker died; that is safe because a group's writes are atomic and deterministic.

Both keep at most ``2 x workers`` groups in flight, so the parent never holds more than a few
pending tasks and results, whatever the size of the corpus. :func:`run_with_progress` drives
either one and shows the progress bar.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

from tqdm import tqdm

from rrweb_dali.preprocess.task import GroupResult, GroupTask, run_group

logger = logging.getLogger(__name__)

EXECUTORS = ("local", "ray")
_PR_SET_PDEATHSIG = 1


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def _die_with_parent(parent_pid: int) -> None:
    """Pool worker initializer: on Linux, have the kernel kill the worker when the main process dies.

    Without this, a ``kill -9`` of the main process would leave its workers finishing their current
    group while a rerun processes the same group (both writing the same temporary names), and then
    waiting forever on a queue no one feeds. Workers are direct children of the main process
    (``spawn``), so the parent-death signal is tied to it.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # no prctl: workers exit after their current group
        return
    if os.getppid() != parent_pid:  # the parent died before the signal was armed
        os._exit(1)


class LocalExecutor:
    """A process pool (or, with one worker, this process) running ``fn`` over tasks."""

    def __init__(self, workers: int | None = None):
        self.workers = workers or available_cpus()
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")

    def map_unordered(self, fn: Callable[[Any], Any], tasks: Iterable[Any]) -> Iterator[Any]:
        tasks = list(tasks)
        if self.workers == 1 or len(tasks) <= 1:
            for t in tasks:
                yield fn(t)
            return
        workers = min(self.workers, len(tasks))
        pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_die_with_parent,
            initargs=(os.getpid(),),
        )
        try:
            pending: set[Future] = set()
            queue = iter(tasks)
            for t in queue:
                pending.add(pool.submit(fn, t))
                if len(pending) >= 2 * workers:
                    break
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    result = fut.result()  # a group that failed as a whole stops the run
                    nxt = next(queue, None)
                    if nxt is not None:
                        pending.add(pool.submit(fn, nxt))
                    yield result
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


class RayExecutor:
    """Groups as Ray tasks on an existing cluster (``address``) or a local Ray started here."""

    def __init__(self, address: str | None = None, workers: int | None = None):
        try:
            import ray
        except ModuleNotFoundError:
            raise RuntimeError(
                "the ray executor needs Ray: pip install 'rrweb-dali[ray]'"
            ) from None
        self._ray = ray
        self.address = address
        self.workers = workers

    def map_unordered(self, fn: Callable[[Any], Any], tasks: Iterable[Any]) -> Iterator[Any]:
        ray = self._ray
        started_here = False
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": True}
            if self.address:
                kwargs["address"] = self.address
            else:
                kwargs["num_cpus"] = self.workers or available_cpus()
            ray.init(**kwargs)
            started_here = True
        try:
            cpus = int(ray.cluster_resources().get("CPU", 1))
            in_flight = 2 * max(1, self.workers or cpus)
            remote = ray.remote(num_cpus=1, max_retries=2)(fn)
            queue = iter(tasks)
            pending = []
            for t in queue:
                pending.append(remote.remote(t))
                if len(pending) >= in_flight:
                    break
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                result = ray.get(done[0])
                nxt = next(queue, None)
                if nxt is not None:
                    pending.append(remote.remote(nxt))
                yield result
        finally:
            if started_here:
                ray.shutdown()


def make_executor(
    kind: str = "local", workers: int | None = None, ray_address: str | None = None
) -> LocalExecutor | RayExecutor:
    if kind == "local":
        if ray_address:
            raise ValueError("--ray-address needs --executor ray")
        return LocalExecutor(workers)
    if kind == "ray":
        return RayExecutor(ray_address, workers)
    raise ValueError(f"unknown executor {kind!r}; expected one of {EXECUTORS}")


def run_with_progress(
    executor: LocalExecutor | RayExecutor,
    tasks: list[GroupTask],
    group_bytes: dict[int, int],
    progress: bool,
) -> tuple[int, int]:
    """Run ``tasks`` on ``executor``, logging each unexpected per-file error with its traceback
    and showing a progress bar on stderr (bytes, MB/s, ETA; files, tokens/s, errors so far).
    Returns (files, tokens) processed."""
    bytes_total = sum(group_bytes.values())
    files_total = sum(len(t.files) for t in tasks)
    files = tokens = errors = 0
    start = time.perf_counter()
    with tqdm(
        total=bytes_total,
        unit="B",
        unit_scale=True,
        desc="preprocess",
        file=sys.stderr,
        disable=not progress,
        dynamic_ncols=True,
        smoothing=0.05,
    ) as bar:
        result: GroupResult
        for result in executor.map_unordered(run_group, tasks):
            rec = result.record
            for tb in result.tracebacks:
                logger.error("unexpected error, recorded in errors.jsonl: %s", tb)
            files += len(rec["files"])
            tokens += rec["counts"]["tokens"]
            errors += rec["counts"]["files_rejected"]
            elapsed = max(time.perf_counter() - start, 1e-9)
            bar.set_postfix_str(
                f"files {files}/{files_total}, {tokens / elapsed / 1e6:.2f}M tok/s, errors {errors}",
                refresh=False,
            )
            bar.update(group_bytes[rec["group"]])
    return files, tokens
