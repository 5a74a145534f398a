"""The dashboard in a real browser: ``streamlit run`` on 127.0.0.1, headless Chromium driven over
the DevTools protocol on a pipe (``--remote-debugging-pipe``: no websocket client needed), charts
present in the DOM, and a screenshot that decodes and is not blank. The screenshot is kept at
``.artifacts/dashboard.png``."""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import math
import os
import socket
import struct
import subprocess
import time
import urllib.request
import zlib
from pathlib import Path

import pytest

from rrweb_dali.profiling import RunWriter

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[2]
ARTIFACT = REPO / ".artifacts" / "dashboard.png"
WIDTH, HEIGHT = 1400, 1000

pytestmark = [
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="no /usr/bin/chromium (apt-get install chromium)"
    ),
    pytest.mark.slow,
]
pytest.importorskip("streamlit", reason="the dashboard extra (streamlit, altair) is not installed")


class DevTools:
    """A minimal Chrome DevTools Protocol client over ``--remote-debugging-pipe``: Chromium reads
    NUL-terminated JSON commands on fd 3 and writes replies and events on fd 4."""

    def __init__(self, profile_dir: Path):
        def high(fd: int) -> int:  # off fds 3/4, so that dup2 onto them always makes a copy
            new = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
            os.close(fd)
            return new

        cmd_r, cmd_w = map(high, os.pipe())
        out_r, out_w = map(high, os.pipe())

        def child_fds() -> None:
            os.dup2(cmd_r, 3)
            os.dup2(out_w, 4)

        flags = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={profile_dir}",
            f"--window-size={WIDTH},{HEIGHT}",
            "--remote-debugging-pipe",
            "about:blank",
        ]
        self.proc = subprocess.Popen(
            [str(CHROMIUM), *flags],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            close_fds=False,
            preexec_fn=child_fds,
        )
        os.close(cmd_r)
        os.close(out_w)
        self._w = os.fdopen(cmd_w, "wb", buffering=0)
        self._r = os.fdopen(out_r, "rb", buffering=0)
        self._buf = b""
        self._id = 0

    def _message(self) -> dict:
        while b"\0" not in self._buf:
            chunk = self._r.read(1 << 16)
            if not chunk:
                raise EOFError("chromium closed the DevTools pipe")
            self._buf += chunk
        msg, self._buf = self._buf.split(b"\0", 1)
        return json.loads(msg)

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self._id += 1
        cmd = {"id": self._id, "method": method, "params": params or {}}
        if session:
            cmd["sessionId"] = session
        self._w.write(json.dumps(cmd).encode() + b"\0")
        while True:
            msg = self._message()
            if msg.get("id") == self._id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg["result"]

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.send("Browser.close")
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._w.close()
        self._r.close()


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


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}")
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(url + "_stcore/health", timeout=2) as resp,
        ):
            if resp.status == 200:
                return
        time.sleep(0.3)
    raise TimeoutError("streamlit did not come up")


def png_facts(png: bytes) -> tuple[int, int, int]:
    """(width, height, colour type) after checking that the PNG's image data inflates to exactly
    ``height`` filtered rows: the file decodes, without an imaging library."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, ihdr = 8, [], None
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, body = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", png[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(kind + body) == crc, kind
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        pos += 12 + length
    width, height, depth, ctype = ihdr[:4]
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[ctype]
    raw = zlib.decompress(b"".join(idat))
    assert depth == 8 and len(raw) == height * (1 + width * channels)
    return width, height, ctype


PROBE = """JSON.stringify({
  state: document.querySelector('[data-test-script-state]')?.getAttribute('data-test-script-state'),
  charts: document.querySelectorAll('.vega-embed').length,
  drawn: document.querySelectorAll('.vega-embed canvas, .vega-embed svg.marks').length,
  metrics: document.querySelectorAll('[data-testid="stMetric"]').length,
  exceptions: document.querySelectorAll('[data-testid="stException"]').length,
  title: document.querySelector('h1')?.textContent})"""


def test_dashboard_renders_in_chromium(tmp_path):
    from rrweb_dali.commands.dashboard import streamlit_command

    runs = tmp_path / "runs"
    write_runs(runs)
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    server = subprocess.Popen(
        streamlit_command(str(runs), port),
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    browser = None
    try:
        wait_healthy(url, server)
        browser = DevTools(tmp_path / "chromium-profile")
        page = next(
            t for t in browser.send("Target.getTargets")["targetInfos"] if t["type"] == "page"
        )
        session = browser.send(
            "Target.attachToTarget", {"targetId": page["targetId"], "flatten": True}
        )["sessionId"]
        browser.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False},
            session,
        )
        browser.send("Page.navigate", {"url": url}, session)
        deadline, facts = time.monotonic() + 90, {}
        while time.monotonic() < deadline:
            reply = browser.send(
                "Runtime.evaluate", {"expression": PROBE, "returnByValue": True}, session
            )
            facts = json.loads(reply["result"]["value"])
            if facts.get("state") == "notRunning" and facts["drawn"] >= 5:
                break
            time.sleep(0.25)
        assert facts.get("state") == "notRunning", facts
        assert facts["exceptions"] == 0, facts
        assert facts["title"] == "rrweb-dali loader runs"
        assert facts["charts"] >= 5 and facts["drawn"] >= 5, facts  # throughput..cache
        assert facts["metrics"] == 18, facts  # 6 KPI cards for each of the 3 runs
        time.sleep(1.0)  # let the last chart finish its transition before the picture
        shot = browser.send("Page.captureScreenshot", {"format": "png"}, session)
        png = base64.b64decode(shot["data"])
    finally:
        if browser is not None:
            browser.close()
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    ARTIFACT.write_bytes(png)
    assert png_facts(png)[:2] == (WIDTH, HEIGHT)
    pil = pytest.importorskip("PIL.Image", reason="Pillow (a streamlit dependency) counts colours")
    with pil.open(ARTIFACT) as img:
        colours = img.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 50  # text, lines, fills: not one flat colour
    dominant = max(count for count, _ in colours)
    assert dominant < 0.95 * WIDTH * HEIGHT
