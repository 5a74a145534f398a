""":class:`Loader`: position, epochs, state and iteration, over pipeline runners.

The contract is ``torchdata``'s ``StatefulDataLoader`` over a ``DistributedSampler``:

* every ``iter(loader)`` is a new :class:`~rrweb_dali.loader.passes.Pass` from the beginning of
  the current epoch, except the first pass after :meth:`Loader.load_state_dict`, which resumes at
  the exact next batch;
* a pass that runs to its end advances the epoch (a new seeded order on the next pass), unless
  the user drives epochs with :meth:`Loader.set_epoch` (then the epoch is whatever it was set to,
  as with ``DistributedSampler.set_epoch``); Lightning's epoch hand-off reaches it through
  ``loader.sampler.set_epoch``;
* a pass made while another runs (a peek) gets its own pipeline and leaves the running pass
  untouched;
* :meth:`Loader.state_dict` describes the batches handed out by the latest pass still running
  (else by the latest pass that ended); taking it never changes iteration.
"""

from __future__ import annotations

import contextlib
import logging
import weakref
from collections.abc import Callable
from pathlib import Path

import torch

from rrweb_dali.external_source.options import PlanOptions, Transport
from rrweb_dali.external_source.sampling import consumed_after
from rrweb_dali.external_source.source import BatchSource
from rrweb_dali.external_source.state import LoaderState, LoaderStateError
from rrweb_dali.loader.assemble import Assembler
from rrweb_dali.loader.at_exit import close_at_exit
from rrweb_dali.loader.bindings import EpochSampler, SourceAt, weak_call
from rrweb_dali.loader.buffers import HostBufferPool
from rrweb_dali.loader.counters import Counters
from rrweb_dali.loader.options import OutputOptions, PipelineOptions
from rrweb_dali.loader.passes import Pass, PassContext
from rrweb_dali.loader.runner import PipelineRunner, RunnerPool

logger = logging.getLogger(__name__)


class Loader:
    """An iterable of ``dict[str, torch.Tensor]`` batches for one rank; see :func:`make_loader`."""

    def __init__(
        self,
        make_source: Callable[..., BatchSource],
        paths: str | list[str],
        plan: PlanOptions,
        transport: Transport,
        outputs: OutputOptions,
        pipeline: PipelineOptions,
        rank: int = 0,
        world_size: int = 1,
    ):
        """``make_source`` has ``BatchSource``'s signature (raw mode binds its files into one)."""
        self.rank, self.world_size = rank, world_size
        self.plan, self.transport, self.outputs, self.pipeline = plan, transport, outputs, pipeline
        self._planner = make_source(paths, plan, transport, rank, world_size)
        self.reader = self._planner.reader
        source_at = SourceAt(make_source, paths, plan, transport, rank, world_size, self.reader)
        new_cache_stats = getattr(self._planner, "new_cache_stats", None)
        counters = Counters(new_cache_stats() if new_cache_stats is not None else None)
        self._counters = counters
        on_gpu = pipeline.device_id is not None
        device = torch.device("cuda", pipeline.device_id) if on_gpu else torch.device("cpu")
        self.device = device
        # Batches in flight on the CPU device: the thread's queue, the one it makes, the
        # iteration being handed out, the loop's own, those waiting for the thread to free
        # them; each holds up to three pooled arrays.
        in_flight = (pipeline.prefetch + 4) * transport.batches_per_call
        pool = None if on_gpu else HostBufferPool(max_buffers=3 * in_flight)
        assembler = Assembler(outputs, on_gpu, pool, on_time=counters.finished)
        # Nothing a runner or pass holds may refer to the loader (only weakly): a dropped loader
        # must be collected at once, and its __del__ closes the pipelines.
        self._runners = RunnerPool(
            lambda: PipelineRunner(
                source_at,
                outputs.dtype,
                pipeline,
                in_thread=None if on_gpu else assembler,
                on_build=counters.built,
            )
        )
        self._context = PassContext(
            self._runners,
            counters,
            assembler if on_gpu else None,
            lambda: torch.cuda.current_stream(device) if on_gpu else None,
            weak_call(self._pass_ended),
        )
        self._epoch = 0
        self._explicit_epochs = False  # set_epoch was called: passes do not advance the epoch
        self._resume: tuple[int, int] | None = None  # (epoch, consumed) for the next pass
        self._last: tuple[int, int] | None = None  # position after the latest ended pass
        self._passes: list[weakref.ref[Pass]] = []
        self.sampler = EpochSampler(self)
        close_at_exit(self)

    # ---- epochs and iteration ---------------------------------------------------------------
    @property
    def batch_size(self) -> int:
        return self.plan.batch_size

    def __len__(self) -> int:
        """Batches in a whole epoch on this rank (the same on every rank)."""
        return self._planner.num_batches(self._epoch, 0)

    @property
    def epoch(self) -> int:
        """The epoch the next pass iterates (a pending resume's epoch after ``load_state_dict``)."""
        return self._epoch

    def set_epoch(self, epoch: int) -> None:
        """Iterate ``epoch`` from now on (``DistributedSampler.set_epoch``): the next pass starts
        it at its beginning, or resumes it where a loaded state left it."""
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
            raise ValueError(f"set_epoch() takes a non-negative int, got {epoch!r}")
        self._explicit_epochs = True
        if self._resume is not None and self._resume[0] != epoch:
            logger.warning(
                "set_epoch(%d) drops the loaded state's position in epoch %d",
                epoch,
                self._resume[0],
            )
            self._resume = None
        if epoch != self._epoch:
            self._last = None
        self._epoch = epoch

    def __iter__(self) -> Pass:
        epoch, start = self._resume if self._resume is not None else (self._epoch, 0)
        self._resume = None
        p = Pass(self._context, epoch, start, self._planner.num_batches(epoch, start), self)
        self._passes = [weakref.ref(q) for q in self._running()] + [weakref.ref(p)]
        return p

    def _running(self) -> list[Pass]:
        """The passes not yet ended, oldest first."""
        return [q for r in self._passes if (q := r()) is not None and not q.ended]

    def _pass_ended(self, p: Pass, exhausted: bool) -> None:
        self._last = self._position(p)
        if exhausted and not self._explicit_epochs and self._epoch == p.epoch:
            self._epoch = p.epoch + 1
            self._last = (self._epoch, 0)

    def _position(self, p: Pass) -> tuple[int, int]:
        units = self._planner.units(p.epoch)
        step = (self.plan.batch_size, self.world_size)
        return p.epoch, consumed_after(units, p.start, *step, p.batches)

    # ---- state ------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Where the latest running pass is (see the module doc); ``load_state_dict`` resumes."""
        running = self._running()
        if running:
            epoch, consumed = self._position(running[-1])
        else:
            epoch, consumed = self._resume or self._last or (self._epoch, 0)
        return LoaderState(
            seed=self.plan.seed,
            epoch=epoch,
            consumed=consumed,
            dataset=self.reader.fingerprint,
            plan=self.plan.plan_key(len(self.reader)),
            world_size=self.world_size,
            rank=self.rank,
        ).to_dict()

    def load_state_dict(
        self, state: dict, *, allow_other_dataset: bool = False, allow_other_seed: bool = False
    ) -> None:
        """Resume at the exact next batch of ``state`` on the next pass (on this loader's rank
        and world size). A state of another dataset or seed raises ``LoaderStateError`` unless
        allowed by name; this loader's own seed is kept either way."""
        st = LoaderState.from_dict(state)
        st.check(
            self.reader.fingerprint,
            self.plan.seed,
            self.plan.plan_key(len(self.reader)),
            allow_other_dataset=allow_other_dataset,
            allow_other_seed=allow_other_seed,
        )
        units = self._planner.units(st.epoch)
        if st.consumed > units:
            raise LoaderStateError(
                f"loader state field 'consumed' is {st.consumed}, past the {units} units of an epoch"
            )
        finished = st.consumed == units
        self._epoch = st.epoch + 1 if finished else st.epoch
        self._resume = None if finished else (st.epoch, st.consumed)
        self._last = None

    # ---- description, counters, profiling ---------------------------------------------------
    def stats(self) -> dict:
        """Counters since construction, as the loop received each batch: batches, rows, real
        tokens, padded slots, padding efficiency, session pieces read, bytes gathered; seconds
        gathering (in the source, wherever it ran), waiting in ``next()`` (``wait_s``),
        finishing batches after DALI (``finish_s``) and building pipelines. Safe to read from
        another thread (the profiler samples it twice a second)."""
        return {**self._counters.as_dict(), "epoch": self._epoch}

    def cache_stats(self) -> dict | None:
        """Cache counters over the batches received: raw mode's token cache (see
        ``rrweb_dali.external_source.raw.cache_stats``) or, for an ``s3://`` dataset, the shard
        cache's (``"kind": "store"``, see ``rrweb_dali.external_source.fetch_stats``); ``None``
        for local shards. Safe to call from another thread."""
        cache = self._counters.cache
        return None if cache is None else cache.as_dict()

    def describe(self) -> dict:
        """Everything the batches depend on, for a profile run's ``meta.json``."""
        return {
            "class": f"{type(self).__module__}.{type(self).__qualname__}",
            "batches_per_epoch": len(self),
            "rank": self.rank,
            "world_size": self.world_size,
            "device": str(self.device),
            "dataset": {"fingerprint": self.reader.fingerprint, "units": len(self.reader)},
            "plan": self.plan.to_dict(),
            "transport": self.transport.to_dict(),
            "outputs": self.outputs.to_dict(),
            "pipeline": self.pipeline.to_dict(),
            "source": self._planner.describe(),
        }

    def profile(self, runs_dir: str | Path, name: str = "train", **kwargs):
        """``with loader.profile("runs") as batches: for batch in batches: ...`` records this
        loader into ``runs/<run id>/`` (see :func:`rrweb_dali.profiling.profile`)."""
        from rrweb_dali.profiling import profile

        return profile(self, runs_dir, name, **kwargs)

    # ---- life cycle -------------------------------------------------------------------------
    def close(self) -> None:
        """End every pass and shut the pipelines (and worker processes) down; iterating again
        builds anew."""
        for r in self._passes:
            if (p := r()) is not None:
                p.close()
        self._passes = []
        self._runners.close()
        self.reader.close()

    def __enter__(self) -> Loader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # at interpreter exit DALI may be gone already
            self.close()
