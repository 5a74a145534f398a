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
``config.batches_per_call`` consecutive training batches, one sample each: call ``i`` holds
batches ``i * k`` to ``i * k + k - 1`` of the pass (fewer in the last call).

Outputs of a call: two lists with one array per batch,

* ``tokens`` (``uint16``, or ``uint32`` for such shards): padded mode: ``[T + 1]``, the ``B``
  rows end to end plus one trailing 0 (the source of every pad position in the device-side
  gather), or with ``pad_on_host`` ``[B * L]``, the rows padded with 0 to the batch width ``L``;
  packing mode: ``[B * L]``, the dense rows.
* ``aux`` int64 ``[7 + 2 n]``: ``meta`` (7 values, :data:`META_FIELDS`: rows ``B``, width ``L``,
  real tokens, segments ``n``, session pieces read, gather nanoseconds, bytes read), then ``n``
  lengths, then ``n`` session ids. Padded mode: ``n = B`` (row lengths, ``index``); packing mode:
  ``n = S`` segments (segment lengths, segment session ids, ``-1`` for the padding segment of the
  epoch's last row). ``meta`` carries the counters back from DALI's worker processes.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass

import numpy as np

from external_source.packing import PackPlan, plan_packing, row_segments
from external_source.reader import PathLike, ShardReader, as_path_list
from external_source.sampling import (
    batch_positions,
    bucket_by_length,
    epoch_permutation,
    padded_width,
    steps_in_epoch,
)

logger = logging.getLogger(__name__)

META_FIELDS = ("rows", "width", "tokens", "segments", "reads", "gather_ns", "bytes")
META = {name: i for i, name in enumerate(META_FIELDS)}
N_META = len(META_FIELDS)
_PLAN_CACHE = 2  # epochs whose plan is kept: the current one and the next (prefetch crosses over)


@dataclass(frozen=True)
class SourceConfig:
    """What decides the batches: the plan options shared by the source and the loader."""

    batch_size: int
    seed: int = 0
    shuffle: bool = True
    drop_last: bool = False
    bucketing: bool = False
    bucket_window: int = 16
    pad_to: int | None = None  # fixed width; None pads each batch to its longest row
    pad_multiple: int = 8
    max_length: int | None = None
    packing: int | None = None  # row length L of packing mode
    # How padded-mode rows travel (not part of the plan: the batches are the same either way).
    # False: end to end, unpadded (a GPU pads after the copy); True: already padded to [B, L]
    # (the CPU device, where padding is a host copy anyway: made here at uint16 width).
    pad_on_host: bool = False
    # Training batches per call of the source (one DALI iteration, one DALI sample each):
    # DALI's fixed cost per iteration is then shared by that many batches.
    batches_per_call: int = 1

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")
        for name in ("pad_to", "max_length", "packing"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1 (or None), got {value}")
        if self.pad_multiple < 1 or self.bucket_window < 1 or self.batches_per_call < 1:
            raise ValueError("pad_multiple, bucket_window and batches_per_call must be at least 1")
        if self.packing is not None and self.bucketing:
            raise ValueError("bucketing and packing exclude each other: packed rows are all full")

    @property
    def cap(self) -> int | None:
        """The most tokens taken from one session (its head is kept)."""
        caps = [c for c in (self.max_length, None if self.packing else self.pad_to) if c]
        return min(caps) if caps else None

    def plan_key(self, n_sessions: int) -> dict:
        """What a saved state must agree on to resume (see ``LoaderState.check_plan``)."""
        ordered = self.bucketing or self.packing is not None
        return {
            "sessions": int(n_sessions),
            "shuffle": self.shuffle,
            "bucketing": [self.batch_size, self.bucket_window] if self.bucketing else None,
            "packing": self.packing,
            "cap": self.cap if ordered else None,
        }

    def to_dict(self) -> dict:
        return asdict(self)


def pack_aux(meta: list[int], lengths: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``meta``, lengths and session ids in one int64 vector (one DALI input instead of three)."""
    aux = np.empty(N_META + 2 * lengths.size, dtype=np.int64)
    aux[:N_META] = meta
    aux[N_META : N_META + lengths.size] = lengths
    aux[N_META + lengths.size :] = index
    return aux


def split_aux(aux):
    """``(meta, lengths, index)`` views of an ``aux`` vector (numpy array or torch tensor)."""
    n = (aux.shape[0] - N_META) // 2
    return aux[:N_META], aux[N_META : N_META + n], aux[N_META + n :]


class BatchSource:
    """Batches of ``rank`` of ``world_size``, from epoch ``start_epoch``, unit ``start_consumed``.

    DALI's epoch ``k`` (``BatchInfo.epoch_idx``, which counts pipeline resets) is epoch
    ``start_epoch + k`` of the plan; only the first one starts mid-way, at ``start_consumed``.
    """

    def __init__(
        self,
        paths: PathLike | list[PathLike],
        config: SourceConfig,
        rank: int = 0,
        world_size: int = 1,
        start_epoch: int = 0,
        start_consumed: int = 0,
        reader: ShardReader | None = None,
    ):
        """``reader`` lets the loader share its already-open reader (it is not pickled)."""
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside world size {world_size}")
        self.paths = as_path_list(paths)
        self.config = config
        self.rank = int(rank)
        self.world_size = int(world_size)
        self.start_epoch = int(start_epoch)
        self.start_consumed = int(start_consumed)
        self._init_runtime()
        self._reader = reader

    def _init_runtime(self) -> None:
        self._reader: ShardReader | None = None
        self._capped: np.ndarray | None = None
        self._rows: int | None = None
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
            "_plans",
            "_counters",
            "_times",
            "_scratch",
            "_zeros",
        )
        for key in runtime:
            state.pop(key)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._init_runtime()
        self._reuse_scratch = False

    @property
    def reader(self) -> ShardReader:
        if self._reader is None:
            self._reader = ShardReader(self.paths)
        return self._reader

    @property
    def capped_lengths(self) -> np.ndarray:
        if self._capped is None:
            lengths = self.reader.lengths
            cap = self.config.cap
            self._capped = lengths if cap is None else np.minimum(lengths, cap)
        return self._capped

    def sequence(self, epoch: int) -> np.ndarray | PackPlan:
        """The epoch's plan: the session order, or the packing plan whose rows are the units."""
        plan = self._plans.get(epoch)
        if plan is None:
            cfg = self.config
            n = len(self.reader)
            order = epoch_permutation(n, cfg.seed, epoch, cfg.shuffle)
            if cfg.packing is not None:
                plan = plan_packing(order, self.capped_lengths, cfg.packing)
            elif cfg.bucketing:
                plan = bucket_by_length(
                    order, self.capped_lengths, cfg.batch_size, cfg.bucket_window, cfg.seed, epoch
                )
            else:
                plan = order
            self._plans[epoch] = plan
            while len(self._plans) > _PLAN_CACHE:
                self._plans.popitem(last=False)
        return plan

    def units(self, epoch: int) -> int:
        """Units in an epoch: sessions, or packed rows (the same every epoch; no plan needed)."""
        if self.config.packing is None:
            return len(self.reader)
        if self._rows is None:
            total = int(self.capped_lengths.sum())
            self._rows = -(-total // self.config.packing)
        return self._rows

    def num_batches(self, epoch: int, start: int = 0) -> int:
        cfg = self.config
        return steps_in_epoch(
            self.units(epoch), start, cfg.batch_size, self.world_size, cfg.drop_last
        )

    def __call__(self, info) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """DALI iteration ``i`` of the pass: training batches ``i * k`` to ``i * k + k - 1``
        (``k = config.batches_per_call``, fewer at the end), one DALI sample each."""
        epoch_idx, iteration = (
            (info.epoch_idx, info.iteration) if hasattr(info, "epoch_idx") else (0, int(info))
        )
        self._counters["calls"] += 1
        epoch = self.start_epoch + epoch_idx
        start = self.start_consumed if epoch_idx == 0 else 0
        per_call = self.config.batches_per_call
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
        cfg = self.config
        pos = batch_positions(
            self.units(epoch), start, cfg.batch_size, self.world_size, self.rank, batch
        )
        plan = self.sequence(epoch)
        t1 = time.perf_counter()
        self._times["plan_s"] += t1 - t0
        if isinstance(plan, PackPlan):
            tokens, aux = self._packed_batch(plan, pos, slot)
        else:
            tokens, aux = self._padded_batch(plan[pos], slot)
        t2 = time.perf_counter()
        self._times["gather_s"] += t2 - t1
        self._counters["batches"] += 1
        aux[META["gather_ns"]] = int((t2 - t1) * 1e9)
        self._counters["reads"] += int(aux[META["reads"]])
        self._counters["bytes"] += int(aux[META["bytes"]])
        return tokens, aux

    def _gather_rows(self, ids: np.ndarray) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
        """The rows of sessions ``ids`` (capped, zero-copy views), their lengths and ids."""
        lens = self.capped_lengths[ids]
        return self.reader.views(ids, np.zeros_like(ids), lens), lens, ids

    def _padded_batch(self, ids: np.ndarray, slot: int = 0):
        rows, lens, index = self._gather_rows(ids)
        dtype = self.reader.dtype
        total = int(lens.sum())
        width = self.config.pad_to or padded_width(int(lens.max()), self.config.pad_multiple)
        if self.config.pad_on_host:
            tokens = self._flat_buffer(ids.size * width, dtype, slot)
            np.concatenate(self._with_pads(rows, lens, width, dtype), out=tokens)
        else:
            tokens = self._flat_buffer(total + 1, dtype, slot)
            np.concatenate(rows, out=tokens[:total])
            tokens[total] = 0
        meta = [ids.size, width, total, ids.size, ids.size, 0, total * dtype.itemsize]
        return tokens, pack_aux(meta, lens, index)

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
        meta = [rows.size, plan.row_length, tokens, sessions.size, reads, 0, tokens * flat.itemsize]
        return flat, pack_aux(meta, seg_lengths, sessions)

    def stats(self) -> dict:
        """Counters of this process's calls: batches, reads (session pieces), bytes, seconds."""
        return {**self._counters, **self._times}
