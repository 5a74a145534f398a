"""Rank, world size and local GPU of this process, as torchrun describes them.

``torchrun`` (and ``torch.distributed.launch``) export ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``
to every process it starts; reading them is the documented way for a data loader to learn its
place in the job. Explicit arguments always win; without either, a process is rank 0 of 1.
"""

from __future__ import annotations

import logging
import os

logger = logging.getLogger(__name__)


def _env_int(name: str) -> int | None:
    value = os.environ.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{name}={value!r} is not an integer") from None


def rank_and_world(rank: int | None = None, world_size: int | None = None) -> tuple[int, int]:
    """``(rank, world_size)``: the arguments when given, else torchrun's ``RANK``/``WORLD_SIZE``."""
    if rank is None:
        rank = _env_int("RANK")
    if world_size is None:
        world_size = _env_int("WORLD_SIZE")
    rank = 0 if rank is None else rank
    world_size = 1 if world_size is None else world_size
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not a rank of a world of size {world_size}")
    return rank, world_size


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
        return int(device.split(":", 1)[1])
    raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}")
