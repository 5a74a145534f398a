"""What a session is as a whole: the flags of its snapshots and the nesting of its DOM trees.

Both are read from the events after duplicates are dropped and the order is settled, so the
flags describe what a trainer will see, and the depth check runs before any recursive consumer.
"""

from __future__ import annotations

from rrweb_dali.errors import SessionError

_FULL_SNAPSHOT, _INCREMENTAL, _MUTATION = 2, 3, 0

#: The flags a :class:`ReadReport` may carry: the session loaded, but a trainer may want to know.
#: ``ReadLimits.require_full_snapshot`` refuses sessions flagged ``no_full_snapshot`` or
#: ``no_dom`` (``snapshot_cut`` always comes with ``no_full_snapshot``).
SESSION_FLAGS: dict[str, str] = {
    "no_full_snapshot": "no FullSnapshot event: the page's DOM is never given",
    "no_dom": "FullSnapshots, but none holds a DOM tree (e.g. PostHog mobile wireframes)",
    "starts_mid_recording": "incremental events before the first FullSnapshot (or with none)",
    "snapshot_cut": "the file was cut inside its first FullSnapshot (salvage kept what precedes)",
}


def session_flags(events: list[dict], snapshot_cut: bool = False) -> tuple[str, ...]:
    """The :data:`SESSION_FLAGS` that apply to ``events`` (in their final order), in the
    table's order. ``snapshot_cut``: a truncation fell inside a FullSnapshot event.

    A DOM tree is a ``data.node`` dict with an int node ``type`` (what rrweb-snapshot
    serializes); PostHog's mobile FullSnapshots carry ``wireframes`` instead. The walk stops
    at the first FullSnapshot with a DOM, which is near the start of a normal recording.
    """
    seen_full = has_dom = incremental_first = False
    for event in events:
        kind = event["type"]
        if kind == _FULL_SNAPSHOT:
            seen_full = True
            data = event.get("data")
            node = data.get("node") if type(data) is dict else None
            if type(node) is dict and type(node.get("type")) is int:
                has_dom = True
                break
        elif kind == _INCREMENTAL and not seen_full:
            incremental_first = True
    found = {
        "no_full_snapshot": not seen_full,
        "no_dom": seen_full and not has_dom,
        "starts_mid_recording": incremental_first,
        "snapshot_cut": snapshot_cut and not seen_full,
    }
    return tuple(flag for flag in SESSION_FLAGS if found[flag])


def check_dom_depth(events: list[dict], max_depth: int) -> None:
    """Raise ``too_deep`` when a serialized DOM tree nests deeper than ``max_depth`` levels.

    Trees are full-snapshot ``data.node`` and each mutation ``adds[].node`` (whose depth counts
    from the added node, as its parent's depth is not known here). All trees of the session are
    walked together, level by level: every root is level 1, so one breadth-first pass measures
    them all, with no recursion (a hostile tree never reaches ``RecursionError``) and no
    per-tree call overhead (sessions hold thousands of small mutation adds).
    """
    level: list = []
    for event in events:
        kind = event["type"]
        if kind != _FULL_SNAPSHOT and kind != _INCREMENTAL:
            continue
        data = event.get("data")
        if type(data) is not dict:
            continue
        if kind == _FULL_SNAPSHOT:
            level.append(data.get("node"))
        elif data.get("source") == _MUTATION and type(adds := data.get("adds")) is list:
            level += [add.get("node") for add in adds if type(add) is dict]
    depth = 1
    while level:
        level = [
            child
            for node in level
            if type(node) is dict and type(children := node.get("childNodes")) is list
            for child in children
        ]
        if level:
            depth += 1
            if depth > max_depth:
                raise SessionError(
                    "too_deep",
                    f"DOM nesting over max_depth {max_depth} (in a full snapshot or mutation)",
                )
