"""Fixtures shared by the test folders: the real corpus beside the repo, hostile inputs, and
random token datasets (``write_dataset``, ``dataset``) for the source and loader tests.

``real_corpus`` (with ``real_corpus_entries`` and the ``real_corpus_entry`` parametrization) is
the development corpus at ``../shared/corpus`` beside the repo; tests that need it skip visibly
when it is absent.

``hostile_inputs`` gives ``write_hostile_inputs(dir)``, which writes files that must each fail
with one known ``SessionError.reason`` when read with ``HOSTILE_LIMITS``, and
``write_salvageable_inputs(dir)``, which writes truncated files from which a known number of
events must be recovered (both from :mod:`rrweb_dali.synth.hostile_set`, which
``bench/hostile.py`` measures too).
"""

from __future__ import annotations

import socket
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import orjson
import pytest

from rrweb_dali.shards.format import ShardWriter
from rrweb_dali.shards.manifest import Manifest, write_manifest
from rrweb_dali.synth.hostile_set import (
    HOSTILE_LIMITS,
    write_hostile_inputs,
    write_salvageable_inputs,
)

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


@pytest.fixture(scope="session")
def wild_corpus() -> Path:
    """The real-world recordings at ``../shared/corpus/wild`` (described by its SOURCES.md);
    skips when they are absent."""
    wild = REAL_CORPUS / "wild"
    if not (wild / "SOURCES.md").is_file():
        pytest.skip(f"real-world recordings not found at {wild} (expected ../shared/corpus/wild)")
    return wild


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


@pytest.fixture(scope="session")
def hostile_inputs() -> SimpleNamespace:
    """``write_hostile_inputs(dir)`` (file name -> expected reason), ``write_salvageable_inputs(dir)``
    (file name -> events recovered) and the ``HOSTILE_LIMITS`` to read them with."""
    return SimpleNamespace(
        write_hostile_inputs=write_hostile_inputs,
        write_salvageable_inputs=write_salvageable_inputs,
        HOSTILE_LIMITS=HOSTILE_LIMITS,
    )


# ---------------------------------------------------------------- token datasets

N_SESSIONS = 203  # not a multiple of any batch size the loader tests use


def write_token_dataset(root: Path, sessions: list[np.ndarray], shards: int) -> list[np.ndarray]:
    """Write ``sessions`` (uint16 token arrays, in global order) as a dataset directory of
    ``shards`` shards, one source file per shard; returns ``sessions``."""
    infos, per = [], -(-len(sessions) // shards)
    for s in range(shards):
        w = ShardWriter(root / "shards", f"shard-{s:06d}")
        fid = w.add_file(f"f{s}.json")
        for tokens in sessions[s * per : (s + 1) * per]:
            w.add(tokens, fid)
        infos.append(w.close())
    write_manifest(root, Manifest(tokenizer={"name": "test"}, shards=infos))
    return sessions


@pytest.fixture(scope="session")
def token_dataset_writer():
    """:func:`write_token_dataset`, for conftest files below this one."""
    return write_token_dataset


@pytest.fixture(scope="session")
def write_dataset():
    """``write_dataset(root, n=203, shards=3, seed=0, max_len=3000)``: a dataset directory of
    random uint16 sessions (0 is a valid token inside a session; session 5 is empty); returns
    the sessions' tokens by global index."""

    def write(root, n=N_SESSIONS, shards=3, seed=0, max_len=3000):
        rng = np.random.default_rng(seed)
        sessions = [
            rng.integers(0, 65536, size=int(k), dtype=np.uint16)
            for k in rng.integers(1, max_len + 1, size=n)
        ]
        if n > 5:
            sessions[5] = sessions[5][:0]  # an empty session is legal
        return write_token_dataset(root, sessions, shards)

    return write


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, write_dataset):
    """A module's random token dataset: ``(root, sessions)``."""
    root = tmp_path_factory.mktemp("ds")
    return root, write_dataset(root)


# ---------------------------------------------------------------- processes


@pytest.fixture
def free_port():
    """``free_port()``: a TCP port of 127.0.0.1 that the OS just picked as free, for a process
    group's ``MASTER_PORT`` (tests that spawn ranks never share a fixed port)."""

    def pick() -> int:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    return pick
