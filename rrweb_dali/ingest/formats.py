"""Every shape rrweb recordings are stored in, turned into one flat list of event dicts.

Real recordings reach us as a JSON array (the rrweb standard), JSON Lines, ``{"events": [...]}``
wrappers, arrays nested in arrays, @rrweb/packer strings, PostHog API objects and blob lines
(with ``cv`` gzip-compressed payloads), Sentry replay segments, the data literal of a JS/TS
module (``export default [...]``, ``const events: eventWithTime[] = [...]``; see ``jsliteral``)
and Sentry's test snapshots. This module turns a file's text into parsed JSON (and salvages what
a truncation left); :mod:`.collect` finds the events in it (what counts as an event is defined
there); the caller (``reader``) owns limits on the result, duplicates and ordering.

Per-event problems (an item that is not an event, a packed string or ``cv`` payload that does not
decode, a JSON Lines line that does not parse) are counted in ``skipped`` by kind and reading goes
on: one bad event must not cost a whole session, and nothing is dropped without a count.
"""

from __future__ import annotations

import logging
import re

import orjson

from rrweb_dali.errors import SessionError
from rrweb_dali.ingest.collect import EventCollector, Extracted
from rrweb_dali.ingest.decompress import ByteBudget, detect_compression, inflate
from rrweb_dali.ingest.jsliteral import line_of, looks_like_module, read_module
from rrweb_dali.ingest.limits import ReadLimits
from rrweb_dali.ingest.salvage import (
    Cut,
    cut_event_type,
    drop_cut_character,
    has_cut_character,
    load_array_document,
    parser_limit,
    salvage_array,
)

logger = logging.getLogger(__name__)

_NON_SPACE = re.compile(rb"[^ \t\r\n]")
_SENTRY_HEADER = re.compile(rb'\{\s*"segment_id"\s*:')
_SENTRY_PLACEHOLDER = re.compile(rb'("timestamp"\s*:\s*)\[timestamp\]')


def _parse_json_lines(text: bytes, collector: EventCollector) -> Cut | None:
    """Feed every line of a JSON Lines document to ``collector``.

    A line that does not parse is counted (``bad_json_line``); the last line failing with
    "end of data" is a truncated write, salvaged by dropping it.
    """
    lines = text.split(b"\n")
    while lines and not lines[-1].strip():
        lines.pop()
    cut = None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            if (limit := parser_limit(exc)) is not None:
                raise limit from None
            is_last = number == len(lines)
            if is_last and ("end of data" in exc.msg or has_cut_character(line)):
                detail = f"dropped an incomplete last line ({len(line)} bytes)"
                logger.warning("salvaged truncated JSON Lines: %s", detail)
                cut = Cut(detail, cut_event_type(line, len(line) - len(line.lstrip())))
                continue
            collector.skipped["bad_json_line"] += 1
            collector.items_seen += 1
            continue
        if type(value) is str:
            collector.add_packed(value)  # one packed event per line
        else:
            collector.add(value)
    if cut and not collector.events:
        raise SessionError("truncated", "JSON Lines cut before any complete event")
    return cut


def _first_line_value(text: bytes, start: int) -> object | None:
    end = text.find(b"\n", start)
    if end < 0:
        return None
    try:
        return orjson.loads(text[start:end])
    except orjson.JSONDecodeError:
        return None


def _sentry_segment(text: bytes, start: int, budget: ByteBudget) -> tuple[bytes, int]:
    """The event array of a Sentry replay segment: ``{"segment_id": N}\\n`` + events.

    The SDK compresses only the events after the header line (zlib), while stored copies are
    often compressed as a whole (already undone by the caller); both are handled.
    """
    newline = text.find(b"\n", start)
    if newline < 0:
        raise SessionError("empty", "Sentry segment header without events")
    try:
        header = orjson.loads(text[start:newline])
    except orjson.JSONDecodeError as exc:
        raise SessionError("not_json", f"bad Sentry segment header: {exc.msg}") from None
    if type(header) is not dict:
        raise SessionError("not_json", "Sentry segment header is not an object")
    body = text[newline + 1 :]
    kind = detect_compression(body)
    if kind:
        body = inflate(body, kind, budget)
    match = _NON_SPACE.search(body)
    if match is None:
        raise SessionError("empty", "Sentry segment without events")
    return body, match.start()


def extract_events(text: bytes, budget: ByteBudget, limits: ReadLimits) -> Extracted:
    """Find the events in one decoded document (BOM already stripped).

    Raises ``SessionError`` for documents that are empty, not JSON in any known form, cut
    before any complete event, or nested past the parser's depth limit.
    """
    first = _NON_SPACE.search(text)
    if first is None:
        raise SessionError("empty", "no content (empty or whitespace only)")
    start = first.start()
    collector = EventCollector(budget, limits)
    document_format = None
    cut = None

    if _SENTRY_HEADER.match(text, start):
        body, body_start = _sentry_segment(text, start, budget)
        value, cut = load_array_document(body, body_start)
        collector.add(value)
        document_format = "sentry"
    else:
        try:
            collector.add(orjson.loads(text))
        except orjson.JSONDecodeError as exc:
            if (limit := parser_limit(exc)) is not None:
                raise limit from None
            if "UTF-8" in exc.msg:
                document_format, cut = _parse_cut_character(text, start, collector)
            else:
                document_format, cut = _parse_fallback(text, start, exc, collector)

    extracted = collector.result(document_format)
    if cut is not None:
        extracted.salvaged = True
        extracted.salvage_detail = cut.detail
        extracted.cut_type = cut.event_type
    return extracted


def _parse_cut_character(
    text: bytes, start: int, collector: EventCollector
) -> tuple[str | None, Cut]:
    """orjson rejected the UTF-8: a truncation inside a multibyte character, or not text.

    orjson validates the whole input before parsing, so a cut through a character would hide
    the truncation; we drop the partial character and parse on as a truncated document. Any
    other invalid UTF-8 is ``not_json``.
    """
    text = drop_cut_character(text)
    if _NON_SPACE.search(text) is None:
        raise SessionError("not_json", "only a partial UTF-8 character")
    cut_note = "dropped a multibyte character cut at the end of the file"
    try:
        collector.add(orjson.loads(text))
        return None, Cut(cut_note)
    except orjson.JSONDecodeError as exc:
        if (limit := parser_limit(exc)) is not None:
            raise limit from None
        document_format, cut = _parse_fallback(text, start, exc, collector)
        return document_format, cut.after(cut_note) if cut else Cut(cut_note)


def _parse_fallback(
    text: bytes, start: int, exc: orjson.JSONDecodeError, collector: EventCollector
) -> tuple[str | None, Cut | None]:
    """The document is not one JSON value: JSON Lines, JS, a Sentry fixture, or truncated."""
    if "after document" in exc.msg and _first_line_value(text, start) is not None:
        return "jsonl", _parse_json_lines(text, collector)
    if b"[timestamp]" in text:
        value = _sentry_fixture(text)
        if value is not None:
            collector.add(value)
            return "sentry-fixture", None
    if text[start] not in b'[{"':
        if not looks_like_module(text, start):
            raise SessionError("not_json", f"{exc.msg} at byte {exc.pos}")
        return _parse_module(text, start, collector)
    value, cut = load_array_document(text, start, exc)
    collector.add(value)
    return None, cut


def _parse_module(text: bytes, start: int, collector: EventCollector) -> tuple[str, Cut | None]:
    """A JS/TS module: its data literal, read without evaluation (``jsliteral``). A file cut
    inside a literal of JSON syntax is salvaged like a JSON array; one of JSON5 syntax is not
    (its complete elements cannot be told apart without a JSON5 scanner)."""
    module = read_module(text, start)
    if not module.truncated:
        collector.add(module.value)
        return module.format, None
    if text[module.begin : module.begin + 1] == b"[":
        try:
            items, cut = salvage_array(text, module.begin)
        except SessionError:
            items = None
        if items:
            collector.add(items)
            return "js-array", cut
    raise SessionError(
        "truncated",
        f"the file ends inside its JS data literal (opened at line "
        f"{line_of(text, module.begin)}) with no complete JSON element to salvage",
    )


def _sentry_fixture(text: bytes) -> object | None:
    """Sentry's test snapshots: one pretty-printed event with a literal ``[timestamp]``.

    This is a *fixture normalisation*, not a production format: sentry-javascript's test suite
    replaces every timestamp with the placeholder ``[timestamp]``, which is not JSON. We put
    ``0`` in its place and read the file as a one-event session, so the public fixtures can
    serve as test input. Only placeholders in the value position of a ``"timestamp"`` key are
    replaced; strings are left alone.
    """
    normalised = _SENTRY_PLACEHOLDER.sub(rb"\g<1>0", text)
    try:
        return orjson.loads(normalised)
    except orjson.JSONDecodeError as exc:
        if (limit := parser_limit(exc)) is not None:
            raise limit from None
        return None
