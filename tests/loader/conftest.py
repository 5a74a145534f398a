"""Fixtures of the loader tests: the row check and the ways of running a pass."""

from __future__ import annotations

import numpy as np
import pytest
import torch


@pytest.fixture(scope="session")
def check_rows():
    """``check_rows(batch, sessions, cap=None, pad_multiple=8, width=None)``: every padded row
    equals the shard tokens of its ``index``, PAD (0) after it, the mask 1 exactly on it."""

    def check(batch, sessions, cap=None, pad_multiple=8, width=None):
        ids, mask = batch["input_ids"], batch["attention_mask"]
        lengths, index = batch["lengths"], batch["index"]
        assert lengths.dtype == torch.int32 and index.dtype == torch.int64
        longest = int(lengths.max())
        expect_width = width or max(-(-longest // pad_multiple) * pad_multiple, pad_multiple)
        assert ids.shape == (index.numel(), expect_width)
        for row, i in enumerate(index.tolist()):
            want = sessions[i][:cap].astype(np.int64)
            n = int(lengths[row])
            assert n == want.size
            assert np.array_equal(ids[row, :n].numpy(), want), (row, i)
            assert not ids[row, n:].any()  # PAD = 0
            assert mask[row, :n].all() and not mask[row, n:].any()

    return check


@pytest.fixture(scope="session")
def collect():
    """``collect(loader)``: every batch of one pass, cloned (kept to the end of the test)."""

    def run(loader):
        return [{k: v.clone() for k, v in b.items()} for b in loader]

    return run


@pytest.fixture(scope="session")
def indices():
    """``indices(loader, limit=None)``: the ``index`` tensor of each batch of one pass."""

    def run(loader, limit=None):
        out = []
        for b in loader:
            out.append(b["index"].clone())
            if limit is not None and len(out) == limit:
                break
        return out

    return run
