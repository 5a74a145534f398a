"""The synthetic corpus: reproducible bytes, every format readable, shapes and sizes like the
real recordings."""

from __future__ import annotations

import gzip
import json
import statistics
import zlib
from pathlib import Path

import orjson
import pytest

from rrweb_dali.synth import SynthSummary, generate_session, profile, write_synth_corpus
from rrweb_dali.synth.session import session_events
from rrweb_dali.synth.write import EXTENSIONS, encode, session_format, session_path

SEED = 7  # one seed for all tests: its sites and pages are built once per test process
SMALL_N = 40


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def _decode(path: Path) -> list[dict]:
    """Decode a synthetic file by hand, independently of the library's reader."""
    data = path.read_bytes()
    name = path.name
    if name.endswith(".json.gz"):
        return orjson.loads(gzip.decompress(data))
    if name.endswith(".jsonl"):
        return [orjson.loads(line) for line in data.splitlines() if line.strip()]
    if name.endswith(".packed.json"):
        events = []
        for s in orjson.loads(data):
            assert isinstance(s, str)
            event = json.loads(zlib.decompress(s.encode("latin-1")))
            assert event.pop("v") == "v1"
            events.append(event)
        return events
    assert name.endswith(".json")
    return orjson.loads(data)


def _walk(node: dict):
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        stack.extend(reversed(n.get("childNodes", ())))


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory) -> tuple[Path, SynthSummary]:
    out = tmp_path_factory.mktemp("synth") / "one"
    return out, write_synth_corpus(out, n=SMALL_N, seed=SEED, workers=1)


def test_same_seed_same_bytes_whatever_the_workers(small_corpus, tmp_path):
    one, summary = small_corpus
    two = tmp_path / "two"
    summary2 = write_synth_corpus(two, n=SMALL_N, seed=SEED, workers=2)
    assert _tree(one) == _tree(two)
    assert (summary2.bytes, summary2.events, summary2.formats) == (
        summary.bytes,
        summary.events,
        summary.formats,
    )


def test_generate_session_is_deterministic_and_independent():
    first = generate_session(SEED, 11)
    for index in (12, 0, 500):  # other sessions in between must not change it (caches are pure)
        generate_session(SEED, index)
    assert generate_session(SEED, 11) == first
    assert generate_session(SEED + 1, 11) != first
    assert orjson.dumps(first) == orjson.dumps(session_events(SEED, 11))


def test_layout_summary_and_format_mix(small_corpus):
    out, summary = small_corpus
    files = sorted(p for p in out.rglob("*") if p.is_file())
    assert [p.name for p in files] == [
        f"synth-{i:06d}{EXTENSIONS[session_format(SEED, i)]}" for i in range(SMALL_N)
    ]
    assert all(p.parent.name == "000" for p in files)
    assert not list(out.rglob("*.tmp"))
    assert summary.sessions == summary.files == SMALL_N
    assert summary.bytes == sum(p.stat().st_size for p in files)
    assert set(summary.formats) == set(EXTENSIONS) and all(summary.formats.values())
    assert sum(summary.formats.values()) == SMALL_N
    assert session_path("x", 0, 12_345).parts[-2:] == (
        "012",
        f"synth-012345{EXTENSIONS[session_format(0, 12_345)]}",
    )
    mix = [session_format(0, i) for i in range(1200)]
    assert {f: mix.count(f) for f in EXTENSIONS} == {
        f: 10 * w for f, w in profile.FORMAT_WEIGHTS.items()
    }


def test_every_file_decodes_to_its_session(small_corpus):
    out, summary = small_corpus
    total = 0
    for index in range(SMALL_N):
        path = session_path(out, SEED, index)
        events = _decode(path)
        assert events == generate_session(SEED, index)
        total += len(events)
    assert total == summary.events


def test_the_library_reader_reads_every_file(small_corpus):
    ingest = pytest.importorskip("rrweb_dali.ingest", reason="rrweb_dali.ingest not available")
    out, _ = small_corpus
    for index in range(SMALL_N):
        path = session_path(out, SEED, index)
        assert ingest.read_session(path) == generate_session(SEED, index), path.name


def test_encode_rejects_unknown_format():
    with pytest.raises(ValueError, match="unknown format"):
        encode([], "xml")


def test_sessions_have_rrweb_shape():
    for index in range(60):
        events = generate_session(SEED, index)
        assert [e["type"] for e in events[:2]] == [4, 2]
        stamps = [e["timestamp"] for e in events]
        assert stamps == sorted(stamps)
        assert all(set(e) == {"type", "data", "timestamp"} for e in events)
        for i, e in enumerate(events):
            if e["type"] == 4:  # every page (and checkout) is Meta then FullSnapshot
                assert events[i + 1]["type"] == 2
                assert e["data"]["href"].startswith("https://") and e["data"]["width"] > 0
            if e["type"] == 2:
                ids = [n["id"] for n in _walk(e["data"]["node"])]
                assert len(ids) == len(set(ids))
                assert ids == list(range(1, len(ids) + 1))  # pre-order from 1, like rrweb
                added: set[int] = set(ids)
            if e["type"] == 3 and e["data"]["source"] == 0:
                new = [a["node"]["id"] for a in e["data"]["adds"]]
                assert not added.intersection(new) and len(new) == len(set(new))
                assert all(
                    a["parentId"] in added or a["parentId"] in new for a in e["data"]["adds"]
                )
                added.update(new)
            if e["type"] == 3 and e["data"]["source"] == 1:
                assert all(p["timeOffset"] <= 0 for p in e["data"]["positions"])


def test_distributions_are_near_the_recordings():
    n = 200
    sessions = [session_events(SEED, i) for i in range(n)]  # events with pre-serialized parts
    median_events = statistics.median(len(s) for s in sessions)
    median_bytes = statistics.median(len(orjson.dumps(s)) for s in sessions)
    real_events, real_bytes = profile.SESSION_EVENTS_Q[3], profile.SESSION_BYTES_Q[3]
    assert 0.6 * real_events <= median_events <= 1.5 * real_events
    assert 0.6 * real_bytes <= median_bytes <= 1.5 * real_bytes
    assert max(len(s) for s in sessions) >= 3 * real_events  # a long tail exists
    types: dict[int, int] = {}
    sources: dict[int, int] = {}
    for s in sessions:
        for e in s:
            types[e["type"]] = types.get(e["type"], 0) + 1
            if e["type"] == 3:
                sources[e["data"]["source"]] = sources.get(e["data"]["source"], 0) + 1
    assert set(profile.INCREMENTAL_SOURCE_COUNTS) <= set(sources)
    assert {2, 3, 4, 5} <= set(types)
    incremental = sum(sources.values())
    real_total = sum(profile.INCREMENTAL_SOURCE_COUNTS.values())
    for source, count in profile.INCREMENTAL_SOURCE_COUNTS.items():  # shares within 0.5x .. 2x
        if count / real_total > 0.04:
            assert 0.5 <= (sources[source] / incremental) / (count / real_total) <= 2.0, source


def test_rare_kinds_occur():
    """Kinds absent from the recordings (types 0, 1, 6; sources 6-13, 15, 16) appear at scale."""
    wanted_types, wanted_sources = {0, 1, 6}, set(range(6, 14)) | {15, 16}
    types: set[int] = set()
    sources: set[int] = set()
    for index in range(3000):  # 3 % of sessions hold rare events; a few hundred usually suffice
        for e in session_events(SEED, index):
            types.add(e["type"])
            if e["type"] == 3:
                sources.add(e["data"]["source"])
        if wanted_types <= types and wanted_sources <= sources:
            break
    assert wanted_types <= types
    assert wanted_sources <= sources


def test_profile_numbers_match_the_corpus_manifest(real_corpus):
    manifest = real_corpus / "MANIFEST.json"
    files = [f for f in orjson.loads(manifest.read_bytes())["files"] if f["kind"] == "recorded"]
    assert statistics.median(f["events"] for f in files) == profile.SESSION_EVENTS_Q[3]
    assert max(f["events"] for f in files) == profile.SESSION_EVENTS_Q[-1]
    formats = {f: sum(1 for x in files if x["format"] == f) for f in profile.FORMAT_WEIGHTS}
    assert formats == profile.FORMAT_WEIGHTS


def _svg_indices(seed: int, n: int) -> list[int]:
    from rrweb_dali.synth.svg import is_svg_session

    return [i for i in range(n) if is_svg_session(seed, i)]


def test_svg_sessions_are_a_documented_share_and_deterministic():
    from rrweb_dali.synth.svg import svg_kind, svg_session_events

    chosen = _svg_indices(SEED, 5000)
    share = len(chosen) / 5000
    assert 0.5 * profile.SVG_SESSION_PROBABILITY <= share <= 1.5 * profile.SVG_SESSION_PROBABILITY
    kinds = {svg_kind(SEED, i) for i in chosen}
    assert kinds == {"force", "chart"}
    first = chosen[0]
    assert orjson.dumps(session_events(SEED, first)) == orjson.dumps(
        svg_session_events(SEED, first)
    )
    assert generate_session(SEED, first) == generate_session(SEED, first)
    assert generate_session(SEED + 1, first) != generate_session(SEED, first)


def test_svg_sessions_have_rrweb_shape_and_animate_geometry():
    from rrweb_dali.synth.svg import svg_kind

    seen = set()
    for index in _svg_indices(SEED, 600)[:6]:
        events = generate_session(SEED, index)
        kind = svg_kind(SEED, index)
        seen.add(kind)
        assert [e["type"] for e in events[:2]] == [4, 2]
        stamps = [e["timestamp"] for e in events]
        assert stamps == sorted(stamps)
        ids = [n["id"] for n in _walk(events[1]["data"]["node"])]
        assert ids == list(range(1, len(ids) + 1))  # pre-order from 1, like rrweb
        frames = [e for e in events if e["type"] == 3 and e["data"]["source"] == 0]
        assert len(frames) >= 12
        for frame in frames:
            assert all(item["id"] in set(ids) for item in frame["data"]["attributes"])
        names = {
            name for f in frames for item in f["data"]["attributes"] for name in item["attributes"]
        }
        assert {"d", "transform"} <= names
        if kind == "force":  # every frame rewrites every link's path and every node's transform
            assert min(len(f["data"]["attributes"]) for f in frames) >= 20 + 26
    assert seen == {"force", "chart"}


def test_svg_sessions_tokenize_within_budget():
    from rrweb_dali.tokenizer import Tokenizer, vocab

    tok = Tokenizer()
    trunc = vocab.SPECIAL["<EV-TRUNC>"]
    for index in _svg_indices(SEED, 600)[:6]:
        events = generate_session(SEED, index)
        ids = tok.encode(events).tolist()
        assert trunc not in ids  # the attribute rules alone keep every frame small
        json_bytes = len(orjson.dumps(events))
        assert json_bytes / len(ids) > 3.5  # better than a byte-level BPE's ~3.5 bytes/token
        for event in events:
            if event["type"] == 3 and event["data"]["source"] == 0:
                n_items = len(event["data"]["attributes"])
                n_tokens = len(tok.encode([event])) - 2
                # per item: MUT-ATTR, target, then per attribute name + at most 10 (=geom,
                # letters, count) or a short value
                per_item = max(len(i["attributes"]) for i in event["data"]["attributes"]) * 11
                assert n_tokens <= 3 + n_items * (2 + per_item)
