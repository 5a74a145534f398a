"""Raw mode: the batch source that reads and tokenizes rrweb files itself, in DALI's workers.

``make_loader(raw=SRC, cache_dir=...)`` builds the same loader as on shards with this source in
place of :class:`~external_source.source.BatchSource`. It is a ``BatchSource`` whose reader is a
:class:`RawReader`: the plan, rank sharding, remainder policy, resume state and outputs are the
shard loader's, unchanged. With ``parallel=True`` (raw mode's default) DALI pickles the source
into its spawned worker processes; each one builds its own :class:`TokenCache` there, so reading
and tokenizing run on every core beside the training process.

The unit (what the plan orders, shards and counts) is **one file**, in :func:`discover` order
(sorted relative paths, the order ``preprocess`` writes sessions in), so the number of units per
epoch is known before any file is read, on every rank alike. A file gives its first ``max_tokens``
tokens: exactly what ``preprocess --overflow truncate --max-tokens M`` writes for it (a longer
session keeps its head, without EOS). ``index`` is the file's number.

Bad files. A file that cannot be read (a ``SessionError`` reason) still fills its row, so every
rank keeps the same number of batches: in padded mode with ``[BOS, EOS]``, ``index`` -1 (the
loader also sets such rows' ``labels`` to -100). The main process logs each bad file once, with
its reason, and counts them in ``cache_stats()``. In packing mode bad files have length 0 and
take no room.

Lengths. Bucketing needs lengths before tokenizing: raw mode uses the file size as a proxy
(``size // BYTES_PER_TOKEN``; compressed and packed files look shorter than they are, so buckets
are rougher than on shards). Packing needs exact lengths: the loader first tokenizes every file
into the cache (see :mod:`external_source.warm`; a warm cache makes that a lookup), and a file
that changes after that is fitted to its planned length (cut, or padded with PAD).
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from external_source.cache_stats import CacheStats, pack_tail
from external_source.reader import PathLike
from external_source.source import BatchSource, SourceConfig
from external_source.token_cache import CacheOptions, Fetched, TokenCache
from rrweb_dali.preprocess.discover import discover
from rrweb_dali.tokenizer import Tokenizer

logger = logging.getLogger(__name__)

BYTES_PER_TOKEN = 6  # bytes on disk per token, for the bucketing proxy (5.7 on the real corpus)
REPLACEMENT = np.array([Tokenizer.BOS, Tokenizer.EOS], dtype=np.uint16)


@dataclass(frozen=True)
class RawFiles:
    """The inputs of raw mode: paths to read (absolute) and paths to show (relative), sizes."""

    relpaths: tuple[str, ...]
    paths: tuple[str, ...]
    sizes: np.ndarray

    @classmethod
    def discover(cls, sources: PathLike | Sequence[PathLike]) -> RawFiles:
        """Every file of ``sources`` (directories, files, globs), as ``preprocess`` finds them."""
        if isinstance(sources, (str, os.PathLike)):
            sources = [sources]
        found = discover(list(sources))
        if not found:
            raise ValueError(f"no input file found in {list(map(str, sources))}")
        return cls(
            tuple(f.relpath for f in found),
            tuple(os.path.abspath(f.path) for f in found),
            np.array([f.size for f in found], dtype=np.int64),
        )

    def __len__(self) -> int:
        return len(self.paths)

    def proxy_lengths(self) -> np.ndarray:
        return np.maximum(self.sizes // BYTES_PER_TOKEN, REPLACEMENT.size)


class RawReader:
    """What ``BatchSource`` needs of a reader (``len``, ``lengths``, ``dtype``, ``views``), over
    raw files; one per process, holding that process's :class:`TokenCache`."""

    dtype = np.dtype(np.uint16)

    def __init__(self, files: RawFiles, lengths: np.ndarray, options: CacheOptions):
        self.files = files
        self.lengths = lengths
        self.options = options
        self._cache: TokenCache | None = None
        self.bad: list[tuple[int, str]] = []  # (file id, reason) met since the last drain

    @property
    def cache(self) -> TokenCache:
        if self._cache is None:
            self._cache = TokenCache(self.options)
        return self._cache

    @property
    def tokenizer(self) -> dict:
        return self.cache.tokenizer.config()

    def __len__(self) -> int:
        return len(self.files)

    def fetch(self, i: int) -> Fetched:
        fetched = self.cache.get(self.files.paths[i])
        if fetched.tokens is None:
            self.bad.append((i, fetched.error or "io_error"))
            logger.debug(
                "bad file %s: %s %s", self.files.relpaths[i], fetched.error, fetched.detail
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
    (:mod:`external_source.cache_stats`) and makes its cache writes durable after each batch."""

    def __init__(
        self,
        paths: PathLike | list[PathLike],
        config: SourceConfig,
        rank: int = 0,
        world_size: int = 1,
        start_epoch: int = 0,
        start_consumed: int = 0,
        reader: RawReader | None = None,
        *,
        files: RawFiles,
        lengths: np.ndarray,
        options: CacheOptions,
    ):
        self.files, self.lengths, self.options = files, lengths, options
        super().__init__(paths, config, rank, world_size, start_epoch, start_consumed, reader)

    @property
    def reader(self) -> RawReader:
        if self._reader is None:
            self._reader = RawReader(self.files, self.lengths, self.options)
        return self._reader

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
        return tokens, np.concatenate([aux, tail])

    def _gather_rows(self, ids: np.ndarray) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
        """Each file's cached or fresh tokens (capped); an unreadable file's row is
        ``[BOS, EOS]`` with index -1."""
        reader = self.reader
        cap = self.config.cap
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
    config: SourceConfig,
    options: CacheOptions,
    workers: int,
    progress: bool = False,
) -> functools.partial:
    """``RawBatchSource`` with the inputs discovered and lengths decided, ready for ``Loader``.

    Packing plans need every file's exact length: the files are tokenized into the cache first
    (``workers`` processes), which is a lookup when the cache is warm.
    """
    files = RawFiles.discover(sources)
    if config.packing is not None:
        from external_source.warm import warm

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
