"""The CPU stage of the loader: shard reading, epoch plans, packing and the DALI source callable.

Free of DALI and torch imports, so it can be used (and tested) on its own: :class:`ShardReader`
gives zero-copy session views, :mod:`.sampling` and :mod:`.packing` are pure planning functions,
:class:`BatchSource` is the ``external_source`` callable, :class:`LoaderState` the resume state.

Raw mode (tokenizing rrweb files in the source, :mod:`.raw`) and its token cache
(:mod:`.token_cache`, :mod:`.disk_cache`, :mod:`.warm`) are imported on first use, so the shard
path does not load the reader and tokenizer.
"""

from typing import Any

from external_source.packing import PackPlan, plan_packing, row_segments
from external_source.reader import ShardReader
from external_source.sampling import (
    batch_positions,
    bucket_by_length,
    consumed_after,
    epoch_permutation,
    padded_width,
    padding_efficiency,
    steps_in_epoch,
)
from external_source.source import META_FIELDS, BatchSource, SourceConfig
from external_source.state import LoaderState

_LAZY = {
    "CacheOptions": "external_source.token_cache",
    "TokenCache": "external_source.token_cache",
    "DiskCache": "external_source.disk_cache",
    "RawBatchSource": "external_source.raw",
    "RawFiles": "external_source.raw",
}

__all__ = [
    "META_FIELDS",
    "BatchSource",
    "CacheOptions",
    "DiskCache",
    "LoaderState",
    "PackPlan",
    "RawBatchSource",
    "RawFiles",
    "ShardReader",
    "SourceConfig",
    "TokenCache",
    "batch_positions",
    "bucket_by_length",
    "consumed_after",
    "epoch_permutation",
    "padded_width",
    "padding_efficiency",
    "plan_packing",
    "row_segments",
    "steps_in_epoch",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'external_source' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
