"""What the reader says about a recording as a whole: events without timestamps, and the flags
of sessions with no snapshot, no DOM, a start mid-recording or a cut through the snapshot.

Every input is generated here; every flag is checked both where it applies and where it must
not, and both options that turn a report into a rejection are exercised.
"""

from __future__ import annotations

import orjson
import pytest

from rrweb_dali.errors import SessionError
from rrweb_dali.ingest import SESSION_FLAGS, ReadLimits, parse_session_bytes
from rrweb_dali.tokenizer import Tokenizer

T0 = 1_700_000_000_000


def meta(t: int = T0) -> dict:
    return {"type": 4, "data": {"href": "http://x/", "width": 800, "height": 600}, "timestamp": t}


def full_snapshot(t: int = T0 + 1) -> dict:
    node = {
        "type": 0,
        "id": 1,
        "childNodes": [
            {"type": 2, "tagName": "html", "attributes": {}, "id": 2, "childNodes": []},
        ],
    }
    return {
        "type": 2,
        "data": {"node": node, "initialOffset": {"top": 0, "left": 0}},
        "timestamp": t,
    }


def click(t: int, node_id: int = 2) -> dict:
    return {
        "type": 3,
        "data": {"source": 2, "type": 2, "id": node_id, "x": 1, "y": 1},
        "timestamp": t,
    }


def read(events, limits: ReadLimits | None = None):
    data = events if isinstance(events, bytes) else orjson.dumps(events)
    return parse_session_bytes(data, limits or ReadLimits())


def unstamped(event: dict) -> dict:
    return {key: value for key, value in event.items() if key != "timestamp"}


# ---- missing timestamps ------------------------------------------------------------------------


def test_events_without_timestamps_load_in_file_order():
    events = [unstamped(e) for e in (meta(), full_snapshot(), click(0, 5), click(0, 3))]
    got = read(events)
    assert got.events == events
    assert got.report.missing_timestamps == 4 and not got.report.reordered
    assert got.report.skipped == {}


def test_a_mix_of_stamped_and_unstamped_events_is_not_reordered():
    # Stamped events out of order would be sorted; one event without a time keeps file order.
    events = [meta(T0 + 50), full_snapshot(T0 + 60), unstamped(click(0)), click(T0 + 10)]
    got = read(events)
    assert got.events == events
    assert got.report.missing_timestamps == 1 and not got.report.reordered
    stamped_only = read([e for e in events if "timestamp" in e])
    assert stamped_only.report.reordered  # the same events with times are sorted


@pytest.mark.parametrize("stamp", [None, "1700000000000", True, [1]])
def test_a_timestamp_that_is_not_a_number_counts_as_missing(stamp):
    event = {**click(0), "timestamp": stamp}
    got = read([meta(), full_snapshot(), event])
    assert got.report.missing_timestamps == 1
    assert got.events[-1] == event


def test_equal_events_without_timestamps_are_all_kept_stamped_duplicates_dropped():
    twice = unstamped(click(0))  # two clicks on one button: no time tells them from a copy
    events = [meta(), full_snapshot(), twice, dict(twice), click(T0 + 5), click(T0 + 5)]
    got = read(events)
    assert got.events == events[:-1]
    assert got.report.duplicates_dropped == 1 and got.report.missing_timestamps == 2


def test_unstamped_events_tokenize_with_an_unknown_delta():
    events = [unstamped(e) for e in (meta(), full_snapshot(), click(0))]
    text = Tokenizer().decode(Tokenizer().encode(read(events).events))
    assert text.count("<DT?>") == 3


def test_require_timestamps_rejects_with_a_named_option():
    events = [meta(), full_snapshot(), unstamped(click(0))]
    with pytest.raises(SessionError) as info:
        read(events, ReadLimits(require_timestamps=True))
    assert info.value.reason == "not_rrweb"
    assert "1 of 3 events" in info.value.detail and "require_timestamps" in info.value.detail
    assert read([meta(), full_snapshot()], ReadLimits(require_timestamps=True)).events


def test_packed_and_json_lines_events_without_timestamps_load():
    events = [unstamped(e) for e in (meta(), full_snapshot())]
    lines = b"\n".join(orjson.dumps(e) for e in events)
    got = read(lines)
    assert got.events == events and got.report.missing_timestamps == 2
    packed = read(orjson.dumps([orjson.dumps(e).decode() for e in events]))
    assert packed.events == events and packed.report.missing_timestamps == 2


# ---- flags -------------------------------------------------------------------------------------


def test_flags_are_documented():
    assert set(SESSION_FLAGS) == {
        "no_full_snapshot",
        "no_dom",
        "starts_mid_recording",
        "snapshot_cut",
    }
    assert all(SESSION_FLAGS.values())


def test_a_complete_recording_has_no_flags():
    assert read([meta(), full_snapshot(), click(T0 + 2)]).report.flags == ()


def test_no_full_snapshot():
    assert read([meta()]).report.flags == ("no_full_snapshot",)
    got = read([meta(), click(T0 + 1)])
    assert got.report.flags == ("no_full_snapshot", "starts_mid_recording")


def test_starts_mid_recording_is_judged_in_time_order():
    # Incremental events before the first snapshot...
    got = read([meta(), click(T0 + 1), full_snapshot(T0 + 2)])
    assert got.report.flags == ("starts_mid_recording",)
    # ... but one written first with a later time is not.
    assert read([click(T0 + 9), meta(), full_snapshot(T0 + 2)]).report.flags == ()


@pytest.mark.parametrize(
    "data",
    [
        {"wireframes": [{"type": "screenshot", "id": 1}], "initialOffset": {"top": 0}},
        {"node": None},
        {"node": {"childNodes": []}},  # no node type: not a serialized DOM node
        {},
    ],
    ids=["posthog-mobile", "null-node", "untyped-node", "empty"],
)
def test_full_snapshot_without_a_dom_tree_is_no_dom(data):
    got = read([meta(), {"type": 2, "data": data, "timestamp": T0 + 1}])
    assert got.report.flags == ("no_dom",)
    # A later FullSnapshot with a DOM makes it an ordinary recording.
    assert (
        read(
            [meta(), {"type": 2, "data": data, "timestamp": T0 + 1}, full_snapshot(T0 + 2)]
        ).report.flags
        == ()
    )


def test_bogus_rrweb_looking_file_shows_in_flags_and_fault_counts():
    bogus = [
        {"type": 99, "data": {"x": 1}, "timestamp": T0},
        {"type": 2, "data": {"nodes": [1, 2, 3]}, "timestamp": T0 + 1},
        {"type": 3, "data": {"source": 77}, "timestamp": T0 + 2},
    ]
    got = read(bogus)
    assert got.report.flags == ("no_dom",)
    faults = Tokenizer.fault_counts(Tokenizer().encode(got.events))
    assert faults["unknown"] >= 2 and faults["malformed"] >= 1


def _cut_inside_snapshot(sort_keys: bool) -> tuple[bytes, list[int], int]:
    """A Meta and a FullSnapshot as a JSON array, the offsets of the snapshot's bytes, and the
    first offset from which the partial text shows it is one: its ``"type":2``, or (keys sorted,
    ``data`` first) the FullSnapshot-only key ``initialOffset`` under ``data``."""
    option = orjson.OPT_SORT_KEYS if sort_keys else 0
    head = orjson.dumps([meta()], option=option)[:-1] + b","
    snapshot = orjson.dumps(full_snapshot(), option=option)
    text = head + snapshot
    marker = b'"initialOffset":' if sort_keys else b'"type":2,'  # a cut "2" could be "23"
    known = text.index(marker, len(head)) + len(marker)
    return text, list(range(len(head), len(text))), known


@pytest.mark.parametrize("sort_keys", [False, True], ids=["type-first", "keys-sorted"])
def test_a_cut_inside_the_first_snapshot_is_flagged(sort_keys):
    text, cuts, known = _cut_inside_snapshot(sort_keys)
    for cut in cuts:
        got = read(text[:cut])
        assert got.report.salvaged and got.events == [meta()], cut
        expected = ("no_full_snapshot", "snapshot_cut") if cut >= known else ("no_full_snapshot",)
        assert got.report.flags == expected, cut


def test_a_cut_after_the_snapshot_or_inside_another_event_is_not_snapshot_cut():
    whole = orjson.dumps([meta(), full_snapshot(), click(T0 + 2), click(T0 + 3)])
    got = read(whole[: whole.rindex(b"{") + 10])  # inside the last click
    assert got.report.salvaged and got.report.flags == ()
    only_meta = orjson.dumps([meta(), click(T0 + 2)])
    cut = read(only_meta[:-8])  # inside a click, before any snapshot
    assert cut.report.flags == ("no_full_snapshot",)


def test_a_json_lines_file_cut_inside_its_snapshot_is_flagged():
    lines = orjson.dumps(meta()) + b"\n" + orjson.dumps(full_snapshot())
    got = read(lines[:-15])
    assert got.report.salvaged and got.report.flags == ("no_full_snapshot", "snapshot_cut")


def test_require_full_snapshot_drops_sessions_without_a_dom_snapshot():
    strict = ReadLimits(require_full_snapshot=True)
    assert read([meta(), full_snapshot()], strict).events
    text, cuts, _ = _cut_inside_snapshot(sort_keys=False)
    cases = {
        "no FullSnapshot (": [meta(), click(T0 + 1)],
        "no FullSnapshot with a DOM": [
            meta(),
            {"type": 2, "data": {"wireframes": []}, "timestamp": T0 + 1},
        ],
        "cut inside the first one": text[: cuts[len(cuts) // 2]],
    }
    for words, events in cases.items():
        with pytest.raises(SessionError) as info:
            read(events, strict)
        assert info.value.reason == "not_rrweb"
        assert words in info.value.detail and "require_full_snapshot" in info.value.detail
        assert read(events).events  # without the option the session loads, flagged


def test_limits_options_are_checked():
    with pytest.raises(ValueError, match="require_timestamps"):
        ReadLimits(require_timestamps=1)
    with pytest.raises(ValueError, match="require_full_snapshot"):
        ReadLimits(require_full_snapshot="yes")
