"""The walk over parsed JSON that finds a recording's events, whatever wraps them.

:class:`EventCollector` takes a parsed document (or one JSON Lines line) and collects every event
in it: inside wrapper objects (``{"events": [...]}``, PostHog's API shapes), nested arrays,
PostHog ``[window_id, event]`` pairs, @rrweb/packer strings and PostHog ``cv`` payloads (each
inflated and parsed against the file's budget). What is not an event is counted in ``skipped``
by kind, never dropped silently. :mod:`.formats` decides how a file's bytes become parsed JSON.

An event is a dict with an int ``type``; it normally has a numeric ``timestamp``. One without
(rrweb's own snapshot tests delete every timestamp) is an event too when its ``data`` is a dict:
an int ``type`` alone is too weak a sign (a serialized DOM node has one), ``type`` and ``data``
together are the shape of an event.
"""

from __future__ import annotations

import zlib
from collections import Counter
from dataclasses import dataclass, field

import orjson

from rrweb_dali.errors import SessionError
from rrweb_dali.ingest.decompress import ByteBudget, inflate_string
from rrweb_dali.ingest.limits import ReadLimits
from rrweb_dali.ingest.parse_cost import charge_text

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
