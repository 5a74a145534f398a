"""Opening a dataset directory that lives in an object store.

Opening costs the manifest and every shard's index (16 bytes a sequence), which land in the
node's cache and are validated like local ones (:class:`~rrweb_dali.shards.format.ShardIndex`):
the samplers need every length before the first batch. The token files are fetched later, when
and in the order an epoch needs them (:mod:`.fetcher`).

A remote shard (:class:`RemoteShard`) answers what a local :class:`~rrweb_dali.shards.format.
Shard` does (``name``, ``index``, ``len``, ``shard[i]``), fetching its tokens on first use, so
code that walks shards (the sequence table, selections) works on both.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from rrweb_dali.shards.format import ShardFormatError, ShardIndex, ShardInfo
from rrweb_dali.shards.manifest import MANIFEST_NAME, SHARDS_DIR, Manifest, check_manifest
from rrweb_dali.store.cache import ShardCache
from rrweb_dali.store.location import Store
from rrweb_dali.store.options import StoreOptions
from rrweb_dali.store.transfer import with_retries


def token_key(info: ShardInfo) -> str:
    return f"{SHARDS_DIR}/{info.name}.bin"


def index_key(info: ShardInfo) -> str:
    return f"{SHARDS_DIR}/{info.name}.idx"


class RemoteShard:
    """One shard of a remote dataset: its index is local, its tokens come from ``tokens_of``."""

    def __init__(self, info: ShardInfo, index: ShardIndex, tokens_of: Callable[[], np.ndarray]):
        self.name = info.name
        self.info = info
        self.index = index
        self._tokens_of = tokens_of

    @property
    def tokens(self) -> np.ndarray:
        """The token array, fetched (and checked) first if it is not in the cache."""
        return self._tokens_of()

    def __len__(self) -> int:
        return self.index.sessions

    def __getitem__(self, i: int) -> np.ndarray:
        off = self.index.offsets
        return self.tokens[int(off[i]) : int(off[i + 1])]


def read_remote_manifest(store: Store, options: StoreOptions) -> Manifest:
    """The dataset's manifest, read with retries; ShardFormatError when there is none."""

    def read() -> bytes:
        try:
            return store.read_bytes(MANIFEST_NAME)
        except FileNotFoundError:
            raise ShardFormatError(
                f"{store.url}: no {MANIFEST_NAME}; is this a preprocessed dataset (or is its "
                "upload still running: the manifest is written last)?"
            ) from None

    data = with_retries(read, options.retry, f"reading {store.key_url(MANIFEST_NAME)}")
    try:
        obj = json.loads(data)
    except ValueError as exc:
        raise ShardFormatError(f"{store.key_url(MANIFEST_NAME)}: not valid JSON ({exc})") from None
    return check_manifest(Manifest.from_json(obj), store.key_url(MANIFEST_NAME))


def fetch_index(store: Store, info: ShardInfo, cache: ShardCache, options: StoreOptions) -> Path:
    """The shard's index file in the cache, downloaded (atomically, size checked) if absent."""
    path = cache.index_path(info.sha256)
    if path.is_file() and path.stat().st_size == info.idx_bytes:
        return path
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")

    def get() -> None:
        tmp.write_bytes(store.read_bytes(index_key(info)))  # one GET (a copy would HEAD first)

    try:
        with_retries(get, options.retry, f"downloading {store.key_url(index_key(info))}")
        size = tmp.stat().st_size
        if size != info.idx_bytes:
            raise ShardFormatError(
                f"shard {info.name}: {store.key_url(index_key(info))} holds {size:,} bytes, the "
                f"manifest says {info.idx_bytes:,}; the object was changed or is damaged"
            )
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
