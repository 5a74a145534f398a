"""The tokenizer never raises on bad events, walks deep DOMs, and encodes the whole real corpus."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import orjson
import pytest

from rrweb_dali.tokenizer import BOS_ID, EOS_ID, Tokenizer, vocab

MALFORMED = vocab.SPECIAL["<MALFORMED>"]
CLOSE = vocab.SPECIAL["</>"]
T0 = 1_700_000_000_000


def deep_dom(levels: int) -> dict:
    """A FullSnapshot whose DOM nests ``levels`` <div>s, built without recursion."""
    leaf = {"type": 3, "textContent": "bottom", "id": levels + 2}
    node = leaf
    for depth in range(levels, 0, -1):
        node = {
            "type": 2,
            "tagName": "div",
            "attributes": {},
            "childNodes": [node],
            "id": depth + 1,
        }
    return {
        "type": 2,
        "data": {"node": {"type": 0, "childNodes": [node], "id": 1}},
        "timestamp": T0,
    }


def test_deep_dom_does_not_recurse():
    tok = Tokenizer()
    ids = tok.encode([deep_dom(20_000)])
    assert ids.tolist().count(CLOSE) == 20_001  # every <div> and the document
    assert ids[-1] == EOS_ID
    text = tok.decode(ids)
    assert '"bottom"' in text and text.count("</div>") == 20_000


def test_deep_mutation_add_does_not_recurse():
    tree = deep_dom(20_000)["data"]["node"]["childNodes"][0]
    mutation = {"source": 0, "adds": [{"parentId": 1, "nextId": None, "node": tree}]}
    events = [{"type": 3, "data": mutation, "timestamp": T0}]
    ids = Tokenizer().encode(events)
    assert ids.tolist().count(CLOSE) == 20_000
    # Under a smaller per-event budget the same mutation is cut, and the cut is marked.
    cut = Tokenizer(max_event_tokens=4096).encode(events).tolist()
    assert cut[-2:] == [vocab.SPECIAL["<EV-TRUNC>"], EOS_ID]
    assert len(cut) == 1 + 4096 + 2  # BOS, the budget, EV-TRUNC, EOS
    assert cut[: len(cut) - 2] == ids.tolist()[: len(cut) - 2]  # a prefix of the whole event


MALFORMED_EVENTS = [
    None,
    "a string",
    17,
    [],
    {},
    {"type": 3},
    {"type": 3, "data": "a string"},
    {"type": 3, "data": [1, 2]},
    {"type": 3, "data": {"source": "1"}},
    {"type": 3, "data": {"source": 1, "positions": "not a list"}},
    {"type": 3, "data": {"source": 1, "positions": [None, {"x": "a", "y": 1}]}},
    {"type": 3, "data": {"source": 1, "positions": [{"x": math.nan, "y": 1}]}},
    {"type": 3, "data": {"source": 1, "positions": [{"y": 1}]}},
    {"type": 3, "data": {"source": 2, "type": 2, "x": [1], "y": {}}},
    {"type": 3, "data": {"source": 3, "id": [1], "x": "far", "y": None}},
    {"type": 3, "data": {"source": 4, "width": -5, "height": "tall"}},
    {"type": 3, "data": {"source": 5, "id": {"a": 1}, "text": 42, "isChecked": "yes"}},
    {"type": 3, "data": {"source": 0, "adds": "H4sI...gzip...", "removes": 5, "texts": [None]}},
    {"type": 3, "data": {"source": 0, "adds": [{"node": None}, 3], "attributes": [{"id": 2}]}},
    {
        "type": 3,
        "data": {"source": 0, "attributes": [{"id": 2, "attributes": {"style": {"a": 3}}}]},
    },
    {"type": 3, "data": {"source": 7, "type": 1, "currentTime": math.inf, "volume": "x"}},
    {"type": 3, "data": {"source": 14, "ranges": [{"start": 1, "startOffset": "x"}]}},
    {"type": 3, "data": {"source": 9, "commands": [{1, 2}]}},  # not JSON-serialisable
    {"type": 2, "data": {"node": {"type": 2, "tagName": "div"}}},  # no childNodes
    {"type": 2, "data": {"node": {"type": 2, "tagName": 5, "attributes": [], "childNodes": {}}}},
    {"type": 2, "data": {"node": [1, 2, 3]}},
    {"type": 2, "data": {"node": {"type": 0, "childNodes": [None, "x", {"type": "2"}]}}},
    {
        "type": 2,
        "data": {
            "node": {
                "type": 2,
                "tagName": "p",
                "attributes": {"a": [1], "b": math.nan, "c": 10**30, "d": {"x": [1, 2, 3]}},
                "childNodes": [{"type": 3, "textContent": 5}, {"type": 3, "textContent": "\ud800"}],
            }
        },
    },
    {"type": 4, "data": {"href": 12, "width": None}},
    {"type": 5, "data": {"tag": None, "payload": object()}},
    {"type": 6, "data": {"plugin": ["x"]}},
    {"type": "2", "data": {}},
    {"type": True, "data": {}},
    {"type": 3, "data": {"source": 1, "positions": []}, "timestamp": "yesterday"},
    {"type": 3, "data": {"source": 1, "positions": []}, "timestamp": math.nan},
    {"type": 3, "data": {"source": 1, "positions": []}, "timestamp": 10**40},
    {"type": 3, "data": {"source": 1, "positions": []}, "timestamp": -(10**40)},
]


def test_malformed_events_never_raise():
    tok = Tokenizer()
    for event in MALFORMED_EVENTS:
        ids = tok.encode([event])
        assert ids[0] == BOS_ID and ids[-1] == EOS_ID and len(ids) > 2, event
        assert int(ids.max()) < tok.vocab_size
        tok.decode(ids)
    ids = tok.encode(MALFORMED_EVENTS)
    assert ids.tolist().count(MALFORMED) >= 20
    for not_a_list in (None, "events", {"type": 2}, 5):
        assert MALFORMED in tok.encode(not_a_list).tolist()
    assert np.array_equal(tok.encode(tuple(MALFORMED_EVENTS[:5])), tok.encode(MALFORMED_EVENTS[:5]))


def test_malformed_event_does_not_disturb_the_next_one():
    tok = Tokenizer()
    good = {"type": 3, "data": {"source": 2, "type": 2, "id": 1, "x": 10, "y": 10}, "timestamp": T0}
    alone = tok.encode([good]).tolist()
    after = tok.encode(
        [{"type": 3, "data": {"source": 1, "positions": [{"x": "?"}]}}, good]
    ).tolist()
    assert after[-len(alone) + 1 :] == alone[1:]  # same tokens (the first delta is 0 both times)


@pytest.fixture(scope="module")
def corpus_files(real_corpus) -> list[Path]:
    """The recorded sessions of the real corpus (skips when it is absent)."""
    return sorted(p for p in (real_corpus / "recorded").iterdir() if p.is_file())


def load_events(path: Path):
    """Plain JSON arrays and JSON Lines directly; other formats through the reader if present."""
    data = path.read_bytes()
    if path.suffix in (".json", ".jsonl") and not data.lstrip().startswith(b'["'):
        if path.suffix == ".json":
            return orjson.loads(data)
        return [orjson.loads(line) for line in data.splitlines() if line.strip()]
    try:
        from rrweb_dali.ingest import read_session
    except ImportError:
        return None
    return read_session(path)


def test_every_corpus_session_encodes_within_vocab(corpus_files):
    tok = Tokenizer()
    encoded = skipped = 0
    for path in corpus_files:
        events = load_events(path)
        if events is None:
            skipped += 1
            continue
        ids = tok.encode(events)
        assert ids.dtype == np.uint16 and len(ids) > len(events), path.name
        assert ids[0] == BOS_ID and ids[-1] == EOS_ID
        assert int(ids.max()) < tok.vocab_size, path.name
        assert MALFORMED not in ids.tolist(), f"{path.name}: real rrweb data marked malformed"
        encoded += 1
    assert encoded >= 96, f"only {encoded} sessions encoded ({skipped} need rrweb_dali.ingest)"
