"""Recycled host buffers: reused only when free, never leaking stale values into a batch."""

from __future__ import annotations

import numpy as np
import torch

from rrweb_dali.loader.buffers import HostBufferPool
from rrweb_dali.loader.fields import IGNORE_INDEX
from rrweb_dali.loader.finish_host import finish_host
from rrweb_dali.loader.options import OutputOptions


def _batch(rng, lengths, width):
    """Rows padded with 0 to ``width``, as the source lays them out for the CPU device."""
    lengths = np.asarray(lengths, dtype=np.int64)
    ids = np.zeros((lengths.size, width), np.int64)
    for b, n in enumerate(lengths.tolist()):
        ids[b, :n] = rng.integers(1, 60000, n)
    return ids.reshape(-1), lengths, np.arange(lengths.size, dtype=np.int64)


def test_pool_reuses_only_released_buffers():
    pool = HostBufferPool(max_buffers=4)
    a = pool.take((4, 8), np.int64)
    held = pool.export(a)
    view = held[1:, 2:]  # a view of the tensor keeps the buffer lent
    b = pool.take((4, 8), np.int64)
    assert not np.shares_memory(a, b)
    del a, held
    c = pool.take((2, 8), np.int64)
    assert pool.reused == 0 and not np.shares_memory(c, view.numpy())
    del view  # the last reference: the buffer comes back
    assert pool.free == 1
    d = pool.take((2, 8), np.int64)
    assert pool.reused == 1 and pool.allocated == 3
    assert d.shape == (2, 8) and d.dtype == np.int64
    unexported = pool.take((2, 2), np.int32)
    assert torch.from_numpy(unexported).numel() == 4  # not exported: never handed back
    assert pool.free == 0


def test_recycled_batches_equal_fresh_ones_and_held_batches_stay_intact():
    rng = np.random.default_rng(0)
    spec = OutputOptions(labels=True, position_ids=True)
    pool = HostBufferPool(max_buffers=16)
    kept = []
    for step, lengths in enumerate([[40, 3, 17], [9, 9], [64, 1, 30, 2], [5], [33, 12, 7]]):
        width = -(-max(lengths) // 8) * 8
        ids, lens, index = _batch(rng, lengths, width)
        fresh = finish_host(ids, lens, index, width, spec)
        pooled = finish_host(ids, lens, index, width, spec, pool=pool)
        for key in fresh:
            assert torch.equal(fresh[key], pooled[key]), (step, key)
        np.testing.assert_array_equal(pooled["input_ids"].numpy(), ids.reshape(-1, width))
        valid = np.arange(width)[None, :] < lens[:, None]
        np.testing.assert_array_equal(pooled["attention_mask"].numpy(), valid)
        np.testing.assert_array_equal(
            pooled["position_ids"].numpy(), np.where(valid, np.arange(width), 0)
        )
        assert (pooled["labels"][pooled["attention_mask"] == 0] == IGNORE_INDEX).all()
        if step % 2 == 0:  # a loop that keeps some batches: those must never change
            kept.append(({k: v.clone() for k, v in pooled.items()}, pooled))
        del fresh, pooled  # the others are dropped, as a training loop drops its last batch
    assert pool.reused > 0
    for snapshot, live in kept:
        for key in snapshot:
            assert torch.equal(snapshot[key], live[key])


def test_a_buffer_freed_by_the_garbage_collector_inside_take_does_not_deadlock():
    """The last reference to a lent array can die in a garbage collection that runs inside
    ``take`` (any allocation there may trigger one), on the thread that holds the pool's lock:
    its finalizer must not need that lock. A trace function runs the collection at a Python
    call made while ``take`` holds the lock (its best-fit key), with an exported batch left in
    a reference cycle that only the collector frees."""
    import gc
    import sys
    import threading

    pool = HostBufferPool(max_buffers=4)
    was_enabled = gc.isenabled()
    gc.disable()  # the cycle below must survive until the collection inside take()
    cycle: list = [pool.export(pool.take((16, 16), np.int64))]
    cycle.append(cycle)
    del cycle  # garbage now, freed only by a collection
    dropped = pool.export(pool.take((16, 16), np.int64))
    del dropped  # one free buffer, so take() looks for the best fit
    collected = []

    def tracer(frame, event, arg):
        code = frame.f_code
        if (
            event == "call"
            and code.co_name == "<lambda>"
            and code.co_filename.endswith("buffers.py")
        ):
            collected.append(gc.collect())
        return None

    done = threading.Event()

    def run() -> None:
        sys.settrace(tracer)
        try:
            pool.take((16, 16), np.int64)
        finally:
            sys.settrace(None)
        done.set()

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=20)
    if was_enabled:
        gc.enable()
    assert done.is_set(), "take() deadlocked on a buffer freed by the garbage collector"
    assert collected and collected[0] > 0, "the collection inside take() did not run"
    assert pool.free == 1  # the buffer freed by the collector came back (the other was lent)
