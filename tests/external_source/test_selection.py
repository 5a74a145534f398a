"""Held-out splits and index-level filters (``rrweb_dali.external_source.selection``)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from rrweb_dali.external_source.reader import ShardReader
from rrweb_dali.external_source.selection import (
    Selection,
    select_ids,
    split_of,
    split_score,
)

from rrweb_dali.preprocess import PreprocessOptions, preprocess
from rrweb_dali.synth import write_synth_corpus

N_FILES = 10_000


def _names(n: int, start: int = 0) -> list[str]:
    """Synthetic stored names: nested folders, sequential numbers, a few extensions."""
    ext = (".json", ".json.gz", ".js", ".jsonl")
    return [f"site-{k % 37:02d}/day-{k % 11}/session-{k:06d}{ext[k % 4]}" for k in range(start, n)]


def test_the_score_is_blake2b_of_the_stored_name():
    name = "site-01/session-000001.json"
    digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
    assert split_score(name) == int.from_bytes(digest, "big") / 2**64
    assert 0 <= split_score("") < 1
    assert split_score("ab") != split_score("ba")
    # A stored name holding an escaped non-UTF-8 byte (a lone surrogate) still has a score.
    assert 0 <= split_score("bad-\udcff.json") < 1


@pytest.mark.parametrize("fraction", [0.01, 0.05, 0.2, 0.5])
def test_split_sizes_on_a_10k_file_corpus(fraction):
    names = _names(N_FILES)
    sel_val = Selection(split="val", val_fraction=fraction).file_mask(names)
    sel_train = Selection(split="train", val_fraction=fraction).file_mask(names)
    assert not (sel_val & sel_train).any()  # disjoint
    assert (sel_val | sel_train).all()  # and complete
    assert abs(sel_val.mean() - fraction) <= 0.01
    # Against a direct recomputation, name by name.
    assert sel_val.tolist() == [split_of(n, fraction) == "val" for n in names]


def test_adding_files_moves_no_existing_file_and_fractions_nest():
    names = _names(N_FILES)
    before = Selection(split="val", val_fraction=0.05).file_mask(names)
    grown = names[:5000] + _names(N_FILES + 1000, N_FILES) + names[5000:]  # 1,000 new, inserted
    after = Selection(split="val", val_fraction=0.05).file_mask(grown)
    after_by_name = dict(zip(grown, after.tolist(), strict=True))
    assert [after_by_name[n] for n in names] == before.tolist()
    small = Selection(split="val", val_fraction=0.01).file_mask(names)
    assert not (small & ~before).any()  # val at 1% is inside val at 5%


def test_filters_on_lengths_and_names():
    files = ["a/x.json", "a/y.js", "b/z.js"]
    lengths = np.array([0, 5, 10, 15, 20, 25])
    file_id = np.array([0, 1, 2, 0, 1, 2])
    keep = Selection(min_sequence_tokens=10).sequence_mask(lengths, file_id, files)
    assert keep.tolist() == [False, False, True, True, True, True]
    keep = Selection(max_sequence_tokens=15).sequence_mask(lengths, file_id, files)
    assert keep.tolist() == [True, True, True, True, False, False]
    keep = Selection(source_glob="*.js", min_sequence_tokens=6).sequence_mask(
        lengths, file_id, files
    )
    assert keep.tolist() == [False, False, True, False, True, True]
    keep = Selection(source_glob="a/*").sequence_mask(lengths, file_id, files)
    assert keep.tolist() == [True, True, False, True, True, False]
    with pytest.raises(ValueError, match="outside its shard's file table"):
        Selection(source_glob="*").sequence_mask(lengths, np.array([0, 1, 2, 3, 0, 0]), files)


def test_selection_checks_its_fields_and_names_what_it_keeps():
    assert Selection().selects_all and Selection().key() is None
    assert Selection(split="val").key()["val_fraction"] == 0.01
    assert "val_fraction" not in Selection(min_sequence_tokens=3).key()
    for bad in (
        {"split": "test"},
        {"val_fraction": 1.5},
        {"val_fraction": True},
        {"min_sequence_tokens": -1},
        {"max_sequence_tokens": 2.5},
        {"min_sequence_tokens": 9, "max_sequence_tokens": 3},
        {"source_glob": 3},
    ):
        with pytest.raises(ValueError):
            Selection(**bad)


def _write_tiny_files(root, names):
    """Small valid rrweb recordings (a meta and a full snapshot), one per name."""
    for k, name in enumerate(names):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        node = {"type": 2, "tagName": "html", "attributes": {"id": f"p{k}"}, "childNodes": []}
        events = [
            {
                "type": 4,
                "data": {"href": "https://x/", "width": 800, "height": 600},
                "timestamp": 1,
            },
            {
                "type": 2,
                "data": {
                    "node": {"type": 0, "childNodes": [{**node, "id": 2}], "id": 1},
                    "initialOffset": {"left": 0, "top": 0},
                },
                "timestamp": 2,
            },
        ]
        path.write_text(json.dumps(events))


def _split_by_file(out, fraction):
    """For each stored name: the set of splits its sequences landed in, and its window count."""
    reader = ShardReader(out)
    names = []
    for shard in reader.shards:
        files = shard.index.files
        names += [files[int(f)] for f in shard.index.file_id]
    sides: dict[str, set[str]] = {}
    for split in ("train", "val"):
        for i in select_ids(reader, Selection(split=split, val_fraction=fraction)).tolist():
            sides.setdefault(names[i], set()).add(split)
    return sides, names


def test_preprocessed_windows_never_straddle_and_new_files_move_nothing(tmp_path):
    corpus = tmp_path / "in"
    write_synth_corpus(corpus, 60, seed=3, workers=1)
    options = PreprocessOptions(max_tokens=1024)  # long sessions split into many windows
    preprocess([corpus], tmp_path / "a", options, workers=1)
    fraction = 0.3
    sides, names = _split_by_file(tmp_path / "a", fraction)
    assert len(names) > 3 * len(set(names))  # the sessions really were split into windows
    assert set(sides) == set(names)  # every sequence is in one of the splits ...
    assert all(len(s) == 1 for s in sides.values())  # ... and a file's windows in only one
    assert {next(iter(s)) for s in sides.values()} == {"train", "val"}
    assert all(next(iter(sides[n])) == split_of(n, fraction) for n in sides)

    new = [f"000/added-{k:04d}.json" for k in range(500)] + [
        f"new/{k:04d}.json" for k in range(500)
    ]
    _write_tiny_files(corpus, new)
    preprocess([corpus], tmp_path / "b", options, workers=1)
    grown, grown_names = _split_by_file(tmp_path / "b", fraction)
    assert len(set(grown_names)) == len(set(names)) + 1000
    assert all(grown[n] == sides[n] for n in sides)  # no existing session changed split
