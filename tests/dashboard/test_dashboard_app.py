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

from rrweb_dali.dashboard import data
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
    samples: int = 8,
    finish: bool = True,
) -> RunWriter:
    """A run with a sample every 0.5 s at ``rate`` rows/s (8 rows a batch, 50 tokens a row in 80
    slots), loop wait share ``wait`` and constant RSS; optionally a cache at a 90% hit rate."""
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
    assert data.kpi_delta("samples_per_s", 150.0, 100.0) == "+50.0%"
    assert data.kpi_delta("wait_share", 0.25, 0.1) == "+15.0 pp"
    assert data.kpi_delta("samples_per_s", None, 100.0) is None
    diff = data.config_diff(
        {
            "a": {"run_id": "a", "loader": {"bs": 8, "seed": 0}},
            "b": {"run_id": "b", "loader": {"bs": 32, "seed": 0}},
        }
    )
    assert list(diff.index) == ["loader.bs"] and list(diff.loc["loader.bs"]) == ["8", "32"]
    w = write_run(tmp_path, "k", 100.0, wait=0.2, rss_mib=64, cache=True)
    info = data.inspect_run(tmp_path.resolve(), w.path)
    values = data.kpis(data.run_samples({}, info))
    assert values["samples_per_s"] == 100.0 and values["tokens_per_s"] == 5000.0
    assert values["wait_share"] == 0.2 and values["peak_rss_mb"] == 64.0
    assert values["gpu_mb"] is None and values["cache_hit_rate"] == 0.9
    assert info.status == "finished"
    # Too short for a steady interval: the KPIs fall back to whole-run averages.
    short = RunWriter(tmp_path, "short", run_id="short")
    short.sample({"t": 0.0, "batches": 0, "rows": 0, "tokens": 0, "loop_wait_s": 0.0})
    short.sample({"t": 0.5, "batches": 2, "rows": 10, "tokens": 400, "loop_wait_s": 0.1})
    values = data.kpis(data.run_samples({}, data.inspect_run(tmp_path.resolve(), short.path)))
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
    assert data.kpis(samples)["samples_per_s"] == 81.0
    frame = data.samples_frame(info, samples)
    assert set(frame["series"]) == {"ddp [rank 0]", "ddp [rank 1]"}


# ---- app.py under AppTest ------------------------------------------------------------------------


def test_kpis_and_deltas_against_the_baseline(runs, monkeypatch):
    at = app(runs, monkeypatch)
    assert not at.exception
    select(at, ["fast", "slow"], baseline="fast")
    assert not at.exception
    got = metrics(at)
    assert got[:6] == [
        ("samples/s", "200", ""),
        ("tokens/s", "10,000", ""),
        ("wait share", "10.0%", ""),
        ("peak RSS", "100 MiB", ""),
        ("GPU memory", "n/a", ""),
        ("cache hit rate", "n/a", ""),
    ]
    assert got[6:] == [
        ("samples/s", "100", "-50.0%"),
        ("tokens/s", "5,000", "-50.0%"),
        ("wait share", "30.0%", "+20.0 pp"),
        ("peak RSS", "150 MiB", "+50.0%"),
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
    (stages,) = chart(at, "time per batch by stage")
    assert set(stages["stage"]) == {"read", "pad"}  # host_copy and h2d are null: not drawn
    assert stages.loc[stages.stage == "read", "ms_per_batch"].round(6).tolist() == [8.0, 8.0]
    (cache,) = chart(at, "cache")
    assert set(cache.dropna(subset=["cache_hit_rate"])["series"]) == {"slow"}
    assert any("host_copy, h2d" in c.value for c in at.caption)
    assert len(at.get("download_button")) == 2

    select(at, ["slow"])
    assert not at.exception
    assert [m[0] for m in metrics(at)] == [
        "samples/s",
        "tokens/s",
        "wait share",
        "peak RSS",
        "GPU memory",
        "cache hit rate",
    ]
    (lines, _) = chart(at, "samples/s over time")
    assert set(lines["series"]) == {"slow"}
    at.sidebar.radio(key="metric").set_value("tokens_per_s").run()
    (lines, _) = chart(at, "tokens/s over time")
    assert set(lines["tokens_per_s"]) == {5000.0}


def test_config_diff_and_identical_runs(runs, monkeypatch):
    at = select(app(runs, monkeypatch), ["fast", "slow"])
    (table,) = at.dataframe
    assert list(table.value.index) == ["loader.rate"]
    at.sidebar.checkbox(key="only_diff").uncheck().run()
    assert "kind" in list(at.dataframe[0].value.index)


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
    assert len(metrics(at)) == 18

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
    assert at.main.markdown[0].value.endswith("running · baseline")
    assert metrics(at)[0][:2] == ("samples/s", "80")
    store = at.session_state["sample_store"]
    (entry,) = store.values()
    assert len(entry.records) == 4 and entry.offset == w.samples_path.stat().st_size
    for i in range(4, 12):  # the loader sped up
        t = 0.5 * i
        w.sample({"t": t, "batches": i, "rows": 80 * i, "samples_per_s": 240.0, "wait_share": 0.1})
    os.utime(w.samples_path)
    at.run()
    assert not at.exception
    (entry,) = at.session_state["sample_store"].values()
    assert len(entry.records) == 12 and entry.offset == w.samples_path.stat().st_size
    assert metrics(at)[0][:2] == ("samples/s", "240")  # steady median of 2 x 80 and 8 x 240
    w.finish()
    at.run()
    assert at.main.markdown[0].value.endswith("finished · baseline")
