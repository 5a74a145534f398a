"""Fetch-ahead follows the epoch's need order: the shards after the frontier, and no others."""

from __future__ import annotations

import time

import numpy as np
from rrweb_dali.external_source.reader import ShardReader

from rrweb_dali.shards.manifest import read_manifest
from rrweb_dali.store import StoreOptions


def _cached(cache_dir, keys) -> list[int]:
    return [k for k, key in enumerate(keys) if (cache_dir / "tokens" / f"{key}.bin").exists()]


def _settle(cache_dir, keys, expected: list[int], timeout_s: float = 20.0) -> list[int]:
    """The cached shard numbers once ``expected`` are there (or the timeout passed), after a
    pause long enough for any download beyond them to have started and landed."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not set(expected) <= set(_cached(cache_dir, keys)):
        time.sleep(0.05)
    time.sleep(0.5)
    return _cached(cache_dir, keys)


def test_fetch_ahead_downloads_the_next_shards_in_need_order(s3_dataset, tmp_path):
    cache = tmp_path / "cache"
    options = StoreOptions(
        storage_options=s3_dataset.storage_options,
        cache_dir=str(cache),
        fetch_ahead=2,
        fetch_threads=1,
    )
    reader = ShardReader(s3_dataset.url, options)
    keys = [info.sha256 for info in read_manifest(s3_dataset.local).shards]
    bounds = np.cumsum([0] + [len(s) for s in reader.shards])
    ids_of = [np.arange(bounds[k], bounds[k + 1]) for k in range(len(keys))]
    need = [5, 0, 3, 1, 4, 2]  # the order this epoch reads the shards in
    reader.plan_fetch(0, np.concatenate([ids_of[k] for k in need]))
    assert _settle(cache, keys, [5, 0]) == [0, 5]  # nothing read yet: the first two ahead
    reader.acquire(ids_of[3][:4], epoch=0)  # the frontier jumps to need position 2
    assert _settle(cache, keys, [1, 4]) == [0, 1, 3, 4, 5]  # 2 is last: not fetched yet
    reader.acquire(np.concatenate([ids_of[5], ids_of[0]]), epoch=0)
    stats = reader.fetch_counters()
    assert (stats["hits"], stats["misses"], stats["downloads"]) == (2, 1, 5)
    assert np.array_equal(reader[int(ids_of[4][0])], np.asarray(s3_dataset.sessions[ids_of[4][0]]))
    reader.close()
