"""One global, zero-copy view over the sessions of one or many preprocessed dataset directories.

Opening is cheap: it reads the manifests and memory-maps each shard (headers and sizes are
checked, nothing is hashed or copied). Session ``i`` of the whole collection is numbered across
the directories in the order given, and across each directory's shards in manifest order, so a
global index is stable as long as the list of directories is.

The per-session arrays the samplers need (lengths and start offsets, int64: 16 bytes a session;
a session's shard is found by binary search over the shard bounds, so it costs no memory) are
built on first use and kept, because every epoch plan needs all lengths anyway.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rrweb_dali.shards.format import Shard
from rrweb_dali.shards.manifest import Manifest, open_shards
from rrweb_dali.store import RemoteShard, RemoteShards, StoreOptions, is_remote

logger = logging.getLogger(__name__)

PathLike = str | Path


def as_path_list(paths: PathLike | Sequence[PathLike]) -> list[str]:
    """Normalise one path or a list of paths to a list of strings (picklable, order kept)."""
    if isinstance(paths, (str, Path)):
        return [str(paths)]
    out = [str(p) for p in paths]
    if not out:
        raise ValueError("no dataset directory given")
    return out


class ShardReader:
    """Random access to every session of one or many dataset directories.

    ``reader[i]`` is a zero-copy ``numpy`` view (``uint16``, or ``uint32`` for such shards) of the
    memory-mapped tokens of global session ``i``.
    """

    def __init__(self, paths: PathLike | Sequence[PathLike], store: StoreOptions | None = None):
        """``store`` reads the ``s3://`` ones among ``paths`` (default options when None)."""
        self.paths = as_path_list(paths)
        self.shards: list[Shard | RemoteShard] = []
        self.manifests: list[Manifest] = []
        remote = RemoteShards(store) if any(is_remote(p) for p in self.paths) else None
        for root in self.paths:
            if remote is not None and is_remote(root):
                manifest, shards = remote.open(root, first=len(self.shards))
            else:
                manifest, shards = open_shards(root)
            if self.manifests and manifest.tokenizer != self.manifests[0].tokenizer:
                raise ValueError(
                    f"{root}: its tokenizer differs from {self.paths[0]}'s; token ids of different "
                    "tokenizers cannot be mixed in one loader"
                )
            self.manifests.append(manifest)
            self.shards.extend(shards)
        per_directory = [sum(info.sessions for info in m.shards) for m in self.manifests]
        self.directory_bounds = np.zeros(len(self.paths) + 1, dtype=np.int64)
        np.cumsum(np.asarray(per_directory, dtype=np.int64), out=self.directory_bounds[1:])
        counts = np.array([len(s) for s in self.shards], dtype=np.int64)
        self._bounds = np.zeros(len(self.shards) + 1, dtype=np.int64)
        np.cumsum(counts, out=self._bounds[1:])
        # Plain ndarray views of the memory maps: slicing a np.memmap builds a memmap subclass per
        # slice (~10 us each, measured), slicing an ndarray only a view (~0.3 us).
        self._tokens: list[np.ndarray | None] = [
            None if isinstance(s, RemoteShard) else np.asarray(s.tokens) for s in self.shards
        ]
        self._fetch = None if remote is None else remote.fetcher(self._tokens)
        itemsizes = {s.index.dtype.numpy.itemsize for s in self.shards}
        self.dtype = np.dtype(np.uint32) if 4 in itemsizes else np.dtype(np.uint16)
        self.token_count = int(sum(s.index.tokens for s in self.shards))
        self._lengths: np.ndarray | None = None
        self._starts: np.ndarray | None = None
        logger.debug(
            "opened %d sessions in %d shards from %d directories",
            len(self),
            len(self.shards),
            len(self.paths),
        )

    @property
    def tokenizer(self) -> dict:
        return self.manifests[0].tokenizer if self.manifests else {}

    @functools.cached_property
    def fingerprint(self) -> str:
        """A digest of the datasets' content: every shard's SHA-256 from the manifests, in order.

        Saved with a loader's state, so that a state is never applied to another dataset (even
        one with the same number of sessions). Computed from the manifests: nothing is hashed.
        """
        h = hashlib.sha256(b"rrweb-dali shards\0")
        for manifest in self.manifests:
            for info in manifest.shards:
                h.update(f"{info.name}:{info.sha256}\n".encode())
            h.update(b"\0")
        return h.hexdigest()[:32]

    def __len__(self) -> int:
        return int(self._bounds[-1])

    def directory_ids(self, d: int) -> np.ndarray:
        """The global ids of directory ``d``'s sequences (``directory_bounds`` holds where each
        directory's ids start: directory ``d`` is ``[bounds[d], bounds[d + 1])``)."""
        return np.arange(self.directory_bounds[d], self.directory_bounds[d + 1], dtype=np.int64)

    def locate(self, i: int) -> tuple[int, int]:
        """(shard number, session number inside that shard) of global session ``i``."""
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"session {i} out of range for {n} sessions")
        i = i % n if i < 0 else i
        k = int(np.searchsorted(self._bounds, i, side="right")) - 1
        return k, i - int(self._bounds[k])

    def __getitem__(self, i: int) -> np.ndarray:
        k, j = self.locate(int(i))
        return self.shards[k][j]

    def _build_tables(self) -> None:
        lengths, starts = [], []
        for shard in self.shards:
            off = np.asarray(shard.index.offsets, dtype=np.int64)
            starts.append(off[:-1])
            lengths.append(np.diff(off))
        empty64 = np.zeros(0, dtype=np.int64)
        self._starts = np.concatenate(starts) if starts else empty64
        self._lengths = np.concatenate(lengths) if lengths else empty64

    @property
    def index_bytes(self) -> int:
        """Bytes of per-session tables this reader holds in memory (16 a session once built)."""
        tables = (self._starts, self._lengths)
        return int(self._bounds.nbytes + sum(t.nbytes for t in tables if t is not None))

    @property
    def lengths(self) -> np.ndarray:
        """Token count of every session (int64, indexed by global session id)."""
        if self._lengths is None:
            self._build_tables()
        return self._lengths

    # ---- remote shards ------------------------------------------------------------------------
    @property
    def remote(self) -> bool:
        """True when some shards live in an object store (their tokens arrive on demand)."""
        return self._fetch is not None

    def shard_of(self, ids: np.ndarray) -> np.ndarray:
        """The shard number of each global session id (int64)."""
        return np.searchsorted(self._bounds, ids, side="right") - 1

    def plan_fetch(self, epoch: int, ids: np.ndarray) -> None:
        """Tell the fetcher the order epoch ``epoch`` reads sequences ``ids`` in (all ranks')."""
        if self._fetch is None:
            return
        shard = self.shard_of(np.asarray(ids, dtype=np.int64))
        shard = shard[self._is_remote[shard]]
        numbers, first = np.unique(shard, return_index=True)
        self._fetch.plan(epoch, numbers[np.argsort(first, kind="stable")])

    def acquire(self, ids: np.ndarray, epoch: int | None = None) -> None:
        """Wait until the shards of sequences ``ids`` are local (the batch of ``epoch`` about to
        be gathered; -1 ids, padding, are skipped); a no-op when every shard is local."""
        if self._fetch is None:
            return
        ids = np.asarray(ids, dtype=np.int64)
        shard = self.shard_of(ids[ids >= 0])  # -1: a packed row's padding
        needed = np.bincount(shard, minlength=len(self.shards)) > 0  # faster than np.unique
        self._fetch.acquire(np.flatnonzero(needed & self._is_remote).tolist(), epoch)

    def steady(self, epoch: int) -> bool:
        """True when every shard epoch ``epoch`` reads is local and counted (see
        :meth:`rrweb_dali.store.fetcher.Fetcher.steady`): its batches need no :meth:`acquire`."""
        return self._fetch is None or self._fetch.steady(epoch)

    @functools.cached_property
    def _is_remote(self) -> np.ndarray:
        return np.array([isinstance(s, RemoteShard) for s in self.shards], dtype=bool)

    def fetch_counters(self) -> dict[str, int] | None:
        """This process's object-store counters (see :mod:`rrweb_dali.store.fetcher`), or None."""
        return None if self._fetch is None else self._fetch.counters()

    def close(self) -> None:
        """Stop background downloads (local shards need nothing)."""
        if self._fetch is not None:
            self._fetch.close()

    def views(self, ids: np.ndarray, offsets: np.ndarray, counts: np.ndarray) -> list[np.ndarray]:
        """Zero-copy views: tokens ``offsets[j] : offsets[j] + counts[j]`` of session ``ids[j]``.

        The one place that touches token memory; the caller concatenates the views into one
        buffer, so a batch costs one Python loop of slicing and one copy. Remote shards are
        fetched first where :meth:`acquire` has not made them local.
        """
        if self._starts is None:
            self._build_tables()
        begin = self._starts[ids] + offsets
        tokens = self._tokens
        if self._fetch is None and len(tokens) == 1:
            tok = tokens[0]
            return [tok[a : a + c] for a, c in zip(begin.tolist(), counts.tolist(), strict=True)]
        shard = self.shard_of(ids).tolist()
        if self._fetch is not None:
            missing = [s for s in set(shard) if tokens[s] is None]
            if missing:
                self._fetch.acquire(missing)
            tokens = list(tokens)  # a snapshot: an eviction may clear entries meanwhile
        return [
            tokens[s][a : a + c]
            for s, a, c in zip(shard, begin.tolist(), counts.tolist(), strict=True)
        ]
