"""``rrweb-dali profile s3://...`` against a real S3 server on loopback: the run files record the
object store's downloads, their bytes and time, and the shard cache's hits and misses, so the
first epoch reads as downloads of every shard and the second as hits in the cache."""

from __future__ import annotations

import json

import pytest

from rrweb_dali.shards.manifest import read_manifest
from rrweb_dali.store import Store
from rrweb_dali.store.upload import upload_dataset

SHARDS = 3


@pytest.fixture
def remote_dataset(s3_bucket, write_dataset, tmp_path):
    """A small dataset of :data:`SHARDS` shards uploaded to a fresh bucket: ``(url, manifest)``."""
    local = tmp_path / "local"
    write_dataset(local, n=120, shards=SHARDS, seed=3, max_len=400)
    url = f"{s3_bucket.url}/data"
    upload_dataset(local, Store(url, s3_bucket.storage_options))
    return url, read_manifest(local)


def _lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_profile_records_downloads_then_cache_hits(remote_dataset, s3_bucket, tmp_path, capsys):
    from rrweb_dali.cli import main

    url, manifest = remote_dataset
    runs, cache = tmp_path / "runs", tmp_path / "cache"
    argv = ["profile", url, "--out", str(runs), "--device", "cpu", "--batch-size", "8"]
    argv += ["--epochs", "2", "--interval", "0.05", "--no-progress", "--cache-dir", str(cache)]
    argv += ["--storage-option", f"endpoint_url={s3_bucket.storage_options['endpoint_url']}"]
    argv += ["--storage-option", "key=testing", "--storage-option", "secret=testing"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    (run,) = runs.iterdir()
    summary = json.loads((run / "summary.json").read_text())
    meta = json.loads((run / "meta.json").read_text())
    recs = _lines(run / "samples.jsonl")
    bin_bytes = sum(s.bin_bytes for s in manifest.shards)

    # Every sample carries the store's cache object; its counters only grow.
    caches = [r["cache"] for r in recs]
    assert all(c["kind"] == "store" for c in caches)
    for key in ("downloads", "download_bytes", "download_s", "hits", "misses"):
        values = [c[key] for c in caches]
        assert values == sorted(values), key
    last = caches[-1]
    assert last["downloads"] == SHARDS and last["download_bytes"] == bin_bytes
    assert last["download_s"] > 0 and last["evictions"] == 0
    # Per epoch (the store's own count): the first downloads every shard, the second hits.
    epochs = last["epochs"]
    assert epochs["0"]["downloads"] == SHARDS and epochs["0"]["kind"] == "cold"
    assert epochs["1"] == {"hits": SHARDS, "misses": 0, "downloads": 0, "kind": "warm"}
    # The passes the profiler timed say the same.
    first, second = summary["epochs"]
    assert first["kind"] == "cold" and first["store"]["downloads"] == SHARDS
    assert second["kind"] == "warm" and second["store"]["downloads"] == 0
    assert second["store"]["hits"] == SHARDS and second["store"]["misses"] == 0
    # The summary's store figures are the totals.
    store = summary["store"]
    assert store["downloads"] == SHARDS and store["download_bytes"] == bin_bytes
    assert store["hits"] + store["misses"] == 2 * SHARDS and store["hits"] >= SHARDS
    assert store["download_mib_per_s"] > 0
    assert summary["epoch_kinds"]["cold"]["downloads"] == SHARDS
    # meta.json: the dataset from the manifest the loader read, and no credentials.
    (dataset,) = meta["dataset"]
    assert dataset["remote"] and dataset["shards"] == SHARDS and dataset["sessions"] == 120
    options = meta["settings"]["loader_options"]["storage_options"]
    assert options["endpoint_url"].startswith("http://127.0.0.1:")
    assert options["key"] == options["secret"] == "<redacted>"
    assert "testing" not in (run / "meta.json").read_text()
    # What the command printed: the same figures.
    printed_rows = {
        ln.split("  ", 1)[0]: ln.split("  ", 1)[-1].strip() for ln in printed.splitlines()
    }
    assert printed_rows["shards downloaded"].startswith(f"{SHARDS} (")
    hits, misses = printed_rows["shard cache hits/misses"].split("/")
    assert (int(hits), int(misses)) == (store["hits"], store["misses"])
    # The dashboard's cards read the same run files.
    from rrweb_dali.dashboard import data
    from rrweb_dali.dashboard import runs as views

    info = data.inspect_run(runs.resolve(), run)
    cards = views.store_kpis(data.run_samples({}, info))
    assert cards["downloads"] == SHARDS and cards["download_mib"] == bin_bytes / (1 << 20)
    assert cards["hits"] >= SHARDS
