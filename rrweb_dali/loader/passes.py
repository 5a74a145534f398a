"""One pass over an epoch: the iterator ``iter(loader)`` returns.

A pass owns a :class:`~rrweb_dali.loader.runner.PipelineRunner` from its first ``next()`` until
it ends, so passes never share a pipeline: a second ``iter(loader)`` while one runs (a peek, a
framework holding its last iterator) gets a runner of its own and leaves the running pass
untouched. A pass ends when it has handed out its last batch (exhausted), when it is closed or
dropped (``break``; ``__del__`` closes it), or when an iteration fails; after an end other than
exhaustion ``next()`` raises ``RuntimeError`` rather than ending silently.

The position moves only when the loop receives a batch: ``batches`` counts what was handed out,
which is what ``Loader.state_dict()`` reports.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import torch

from rrweb_dali.loader.assemble import Finished
from rrweb_dali.loader.counters import Counters
from rrweb_dali.loader.runner import PipelineRunner, RunnerPool


@dataclass(frozen=True)
class PassContext:
    """What a pass needs of its loader, and nothing more."""

    runners: RunnerPool
    counters: Counters
    finish: Callable[[object], list[Finished]] | None  # on a GPU: DALI outputs -> batches
    stream: Callable[[], object]  # the consumer's CUDA stream (None on the CPU device)
    on_end: Callable[[Pass, bool], None]  # told once, with whether the pass was exhausted


class Pass:
    """The batches of ``epoch`` from global unit ``start`` for this loader's rank."""

    def __init__(self, context: PassContext, epoch: int, start: int, total: int, owner: object):
        """``owner`` (the loader) is kept alive while the pass is: ``for b in make_loader(...)``
        must not close its own pass when the loader object itself is a temporary."""
        self._context = context
        self._owner = owner
        self.epoch, self.start, self.total = epoch, start, total
        self.batches = 0  # handed out so far
        self._runner: PipelineRunner | None = None
        self._pending: deque[Finished] = deque()
        self._handed: dict | None = None  # the last batch handed out (see PipelineRunner.release)
        self._ended: str | None = None  # "exhausted", "closed" or "failed"

    @property
    def ended(self) -> bool:
        return self._ended is not None

    def __iter__(self) -> Pass:
        return self

    def __next__(self) -> dict[str, torch.Tensor]:
        if self._ended == "exhausted" or (self._ended is None and self.batches >= self.total):
            self._end("exhausted")
            raise StopIteration
        if self._ended is not None:
            raise RuntimeError(
                f"this pass over epoch {self.epoch} was {self._ended} after {self.batches} "
                "batches; call iter(loader) for a new pass (or load_state_dict to resume)"
            )
        t0 = time.perf_counter()
        if not self._pending:
            self._pending.extend(self._next_iteration())
        finished = self._pending.popleft()
        self._context.counters.received(finished, time.perf_counter() - t0)
        if self._handed is not None and self._runner is not None:
            # The loop drops the previous batch as it takes this one: the background thread
            # frees it instead (it lives on if the loop kept it).
            self._runner.release(self._handed)
        self._handed = finished.batch
        self.batches += 1
        if self.batches == self.total:
            self._end("exhausted")  # the position says "epoch done" before the last batch is used
        return finished.batch

    def _next_iteration(self) -> list[Finished]:
        context = self._context
        try:
            if self._runner is None:
                self._runner = context.runners.take()
                self._runner.begin(self.epoch, self.start, self.total, context.stream())
            item = self._runner.get()
            return item if context.finish is None else context.finish(item)
        except BaseException:
            self._end("failed")
            raise

    def _end(self, how: str) -> None:
        if self._ended is not None:
            return
        self._ended = how
        self._pending.clear()
        self._handed = None
        runner, self._runner = self._runner, None
        if runner is not None:
            self._context.runners.give_back(runner, reusable=how == "exhausted")
        self._context.on_end(self, how == "exhausted")

    def close(self) -> None:
        """End this pass now; its pipeline is shut down (the loader's next pass builds anew)."""
        self._end("closed")

    def __del__(self) -> None:
        if self._ended is None:
            self._end("closed")
