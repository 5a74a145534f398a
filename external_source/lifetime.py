"""Worker processes that end with the process that started them.

With ``parallel=True`` DALI runs the batch source in spawned worker processes, and stops them only
when the pipeline is closed. A training process killed with SIGKILL (the OOM killer, a scheduler's
preemption) or SIGTERM never closes it: its workers (100-150 MB each) waited on their task queue
forever, and with them ``multiprocessing``'s resource tracker, which unlinks the pipeline's named
semaphores (``sem.mp-*`` in ``/dev/shm``) only once every process holding its pipe has exited.

So a :class:`~rrweb_dali.external_source.source.BatchSource` unpickled in a process spawned by the
one that pickled it (which is how it reaches a DALI worker) calls :func:`exit_with_parent`: a
daemon thread waits on the parent's sentinel (``multiprocessing.parent_process().sentinel``, the
read end of a pipe whose write end only the parent holds: it becomes readable the moment the parent
is gone, however it died) and ends the worker with ``os._exit``. Once the workers are gone the
resource tracker sees its pipe close and unlinks the semaphores, so nothing is left in shared
memory (DALI's own chunks, ``/dev/shm/nvidia_dali_*``, are unlinked as soon as they are created
and freed with the last process that maps them). The thread also checks ``os.getppid()`` every
second, for a parent whose pipe another process still holds open (a fork of it).

Why not the parent-death signal (``prctl(PR_SET_PDEATHSIG)``, which :mod:`rrweb_dali.parallel`
uses for ``preprocess``'s pool): the kernel sends it when the *thread* that started the child
exits, and DALI starts its workers from whichever thread first iterates the loader, which may be
a short-lived one; the workers would die under a loader that is still in use.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from multiprocessing.connection import wait

POLL_S = 1.0  # how often the watchdog also compares os.getppid() (the sentinel needs no polling)
_EXIT_CODE = 70  # EX_SOFTWARE: the worker ended because its parent did
_watched: set[int] = set()  # parents this process already watches (one thread each)
_lock = threading.Lock()


def exit_with_parent(parent_pid: int) -> bool:
    """End this process when the process ``parent_pid`` is gone, if it is this process's
    ``multiprocessing`` parent; returns whether a watchdog runs for it.

    A no-op in the parent itself (a source unpickled where it was pickled, e.g. ``copy``) and in
    any process that ``parent_pid`` did not spawn (a pickle loaded elsewhere): only a worker that
    would be orphaned is ever ended.
    """
    parent = multiprocessing.parent_process()
    if parent_pid == os.getpid() or parent is None or parent.pid != parent_pid:
        return False
    try:
        sentinel = parent.sentinel
    except ValueError:  # no handle on the parent: nothing to wait on
        return False
    with _lock:
        if parent_pid in _watched:
            return True
        _watched.add(parent_pid)
    thread = threading.Thread(
        target=_watch, args=(parent_pid, sentinel), name="rrweb-dali-parent-watch", daemon=True
    )
    thread.start()
    return True


def _watch(parent_pid: int, sentinel: int) -> None:
    while True:
        if wait([sentinel], timeout=POLL_S) or os.getppid() != parent_pid:
            os._exit(_EXIT_CODE)  # nothing to clean up: unflushed cache rows are never visible
