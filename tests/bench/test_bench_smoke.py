"""Smoke test of the loader benches: ``bench/loader.py`` and ``bench/train.py`` run end to end as
scripts (the way a user runs them) on a tiny dataset, and their JSON says what it should.

No speed is asserted (that is the benches' job); only that every measurement produced positive
rates, that the profile runs were written, that training ran the asked steps with a finite loss,
and that a run resumed from its checkpoint continues at the next batch.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rrweb_dali.shards.format import ShardWriter
from rrweb_dali.shards.manifest import Manifest, write_manifest
from rrweb_dali.tokenizer import Tokenizer

REPO = Path(__file__).resolve().parents[2]
BS = 8


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    """Two shards of 120 sequences (lengths 1..300) of valid token ids."""
    root = tmp_path_factory.mktemp("bench-shards")
    rng = np.random.default_rng(3)
    vocab = Tokenizer().vocab_size
    infos = []
    for s in range(2):
        writer = ShardWriter(root / "shards", f"shard-{s:06d}")
        fid = writer.add_file(f"f{s}.json")
        for length in rng.integers(1, 301, size=60):
            writer.add(rng.integers(1, vocab, size=int(length), dtype=np.uint16), fid)
        infos.append(writer.close())
    write_manifest(root, Manifest(tokenizer={"name": "smoke"}, shards=infos))
    return root


def run_script(name: str, *args) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(REPO / "bench" / name), "--device", "cpu", *map(str, args)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def test_loader_bench(shards, tmp_path):
    out, runs = tmp_path / "loader.json", tmp_path / "runs"
    proc = run_script(
        "loader.py",
        *("--shards", shards, "--seconds", 0.3, "--batch-sizes", BS, "--steps-ms", 2),
        *("--workers", 0, "--variants", "padded,dataloader,batched"),
        *("--json", out, "--runs", runs),
    )
    report = json.loads(out.read_text())
    assert {"machine", "settings", "datasets"} <= report.keys()
    assert report["machine"]["cpu_count"] >= 1 and report["machine"]["torch"]
    (data,) = report["datasets"]
    assert data["stats"]["sequences"] == 120
    rows = data["throughput"]
    assert {r["variant"] for r in rows} == {"dali padded", "dataloader w=0", "batched w=0"}
    for r in rows:
        assert "error" not in r, r
        assert r["bs"] == BS and r["batches"] > 0
        assert r["samples_per_s"] > 0 and r["tokens_per_s"] > 0
        assert 0 < r["padding_efficiency"] <= 1
    assert data["best"] == {
        "dataloader": {"8": "torch DataLoader w=0"},
        "batched": {"8": "batched DataLoader w=0"},
    }
    waits = data["wait"]
    assert {w["variant"] for w in waits} == {r["variant"] for r in rows}
    for w in waits:
        assert w["step_ms"] == 2 and 0 <= w["wait_share"] <= 1 and w["step_ms_actual"] > 0
    ratio = data["ratios"][str(BS)]["dali padded"]
    assert ratio["x_dataloader"] > 0 and ratio["speedup_goal"] == 3.0
    assert isinstance(ratio["speedup_goal_met"], bool)
    # One profile run per measurement, each finished, named after its variant.
    summaries = [json.loads(p.read_text()) for p in runs.glob("*/summary.json")]
    assert len(summaries) == len(rows) + len(waits)
    assert all(s["status"] == "finished" and s["totals"]["batches"] > 0 for s in summaries)
    assert "x DataLoader" in proc.stdout and "wait share" in proc.stdout


def test_train_example_and_resume(shards, tmp_path):
    ckpt, first, second = tmp_path / "ckpt.pt", tmp_path / "a.json", tmp_path / "b.json"
    tiny = ("--layers", 1, "--width", 32, "--heads", 2, "--batch-size", BS, "--seq-len", 64)
    run_script("train.py", "--shards", shards, *tiny, "--steps", 5, "--ckpt", ckpt, "--json", first)
    a = json.loads(first.read_text())
    assert a["steps"] == 5 and a["first_step"] == 1
    assert a["tokens_per_s"] > 0 and 0 <= a["data_wait_share"] <= 1
    assert math.isfinite(a["loss_start"]) and math.isfinite(a["loss_end"])
    assert a["data_position"]["consumed"] == 5 * BS
    # Resumed from the checkpoint: steps 6..8, the data continuing after the 5th batch.
    run_script(
        "train.py", "--shards", shards, *tiny, "--steps", 8, "--resume", ckpt, "--json", second
    )
    b = json.loads(second.read_text())
    assert b["steps"] == 3 and b["first_step"] == 6
    assert b["data_position"]["consumed"] == 8 * BS


@pytest.mark.slow
def test_train_hf_padded_against_packed(shards, tmp_path):
    """``train.py --hf``: both runs train on the same budget of real tokens; packing fills its
    rows, so it needs fewer steps than the padded run."""
    pytest.importorskip("transformers", reason="the dev extra installs transformers")
    out = tmp_path / "hf.json"
    tiny = ("--layers", 1, "--width", 32, "--heads", 2, "--batch-size", BS, "--seq-len", 64)
    proc = run_script("train.py", "--shards", shards, *tiny, "--steps", 6, "--hf", "--json", out)
    report = json.loads(out.read_text())
    padded, packed = report["padded"], report["packed"]
    for run in (padded, packed):
        assert run["tokens"] >= 6 * BS * 64 and run["tokens_per_s"] > 0
        assert math.isfinite(run["loss_end"]) and math.isfinite(run["eval_loss"])
    assert packed["steps"] == 6 and padded["steps"] > packed["steps"]
    assert packed["padding_share"] < 0.05 < padded["padding_share"]
    assert "padded" in proc.stdout and "packed" in proc.stdout


@pytest.mark.slow
def test_hostile_bench_quick(tmp_path):
    """``bench/hostile.py --quick`` reads every hostile input in a subprocess and says so."""
    from rrweb_dali.errors import REASONS
    from rrweb_dali.synth.hostile import shapes

    out = tmp_path / "hostile.json"
    cmd = [sys.executable, str(REPO / "bench" / "hostile.py"), "--quick", "--json", str(out)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"hostile.py failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    report = json.loads(out.read_text())
    assert report["settings"]["quick"] and report["machine"]["cpu_count"] >= 1
    rows = {r["name"]: r for r in report["rows"]}
    assert set(shapes(report["settings"]["scale"])) <= rows.keys()
    assert any(name.startswith("conftest:") for name in rows)
    for name, r in rows.items():
        assert r["outcome"] in REASONS | {"loaded"}, (name, r)  # never a crash or a timeout
        assert r["seconds"] > 0 and r["peak_rss"] >= r["baseline_rss"] > 0, name
        assert r["decompressed_bytes"] >= 0 and r["disk_bytes"] >= 0, name
        for goal in ("rss_ok", "speed_ok", "outcome_ok", "pass"):
            assert isinstance(r[goal], bool), (name, goal)
        if r["expect"] is not None:
            assert r["outcome_ok"], (name, r)
    assert "goals:" in proc.stdout and "PASS" in proc.stdout
