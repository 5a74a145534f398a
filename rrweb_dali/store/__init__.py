"""Datasets in S3-compatible object stores, read through a node-local shard cache.

Flow: :mod:`.location` (URLs, the fsspec client) -> :mod:`.remote` (manifest and indexes) ->
:mod:`.cache` (the shared, size-bounded directory) -> :mod:`.transfer` (checked downloads with
retries) -> :mod:`.fetcher` (fetch-ahead in epoch order) -> :mod:`.opener` (what the shard reader
uses); :mod:`.upload` writes a finished dataset to a store.
"""

from rrweb_dali.store.cache import CacheTooSmall, ShardCache
from rrweb_dali.store.location import Store, StoreError, check_url, is_remote
from rrweb_dali.store.opener import RemoteShards
from rrweb_dali.store.options import RetryPolicy, StoreOptions
from rrweb_dali.store.remote import RemoteShard

__all__ = [
    "CacheTooSmall",
    "RemoteShard",
    "RemoteShards",
    "RetryPolicy",
    "ShardCache",
    "Store",
    "StoreError",
    "StoreOptions",
    "check_url",
    "is_remote",
]
