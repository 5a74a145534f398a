"""Hostile recordings that attack the reader's memory and time, generated at any size.

Each generator returns the bytes of one file (deterministic: gzip members carry ``mtime=0``),
streamed through a compressor so that writing a 64 MB amplification file takes kilobytes of
memory, not the 2 GB its naive parse did. :data:`SHAPES` names them with the outcome the reader
must give under default limits; ``bench/hostile.py`` reads each in a subprocess and measures it,
and the reader's tests use them at small sizes.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import orjson

_T0 = 1_700_000_000_000
_BLOCK = 1 << 20


def _gzip_stream(parts: Iterable[bytes]) -> bytes:
    """One gzip member (``mtime=0``) of the concatenated ``parts``, compressed as they come."""
    out = bytearray()
    writer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    for part in parts:
        out += writer.compress(part)
    out += writer.flush()
    return bytes(out)  # zlib's gzip header has mtime 0 and no name: the same bytes every run


def _repeated(unit: bytes, count: int, head: bytes = b"", tail: bytes = b"") -> Iterable[bytes]:
    """``head + unit * count + tail`` in blocks of about a megabyte."""
    yield head
    per_block = max(1, _BLOCK // len(unit))
    block = unit * per_block
    full, rest = divmod(count, per_block)
    for _ in range(full):
        yield block
    yield unit * rest
    yield tail


def empty_objects_array(size: int) -> bytes:
    """gzip of ``[{},{},...,{}]`` about ``size`` bytes long (a 64 MB one gzips to ~64 KB)."""
    n = max(1, size // 3)
    return _gzip_stream(_repeated(b"{},", n - 1, b"[", b"{}]"))


def empty_objects_jsonl(size: int) -> bytes:
    """gzip of ``{}`` JSON Lines, about ``size`` bytes (one line per 3 bytes)."""
    return _gzip_stream(_repeated(b"{}\n", max(1, size // 3)))


def empty_lists_array(size: int) -> bytes:
    """gzip of ``[[],[],...,[]]``: lists instead of objects (56 bytes each in Python)."""
    n = max(1, size // 3)
    return _gzip_stream(_repeated(b"[],", n - 1, b"[", b"[]]"))


def wrapped_empty_objects(size: int) -> bytes:
    """gzip of ``{"events":[{},{},...]}``: the amplification inside a known wrapper."""
    n = max(1, size // 3)
    return _gzip_stream(_repeated(b"{},", n - 1, b'{"events":[', b"{}]}"))


def floats_array(size: int) -> bytes:
    """gzip of ``[1.5,1.5,...]``: scalars, not containers; as dense as real events (9 estimated
    bytes per byte, under the density limit), so a parse would cost ~15x its size; the reader
    refuses a large array with no object or string at its start before parsing it."""
    n = max(1, size // 4)
    return _gzip_stream(_repeated(b"1.5,", n - 1, b"[", b"1.5]"))


def gzip_bomb(size: int) -> bytes:
    """gzip of ``size`` zero bytes (2 GiB gzips to about 2 MB)."""
    return _gzip_stream(_repeated(b"\x00" * _BLOCK, size // _BLOCK))


def small_session(n: int = 20) -> list[dict]:
    """A short valid session: a Meta event and ``n - 1`` mouse moves."""
    meta = {"type": 4, "timestamp": _T0, "data": {"href": "http://x/", "width": 800, "height": 600}}
    moves = [
        {"type": 3, "timestamp": _T0 + i, "data": {"source": 1, "positions": [{"x": i, "y": i}]}}
        for i in range(1, n)
    ]
    return [meta, *moves]


def many_gzip_members(members: int) -> bytes:
    """A valid session in one gzip member followed by ``members - 1`` empty members (20 bytes
    each: 400,000 of them are an 8 MB file)."""
    first = gzip.compress(orjson.dumps(small_session()), mtime=0)
    return first + gzip.compress(b"", mtime=0) * (members - 1)


def deep_dom(levels: int, leaves: int = 0) -> bytes:
    """A serialized DOM element nesting ``levels`` elements, the innermost holding ``leaves``
    text nodes (bytes: orjson cannot write more than 254 levels)."""
    open_tag = b'{"type":2,"tagName":"div","attributes":{},"id":0,"childNodes":['
    texts = b",".join(b'{"type":3,"textContent":"leaf %d","id":%d}' % (i, i) for i in range(leaves))
    return open_tag * levels + texts + b"]}" * levels


def deep_dom_with_duplicates(levels: int = 130, leaves: int = 0) -> bytes:
    """A session whose FullSnapshot DOM nests ``levels`` deep (past the 255 levels of nesting
    orjson can serialize) and is stored twice, plus a third FullSnapshot at the same
    timestamp that differs: reading must keep two snapshots and drop one duplicate."""
    meta = b'{"type":4,"timestamp":%d,"data":{"href":"http://x/","width":800,"height":600}}' % _T0
    snapshot = (
        b'{"type":2,"timestamp":%d,"data":{"initialOffset":{"top":0,"left":0},"node":' % (_T0 + 1)
        + deep_dom(levels, leaves)
        + b"}}"
    )
    other = snapshot.replace(b'"top":0', b'"top":1', 1)
    return b"[" + b",".join((meta, snapshot, snapshot, other)) + b"]"


def deep_packed_among_good(levels: int = 20_000, good: int = 20) -> bytes:
    """@rrweb/packer strings: ``good`` valid events and, among them, one event nested
    ``levels`` deep (past orjson's 1024 levels): the deep one must be skipped and counted."""
    events = small_session(good)
    packed = [zlib.compress(orjson.dumps({**e, "v": "v1"})).decode("latin-1") for e in events]
    deep = b'{"type":2,"timestamp":%d,"data":{"node":' % (_T0 + 5) + deep_dom(levels) + b"}}"
    packed.insert(len(packed) // 2, zlib.compress(deep).decode("latin-1"))
    return orjson.dumps(packed)


@dataclass(frozen=True)
class Shape:
    """One hostile input: how to make it, and what reading it must give (default limits)."""

    make: Callable[[], bytes]
    expect: str  # a SessionError reason, or "loaded"
    about: str


MB = 1 << 20


def shapes(scale: float = 1.0) -> dict[str, Shape]:
    """The hostile inputs of the reader's memory and time goals, at ``scale`` times the sizes
    of the reports that found them (64 MB amplification files, 2 GiB of zeros, 400,000 gzip
    members); ``scale`` 0.01 makes a smoke-test set of a few seconds."""

    def size(n: int) -> int:
        return max(1024, int(n * scale))

    return {
        "empty_objects_array": Shape(
            lambda: empty_objects_array(size(64 * MB)), "too_large", "[{},{},...] gzip"
        ),
        "empty_objects_jsonl": Shape(
            lambda: empty_objects_jsonl(size(66 * MB)), "too_large", "{} JSON Lines gzip"
        ),
        "empty_lists_array": Shape(
            lambda: empty_lists_array(size(64 * MB)), "too_large", "[[],[],...] gzip"
        ),
        "wrapped_empty_objects": Shape(
            lambda: wrapped_empty_objects(size(64 * MB)), "too_large", '{"events":[{},...]} gzip'
        ),
        # As dense as real events, so parsed: only the memory cap bounds it (not 4x its size).
        "floats_array": Shape(
            lambda: floats_array(size(64 * MB)), "not_rrweb", "[1.5,1.5,...] gzip"
        ),
        "gzip_bomb": Shape(lambda: gzip_bomb(size(2048 * MB)), "too_large", "zeros, gzip"),
        "many_gzip_members": Shape(
            lambda: many_gzip_members(max(10, int(400_000 * scale))),
            "loaded",
            "1 session + empty gzip members",
        ),
        "deep_dom_duplicates": Shape(
            lambda: deep_dom_with_duplicates(130, max(10, int(60_000 * scale))),
            "loaded",
            "130-level DOM, stored twice",
        ),
        "deep_packed_string": Shape(
            lambda: deep_packed_among_good(20_000), "loaded", "packed, one 20k-level event"
        ),
    }
