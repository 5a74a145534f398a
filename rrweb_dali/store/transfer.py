"""Moving one shard's bytes: a checked download with retries, and the retry loop itself.

A download streams the object into the cache's pre-sized ``.part`` file while hashing it, adds
the (already local) index bytes to the hash, and compares with the manifest's SHA-256: the same
digest :class:`~rrweb_dali.shards.format.ShardWriter` recorded, so nothing but the manifest has to
be trusted. A mismatch is tried once more (the bytes may have been damaged on the way) and then
raised as :class:`~rrweb_dali.shards.format.ShardFormatError` naming the shard and its object.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from rrweb_dali.shards.format import ShardFormatError, ShardInfo
from rrweb_dali.store.location import Store, StoreError
from rrweb_dali.store.options import RetryPolicy

logger = logging.getLogger(__name__)

CHUNK = 8 << 20  # bytes per ranged read of a download
T = TypeVar("T")

# Errors that no retry can mend: the object is not there, or we may not read it.
_FINAL = (FileNotFoundError, PermissionError, ShardFormatError)
# The client's layers whose errors are about the connection or the server (refused, reset,
# timed out, 5xx), matched by module so that none of them has to be imported here.
_CLIENT_MODULES = {"botocore", "aiobotocore", "aiohttp", "urllib3", "s3fs", "fsspec"}


def retryable(exc: BaseException) -> bool:
    """An error another try may not meet: an OSError (s3fs raises most as one), a timeout, or
    one of the client's own; never a bug such as a TypeError."""
    if isinstance(exc, _FINAL):
        return False
    if isinstance(exc, (OSError, TimeoutError)):
        return True
    return type(exc).__module__.split(".")[0] in _CLIENT_MODULES


def with_retries(fn: Callable[[], T], policy: RetryPolicy, what: str) -> T:
    """``fn()``, tried again after each failure with the policy's growing waits; the last error
    is raised as :class:`StoreError` naming ``what``. Only :func:`retryable` errors are tried
    again; missing objects, denied reads and any other error are raised as they are."""
    waits = policy.waits()
    attempt = 1
    while True:
        try:
            return fn()
        except Exception as exc:
            if not retryable(exc):
                raise
            wait = next(waits, None)
            if wait is None:
                raise StoreError(
                    f"{what}: failed {attempt} times, last with {type(exc).__name__}: {exc}"
                ) from exc
            logger.warning("%s: %s (try %d); again in %.2fs", what, exc, attempt, wait)
            time.sleep(wait)
            attempt += 1


def download_shard(store: Store, key: str, part: Path, index_path: Path, info: ShardInfo) -> int:
    """Stream object ``key`` into ``part`` (sized already) and check it with the index against
    ``info.sha256``; the bytes read. Raises ShardFormatError on a size or hash mismatch.

    Ranged GETs of the manifest's size, no HEAD first (``fs.open`` would send one per object:
    measured as much as half of a 2 MB shard's time on loopback). The hash covers exactly the
    bytes used, so an object that was made longer cannot pass off other data.
    """
    h = hashlib.sha256()
    url = store.key_url(key)
    got = 0
    with open(part, "r+b") as dst:
        for start in range(0, info.bin_bytes, CHUNK):
            end = min(start + CHUNK, info.bin_bytes)
            try:
                chunk = store.fs.cat_file(url, start=start, end=end)
            except OSError as exc:  # InvalidRange (EINVAL): the object ends before ``start``
                if exc.errno != errno.EINVAL or "range" not in str(exc).lower():
                    raise
                chunk = b""
            got += len(chunk)
            if len(chunk) != end - start:
                raise ShardFormatError(
                    f"shard {info.name}: {url} holds {got:,} bytes or fewer, the manifest says "
                    f"{info.bin_bytes:,}; the object was changed or is damaged"
                )
            dst.write(chunk)
            h.update(chunk)
    h.update(index_path.read_bytes())
    if h.hexdigest() != info.sha256:
        raise ShardFormatError(
            f"shard {info.name}: SHA-256 of {url} with its index is "
            f"{h.hexdigest()[:16]}..., the manifest says {info.sha256[:16]}...; the object was "
            "changed after preprocessing or is damaged"
        )
    return got


def checked_download(
    store: Store, key: str, part: Path, index_path: Path, info: ShardInfo, policy: RetryPolicy
) -> int:
    """:func:`download_shard` with retries for the connection, and one more try for a hash
    mismatch before it is raised."""
    what = f"downloading shard {info.name} ({store.key_url(key)})"
    try:
        return with_retries(
            lambda: download_shard(store, key, part, index_path, info), policy, what
        )
    except ShardFormatError as first:
        logger.warning("%s; downloading it once more", first)
        try:
            return with_retries(
                lambda: download_shard(store, key, part, index_path, info), policy, what
            )
        except ShardFormatError:
            raise first from None
