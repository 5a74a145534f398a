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

The hand-off is a ``deque`` (appends and pops are atomic) with two plain locks used as signals,
never held while the other side runs: the consumer takes a ready item without acquiring any lock
the producer could hold. With a ``queue.Queue`` it sometimes blocked on the queue's mutex while
the producer held it; the producer then kept the GIL in Python code, and ``get()`` waited the
interpreter's 5 ms switch interval for a ready item (seen at epoch boundaries at batch 256).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")
_POLL_S = 0.05  # how often a blocked side looks for stop() or a dead producer


class _Failure:
    def __init__(self, error: BaseException):
        self.error = error


def _signal(lock: threading.Lock) -> None:
    """Wake the other side if it waits on ``lock`` (only this side ever releases it)."""
    if lock.locked():
        lock.release()


class Ahead(Generic[T]):
    """``count`` results of ``produce()``, computed at most ``depth`` ahead of ``get()``."""

    def __init__(
        self,
        produce: Callable[[], T],
        count: int,
        depth: int = 2,
        name: str = "ahead",
        then: Callable[[], None] | None = None,
    ):
        """``then`` runs on the producer's thread once the last item is handed over (not after a
        failure or ``stop()``): the runner starts the next epoch's thread from there, so that
        starting a thread never blocks the consumer."""
        if depth < 1:
            raise ValueError("depth must be at least 1")
        self._produce = produce
        self._then = then
        self._count = int(count)
        self._taken = 0
        self._depth = depth
        self._items: deque = deque()
        self._item_ready = threading.Lock()  # released by the producer after an append
        self._room = threading.Lock()  # released by the consumer after a pop
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    @property
    def remaining(self) -> int:
        """Items not yet returned by ``get()``."""
        return self._count - self._taken

    @property
    def producing(self) -> bool:
        """Whether the producer's thread is still alive (making items, or in ``then``)."""
        return self._thread.is_alive()

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
        if self._then is not None and not self._stopping.is_set():
            self._then()

    def _put(self, item) -> bool:
        while len(self._items) >= self._depth:
            if self._stopping.is_set():
                return False
            self._room.acquire(timeout=_POLL_S)  # returns at once if room was signalled
        if self._stopping.is_set():
            return False
        self._items.append(item)
        _signal(self._item_ready)
        return True

    def get(self) -> T:
        """The next item, waiting for it if needed."""
        if self._taken >= self._count:
            raise RuntimeError("Ahead.get() called after the last item")
        items = self._items
        while not items:
            if not self._thread.is_alive() and not items:
                raise RuntimeError("the producer thread ended without an item")
            self._item_ready.acquire(timeout=_POLL_S)  # returns at once if an item was signalled
        item = items.popleft()
        _signal(self._room)
        if isinstance(item, _Failure):
            self._count = self._taken  # nothing comes after a failure
            raise item.error
        self._taken += 1
        return item

    def join(self) -> None:
        """Wait for the producer's thread to end (after its last item, ``then`` included)."""
        if threading.current_thread() is not self._thread:
            self._thread.join()

    def stop(self) -> None:
        """Discard what is queued and wait for the producer to finish its current item (from the
        producer's own thread, as a finalizer may run there, only ask it to stop)."""
        self._stopping.set()
        if threading.current_thread() is self._thread:
            return
        while self._thread.is_alive():
            self._items.clear()
            _signal(self._room)
            self._thread.join(timeout=_POLL_S)
        self._items.clear()
