"""This process's rank, world size and local GPU, from wherever the launcher put them.

Order, first found wins (launchers differ: Lightning's DDP launcher sets
``WORLD_SIZE`` and ``LOCAL_RANK`` but not ``RANK``; ``torch.multiprocessing.spawn`` with
``init_process_group(rank=..., world_size=...)`` sets no variable at all):

1. explicit ``rank`` / ``world_size`` arguments;
2. an initialised ``torch.distributed`` process group (``get_rank()``, ``get_world_size()``);
3. torchrun's environment: ``RANK`` and ``WORLD_SIZE``.

Explicit arguments that contradict an initialised group are an error. When any source says the
world is larger than 1 but the rank cannot be known (``WORLD_SIZE=2`` without ``RANK`` and
without a group), this raises: falling back to rank 0 would make every process read the same
batches, silently.
"""

from __future__ import annotations

import logging
import os

logger = logging.getLogger(__name__)


class RankError(ValueError):
    """The rank or world size cannot be known, or its sources disagree."""


def _env_int(name: str) -> int | None:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise RankError(f"environment variable {name}={value!r} is not an integer") from None


def _group() -> tuple[int, int] | None:
    """``(rank, world_size)`` of the initialised default process group, if there is one."""
    try:
        import torch.distributed as dist
    except ImportError:  # a torch built without distributed support
        return None
    if not dist.is_available() or not dist.is_initialized():
        return None
    return dist.get_rank(), dist.get_world_size()


def _check(rank: int, world_size: int, source: str) -> tuple[int, int]:
    for name, value in (("rank", rank), ("world_size", world_size)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise RankError(f"{name} must be an int, got {value!r} ({source})")
    if world_size < 1 or not 0 <= rank < world_size:
        raise RankError(f"rank {rank} is not a rank of a world of size {world_size} ({source})")
    return rank, world_size


def rank_and_world(rank: int | None = None, world_size: int | None = None) -> tuple[int, int]:
    """``(rank, world_size)`` of this process; see the module doc for the order of sources."""
    group = _group()
    if group is not None:
        g_rank, g_world = group
        if (rank is not None and rank != g_rank) or (
            world_size is not None and world_size != g_world
        ):
            raise RankError(
                f"rank={rank}, world_size={world_size} contradict the initialised process "
                f"group (rank {g_rank} of {g_world}); pass neither, or the group's values"
            )
        return _check(g_rank, g_world, "torch.distributed process group")
    if rank is not None and world_size is not None:
        return _check(rank, world_size, "arguments")
    env_rank, env_world = _env_int("RANK"), _env_int("WORLD_SIZE")
    rank = env_rank if rank is None else rank
    world_size = env_world if world_size is None else world_size
    if rank is None and world_size is None:
        return 0, 1
    if world_size is None:
        raise RankError(
            f"the rank is {rank} but the world size is unknown (WORLD_SIZE is unset and no "
            "process group is initialised); pass world_size="
        )
    if rank is None:
        if world_size == 1:
            return 0, 1
        local = _env_int("LOCAL_RANK")
        raise RankError(
            f"the world size is {world_size} but this process's rank is unknown: RANK is unset "
            f"(LOCAL_RANK={local}) and no torch.distributed process group is initialised. "
            "Make the loader after init_process_group() (Lightning: in train_dataloader() or "
            "setup()), or pass rank= and world_size="
        )
    return _check(rank, world_size, "RANK/WORLD_SIZE")


def local_device_id(device: str) -> int | None:
    """The CUDA device index for ``device``; ``None`` for ``"cpu"`` (a CPU-only DALI pipeline).

    ``"cuda:N"`` names the GPU; plain ``"cuda"`` takes torchrun's ``LOCAL_RANK`` (one GPU per
    process on a node), else torch's current device.
    """
    if device == "cpu":
        return None
    if device == "cuda":
        local = _env_int("LOCAL_RANK")
        if local is not None:
            return local
        import torch

        return torch.cuda.current_device()
    if device.startswith("cuda:"):
        index = device.split(":", 1)[1]
        if index.isdigit():
            return int(index)
    raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}")
