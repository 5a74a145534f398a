"""The DALI loader on the CPU (``device="cpu"``: the same graph, CPU-only): every batch is checked
against the shard tokens of its ``index``."""

from __future__ import annotations

import pickle
from dataclasses import replace

import numpy as np
import pytest
import torch

from external_source.reader import ShardReader
from external_source.source import META, BatchSource, SourceConfig, split_aux
from rrweb_dali.loader import make_loader
from rrweb_dali.loader.pipeline import OutputSpec, finish_host, finish_torch
from rrweb_dali.shards.format import ShardWriter
from rrweb_dali.shards.manifest import Manifest, write_manifest

N_SESSIONS = 203  # not a multiple of any batch size used below


def write_dataset(root, n=N_SESSIONS, shards=3, seed=0, max_len=3000):
    """Random uint16 sessions (0 is a valid token inside a session) of lengths 0..max_len."""
    rng = np.random.default_rng(seed)
    sessions = [
        rng.integers(0, 65536, size=int(k), dtype=np.uint16)
        for k in rng.integers(1, max_len + 1, size=n)
    ]
    if n > 5:
        sessions[5] = sessions[5][:0]  # an empty session is legal
    infos, per = [], -(-n // shards)
    for s in range(shards):
        w = ShardWriter(root / "shards", f"shard-{s:06d}")
        fid = w.add_file(f"f{s}.json")
        for tokens in sessions[s * per : (s + 1) * per]:
            w.add(tokens, fid)
        infos.append(w.close())
    write_manifest(root, Manifest(tokenizer={"name": "test"}, shards=infos))
    return sessions


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("ds")
    return root, write_dataset(root)


def collect(loader):
    return [{k: v.clone() for k, v in b.items()} for b in loader]


def check_rows(batch, sessions, cap=None, pad_multiple=8, width=None):
    ids, mask = batch["input_ids"], batch["attention_mask"]
    lengths, index = batch["lengths"], batch["index"]
    assert lengths.dtype == torch.int32 and index.dtype == torch.int64
    expect_width = width or max(-(-int(lengths.max()) // pad_multiple) * pad_multiple, pad_multiple)
    assert ids.shape == (index.numel(), expect_width)
    for row, i in enumerate(index.tolist()):
        want = sessions[i][:cap].astype(np.int64)
        n = int(lengths[row])
        assert n == want.size
        assert np.array_equal(ids[row, :n].numpy(), want), (row, i)
        assert not ids[row, n:].any()  # PAD = 0
        assert mask[row, :n].all() and not mask[row, n:].any()


@pytest.mark.parametrize("per_call", [None, 1, 3])
def test_rows_equal_shards_and_each_session_once(dataset, per_call):
    """Every batch is kept to the end (``collect``), so this also checks that batches handed out
    zero-copy from DALI's buffers never change afterwards."""
    root, sessions = dataset
    loader = make_loader(root, 16, device="cpu", seed=1, batches_per_call=per_call)
    assert len(loader) == -(-N_SESSIONS // 16)
    batches = collect(loader)
    assert len(batches) == len(loader)
    for b in batches:
        check_rows(b, sessions)
        assert b["input_ids"].dtype == torch.int64 and b["input_ids"].device.type == "cpu"
    seen = torch.cat([b["index"] for b in batches]).tolist()
    assert set(seen) == set(range(N_SESSIONS))
    # Padding the last batch by wrap-around repeats exactly the first sessions of the epoch.
    pad = len(seen) - N_SESSIONS
    assert pad == len(loader) * 16 - N_SESSIONS and seen[-pad:] == seen[:pad]
    assert loader.epoch == 1


def test_drop_last_and_determinism(dataset):
    root, _ = dataset
    a = collect(make_loader(root, 16, device="cpu", seed=3, drop_last=True))
    b = collect(make_loader(root, 16, device="cpu", seed=3, drop_last=True))
    assert len(a) == N_SESSIONS // 16
    seen = torch.cat([x["index"] for x in a])
    assert seen.unique().numel() == seen.numel() == (N_SESSIONS // 16) * 16
    for x, y in zip(a, b, strict=True):
        assert x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)
    other = collect(make_loader(root, 16, device="cpu", seed=4, drop_last=True))
    assert not torch.equal(other[0]["index"], a[0]["index"])


def test_epochs_differ_and_set_epoch(dataset):
    root, _ = dataset
    loader = make_loader(root, 32, device="cpu", seed=5)
    e0 = torch.cat([b["index"] for b in loader])
    e1 = torch.cat([b["index"] for b in loader])  # iterating again: the next epoch
    assert loader.epoch == 2 and loader.stats()["pipeline_builds"] == 1  # reset, not rebuilt
    assert not torch.equal(e0, e1) and set(e0.tolist()) == set(e1.tolist())
    loader.set_epoch(0)  # back to epoch 0: identical to the first pass
    assert torch.equal(torch.cat([b["index"] for b in loader]), e0)
    fresh = make_loader(root, 32, device="cpu", seed=5)
    fresh.set_epoch(1)
    assert torch.equal(torch.cat([b["index"] for b in fresh]), e1)


@pytest.mark.parametrize("per_call", [1, 3])
def test_break_and_iterate_again_continues_the_epoch(dataset, per_call):
    """With 3 batches per DALI iteration the break falls inside an iteration: the batches the
    background thread already finished are handed out next, none lost or repeated."""
    root, _ = dataset
    full = [b["index"] for b in make_loader(root, 16, device="cpu", seed=6)]
    loader = make_loader(root, 16, device="cpu", seed=6, batches_per_call=per_call)
    got = []
    for b in loader:
        got.append(b["index"])
        if len(got) == 4:
            break
    loader.set_epoch(0)  # the current epoch: keeps the position
    got += [b["index"] for b in loader]
    assert len(got) == len(full) and all(torch.equal(x, y) for x, y in zip(got, full, strict=True))


def test_labels_position_ids_int32(dataset):
    root, sessions = dataset
    loader = make_loader(
        root, 16, device="cpu", seed=7, dtype="int32", labels=True, position_ids=True
    )
    for b in loader:
        check_rows(b, sessions)
        ids, mask = b["input_ids"], b["attention_mask"].bool()
        assert ids.dtype == b["labels"].dtype == b["position_ids"].dtype == torch.int32
        assert (b["labels"][~mask] == -100).all() and torch.equal(b["labels"][mask], ids[mask])
        cols = torch.arange(ids.shape[1], dtype=torch.int32).expand_as(ids)
        assert torch.equal(b["position_ids"], torch.where(mask, cols, 0))


def test_pad_to_and_max_length(dataset):
    root, sessions = dataset
    for b in make_loader(root, 16, device="cpu", seed=8, pad_to=512):
        check_rows(b, sessions, cap=512, width=512)
    for b in make_loader(root, 16, device="cpu", seed=8, max_length=100, pad_multiple=16):
        check_rows(b, sessions, cap=100, pad_multiple=16)
        assert b["input_ids"].shape[1] <= 112
    with pytest.raises(ValueError):
        make_loader(root, 16, device="cpu", pad_to="longest")
    with pytest.raises(ValueError):
        make_loader(root, 16, device="cpu", dtype="int16")


def test_bucketing_pads_less(dataset):
    root, sessions = dataset
    plain = make_loader(root, 8, device="cpu", seed=9)
    bucket = make_loader(root, 8, device="cpu", seed=9, bucketing=True, bucket_window=8)
    for _ in plain:
        pass
    seen = []
    for b in bucket:
        check_rows(b, sessions)
        seen += b["index"].tolist()
    assert set(seen) == set(range(N_SESSIONS))
    assert bucket.stats()["padding_efficiency"] > plain.stats()["padding_efficiency"] + 0.15


def test_packing_preserves_every_token(dataset):
    root, sessions = dataset
    L, bs = 1024, 4
    loader = make_loader(root, bs, device="cpu", seed=10, packing=L, labels=True)
    n_rows = -(-sum(s.size for s in sessions) // L)
    assert len(loader) == -(-n_rows // bs)
    pieces: dict[int, list] = {}
    for k, b in enumerate(loader):
        ids = b["input_ids"]
        assert ids.shape == (bs, L) and ids.dtype == torch.int64
        cu, index = b["cu_seqlens"].tolist(), b["index"].tolist()
        assert cu[0] == 0 and cu[-1] == bs * L and len(cu) == len(index) + 1
        flat = ids.reshape(-1)
        pos, doc = b["position_ids"].reshape(-1), b["document_ids"].reshape(-1)
        labels, mask = b["labels"].reshape(-1), b["attention_mask"].reshape(-1)
        for s, i in enumerate(index):
            lo, hi = cu[s], cu[s + 1]
            assert lo // L == (hi - 1) // L  # a segment stays inside its row
            assert torch.equal(pos[lo:hi], torch.arange(hi - lo))  # positions restart
            assert (doc[lo:hi] == i).all() and (mask[lo:hi] == (i >= 0)).all()
            assert labels[lo] == -100  # no target across a document boundary
            if i < 0:
                assert not flat[lo:hi].any() and (labels[lo:hi] == -100).all()
            else:
                assert torch.equal(labels[lo + 1 : hi], flat[lo + 1 : hi])
                if k * bs + lo // L < n_rows:  # not the epoch's wrap-around
                    pieces.setdefault(i, []).append(flat[lo:hi].numpy())
        assert torch.equal(b["lengths"], b["attention_mask"].sum(1).to(torch.int32))
    for i, tokens in enumerate(sessions):
        got = np.concatenate(pieces.get(i, [np.zeros(0, np.int64)]))
        assert np.array_equal(got, tokens), i
    with pytest.raises(ValueError):
        make_loader(root, 4, device="cpu", packing=64, bucketing=True)


@pytest.mark.parametrize("packing", [None, 256])
def test_torch_padding_equals_host_padding(dataset, packing):
    """The GPU path (unpadded rows, torch gather) and the CPU path (rows padded by the source,
    mask built with numpy) build the same tensors from the same batch."""
    root, _ = dataset
    cfg = SourceConfig(batch_size=8, seed=11, packing=packing)
    flat_source = BatchSource(root, cfg)
    host_source = BatchSource(root, replace(cfg, pad_on_host=True))
    for dtype in ("int64", "int32"):
        spec = OutputSpec(dtype=dtype, labels=True, position_ids=True, packing=packing is not None)
        for it in range(3):
            (flat,), (aux,) = flat_source(it)
            (padded,), (host_aux,) = host_source(it)
            meta, lengths, index = split_aux(aux)
            keep = [i for i in range(aux.size) if i != META["gather_ns"]]
            assert np.array_equal(aux[keep], host_aux[keep])
            width = int(meta[META["width"]])
            assert padded.size == lengths.size * width if packing is None else flat.size
            a = finish_host(padded.astype(dtype), lengths, index, width, spec)
            b = finish_torch(
                torch.from_numpy(flat.astype(dtype)),
                torch.from_numpy(lengths),
                torch.from_numpy(index),
                width,
                spec,
            )
            assert a.keys() == b.keys()
            for k in a:
                assert a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]), (k, dtype)


def test_source_contract(dataset):
    root, _ = dataset
    cfg = SourceConfig(batch_size=16, seed=12)
    source = BatchSource(root, cfg, rank=1, world_size=2)
    n = source.num_batches(0)
    (tokens,), (aux,) = source(0)  # one DALI sample per training batch
    clone = pickle.loads(pickle.dumps(source))  # what DALI's spawned workers receive
    assert clone._reader is None
    (again_tokens,), (again_aux,) = clone(0)
    assert np.array_equal(tokens, again_tokens)
    keep = [i for i in range(aux.size) if i != META["gather_ns"]]
    assert np.array_equal(aux[keep], again_aux[keep])
    meta, lengths, index = split_aux(aux)
    assert meta[META["rows"]] == 16 and lengths.size == index.size == 16
    assert tokens.shape == (int(lengths.sum()) + 1,)
    for past in (n, n + 1, n + 5):  # keeps raising past the end (DALI prefetches ahead)
        with pytest.raises(StopIteration):
            source(past)
    stats = source.stats()
    assert stats["batches"] == 1 and stats["reads"] == 16 and stats["bytes"] > 0


def test_source_batches_per_call_are_consecutive_batches(dataset):
    """With k batches per call, call i holds batches i*k .. i*k+k-1 (fewer in the last call), each
    in its own buffer, equal to what one batch per call gives."""
    root, _ = dataset
    one = BatchSource(root, SourceConfig(batch_size=16, seed=3))
    three = BatchSource(root, SourceConfig(batch_size=16, seed=3, batches_per_call=3))
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
            assert np.array_equal(split_aux(a)[2], split_aux(a1)[2])
            seen += 1
    assert seen == n
    with pytest.raises(StopIteration):
        three(-(-n // 3))
    with pytest.raises(ValueError):
        SourceConfig(batch_size=16, batches_per_call=0)


def test_reader_over_two_directories(tmp_path, dataset):
    root, sessions = dataset
    other = tmp_path / "other"
    more = write_dataset(other, n=20, shards=1, seed=99, max_len=50)
    reader = ShardReader([root, other])
    assert len(reader) == N_SESSIONS + 20
    assert reader.token_count == sum(s.size for s in sessions + more)
    assert np.array_equal(reader[N_SESSIONS + 3], more[3]) and np.array_equal(
        reader[7], sessions[7]
    )
    assert reader.lengths[N_SESSIONS + 3] == more[3].size
    seen = []
    for b in make_loader([root, other], 32, device="cpu", seed=13):
        check_rows(b, sessions + more)
        seen += b["index"].tolist()
    assert set(seen) == set(range(N_SESSIONS + 20))


def test_stats(dataset):
    root, _ = dataset
    loader = make_loader(root, 16, device="cpu", seed=14)
    for _ in loader:
        pass
    s = loader.stats()
    assert s["batches"] == len(loader) and s["rows"] == 16 * len(loader)
    assert s["reads"] == 16 * len(loader) and s["bytes"] == 2 * s["tokens"]
    assert 0 < s["padding_efficiency"] < 1 and s["gather_s"] > 0 and s["wait_s"] > 0
    loader.close()
    assert sum(1 for _ in loader) == len(loader)  # closed loaders rebuild on the next pass


def test_tiny_dataset(tmp_path):
    sessions = write_dataset(tmp_path, n=3, shards=1, seed=5, max_len=20)
    empty = make_loader(tmp_path, 8, device="cpu", drop_last=True)
    assert len(empty) == 0
    assert list(empty) == [] and list(empty) == [] and empty.epoch == 2
    (batch,) = list(make_loader(tmp_path, 8, device="cpu", seed=1))  # wraps around twice
    check_rows(batch, sessions)
    index = batch["index"].tolist()
    assert set(index) == {0, 1, 2} and index[3:] == index[:5]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown without a GPU")
def test_cuda_without_a_gpu_is_a_clear_error(dataset):
    root, _ = dataset
    with pytest.raises(RuntimeError, match="device='cpu'"):
        make_loader(root, 8)  # device="cuda" is the default


def test_pad_id_is_the_tokenizers():
    from rrweb_dali.loader import PAD_ID
    from rrweb_dali.tokenizer import PAD_ID as TOKENIZER_PAD_ID

    assert PAD_ID == TOKENIZER_PAD_ID == 0  # the padding writes zeros


def test_reading_state_inside_the_loop_does_not_move_it(dataset):
    root, _ = dataset
    loader = make_loader(root, 16, device="cpu", seed=15)
    n = len(loader)
    for epoch in range(2):
        got = 0
        for b in loader:
            got += 1
            loader.stats()
            state = loader.state_dict()
            if got < n:
                assert (state["epoch"], state["consumed"]) == (epoch, 16 * got)
                assert loader.epoch == epoch
            else:  # after the last batch the position is the start of the next epoch
                assert (state["epoch"], state["consumed"]) == (epoch + 1, 0)
            assert b["index"].numel() == 16
        assert got == n and loader.epoch == epoch + 1
    assert loader.stats()["pipeline_builds"] == 1


def test_reader_index_memory_is_16_bytes_a_session(dataset):
    root, _ = dataset
    reader = ShardReader(root)
    assert len(reader.lengths) == len(reader)  # builds the tables
    # lengths and starts (int64 each) per session, plus one bound per shard
    assert reader.index_bytes == 16 * len(reader) + 8 * (len(reader.shards) + 1)


class FailingSource(BatchSource):
    """Fails on one batch, as a shard that became unreadable mid-epoch would."""

    def _one_batch(self, epoch, start, batch, slot):
        if batch == 5:
            raise OSError("shard unreadable")
        return super()._one_batch(epoch, start, batch, slot)


def test_a_source_error_reaches_the_training_loop(dataset):
    """An error in the background thread is raised by ``next(loader)``, and the loader still
    closes cleanly."""
    from rrweb_dali.loader.loader import Loader
    from rrweb_dali.loader.pipeline import OutputSpec as Spec

    root, _ = dataset
    cfg = SourceConfig(batch_size=8, seed=1, batches_per_call=2)
    loader = Loader(root, cfg, Spec(), device_id=None, source_factory=FailingSource)
    got = []
    with pytest.raises(Exception, match="shard unreadable"):
        for b in loader:
            got.append(b)
    # DALI raises a source's error from the run() that called the source, which may be an
    # iteration or two before the failed one (it prefetches): some good batches never come.
    assert len(got) <= 4 and loader.stats()["batches"] == len(got)
    good = Loader(root, cfg, Spec(), device_id=None)
    for a, b in zip(got, good, strict=False):
        assert torch.equal(a["index"], b["index"])
    # The failed pipeline was closed; the next pass rebuilds it at the next batch not received,
    # and so meets the same error again (not a stale thread's leftovers).
    assert loader._pipe is None
    with pytest.raises(Exception, match="shard unreadable"):
        for b in loader:
            got.append(b)
    assert loader.stats()["batches"] == len(got) <= 5
    assert loader.stats()["pipeline_builds"] == 2
    loader.close()


def test_a_dropped_loader_is_closed_and_its_thread_ends(dataset):
    """The background thread must not keep a loader the program dropped (with its pipeline)."""
    import gc
    import threading
    import time
    import weakref

    root, _ = dataset
    loader = make_loader(root, 8, device="cpu", seed=1, batches_per_call=1)
    for _ in loader:
        break  # the thread is now blocked, its queue full
    assert any(t.name == "rrweb-dali-loader" for t in threading.enumerate())
    alive = weakref.ref(loader)
    del loader
    gc.collect()
    assert alive() is None
    deadline = time.monotonic() + 10
    while any(t.name == "rrweb-dali-loader" for t in threading.enumerate()):
        assert time.monotonic() < deadline, "the loader's thread outlived the loader"
        time.sleep(0.05)


def test_the_gpu_branch_of_batch_assembly_equals_the_cpu_one(dataset):
    """The GPU path's assembly (unpadded rows, DLPack, ``finish_torch``) run on host arrays that
    stand in for the GPU graph's outputs of one 3-batch iteration: the same batches as the CPU
    loader. (The real device run is ``bench/gpu_check.py``.)"""
    from external_source.cache_stats import CacheStats, pack_tail
    from external_source.token_cache import COUNTER_FIELDS, GAUGE_FIELDS
    from rrweb_dali.loader.loader import Loader

    root, _ = dataset
    cfg = SourceConfig(batch_size=8, seed=4, batches_per_call=3)
    spec = OutputSpec(labels=True, position_ids=True)
    expected = list(Loader(root, cfg, spec, device_id=None))[:3]
    tokens, aux = BatchSource(root, cfg)(0)  # unpadded rows, as the GPU graph gets them
    outputs = (
        [t.astype(np.int64) for t in tokens],
        aux,
        aux,
    )  # cast tokens, host aux, "device" aux
    device_path = Loader(root, cfg, spec, device_id=None)
    device_path._device_id = 0  # take the device branch, with CPU tensors
    got = device_path._assemble(outputs)
    assert len(got) == 3
    for (batch, meta, tail), want in zip(got, expected, strict=True):
        assert tail is None and int(meta[META["rows"]]) == 8
        assert batch.keys() == want.keys()
        for k in want:
            assert torch.equal(batch[k], want[k]), k
    # Raw mode appends a cache tail to every batch's aux: stripped before the device's lengths.
    zeros = [0] * (len(COUNTER_FIELDS) + len(GAUGE_FIELDS))
    tails = [pack_tail(0, 1, zeros, zeros, [(7, "truncated")]) for _ in aux]
    with_tails = [np.concatenate([a, t]) for a, t in zip(aux, tails, strict=True)]
    device_path._cache = CacheStats([])
    got = device_path._assemble((outputs[0], with_tails, with_tails))
    for (batch, _, tail), want, sent in zip(got, expected, tails, strict=True):
        assert np.array_equal(tail, sent)
        assert torch.equal(batch["input_ids"], want["input_ids"])
        assert torch.equal(batch["lengths"], want["lengths"])
