"""The per-sequence table of a dataset directory: which session and window each sequence is.

A sequence (a row of the shards, a global id of :class:`~rrweb_dali.external_source.reader.
ShardReader`) is one window of one session; a session is one source file. The shards store, per
sequence, a row of their own file table and a window number (:mod:`rrweb_dali.shards.format`);
this module joins the file tables of every shard, in manifest order, into one numbering of the
sessions: session ``s`` is the ``s``-th distinct source name met in that order. ``preprocess``
only ever appends groups (new files) after the existing ones, so adding files to a dataset never
renumbers an existing session, and the session id is stable.

The table is plain numpy arrays and a list of names: the input of the selection functions
(splits, filters) that decide which sequences a :class:`~rrweb_dali.dataset.Dataset` holds, and
built on first use (one JSON read a shard and one pass over its index columns; it keeps 12
bytes a sequence beside the reader's lengths, plus the names).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rrweb_dali.external_source.reader import ShardReader
from rrweb_dali.shards.format import ShardFormatError

# The compression suffixes the reader also decodes; a name's kind keeps the suffix before them.
_COMPRESSED = (".gz", ".gzip", ".zlib", ".z")


@dataclass(frozen=True)
class SequenceTable:
    """Every sequence of one dataset directory, by global id ``i`` (the loader's ``index``).

    ``lengths[i]`` its tokens (int64), ``session[i]`` its session id (int64, an index into
    ``sources``), ``window[i]`` its window number inside that session (uint32, 0 unless the
    session was split), and ``sources[s]`` the stored name of session ``s``'s file (relative to
    the input root, as in the shards' file tables and ``errors.jsonl``).
    """

    lengths: np.ndarray
    session: np.ndarray
    window: np.ndarray
    sources: tuple[str, ...]

    def __len__(self) -> int:
        return int(self.lengths.shape[0])

    @classmethod
    def from_reader(cls, reader: ShardReader) -> SequenceTable:
        """Join the shards' file tables (one JSON read a shard) and index columns."""
        rows: dict[str, int] = {}
        sessions, windows = [], []
        for shard in reader.shards:
            index = shard.index
            local = np.array(
                [rows.setdefault(name, len(rows)) for name in index.files], dtype=np.int64
            )
            file_id = np.asarray(index.file_id)
            if file_id.size and int(file_id.max()) >= local.size:
                bad = int(np.flatnonzero(file_id >= local.size)[0])
                raise ShardFormatError(
                    f"{index.path}: session {bad} names file row {int(file_id[bad])} of a file "
                    f"table of {local.size}; the index is damaged"
                )
            sessions.append(local[file_id])
            windows.append(np.asarray(index.window, dtype=np.uint32))
        return cls(
            lengths=reader.lengths,
            session=np.concatenate(sessions) if sessions else np.zeros(0, dtype=np.int64),
            window=np.concatenate(windows) if windows else np.zeros(0, dtype=np.uint32),
            sources=tuple(rows),
        )


def name_kind(name: str) -> str:
    """A file's kind by its name: its last suffix, lower-cased, and the one before a compression
    suffix (``a/b.JSON.gz`` -> ``.json.gz``); ``(none)`` without one.

    The reader detects formats and compression by content, and the manifest does not record
    them per file: the name is what a dataset still knows (and what a filter can use)."""
    base = name.rsplit("/", 1)[-1].lower()
    stem, dot, suffix = base.rpartition(".")
    if not dot or not stem:
        return "(none)"
    kind = "." + suffix
    if kind in _COMPRESSED:
        inner_stem, dot, inner = stem.rpartition(".")
        if dot and inner_stem:
            kind = f".{inner}{kind}"
    return kind
