"""Recover the complete events of a truncated JSON array.

Uploads get cut (tab closed mid-flush, a full disk, a size cap on a proxy). Everything before
the cut is still good data, so instead of rejecting the file we find the last element of the
top-level array that was written completely and parse the array up to there. A truncated file
with no complete element is ``truncated``.

Only the top-level array is salvaged (the rrweb standard and the packed format); a truncated
wrapper object (``{"events": [...`` cut short) is reported as ``truncated``. JSON Lines need no
scanner: every line is its own document (see ``formats``). A cut through a multibyte UTF-8
character is recognised as a cut (orjson would call the whole file invalid UTF-8) and the partial
character dropped.

What was lost is described by a :class:`Cut`, which also names the top-level ``type`` of the
event the cut fell in when it can be read from the partial text: a cut through the first
FullSnapshot (type 2) leaves a session with no DOM, which the reader flags ``snapshot_cut``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import orjson

from rrweb_dali.errors import SessionError


# Element ends are found with the standard library's C scanner (``raw_decode`` parses one value
# from an offset and says where it ended), run over a latin-1 view of the bytes: one character
# per byte, so its offsets are byte offsets, and JSON syntax is ASCII, so a UTF-8 character
# inside a string is just string content to it. The values it builds are thrown away; orjson
# parses the recovered prefix, so salvaged events are exactly what a complete file would give.
# NaN / Infinity are JSON to the standard library only: they end the salvage.
def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


_SCANNER = json.JSONDecoder(parse_constant=_reject_constant)
_SPACE = re.compile(r"[ \t\r\n]*")
_BYTE_SPACE = re.compile(rb"[ \t\r\n]*")

# A partial JSON object read just far enough to find its top-level "type": strings whole (an
# unterminated one is simply not matched) and brackets, for the depth.
_PARTIAL_TOKEN = re.compile(rb'"(?:[^"\\]|\\[\s\S])*"|[{}\[\]]')
_COLON = re.compile(rb"\s*:")
_SNAPSHOT_DATA_KEYS = (b'"node"', b'"initialOffset"')
_TYPE_VALUE = re.compile(rb"\s*:\s*(-?\d+)\s*[,}]")  # complete: a cut "2" may be "23"


@dataclass(frozen=True)
class Cut:
    """What a salvage dropped: a one-line description, and the top-level ``type`` of the
    event the cut fell in (None when it is not known)."""

    detail: str
    event_type: int | None = None

    def after(self, note: str) -> Cut:
        """The same cut, its description preceded by ``note``."""
        return Cut(f"{note}; {self.detail}", self.event_type)


def cut_event_type(text: bytes, start: int) -> int | None:
    """The top-level ``"type"`` of the JSON object opening at ``text[start]``, read from text
    that may stop anywhere (a truncated file); None when it is not an object or not known.

    Recorders write ``type`` first; when the cut comes before it (or keys are sorted, ``data``
    first), a ``data.node`` or ``data.initialOffset`` key, which only a FullSnapshot has, still
    says 2. Cost: one regex pass up to whichever comes first.
    """
    if text[start : start + 1] != b"{":
        return None
    depth = 0
    key = b""  # the last key seen at the top level of the object
    for match in _PARTIAL_TOKEN.finditer(text, start):
        token = match.group()
        if token in (b"{", b"["):
            depth += 1
        elif token in (b"}", b"]"):
            depth -= 1
            if depth == 0:
                return None
        elif depth == 1 and _COLON.match(text, match.end()):
            if token == b'"type"':
                value = _TYPE_VALUE.match(text, match.end())
                return int(value.group(1)) if value else None
            key = token
        elif (
            depth == 2
            and key == b'"data"'
            and token in _SNAPSHOT_DATA_KEYS
            and _COLON.match(text, match.end())
        ):
            return 2
    return None


# orjson verifies each candidate end, last first (the standard library accepts a few things
# orjson does not, such as integers over 64 bits); the cap keeps the search linear.
_MAX_ATTEMPTS = 8


def element_ends(text: bytes, start: int) -> list[int]:
    """Offsets just past each complete element of the array opening at ``text[start]``."""
    view = text.decode("latin-1")
    ends: list[int] = []
    pos = start + 1
    while True:
        pos = _SPACE.match(view, pos).end()
        if pos >= len(view) or view[pos] == "]":
            return ends
        try:
            _, pos = _SCANNER.raw_decode(view, pos)
        except (ValueError, RecursionError):
            return ends  # the element the cut fell in (or the first one that is not JSON)
        ends.append(pos)
        pos = _SPACE.match(view, pos).end()
        if view[pos : pos + 1] != ",":
            return ends
        pos += 1


def salvage_array(text: bytes, start: int) -> tuple[list, Cut]:
    """Parse the complete elements of the truncated array opening at ``text[start]``.

    Returns the recovered elements and what was cut (the type of the first element dropped,
    when it is an object whose ``type`` the partial text shows). Raises
    ``SessionError('truncated')`` when no element was complete, and ``too_deep`` when the
    recovered prefix is nested past orjson's limit.
    """
    ends = element_ends(text, start)
    for attempt, end in enumerate(reversed(ends)):
        if attempt >= _MAX_ATTEMPTS:
            break
        try:
            items = orjson.loads(text[start:end] + b"]")
        except orjson.JSONDecodeError as exc:
            if is_depth_error(exc):
                raise too_deep(exc) from None
            continue
        detail = (
            f"truncated at byte {len(text)}: recovered {len(items)} complete elements, "
            f"dropped {len(text) - end} bytes after the last one"
        )
        dropped = _BYTE_SPACE.match(text, end).end()
        if text[dropped : dropped + 1] == b",":
            dropped = _BYTE_SPACE.match(text, dropped + 1).end()
        return items, Cut(detail, cut_event_type(text, dropped))
    raise SessionError("truncated", f"cut at byte {len(text)} before any complete element")


def is_depth_error(exc: orjson.JSONDecodeError) -> bool:
    """orjson's nesting limit (1024 levels): hostile depth, reported as ``too_deep``."""
    return "depth" in exc.msg or "recursion" in exc.msg


def parser_limit(exc: orjson.JSONDecodeError) -> SessionError | None:
    """The classified error for a parse that failed on the parser's own limits rather than on
    the text: nesting past its depth limit (``too_deep``), or no memory left for its buffers
    under a worker's memory cap (``too_large``: orjson reports that as a decode error)."""
    if is_depth_error(exc):
        return too_deep(exc)
    if "memory" in exc.msg.lower():
        return SessionError("too_large", f"out of memory while parsing ({exc.msg})")
    return None


def too_deep(exc: orjson.JSONDecodeError) -> SessionError:
    return SessionError("too_deep", f"JSON nesting over the parser limit ({exc.msg})")


def load_array_document(
    text: bytes, start: int, error: orjson.JSONDecodeError | None = None
) -> tuple[object, Cut | None]:
    """Parse a document that should be one JSON value, salvaging a truncated top-level array.

    Returns the value and what salvage dropped (None when the document was complete). ``error`` is
    orjson's verdict on this same ``text`` when the caller already has it (saves a parse).
    """
    if error is None:
        try:
            return orjson.loads(text), None
        except orjson.JSONDecodeError as exc:
            error = exc
    if is_depth_error(error):
        raise too_deep(error)
    if "UTF-8" in error.msg:
        value, cut = load_array_document(drop_cut_character(text), start)
        note = "dropped a multibyte character cut at the end of the file"
        return value, cut.after(note) if cut else Cut(note)
    if "end of data" not in error.msg:
        raise SessionError("not_json", f"{error.msg} at byte {error.pos}")
    if text[start : start + 1] != b"[":
        raise SessionError("truncated", f"document ends at byte {len(text)} mid-value")
    return salvage_array(text, start)


def drop_cut_character(text: bytes) -> bytes:
    """Without a multibyte character cut by a truncation; ``not_json`` for other bad UTF-8."""
    try:
        text.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.reason == "unexpected end of data" and exc.end == len(text):
            return text[: exc.start]
        raise SessionError("not_json", f"invalid UTF-8 at byte {exc.start}") from None
    raise SessionError("not_json", "orjson rejected the text as UTF-8")  # pragma: no cover


def has_cut_character(line: bytes) -> bool:
    """Whether ``line`` ends inside a multibyte UTF-8 character (a cut, not bad text)."""
    try:
        line.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.reason == "unexpected end of data" and exc.end == len(line)
    return False
