"""Tokens of raw files, through two cache levels: an in-process LRU, then the disk cache.

:class:`TokenCache` is what each process that tokenizes (a DALI worker, a ``warm`` worker, the
main process with ``parallel=False``) holds. ``get(path)`` returns the file's tokens truncated to
``max_tokens`` (the first window of ``apply_overflow(..., "truncate")``: the same tokens as
``preprocess --overflow truncate --max-tokens M``), or the reason the file cannot be read.

Keys. A file is identified by its absolute path, size and mtime (one ``stat``, every access, so a
file that changes between epochs is noticed and re-tokenized) and, when that stat is not in the
cache, by a hash of its bytes: a file that was copied, moved or touched without changing is found
by content and not tokenized again. Everything else that decides the tokens (tokenizer config and
version, read limits, library version) selects the disk cache's *namespace*
(:meth:`CacheOptions.namespace`). A file rewritten with the same size within the file system's
mtime resolution is not noticed (the limit every make-like tool has).

Levels. Memory: per process, bounded in bytes, least recently used out first; it holds the
truncated tokens. Disk: :class:`~.disk_cache.DiskCache`, shared by processes and
runs, holding every token of a file. A miss on both reads the file, tokenizes it and appends it to
the disk cache; :meth:`TokenCache.flush` makes appended rows durable and visible to the others.
A disk row is checked against its CRC-32 whenever it is read; a damaged one counts as
``corrupt`` (not as a hit) and the file is tokenized again.

Counters are cumulative ints for this process (:data:`COUNTER_FIELDS`, :data:`GAUGE_FIELDS`);
the raw batch source sends their per-batch differences back to the main process.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
import time
import traceback
from collections import OrderedDict
from dataclasses import asdict, dataclass, field

import numpy as np
from rrweb_dali.external_source.raw.disk_cache import DiskCache, FileKey

from rrweb_dali import __version__
from rrweb_dali.errors import SessionError, classify_unexpected
from rrweb_dali.ingest import ReadLimits, parse_session_bytes, read_file_bytes
from rrweb_dali.ingest.names import portable_name
from rrweb_dali.tokenizer import Tokenizer
from rrweb_dali.tokenizer.windows import apply_overflow

logger = logging.getLogger(__name__)

# 2: every row's key holds the CRC-32 of its tokens ("c"), names are portable_name()s.
CACHE_VERSION = 2
DEFAULT_MEMORY_BYTES = 128 << 20
_ENTRY_OVERHEAD = 128  # bytes an LRU entry costs besides its tokens

COUNTER_FIELDS = (
    "memory_hits",
    "memory_misses",
    "disk_hits",
    "disk_misses",
    "content_hits",  # disk hits found by content hash (a moved or touched file)
    "tokenized",  # misses on every level: the file was read and tokenized
    "bad_files",  # gets that returned a read error (cached or not)
    "invalidations",  # a cached version existed for the path, but the file has changed
    "corrupt",  # a disk row failed its CRC-32: dropped, and the file tokenized again
    "memory_evictions",
    "disk_evictions",  # whole segments deleted to stay under the size limit
    "disk_appended",
    "bytes_read",  # raw file bytes read to tokenize or hash
    "tokens",  # tokens returned
    "tokenize_ns",  # reading, hashing, parsing and tokenizing files that missed
    "cached_ns",  # serving hits (stat, lookups, slicing)
    "write_ns",  # appending to and flushing the disk cache
)
GAUGE_FIELDS = ("memory_bytes", "memory_entries", "disk_bytes", "disk_entries")


@dataclass(frozen=True)
class CacheOptions:
    """What a tokenizing process needs: picklable, so it travels to spawned workers."""

    cache_dir: str | None = None
    max_tokens: int = 65536
    disk_bytes: int | None = None  # size limit of the disk cache namespace; None: unbounded
    memory_bytes: int = DEFAULT_MEMORY_BYTES  # per process
    max_text_bytes: int | None = None
    limits: ReadLimits = field(default_factory=ReadLimits)

    def __post_init__(self) -> None:
        if isinstance(self.max_tokens, bool) or self.max_tokens < 2:
            raise ValueError(f"max_tokens must be an int >= 2, got {self.max_tokens!r}")
        if self.memory_bytes < 0:
            raise ValueError(f"memory cache bytes must be >= 0, got {self.memory_bytes}")

    def tokenizer(self) -> Tokenizer:
        return Tokenizer() if self.max_text_bytes is None else Tokenizer(self.max_text_bytes)

    def namespace(self) -> str:
        """The disk cache namespace: a hash of everything but the file that decides its tokens."""
        return namespace_of(self.tokenizer(), self.limits)


def namespace_of(tokenizer: Tokenizer, limits: ReadLimits) -> str:
    desc = namespace_description(tokenizer, limits)
    blob = json.dumps(desc, sort_keys=True, separators=(",", ":")).encode()
    return f"tok-{hashlib.sha256(blob).hexdigest()[:16]}"


def namespace_description(tokenizer: Tokenizer, limits: ReadLimits) -> dict:
    return {
        "cache_version": CACHE_VERSION,
        "library": __version__,
        "tokenizer": tokenizer.config(),
        "limits": asdict(limits),
    }


@dataclass(frozen=True)
class Fetched:
    """One file's tokens (truncated to ``max_tokens``), or why it has none."""

    tokens: np.ndarray | None
    error: str | None = None
    detail: str = ""
    level: str = "tokenized"  # "memory", "disk" or "tokenized"


class MemoryLRU:
    """``path -> (size, mtime_ns, Fetched)``, least recently used out first, bounded in bytes."""

    def __init__(self, max_bytes: int):
        self.max_bytes = int(max_bytes)
        self.bytes = 0
        self.evictions = 0
        self._items: OrderedDict[str, tuple[int, int, Fetched, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, path: str) -> tuple[int, int, Fetched] | None:
        item = self._items.get(path)
        if item is None:
            return None
        self._items.move_to_end(path)
        return item[:3]

    def pop(self, path: str) -> None:
        item = self._items.pop(path, None)
        if item is not None:
            self.bytes -= item[3]

    def put(self, path: str, size: int, mtime_ns: int, value: Fetched) -> None:
        self.pop(path)
        cost = _ENTRY_OVERHEAD + (0 if value.tokens is None else int(value.tokens.nbytes))
        if cost > self.max_bytes:
            return
        self._items[path] = (size, mtime_ns, value, cost)
        self.bytes += cost
        while self.bytes > self.max_bytes:
            _, old = self._items.popitem(last=False)
            self.bytes -= old[3]
            self.evictions += 1


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


class TokenCache:
    """Memory LRU -> disk cache -> read and tokenize; see the module docstring."""

    def __init__(self, options: CacheOptions):
        self.options = options
        self.tokenizer = options.tokenizer()
        self._memory = MemoryLRU(options.memory_bytes)
        self._disk: DiskCache | None = None
        if options.cache_dir is not None:
            self._disk = DiskCache(options.cache_dir, options.namespace(), options.disk_bytes)
            _describe_namespace(self._disk, self.tokenizer, options.limits)
        self.counts = dict.fromkeys(COUNTER_FIELDS, 0)

    @property
    def disk(self) -> DiskCache | None:
        return self._disk

    def get(self, path: str) -> Fetched:
        """The tokens of the file at ``path`` (an absolute path), from the nearest level."""
        c = self.counts
        t0 = time.perf_counter_ns()
        try:
            st = os.stat(path)
        except (OSError, ValueError) as exc:
            return self._bad(SessionError("io_error", f"cannot stat: {exc}", path), t0)
        if not stat.S_ISREG(st.st_mode):
            return self._bad(SessionError("io_error", "not a regular file", path), t0)
        size, mtime = st.st_size, st.st_mtime_ns
        changed = False
        item = self._memory.get(path)
        if item is not None:
            if item[0] == size and item[1] == mtime:
                c["memory_hits"] += 1
                return self._served(item[2], "memory", t0)
            changed = True
            self._memory.pop(path)
        c["memory_misses"] += 1
        disk = self._disk
        if disk is not None:
            entry = disk.lookup_stat(path, size, mtime)
            if entry is None and disk.refresh():
                entry = disk.lookup_stat(path, size, mtime)
            fetched = None if entry is None else self._from_disk(entry)
            if fetched is not None:
                c["disk_hits"] += 1
                self._memory.put(path, size, mtime, fetched)
                return self._served(fetched, "disk", t0)
            if entry is not None:  # its row failed its checksum: tokenized again below
                c["corrupt"] += 1
            known = disk.known_stat(path)
            changed = changed or (known is not None and known != (size, mtime))
        c["invalidations"] += changed
        return self._read_and_tokenize(path, size, mtime, t0)

    def _from_disk(self, entry) -> Fetched | None:
        """The entry as served, or None when its row is damaged (or gone)."""
        if entry.error is not None:
            return Fetched(None, entry.error, entry.detail, "disk")
        tokens = self._disk.tokens(entry)
        if tokens is None:
            return None
        return Fetched(self._truncate(tokens, copy=False), level="disk")

    def _truncate(self, tokens: np.ndarray, copy: bool) -> np.ndarray:
        window = apply_overflow(tokens, self.options.max_tokens, "truncate").windows[0]
        # A fresh array cut short: copy the head so the whole session can be freed.
        return np.array(window) if copy and window.size < tokens.size else window

    def _read_and_tokenize(self, path: str, size: int, mtime: int, t0: int) -> Fetched:
        c = self.counts
        disk = self._disk
        try:
            data = read_file_bytes(path, self.options.limits)
        except SessionError as exc:  # io_error or too_large before reading: not cached
            return self._bad(exc, t0)
        c["bytes_read"] += len(data)
        key = FileKey(path, size, mtime, _digest(data))
        entry = None if disk is None else disk.lookup_digest(key.digest)
        full = None if entry is None or entry.error is not None else disk.tokens(entry)
        if entry is not None and entry.error is None and full is None:
            c["corrupt"] += 1  # the copy found by content is damaged: tokenize below
        elif entry is not None:
            c["content_hits"] += 1
            c["disk_hits"] += 1
            fetched = Fetched(
                None if full is None else self._truncate(full, copy=False),
                entry.error,
                entry.detail,
                "disk",
            )
            self._store(key, None if full is None else np.array(full), fetched)
            return self._served(fetched, "disk", t0)
        if disk is not None:
            c["disk_misses"] += 1
        try:
            session = parse_session_bytes(data, self.options.limits, name=path)
            del data
            full = self.tokenizer.encode(session.events)
            del session
            fetched = Fetched(self._truncate(full, copy=True))
        except SessionError as exc:
            full, fetched = None, Fetched(None, exc.reason, exc.detail)
        except Exception as exc:  # one bad file never stops training (see rrweb_dali.errors)
            logger.warning(
                "unexpected error tokenizing %s:\n%s", portable_name(path), traceback.format_exc()
            )
            full = None
            fetched = Fetched(None, classify_unexpected(exc), f"unexpected {type(exc).__name__}")
        c["tokenized"] += 1
        c["tokenize_ns"] += time.perf_counter_ns() - t0
        self._store(key, full, fetched)
        if fetched.error is not None:
            c["bad_files"] += 1
        else:
            c["tokens"] += int(fetched.tokens.size)
        return fetched

    def _store(self, key: FileKey, full: np.ndarray | None, fetched: Fetched) -> None:
        self._memory.put(key.path, key.size, key.mtime_ns, fetched)
        if self._disk is not None:
            t0 = time.perf_counter_ns()
            self._disk.append(key, full, fetched.error, fetched.detail)
            self.counts["write_ns"] += time.perf_counter_ns() - t0

    def _served(self, fetched: Fetched, level: str, t0: int) -> Fetched:
        c = self.counts
        if fetched.error is not None:
            c["bad_files"] += 1
        else:
            c["tokens"] += int(fetched.tokens.size)
        c["cached_ns"] += time.perf_counter_ns() - t0
        return fetched if fetched.level == level else Fetched(*_fields(fetched), level)

    def _bad(self, exc: SessionError, t0: int) -> Fetched:
        self.counts["bad_files"] += 1
        self.counts["tokenize_ns"] += time.perf_counter_ns() - t0
        return Fetched(None, exc.reason, exc.detail)

    def flush(self) -> None:
        """Make what this process appended durable and visible to every other process."""
        if self._disk is not None and self._disk.pending:
            t0 = time.perf_counter_ns()
            self._disk.flush()
            self.counts["write_ns"] += time.perf_counter_ns() - t0

    def snapshot(self) -> list[int]:
        """The cumulative counters then the gauges, in :data:`COUNTER_FIELDS` +
        :data:`GAUGE_FIELDS` order."""
        c = self.counts
        c["memory_evictions"] = self._memory.evictions
        disk = self._disk
        if disk is not None:
            c["disk_evictions"] = disk.counters["evicted_segments"]
            c["disk_appended"] = disk.counters["appended"]
        gauges = [
            self._memory.bytes,
            len(self._memory),
            0 if disk is None else disk.bytes,
            0 if disk is None else len(disk),
        ]
        return [int(c[k]) for k in COUNTER_FIELDS] + gauges


def _fields(f: Fetched) -> tuple:
    return (f.tokens, f.error, f.detail)


def _describe_namespace(disk: DiskCache, tokenizer: Tokenizer, limits: ReadLimits) -> None:
    """Write ``namespace.json`` once (what the hash stands for), atomically."""
    path = disk.directory / "namespace.json"
    if path.exists():
        return
    tmp = path.with_name(f".namespace.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(namespace_description(tokenizer, limits), indent=2, sort_keys=True))
    os.replace(tmp, path)
