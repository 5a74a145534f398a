"""Raw mode: the batch source that reads and tokenizes rrweb files itself, with a token cache.

One job a module, imported one way only (``source -> warm -> token_cache -> disk_cache``; ``files``
and ``cache_stats`` beside them): :mod:`.files` the discovered inputs, :mod:`.source` the batch
source and its reader, :mod:`.warm` filling the cache ahead of time on every core,
:mod:`.token_cache` the two cache levels, :mod:`.disk_cache` the persistent one and
:mod:`.cache_stats` the counters that ride back from DALI's workers on every batch.
"""

from rrweb_dali.external_source.raw.cache_stats import CacheStats
from rrweb_dali.external_source.raw.disk_cache import DiskCache
from rrweb_dali.external_source.raw.files import RawFiles
from rrweb_dali.external_source.raw.source import RawBatchSource, RawReader, raw_source_factory
from rrweb_dali.external_source.raw.token_cache import (
    DEFAULT_MEMORY_BYTES,
    CacheOptions,
    TokenCache,
)
from rrweb_dali.external_source.raw.warm import WarmResult, warm

__all__ = [
    "DEFAULT_MEMORY_BYTES",
    "CacheOptions",
    "CacheStats",
    "DiskCache",
    "RawBatchSource",
    "RawFiles",
    "RawReader",
    "TokenCache",
    "WarmResult",
    "raw_source_factory",
    "warm",
]
