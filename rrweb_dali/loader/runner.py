"""One DALI pipeline's life: build, reset between epochs, the thread that runs it ahead, close.

A :class:`PipelineRunner` serves one pass at a time (see :mod:`.loader`). ``begin(epoch, start)``
makes its next iteration the first of a pass over ``epoch`` from unit ``start``: after a pass ran
to its end, the next epoch from its start is a ``reset()`` of the same pipeline (DALI's epoch
counter moves on, and the source maps it to the plan's next epoch); anything else is a fresh
build, since a DALI pipeline cannot be moved mid-epoch with iterations in flight.

The pipeline is run by an :class:`~rrweb_dali.loader.ahead.Ahead` thread, ``prefetch``
iterations ahead of the consumer. The thread holds the runner, never the loader, so a dropped
loader is still collected and closes its runners. An error in an iteration is raised by
:meth:`PipelineRunner.get` and closes the runner: the state of a pipeline after a failed
iteration is unknown. Two more jobs move off the training loop's thread, each measured there on
the 2-core dev machine after an 8 ms step:

* freeing the batches the loop has moved past (:meth:`PipelineRunner.release`: their tensors, a
  pooled buffer, DALI's output), ~0.1 ms a batch at the rebinding of the loop variable;
* with ``PipelineOptions.next_epoch_ahead`` (shards), the next epoch: once a pass's thread has
  made its last iteration it resets DALI and starts the next epoch's thread, which the next pass
  takes over when it is that epoch from its start (any other pass discards it and rebuilds).
  Waiting for the reset and the first iteration at each epoch boundary cost ~5-10 ms at
  batch 256.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable

from rrweb_dali.external_source.source import BatchSource
from rrweb_dali.loader.ahead import Ahead
from rrweb_dali.loader.graph import build_pipeline, close_pipeline
from rrweb_dali.loader.options import PipelineOptions

logger = logging.getLogger(__name__)


class PipelineRunner:
    """Runs the pipeline of ``make_source(epoch, start)`` for one pass at a time."""

    def __init__(
        self,
        make_source: Callable[[int, int], BatchSource],
        out_dtype: str,
        options: PipelineOptions,
        in_thread: Callable | None = None,
        on_build: Callable[[float], None] | None = None,
    ):
        """``in_thread`` is applied to each iteration's outputs in the background thread (the
        CPU device's finishing step); without it the outputs are returned as DALI gives them.
        ``on_build`` is told the seconds of every pipeline build."""
        self._make_source = make_source
        self._out_dtype = out_dtype
        self.options = options
        self._in_thread = in_thread
        self._on_build = on_build
        self._pipe = None
        self._per_call = 1
        self._ahead: Ahead | None = None
        self._stream = None
        self._finished_epoch: int | None = None  # epoch whose pass this pipeline ran to its end
        self._epoch = 0
        self._released: deque = deque()  # objects for the thread to drop (see release())
        self._source: BatchSource | None = None
        self._done: Ahead | None = None  # the last pass's thread, which may be starting _next
        self._next: Ahead | None = None  # the next epoch's thread, started ahead of its pass
        self._guess: tuple | None = None  # (epoch, batches, stream) that thread runs for
        self._reset_first = False
        self._lock = threading.Lock()  # the guess is made on a pass's thread, taken on ours

    def begin(self, epoch: int, start: int, batches: int, stream=None) -> None:
        """Make the next :meth:`get` return the first iteration of ``batches`` batches of
        ``epoch`` from unit ``start``; ``stream`` is the consumer's CUDA stream on a GPU."""
        if self._done is not None:
            self._done.join()  # it may be starting the next epoch's thread right now
            self._done = None
        if self._guess is not None:
            if self._ahead is None and start == 0 and self._guess == (epoch, batches, stream):
                with self._lock:  # the thread already runs this pass: it becomes the current one
                    self._ahead, self._next, self._guess = self._next, None, None
                    self._epoch = epoch
                if not self._ahead.producing:  # it finished before it was the current pass
                    self._after_pass(epoch)
                return
            self.close()  # a wrong guess: its iterations are spent, so the pipeline is rebuilt
        if self._ahead is not None:
            raise RuntimeError("PipelineRunner.begin() while a pass is still running on it")
        if self._pipe is not None and start == 0 and self._finished_epoch == epoch - 1:
            self._reset_first = True
        else:
            self._build(epoch, start)
        self._finished_epoch, self._stream, self._epoch = None, stream, epoch
        self._ahead = self._thread(epoch, batches)

    def _thread(self, epoch: int, batches: int) -> Ahead:
        """A thread running the iterations of ``batches`` batches of ``epoch``."""
        iterations = -(-batches // self._per_call)
        then = functools.partial(self._after_pass, epoch) if self.options.next_epoch_ahead else None
        return Ahead(self._step, iterations, self.options.prefetch, "rrweb-dali-loader", then)

    def get(self):
        """The next iteration's item (its ``in_thread`` result, or DALI's outputs)."""
        try:
            item = self._ahead.get()
        except BaseException:
            self.close()
            raise
        if self._ahead.remaining == 0:
            self._done, self._ahead = self._ahead, None  # its thread is ending
            self._finished_epoch = self._epoch
        return item

    def _after_pass(self, epoch: int) -> None:
        """Start the next epoch from its beginning now, as the next pass nearly always is (a
        full pass advances the epoch; Lightning and epoch loops call ``set_epoch(e + 1)``): the
        pass after this one then finds its first iterations ready instead of waiting for the
        reset and the first DALI iteration.

        Runs on the thread of the pass over ``epoch`` once it has made its last iteration (the
        consumer may still have several to take), so the next epoch's thread runs beside the end
        of this pass; only for the current pass, never for a guess not yet taken. Another next
        pass discards the guess (and rebuilds the pipeline)."""
        with self._lock:
            if self._guess is not None or epoch != self._epoch:
                return
            batches = self._source.num_batches(epoch + 1, 0)
            if batches == 0:
                return
            self._reset_first = True  # the new thread's first _step resets DALI
            self._guess = (epoch + 1, batches, self._stream)
            self._next = self._thread(epoch + 1, batches)

    def release(self, obj: object) -> None:
        """Let the background thread drop this reference to ``obj`` (a batch the consumer has
        moved past), so that freeing it does not happen on the consumer's thread. Safe whatever
        else holds ``obj``: a batch still used elsewhere simply lives on."""
        self._released.append(obj)

    def _step(self):
        released = self._released
        while released:
            released.popleft()  # the last reference, usually: freed here, on this thread
        if self._reset_first:
            self._reset_first = False
            self._reset()
        try:
            outputs = self._pipe.run() if self._stream is None else self._pipe.run(self._stream)
        except StopIteration:  # must not escape as StopIteration into the consumer's generator
            raise RuntimeError("the DALI pipeline ended before its plan") from None
        return outputs if self._in_thread is None else self._in_thread(outputs)

    def _build(self, epoch: int, start: int) -> None:
        self.close()
        source = self._make_source(epoch, start)
        self._source = source
        self._per_call = source.transport.batches_per_call
        t0 = time.perf_counter()
        self._pipe = build_pipeline(source, source.reader.dtype, self._out_dtype, self.options)
        if self._on_build is not None:
            self._on_build(time.perf_counter() - t0)
        logger.debug("built the DALI pipeline at epoch %d, unit %d", epoch, start)

    def _reset(self) -> None:
        """Past the end of the pass it ran: DALI must see StopIteration before ``reset()``."""
        try:
            self._pipe.run()
            raise RuntimeError("the DALI pipeline gave more batches than its plan")
        except StopIteration:
            pass
        self._pipe.reset()

    def close(self) -> None:
        """Stop the threads, then shut the pipeline (and its worker processes) down."""
        # Before the pipeline they run goes away; the pass threads first, as either may be
        # starting the next epoch's thread (stop() waits for that, then it is stopped too).
        running, done, self._ahead, self._done = self._ahead, self._done, None, None
        for ahead in (running, done):
            if ahead is not None:
                ahead.stop()
        ahead_next, self._next = self._next, None
        if ahead_next is not None:
            ahead_next.stop()
        pipe, self._pipe = self._pipe, None
        self._finished_epoch = None
        self._guess = None
        self._reset_first = False
        self._released.clear()
        if pipe is not None:
            close_pipeline(pipe)


class RunnerPool:
    """Runners for the passes of one loader: at most one kept idle between passes.

    A pass that ran to its end hands its runner back still built, so the next epoch is a
    ``reset()``; a pass that ended early hands it back closed (its pipeline had iterations in
    flight). A second pass while one runs gets a new runner.
    """

    def __init__(self, make_runner: Callable[[], PipelineRunner]):
        self._make_runner = make_runner
        self._idle: PipelineRunner | None = None

    def take(self) -> PipelineRunner:
        runner, self._idle = self._idle, None
        return runner if runner is not None else self._make_runner()

    def give_back(self, runner: PipelineRunner, reusable: bool) -> None:
        if not reusable or self._idle is not None:
            runner.close()
        else:
            self._idle = runner

    def close(self) -> None:
        runner, self._idle = self._idle, None
        if runner is not None:
            runner.close()
