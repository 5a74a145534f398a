"""``rrweb-dali report``: one self-contained HTML file that opens in headless Chromium from
``file://`` with no server, asks the network for nothing, and shows each run's verdict."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from rrweb_dali.profiling import RunWriter

pytest.importorskip("altair", reason="the dashboard extra (streamlit, altair) is not installed")
pytest.importorskip("vl_convert", reason="the dashboard extra (vl-convert-python) is not installed")


def write_run(
    runs: Path, name: str, wait: float, efficiency: float = 0.95, store: bool = False
) -> None:
    """Ten samples half a second apart at 400 rows/s (8 a batch), the loop waiting ``wait``;
    with ``store`` the data come from an object store, one 2 MiB shard downloaded (1 s) in each
    of the first four intervals, a hit in each later one."""
    w = RunWriter(runs, name, {"kind": "bench", "loader": {"wait": wait}}, run_id=name)
    for i in range(10):
        t = 0.5 * i
        rows = 200 * i
        rec = {
            "t": t,
            "batches": rows // 8,
            "rows": rows,
            "tokens": int(100 * rows * efficiency),
            "slots": 100 * rows,
            "loop_wait_s": wait * t,
            "rss_bytes": (100 + i) << 20,
            "stages": {"read": 1e-4 * rows, "pad": 5e-5 * rows},
        }
        if store:
            shards = min(i, 4)
            rec["cache"] = {
                "kind": "store",
                "hits": max(i - 4, 0),
                "misses": shards,
                "evictions": 0,
                "bytes": shards << 21,
                "downloads": shards,
                "download_bytes": shards << 21,
                "download_s": 1.0 * shards,
                "wait_s": 0.1 * shards,
                "shared": 0,
            }
        w.sample(rec)
    w.finish({})


@pytest.fixture
def report(tmp_path) -> Path:
    from rrweb_dali.cli import main

    write_run(tmp_path / "runs-a", "waits", wait=0.8)
    write_run(tmp_path / "runs-b", "keeps-up", wait=0.01, efficiency=0.5)
    out = tmp_path / "out" / "report.html"
    argv = ["report", str(tmp_path / "runs-a"), str(tmp_path / "runs-b"), "--out", str(out)]
    assert main(argv) == 0
    return out


def test_report_is_one_self_contained_file(report):
    page = report.read_text()
    assert "<script" not in page and not re.search(r"(src|href)\s*=", page)
    assert page.count("<svg") >= 4  # where the time goes, step split, throughput, padding...
    assert "waits [runs-a]" in page and "keeps-up [runs-b]" in page
    assert "<b>input-bound</b>" in page and "<b>compute-bound</b>" in page
    assert "<code>bucketing</code>" in page  # keeps-up pads half of every batch
    assert "loader.wait" in page  # the configuration diff


def test_report_shows_an_object_store_only_for_the_runs_that_read_one(tmp_path):
    from rrweb_dali.dashboard.report import build

    write_run(tmp_path / "local", "local", wait=0.1)
    page, n = build([tmp_path / "local"])
    assert n == 1 and "Object store" not in page and "shard" not in page
    write_run(tmp_path / "s3", "s3", wait=0.1, store=True)
    page, n = build([tmp_path / "local", tmp_path / "s3"])
    assert n == 2 and "<h3>Object store (whole run)</h3>" in page
    table = page.split("<h3>Object store (whole run)</h3>", 1)[1].split("</table>", 1)[0]
    assert "s3 [s3]" in table and "local [local]" not in table
    for cell in ("8.0 MiB", "4.00 s", "2.0", "0.40 s", "5 / 4"):
        assert f"<td>{cell}</td>" in table, cell
    assert "object store downloads" in page  # the chart's title, in its SVG


def test_report_usage_errors(tmp_path, capsys):
    from rrweb_dali.cli import main

    assert main(["report", str(tmp_path / "missing"), "--out", str(tmp_path / "r.html")]) == 2
    assert "is not a directory" in capsys.readouterr().err
    assert main(["report", str(tmp_path), "--out", str(tmp_path)]) == 2


@pytest.mark.slow
def test_report_opens_in_chromium_without_a_server(report):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).is_file():
        pytest.skip("no system Chromium (apt-get install chromium); nothing is downloaded")
    requests: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=chromium, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = browser.new_page()
            page.on("request", lambda r: requests.append(r.url))
            page.goto(report.as_uri(), timeout=60_000)
            text = page.inner_text("body")
            drawn = page.evaluate("() => document.querySelectorAll('figure svg path').length")
        finally:
            browser.close()
    assert requests == [report.as_uri()]  # the file itself, nothing else
    assert "waits [runs-a] (finished): input-bound: the loop waited for input 80%" in text
    assert "keeps-up [runs-b] (finished): compute-bound" in text
    assert drawn > 10
