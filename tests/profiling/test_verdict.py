"""The verdict and its advice on constructed runs (exact samples, so every figure is known), and
on real ``rrweb-dali profile`` runs with no step (input-bound) and a 50 ms step (compute-bound)."""

from __future__ import annotations

import json

import pytest

from rrweb_dali.profiling.figures import (
    epoch_figures,
    steady_figures,
    store_totals,
    warmup_figures,
)
from rrweb_dali.profiling.verdict import COMPUTE_BOUND, INPUT_BOUND, assess, classify


def loader_meta(
    *,
    source: str = "shards",
    batch_size: int = 32,
    batches_per_call: int = 16,
    bucketing: bool = False,
    max_length: int | None = None,
    parallel: bool = False,
    py_workers: int = 2,
    cpus: int = 8,
    cache_dir: str | None = None,
) -> dict:
    """A meta.json as the hook writes it, with the options the advice reads."""
    return {
        "host": {"cpu_count": cpus},
        "loader": {
            "plan": {
                "batch_size": batch_size,
                "bucketing": bucketing,
                "max_length": max_length,
                "pad_to": None,
                "packing": None,
            },
            "transport": {"batches_per_call": batches_per_call},
            "pipeline": {"prefetch": 2, "parallel": parallel, "py_workers": py_workers},
            "source": {"kind": source, "cache_dir": cache_dir},
        },
    }


def samples(
    *,
    n: int = 11,
    dt: float = 1.0,
    batches_per_s: float = 100.0,
    rows_per_batch: int = 32,
    width: int = 512,
    efficiency: float = 0.95,
    wait: float,
    read_share: float = 0.1,
    pad_share: float = 0.05,
    tokenize_share: float | None = None,
    shard_wait_share: float | None = None,
    warmup_s: float = 2.0,
) -> list[dict]:
    """Sample lines: nothing until ``warmup_s``, then a steady ``batches_per_s``; the loop waits
    ``wait`` of the time; read and pad take these shares of the wall time per batch. With
    ``shard_wait_share`` the data come from an object store: one 8 MiB shard downloaded (in
    0.5 s, a miss) every second, the source waiting that share of the time for them."""
    out = []
    for i in range(n):
        t = i * dt
        steady = max(0.0, t - warmup_s)
        batches = round(batches_per_s * steady) + (1 if t >= warmup_s else 0)
        rows = rows_per_batch * batches
        rec = {
            "t": t,
            "batches": batches,
            "rows": rows,
            "slots": rows * width,
            "tokens": int(rows * width * efficiency),
            "loop_wait_s": warmup_s if t >= warmup_s else t,
            "stages": {"read": read_share * steady, "pad": pad_share * steady},
        }
        rec["loop_wait_s"] += wait * steady
        if tokenize_share is not None:
            rec["cache"] = {
                "tokenize_s": tokenize_share * steady,
                "cached_read_s": 0.0,
                "misses": rows,
                "hits": 0,
            }
            rec["stages"]["read"] += tokenize_share * steady
        if shard_wait_share is not None:
            shards = int(t)
            rec["cache"] = {
                "kind": "store",
                "hits": 2 * shards,
                "misses": shards,
                "evictions": 0,
                "bytes": shards << 23,
                "downloads": shards,
                "download_bytes": shards << 23,
                "download_s": 0.5 * shards,
                "wait_s": shard_wait_share * steady,
                "shared": 0,
                "epochs": {"0": {"hits": 2 * shards, "misses": shards, "downloads": shards}},
            }
        out.append(rec)
    return out


def test_figures_of_the_steady_state_leave_the_warmup_out():
    recs = samples(wait=0.5)
    fig = steady_figures(recs)
    assert fig["window"] == "steady" and fig["t0"] == 2.0 and fig["seconds"] == 8.0
    assert fig["batches"] == 800 and fig["samples_per_s"] == 3200.0
    assert fig["wait_share"] == pytest.approx(0.5)
    assert fig["padding_efficiency"] == pytest.approx(0.95, abs=1e-3)
    assert fig["row_width"] == 512.0
    ms = fig["ms_per_batch"]
    assert ms["wait"] == pytest.approx(5.0) and ms["step"] == pytest.approx(5.0)
    assert ms["gather"] == pytest.approx(1.0) and ms["pad"] == pytest.approx(0.5)
    assert ms["dali"] is None and ms["tokenize"] is None  # not measured, not zero
    assert warmup_figures(recs) == {"seconds": 2.0, "batches": 1, "rows": 32}
    # Too short for a steady interval: the whole run, said so.
    short = steady_figures(recs[:3])
    assert short["window"] == "whole run" and short["t0"] == 0.0
    assert steady_figures(recs[:1]) is None


def test_classify_thresholds():
    assert classify(INPUT_BOUND) == "input-bound"
    assert classify(COMPUTE_BOUND) == "compute-bound"
    assert classify((INPUT_BOUND + COMPUTE_BOUND) / 2) == "balanced"
    assert classify(None) is None


def test_input_bound_gather_in_the_training_process():
    out = assess(loader_meta(), samples(wait=0.8, read_share=0.7))
    assert out["verdict"] == "input-bound" and "80%" in out["verdict_reason"]
    first = out["advice"][0]
    assert first["option"] == "parallel" and "py_workers=8" in first["expected"]
    assert "7.00 of the 10.00 ms" in first["why"]
    # The same run already parallel: that advice is checked against the options, not repeated.
    options = [a["option"] for a in assess(loader_meta(parallel=True), samples(wait=0.8))["advice"]]
    assert "parallel" not in options


def test_compute_bound_keeps_the_loader():
    out = assess(loader_meta(), samples(wait=0.01))
    assert out["verdict"] == "compute-bound"
    (only,) = out["advice"]
    assert only["option"] is None and "1%" in only["why"]


def test_padding_bound_advises_bucketing_then_packing():
    out = assess(loader_meta(), samples(wait=0.1, efficiency=0.5))
    assert out["verdict"] == "balanced"
    first = out["advice"][0]
    assert first["option"] == "bucketing" and "0.50" in first["why"]
    out = assess(loader_meta(bucketing=True), samples(wait=0.1, efficiency=0.5))
    assert out["advice"][0]["option"] == "packing"
    assert assess(loader_meta(), samples(wait=0.1, efficiency=0.9))["advice"] == []


def test_cold_cache_advises_warm():
    epochs = [
        {"epoch": 0, "seconds": 9.0, "rows": 900, "tokens": 9000, "kind": "cold"},
        {"epoch": 1, "seconds": 0.5, "rows": 900, "tokens": 9000, "kind": "warm"},
        {"epoch": 2, "seconds": 0.5, "rows": 900, "tokens": 9000, "kind": "warm"},
    ]
    kinds = epoch_figures(epochs)
    assert kinds["cold"]["samples_per_s"] == 100.0 and kinds["warm"]["samples_per_s"] == 1800.0
    meta = loader_meta(source="raw", parallel=True, py_workers=8, cache_dir="cache")
    recs = samples(wait=0.6, read_share=0.1, tokenize_share=1.2)
    out = assess(meta, recs, {"epochs": epochs})
    assert out["verdict"] == "input-bound"
    first = out["advice"][0]
    assert first["option"] == "rrweb-dali warm" and "90%" in first["why"]
    assert "1,800 samples/s" in first["expected"]
    # Without a cache_dir the advice says it needs one; with fewer workers than CPUs the
    # tokenizing advice follows.
    out = assess(loader_meta(source="raw", parallel=True, py_workers=2), recs, {"epochs": epochs})
    assert [a["option"] for a in out["advice"][:2]] == [
        "rrweb-dali warm (with cache_dir)",
        "py_workers",
    ]
    assert "py_workers=8" in out["advice"][1]["expected"]
    # Warm epochs dominating: no warm advice.
    warm_heavy = [dict(e, seconds=0.5 if e["kind"] == "cold" else 9.0) for e in epochs]
    out = assess(meta, recs, {"epochs": warm_heavy})
    assert "rrweb-dali warm" not in [a["option"] for a in out["advice"]]


def test_fixed_cost_bound_advises_batches_per_call_then_prefetch():
    recs = samples(wait=0.7, read_share=0.1, pad_share=0.05)
    out = assess(loader_meta(batch_size=8, batches_per_call=1), recs)
    assert out["verdict"] == "input-bound"
    first = out["advice"][0]
    assert first["option"] == "batches_per_call" and "batches_per_call=64" in first["expected"]
    assert "15%" in first["why"]
    out = assess(loader_meta(batch_size=64, batches_per_call=8), recs)
    assert out["advice"][0]["option"] == "prefetch"


def test_long_rows_advise_max_length():
    recs = samples(wait=0.6, width=16384, read_share=0.3, pad_share=0.3)
    out = assess(loader_meta(), recs)
    assert out["advice"][0]["option"] == "max_length" and "16,384" in out["advice"][0]["why"]
    assert "max_length=2048" in out["advice"][0]["expected"]
    out = assess(loader_meta(max_length=2048), recs)
    assert "max_length" not in [a["option"] for a in out["advice"]]


def test_store_figures_and_the_shard_waits_part():
    recs = samples(wait=0.6, shard_wait_share=0.4)
    fig = steady_figures(recs)
    store = fig["store"]  # t 2 to 10: eight shards downloaded, 8 MiB each
    assert store["downloads"] == 8 and store["download_mib"] == 64.0
    assert store["download_s"] == 4.0 and store["download_mib_per_s"] == 16.0
    assert (store["hits"], store["misses"]) == (16, 8) and store["hit_rate"] == pytest.approx(2 / 3)
    assert store["wait_s"] == pytest.approx(3.2)
    assert store["wait_share_of_loop_wait"] == pytest.approx(0.4 / 0.6)
    assert fig["ms_per_batch"]["shard_wait"] == pytest.approx(4.0)  # 40% of 10 ms a batch
    totals = store_totals(recs)  # the whole run, from zero
    assert totals["downloads"] == 10 and totals["download_bytes"] == 10 << 23
    assert totals["wait_s"] == pytest.approx(3.2)
    # Local shards: no store anywhere, and the part is None (not zero).
    local = steady_figures(samples(wait=0.6))
    assert local["store"] is None and local["ms_per_batch"]["shard_wait"] is None
    assert store_totals(samples(wait=0.6)) is None
    assert assess(loader_meta(), samples(wait=0.6))["store"] is None


def test_shard_waits_advise_fetching_further_ahead():
    meta = loader_meta()
    meta["settings"] = {"loader_options": {"fetch_ahead": 2, "fetch_threads": 3}}
    recs = samples(wait=0.6, shard_wait_share=0.45)
    out = assess(meta, recs)
    assert out["verdict"] == "input-bound" and out["store"]["downloads"] == 10
    first = out["advice"][0]
    assert first["option"] == "fetch_ahead"
    assert "3.60 s for shard downloads, 75% of the loop's 4.80 s" in first["why"]
    assert "8 of 24 shard uses" in first["why"] and "16.0 MiB/s" in first["why"]
    assert "fetch_ahead=4, fetch_threads=6" in first["expected"]
    assert "filled once" in first["expected"]
    # With cached epochs seen, the cached rate is the promise; a cold store epoch is never
    # taken for raw mode's cold cache (no `rrweb-dali warm`).
    epochs = [
        {"epoch": 0, "seconds": 9.0, "rows": 900, "tokens": 9000, "kind": "cold"},
        {"epoch": 1, "seconds": 0.5, "rows": 900, "tokens": 9000, "kind": "warm"},
    ]
    out = assess(loader_meta(), recs, {"epochs": epochs})
    options = [a["option"] for a in out["advice"]]
    assert options[0] == "fetch_ahead" and not any("warm" in (o or "") for o in options)
    assert "fetch_ahead=8, fetch_threads=8" in out["advice"][0]["expected"]  # the defaults x2
    assert "1,800 samples/s" in out["advice"][0]["expected"]
    # Shard waits a small part of the wait, or a loop that is not input-bound: no such advice.
    for recs in (samples(wait=0.6, shard_wait_share=0.2), samples(wait=0.1, shard_wait_share=0.1)):
        assert "fetch_ahead" not in [a["option"] for a in assess(meta, recs)["advice"]]


def test_no_samples_no_verdict():
    out = assess({}, [])
    assert out["verdict"] is None and out["advice"] == []


# ---- real profile runs ---------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(("step_ms", "expected"), [("0", "input-bound"), ("50", "compute-bound")])
def test_profile_command_verdict(dataset, tmp_path, step_ms, expected):
    from rrweb_dali.cli import main

    root, _ = dataset
    runs = tmp_path / "runs"
    argv = ["profile", str(root), "--out", str(runs), "--device", "cpu", "--batch-size", "16"]
    argv += ["--epochs", "2", "--interval", "0.05", "--step-ms", step_ms, "--no-progress"]
    assert main(argv) == 0
    (run,) = runs.iterdir()
    summary = json.loads((run / "summary.json").read_text())
    assert summary["verdict"] == expected, summary["verdict_reason"]
    assert summary["advice"] and all(
        set(a) == {"option", "why", "expected"} for a in summary["advice"]
    )
    assert [e["complete"] for e in summary["epochs"]] == [True, True]
    assert sum(e["rows"] for e in summary["epochs"]) == summary["totals"]["rows"]
    # The verdict is a function of the files: recomputed from them, it is the same.
    meta = json.loads((run / "meta.json").read_text())
    recs = [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines()]
    assert assess(meta, recs, summary)["verdict"] == expected
    assert meta["dataset"][0]["sessions"] > 0 and meta["loader"]["source"]["kind"] == "shards"
    assert all(r["loader_rss_bytes"] >= r["rss_bytes"] > 0 for r in recs)
