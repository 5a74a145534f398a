"""Every file of the development corpus reads, with the event counts its MANIFEST records."""

from __future__ import annotations

from collections import Counter

import orjson
import pytest

from rrweb_dali.ingest import load_session

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


# The corpus, its MANIFEST entries and the per-entry parametrization (``real_corpus_entry``) come
# from tests/conftest.py; without the corpus every test here skips.


@pytest.fixture(scope="module")
def sessions(real_corpus, real_corpus_entries) -> dict:
    return {
        entry["path"]: load_session(real_corpus / entry["path"]) for entry in real_corpus_entries
    }


def test_corpus_has_recorded_sessions_and_fixtures(real_corpus_entries):
    kinds = Counter(entry["path"].split("/")[0] for entry in real_corpus_entries)
    assert kinds["recorded"] == 120 and kinds["fixtures"] >= 8


def test_event_counts_match_manifest(real_corpus_entry, sessions):
    entry = real_corpus_entry
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


def test_packed_sessions_lose_the_packer_marker(sessions, real_corpus_entries):
    packed = [e["path"] for e in real_corpus_entries if e["format"] == "packed"]
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


def test_sentry_fixtures_are_one_full_snapshot_at_time_zero(sessions, real_corpus_entries):
    sentry = [e["path"] for e in real_corpus_entries if e["format"] == "sentry"]
    assert len(sentry) == 4
    for path in sentry:
        (event,) = sessions[path].events
        assert (event["type"], event["timestamp"]) == (2, 0), path
        assert event["data"]["node"]["childNodes"], path


def test_reading_the_corpus_is_deterministic(sessions, real_corpus, real_corpus_entries):
    for entry in real_corpus_entries[::7]:
        again = load_session(real_corpus / entry["path"])
        first = sessions[entry["path"]]
        assert orjson.dumps(again.events) == orjson.dumps(first.events), entry["path"]
        assert again.report == first.report
