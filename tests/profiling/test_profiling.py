"""Profiling run files: the writer's schema, the meter's arithmetic, and profile runs of the real
loader (CPU-only DALI) whose totals must equal what the loader delivered."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rrweb_dali.profiling import RunWriter, ThroughputMeter, read_jsonl_tail, warmup_end
from rrweb_dali.profiling.recorder import shared_run_id
from rrweb_dali.profiling.runfiles import SCHEMA_VERSION, STAGES, rank_files
from rrweb_dali.profiling.system import git_revision, rss_bytes
from rrweb_dali.shards.format import ShardWriter
from rrweb_dali.shards.manifest import Manifest, write_manifest

SESSIONS_PER_SHARD = (23, 18)


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """Two shards of random sessions (lengths 1..120); returns (root, sessions, tokens)."""
    root = tmp_path_factory.mktemp("dataset")
    rng = np.random.default_rng(7)
    infos, tokens = [], 0
    for s, n in enumerate(SESSIONS_PER_SHARD):
        w = ShardWriter(root / "shards", f"shard-{s:06d}")
        fid = w.add_file(f"sessions/{s}.json")
        for i in range(n):
            length = int(rng.integers(1, 121))
            tokens += length
            w.add(rng.integers(1, 5000, size=length, dtype=np.uint16), fid, window=i)
        infos.append(w.close())
    write_manifest(root, Manifest(tokenizer={"version": 1}, shards=infos))
    return root, sum(SESSIONS_PER_SHARD), tokens


# ---- run files --------------------------------------------------------------------------------


def test_run_writer_files_and_schema(tmp_path):
    clock = FakeClock()
    w = RunWriter(tmp_path, "my run/1", {"kind": "bench", "x": 1}, clock=clock)
    assert w.path.parent == tmp_path and "/" not in w.run_id and w.run_id.endswith("my-run-1")
    meta = json.loads((w.path / "meta.json").read_text())
    assert meta["schema_version"] == SCHEMA_VERSION and meta["status"] == "running"
    assert meta["run_id"] == w.run_id and meta["x"] == 1 and meta["world_size"] == 1
    clock.now += 0.5
    w.sample({"batches": 1})
    w.sample({"batches": 2, "t": 0.2})  # behind the previous sample: held at 0.5
    clock.now += 0.75
    w.sample({"batches": 3})
    w.finish({"totals": {"batches": 3}})
    recs = _lines(w.path / "samples.jsonl")
    assert [r["t"] for r in recs] == [0.5, 0.5, 1.25]
    assert all(r["rank"] == 0 and r["wall"] > 0 for r in recs)
    summary = json.loads((w.path / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["duration_s"] == 1.25
    assert summary["totals"] == {"batches": 3}
    # A second writer with the same name gets its own folder.
    other = RunWriter(tmp_path, "my run/1", clock=clock)
    assert other.path != w.path
    other.finish()


def test_run_writer_records_failure(tmp_path):
    with pytest.raises(ZeroDivisionError), RunWriter(tmp_path, "boom") as w:
        w.sample({"batches": 0})
        1 / 0  # noqa: B018
    summary = json.loads(w.summary_path.read_text())
    assert summary["status"] == "failed" and "ZeroDivisionError" in summary["error"]
    with pytest.raises(ValueError, match="status"):
        RunWriter(tmp_path, "x").finish(status="great")


def test_ranks_write_their_own_files(tmp_path, monkeypatch):
    w1 = RunWriter(tmp_path, "job", run_id="job-abc", rank=1, world_size=2)
    w0 = RunWriter(tmp_path, "job", {"a": 1}, run_id="job-abc", rank=0, world_size=2)
    assert w0.path == w1.path
    for w in (w0, w1):
        w.sample({"batches": w.rank})
        w.finish()
    names = sorted(p.name for p in w0.path.iterdir())
    assert names == [
        "meta.json",
        "samples.rank0.jsonl",
        "samples.rank1.jsonl",
        "summary.rank0.json",
        "summary.rank1.json",
    ]
    assert sorted(rank_files(w0.path)) == [0, 1]
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "9f0c2a3b-1111")
    assert shared_run_id("job", 2) == "job-9f0c2a3b-111"
    assert shared_run_id("job", 1) is None
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "none")
    with pytest.raises(ValueError, match="run_id"):
        shared_run_id("job", 2)


def test_jsonl_tail_leaves_a_half_written_line(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_bytes(b'{"t": 1}\nnot json\n[1, 2]\n{"t": 2}\n{"t": 3, "ba')
    tail = read_jsonl_tail(path)
    assert [r["t"] for r in tail.records] == [1, 2]
    assert tail.bad_lines == 2 and tail.partial
    assert tail.offset == path.read_bytes().rindex(b"\n") + 1
    with open(path, "ab") as fh:
        fh.write(b'tches": 4}\n{"t": 4}\n')
    tail2 = read_jsonl_tail(path, tail.offset)
    assert tail2.records == [{"t": 3, "batches": 4}, {"t": 4}] and not tail2.partial
    assert tail2.offset == path.stat().st_size
    assert read_jsonl_tail(path, tail2.offset).records == []
    assert read_jsonl_tail(tmp_path / "missing.jsonl").records == []


def test_throughput_meter_arithmetic(tmp_path):
    clock = FakeClock()
    w = RunWriter(tmp_path, "bench-variant", clock=clock)
    meter = ThroughputMeter(w, interval_s=1.0, memory=False)
    batches = [(4, 30, 40), (4, 10, 40), (4, 20, 40), (4, 40, 40), (4, 25, 40), (4, 15, 40)]
    for rows, tokens, slots in meter.wrap(batches):
        clock.now += 0.5
        meter.batch(rows, tokens, slots, stages={"read": 0.1})
    summary = meter.finish()
    recs = _lines(w.path / "samples.jsonl")
    ts = [r["t"] for r in recs]
    assert ts == sorted(ts) and ts[0] == 0.0 and ts[-1] == 3.0
    assert [r["batches"] for r in recs] == [0, 2, 4, 6, 6]
    assert recs[1]["samples_per_s"] == 8.0 and recs[1]["padding_efficiency"] == 0.5
    assert recs[2]["tokens_per_s"] == 60.0 and recs[2]["padding_efficiency"] == 0.75
    assert recs[-1]["samples_per_s"] is None  # the zero-length final interval has no rate
    assert recs[1]["stages"] == {"read": 0.1, "host_copy": None, "h2d": None, "pad": None}
    totals = summary["totals"]
    assert (totals["batches"], totals["rows"], totals["tokens"], totals["slots"]) == (
        6,
        24,
        140,
        240,
    )
    assert summary["rates"]["samples_per_s"] == 8.0
    assert summary["rates"]["padding_efficiency"] == round(140 / 240, 6)
    assert summary["warmup_end_s"] == 1.0 == warmup_end(recs)
    # Steady state: the intervals after the first batch had arrived (t = 2 and t = 3).
    assert summary["median"]["samples_per_s"] == 8.0
    assert summary["median"]["tokens_per_s"] == 50.0 and summary["p95"]["tokens_per_s"] == 59.0
    assert 0 <= summary["rates"]["wait_share"] < 0.01  # the list yields at once
    saved = json.loads((w.path / "summary.json").read_text())
    assert saved["status"] == "finished" and saved["median"] == summary["median"]


def test_meter_unknown_tokens_give_null_rates(tmp_path):
    clock = FakeClock()
    meter = ThroughputMeter(RunWriter(tmp_path, "v", clock=clock), interval_s=1.0, memory=False)
    for _ in range(3):
        clock.now += 1.0
        meter.batch(8)
    summary = meter.finish()
    assert summary["totals"]["rows"] == 24 and summary["totals"]["tokens"] is None
    assert summary["rates"]["tokens_per_s"] is None and summary["median"]["samples_per_s"] == 8.0


def test_system_readings(tmp_path):
    assert rss_bytes() > 1 << 20
    assert git_revision(tmp_path) is None  # not a git checkout


# ---- the real loader (DALI, CPU only) ------------------------------------------------------------


def test_loader_stats_is_safe_inside_the_loop(dataset):
    """The profiler reads ``stats()`` while the loop runs: reading it must not move the loader."""
    from rrweb_dali.loader import make_loader

    root, sessions, _ = dataset
    with make_loader(str(root), batch_size=4, device="cpu", seed=1) as loader:
        seen = 0
        for _ in range(2):
            for batch in loader:
                seen += int(batch["lengths"].numel())
                loader.stats()
        # Every session once per epoch: the last batch is short (world size 1).
        assert seen == 2 * sessions


def test_profile_command_totals_match_the_loader(dataset, tmp_path):
    from rrweb_dali.cli import main

    root, sessions, tokens = dataset
    runs = tmp_path / "runs"
    argv = ["profile", str(root), "--out", str(runs), "--device", "cpu", "--batch-size", "4"]
    argv += [
        "--epochs",
        "2",
        "--interval",
        "0.05",
        "--step-ms",
        "10",  # 22 steps of 10 ms: the run lasts over four sampling intervals on any machine
        "--name",
        "cli",
        "--no-progress",
    ]
    assert main(argv) == 0
    (run,) = runs.iterdir()
    assert sorted(p.name for p in run.iterdir()) == ["meta.json", "samples.jsonl", "summary.json"]
    meta = json.loads((run / "meta.json").read_text())
    assert meta["schema_version"] == SCHEMA_VERSION and meta["status"] == "running"
    assert meta["kind"] == "profile" and meta["name"] == "cli" and "git_revision" in meta
    assert meta["host"]["cpu_count"] >= 1 and "numpy" in meta["versions"]
    assert meta["dataset"][0]["sessions"] == sessions and meta["dataset"][0]["tokens"] == tokens
    assert meta["settings"]["epochs"] == 2 and meta["step"] == {"kind": "sleep", "ms": 10.0}
    assert meta["loader"]["plan"]["batch_size"] == 4
    assert meta["stage_notes"]["host_copy"] is None and meta["stage_notes"]["h2d"] is None

    recs = _lines(run / "samples.jsonl")
    assert len(recs) >= 3
    for key in ("t", "batches", "rows", "tokens", "slots", "loop_wait_s"):
        values = [r[key] for r in recs]
        assert values == sorted(values), key
    assert all(r["gpu_allocated_bytes"] is None and r["rss_bytes"] > 0 for r in recs)
    assert all(r["stages"]["h2d"] is None and r["stages"]["host_copy"] is None for r in recs)
    assert all("cache" not in r for r in recs)  # this loader has no cache

    summary = json.loads((run / "summary.json").read_text())
    stats = summary["loader_stats"]
    totals = summary["totals"]
    assert summary["status"] == "finished"
    batches_per_epoch = -(-sessions // 4)
    assert totals["batches"] == stats["batches"] == 2 * batches_per_epoch
    # Every session once per epoch, the last batch short.
    assert totals["rows"] == stats["rows"] == 2 * sessions
    assert totals["tokens"] == stats["tokens"] >= 2 * tokens
    assert totals["slots"] == stats["slots"] >= totals["tokens"]
    assert totals["stages"]["read"] == round(stats["gather_s"], 6)
    assert totals["stages"]["pad"] == round(stats["finish_s"], 6)
    assert {k: recs[-1][k] for k in ("batches", "rows", "tokens")} == {
        k: totals[k] for k in ("batches", "rows", "tokens")
    }
    assert summary["rates"]["padding_efficiency"] == round(stats["tokens"] / stats["slots"], 6)
    assert 0 < totals["loop_wait_s"] < summary["duration_s"]
    assert set(summary["median"]) == set(summary["p95"]) >= {"samples_per_s", "tokens_per_s"}


def test_profile_hook_counts_what_the_loop_saw(dataset, tmp_path):
    from rrweb_dali.loader import make_loader
    from rrweb_dali.profiling import profile

    root, sessions, tokens = dataset
    rows = toks = 0
    with make_loader(str(root), batch_size=5, device="cpu") as loader:
        with profile(loader, tmp_path, "hook", interval_s=0.02, meta={"note": "t"}) as timed:
            assert len(timed) == len(loader) and timed.batch_size == 5
            for _ in range(2):
                for batch in timed:
                    rows += int(batch["lengths"].numel())
                    toks += int(batch["lengths"].sum())
        summary = timed.profiler.summary
        stats = loader.stats()
    assert rows >= 2 * sessions and toks >= 2 * tokens
    assert summary["totals"]["rows"] == stats["rows"] == rows
    assert summary["totals"]["tokens"] == stats["tokens"] == toks
    assert summary["totals"]["batches"] == stats["batches"]
    meta = json.loads((timed.run_dir / "meta.json").read_text())
    assert (
        meta["kind"] == "train" and meta["note"] == "t" and set(meta["stage_notes"]) >= set(STAGES)
    )
    saved = json.loads((timed.run_dir / "summary.json").read_text())
    assert saved["status"] == "finished" and saved["totals"] == summary["totals"]


def test_profile_hook_marks_a_failed_loop(dataset, tmp_path):
    from rrweb_dali.loader import make_loader
    from rrweb_dali.profiling import ProfiledLoader, profile

    root, _, _ = dataset

    def train(loader) -> ProfiledLoader:
        with profile(loader, tmp_path, "fails", interval_s=0.05) as timed:
            for i, _batch in enumerate(timed):
                if i == 2:
                    raise RuntimeError("step blew up")
        return timed

    with make_loader(str(root), batch_size=4, device="cpu") as loader:
        with pytest.raises(RuntimeError, match="step blew up"):
            train(loader)
        (run_dir,) = tmp_path.iterdir()
    saved = json.loads((run_dir / "summary.json").read_text())
    assert saved["status"] == "failed" and "step blew up" in saved["error"]
    assert saved["totals"]["batches"] == 3


def test_profile_for_a_time_limit(dataset, tmp_path):
    from rrweb_dali.profiling.session import ProfileSettings, run_profile

    root = dataset[0]
    calls = []
    settings = ProfileSettings(
        shards=[str(root)], runs_dir=str(tmp_path), batch_size=8, seconds=0.3, step_ms=10
    )
    summary = run_profile(settings, lambda done, elapsed, planned: calls.append((done, planned)))
    run_dir = Path(summary["run_dir"])
    assert run_dir.parent == tmp_path
    saved = json.loads((run_dir / "summary.json").read_text())
    assert saved["status"] == "finished"
    assert calls and calls[-1][1] is None and calls[-1][0] == saved["totals"]["batches"]
    # Time-bound: it stopped on time, not after a fixed number of epochs.
    assert saved["totals"]["batches"] == len(calls)
    with pytest.raises(ValueError, match="not both"):
        ProfileSettings(shards=[], runs_dir=".", seconds=1, epochs=1)
