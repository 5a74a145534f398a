"""The training-loop hook in raw mode: everything the run depends on is in meta.json (sources,
cache options), the worker processes' memory is counted, and passes are cold then warm."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    from rrweb_dali.cli import main

    out = tmp_path_factory.mktemp("raw") / "sessions"
    assert main(["synth", "--out", str(out), "-n", "24", "--no-progress"]) == 0
    return out


def _run(recordings, runs, cache_dir, cache_bytes: int, parallel: bool) -> tuple[dict, dict, list]:
    from rrweb_dali.loader import make_loader

    loader = make_loader(
        raw=str(recordings),
        batch_size=4,
        device="cpu",
        max_length=512,
        cache_dir=str(cache_dir),
        cache_bytes=cache_bytes,
        parallel=parallel,
        py_workers=2,
    )
    with loader, loader.profile(runs, f"raw-{cache_bytes}", interval_s=0.05) as timed:
        for _ in range(2):
            for _batch in timed:
                pass
    run = timed.run_dir
    meta = json.loads((run / "meta.json").read_text())
    summary = json.loads((run / "summary.json").read_text())
    recs = [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines()]
    return meta, summary, recs


def test_raw_hook_records_options_workers_and_cold_warm(recordings, tmp_path):
    from rrweb_dali.dashboard.config import config_diff

    runs = tmp_path / "runs"
    meta_a, summary_a, recs_a = _run(recordings, runs, tmp_path / "c1", 1 << 30, parallel=True)
    meta_b, _, _ = _run(recordings, runs, tmp_path / "c2", 1 << 28, parallel=False)
    (dataset,) = meta_a["dataset"]
    assert dataset["kind"] == "raw" and dataset["files"] == 24
    assert dataset["sources"] == [str(recordings)] and dataset["cache_bytes"] == 1 << 30
    assert dataset["max_tokens"] == 65536 and dataset["cache_dir"] == str(tmp_path / "c1")
    # Two runs that differ in cache options (and where their cache lives) say so.
    diff = config_diff({"a": meta_a, "b": meta_b})
    assert {"dataset.0.cache_bytes", "dataset.0.cache_dir"} <= set(diff.index)
    # Worker processes are counted: DALI's py_workers hold memory of their own.
    assert max(r["workers"] for r in recs_a) >= 2
    assert max(r["workers_rss_bytes"] for r in recs_a) > 0
    assert all(r["loader_rss_bytes"] == r["rss_bytes"] + r["workers_rss_bytes"] for r in recs_a)
    assert summary_a["peak"]["loader_rss_bytes"] > summary_a["peak"]["rss_bytes"]
    # The first pass tokenized (cold), the second read the cache (warm).
    assert [e["kind"] for e in summary_a["epochs"]] == ["cold", "warm"]
    assert summary_a["epoch_kinds"]["cold"]["rows"] == summary_a["epoch_kinds"]["warm"]["rows"]
    assert summary_a["verdict"] in ("input-bound", "balanced", "compute-bound")
