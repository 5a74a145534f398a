"""The token budget (tokenizer version 2): geometry, long decimals, numeric lists and long styles
are summarised; small values are unchanged; an event over its budget is cut and marked."""

from __future__ import annotations

import pickle
import random

import numpy as np
import orjson
import pytest

from rrweb_dali.tokenizer import Tokenizer, budget, vocab

T0 = 1_700_000_000_000
SPECIAL = vocab.SPECIAL
BYTE = vocab.BYTE_BASE
COUNT_FIRST, COUNT_SIZE = vocab.RANGES["COUNT"]
SIZE_FIRST, SIZE_SIZE = vocab.RANGES["SIZE"]


def snapshot_of(tag: str, attrs: dict, children=()) -> list[dict]:
    el = {"type": 2, "tagName": tag, "attributes": attrs, "childNodes": list(children), "id": 2}
    node = {"type": 0, "id": 1, "childNodes": [el]}
    return [{"type": 2, "data": {"node": node}, "timestamp": T0}]


def mutation_of(attrs: dict, nid: int = 2, ts: int = T0 + 10) -> dict:
    data = {"source": 0, "texts": [], "removes": [], "adds": []}
    data["attributes"] = [{"id": nid, "attributes": attrs}]
    return {"type": 3, "data": data, "timestamp": ts}


def value_tokens(tok: Tokenizer, attrs: dict, name: str) -> list[int]:
    """The tokens of attribute ``name``'s value in a snapshot <path> (up to the next attribute)."""
    ids = tok.encode(snapshot_of("path", attrs)).tolist()
    start = ids.index(vocab.attr_id(name)) + 1
    attr_first, attr_size = vocab.RANGES["ATTR"]
    end = start
    while end < len(ids) and not attr_first <= ids[end] < attr_first + attr_size:
        end += 1
        if ids[end] == SPECIAL["</>"]:
            break
    return ids[start:end]


def text_of(ids: list[int]) -> bytes:
    return bytes(i - BYTE for i in ids if BYTE <= i < BYTE + 256)


def path_data(rng: random.Random, n: int, commands: str = "L") -> str:
    parts = [f"M{rng.uniform(0, 900)!r},{rng.uniform(0, 600)!r}"]
    for k in range(n):
        parts.append(
            f"{commands[k % len(commands)]}{rng.uniform(0, 900)!r},{rng.uniform(0, 600)!r}"
        )
    return "".join(parts)


def test_geometry_is_a_short_summary_whatever_its_length():
    tok = Tokenizer()
    rng = random.Random(1)
    lengths = []
    for n in (3, 30, 3000):
        d = path_data(rng, n) + "Z"
        toks = value_tokens(tok, {"d": d}, "d")
        assert toks[0] == SPECIAL["=geom"]
        # the commands, repeats merged (a 3000-point path's final Z is beyond the letter scan)
        assert text_of(toks) == (b"MLZ" if n < 1000 else b"ML")
        assert COUNT_FIRST <= toks[-1] < COUNT_FIRST + COUNT_SIZE
        lengths.append((len(toks), toks[-1]))
    assert [n for n, _ in lengths] == [5, 5, 4]  # =geom M L (Z) count, for 8 or 6002 numbers
    assert lengths[0][1] < lengths[1][1] < lengths[2][1]  # the count bucket grows
    # At most GEOM_LETTERS letters: a path alternating many commands is cut there.
    many = value_tokens(tok, {"d": path_data(rng, 50, "LHVCSQTA")}, "d")
    assert len(text_of(many)) == budget.GEOM_LETTERS
    assert len(many) == budget.GEOM_LETTERS + 2
    # transform, points, viewBox: the same summary; function names give their first letters.
    xform = value_tokens(tok, {"transform": "translate(12.3456,78.9012) rotate(30)"}, "transform")
    assert xform[0] == SPECIAL["=geom"] and text_of(xform) == b"tr"
    points = value_tokens(tok, {"points": " ".join(f"{i},{i * 2}" for i in range(40))}, "points")
    assert points[0] == SPECIAL["=geom"] and text_of(points) == b"" and len(points) == 2


def test_small_values_are_unchanged():
    tok = Tokenizer()
    for name, value in (
        ("viewBox", "0 0 10 10"),
        ("d", "M0 0L10 10"),
        ("transform", "rotate(45)"),
        ("cx", "12.5"),
        ("cx", "0.125"),
        ("style", "display: none"),
        ("data-values", "1 2 3 4"),
        ("class", "node link"),
    ):
        assert len(value) <= budget.SHORT_VALUE
        toks = value_tokens(tok, {name: value}, name)
        assert toks == [BYTE + b for b in value.encode()], (name, value)
    # Longer values without a rule and not numeric are text as before (capped, <TRUNC>).
    long_class = "alpha beta gamma delta epsilon"
    assert value_tokens(tok, {"class": long_class}, "class") == [
        BYTE + b for b in long_class.encode()
    ]


def test_long_decimals_and_numeric_lists():
    tok = Tokenizer()
    toks = value_tokens(tok, {"cx": "123.45678901234"}, "cx")
    assert toks[0] == SPECIAL["=num"] and text_of(toks) == b"123.4"
    assert text_of(value_tokens(tok, {"width": "-0.00012345"}, "width")) == b"-0.0"
    # A numeric list in an attribute without a rule (over SHORT_VALUE characters).
    values = " ".join(str(i * 1.5) for i in range(100))
    toks = value_tokens(tok, {"data-values": values}, "data-values")
    assert toks[0] == SPECIAL["=geom"] and len(toks) == 2
    # Text that only starts with a digit stays text.
    prose = "3 little pigs went to market"
    assert text_of(value_tokens(tok, {"title": prose}, "title")) == prose.encode()


def test_long_inline_style_gives_properties_and_keywords():
    tok = Tokenizer()
    style = "position: absolute; left: 10px; top: 12.5px; display: none; color: #333"
    toks = value_tokens(tok, {"style": style}, "style")
    assert toks[0] == SPECIAL["=css{"] and SIZE_FIRST <= toks[-1] < SIZE_FIRST + SIZE_SIZE
    names = [vocab.other_name_id(p) for p in ("position", "left", "top", "display", "color")]
    assert [i for i in toks if i in names] == names
    assert text_of(toks) == b"absolutenone"  # keyword values only; numbers and colours dropped
    text = tok.decode(tok.encode(snapshot_of("div", {"style": style})))
    assert "style=css{ 'position' \"absolute\" 'left' 'top' 'display' \"none\" 'color'" in text
    huge = "; ".join(f"prop-{i}: value{i}" for i in range(10_000))
    big = value_tokens(tok, {"style": huge}, "style")
    assert len(big) <= 2 + budget.STYLE_DECLS * (1 + budget.STYLE_KEYWORD_MAX)
    assert len(big) <= tok.max_text_bytes + 1  # never more than a capped text field


def test_rules_apply_to_mutations_and_style_diffs():
    tok = Tokenizer()
    rng = random.Random(2)
    d = path_data(rng, 20, "A")
    mutation = [mutation_of({"d": d, "style": {"transform": "translate(12.5px, 80.25px)"}})]
    text = tok.decode(tok.encode(snapshot_of("path", {}) + mutation))
    assert 'MUT-ATTR @path d=geom"MA" ' in text
    assert "'transform' =geom\"tp\"" in text


def test_animated_svg_frames_are_bounded_per_item():
    """A D3-like frame (200 links' ``d`` and 150 nodes' ``transform`` rewritten) costs a few
    tokens per attribute, and far more bytes of JSON per token than a byte-level BPE's 3.5."""
    tok = Tokenizer()
    rng = random.Random(3)
    attributes = [{"id": 2, "attributes": {"d": path_data(rng, 1, "A")}} for _ in range(200)]
    attributes += [
        {
            "id": 2,
            "attributes": {"transform": f"translate({rng.random() * 900!r},{rng.random()!r})"},
        }
        for _ in range(150)
    ]
    frame = mutation_of({})
    frame["data"]["attributes"] = attributes
    events = snapshot_of("path", {}) + [frame] * 50
    ids = tok.encode(events)
    frame_tokens = (len(ids) - len(tok.encode(events[:1]))) / 50
    # per item: MUT-ATTR, target, name, then =geom, at most 2 letters ("MA", "t"), count
    assert frame_tokens <= 2 + len(attributes) * 7
    assert SPECIAL["<EV-TRUNC>"] not in ids.tolist()
    assert len(orjson.dumps(frame)) / frame_tokens > 3.5 * 3


def test_event_budget_cuts_and_marks():
    tok = Tokenizer(max_event_tokens=100)
    positions = [{"x": i % 800, "y": i % 600, "id": 2, "timeOffset": -i} for i in range(1000)]
    move = {"type": 3, "data": {"source": 1, "positions": positions}, "timestamp": T0 + 1}
    after = {"type": 3, "data": {"source": 2, "type": 2, "id": 2}, "timestamp": T0 + 2}
    ids = tok.encode([*snapshot_of("button", {}), move, after]).tolist()
    cut = ids.index(SPECIAL["<EV-TRUNC>"])
    move_start = ids.index(vocab.RANGES["EVENT"][0] + 3) - 1  # the move's time delta
    assert cut - move_start == 100  # exactly the budget, counted from the time delta
    text = tok.decode(ids).splitlines()
    assert text[2].endswith("<EV-TRUNC>") and "Click @button" in text[3]  # the next event is whole
    # A small event is never marked; the unlimited whole is longer.
    assert SPECIAL["<EV-TRUNC>"] not in tok.encode([after]).tolist()
    assert len(Tokenizer().encode([move])) > len(tok.encode([move]))


def test_snapshot_budget_cut_still_records_targets():
    children = [
        {"type": 2, "tagName": "p", "attributes": {}, "childNodes": [], "id": 10 + i}
        for i in range(500)
    ]
    children.append({"type": 2, "tagName": "button", "attributes": {}, "childNodes": [], "id": 9})
    events = snapshot_of("div", {}, children)
    events.append({"type": 3, "data": {"source": 2, "type": 2, "id": 9}, "timestamp": T0 + 5})
    tok = Tokenizer(max_snapshot_tokens=64)
    ids = tok.encode(events).tolist()
    assert ids.count(SPECIAL["<EV-TRUNC>"]) == 1
    text = tok.decode(ids)
    assert "<button" not in text  # cut from the snapshot ...
    assert "Click @button" in text  # ... but the click still names its target's tag
    assert len(ids) < 64 + 10


def test_budget_options_in_config_pickle_and_validation():
    a, b = Tokenizer(), Tokenizer(max_event_tokens=1000, max_snapshot_tokens=5000)
    assert a.config()["options"] == {
        "max_text_bytes": 64,
        "max_event_tokens": budget.DEFAULT_MAX_EVENT_TOKENS,
        "max_snapshot_tokens": budget.DEFAULT_MAX_SNAPSHOT_TOKENS,
    }
    assert a.config()["version"] == vocab.VERSION == 2
    assert a.config() != b.config()
    clone = pickle.loads(pickle.dumps(b))
    assert clone.config() == b.config() and "max_event_tokens=1000" in repr(clone)
    for bad in (0, 3, -1, 2.5, True, None, 1 << 40):
        with pytest.raises(ValueError):
            Tokenizer(max_event_tokens=bad)
        with pytest.raises(ValueError):
            Tokenizer(max_snapshot_tokens=bad)


def test_budget_rules_are_deterministic():
    rng = random.Random(4)
    attrs = {
        "d": path_data(rng, 40, "LC"),
        "transform": "matrix(1.5,0,0,1.5,12.25,-7.125)",
        "style": "left: 1px; top: 2px; visibility: hidden; opacity: 0.5",
        "cx": "3.14159265",
    }
    events = [*snapshot_of("path", attrs), mutation_of(attrs)]
    first = Tokenizer().encode(events)
    assert np.array_equal(first, Tokenizer().encode(orjson.loads(orjson.dumps(events))))
    reordered = snapshot_of("path", dict(reversed(list(attrs.items()))))
    assert np.array_equal(Tokenizer().encode(reordered), Tokenizer().encode(events[:1]))


def test_hostile_geometry_stays_small():
    tok = Tokenizer()
    for d in ("M1 1" + "L1 1" * 1_000_000, "M" + "9" * 1_000_000, "M" + "LZ" * 500_000):
        toks = value_tokens(tok, {"d": d}, "d")
        assert toks[0] == SPECIAL["=geom"] and len(toks) <= budget.GEOM_LETTERS + 2
    style = "a:" + "b" * 2_000_000
    assert len(value_tokens(tok, {"style": style}, "style")) <= 4
