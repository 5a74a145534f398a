"""The on-disk token shard format: one flat token file and one index file per shard.

A dataset directory holds ``manifest.json``, ``errors.jsonl`` and a ``shards/`` folder; each shard
is a pair of files named ``shard-XXXXXX``:

``shard-XXXXXX.bin``
    The tokens of every session of the shard, concatenated, as little-endian ``uint16`` with no
    header, so ``numpy.memmap(path, dtype="<u2", mode="r")`` is the whole token array.

``shard-XXXXXX.idx``
    Little-endian, laid out as::

        offset 0    header, 64 bytes: struct "<8sIIQQQQ16x"
                      magic         b"RRWDIDX1"
                      version       FORMAT_VERSION
                      dtype         DType code of the .bin tokens
                      n_sessions    N
                      n_tokens      T (the .bin holds T tokens)
                      files_offset  byte offset of the file table below
                      files_length  its length in bytes
        offset 64   offsets  uint64[N + 1]  session i is tokens[offsets[i]:offsets[i + 1]];
                                            offsets[0] = 0, offsets[N] = T (uint64: no 4 GiB cap)
                    file_id  uint32[N]      row of the file table the session came from
                    window   uint32[N]      window number inside that file (0 unless split)
                    file table: UTF-8 JSON list of source paths, relative to the input root

    Per session the index costs 16 bytes (8 + 4 + 4); lengths are ``numpy.diff(offsets)``.

Index math: with ``H = 64`` and ``N`` sessions, ``offsets`` starts at ``H``, ``file_id`` at
``H + 8 (N + 1)``, ``window`` at ``H + 8 (N + 1) + 4 N`` and the file table at
``H + 8 (N + 1) + 8 N``. Everything is readable with ``numpy.memmap`` and ``json`` alone; nothing is
ever unpickled.

Validation at open (:class:`ShardIndex`), because a reader hands out ``tokens[offsets[i] :
offsets[i + 1]]`` without looking again: the header must match the file size (the layout above),
and the offsets must describe ``N`` sessions that tile the ``.bin``::

    offsets[0] == 0,  offsets[N] == T,  0 <= offsets[i + 1] - offsets[i] <= bound

with ``bound = T``, or the dataset's ``max_tokens`` when the manifest records it (no
``preprocess`` row is longer). One check covers both monotonicity and the ``.bin``'s end:
``numpy.diff`` of ``uint64`` wraps a decrease to ``2**64 - d``, far above any ``bound``, and
offsets that start at 0, end at ``T`` and never decrease all lie inside the ``T`` tokens. It runs
vectorised in chunks of ``CHECK_CHUNK`` offsets, so it costs one sequential read of ``8 (N + 1)``
bytes and little memory; a violation raises :class:`ShardFormatError` naming the index file and
the first bad session. The ``.bin`` size (``T`` tokens of the header's dtype) is checked by
:class:`Shard`; ``file_id`` and ``window`` are metadata the loader never reads and are not checked.

A shard is written under temporary names and renamed into place, ``.bin`` first and ``.idx`` last,
so an ``.idx`` on disk always describes a complete ``.bin``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import struct
from dataclasses import asdict, dataclass
from enum import IntEnum
from pathlib import Path

import numpy as np

MAGIC = b"RRWDIDX1"
FORMAT_VERSION = 1
HEADER = struct.Struct("<8sIIQQQQ16x")
HEADER_SIZE = HEADER.size  # 64
assert HEADER_SIZE == 64
CHECK_CHUNK = 1 << 20  # offsets checked per numpy pass at open (8 MiB of them)


class DType(IntEnum):
    """Token dtypes a shard may hold; the code is stored in the index header."""

    uint16 = 2
    uint32 = 4

    @property
    def numpy(self) -> np.dtype:
        return np.dtype("<u2") if self is DType.uint16 else np.dtype("<u4")

    @classmethod
    def of(cls, dtype: np.dtype | type) -> DType:
        dt = np.dtype(dtype)
        if dt == np.uint16:
            return cls.uint16
        if dt == np.uint32:
            return cls.uint32
        raise ValueError(f"unsupported token dtype {dt}; shards hold uint16 or uint32")


class ShardFormatError(ValueError):
    """A shard file that is not in this format, is damaged, or fails its hash."""


@dataclass(frozen=True)
class ShardInfo:
    """What the manifest records about one finished shard."""

    name: str
    sessions: int
    tokens: int
    bin_bytes: int
    idx_bytes: int
    sha256: str

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: dict) -> ShardInfo:
        return cls(**{k: obj[k] for k in cls.__dataclass_fields__})


def _index_layout(n: int) -> tuple[int, int, int, int]:
    """Byte offsets of (offsets, file_id, window, file table) for ``n`` sessions."""
    off = HEADER_SIZE
    fid = off + 8 * (n + 1)
    win = fid + 4 * n
    table = win + 4 * n
    return off, fid, win, table


def _fsync_rename(tmp: Path, final: Path) -> None:
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, final)


class ShardWriter:
    """Streams sessions into one shard; tokens go to disk as they come, never held in memory.

    Only the per-session offsets, file ids and window numbers are kept (16 bytes a session) until
    :meth:`close` writes the index. Nothing is visible under the final names before ``close``.
    """

    def __init__(self, directory: str | Path, name: str, dtype: np.dtype | type = np.uint16):
        self.directory = Path(directory)
        self.name = name
        self.dtype = DType.of(dtype)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._bin_tmp = self.directory / f"{name}.bin.tmp"
        self._bin = open(self._bin_tmp, "wb")  # noqa: SIM115 - closed in close()/abort()
        self._hash = hashlib.sha256()
        self._offsets: list[int] = [0]
        self._file_ids: list[int] = []
        self._windows: list[int] = []
        self._files: list[str] = []
        self._file_rows: dict[str, int] = {}

    def add_file(self, relpath: str) -> int:
        """Register a source path in the shard's file table and return its row."""
        row = self._file_rows.get(relpath)
        if row is None:
            row = self._file_rows[relpath] = len(self._files)
            self._files.append(relpath)
        return row

    def add(self, tokens: np.ndarray, file_id: int, window: int = 0) -> None:
        """Append one session's tokens."""
        arr = np.ascontiguousarray(tokens, dtype=self.dtype.numpy)
        if arr.ndim != 1:
            raise ValueError(f"a session's tokens must be 1-D, got shape {arr.shape}")
        if not 0 <= file_id < len(self._files):
            raise ValueError(f"file_id {file_id} is not a row of the file table (add_file first)")
        data = arr.tobytes()
        self._bin.write(data)
        self._hash.update(data)
        self._offsets.append(self._offsets[-1] + arr.size)
        self._file_ids.append(file_id)
        self._windows.append(window)

    @property
    def sessions(self) -> int:
        return len(self._file_ids)

    @property
    def tokens(self) -> int:
        return self._offsets[-1]

    def _index_bytes(self) -> bytes:
        n = self.sessions
        table = json.dumps(self._files, ensure_ascii=False, separators=(",", ":")).encode()
        _, _, _, table_off = _index_layout(n)
        header = HEADER.pack(
            MAGIC, FORMAT_VERSION, int(self.dtype), n, self.tokens, table_off, len(table)
        )
        return b"".join(
            (
                header,
                np.asarray(self._offsets, dtype="<u8").tobytes(),
                np.asarray(self._file_ids, dtype="<u4").tobytes(),
                np.asarray(self._windows, dtype="<u4").tobytes(),
                table,
            )
        )

    def close(self) -> ShardInfo:
        """Finish the shard: write the index and move both files to their final names."""
        self._bin.close()
        idx = self._index_bytes()
        self._hash.update(idx)
        idx_tmp = self.directory / f"{self.name}.idx.tmp"
        idx_tmp.write_bytes(idx)
        bin_bytes = self._bin_tmp.stat().st_size
        _fsync_rename(self._bin_tmp, self.directory / f"{self.name}.bin")
        _fsync_rename(idx_tmp, self.directory / f"{self.name}.idx")
        return ShardInfo(
            self.name, self.sessions, self.tokens, bin_bytes, len(idx), self._hash.hexdigest()
        )

    def abort(self) -> None:
        """Drop everything written so far (used on errors)."""
        self._bin.close()
        self._bin_tmp.unlink(missing_ok=True)


def check_offsets(
    offsets: np.ndarray, n_tokens: int, max_length: int | None = None, where: str = "index"
) -> None:
    """Raise :class:`ShardFormatError` unless ``offsets`` (``uint64[N + 1]``) tile ``n_tokens``
    tokens in rows of at most ``max_length`` (see "Validation at open" in the module docstring).

    ``where`` names the shard in the message.
    """
    n = int(offsets.shape[0]) - 1
    if n < 0 or int(offsets[0]) != 0 or int(offsets[-1]) != n_tokens:
        raise ShardFormatError(f"{where}: offsets do not span the {n_tokens} tokens")
    bound = n_tokens if max_length is None else min(n_tokens, int(max_length))
    for start in range(0, n, CHECK_CHUNK):
        chunk = np.asarray(offsets[start : start + CHECK_CHUNK + 1])
        lengths = np.diff(chunk)  # uint64: a decrease wraps to a huge length
        if int(lengths.max()) <= bound:
            continue
        bad = int(np.flatnonzero(lengths > bound)[0])
        row, a, b = start + bad, int(chunk[bad]), int(chunk[bad + 1])
        if b > n_tokens:
            problem = f"ends at token {b}, past the shard's {n_tokens}"
        elif b < a:
            problem = f"starts at token {a} and ends at {b} (offsets decrease)"
        else:
            problem = f"has {b - a} tokens, more than the dataset's maximum of {bound}"
        raise ShardFormatError(f"{where}: session {row} {problem}; the index is damaged")


class ShardIndex:
    """A shard's index, memory-mapped: offsets, file ids, windows and the file table.

    Opening validates the header and the offsets (:func:`check_offsets`); ``max_length`` is the
    longest row the dataset may hold (the manifest's ``max_tokens``), or None for no bound beyond
    the shard's own token count.
    """

    def __init__(self, path: str | Path, max_length: int | None = None):
        self.path = Path(path)
        size = self.path.stat().st_size
        if size < HEADER_SIZE:
            raise ShardFormatError(f"{self.path}: index shorter than its {HEADER_SIZE}-byte header")
        with open(self.path, "rb") as fh:
            head = fh.read(HEADER_SIZE)
        magic, version, dtype, n, t, table_off, table_len = HEADER.unpack(head)
        if magic != MAGIC:
            raise ShardFormatError(f"{self.path}: not a rrweb-dali shard index (magic {magic!r})")
        if version != FORMAT_VERSION:
            raise ShardFormatError(
                f"{self.path}: shard format version {version}, this library reads {FORMAT_VERSION}"
            )
        try:
            self.dtype = DType(dtype)
        except ValueError:
            raise ShardFormatError(f"{self.path}: unknown dtype code {dtype}") from None
        off, fid, win, table = _index_layout(n)
        if table_off != table or table + table_len != size:
            raise ShardFormatError(f"{self.path}: index size does not match its header")
        self.sessions = int(n)
        self.tokens = int(t)
        self.offsets = np.memmap(self.path, dtype="<u8", mode="r", offset=off, shape=(n + 1,))
        self.file_id = np.memmap(self.path, dtype="<u4", mode="r", offset=fid, shape=(n,))
        self.window = np.memmap(self.path, dtype="<u4", mode="r", offset=win, shape=(n,))
        self._table = (table, table_len)
        check_offsets(self.offsets, self.tokens, max_length, str(self.path))

    @functools.cached_property
    def files(self) -> list[str]:
        """The shard's table of source paths, read on first use (the loader never needs it)."""
        start, length = self._table
        with open(self.path, "rb") as fh:
            fh.seek(start)
            return json.loads(fh.read(length))

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets).astype(np.int64)


class Shard:
    """One shard opened for reading: ``shard[i]`` is a zero-copy view of session ``i``'s tokens.

    ``max_length`` bounds every row (see :class:`ShardIndex`).
    """

    def __init__(self, stem: str | Path, max_length: int | None = None):
        stem = Path(stem)
        self.name = stem.name
        self.index = ShardIndex(stem.with_suffix(".idx"), max_length)
        bin_path = stem.with_suffix(".bin")
        expected = self.index.tokens * self.index.dtype.numpy.itemsize
        actual = bin_path.stat().st_size if bin_path.exists() else -1
        if actual != expected:
            raise ShardFormatError(
                f"{bin_path}: {actual} bytes on disk, the index says {expected}; the shard is damaged"
            )
        dt = self.index.dtype.numpy
        # A zero-length memmap is not allowed; an empty shard is an empty array.
        self.tokens = np.memmap(bin_path, dtype=dt, mode="r") if expected else np.zeros(0, dtype=dt)

    def __len__(self) -> int:
        return self.index.sessions

    def __getitem__(self, i: int) -> np.ndarray:
        off = self.index.offsets
        return self.tokens[int(off[i]) : int(off[i + 1])]


def file_sha256(*paths: Path, chunk: int = 1 << 22) -> str:
    """The SHA-256 of the concatenated bytes of ``paths`` (the shard hash: .bin then .idx)."""
    h = hashlib.sha256()
    for p in paths:
        with open(p, "rb") as fh:
            while block := fh.read(chunk):
                h.update(block)
    return h.hexdigest()
