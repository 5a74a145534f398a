"""Bounded gzip / zlib decompression.

Compression is recognised by magic bytes, never by file name: recordings are renamed, re-uploaded
and exported with whatever extension the tool liked. Decompression is streamed against a
:class:`ByteBudget` shared by everything decoded from one file (the outer stream and every packed
or PostHog-compressed string inside it), so a gzip bomb stops at the budget instead of taking the
machine's memory with it.
"""

from __future__ import annotations

import logging
import zlib

from rrweb_dali.errors import SessionError

logger = logging.getLogger(__name__)

GZIP_MAGIC = b"\x1f\x8b"
_GZIP_WBITS = 16 + zlib.MAX_WBITS
_ZLIB_WBITS = zlib.MAX_WBITS
_AUTO_WBITS = 32 + zlib.MAX_WBITS  # zlib or gzip header, whichever is there


class ByteBudget:
    """Decoded bytes one file may still produce; raises ``too_large`` when it runs out.

    One budget per file, passed explicitly (no global state), so nested streams share the
    limit: a packed array of a thousand small bombs is as bounded as one big bomb.
    """

    __slots__ = ("limit", "used")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    @property
    def remaining(self) -> int:
        return self.limit - self.used

    def take(self, n: int) -> None:
        self.used += n
        if self.used > self.limit:
            raise SessionError("too_large", f"more than {self.limit} decoded bytes (max_bytes)")


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
    data: bytes | memoryview, wbits: int, budget: ByteBudget, chunks: list[bytes]
) -> bytes:
    """Inflate one gzip member / zlib stream into ``chunks``; return the bytes after it."""
    inflater = zlib.decompressobj(wbits)
    pending: bytes | memoryview = data
    while pending:
        # max_length caps what one call may produce: at most one byte past the budget, so a bomb
        # is detected after producing `remaining + 1` bytes, not after inflating all of it.
        out = inflater.decompress(pending, budget.remaining + 1)
        budget.take(len(out))
        if out:
            chunks.append(out)
        if inflater.eof:
            break
        pending = inflater.unconsumed_tail
    if not inflater.eof:
        raise SessionError("bad_compression", "compressed stream ends before its end marker")
    return inflater.unused_data


def inflate(data: bytes | memoryview, kind: str, budget: ByteBudget) -> bytes:
    """Decompress a whole file's ``gzip`` or ``zlib`` stream within ``budget``.

    Concatenated gzip members (``cat a.gz b.gz``, appending writers) are joined, as ``gunzip``
    does; NUL padding after the last member is ignored (tape / block-device copies add it);
    any other trailing bytes mean a damaged file and give ``bad_compression``.
    """
    wbits = _GZIP_WBITS if kind == "gzip" else _ZLIB_WBITS
    chunks: list[bytes] = []
    rest: bytes | memoryview = data
    members = 0
    try:
        while True:
            rest = _inflate_member(rest, wbits, budget, chunks)
            members += 1
            if not rest:
                break
            if kind == "gzip" and bytes(rest[:2]) == GZIP_MAGIC:
                continue
            if not bytes(rest).strip(b"\x00"):
                break
            raise SessionError(
                "bad_compression", f"{len(rest)} bytes of trailing garbage after {kind} stream"
            )
    except zlib.error as exc:
        raise SessionError("bad_compression", f"{kind}: {exc}") from None
    except MemoryError:
        raise SessionError("too_large", f"out of memory inflating {kind}") from None
    if members > 1:
        logger.debug("joined %d gzip members", members)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def inflate_string(raw: bytes, budget: ByteBudget) -> bytes:
    """Inflate one small embedded stream (a packed event, a PostHog ``cv`` field).

    Accepts zlib or gzip framing: @rrweb/packer writes zlib, PostHog writes gzip, and a stream
    that decodes is better evidence than the producer's name. Raises ``zlib.error`` for a
    stream that is not compressed data (callers count that per event) and ``SessionError``
    (``too_large``) when the file's budget runs out.
    """
    inflater = zlib.decompressobj(_AUTO_WBITS)
    out = inflater.decompress(raw, budget.remaining + 1)
    budget.take(len(out))
    if not inflater.eof:
        raise zlib.error("incomplete compressed stream")
    return out
