"""Epoch orders, bucketing and rank sharding: pure functions, checked on plain arrays."""

from __future__ import annotations

import numpy as np
import pytest
from rrweb_dali.external_source.sampling import (
    batch_positions,
    bucket_by_length,
    consumed_after,
    epoch_permutation,
    padded_width,
    padding_efficiency,
    steps_in_epoch,
)


def test_permutation_is_seeded_and_differs_by_epoch():
    a = epoch_permutation(1000, seed=7, epoch=0)
    assert np.array_equal(a, epoch_permutation(1000, seed=7, epoch=0))
    assert np.array_equal(np.sort(a), np.arange(1000))
    assert not np.array_equal(a, epoch_permutation(1000, seed=7, epoch=1))
    assert not np.array_equal(a, epoch_permutation(1000, seed=8, epoch=0))
    assert np.array_equal(epoch_permutation(5, 7, 3, shuffle=False), np.arange(5))
    assert a.dtype == np.int64


def _all_positions(total, start, bs, world, last_batch):
    steps = steps_in_epoch(total, start, bs, world, last_batch)
    return [
        [batch_positions(total, start, bs, world, r, k, last_batch) for k in range(steps)]
        for r in range(world)
    ]


CASES = [(100, 8, 1), (100, 8, 3), (97, 5, 2), (7, 4, 3), (2, 4, 3), (1335, 16, 1)]


@pytest.mark.parametrize("total,bs,world", CASES)
def test_short_last_batch_as_a_distributed_sampler(total, bs, world):
    """The default: every rank gets ``ceil(total / world)`` positions, in the same number of
    batches of the same sizes; fewer than ``world`` repeats, all from the epoch's start."""
    per_rank = _all_positions(total, 0, bs, world, "short")
    assert len({len(batches) for batches in per_rank}) == 1
    for r in range(world):
        assert [b.size for b in per_rank[r]] == [b.size for b in per_rank[0]]
        assert all(b.size == bs for b in per_rank[r][:-1])
    flat = np.concatenate([np.concatenate(b) for b in per_rank])
    assert set(flat.tolist()) == set(range(total))
    assert flat.size == -(-total // world) * world  # DistributedSampler's total_size
    pad = flat.size - total
    assert pad < world
    values, times = np.unique(flat, return_counts=True)
    assert np.array_equal(values[times == 2], np.arange(pad)) if pad <= total else True
    if world == 1:
        assert pad == 0 and np.array_equal(np.sort(flat), np.arange(total))


@pytest.mark.parametrize("total,bs,world", CASES)
def test_wrap_fills_full_batches(total, bs, world):
    per_rank = _all_positions(total, 0, bs, world, "wrap")
    counts = {len(batches) for batches in per_rank}
    assert len(counts) == 1  # the same number of batches on every rank
    flat = np.concatenate([np.concatenate(b) for b in per_rank])
    assert set(flat.tolist()) == set(range(total))  # nothing missed
    n_steps = counts.pop()
    pad = n_steps * bs * world - total
    assert flat.size == total + pad and 0 <= pad < bs * world
    # The repeats are the wrap-around: the first `pad` positions of the epoch, seen twice.
    values, times = np.unique(flat, return_counts=True)
    assert np.array_equal(values[times == 2], np.arange(pad)) if pad <= total else True
    for batches in per_rank:
        assert all(b.size == bs for b in batches)


@pytest.mark.parametrize("total,bs,world", [(100, 8, 1), (100, 8, 3), (97, 5, 2)])
def test_drop_last_drops_only_the_tail(total, bs, world):
    per_rank = _all_positions(total, 0, bs, world, "drop")
    flat = np.concatenate([np.concatenate(b) for b in per_rank])
    assert np.unique(flat).size == flat.size  # no repeats
    assert flat.size == (total // (bs * world)) * bs * world
    assert set(flat.tolist()) == set(range(flat.size))  # the dropped units are the tail


def test_positions_depend_on_world_only_through_the_step_layout():
    # After k steps of world 2 exactly the first start + k*2*bs positions are consumed, and a
    # world of 3 resuming there sees exactly the rest (plus the documented wrap-around).
    total, bs = 101, 4
    k = 5
    done = consumed_after(total, 0, bs, 2, k)
    seen = np.concatenate(
        [batch_positions(total, 0, bs, 2, r, s) for s in range(k) for r in (0, 1)]
    )
    assert np.array_equal(np.sort(seen), np.arange(done))
    rest = np.concatenate(
        [
            batch_positions(total, done, bs, 3, r, s)
            for s in range(steps_in_epoch(total, done, bs, 3))
            for r in range(3)
        ]
    )
    assert set(rest[rest >= done].tolist()) == set(range(done, total))
    assert rest.size - (total - done) < 3  # the short last step's repeats
    assert consumed_after(total, done, bs, 3, 100) == total


def test_bucketing_is_a_permutation_that_pads_less():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 3000, size=1000)
    order = epoch_permutation(1000, 3, 0)
    bucketed = bucket_by_length(order, lengths, batch_size=16, window_batches=8, seed=3, epoch=0)
    assert np.array_equal(np.sort(bucketed), np.arange(1000))
    plain_eff = padding_efficiency(lengths[order], 16)
    bucket_eff = padding_efficiency(lengths[bucketed], 16)
    assert bucket_eff > plain_eff + 0.2
    # Same seed and epoch -> same batches; the last partial batch (1000 % 16 = 8) stays last.
    again = bucket_by_length(order, lengths, 16, 8, 3, 0)
    assert np.array_equal(bucketed, again)
    assert set(bucketed[-8:].tolist()) <= set(order[-16 * 8 :].tolist())
    other = bucket_by_length(order, lengths, 16, 8, 3, 1)
    assert not np.array_equal(bucketed, other)  # batch order shuffled per epoch


def test_padded_width_and_efficiency():
    assert padded_width(0, 8) == 8 and padded_width(1, 8) == 8 and padded_width(9, 8) == 16
    assert padded_width(13, 1) == 13
    assert padding_efficiency(np.array([8, 8, 4, 4]), 2, pad_multiple=4) == 1.0
    assert padding_efficiency(np.array([8, 8, 4, 4]), 2) == pytest.approx(24 / 32)
    assert padding_efficiency(np.array([8, 4]), 2) == pytest.approx(12 / 16)
    assert padding_efficiency(np.array([8, 4]), 2, pad_to=32) == pytest.approx(12 / 64)


def test_shard_window_order_reads_a_window_of_shards_at_a_time():
    from rrweb_dali.external_source.sampling import shard_window_order

    shard_of = np.repeat(np.arange(10), [7, 3, 9, 1, 5, 8, 2, 6, 4, 5])
    order = shard_window_order(shard_of, 10, 3, seed=1, epoch=0)
    assert np.array_equal(np.sort(order), np.arange(shard_of.size))  # a permutation
    shards = shard_of[order]
    # Shards in order of first appearance, cut in threes, are the windows: along the epoch the
    # window number never goes down (a window's shards never come back once it ends).
    _, first = np.unique(shards, return_index=True)
    appearance = np.argsort(np.argsort(first))  # shard -> its place in first-appearance order
    window = appearance[shards] // 3
    assert (np.diff(window) >= 0).all() and window[-1] == 3
    # Within a window the units are shuffled, not left shard after shard.
    in_first = shards[window == 0]
    assert (np.diff(in_first) != 0).sum() > 2
    assert np.array_equal(order, shard_window_order(shard_of, 10, 3, seed=1, epoch=0))
    assert not np.array_equal(order, shard_window_order(shard_of, 10, 3, seed=1, epoch=1))
    everything = shard_window_order(shard_of, 10, 10, seed=1, epoch=0)  # one window: all of it
    assert (np.diff(shard_of[everything]) != 0).sum() > 10
