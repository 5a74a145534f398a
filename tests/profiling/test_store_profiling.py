"""Profiling a loader over an object store, without a server: the run files carry the store's
counters (downloads, bytes, seconds, shard waits, hits and misses) and each pass's share of
them; ``rrweb-dali profile``'s store options are parsed, refused where they would do nothing,
and never written to ``meta.json`` with their credentials."""

from __future__ import annotations

import argparse
import json

import pytest

from rrweb_dali.commands._args import storage_option
from rrweb_dali.profiling import profile
from rrweb_dali.profiling.session import REDACTED, ProfileSettings, redact_options, settings_meta

SHARDS = 3
SHARD_BYTES = 1 << 20


class StoreLoader:
    """A loader's surface over a store: batch ``i`` of an epoch first uses shard ``i``; the
    first epoch downloads every shard (a miss each), later epochs hit the cache."""

    def __init__(self) -> None:
        self.epoch = 0
        self.counts = {"batches": 0, "rows": 0, "tokens": 0, "slots": 0}
        self.store = {
            "kind": "store",
            "hits": 0,
            "misses": 0,
            "evictions": 0,
            "bytes": 0,
            "downloads": 0,
            "download_bytes": 0,
            "download_s": 0.0,
            "wait_s": 0.0,
            "shared": 0,
        }

    def __len__(self) -> int:
        return SHARDS

    def __iter__(self):
        for _ in range(SHARDS):
            s = self.store
            if self.epoch == 0:
                s["misses"] += 1
                s["downloads"] += 1
                s["download_bytes"] += SHARD_BYTES
                s["bytes"] = s["download_bytes"]
                s["download_s"] += 0.25
                s["wait_s"] += 0.125
            else:
                s["hits"] += 1
            for key, n in (("batches", 1), ("rows", 4), ("tokens", 40), ("slots", 64)):
                self.counts[key] += n
            yield {"rows": 4}
        self.epoch += 1

    def stats(self) -> dict:
        return {**self.counts, "epoch": self.epoch, "gather_s": 0.0, "finish_s": 0.0}

    def cache_stats(self) -> dict:
        return {**self.store, "epochs": {}}


def test_store_counters_reach_samples_passes_and_summary(tmp_path):
    loader = StoreLoader()
    with profile(loader, tmp_path, "store", interval_s=60.0) as timed:
        for _ in range(2):
            for _batch in timed:
                pass
    run = timed.run_dir
    recs = [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines()]
    summary = json.loads((run / "summary.json").read_text())
    assert all(r["cache"]["kind"] == "store" for r in recs)
    assert recs[-1]["cache"]["downloads"] == SHARDS
    # Each pass: its own share of the counters, and its kind from them.
    cold, warm = summary["epochs"]
    assert cold["kind"] == "cold" and warm["kind"] == "warm"
    assert cold["store"] == {
        "hits": 0,
        "misses": SHARDS,
        "downloads": SHARDS,
        "download_bytes": SHARDS * SHARD_BYTES,
        "download_s": 0.75,
        "wait_s": 0.375,
    }
    assert warm["store"]["hits"] == SHARDS and warm["store"]["downloads"] == 0
    assert summary["epoch_kinds"]["cold"]["downloads"] == SHARDS
    assert summary["epoch_kinds"]["warm"]["download_bytes"] == 0
    # The summary's store figures: the whole run's.
    store = summary["store"]
    assert store["downloads"] == SHARDS and store["download_mib"] == 3.0
    assert store["download_s"] == 0.75 and store["download_mib_per_s"] == 4.0
    assert store["wait_s"] == 0.375 and store["hit_rate"] == 0.5
    assert summary["totals"]["cache"]["download_bytes"] == SHARDS * SHARD_BYTES


def test_storage_option_values():
    assert storage_option("endpoint_url=http://127.0.0.1:9000") == (
        "endpoint_url",
        "http://127.0.0.1:9000",
    )
    assert storage_option("anon=true") == ("anon", True)
    assert storage_option('client_kwargs={"region_name": "eu-west-1"}') == (
        "client_kwargs",
        {"region_name": "eu-west-1"},
    )
    assert storage_option('key="0123"') == ("key", "0123")  # quoted: kept a string
    assert storage_option("profile=a=b") == ("profile", "a=b")
    for bad in ("no-equals", "=value", " =x"):
        with pytest.raises(argparse.ArgumentTypeError, match="KEY=VALUE"):
            storage_option(bad)


def test_credentials_never_reach_meta():
    options = {
        "endpoint_url": "http://127.0.0.1:9000",
        "key": "AKIA-test",
        "secret": "s3cr3t",
        "client_kwargs": {"aws_secret_access_key": "s3cr3t", "region_name": "x"},
        "token": "t",
    }
    assert redact_options(options) == {
        "endpoint_url": "http://127.0.0.1:9000",
        "key": REDACTED,
        "secret": REDACTED,
        "client_kwargs": {"aws_secret_access_key": REDACTED, "region_name": "x"},
        "token": REDACTED,
    }
    settings = ProfileSettings(
        shards=["s3://b/d"],
        runs_dir="runs",
        loader_options={"storage_options": options, "cache_dir": "c", "fetch_ahead": 4},
    )
    meta = settings_meta(settings)
    text = json.dumps(meta)
    assert "s3cr3t" not in text and "AKIA" not in text
    assert meta["loader_options"]["cache_dir"] == "c" and meta["shards"] == ["s3://b/d"]
    assert settings.loader_options["storage_options"]["secret"] == "s3cr3t"  # not changed


def test_profile_store_options_are_refused_where_they_do_nothing(tmp_path, write_dataset, capsys):
    from rrweb_dali.cli import main

    write_dataset(tmp_path / "ds", n=10, shards=1)
    base = ["profile", str(tmp_path / "ds"), "--out", str(tmp_path / "runs")]
    for extra, named in [
        (["--cache-dir", str(tmp_path / "c")], "--cache-dir"),
        (["--storage-option", "anon=true"], "--storage-option"),
        (["--cache-bytes", "100"], "--cache-bytes"),
    ]:
        assert main(base + extra) == 2
        err = capsys.readouterr().err
        assert named in err and "s3:// datasets" in err and "local" in err
    assert not (tmp_path / "runs").exists()
    assert main(["profile", "s3://", "--out", str(tmp_path / "runs")]) == 2
    assert "no bucket name" in capsys.readouterr().err
    url = ["profile", "s3://bucket/data", "--out", str(tmp_path / "runs")]
    assert main([*url, "--storage-option", "a=1", "--storage-option", "a=2"]) == 2
    assert "given twice" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:  # argparse's own usage error
        main([*url, "--storage-option", "oops"])
    assert exc.value.code == 2 and "KEY=VALUE" in capsys.readouterr().err
