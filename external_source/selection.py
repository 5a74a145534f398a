"""Which sequences of a dataset are in: held-out splits and cheap index-level filters.

Pure functions of a dataset's index (sequence lengths, file ids and the shard file tables), so a
loader, each of its DALI workers and ``open_dataset`` compute the same selection with nothing
sent around, and a saved loader state can name the selection it was taken with.

Held-out split (``split="train"`` or ``"val"``): every source file gets a score in ``[0, 1)``
from a stable hash of its stored name (the path relative to the preprocessing input root, as the
shard file table holds it): the first 8 bytes of its BLAKE2b-64 digest, big-endian, over
``2 ** 64``. A file is in ``"val"`` when its score is below ``val_fraction``, else in ``"train"``.
Because the score depends on the name alone:

* a session's windows (all rows of one file) are always on the same side;
* adding files, removing others or preprocessing again never moves an existing file;
* the same file in two datasets (or under two ``val_fraction`` values, ``a < b``: ``val`` of ``a``
  is inside ``val`` of ``b``) lands on the same side.

Filters, all on what the index records (no token is read):

* ``min_sequence_tokens`` / ``max_sequence_tokens``: bounds on a sequence's stored length
  (before any ``max_length`` truncation, which the loader applies after selecting);
* ``source_glob``: :func:`fnmatch.fnmatchcase` on the stored name (case-sensitive; ``*`` also
  matches ``/``, so ``"*.js"`` selects every ``.js`` file at any depth).

The input format of a file is not recorded in a dataset (neither the manifest nor the shard file
tables hold it), so there is no format filter; a ``source_glob`` on the extension stands in.
"""

from __future__ import annotations

import fnmatch
import hashlib
import numbers
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from rrweb_dali.external_source.reader import ShardReader

SPLITS = ("train", "val")
_SCALE = float(2**64)


def split_score(name: str) -> float:
    """The stable score in ``[0, 1)`` of a stored source name (see the module doc)."""
    digest = hashlib.blake2b(name.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SCALE


def split_of(name: str, val_fraction: float) -> str:
    """``"val"`` when the name's score is below ``val_fraction``, else ``"train"``."""
    return "val" if split_score(name) < val_fraction else "train"


def _check_count(owner: str, name: str, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{owner}.{name} must be a non-negative int or None, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class Selection:
    """A split and filters; every field ``None`` (the default) selects everything."""

    split: str | None = None
    val_fraction: float = 0.01
    min_sequence_tokens: int | None = None
    max_sequence_tokens: int | None = None
    source_glob: str | None = None

    def __post_init__(self) -> None:
        if self.split is not None and self.split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS} or None, got {self.split!r}")
        frac = self.val_fraction
        if isinstance(frac, bool) or not isinstance(frac, numbers.Real) or not 0 <= frac <= 1:
            raise ValueError(f"val_fraction must be a number in [0, 1], got {frac!r}")
        object.__setattr__(self, "val_fraction", float(frac))
        lo = _check_count("Selection", "min_sequence_tokens", self.min_sequence_tokens)
        hi = _check_count("Selection", "max_sequence_tokens", self.max_sequence_tokens)
        if lo is not None and hi is not None and lo > hi:
            raise ValueError(f"min_sequence_tokens {lo} is above max_sequence_tokens {hi}")
        object.__setattr__(self, "min_sequence_tokens", lo)
        object.__setattr__(self, "max_sequence_tokens", hi)
        if self.source_glob is not None and not isinstance(self.source_glob, str):
            raise ValueError(f"source_glob must be a str or None, got {self.source_glob!r}")

    @property
    def selects_all(self) -> bool:
        """True when nothing is split or filtered (the loader then plans over every sequence)."""
        return (
            self.split is None
            and self.min_sequence_tokens is None
            and self.max_sequence_tokens is None
            and self.source_glob is None
        )

    @property
    def uses_names(self) -> bool:
        """True when the selection reads the shards' file tables (a split or a glob)."""
        return self.split is not None or self.source_glob is not None

    def key(self) -> dict | None:
        """What a saved loader state records (``None`` when everything is selected)."""
        if self.selects_all:
            return None
        out = asdict(self)
        if self.split is None:
            out.pop("val_fraction")  # irrelevant without a split
        return out

    def file_mask(self, files: Sequence[str]) -> np.ndarray:
        """Which names of a file table pass the split and the glob (bool, one per name)."""
        keep = np.ones(len(files), dtype=bool)
        if self.split is not None:
            val = np.fromiter((split_score(f) < self.val_fraction for f in files), bool, len(files))
            keep &= val if self.split == "val" else ~val
        if self.source_glob is not None:
            pattern = self.source_glob
            keep &= np.fromiter((fnmatch.fnmatchcase(f, pattern) for f in files), bool, len(files))
        return keep

    def sequence_mask(
        self, lengths: np.ndarray, file_id: np.ndarray, files: Sequence[str]
    ) -> np.ndarray:
        """Which sequences of one shard are in: ``lengths`` and ``file_id`` per sequence,
        ``files`` the shard's file table (bool, one per sequence)."""
        lengths = np.asarray(lengths)
        keep = np.ones(lengths.shape[0], dtype=bool)
        if self.uses_names:
            fid = np.asarray(file_id, dtype=np.int64)
            if fid.size and (int(fid.min()) < 0 or int(fid.max()) >= len(files)):
                raise ValueError("a sequence's file id is outside its shard's file table")
            keep &= self.file_mask(files)[fid]
        if self.min_sequence_tokens is not None:
            keep &= lengths >= self.min_sequence_tokens
        if self.max_sequence_tokens is not None:
            keep &= lengths <= self.max_sequence_tokens
        return keep


def select_ids(reader: ShardReader, selection: Selection | None) -> np.ndarray | None:
    """The global ids (ascending, int64) of the reader's sequences that ``selection`` keeps, or
    ``None`` when it keeps everything (so no array of every id is ever built)."""
    if selection is None or selection.selects_all:
        return None
    parts, base = [], 0
    for shard in reader.shards:
        index = shard.index
        files = index.files if selection.uses_names else ()
        mask = selection.sequence_mask(index.lengths, index.file_id, files)
        parts.append(np.flatnonzero(mask).astype(np.int64) + base)
        base += len(shard)
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
