"""The DALI loader on the CPU (``device="cpu"``: the same graph, CPU-only): every batch is checked
against the shard tokens of its ``index``."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from rrweb_dali.external_source import wire
from rrweb_dali.external_source.options import PlanOptions, Transport
from rrweb_dali.external_source.reader import ShardReader
from rrweb_dali.external_source.source import BatchSource

from rrweb_dali.loader import make_loader
from rrweb_dali.loader.finish_host import finish_host
from rrweb_dali.loader.finish_torch import finish_torch
from rrweb_dali.loader.options import OutputOptions, PipelineOptions


def _without_gather_time(aux):
    """``aux`` with its gather nanoseconds zeroed (the one value that differs between runs)."""
    out = aux.copy()
    wire.set_meta(out, "gather_ns", 0)
    return out


@pytest.mark.parametrize("per_call", [None, 1, 3])
def test_rows_equal_shards_and_each_session_once(dataset, per_call, collect, check_rows):
    """Every batch is kept to the end (``collect``), so this also checks that batches handed out
    zero-copy from DALI's buffers never change afterwards."""
    root, sessions = dataset
    N_SESSIONS = len(sessions)
    loader = make_loader(root, batch_size=16, device="cpu", seed=1, batches_per_call=per_call)
    assert len(loader) == -(-N_SESSIONS // 16)
    batches = collect(loader)
    assert len(batches) == len(loader)
    for b in batches:
        check_rows(b, sessions)
        assert b["input_ids"].dtype == torch.int64 and b["input_ids"].device.type == "cpu"
    seen = torch.cat([b["index"] for b in batches]).tolist()
    # At world size 1 the last batch is short and nothing repeats, as with a DataLoader.
    assert sorted(seen) == list(range(N_SESSIONS))
    assert batches[-1]["index"].numel() == N_SESSIONS - 16 * (len(loader) - 1)
    assert loader.epoch == 1


def test_drop_last_and_determinism(dataset, collect):
    root, sessions = dataset
    N_SESSIONS = len(sessions)
    a = collect(make_loader(root, batch_size=16, device="cpu", seed=3, drop_last=True))
    b = collect(make_loader(root, batch_size=16, device="cpu", seed=3, drop_last=True))
    assert len(a) == N_SESSIONS // 16
    seen = torch.cat([x["index"] for x in a])
    assert seen.unique().numel() == seen.numel() == (N_SESSIONS // 16) * 16
    for x, y in zip(a, b, strict=True):
        assert x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)
    other = collect(make_loader(root, batch_size=16, device="cpu", seed=4, drop_last=True))
    assert not torch.equal(other[0]["index"], a[0]["index"])


def test_epochs_differ_and_set_epoch(dataset):
    root, _ = dataset
    loader = make_loader(root, batch_size=32, device="cpu", seed=5)
    e0 = torch.cat([b["index"] for b in loader])
    e1 = torch.cat([b["index"] for b in loader])  # iterating again: the next epoch
    assert loader.epoch == 2 and loader.stats()["pipeline_builds"] == 1  # reset, not rebuilt
    assert not torch.equal(e0, e1) and set(e0.tolist()) == set(e1.tolist())
    loader.set_epoch(0)  # back to epoch 0: identical to the first pass
    assert torch.equal(torch.cat([b["index"] for b in loader]), e0)
    fresh = make_loader(root, batch_size=32, device="cpu", seed=5)
    fresh.set_epoch(1)
    assert torch.equal(torch.cat([b["index"] for b in fresh]), e1)


@pytest.mark.parametrize("per_call", [1, 3])
def test_break_then_resume_from_the_state(dataset, per_call):
    """With 3 batches per DALI iteration the break falls inside an iteration. A new pass starts
    the epoch again (as a DataLoader does); the state taken at the break resumes exactly."""
    root, _ = dataset
    full = [b["index"] for b in make_loader(root, batch_size=16, device="cpu", seed=6)]
    loader = make_loader(root, batch_size=16, device="cpu", seed=6, batches_per_call=per_call)
    got = []
    for b in loader:
        got.append(b["index"])
        if len(got) == 4:
            break
    state = loader.state_dict()
    assert (state["epoch"], state["consumed"]) == (0, 64)
    again = [b["index"] for b in loader]  # a new pass: the whole epoch 0 again
    assert len(again) == len(full) and all(
        torch.equal(x, y) for x, y in zip(again, full, strict=True)
    )
    assert loader.epoch == 1
    loader.load_state_dict(state)
    got += [b["index"] for b in loader]
    assert len(got) == len(full) and all(torch.equal(x, y) for x, y in zip(got, full, strict=True))


def test_labels_position_ids_int32(dataset, check_rows):
    root, sessions = dataset
    loader = make_loader(
        root, batch_size=16, device="cpu", seed=7, dtype="int32", labels=True, position_ids=True
    )
    for b in loader:
        check_rows(b, sessions)
        ids, mask = b["input_ids"], b["attention_mask"].bool()
        assert ids.dtype == b["position_ids"].dtype == b["attention_mask"].dtype == torch.int32
        assert b["labels"].dtype == torch.int64  # what cross-entropy takes as its target
        assert (b["labels"][~mask] == -100).all()
        assert torch.equal(b["labels"][mask], ids[mask].long())
        logits = torch.randn(*ids.shape, 7)
        targets = b["labels"].clamp(max=6).masked_fill(~mask, -100)
        assert torch.isfinite(torch.nn.functional.cross_entropy(logits.transpose(1, 2), targets))
        cols = torch.arange(ids.shape[1], dtype=torch.int32).expand_as(ids)
        assert torch.equal(b["position_ids"], torch.where(mask, cols, 0))


def test_pad_to_and_max_length(dataset, check_rows):
    root, sessions = dataset
    for b in make_loader(root, batch_size=16, device="cpu", seed=8, pad_to=512):
        check_rows(b, sessions, cap=512, width=512)
    for b in make_loader(
        root, batch_size=16, device="cpu", seed=8, max_length=100, pad_multiple=16
    ):
        check_rows(b, sessions, cap=100, pad_multiple=16)
        assert b["input_ids"].shape[1] <= 112
    with pytest.raises(ValueError):
        make_loader(root, batch_size=16, device="cpu", pad_to="longest")
    with pytest.raises(ValueError):
        make_loader(root, batch_size=16, device="cpu", dtype="int16")


def test_bucketing_pads_less(dataset, check_rows):
    root, sessions = dataset
    N_SESSIONS = len(sessions)
    plain = make_loader(root, batch_size=8, device="cpu", seed=9)
    bucket = make_loader(root, batch_size=8, device="cpu", seed=9, bucketing=True, bucket_window=8)
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
    loader = make_loader(root, batch_size=bs, device="cpu", seed=10, packing=L, labels=True)
    n_rows = -(-sum(s.size for s in sessions) // L)
    assert len(loader) == -(-n_rows // bs)
    rows_seen = 0
    pieces: dict[int, list] = {}
    for k, b in enumerate(loader):
        ids = b["input_ids"]
        rows = min(bs, n_rows - k * bs)  # the last batch is short
        rows_seen += rows
        assert ids.shape == (rows, L) and ids.dtype == torch.int64
        cu, index = b["cu_seqlens"].tolist(), b["index"].tolist()
        assert cu[0] == 0 and cu[-1] == rows * L and len(cu) == len(index) + 1
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
                pieces.setdefault(i, []).append(flat[lo:hi].numpy())
        assert torch.equal(b["lengths"], b["attention_mask"].sum(1).to(torch.int32))
    assert rows_seen == n_rows
    for i, tokens in enumerate(sessions):
        got = np.concatenate(pieces.get(i, [np.zeros(0, np.int64)]))
        assert np.array_equal(got, tokens), i
    with pytest.raises(ValueError):
        make_loader(root, batch_size=4, device="cpu", packing=64, bucketing=True)


@pytest.mark.parametrize("packing", [None, 256])
def test_torch_padding_equals_host_padding(dataset, packing):
    """The GPU path (unpadded rows, torch gather) and the CPU path (rows padded by the source,
    mask built with numpy) build the same tensors from the same batch."""
    root, _ = dataset
    plan = PlanOptions(batch_size=8, seed=11, packing=packing)
    flat_source = BatchSource(root, plan)
    host_source = BatchSource(root, plan, Transport(pad_on_host=True))
    for dtype in ("int64", "int32"):
        outputs = OutputOptions(dtype, labels=True, position_ids=True, packing=packing is not None)
        for it in range(3):
            (flat,), (aux,) = flat_source(it)
            (padded,), (host_aux,) = host_source(it)
            assert np.array_equal(_without_gather_time(aux), _without_gather_time(host_aux))
            record = wire.decode(aux)
            width, lengths, index = record.field("width"), record.lengths, record.index
            assert padded.size == lengths.size * width if packing is None else flat.size
            a = finish_host(padded.astype(dtype), lengths, index, width, outputs)
            b = finish_torch(
                torch.from_numpy(flat.astype(dtype)),
                torch.from_numpy(lengths),
                torch.from_numpy(index),
                width,
                outputs,
            )
            assert a.keys() == b.keys()
            for k in a:
                assert a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]), (k, dtype)


def test_reader_over_two_directories(tmp_path, dataset, write_dataset, check_rows):
    root, sessions = dataset
    N_SESSIONS = len(sessions)
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
    for b in make_loader([root, other], batch_size=32, device="cpu", seed=13):
        check_rows(b, sessions + more)
        seen += b["index"].tolist()
    assert set(seen) == set(range(N_SESSIONS + 20))


def test_stats(dataset):
    root, _ = dataset
    loader = make_loader(root, batch_size=16, device="cpu", seed=14)
    for _ in loader:
        pass
    s = loader.stats()
    n = len(loader.reader)
    assert s["batches"] == len(loader) and s["rows"] == n
    assert s["reads"] == n and s["bytes"] == 2 * s["tokens"]
    assert 0 < s["padding_efficiency"] < 1 and s["gather_s"] > 0 and s["wait_s"] > 0
    loader.close()
    assert sum(1 for _ in loader) == len(loader)  # closed loaders rebuild on the next pass


def test_tiny_dataset(tmp_path, write_dataset, check_rows):
    sessions = write_dataset(tmp_path, n=3, shards=1, seed=5, max_len=20)
    empty = make_loader(tmp_path, batch_size=8, device="cpu", drop_last=True)
    assert len(empty) == 0
    assert list(empty) == [] and list(empty) == [] and empty.epoch == 2
    (batch,) = list(make_loader(tmp_path, batch_size=8, device="cpu", seed=1))  # one short batch
    check_rows(batch, sessions)
    assert sorted(batch["index"].tolist()) == [0, 1, 2]
    (batch,) = list(make_loader(tmp_path, batch_size=8, device="cpu", seed=1, last_batch="wrap"))
    check_rows(batch, sessions)  # full: wraps around the 3 sessions, twice
    index = batch["index"].tolist()
    assert set(index) == {0, 1, 2} and index[3:] == index[:5]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown without a GPU")
def test_cuda_without_a_gpu_is_a_clear_error(dataset):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    root, _ = dataset
    with pytest.raises(ValueError, match="device='cpu'"):
        make_loader(root, batch_size=8, device="cuda")


def test_pad_id_is_the_tokenizers():
    from rrweb_dali.loader import PAD_ID
    from rrweb_dali.tokenizer import PAD_ID as TOKENIZER_PAD_ID

    assert PAD_ID == TOKENIZER_PAD_ID == 0  # the padding writes zeros


def test_reading_state_inside_the_loop_does_not_move_it(dataset):
    root, _ = dataset
    loader = make_loader(root, batch_size=16, device="cpu", seed=15)
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
                assert b["index"].numel() == 16
            else:  # after the last batch the position is the start of the next epoch
                assert (state["epoch"], state["consumed"]) == (epoch + 1, 0)
        assert got == n and loader.epoch == epoch + 1
    assert loader.stats()["pipeline_builds"] == 1


class FailingSource(BatchSource):
    """Fails on one batch, as a shard that became unreadable mid-epoch would."""

    def _one_batch(self, epoch, start, batch, slot):
        if batch == 5:
            raise OSError("shard unreadable")
        return super()._one_batch(epoch, start, batch, slot)


def _direct_loader(root, make_source=BatchSource, per_call=2, on_gpu_outputs=False):
    from rrweb_dali.loader.loader import Loader

    plan = PlanOptions(batch_size=8, seed=1)
    transport = Transport(pad_on_host=True, batches_per_call=per_call)
    outputs = OutputOptions(labels=True, position_ids=True)
    return Loader(make_source, str(root), plan, transport, outputs, PipelineOptions())


def test_a_source_error_reaches_the_training_loop(dataset):
    """An error in the background thread is raised by ``next(loader)``; the failed pass then
    refuses to go on (no silent end), and the loader still closes cleanly."""
    root, _ = dataset
    loader = _direct_loader(root, FailingSource)
    got = []
    it = iter(loader)
    with pytest.raises(Exception, match="shard unreadable"):
        for b in it:
            got.append(b)
    # DALI raises a source's error from the run() that called the source, which may be an
    # iteration or two before the failed one (it prefetches): some good batches never come.
    assert len(got) <= 4 and loader.stats()["batches"] == len(got)
    with pytest.raises(RuntimeError, match="failed after"):
        next(it)
    assert loader.state_dict()["consumed"] == 8 * len(got)  # what was received
    good = _direct_loader(root)
    for a, b in zip(got, good, strict=False):
        assert torch.equal(a["index"], b["index"])
    # The next pass builds a new pipeline from the epoch's start, and meets the error again.
    with pytest.raises(Exception, match="shard unreadable"):
        for b in loader:
            got.append(b)
    assert loader.stats()["pipeline_builds"] == 2
    loader.close()


def _wait_for_no_loader_thread(what: str) -> None:
    import threading
    import time

    deadline = time.monotonic() + 10
    while any(t.name == "rrweb-dali-loader" for t in threading.enumerate()):
        assert time.monotonic() < deadline, f"the loader's thread outlived {what}"
        time.sleep(0.05)


def test_a_dropped_pass_or_loader_ends_its_thread(dataset):
    """Neither a pass left by ``break`` nor a dropped loader may keep a pipeline running."""
    import gc
    import threading
    import weakref

    root, sessions = dataset
    loader = make_loader(root, batch_size=8, device="cpu", seed=1, batches_per_call=1)
    for _ in loader:
        assert any(t.name == "rrweb-dali-loader" for t in threading.enumerate())
        break  # the pass is dropped here
    _wait_for_no_loader_thread("its pass")
    it = iter(loader)
    next(it)  # a pass still held, its thread blocked on a full queue
    alive = weakref.ref(loader)
    del loader  # the pass keeps its loader, as a DataLoader iterator does
    gc.collect()
    assert alive() is not None
    next(it)
    del it
    gc.collect()
    assert alive() is None
    _wait_for_no_loader_thread("its loader")
    total = sum(
        1 for _ in make_loader(root, batch_size=8, device="cpu")
    )  # a temporary loader still runs
    assert total == -(-len(sessions) // 8)


def test_the_gpu_branch_of_batch_assembly_equals_the_cpu_one(dataset):
    """The GPU path's assembly (unpadded rows, DLPack, ``finish_torch``) run on host arrays that
    stand in for the GPU graph's outputs of one 3-batch iteration: the same batches as the CPU
    loader. (The real device run is ``bench/gpu_check.py``.)"""
    from rrweb_dali.loader.assemble import Assembler

    root, _ = dataset
    expected = list(_direct_loader(root, per_call=3))[:3]
    plan = PlanOptions(batch_size=8, seed=1)
    tokens, aux = BatchSource(root, plan, Transport(batches_per_call=3))(0)  # unpadded rows
    cast = [t.astype(np.int64) for t in tokens]
    assemble = Assembler(OutputOptions(labels=True, position_ids=True), on_gpu=True, pool=None)
    got = assemble((cast, aux, aux))  # cast tokens, host aux, "device" aux
    assert len(got) == 3
    for finished, want in zip(got, expected, strict=True):
        assert finished.tail is None and finished.field("rows") == 8
        assert finished.batch.keys() == want.keys()
        for k in want:
            assert torch.equal(finished.batch[k], want[k]), k
    # Raw mode appends a cache tail to every batch's aux: the wire header says where it starts.
    tails = [np.array([7, 8, 9], dtype=np.int64) for _ in aux]
    with_tails = [wire.with_tail(a, t) for a, t in zip(aux, tails, strict=True)]
    got = assemble((cast, with_tails, with_tails))
    for finished, want, sent in zip(got, expected, tails, strict=True):
        assert np.array_equal(finished.tail, sent)
        for k in want:
            assert torch.equal(finished.batch[k], want[k]), k
