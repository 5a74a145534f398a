"""The CPU stage of the loader: shard reading, epoch plans, packing and the DALI source callable.

Free of DALI and torch imports, so it can be used (and tested) on its own: :class:`ShardReader`
gives zero-copy session views; :mod:`.sampling`, :mod:`.packing`, :mod:`.selection` (splits and
filters) and :mod:`.mixture` (weighted mixtures) are pure planning functions;
:class:`BatchSource` is the ``external_source`` callable, :class:`LoaderState` the resume state.

Raw mode (tokenizing rrweb files in the source, with a token cache: the :mod:`.raw` package) is
imported on first use, so the shard path does not load the reader and tokenizer.
"""

from typing import Any

from rrweb_dali.external_source.mixture import mixture_counts, mixture_order
from rrweb_dali.external_source.options import PlanOptions, Transport
from rrweb_dali.external_source.packing import PackPlan, plan_packing, row_segments
from rrweb_dali.external_source.reader import ShardReader
from rrweb_dali.external_source.sampling import (
    batch_positions,
    batch_rows,
    bucket_by_length,
    consumed_after,
    epoch_permutation,
    padded_width,
    padding_efficiency,
    steps_in_epoch,
)
from rrweb_dali.external_source.selection import Selection, select_ids, split_of
from rrweb_dali.external_source.source import BatchSource
from rrweb_dali.external_source.state import LoaderState, LoaderStateError

_LAZY = {
    "CacheOptions": "rrweb_dali.external_source.raw",
    "DiskCache": "rrweb_dali.external_source.raw",
    "RawBatchSource": "rrweb_dali.external_source.raw",
    "RawFiles": "rrweb_dali.external_source.raw",
    "RawReader": "rrweb_dali.external_source.raw",
    "TokenCache": "rrweb_dali.external_source.raw",
    "raw_source_factory": "rrweb_dali.external_source.raw",
}

__all__ = [
    "BatchSource",
    "CacheOptions",
    "DiskCache",
    "LoaderState",
    "LoaderStateError",
    "PackPlan",
    "PlanOptions",
    "RawBatchSource",
    "RawFiles",
    "RawReader",
    "Selection",
    "ShardReader",
    "TokenCache",
    "Transport",
    "batch_positions",
    "batch_rows",
    "bucket_by_length",
    "consumed_after",
    "epoch_permutation",
    "mixture_counts",
    "mixture_order",
    "padded_width",
    "padding_efficiency",
    "plan_packing",
    "raw_source_factory",
    "row_segments",
    "select_ids",
    "split_of",
    "steps_in_epoch",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'external_source' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
