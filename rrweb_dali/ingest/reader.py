"""Read one session file into a clean, ordered list of rrweb events.

This is the one entry point the rest of the pipeline uses for raw recordings. It owns the
guarantees downstream stages rely on:

* every returned item is an event: a dict with an int ``type`` and a numeric ``timestamp``
  (items without both are not events; they are counted in ``skipped['not_event']``, so no
  "missing timestamp" case reaches the ordering step);
* events are stable-sorted by timestamp (recorders and merges emit them out of order);
* exact duplicates are dropped (re-sent uploads, merged windows) and counted;
* DOM nesting of full snapshots and mutation adds is within ``max_depth``, checked iteratively,
  so the recursive consumers after us cannot hit ``RecursionError``;
* every failure is a :class:`SessionError` with a reason from ``rrweb_dali.errors``.
"""

from __future__ import annotations

import gc
import itertools
import logging
import os
import stat
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import orjson

from rrweb_dali.errors import SessionError
from rrweb_dali.ingest.decompress import ByteBudget, detect_compression, inflate
from rrweb_dali.ingest.formats import DECODE_FAILURES, Extracted, extract_events
from rrweb_dali.ingest.limits import ReadLimits

logger = logging.getLogger(__name__)

_BOM = b"\xef\xbb\xbf"
_FULL_SNAPSHOT, _INCREMENTAL, _MUTATION = 2, 3, 0


@dataclass
class ReadReport:
    """What reading one file did: counted, so nothing is dropped silently.

    ``bytes_decoded`` is all JSON text parsed for the file: the decompressed document plus the
    JSON inflated from packed strings and PostHog ``cv`` payloads (the quantity ``max_bytes``
    bounds, and the one a throughput number should divide by).
    """

    format: str
    compression: str | None
    bytes_in: int
    bytes_decoded: int
    events: int
    duplicates_dropped: int
    reordered: bool
    salvaged: bool
    salvage_detail: str | None
    skipped: dict[str, int] = field(default_factory=dict)


@dataclass
class Session:
    """The events of one recording and the report of how they were read."""

    events: list[dict]
    report: ReadReport


def load_session(path: str | os.PathLike, limits: ReadLimits | None = None) -> Session:
    """Read a session file of any supported format and compression."""
    limits = limits or ReadLimits()
    name = os.fspath(path)
    data = read_file_bytes(name, limits)
    return parse_session_bytes(data, limits, name=name)


def read_session(path: str | os.PathLike, limits: ReadLimits | None = None) -> list[dict]:
    """The events of a session file (see :func:`load_session` for the report)."""
    return load_session(path, limits).events


def parse_session_bytes(
    data: bytes, limits: ReadLimits | None = None, name: str = "<bytes>"
) -> Session:
    """Read a session from the raw bytes of a file (compressed or not)."""
    limits = limits or ReadLimits()
    if not isinstance(data, bytes):
        data = bytes(data)  # bytearray / memoryview: the parsers below want bytes methods
    try:
        with _gc_paused():
            session = _parse(data, limits)
    except SessionError as exc:
        raise exc.with_path(name) from None
    except MemoryError:
        raise SessionError("too_large", "out of memory while reading", name) from None
    except RecursionError:
        raise SessionError("too_deep", "nesting too deep to process", name) from None
    except (UnicodeError, orjson.JSONDecodeError) as exc:
        raise SessionError("not_json", f"{type(exc).__name__}: {exc}", name) from None
    except zlib.error as exc:
        raise SessionError("bad_compression", str(exc), name) from None
    except (TypeError, KeyError, IndexError, AttributeError, ValueError) as exc:
        # A shape no rule foresaw: classify it as bad input rather than crash the caller, and
        # log the traceback so the gap can be fixed.
        logger.warning("unexpected structure in %s", name, exc_info=True)
        raise SessionError("not_rrweb", f"{type(exc).__name__}: {exc}", name) from None
    if session.report.salvaged:
        logger.warning("salvaged %s: %s", name, session.report.salvage_detail)
    return session


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while one document is parsed.

    orjson builds hundreds of thousands of dicts and lists per session, and every 700
    allocations the collector traverses the young containers again: on a 124 MB session,
    reading ran about 2x slower with the collector on (small files gain ~10%). Nothing built
    here forms a reference cycle, so pausing frees nothing late; the previous state is restored
    on every exit path, and results do not depend on it (the pause changes speed only).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def read_file_bytes(name: str, limits: ReadLimits) -> bytes:
    """The file's bytes, refusing files over ``max_bytes`` before reading them."""
    try:
        info = os.stat(name)
        if not stat.S_ISREG(info.st_mode):
            what = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file"
            raise SessionError("io_error", f"{what}", name)
        if info.st_size > limits.max_bytes:
            raise SessionError(
                "too_large", f"{info.st_size} bytes on disk > max_bytes {limits.max_bytes}", name
            )
        with open(name, "rb") as handle:
            data = handle.read(limits.max_bytes + 1)  # the file may have grown since stat
    except SessionError:
        raise
    except (OSError, ValueError) as exc:  # ValueError: a path with a NUL byte
        raise SessionError("io_error", f"{type(exc).__name__}: {exc}", name) from None
    if len(data) > limits.max_bytes:
        raise SessionError("too_large", f"more than max_bytes {limits.max_bytes} on disk", name)
    return data


def _parse(data: bytes, limits: ReadLimits) -> Session:
    bytes_in = len(data)
    if bytes_in > limits.max_bytes:
        raise SessionError("too_large", f"{bytes_in} bytes > max_bytes {limits.max_bytes}")
    budget = ByteBudget(limits.max_bytes)
    compression = detect_compression(data)
    if compression:
        data = inflate(data, compression, budget)
    else:
        budget.take(bytes_in)
    if data.startswith(_BOM):
        data = data[len(_BOM) :]

    extracted = extract_events(data, budget, limits)
    if not extracted.events:
        raise _no_events_error(extracted)
    events, duplicates = _drop_duplicates(extracted.events)
    check_dom_depth(events, limits.max_depth)
    reordered = _sort_by_timestamp(events)
    if extracted.skipped:
        logger.debug("skipped items: %s", extracted.skipped)
    report = ReadReport(
        format=extracted.format,
        compression=compression,
        bytes_in=bytes_in,
        bytes_decoded=budget.used,
        events=len(events),
        duplicates_dropped=duplicates,
        reordered=reordered,
        salvaged=extracted.salvaged,
        salvage_detail=extracted.salvage_detail,
        skipped=extracted.skipped,
    )
    return Session(events, report)


def _no_events_error(extracted: Extracted) -> SessionError:
    """``empty`` for nothing at all, ``bad_compression`` when every item failed to inflate."""
    if extracted.items_seen == 0:
        return SessionError("empty", f"no events ({extracted.format} document with no items)")
    if set(extracted.skipped) <= set(DECODE_FAILURES):
        return SessionError(
            "bad_compression", f"no item decompressed into an event: {extracted.skipped}"
        )
    return SessionError("not_rrweb", f"valid JSON but no rrweb events: skipped {extracted.skipped}")


def _drop_duplicates(events: list[dict]) -> tuple[list[dict], int]:
    """Drop exact duplicates, keeping the first; returns the kept events and the count dropped.

    Exact duplicates share ``(timestamp, type)``, so canonical bytes (sorted-key JSON) are only
    computed for events colliding on that key: in a normal session that is a few bursts of
    same-millisecond events, not every event.
    """
    seen: dict[tuple, object] = {}
    kept: list[dict] = []
    dropped = 0
    for event in events:
        key = (event["timestamp"], event["type"])
        first = seen.get(key)
        if first is None:
            seen[key] = event
            kept.append(event)
            continue
        if type(first) is not set:
            first = {orjson.dumps(first, option=orjson.OPT_SORT_KEYS)}
            seen[key] = first
        canonical = orjson.dumps(event, option=orjson.OPT_SORT_KEYS)
        if canonical in first:
            dropped += 1
            continue
        first.add(canonical)
        kept.append(event)
    return kept, dropped


def _sort_by_timestamp(events: list[dict]) -> bool:
    """Stable-sort in place by timestamp; True when that changed the order."""
    stamps = [event["timestamp"] for event in events]
    if all(a <= b for a, b in itertools.pairwise(stamps)):
        return False
    events.sort(key=_timestamp_of)  # list.sort is stable: equal timestamps keep file order
    return True


def _timestamp_of(event: dict) -> float:
    return event["timestamp"]


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
