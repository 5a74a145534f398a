"""A few daemon threads for background downloads.

Not a ``ThreadPoolExecutor``: Python joins an executor's threads when the program ends, so a
program that finished training while a download ahead was riding out a dead server's retries
would hang for as long as they last. Daemon threads end with the program; a download they leave
half done is only a ``.part`` file, which nothing reads, and whose lock the operating system
releases with the process (so the next process that looks removes it).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any


class DaemonPool:
    """``submit(fn, *args) -> Future`` run by ``threads`` daemon threads, started on first use."""

    def __init__(self, threads: int, name: str):
        self._size, self._name = threads, name
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        if not self._threads:
            for k in range(self._size):
                t = threading.Thread(target=self._work, name=f"{self._name}-{k}", daemon=True)
                t.start()
                self._threads.append(t)
        future: Future = Future()
        self._queue.put((future, fn, args))
        return future

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            future, fn, args = item
            if not future.set_running_or_notify_cancel():
                continue  # cancelled while queued
            try:
                future.set_result(fn(*args))
            except BaseException as exc:  # handed to whoever waits on the future
                future.set_exception(exc)

    def shutdown(self) -> None:
        """Let the threads end once the downloads running now are done (queued ones that were
        not cancelled still run first)."""
        for _ in self._threads:
            self._queue.put(None)
        self._threads = []
