"""``rrweb-dali report RUNS... --out report.html``: one self-contained HTML file of profile runs.

Verdicts and advice, key figures, the dashboard's charts (static SVG, rendered offline) and the
configuration diff, for every run with samples in the given runs directories; the file opens in
any browser with no server and no network (see ``rrweb_dali.dashboard.report``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rrweb_dali.commands._args import UsageError, add_command
from rrweb_dali.extras import require


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "report",
        help="write one self-contained HTML report of profile runs (no server needed)",
        description=(
            "Write the runs of one or more runs directories into one HTML file: each run's "
            "verdict (input-bound, balanced, compute-bound) and the loader options to change, "
            "the steady-state figures, the dashboard's charts as static SVG and the "
            "configuration diff. The file has no script and loads nothing: share it as it is. "
            "Needs the dashboard extra: pip install 'rrweb-dali[dashboard]'."
        ),
        examples=[
            "rrweb-dali report runs/ --out report.html",
            "rrweb-dali report runs-a/ runs-b/ --out compare.html --title 'bucketing on/off'",
        ],
    )
    p.add_argument("runs", nargs="+", help="runs directories written by `rrweb-dali profile`")
    p.add_argument("--out", required=True, help="the HTML file to write")
    p.add_argument("--title", default="rrweb-dali loader runs", help="the report's title")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    for runs in args.runs:
        if not Path(runs).is_dir():
            raise UsageError(f"{runs} is not a directory (give the runs directory of a profile)")
    out = Path(args.out)
    if out.is_dir():
        raise UsageError(f"--out {out} is a directory; give a file name such as report.html")
    for module in ("altair", "pandas", "vl_convert"):
        require(module, "the report")
    from rrweb_dali.dashboard.report import build

    page, n = build([Path(r) for r in args.runs], title=args.title)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    print(f"{out}: {n} run(s), {len(page.encode()) / 1024:,.0f} KiB")
    return 0
