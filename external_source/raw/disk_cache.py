"""The persistent token cache: tokenized files as token shards, appended without locks.

Layout of a cache directory (``cache_dir``)::

    cache_dir/<namespace>/namespace.json          what the namespace key stands for (for people)
    cache_dir/<namespace>/seg-<t>-<pid>-<r>-<n>.bin   tokens, the shard format of rrweb_dali.shards
    cache_dir/<namespace>/seg-<t>-<pid>-<r>-<n>.idx   its index; the file table holds the keys

The *namespace* is a hash of everything besides the file's bytes that decides its tokens (the
tokenizer config and version, the read limits, the library version), so caches of different
tokenizers share a directory without ever mixing ids.

Why segments written by one process each: every writer (a DALI worker process, a ``warm`` worker)
streams into its own :class:`~rrweb_dali.shards.ShardWriter` under a name no other process can
pick (time, pid, random), so no two processes ever write one file and no lock is needed. A segment
becomes visible only when ``ShardWriter.close`` has fsynced its ``.bin`` and renamed its ``.idx``
into place: the ``.idx`` *is* the index, and it exists only once the data it points to is
durable. A writer killed at any moment leaves complete segments (usable) and at most one
``.tmp`` or ``.bin`` without ``.idx`` (ignored; removed as stale later). Writers close their
segment after each batch of work, so what one process tokenized is visible to the others (and to
the next run) within a batch.

Each row of a segment is one file: ``tokens`` (all of them, not truncated, so one cache serves any
``max_tokens``), and a key in the file table: a JSON object string ``{"p": absolute path, "s":
size, "m": mtime_ns, "h": content hash, "c": CRC-32 of the row's token bytes}`` plus ``"e"``/``"d"``
(reason and detail) for a file that failed to read, whose row has no tokens: a bad file is not
re-read every epoch. The path is stored as :func:`~rrweb_dali.ingest.names.portable_name` gives it
(a name that is not valid UTF-8 is escaped losslessly), so every file on disk has a key.

Integrity. A segment is written once and trusted for as long as it lives, so damage on disk (a
flipped bit, a torn page) would be served as tokens, silently, every epoch. Each row's CRC-32 is
checked the first time this process reads its tokens from a segment (:meth:`DiskCache.tokens`):
a mismatch drops the row from this process's index, is counted (``corrupt``) and logged, and the
file is tokenized again (the fresh row, in a newer segment, wins its key). Checking a row once per
process (a flag a row, one byte) rather than on every read: ``zlib.crc32`` runs at 2.5-4 GB/s, so
a disk hit of a 40k-token row costs ~20 us with the check against ~5 us without it (measured on a
2-core machine); paying that every epoch when the memory level is too small to hold the data would
make the check the largest cost of a warm epoch, and the damage it is for happens at rest, between
runs (segments are never rewritten). An index whose offsets do not tile its ``.bin``
(:func:`~rrweb_dali.shards.format.check_offsets`) is skipped whole with a warning.

Eviction keeps the namespace under ``max_bytes`` by deleting whole segments, oldest first (names
start with the creation time): ``.idx`` first, so no reader opens it any more, then ``.bin``.
A process that still maps an evicted segment keeps reading it safely (POSIX keeps an unlinked
file's data while it is mapped) and drops it from its index at its next refresh.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson

from rrweb_dali.ingest.names import portable_name
from rrweb_dali.shards.format import ShardFormatError, ShardIndex, ShardWriter

logger = logging.getLogger(__name__)

SEGMENT_PREFIX = "seg-"
STALE_S = 3600.0  # a .tmp or a .bin without .idx older than this belongs to a dead writer
_EMPTY = np.zeros(0, dtype=np.uint16)
_CLOCK_SLACK_NS = 100_000_000


@dataclass(frozen=True)
class FileKey:
    """What identifies a file's content: its path and stat (cheap), and its content hash."""

    path: str
    size: int
    mtime_ns: int
    digest: str

    @property
    def stat_key(self) -> tuple[str, int, int]:
        return (self.path, self.size, self.mtime_ns)


@dataclass(frozen=True)
class CachedEntry:
    """A cache row: where its tokens lie in a segment, or why the file could not be read."""

    segment: str
    start: int
    stop: int
    error: str | None = None
    detail: str = ""
    crc: int = 0  # CRC-32 of the row's token bytes (0 for a bad file's empty row)
    row: int = 0  # the row's number in its segment


def _key_string(key: FileKey, error: str | None, detail: str, crc: int) -> str:
    obj = {"p": portable_name(key.path), "s": key.size, "m": key.mtime_ns, "h": key.digest}
    obj["c"] = crc
    if error is not None:
        # A detail may quote a file name that is not valid UTF-8 (lone surrogates): escaped.
        text = detail[:300].encode("utf-8", "backslashreplace").decode("utf-8")
        obj["e"], obj["d"] = error, text
    return orjson.dumps(obj).decode()


class DiskCache:
    """One namespace of a cache directory, seen (and appended to) by this process.

    Lookups go by stat key (path, size, mtime_ns) or by content hash. :meth:`refresh` picks up
    segments other processes wrote (cheap when nothing changed: one ``stat`` of the directory).
    """

    def __init__(self, root: str | Path, namespace: str, max_bytes: int | None = None):
        if max_bytes is not None and max_bytes < 1:
            raise ValueError(f"cache max_bytes must be positive (or None), got {max_bytes}")
        self.directory = Path(root) / namespace
        self.directory.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self._segments: dict[str, np.ndarray] = {}  # segment name -> its tokens (memory-mapped)
        self._seg_bytes: dict[str, int] = {}
        self._checked: dict[str, np.ndarray] = {}  # segment name -> rows whose CRC was checked
        self._by_stat: dict[tuple[str, int, int], CachedEntry] = {}
        self._by_digest: dict[str, CachedEntry] = {}
        self._by_path: dict[str, tuple[int, int]] = {}  # latest (size, mtime) seen per path
        self._dir_mtime: int | None = None
        self._listed_at = 0
        self._writer: ShardWriter | None = None
        self._writer_seq = 0
        self._tag = f"{os.getpid()}-{secrets.token_hex(3)}"
        self.counters = dict.fromkeys(
            (
                "appended",
                "segments_written",
                "evicted_segments",
                "evicted_bytes",
                "corrupt_rows",  # rows whose tokens failed their CRC (dropped, tokenized again)
                "corrupt_segments",  # segments whose index could not be opened
            ),
            0,
        )
        self.write_s = 0.0
        self.refresh(force=True)

    # ---- reading ---------------------------------------------------------------------------
    def refresh(self, force: bool = False) -> bool:
        """Open segments that appeared and forget evicted ones; True when anything changed."""
        try:
            mtime = os.stat(self.directory).st_mtime_ns
        except FileNotFoundError:
            self.directory.mkdir(parents=True, exist_ok=True)
            mtime = os.stat(self.directory).st_mtime_ns
        # File system clocks are coarse (a few ms): an unchanged mtime proves nothing changed only
        # when the last listing was taken well after that mtime.
        if not force and mtime == self._dir_mtime and self._listed_at - mtime > _CLOCK_SLACK_NS:
            return False
        self._dir_mtime, self._listed_at = mtime, time.time_ns()
        on_disk = sorted(
            name[:-4]
            for name in os.listdir(self.directory)
            if name.startswith(SEGMENT_PREFIX) and name.endswith(".idx")
        )
        present = set(on_disk)
        gone = [name for name in self._segments if name not in present]
        new = [name for name in on_disk if name not in self._segments]
        for name in new:  # name order is creation order: later rows win a key
            self._open_segment(name)
        if gone:
            self._forget(gone)
        return bool(gone or new)

    def _open_segment(self, name: str) -> None:
        """Read a segment's index into memory and map its tokens: one memory map per segment
        (a cache of many segments must stay far below the kernel's limit on mappings)."""
        stem = self.directory / name
        bin_path = stem.with_suffix(".bin")
        try:
            index = ShardIndex(stem.with_suffix(".idx"))
            offsets = np.array(index.offsets, dtype=np.int64)
            file_id = np.array(index.file_id)
            keys = index.files
            idx_bytes = index.path.stat().st_size
            del index  # its memory maps go with it
            bin_bytes = bin_path.stat().st_size
            if bin_bytes != 2 * int(offsets[-1]):
                raise ShardFormatError(f"{bin_path}: {bin_bytes} bytes, the index says otherwise")
            tokens = np.asarray(np.memmap(bin_path, dtype="<u2", mode="r")) if bin_bytes else _EMPTY
        except FileNotFoundError as exc:  # evicted meanwhile
            logger.debug("token cache: cannot open segment %s: %s", name, exc)
            return
        except (OSError, ShardFormatError, ValueError) as exc:  # damaged
            self.counters["corrupt_segments"] += 1
            logger.warning("token cache: segment %s is damaged, not used: %s", name, exc)
            return
        self._segments[name] = tokens
        self._seg_bytes[name] = bin_bytes + idx_bytes
        self._checked[name] = np.zeros(len(file_id), dtype=bool)
        bounds = offsets.tolist()
        for row, fid in enumerate(file_id.tolist()):
            try:
                obj = orjson.loads(keys[fid])
                key = (str(obj["p"]), int(obj["s"]), int(obj["m"]))
                digest = str(obj["h"])
                crc = int(obj["c"])
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, IndexError):
                continue  # a damaged key: the row is unusable, its file a miss
            entry = CachedEntry(
                name, bounds[row], bounds[row + 1], obj.get("e"), obj.get("d", ""), crc, row
            )
            self._by_stat[key] = entry
            self._by_digest[digest] = entry
            self._by_path[key[0]] = key[1:]

    def _forget(self, names: list[str]) -> None:
        dead = set(names)
        for name in names:
            self._segments.pop(name, None)
            self._seg_bytes.pop(name, None)
            self._checked.pop(name, None)
        self._by_stat = {k: e for k, e in self._by_stat.items() if e.segment not in dead}
        self._by_digest = {k: e for k, e in self._by_digest.items() if e.segment not in dead}

    def lookup_stat(self, path: str, size: int, mtime_ns: int) -> CachedEntry | None:
        return self._by_stat.get((portable_name(path), size, mtime_ns))

    def lookup_digest(self, digest: str) -> CachedEntry | None:
        return self._by_digest.get(digest)

    def known_stat(self, path: str) -> tuple[int, int] | None:
        """The (size, mtime_ns) the cache last recorded for ``path`` (to count invalidations)."""
        return self._by_path.get(portable_name(path))

    def tokens(self, entry: CachedEntry) -> np.ndarray | None:
        """Zero-copy view of an entry's tokens (empty for a bad file), checked against the row's
        CRC-32 on its first read here; None when the row is damaged (then dropped from this index
        and counted) or its segment is gone: either way the file must be tokenized again."""
        tokens = self._segments.get(entry.segment)
        if tokens is None:
            return None
        row = tokens[entry.start : entry.stop]
        checked = self._checked[entry.segment]
        if checked[entry.row]:
            return row
        if zlib.crc32(row) == entry.crc:
            checked[entry.row] = True
        else:
            self.counters["corrupt_rows"] += 1
            logger.warning(
                "token cache: a row of segment %s fails its CRC-32 (damaged on disk); "
                "tokenizing the file again",
                entry.segment,
            )
            self._drop(entry)
            return None
        return row

    def _drop(self, entry: CachedEntry) -> None:
        """Forget one row (its keys), leaving the rest of its segment in use."""
        self._by_stat = {k: e for k, e in self._by_stat.items() if e is not entry}
        self._by_digest = {k: e for k, e in self._by_digest.items() if e is not entry}

    def __len__(self) -> int:
        return len(self._by_stat)

    @property
    def bytes(self) -> int:
        """Bytes of the segments this process sees (``.bin`` + ``.idx``)."""
        return sum(self._seg_bytes.values())

    # ---- writing ---------------------------------------------------------------------------
    def append(
        self, key: FileKey, tokens: np.ndarray | None, error: str | None = None, detail: str = ""
    ) -> None:
        """Add a file's tokens (or its read error) to this process's open segment."""
        t0 = time.perf_counter()
        if self._writer is None:
            self._writer_seq += 1
            name = f"{SEGMENT_PREFIX}{time.time_ns():020d}-{self._tag}-{self._writer_seq:06d}"
            self._writer = ShardWriter(self.directory, name, np.uint16)
        w = self._writer
        row = _EMPTY if tokens is None else np.ascontiguousarray(tokens, dtype="<u2")
        fid = w.add_file(_key_string(key, error, detail, zlib.crc32(row)))
        w.add(row, fid)
        self.counters["appended"] += 1
        self.write_s += time.perf_counter() - t0

    @property
    def pending(self) -> int:
        """Rows appended but not yet durable (lost if this process dies now)."""
        return 0 if self._writer is None else self._writer.sessions

    def flush(self) -> None:
        """Make the open segment durable and visible (fsync, then the index); then evict."""
        w, self._writer = self._writer, None
        if w is None:
            return
        t0 = time.perf_counter()
        try:
            w.close()
        except BaseException:
            w.abort()
            raise
        self.counters["segments_written"] += 1
        self._open_segment(w.name)
        if self.max_bytes is not None:
            self.evict(self.max_bytes)
        self.write_s += time.perf_counter() - t0

    def evict(self, max_bytes: int) -> int:
        """Delete whole segments, oldest first, until the namespace holds at most ``max_bytes``;
        also remove stale leftovers of dead writers. Returns the segments deleted here."""
        sizes: dict[str, int] = {}
        now = time.time()
        for entry in os.scandir(self.directory):
            name = entry.name
            if not name.startswith(SEGMENT_PREFIX):
                continue
            try:
                st = entry.stat()
            except FileNotFoundError:
                continue
            stem, _, ext = name.partition(".")
            if ext in ("idx", "bin"):
                sizes[stem] = sizes.get(stem, 0) + st.st_size
            if (ext.endswith("tmp") or ext == "bin") and now - st.st_mtime > STALE_S:
                if ext == "bin" and (self.directory / f"{stem}.idx").exists():
                    continue
                with _ignore_missing():
                    os.unlink(entry.path)
        complete = sorted(s for s in sizes if (self.directory / f"{s}.idx").exists())
        total = sum(sizes[s] for s in complete)
        deleted = 0
        for stem in complete:
            if total <= max_bytes:
                break
            with _ignore_missing():
                os.unlink(self.directory / f"{stem}.idx")  # readers stop seeing it first
            with _ignore_missing():
                os.unlink(self.directory / f"{stem}.bin")
            total -= sizes[stem]
            deleted += 1
            self.counters["evicted_segments"] += 1
            self.counters["evicted_bytes"] += sizes[stem]
        if deleted:
            logger.debug(
                "token cache: evicted %d segment(s) to stay under %d bytes", deleted, max_bytes
            )
            self.refresh(force=True)
        return deleted

    def close(self) -> None:
        self.flush()


class _ignore_missing:
    """``with _ignore_missing(): os.unlink(p)``: another process may have deleted it first."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, exc, tb) -> bool:
        return kind is not None and issubclass(kind, FileNotFoundError)
