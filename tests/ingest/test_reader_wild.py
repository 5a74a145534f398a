"""Every real-world recording in ``../shared/corpus/wild`` reads, as its SOURCES.md describes it.

The folder holds public files from rrweb's test suite (2018-2026), Sentry's replay tests and
PostHog's mocks: snapshot-test exports without timestamps, TypeScript modules, a PostHog mobile
recording with no DOM. Expectations come from SOURCES.md (event counts, which files have no
timestamps) and from reading each file independently (plain JSON parsing, the companion
``.ts.json`` conversions); the only list written here is the issue's: the three TypeScript files
that hold plain data. Every other TypeScript file needs rrweb's enums or arithmetic, and must be
refused naming the construct and a line where it really is. Skips visibly without the folder.
"""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest

from rrweb_dali.errors import SessionError
from rrweb_dali.ingest import load_session

# The list: TypeScript modules whose events are plain data literals.
PLAIN_DATA_TS = {
    "rrweb2-events-webgl.ts",
    "rrweb2-events-video-playback.ts",
    "posthog-mobile-encoded-snapshot-data.ts",
}
POSTHOG_MOBILE = (
    "posthog-mobile-encoded-snapshot-data.ts",
    "posthog-mobile-encoded-snapshot-data.ts.jsonl",
)
_COUNT = re.compile(r"\b(\d+) (?:[^,.:;|`]*? )?events\b")
_REFUSAL = re.compile(r"^`(?P<code>[^`]+)` \((?P<what>[^)]*)\) at line (?P<line>\d+):")


def _sources(wild: Path) -> dict[str, dict]:
    """The rows of SOURCES.md's table, by file name."""
    rows = {}
    for line in (wild / "SOURCES.md").read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 7 and cells[0].startswith("`") and cells[1].isdigit():
            name = cells[0].strip("`")
            rows[name] = {"bytes": int(cells[1]), "kind": cells[5], "shape": cells[6]}
    return rows


@pytest.fixture(scope="module")
def wild(wild_corpus):
    sources = _sources(wild_corpus)
    results = {}
    for name in sources:
        try:
            results[name] = load_session(wild_corpus / name)
        except SessionError as exc:
            results[name] = exc
    return wild_corpus, sources, results


def _needs_evaluation(name: str) -> bool:
    return name.endswith(".ts") and name not in PLAIN_DATA_TS


def test_sources_describe_every_file(wild):
    directory, sources, _ = wild
    on_disk = {p.name for p in directory.iterdir() if p.name != "SOURCES.md"}
    assert on_disk == set(sources)
    for name, row in sources.items():
        assert (directory / name).stat().st_size == row["bytes"], name


def test_every_recording_with_events_loads(wild):
    _, sources, results = wild
    expected = {n for n in sources if not n.endswith(".snap") and not _needs_evaluation(n)}
    loaded = {n for n, r in results.items() if not isinstance(r, SessionError)}
    failed = {n: f"{r.reason}: {r.detail}" for n, r in results.items() if n in expected - loaded}
    assert failed == {}
    assert loaded == expected
    assert all(results[n].report.events >= 1 for n in loaded)


def test_event_counts_match_sources(wild):
    _, sources, results = wild
    checked = 0
    for name, row in sources.items():
        found = _COUNT.search(row["shape"])
        if found is None or isinstance(results[name], SessionError):
            continue
        report = results[name].report
        assert report.events + report.duplicates_dropped == int(found.group(1)), name
        checked += 1
    assert checked >= 30  # nearly every converted and extracted file states its count


def test_missing_timestamps_are_counted(wild):
    directory, sources, results = wild
    no_stamps = 0
    for name, row in sources.items():
        session = results[name]
        if isinstance(session, SessionError):
            continue
        report = session.report
        try:
            raw = orjson.loads((directory / name).read_bytes())
        except orjson.JSONDecodeError:  # JSON Lines, TypeScript, Sentry's `[timestamp]`
            raw = None
        if type(raw) is list and all(type(item) is dict for item in raw):
            unstamped = sum(type(item.get("timestamp")) not in (int, float) for item in raw)
            assert report.missing_timestamps == unstamped, name
        shape = row["shape"]
        # SOURCES.md: extracted snapshot exports have no timestamps unless the row says "with";
        # the packed export is one packer string (its event keeps its timestamp).
        extracted = (
            row["kind"] == "extracted" and "**with**" not in shape and "<packed>" not in shape
        )
        if extracted or "no `timestamp` keys" in shape:
            assert report.missing_timestamps == report.events > 0, name
            assert not report.reordered, name  # file order is kept
            no_stamps += 1
        elif "**with** timestamps" in shape or row["kind"] == "converted":
            assert report.missing_timestamps == 0, name
    assert no_stamps >= 15
    unstamped_files = [
        n
        for n, s in results.items()
        if not isinstance(s, SessionError) and s.report.missing_timestamps
    ]
    assert len(unstamped_files) == 18  # the count of recordings without timestamps


def test_flags(wild):
    _, sources, results = wild
    for name, session in results.items():
        if isinstance(session, SessionError):
            continue
        has_full = any(event["type"] == 2 for event in session.events)
        assert ("no_full_snapshot" in session.report.flags) == (not has_full), name
        assert "snapshot_cut" not in session.report.flags, name  # no file here is cut
        if sources[name]["kind"] == "extracted" and "packer" not in name:
            assert session.report.flags == (), name  # real rrweb recordings of test pages
    for name in POSTHOG_MOBILE:
        assert results[name].report.flags == ("no_dom",), name


def test_plain_typescript_modules_read_like_their_conversions(wild):
    directory, _, results = wild
    for name in PLAIN_DATA_TS:
        session = results[name]
        assert session.report.format == "js-literal", name
        companion = next(directory.glob(name + ".json*"))
        assert session.events == load_session(companion).events, name


def test_typescript_needing_evaluation_names_the_construct_and_its_line(wild):
    directory, sources, results = wild
    refused = [name for name in sources if _needs_evaluation(name)]
    assert len(refused) >= 10
    for name in refused:
        error = results[name]
        assert isinstance(error, SessionError) and error.reason == "not_json", name
        found = _REFUSAL.match(error.detail)
        assert found, (name, error.detail)
        lines = (directory / name).read_text().splitlines()
        first_word = re.match(r"[\w$]+", found["code"]).group()
        assert first_word in lines[int(found["line"]) - 1], (name, error.detail)
        assert found["what"] in ("a member expression such as an enum", "arithmetic"), name


def test_jest_snapshot_file_is_not_json(wild):
    _, sources, results = wild
    snaps = [name for name in sources if name.endswith(".snap")]
    assert snaps
    for name in snaps:
        assert isinstance(results[name], SessionError) and results[name].reason == "not_json"
