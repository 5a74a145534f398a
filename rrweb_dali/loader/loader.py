"""``make_loader`` and :class:`Loader`: token shards -> DALI -> dicts of torch tensors on a device.

Epochs: ``for batch in loader`` runs the rest of the current epoch; iterating again starts the next
one. ``set_epoch(e)`` with ``e`` other than the current epoch starts epoch ``e`` from its beginning;
with the current epoch it changes nothing (so the usual ``set_epoch(epoch)`` at the top of an epoch
loop keeps a resumed mid-epoch position). Breaking out of a loop and iterating again continues the
epoch at the next batch.

The DALI pipeline is built once and reused: moving on to the next epoch is a ``reset()``. It is
rebuilt only when the position jumps (``set_epoch`` to another epoch, ``load_state_dict``).

Threads: the pipeline is run by a background thread (``.ahead``), a few iterations ahead of the
training loop; the batches it finished and the loop has not taken are kept across a ``break``
and dropped, with the thread, when the pipeline is rebuilt or closed. The position and counters
move only when the loop receives a batch.
"""

from __future__ import annotations

import contextlib
import logging
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from external_source.cache_stats import tail_length
from external_source.reader import PathLike
from external_source.sampling import consumed_after
from external_source.source import META, N_META, BatchSource, SourceConfig, split_aux
from external_source.state import LoaderState
from rrweb_dali.ingest import ReadLimits
from rrweb_dali.loader.ahead import Ahead
from rrweb_dali.loader.buffers import HostBufferPool
from rrweb_dali.loader.distributed import local_device_id, rank_and_world
from rrweb_dali.loader.pipeline import (
    IGNORE_INDEX,
    OutputSpec,
    build_pipeline,
    finish_host,
    finish_torch,
)

logger = logging.getLogger(__name__)

# Default rows per DALI iteration (``batches_per_call`` = this // batch size, at least 1). DALI
# costs ~0.2-0.25 ms per iteration on the 2-core dev machine whatever its size; shared by 512 rows
# it fell to noise: bs 64 gave 75k samples/s with 1 batch per call, 90-98k with 4, 97-107k with 8;
# bs 256 103-111k with 1, 110-131k with 2, and worse again with 8 (16 MB per call).
ROWS_PER_CALL = 512


def _call_alive(method: weakref.WeakMethod):
    """Call a weakly referenced method; its object gone, end the producer."""
    bound = method()
    if bound is None:
        raise RuntimeError("the loader was garbage-collected")
    return bound()


class Loader:
    """An iterable of ``dict[str, torch.Tensor]`` batches for one rank; see :func:`make_loader`."""

    def __init__(
        self,
        paths: PathLike | Sequence[PathLike],
        config: SourceConfig,
        spec: OutputSpec,
        device_id: int | None,
        rank: int = 0,
        world_size: int = 1,
        prefetch: int = 2,
        num_threads: int = 2,
        parallel: bool = False,
        py_workers: int = 2,
        source_factory: Callable[..., BatchSource] = BatchSource,
    ):
        """``source_factory`` makes the batch sources (``BatchSource``'s signature): raw mode
        passes ``RawBatchSource`` with its files bound (see ``external_source.raw``)."""
        if prefetch < 1 or num_threads < 1 or py_workers < 1:
            raise ValueError("prefetch, num_threads and py_workers must be at least 1")
        # The CPU device gets its rows padded by the source (one host copy either way); a GPU
        # gets them unpadded and pads after the copy (see ``.pipeline``).
        self._config = replace(config, pad_on_host=device_id is None)
        self._spec = spec
        self._device_id = device_id
        self._device = torch.device("cpu") if device_id is None else torch.device("cuda", device_id)
        self.rank, self.world_size = rank, world_size
        self._options = dict(
            prefetch=prefetch, num_threads=num_threads, parallel=parallel, py_workers=py_workers
        )
        self._source_factory = source_factory
        self._planner = source_factory(paths, self._config, rank, world_size)
        self._paths = self._planner.paths
        # Sources with a token cache report its counters in a tail of each batch's aux vector.
        new_cache_stats = getattr(self._planner, "new_cache_stats", None)
        self._cache = new_cache_stats() if new_cache_stats is not None else None
        # Logical position: epoch, where this pass over it started, batches done since.
        self._epoch, self._start, self._k = 0, 0, 0
        self._pipe = None
        self._pipe_pos = (0, 0, 0)  # (epoch, start, batches delivered) of the pipeline
        # DALI outputs of the last two iterations, kept alive a little longer than the tensors
        # built from them: on a GPU the padding kernels that read them are still queued.
        self._recent: deque = deque(maxlen=2)
        self._ahead: Ahead | None = None  # the thread running the pipeline ahead of the loop
        self._ahead_depth = prefetch
        self._pending: deque = deque()  # finished batches of the last iteration not yet handed
        self._stream = None  # the consumer's CUDA stream, captured when a pass starts
        # CPU device: recycled batch arrays (see .buffers), enough for every batch in flight: the
        # thread's queue, the one it makes, the iteration being handed out, the loop's own.
        in_flight = (prefetch + 3) * config.batches_per_call
        self._host_pool = HostBufferPool(max_buffers=3 * in_flight)
        self._stats = dict.fromkeys(
            ("batches", "rows", "tokens", "slots", "reads", "bytes", "pipeline_builds"), 0
        )
        self._times = dict.fromkeys(("gather_s", "wait_s", "finish_s", "build_s"), 0.0)

    # ---- plan -------------------------------------------------------------------------------
    @property
    def reader(self):
        return self._planner.reader

    @property
    def config(self) -> SourceConfig:
        return self._config

    def _units(self, epoch: int) -> int:
        return self._planner.units(epoch)

    def _batches(self, epoch: int, start: int) -> int:
        return self._planner.num_batches(epoch, start)

    def __len__(self) -> int:
        """Batches in a whole epoch on this rank (the same on every rank)."""
        return self._batches(self._epoch, 0)

    def _normalize(self) -> None:
        """After the last batch of an epoch the position is the start of the next epoch."""
        if (self._k or self._start) and self._k >= self._batches(self._epoch, self._start):
            self._epoch, self._start, self._k = self._epoch + 1, 0, 0

    @property
    def epoch(self) -> int:
        self._normalize()
        return self._epoch

    def set_epoch(self, epoch: int) -> None:
        """Start ``epoch`` at its beginning, unless it is already the current epoch."""
        if int(epoch) != self.epoch:
            self._epoch, self._start, self._k = int(epoch), 0, 0

    def _consumed(self) -> int:
        cfg = self._config
        return consumed_after(
            self._units(self._epoch), self._start, cfg.batch_size, self.world_size, self._k
        )

    def state_dict(self) -> dict:
        """``(seed, epoch, units consumed globally)`` plus the plan check; see ``LoaderState``."""
        self._normalize()
        return LoaderState(
            seed=self._config.seed,
            epoch=self._epoch,
            consumed=self._consumed(),
            plan=self._config.plan_key(len(self.reader)),
            world_size=self.world_size,
            rank=self.rank,
        ).to_dict()

    def load_state_dict(self, state: dict) -> None:
        """Continue where ``state`` was taken, on this loader's rank and world size."""
        st = LoaderState.from_dict(state)
        if st.seed != self._config.seed:
            self._replace_config(seed=st.seed)
        st.check_plan(self._config.plan_key(len(self.reader)))
        if st.consumed < 0 or st.consumed > self._units(st.epoch):
            raise ValueError(f"loader state consumed={st.consumed} is outside epoch {st.epoch}")
        self._epoch, self._start, self._k = st.epoch, st.consumed, 0
        self._normalize()

    def _replace_config(self, **changes) -> None:
        self._config = replace(self._config, **changes)
        reader = self._planner.reader
        self._planner = self._source_factory(
            self._paths, self._config, self.rank, self.world_size, reader=reader
        )
        self.close()

    # ---- pipeline ---------------------------------------------------------------------------
    def _build(self) -> None:
        self.close()
        start = self._consumed()
        self._start, self._k = start, 0
        source = self._source_factory(
            self._paths,
            self._config,
            self.rank,
            self.world_size,
            start_epoch=self._epoch,
            start_consumed=start,
            reader=self._planner.reader,
        )
        t0 = time.perf_counter()
        self._pipe = build_pipeline(
            source, self.reader.dtype, self._spec.dtype, self._device_id, **self._options
        )
        self._times["build_s"] += time.perf_counter() - t0
        self._stats["pipeline_builds"] += 1
        self._pipe_pos = (self._epoch, start, 0)
        logger.debug("built the DALI pipeline at epoch %d, position %d", self._epoch, start)

    def _position_pipeline(self) -> None:
        """Make the pipeline's next batch the loader's next batch: reuse, reset, or rebuild."""
        self._normalize()
        want = (self._epoch, self._start, self._k)
        if self._pipe is not None:
            if self._pipe_pos == want:
                return
            epoch, start, done = self._pipe_pos
            if want == (epoch + 1, 0, 0) and done >= self._batches(epoch, start):
                try:
                    self._pipe.run()
                    raise RuntimeError("the DALI pipeline gave more batches than its plan")
                except StopIteration:
                    pass
                self._pipe.reset()
                self._pipe_pos = want
                return
        self._build()

    def _run_step(self):
        """One DALI iteration (in the ``Ahead`` thread): the finished batches on the CPU; on a
        GPU DALI's outputs, finished on the consumer's thread and stream (see ``_next_batch``)."""
        try:
            if self._device_id is None:
                return self._assemble(self._pipe.run())
            return self._pipe.run(self._stream)
        except StopIteration:  # must not escape as StopIteration into the consumer's generator
            raise RuntimeError("the DALI pipeline ended before its plan") from None

    def _assemble(self, outputs) -> list[tuple[dict[str, torch.Tensor], np.ndarray, object]]:
        """The batches of one DALI iteration (one per sample), each with its ``meta`` and cache
        tail for ``_account``."""
        t0 = time.perf_counter()
        gpu = self._device_id is not None
        if gpu:
            self._recent.append(outputs)
        batches = []
        for j in range(len(outputs[1])):
            aux = np.asarray(outputs[1][j])  # the host copy, on a GPU too: no device sync
            tail = None
            if self._cache is not None:
                n = tail_length(aux)
                aux, tail = aux[: aux.shape[0] - n], aux[aux.shape[0] - n :].copy()
            meta = aux[:N_META]
            width = int(meta[META["width"]])
            if gpu:
                device_aux = torch.from_dlpack(outputs[2][j])
                _, lengths, index = split_aux(device_aux[: aux.shape[0]])
                tokens = torch.from_dlpack(outputs[0][j])
                batch = finish_torch(tokens, lengths, index, width, self._spec)
            else:
                _, lengths, index = split_aux(aux)
                ids = np.asarray(outputs[0][j])  # zero-copy; keeps DALI's buffer alive
                batch = finish_host(ids, lengths, index, width, self._spec, pool=self._host_pool)
            if self._cache is not None and "labels" in batch and not self._spec.packing:
                # Rows standing in for unreadable raw files (index -1) must not train the model.
                batch["labels"].masked_fill_((batch["index"] < 0)[:, None], IGNORE_INDEX)
            batches.append((batch, meta.copy(), tail))
        self._times["finish_s"] += time.perf_counter() - t0
        return batches

    def _account(self, meta: np.ndarray, tail: np.ndarray | None) -> None:
        """Count a batch as it is handed out, so counters describe batches received."""
        if tail is not None:
            self._cache.record(tail)
        rows, width = int(meta[META["rows"]]), int(meta[META["width"]])
        self._stats["batches"] += 1
        self._stats["rows"] += rows
        self._stats["tokens"] += int(meta[META["tokens"]])
        self._stats["slots"] += rows * width
        self._stats["reads"] += int(meta[META["reads"]])
        self._stats["bytes"] += int(meta[META["bytes"]])
        self._times["gather_s"] += int(meta[META["gather_ns"]]) * 1e-9

    def _next_batch(self) -> tuple:
        """The next finished batch of the pipeline, from the background thread (started on the
        first request after a build or reset; it runs the pass's remaining iterations)."""
        if not self._pending:
            if self._ahead is None:
                if self._device_id is not None:
                    # DALI binds the outputs to the consumer's stream, captured on its thread.
                    self._stream = torch.cuda.current_stream(self._device)
                epoch, start, done = self._pipe_pos
                per_call = self._config.batches_per_call
                assert done % per_call == 0, "a pass starts on an iteration boundary"
                runs = -(-(self._batches(epoch, start) - done) // per_call)
                # A weak reference: a thread holding the loader would keep a dropped loader (and
                # its pipeline and worker processes) alive; this way ``__del__`` still closes it.
                step = weakref.WeakMethod(self._run_step)
                self._ahead = Ahead(
                    lambda: _call_alive(step), runs, self._ahead_depth, "rrweb-dali-loader"
                )
            try:
                item = self._ahead.get()
            except BaseException:
                # After a failed iteration the pipeline's state is unknown: the next pass
                # rebuilds it at the position of the batches received so far.
                self.close()
                raise
            self._pending.extend(item if self._device_id is None else self._assemble(item))
            if self._ahead.remaining == 0:
                self._ahead = None  # its thread has ended; the next pass starts another
        return self._pending.popleft()

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        self._position_pipeline()
        epoch, start, k = self._epoch, self._start, self._k
        total = self._batches(epoch, start)
        if total == 0:  # nothing in this epoch (drop_last on a tiny dataset): move on
            self._epoch, self._start, self._k = epoch + 1, 0, 0
            return
        while k < total:
            t0 = time.perf_counter()
            batch, meta, tail = self._next_batch()
            self._times["wait_s"] += time.perf_counter() - t0
            self._account(meta, tail)
            k += 1
            self._pipe_pos = (epoch, start, k)
            # The position is updated before the batch is handed out, so state_dict(), stats()
            # and epoch read inside the loop describe exactly the batches received so far.
            here = (epoch, start, k) if k < total else (epoch + 1, 0, 0)
            self._epoch, self._start, self._k = here
            yield batch
            if (self._epoch, self._start, self._k) != here:
                return  # moved by set_epoch/load_state_dict meanwhile: a new pass repositions

    def stats(self) -> dict:
        """Counters since construction.

        Batches, rows, real tokens, padded slots, padding efficiency, session pieces read and
        bytes gathered, counted as the loop receives each batch; and seconds spent gathering (in
        the source, wherever it ran), waiting in ``next(loader)`` (``wait_s``), completing
        batches after DALI (``finish_s``: the mask on the CPU device, in the background thread;
        launching the padding kernels on a GPU) and building pipelines.

        Read-only: safe inside a ``for batch in loader`` loop and from another thread (the
        profiler samples it twice a second).
        """
        s = {**self._stats, **self._times}
        s["padding_efficiency"] = s["tokens"] / s["slots"] if s["slots"] else 1.0
        s["epoch"] = self._epoch  # not self.epoch: that normalises the position
        return s

    def cache_stats(self) -> dict | None:
        """Token cache counters of raw mode (``None`` on shards), summed over the worker
        processes from the batches received so far; see ``external_source.cache_stats``.

        ``hits``/``misses``/``evictions``/``bytes`` (both levels together) are what the profiler
        and dashboard plot; ``memory``/``disk`` split them; ``tokenize_s`` vs ``cached_read_s``;
        ``bad_files`` and ``bad_by_reason``; ``epochs`` marks each epoch ``cold`` (some file was
        tokenized) or ``warm``. Safe to call from another thread.
        """
        return None if self._cache is None else self._cache.as_dict()

    def profile(self, runs_dir: str | Path, name: str = "train", **kwargs):
        """Record this loader's counters into a profile run while a training loop uses it.

        ``with loader.profile("runs") as batches: for batch in batches: ...`` writes
        ``runs/<run id>/`` (see :func:`rrweb_dali.profiling.profile`, which takes the same
        keyword arguments) for ``rrweb-dali dashboard runs``.
        """
        from rrweb_dali.profiling import profile

        return profile(self, runs_dir, name, **kwargs)

    def close(self) -> None:
        """Shut the DALI pipeline (and its worker processes) down; iterating again rebuilds it."""
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            ahead.stop()  # before the pipeline it runs goes away
        self._pending.clear()
        pipe, self._pipe = self._pipe, None
        self._recent.clear()
        if pipe is not None:
            pool = getattr(pipe, "_py_pool", None)
            shutdown = getattr(pipe, "_shutdown", None)
            if shutdown is not None:
                shutdown()
            if pool is not None:
                pool.close()

    def __enter__(self) -> Loader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # at interpreter exit DALI may be gone already
            self.close()


def make_loader(
    shards: str | Path | list | None = None,
    batch_size: int | None = None,
    device: str = "cuda",
    seed: int = 0,
    rank: int | None = None,
    world_size: int | None = None,
    *,
    shuffle: bool = True,
    drop_last: bool = False,
    bucketing: bool = False,
    bucket_window: int = 16,
    pad_to: str | int = "batch",
    pad_multiple: int = 8,
    max_length: int | None = None,
    packing: int | None = None,
    dtype: str = "int64",
    labels: bool = False,
    position_ids: bool = False,
    prefetch: int = 2,
    num_threads: int = 2,
    batches_per_call: int | None = None,
    parallel: bool | None = None,
    py_workers: int | None = None,
    raw: str | Path | list | None = None,
    cache_dir: str | Path | None = None,
    max_tokens: int = 65536,
    cache_bytes: int | None = None,
    memory_cache_bytes: int | None = None,
    max_text_bytes: int | None = None,
    read_limits: ReadLimits | None = None,
) -> Loader:
    """A loader over the dataset directories ``shards`` for this process's rank.

    Padded mode (default): each batch is ``batch_size`` sessions, ``input_ids``/``attention_mask``
    ``[B, L]`` with ``L`` the batch's longest row rounded up to ``pad_multiple`` (or ``pad_to``),
    ``lengths`` ``[B]`` int32, ``index`` ``[B]`` int64 session ids; ``labels`` (``input_ids`` with
    -100 at pads, unshifted like Hugging Face) and ``position_ids`` on request. Sessions longer
    than ``max_length`` (or a fixed ``pad_to``) keep their first tokens.

    Packing mode (``packing=L``): ``batch_size`` dense rows of ``L`` tokens; see
    ``external_source.packing`` and the README for its outputs (``position_ids``,
    ``document_ids``, ``cu_seqlens``, ``index`` per segment).

    Overlap: ``batches_per_call`` training batches make one DALI iteration (default: about
    ``ROWS_PER_CALL`` = 512 rows, so DALI's cost per iteration is shared; 1 in raw mode). DALI
    runs ``prefetch`` iterations ahead on ``num_threads`` threads, and a background thread of the
    loader runs the iterations (and on the CPU the padding) up to ``prefetch`` more ahead of the
    training loop. An error there is raised by ``next(loader)``; iterating again rebuilds the
    pipeline at the next batch not received.

    ``rank``/``world_size`` default to torchrun's environment, else 0 of 1; ``device="cuda"`` uses
    ``LOCAL_RANK``'s GPU. ``device="cpu"`` runs the same DALI graph CPU-only. ``parallel=True``
    runs the batch source in ``py_workers`` spawned processes (default on shards: off, 2 workers).

    Raw mode (``raw=`` directories, files or globs instead of ``shards``): the batch source reads
    and tokenizes the files itself, by default in one DALI worker process per CPU
    (``parallel``/``py_workers`` default to on / the usable CPUs). One unit per file, its first
    ``max_tokens`` tokens (as ``preprocess --overflow truncate --max-tokens``); unreadable files
    become ``[BOS, EOS]`` rows with ``index`` -1. ``cache_dir`` keeps the tokens on disk for
    later epochs and runs (at most ``cache_bytes``, oldest segments evicted); each worker also
    keeps ``memory_cache_bytes`` in memory. ``max_text_bytes``/``read_limits`` (a ``ReadLimits``)
    are the tokenizer's and the reader's options. See ``external_source.raw``.
    """
    if batch_size is None:
        raise TypeError("make_loader() needs batch_size")
    if (shards is None) == (raw is None):
        raise ValueError("give make_loader either shards (a preprocessed dataset) or raw (files)")
    if dtype not in ("int64", "int32"):
        raise ValueError(f"dtype must be 'int64' or 'int32', got {dtype!r}")
    if pad_to != "batch" and (isinstance(pad_to, bool) or not isinstance(pad_to, int)):
        raise ValueError(f"pad_to must be 'batch' or a length, got {pad_to!r}")
    if packing is not None and pad_to != "batch":
        raise ValueError("pad_to does not apply to packing: rows are always `packing` long")
    if device != "cpu" and not torch.cuda.is_available():
        raise RuntimeError(f"device={device!r} but torch sees no CUDA device; use device='cpu'")
    rank, world_size = rank_and_world(rank, world_size)
    if batches_per_call is None:
        # Raw mode's cost per batch is tokenizing (when cold), far above DALI's per iteration;
        # one batch per call keeps its worker processes' calls small and balanced.
        batches_per_call = 1 if raw is not None else max(1, ROWS_PER_CALL // batch_size)
    if parallel is None:
        parallel = raw is not None
    if py_workers is None:
        from rrweb_dali.preprocess.executor import available_cpus

        py_workers = available_cpus() if raw is not None else 2
    config = SourceConfig(
        batch_size=batch_size,
        seed=seed,
        shuffle=shuffle,
        drop_last=drop_last,
        bucketing=bucketing,
        bucket_window=bucket_window,
        pad_to=None if pad_to == "batch" else int(pad_to),
        pad_multiple=pad_multiple,
        max_length=max_length,
        packing=packing,
        batches_per_call=batches_per_call,
    )
    spec = OutputSpec(
        dtype=dtype, labels=labels, position_ids=position_ids, packing=packing is not None
    )
    source_factory = BatchSource
    if raw is not None:
        from external_source.raw import raw_source_factory
        from external_source.token_cache import DEFAULT_MEMORY_BYTES, CacheOptions

        options = CacheOptions(
            cache_dir=None if cache_dir is None else str(cache_dir),
            max_tokens=max_tokens,
            disk_bytes=cache_bytes,
            memory_bytes=DEFAULT_MEMORY_BYTES if memory_cache_bytes is None else memory_cache_bytes,
            max_text_bytes=max_text_bytes,
            **({} if read_limits is None else {"limits": read_limits}),
        )
        source_factory = raw_source_factory(raw, config, options, workers=py_workers)
        shards = [str(p) for p in raw] if isinstance(raw, (list, tuple)) else str(raw)
    loader = Loader(
        shards,
        config,
        spec,
        local_device_id(device),
        rank,
        world_size,
        prefetch=prefetch,
        num_threads=num_threads,
        parallel=parallel,
        py_workers=py_workers,
        source_factory=source_factory,
    )
    if len(loader) == 0:
        logger.warning(
            "the loader yields no batch: %d units, batch size %d, world size %d, drop_last=%s",
            loader._units(0),
            batch_size,
            world_size,
            drop_last,
        )
    return loader
