"""Opening the ``s3://`` directories of one reader: their manifests and indexes, one fetcher.

:class:`RemoteShards` is what :class:`~rrweb_dali.external_source.reader.ShardReader` uses for
the remote ones among its paths: :meth:`open` reads a directory's manifest and indexes into the
node's cache and returns shard objects numbered after the reader's earlier shards; once every
path is open, :meth:`fetcher` makes the one :class:`~.fetcher.Fetcher` over all of them.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from rrweb_dali.shards.format import ShardFormatError, ShardIndex, ShardInfo
from rrweb_dali.shards.manifest import Manifest, row_bound
from rrweb_dali.store.cache import ShardCache
from rrweb_dali.store.fetcher import Fetcher, RemoteEntry
from rrweb_dali.store.location import Store
from rrweb_dali.store.options import StoreOptions
from rrweb_dali.store.remote import RemoteShard, fetch_index, read_remote_manifest

logger = logging.getLogger(__name__)


class RemoteShards:
    """The remote directories of one reader, sharing one cache and (later) one fetcher."""

    def __init__(self, options: StoreOptions | None = None):
        self.options = StoreOptions() if options is None else options
        self.cache = ShardCache(self.options.cache_path, self.options.cache_bytes)
        self.cache.remove_abandoned_parts()
        self._entries: dict[int, RemoteEntry] = {}
        self._fetcher: Fetcher | None = None

    def open(self, url: str, first: int) -> tuple[Manifest, list[RemoteShard]]:
        """The manifest and shards of the dataset at ``url``, numbered from ``first``."""
        store = Store(url, self.options.storage_options)
        manifest = read_remote_manifest(store, self.options)
        bound = row_bound(manifest)

        def index_of(info: ShardInfo) -> ShardIndex:
            path = fetch_index(store, info, self.cache, self.options)
            index = ShardIndex(path, bound)
            expected = index.tokens * index.dtype.numpy.itemsize
            if (index.sessions, index.tokens) != (info.sessions, info.tokens):
                raise ShardFormatError(
                    f"shard {info.name} of {url}: counts differ from the manifest"
                )
            if expected != info.bin_bytes:
                raise ShardFormatError(
                    f"shard {info.name} of {url}: its index describes {expected:,} token bytes, "
                    f"the manifest {info.bin_bytes:,}"
                )
            return index

        with ThreadPoolExecutor(self.options.fetch_threads) as pool:
            indexes = list(pool.map(index_of, manifest.shards))
        shards = []
        for k, (info, index) in enumerate(zip(manifest.shards, indexes, strict=True)):
            number = first + k
            self._entries[number] = RemoteEntry(store, info, index.path, index.dtype.numpy)
            shards.append(RemoteShard(info, index, lambda n=number: self._tokens(n)))
        logger.debug("opened %s: %d shards, indexes in %s", url, len(shards), self.cache.root)
        return manifest, shards

    def fetcher(self, arrays: list[np.ndarray | None]) -> Fetcher:
        """The fetcher over every shard opened so far, filling ``arrays`` (the reader's list)."""
        self._fetcher = Fetcher(self._entries, arrays, self.cache, self.options)
        self._arrays = arrays
        return self._fetcher

    def _tokens(self, number: int) -> np.ndarray:
        if self._fetcher is None:
            raise RuntimeError("a remote shard's tokens were read before its reader was open")
        self._fetcher.acquire([number])
        tokens = self._arrays[number]
        assert tokens is not None
        return tokens
