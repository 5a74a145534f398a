"""``open_dataset(path)``: a preprocessed dataset directory as a sized, indexable collection.

The loader streams a dataset; this is how a person looks at one. ``ds[i]`` is a :class:`Record`:
the zero-copy token view of sequence ``i`` (read by :class:`~rrweb_dali.external_source.reader.
ShardReader`, the loader's own reader, so it is the row the loader would deliver) with the file
it came from, its window number and its session id (:mod:`.table`).

Positions and ids: a :class:`Dataset` is a list of sequence ids of one directory. The full
dataset holds every id in order, so there ``ds[i]`` is the sequence a loader's batch calls
``index`` ``i``. A selection (``open_dataset(path, select=...)``) or a view (``ds[10:20]``,
``ds[[3, 1, 4]]``, ``ds[mask]``) holds some of them: ``ds[k]`` is then its ``k``-th, and
:meth:`Dataset.by_index` still maps a loader's ``index`` (the directory's numbering) to its
record, whatever the selection. Slices and arrays give views (a :class:`Dataset` over the same
open shards, nothing copied) rather than lists: they have ``len``, ``summary()`` and the
histogram too, and ``list(view)`` gives the records.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from rrweb_dali.dataset.summary import Histogram, Summary, length_histogram, summarize
from rrweb_dali.dataset.table import SequenceTable
from rrweb_dali.external_source.reader import ShardReader
from rrweb_dali.external_source.selection import Selection, select_ids
from rrweb_dali.shards.manifest import Manifest
from rrweb_dali.store import is_remote
from rrweb_dali.store.options import store_options_for
from rrweb_dali.tokenizer import Tokenizer

#: What ``select`` may be: sequence ids (any integer array-like; kept sorted and unique), a
#: boolean mask over every sequence, or a function of the :class:`SequenceTable` returning either.
SelectArg = Callable[[SequenceTable], object] | object


@dataclass(frozen=True, slots=True, eq=False)
class Record:
    """One sequence: ``tokens`` (a read-only zero-copy view of the shard's memory map),
    ``index`` (its id in the directory: a loader batch's ``index``), ``source`` (the stored name
    of its file, relative to the input root), ``window`` (its window number, 0 unless the session
    was split) and ``session`` (an id its session's windows share: the file's number in dataset
    order, stable when files are added)."""

    index: int
    tokens: np.ndarray
    source: str
    window: int
    session: int

    def __len__(self) -> int:
        return int(self.tokens.shape[0])

    def __repr__(self) -> str:
        return (
            f"Record(index={self.index}, source={self.source!r}, window={self.window}, "
            f"session={self.session}, tokens=<{self.tokens.dtype}[{len(self)}]>)"
        )


class Dataset:
    """Sequences of one preprocessed dataset directory (see the module docstring).

    Made by :func:`open_dataset` (or by indexing another ``Dataset``); never copies tokens.
    """

    def __init__(
        self,
        reader: ShardReader,
        ids: np.ndarray | None = None,
        table: SequenceTable | None = None,
    ) -> None:
        self.reader = reader
        self._ids = ids  # None: every sequence, in order (no array of N ids is built)
        if table is not None:
            self.__dict__["table"] = table

    @property
    def path(self) -> str:
        return self.reader.paths[0]

    @property
    def manifest(self) -> Manifest:
        return self.reader.manifests[0]

    @functools.cached_property
    def table(self) -> SequenceTable:
        """Session, window and length of every sequence of the directory (built on first use)."""
        return SequenceTable.from_reader(self.reader)

    @property
    def ids(self) -> np.ndarray:
        """The directory's ids of this dataset's sequences, by position (int64)."""
        if self._ids is None:
            return np.arange(len(self.reader), dtype=np.int64)
        return self._ids

    @property
    def is_selection(self) -> bool:
        """Whether this dataset holds a selection or view rather than every sequence in order."""
        return self._ids is not None

    @property
    def lengths(self) -> np.ndarray:
        """Tokens of each sequence, by position (int64)."""
        lengths = self.reader.lengths
        return lengths if self._ids is None else lengths[self._ids]

    @functools.cached_property
    def tokenizer(self) -> Tokenizer:
        """The tokenizer the dataset was made with, to decode its tokens.

        Raises ``ValueError`` when the manifest names another tokenizer or vocabulary version
        than this library's: its ids would decode to the wrong names, silently."""
        config = self.manifest.tokenizer
        try:
            tok = Tokenizer(**config.get("options", {}))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{self.path}: tokenizer options {config!r}: {exc}") from None
        if tok.config() != config:
            raise ValueError(
                f"{self.path} was made by tokenizer {config!r}; this library's is "
                f"{tok.config()!r}, whose names for the ids may differ"
            )
        return tok

    def __len__(self) -> int:
        return len(self.reader) if self._ids is None else int(self._ids.shape[0])

    def __iter__(self) -> Iterator[Record]:
        for k in range(len(self)):
            yield self[k]

    def __getitem__(self, key: object) -> Record | Dataset:
        """``ds[k]`` (negative counts from the end): a :class:`Record`; ``ds[a:b:c]``, an integer
        array or list, or a boolean mask of ``len(ds)``: a view (a :class:`Dataset`)."""
        if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
            n, k = len(self), int(key)
            if not -n <= k < n:
                raise IndexError(f"sequence {k} out of range for a dataset of {n}")
            k %= n
            return self._record(k if self._ids is None else int(self._ids[k]))
        if isinstance(key, slice):
            if self._ids is None:
                ids = np.arange(*key.indices(len(self)), dtype=np.int64)
            else:
                ids = self._ids[key]
            return self._view(ids)
        positions = _host_array(key)
        if positions.dtype == bool:
            if positions.shape != (len(self),):
                raise IndexError(
                    f"a boolean mask must have one value per sequence ({len(self)}), "
                    f"got shape {positions.shape}"
                )
            positions = np.flatnonzero(positions)
        elif positions.dtype.kind not in "iu" and positions.size:
            raise TypeError(f"a dataset is indexed by integers, got {positions.dtype}")
        positions = positions.astype(np.int64, copy=False).reshape(-1)
        n = len(self)
        if positions.size and not (-n <= positions.min() and positions.max() < n):
            raise IndexError(f"positions out of range for a dataset of {n}")
        positions = positions % max(n, 1)
        return self._view(positions if self._ids is None else self._ids[positions])

    def by_index(self, index: object) -> Record | list[Record]:
        """The record(s) of directory id(s) ``index`` (an int, or a loader batch's ``index``
        tensor or array): the map from any batch back to its files, whatever this dataset's
        selection. A bad-file row's ``-1`` (raw mode) is no sequence and raises."""
        ids = _host_array(index)
        n = len(self.reader)
        flat = ids.astype(np.int64).reshape(-1)
        if flat.size and not (flat.min() >= 0 and flat.max() < n):
            raise IndexError(f"index out of range for a directory of {n} sequences: {ids}")
        records = [self._record(int(i)) for i in flat.tolist()]
        return records[0] if ids.ndim == 0 else records

    def summary(self) -> Summary:
        """Counts, length percentiles, file kinds, tokenizer and options (:class:`Summary`)."""
        return summarize(self)

    def length_histogram(self, bins: int | object = 10) -> Histogram:
        """Sequences by length (:class:`Histogram`: ``counts``, ``edges``): ``bins`` an int (about
        equal-width bins with integer edges over [min, max]) or explicit edges."""
        return length_histogram(self.lengths, bins)

    def _record(self, i: int) -> Record:
        table = self.table
        s = int(table.session[i])
        return Record(i, self.reader[i], table.sources[s], int(table.window[i]), s)

    def _view(self, ids: np.ndarray) -> Dataset:
        table = self.__dict__.get("table")
        return Dataset(self.reader, np.ascontiguousarray(ids, dtype=np.int64), table)

    def __str__(self) -> str:
        return str(self.summary())

    def __repr__(self) -> str:
        what = "" if self._ids is None else "selected "
        return (
            f"<Dataset {self.path!r}: {len(self):,} {what}sequences, "
            f"{int(self.lengths.sum()):,} tokens>"
        )


def _host_array(x: object) -> np.ndarray:
    """A numpy array of ``x``: a list, an array, or a tensor on any device (duck-typed, so
    torch stays optional)."""
    for method in ("detach", "cpu", "numpy"):
        if not isinstance(x, np.ndarray) and hasattr(x, method):
            x = getattr(x, method)()
    return np.asarray(x)


def resolve_selection(select: SelectArg | None, table: SequenceTable) -> np.ndarray | None:
    """The sorted, unique ids ``select`` keeps (None: all). A function gets the table and
    returns ids or a mask; a mask must cover every sequence; ids must exist."""
    if select is None:
        return None
    chosen = select(table) if callable(select) else select
    arr = _host_array(chosen)
    n = len(table)
    if arr.dtype == bool:
        if arr.shape != (n,):
            raise ValueError(
                f"a selection mask must have one value per sequence ({n}), got shape {arr.shape}"
            )
        return np.flatnonzero(arr).astype(np.int64)
    if arr.size and arr.dtype.kind not in "iu":
        raise TypeError(f"a selection is sequence ids (integers) or a mask, got {arr.dtype}")
    ids = np.unique(arr.astype(np.int64).reshape(-1))
    if ids.size and not (ids[0] >= 0 and ids[-1] < n):
        raise ValueError(f"selected ids out of range for a dataset of {n} sequences")
    return ids


def open_dataset(
    path: str | os.PathLike,
    *,
    select: SelectArg | None = None,
    split: str | None = None,
    val_fraction: float = 0.01,
    min_sequence_tokens: int | None = None,
    max_sequence_tokens: int | None = None,
    source_glob: str | None = None,
    storage_options: dict | None = None,
    cache_dir: str | os.PathLike | None = None,
    cache_bytes: int | None = None,
) -> Dataset:
    """Open the dataset directory ``path`` (written by ``preprocess``) for random access.

    ``path`` may be an ``s3://bucket/prefix`` URL (``storage_options``, ``cache_dir`` and
    ``cache_bytes`` as in ``make_loader``): opening fetches the manifest and indexes, and each
    shard's tokens are downloaded into the cache the first time a sequence of it is read.

    Cheap: it reads the manifest and memory-maps the shards, checking sizes and index offsets
    like the loader (``rrweb-dali verify`` checks the hashes). ``select`` keeps some sequences
    (see :func:`resolve_selection`): ids, a mask, or a pure function of the
    :class:`~rrweb_dali.dataset.table.SequenceTable`, which is where splits and filters plug in.

    ``split``, ``val_fraction``, ``min_sequence_tokens``, ``max_sequence_tokens`` and
    ``source_glob`` are ``make_loader``'s selection (the same pure function,
    :mod:`rrweb_dali.external_source.selection`), so ``open_dataset(path, split="val")`` holds
    exactly the sequences a ``make_loader(path, split="val")`` epoch covers; with ``select`` too,
    the sequences both keep.
    """
    path = path if is_remote(path) else os.fspath(path)
    store = store_options_for(
        path, storage_options=storage_options, cache_dir=cache_dir, cache_bytes=cache_bytes
    )
    reader = ShardReader(path, store)
    dataset = Dataset(reader)
    selection = Selection(
        split=split,
        val_fraction=val_fraction,
        min_sequence_tokens=min_sequence_tokens,
        max_sequence_tokens=max_sequence_tokens,
        source_glob=source_glob,
    )
    chosen = select_ids(reader, selection)
    if select is None and chosen is None:
        return dataset
    ids = resolve_selection(select, dataset.table)
    if chosen is not None:
        ids = chosen if ids is None else np.intersect1d(ids, chosen)
    return Dataset(reader, ids, dataset.table)
