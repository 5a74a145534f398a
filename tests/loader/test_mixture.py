"""make_loader over a weighted mixture of datasets: rows, proportions, ranks and resume."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rrweb_dali.loader import LoaderStateError, make_loader

SIZES = (2000, 700)
WEIGHTS = [0.7, 0.3]


@pytest.fixture(scope="module")
def two(tmp_path_factory, write_dataset):
    """Two datasets of short random sessions: ``(roots, sessions)``, one list per source."""
    roots, sessions = [], []
    for k, n in enumerate(SIZES):
        root = tmp_path_factory.mktemp(f"mix{k}")
        sessions.append(write_dataset(root, n=n, shards=2, seed=10 + k, max_len=40))
        roots.append(root)
    return roots, sessions


def _check_mixed_rows(batch, sessions):
    """Every row equals the tokens of session ``index`` of source ``dataset``."""
    ids, lengths = batch["input_ids"], batch["lengths"]
    assert batch["dataset"].dtype == torch.int64
    for row, (d, i) in enumerate(
        zip(batch["dataset"].tolist(), batch["index"].tolist(), strict=True)
    ):
        want = sessions[d][i].astype(np.int64)
        n = int(lengths[row])
        assert n == want.size and np.array_equal(ids[row, :n].numpy(), want), (row, d, i)


def _pairs(loader, limit=None):
    out = []
    for b in loader:
        out.append(torch.stack([b["dataset"], b["index"]], 1).clone())
        if limit is not None and len(out) == limit:
            break
    return out


@pytest.mark.parametrize("mode", ["repeat", "exhaust"])
def test_rows_come_from_their_source_in_the_weights_proportions(two, mode):
    roots, sessions = two
    loader = make_loader(roots, weights=WEIGHTS, mixture=mode, batch_size=64, device="cpu")
    rows = []
    for batch in loader:
        _check_mixed_rows(batch, sessions)
        rows += list(zip(batch["dataset"].tolist(), batch["index"].tolist(), strict=True))
    assert len(rows) > 2000  # an epoch of a few thousand rows
    share = np.mean([d == 0 for d, _ in rows])
    assert abs(share - WEIGHTS[0]) < 0.01
    by_source = [[i for d, i in rows if d == s] for s in (0, 1)]
    if mode == "repeat":  # every source seen whole, the smaller one repeating
        assert [len(set(x)) for x in by_source] == list(SIZES)
        assert len(by_source[1]) > SIZES[1]
    else:  # nothing twice; the epoch ends as the smaller source runs out
        assert all(len(x) == len(set(x)) for x in by_source)
        assert len(set(by_source[1])) == SIZES[1]


def test_the_mixture_is_deterministic_from_the_seed(two):
    roots, _ = two
    kw = {"weights": WEIGHTS, "batch_size": 32, "device": "cpu"}
    a = torch.cat(_pairs(make_loader(roots, seed=4, **kw)))
    b = torch.cat(_pairs(make_loader(roots, seed=4, **kw)))
    c = torch.cat(_pairs(make_loader(roots, seed=5, **kw)))
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("world", [2, 3])
def test_every_rank_gets_the_same_number_of_batches(two, world):
    roots, _ = two
    counts, rows = [], 0
    for r in range(world):
        loader = make_loader(
            roots, weights=WEIGHTS, batch_size=48, device="cpu", rank=r, world_size=world
        )
        batches = _pairs(loader)
        counts.append(len(batches))
        assert len(batches) == len(loader)
        rows += sum(b.shape[0] for b in batches)
        assert len({b.shape[0] for b in batches[:-1]}) <= 1
    assert len(set(counts)) == 1
    single = make_loader(roots, weights=WEIGHTS, batch_size=48, device="cpu")
    epoch = sum(b.shape[0] for b in _pairs(single))
    assert epoch <= rows < epoch + world  # DistributedSampler's repeats in the last step


@pytest.mark.parametrize("options", [{}, {"packing": 64}, {"mixture": "exhaust"}])
def test_mid_epoch_resume_equals_the_uninterrupted_run(two, options):
    roots, _ = two
    kw = {"weights": WEIGHTS, "batch_size": 32, "device": "cpu", "seed": 9, **options}
    full = _pairs(make_loader(roots, **kw))
    loader = make_loader(roots, **kw)
    head = _pairs(loader, limit=7)
    state = loader.state_dict()
    assert state["plan"]["mixture"] == {"weights": WEIGHTS, "mode": kw.get("mixture", "repeat")}
    resumed = make_loader(roots, **kw)
    resumed.load_state_dict(state)
    rest = _pairs(resumed)
    assert len(head) + len(rest) == len(full)
    assert all(torch.equal(a, b) for a, b in zip(head + rest, full, strict=True))


def test_resume_into_another_world_size(two):
    roots, _ = two
    bs, k = 16, 5
    kw = {"weights": WEIGHTS, "batch_size": bs, "device": "cpu", "seed": 2}
    whole = torch.cat(_pairs(make_loader(roots, **kw)))  # the epoch's sequence at world size 1
    states, seen = [], []
    for r in range(2):
        loader = make_loader(roots, rank=r, world_size=2, **kw)
        seen.append(torch.cat(_pairs(loader, limit=k)))
        states.append(loader.state_dict())
    assert states[0] == {**states[1], "rank": 0}
    consumed = 2 * k * bs
    rest, counts = [], set()
    for r in range(3):
        loader = make_loader(roots, rank=r, world_size=3, **kw)
        loader.load_state_dict(states[0])
        batches = _pairs(loader)
        counts.add(len(batches))
        rest.append(batches)
    assert len(counts) == 1  # the same number of batches on every new rank
    # Global step s of the resumed run holds sequence positions consumed + 3 * bs * s onward,
    # rank by rank: rebuilt in order, the ranks give back exactly the rest of the epoch.
    order = [rest[r][s] for s in range(len(rest[0])) for r in range(3)]
    resumed = torch.cat(order)
    remaining = whole[consumed:]
    assert torch.equal(resumed[: remaining.shape[0]], remaining)
    heads = torch.cat([seen[r][s * bs : (s + 1) * bs] for s in range(k) for r in range(2)])
    assert torch.equal(heads, whole[:consumed])


def test_packing_mixture_names_the_source_of_every_segment(two):
    roots, sessions = two
    loader = make_loader(roots, weights=WEIGHTS, batch_size=8, device="cpu", packing=64)
    batch = next(iter(loader))
    cu, dataset, index = batch["cu_seqlens"], batch["dataset"], batch["index"]
    flat = batch["input_ids"].reshape(-1)
    assert dataset.shape == index.shape == (cu.numel() - 1,)
    for s, (d, i) in enumerate(zip(dataset.tolist(), index.tolist(), strict=True)):
        piece = flat[int(cu[s]) : int(cu[s + 1])].numpy()
        if i < 0:
            assert d == -1 and not piece.any()
            continue
        tokens = sessions[d][i].astype(np.int64)
        # A segment is a run of its session's tokens (a continued one starts mid-session).
        hits = [
            o
            for o in range(tokens.size - piece.size + 1)
            if (tokens[o : o + piece.size] == piece).all()
        ]
        assert hits, (s, d, i)


def test_the_hf_layout_keeps_dataset_in_meta(two):
    roots, _ = two
    batch = next(iter(make_loader(roots, weights=WEIGHTS, batch_size=8, device="cpu", layout="hf")))
    assert "dataset" not in batch and batch.meta["dataset"].shape == (8,)


def test_a_state_of_other_weights_or_another_mode_is_refused(two):
    roots, _ = two
    state = make_loader(roots, weights=WEIGHTS, batch_size=8, device="cpu").state_dict()
    for other in ({"weights": [0.5, 0.5]}, {"weights": WEIGHTS, "mixture": "exhaust"}, {}):
        loader = make_loader(roots, batch_size=8, device="cpu", **other)
        with pytest.raises(LoaderStateError, match="mixture"):
            loader.load_state_dict(state)
    with pytest.raises(ValueError, match="1 mixture weights for 2"):
        make_loader(roots, weights=[1.0], batch_size=8, device="cpu")


@pytest.mark.parametrize("packing", [None, 64])
def test_the_gpu_branch_of_assembly_gives_the_same_mixed_batches(two, packing):
    """The GPU path (unpadded rows, the "device" aux sliced for ``dataset``, ``finish_torch``) on
    host arrays standing in for the GPU graph's outputs equals the CPU path, field by field."""
    from rrweb_dali.external_source.options import PlanOptions, Transport
    from rrweb_dali.external_source.source import BatchSource

    from rrweb_dali.loader.assemble import Assembler
    from rrweb_dali.loader.options import OutputOptions

    roots, _ = two
    plan = PlanOptions(batch_size=8, seed=1, weights=tuple(WEIGHTS), packing=packing)
    outputs = OutputOptions(
        labels=True, position_ids=True, packing=packing is not None, mixture=True
    )
    flat, aux = BatchSource(roots, plan, Transport(batches_per_call=2))(0)
    padded, host_aux = BatchSource(
        roots, plan, Transport(pad_on_host=packing is None, batches_per_call=2)
    )(0)
    on_gpu = Assembler(outputs, on_gpu=True, pool=None)(
        ([t.astype(np.int64) for t in flat], aux, aux)
    )
    on_cpu = Assembler(outputs, on_gpu=False, pool=None)(
        ([t.astype(np.int64) for t in padded], host_aux)
    )
    assert len(on_gpu) == len(on_cpu) == 2
    for a, b in zip(on_gpu, on_cpu, strict=True):
        assert a.batch.keys() == b.batch.keys() and "dataset" in a.batch
        for k in a.batch:
            assert torch.equal(a.batch[k], b.batch[k]), k
