"""The wheel as a user gets it: built from the checkout, installed into a fresh venv, run from
elsewhere.

It protects the packaging in pyproject.toml, which the editable dev install never exercises: the
explicit package list, the ``package-dir`` mapping that installs the top-level ``external_source/``
and ``dashboard/`` folders as ``rrweb_dali.external_source`` and ``rrweb_dali.dashboard``, the
package data (``py.typed``, the samples), the SPDX license metadata, and the ``rrweb-dali``
entry point, including ``rrweb-dali dashboard`` finding the installed ``app.py``. A subpackage
added to the tree but not to the list, a module left out of the wheel, or one importing the
checkout's top-level names fails here.

The wheel is built (with setuptools' build folders in tmp, so nothing is written into the
checkout) and the venv made once per module; installing the dashboard extra downloads
Streamlit and its dependencies (the pip cache makes reruns quick).
"""

from __future__ import annotations

import ast
import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from email.parser import Parser
from pathlib import Path

import pytest

import rrweb_dali
from rrweb_dali.profiling import RunWriter

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
VERSION = rrweb_dali.__version__
DIST_INFO = f"rrweb_dali-{VERSION}.dist-info"
# Source folder -> the package it installs as (pyproject's package-dir mapping).
SOURCE_ROOTS = {
    "rrweb_dali": "rrweb_dali",
    "external_source": "rrweb_dali.external_source",
    "dashboard": "rrweb_dali.dashboard",
}
CHECKOUT_ONLY_NAMES = ("external_source", "dashboard")  # top-level only in the checkout
SERVE_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Built:
    wheel: Path
    log: str  # pip's verbose output, the build backend's included
    names: frozenset[str]  # every file in the wheel

    def read(self, name: str) -> str:
        with zipfile.ZipFile(self.wheel) as zf:
            return zf.read(name).decode()


def clean_env() -> dict[str, str]:
    """This environment without anything that points Python at the checkout or another venv."""
    drop = {"PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE", "VIRTUAL_ENV"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["PYTHONNOUSERSITE"] = "1"
    return env


def run(
    cmd: Sequence[str | Path], cwd: Path, timeout: float = 120, **env: str
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(c) for c in cmd],
        cwd=cwd,
        env={**clean_env(), **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def ok(proc: subprocess.CompletedProcess) -> str:
    """The stdout of a command that must have exited 0 (else its output in the failure)."""
    assert proc.returncode == 0, (
        f"{proc.args} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}"
    )
    return proc.stdout


def source_files(suffix: str) -> set[str]:
    """Wheel paths of the checkout's files ending in ``suffix`` under the mapped source roots."""
    out = set()
    for folder, package in SOURCE_ROOTS.items():
        prefix = package.replace(".", "/")
        for path in (REPO / folder).rglob(f"*{suffix}"):
            rel = path.relative_to(REPO / folder)
            if "__pycache__" not in rel.parts:
                out.add(f"{prefix}/{rel.as_posix()}")
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_status(url: str) -> int | None:
    with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as resp:
        return resp.status
    return None


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    out = tmp_path_factory.mktemp("wheelhouse")
    # setuptools' build/ and egg-info go to tmp, not into the checkout: nothing is left there, and
    # no stale build/lib from an earlier build can slip into this wheel.
    config = out / "build.cfg"
    config.write_text(f"[build]\nbuild_base = {out / 'build'}\n[egg_info]\negg_base = {out}\n")
    cmd = [sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "--no-build-isolation"]
    proc = run([*cmd, "-w", out, REPO], out, 300, DIST_EXTRA_CONFIG=str(config))
    ok(proc)
    (wheel,) = out.glob("*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = frozenset(zf.namelist())
    return Built(wheel, proc.stdout + proc.stderr, names)


@pytest.fixture(scope="module")
def elsewhere(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty working directory, so nothing can be imported from the checkout."""
    return tmp_path_factory.mktemp("elsewhere")


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory, built: Built, elsewhere: Path) -> Path:
    """A fresh venv (no system site packages) with ``rrweb-dali[dashboard]`` from the wheel."""
    root = tmp_path_factory.mktemp("venv") / "v"
    ok(run([sys.executable, "-m", "venv", root], cwd=elsewhere))
    python = root / "bin" / "python"
    ok(run([python, "-m", "pip", "install", "-q", f"{built.wheel}[dashboard]"], elsewhere, 1200))
    return root


def test_build_has_no_license_deprecation(built: Built) -> None:
    assert "bdist_wheel" in built.log, "pip -v did not show the build backend's output"
    warned = [
        line
        for line in built.log.splitlines()
        if "project.license" in line or "License classifiers" in line
    ]
    assert not warned, "setuptools warns about the license metadata:\n" + "\n".join(warned)


def test_wheel_layout_and_metadata(built: Built) -> None:
    assert {n.split("/")[0] for n in built.names} == {"rrweb_dali", DIST_INFO}
    samples = {p.relative_to(REPO).as_posix() for p in (REPO / "rrweb_dali/samples").iterdir()}
    assert any(s.endswith(".json.gz") for s in samples)
    required = {
        "rrweb_dali/py.typed",
        "rrweb_dali/external_source/raw/__init__.py",
        "rrweb_dali/dashboard/app.py",
        *samples,
    }
    assert sorted(required - built.names) == []
    assert any(n.startswith(f"{DIST_INFO}/") and n.endswith("/LICENSE") for n in built.names)

    meta = Parser().parsestr(built.read(f"{DIST_INFO}/METADATA"))
    assert meta["Name"] == "rrweb-dali"
    assert meta["Version"] == VERSION
    assert meta["License-Expression"] == "Apache-2.0"
    assert not [c for c in meta.get_all("Classifier", []) if c.startswith("License ::")]
    urls = meta.get_all("Project-URL", [])
    assert urls and all(", https://" in u for u in urls), urls
    entry_points = built.read(f"{DIST_INFO}/entry_points.txt")
    assert "rrweb-dali = rrweb_dali.cli:main" in entry_points


def test_wheel_packages_match_source_tree(built: Built) -> None:
    """Every package in the tree is in the wheel, and the wheel's modules are the tree's."""
    missing = source_files("__init__.py") - built.names
    assert not missing, f"packages missing from [tool.setuptools] packages: {sorted(missing)}"
    wheel_modules = {n for n in built.names if n.endswith(".py")}
    assert wheel_modules == source_files(".py"), "the wheel's modules differ from the tree's"


def test_wheel_imports_no_checkout_names(built: Built) -> None:
    """No installed module imports ``external_source`` or ``dashboard`` as top-level names."""
    bad = []
    for name in sorted(n for n in built.names if n.endswith(".py")):
        for node in ast.walk(ast.parse(built.read(name))):
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                mods = [node.module or ""]
            else:
                continue
            top = {m.split(".")[0] for m in mods}
            bad += [f"{name}:{node.lineno}" for _ in top & set(CHECKOUT_ONLY_NAMES)]
    assert not bad


def test_cli_runs_from_venv(venv: Path, elsewhere: Path) -> None:
    cli = venv / "bin" / "rrweb-dali"
    assert "dashboard" in ok(run([cli, "--help"], elsewhere))
    samples = sorted(venv.glob("lib/python*/site-packages/rrweb_dali/samples/sess-*.json*"))
    assert samples, "no bundled samples in the venv's site-packages"
    assert "tokens" in ok(run([cli, "inspect", samples[0]], elsewhere))


def test_imports_come_from_venv(venv: Path, elsewhere: Path) -> None:
    python = venv / "bin" / "python"
    modules = ["rrweb_dali", "rrweb_dali.external_source", "rrweb_dali.dashboard.data"]
    code = f"import importlib\nfor m in {modules!r}: print(importlib.import_module(m).__file__)"
    for path in ok(run([python, "-c", code], elsewhere)).split():
        assert Path(path).resolve().is_relative_to(venv.resolve()), path
    for name in CHECKOUT_ONLY_NAMES:
        proc = run([python, "-c", f"import {name}"], elsewhere)
        assert proc.returncode == 1
        assert f"ModuleNotFoundError: No module named '{name}'" in proc.stderr


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    """A runs directory with one short finished run."""
    with RunWriter(tmp_path, "wheel-test", {"kind": "bench"}, run_id="wheel-test") as w:
        for i in range(4):
            w.sample({"t": 0.5 * i, "rows": 100 * i, "samples_per_s": 200.0 if i else None})
    return tmp_path


@pytest.fixture
def dashboard(venv: Path, elsewhere: Path, runs: Path, tmp_path: Path) -> Iterator[str]:
    """``rrweb-dali dashboard RUNS`` from the venv; its base URL once it answers health checks."""
    port = free_port()
    log = tmp_path / "dashboard.log"
    cmd = [str(venv / "bin" / "rrweb-dali"), "dashboard", str(runs), "--port", str(port)]
    with log.open("w") as fh:
        proc = subprocess.Popen(cmd, cwd=elsewhere, env=clean_env(), stdout=fh, stderr=fh)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + SERVE_TIMEOUT_S
        while http_status(url + "_stcore/health") != 200:
            assert proc.poll() is None, f"exited {proc.returncode}:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"not serving:\n{log.read_text()}"
            time.sleep(0.25)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_dashboard_serves_from_venv(dashboard: str) -> None:
    assert http_status(dashboard) == 200
    assert http_status(dashboard + "_stcore/health") == 200
