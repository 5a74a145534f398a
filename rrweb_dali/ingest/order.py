"""The order of a session's events and its exact duplicates.

Events are stable-sorted by timestamp unless one has none (then file order stands: an event
without a time has no place among the others but the one the file gives it), and exact
duplicates (re-sent uploads, merged windows) are dropped by comparing canonical JSON bytes.
"""

from __future__ import annotations

import itertools

import orjson


def count_missing_timestamps(events: list[dict]) -> int:
    """How many events have no numeric ``timestamp`` (bools are not numbers)."""
    return sum(1 for event in events if type(event.get("timestamp")) not in (int, float))


def drop_duplicates(events: list[dict]) -> tuple[list[dict], int]:
    """Drop exact duplicates, keeping the first; returns the kept events and the count dropped.

    Exact duplicates share ``(timestamp, type)``, so canonical bytes are only computed for
    events colliding on that key: in a normal session that is a few bursts of same-millisecond
    events, not every event. Comparing through hashed canonical bytes keeps a file of a million
    colliding events linear. Events without a numeric timestamp are all kept: with no time,
    two equal events (two clicks on one button) cannot be told from a re-sent copy.
    """
    seen: dict[tuple, object] = {}
    kept: list[dict] = []
    dropped = 0
    for event in events:
        stamp = event.get("timestamp")
        if type(stamp) is not int and type(stamp) is not float:
            kept.append(event)
            continue
        key = (stamp, event.get("type"))
        first = seen.get(key)
        if first is None:
            seen[key] = event
            kept.append(event)
            continue
        if type(first) is not set:
            first = {canonical_bytes(first)}
            seen[key] = first
        canonical = canonical_bytes(event)
        if canonical in first:
            dropped += 1
            continue
        first.add(canonical)
        kept.append(event)
    return kept, dropped


def canonical_bytes(value: object) -> bytes:
    """Sorted-key JSON of a parsed value: equal bytes exactly when the values are equal (key
    order aside; ``1``, ``1.0`` and ``true`` differ).

    orjson writes it, up to its limit of 255 levels of nesting: a FullSnapshot only 125 DOM
    levels deep (each level a node object and its ``childNodes`` array) passes that, well
    within ``max_depth``. Deeper values are written by :func:`_iterative_json`, byte for byte
    the same text, with no depth limit.
    """
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:
        return _iterative_json(value)


_ORJSON_DEPTH = 250  # orjson.dumps writes this many levels of nesting (its limit is 255)


def _iterative_json(value: object) -> bytes:
    """orjson's sorted-key JSON of ``value``, at any depth: byte for byte what orjson writes.

    The levels above the last :data:`_ORJSON_DEPTH` of the value's nesting are written here,
    with an explicit stack; every container below them is handed to orjson whole (in a deep
    DOM that is nearly all of it). The stack holds ``(value, depth)`` pairs still to write and
    ``bytes`` of punctuation and keys to copy as they are (parsed JSON never holds ``bytes``).
    Memory stays about the size of the output.
    """
    in_c = _nesting_depth(value) - _ORJSON_DEPTH  # containers at this depth or deeper: orjson
    out = bytearray()
    keys: dict[str, bytes] = {}  # the few distinct keys of a DOM, encoded once
    stack: list = [(value, 0)]
    while stack:
        entry = stack.pop()
        if type(entry) is bytes:
            out += entry
            continue
        item, depth = entry
        kind = type(item)
        if (kind is not dict and kind is not list) or depth >= in_c:
            if kind is int and not -(1 << 63) <= item < 1 << 64:
                out += str(item).encode()  # past orjson's integers; JSON text is exact
            else:
                out += orjson.dumps(item, option=orjson.OPT_SORT_KEYS)
        elif kind is dict:
            out += b"{"
            stack.append(b"}")
            names = sorted(item)
            for i in range(len(names) - 1, -1, -1):
                name = names[i]
                encoded = keys.get(name)
                if encoded is None:
                    encoded = keys[name] = orjson.dumps(name) + b":"
                stack.append((item[name], depth + 1))
                stack.append(b"," + encoded if i else encoded)
        else:
            out += b"["
            stack.append(b"]")
            for i in range(len(item) - 1, -1, -1):
                stack.append((item[i], depth + 1))
                if i:
                    stack.append(b",")
    return bytes(out)


def _nesting_depth(value: object) -> int:
    """Levels of containers in ``value`` (0 for a scalar), measured level by level."""
    depth = 0
    level = [value] if type(value) in (dict, list) else []
    while level:
        depth += 1
        below: list = []
        for item in level:
            below += item.values() if type(item) is dict else item
        level = [x for x in below if type(x) is dict or type(x) is list]
    return depth


def sort_by_timestamp(events: list[dict]) -> bool:
    """Stable-sort in place by timestamp; True when that changed the order."""
    stamps = [event["timestamp"] for event in events]
    if all(a <= b for a, b in itertools.pairwise(stamps)):
        return False
    events.sort(key=_timestamp_of)  # list.sort is stable: equal timestamps keep file order
    return True


def _timestamp_of(event: dict) -> float:
    return event["timestamp"]
