"""Every shape rrweb recordings are stored in, turned into one flat list of event dicts.

Real recordings reach us as a JSON array (the rrweb standard), JSON Lines, ``{"events": [...]}``
wrappers, arrays nested in arrays, @rrweb/packer strings, PostHog API objects and blob lines
(with ``cv`` gzip-compressed payloads), Sentry replay segments, the data literal of a JS/TS
module (``export default [...]``, ``const events: eventWithTime[] = [...]``; see ``jsliteral``)
and Sentry's test snapshots. This module knows those shapes; the caller (``reader``) owns limits
on the result, duplicates and ordering.

An event is a dict with an int ``type``; it normally has a numeric ``timestamp``. One without
(rrweb's own snapshot tests delete every timestamp) is an event too when its ``data`` is a dict,
and the reader counts it in ``missing_timestamps``: an int ``type`` alone is too weak a sign
(a serialized DOM node has one), ``type`` and ``data`` together are the shape of an event.

Per-event problems (an item that is not an event, a packed string or ``cv`` payload that does not
decode, a JSON Lines line that does not parse) are counted in ``skipped`` by kind and reading goes
on: one bad event must not cost a whole session, and nothing is dropped without a count.
"""

from __future__ import annotations

import logging
import re
import zlib
from collections import Counter
from dataclasses import dataclass, field

import orjson

from rrweb_dali.errors import SessionError
from rrweb_dali.ingest.decompress import ByteBudget, detect_compression, inflate, inflate_string
from rrweb_dali.ingest.jsliteral import line_of, looks_like_module, read_module
from rrweb_dali.ingest.limits import ReadLimits
from rrweb_dali.ingest.parse_cost import charge_text
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

# Skip kinds that mean "compressed data that did not decode": a file whose every item failed
# this way is reported as bad_compression rather than not_rrweb.
DECODE_FAILURES = ("bad_packed_string", "bad_cv_payload")
_POSTHOG_CV_FIELDS = ("adds", "removes", "texts", "attributes")
# Document shapes, strongest first: the one reported when several apply.
_FORMAT_PRIORITY = (
    "sentry",
    "sentry-fixture",
    "posthog",
    "js-literal",
    "js-array",
    "jsonl",
    "wrapper",
    "packed",
    "nested",
    "json",
)

_NON_SPACE = re.compile(rb"[^ \t\r\n]")
_SENTRY_HEADER = re.compile(rb'\{\s*"segment_id"\s*:')
_SENTRY_PLACEHOLDER = re.compile(rb'("timestamp"\s*:\s*)\[timestamp\]')


@dataclass
class Extracted:
    """Events found in one document, before dedup / sort / limits on the result."""

    events: list[dict]
    format: str
    skipped: dict[str, int]
    items_seen: int
    salvaged: bool = False
    salvage_detail: str | None = None
    #: the top-level ``type`` of the event a truncation cut through, when it is known
    cut_type: int | None = None


def is_event(item: object) -> bool:
    """An rrweb event: a dict with an int ``type`` and a numeric ``timestamp`` (bools excluded).

    ``data`` is not required: DomContentLoaded / Load events of older recorders have none.
    """
    return (
        type(item) is dict
        and type(item.get("type")) is int
        and type(item.get("timestamp")) in (int, float)
    )


def is_unstamped_event(item: dict) -> bool:
    """An rrweb event without a numeric ``timestamp``: an int ``type`` and a dict ``data``
    (checked only for dicts that are neither a stamped event nor a known wrapper)."""
    return (
        type(item.get("type")) is int
        and type(item.get("data")) is dict
        and type(item.get("timestamp")) not in (int, float)
    )


@dataclass
class EventCollector:
    """Walks parsed JSON (iteratively: nesting can reach orjson's 1024 levels) collecting events."""

    budget: ByteBudget
    limits: ReadLimits
    events: list[dict] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)
    shapes: set[str] = field(default_factory=set)
    items_seen: int = 0

    def add(self, root: object) -> None:
        """Collect the events in ``root`` (a whole document, or one JSON Lines line)."""
        stack = [iter((root,))]
        while stack:
            for item in stack[-1]:
                kind = type(item)
                if kind is dict:
                    if is_event(item):
                        self._take(item)
                        continue
                    children = self._container_items(item)
                    if children is None:
                        if is_unstamped_event(item):
                            self._take(item)
                        else:
                            self._skip("not_event")
                        continue
                    stack.append(children)
                    break
                if kind is list:
                    if self._is_posthog_pair(item):
                        self.shapes.add("posthog")
                        self._take(item[1])
                        continue
                    if len(stack) > 1:
                        self.shapes.add("nested")
                    stack.append(iter(item))
                    break
                if kind is str and len(stack) > 1:
                    self._take_packed(item)
                else:
                    self._skip("not_event")
            else:
                stack.pop()

    @staticmethod
    def _is_posthog_pair(item: list) -> bool:
        """PostHog blob lines are ``[window_id, event]`` pairs."""
        return len(item) == 2 and type(item[0]) is str and is_event(item[1])

    def _container_items(self, obj: dict):
        """An iterator over the items of a known wrapper object, or None if it is not one."""
        by_window = obj.get("snapshot_data_by_window_id")
        if type(by_window) is dict:
            self.shapes.add("posthog")
            return self._window_items(by_window.values())
        result = obj.get("result")
        if type(result) is dict:
            return iter((result,))
        snapshots = obj.get("snapshots")
        if type(snapshots) is list:
            self.shapes.add("posthog")
            return iter(snapshots)
        events = obj.get("events")
        if type(events) is list:
            self.shapes.add("wrapper")
            return iter(events)
        data = obj.get("data")
        if type(data) is list and ("window_id" in obj or "windowId" in obj):
            self.shapes.add("posthog")
            return iter(data)
        return None

    def _window_items(self, windows):
        """Items of every window, in file order (the reader sorts the merged list by time)."""
        for window in windows:
            if type(window) is list:
                yield from window
            else:
                self._skip("not_event")

    def _skip(self, kind: str) -> None:
        self.items_seen += 1
        self.skipped[kind] += 1

    def _take(self, event: dict) -> None:
        self.items_seen += 1
        if "cv" in event and not self._expand_posthog_cv(event):
            self._skip_seen("bad_cv_payload")
            return
        if len(self.events) >= self.limits.max_events:
            raise SessionError(
                "too_large", f"more than {self.limits.max_events} events (max_events)"
            )
        self.events.append(event)

    def _skip_seen(self, kind: str) -> None:
        self.skipped[kind] += 1  # the item was already counted as seen

    def _decode_json(self, raw: bytes | str, what: str) -> object:
        """Parse one embedded JSON text (a packed event, a ``cv`` payload), its estimated
        memory charged to the file's budget first (``too_large`` past ``max_memory``).

        Raises ``orjson.JSONDecodeError`` for text that is not JSON, nesting past the parser's
        limit included: one bad embedded event is skipped and counted like any other, it does
        not cost the session.
        """
        encoded = raw.encode() if type(raw) is str else raw
        charge_text(encoded, self.budget, what)
        return orjson.loads(encoded)

    def add_packed(self, text: str) -> None:
        """Collect one @rrweb/packer string that stands alone (a JSON Lines line)."""
        self._take_packed(text)

    def _take_packed(self, text: str) -> None:
        """An @rrweb/packer string: zlib-deflated event JSON carried as latin-1 characters.

        Like the packer's own ``unpack``, a string holding plain event JSON is accepted too.
        The packer's ``"v"`` marker key is dropped: it describes the packing, not the event.
        """
        try:
            if text[:1] == "{":
                event = self._decode_json(text, "a packed event")
            else:
                raw = inflate_string(text.encode("latin-1"), self.budget)
                event = self._decode_json(raw, "a packed event")
        except (UnicodeEncodeError, zlib.error, orjson.JSONDecodeError):
            self._skip("bad_packed_string")
            return
        if not is_event(event) and not (type(event) is dict and is_unstamped_event(event)):
            self._skip("bad_packed_string")
            return
        event.pop("v", None)
        self.shapes.add("packed")
        self._take(event)

    def _gunzip_json(self, text: str) -> object:
        raw = inflate_string(text.encode("latin-1"), self.budget)
        return self._decode_json(raw, "a PostHog cv payload")

    def _expand_posthog_cv(self, event: dict) -> bool:
        """Decompress a PostHog ``cv`` event in place; False when a payload does not decode.

        Since ``cv: "2024-10"`` PostHog gzips a FullSnapshot's ``data`` and a Mutation's
        ``adds`` / ``removes`` / ``texts`` / ``attributes`` separately, each carried as a
        latin-1 string. Once expanded the ``cv`` key is removed, so no later stage tries to
        decompress the event a second time.
        """
        self.shapes.add("posthog")
        data = event.get("data")
        try:
            if event["type"] == 2 and type(data) is str:
                event["data"] = self._gunzip_json(data)
            elif event["type"] == 3 and type(data) is dict and data.get("source") == 0:
                for key in _POSTHOG_CV_FIELDS:
                    if type(data.get(key)) is str:
                        data[key] = self._gunzip_json(data[key])
        except (UnicodeEncodeError, zlib.error, orjson.JSONDecodeError):
            return False
        del event["cv"]
        return True

    def result(self, document_format: str | None) -> Extracted:
        shapes = set(self.shapes)
        if document_format:
            shapes.add(document_format)
        fmt = next((name for name in _FORMAT_PRIORITY if name in shapes), "json")
        return Extracted(self.events, fmt, dict(sorted(self.skipped.items())), self.items_seen)


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
