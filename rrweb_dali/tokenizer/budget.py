"""The token budget (tokenizer version 2): no attribute kind and no single event swamps a session.

Why: a capped text field costs at most ``max_text_bytes + 1`` tokens, but an SVG page animated by
script rewrites hundreds of geometry attributes per frame. A recorded D3 force graph (one
mutation of ~200 path ``d`` values per animation frame) spent 13,100 tokens per event, 99 % of the
session, on digits: 2.56 bytes of JSON per token, worse than a byte-level BPE. Geometry is not
behaviour; its shape (which path commands, how many numbers) is enough. The rules, applied to
attribute string values in full snapshots and mutations alike:

Short values (at most :data:`SHORT_VALUE` characters) are written as before, except for the
blobs (``_cssText``, ``rr_dataURL``), which always were blobs, and long decimals (below).

Geometry (``d``, ``points``, ``transform``, ``gradientTransform``, ``viewBox``,
``stroke-dasharray``, ``coords``; see :data:`GEOMETRY_ATTRS`) and any other value that is a
numeric list (numbers and separators only, e.g. ``data-values="1 2 3 ..."``) longer than that:
    ``=geom``, then the *skeleton* as bytes: the first letter of each word left once the numbers
    are taken out (each number and its separators become one space; letters are looked for in
    the first 4,096 characters of what is left, so a long path's final ``Z`` may be beyond),
    consecutive repeats merged,
    at most :data:`GEOM_LETTERS` (path data ``M1,2L3,4L5,6Z`` -> ``MLZ``, ``translate(1,2)
    rotate(3)`` -> ``tr``), then a COUNT token: the log bucket of how many numbers the value
    holds. At most ``2 + GEOM_LETTERS`` tokens. A style-diff value (mutations) over
    :data:`SHORT_VALUE` characters holding two or more numbers (``transform: translate(12.5px,
    80px)``) gets the same summary.
Long decimals in numeric attributes (``x``, ``cx``, ``r``, ``width``, ``opacity``, ...; see
:data:`NUMBER_ATTRS`) with more than three decimals (``"123.456789"``, as script-set
coordinates are):
    ``=num`` then the digits cut to one decimal (``123.4``): a tenth of an SVG unit is below a
    pixel, and the cut is on the text, so it is the same everywhere.
Long inline ``style`` (over :data:`SHORT_VALUE` characters):
    ``=css{``, then for each of the first :data:`STYLE_DECLS` declarations its property's NAME
    token (the tokens of rrweb's style-diff objects) and, when the value is one keyword of at most
    :data:`STYLE_KEYWORD_MAX` letters (``none``, ``absolute``, ``hidden``), its bytes; then a
    SIZE token of the style's length. At most 56 tokens, under the 65 of a capped text field.
Per-event budget:
    an event's tokens (time delta first) beyond ``max_event_tokens`` (a FullSnapshot's beyond
    ``max_snapshot_tokens``) are dropped and ``<EV-TRUNC>`` marks the cut. Node ids the cut
    part names are still recorded, so later events still name their targets' tags.

Everything is a pure function of the value (regular expressions and slicing, no float parsing),
so equal inputs give equal tokens on every machine.
"""

from __future__ import annotations

import re

from rrweb_dali.tokenizer import ids as t
from rrweb_dali.tokenizer import vocab
from rrweb_dali.tokenizer.ids import NameTokens
from rrweb_dali.tokenizer.quantize import count_index, size_index

SHORT_VALUE = 16
"""An attribute value of at most this many characters is written as text, as in version 1."""
GEOM_LETTERS = 8
STYLE_DECLS = 6
STYLE_KEYWORD_MAX = 8
_STYLE_SCAN = 1024  # declarations are looked for in the first 1024 characters only
_GEOM_SCAN = 4096  # skeleton letters: from the first 4096 characters once numbers are out

DEFAULT_MAX_EVENT_TOKENS = 1 << 18
"""Default budget of an event other than a FullSnapshot: 262,144 tokens, as a snapshot's. A
mutation that inserts a whole page (the recorded corpus has three of ~10k nodes, ~250k tokens
each) is page content, not noise, so the default cuts none of them; an animated SVG frame,
summarised, takes about a thousand. Lower it to bound every event harder."""
DEFAULT_MAX_SNAPSHOT_TOKENS = 1 << 18
"""Default budget of a FullSnapshot: 262,144 tokens, over the largest recorded one (223k)."""

GEOMETRY_ATTRS: tuple[str, ...] = (
    "d",
    "points",
    "transform",
    "gradientTransform",
    "viewBox",
    "stroke-dasharray",
    "coords",
)
NUMBER_ATTRS: tuple[str, ...] = (
    "x", "y", "x1", "y1", "x2", "y2", "cx", "cy", "r", "rx", "ry", "dx", "dy", "width", "height",
    "offset", "opacity", "fill-opacity", "stroke-opacity", "stop-opacity", "stroke-width",
    "stroke-dashoffset", "font-size", "pathLength",
)  # fmt: skip
assert set(GEOMETRY_ATTRS + NUMBER_ATTRS) <= set(vocab.ATTRS)

# a number with the separators around it, so what is left of path data is its command letters
_NUMBER = re.compile(r"[\s,]*[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?[\s,]*", re.ASCII)
_WORD_START = re.compile(r"(?<![A-Za-z])[A-Za-z]")
_NUMERIC_LIST = re.compile(r"[-+.\d][-+.\deE\s,;]*", re.ASCII)
_LONG_DECIMAL = re.compile(r"-?\d+\.\d{4,}", re.ASCII)
_KEYWORD = re.compile(r"[A-Za-z][A-Za-z-]*")
NUMBER_START = frozenset("-+.0123456789")
"""First characters of a value that may be a numeric list (the cheap pre-check)."""


def emit_geometry(out: list[int], val: str) -> None:
    """``=geom``, the skeleton letters, and the COUNT bucket of the numbers (see the module)."""
    stripped, numbers = _NUMBER.subn(" ", val)  # "M1,2L3,4Z" -> "M L Z", 3 numbers
    out.append(t.V_GEOM)
    last = ""
    n = 0
    for m in _WORD_START.finditer(stripped, 0, _GEOM_SCAN):  # bounded: "L" * 10**6 is cheap
        letter = m.group()
        if letter != last:
            out.append(ord(letter))
            last = letter
            n += 1
            if n == GEOM_LETTERS:
                break
    out.append(t.COUNT + count_index(numbers))


def emit_number_text(out: list[int], val: str, cap: int) -> bool:
    """A long decimal or a numeric list in a value; False (nothing written) if it is neither."""
    if _LONG_DECIMAL.fullmatch(val):
        out.append(t.V_NUM)
        out.extend(val[: val.index(".") + 2].encode()[:cap])
        return True
    if len(val) > SHORT_VALUE and _NUMERIC_LIST.fullmatch(val):
        emit_geometry(out, val)
        return True
    return False


def emit_style(out: list[int], val: str, names: NameTokens) -> None:
    """``=css{``, property names and keyword values of the first declarations, a SIZE token."""
    out.append(t.V_CSS)
    decls = val[:_STYLE_SCAN].split(";", STYLE_DECLS)
    for decl in decls[:STYLE_DECLS]:
        prop, _, value = decl.partition(":")
        prop = prop.strip()
        if not prop:
            continue
        out.append(names.other(prop))
        value = value.strip()
        if len(value) <= STYLE_KEYWORD_MAX and value.isascii() and _KEYWORD.fullmatch(value):
            out.extend(value.encode())
    out.append(t.SIZE + size_index(len(val)))


# Rule kinds, by internal attribute token (fixed-list names only: a hashed bucket is shared by
# unrelated names, so it never carries a rule).
BLOB, GEOMETRY, NUMBER, STYLE = 1, 2, 3, 4


def _rules() -> dict[int, int]:
    table = {t.CSS_TEXT_ATTR: BLOB, t.DATA_URL_ATTR: BLOB}
    table[t.internal(vocab.attr_id("style"))] = STYLE
    for name in GEOMETRY_ATTRS:
        table[t.internal(vocab.attr_id(name))] = GEOMETRY
    for name in NUMBER_ATTRS:
        table[t.internal(vocab.attr_id(name))] = NUMBER
    return table


RULES: dict[int, int] = _rules()
"""Internal attribute token -> rule kind; attributes without a rule are not in it."""


def emit_ruled(out: list[int], kind: int, val: str, cap: int, names: NameTokens, plain) -> None:
    """A string value of an attribute with a rule; ``plain(out, val, cap)`` writes plain text."""
    if kind == BLOB:
        out.append(t.BLOB)
        out.append(t.SIZE + size_index(len(val)))
    elif kind == NUMBER:  # a long decimal is cut whatever its length
        if not emit_number_text(out, val, cap):
            plain(out, val, cap)
    elif len(val) <= SHORT_VALUE:
        plain(out, val, cap)
    elif kind == GEOMETRY:
        emit_geometry(out, val)
    else:
        emit_style(out, val, names)


def cut_event(out: list[int], start: int, budget: int) -> None:
    """Drop the tokens of the event starting at ``out[start]`` beyond ``budget``; mark the cut."""
    del out[start + budget :]
    out.append(t.EVENT_TRUNC)
