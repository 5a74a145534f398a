"""Packing plans: rows tile the token stream, sessions continue across rows, nothing is dropped."""

from __future__ import annotations

import numpy as np
import pytest
from rrweb_dali.external_source.packing import plan_packing, row_segments


def _reassemble(plan, lengths, rows):
    """Session id -> its tokens rebuilt from segments, where token t of session s is (s, t)."""
    sessions, offsets, seg = row_segments(plan, rows)
    assert seg.sum() == rows.size * plan.row_length  # segments tile the rows exactly
    got: dict[int, list[int]] = {}
    pos = 0
    for s, o, n in zip(sessions.tolist(), offsets.tolist(), seg.tolist(), strict=True):
        # No segment crosses a row boundary.
        assert pos // plan.row_length == (pos + n - 1) // plan.row_length
        if s >= 0:
            assert o >= 0 and o + n <= lengths[s]
            got.setdefault(s, []).extend(range(o, o + n))
        pos += n
    return got


@pytest.mark.parametrize("row_length", [1, 7, 64, 5000])
def test_every_token_once_in_order(row_length):
    rng = np.random.default_rng(row_length)
    lengths = rng.integers(0, 300, size=200)
    order = rng.permutation(200)
    plan = plan_packing(order, lengths, row_length)
    assert plan.total_tokens == lengths.sum()
    assert plan.n_rows == -(-lengths.sum() // row_length)
    got = _reassemble(plan, lengths, np.arange(plan.n_rows))
    for s in range(200):
        assert got.get(s, []) == list(range(lengths[s])), s
    # Stream order follows the epoch order.
    firsts = [s for s in order.tolist() if lengths[s] > 0]
    seen = list(dict.fromkeys(row_segments(plan, np.arange(plan.n_rows))[0].tolist()))
    assert [s for s in seen if s >= 0] == firsts


def test_only_the_last_row_is_padded_and_batches_are_independent():
    lengths = np.array([5, 0, 9, 3])
    plan = plan_packing(np.array([2, 0, 1, 3]), lengths, 4)  # stream: 9 + 5 + 0 + 3 = 17 tokens
    assert plan.n_rows == 5
    sessions, offsets, seg = row_segments(plan, np.arange(5))
    # Rows: [2:0-4) [2:4-8) [2:8, 0:0-3) [0:3-5, 3:0-2) [3:2, pad x3]
    assert sessions.tolist() == [2, 2, 2, 0, 0, 3, 3, -1]
    assert offsets.tolist() == [0, 4, 8, 0, 3, 0, 2, 0]
    assert seg.tolist() == [4, 4, 1, 3, 2, 2, 1, 3]
    # A batch of rows 1..2 alone gives the same segments as that part of the whole plan.
    s12, o12, n12 = row_segments(plan, np.array([1, 2]))
    assert s12.tolist() == [2, 2, 0] and o12.tolist() == [4, 8, 0] and n12.tolist() == [4, 1, 3]


def test_wrapped_batch_has_two_runs():
    lengths = np.array([6, 6])
    plan = plan_packing(np.array([0, 1]), lengths, 5)  # 12 tokens, 3 rows, 3 pad tokens
    sessions, offsets, seg = row_segments(plan, np.array([2, 0]))  # last row, then the first
    assert sessions.tolist() == [1, -1, 0]
    assert offsets.tolist() == [4, 0, 0]
    assert seg.tolist() == [2, 3, 5]


def test_empty_and_bad_input():
    plan = plan_packing(np.zeros(0, np.int64), np.zeros(0, np.int64), 8)
    assert plan.n_rows == 0
    s, o, n = row_segments(plan, np.zeros(0, np.int64))
    assert s.size == o.size == n.size == 0
    with pytest.raises(ValueError):
        plan_packing(np.arange(2), np.ones(2, np.int64), 0)
