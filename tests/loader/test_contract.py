"""The iteration contract of ``torchdata``'s ``StatefulDataLoader`` over a ``DistributedSampler``,
hit as users hit it: peeks, passes, epochs, the last batch, Lightning's epoch hand-off."""

from __future__ import annotations

import pytest
import torch

from rrweb_dali.loader import make_loader


def _epoch(loader) -> list[torch.Tensor]:
    return [b["index"].clone() for b in loader]


def _same(a, b) -> bool:
    return len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_peeks_before_training_leave_the_epoch_whole(dataset):
    root, _ = dataset
    reference = _epoch(make_loader(root, batch_size=16, device="cpu", seed=1))
    loader = make_loader(root, batch_size=16, device="cpu", seed=1)
    first = next(iter(loader))["index"]
    second = next(iter(loader))["index"]
    assert torch.equal(first, reference[0]) and torch.equal(second, reference[0])
    assert _same(_epoch(loader), reference)
    assert loader.epoch == 1  # only the pass that ran to its end moved the epoch


def test_a_peek_inside_the_loop_leaves_the_running_pass_untouched(dataset):
    root, _ = dataset
    reference = make_loader(root, batch_size=16, device="cpu", seed=2)
    epoch0, epoch1 = _epoch(reference), _epoch(reference)
    loader = make_loader(root, batch_size=16, device="cpu", seed=2)
    got = []
    for step, b in enumerate(loader):
        got.append(b["index"].clone())
        if step == 10:  # log a sample: a new pass, from the epoch's start
            assert torch.equal(next(iter(loader))["index"], epoch0[0])
            assert loader.state_dict()["consumed"] == 16 * 11  # the running pass's position
    assert _same(got, epoch0)
    loader.set_epoch(1)
    assert _same(_epoch(loader), epoch1)


def test_a_peek_on_one_rank_keeps_the_batch_counts_equal(dataset):
    root, _ = dataset
    counts = []
    for rank in range(2):
        loader = make_loader(root, batch_size=16, device="cpu", seed=3, rank=rank, world_size=2)
        n = 0
        for n, _ in enumerate(loader, 1):
            if rank == 0 and n == 3:
                next(iter(loader))
        counts.append(n)
    assert counts[0] == counts[1] == len(loader)


def test_every_pass_starts_the_current_epoch_and_full_passes_advance_it(dataset):
    root, _ = dataset
    loader = make_loader(root, batch_size=16, device="cpu", seed=4)
    it = iter(loader)
    head = [next(it)["index"] for _ in range(3)]
    del it  # an abandoned pass: the epoch stays
    assert loader.epoch == 0
    e0 = _epoch(loader)
    assert _same(head, e0[:3]) and loader.epoch == 1
    e1 = _epoch(loader)
    assert not _same(e0, e1) and loader.epoch == 2
    # Driven by set_epoch, as with a DistributedSampler: passes no longer move the epoch.
    loader.set_epoch(0)
    assert _same(_epoch(loader), e0) and _same(_epoch(loader), e0) and loader.epoch == 0


def test_state_dict_of_an_untouched_loader_and_the_first_pass_after_a_load(dataset):
    root, _ = dataset
    loader = make_loader(root, batch_size=16, device="cpu", seed=5)
    assert (loader.state_dict()["epoch"], loader.state_dict()["consumed"]) == (0, 0)
    full = _epoch(loader)
    loader.set_epoch(0)
    it = iter(loader)
    for _ in range(4):
        next(it)
    state = loader.state_dict()
    resumed = make_loader(root, batch_size=16, device="cpu", seed=5)
    resumed.load_state_dict(state)
    assert resumed.state_dict() == state  # before iterating: the loaded position
    resumed.set_epoch(0)  # the usual set_epoch at the top of the epoch loop keeps the resume
    assert _same(_epoch(resumed), full[4:])
    assert _same(_epoch(resumed), full)  # the next pass: epoch 0 again, from its start


@pytest.mark.parametrize("world", [1, 3])
@pytest.mark.parametrize("last_batch", ["short", "drop", "wrap"])
def test_the_last_batch_conventions(dataset, world, last_batch):
    """``short`` (default) is DataLoader + DistributedSampler: ceil(N / world) rows per rank, the
    last batch short and the same on every rank, fewer than ``world`` repeats; ``drop`` drops
    the tail; ``wrap`` fills full batches from the epoch's start."""
    root, sessions = dataset
    n, bs = len(sessions), 16
    per_rank = []
    for rank in range(world):
        loader = make_loader(
            root,
            batch_size=bs,
            device="cpu",
            seed=6,
            rank=rank,
            world_size=world,
            last_batch=last_batch,
        )
        per_rank.append([b["index"] for b in loader])
        assert len(per_rank[-1]) == len(loader)
    sizes = [[b.numel() for b in batches] for batches in per_rank]
    assert all(s == sizes[0] for s in sizes)  # same batches, same sizes, on every rank
    seen = torch.cat([b for batches in per_rank for b in batches]).tolist()
    repeats = len(seen) - len(set(seen))
    if last_batch == "short":
        assert len(seen) == -(-n // world) * world and set(seen) == set(range(n))
        assert repeats == -(-n // world) * world - n < world
        assert all(s == bs for s in sizes[0][:-1]) and sizes[0][-1] <= bs
    elif last_batch == "drop":
        assert repeats == 0 and len(seen) == (n // (bs * world)) * bs * world
        assert all(s == bs for s in sizes[0])
    else:
        steps = -(-n // (bs * world))
        assert len(seen) == steps * bs * world and set(seen) == set(range(n))
        assert repeats == steps * bs * world - n and all(s == bs for s in sizes[0])


def test_drop_last_is_the_dataloader_spelling_of_last_batch_drop(dataset):
    root, _ = dataset
    a = _epoch(make_loader(root, batch_size=16, device="cpu", seed=7, drop_last=True))
    b = _epoch(make_loader(root, batch_size=16, device="cpu", seed=7, last_batch="drop"))
    assert _same(a, b)
    with pytest.raises(ValueError, match="contradicts"):
        make_loader(root, batch_size=16, device="cpu", drop_last=True, last_batch="wrap")
    with pytest.raises(ValueError, match="last_batch"):
        make_loader(root, batch_size=16, device="cpu", last_batch="pad")


def test_lightning_epoch_hand_off_reaches_the_loader(dataset):
    """Lightning calls ``set_epoch`` on a loader's ``sampler`` at each epoch start (and never on
    the loader); with ``limit_train_batches`` no pass runs to its end, so only that hand-off
    gives every epoch its own order."""
    root, _ = dataset
    reference = make_loader(root, batch_size=16, device="cpu", seed=8)
    orders = [_epoch(reference)[:2] for _ in range(3)]
    loader = make_loader(root, batch_size=16, device="cpu", seed=8)
    for epoch in range(3):
        loader.sampler.set_epoch(epoch)
        got = []
        for b in loader:
            got.append(b["index"].clone())
            if len(got) == 2:  # limit_train_batches=2
                break
        assert _same(got, orders[epoch]), epoch
    assert not _same(orders[0], orders[1])


@pytest.mark.parametrize("worlds", [(1, 2, 3), (3, 2, 1)])
def test_resume_across_world_sizes_sees_every_session_once(dataset, worlds):
    """Stop after two steps at each world size, resume at the next: the epoch is covered
    exactly, plus fewer than ``world`` repeats in the last step."""
    root, sessions = dataset
    n, bs = len(sessions), 8
    state, seen = None, []
    for i, world in enumerate(worlds):
        states = []
        for rank in range(world):
            loader = make_loader(
                root, batch_size=bs, device="cpu", seed=9, rank=rank, world_size=world
            )
            if state is not None:
                loader.load_state_dict(state)
            for k, b in enumerate(loader, 1):
                seen += b["index"].tolist()
                if i < len(worlds) - 1 and k == 2:
                    break
            states.append(loader.state_dict())
        assert all(s["consumed"] == states[0]["consumed"] for s in states)
        state = states[0]
    assert set(seen) == set(range(n))
    assert len(seen) - n < worlds[-1]
    assert (state["epoch"], state["consumed"]) == (1, 0)


def test_the_next_epoch_runs_ahead_and_a_wrong_guess_is_discarded(dataset):
    """After a full pass the pipeline starts the next epoch at once (no wait at the boundary);
    a pass over any other epoch discards that and rebuilds, with the right batches."""
    root, _ = dataset
    reference = {}
    for epoch in (0, 1, 2, 5):
        fresh = make_loader(root, batch_size=16, device="cpu", seed=10)
        fresh.set_epoch(epoch)
        reference[epoch] = _epoch(fresh)
    loader = make_loader(root, batch_size=16, device="cpu", seed=10)
    for epoch in (0, 1, 2):
        loader.set_epoch(epoch)  # the guess (epoch + 1 from its start) holds every time
        assert _same(_epoch(loader), reference[epoch]), epoch
    assert loader.stats()["pipeline_builds"] == 1
    loader.set_epoch(5)  # not the guess
    assert _same(_epoch(loader), reference[5])
    assert loader.stats()["pipeline_builds"] == 2
    loader.set_epoch(5)  # the same epoch again: a rebuild too, and the same order
    assert _same(_epoch(loader), reference[5])
    assert loader.stats()["pipeline_builds"] == 3


def test_epochs_of_one_dali_iteration_run_ahead_one_at_a_time(tmp_path, write_dataset):
    """An epoch that is a single DALI iteration is made at once, and its thread finishes before
    its pass starts: the next guess must wait until it is the current pass, or an epoch would
    be skipped (a regression test)."""
    write_dataset(tmp_path, n=40, shards=1, seed=3, max_len=50)
    loader = make_loader(
        tmp_path, batch_size=8, device="cpu", seed=11
    )  # 5 batches: one DALI iteration
    for epoch in range(4):
        fresh = make_loader(tmp_path, batch_size=8, device="cpu", seed=11)
        fresh.set_epoch(epoch)
        assert _same(_epoch(loader), _epoch(fresh)), epoch
    assert loader.epoch == 4 and loader.stats()["pipeline_builds"] == 1
