"""make_loader over an s3:// dataset on a real S3 server (moto, 127.0.0.1): the same batches as
the local dataset, the second epoch from the cache, exact resume, eviction, AWS variables."""

from __future__ import annotations

import pytest

from rrweb_dali import make_loader
from rrweb_dali.dataset import open_dataset
from rrweb_dali.store import CacheTooSmall, RetryPolicy, ShardCache

KW = dict(batch_size=16, device="cpu", seed=7)


def remote_loader(ds, cache_dir, **kw):
    return make_loader(
        ds.url, storage_options=ds.storage_options, cache_dir=cache_dir, **{**KW, **kw}
    )


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"packing": 512},
        {"bucketing": True, "max_length": 700},
        {"rank": 1, "world_size": 2, "last_batch": "wrap"},
    ],
    ids=["padded", "packing", "bucketing", "rank-1-of-2"],
)
def test_batches_equal_the_local_datasets(
    s3_dataset, tmp_path, batches_of, assert_same_batches, options
):
    local = batches_of(make_loader(str(s3_dataset.local), **{**KW, **options}))
    loader = remote_loader(s3_dataset, tmp_path / "cache", **options)
    assert_same_batches(local, batches_of(loader))
    stats = loader.cache_stats()
    assert stats["kind"] == "store"
    assert stats["downloads"] == s3_dataset.shards  # each shard once
    assert stats["misses"] + stats["hits"] == s3_dataset.shards
    loader.close()


def test_the_second_epoch_is_served_from_the_cache(s3_dataset, tmp_path, batches_of):
    loader = remote_loader(s3_dataset, tmp_path / "cache")
    first = batches_of(loader)
    second = batches_of(loader)
    stats = loader.cache_stats()
    assert stats["epochs"][0]["kind"] == "cold"
    assert stats["epochs"][1] == {
        "hits": s3_dataset.shards,
        "misses": 0,
        "downloads": 0,
        "kind": "warm",
    }
    assert stats["downloads"] == s3_dataset.shards
    assert stats["download_bytes"] == sum(
        p.stat().st_size for p in (s3_dataset.local / "shards").glob("*.bin")
    )
    assert len(first) == len(second) and first[0]["index"].tolist() != second[0]["index"].tolist()
    # A new loader on the same cache directory downloads nothing at all.
    again = remote_loader(s3_dataset, tmp_path / "cache")
    batches_of(again)
    assert again.cache_stats()["downloads"] == 0
    assert again.cache_stats()["hits"] == s3_dataset.shards


def test_a_resumed_loader_is_exact(s3_dataset, tmp_path, batches_of, assert_same_batches):
    whole = batches_of(make_loader(str(s3_dataset.local), **KW))
    loader = remote_loader(s3_dataset, tmp_path / "cache-a")
    head = batches_of(loader, limit=5)
    state = loader.state_dict()
    loader.close()
    resumed = remote_loader(s3_dataset, tmp_path / "cache-b")  # a fresh node: empty cache
    resumed.load_state_dict(state)
    assert_same_batches(whole, head + batches_of(resumed))
    # The state names the dataset by content: the local copy takes an s3 loader's state.
    local = make_loader(str(s3_dataset.local), **KW)
    local.load_state_dict(state)
    assert_same_batches(whole[5:], batches_of(local))


def test_a_small_cache_evicts_and_stays_within_its_limit(
    s3_dataset, tmp_path, batches_of, assert_same_batches
):
    sizes = sorted(p.stat().st_size for p in (s3_dataset.local / "shards").glob("*.bin"))
    limit = sizes[-1] + sizes[-2]  # room for two shards, of six
    options = dict(shuffle=False, fetch_ahead=1)
    local = batches_of(make_loader(str(s3_dataset.local), **{**KW, **options}))
    cache = tmp_path / "cache"
    loader = remote_loader(s3_dataset, cache, cache_bytes=limit, **options)
    assert_same_batches(local, batches_of(loader))
    assert_same_batches(local, batches_of(loader))
    stats = loader.cache_stats()
    assert stats["evictions"] > 0
    assert stats["downloads"] > s3_dataset.shards  # the second epoch fetched evicted ones again
    assert ShardCache(cache, limit).used_bytes() <= limit


def test_a_cache_smaller_than_one_shard_is_refused_at_start(s3_dataset, tmp_path):
    largest = max(p.stat().st_size for p in (s3_dataset.local / "shards").glob("*.bin"))
    with pytest.raises(CacheTooSmall, match=r"holds at most .* largest shard, shard-0000\d\d"):
        remote_loader(s3_dataset, tmp_path / "cache", cache_bytes=largest - 1)


def test_aws_environment_variables_reach_the_store(s3_dataset, tmp_path, monkeypatch, batches_of):
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_dataset.bucket.server.endpoint)
    loader = make_loader(s3_dataset.url, cache_dir=tmp_path / "cache", **KW)
    assert len(batches_of(loader)) == len(make_loader(str(s3_dataset.local), **KW))


def test_open_dataset_reads_s3_like_the_local_copy(s3_dataset, tmp_path):
    import numpy as np

    remote = open_dataset(
        s3_dataset.url, storage_options=s3_dataset.storage_options, cache_dir=tmp_path / "c"
    )
    local = open_dataset(s3_dataset.local)
    assert len(remote) == len(local) == len(s3_dataset.sessions)
    for i in (0, 5, 100, len(local) - 1):
        assert np.array_equal(remote[i].tokens, local[i].tokens)
        assert remote[i].source == local[i].source
    assert remote.summary().sequences == local.summary().sequences


def test_a_missing_dataset_names_the_manifest(s3_bucket, tmp_path):
    with pytest.raises(Exception, match=r"no manifest.json; is this a preprocessed dataset"):
        make_loader(
            f"{s3_bucket.url}/nothing-here",
            storage_options=s3_bucket.storage_options,
            cache_dir=tmp_path / "cache",
            retry=RetryPolicy(attempts=1),
            **KW,
        )


def test_storage_options_on_local_shards_are_refused(s3_dataset):
    with pytest.raises(ValueError, match="storage_options apply to s3:// datasets"):
        make_loader(str(s3_dataset.local), storage_options={"anon": True}, **KW)


def test_a_shard_window_keeps_a_small_cache_from_thrashing(
    s3_dataset, tmp_path, batches_of, assert_same_batches, caplog
):
    sizes = sorted(p.stat().st_size for p in (s3_dataset.local / "shards").glob("*.bin"))
    limit = sum(sizes[-4:])  # four shards of six: a window of two, two ahead
    options = dict(shard_window=2, fetch_ahead=2)
    local = make_loader(str(s3_dataset.local), **{**KW, **options})
    expected = [batches_of(local), batches_of(local)]
    loader = remote_loader(s3_dataset, tmp_path / "cache", cache_bytes=limit, **options)
    for epoch in range(2):
        assert_same_batches(expected[epoch], batches_of(loader))
        stats = loader.cache_stats()["epochs"][epoch]
        assert stats["hits"] + stats["misses"] == s3_dataset.shards
    # Each shard is fetched at most once an epoch (the second epoch may find some left over).
    assert loader.cache_stats()["downloads"] <= 2 * s3_dataset.shards
    # The global shuffle with the same small cache is warned about.
    with caplog.at_level("WARNING", logger="rrweb_dali.loader.make"):
        remote_loader(s3_dataset, tmp_path / "cache", cache_bytes=limit)
    assert any("pass shard_window=" in r.getMessage() for r in caplog.records)


def test_dali_worker_processes_share_the_cache(
    s3_dataset, tmp_path, batches_of, assert_same_batches
):
    """parallel=True: each DALI worker process opens the store itself; their downloads land in
    the one cache and their counters reach the loader through the batches."""
    local = batches_of(make_loader(str(s3_dataset.local), **KW))
    loader = remote_loader(s3_dataset, tmp_path / "cache", parallel=True, py_workers=2)
    assert_same_batches(local, batches_of(loader))
    stats = loader.cache_stats()
    assert stats["downloads"] <= s3_dataset.shards  # never one shard twice
    assert len(list((tmp_path / "cache" / "tokens").glob("*.bin"))) == s3_dataset.shards
    loader.close()
