"""The dashboard: ``data.py`` on its own, and ``app.py`` under Streamlit's AppTest on fixture runs
written with ``RunWriter`` (exact, hand-made samples, so KPI values and deltas are known)."""

from __future__ import annotations

import importlib.resources
import json
import os
from pathlib import Path

import pytest

pytest.importorskip("streamlit", reason="the dashboard extra (streamlit, altair) is not installed")
pytest.importorskip("altair", reason="the dashboard extra (streamlit, altair) is not installed")

from rrweb_dali.dashboard import config, data, frames
from rrweb_dali.dashboard import runs as views
from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df
from streamlit.testing.v1 import AppTest

from rrweb_dali.profiling import RunWriter

APP = Path(str(importlib.resources.files("rrweb_dali.dashboard") / "app.py"))
MIB = 1024 * 1024


def write_run(
    runs: Path,
    run_id: str,
    rate: float,
    *,
    wait: float,
    rss_mib: float,
    cache: bool = False,
    store: bool = False,
    samples: int = 8,
    finish: bool = True,
) -> RunWriter:
    """A run with a sample every 0.5 s at ``rate`` rows/s (8 rows a batch, 50 tokens a row in 80
    slots), loop wait share ``wait`` and constant RSS; optionally a cache at a 90% hit rate, or
    an object store's: one 4 MiB shard downloaded (0.5 s, a miss, 0.4 s of waiting) in each of
    the first three intervals, then a hit in each of the next three."""
    w = RunWriter(runs, run_id, {"kind": "bench", "loader": {"rate": rate}}, run_id=run_id)
    for i in range(samples):
        t = 0.5 * i
        rows = int(rate * t)
        rec = {
            "t": t,
            "batches": rows // 8,
            "rows": rows,
            "tokens": 50 * rows,
            "slots": 80 * rows,
            "samples_per_s": rate if i else None,
            "tokens_per_s": 50 * rate if i else None,
            "padding_efficiency": 0.625 if i else None,
            "wait_share": wait if i else None,
            "rss_bytes": int(rss_mib * MIB),
            "gpu_allocated_bytes": None,
            "gpu_reserved_bytes": None,
            "stages": {
                "read": 0.008 * (rows // 8),
                "host_copy": None,
                "h2d": None,
                "pad": 0.004 * (rows // 8),
            },
            "loop_wait_s": wait * t,
        }
        if cache:
            rec["cache"] = {"hits": 9 * i, "misses": i, "evictions": i // 2, "bytes": 1000 * i}
        if store:
            shards = min(i, 3)
            rec["cache"] = {
                "kind": "store",
                "hits": min(max(i - 3, 0), 3),
                "misses": shards,
                "evictions": 0,
                "bytes": shards * 4 * MIB,
                "downloads": shards,
                "download_bytes": shards * 4 * MIB,
                "download_s": 0.5 * shards,
                "wait_s": 0.4 * shards,
                "shared": 0,
                "epochs": {"0": {"hits": 0, "misses": shards, "downloads": shards}},
            }
        w.sample(rec)
    if finish:
        w.finish({"totals": {"rows": int(rate * 0.5 * (samples - 1))}})
    return w


@pytest.fixture
def runs(tmp_path):
    runs = tmp_path / "runs"
    write_run(runs, "fast", 200.0, wait=0.1, rss_mib=100)
    write_run(runs, "slow", 100.0, wait=0.3, rss_mib=150, cache=True)
    return runs


def app(runs: Path, monkeypatch) -> AppTest:
    monkeypatch.setenv("RRWEB_DALI_RUNS", str(runs))
    return AppTest.from_file(str(APP), default_timeout=60).run()


def select(at: AppTest, run_ids: list[str], baseline: str | None = None) -> AppTest:
    at.sidebar.multiselect(key="runs").set_value(run_ids).run()
    if baseline is not None:
        at.sidebar.selectbox(key="baseline").set_value(baseline).run()
    return at


def card_header(at: AppTest, n: int = 0) -> str:
    """The line above the ``n``-th run's KPI cards: label, status, baseline."""
    return [m.value for m in at.main.markdown if " · " in m.value and m.value.startswith("**")][n]


def metrics(at: AppTest) -> list[tuple[str, str, str]]:
    return [(m.label, m.value, m.delta) for m in at.main.metric]


def chart(at: AppTest, title: str):
    """The data frames of the chart titled ``title``, read back from its Vega-Lite spec."""
    for el in at.get("vega_lite_chart"):
        spec = json.loads(el.proto.spec)
        if spec.get("title") == title:
            return [convert_arrow_bytes_to_pandas_df(d.data.data) for d in el.proto.datasets]
    raise AssertionError(f"no chart titled {title!r}")


# ---- data.py --------------------------------------------------------------------------------


def test_refresh_reads_only_what_was_appended(tmp_path):
    path = tmp_path / "samples.jsonl"
    path.write_text('{"t": 0}\n{"t": 0.5}\n{"t": 1')
    store: dict = {}
    entry = data.refresh(store, path)
    assert [r["t"] for r in entry.records] == [0, 0.5] and entry.partial
    first_offset = entry.offset
    with open(path, "a") as fh:
        fh.write('.0}\n{"t": 1.5}\n')
    entry = data.refresh(store, path)
    assert [r["t"] for r in entry.records] == [0, 0.5, 1.0, 1.5] and not entry.partial
    assert entry.offset == path.stat().st_size > first_offset
    assert store[str(path)] is entry


def test_nothing_outside_the_runs_directory_is_read(tmp_path):
    runs = tmp_path / "runs"
    write_run(runs, "inside", 10.0, wait=0.1, rss_mib=1)
    outside = write_run(tmp_path / "elsewhere", "secret", 10.0, wait=0.1, rss_mib=1)
    (runs / "link-out").symlink_to(outside.path, target_is_directory=True)
    (runs / "link-in").symlink_to(runs / "inside", target_is_directory=True)
    meta_link = runs / "meta-link"
    meta_link.mkdir()
    (meta_link / "meta.json").symlink_to(outside.path / "meta.json")
    found = {r.run_id: r for r in data.list_runs(runs)}
    assert found["inside"].ok and found["link-in"].ok
    assert found["link-out"].kind == "refused" and not found["link-out"].meta
    assert found["meta-link"].kind == "not_run" and not found["meta-link"].meta
    root = runs.resolve()
    assert data.inside(root, runs / ".." / "elsewhere") is None
    assert data.inside(root, runs / "inside" / "meta.json") is not None


def test_runs_dir_kpis_and_config_helpers(tmp_path):
    assert data.runs_dir_from(["--runs", "a"], {"RRWEB_DALI_RUNS": "b"}) == Path("a")
    assert data.runs_dir_from(["--runs=c"], {}) == Path("c")
    assert data.runs_dir_from([], {"RRWEB_DALI_RUNS": "b"}) == Path("b")
    assert data.runs_dir_from([], {}) is None
    assert data.runs_dirs_from(["--runs", "a", "--runs=b"], {}) == [Path("a"), Path("b")]
    assert data.runs_dirs_from([], {"RRWEB_DALI_RUNS": f"a{os.pathsep}b"}) == [Path("a"), Path("b")]
    assert views.kpi_delta("samples_per_s", 150.0, 100.0) == "+50.0%"
    assert views.kpi_delta("wait_share", 0.25, 0.1) == "+15.0 pp"
    assert views.kpi_delta("samples_per_s", None, 100.0) is None
    assert views.format_kpi("warmup_s", 1.25) == "1.2 s"
    diff = config.config_diff(
        {
            "a": {"run_id": "a", "loader": {"bs": 8, "seed": 0}},
            "b": {"run_id": "b", "loader": {"bs": 32, "seed": 0}},
        }
    )
    assert list(diff.index) == ["loader.bs"] and list(diff.loc["loader.bs"]) == ["8", "32"]
    w = write_run(tmp_path, "k", 100.0, wait=0.2, rss_mib=64, cache=True)
    info = data.inspect_run(tmp_path.resolve(), w.path)
    values = views.kpis(data.run_samples({}, info))
    assert values["samples_per_s"] == 100.0 and values["tokens_per_s"] == 5000.0
    assert values["wait_share"] == pytest.approx(0.2) and values["peak_memory_mb"] == 64.0
    assert values["warmup_s"] == 0.5
    assert values["gpu_mb"] is None and values["cache_hit_rate"] == 0.9
    assert info.status == "finished"
    # Too short for a steady interval: the KPIs fall back to whole-run averages.
    short = RunWriter(tmp_path, "short", run_id="short")
    short.sample({"t": 0.0, "batches": 0, "rows": 0, "tokens": 0, "loop_wait_s": 0.0})
    short.sample({"t": 0.5, "batches": 2, "rows": 10, "tokens": 400, "loop_wait_s": 0.1})
    values = views.kpis(data.run_samples({}, data.inspect_run(tmp_path.resolve(), short.path)))
    assert values["samples_per_s"] == 20.0 and values["tokens_per_s"] == 800.0
    assert values["wait_share"] == 0.2


def test_ranks_of_one_run_are_summed(tmp_path):
    writers = [RunWriter(tmp_path, "ddp", run_id="ddp", rank=r, world_size=2) for r in (0, 1)]
    for w in writers:
        for i in range(4):
            w.sample(
                {"t": 0.5 * i, "batches": 2 * i, "rows": 20 * i, "samples_per_s": 40.0 + w.rank}
            )
    info = data.inspect_run(tmp_path.resolve(), writers[0].path)
    assert info.world_size == 2 and sorted(info.sample_files) == [0, 1]
    assert info.status == "running"  # no summary yet, samples just written
    writers[0].finish()
    assert data.inspect_run(tmp_path.resolve(), writers[0].path).status == "running"
    writers[1].finish(status="failed")
    info = data.inspect_run(tmp_path.resolve(), writers[0].path)
    assert info.status == "failed"
    samples = data.run_samples({}, info)
    assert views.kpis(samples)["samples_per_s"] == 80.0  # 40 rows/s steady on each rank
    frame = frames.samples_frame("ddp", info.world_size, samples)
    assert set(frame["series"]) == {"ddp [rank 0]", "ddp [rank 1]"}


# ---- app.py under AppTest ------------------------------------------------------------------------


KPI_TITLES = [
    "samples/s",
    "tokens/s",
    "wait share",
    "warm-up",
    "peak loader memory",
    "GPU memory",
    "cache hit rate",
]


def test_verdict_and_advice_come_first(runs, monkeypatch):
    at = select(app(runs, monkeypatch), ["fast", "slow"], baseline="fast")
    assert not at.exception
    assert [h.value for h in at.main.subheader][:2] == [
        "Verdict",
        "Key figures (steady state; the warm-up on its own)",
    ]
    # fast waits 10% (balanced), slow 30% (input-bound); both pad 37.5% of every batch.
    (balanced,) = at.main.warning
    (bound,) = at.main.error
    assert (
        balanced.value.startswith("**fast** (finished): **balanced**") and "10%" in balanced.value
    )
    assert bound.value.startswith("**slow** (finished): **input-bound**") and "30%" in bound.value
    advice = [m.value for m in at.main.markdown if m.value.startswith("1. ")]
    assert len(advice) == 2  # one list per run, before the key figures
    assert advice[0].startswith("1. **`bucketing`**: padding efficiency is 0.62")
    assert "*Expected:* bucketing=True" in advice[0]


def test_kpis_and_deltas_against_the_baseline(runs, monkeypatch):
    at = app(runs, monkeypatch)
    assert not at.exception
    select(at, ["fast", "slow"], baseline="fast")
    assert not at.exception
    got = metrics(at)
    assert got[:7] == [
        ("samples/s", "200", ""),
        ("tokens/s", "10,000", ""),
        ("wait share", "10.0%", ""),
        ("warm-up", "0.5 s", ""),
        ("peak loader memory", "100 MiB", ""),
        ("GPU memory", "n/a", ""),
        ("cache hit rate", "n/a", ""),
    ]
    assert got[7:] == [
        ("samples/s", "100", "-50.0%"),
        ("tokens/s", "5,000", "-50.0%"),
        ("wait share", "30.0%", "+20.0 pp"),
        ("warm-up", "0.5 s", "+0.0%"),
        ("peak loader memory", "150 MiB", "+50.0%"),
        ("GPU memory", "n/a", ""),
        ("cache hit rate", "90.0%", ""),
    ]
    # The other baseline flips the deltas.
    at.sidebar.selectbox(key="baseline").set_value("slow").run()
    assert [m[2] for m in metrics(at)][:2] == ["+100.0%", "+100.0%"]


def test_run_selection_changes_the_charts(runs, monkeypatch):
    at = select(app(runs, monkeypatch), ["fast", "slow"], baseline="fast")
    (lines, warmups) = chart(at, "samples/s over time")
    assert set(lines["series"]) == {"fast", "slow"}
    assert set(lines.loc[lines.series == "slow", "samples_per_s"]) == {100.0}
    assert len(lines) == 2 * 7  # the first sample of each run has no rate yet
    assert dict(zip(warmups["series"], warmups["t"], strict=True)) == {"fast": 0.5, "slow": 0.5}
    (parts,) = chart(at, "where the time goes (steady state)")
    got = {(r.run, r.part): round(r.ms_per_batch, 6) for r in parts.itertuples() if r.run == "slow"}
    # slow's steady state: t 0.5 to 3.5, batches 50 // 8 = 6 to 350 // 8 = 43; 30% waiting.
    assert got == {
        ("slow", "source gather"): 8.0,
        ("slow", "padding / finish"): 4.0,
        ("slow", "loop waits for input"): round(1000 * 0.3 * 3 / 37, 6),
        ("slow", "step (the loop's own time)"): round(1000 * 0.7 * 3 / 37, 6),
    }
    captions = [c.value for c in at.caption]
    assert any("`fast`" in c and "DALI (copy, cast)" in c and "tokenizing" in c for c in captions)
    (split,) = chart(at, "step time: waiting for input vs the step")
    assert set(split["part"]) == {"loop waits for input", "step (the loop's own time)"}
    (hits,) = [d for d in chart(at, "cache") if "cache_hit_rate" in d]
    (evictions,) = [d for d in chart(at, "cache") if "cache_evictions_delta" in d]
    assert set(hits["series"]) == {"slow"} and hits["cache_hit_rate"].notna().all()
    assert len(hits) == 7 and evictions["t"].min() >= 0
    assert len(at.get("download_button")) == 2

    select(at, ["slow"])
    assert not at.exception
    assert [m[0] for m in metrics(at)] == KPI_TITLES
    (lines, _) = chart(at, "samples/s over time")
    assert set(lines["series"]) == {"slow"}
    at.sidebar.radio(key="metric").set_value("tokens_per_s").run()
    (lines, _) = chart(at, "tokens/s over time")
    assert set(lines["tokens_per_s"]) == {5000.0}


def test_config_diff_and_identical_runs(runs, monkeypatch):
    at = select(app(runs, monkeypatch), ["fast", "slow"])
    (table,) = [t for t in at.dataframe if list(t.value.columns) == ["fast", "slow"]]
    assert list(table.value.index) == ["loader.rate"]
    at.sidebar.checkbox(key="only_diff").uncheck().run()
    (table,) = [t for t in at.dataframe if list(t.value.columns) == ["fast", "slow"]]
    assert "kind" in list(table.value.index)


def test_config_diff_names_what_differs_in_a_list():
    metas = {
        "a": {"dataset": [{"kind": "raw", "cache_bytes": 1 << 20}], "loader": {}},
        "b": {"dataset": [{"kind": "raw", "cache_bytes": 1 << 30}], "loader": {}},
    }
    diff = config.config_diff(metas)
    assert list(diff.index) == ["dataset.0.cache_bytes"]
    assert "loader" in config.config_diff(metas, only_different=False).index


def test_several_runs_directories_with_readable_labels(tmp_path, monkeypatch):
    a, b = tmp_path / "runs-a", tmp_path / "runs-b"
    write_run(a, "baseline", 100.0, wait=0.5, rss_mib=10)
    write_run(b, "baseline", 300.0, wait=0.01, rss_mib=10)
    RunWriter(b, "dali-cpu-b32", {"kind": "profile"})  # a <time>-<name> folder, no samples yet
    monkeypatch.setenv("RRWEB_DALI_RUNS", f"{a}{os.pathsep}{b}")
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not at.exception
    options = at.sidebar.multiselect(key="runs").options
    assert sorted(options) == ["baseline [runs-a]", "baseline [runs-b]", "dali-cpu-b32 [runs-b]"]
    select(at, ["baseline [runs-a]", "baseline [runs-b]"])
    assert not at.exception
    assert "input-bound" in at.main.error[0].value and "[runs-a]" in at.main.error[0].value
    assert "compute-bound" in at.main.success[0].value
    (lines, _) = chart(at, "samples/s over time")
    assert set(lines["series"]) == {"baseline [runs-a]", "baseline [runs-b]"}
    # One colour each, from one palette: distinct.
    spec = next(
        json.loads(el.proto.spec)
        for el in at.get("vega_lite_chart")
        if json.loads(el.proto.spec).get("title") == "samples/s over time"
    )
    scale = spec["layer"][0]["encoding"]["color"]["scale"]
    assert len(set(scale["range"])) == len(scale["domain"]) == 2
    # The same name twice in one directory: the start time tells them apart.
    infos = {
        Path("x"): [
            data.RunInfo(
                "1-run", Path("1"), "run", meta={"name": "r", "started_at": "2026-01-01T10:00:00"}
            ),
            data.RunInfo(
                "2-run", Path("2"), "run", meta={"name": "r", "started_at": "2026-01-01T11:30:00"}
            ),
        ]
    }
    assert list(views.label_runs(infos)) == ["r · 10:00:00", "r · 11:30:00"]


def test_cold_and_warm_epochs_apart(tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    w = write_run(runs, "raw", 100.0, wait=0.5, rss_mib=10, cache=True, finish=False)
    w.sample(
        {
            "t": 4.0,
            "batches": 60,
            "rows": 480,
            "passes": [
                {"epoch": 0, "seconds": 3.0, "rows": 300, "kind": "cold", "complete": True},
                {"epoch": 1, "seconds": 0.1, "rows": 300, "kind": "warm", "complete": True},
            ],
        }
    )
    w.finish({})
    at = select(app(runs, monkeypatch), ["raw"])
    assert not at.exception
    (table,) = [t.value for t in at.dataframe if "kind" in t.value.columns]
    got = {r.kind: (r.epochs, r.samples_per_s) for r in table.itertuples()}
    assert got == {"cold": (1, 100.0), "warm": (1, 3000.0)}


STORE_TITLES = [
    "downloaded",
    "download time",
    "MiB/s per download",
    "waits for shards",
    "shards downloaded",
    "shard hits / misses",
]


def test_a_run_over_an_object_store_shows_its_downloads(tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    write_run(runs, "s3", 100.0, wait=0.3, rss_mib=10, store=True)
    write_run(runs, "local", 100.0, wait=0.3, rss_mib=10)
    at = select(app(runs, monkeypatch), ["s3"])
    assert not at.exception
    # The cards: the run's seven, then the store's.
    got = metrics(at)
    assert [m[0] for m in got] == KPI_TITLES + STORE_TITLES
    assert [m[1] for m in got[7:]] == [
        "12.0 MiB",
        "1.50 s",
        "8.0",
        "1.20 s",
        "3",
        "3 / 3",
    ]
    assert got[6] == ("cache hit rate", "50.0%", "")  # the shard cache's
    assert any(m.value == "*object store* · `s3` (whole run)" for m in at.main.markdown)
    # The downloads over time: the MiB climb in the first three intervals, 8 MiB/s each, then
    # stay flat (the cache serves the shards).
    (downloads,) = chart(at, "object store downloads")
    mib = downloads[downloads.what == "downloaded (MiB)"].sort_values("t")
    assert list(mib["value"]) == [0.0, 4.0, 8.0, 12.0, 12.0, 12.0, 12.0, 12.0]
    rate = downloads[downloads.what == "download rate (MiB/s)"].sort_values("t")
    assert list(rate["value"]) == [8.0, 8.0, 8.0, 0.0, 0.0, 0.0, 0.0]
    # The hit rate chart is the shard cache's: misses, then hits, none where nothing was used.
    (hits,) = [d for d in chart(at, "cache") if "cache_hit_rate" in d]
    assert list(hits.sort_values("t")["cache_hit_rate"]) == [0.0, 0.0, 0.0, 1.0, 1.0, 1.0]
    assert any("shard cache" in c.value for c in at.caption)
    # Where the time goes: the shard waits (0.8 s over the 37 steady batches) are a part.
    (parts,) = chart(at, "where the time goes (steady state)")
    waits = parts[parts.part == "waiting for shard downloads"]
    assert list(waits["ms_per_batch"].round(6)) == [round(1000 * 0.8 / 37, 6)]
    # They are most of the loop's wait (0.9 s) in an input-bound run: fetch further ahead.
    advice = [m.value for m in at.main.markdown if m.value.startswith("1. ")]
    assert advice[0].startswith("1. **`fetch_ahead`**: the batch source waited 0.80 s")
    assert "fetch_ahead=8, fetch_threads=8" in advice[0]

    # A run over local shards beside it: nothing of the store for it, and said so.
    select(at, ["s3", "local"])
    assert not at.exception
    assert len(metrics(at)) == 7 + 6 + 7
    (downloads,) = chart(at, "object store downloads")
    assert set(downloads["series"]) == {"s3"}
    assert any("`local`" in c.value and "read local shards" in c.value for c in at.caption)
    # Local only: no store section, no empty chart, no store part listed as unmeasured.
    select(at, ["local"])
    assert not at.exception
    assert "Object store" not in [h.value for h in at.main.subheader]
    assert len(metrics(at)) == 7
    titles = {json.loads(el.proto.spec).get("title") for el in at.get("vega_lite_chart")}
    assert "object store downloads" not in titles
    assert not any("shard" in c.value for c in at.caption)


def test_bad_folders_are_findings_not_errors(tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    write_run(runs, "good", 50.0, wait=0.1, rss_mib=10)
    half = write_run(runs, "half-line", 50.0, wait=0.1, rss_mib=10)
    with open(half.samples_path, "a") as fh:
        fh.write('{"t": 9.0, "batches": 1')
    with open(write_run(runs, "junk-line", 50.0, wait=0.1, rss_mib=10).samples_path, "a") as fh:
        fh.write("this is not json\n")
    RunWriter(runs, "empty", run_id="empty")  # meta.json and an empty samples file
    (runs / "no-samples-file").mkdir()
    (runs / "no-samples-file" / "meta.json").write_text(json.dumps({"schema_version": 1}))
    (runs / "notes").mkdir()
    (runs / "notes" / "readme.txt").write_text("not a run")
    (runs / "old").mkdir()
    (runs / "old" / "meta.json").write_text(json.dumps({"run": "before schemas"}))
    (runs / "broken").mkdir()
    (runs / "broken" / "meta.json").write_text("{not json")
    (runs / "stray-file.txt").write_text("ignored")
    outside = write_run(tmp_path / "outside", "secret", 50.0, wait=0.1, rss_mib=10)
    (runs / "escape").symlink_to(outside.path, target_is_directory=True)

    at = app(runs, monkeypatch)
    assert not at.exception
    notes = [e.value for e in at.sidebar.warning] + [e.value for e in at.sidebar.info]
    for run_id, words in [
        ("notes", "not a run"),
        ("old", "schema"),
        ("broken", "JSON"),
        ("escape", "outside"),
    ]:
        assert any(f"`{run_id}`" in n and words in n for n in notes), (run_id, notes)
    options = at.sidebar.multiselect(key="runs").options
    assert "escape" not in options and "secret" not in options and "old" not in options

    select(at, ["half-line", "junk-line", "good"])
    assert not at.exception
    main_warnings = [w.value for w in at.main.warning]
    assert any("half-line" in w and "incomplete" in w for w in main_warnings)
    assert any("junk-line" in w and "1 lines" in w for w in main_warnings)
    assert len(metrics(at)) == 3 * 7

    select(at, ["empty", "no-samples-file"])
    assert not at.exception
    infos = [i.value for i in at.main.info]
    assert any("no-samples-file" in i and "no samples" in i for i in infos)
    assert any("No samples to show yet" in i for i in infos)
    assert not at.main.metric


def test_missing_and_empty_runs_directories(tmp_path, monkeypatch):
    at = app(tmp_path / "does-not-exist", monkeypatch)
    assert not at.exception and "not a directory" in at.warning[0].value
    (tmp_path / "empty").mkdir()
    at = app(tmp_path / "empty", monkeypatch)
    assert not at.exception and "no runs yet" in at.info[0].value
    monkeypatch.delenv("RRWEB_DALI_RUNS")
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not at.exception and "--runs" in at.info[0].value


def test_a_live_run_shows_what_was_appended(tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    w = write_run(runs, "live", 80.0, wait=0.1, rss_mib=10, samples=4, finish=False)
    at = select(app(runs, monkeypatch), ["live"])
    assert not at.exception
    assert card_header(at).endswith("running · baseline")
    assert metrics(at)[0][:2] == ("samples/s", "80")
    store = at.session_state["sample_store"]
    (entry,) = store.values()
    assert len(entry.records) == 4 and entry.offset == w.samples_path.stat().st_size
    assert "(running)" in at.main.warning[0].value  # the verdict of a live run, waiting 10%
    for i in range(4, 12):  # the loader sped up to 240 rows/s and the loop now waits 40%
        t = 0.5 * i
        rows = 120 + int(240 * (t - 1.5))
        w.sample(
            {"t": t, "batches": rows // 8, "rows": rows, "loop_wait_s": 0.15 + 0.4 * (t - 1.5)}
        )
    os.utime(w.samples_path)
    at.run()
    assert not at.exception
    (entry,) = at.session_state["sample_store"].values()
    assert len(entry.records) == 12 and entry.offset == w.samples_path.stat().st_size
    # The steady state from the warm-up's end (t 0.5, 40 rows) to t 5.5 (1,080 rows).
    assert metrics(at)[0][:2] == ("samples/s", "208")
    assert "input-bound" in at.main.error[0].value
    w.finish()
    at.run()
    assert card_header(at).endswith("finished · baseline")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes (POSIX)")
def test_fifos_in_a_run_folder_are_findings_not_hangs(tmp_path, monkeypatch):
    """A FIFO named meta.json, summary.json or samples*.jsonl blocks whoever opens it for reading
    until a writer comes: the listing must never open one (it would hang the page)."""
    import contextlib
    import threading

    runs = tmp_path / "runs"
    write_run(runs, "good", 50.0, wait=0.1, rss_mib=10)
    (runs / "fifo-meta").mkdir(parents=True)
    os.mkfifo(runs / "fifo-meta" / "meta.json")
    summary_run = write_run(runs, "fifo-summary", 50.0, wait=0.1, rss_mib=10, finish=False)
    os.mkfifo(summary_run.path / "summary.json")
    samples_run = write_run(runs, "fifo-samples", 50.0, wait=0.1, rss_mib=10, finish=False)
    samples_run.samples_path.unlink()
    os.mkfifo(samples_run.samples_path)
    os.mkfifo(samples_run.path / "samples.rank1.jsonl")
    fifos = [p for p in runs.rglob("*") if not p.is_dir() and not p.is_file()]
    assert len(fifos) == 4

    result: dict = {}
    lister = threading.Thread(target=lambda: result.update(runs=data.list_runs(runs)), daemon=True)
    lister.start()
    lister.join(60)  # a guard against hanging the suite, not a speed assertion
    try:
        assert not lister.is_alive(), "list_runs blocked on a FIFO"
    finally:
        for fifo in fifos:  # release a reader that did block, so the thread can end
            with contextlib.suppress(OSError):  # ENXIO: no reader blocked on it
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    found = {r.run_id: r for r in result["runs"]}
    assert found["good"].ok and found["good"].summaries
    assert found["fifo-meta"].kind == "broken" and "regular file" in found["fifo-meta"].message
    assert found["fifo-summary"].ok and not found["fifo-summary"].summaries
    assert found["fifo-samples"].ok and not found["fifo-samples"].sample_files
    store: dict = {}
    assert data.refresh(store, samples_run.samples_path).records == []  # not opened either

    at = app(runs, monkeypatch)
    assert not at.exception
    notes = [e.value for e in at.sidebar.warning] + [e.value for e in at.sidebar.info]
    assert any("`fifo-meta`" in n and "regular file" in n for n in notes), notes
