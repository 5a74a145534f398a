"""Every storage shape of rrweb recordings reads into the same ordered event list."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import orjson
import pytest

from rrweb_dali.ingest import (
    ReadLimits,
    SessionError,
    load_session,
    parse_session_bytes,
    read_session,
)

T0 = 1_700_000_000_000


def full_snapshot(ts: int = T0 + 1) -> dict:
    html = {
        "type": 2,
        "tagName": "html",
        "attributes": {},
        "id": 2,
        "childNodes": [{"type": 2, "tagName": "body", "attributes": {}, "childNodes": [], "id": 3}],
    }
    return {
        "type": 2,
        "data": {
            "node": {"type": 0, "childNodes": [html], "id": 1},
            "initialOffset": {"top": 0, "left": 0},
        },
        "timestamp": ts,
    }


def mutation(ts: int) -> dict:
    add = {"parentId": 3, "nextId": None, "node": {"type": 3, "textContent": "hi", "id": 4}}
    return {
        "type": 3,
        "data": {
            "source": 0,
            "texts": [],
            "attributes": [{"id": 3, "attributes": {"class": "x"}}],
            "removes": [],
            "adds": [add],
        },
        "timestamp": ts,
    }


def session() -> list[dict]:
    """Meta, FullSnapshot, a mutation and mouse moves, in time order."""
    meta = {"type": 4, "data": {"href": "http://x/", "width": 800, "height": 600}, "timestamp": T0}
    moves = [
        {
            "type": 3,
            "data": {"source": 1, "positions": [{"x": i, "y": 2 * i, "id": 3, "timeOffset": 0}]},
            "timestamp": T0 + 10 + i,
        }
        for i in range(5)
    ]
    return [meta, full_snapshot(), mutation(T0 + 5), *moves]


def pack(event: dict) -> str:
    """What @rrweb/packer's pack() produces: zlib of the JSON plus "v", as latin-1 characters."""
    return zlib.compress(orjson.dumps({**event, "v": "v1"})).decode("latin-1")


def latin1_gzip(value: object) -> str:
    return gzip.compress(orjson.dumps(value), mtime=0).decode("latin-1")


def read_bytes(tmp_path: Path, data: bytes, name: str = "session.json"):
    path = tmp_path / name
    path.write_bytes(data)
    return load_session(path)


# ---- the plain shapes -------------------------------------------------------------------------


def test_json_array(tmp_path):
    got = read_bytes(tmp_path, orjson.dumps(session()))
    assert got.events == session()
    assert (got.report.format, got.report.compression) == ("json", None)
    assert got.report.events == len(session())
    assert got.report.bytes_in == got.report.bytes_decoded
    assert not got.report.salvaged and got.report.skipped == {}


@pytest.mark.parametrize(
    ("compress", "kind"),
    [
        (lambda b: gzip.compress(b, mtime=0), "gzip"),
        (lambda b: zlib.compress(b, 9), "zlib"),
        (lambda b: zlib.compress(b, 1), "zlib"),
    ],
)
def test_compressed_array_detected_by_magic_bytes(tmp_path, compress, kind):
    raw = orjson.dumps(session())
    got = read_bytes(tmp_path, compress(raw), name="no-extension")
    assert got.events == session()
    assert got.report.compression == kind
    assert got.report.bytes_decoded == len(raw)


def test_concatenated_gzip_members(tmp_path):
    events = session()
    lines = [orjson.dumps(e) + b"\n" for e in events]
    members = gzip.compress(b"".join(lines[:3]), mtime=0) + gzip.compress(
        b"".join(lines[3:]), mtime=0
    )
    got = read_bytes(tmp_path, members + b"\x00" * 16, name="s.jsonl.gz")  # NUL padding ignored
    assert got.events == events
    assert got.report.format == "jsonl"


def test_utf8_bom_is_stripped(tmp_path):
    got = read_bytes(tmp_path, b"\xef\xbb\xbf" + orjson.dumps(session()))
    assert got.events == session()


def test_json_lines_with_blank_and_crlf_lines(tmp_path):
    data = b"".join(orjson.dumps(e) + b"\r\n" for e in session()) + b"\n\n"
    got = read_bytes(tmp_path, data, name="s.jsonl")
    assert got.events == session()
    assert got.report.format == "jsonl"


def test_json_lines_bad_middle_line_is_counted(tmp_path):
    lines = [orjson.dumps(e) for e in session()]
    lines.insert(2, b"{not json")
    got = read_bytes(tmp_path, b"\n".join(lines), name="s.jsonl")
    assert got.events == session()
    assert got.report.skipped == {"bad_json_line": 1}
    assert not got.report.salvaged


def test_events_wrapper(tmp_path):
    got = read_bytes(tmp_path, orjson.dumps({"events": session(), "meta": {"id": "abc"}}))
    assert got.events == session()
    assert got.report.format == "wrapper"


def test_nested_arrays_are_flattened_in_order(tmp_path):
    events = session()
    nested = [events[0], [events[1], [events[2], events[3]]], [[events[4:]]]]
    got = read_bytes(tmp_path, orjson.dumps(nested))
    assert got.events == events
    assert got.report.format == "nested"


def test_single_event_object(tmp_path):
    got = read_bytes(tmp_path, orjson.dumps(full_snapshot()))
    assert got.events == [full_snapshot()]


def test_non_event_items_are_counted_not_silent(tmp_path):
    data = [
        *session(),
        42,
        {"foo": 1},
        {"type": 3, "data": []},  # no timestamp: an event only with a dict `data`
        {"type": 3},  # an int `type` alone is no event (a serialized DOM node has one)
        {"type": "3", "timestamp": 1},
        None,
    ]
    got = read_bytes(tmp_path, orjson.dumps(data))
    assert got.events == session()
    assert got.report.skipped == {"not_event": 6}
    assert got.report.missing_timestamps == 0


# ---- packed ------------------------------------------------------------------------------------


def test_packed_strings_are_unpacked_and_v_dropped(tmp_path):
    packed = [pack(e) for e in session()]
    got = read_bytes(tmp_path, orjson.dumps(packed))
    assert got.events == session()
    assert all("v" not in e for e in got.events)
    assert got.report.format == "packed"
    assert got.report.bytes_decoded > got.report.bytes_in  # inflated event JSON is counted


def test_gzip_of_packed(tmp_path):
    data = gzip.compress(orjson.dumps([pack(e) for e in session()]), mtime=0)
    got = read_bytes(tmp_path, data, name="s.json.gz")
    assert got.events == session()
    assert (got.report.format, got.report.compression) == ("packed", "gzip")


def test_bad_packed_string_among_good_ones_is_skipped_and_counted(tmp_path):
    packed = [pack(e) for e in session()]
    packed.insert(1, "definitely not zlib")
    packed.insert(2, "x\u009c" + "\u0001" * 20)  # a zlib header, then garbage
    got = read_bytes(tmp_path, orjson.dumps(packed))
    assert got.events == session()
    assert got.report.skipped == {"bad_packed_string": 2}


def test_json_lines_of_packed_strings(tmp_path):
    data = b"\n".join(orjson.dumps(pack(e)) for e in session())
    got = read_bytes(tmp_path, data, name="s.jsonl")
    assert got.events == session()
    assert got.report.format == "jsonl"


def test_packed_string_holding_plain_json_is_accepted(tmp_path):
    """@rrweb/packer's unpack() accepts a string of event JSON as well; so do we."""
    strings = [orjson.dumps(e).decode() for e in session()]
    assert read_bytes(tmp_path, orjson.dumps(strings)).events == session()


def test_packed_bomb_is_bounded_by_max_bytes(tmp_path):
    bomb = zlib.compress(b'{"type":3,"timestamp":1,"data":"' + b"a" * (4 << 20) + b'"}')
    path = tmp_path / "bomb.json"
    path.write_bytes(orjson.dumps([bomb.decode("latin-1")]))
    with pytest.raises(SessionError) as info:
        load_session(path, ReadLimits(max_bytes=1 << 20))
    assert info.value.reason == "too_large"


# ---- PostHog ------------------------------------------------------------------------------------


def test_posthog_windows_are_merged_and_sorted(tmp_path):
    events = session()
    doc = {"snapshot_data_by_window_id": {"w2": events[3:], "w1": events[:3]}}
    got = read_bytes(tmp_path, orjson.dumps(doc))
    assert got.events == events
    assert got.report.format == "posthog"
    assert got.report.reordered


def test_posthog_result_snapshots(tmp_path):
    doc = {"result": {"snapshots": session(), "person": {"id": 1}, "start_time": "x"}}
    got = read_bytes(tmp_path, orjson.dumps(doc))
    assert got.events == session()
    assert got.report.format == "posthog"


def test_posthog_json_lines_of_windows_and_pairs(tmp_path):
    events = session()
    lines = [
        orjson.dumps({"window_id": "w1", "data": events[:4]}),
        orjson.dumps(["w1", events[4]]),  # blob-v2 style [window_id, event] line
        orjson.dumps({"windowId": "w2", "data": events[5:]}),
    ]
    got = read_bytes(tmp_path, b"\n".join(lines) + b"\n", name="s.jsonl")
    assert got.events == events
    assert got.report.format == "posthog"


def test_posthog_cv_payloads_are_decompressed_in_place(tmp_path):
    snap, mut = full_snapshot(), mutation(T0 + 5)
    snap_cv = {**snap, "cv": "2024-10", "data": latin1_gzip(snap["data"])}
    mut_data = dict(mut["data"])
    for key in ("adds", "removes", "texts", "attributes"):
        mut_data[key] = latin1_gzip(mut_data[key])
    mut_cv = {**mut, "cv": "2024-10", "data": mut_data}
    events = session()
    doc = {"snapshot_data_by_window_id": {"w": [events[0], snap_cv, mut_cv, *events[3:]]}}
    got = read_bytes(tmp_path, orjson.dumps(doc))
    assert got.events == events  # the "cv" marker is gone with the compression
    assert got.report.skipped == {}


def test_posthog_cv_payload_that_does_not_decode_is_skipped_and_counted(tmp_path):
    events = session()
    broken = {**full_snapshot(), "cv": "2024-10", "data": "\u001f\u008b broken"}
    got = read_bytes(tmp_path, orjson.dumps([*events, broken]))
    assert got.events == events
    assert got.report.skipped == {"bad_cv_payload": 1}


# ---- Sentry -------------------------------------------------------------------------------------


def sentry_events() -> list[dict]:
    breadcrumb = {
        "type": 5,
        "timestamp": T0 + 20,
        "data": {
            "tag": "breadcrumb",
            "payload": {"timestamp": (T0 + 20) / 1000, "category": "ui.click"},
        },
    }
    return [*session(), breadcrumb]


@pytest.mark.parametrize(
    ("build", "compression"),
    [
        (lambda header, body: header + body, None),
        (lambda header, body: header + zlib.compress(body), None),  # the SDK's envelope item
        (lambda header, body: zlib.compress(header + body), "zlib"),
        (lambda header, body: gzip.compress(header + body, mtime=0), "gzip"),
    ],
    ids=["plain", "zlib-body", "zlib-whole", "gzip-whole"],
)
def test_sentry_segment(tmp_path, build, compression):
    data = build(b'{"segment_id":3}\n', orjson.dumps(sentry_events()))
    got = read_bytes(tmp_path, data, name="segment")
    assert got.events == sentry_events()
    assert (got.report.format, got.report.compression) == ("sentry", compression)
    # Sentry's own custom events keep their timestamps in seconds: left exactly as recorded.
    assert got.events[-1]["data"]["payload"]["timestamp"] == (T0 + 20) / 1000


def test_sentry_fixture_placeholder_is_normalised(tmp_path):
    text = orjson.dumps(full_snapshot(), option=orjson.OPT_INDENT_2).decode()
    text = text.replace(f'"timestamp": {T0 + 1}', '"timestamp": [timestamp]')
    text = text.replace('"tagName": "body"', '"tagName": "body", "title": "[timestamp] stays"')
    got = read_bytes(tmp_path, text.encode())
    assert got.report.format == "sentry-fixture"
    assert len(got.events) == 1 and got.events[0]["timestamp"] == 0
    assert "[timestamp] stays" in orjson.dumps(got.events[0]).decode()


# ---- JavaScript fixture ------------------------------------------------------------------------


def test_js_const_events_file(tmp_path):
    body = orjson.dumps(session()).decode()
    text = f"/* eslint-disable */\n// prettier-ignore\nconst events = {body};\n\nexport default events;\n"
    got = read_bytes(tmp_path, text.encode(), name="events.js")
    assert got.events == session()
    assert got.report.format == "js-array"


# ---- order, duplicates, limits, determinism -----------------------------------------------------


def test_out_of_order_events_are_stably_sorted(tmp_path):
    a = {"type": 3, "data": {"source": 2, "type": 1, "id": 1}, "timestamp": T0 + 50}
    b = {"type": 3, "data": {"source": 2, "type": 0, "id": 1}, "timestamp": T0 + 50}
    events = [session()[0], a, session()[1], b, {**session()[2], "timestamp": T0 + 49.5}]
    got = read_bytes(tmp_path, orjson.dumps(events))
    stamps = [e["timestamp"] for e in got.events]
    assert stamps == sorted(stamps)
    assert got.events.index(a) < got.events.index(b)  # equal timestamps keep file order
    assert got.report.reordered


def test_in_order_session_is_not_reordered(tmp_path):
    assert not read_bytes(tmp_path, orjson.dumps(session())).report.reordered


def test_exact_duplicates_dropped_and_counted(tmp_path):
    events = session()
    near_copy = {**events[4], "data": {**events[4]["data"], "source": 2}}  # same time and type
    key_order_copy = {"timestamp": events[3]["timestamp"], "data": events[3]["data"], "type": 3}
    data = [*events, events[1], key_order_copy, near_copy, events[4]]
    got = read_bytes(tmp_path, orjson.dumps(data))
    assert got.report.duplicates_dropped == 3
    assert got.events == sorted([*events, near_copy], key=lambda e: e["timestamp"])


def test_int_and_float_timestamps_are_not_exact_duplicates(tmp_path):
    events = session()
    as_float = {**events[4], "timestamp": float(events[4]["timestamp"])}
    got = read_bytes(tmp_path, orjson.dumps([*events, as_float]))
    assert got.report.duplicates_dropped == 0 and got.report.events == len(events) + 1


def test_max_events_limit(tmp_path):
    path = tmp_path / "s.json"
    path.write_bytes(orjson.dumps(session()))
    assert len(read_session(path, ReadLimits(max_events=len(session())))) == len(session())
    with pytest.raises(SessionError) as info:
        read_session(path, ReadLimits(max_events=len(session()) - 1))
    assert info.value.reason == "too_large"


def test_file_over_max_bytes_is_refused_before_reading(tmp_path):
    path = tmp_path / "s.json"
    path.write_bytes(orjson.dumps(session()))
    with pytest.raises(SessionError) as info:
        load_session(path, ReadLimits(max_bytes=100))
    assert info.value.reason == "too_large" and "on disk" in info.value.detail
    assert info.value.path == str(path)


def test_dom_depth_limit_is_configurable(tmp_path):
    path = tmp_path / "s.json"
    path.write_bytes(orjson.dumps(session()))  # document > html > body: 3 levels
    assert read_session(path, ReadLimits(max_depth=3))
    with pytest.raises(SessionError) as info:
        read_session(path, ReadLimits(max_depth=2))
    assert info.value.reason == "too_deep"


def test_parse_session_bytes_matches_load_session(tmp_path):
    data = gzip.compress(orjson.dumps([pack(e) for e in session()]), mtime=0)
    from_bytes = parse_session_bytes(data)
    from_file = read_bytes(tmp_path, data)
    assert from_bytes.events == from_file.events
    assert from_bytes.report == from_file.report


def test_reading_is_deterministic(tmp_path):
    events = session()
    data = orjson.dumps(
        [events[3], pack(events[0]), [events[2], events[1]], events[3], *events[4:]]
    )
    path = tmp_path / "s.json"
    path.write_bytes(data)
    first, second = load_session(path), load_session(path)
    assert orjson.dumps(first.events) == orjson.dumps(second.events)
    assert first.report == second.report


def test_errors_name_the_file(tmp_path):
    path = tmp_path / "bad.json"
    path.write_bytes(b"{oops")
    with pytest.raises(SessionError) as info:
        load_session(path)
    assert (info.value.reason, info.value.path) == ("not_json", str(path))


def test_bytes_like_input_and_bad_paths():
    data = orjson.dumps(session())
    assert parse_session_bytes(bytearray(data)).events == session()
    assert parse_session_bytes(memoryview(data)).events == session()
    with pytest.raises(SessionError) as info:
        load_session("bad\x00name.json")
    assert info.value.reason == "io_error"
