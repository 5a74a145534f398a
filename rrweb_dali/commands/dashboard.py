"""``rrweb-dali dashboard RUNS``: the Streamlit dashboard over a runs directory, on localhost.

It runs ``streamlit run dashboard/app.py`` from a source checkout (the dashboard is a folder next
to the package, not part of the installed wheel), bound to 127.0.0.1 unless ``--address`` says
otherwise: run files name hosts and paths, which is nothing to publish on a network by accident.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "dashboard",
        help="open the Streamlit dashboard over a runs directory (127.0.0.1)",
        description=(
            "Serve dashboard/app.py with Streamlit, headless, on 127.0.0.1: compare profile and "
            "bench runs (throughput, waits, stages, memory, cache, config). Needs the dashboard "
            "extra (streamlit, altair) and a source checkout."
        ),
    )
    p.add_argument("runs", help="runs directory written by `rrweb-dali profile` or bench/")
    p.add_argument("--port", type=int, default=8501)
    p.add_argument(
        "--address", default="127.0.0.1", help="address to bind (default 127.0.0.1: this host)"
    )
    p.set_defaults(func=run)


def streamlit_command(runs: str, port: int = 8501, address: str = "127.0.0.1") -> list[str]:
    """The ``streamlit run`` command line for ``runs`` (also used by the browser test)."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP),
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
        "--runs",
        str(Path(runs).resolve()),
    ]


def run(args: argparse.Namespace) -> int:
    if not APP.is_file():
        print(f"error: {APP} not found; the dashboard runs from a source checkout")
        return 1
    try:
        import streamlit  # noqa: F401
    except ImportError:
        print("error: streamlit is not installed; pip install 'rrweb-dali[dashboard]'")
        return 1
    if not Path(args.runs).is_dir():
        print(f"error: {args.runs} is not a directory")
        return 1
    print(f"dashboard on http://{args.address}:{args.port}/  (Ctrl-C stops it)", flush=True)
    # Become the server (no child left behind when this process is signalled).
    cmd = streamlit_command(args.runs, args.port, args.address)
    os.execv(cmd[0], cmd)
    return 0  # not reached
