"""The batch wire format: encode/decode pairs, the tail flag, and loud failure on anything else."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from rrweb_dali.external_source import wire


def _record():
    lengths = np.array([5, 0, 7], dtype=np.int64)
    ids = np.array([10, -1, 3], dtype=np.int64)
    return [3, 8, 12, 2, 999, 24], lengths, ids


def test_encode_decode_round_trip_on_numpy_and_torch():
    meta, lengths, ids = _record()
    aux = wire.encode(meta, lengths, ids)
    for form in (aux, torch.from_numpy(aux)):
        rec = wire.decode(form)
        assert [int(v) for v in rec.meta] == meta and rec.tail is None
        assert np.array_equal(np.asarray(rec.lengths), lengths)
        assert np.array_equal(np.asarray(rec.index), ids)
        assert rec.field("width") == 8 and rec.field("gather_ns") == 999
    wire.set_meta(aux, "gather_ns", 5)
    assert wire.decode(aux).field("gather_ns") == 5
    lengths_dev, ids_dev = wire.device_parts(torch.from_numpy(aux), 3)
    assert lengths_dev.tolist() == [5, 0, 7] and ids_dev.tolist() == [10, -1, 3]


def test_a_tail_is_flagged_and_found_without_guessing():
    aux = wire.encode(*_record())
    tail = np.array([4, 4, 4, 4, 4], dtype=np.int64)  # any values, any length
    tailed = wire.with_tail(aux, tail)
    rec = wire.decode(tailed)
    assert np.array_equal(rec.tail, tail) and rec.index.tolist() == [10, -1, 3]
    with pytest.raises(wire.WireError, match="already has a tail"):
        wire.with_tail(tailed, tail)


def test_anything_else_fails_loudly():
    aux = wire.encode(*_record())
    with pytest.raises(wire.WireError, match="version"):
        wire.decode(np.concatenate([[0], aux[1:]]))
    with pytest.raises(wire.WireError, match="does not hold"):
        wire.decode(aux[:-1])
    with pytest.raises(wire.WireError, match="does not hold"):
        wire.decode(np.concatenate([aux, [1]]))  # extra values without the tail flag
    with pytest.raises(wire.WireError, match="shorter than its header"):
        wire.decode(aux[:4])
    with pytest.raises(wire.WireError, match="meta needs"):
        wire.encode([1, 2], np.zeros(1, np.int64), np.zeros(1, np.int64))


def test_get_meta_reads_what_set_meta_wrote():
    aux = wire.encode(*_record())
    wire.set_meta(aux, "bytes", 77)
    assert wire.get_meta(aux, "bytes") == 77 == wire.decode(aux).field("bytes")
    assert wire.get_meta(aux, "reads") == 2


def test_a_mixtures_dataset_part_round_trips_with_and_without_a_tail():
    meta, lengths, ids = _record()
    dataset = np.array([1, -1, 0], dtype=np.int64)
    aux = wire.encode(meta, lengths, ids, dataset=dataset)
    for form in (aux, wire.with_tail(aux, np.array([9, 9], dtype=np.int64))):
        rec = wire.decode(form)
        assert rec.dataset.tolist() == [1, -1, 0] and rec.index.tolist() == [10, -1, 3]
        assert np.array_equal(wire.device_dataset(torch.from_numpy(form), 3).numpy(), dataset)
    assert wire.decode(wire.encode(meta, lengths, ids)).dataset is None
    with pytest.raises(wire.WireError, match="dataset numbers"):
        wire.encode(meta, lengths, ids, dataset=dataset[:2])
    with pytest.raises(wire.WireError, match="does not hold"):
        wire.decode(aux[:-1])
