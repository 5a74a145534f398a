"""Run a producer a few items ahead of its consumer, in a background thread.

Why: DALI prefetches what runs inside its graph, but a batch source fed on the calling thread
(``parallel=False``) runs inside ``pipe.run()``, and the loader's padding step runs after it. Left
on the training loop's thread, both are time the loop spends in ``next(loader)``. Run here, they
happen while the loop computes; and the parts that release the GIL (DALI's run, numpy's large
copies) use a second core even when the loop only consumes.

The contract is narrow: ``produce()`` is called exactly ``count`` times, in order, from one
thread; results reach ``get()`` in the same order. An exception from ``produce()`` is re-raised
by the ``get()`` that would have returned that item, and nothing is produced after it. ``stop()``
discards what was produced and not taken, and waits for the thread to end.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")
_POLL_S = 0.05  # how often a blocked producer looks for stop()


class _Failure:
    def __init__(self, error: BaseException):
        self.error = error


class Ahead(Generic[T]):
    """``count`` results of ``produce()``, computed at most ``depth`` ahead of ``get()``."""

    def __init__(self, produce: Callable[[], T], count: int, depth: int = 2, name: str = "ahead"):
        if depth < 1:
            raise ValueError("depth must be at least 1")
        self._produce = produce
        self._count = int(count)
        self._taken = 0
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    @property
    def remaining(self) -> int:
        """Items not yet returned by ``get()``."""
        return self._count - self._taken

    def _work(self) -> None:
        for _ in range(self._count):
            if self._stopping.is_set():
                return
            try:
                item = self._produce()
            except BaseException as error:  # handed to the consumer, raised there
                self._put(_Failure(error))
                return
            if not self._put(item):
                return

    def _put(self, item) -> bool:
        while not self._stopping.is_set():
            try:
                self._queue.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def get(self) -> T:
        """The next item, waiting for it if needed."""
        if self._taken >= self._count:
            raise RuntimeError("Ahead.get() called after the last item")
        while True:
            try:
                item = self._queue.get(timeout=_POLL_S)
                break
            except queue.Empty:
                if not self._thread.is_alive() and self._queue.empty():
                    raise RuntimeError("the producer thread ended without an item") from None
        if isinstance(item, _Failure):
            self._count = self._taken  # nothing comes after a failure
            raise item.error
        self._taken += 1
        return item

    def stop(self) -> None:
        """Discard what is queued and wait for the producer to finish its current item (from the
        producer's own thread, as a finalizer may run there, only ask it to stop)."""
        self._stopping.set()
        if threading.current_thread() is self._thread:
            return
        while self._thread.is_alive():
            self._drain()
            self._thread.join(timeout=_POLL_S)
        self._drain()

    def _drain(self) -> None:
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                return
