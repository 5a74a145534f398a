"""``errors.jsonl`` names every file that lost parts or carries a note, with its counts; the
manifest sums them; the CLI's end-of-run summary and ``inspect DATASET_DIR`` show the sums.

The inputs are made at test time from a bundled sample: items that are not events, events
without a timestamp, parts the tokenizer cannot read (an unknown incremental source, a mutation of
the wrong shape), a recording without a FullSnapshot, and a file cut short.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rrweb_dali.commands.demo import sample_files
from rrweb_dali.ingest import load_session
from rrweb_dali.preprocess import PreprocessOptions, preprocess
from rrweb_dali.shards.manifest import read_manifest
from rrweb_dali.tokenizer import Tokenizer

NOTE_KEYS = ("parts_skipped", "missing_timestamps", "flags", "malformed_parts", "unknown_parts")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("notes") / "src"
    src.mkdir()
    base = json.loads(sample_files()[0].read_bytes())
    end = base[-1]["timestamp"]
    files = {
        "clean.json": base,
        "parts-lost.json": [*base[:3], 42, 43, *base[3:]],
        "no-ts.json": [
            {k: v for k, v in e.items() if k != "timestamp" or not 5 <= i < 8}
            for i, e in enumerate(base)
        ],
        "unreadable-parts.json": [
            *base,
            {"type": 3, "timestamp": end + 1, "data": {"source": 99}},
            {"type": 3, "timestamp": end + 2, "data": {"source": 0, "adds": 5}},
        ],
        "no-snapshot.json": [e for e in base if e["type"] != 2],
    }
    for name, events in files.items():
        (src / name).write_text(json.dumps(events))
    whole = json.dumps([*base[:-1], 44, *base[-1:]]).encode()
    (src / "cut.json").write_bytes(whole[: len(whole) - 40])  # inside the last event
    (src / "not-json.json").write_text("{ nope")
    return src


def _expected_notes(path: Path) -> dict:
    """What the reader and the tokenizer, called directly, note about one file."""
    session = load_session(path)
    r = session.report
    faults = Tokenizer.fault_counts(Tokenizer().encode(session.events))
    return {
        "parts_skipped": dict(sorted(r.skipped.items())),
        "missing_timestamps": r.missing_timestamps,
        "flags": sorted(r.flags),
        "malformed_parts": faults["malformed"],
        "unknown_parts": faults["unknown"],
    }


@pytest.fixture(scope="module")
def dataset(corpus, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("notes-out") / "out"
    preprocess([corpus], out, PreprocessOptions(group_files=3), workers=1)
    return out


def test_every_file_with_notes_has_a_line_with_its_counts(corpus, dataset, assert_accounting):
    totals = assert_accounting(dataset)
    lines = {
        e["path"]: e for e in map(json.loads, (dataset / "errors.jsonl").read_text().splitlines())
    }
    assert "clean.json" not in lines  # nothing to say: no line
    assert lines["not-json.json"]["status"] == "rejected"
    assert not set(NOTE_KEYS) & set(lines["not-json.json"])  # nothing was read

    for name in ("parts-lost.json", "no-ts.json", "unreadable-parts.json", "no-snapshot.json"):
        line = lines[name]
        assert line["status"] == "noted" and line["reason"] is None, line
        assert {k: line[k] for k in NOTE_KEYS} == _expected_notes(corpus / name), name
        assert line["detail"], line
    # What each file was made to hold is what its line says.
    assert sum(lines["parts-lost.json"]["parts_skipped"].values()) >= 2
    assert lines["no-ts.json"]["missing_timestamps"] == 3
    assert lines["unreadable-parts.json"]["unknown_parts"] >= 1
    assert lines["unreadable-parts.json"]["malformed_parts"] >= 1
    assert "no_full_snapshot" in lines["no-snapshot.json"]["flags"]

    cut = lines["cut.json"]  # salvaged, and its lost item is on the same line
    assert cut["status"] == "salvaged" and cut["detail"].startswith("salvaged")
    assert {k: cut[k] for k in NOTE_KEYS} == _expected_notes(corpus / "cut.json")

    # The manifest's totals are the sums of the lines (no kept file without notes adds any).
    read = [e for e in lines.values() if e["status"] != "rejected"]
    assert totals["files_noted"] == sum(e["status"] == "noted" for e in lines.values()) == 4
    for key in ("missing_timestamps", "malformed_parts", "unknown_parts"):
        assert totals[key] == sum(e[key] for e in read), key
    assert totals["parts_skipped"] == sum(sum(e["parts_skipped"].values()) for e in read)
    flags: dict[str, int] = {}
    for e in read:
        for f in e["flags"]:
            flags[f] = flags.get(f, 0) + 1
    assert totals["flags"] == dict(sorted(flags.items())) and flags


def test_inspect_dataset_shows_the_new_totals(dataset):
    result = subprocess.run(
        [sys.executable, "-m", "rrweb_dali", "inspect", str(dataset)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    t = read_manifest(dataset).totals
    text = result.stdout
    assert f"events without a timestamp   {t['missing_timestamps']}" in text
    assert f"{t['malformed_parts']:,} / {t['unknown_parts']:,}" in text
    assert f"files kept with notes        {t['files_noted']}" in text
    for flag in t["flags"]:
        assert flag in text


def test_the_end_of_run_summary_shows_the_new_totals(corpus, tmp_path):
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "rrweb_dali", "preprocess", str(corpus), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    t = read_manifest(out).totals
    for label, key in (
        ("files kept with notes", "files_noted"),
        ("events without a timestamp", "missing_timestamps"),
        ("malformed parts (tokens)", "malformed_parts"),
        ("unknown parts (tokens)", "unknown_parts"),
    ):
        (row,) = [ln for ln in result.stdout.splitlines() if ln.startswith(label)]
        assert row.split()[-1] == f"{t[key]:,}", row
    assert "flagged: no_full_snapshot" in result.stdout


@pytest.mark.parametrize("name", ["no-ts.json", "unreadable-parts.json", "no-snapshot.json"])
def test_inspect_file_shows_its_notes(corpus, name):
    """``inspect FILE`` prints what the reader and the tokenizer note about one file."""
    result = subprocess.run(
        [sys.executable, "-m", "rrweb_dali", "inspect", str(corpus / name), "--max-lines", "1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    notes = _expected_notes(corpus / name)
    rows = {}
    for line in result.stdout.splitlines():
        key, _, value = line.partition("  ")
        rows[key.strip()] = value.strip()
    assert rows["missing timestamps"] == str(notes["missing_timestamps"])
    shown = rows["flags"].split(", ") if rows["flags"] != "none" else []
    assert sorted(shown) == notes["flags"]
    assert rows["malformed parts"] == str(notes["malformed_parts"])
    assert rows["unknown parts"] == str(notes["unknown_parts"])


def test_require_options_reject_what_is_otherwise_kept(corpus, tmp_path):
    """``--require-timestamps`` and ``--require-full-snapshot`` turn a note into a rejection,
    named by the option, and the other files are kept as before."""
    kept = preprocess([str(corpus)], tmp_path / "kept", PreprocessOptions(), workers=1)
    strict = PreprocessOptions(require_timestamps=True, require_full_snapshot=True)
    out = tmp_path / "strict"
    result = preprocess([str(corpus)], out, strict, workers=1)
    lines = [json.loads(x) for x in (out / "errors.jsonl").read_text().splitlines()]
    rejected = {x["path"]: x["detail"] for x in lines if x["status"] == "rejected"}
    assert "require_timestamps" in rejected["no-ts.json"]
    assert "require_full_snapshot" in rejected["no-snapshot.json"]
    assert result.totals["sessions"] == kept.totals["sessions"] - 2
    manifest = read_manifest(out)
    assert manifest.options["require_timestamps"] is True
    assert manifest.options["require_full_snapshot"] is True
