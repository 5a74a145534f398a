"""The batch source DALI calls (``rrweb_dali.external_source.source``) and the reader under it."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from rrweb_dali.external_source import wire
from rrweb_dali.external_source.options import PlanOptions, Transport
from rrweb_dali.external_source.reader import ShardReader
from rrweb_dali.external_source.source import BatchSource


def _without_gather_time(aux):
    out = aux.copy()
    wire.set_meta(out, "gather_ns", 0)
    return out


def test_source_contract(dataset):
    root, _ = dataset
    source = BatchSource(root, PlanOptions(batch_size=16, seed=12), rank=1, world_size=2)
    n = source.num_batches(0)
    (tokens,), (aux,) = source(0)  # one DALI sample per training batch
    clone = pickle.loads(pickle.dumps(source))  # what DALI's spawned workers receive
    (again_tokens,), (again_aux,) = clone(0)
    assert np.array_equal(tokens, again_tokens)
    assert np.array_equal(_without_gather_time(aux), _without_gather_time(again_aux))
    record = wire.decode(aux)
    assert record.field("rows") == 16 and record.lengths.size == record.index.size == 16
    assert record.tail is None
    assert tokens.shape == (int(record.lengths.sum()) + 1,)
    for past in (n, n + 1, n + 5):  # keeps raising past the end (DALI prefetches ahead)
        with pytest.raises(StopIteration):
            source(past)
    stats = source.stats()
    assert stats["batches"] == 1 and stats["reads"] == 16 and stats["bytes"] > 0


def test_source_batches_per_call_are_consecutive_batches(dataset):
    """With k batches per call, call i holds batches i*k .. i*k+k-1 (fewer in the last call), each
    in its own buffer, equal to what one batch per call gives."""
    root, _ = dataset
    plan = PlanOptions(batch_size=16, seed=3)
    one = BatchSource(root, plan)
    three = BatchSource(root, plan, Transport(batches_per_call=3))
    n = one.num_batches(0)
    assert n % 3 != 0  # so the last call is a short one
    seen = 0
    for call in range(-(-n // 3)):
        tokens, aux = three(call)
        assert len(tokens) == len(aux) == min(3, n - 3 * call)
        assert len({t.__array_interface__["data"][0] for t in tokens}) == len(tokens)
        for j, (t, a) in enumerate(zip(tokens, aux, strict=True)):
            (t1,), (a1,) = one(3 * call + j)
            assert np.array_equal(t, t1)
            assert np.array_equal(wire.decode(a).index, wire.decode(a1).index)
            seen += 1
    assert seen == n
    with pytest.raises(StopIteration):
        three(-(-n // 3))
    with pytest.raises(ValueError):
        Transport(batches_per_call=0)


def test_reader_index_memory_is_16_bytes_a_session(dataset):
    root, _ = dataset
    reader = ShardReader(root)
    assert len(reader.lengths) == len(reader)  # builds the tables
    # lengths and starts (int64 each) per session, plus one bound per shard
    assert reader.index_bytes == 16 * len(reader) + 8 * (len(reader.shards) + 1)


def test_the_short_last_batch_of_a_rank(dataset):
    """203 sessions, 16 a batch, 3 ranks: 4 full steps (192), then the 11 left as 4 rows for each
    rank (12 positions: one repeat, as ``DistributedSampler`` pads)."""
    root, _ = dataset
    per_rank = [
        BatchSource(root, PlanOptions(batch_size=16, seed=1), rank=r, world_size=3)
        for r in range(3)
    ]
    assert {s.num_batches(0) for s in per_rank} == {5}
    last = [wire.decode(s(4)[1][0]) for s in per_rank]
    assert [rec.field("rows") for rec in last] == [4, 4, 4]
    seen = np.concatenate([rec.index for rec in last])
    first = wire.decode(per_rank[0](0)[1][0]).index[0]  # position 0 of the epoch
    assert seen.size == 12 and seen[-1] == first  # the one repeat wraps to the start


def test_fingerprint_names_the_content(dataset, tmp_path, write_dataset):
    root, _ = dataset
    assert ShardReader(root).fingerprint == ShardReader(root).fingerprint
    write_dataset(tmp_path, seed=77)
    assert ShardReader(tmp_path).fingerprint != ShardReader(root).fingerprint
    assert len(ShardReader(root).fingerprint) == 32
