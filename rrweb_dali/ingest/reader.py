"""Read one session file into a clean, ordered list of rrweb events.

This is the one entry point the rest of the pipeline uses for raw recordings. It owns the
guarantees downstream stages rely on:

* every returned item is an event: a dict with an int ``type`` and either a numeric
  ``timestamp`` or a dict ``data`` (an event without a timestamp: rrweb's own snapshot tests
  delete them; counted in ``ReadReport.missing_timestamps``, refused with
  ``ReadLimits.require_timestamps``). Other items are counted in ``skipped['not_event']``;
* events are stable-sorted by timestamp (recorders and merges emit them out of order), unless
  any event has none: then file order is kept as it is, because an event without a time has no
  place among the others but the one the file gives it (``reordered`` is False);
* exact duplicates are dropped (re-sent uploads, merged windows) and counted;
* DOM nesting of full snapshots and mutation adds is within ``max_depth``, checked iteratively,
  so the recursive consumers after us cannot hit ``RecursionError``;
* what is unusual about the recording as a whole (no FullSnapshot, no DOM tree, incremental
  events before the first snapshot, a truncation through the first snapshot) is named in
  ``ReadReport.flags`` (:data:`~.structure.SESSION_FLAGS`);
  ``ReadLimits.require_full_snapshot`` refuses a session without a DOM snapshot;
* every failure is a :class:`SessionError` with a reason from ``rrweb_dali.errors``.
"""

from __future__ import annotations

import gc
import logging
import os
import stat
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import orjson

from rrweb_dali.errors import SessionError
from rrweb_dali.ingest.collect import DECODE_FAILURES, Extracted
from rrweb_dali.ingest.decompress import ByteBudget, detect_compression, inflate
from rrweb_dali.ingest.formats import extract_events
from rrweb_dali.ingest.limits import ReadLimits
from rrweb_dali.ingest.order import count_missing_timestamps, drop_duplicates, sort_by_timestamp
from rrweb_dali.ingest.parse_cost import StructureCount, admit_document, refuse_scalar_array
from rrweb_dali.ingest.structure import check_dom_depth, session_flags

logger = logging.getLogger(__name__)

_BOM = b"\xef\xbb\xbf"
_FULL_SNAPSHOT = 2


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
    #: events kept without a numeric ``timestamp`` (their time delta tokenizes as unknown)
    missing_timestamps: int = 0
    #: what is unusual about the recording as a whole, from :data:`~.structure.SESSION_FLAGS`
    flags: tuple[str, ...] = ()


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
            # A buffer of the file's size (not of max_bytes: address space a memory cap counts);
            # then whatever it grew by since stat, up to the limit.
            data = handle.read(info.st_size + 1)
            if len(data) > info.st_size:
                data += handle.read(limits.max_bytes + 1 - len(data))
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
    budget = ByteBudget(limits.max_bytes, limits.max_memory)
    compression = detect_compression(data)
    count = StructureCount()  # what parsing will cost, known before it is paid (parse_cost)
    if compression:
        budget.hold(bytes_in)
        data = inflate(data, compression, budget, count)
    else:
        budget.take(bytes_in)
        count.feed_whole(data)
    admit_document(count, budget)
    if data.startswith(_BOM):
        data = data[len(_BOM) :]
    refuse_scalar_array(data)

    extracted = extract_events(data, budget, limits)
    if not extracted.events:
        raise _no_events_error(extracted)
    events, duplicates = drop_duplicates(extracted.events)
    check_dom_depth(events, limits.max_depth)
    missing = count_missing_timestamps(events)
    if missing and limits.require_timestamps:
        raise SessionError(
            "not_rrweb",
            f"{missing} of {len(events)} events have no numeric timestamp "
            "(ReadLimits.require_timestamps)",
        )
    reordered = False if missing else sort_by_timestamp(events)
    flags = session_flags(events, extracted.salvaged and extracted.cut_type == _FULL_SNAPSHOT)
    if limits.require_full_snapshot and ("no_full_snapshot" in flags or "no_dom" in flags):
        what = "no FullSnapshot" if "no_full_snapshot" in flags else "no FullSnapshot with a DOM"
        cut = ", the file was cut inside the first one" if "snapshot_cut" in flags else ""
        raise SessionError("not_rrweb", f"{what}{cut} (ReadLimits.require_full_snapshot)")
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
        missing_timestamps=missing,
        flags=flags,
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
