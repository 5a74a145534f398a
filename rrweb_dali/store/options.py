"""The options of reading a dataset from an object store: the local cache, fetching, retries.

One dataclass per concern, each validating in ``__post_init__`` (``make_loader`` and
``open_dataset`` build them from their keywords).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_CACHE_BYTES = 64 << 30  # 64 GiB: room for a mid-sized corpus on a node's local disk


def default_cache_dir() -> Path:
    """``~/.cache/rrweb-dali/shards``: the same folder for every rank of a node, so they share
    one copy of each shard."""
    return Path.home() / ".cache" / "rrweb-dali" / "shards"


@dataclass(frozen=True)
class RetryPolicy:
    """How often a failed download is tried again, and how long to wait between tries.

    Waits double from ``backoff_s`` up to ``max_backoff_s``; the defaults ride out about a minute
    of an unreachable server (a restart, a network blip) before the error reaches the loop.
    """

    attempts: int = 8
    backoff_s: float = 0.25
    max_backoff_s: float = 16.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"retry attempts must be at least 1, got {self.attempts}")
        if self.backoff_s < 0 or self.max_backoff_s < self.backoff_s:
            raise ValueError("retry backoff must satisfy 0 <= backoff_s <= max_backoff_s")

    def waits(self) -> Iterator[float]:
        """The waits before tries 2, 3, ... (``attempts - 1`` of them)."""
        wait = self.backoff_s
        for _ in range(self.attempts - 1):
            yield wait
            wait = min(2 * wait, self.max_backoff_s)


@dataclass(frozen=True)
class StoreOptions:
    """Reading ``s3://`` datasets: the client's options and the node's shard cache.

    ``storage_options`` go to fsspec as they are (``{"endpoint_url": ...}``, ``key``/``secret``,
    ``client_kwargs``...); without them the standard AWS variables apply. ``cache_dir`` is shared
    by every process of a node that reads the same data (one download per shard per node);
    ``cache_bytes`` bounds the token files it holds. ``fetch_ahead`` shards beyond the ones in use
    are downloaded in the epoch's order by ``fetch_threads`` background threads.
    """

    storage_options: dict[str, Any] = field(default_factory=dict)
    cache_dir: str | None = None
    cache_bytes: int = DEFAULT_CACHE_BYTES
    fetch_ahead: int = 4
    fetch_threads: int = 4
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def __post_init__(self) -> None:
        if not isinstance(self.storage_options, dict):
            raise TypeError(f"storage_options must be a dict, got {self.storage_options!r}")
        if isinstance(self.cache_bytes, bool) or not isinstance(self.cache_bytes, int):
            raise TypeError(f"cache_bytes must be an int, got {self.cache_bytes!r}")
        if self.cache_bytes < 1:
            raise ValueError(f"cache_bytes must be positive, got {self.cache_bytes}")
        if self.fetch_ahead < 0:
            raise ValueError(f"fetch_ahead must be 0 or more, got {self.fetch_ahead}")
        if self.fetch_threads < 1:
            raise ValueError(f"fetch_threads must be at least 1, got {self.fetch_threads}")

    def describe(self) -> dict:
        """The cache and fetching settings, for a profile run's ``meta.json``; never the
        storage options, which may hold credentials."""
        return {
            "cache_dir": str(self.cache_path),
            "cache_bytes": self.cache_bytes,
            "fetch_ahead": self.fetch_ahead,
            "fetch_threads": self.fetch_threads,
        }

    @property
    def cache_path(self) -> Path:
        return Path(self.cache_dir) if self.cache_dir is not None else default_cache_dir()


def store_options_for(
    paths: object,
    *,
    storage_options: dict[str, Any] | None = None,
    cache_dir: str | os.PathLike | None = None,
    cache_bytes: int | None = None,
    **fetching: Any,
) -> StoreOptions | None:
    """The :class:`StoreOptions` of a loader or dataset over ``paths`` (one path or a list), from
    its keywords (None: the default); None when every path is local, where ``storage_options``
    would do nothing and are refused. ``fetching``: ``fetch_ahead``, ``fetch_threads``, ``retry``.
    """
    from rrweb_dali.store.location import is_remote

    listed = paths if isinstance(paths, (list, tuple)) else [paths]
    if not any(is_remote(p) for p in listed):
        if storage_options is not None:
            raise ValueError("storage_options apply to s3:// datasets; these paths are local")
        return None
    given = {"cache_bytes": cache_bytes, **fetching}
    return StoreOptions(
        storage_options=dict(storage_options or {}),
        cache_dir=None if cache_dir is None else os.fspath(cache_dir),
        **{k: v for k, v in given.items() if v is not None},
    )
