"""``rrweb-dali demo``: every stage of the library on the bundled sample sessions.

Each stage prints a short table, so a newcomer sees the whole data flow in one command:
read and tokenize -> preprocess into shards -> stream batches through the loader.
"""

from __future__ import annotations

import argparse
import collections
import time
from importlib import resources
from pathlib import Path

from rrweb_dali.commands._args import add_command
from rrweb_dali.commands._table import format_table
from rrweb_dali.errors import SessionError
from rrweb_dali.extras import require
from rrweb_dali.ingest import load_session
from rrweb_dali.tokenizer import Tokenizer


def sample_files() -> list[Path]:
    """The bundled sample sessions (real rrweb 2.2.2 recordings, see samples/README.md)."""
    root = Path(str(resources.files("rrweb_dali") / "samples"))
    return sorted(p for p in root.iterdir() if p.name.startswith("sess-"))


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "demo",
        help="run every stage on the bundled sample sessions",
        description=(
            "Read and tokenize the bundled sample sessions, preprocess them into token shards, "
            "iterate the loader over them and record a profile run, printing a table per stage. "
            "Needs torch and DALI (pip install 'rrweb-dali[torch,dali]')."
        ),
        examples=["rrweb-dali demo", "rrweb-dali demo --out /tmp/rrweb-demo"],
    )
    p.add_argument(
        "--out",
        default="demo-out",
        help="folder for the demo's shards and runs",
    )
    p.set_defaults(func=run)


def tokenize_stage(files: list[Path]) -> None:
    tok = Tokenizer()
    rows: dict[str, list] = collections.defaultdict(lambda: [0, 0, 0, 0, 0.0])
    start = time.perf_counter()
    for path in files:
        t0 = time.perf_counter()
        try:
            session = load_session(path)
        except SessionError as exc:
            print(f"  skipped {path.name}: {exc.reason}: {exc.detail}")
            continue
        ids = tok.encode(session.events)
        row = rows[
            session.report.format
            + (f"+{session.report.compression}" if session.report.compression else "")
        ]
        row[0] += 1
        row[1] += session.report.events
        row[2] += len(ids)
        row[3] += session.report.bytes_decoded
        row[4] += time.perf_counter() - t0
    elapsed = time.perf_counter() - start
    table = [
        [fmt, s, e, t, round(b / max(t, 1), 2), round(sec * 1000, 1)]
        for fmt, (s, e, t, b, sec) in sorted(rows.items())
    ]
    tot = [sum(r[i] for r in rows.values()) for i in range(4)]
    table.append(
        [
            "total",
            tot[0],
            tot[1],
            tot[2],
            round(tot[3] / max(tot[2], 1), 2),
            round(elapsed * 1000, 1),
        ]
    )
    print(
        f"1. read and tokenize ({len(files)} bundled sessions, tokenizer v{tok.version}, vocab {tok.vocab_size})"
    )
    print(format_table(["format", "sessions", "events", "tokens", "bytes/token", "ms"], table))
    print(f"   {tot[3] / 1e6 / max(elapsed, 1e-9):.1f} MB/s of JSON on one core")


def preprocess_stage(files: list[Path], out: Path) -> Path:
    """Preprocess the samples into ``out/shards`` (resumed, not redone, on a second demo)."""
    from rrweb_dali.commands.preprocess import format_summary
    from rrweb_dali.preprocess import preprocess

    dataset = out / "shards"
    print(f"\n2. preprocess into token shards ({dataset})")
    result = preprocess(files, dataset, progress=False)
    print(format_summary(result))
    return dataset


def loader_stage(dataset: Path, epochs: int = 20) -> None:
    """Iterate the DALI loader over the demo shards for a few epochs and report its speed."""
    from rrweb_dali.loader import make_loader
    from rrweb_dali.loader.make import resolve_device

    device = resolve_device("auto")
    print(f"\n3. stream batches through the DALI loader (device={device}, {epochs} epochs)")
    with make_loader(dataset, batch_size=4, device=device, seed=0, max_length=16384) as loader:
        start = time.perf_counter()
        rows = 0
        for _ in range(epochs):
            for batch in loader:
                rows += int(batch["lengths"].shape[0])
        elapsed = time.perf_counter() - start
        stats = loader.stats()
    print(
        format_table(
            ["batches", "batches/s", "samples/s", "tokens/s", "padding efficiency"],
            [
                [
                    stats["batches"],
                    round(stats["batches"] / elapsed, 1),
                    round(rows / elapsed, 1),
                    round(stats["tokens"] / elapsed),
                    round(stats["padding_efficiency"], 3),
                ]
            ],
        )
    )


def profile_stage(dataset: Path, out: Path) -> None:
    """Record a short profile run of the loader and say how to look at it."""
    from rrweb_dali.loader.make import resolve_device
    from rrweb_dali.profiling.session import ProfileSettings, run_profile

    runs = out / "runs"
    print(f"\n4. record a profile run ({runs})")
    settings = ProfileSettings(
        shards=[str(dataset)],
        runs_dir=str(runs),
        device=resolve_device("auto"),
        batch_size=4,
        seconds=3.0,
        step_ms=2.0,
        name="demo",
        loader_options={"max_length": 4096, "bucketing": True},
    )
    summary = run_profile(settings)
    print(f"   run written to {summary['run_dir']}")
    print(
        f"   open the dashboard:  rrweb-dali dashboard {runs}   (after make demo: make dashboard)"
    )


def run(args: argparse.Namespace) -> int:
    # Checked first, so that a missing extra does not stop the demo half-way.
    require("torch", "the demo's loader stage")
    require("nvidia.dali", "the demo's loader stage")
    files = sample_files()
    out = Path(args.out)
    tokenize_stage(files)
    dataset = preprocess_stage(files, out)
    loader_stage(dataset)
    profile_stage(dataset, out)
    return 0
