"""Helpers of the preprocess tests, as fixtures that give the helper function (same name).

``synth_corpus(directory, n, seed=0)`` writes a synthetic corpus and returns its directory;
``assert_same_tree(a, b)`` checks two output trees are byte-identical; ``windows_by_file(out)``
and ``joined_by_file(out)`` read the shards back per source file; ``expected_tokens(root, rel)``
is what the tokenizer makes of one input; ``error_lines(out)`` parses errors.jsonl; and
``assert_accounting(out)`` checks the manifest's file equation and returns its totals.
``killer_hooks(directory, culprit, once=None)`` writes a ``sitecustomize.py`` that makes any
process reading a file whose path holds ``culprit`` SIGKILL itself (see the fixture).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rrweb_dali.ingest import load_session
from rrweb_dali.shards.manifest import ERRORS_NAME, open_shards, read_manifest
from rrweb_dali.synth import write_synth_corpus
from rrweb_dali.tokenizer import Tokenizer


def _synth_corpus(directory: Path, n: int, seed: int = 0) -> Path:
    write_synth_corpus(directory, n, seed=seed, workers=1)
    return directory


def _tree_bytes(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` by relative path: what "byte-identical outputs" compares."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _assert_same_tree(a: Path, b: Path) -> None:
    ta, tb = _tree_bytes(a), _tree_bytes(b)
    assert sorted(ta) == sorted(tb)
    different = [name for name in ta if ta[name] != tb[name]]
    assert not different, f"files differ: {different}"


def _windows_by_file(out: Path) -> dict[str, list[tuple[int, np.ndarray]]]:
    """Every sequence in the shards, grouped by source file: (window, tokens) in shard order."""
    _, shards = open_shards(out, verify=True)
    found: dict[str, list[tuple[int, np.ndarray]]] = {}
    for shard in shards:
        idx = shard.index
        for i in range(len(shard)):
            rel = idx.files[int(idx.file_id[i])]
            found.setdefault(rel, []).append((int(idx.window[i]), np.array(shard[i])))
    return found


def _joined_by_file(out: Path) -> dict[str, np.ndarray]:
    """A file's windows concatenated in window order (checking they are numbered 0, 1, 2, ...)."""
    joined = {}
    for rel, pieces in _windows_by_file(out).items():
        assert [w for w, _ in pieces] == list(range(len(pieces))), rel
        joined[rel] = np.concatenate([t for _, t in pieces])
    return joined


def _expected_tokens(root: Path, rel: str, limits=None) -> np.ndarray:
    return Tokenizer().encode(load_session(root / rel, limits).events)


def _error_lines(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / ERRORS_NAME).read_text().splitlines()]


def _assert_accounting(out: Path) -> dict:
    """The file equation of the manifest holds, and errors.jsonl agrees with the totals."""
    m = read_manifest(out)
    t = m.totals
    assert m.extra["accounting"]["holds"] is True
    assert t["files_read"] == t["sessions"] + t["files_rejected"] + t["skipped_overflow"]
    lines = _error_lines(out)
    by_status = {
        s: sum(e["status"] == s for e in lines) for s in ("rejected", "salvaged", "skipped")
    }
    assert by_status == {
        "rejected": t["files_rejected"],
        "salvaged": t["salvaged"],
        "skipped": t["skipped_overflow"],
    }
    assert t["windows"] == sum(s.sessions for s in m.shards)
    assert t["tokens"] == sum(s.tokens for s in m.shards)
    return t


@pytest.fixture(scope="session")
def synth_corpus():
    """``synth_corpus(directory, n, seed=0) -> directory``: ``n`` synthetic session files."""
    return _synth_corpus


@pytest.fixture(scope="session")
def assert_same_tree():
    """``assert_same_tree(a, b)``: the same files under ``a`` and ``b``, byte for byte."""
    return _assert_same_tree


@pytest.fixture(scope="session")
def windows_by_file():
    """``windows_by_file(out) -> {source file: [(window, tokens), ...]}`` in shard order."""
    return _windows_by_file


@pytest.fixture(scope="session")
def joined_by_file():
    """``joined_by_file(out) -> {source file: tokens}``, its windows joined in window order."""
    return _joined_by_file


@pytest.fixture(scope="session")
def expected_tokens():
    """``expected_tokens(root, rel, limits=None)``: the tokens of ``root / rel``, read directly."""
    return _expected_tokens


@pytest.fixture(scope="session")
def error_lines():
    """``error_lines(out)``: the records of ``out``'s errors.jsonl."""
    return _error_lines


@pytest.fixture(scope="session")
def assert_accounting():
    """``assert_accounting(out) -> totals``: the manifest's file equation and errors.jsonl agree."""
    return _assert_accounting


# {culprit}: name part of the file whose reader dies; {once}: a marker file, if given: only the
# first process to see it dies (and removes it), so the file is fine when read again.
_SITECUSTOMIZE = """
import os, signal
import rrweb_dali.preprocess.task as task

_load = task.load_session

def load_session(path, limits=None):
    if {culprit!r} in os.fsdecode(path):
        once = {once!r}
        if once is None:
            os.kill(os.getpid(), signal.SIGKILL)
        try:
            os.unlink(once)
        except FileNotFoundError:
            pass
        else:
            os.kill(os.getpid(), signal.SIGKILL)
    return _load(path, limits)

task.load_session = load_session
"""


def _killer_hooks(directory: Path, culprit: str, once: Path | None = None) -> Path:
    directory.mkdir(parents=True)
    text = _SITECUSTOMIZE.format(culprit=culprit, once=None if once is None else str(once))
    (directory / "sitecustomize.py").write_text(text)
    return directory


@pytest.fixture(scope="session")
def killer_hooks():
    """``killer_hooks(directory, culprit, once=None) -> directory``: a ``sitecustomize.py`` for
    ``PYTHONPATH`` that wraps the reader of :mod:`rrweb_dali.preprocess.task` so that the process
    reading a file whose path holds ``culprit`` SIGKILLs itself (with ``once``, a marker file:
    only the first such process, which removes it). Every Python process started with it on its
    path imports it (the run, its workers, their fresh replacements, Ray's workers): real deaths,
    with no test hook in the library."""
    return _killer_hooks
