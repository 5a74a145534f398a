"""The CPU stage of the loader: shard reading, epoch plans, packing and the DALI source callable.

Free of DALI and torch imports, so it can be used (and tested) on its own: :class:`ShardReader`
gives zero-copy session views, :mod:`.sampling` and :mod:`.packing` are pure planning functions,
:class:`BatchSource` is the ``external_source`` callable, :class:`LoaderState` the resume state.
"""

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

__all__ = [
    "META_FIELDS",
    "BatchSource",
    "LoaderState",
    "PackPlan",
    "ShardReader",
    "SourceConfig",
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
