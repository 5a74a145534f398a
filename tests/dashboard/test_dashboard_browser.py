"""The dashboard in a real browser: ``streamlit run`` on 127.0.0.1, the page loaded in headless
Chromium, the charts present in the DOM, and a screenshot that decodes and is not blank (kept at
``.artifacts/dashboard.png``).

Playwright (sync API) drives the browser and waits for the content; it launches the system's
Chromium (Debian's ``/usr/bin/chromium``) through ``executable_path``, so no browser is ever
downloaded and ``playwright install`` is not needed. Pillow opens the screenshot. The test skips
visibly without Chromium, Playwright or the dashboard extra.
"""

from __future__ import annotations

import contextlib
import math
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from rrweb_dali.profiling import RunWriter

pytest.importorskip("streamlit", reason="the dashboard extra (streamlit, altair) is not installed")
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (pip install 'rrweb-dali[dev]')"
)
Image = pytest.importorskip("PIL.Image", reason="Pillow is not installed")

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
ARTIFACT = REPO / ".artifacts" / "dashboard.png"
LIVE_ARTIFACT = REPO / ".artifacts" / "dashboard-live.png"
WIDTH, HEIGHT = 1400, 1000
TIMEOUT_MS = 90_000

# What the page shows, once the script has run and every chart has drawn its canvas/svg.
PROBE = """() => ({
  state: document.querySelector('[data-test-script-state]')?.getAttribute('data-test-script-state'),
  charts: document.querySelectorAll('.vega-embed').length,
  drawn: document.querySelectorAll('.vega-embed canvas, .vega-embed svg.marks').length,
  metrics: document.querySelectorAll('[data-testid="stMetric"]').length,
  exceptions: document.querySelectorAll('[data-testid="stException"]').length,
  title: document.querySelector('h1')?.textContent})"""
SETTLED = f"() => {{ const f = ({PROBE})(); return f.state === 'notRunning' && f.drawn >= 6 && f.metrics >= 21 }}"


def write_runs(runs: Path) -> None:
    """Three runs with wavy throughput, rising memory, one with a cache."""
    for n, (run_id, rate, cache) in enumerate(
        [("dali-b32", 3000.0, False), ("dali-b8", 1200.0, False), ("raw-cache", 2000.0, True)]
    ):
        w = RunWriter(runs, run_id, {"kind": "bench", "batch_size": 8 << n}, run_id=run_id)
        rows = 0
        for i in range(30):
            t = 0.5 * i
            r = rate * (0.3 if i == 1 else 1 + 0.08 * math.sin(i / 2 + n)) if i else None
            rows += int((r or 0) * 0.5)
            rec = {
                "t": t,
                "batches": rows // 8,
                "rows": rows,
                "tokens": 90 * rows,
                "slots": 120 * rows,
                "samples_per_s": r,
                "tokens_per_s": r and 90 * r,
                "padding_efficiency": 0.75 - 0.05 * n if i else None,
                "wait_share": 0.1 * (n + 1) if i else None,
                "rss_bytes": (300 + 40 * n + 2 * i) << 20,
                "gpu_allocated_bytes": None,
                "gpu_reserved_bytes": None,
                "loop_wait_s": 0.1 * (n + 1) * t,
                "stages": {
                    "read": 1e-5 * rows * (n + 1),
                    "host_copy": None,
                    "h2d": None,
                    "pad": 4e-6 * rows,
                },
            }
            if cache:
                rec["cache"] = {
                    "hits": 8 * i * i,
                    "misses": 20 * i,
                    "evictions": i,
                    "bytes": i << 20,
                }
            w.sample(rec)
        w.finish({})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, log: Path, timeout: float = 60.0) -> None:
    """Poll Streamlit's health endpoint until it answers 200 (the server is up, not the page)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}:\n{log.read_text()}")
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(url + "_stcore/health", timeout=2) as resp,
        ):
            if resp.status == 200:
                return
        time.sleep(0.2)
    raise TimeoutError(f"streamlit did not come up:\n{log.read_text()}")


@pytest.fixture
def chromium() -> str:
    """The system's Chromium executable; skips when there is none."""
    path = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).is_file():
        pytest.skip("no system Chromium (apt-get install chromium); nothing is downloaded")
    return path


@contextlib.contextmanager
def serve(runs: Path, workdir: Path) -> Iterator[str]:
    """``streamlit run`` over ``runs`` on a free 127.0.0.1 port, terminated afterwards."""
    from rrweb_dali.commands.dashboard import streamlit_command

    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    log = workdir / "streamlit.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            streamlit_command(str(runs), port, "127.0.0.1"),
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_healthy(url, server, log)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture
def dashboard_url(tmp_path: Path) -> Iterator[str]:
    """The dashboard over three fixture runs."""
    runs = tmp_path / "runs"
    write_runs(runs)
    with serve(runs, tmp_path) as url:
        yield url


@contextlib.contextmanager
def browser_page(chromium: str):
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=chromium, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            yield browser.new_page(
                viewport={"width": WIDTH, "height": HEIGHT}, device_scale_factor=1
            )
        finally:
            browser.close()


def test_dashboard_renders_in_chromium(chromium: str, dashboard_url: str) -> None:
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=chromium, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = browser.new_page(
                viewport={"width": WIDTH, "height": HEIGHT}, device_scale_factor=1
            )
            page.goto(dashboard_url, timeout=TIMEOUT_MS)
            page.wait_for_function(SETTLED, timeout=TIMEOUT_MS)
            facts = page.evaluate(PROBE)
            assert facts["exceptions"] == 0, facts
            assert facts["title"] == "rrweb-dali loader runs", facts
            assert facts["charts"] >= 6 and facts["drawn"] >= 6, facts  # parts, split..cache
            assert facts["metrics"] == 21, facts  # 7 KPI cards for each of the 3 runs
            text = page.inner_text("body")
            assert "raw-cache (finished): input-bound: the loop waited for input 30%" in text
            assert "dali-b32 (finished): balanced" in text
            # animations="disabled" finishes running transitions, so the picture is the end state.
            ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=ARTIFACT, animations="disabled", timeout=TIMEOUT_MS)
        finally:
            browser.close()

    with Image.open(ARTIFACT) as img:
        img.load()  # the whole file decodes
        assert img.size == (WIDTH, HEIGHT)
        colours = img.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 50  # text, lines, fills: not one flat colour
    dominant = max(count for count, _ in colours)
    assert dominant < 0.95 * WIDTH * HEIGHT


def test_a_live_run_updates_the_open_page(chromium: str, tmp_path: Path) -> None:
    """A run written while the page is open: the verdict appears and its figures move on with
    no reload (the page's fragment re-runs every couple of seconds)."""
    runs = tmp_path / "runs"
    writer = RunWriter(runs, "live-train", {"kind": "train"}, run_id="live-train")
    stop = threading.Event()

    def write() -> None:
        i = 0
        while not stop.is_set():
            t = 0.25 * i
            rows = 400 * i
            writer.sample(
                {
                    "t": t,
                    "batches": rows // 8,
                    "rows": rows,
                    "tokens": 90 * rows,
                    "slots": 100 * rows,
                    "loop_wait_s": 0.6 * t,
                    "rss_bytes": (200 + i) << 20,
                    "stages": {"read": 1e-4 * rows, "pad": 2e-5 * rows},
                }
            )
            i += 1
            stop.wait(0.25)

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    seconds = re.compile(r"live-train \(running\): input-bound: .* steady state \(([\d.]+) s")
    try:
        with serve(runs, tmp_path) as url, browser_page(chromium) as page:
            page.goto(url, timeout=TIMEOUT_MS)
            page.wait_for_function(
                "() => document.body.innerText.includes('live-train (running): input-bound')",
                timeout=TIMEOUT_MS,
            )
            first = float(seconds.search(page.inner_text("body")).group(1))
            # No reload: wait for the same page to show a longer steady state.
            page.wait_for_function(
                f"""() => {{
                  const m = document.body.innerText.match(/steady state \\(([\\d.]+) s/);
                  return m && parseFloat(m[1]) >= {first} + 2 }}""",
                timeout=TIMEOUT_MS,
            )
            assert float(seconds.search(page.inner_text("body")).group(1)) >= first + 2
            LIVE_ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=LIVE_ARTIFACT, animations="disabled", timeout=TIMEOUT_MS)
    finally:
        stop.set()
        thread.join()
        writer.finish()
    with Image.open(LIVE_ARTIFACT) as img:
        img.load()
        assert img.size == (WIDTH, HEIGHT)
