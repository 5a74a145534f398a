"""A small preprocessed dataset for the dataset-object tests, and what to check it against.

``dataset_dir`` (module scope): the package's 16 sample sessions (``.json``, ``.json.gz``,
``.jsonl``; 5k-52k tokens) under ``samples/`` and one broken file, preprocessed with
``max_tokens`` 24,000 (about half the sessions are split into windows) and small shards (a
session's windows spread over several). ``make_corpus(src)`` writes those inputs and
``dataset_options`` are the options, and ``shard_rows(out)`` reads every sequence back from the shards directly, in manifest order, as
``(tokens, source, window)``: the independent view the tests compare the ``Dataset`` with.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from rrweb_dali.commands.demo import sample_files
from rrweb_dali.preprocess import PreprocessOptions, preprocess
from rrweb_dali.shards.manifest import open_shards

OPTIONS = PreprocessOptions(max_tokens=24_000, shard_tokens=60_000)


def _make_corpus(src: Path) -> Path:
    (src / "samples").mkdir(parents=True)
    for f in sample_files():
        shutil.copy(f, src / "samples" / Path(f).name)
    (src / "broken.json").write_bytes(b'[{"type": 4, "data": ')
    return src


def _shard_rows(out: Path) -> list[tuple[np.ndarray, str, int]]:
    _, shards = open_shards(out, verify=True)
    rows = []
    for shard in shards:
        idx = shard.index
        for j in range(len(shard)):
            rows.append((np.array(shard[j]), idx.files[int(idx.file_id[j])], int(idx.window[j])))
    return rows


@pytest.fixture(scope="session")
def make_corpus():
    """``make_corpus(src) -> src``: the samples under ``src/samples`` and ``src/broken.json``."""
    return _make_corpus


@pytest.fixture(scope="session")
def dataset_options() -> PreprocessOptions:
    """The options ``dataset_dir`` is preprocessed with."""
    return OPTIONS


@pytest.fixture(scope="session")
def shard_rows():
    """``shard_rows(out)``: ``[(tokens, source, window), ...]`` of every sequence, in order."""
    return _shard_rows


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory) -> Path:
    """The preprocessed sample dataset (see the module docstring)."""
    root = tmp_path_factory.mktemp("dataset")
    src = _make_corpus(root / "src")
    out = root / "out"
    preprocess([src], out, OPTIONS, workers=1)
    return out
