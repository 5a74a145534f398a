"""Memory of the whole loader: this process, its worker processes, GPU memory, ``/dev/shm``.

The loader's batch source may run in spawned worker processes (DALI's ``py_workers``, raw mode's
cache warming) whose memory the main process's RSS does not include: raw-mode workers hold a few
hundred MiB each. So a sample adds the resident memory of every descendant process
(``workers_rss_bytes``, ``workers``); ``loader_rss_bytes`` is the sum with the main process. RSS
counts shared pages in each process, so the sum is an upper bound of what the loader holds.

``shm_bytes`` is what is in use on ``/dev/shm`` (the whole host's: DALI's worker processes pass
batches through shared memory there), None where there is no ``/dev/shm``.

Cheap enough twice a second (``/proc`` reads; psutil only to find children where ``/proc`` cannot
tell), and every reading degrades to None rather than failing.
"""

from __future__ import annotations

import os
from pathlib import Path

from rrweb_dali.profiling import system
from rrweb_dali.profiling.runfiles import MEMORY_FIELDS

_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
SHM = Path("/dev/shm")
FIELDS = MEMORY_FIELDS


def _proc_children(pid: int) -> list[int] | None:
    """Direct children of ``pid`` from ``/proc/PID/task/*/children``; None where unsupported."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    out: list[int] = []
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as fh:
                out.extend(int(x) for x in fh.read().split())
        except (OSError, ValueError):
            return None
    return out


def descendants(pid: int | None = None) -> list[int]:
    """Every process below ``pid`` (this process by default), children first."""
    pid = os.getpid() if pid is None else pid
    found: list[int] = []
    todo = [pid]
    while todo:
        kids = _proc_children(todo.pop())
        if kids is None:
            return _psutil_descendants(pid)
        found.extend(kids)
        todo.extend(kids)
    return found


def _psutil_descendants(pid: int) -> list[int]:
    try:
        import psutil

        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except Exception:  # psutil missing, or the process is gone: no workers known
        return []


def process_rss(pid: int) -> int | None:
    """Resident bytes of process ``pid`` (None when it has gone or cannot be read)."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as fh:
            return int(fh.read().split()[1]) * _PAGE_SIZE
    except (OSError, ValueError, IndexError):
        pass
    try:
        import psutil

        return int(psutil.Process(pid).memory_info().rss)
    except Exception:
        return None


def shm_bytes(path: Path = SHM) -> int | None:
    """Bytes in use on the shared-memory file system (None where there is none)."""
    try:
        st = os.statvfs(path)
    except (OSError, AttributeError):
        return None
    return int((st.f_blocks - st.f_bfree) * st.f_frsize)


def loader_memory(gpu_device: int | None = None) -> dict[str, int | None]:
    """One reading of :data:`FIELDS`."""
    main = system.rss_bytes()
    kids = [r for r in (process_rss(p) for p in descendants()) if r is not None]
    workers_rss = sum(kids) if kids else 0
    alloc, reserved = system.gpu_memory(gpu_device)
    return {
        "rss_bytes": main,
        "workers_rss_bytes": workers_rss,
        "workers": len(kids),
        "loader_rss_bytes": None if main is None else main + workers_rss,
        "gpu_allocated_bytes": alloc,
        "gpu_reserved_bytes": reserved,
        "shm_bytes": shm_bytes(),
    }
