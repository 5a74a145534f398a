"""Hostile input never crashes the reader: each file fails with its one classified reason."""

from __future__ import annotations

import dataclasses
import gzip
import logging
import random
import zlib

import orjson
import pytest

from rrweb_dali.ingest import ReadLimits, SessionError, load_session, parse_session_bytes


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, hostile_inputs):
    directory = tmp_path_factory.mktemp("hostile")
    return directory, hostile_inputs.write_hostile_inputs(directory)


@pytest.fixture(scope="module")
def reason_of(hostile_inputs):
    """``reason_of(path, limits)``: why reading ``path`` fails (limits: the hostile ones), or
    "read"."""

    def reason_of(path, limits=hostile_inputs.HOSTILE_LIMITS) -> str:
        try:
            load_session(path, limits)
        except SessionError as exc:  # any other exception type fails the test
            return exc.reason
        return "read"

    return reason_of


def test_every_hostile_input_gives_its_reason(hostile, reason_of):
    directory, expected = hostile
    got = {name: reason_of(directory / name) for name in expected}
    assert got == expected


def test_hostile_set_covers_every_reason(hostile):
    _, expected = hostile
    assert set(expected.values()) == {
        "empty", "not_json", "truncated", "not_rrweb", "too_large", "too_deep",
        "bad_compression", "io_error",
    }  # fmt: skip


def test_hostile_files_are_small_and_reproducible(hostile, tmp_path, hostile_inputs):
    directory, expected = hostile
    again = hostile_inputs.write_hostile_inputs(tmp_path)
    assert again == expected
    for name in expected:
        path = directory / name
        if path.is_file():
            assert path.stat().st_size < 1 << 20, name
            assert path.read_bytes() == (tmp_path / name).read_bytes(), name


def test_errors_from_bytes_match_errors_from_files(hostile, hostile_inputs):
    directory, expected = hostile
    for name, reason in expected.items():
        path = directory / name
        if not path.is_file():
            continue
        with pytest.raises(SessionError) as info:
            parse_session_bytes(path.read_bytes(), hostile_inputs.HOSTILE_LIMITS, name=name)
        assert (info.value.reason, info.value.path) == (reason, name)


def test_gzip_bomb_is_small_and_only_the_limit_rejects_it(hostile, hostile_inputs, reason_of):
    directory, _ = hostile
    bomb = directory / "gzip_bomb.json.gz"
    assert bomb.stat().st_size < 64 << 10
    assert len(gzip.decompress(bomb.read_bytes())) > hostile_inputs.HOSTILE_LIMITS.max_bytes
    # With room for it, the same file is an (empty) JSON array: the reason was the limit.
    assert reason_of(bomb, ReadLimits(max_bytes=32 << 20)) == "empty"


def test_limits_not_content_reject_the_large_and_deep_files(hostile, hostile_inputs, reason_of):
    directory, _ = hostile
    many = load_session(directory / "too_many_events.json")  # default limits
    assert many.report.events == hostile_inputs.HOSTILE_LIMITS.max_events + 1
    deep = dataclasses.replace(hostile_inputs.HOSTILE_LIMITS, max_depth=500)
    assert reason_of(directory / "deep_dom_450.json", deep) == "read"
    assert reason_of(directory / "deep_mutation_add.json", deep) == "read"


def test_twenty_thousand_level_dom_is_too_deep_at_any_depth_limit(hostile, reason_of):
    directory, _ = hostile
    lax = ReadLimits(max_depth=1_000_000)
    assert reason_of(directory / "deep_dom_20000.json", lax) == "too_deep"


def test_missing_file_is_io_error(tmp_path, reason_of):
    assert reason_of(tmp_path / "no-such-file.json") == "io_error"


def test_salvageable_truncations_recover_every_complete_event(tmp_path, hostile_inputs):
    expected = hostile_inputs.write_salvageable_inputs(tmp_path)
    for name, count in expected.items():
        session = load_session(tmp_path / name, hostile_inputs.HOSTILE_LIMITS)
        report = session.report
        assert (report.events, report.salvaged) == (count, True), name
        assert report.salvage_detail, name
        assert all(isinstance(e["timestamp"], int) for e in session.events), name


def test_complete_file_is_not_marked_salvaged(tmp_path):
    path = tmp_path / "s.json"
    path.write_bytes(b'[{"type":4,"timestamp":1,"data":{}}]')
    report = load_session(path).report
    assert (report.salvaged, report.salvage_detail) == (False, None)


def sample_session() -> bytes:
    events = [
        {"type": 4, "timestamp": 1000, "data": {"href": "http://x/é", "width": 1, "height": 1}}
    ]
    events += [
        {"type": 3, "timestamp": 1000 + i, "data": {"source": 5, "text": "ü€" * i, "id": i}}
        for i in range(1, 30)
    ]
    return orjson.dumps(events)


@pytest.mark.parametrize("codec", ["none", "gzip", "zlib", "packed"])
def test_every_truncation_point_is_read_or_classified(codec):
    """Cut a session at many points: each prefix reads or fails with a SessionError, nothing else."""
    data = sample_session()
    if codec == "gzip":
        data = gzip.compress(data, mtime=0)
    elif codec == "zlib":
        data = zlib.compress(data)
    elif codec == "packed":
        strings = [zlib.compress(orjson.dumps(e)).decode("latin-1") for e in orjson.loads(data)]
        data = orjson.dumps(strings)
    outcomes = set()
    for cut in range(0, len(data), max(1, len(data) // 150)):
        try:
            session = parse_session_bytes(data[:cut])
            outcomes.add("salvaged" if session.report.salvaged else "read")
        except SessionError as exc:
            outcomes.add(exc.reason)
    allowed = {"read", "salvaged", "empty", "truncated", "not_json", "bad_compression"}
    assert outcomes <= allowed
    assert "salvaged" in outcomes or codec in ("gzip", "zlib")


def test_random_corruption_is_read_or_classified():
    data = bytearray(sample_session())
    rng = random.Random(7)
    reasons = set()
    for _ in range(300):
        corrupted = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            corrupted[rng.randrange(len(corrupted))] = rng.randrange(256)
        try:
            parse_session_bytes(bytes(corrupted))
            reasons.add("read")
        except SessionError as exc:
            reasons.add(exc.reason)
    assert reasons and "not_json" in reasons


def test_salvage_warning_names_its_file(tmp_path, hostile_inputs, caplog):
    expected = hostile_inputs.write_salvageable_inputs(tmp_path)
    name = sorted(expected)[0]
    with caplog.at_level(logging.WARNING, logger="rrweb_dali.ingest.reader"):
        load_session(tmp_path / name, hostile_inputs.HOSTILE_LIMITS)
    messages = [r.getMessage() for r in caplog.records if "salvaged" in r.getMessage()]
    assert len(messages) == 1 and str(tmp_path / name) in messages[0]
