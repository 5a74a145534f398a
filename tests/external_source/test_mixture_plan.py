"""Weighted mixtures as pure plans (``rrweb_dali.external_source.mixture``)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from rrweb_dali.external_source.mixture import (
    check_weights,
    interleave,
    mixture_counts,
    mixture_order,
)


def _sources(*sizes):
    """Global ids of sources laid out one after the other (as the reader numbers them)."""
    starts = np.cumsum((0, *sizes))
    return [np.arange(a, a + n, dtype=np.int64) for a, n in zip(starts, sizes, strict=False)]


@pytest.mark.parametrize("mode", ["repeat", "exhaust"])
@pytest.mark.parametrize(
    ("sizes", "weights"),
    [((1000, 300), (0.7, 0.3)), ((500, 4000), (0.7, 0.3)), ((900, 900, 50), (2, 1, 1))],
)
def test_counts_follow_the_weights_and_the_epoch_definition(sizes, weights, mode):
    counts = mixture_counts(sizes, weights, mode)
    w = np.asarray(weights) / sum(weights)
    ratios = np.asarray(sizes) / w
    epoch = math.ceil(ratios.max() - 1e-9) if mode == "repeat" else math.floor(ratios.min() + 1e-9)
    assert counts.sum() == epoch
    assert np.all(np.abs(counts - w * epoch) < 1)
    if mode == "repeat":
        assert np.all(counts >= sizes)  # every source is seen whole
    else:
        assert np.all(counts <= sizes)  # nothing is seen twice


@pytest.mark.parametrize("mode", ["repeat", "exhaust"])
def test_an_epochs_proportions_are_the_weights_within_one_percent(mode):
    ids = _sources(3000, 800)
    order = mixture_order(ids, [0.7, 0.3], mode, seed=5, epoch=2)
    source = (order >= 3000).astype(int)
    assert order.size > 2000
    assert abs(np.mean(source == 0) - 0.7) < 0.01
    # Every stretch of the epoch has the proportions, not just the whole: prefixes drift < 2 rows.
    prefix = np.cumsum(source == 1)
    ideal = 0.3 * np.arange(1, order.size + 1)
    assert np.max(np.abs(prefix - ideal)) < 2
    if mode == "exhaust":
        assert np.unique(order).size == order.size
    else:
        assert set(order.tolist()) == set(range(3800))  # every row of every source
    for i, x in enumerate(ids):  # rows only come from their own source's ids
        mine = order[source == i]
        assert np.isin(mine, x).all()


def test_the_plan_is_a_pure_function_of_seed_and_epoch():
    ids = _sources(700, 300)
    a = mixture_order(ids, [0.5, 0.5], "repeat", seed=1, epoch=0)
    assert np.array_equal(a, mixture_order(ids, [0.5, 0.5], "repeat", seed=1, epoch=0))
    assert not np.array_equal(a, mixture_order(ids, [0.5, 0.5], "repeat", seed=2, epoch=0))
    assert not np.array_equal(a, mixture_order(ids, [0.5, 0.5], "repeat", seed=1, epoch=1))
    # The smaller source repeats in fresh orders (passes): each pass holds each of its rows once.
    small = a[a >= 700]
    assert small.size == 700
    passes = [small[:300], small[300:600], small[600:]]
    assert all(np.unique(p).size == p.size for p in passes)
    assert not np.array_equal(passes[0], passes[1])
    plain = mixture_order(ids, [0.5, 0.5], "exhaust", seed=1, epoch=0, shuffle=False)
    assert plain[plain < 700].tolist() == list(range(300))  # no shuffle: sources in order
    assert plain[plain >= 700].tolist() == list(range(700, 1000))


def test_interleave_keeps_the_counts():
    labels = interleave([5, 0, 3], seed=0, epoch=0, shuffle=True)
    assert np.bincount(labels, minlength=3).tolist() == [5, 0, 3]


def test_bad_mixtures_are_refused():
    with pytest.raises(ValueError, match="positive"):
        check_weights([0.5, -0.1])
    with pytest.raises(ValueError, match="positive"):
        check_weights([float("nan")])
    with pytest.raises(ValueError, match="2 weights for 3"):
        check_weights([1, 1], 3)
    with pytest.raises(ValueError, match="at least one"):
        check_weights([])
    with pytest.raises(ValueError, match="hold no sequence"):
        mixture_counts([10, 0], [1, 1], "repeat")
    with pytest.raises(ValueError, match="mixture must be"):
        mixture_counts([10, 10], [1, 1], "sometimes")
