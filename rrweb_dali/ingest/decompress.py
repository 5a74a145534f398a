"""Bounded gzip / zlib decompression.

Compression is recognised by magic bytes, never by file name: recordings are renamed, re-uploaded
and exported with whatever extension the tool liked. Decompression is streamed against a
:class:`ByteBudget` shared by everything decoded from one file (the outer stream and every packed
or PostHog-compressed string inside it), so a gzip bomb stops at the budget instead of taking the
machine's memory with it.

Both directions are bounded per call: one ``decompress`` call produces at most
:data:`OUTPUT_CHUNK` bytes (asking for "all that is left of the budget" at once made a bomb peak
at twice ``max_bytes``), and is fed a slice of the input that starts small and doubles up to
:data:`INPUT_CHUNK`, so a file of many tiny gzip members costs time linear in its size (zlib
copies the unread input of every call into ``unused_data`` / ``unconsumed_tail``; handing it the
whole rest of the file once per member made 400,000 empty members take minutes).
"""

from __future__ import annotations

import logging
import zlib
from typing import Protocol

from rrweb_dali.errors import SessionError

logger = logging.getLogger(__name__)

GZIP_MAGIC = b"\x1f\x8b"
_GZIP_WBITS = 16 + zlib.MAX_WBITS
_ZLIB_WBITS = zlib.MAX_WBITS
_AUTO_WBITS = 32 + zlib.MAX_WBITS  # zlib or gzip header, whichever is there
#: the most output one decompress call may produce
OUTPUT_CHUNK = 1 << 20
#: the most input one decompress call is handed
INPUT_CHUNK = 1 << 16
_FIRST_INPUT = 64  # an empty gzip member is 20 bytes


class ByteBudget:
    """What one file may still cost: decoded bytes (``max_bytes``) and memory (``max_memory``).

    One budget per file, passed explicitly (no global state), so nested streams share the
    limits: a packed array of a thousand small bombs is as bounded as one big bomb.
    ``used`` counts decoded bytes; ``held`` the file's own bytes while they stay in memory next
    to their decompressed text; ``parsed`` the estimated memory of every parse charged so far
    (see ``rrweb_dali.ingest.parse_cost``). Memory is their sum.
    """

    __slots__ = ("held", "limit", "memory_limit", "parsed", "used")

    def __init__(self, limit: int, memory_limit: int | None = None) -> None:
        self.limit = limit
        self.memory_limit = memory_limit
        self.used = 0
        self.held = 0
        self.parsed = 0

    @property
    def remaining(self) -> int:
        return self.limit - self.used

    @property
    def memory(self) -> int:
        """Estimated bytes held for the file: its bytes, decoded text, parsed objects."""
        return self.held + self.used + self.parsed

    def take(self, n: int) -> None:
        self.used += n
        if self.used > self.limit:
            raise SessionError("too_large", f"more than {self.limit} decoded bytes (max_bytes)")
        self.check_memory(0)

    def hold(self, n: int) -> None:
        """Count ``n`` bytes that stay in memory while the file is read (its compressed bytes)."""
        self.held += n
        self.check_memory(0)

    def check_memory(self, pending: int, what: str = "decoded text") -> None:
        """Raise ``too_large`` if ``pending`` more estimated bytes would pass ``max_memory``."""
        if self.memory_limit is not None and self.memory + pending > self.memory_limit:
            raise SessionError(
                "too_large",
                f"reading would take about {self.memory + pending} bytes of memory "
                f"(max_memory {self.memory_limit}; at {what})",
            )

    def charge(self, estimate: int, what: str, transient: int = 0) -> None:
        """Charge the estimated memory of one parse, refusing it when over ``max_memory``
        (``transient``: what the parser holds only while it runs)."""
        self.check_memory(estimate + transient, what)
        self.parsed += estimate


class Meter(Protocol):
    """What watches decompressed text go by (``parse_cost.StructureCount``)."""

    def feed(self, chunk: bytes) -> None: ...

    @property
    def peak(self) -> int: ...


def detect_compression(data: bytes | memoryview) -> str | None:
    """``'gzip'``, ``'zlib'`` or ``None`` from the first two bytes.

    zlib has no fixed magic; we accept CMF 0x78 (deflate, 32 KiB window: every zlib encoder in
    practice, giving the 78 01 / 5e / 9c / da pairs) with a valid header checksum and no preset
    dictionary. JSON text never starts with ``x``, so this cannot misread a JSON document.
    """
    if len(data) < 2:
        return None
    b0, b1 = data[0], data[1]
    if b0 == 0x1F and b1 == 0x8B:
        return "gzip"
    if b0 == 0x78 and ((b0 << 8) | b1) % 31 == 0 and not b1 & 0x20:
        return "zlib"
    return None


def _inflate_member(
    view: memoryview,
    pos: int,
    wbits: int,
    budget: ByteBudget,
    chunks: list[bytes],
    meter: Meter | None,
) -> int:
    """Inflate the gzip member / zlib stream starting at ``view[pos]`` into ``chunks``; return
    the offset just past its end."""
    inflater = zlib.decompressobj(wbits)
    end = len(view)
    step = _FIRST_INPUT
    pending: bytes | memoryview = b""
    while True:
        if not pending and pos < end:
            pending = view[pos : pos + step]
            pos += len(pending)
            step = min(2 * step, INPUT_CHUNK)
        out = inflater.decompress(pending, OUTPUT_CHUNK)
        if out:
            budget.take(len(out))
            if meter is not None:
                meter.feed(out)
                budget.check_memory(meter.peak, "decompressed text, estimated parse")
            chunks.append(out)
        if inflater.eof:
            return pos - len(inflater.unused_data)  # unused_data: the rest of the last slice
        pending = inflater.unconsumed_tail
        if not out and not pending and pos >= end:
            raise SessionError("bad_compression", "compressed stream ends before its end marker")


def inflate(
    data: bytes | memoryview, kind: str, budget: ByteBudget, meter: Meter | None = None
) -> bytes:
    """Decompress a whole file's ``gzip`` or ``zlib`` stream within ``budget``.

    Concatenated gzip members (``cat a.gz b.gz``, appending writers) are joined, as ``gunzip``
    does; NUL padding after the last member is ignored (tape / block-device copies add it);
    any other trailing bytes mean a damaged file and give ``bad_compression``. ``meter``, when
    given, sees every decompressed chunk, and the budget's memory cap is checked against its
    estimate as the text grows (a document too costly to parse stops decompressing there).
    """
    wbits = _GZIP_WBITS if kind == "gzip" else _ZLIB_WBITS
    chunks: list[bytes] = []
    view = memoryview(data)
    pos = 0
    members = 0
    try:
        while True:
            pos = _inflate_member(view, pos, wbits, budget, chunks, meter)
            members += 1
            if pos >= len(view):
                break
            if kind == "gzip" and view[pos : pos + 2] == GZIP_MAGIC:
                continue
            rest = bytes(view[pos:])
            if rest.count(0) == len(rest):
                break
            raise SessionError(
                "bad_compression", f"{len(rest)} bytes of trailing garbage after {kind} stream"
            )
    except zlib.error as exc:
        raise SessionError("bad_compression", f"{kind}: {exc}") from None
    except MemoryError:
        raise SessionError("too_large", f"out of memory inflating {kind}") from None
    finally:
        view.release()
    if members > 1:
        logger.debug("joined %d gzip members", members)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def is_compressed_string(raw: bytes) -> bool:
    """Whether ``raw`` starts like a zlib or gzip stream (cheap: no inflater is built)."""
    return detect_compression(raw) is not None


def inflate_string(raw: bytes, budget: ByteBudget) -> bytes:
    """Inflate one small embedded stream (a packed event, a PostHog ``cv`` field).

    Accepts zlib or gzip framing: @rrweb/packer writes zlib, PostHog writes gzip, and a stream
    that decodes is better evidence than the producer's name. Raises ``zlib.error`` for a
    stream that is not compressed data (callers count that per event) and ``SessionError``
    (``too_large``) when the file's budget runs out. Output is produced in bounded chunks, each
    counted against the budget before the next is made.
    """
    if not is_compressed_string(raw):
        raise zlib.error("not a zlib or gzip stream")
    inflater = zlib.decompressobj(_AUTO_WBITS)
    chunks: list[bytes] = []
    pending = raw
    while True:
        out = inflater.decompress(pending, OUTPUT_CHUNK)
        budget.take(len(out))
        chunks.append(out)
        if inflater.eof:
            break
        pending = inflater.unconsumed_tail
        if not out and not pending:
            raise zlib.error("incomplete compressed stream")
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)
