"""Sequence packing: cut the epoch's token stream into dense rows of a fixed length ``L``.

Pure functions of plain arrays. The sessions of the epoch order are concatenated into one token
stream; row ``r`` is stream positions ``[r * L, (r + 1) * L)``. A session longer than the room left
in a row continues at the start of the next row; nothing is dropped: the last row of the epoch is
filled up with padding. Rows are the units that :mod:`.sampling` orders and shards,
so rank sharding, wrap-around and resume work on packed data exactly as on sessions.

A row is described by *segments*: maximal runs of tokens from one session inside the row, plus a
padding segment (session ``-1``) in the final row. Segments never cross a row boundary, so
``cu_seqlens`` built from them is what variable-length attention kernels expect, and positions
restart at 0 at every segment start (like Megatron's ``reset_position_ids``: a session continued
on the next row starts again at position 0 there).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PackPlan:
    """One epoch's token stream: sessions in ``order``; ``order[k]`` starts at ``cum[k]``."""

    order: np.ndarray  # int64 [n] session ids in stream order
    cum: np.ndarray  # int64 [n + 1] prefix sums of the (capped) lengths in stream order
    row_length: int

    @property
    def total_tokens(self) -> int:
        return int(self.cum[-1])

    @property
    def n_rows(self) -> int:
        return -(-self.total_tokens // self.row_length)


def plan_packing(order: np.ndarray, lengths: np.ndarray, row_length: int) -> PackPlan:
    """Lay the sessions of ``order`` end to end (``lengths``, by session id, already capped)."""
    if row_length < 1:
        raise ValueError(f"packing row length must be at least 1, got {row_length}")
    order = np.asarray(order, dtype=np.int64)
    cum = np.zeros(order.size + 1, dtype=np.int64)
    np.cumsum(np.asarray(lengths, dtype=np.int64)[order], out=cum[1:])
    return PackPlan(order, cum, int(row_length))


def _contiguous_runs(rows: np.ndarray) -> list[tuple[int, int]]:
    """Split row ids into runs ``[a, b)`` of consecutive ids (a wrapped batch has two)."""
    if rows.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(rows) != 1) + 1
    starts = np.concatenate([[0], breaks])
    ends = np.concatenate([breaks, [rows.size]])
    return [(int(rows[s]), int(rows[e - 1]) + 1) for s, e in zip(starts, ends, strict=True)]


def row_segments(plan: PackPlan, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The segments of ``rows`` (row ids of one batch, in batch order).

    Returns ``(session_ids, offsets, seg_lengths)``: segment ``s`` is tokens
    ``offsets[s] : offsets[s] + seg_lengths[s]`` of session ``session_ids[s]``, or padding when the
    session id is ``-1``. The segments tile the batch: ``seg_lengths.sum() == len(rows) * L``.
    """
    L, total, cum = plan.row_length, plan.total_tokens, plan.cum
    sessions, offsets, seg_lengths = [], [], []
    for a, b in _contiguous_runs(np.asarray(rows, dtype=np.int64)):
        start, end = a * L, min(b * L, total)
        if start < end:
            lo = np.searchsorted(cum, start, side="right")
            hi = np.searchsorted(cum, end, side="left")
            inner_sessions = cum[lo:hi]
            inner_rows = np.arange((start // L + 1) * L, end, L, dtype=np.int64)
            bounds = np.union1d(np.concatenate([[start, end], inner_sessions]), inner_rows)
            piece_start = bounds[:-1]
            k = np.searchsorted(cum, piece_start, side="right") - 1
            sessions.append(plan.order[k])
            offsets.append(piece_start - cum[k])
            seg_lengths.append(np.diff(bounds))
        filled = max(start, end)  # the run's stream end; only the epoch's last row falls short
        if b * L > filled:
            sessions.append(np.array([-1], dtype=np.int64))
            offsets.append(np.array([0], dtype=np.int64))
            seg_lengths.append(np.array([b * L - filled], dtype=np.int64))
    if not sessions:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    return np.concatenate(sessions), np.concatenate(offsets), np.concatenate(seg_lengths)
