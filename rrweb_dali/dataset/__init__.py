"""A preprocessed dataset directory as an object: :func:`open_dataset` -> :class:`Dataset` of
:class:`Record` rows, with its :class:`Summary` and length :class:`Histogram`."""

from rrweb_dali.dataset.dataset import Dataset, Record, open_dataset, resolve_selection
from rrweb_dali.dataset.summary import Histogram, Summary
from rrweb_dali.dataset.table import SequenceTable, name_kind

__all__ = [
    "Dataset",
    "Histogram",
    "Record",
    "SequenceTable",
    "Summary",
    "name_kind",
    "open_dataset",
    "resolve_selection",
]
