"""The local process pool: run one picklable function over many tasks on the usable CPUs.

Shared by ``preprocess`` (one task per group) and raw mode's cache warming (one per chunk of
files), which need the same things of a pool: results as tasks finish, in whatever order; a
bounded number of tasks in flight (at most ``2 x workers``, so the parent never holds more than a
few pending tasks and results, whatever the number of tasks); and no worker outliving the run.

:class:`LocalExecutor` runs over the CPUs this process may use (:func:`available_cpus`, which
respects ``taskset`` and container CPU sets). ``workers=1`` runs the tasks in this process: the
same code, no pickling, easy to debug and profile. The pool uses the ``spawn`` start method:
fresh interpreters, not forks of a parent that may hold threads (tqdm's monitor, a logging
handler) whose locks a fork would copy; and on Linux each worker dies with the main process (see
:func:`_die_with_parent`).
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

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
    task while a rerun processes the same task (both writing the same temporary names), and then
    waiting forever on a queue no one feeds. Workers are direct children of the main process
    (``spawn``), so the parent-death signal is tied to it.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # no prctl: workers exit after their current task
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
                    result = fut.result()  # a task that raised stops the run
                    nxt = next(queue, None)
                    if nxt is not None:
                        pending.add(pool.submit(fn, nxt))
                    yield result
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
