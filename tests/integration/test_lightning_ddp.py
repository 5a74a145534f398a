"""Lightning ``Trainer.fit`` with ``strategy="ddp"``, ``devices=2`` on the CPU (gloo), run as a
user runs it (``lightning_ddp.py`` in a subprocess; Lightning starts the second rank): the ranks
are disjoint and together the whole epoch (with ``DistributedSampler``'s repeats, fewer than the
world size), each epoch has its own order, and a run resumed from a mid-epoch checkpoint
continues at the exact next batch on both ranks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rrweb_dali.loader import make_loader

pytest.importorskip("lightning.pytorch", reason="the dev extra installs lightning")

SCRIPT = Path(__file__).with_name("lightning_ddp.py")
N, SEED, EPOCHS, SAVE_EVERY = 61, 7, 2, 2  # 61 sessions, batch 8, 2 ranks: 4 steps an epoch
LAUNCHER_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "NODE_RANK")


def run_ddp(root: Path, out: Path, port: int, *extra: str) -> list[dict]:
    """Run the script to its end (killed with its second rank after 300 s); each rank's result."""
    out.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in LAUNCHER_VARIABLES}
    env.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), HF_HUB_OFFLINE="1")
    cmd = [sys.executable, str(SCRIPT), str(root), str(out), "--epochs", str(EPOCHS), *extra]
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        log, _ = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the script's own group: both ranks
        log, _ = proc.communicate()
        pytest.fail(f"the DDP run did not end in 300 s:\n{log.decode(errors='replace')[-4000:]}")
    text = log.decode(errors="replace")
    assert proc.returncode == 0, text[-4000:]
    return [json.loads((out / f"seen.{r}.json").read_text()) for r in range(2)]


def expected(root: Path, rank: int, epoch: int) -> list[list[int]]:
    loader = make_loader(root, batch_size=8, device="cpu", seed=SEED, rank=rank, world_size=2)
    loader.set_epoch(epoch)
    return [b["index"].tolist() for b in loader]


@pytest.fixture(scope="module")
def ddp_dataset(tmp_path_factory, write_dataset):
    root = tmp_path_factory.mktemp("ddp-ds")
    write_dataset(root, n=N, shards=2, seed=5, max_len=200)
    return root


@pytest.mark.slow
def test_lightning_ddp_ranks_epochs_and_mid_epoch_resume(ddp_dataset, tmp_path, free_port):
    root = ddp_dataset
    full = run_ddp(root, tmp_path / "full", free_port(), "--save-every", str(SAVE_EVERY))
    assert [(r["rank"], r["world"], r["loader"]) for r in full] == [(0, 2, [0, 2]), (1, 2, [1, 2])]
    for epoch in range(EPOCHS):
        per_rank = [r["seen"][str(epoch)] for r in full]
        assert [len(p) for p in per_rank] == [4, 4]  # equal batch counts: DDP cannot hang
        for rank, got in enumerate(per_rank):
            assert got == expected(root, rank, epoch)
        units = [[i for batch in p for i in batch] for p in per_rank]
        assert set(units[0]) | set(units[1]) == set(range(N))
        assert len(units[0]) + len(units[1]) - N == 1  # DistributedSampler's repeat (< 2)
        heads = [set(u[:24]) for u in units]  # the first 3 steps: no repeat can be there
        assert not heads[0] & heads[1]
    assert full[0]["seen"]["0"] != full[0]["seen"]["1"]  # each epoch its own order

    checkpoint = tmp_path / "full" / "checkpoints" / f"at-step={SAVE_EVERY}.ckpt"
    assert checkpoint.is_file(), sorted(os.listdir(checkpoint.parent))
    saved = torch.load(checkpoint, weights_only=False)["loops"]["fit_loop"]["state_dict"]
    (state,) = saved["combined_loader"]  # Lightning saved rank 0's loader.state_dict()
    assert (state["epoch"], state["consumed"], state["world_size"]) == (0, 2 * 8 * 2, 2)
    resumed = run_ddp(root, tmp_path / "resumed", free_port(), "--ckpt", str(checkpoint))
    for before, after in zip(full, resumed, strict=True):
        want = {"0": before["seen"]["0"][SAVE_EVERY:], "1": before["seen"]["1"]}
        assert after["seen"] == want
