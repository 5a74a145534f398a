"""``rrweb-dali dashboard RUNS...``: the Streamlit dashboard over runs directories, on localhost.

It runs ``streamlit run`` on the installed ``rrweb_dali/dashboard/app.py`` (the repository's
``dashboard/`` folder), bound to 127.0.0.1 unless ``--address`` says otherwise: run files name
hosts and paths, which is nothing to publish on a network by accident.
"""

from __future__ import annotations

import argparse
import importlib.resources
import os
import sys
from pathlib import Path

from rrweb_dali.commands._args import UsageError, add_command, positive_int
from rrweb_dali.extras import require


def app_path() -> Path:
    """The dashboard page, from the installed package (a wheel or an editable checkout)."""
    return Path(str(importlib.resources.files("rrweb_dali.dashboard") / "app.py"))


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "dashboard",
        help="open the Streamlit dashboard over a runs directory (127.0.0.1)",
        description=(
            "Serve the dashboard with Streamlit, headless, on 127.0.0.1: compare profile and "
            "bench runs (throughput, waits, stages, memory, cache, config). Needs the dashboard "
            "extra: pip install 'rrweb-dali[dashboard]'."
        ),
        examples=[
            "rrweb-dali dashboard runs/",
            "rrweb-dali dashboard runs-a/ runs-b/ --port 8600",
        ],
    )
    p.add_argument(
        "runs", nargs="+", help="runs directories written by `rrweb-dali profile` or bench/"
    )
    p.add_argument("--port", type=positive_int, default=8501, help="port to serve on")
    p.add_argument(
        "--address", default="127.0.0.1", help="address to bind (127.0.0.1: this host only)"
    )
    p.set_defaults(func=run)


def streamlit_command(
    runs: str | list[str], port: int = 8501, address: str = "127.0.0.1"
) -> list[str]:
    """The ``streamlit run`` command line for ``runs`` (one directory or several; also used by
    the browser test)."""
    dirs = [runs] if isinstance(runs, str) else list(runs)
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app_path()),
        "--server.address",
        address,
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",
        "viewer",
        "--",
        *[arg for d in dirs for arg in ("--runs", str(Path(d).resolve()))],
    ]


def run(args: argparse.Namespace) -> int:
    require("streamlit", "the dashboard")
    require("altair", "the dashboard")
    for runs in args.runs:
        if not Path(runs).is_dir():
            raise UsageError(f"{runs} is not a directory (give the runs directory of a profile)")
    print(f"dashboard on http://{args.address}:{args.port}/  (Ctrl-C stops it)", flush=True)
    # Become the server (no child left behind when this process is signalled).
    cmd = streamlit_command(args.runs, args.port, args.address)
    os.execv(cmd[0], cmd)
    return 0  # not reached
