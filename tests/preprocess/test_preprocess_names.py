"""File names that are not valid UTF-8 (POSIX names are bytes): read like any other file, stored
losslessly escaped in every output, matched again by reruns.

The names are made at test time from bytes (``b"bad-\\xff.json"``); a file system that refuses
them (some only take UTF-8 names) skips the tests visibly.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from rrweb_dali.commands.demo import sample_files
from rrweb_dali.ingest.names import disk_name, portable_name
from rrweb_dali.preprocess import PreprocessOptions, preprocess
from rrweb_dali.shards.manifest import read_manifest

GOOD = (b"bad-\xff.json", b"caf\xe9/deep.json", b"back\\slash.json", b"plain.json")
JUNK = b"junk-\xfe.json"  # not JSON: rejected, and its line must still be written


def _write(root: Path, name: bytes, data: bytes) -> None:
    path = os.path.join(os.fsencode(root), name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    try:
        with open(path, "wb") as fh:
            fh.write(data)
    except OSError as exc:  # e.g. a file system that only takes UTF-8 names
        pytest.skip(f"this file system refuses the name {name!r}: {exc}")


@pytest.fixture
def corpus(tmp_path) -> Path:
    src = tmp_path / "src"
    samples = sample_files()
    for name, sample in zip(GOOD, samples, strict=False):
        _write(src, name, sample.read_bytes())
    _write(src, JUNK, b"this is not json\n")
    return src


def stored(name: bytes) -> str:
    return portable_name(os.fsdecode(name))


def _strict_utf8(root: Path) -> None:
    """Every output file that is text is valid UTF-8 (what JSON writers and readers need)."""
    for p in root.rglob("*"):
        if p.is_file() and p.suffix in (".json", ".jsonl"):
            p.read_bytes().decode("utf-8")  # raises on surrogates or stray bytes


def test_undecodable_names_are_read_and_stored_escaped(
    corpus, tmp_path, windows_by_file, expected_tokens, error_lines, assert_accounting
):
    out = tmp_path / "out"
    result = preprocess([corpus], out, PreprocessOptions(group_files=2), workers=2)
    totals = assert_accounting(out)
    assert totals["sessions"] == len(GOOD) and totals["files_rejected"] == 1
    assert result.groups_run == result.groups_total
    _strict_utf8(out)

    # The shards' file tables name every good file by its stored (escaped) name ...
    by_file = windows_by_file(out)
    assert sorted(by_file) == sorted(stored(n) for n in GOOD)
    assert stored(b"bad-\xff.json") == "bad-\\xff.json"
    assert stored(b"back\\slash.json") == "back\\\\slash.json"
    # ... which maps back to exactly the file on disk, whose tokens are the ones written.
    for name in by_file:
        on_disk = corpus / disk_name(name)
        assert on_disk.is_file(), name
        (_window, tokens), *_ = by_file[name]
        assert (tokens == expected_tokens(corpus, disk_name(name))[: len(tokens)]).all()

    (junk,) = error_lines(out)
    assert junk["path"] == "junk-\\xfe.json" and junk["status"] == "rejected"
    assert junk["reason"] == "not_json"
    plan = json.loads((out / "state" / "plan.json").read_bytes())
    planned = [f[0] for g in plan["groups"] for f in g["files"]]
    assert sorted(planned) == sorted(stored(n) for n in (*GOOD, JUNK))


def test_one_worker_and_two_write_the_same_bytes(corpus, tmp_path, assert_same_tree):
    opts = PreprocessOptions(group_files=2)
    preprocess([corpus], tmp_path / "w1", opts, workers=1)
    preprocess([corpus], tmp_path / "w2", opts, workers=2)
    assert_same_tree(tmp_path / "w1", tmp_path / "w2")


def test_reruns_match_escaped_names(corpus, tmp_path, assert_same_tree, windows_by_file):
    out = tmp_path / "out"
    opts = PreprocessOptions(group_files=2)
    preprocess([corpus], out, opts, workers=1)
    again = preprocess([corpus], out, opts, workers=1)
    assert again.groups_run == 0 and again.stale_inputs == {"changed": [], "missing": []}
    assert read_manifest(out).totals["inputs_changed"] == 0

    # A new file with another undecodable name: only it is read, into a new group.
    _write(corpus, b"new-\xfa.json", sample_files()[0].read_bytes())
    grown = preprocess([corpus], out, opts, workers=1)
    assert grown.groups_run == 1 and grown.files_run == 1
    assert "new-\\xfa.json" in windows_by_file(out)
    _strict_utf8(out)
