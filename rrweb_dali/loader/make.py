""":func:`make_loader`: keyword arguments -> the option dataclasses -> a :class:`Loader`."""

from __future__ import annotations

import functools
import logging
import numbers
from collections.abc import Sequence
from pathlib import Path

import torch

from rrweb_dali.external_source.options import ROWS_PER_CALL, PlanOptions, Transport
from rrweb_dali.external_source.selection import Selection
from rrweb_dali.external_source.source import BatchSource
from rrweb_dali.ingest import ReadLimits
from rrweb_dali.loader.distributed import local_device_id, rank_and_world
from rrweb_dali.loader.loader import Loader
from rrweb_dali.loader.options import OutputOptions, PipelineOptions
from rrweb_dali.loader.workers import spawn_blocker
from rrweb_dali.store import RemoteShard, RetryPolicy, StoreOptions
from rrweb_dali.store.options import store_options_for

logger = logging.getLogger(__name__)

# Rows longer than this without a cap (``max_length``, ``pad_to`` or ``packing``) get a warning:
# a batch is padded to its longest row, so one 65k-token session makes a whole batch that wide.
LONG_ROW_WARNING = 8192


def _check_batch_size(batch_size: object) -> int:
    """``batch_size`` as DataLoader takes it: a positive int (numpy's too), checked before use."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral):
        raise TypeError(
            f"make_loader(batch_size=...) must be an int, got {batch_size!r} "
            f"({type(batch_size).__name__})"
        )
    if batch_size < 1:
        raise ValueError(f"make_loader(batch_size=...) must be at least 1, got {batch_size}")
    return int(batch_size)


def resolve_device(device: str) -> str:
    """``"auto"``: CUDA when torch sees a GPU, else the CPU; ``"cuda"`` without one is an error."""
    if device not in ("auto", "cuda", "cpu") and not device.startswith("cuda:"):
        raise ValueError(f"device must be 'auto', 'cuda' or 'cpu', got {device!r}")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device != "cpu" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} but torch sees no CUDA device; use device='cpu'")
    return device


def _last_batch(drop_last: bool, last_batch: str | None) -> str:
    if last_batch is None:
        return "drop" if drop_last else "short"
    if drop_last and last_batch != "drop":
        raise ValueError(f"drop_last=True contradicts last_batch={last_batch!r}")
    return last_batch


def make_loader(
    shards: str | Path | list | None = None,
    *,
    batch_size: int,
    device: str = "auto",
    seed: int = 0,
    rank: int | None = None,
    world_size: int | None = None,
    shuffle: bool = True,
    drop_last: bool = False,
    last_batch: str | None = None,
    bucketing: bool = False,
    bucket_window: int = 16,
    pad_to: str | int = "batch",
    pad_multiple: int = 8,
    max_length: int | None = None,
    packing: int | None = None,
    dtype: str = "int64",
    labels: bool | None = None,
    position_ids: bool = False,
    layout: str = "plain",
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
    split: str | None = None,
    val_fraction: float = 0.01,
    min_sequence_tokens: int | None = None,
    max_sequence_tokens: int | None = None,
    source_glob: str | None = None,
    weights: Sequence[float] | None = None,
    mixture: str = "repeat",
    shard_window: int | None = None,
    storage_options: dict | None = None,
    fetch_ahead: int = 4,
    fetch_threads: int = 4,
    retry: RetryPolicy | None = None,
) -> Loader:
    """A loader over the dataset directories ``shards`` for this process's rank.

    Padded mode (default): each batch is ``batch_size`` sessions, ``input_ids``/``attention_mask``
    ``[B, L]`` with ``L`` the batch's longest row rounded up to ``pad_multiple`` (or ``pad_to``),
    ``lengths`` ``[B]`` int32, ``index`` ``[B]`` int64 session ids; ``labels`` (``input_ids`` with
    -100 at pads, unshifted like Hugging Face; always int64) and ``position_ids`` on request
    (``labels`` by default in the ``"hf"`` layout).
    Sessions longer than ``max_length`` (or a fixed ``pad_to``) keep their first tokens.

    Packing mode (``packing=L``): ``batch_size`` dense rows of ``L`` tokens; see
    ``rrweb_dali.external_source.packing`` and the README for its outputs (``position_ids``,
    ``document_ids``, ``cu_seqlens``, ``index`` per segment).

    Layout: ``"plain"`` (default) is one dict of every field above. ``"hf"`` gives Hugging Face
    models exactly their inputs, ``model(**batch)``, with labels by default, and keeps ``index``,
    ``lengths`` and ``document_ids`` in ``batch.meta``; when packing, no ``attention_mask`` but
    ``cu_seq_lens_q``/``_k``, ``max_length_q``/``_k``, ``seq_idx`` and ``use_cache=False``, so
    documents never attend to each other (see :mod:`rrweb_dali.loader.layout`).

    The end of an epoch, ``last_batch``: ``"short"`` (default; ``DataLoader`` over a
    ``DistributedSampler``: the last batch may be short, the same size on every rank, with fewer
    than ``world_size`` repeats), ``"drop"`` (``drop_last=True``) or ``"wrap"`` (full batches
    filled from the start of the epoch: fixed shapes for CUDA graphs and ``torch.compile``).

    Ranks: ``rank``/``world_size``, else an initialised ``torch.distributed`` group, else
    torchrun's ``RANK``/``WORLD_SIZE`` (see :mod:`rrweb_dali.loader.distributed`).
    ``device="auto"`` (default) is CUDA when torch sees a GPU, else the CPU; ``"cuda"`` uses
    ``LOCAL_RANK``'s GPU; ``"cpu"`` runs the same DALI graph CPU-only.

    Row length: without ``max_length`` (or ``pad_to``, or ``packing``) a row is a whole sequence,
    up to the dataset's ``--max-tokens`` (65,536 by default); a warning says so when rows can
    pass ``LONG_ROW_WARNING`` = 8,192 tokens.

    Overlap: ``batches_per_call`` training batches make one DALI iteration (default: about
    ``ROWS_PER_CALL`` = 512 rows; 1 in raw mode). DALI runs ``prefetch`` iterations ahead on
    ``num_threads`` threads, and a background thread of the loader runs the iterations (and on
    the CPU the padding) up to ``prefetch`` more ahead of the loop. ``parallel=True`` runs the
    batch source in ``py_workers`` spawned processes (default on shards: off, 2 workers); they
    end with this process however it dies. A program that spawned processes cannot start from
    (one read from standard input, ``python - < train.py``) runs the source in this process
    instead, with a warning (see :mod:`rrweb_dali.loader.workers`).

    Raw mode (``raw=`` directories, files or globs instead of ``shards``): the batch source reads
    and tokenizes the files itself, by default in one DALI worker process per CPU. One unit per
    file, its first ``max_tokens`` tokens (as ``preprocess --overflow truncate --max-tokens``);
    unreadable files become ``[BOS, EOS]`` rows with ``index`` -1 (their labels -100).
    ``cache_dir`` keeps the tokens on disk (at most ``cache_bytes``); each worker also keeps
    ``memory_cache_bytes`` in memory. ``max_text_bytes``/``read_limits`` are the tokenizer's and
    the reader's options. See ``rrweb_dali.external_source.raw``.

    Selection (shards only; see ``rrweb_dali.external_source.selection``): ``split="train"`` or
    ``"val"`` keeps the files whose stable name hash is at or above, or below, ``val_fraction``
    (a session's windows never straddle; adding files never moves one); ``min_sequence_tokens``
    / ``max_sequence_tokens`` bound a sequence's stored length (``max_length`` truncates, it does
    not filter); ``source_glob`` matches the stored source name. ``index`` stays the sequence's
    id in its whole dataset, so ``open_dataset(path)[index]`` finds it under any selection.

    Mixture (``weights=``, one per directory of ``shards``; see
    ``rrweb_dali.external_source.mixture``): the directories are sampled in those proportions
    instead of concatenated; ``mixture="repeat"`` (an epoch ends when every source was seen whole,
    the smaller ones repeating) or ``"exhaust"`` (it ends when the first source runs out; nothing
    repeats). Each batch then has ``dataset`` (the source of each row, or segment when packing)
    and ``index`` numbers rows within that source.

    Object stores (``shards="s3://bucket/prefix"``, or such URLs in the list; see
    :mod:`rrweb_dali.store`): the client takes ``storage_options`` as fsspec does
    (``{"endpoint_url": ...}``, ``key``/``secret``...), else the standard AWS variables. Shards
    are kept in the node-local ``cache_dir`` (default ``~/.cache/rrweb-dali/shards``, shared by
    the node's ranks: one download per shard) holding at most ``cache_bytes`` (default 64 GiB);
    ``fetch_ahead`` shards past the ones in use are downloaded in the epoch's order by
    ``fetch_threads`` threads, each checked against the manifest's SHA-256, failed downloads
    tried again as ``retry`` says. Batches are those of the same dataset read locally.
    ``shard_window=K`` shuffles within windows of ``K`` shards (in a seeded order) instead of the
    whole dataset, so that an epoch needs about ``K`` shards at a time: what a cache smaller than
    the dataset needs (a warning says so when it is smaller and the shuffle is global).
    """
    batch_size = _check_batch_size(batch_size)
    if (shards is None) == (raw is None):
        raise ValueError("give make_loader either shards (a preprocessed dataset) or raw (files)")
    if pad_to != "batch" and (isinstance(pad_to, bool) or not isinstance(pad_to, int)):
        raise ValueError(f"pad_to must be 'batch' or a length, got {pad_to!r}")
    selection = Selection(
        split=split,
        val_fraction=val_fraction,
        min_sequence_tokens=min_sequence_tokens,
        max_sequence_tokens=max_sequence_tokens,
        source_glob=source_glob,
    )
    if raw is not None and (
        not selection.selects_all or weights is not None or shard_window is not None
    ):
        raise ValueError(
            "split, the sequence filters, weights and shard_window apply to preprocessed shards, "
            "not raw files"
        )
    device = resolve_device(device)
    plan = PlanOptions(
        batch_size=batch_size,
        seed=seed,
        shuffle=shuffle,
        last_batch=_last_batch(drop_last, last_batch),
        bucketing=bucketing,
        bucket_window=bucket_window,
        pad_to=None if pad_to == "batch" else pad_to,
        pad_multiple=pad_multiple,
        max_length=max_length,
        packing=packing,
        selection=None if selection.selects_all else selection,
        weights=None if weights is None else tuple(weights),
        mixture=mixture,
        shard_window=shard_window,
    )
    if labels is None:
        labels = layout == "hf"  # Hugging Face models compute their loss when given labels
    outputs = OutputOptions(
        dtype=dtype,
        labels=bool(labels),
        position_ids=position_ids,
        packing=packing is not None,
        layout=layout,
        mixture=weights is not None,
    )
    rank, world_size = rank_and_world(rank, world_size)
    device_id = local_device_id(device)
    if batches_per_call is None:
        # Raw mode's cost per batch is tokenizing (when cold), far above DALI's per iteration;
        # one batch per call keeps its worker processes' calls small and balanced.
        batches_per_call = 1 if raw is not None else max(1, ROWS_PER_CALL // batch_size)
    # The CPU device gets its rows padded by the source (one host copy either way); a GPU gets
    # them unpadded and pads after the copy (see .graph).
    transport = Transport(pad_on_host=device_id is None, batches_per_call=batches_per_call)
    parallel = raw is not None if parallel is None else bool(parallel)
    # DALI's spawned workers cannot start from a program read from standard input: run the
    # source in this process rather than fail (raw packing's cache warming uses
    # rrweb_dali.parallel, whose workers import only the task's module: they start anywhere).
    blocker = spawn_blocker() if parallel else None
    if blocker is not None:
        logger.warning(
            "parallel workers cannot start from this program (%s): the batch source runs in this "
            "process instead (parallel=False, slower in raw mode); run the program from a file "
            "to use worker processes",
            blocker,
        )
        parallel = False
    make_source, paths = BatchSource, shards
    store = store_options_for(
        [] if shards is None else shards,  # raw files are local: no storage_options
        storage_options=storage_options,
        cache_dir=cache_dir,
        cache_bytes=cache_bytes,
        fetch_ahead=fetch_ahead,
        fetch_threads=fetch_threads,
        retry=retry,
    )
    if store is not None:
        make_source = functools.partial(BatchSource, store=store)
    if raw is not None:
        from rrweb_dali.external_source.raw import (
            DEFAULT_MEMORY_BYTES,
            CacheOptions,
            raw_source_factory,
        )
        from rrweb_dali.parallel import available_cpus

        py_workers = available_cpus() if py_workers is None else py_workers
        options = CacheOptions(
            cache_dir=None if cache_dir is None else str(cache_dir),
            max_tokens=max_tokens,
            disk_bytes=cache_bytes,
            memory_bytes=DEFAULT_MEMORY_BYTES if memory_cache_bytes is None else memory_cache_bytes,
            max_text_bytes=max_text_bytes,
            **({} if read_limits is None else {"limits": read_limits}),
        )
        make_source = raw_source_factory(raw, plan, options, workers=py_workers)
        paths = [str(p) for p in raw] if isinstance(raw, (list, tuple)) else str(raw)
    pipeline = PipelineOptions(
        device_id=device_id,
        prefetch=prefetch,
        num_threads=num_threads,
        parallel=parallel,
        py_workers=2 if py_workers is None else py_workers,
        next_epoch_ahead=raw is None,  # raw files may change between epochs: read them then
    )
    loader = Loader(make_source, paths, plan, transport, outputs, pipeline, rank, world_size)
    if len(loader) == 0:
        logger.warning(
            "the loader yields no batch: %d units, batch size %d, world size %d, last_batch=%s",
            len(loader.reader),
            batch_size,
            world_size,
            plan.last_batch,
        )
    if loader.reader.remote:
        _warn_if_thrashing(loader.reader, store, plan)
    if plan.cap is None and packing is None:
        longest = max_tokens if raw is not None else _longest(loader.reader.lengths)
        if longest > LONG_ROW_WARNING:
            logger.warning(
                "rows can be up to %d tokens (no max_length): every batch is as wide as its "
                "longest row; pass max_length= (e.g. %d) or packing= to bound memory and padding",
                longest,
                LONG_ROW_WARNING,
            )
    return loader


def _warn_if_thrashing(reader, store: StoreOptions, plan: PlanOptions) -> None:
    """A cache smaller than the remote shards under a global shuffle downloads shards again and
    again (every batch reads from nearly every shard): say so, and what to pass."""
    remote_bytes = sum(s.info.bin_bytes for s in reader.shards if isinstance(s, RemoteShard))
    if plan.shuffle and plan.shard_window is None and remote_bytes > store.cache_bytes:
        largest = max(s.info.bin_bytes for s in reader.shards if isinstance(s, RemoteShard))
        fits = max(1, store.cache_bytes // largest)
        logger.warning(
            "the shard cache (%d bytes) is smaller than the remote shards (%d bytes) and the "
            "shuffle is global: every batch reads from nearly every shard, so shards are fetched "
            "again and again; pass shard_window= (e.g. %d) to shuffle within windows of shards",
            store.cache_bytes,
            remote_bytes,
            max(1, (fits - store.fetch_ahead) // 2),
        )


def _longest(lengths) -> int:
    return int(lengths.max()) if len(lengths) else 0
