"""The DALI ``external_source`` callable: one flat token buffer per training batch.

``BatchSource(info)`` takes DALI's ``BatchInfo(iteration, epoch_idx)`` and nothing else, so the
batches it returns are a pure function of that pair and of its constructor arguments: DALI
checkpointing captures it, DALI's parallel workers can each compute any iteration, and it is
picklable (the memory maps are reopened lazily in each process). At the end of an epoch it raises
``StopIteration``, and keeps raising for iterations past the end (DALI prefetches ahead).

Why one flat buffer: DALI spends several microseconds on every separate sample it is handed
(measured: ~6-8 us), more than the copy of a typical session costs, and tens of microseconds on
every external_source output it is fed each iteration. So a batch travels as *one* sample of two
outputs: the concatenated tokens of its rows (gathered with one ``np.concatenate`` of zero-copy
memory-map views) and one small int64 vector with everything else. And since DALI also costs
~0.2 ms per iteration whatever its size, one call (one iteration) carries
``transport.batches_per_call`` consecutive training batches, one sample each: call ``i`` holds
batches ``i * k`` to ``i * k + k - 1`` of the pass (fewer in the last call).

Outputs of a call: two lists with one array per batch,

* ``tokens`` (``uint16``, or ``uint32`` for such shards): padded mode: ``[T + 1]``, the ``B``
  rows end to end plus one trailing 0 (the source of every pad position in the device-side
  gather), or with ``pad_on_host`` ``[B * L]``, the rows padded with 0 to the batch width ``L``;
  packing mode: ``[B * L]``, the dense rows.
* ``aux`` int64: the batch's bookkeeping in the versioned layout of :mod:`.wire`
  (rows ``B``, width ``L``, real tokens, session pieces read, gather nanoseconds, bytes read; then
  ``n`` lengths and ``n`` session ids). Padded mode: ``n = B`` (row lengths, ``index``); packing
  mode: ``n = S`` segments (segment lengths, segment session ids, ``-1`` for the padding segment
  of the epoch's last row). In a mixture (``plan.weights``) the ids number rows within their
  source and ``n`` source numbers follow (``dataset``). It carries the counters back from DALI's
  worker processes.

Which sequences an epoch holds: every one of the directories, or ``plan.selection``'s
(:mod:`.selection`), in a seeded order, or a weighted mixture of the directories
(:mod:`.mixture`); ``index`` is always a sequence's id in its own directory's numbering (the
concatenation's, for several directories without weights).

A batch is ``batch_size`` rows, except the last of an epoch with ``last_batch="short"`` (see
:mod:`rrweb_dali.external_source.sampling`).
"""

from __future__ import annotations

import logging
import os
import time
from collections import OrderedDict

import numpy as np
from rrweb_dali.external_source import wire
from rrweb_dali.external_source.fetch_stats import StoreStats, pack_tail
from rrweb_dali.external_source.lifetime import exit_with_parent
from rrweb_dali.external_source.mixture import epoch_rows, mixture_order
from rrweb_dali.external_source.options import PlanOptions, Transport
from rrweb_dali.external_source.packing import PackPlan, plan_packing, row_segments
from rrweb_dali.external_source.reader import PathLike, ShardReader, as_path_list
from rrweb_dali.external_source.sampling import (
    batch_positions,
    bucket_by_length,
    epoch_permutation,
    padded_width,
    shard_window_order,
    steps_in_epoch,
)
from rrweb_dali.external_source.selection import select_ids

from rrweb_dali.store.options import StoreOptions

logger = logging.getLogger(__name__)

_PLAN_CACHE = 2  # epochs whose plan is kept: the current one and the next (prefetch crosses over)


class BatchSource:
    """Batches of ``rank`` of ``world_size``, from epoch ``start_epoch``, unit ``start_consumed``.

    DALI's epoch ``k`` (``BatchInfo.epoch_idx``, which counts pipeline resets) is epoch
    ``start_epoch + k`` of the plan; only the first one starts mid-way, at ``start_consumed``.
    """

    def __init__(
        self,
        paths: PathLike | list[PathLike],
        plan: PlanOptions,
        transport: Transport | None = None,
        rank: int = 0,
        world_size: int = 1,
        start_epoch: int = 0,
        start_consumed: int = 0,
        reader: ShardReader | None = None,
        store: StoreOptions | None = None,
    ):
        """``reader`` lets the loader share its already-open reader (it is not pickled);
        ``store`` reads ``s3://`` paths (:mod:`rrweb_dali.store`)."""
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside world size {world_size}")
        self.paths = as_path_list(paths)
        if plan.weights is not None and len(plan.weights) != len(self.paths):
            raise ValueError(
                f"{len(plan.weights)} mixture weights for {len(self.paths)} dataset directories"
            )
        self.plan = plan
        self.transport = Transport() if transport is None else transport
        self.rank = int(rank)
        self.world_size = int(world_size)
        self.start_epoch = int(start_epoch)
        self.start_consumed = int(start_consumed)
        self.store = store
        self._init_runtime()
        self._reader = reader

    def _init_runtime(self) -> None:
        self._reader: ShardReader | None = None
        self._capped: np.ndarray | None = None
        self._rows: int | None = None
        self._selected: tuple[np.ndarray | None] | None = None  # boxed: None selects everything
        self._plans: OrderedDict[int, np.ndarray | PackPlan] = OrderedDict()
        self._counters = dict.fromkeys(("calls", "batches", "reads", "bytes"), 0)
        self._times = dict.fromkeys(("plan_s", "gather_s"), 0.0)
        # Reused gather buffer: in the calling process DALI copies what the source returns
        # before calling it again, and a fresh array of this size would be paid for in page
        # faults on every batch. A copy sent to DALI's worker processes (unpickled there) never
        # reuses: its arrays go to a shared-memory queue that may read them later.
        self._scratch: list[np.ndarray] = []
        self._reuse_scratch = True
        self._zeros: np.ndarray | None = None  # the padding runs of pad_on_host
        self._fetched: dict[str, int] = {}  # remote shards: the counters sent with the last batch

    def _flat_buffer(self, size: int, dtype: np.dtype, slot: int = 0) -> np.ndarray:
        """A buffer for one batch of a call; ``slot`` tells the batches of one call apart."""
        if not self._reuse_scratch:
            return np.empty(size, dtype=dtype)
        while len(self._scratch) <= slot:
            self._scratch.append(np.empty(0, dtype=dtype))
        buf = self._scratch[slot]
        if buf.size < size or buf.dtype != dtype:
            buf = self._scratch[slot] = np.empty(max(size, 2 * buf.size), dtype=dtype)
        return buf[:size]

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        runtime = (
            "_reader",
            "_capped",
            "_rows",
            "_selected",
            "_plans",
            "_counters",
            "_times",
            "_scratch",
            "_zeros",
            "_fetched",
        )
        for key in runtime:
            state.pop(key)
        state["_pickled_by"] = os.getpid()
        return state

    def __setstate__(self, state: dict) -> None:
        """Unpickled, usually in a DALI worker: it ends with the process that pickled it (see
        :mod:`.lifetime`), so a killed training process leaves no worker behind."""
        pickled_by = state.pop("_pickled_by", None)
        self.__dict__.update(state)
        self._init_runtime()
        self._reuse_scratch = False
        if pickled_by is not None:
            exit_with_parent(pickled_by)

    @property
    def reader(self) -> ShardReader:
        if self._reader is None:
            self._reader = ShardReader(self.paths, self.store)
        return self._reader

    @property
    def capped_lengths(self) -> np.ndarray:
        if self._capped is None:
            lengths = self.reader.lengths
            cap = self.plan.cap
            self._capped = lengths if cap is None else np.minimum(lengths, cap)
        return self._capped

    @property
    def selected(self) -> np.ndarray | None:
        """The global ids the plan's selection keeps (ascending), or None for every sequence."""
        if self._selected is None:
            self._selected = (select_ids(self.reader, self.plan.selection),)
        return self._selected[0]

    def source_ids(self) -> list[np.ndarray]:
        """A mixture's sources: the selected global ids of each dataset directory."""
        reader, selected = self.reader, self.selected
        bounds = reader.directory_bounds
        if selected is None:
            return [reader.directory_ids(d) for d in range(len(reader.paths))]
        cuts = np.searchsorted(selected, bounds)
        return [selected[cuts[d] : cuts[d + 1]] for d in range(len(reader.paths))]

    @property
    def is_mixture(self) -> bool:
        return self.plan.weights is not None

    def _order(self, epoch: int) -> np.ndarray:
        """The epoch's order of global ids (before bucketing or packing)."""
        cfg = self.plan
        if self.is_mixture:
            return mixture_order(
                self.source_ids(), cfg.weights, cfg.mixture, cfg.seed, epoch, cfg.shuffle
            )
        selected = self.selected
        n = len(self.reader) if selected is None else selected.size
        if cfg.shard_window is not None and cfg.shuffle:
            ids = np.arange(n, dtype=np.int64) if selected is None else selected
            shard_of = self.reader.shard_of(ids)
            window = cfg.shard_window
            return ids[
                shard_window_order(shard_of, len(self.reader.shards), window, cfg.seed, epoch)
            ]
        order = epoch_permutation(n, cfg.seed, epoch, cfg.shuffle)
        return order if selected is None else selected[order]

    def sequence(self, epoch: int) -> np.ndarray | PackPlan:
        """The epoch's plan: the session order, or the packing plan whose rows are the units."""
        plan = self._plans.get(epoch)
        if plan is None:
            cfg = self.plan
            order = self._order(epoch)
            if cfg.packing is not None:
                plan = plan_packing(order, self.capped_lengths, cfg.packing)
            elif cfg.bucketing:
                plan = bucket_by_length(
                    order, self.capped_lengths, cfg.batch_size, cfg.bucket_window, cfg.seed, epoch
                )
            else:
                plan = order
            self._plans[epoch] = plan
            if self.reader.remote:
                self.reader.plan_fetch(epoch, plan.order if isinstance(plan, PackPlan) else plan)
            while len(self._plans) > _PLAN_CACHE:
                self._plans.popitem(last=False)
        return plan

    def units(self, epoch: int) -> int:
        """Units in an epoch: sessions (selected, or the mixture's rows), or packed rows.

        The same every epoch (no plan needed), except for a packed mixture: which rows of each
        source an epoch takes, so its token count, varies, and the epoch's plan says."""
        cfg = self.plan
        if cfg.packing is not None and self.is_mixture:
            return self.sequence(epoch).n_rows
        if self._rows is None:
            selected = self.selected
            if cfg.packing is not None:
                lengths = self.capped_lengths
                total = int((lengths if selected is None else lengths[selected]).sum())
                self._rows = -(-total // cfg.packing)
            elif self.is_mixture:
                sizes = [x.size for x in self.source_ids()]
                self._rows = epoch_rows(sizes, cfg.weights, cfg.mixture)
            else:
                self._rows = len(self.reader) if selected is None else int(selected.size)
        return self._rows

    def num_batches(self, epoch: int, start: int = 0) -> int:
        cfg = self.plan
        return steps_in_epoch(
            self.units(epoch), start, cfg.batch_size, self.world_size, cfg.last_batch
        )

    def __call__(self, info) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """DALI iteration ``i`` of the pass: training batches ``i * k`` to ``i * k + k - 1``
        (``k = transport.batches_per_call``, fewer at the end), one DALI sample each."""
        epoch_idx, iteration = (
            (info.epoch_idx, info.iteration) if hasattr(info, "epoch_idx") else (0, int(info))
        )
        self._counters["calls"] += 1
        epoch = self.start_epoch + epoch_idx
        start = self.start_consumed if epoch_idx == 0 else 0
        per_call = self.transport.batches_per_call
        first = iteration * per_call
        last = min(first + per_call, self.num_batches(epoch, start))
        if first >= last:
            raise StopIteration
        tokens, aux = [], []
        for slot, batch in enumerate(range(first, last)):
            t, a = self._one_batch(epoch, start, batch, slot)
            tokens.append(t)
            aux.append(a)
        return tokens, aux

    def _one_batch(self, epoch: int, start: int, batch: int, slot: int):
        """Batch ``batch`` of the pass over ``epoch`` that began at unit ``start``, gathered
        into scratch buffer ``slot``: ``(tokens, aux)``."""
        t0 = time.perf_counter()
        cfg = self.plan
        pos = batch_positions(
            self.units(epoch),
            start,
            cfg.batch_size,
            self.world_size,
            self.rank,
            batch,
            cfg.last_batch,
        )
        plan = self.sequence(epoch)
        t1 = time.perf_counter()
        self._times["plan_s"] += t1 - t0
        # Wait for the batch's shards (counted apart: wait_ns); once every shard of the epoch
        # is in hand, the batch's ids are not even worked out for it.
        if self.reader.remote and not self.reader.steady(epoch):
            self.reader.acquire(
                row_segments(plan, pos)[0] if isinstance(plan, PackPlan) else plan[pos], epoch
            )
            t1 = time.perf_counter()
        if isinstance(plan, PackPlan):
            tokens, aux = self._packed_batch(plan, pos, slot)
        else:
            tokens, aux = self._padded_batch(plan[pos], slot)
        if self.reader.remote:
            # A tail only when the counters moved: recording a tail per batch cost a cached
            # epoch about 8% of its speed on 2 cores, the consumer's thread holding the GIL.
            after = self.reader.fetch_counters()
            if after != self._fetched:
                aux = wire.with_tail(aux, pack_tail(epoch, self._fetched, after))
                self._fetched = after
        t2 = time.perf_counter()
        self._times["gather_s"] += t2 - t1
        self._counters["batches"] += 1
        wire.set_meta(aux, "gather_ns", int((t2 - t1) * 1e9))
        self._counters["reads"] += wire.get_meta(aux, "reads")
        self._counters["bytes"] += wire.get_meta(aux, "bytes")
        return tokens, aux

    def _gather_rows(self, ids: np.ndarray) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
        """The rows of sessions ``ids`` (capped, zero-copy views), their lengths and ids."""
        lens = self.capped_lengths[ids]
        return self.reader.views(ids, np.zeros_like(ids), lens), lens, ids

    def _padded_batch(self, ids: np.ndarray, slot: int = 0):
        rows, lens, index = self._gather_rows(ids)
        dtype = self.reader.dtype
        total = int(lens.sum())
        width = self.plan.pad_to or padded_width(int(lens.max()), self.plan.pad_multiple)
        if self.transport.pad_on_host:
            tokens = self._flat_buffer(ids.size * width, dtype, slot)
            np.concatenate(self._with_pads(rows, lens, width, dtype), out=tokens)
        else:
            tokens = self._flat_buffer(total + 1, dtype, slot)
            np.concatenate(rows, out=tokens[:total])
            tokens[total] = 0
        meta = [ids.size, width, total, ids.size, 0, total * dtype.itemsize]
        return tokens, self._encode(meta, lens, index)

    def _encode(self, meta: list[int], lengths: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """The wire record; in a mixture ``index`` numbers rows within their source, and a
        ``dataset`` vector says which source (both -1 for padding)."""
        if not self.is_mixture:
            return wire.encode(meta, lengths, ids)
        bounds = self.reader.directory_bounds
        dataset = np.searchsorted(bounds, ids, side="right") - 1
        local = ids - bounds[np.maximum(dataset, 0)]
        pad = ids < 0
        dataset[pad] = -1
        local[pad] = -1
        return wire.encode(meta, lengths, local, dataset=dataset)

    def _with_pads(self, rows: list[np.ndarray], lens: np.ndarray, width: int, dtype) -> list:
        """``rows`` with a run of ``PAD`` (0) after each short one: one ``np.concatenate`` then
        lays out the padded ``[B, width]`` batch (measured faster than a copy per row)."""
        if self._zeros is None or self._zeros.size < width or self._zeros.dtype != dtype:
            self._zeros = np.zeros(width, dtype=dtype)
        parts = []
        for row, n in zip(rows, lens.tolist(), strict=True):
            parts.append(row)
            if n < width:
                parts.append(self._zeros[: width - n])
        return parts

    def _packed_batch(self, plan: PackPlan, rows: np.ndarray, slot: int = 0):
        reader = self.reader
        sessions, offsets, seg_lengths = row_segments(plan, rows)
        real = sessions >= 0
        views = reader.views(sessions[real], offsets[real], seg_lengths[real])
        if not real.all():  # put the padding segments back in their places
            it = iter(views)
            views = [
                next(it) if r else np.zeros(int(n), dtype=reader.dtype)
                for r, n in zip(real.tolist(), seg_lengths.tolist(), strict=True)
            ]
        flat = self._flat_buffer(rows.size * plan.row_length, reader.dtype, slot)
        if views:
            np.concatenate(views, out=flat)
        tokens = int(seg_lengths[real].sum())
        reads = int(real.sum())
        meta = [rows.size, plan.row_length, tokens, reads, 0, tokens * flat.itemsize]
        return flat, self._encode(meta, seg_lengths, sessions)

    def describe(self) -> dict:
        """What this source reads, for a profile run's ``meta.json``."""
        selected = self.selected
        return {
            "kind": "shards",
            "paths": list(self.paths),
            "units": len(self.reader),
            "selected": len(self.reader) if selected is None else int(selected.size),
            "mixture": None
            if not self.is_mixture
            else {"weights": list(self.plan.weights), "mode": self.plan.mixture},
            "store": None if not self.reader.remote else self.store.describe(),
        }

    def new_cache_stats(self) -> StoreStats | None:
        """The loader's totals of the object-store tails (None when every shard is local)."""
        return StoreStats() if self.reader.remote else None

    def stats(self) -> dict:
        """Counters of this process's calls: batches, reads (session pieces), bytes, seconds."""
        return {**self._counters, **self._times}
