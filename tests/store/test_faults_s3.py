"""Faults of an object store: a server that stops mid-epoch and comes back, an object whose
bytes were altered, and ranks of one node sharing one cache directory."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading

import pytest

from rrweb_dali import make_loader
from rrweb_dali.shards.manifest import read_manifest
from rrweb_dali.store import RetryPolicy

# One batch per DALI iteration and little prefetch, so the loop is only a few batches ahead.
KW = dict(batch_size=16, device="cpu", seed=7, batches_per_call=1, prefetch=1)


def test_a_server_stopped_mid_epoch_and_restarted(
    s3_dataset, s3_server, tmp_path, batches_of, assert_same_batches, caplog
):
    options = dict(shuffle=False, fetch_ahead=1, fetch_threads=1)
    local = batches_of(make_loader(str(s3_dataset.local), **KW, **options))
    # botocore's own retries are cut to one try (with s3fs's they ride out ~9 s of a dead
    # server; s3fs alone about 2 s), so that the loader's retry policy meets the outage here.
    client_once = {"config_kwargs": {"retries": {"max_attempts": 1}}}
    loader = make_loader(
        s3_dataset.url,
        storage_options={**s3_dataset.storage_options, **client_once},
        cache_dir=tmp_path / "cache",
        retry=RetryPolicy(attempts=12, backoff_s=0.1, max_backoff_s=1.0),
        **KW,
        **options,
    )
    got, it = [], iter(loader)
    for _ in range(2):
        got.append({k: v.clone() for k, v in next(it).items()})
    s3_server.stop()
    restart = threading.Timer(4.0, s3_server.start)
    restart.start()
    try:
        with caplog.at_level(logging.WARNING, logger="rrweb_dali.store"):
            got.extend({k: v.clone() for k, v in b.items()} for b in it)
    finally:
        restart.join()
    assert_same_batches(local, got)  # the epoch completes, and no row is wrong
    retried = [r for r in caplog.records if "again in" in r.getMessage()]
    assert retried, "the downloads never met the stopped server"
    assert loader.cache_stats()["downloads"] == s3_dataset.shards
    assert not list((tmp_path / "cache" / "tokens").glob("*.part"))  # no partial shard left


@pytest.mark.parametrize("damage", ["flip", "truncate", "halve"])
def test_an_altered_object_raises_an_error_naming_the_shard(
    s3_dataset, tmp_path, damage, monkeypatch
):
    fs = s3_dataset.bucket.fs()
    key = f"{s3_dataset.url}/shards/shard-000002.bin"
    data = bytearray(fs.cat_file(key))
    if damage == "flip":
        data[len(data) // 2] ^= 0xFF
    elif damage == "truncate":
        del data[-2:]
    else:  # many ranged reads, the later ones starting past the object's end
        monkeypatch.setattr("rrweb_dali.store.transfer.CHUNK", 4096)
        del data[len(data) // 2 :]
    fs.pipe_file(key, bytes(data))
    loader = make_loader(
        s3_dataset.url,
        storage_options=s3_dataset.storage_options,
        cache_dir=tmp_path / "cache",
        **KW,
    )
    match = "SHA-256" if damage == "flip" else "the manifest says"
    with pytest.raises(Exception, match=rf"shard shard-000002: .*{match}"):
        for _ in loader:
            pass
    # The damaged shard never landed in the cache, not even as a partial file (other shards'
    # downloads may still be running: only this one's files are checked).
    key = read_manifest(s3_dataset.local).shards[2].sha256
    tokens = tmp_path / "cache" / "tokens"
    assert not (tokens / f"{key}.bin").exists() and not (tokens / f"{key}.part").exists()
    loader.close()


READ_ONE_EPOCH = """
import json, sys
from rrweb_dali import make_loader
from rrweb_dali.shards.manifest import read_manifest
url, endpoint, cache, out = sys.argv[1:]
loader = make_loader(url, batch_size=16, device="cpu", seed=7, cache_dir=cache,
                     storage_options={"endpoint_url": endpoint, "key": "testing", "secret": "testing"})
index = [b["index"].tolist() for b in loader]
json.dump({"index": index, "stats": loader.cache_stats()}, open(out, "w"))
"""


def test_two_processes_sharing_one_cache_download_each_shard_once(s3_dataset, tmp_path):
    script = tmp_path / "read_one_epoch.py"
    script.write_text(READ_ONE_EPOCH)
    cache = tmp_path / "node-cache"
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(script),
                s3_dataset.url,
                s3_dataset.bucket.server.endpoint,
                str(cache),
                str(tmp_path / f"rank{r}.json"),
            ]
        )
        for r in range(2)
    ]
    assert [p.wait(timeout=240) for p in procs] == [0, 0]
    results = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    downloads = [r["stats"]["downloads"] for r in results]
    assert sum(downloads) == s3_dataset.shards  # once per node, whichever process did it
    assert results[0]["index"] == results[1]["index"]
    for r in results:  # each process met every shard: downloaded, waited for, or found
        assert r["stats"]["hits"] + r["stats"]["misses"] == s3_dataset.shards
    assert len(list((cache / "tokens").glob("*.bin"))) == s3_dataset.shards


def test_a_server_that_stalls_mid_epoch(
    s3_dataset, stalling_proxy, tmp_path, batches_of, assert_same_batches
):
    """Connections that hang (no byte either way) time out and are tried again (a 4 s stall is
    ridden out by the client's own retries, the loader's policy beyond); the epoch completes
    with the same rows once the server answers again."""
    options = dict(shuffle=False, fetch_ahead=1, fetch_threads=1)
    local = batches_of(make_loader(str(s3_dataset.local), **KW, **options))
    quick = {"config_kwargs": {"retries": {"max_attempts": 1}, "read_timeout": 1}}
    storage = {**s3_dataset.storage_options, "endpoint_url": stalling_proxy.endpoint, **quick}
    loader = make_loader(
        s3_dataset.url,
        storage_options=storage,
        cache_dir=tmp_path / "cache",
        retry=RetryPolicy(attempts=12, backoff_s=0.1, max_backoff_s=1.0),
        **KW,
        **options,
    )
    got, it = [], iter(loader)
    for _ in range(2):
        got.append({k: v.clone() for k, v in next(it).items()})
    stalling_proxy.stalled.set()
    resume = threading.Timer(4.0, stalling_proxy.stalled.clear)
    resume.start()
    try:
        got.extend({k: v.clone() for k, v in b.items()} for b in it)
    finally:
        resume.join()
    assert_same_batches(local, got)
    assert stalling_proxy.held > 0, "no download met the stall"
    assert loader.cache_stats()["downloads"] == s3_dataset.shards
    assert not list((tmp_path / "cache" / "tokens").glob("*.part"))
