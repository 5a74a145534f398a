"""The structural tokenizer: ids, structure tokens, determinism, node ids, text, blobs, coordinates.

Robustness (malformed events, deep DOMs) and the real corpus are in test_tokenizer_robust.py.
"""

from __future__ import annotations

import copy
import hashlib
import json
import pickle

import numpy as np
import pytest

from rrweb_dali.tokenizer import BOS_ID, EOS_ID, PAD_ID, Tokenizer, vocab

T0 = 1_700_000_000_000
SPECIAL = vocab.SPECIAL


def ev(kind: int, data, ts: int = T0) -> dict:
    return {"type": kind, "data": data, "timestamp": ts}


def incr(source: int, ts: int = T0, **data) -> dict:
    return ev(3, {"source": source, **data}, ts)


def sample_session() -> list[dict]:
    """A small session that touches every event type and every incremental source."""
    doc = {
        "type": 0,
        "id": 1,
        "childNodes": [
            {"type": 1, "name": "html", "publicId": "", "systemId": "", "id": 2},
            {
                "type": 2,
                "tagName": "html",
                "attributes": {"lang": "en"},
                "id": 3,
                "childNodes": [
                    {
                        "type": 2,
                        "tagName": "head",
                        "attributes": {},
                        "id": 4,
                        "childNodes": [
                            {
                                "type": 2,
                                "tagName": "style",
                                "attributes": {},
                                "id": 5,
                                "childNodes": [
                                    {
                                        "type": 3,
                                        "textContent": "p{color:red}",
                                        "isStyle": True,
                                        "id": 6,
                                    }
                                ],
                            }
                        ],
                    },
                    {
                        "type": 2,
                        "tagName": "body",
                        "attributes": {"class": "page", "data-x": "1"},
                        "id": 7,
                        "childNodes": [
                            {"type": 5, "textContent": " note ", "id": 8},
                            {
                                "type": 2,
                                "tagName": "input",
                                "attributes": {"type": "text", "value": "héllo"},
                                "childNodes": [],
                                "id": 9,
                            },
                            {
                                "type": 2,
                                "tagName": "svg",
                                "attributes": {"viewBox": "0 0 10 10"},
                                "isSVG": True,
                                "childNodes": [
                                    {  # v2 budget rules: geometry, long decimal, long style
                                        "type": 2,
                                        "tagName": "path",
                                        "attributes": {
                                            "d": "M1.5,2.25L3.125,4.5L5,6Z",
                                            "cx": "4.123456",
                                            "style": "position: absolute; left: 3.5px",
                                        },
                                        "isSVG": True,
                                        "childNodes": [],
                                        "id": 20,
                                    }
                                ],
                                "id": 10,
                            },
                            {"type": 3, "textContent": "Hello world", "id": 11},
                        ],
                    },
                ],
            },
        ],
    }
    return [
        ev(4, {"href": "https://example.com/a", "width": 1000, "height": 800}, T0),
        ev(2, {"node": doc, "initialOffset": {"top": 400, "left": 0}}, T0 + 5),
        ev(0, {}, T0 + 6),
        ev(1, {}, T0 + 7),
        incr(
            0,
            T0 + 50,
            removes=[{"parentId": 7, "id": 8}],
            adds=[
                {
                    "parentId": 7,
                    "nextId": None,
                    "node": {
                        "type": 2,
                        "tagName": "div",
                        "attributes": {"id": "n"},
                        "childNodes": [],
                        "id": 12,
                    },
                },
                {
                    "parentId": 12,
                    "nextId": None,
                    "node": {"type": 3, "textContent": "new", "id": 13},
                },
            ],
            texts=[{"id": 11, "value": "Bye"}],
            attributes=[{"id": 12, "attributes": {"class": "x", "style": {"color": "blue"}}}],
        ),
        incr(1, T0 + 80, positions=[{"x": 500, "y": 400, "id": 7, "timeOffset": -30}]),
        incr(2, T0 + 90, type=2, id=9, x=100.5, y=200.25, pointerType=0),
        incr(3, T0 + 95, id=1, x=0, y=1600),
        incr(4, T0 + 99, width=2000, height=1600),
        incr(5, T0 + 120, id=9, text="abc", isChecked=False, userTriggered=True),
        incr(6, T0 + 121, positions=[{"x": 1, "y": 2, "id": 7, "timeOffset": 0}]),
        incr(7, T0 + 122, type=0, id=10, currentTime=3.5, muted=False),
        incr(8, T0 + 123, id=5, adds=[{"rule": "a{color:red}", "index": 0}]),
        incr(9, T0 + 124, id=10, type=0, commands=[{"property": "fillRect", "args": [0, 0, 9, 9]}]),
        incr(10, T0 + 125, family="Foo", fontSource="data:font/woff2;base64,AAAA", buffer=False),
        incr(11, T0 + 126, level="log", payload=["x"]),
        incr(12, T0 + 127, positions=[{"x": 3, "y": 4, "id": 9, "timeOffset": -2}]),
        incr(13, T0 + 128, id=5, index=[0], set={"property": "color", "value": "red"}),
        incr(14, T0 + 129, ranges=[{"start": 11, "startOffset": 0, "end": 11, "endOffset": 3}]),
        incr(15, T0 + 130, id=1, styleIds=[1], styles=[]),
        incr(16, T0 + 131, define={"name": "my-element"}),
        ev(5, {"tag": "my-tag", "payload": {"a": 1}}, T0 + 200),
        ev(
            6,
            {"plugin": "rrweb/console@1", "payload": {"level": "log", "payload": ["hi"]}},
            T0 + 201,
        ),
        ev(7, {"url": "https://example.com/x.png", "payload": {"rr_type": "Blob"}}, T0 + 202),
        ev(8, {"tag": "note", "payload": {}}, T0 + 203),
    ]


def name_of(tok: Tokenizer, i: int) -> str:
    return tok.token_name(int(i))


def test_special_ids_and_dtype():
    tok = Tokenizer()
    ids = tok.encode(sample_session())
    assert (Tokenizer.PAD, Tokenizer.BOS, Tokenizer.EOS) == (PAD_ID, BOS_ID, EOS_ID)
    assert PAD_ID == 0 and len({PAD_ID, BOS_ID, EOS_ID}) == 3
    assert ids.dtype == np.uint16 and ids.ndim == 1
    assert ids[0] == BOS_ID and ids[-1] == EOS_ID
    assert BOS_ID not in ids[1:].tolist() and EOS_ID not in ids[:-1].tolist()
    assert PAD_ID not in ids.tolist()
    assert int(ids.max()) < tok.vocab_size < 65536
    assert tok.encode([]).tolist() == [BOS_ID, EOS_ID]


def test_vocab_table_is_contiguous_and_named():
    start = 0
    for name, size in vocab.RANGE_SIZES:
        assert vocab.RANGES[name] == (start, size)
        row = f"\n    {name:<8} {start:>5} {size:>5}  "
        assert row in vocab.__doc__, f"the documented table is out of date at range {name}"
        start += size
    assert start == vocab.VOCAB_SIZE == Tokenizer().vocab_size
    assert f"vocab_size = {start}" in vocab.__doc__
    names = vocab.token_names()
    assert len(names) == vocab.VOCAB_SIZE
    assert names[PAD_ID] == "<PAD>" and names[BOS_ID] == "<BOS>" and names[EOS_ID] == "<EOS>"
    # The hash of names outside the lists must be the same everywhere: the standard CRC-32
    # (check value 0xCBF43926 for "123456789"), never Python's per-process hash().
    assert vocab.stable_bucket("123456789") == 0xCBF43926 % vocab.HASH_BUCKETS
    assert vocab.tag_id("div") == vocab.RANGES["TAG"][0] + vocab.TAGS.index("div")
    assert vocab.tag_id("DIV") == vocab.tag_id("div")
    assert vocab.RANGES["TAG"][0] + len(vocab.TAGS) <= vocab.tag_id("my-widget")


def test_every_event_type_and_source_has_its_own_token():
    tok = Tokenizer()
    event_tokens = [tok.encode([ev(kind, {"source": 0})])[2] for kind in [*range(9), 9, 42]]
    assert len(set(event_tokens[:10])) == 10  # 0-8 and unknown
    assert event_tokens[9] == event_tokens[10]  # every unknown type is the one unknown token
    assert name_of(tok, event_tokens[3]) == "INCR" and name_of(tok, event_tokens[2]) == "FULL"

    source_tokens = [tok.encode([incr(src)])[3] for src in [*range(17), 17, 99]]
    assert len(set(source_tokens[:18])) == 18
    assert source_tokens[17] == source_tokens[18]
    assert not set(source_tokens) & set(event_tokens)
    assert name_of(tok, source_tokens[1]) == "MouseMove"


def test_interaction_pointer_media_and_node_types_are_distinct():
    tok = Tokenizer()
    mouse = {int(tok.encode([incr(2, type=k, id=1)])[4]) for k in [*range(11), 11, 50]}
    assert len(mouse) == 12
    pointers = {int(tok.encode([incr(2, type=2, id=1, pointerType=p)])[5]) for p in (0, 1, 2, 7)}
    assert len(pointers) == 4
    media = {int(tok.encode([incr(7, type=k, id=1)])[4]) for k in [*range(5), 9]}
    assert len(media) == 6
    nodes = []
    for kind in (0, 1, 3, 4, 5, 9):
        node = {"type": kind, "id": 1, "childNodes": [], "textContent": "", "name": ""}
        nodes.append(int(tok.encode([ev(2, {"node": node})])[3]))
    nodes.append(
        int(tok.encode([ev(2, {"node": {"type": 2, "tagName": "p", "childNodes": []}})])[3])
    )
    assert len(set(nodes)) == 7


def reorder_keys(obj):
    """Deep copy with every dict's keys in reverse order."""
    if isinstance(obj, dict):
        return {k: reorder_keys(obj[k]) for k in reversed(list(obj))}
    if isinstance(obj, list):
        return [reorder_keys(x) for x in obj]
    return obj


def test_deterministic_and_key_order_free():
    tok = Tokenizer()
    events = sample_session()
    first = tok.encode(events)
    assert np.array_equal(first, tok.encode(events))
    assert np.array_equal(first, Tokenizer().encode(copy.deepcopy(events)))
    assert np.array_equal(first, tok.encode(reorder_keys(events)))
    assert events == sample_session()  # encode does not modify its input


# sha256 of the little-endian uint16 ids of sample_session() with the default options (version 2;
# test_decode_is_readable checks what those tokens say).
GOLDEN_SHA256 = "7d96457375155ce1575c8a6f6e5d7abd1240178d1527c81f4fe0bf148b31f0da"
GOLDEN_LENGTH = 288


def test_golden_ids():
    tok = Tokenizer()
    ids = tok.encode(sample_session()).astype("<u2")
    digest = hashlib.sha256(ids.tobytes()).hexdigest()
    assert (digest, len(ids)) == (GOLDEN_SHA256, GOLDEN_LENGTH), (
        "the encoding of a fixed session changed: if that is intended, bump "
        "rrweb_dali.tokenizer.vocab.VERSION and update GOLDEN_SHA256 / GOLDEN_LENGTH "
        f"(now {digest}, {len(ids)}); shards written before are no longer compatible"
    )
    assert tok.version == vocab.VERSION


def renumber(obj, mapping):
    if isinstance(obj, dict):
        out = {}
        for k, val in obj.items():
            if k in ("id", "parentId", "nextId", "previousId", "start", "end") and isinstance(
                val, int
            ):
                out[k] = mapping(val)
            else:
                out[k] = renumber(val, mapping)
        return out
    if isinstance(obj, list):
        return [renumber(x, mapping) for x in obj]
    return obj


def test_node_ids_do_not_influence_tokens():
    tok = Tokenizer()
    events = sample_session()
    ids = tok.encode(events)
    assert np.array_equal(ids, tok.encode(renumber(events, lambda i: i * 7919 + 100_003)))
    assert np.array_equal(ids, tok.encode(renumber(events, lambda i: 10**6 - i)))
    # Ids still tell targets apart: the click lands on the <input> named by its id.
    text = tok.decode(ids)
    assert "Click ptr:mouse pos(0.10,0.25) @input" in text


def test_text_cap_and_truncation():
    tok = Tokenizer(max_text_bytes=8)
    trunc = SPECIAL["<TRUNC>"]
    short = tok.encode([incr(5, id=1, text="abc")])
    assert trunc not in short.tolist()
    assert tok.decode(short).count('"abc"') == 1
    long = tok.encode([incr(5, id=1, text="abcdefghijkl")])
    byte_first = vocab.BYTE_BASE
    payload = [i - byte_first for i in long.tolist() if byte_first <= i < byte_first + 256]
    assert bytes(payload) == b"abcdefgh"
    assert long.tolist().count(trunc) == 1
    # Multi-byte characters: the cap is in bytes, not characters.
    wide = tok.encode([incr(5, id=1, text="ééééé")])  # 10 bytes
    assert sum(byte_first <= i < byte_first + 256 for i in wide.tolist()) == 8
    assert trunc in wide.tolist()
    # A 10 M-character text costs the same few tokens as any long text.
    huge = tok.encode([incr(5, id=1, text="ab " * 3_400_000)])
    assert len(huge) == len(long)
    # Zero cap: no text bytes at all, a truncation mark for non-empty text.
    none = Tokenizer(max_text_bytes=0).encode([incr(5, id=1, text="abc")])
    assert not any(byte_first <= i < byte_first + 256 for i in none.tolist())
    with pytest.raises(ValueError):
        Tokenizer(max_text_bytes=-1)


def element(tag: str, attrs: dict, children=(), nid: int = 2) -> dict:
    return {"type": 2, "tagName": tag, "attributes": attrs, "childNodes": list(children), "id": nid}


def snapshot(*children) -> list[dict]:
    return [ev(2, {"node": {"type": 0, "id": 1, "childNodes": list(children)}})]


def test_blobs_are_never_inlined():
    tok = Tokenizer()
    blob = SPECIAL["<BLOB>"]
    css = "a{color:red}" * 90_000  # ~1 MB
    cases = [
        snapshot(element("link", {"_cssText": css})),
        snapshot(element("style", {}, [{"type": 3, "textContent": css, "isStyle": True, "id": 3}])),
        snapshot(element("img", {"src": "data:image/png;base64," + "A" * 500_000})),
        snapshot(element("canvas", {"rr_dataURL": "data:image/png;base64,AAAA"})),
        snapshot(element("div", {"title": "QUJD" * 100_000})),  # long base64-looking
        [incr(9, id=3, type=0, commands=[{"property": "x", "args": ["QUJD" * 100_000]}])],
        [incr(8, id=3, adds=[{"rule": css}])],
        [ev(5, {"tag": "t", "payload": {"big": "x" * 1_000_000}})],
    ]
    for events in cases:
        ids = tok.encode(events).tolist()
        assert blob in ids, tok.decode(ids)
        assert len(ids) < 20, tok.decode(ids)
    # Prose that merely starts with "data:" is text, not a data URL.
    prose = tok.encode(snapshot(element("pre", {}, [{"type": 3, "textContent": "data: {a: 1}"}])))
    assert blob not in prose.tolist() and '"data: {a: 1}"' in tok.decode(prose)
    # The size bucket tells a small blob from a large one.
    small = tok.encode(snapshot(element("link", {"_cssText": "a{}"}))).tolist()
    large = tok.encode(snapshot(element("link", {"_cssText": css}))).tolist()
    assert len(small) == len(large) and small != large


def test_attributes_canonical_order_and_values():
    tok = Tokenizer()
    a = tok.encode(snapshot(element("a", {"href": "/x", "class": "c", "id": "i"})))
    b = tok.encode(snapshot(element("a", {"id": "i", "class": "c", "href": "/x"})))
    assert np.array_equal(a, b)
    text = tok.decode(
        tok.encode(snapshot(element("input", {"disabled": True, "size": 3, "x": 1.5})))
    )
    assert "disabled=true" in text and 'size=num"3"' in text


def test_coordinates_are_relative_to_the_viewport():
    tok = Tokenizer()

    def click_at(width, height, x, y):
        meta = ev(4, {"href": "", "width": width, "height": height})
        click = incr(2, T0 + 10, type=2, id=1, x=x, y=y)
        moves = incr(1, T0 + 20, positions=[{"x": x, "y": y, "id": 1, "timeOffset": -5}])
        return tok.encode([meta, click, moves])[6:]  # after the Meta event's tokens

    assert np.array_equal(click_at(1000, 800, 410, 180), click_at(2000, 1600, 820, 360))
    assert not np.array_equal(click_at(1000, 800, 410, 180), click_at(1000, 800, 820, 360))
    # Before any Meta the viewport is 1024x768; ViewportResize changes it mid-session.
    default = tok.encode([incr(2, type=2, id=1, x=512, y=384)])
    resized = tok.encode([incr(4, width=2048, height=1536), incr(2, type=2, id=1, x=1024, y=768)])
    assert default[-3:-1].tolist() == resized[-3:-1].tolist()
    # Off-screen coordinates clamp to the edge buckets.
    edge = tok.encode([incr(2, type=2, id=1, x=10**9, y=-50)])
    assert name_of(tok, edge[5]) == f"x{vocab.COORD_SIZE - 1}" and name_of(tok, edge[6]) == "y0"


def test_time_deltas():
    tok = Tokenizer()
    times = [T0, T0, T0 + 1, T0 + 1000, T0 + 500, T0 + 3_600_000_000]
    ids = tok.encode([incr(1, ts, positions=[]) for ts in times]).tolist()
    names = [
        name_of(tok, i) for i in ids if name_of(tok, i).startswith("[+") or "DT" in name_of(tok, i)
    ]
    assert names[:4] == ["[+0ms]", "[+0ms]", "[+1ms]", "[+896ms]"]
    assert names[4] == "<DT-NEG>"
    assert names[5].startswith("[+")  # clamped to the top bucket
    for d in range(1, 5000):
        assert vocab.log_bucket_floor(vocab.log_bucket(d)) <= d
        assert vocab.log_bucket(d) >= vocab.log_bucket(d - 1)


def test_decode_is_readable():
    tok = Tokenizer()
    text = tok.decode(tok.encode(sample_session()))
    lines = text.splitlines()
    assert lines[0] == "<BOS>" and lines[-1] == "<EOS>"
    assert len(lines) == len(sample_session()) + 2  # one line per event
    fragments = ("<html", "<body", 'class="page"', "</body>", '"Hello world"', "</#document>")
    for fragment in (*fragments, "INCR MouseMove pos(0.50,0.50)", "META w992 h800"):
        assert fragment in text, fragment
    # Mutations: each kind of change has its own token, and names its target's tag.
    mutation = next(line for line in lines if "INCR Mutation" in line)
    for fragment in ("MUT-REMOVE @#other", "MUT-ADD @body <div", 'MUT-TEXT "Bye"', "MUT-ATTR @div"):
        assert fragment in mutation, fragment
    assert '@input "abc" unchecked user' in text and "Scroll @#doc" in text
    # The budget's summaries (version 2) of the <path> in the snapshot.
    snap = next(line for line in lines if " FULL " in line)
    for fragment in ('cx=num"4.1"', 'd=geom"MLZ" n6', "style=css{ 'position' \"absolute\" 'left'"):
        assert fragment in snap, fragment
    assert tok.decode(list(tok.encode(sample_session()))) == text


def test_pickles_as_its_options():
    tok = Tokenizer(max_text_bytes=16)
    tok.encode(sample_session())  # fill the memo caches: they must not travel
    clone = pickle.loads(pickle.dumps(tok))
    assert clone.config() == tok.config()
    assert np.array_equal(clone.encode(sample_session()), tok.encode(sample_session()))


def test_config_describes_the_encoding():
    a, b, c = Tokenizer(), Tokenizer(max_text_bytes=64), Tokenizer(max_text_bytes=16)
    assert a.config() == b.config() != c.config()
    assert json.loads(json.dumps(a.config())) == a.config()
    assert a.config()["version"] == a.version and a.config()["vocab_size"] == a.vocab_size
    events = sample_session()
    assert not np.array_equal(a.encode(events), c.encode(events))
