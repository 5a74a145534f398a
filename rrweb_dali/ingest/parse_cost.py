"""What parsing a JSON text will cost in memory, known before the parse is paid for.

orjson turns every JSON container and value into a Python object: an empty ``{}`` (2 bytes of
text) becomes a 64-byte dict plus an 8-byte list slot, so ``[{},{},...]`` takes 24 times its
size, and a 64 KB gzip of it took 2 GB and 49 s before anything could say it was not a
recording. orjson cannot be stopped halfway, so the reader decides *before* parsing, from counts
of the bytes that make objects, taken with C-speed vector compares as the text is decompressed:

``estimate = 80 x ({ and [)  +  32 x ,  +  28 x "  +  48 x newline  +  1 per byte``

(a newline is a JSON Lines line: a bytes object of its own before it is parsed). Fitted on
tracemalloc measurements: real recordings (rrweb, packed, PostHog, Sentry, JSON Lines) cost
0.5-6x their size in parsed objects and the estimate is 1-1.8x that (4-9.5 per byte); for every
dense shape tried (empty or one-key objects, empty lists, short strings, integers, floats,
unique keys) it is 0.9-1.8x the measured cost. Bytes inside strings count too (a stylesheet's
braces are not objects), which only ever over-counts.

While it parses, orjson also holds a document tree of its own (yyjson's): it reserves 12 bytes
per byte of input whatever the content, and touches about 3 of them (resident memory measured
on real recordings: 7.8x their size at the peak of the parse, 5.1x after), all freed when the
parse returns. :data:`PARSE_TRANSIENT` accounts for it: a parse of ``n`` bytes needs its
estimate plus ``4 n`` while it runs, the estimate after.

Two rules use it (:func:`admit_document`):

* the *memory cap* (``ReadLimits.max_memory``): the file's bytes, the decompressed text and the
  estimated parse of everything decoded from the file (the document, each packed event string,
  each PostHog ``cv`` payload) must fit, checked on every decompressed chunk, so a bomb stops
  at the cap and not after it;
* the *density rule*: a document of at least :data:`DENSITY_FLOOR` bytes whose estimate passes
  :data:`MAX_DENSITY` bytes per byte is refused (``too_large``) whatever its size, since no
  recording is built like that (``[{},{},...]``: 38 per byte) and parsing it costs many times
  its size. Smaller documents are charged the estimate's upper bound, :data:`MAX_WEIGHT` + 1
  per byte, without counting (at most 21 MB; counting them would slow every small file).
"""

from __future__ import annotations

import re

import numpy as np

from rrweb_dali.errors import SessionError
from rrweb_dali.ingest.decompress import ByteBudget

_OBJECT, _VALUE, _STRING, _LINE = 80, 32, 28, 48  # estimated bytes per { or [, comma, quote, line
MAX_WEIGHT = max(_OBJECT, _VALUE, _STRING, _LINE)
#: resident bytes per byte of input orjson holds while parsing, on top of the objects it builds
PARSE_TRANSIENT = 4
#: estimated bytes of parsed objects per byte of JSON above which a document is refused
MAX_DENSITY = 20
#: documents smaller than this are not counted nor held to the density rule
DENSITY_FLOOR = 256 << 10
_VECTOR_MIN = 2048  # below this, bytes.count beats numpy's per-call overhead
_VECTOR_STEP = 1 << 18  # compare in slices: the temporaries stay small and in cache


def _weighted_count(chunk: bytes | bytearray | memoryview) -> int:
    """The weighted counts of one chunk (the estimate less its 1 per byte)."""
    if len(chunk) < _VECTOR_MIN:
        raw = bytes(chunk)
        return (
            _OBJECT * (raw.count(b"{") + raw.count(b"["))
            + _VALUE * raw.count(b",")
            + _STRING * raw.count(b'"')
            + _LINE * raw.count(b"\n")
        )
    array = np.frombuffer(chunk, dtype=np.uint8)
    size = min(len(array), _VECTOR_STEP)
    folded, hits = np.empty(size, np.uint8), np.empty(size, np.bool_)
    cost = 0
    for start in range(0, len(array), _VECTOR_STEP):
        part = array[start : start + _VECTOR_STEP]
        fold, hit = folded[: len(part)], hits[: len(part)]
        # OR 0x20 folds "[" onto "{"; it also folds control bytes 0x0C and 0x02 onto "," and
        # '"', bytes JSON allows only escaped (an over-count on invalid text, never an under-)
        np.bitwise_or(part, 0x20, out=fold)
        np.equal(fold, 0x7B, out=hit)
        cost += _OBJECT * int(np.count_nonzero(hit))
        np.equal(fold, 0x2C, out=hit)
        cost += _VALUE * int(np.count_nonzero(hit))
        np.equal(fold, 0x22, out=hit)
        cost += _STRING * int(np.count_nonzero(hit))
        np.equal(part, 0x0A, out=hit)
        cost += _LINE * int(np.count_nonzero(hit))
    return cost


class StructureCount:
    """Running counts of the object-making bytes of one text, fed chunk by chunk."""

    __slots__ = ("cost", "counted", "length")

    def __init__(self) -> None:
        self.cost = 0
        self.length = 0
        self.counted = True  # False when the text was bounded instead of counted

    def feed(self, chunk: bytes | bytearray | memoryview) -> None:
        self.length += len(chunk)
        self.cost += _weighted_count(chunk)

    def feed_whole(self, text: bytes | bytearray | memoryview) -> None:
        """Feed a whole text at once: counted, or bounded when below :data:`DENSITY_FLOOR`
        (the reader's uncompressed document: counting every small file costs more than the
        bound can risk)."""
        if self.length == 0 and len(text) < DENSITY_FLOOR:
            self.length = len(text)
            self.cost = MAX_WEIGHT * len(text)
            self.counted = False
        else:
            self.feed(text)

    @property
    def estimate(self) -> int:
        """Estimated bytes of the Python objects the text parses into."""
        return self.cost + self.length

    @property
    def peak(self) -> int:
        """Estimated bytes while the text is parsed: the objects and orjson's own tree."""
        return self.estimate + PARSE_TRANSIENT * self.length


def estimate_parse(text: bytes | bytearray | memoryview) -> int:
    """Estimated bytes of Python objects ``orjson.loads(text)`` builds."""
    count = StructureCount()
    count.feed(text)
    return count.estimate


def admit_document(count: StructureCount, budget: ByteBudget) -> None:
    """Refuse the document (``too_large``) by the density rule or the memory cap, else charge it.

    Called after decompression and before the one parse of the whole document.
    """
    dense = count.estimate > MAX_DENSITY * count.length
    if dense and count.counted and count.length >= DENSITY_FLOOR:
        raise SessionError(
            "too_large",
            f"{count.length} bytes of JSON would take about {count.estimate} bytes to parse "
            f"({count.estimate / count.length:.0f} per byte; recordings take at most "
            f"~10, the limit is {MAX_DENSITY}): built of tiny containers or values, not events",
        )
    budget.charge(count.estimate, "the document", transient=count.peak - count.estimate)


def charge_text(text: bytes, budget: ByteBudget, what: str) -> None:
    """Charge the estimated parse of one embedded text (a packed event, a ``cv`` payload)."""
    budget.charge(estimate_parse(text), what, transient=PARSE_TRANSIENT * len(text))


SCALAR_PREFIX = 1 << 16
_NON_SPACE = re.compile(rb"[^ \t\r\n]")
_SCALAR_START = frozenset(b"-0123456789tfn[")


def refuse_scalar_array(text: bytes) -> None:
    """Refuse a large top-level array that starts with only numbers and literals
    (``[0.1,0.2,...``), as ``not_rrweb``, before it is parsed.

    Its items cannot be events (objects) or packed events (strings), yet a parse builds a Python
    float for every few bytes, as dense as real events, so the density rule lets it through: a
    64 MB array of numbers took 1.1 GB and 3.8 s to end as ``not_rrweb``. The first 64 KiB
    decide, for the cost of two ``bytes.find``; documents under four times that are parsed as
    usual (the answer is the same, and cheap).
    """
    first = _NON_SPACE.search(text, 0, SCALAR_PREFIX)
    start = first.start() if first else 0
    if len(text) - start < 4 * SCALAR_PREFIX or text[start] != 0x5B:
        return
    head = text[start + 1 : start + SCALAR_PREFIX].lstrip()
    if not head or head[0] not in _SCALAR_START or head.find(b"{") >= 0 or head.find(b'"') >= 0:
        return
    raise SessionError(
        "not_rrweb",
        f"a JSON array of {len(text) - start:,} bytes whose first {SCALAR_PREFIX:,} bytes hold "
        "no object and no string: no events",
    )
