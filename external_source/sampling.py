"""Seeded epoch orders, length bucketing and rank sharding: pure functions of plain arrays.

Everything here is a function of its arguments only (no state, no I/O), in the spirit of MosaicML
streaming: every process (each rank, each DALI worker) recomputes the same plan from
``(seed, epoch)`` and takes its own part, so no plan ever has to be sent around.

The plan of an epoch is a *sequence*: the order in which the epoch's units (sessions, or packed
rows) are consumed globally. It never depends on the world size, which is what lets a job resume
with a different number of ranks (:mod:`.state`). Ranks consume it in *global
steps* of ``world_size * batch_size`` positions; in every step rank ``r`` takes the ``r``-th run
of ``batch_size`` positions. After ``k`` steps exactly the first ``start + k * world_size *
batch_size`` positions are consumed.

Remainder policy, ``last_batch`` (every rank always gets the same number of batches of the same
size, so a DDP job never hangs on a missing collective). When the units left, ``R``, do not fill a
whole global step:

* ``"short"`` (default, as ``DataLoader`` over ``torch.utils.data.DistributedSampler``): the last
  step gives every rank ``ceil(R / world_size)`` units, so the last batch is short (the same size
  on every rank); the positions past the end wrap to the start of the epoch sequence, so fewer
  than ``world_size`` units are seen twice (none at world size 1).
* ``"drop"``: the tail is dropped (at most ``world_size * batch_size - 1`` units per epoch; a
  different seed or epoch drops different ones).
* ``"wrap"``: the last step is filled to full batches by wrapping around to the start of the
  epoch sequence (fixed shapes, for CUDA graphs and ``torch.compile``): up to
  ``world_size * batch_size - 1`` units are seen twice in that epoch; ``index`` shows which.
"""

from __future__ import annotations

import numpy as np

# Distinct random streams derived from (seed, epoch): one for the order, one for batch shuffling.
_ORDER_STREAM = 0
_BATCH_STREAM = 1


def _rng(seed: int, epoch: int, stream: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(epoch), stream]))


def epoch_permutation(n: int, seed: int, epoch: int, shuffle: bool = True) -> np.ndarray:
    """The epoch's order of ``n`` units: a seeded permutation, or ``0..n-1`` without shuffling."""
    if not shuffle:
        return np.arange(n, dtype=np.int64)
    return _rng(seed, epoch, _ORDER_STREAM).permutation(n).astype(np.int64, copy=False)


def shard_window_order(
    shard_of: np.ndarray, n_shards: int, window: int, seed: int, epoch: int
) -> np.ndarray:
    """A seeded order of ``n`` units that reads about ``window`` shards at a time.

    ``shard_of[i]`` is unit ``i``'s shard. The shards are put in a seeded order and cut into
    windows of ``window`` consecutive shards; the epoch takes the windows in that order and the
    units of each window in a seeded order among themselves (MosaicML streaming's block shuffle
    and litdata's shard-aware shuffle work alike). Returns positions into ``0..n-1``.
    """
    rng = _rng(seed, epoch, _ORDER_STREAM)
    rank = np.empty(n_shards, dtype=np.int64)
    rank[rng.permutation(n_shards)] = np.arange(n_shards)
    keys = rng.random(shard_of.size)
    return np.lexsort((keys, rank[shard_of] // window)).astype(np.int64, copy=False)


def bucket_by_length(
    order: np.ndarray,
    lengths: np.ndarray,
    batch_size: int,
    window_batches: int,
    seed: int,
    epoch: int,
) -> np.ndarray:
    """Reorder ``order`` so that each run of ``batch_size`` holds units of similar length.

    The order is cut into windows of ``window_batches * batch_size`` units; each window is sorted by
    length (stable, so ties keep the shuffled order) and cut into batches; then the order of all
    full batches is shuffled, so long and short batches alternate over the epoch instead of the
    epoch ending with all the long ones. A partial batch (``len(order) % batch_size`` units) stays
    last. Padding only shrinks: a batch is padded to its own longest unit, and neighbours in a
    sorted window differ little in length.
    """
    order = np.asarray(order, dtype=np.int64)
    n = order.size
    if batch_size < 1 or window_batches < 1:
        raise ValueError("batch_size and window_batches must be at least 1")
    window = batch_size * window_batches
    keys = np.asarray(lengths)[order]
    out = np.empty_like(order)
    for lo in range(0, n, window):
        hi = min(lo + window, n)
        out[lo:hi] = order[lo:hi][np.argsort(keys[lo:hi], kind="stable")]
    full = n // batch_size
    if full > 1:
        perm = _rng(seed, epoch, _BATCH_STREAM).permutation(full)
        head = out[: full * batch_size].reshape(full, batch_size)[perm].reshape(-1)
        out = np.concatenate([head, out[full * batch_size :]])
    return out


def steps_in_epoch(
    total: int, start: int, batch_size: int, world_size: int, last_batch: str = "short"
) -> int:
    """Global steps (= batches per rank) left in an epoch of ``total`` units from ``start``."""
    remaining = max(total - start, 0)
    step = batch_size * world_size
    return remaining // step if last_batch == "drop" else -(-remaining // step)


def batch_rows(
    total: int, start: int, batch_size: int, world_size: int, step: int, last_batch: str = "short"
) -> int:
    """Rows of every rank's batch in global step ``step``: ``batch_size``, except in a short
    last step (``last_batch="short"``), where the units left are shared out evenly."""
    left = total - start - step * batch_size * world_size
    if last_batch != "short" or left >= batch_size * world_size:
        return batch_size
    return -(-left // world_size)


def batch_positions(
    total: int,
    start: int,
    batch_size: int,
    world_size: int,
    rank: int,
    step: int,
    last_batch: str = "short",
) -> np.ndarray:
    """Positions in the epoch sequence of ``rank``'s batch in global step ``step``.

    Positions past the end wrap around to the start of the sequence (only in the final step of an
    epoch, with ``last_batch`` ``"short"`` or ``"wrap"``).
    """
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is outside world size {world_size}")
    rows = batch_rows(total, start, batch_size, world_size, step, last_batch)
    first = start + step * world_size * batch_size + rank * rows
    pos = np.arange(first, first + rows, dtype=np.int64)
    if total > 0 and first + rows > total:
        over = pos >= total
        pos[over] = (pos[over] - total) % total
    return pos


def consumed_after(total: int, start: int, batch_size: int, world_size: int, steps: int) -> int:
    """Units of the epoch sequence consumed globally after ``steps`` global steps from ``start``."""
    return min(start + steps * batch_size * world_size, total)


def padded_width(max_len: int, pad_multiple: int) -> int:
    """A batch's padded length: its longest row rounded up to ``pad_multiple`` (never 0)."""
    m = max(int(pad_multiple), 1)
    return max(-(-int(max_len) // m) * m, m)


def padding_efficiency(
    lengths_in_order: np.ndarray, batch_size: int, pad_multiple: int = 8, pad_to: int | None = None
) -> float:
    """Real tokens / padded slots when ``lengths_in_order`` is cut into batches of ``batch_size``.

    Used to compare plans (bucketing versus not) without running a loader. With ``pad_to`` every
    batch is that wide, otherwise as wide as :func:`padded_width` of its longest row.
    """
    lens = np.asarray(lengths_in_order, dtype=np.int64)
    if lens.size == 0:
        return 1.0
    real = int(lens.sum())
    slots = 0
    for lo in range(0, lens.size, batch_size):
        chunk = lens[lo : lo + batch_size]
        width = pad_to if pad_to is not None else padded_width(int(chunk.max()), pad_multiple)
        slots += chunk.size * width
    return real / slots if slots else 1.0
