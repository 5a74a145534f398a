"""Raw mode's batch source: the shard loader's ``BatchSource``, reading and tokenizing files itself.

``make_loader(raw=SRC, cache_dir=...)`` builds the same loader as on shards with
:class:`RawBatchSource` in place of :class:`~rrweb_dali.external_source.source.BatchSource`. It is a
``BatchSource`` whose reader is a :class:`RawReader`: the plan, rank sharding, remainder policy,
resume state and outputs are the shard loader's, unchanged. With ``parallel=True`` (raw mode's
default) DALI pickles the source into its spawned worker processes; each one builds its own
:class:`~.token_cache.TokenCache` there, so reading and tokenizing run on every
core beside the training process.

The unit is one file (see :mod:`.files`); ``index`` is the file's number. A file gives its first
``max_tokens`` tokens: exactly what ``preprocess --overflow truncate --max-tokens M`` writes for
it (a longer session keeps its head, without EOS).

Bad files. A file that cannot be read (a ``SessionError`` reason) still fills its row, so every
rank keeps the same number of batches: in padded mode with ``[BOS, EOS]``, ``index`` -1 (the
loader also sets such rows' ``labels`` to -100). The main process logs each bad file once, with
its reason, and counts them in ``cache_stats()``. In packing mode bad files have length 0 and
take no room.

Lengths. Bucketing needs lengths before tokenizing: raw mode uses the file size as a proxy
(:meth:`RawFiles.proxy_lengths`, so buckets are rougher than on shards). Packing needs exact
lengths: :func:`raw_source_factory` first tokenizes every file into the cache (see :mod:`.warm`;
a warm cache makes that a lookup), and a file that changes after that is fitted to its planned
length (cut, or padded with PAD).

The cache counters of the DALI workers reach the main process as the tail of each batch's ``aux``
(:func:`rrweb_dali.external_source.wire.with_tail`, laid out by :mod:`.cache_stats`).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
from collections.abc import Sequence

import numpy as np
from rrweb_dali.external_source import wire
from rrweb_dali.external_source.options import PlanOptions
from rrweb_dali.external_source.raw.cache_stats import CacheStats, pack_tail
from rrweb_dali.external_source.raw.files import REPLACEMENT, RawFiles
from rrweb_dali.external_source.raw.token_cache import CacheOptions, Fetched, TokenCache
from rrweb_dali.external_source.raw.warm import warm
from rrweb_dali.external_source.reader import PathLike
from rrweb_dali.external_source.source import BatchSource

from rrweb_dali.ingest.names import portable_name

logger = logging.getLogger(__name__)


class RawReader:
    """What ``BatchSource`` needs of a reader (``len``, ``lengths``, ``dtype``, ``views``), over
    raw files; one per process, holding that process's :class:`TokenCache`."""

    dtype = np.dtype(np.uint16)
    remote = False  # files are read where they are; nothing is fetched ahead

    def __init__(self, files: RawFiles, lengths: np.ndarray, options: CacheOptions):
        self.files = files
        self.lengths = lengths
        self.options = options
        self._cache: TokenCache | None = None
        self.bad: list[tuple[int, str]] = []  # (file id, reason) met since the last drain

    def close(self) -> None:
        """Nothing runs in the background of a raw reader (the shard reader's fetcher does)."""

    @property
    def cache(self) -> TokenCache:
        if self._cache is None:
            self._cache = TokenCache(self.options)
        return self._cache

    @property
    def tokenizer(self) -> dict:
        return self.cache.tokenizer.config()

    @functools.cached_property
    def fingerprint(self) -> str:
        """A digest of the discovered files (relative paths and sizes, in order) and of what
        decides their tokens (tokenizer, reader limits, ``max_tokens``), like
        ``ShardReader.fingerprint``: a saved state is never applied to other data."""
        how = f"{self.options.namespace()}:{self.options.max_tokens}".encode()
        return hashlib.sha256(self.files.fingerprint.encode() + b"\0" + how).hexdigest()[:32]

    def __len__(self) -> int:
        return len(self.files)

    def fetch(self, i: int) -> Fetched:
        fetched = self.cache.get(self.files.paths[i])
        if fetched.tokens is None:
            self.bad.append((i, fetched.error or "io_error"))
            logger.debug(
                "bad file %s: %s %s",
                portable_name(self.files.relpaths[i]),
                fetched.error,
                fetched.detail,
            )
        return fetched

    def views(self, ids: np.ndarray, offsets: np.ndarray, counts: np.ndarray) -> list[np.ndarray]:
        """Tokens ``offsets[j] : offsets[j] + counts[j]`` of file ``ids[j]`` (packing), fitted
        to ``counts[j]`` if the file changed since its length was planned."""
        out = []
        for i, a, n in zip(ids.tolist(), offsets.tolist(), counts.tolist(), strict=True):
            tokens = self.fetch(i).tokens
            piece = tokens[a : a + n] if tokens is not None else REPLACEMENT[:0]
            if piece.size != n:
                piece = np.concatenate([piece, np.zeros(n - piece.size, dtype=self.dtype)])
            out.append(piece)
        return out

    def drain_bad(self) -> list[tuple[int, str]]:
        bad, self.bad = self.bad, []
        return bad

    def flush(self) -> None:
        if self._cache is not None:
            self._cache.flush()


class RawBatchSource(BatchSource):
    """``BatchSource`` over raw files; appends the cache accounting tail to ``aux``
    (:mod:`.cache_stats`) and makes its cache writes durable after each batch.

    Takes ``BatchSource``'s arguments unchanged, plus the discovered ``files``, their planned
    ``lengths`` and the cache ``options`` (keyword-only: :func:`raw_source_factory` binds them).
    """

    def __init__(
        self,
        *args,
        files: RawFiles,
        lengths: np.ndarray,
        options: CacheOptions,
        **kwargs,
    ):
        self.files, self.lengths, self.options = files, lengths, options
        super().__init__(*args, **kwargs)

    @property
    def reader(self) -> RawReader:
        if self._reader is None:
            self._reader = RawReader(self.files, self.lengths, self.options)
        return self._reader

    def describe(self) -> dict:
        """What this source reads and how, for a profile run's ``meta.json``."""
        o = self.options
        return {
            "kind": "raw",
            "sources": [str(p) for p in self.paths],
            "files": len(self.files),
            "cache_dir": o.cache_dir,
            "max_tokens": o.max_tokens,
            "cache_bytes": o.disk_bytes,
            "memory_cache_bytes": o.memory_bytes,
            "max_text_bytes": o.max_text_bytes,
        }

    def new_cache_stats(self) -> CacheStats:
        """The main process's accumulator for this source's tails (``Loader.cache_stats()``)."""
        return CacheStats(self.files.relpaths)

    def _one_batch(self, epoch: int, start: int, batch: int, slot: int):
        reader = self.reader
        before = reader.cache.snapshot()
        try:
            tokens, aux = super()._one_batch(epoch, start, batch, slot)
        finally:
            reader.flush()  # durable and visible to the other workers before the batch leaves
        tail = pack_tail(epoch, os.getpid(), before, reader.cache.snapshot(), reader.drain_bad())
        return tokens, wire.with_tail(aux, tail)

    def _gather_rows(self, ids: np.ndarray) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
        """Each file's cached or fresh tokens (capped); an unreadable file's row is
        ``[BOS, EOS]`` with index -1."""
        reader = self.reader
        cap = self.plan.cap
        index = ids.copy()
        rows = []
        for j, i in enumerate(ids.tolist()):
            tokens = reader.fetch(i).tokens
            if tokens is None:
                tokens, index[j] = REPLACEMENT, -1
            rows.append(tokens if cap is None else tokens[:cap])
        lens = np.fromiter((r.size for r in rows), dtype=np.int64, count=len(rows))
        return rows, lens, index


def raw_source_factory(
    sources: PathLike | Sequence[PathLike],
    plan: PlanOptions,
    options: CacheOptions,
    workers: int,
    progress: bool = False,
) -> functools.partial:
    """``RawBatchSource`` with the inputs discovered and lengths decided, ready for ``Loader``:
    a callable with ``BatchSource``'s signature.

    Packing plans need every file's exact length: the files are tokenized into the cache first
    (``workers`` processes), which is a lookup when the cache is warm.
    """
    files = RawFiles.discover(sources)
    if plan.packing is not None:
        if options.cache_dir is None:
            logger.warning(
                "raw packing without cache_dir: every file is tokenized once to plan the rows and "
                "again when its batch is made"
            )
        lengths = warm(files, options, workers=workers, progress=progress).lengths
    else:
        lengths = files.proxy_lengths()
    logger.info("raw mode: %d files from %s", len(files), sources)
    return functools.partial(RawBatchSource, files=files, lengths=lengths, options=options)
