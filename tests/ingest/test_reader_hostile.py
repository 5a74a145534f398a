"""Hostile input never crashes the reader: each file fails with its one classified reason."""

from __future__ import annotations

import dataclasses
import gzip
import json
import logging
import random
import zlib

import orjson
import pytest

from rrweb_dali.ingest import (
    ReadLimits,
    SessionError,
    decompress,
    load_session,
    parse_session_bytes,
    reader,
)
from rrweb_dali.ingest.decompress import OUTPUT_CHUNK, ByteBudget, inflate
from rrweb_dali.ingest.order import canonical_bytes
from rrweb_dali.ingest.parse_cost import (
    DENSITY_FLOOR,
    MAX_DENSITY,
    MAX_WEIGHT,
    PARSE_TRANSIENT,
    estimate_parse,
)
from rrweb_dali.synth import hostile as shapes


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


# ---------------------------------------------------------------- issue 11: bounded reading


@pytest.fixture()
def parser_never_runs(monkeypatch):
    """Fail the test if the reader gets as far as parsing the document."""

    def refuse(text, *args, **kwargs):
        raise AssertionError(f"the {len(text)}-byte document reached the parser")

    monkeypatch.setattr(reader, "extract_events", refuse)


AMPLIFIERS = {
    "empty_objects_array": shapes.empty_objects_array,
    "empty_objects_jsonl": shapes.empty_objects_jsonl,
    "empty_lists_array": shapes.empty_lists_array,
    "wrapped_empty_objects": shapes.wrapped_empty_objects,
}


@pytest.mark.parametrize("size", [DENSITY_FLOOR + 3, 4 << 20])
@pytest.mark.parametrize("shape", sorted(AMPLIFIERS))
def test_tiny_containers_are_refused_before_parsing(shape, size, parser_never_runs):
    data = AMPLIFIERS[shape](size)
    with pytest.raises(SessionError) as info:
        parse_session_bytes(data)  # default limits
    assert info.value.reason == "too_large"
    assert "per byte" in info.value.detail and str(MAX_DENSITY) in info.value.detail
    # The same document uncompressed is refused the same way.
    with pytest.raises(SessionError) as plain:
        parse_session_bytes(gzip.decompress(data))
    assert (plain.value.reason, plain.value.detail) == ("too_large", info.value.detail)


@pytest.mark.parametrize("body", [b"1.5,", b"true,", b"null, -2e5,"])
def test_large_arrays_of_scalars_are_refused_before_parsing(body, parser_never_runs):
    data = b"[" + body * ((4 << 20) // len(body)) + b"0]"
    for document in (data, gzip.compress(data, mtime=0)):
        with pytest.raises(SessionError) as info:
            parse_session_bytes(document)
        assert info.value.reason == "not_rrweb" and "no object and no string" in info.value.detail


def test_arrays_of_scalars_with_events_after_them_are_still_read():
    """Below the size where the prefix check applies, junk before the events is skipped and
    counted, as before; and a large array whose prefix holds an object is parsed."""
    event = b'{"type":3,"timestamp":1,"data":{"source":1,"positions":[]}}'
    small = parse_session_bytes(b"[" + b"1," * 1000 + event + b"]")
    assert small.report.events == 1 and small.report.skipped == {"not_event": 1000}
    large = parse_session_bytes(b"[" + event + b"," + b"1," * (200 << 10) + event + b"]")
    assert large.report.events == 1 and large.report.duplicates_dropped == 1


def test_small_dense_documents_are_still_read(tmp_path):
    # Below the density floor a document is parsed; its items are counted, not refused.
    data = gzip.decompress(shapes.empty_objects_array(DENSITY_FLOOR // 2))
    with pytest.raises(SessionError) as info:
        parse_session_bytes(data)
    assert info.value.reason == "not_rrweb" and "not_event" in info.value.detail


def test_big_amplifier_stops_decompressing_at_the_memory_cap(monkeypatch, parser_never_runs):
    """64 MB of ``[{},...]`` is refused by the cap after a fraction of it was inflated."""
    seen = []
    real_take = ByteBudget.take

    def take(self, n):
        seen.append(n)
        real_take(self, n)

    monkeypatch.setattr(ByteBudget, "take", take)
    with pytest.raises(SessionError) as info:
        parse_session_bytes(shapes.empty_objects_array(64 << 20))
    assert info.value.reason == "too_large" and "max_memory" in info.value.detail
    assert max(seen) <= OUTPUT_CHUNK
    assert sum(seen) < (64 << 20) // 2


def test_memory_cap_is_a_limit(parser_never_runs):
    session = orjson.dumps(shapes.small_session(3000))
    small = ReadLimits(max_memory=len(session) * 3)
    with pytest.raises(SessionError) as info:
        parse_session_bytes(gzip.compress(session), small)
    assert info.value.reason == "too_large" and "max_memory" in info.value.detail


def test_memory_cap_default_reads_recordings():
    session = orjson.dumps(shapes.small_session(3000))
    assert parse_session_bytes(gzip.compress(session)).report.events == 3000
    with pytest.raises(ValueError, match="max_memory"):
        ReadLimits(max_memory=0)


def test_gzip_bomb_is_inflated_in_bounded_chunks():
    bomb = shapes.gzip_bomb(64 << 20)
    chunks = []

    class Meter:
        peak = 0

        def feed(self, chunk):
            chunks.append(len(chunk))

    budget = ByteBudget(16 << 20)
    with pytest.raises(SessionError) as info:
        inflate(bomb, "gzip", budget, Meter())
    assert info.value.reason == "too_large" and "max_bytes" in info.value.detail
    assert max(chunks) <= OUTPUT_CHUNK
    # Stopped within one chunk of the limit, not after inflating the whole stream.
    assert budget.used <= budget.limit + OUTPUT_CHUNK


def test_memory_cap_stops_a_bomb_before_max_bytes(parser_never_runs):
    """Decoded text plus its estimated parse (at least its size) is charged as it is inflated."""
    limits = ReadLimits(max_bytes=32 << 20, max_memory=32 << 20)
    with pytest.raises(SessionError) as info:
        parse_session_bytes(shapes.gzip_bomb(32 << 20), limits)
    assert info.value.reason == "too_large" and "max_memory" in info.value.detail


def test_many_gzip_members_are_read_in_linear_work(monkeypatch):
    """Every member is found, and zlib is handed each input byte a bounded number of times
    (handing it the rest of the file once per member made this quadratic)."""
    members = 20_000
    data = shapes.many_gzip_members(members)
    fed = []
    real = decompress.zlib.decompressobj

    class Counting:
        def __init__(self, wbits):
            self.inner = real(wbits)

        def decompress(self, chunk, max_length=0):
            fed.append(len(chunk))
            return self.inner.decompress(chunk, max_length)

        def __getattr__(self, name):
            return getattr(self.inner, name)

    monkeypatch.setattr(decompress.zlib, "decompressobj", Counting)
    session = parse_session_bytes(data)
    assert session.report.events == len(shapes.small_session())
    assert session.events == shapes.small_session()
    assert sum(fed) <= 4 * len(data)


def test_members_then_garbage_is_still_bad_compression():
    data = shapes.many_gzip_members(50) + b"trailing"
    with pytest.raises(SessionError) as info:
        parse_session_bytes(data)
    assert info.value.reason == "bad_compression" and "trailing garbage" in info.value.detail


def test_deep_dom_with_duplicates_loads_and_drops_the_duplicate():
    data = shapes.deep_dom_with_duplicates(130, leaves=20)
    with pytest.raises(orjson.JSONEncodeError):  # the depth that broke duplicate removal
        orjson.dumps(orjson.loads(data))
    session = parse_session_bytes(data)  # default limits: max_depth 400
    assert session.report.duplicates_dropped == 1
    assert [e["type"] for e in session.events] == [4, 2, 2]
    tops = [e["data"]["initialOffset"]["top"] for e in session.events[1:]]
    assert tops == [0, 1]  # the differing snapshot at the same timestamp is kept


@pytest.mark.parametrize("levels", [100, 127, 128, 200, 399])
def test_canonical_bytes_are_sorted_key_json_at_any_depth(levels):
    rng = random.Random(levels)
    value: object = {"z": 'é"\\', "a": [1, -2, True, None, "x"]}
    for level in range(levels):
        value = {"t": 2, "childNodes": [value, {"id": rng.randrange(99)}], "a": level}
    expected = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert canonical_bytes(value) == expected.encode()


def test_canonical_bytes_tell_numbers_and_booleans_apart():
    forms = {canonical_bytes({"a": v}) for v in (1, 1.0, True)}
    assert len(forms) == 3


def test_deep_packed_string_is_skipped_among_good_ones():
    data = shapes.deep_packed_among_good(20_000, good=12)
    session = parse_session_bytes(data)
    assert session.report.events == 12
    assert session.report.skipped == {"bad_packed_string": 1}


def test_deep_posthog_cv_payload_is_skipped_among_good_events():
    deep = b'{"node":' + shapes.deep_dom(2000) + b"}"
    bad = {
        "type": 2,
        "timestamp": 5,
        "cv": "2024-10",
        "data": gzip.compress(deep).decode("latin-1"),
    }
    good = [{"type": 4, "timestamp": 1, "data": {}}, {"type": 3, "timestamp": 9, "data": {}}]
    session = parse_session_bytes(orjson.dumps([good[0], bad, good[1]]))
    assert session.report.events == 2
    assert session.report.skipped == {"bad_cv_payload": 1}


def test_packed_events_are_charged_to_the_memory_cap():
    events = [
        {"type": 3, "timestamp": i, "data": {"source": 5, "text": "x" * 4000}} for i in range(400)
    ]
    packed = orjson.dumps([zlib.compress(orjson.dumps(e)).decode("latin-1") for e in events])
    assert parse_session_bytes(packed).report.events == 400
    # The (small, so bounded rather than counted) document and its text, then half the events.
    document = (MAX_WEIGHT + 1) * len(packed) + len(packed)
    inner = [orjson.dumps(e) for e in events]
    half = sum(map(len, inner)) + sum(map(estimate_parse, inner)) // 2
    assert document + PARSE_TRANSIENT * len(packed) < document + half
    with pytest.raises(SessionError) as info:
        parse_session_bytes(packed, ReadLimits(max_memory=document + half))
    assert info.value.reason == "too_large" and "packed event" in info.value.detail


def test_dense_but_real_recordings_pass_the_density_rule():
    """Mouse moves with small coordinates are the densest real events: well under the limit."""
    moves = [
        {"type": 3, "timestamp": i, "data": {"source": 1, "positions": [
            {"x": i % 9, "y": 1, "id": 2, "timeOffset": 0} for _ in range(10)]}}
        for i in range(2000)
    ]  # fmt: skip
    for data in (orjson.dumps(moves), orjson.dumps(moves, option=orjson.OPT_INDENT_2)):
        assert len(data) > DENSITY_FLOOR
        assert estimate_parse(data) < MAX_DENSITY * len(data) * 0.75
        assert parse_session_bytes(data).report.events == 2000
    lines = b"".join(orjson.dumps(m) + b"\n" for m in moves)
    assert parse_session_bytes(lines).report.events == 2000


def test_real_recordings_are_far_from_the_density_limit(real_corpus, real_corpus_entries):
    for entry in real_corpus_entries:
        data = (real_corpus / entry["path"]).read_bytes()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        assert estimate_parse(data) <= MAX_DENSITY * len(data) / 1.5, entry["path"]
