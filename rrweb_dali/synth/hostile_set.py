"""The reader's fixed hostile set: small files that must each fail with one known reason, and
truncated files from which a known number of events must be recovered.

Every file is small (< 1 MB on disk; the gzip bomb is a few KB that inflates past
:data:`HOSTILE_LIMITS` ``.max_bytes``) and byte-identical on every run, so preprocessing tests can
compare outputs. One entry is a directory (``a_directory.json``): it is what a careless glob hands
the reader, and it must be ``io_error``. The tests read them with :data:`HOSTILE_LIMITS`;
``bench/hostile.py`` measures them with the default limits beside the large shapes of
:mod:`.hostile`.
"""

from __future__ import annotations

import gzip
import random
import zlib
from pathlib import Path

import orjson

from rrweb_dali.ingest import ReadLimits

HOSTILE_LIMITS = ReadLimits(max_bytes=8 << 20, max_depth=400, max_events=10_000)

_T0 = 1_700_000_000_000


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=9, mtime=0)  # mtime=0: same bytes every run


def _event(i: int, kind: int = 3) -> dict:
    return {
        "type": kind,
        "data": {"source": 1, "positions": [{"x": i, "y": i}]},
        "timestamp": _T0 + i,
    }


def _session(n: int) -> list[dict]:
    meta = {"type": 4, "data": {"href": "http://x/", "width": 800, "height": 600}, "timestamp": _T0}
    return [meta, *(_event(i + 1) for i in range(n - 1))]


def _deep_dom_json(levels: int, tag: bytes = b'{"type":2,"tagName":"b","childNodes":[') -> bytes:
    """A FullSnapshot whose DOM nests ``levels`` elements, written without recursion."""
    head = (
        b'[{"type":2,"timestamp":1700000000000,"data":{"initialOffset":{"top":0,"left":0},"node":'
    )
    return head + tag * levels + b"]}" * levels + b"}}]"


def _deep_mutation_json(levels: int) -> bytes:
    """A Mutation adding a ``levels``-deep subtree (bytes: orjson.dumps stops at 254 levels)."""
    head = (
        b'[{"type":3,"timestamp":1700000000000,"data":{"source":0,"texts":[],"attributes":[],'
        b'"removes":[],"adds":[{"parentId":1,"nextId":null,"node":'
    )
    tag = b'{"type":2,"tagName":"div","attributes":{},"childNodes":['
    return head + tag * levels + b"]}" * levels + b"}]}}]"


def write_hostile_inputs(directory: Path) -> dict[str, str]:
    """Write every hostile input into ``directory``; return file name -> expected reason."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rng = random.Random(20240601)
    events = orjson.dumps(_session(40))
    files: dict[str, tuple[bytes, str]] = {
        "empty.json": (b"", "empty"),
        "whitespace_only.json": (b" \n\t\r\n   \n", "empty"),
        "bom_only.json": (b"\xef\xbb\xbf\n", "empty"),
        "empty_array.json": (b"[]", "empty"),
        "empty_wrapper.json": (b'{"events": []}', "empty"),
        "binary_garbage.bin": (b"\x00\x01\x02" + rng.randbytes(4096), "not_json"),
        "plain_text.txt": (b"hello, this is not a recording\n", "not_json"),
        # JS data literals are read; one that needs evaluation (an enum member) is not JSON.
        "javascript_not_json.js": (
            b"const events = [{type: EventType.Meta, timestamp: 1}];\n",
            "not_json",
        ),
        "invalid_utf8.json": (
            b'[{"type":4,"timestamp":1,"data":{"href":"http://x/\xff\xfe/"}},'
            b'{"type":3,"timestamp":2,"data":{}}]',
            "not_json",
        ),
        # Shapes that make naive regex scanners backtrack exponentially or rescan quadratically.
        "js_comment_storm.js": (b"/**/" * 50_000 + b"x", "not_json"),
        "truncated_in_escaped_quotes.json": (b'["' + b'\\"' * 200_000, "truncated"),
        "not_rrweb_object.json": (b'{"a": 1}', "not_rrweb"),
        "not_rrweb_numbers.json": (b"[1, 2, 3]", "not_rrweb"),
        # Without a timestamp, an item is an event only with a dict `data`.
        "not_rrweb_events_without_timestamp.json": (b'[{"type":4},{"type":3}]', "not_rrweb"),
        "not_rrweb_string.json": (b'"just a string"', "not_rrweb"),
        "truncated_before_any_event.json": (
            b'[{"type":4,"timestamp":1700000000000,"da',
            "truncated",
        ),
        "truncated_wrapper.json": (
            b'{"events": [{"type":4,"timestamp":1,"data":{}}, {"ty',
            "truncated",
        ),
        "truncated.json.gz": (_gzip(events)[:-40], "bad_compression"),
        "corrupt_gzip.json.gz": (
            b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03" + rng.randbytes(512),
            "bad_compression",
        ),
        "corrupt_zlib.json": (b"\x78\x9c" + rng.randbytes(512), "bad_compression"),
        "gzip_trailing_garbage.json.gz": (_gzip(events) + b"garbage", "bad_compression"),
        # 16 MiB of JSON whitespace inside an array: a few KB compressed, twice HOSTILE_LIMITS.
        "gzip_bomb.json.gz": (_gzip(b"[" + b" " * (16 << 20) + b"]"), "too_large"),
        "packed_strings_not_zlib.json": (
            b'["not zlib at all", "x\\u009c garbage"]',
            "bad_compression",
        ),
        "too_many_events.json": (
            orjson.dumps(_session(HOSTILE_LIMITS.max_events + 1)),
            "too_large",
        ),
        "deep_dom_20000.json": (_deep_dom_json(20_000), "too_deep"),
        "deep_dom_450.json": (_deep_dom_json(450), "too_deep"),
        "deep_json_arrays.json": (b"[" * 5000 + b"]" * 5000, "too_deep"),
        "deep_mutation_add.json": (_deep_mutation_json(420), "too_deep"),
        # A packed string too deep to parse is skipped like any bad packed string; being the
        # file's only item, nothing decoded into an event.
        "deep_packed_event.json": (
            orjson.dumps([zlib.compress(_deep_dom_json(20_000)[1:-1]).decode("latin-1")]),
            "bad_compression",
        ),
    }
    for name, (data, _) in files.items():
        (directory / name).write_bytes(data)
    (directory / "a_directory.json").mkdir(exist_ok=True)
    expected = {name: reason for name, (_, reason) in files.items()}
    expected["a_directory.json"] = "io_error"
    return expected


def write_salvageable_inputs(directory: Path) -> dict[str, int]:
    """Write truncated files with complete events before the cut; name -> events recovered."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    session = _session(6)
    array = orjson.dumps(session)
    cut_in_last = array.rindex(b'{"type"') + 20  # inside the 6th event
    lines = b"".join(orjson.dumps(e) + b"\n" for e in session)
    packed = [zlib.compress(orjson.dumps({**e, "v": "v1"})).decode("latin-1") for e in session]
    packed_json = orjson.dumps(packed)
    multibyte = orjson.dumps(
        [*session[:3], {"type": 5, "timestamp": _T0 + 9, "data": {"tag": "é€"}}]
    )
    files = {
        "truncated_array.json": (array[:cut_in_last], 5),
        "truncated_array_pretty.json": (orjson.dumps(session, option=orjson.OPT_INDENT_2)[:-30], 5),
        "truncated_jsonl.jsonl": (lines[:-25], 5),
        "truncated_packed.json": (packed_json[: packed_json.rindex(b'","') + 10], 5),
        "truncated_in_utf8_character.json": (multibyte[: multibyte.index("€".encode()) + 1], 3),
    }
    for name, (data, _) in files.items():
        (directory / name).write_bytes(data)
    return {name: count for name, (_, count) in files.items()}
