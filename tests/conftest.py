"""Fixtures shared by the test folders: the real corpus beside the repo, hostile inputs, and
random token datasets (``write_dataset``, ``dataset``) for the source and loader tests.

``real_corpus`` (with ``real_corpus_entries`` and the ``real_corpus_entry`` parametrization) is
the development corpus at ``../shared/corpus`` beside the repo; tests that need it skip visibly
when it is absent.

``hostile_inputs`` gives ``write_hostile_inputs(dir)``, which writes files that must each fail
with one known ``SessionError.reason`` when read with ``HOSTILE_LIMITS``, and
``write_salvageable_inputs(dir)``, which writes truncated files from which a known number of
events must be recovered. Every file is small (< 1 MB on disk; the gzip bomb is a few KB that
inflates past ``HOSTILE_LIMITS.max_bytes``) and byte-identical on every run, so preprocessing
tests can compare outputs. One entry is a directory (``a_directory.json``): it is what a careless
glob hands the reader, and it must be ``io_error``.
"""

from __future__ import annotations

import gzip
import random
import zlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import orjson
import pytest

from rrweb_dali.ingest import ReadLimits

# ---------------------------------------------------------------- the real corpus

REAL_CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
REAL_CORPUS_MISSING = (
    f"rrweb corpus not found at {REAL_CORPUS} (expected ../shared/corpus beside the repo)"
)


def _real_corpus_entries() -> list[dict]:
    manifest = REAL_CORPUS / "MANIFEST.json"
    if not manifest.is_file():
        return []
    return orjson.loads(manifest.read_bytes())["files"]


@pytest.fixture(scope="session")
def real_corpus() -> Path:
    """The development corpus (``../shared/corpus`` beside the repo); skips when it is absent."""
    if not (REAL_CORPUS / "MANIFEST.json").is_file():
        pytest.skip(REAL_CORPUS_MISSING)
    return REAL_CORPUS


@pytest.fixture(scope="session")
def real_corpus_entries(real_corpus) -> list[dict]:
    """The ``files`` of the corpus's MANIFEST.json (path, format, events, ... of each file)."""
    return _real_corpus_entries()


def pytest_generate_tests(metafunc):
    """A test taking ``real_corpus_entry`` runs once per MANIFEST entry (id: its path), and is
    one visible skip when the corpus is absent."""
    if "real_corpus_entry" not in metafunc.fixturenames:
        return
    entries = _real_corpus_entries()
    if entries:
        metafunc.parametrize("real_corpus_entry", entries, ids=[e["path"] for e in entries])
    else:
        skipped = pytest.param(None, marks=pytest.mark.skip(reason=REAL_CORPUS_MISSING))
        metafunc.parametrize("real_corpus_entry", [skipped], ids=["no-corpus"])


# ---------------------------------------------------------------- hostile inputs

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


def _write_hostile_inputs(directory: Path) -> dict[str, str]:
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
        "javascript_not_json.js": (b"const events = [{type: 4, timestamp: 1}];\n", "not_json"),
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
        "not_rrweb_events_without_timestamp.json": (b'[{"type":4,"data":{}}]', "not_rrweb"),
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
        "deep_packed_event.json": (
            orjson.dumps([zlib.compress(_deep_dom_json(20_000)[1:-1]).decode("latin-1")]),
            "too_deep",
        ),
    }
    for name, (data, _) in files.items():
        (directory / name).write_bytes(data)
    (directory / "a_directory.json").mkdir(exist_ok=True)
    expected = {name: reason for name, (_, reason) in files.items()}
    expected["a_directory.json"] = "io_error"
    return expected


def _write_salvageable_inputs(directory: Path) -> dict[str, int]:
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


@pytest.fixture(scope="session")
def hostile_inputs() -> SimpleNamespace:
    """``write_hostile_inputs(dir)`` (file name -> expected reason), ``write_salvageable_inputs(dir)``
    (file name -> events recovered) and the ``HOSTILE_LIMITS`` to read them with."""
    return SimpleNamespace(
        write_hostile_inputs=_write_hostile_inputs,
        write_salvageable_inputs=_write_salvageable_inputs,
        HOSTILE_LIMITS=HOSTILE_LIMITS,
    )


# ---------------------------------------------------------------- token datasets

N_SESSIONS = 203  # not a multiple of any batch size the loader tests use


@pytest.fixture(scope="session")
def write_dataset():
    """``write_dataset(root, n=203, shards=3, seed=0, max_len=3000)``: a dataset directory of
    random uint16 sessions (0 is a valid token inside a session; session 5 is empty); returns
    the sessions' tokens by global index."""
    from rrweb_dali.shards.format import ShardWriter
    from rrweb_dali.shards.manifest import Manifest, write_manifest

    def write(root, n=N_SESSIONS, shards=3, seed=0, max_len=3000):
        rng = np.random.default_rng(seed)
        sessions = [
            rng.integers(0, 65536, size=int(k), dtype=np.uint16)
            for k in rng.integers(1, max_len + 1, size=n)
        ]
        if n > 5:
            sessions[5] = sessions[5][:0]  # an empty session is legal
        infos, per = [], -(-n // shards)
        for s in range(shards):
            w = ShardWriter(root / "shards", f"shard-{s:06d}")
            fid = w.add_file(f"f{s}.json")
            for tokens in sessions[s * per : (s + 1) * per]:
                w.add(tokens, fid)
            infos.append(w.close())
        write_manifest(root, Manifest(tokenizer={"name": "test"}, shards=infos))
        return sessions

    return write


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, write_dataset):
    """A module's random token dataset: ``(root, sessions)``."""
    root = tmp_path_factory.mktemp("ds")
    return root, write_dataset(root)
