"""The local process pool: run one picklable function over many tasks on the usable CPUs.

Shared by ``preprocess`` (one task per group) and raw mode's cache warming (one per chunk of
files), which need the same things of a pool: results as tasks finish, in whatever order; a
bounded number of tasks in flight (one per worker, so the parent never holds more than a few
pending tasks and results, whatever the number of tasks); no worker outliving the run; and a run
that survives a worker's death.

:class:`LocalExecutor` runs over the CPUs this process may use (:func:`available_cpus`, which
respects ``taskset`` and container CPU sets). ``workers=1`` runs the tasks in this process: the
same code, no pickling, easy to debug and profile (and nothing to survive a crash: give
``memory_limit`` or more workers for that).

Why not :mod:`multiprocessing` or :class:`concurrent.futures.ProcessPoolExecutor`:

* Their queues are built on named POSIX semaphores (``/dev/shm/sem.mp-*``) that only the resource
  tracker process removes; a ``kill -9`` of the run (or of its process group) leaves them behind.
  Here each worker is a plain child process (``python -c``, importing only this module) that
  talks to the parent over its stdin and stdout pipes, in length-prefixed pickles: nothing named
  is ever created, and the kernel reclaims pipes with the processes.
* A dead worker breaks the whole ``ProcessPoolExecutor``: every pending task fails with
  ``BrokenProcessPool`` and nobody knows which task killed it. Here the parent sees which worker
  died, while running which task, and how (an exit status or a signal: ``SIGKILL`` is what the
  kernel's OOM killer sends). It raises :class:`WorkerDied`, or, given ``on_death``, hands the
  task to it and goes on with a fresh worker.
* Spawned ``multiprocessing`` workers import the main module again, which fails for a script read
  from standard input or ``python -c`` and needs an ``if __name__ == "__main__":`` guard. These
  workers import the task function by its module name only (``fn`` must be a module-level
  function of an importable module), with the parent's ``sys.path``.

On Linux each worker dies with the main process (the parent-death signal, see
:func:`_die_with_parent`), so SIGKILL or SIGTERM of the run leaves no process and no file behind.
Workers ignore SIGINT: Ctrl-C reaches the parent, which stops them.
"""

from __future__ import annotations

import ctypes
import os
import pickle
import selectors
import signal
import struct
import subprocess
import sys
import traceback
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any

_PR_SET_PDEATHSIG = 1
_FRAME = struct.Struct("<Q")
#: the smallest ``memory_limit`` accepted: the interpreter and its libraries need this much
#: address space before reading anything
MIN_MEMORY_LIMIT = 256 << 20


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


class WorkerDied(RuntimeError):
    """A worker process died while running ``task`` (``how``: its exit status or signal)."""

    def __init__(self, task: Any, how: str, describe: Callable[[Any], str] | None = None):
        self.task = task
        self.how = how
        what = describe(task) if describe else _short(task)
        super().__init__(f"a worker process died while running {what}: {how}")


def _short(task: Any) -> str:
    text = repr(task)
    return text if len(text) <= 200 else text[:197] + "..."


def death_cause(returncode: int | None) -> str:
    """A process's end in words: ``killed by SIGKILL ...`` or ``exit status N``."""
    if returncode is None:
        return "its pipe closed"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        hint = (
            ", what the kernel's OOM killer sends when memory runs out" if name == "SIGKILL" else ""
        )
        return f"killed by {name}{hint}"
    return f"exit status {returncode}"


# ---------------------------------------------------------------- the wire


def _send(fh: IO[bytes], obj: Any) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    fh.write(_FRAME.pack(len(data)))
    fh.write(data)
    fh.flush()


def _read_exact(fh: IO[bytes], n: int) -> bytes:
    """``n`` bytes of ``fh`` (a buffered or a raw file); EOFError if it ends first."""
    parts, got = [], 0
    while got < n:
        chunk = fh.read(n - got)
        if not chunk:
            raise EOFError
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def _recv(fh: IO[bytes]) -> Any:
    """The next object on ``fh``; EOFError when the other end closed (or died) mid-frame."""
    (size,) = _FRAME.unpack(_read_exact(fh, _FRAME.size))
    return pickle.loads(_read_exact(fh, size))


class _RemoteTraceback(Exception):
    """The worker's traceback, chained to the exception re-raised in the parent."""

    def __str__(self) -> str:
        return self.args[0]


def _portable_exception(exc: BaseException) -> BaseException:
    """``exc`` if it survives pickling, else a RuntimeError with its type and text."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")
    return exc


# ---------------------------------------------------------------- the worker side


def _die_with_parent(parent_pid: int) -> None:
    """On Linux, have the kernel kill this worker when the main process dies.

    Without this, a ``kill -9`` of the main process would leave its workers finishing their current
    task while a rerun processes the same task (both writing the same temporary names). Workers are
    direct children of the main process, so the parent-death signal is tied to it.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # no prctl: the worker exits when its stdin closes
        return
    if os.getppid() != parent_pid:  # the parent died before the signal was armed
        os._exit(1)


def _worker_main(parent_pid: int, memory_limit: int | None) -> None:
    """A worker's life: the function, then tasks until stdin closes, each answered in order."""
    wire_in = os.fdopen(os.dup(0), "rb")
    wire_out = os.fdopen(os.dup(1), "wb")
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(2, 1)  # whatever a task prints goes to stderr, never into the wire
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent(parent_pid)
    if memory_limit:
        import resource  # POSIX only, like the pool

        resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))
    fn = _recv(wire_in)
    _send(wire_out, ("ready",))
    while True:
        try:
            task = _recv(wire_in)
        except EOFError:
            return
        try:
            reply: tuple = ("ok", fn(task))
        except BaseException as exc:  # reported to the parent, which decides
            reply = ("err", _portable_exception(exc), traceback.format_exc())
        try:
            _send(wire_out, reply)
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            _send(wire_out, ("err", RuntimeError(f"unpicklable result: {exc}"), ""))


_BOOT = "import sys; sys.path[:] = {path!r}; from rrweb_dali.parallel import _worker_main; " + (
    "_worker_main({pid}, {limit})"
)


# ---------------------------------------------------------------- the parent side


class _Worker:
    """One child process and the task it was last given (``busy`` until it answers)."""

    def __init__(self, fn_frame: bytes, memory_limit: int | None):
        code = _BOOT.format(path=list(sys.path), pid=os.getpid(), limit=memory_limit)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            bufsize=0,  # unbuffered: a frame read ahead into a buffer would hide from select()
        )
        self.task: Any = None
        self.busy = False
        self.ready = False  # it imported the function
        self.done = 0
        self._write(fn_frame)

    @property
    def stdout(self) -> IO[bytes]:
        assert self.proc.stdout is not None
        return self.proc.stdout

    def _write(self, frame: bytes) -> None:
        stdin = self.proc.stdin
        assert stdin is not None
        try:
            for part in (_FRAME.pack(len(frame)), frame):
                view = memoryview(part)
                while view:  # a raw pipe may take a frame in several writes
                    view = view[stdin.write(view) :]
        except (BrokenPipeError, ConnectionResetError):
            pass  # it died: its stdout reaches EOF, which is where the parent notices

    def give(self, task: Any) -> None:
        self.task, self.busy = task, True
        self._write(pickle.dumps(task, protocol=pickle.HIGHEST_PROTOCOL))

    def read_frame(self) -> tuple | None:
        """The worker's next message, or ``None`` if it died (its stdout closed)."""
        try:
            frame = _recv(self.stdout)
        except (EOFError, OSError):
            return None
        if frame[0] == "ready":
            self.ready = True
        else:
            self.busy = False
            self.done += 1
        return frame

    def stop(self, kill: bool) -> None:
        """Close the pipes and reap the process (killing it first when ``kill``)."""
        if kill and self.proc.poll() is None:
            self.proc.kill()
        for fh in (self.proc.stdin, self.proc.stdout):
            try:
                if fh is not None:
                    fh.close()
            except OSError:
                pass
        self.proc.wait()


class LocalExecutor:
    """A pool of worker processes (or, with one worker, this process) running ``fn`` over tasks.

    ``memory_limit`` caps each worker's address space (``RLIMIT_AS``, in bytes): a task that needs
    more gets a ``MemoryError`` in the worker (or the worker dies), instead of the machine running
    out of memory and the kernel's OOM killer choosing a victim. ``tasks_per_worker`` retires a
    worker after that many tasks (``1``: a fresh process for every task).
    """

    def __init__(
        self,
        workers: int | None = None,
        memory_limit: int | None = None,
        tasks_per_worker: int | None = None,
    ):
        self.workers = workers or available_cpus()
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        if memory_limit is not None and memory_limit < MIN_MEMORY_LIMIT:
            raise ValueError(
                f"the worker memory limit must be at least {MIN_MEMORY_LIMIT >> 20} MB, "
                f"got {memory_limit / 2**20:.0f} MB"
            )
        if tasks_per_worker is not None and tasks_per_worker < 1:
            raise ValueError(f"tasks_per_worker must be >= 1, got {tasks_per_worker}")
        self.memory_limit = memory_limit
        self.tasks_per_worker = tasks_per_worker

    @property
    def in_process(self) -> bool:
        """Whether tasks run in this process (one worker, nothing that needs a separate one)."""
        return self.workers == 1 and self.memory_limit is None and self.tasks_per_worker is None

    def map_unordered(
        self,
        fn: Callable[[Any], Any],
        tasks: Iterable[Any],
        on_death: Callable[[Any, WorkerDied], Any] | None = None,
        describe: Callable[[Any], str] | None = None,
    ) -> Iterator[Any]:
        """``fn(task)`` for every task, yielded as they finish.

        A task that raises stops the run: its exception is re-raised here (with the worker's
        traceback chained) after the other running tasks end. A worker that dies raises
        :class:`WorkerDied` (``describe(task)`` names the task in its message), unless
        ``on_death(task, death)`` is given: then its return value is yielded as the task's result
        and the run goes on with a fresh worker. A worker that dies before it could even import
        ``fn`` is a broken setup, not a bad task: RuntimeError.
        """
        if self.in_process:
            for t in tasks:
                yield fn(t)
            return
        if getattr(fn, "__module__", None) == "__main__":
            raise ValueError(
                f"{getattr(fn, '__qualname__', fn)!r} is defined in __main__: worker processes "
                "import the task function by module name, so it must live in an importable module"
            )
        queue = iter(tasks)
        fn_frame = pickle.dumps(fn, protocol=pickle.HIGHEST_PROTOCOL)
        workers: list[_Worker] = []
        sel = selectors.DefaultSelector()

        def start(task: Any) -> None:
            w = _Worker(fn_frame, self.memory_limit)
            workers.append(w)
            sel.register(w.stdout, selectors.EVENT_READ, w)
            w.give(task)

        def remove(w: _Worker, kill: bool) -> None:
            sel.unregister(w.stdout)
            workers.remove(w)
            w.stop(kill=kill)

        failed = False
        try:
            for _ in range(self.workers):
                task = next(queue, _END)
                if task is _END:
                    break
                start(task)
            while workers:
                for key, _ in sel.select():
                    w: _Worker = key.data
                    frame = w.read_frame()
                    if frame is not None and frame[0] == "ready":
                        continue
                    if frame is None:
                        how = death_cause(w.proc.wait())
                        if not w.ready:
                            raise RuntimeError(
                                f"a worker process could not start ({how}); its error, if any, "
                                "is on stderr"
                            )
                        death = WorkerDied(w.task, how, describe)
                        remove(w, kill=True)
                        task = next(queue, _END)
                        if task is not _END:
                            start(task)
                        if on_death is None:
                            raise death
                        yield on_death(death.task, death)
                        continue
                    if frame[0] == "err":
                        exc, tb = frame[1], frame[2]
                        exc.__cause__ = _RemoteTraceback(tb)
                        raise exc
                    task = next(queue, _END)
                    if task is _END:
                        remove(w, kill=False)
                    elif self.tasks_per_worker and w.done >= self.tasks_per_worker:
                        remove(w, kill=False)
                        start(task)
                    else:
                        w.give(task)
                    yield frame[1]
        except Exception:
            failed = True
            for w in workers:  # let their running tasks end (their own clean-up runs)
                while w.busy and w.read_frame() is not None:
                    pass
            raise
        finally:
            sel.close()
            for w in workers:
                w.stop(kill=failed or w.busy)


_END = object()
