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


def write_run(runs: Path, name: str, wait: float, efficiency: float = 0.95) -> None:
    """Ten samples half a second apart at 400 rows/s (8 a batch), the loop waiting ``wait``."""
    w = RunWriter(runs, name, {"kind": "bench", "loader": {"wait": wait}}, run_id=name)
    for i in range(10):
        t = 0.5 * i
        rows = 200 * i
        w.sample(
            {
                "t": t,
                "batches": rows // 8,
                "rows": rows,
                "tokens": int(100 * rows * efficiency),
                "slots": 100 * rows,
                "loop_wait_s": wait * t,
                "rss_bytes": (100 + i) << 20,
                "stages": {"read": 1e-4 * rows, "pad": 5e-5 * rows},
            }
        )
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
