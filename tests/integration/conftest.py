"""Fixtures of the integration tests: a small learnable token dataset (``free_port`` is in the
shared conftest).

The dataset's sessions are counting sequences (each from its own start and stride, modulo a small
range of the tokenizer's vocabulary, between BOS and EOS): a tiny model learns them within a few
dozen steps, so "the loss falls" is a real check, and every id is a valid id of the tokenizer.
"""

from __future__ import annotations

import numpy as np
import pytest

from rrweb_dali.tokenizer import Tokenizer
from rrweb_dali.tokenizer.vocab import BOS_ID, EOS_ID

FIRST_ID, ID_RANGE = 64, 200  # ids 64..263: past the special tokens, inside the vocabulary


def counting_sessions(n: int, seed: int, max_len: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        k = int(rng.integers(8, max_len + 1))
        start, stride = rng.integers(0, ID_RANGE, size=2)
        body = FIRST_ID + (start + (stride % 7 + 1) * np.arange(k - 2)) % ID_RANGE
        out.append(np.concatenate([[BOS_ID], body, [EOS_ID]]).astype(np.uint16))
    return out


@pytest.fixture(scope="session")
def write_counting_dataset(token_dataset_writer):
    """``write_counting_dataset(root, n=40, seed=0, max_len=96, shards=2)``: a dataset directory
    of :func:`counting_sessions`; returns the sessions by global index."""

    def write(root, n=40, seed=0, max_len=96, shards=2):
        return token_dataset_writer(root, counting_sessions(n, seed, max_len), shards)

    return write


@pytest.fixture(scope="module")
def counting_dataset(tmp_path_factory, write_counting_dataset):
    """A module's counting dataset: ``(root, sessions)``."""
    root = tmp_path_factory.mktemp("counting")
    return root, write_counting_dataset(root)


@pytest.fixture(scope="session")
def vocab_size() -> int:
    return Tokenizer().vocab_size
