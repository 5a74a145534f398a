"""Every file of the development corpus reads, with the event counts its MANIFEST records."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import orjson
import pytest

from rrweb_dali.ingest import load_session

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"

# MANIFEST counts the events as recorded. The reader drops exact duplicates, and the corpus has
# one: sess-0063 recorded the same MouseDown (same timestamp, id and coordinates) twice, at
# positions 44 and 48. So for that file the reader returns MANIFEST's count minus one, and
# report.events + report.duplicates_dropped equals MANIFEST's count for every file.
KNOWN_DUPLICATES = {"recorded/sess-0063.json": 1}

# MANIFEST names formats by file type; the report names what the reader found inside.
REPORTED_FORMAT = {
    "json": ("json", None),
    "json.gz": ("json", "gzip"),
    "jsonl": ("jsonl", None),
    "packed": ("packed", None),
    "js-array": ("js-array", None),
    "posthog": ("posthog", None),
    "sentry": ("sentry-fixture", None),
}


def manifest_entries() -> list[dict]:
    manifest = CORPUS / "MANIFEST.json"
    if not manifest.is_file():
        return []
    return orjson.loads(manifest.read_bytes())["files"]


ENTRIES = manifest_entries()
pytestmark = pytest.mark.skipif(
    not ENTRIES,
    reason=f"rrweb corpus not found at {CORPUS} (expected ../shared/corpus beside the repo)",
)


@pytest.fixture(scope="module")
def sessions() -> dict:
    return {entry["path"]: load_session(CORPUS / entry["path"]) for entry in ENTRIES}


def test_corpus_has_recorded_sessions_and_fixtures():
    kinds = Counter(entry["path"].split("/")[0] for entry in ENTRIES)
    assert kinds["recorded"] == 120 and kinds["fixtures"] >= 8


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["path"] for e in ENTRIES])
def test_event_counts_match_manifest(entry, sessions):
    session = sessions[entry["path"]]
    report = session.report
    duplicates = KNOWN_DUPLICATES.get(entry["path"], 0)
    assert report.duplicates_dropped == duplicates
    assert report.events == len(session.events) == entry["events"] - duplicates
    assert (report.format, report.compression) == REPORTED_FORMAT[entry["format"]]
    assert report.skipped == {} and not report.salvaged
    assert report.bytes_in == entry["bytes"]
    types = Counter(str(e["type"]) for e in session.events)
    if duplicates == 0:
        assert types == Counter(entry["event_types"])
    assert types["2"] == entry["full_snapshots"]
    assert types["4"] == entry["meta_events"]


def test_events_are_sorted_and_well_formed(sessions):
    for path, session in sessions.items():
        stamps = [e["timestamp"] for e in session.events]
        assert stamps == sorted(stamps), path
        for event in session.events:
            assert type(event["type"]) is int and type(event["timestamp"]) in (int, float), path


def test_packed_sessions_lose_the_packer_marker(sessions):
    packed = [e["path"] for e in ENTRIES if e["format"] == "packed"]
    assert packed
    for path in packed:
        session = sessions[path]
        assert all("v" not in event for event in session.events), path
        assert session.report.bytes_decoded > session.report.bytes_in  # inflated JSON counted


def test_only_the_posthog_fixture_is_out_of_order(sessions):
    reordered = sorted(path for path, s in sessions.items() if s.report.reordered)
    assert reordered == ["fixtures/posthog-recording_snapshots.json"]


def test_js_fixture_equals_its_json_twin(sessions):
    js = sessions["fixtures/rrweb-player-events.js"].events
    assert js == sessions["fixtures/rrweb-player-events.json"].events


def test_sentry_fixtures_are_one_full_snapshot_at_time_zero(sessions):
    sentry = [e["path"] for e in ENTRIES if e["format"] == "sentry"]
    assert len(sentry) == 4
    for path in sentry:
        (event,) = sessions[path].events
        assert (event["type"], event["timestamp"]) == (2, 0), path
        assert event["data"]["node"]["childNodes"], path


def test_reading_the_corpus_is_deterministic(sessions):
    for entry in ENTRIES[::7]:
        again = load_session(CORPUS / entry["path"])
        first = sessions[entry["path"]]
        assert orjson.dumps(again.events) == orjson.dumps(first.events), entry["path"]
        assert again.report == first.report
