"""Rank and world size from every launcher: arguments, a process group, torchrun's environment,
Lightning's (``WORLD_SIZE`` and ``LOCAL_RANK`` without ``RANK``) and ``mp.spawn``'s (none)."""

from __future__ import annotations

import json
import os

import pytest
import torch.distributed as dist
import torch.multiprocessing as mp

from rrweb_dali.loader import RankError, make_loader
from rrweb_dali.loader.distributed import rank_and_world

LAUNCHER_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "NODE_RANK")


@pytest.fixture
def no_launcher(monkeypatch):
    for name in LAUNCHER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def group_of_one(tmp_path):
    """An initialised gloo process group of this one process (rank 0 of 1)."""
    dist.init_process_group(
        "gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1
    )
    yield
    dist.destroy_process_group()


def test_no_launcher_is_rank_0_of_1(no_launcher):
    assert rank_and_world() == (0, 1)
    assert rank_and_world(2, 4) == (2, 4)


def test_torchrun_environment(no_launcher):
    no_launcher.setenv("RANK", "1")
    no_launcher.setenv("WORLD_SIZE", "3")
    assert rank_and_world() == (1, 3)
    no_launcher.setenv("RANK", "3")
    with pytest.raises(RankError, match="not a rank"):
        rank_and_world()


def test_lightning_environment_without_a_group_is_an_error(no_launcher, dataset):
    """Lightning's launcher sets WORLD_SIZE and LOCAL_RANK, not RANK: without a process group the
    rank is unknown, and guessing 0 would give both processes the same batches."""
    root, _ = dataset
    no_launcher.setenv("WORLD_SIZE", "2")
    no_launcher.setenv("LOCAL_RANK", "1")
    with pytest.raises(RankError, match="RANK is unset"):
        make_loader(root, batch_size=8, device="cpu")
    assert (
        make_loader(root, batch_size=8, device="cpu", rank=1).rank == 1
    )  # an explicit rank is enough


def test_rank_without_world_size_is_an_error(no_launcher):
    no_launcher.setenv("RANK", "1")
    with pytest.raises(RankError, match="world size is unknown"):
        rank_and_world()


def test_a_group_wins_over_the_environment(no_launcher, group_of_one):
    no_launcher.setenv("WORLD_SIZE", "2")
    no_launcher.setenv("LOCAL_RANK", "1")
    assert rank_and_world() == (0, 1)
    assert rank_and_world(0, 1) == (0, 1)
    with pytest.raises(RankError, match="contradict"):
        rank_and_world(1, 2)
    with pytest.raises(RankError, match="contradict"):
        rank_and_world(world_size=4)


def test_bad_values_are_refused(no_launcher):
    for rank, world in ((0, 0), (-1, 2), (2, 2), (True, 2)):
        with pytest.raises(RankError):
            rank_and_world(rank, world)
    no_launcher.setenv("WORLD_SIZE", "two")
    with pytest.raises(RankError, match="not an integer"):
        rank_and_world()


def _spawned(rank: int, root: str, init: str, out: str, lightning_env: bool) -> None:
    """One process of ``mp.spawn``: a gloo group, then a loader with no rank arguments, two
    epochs. ``init`` is a ``file://`` store, or ``env:PORT`` for the usual ``MASTER_ADDR`` /
    ``MASTER_PORT`` recipe (the README's)."""
    for name in LAUNCHER_VARIABLES:
        os.environ.pop(name, None)
    if lightning_env:
        os.environ.update(WORLD_SIZE="2", LOCAL_RANK=str(rank))
    if init.startswith("env:"):
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=init[4:])
        dist.init_process_group("gloo", rank=rank, world_size=2)
    else:
        dist.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
    try:
        loader = make_loader(root, batch_size=8, device="cpu", seed=3)
        seen = []
        for epoch in range(2):
            loader.set_epoch(epoch)
            seen.append([b["index"].tolist() for b in loader])
        with open(f"{out}.{rank}", "w") as f:
            json.dump(
                {"rank": loader.rank, "world": loader.world_size, "len": len(loader), "seen": seen},
                f,
            )
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("init", "lightning_env"), [("file", False), ("file", True), ("env", False)]
)
def test_mp_spawn_with_a_process_group_gives_disjoint_ranks(
    dataset, tmp_path, free_port, init, lightning_env
):
    root, sessions = dataset
    out = tmp_path / "seen"
    store = f"file://{tmp_path / 'store'}" if init == "file" else f"env:{free_port()}"
    mp.spawn(_spawned, args=(str(root), store, str(out), lightning_env), nprocs=2, join=True)
    results = [json.loads((tmp_path / f"seen.{r}").read_text()) for r in range(2)]
    assert [(r["rank"], r["world"]) for r in results] == [(0, 2), (1, 2)]
    for epoch in range(2):
        per_rank = [r["seen"][epoch] for r in results]
        assert len(per_rank[0]) == len(per_rank[1]) == results[0]["len"]  # equal batch counts
        a = {i for batch in per_rank[0] for i in batch}
        b = {i for batch in per_rank[1] for i in batch}
        assert a | b == set(range(len(sessions)))
        assert len(a & b) < 2  # only the last step's DistributedSampler-style repeat
    assert results[0]["seen"][0] != results[0]["seen"][1]  # set_epoch: each epoch its own order
