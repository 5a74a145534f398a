"""Ranks, resume (same and different world size), torchrun's environment and parallel sources."""

from __future__ import annotations

import pytest
import torch

from rrweb_dali.loader import make_loader

N_SESSIONS = 211


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, write_dataset):
    root = tmp_path_factory.mktemp("ds")
    return root, write_dataset(root, n=N_SESSIONS, shards=2, seed=1, max_len=800)


@pytest.mark.parametrize("world", [2, 3])
def test_ranks_disjoint_with_equal_batch_counts(dataset, world, check_rows):
    root, sessions = dataset
    bs = 8
    per_rank = []
    for r in range(world):
        loader = make_loader(root, batch_size=bs, device="cpu", seed=2, rank=r, world_size=world)
        batches = []
        for b in loader:
            check_rows(b, sessions)
            batches.append(b["index"])
        assert len(batches) == len(loader)
        per_rank.append(torch.cat(batches).tolist())
    assert len({len(p) for p in per_rank}) == 1  # same number of rows: DDP cannot hang
    everything = [i for p in per_rank for i in p]
    assert set(everything) == set(range(N_SESSIONS))
    repeats = len(everything) - N_SESSIONS
    assert repeats == -(-N_SESSIONS // world) * world - N_SESSIONS < world  # DistributedSampler's
    # Without the final step's repeats, the ranks are disjoint.
    steps = len(loader) - 1
    heads = [set(p[: steps * bs]) for p in per_rank]
    assert all(not (heads[a] & heads[b]) for a in range(world) for b in range(a + 1, world))
    drop = [
        len(
            make_loader(root, batch_size=bs, device="cpu", rank=r, world_size=world, drop_last=True)
        )
        for r in range(world)
    ]
    assert drop == [N_SESSIONS // (bs * world)] * world


@pytest.mark.parametrize(
    "options",
    [{}, {"bucketing": True}, {"packing": 300}, {"batches_per_call": 3}, {"batches_per_call": 1}],
)
def test_resume_gives_the_remaining_batches(dataset, options, indices):
    root, _ = dataset
    full = indices(make_loader(root, batch_size=8, device="cpu", seed=3, **options))
    loader = make_loader(root, batch_size=8, device="cpu", seed=3, **options)
    head = indices(loader, limit=5)
    state = loader.state_dict()
    assert state["epoch"] == 0 and state["consumed"] == 40
    resumed = make_loader(root, batch_size=8, device="cpu", seed=3, **options)
    resumed.load_state_dict(state)
    rest = indices(resumed)
    assert len(head) + len(rest) == len(full)
    assert all(torch.equal(a, b) for a, b in zip(head + rest, full, strict=True))
    assert resumed.epoch == 1 and resumed.state_dict()["consumed"] == 0


def test_resume_into_a_different_world_size(dataset, indices):
    root, _ = dataset
    bs, k = 8, 4
    order = torch.cat(indices(make_loader(root, batch_size=bs, device="cpu", seed=4)))[
        :N_SESSIONS
    ].tolist()
    seen, states = [], []
    for r in range(2):
        loader = make_loader(root, batch_size=bs, device="cpu", seed=4, rank=r, world_size=2)
        seen += torch.cat(indices(loader, limit=k)).tolist()
        states.append(loader.state_dict())
    assert states[0]["consumed"] == states[1]["consumed"] == 2 * k * bs
    assert sorted(seen) == sorted(order[: 2 * k * bs])  # the first positions of the epoch
    rest = []
    counts = set()
    for r in range(3):
        loader = make_loader(root, batch_size=bs, device="cpu", seed=4, rank=r, world_size=3)
        loader.load_state_dict(states[0])
        batches = indices(loader)
        counts.add(len(batches))
        rest += torch.cat(batches).tolist()
    assert len(counts) == 1
    unseen = set(range(N_SESSIONS)) - set(seen)
    assert set(rest) >= unseen
    extra = len(rest) - len(unseen)
    assert 0 <= extra < 3 and set(rest) - unseen <= set(order[:extra])  # the last step's repeats


def test_resume_checks_the_plan(dataset):
    root, _ = dataset
    state = make_loader(root, batch_size=8, device="cpu", bucketing=True).state_dict()
    with pytest.raises(ValueError, match="plan"):
        make_loader(root, batch_size=16, device="cpu", bucketing=True).load_state_dict(state)
    with pytest.raises(ValueError, match="version"):
        make_loader(root, batch_size=8, device="cpu").load_state_dict({**state, "version": 0})


def test_rank_from_torchrun_environment(dataset, monkeypatch, indices):
    root, _ = dataset
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "3")
    loader = make_loader(root, batch_size=8, device="cpu", seed=5)
    assert (loader.rank, loader.world_size) == (1, 3)
    explicit = make_loader(root, batch_size=8, device="cpu", seed=5, rank=1, world_size=3)
    assert all(torch.equal(a, b) for a, b in zip(indices(loader), indices(explicit), strict=True))
    assert make_loader(root, batch_size=8, device="cpu", rank=0, world_size=1).world_size == 1
    monkeypatch.setenv("RANK", "3")
    with pytest.raises(ValueError):
        make_loader(root, batch_size=8, device="cpu")


def test_parallel_workers_give_the_same_batches(dataset):
    """``parallel=True``: the source runs in spawned DALI worker processes (never forked)."""
    root, _ = dataset
    serial = make_loader(root, batch_size=16, device="cpu", seed=6, labels=True)
    parallel = make_loader(
        root, batch_size=16, device="cpu", seed=6, labels=True, parallel=True, py_workers=2
    )
    try:
        for epoch in range(2):
            a, b = list(serial), list(parallel)
            assert len(a) == len(b) == len(serial), epoch
            for x, y in zip(a, b, strict=True):
                assert all(torch.equal(x[key], y[key]) for key in x)
        assert parallel.stats()["gather_s"] > 0  # counters come back from the workers
    finally:
        parallel.close()
