"""A node's shard cache: one verified copy of each remote shard, shared by every local process.

Layout of the cache directory (files are named by the shard's SHA-256 from the manifest, so two
datasets or two versions of one never share a name unless they share the bytes)::

    tokens/<sha256>.bin     a shard's token file, complete and checked; read by memory map
    tokens/<sha256>.part    a download in progress (sized to the whole file when it starts)
    index/<sha256>.idx      the shard's index, fetched when the dataset is opened
    locks/<sha256>.lock     held (``flock``) by the one process downloading that shard
    cache.lock              held while a process makes room and reserves it, or finishes a download

Why this shape:

* One download per node: a process takes the shard's lock before downloading and looks again
  once it holds it; the ranks that waited find the finished file and download nothing.
* Never a partial shard in use: bytes land in ``.part``, are hashed with the index against the
  manifest, and only then renamed to ``.bin``; a reader maps nothing but ``.bin`` files.
* Size limit: ``limit_bytes`` bounds the token files, ``.bin`` and ``.part`` together (the index
  files, 16 bytes a sequence, are kept beside them outside the limit). Room is made by removing
  the least recently needed ``.bin`` (its modification time is refreshed, about once a second,
  by every process that uses it) that no process here protects. Room is reserved by creating
  the sized ``.part`` under ``cache.lock``, in the same step that made it, and ``.part`` becomes
  ``.bin`` only under that lock too, so concurrent downloads never count the same free room.
  A file removed while another process still maps it stays readable there (POSIX keeps the
  inode), so eviction never breaks a running reader.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from collections.abc import Callable, Collection, Iterator
from pathlib import Path

logger = logging.getLogger(__name__)

TOUCH_EVERY_S = 1.0  # a process refreshes the times of the shards it used at most this often
PART_POLL_S = 0.05  # how often a download waiting for room looks at the others' progress


class CacheTooSmall(ValueError):
    """The cache cannot hold what one step needs (a shard, or the shards of one batch)."""


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive ``flock`` on ``path`` (created if needed) for the ``with`` block."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


class ShardCache:
    """The cache directory ``root``, holding at most ``limit_bytes`` of token files."""

    def __init__(self, root: str | os.PathLike, limit_bytes: int):
        self.root = Path(root)
        self.limit_bytes = int(limit_bytes)
        for sub in ("tokens", "index", "locks"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self.evictions = 0

    def token_path(self, key: str) -> Path:
        return self.root / "tokens" / f"{key}.bin"

    def index_path(self, key: str) -> Path:
        return self.root / "index" / f"{key}.idx"

    def has(self, key: str) -> bool:
        return self.token_path(key).is_file()

    def touch(self, key: str) -> None:
        """Mark ``key`` as needed now (what least-recently-needed eviction orders by)."""
        with contextlib.suppress(FileNotFoundError):
            os.utime(self.token_path(key))

    def check_fits(self, size: int, what: str) -> None:
        if size > self.limit_bytes:
            raise CacheTooSmall(
                f"the shard cache at {self.root} holds at most {self.limit_bytes:,} bytes, but "
                f"{what} needs {size:,}; raise cache_bytes (or use a larger cache directory)"
            )

    def used_bytes(self) -> int:
        """Bytes of token files (``.bin`` and ``.part``) in the cache, every process's."""
        total = 0
        with os.scandir(self.root / "tokens") as it:
            for entry in it:
                with contextlib.suppress(FileNotFoundError):
                    total += entry.stat().st_size
        return total

    def reserve(
        self,
        part: Path,
        size: int,
        protect: Collection[str],
        evicted: list[str],
        wait_s: float = 0.0,
    ) -> None:
        """Make room for ``size`` more bytes and create ``part`` at that size, as one step under
        the cache's lock, removing least recently needed shards outside ``protect`` (their keys
        are appended to ``evicted``). :class:`CacheTooSmall` when the protected shards leave no
        room. With ``wait_s``, downloads in progress (their ``.part`` files hold room) are
        waited for up to that long first: once done they can be evicted.

        Creating ``.part`` files and renaming them to ``.bin`` happen only under the cache's
        lock, so what one look at the directory sees is what is there: two reservations never
        both count the same free room, and a download that finishes meanwhile is never mistaken
        for room that will not come back.
        """
        self.check_fits(size, "one shard")
        deadline = time.monotonic() + wait_s
        while True:
            with locked(self.root / "cache.lock"):
                used, busy = self._evict_for(size, protect, evicted)
                if used + size <= self.limit_bytes:
                    with open(part, "wb") as fh:
                        fh.truncate(size)  # counts its whole size against the limit from now on
                    return
            if not busy or time.monotonic() >= deadline:
                raise CacheTooSmall(
                    f"the shard cache at {self.root} ({self.limit_bytes:,} bytes) is full of "
                    f"shards in use ({used:,} bytes); one more of {size:,} bytes does not fit: "
                    "raise cache_bytes, lower fetch_ahead or the batch's spread over shards"
                )
            time.sleep(PART_POLL_S)

    def _evict_for(
        self, size: int, protect: Collection[str], evicted: list[str]
    ) -> tuple[int, bool]:
        """Remove abandoned ``.part`` files, then unprotected ``.bin`` files, least recently
        needed first, until ``size`` more bytes fit or none is left (the cache's lock held); the
        bytes then used, and whether downloads in progress hold some of them."""
        used, busy, candidates = 0, False, []
        with os.scandir(self.root / "tokens") as it:
            for entry in it:
                key, ext = os.path.splitext(entry.name)
                if ext == ".part" and self._remove_if_abandoned(key):
                    continue
                with contextlib.suppress(FileNotFoundError):  # a failed download's .part
                    st = entry.stat()
                    used += st.st_size
                    busy |= ext == ".part"
                    if ext == ".bin" and key not in protect:
                        candidates.append((st.st_mtime, key, st.st_size))
        for _, key, nbytes in sorted(candidates):
            if used + size <= self.limit_bytes:
                break
            with contextlib.suppress(FileNotFoundError):
                self.token_path(key).unlink()
                used -= nbytes
                self.evictions += 1
                evicted.append(key)
                logger.debug("evicted shard %s (%d bytes)", key, nbytes)
        return used, busy

    def fill(
        self,
        key: str,
        size: int,
        download: Callable[[Path], None],
        protect: Collection[str],
        evicted: list[str],
        wait_s: float = 0.0,
    ) -> bool:
        """Make ``key``'s token file present, downloading it with ``download(part_path)`` (which
        writes and checks the whole file, or raises) unless another process already did; the
        keys it evicted to make room are appended to ``evicted``; ``wait_s`` as in :meth:`reserve`.

        True when this call downloaded it. The shard's lock is held throughout, so at most one
        process of the node downloads a shard at a time, and the others then find it done.
        """
        final = self.token_path(key)
        with locked(self.root / "locks" / f"{key}.lock"):
            if final.is_file():
                return False
            part = final.with_suffix(".part")
            part.unlink(missing_ok=True)  # a dead download's: this process holds the key now
            try:
                self.reserve(part, size, set(protect) | {key}, evicted, wait_s)
                download(part)  # writes into the sized file (``r+b``), never shrinking it
                with locked(self.root / "cache.lock"):
                    os.replace(part, final)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    part.unlink()
            self.touch(key)
            return True

    def remove_abandoned_parts(self) -> None:
        """Drop the ``.part`` files of downloads that died with their process: no one holds
        their shard's lock. Live downloads, this process's or another's, hold it and keep
        theirs, however long they take."""
        with os.scandir(self.root / "tokens") as it:
            for entry in it:
                key, ext = os.path.splitext(entry.name)
                if ext == ".part":
                    self._remove_if_abandoned(key)

    def _remove_if_abandoned(self, key: str) -> bool:
        """Remove ``key``'s ``.part`` if no process holds its shard's lock (a ``flock`` tried
        without waiting, on its own open file, so this process's own downloads count as held);
        True when it was abandoned."""
        fd = os.open(self.root / "locks" / f"{key}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            with contextlib.suppress(FileNotFoundError):
                self.token_path(key).with_suffix(".part").unlink()
                logger.debug("removed the partial download of shard %s left by a dead process", key)
            return True
        finally:
            os.close(fd)  # closing releases the lock
