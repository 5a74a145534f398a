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
"""

from __future__ import annotations

import json
import re

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


def salvage_array(text: bytes, start: int) -> tuple[list, str]:
    """Parse the complete elements of the truncated array opening at ``text[start]``.

    Returns the recovered elements and a one-line description of what was cut. Raises
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
        return items, detail
    raise SessionError("truncated", f"cut at byte {len(text)} before any complete element")


def is_depth_error(exc: orjson.JSONDecodeError) -> bool:
    """orjson's nesting limit (1024 levels): hostile depth, reported as ``too_deep``."""
    return "depth" in exc.msg or "recursion" in exc.msg


def too_deep(exc: orjson.JSONDecodeError) -> SessionError:
    return SessionError("too_deep", f"JSON nesting over the parser limit ({exc.msg})")


def load_array_document(
    text: bytes, start: int, error: orjson.JSONDecodeError | None = None
) -> tuple[object, str | None]:
    """Parse a document that should be one JSON value, salvaging a truncated top-level array.

    Returns the value and a salvage detail (None when the document was complete). ``error`` is
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
        value, detail = load_array_document(drop_cut_character(text), start)
        return value, detail or "dropped a multibyte character cut at the end of the file"
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
