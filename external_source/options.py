"""What decides the batches (:class:`PlanOptions`) and how they travel (:class:`Transport`).

Two concerns, two dataclasses, each validating itself. The plan is what a saved state must agree
on to resume exactly; the transport changes how batches cross into DALI, never which rows they
hold, so two loaders that differ only in transport give the same batches.
"""

from __future__ import annotations

import numbers
from dataclasses import asdict, dataclass

from rrweb_dali.external_source.mixture import MIXTURES, check_weights
from rrweb_dali.external_source.selection import Selection

LAST_BATCH = ("short", "drop", "wrap")


def _check_positive(options: object, **values: int | None) -> None:
    """Each value an integer (numpy's too, stored as ``int``) of at least 1, or None."""
    owner = type(options).__name__
    for name, value in values.items():
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"{owner}.{name} must be an int, got {type(value).__name__}")
        if value < 1:
            raise ValueError(f"{owner}.{name} must be at least 1, got {value}")
        object.__setattr__(options, name, int(value))  # frozen: normalised once, here


@dataclass(frozen=True)
class PlanOptions:
    """The epoch plan: which units each batch of each rank holds, in which order.

    ``last_batch`` is what happens to the end of an epoch that does not fill a whole global step
    of ``world_size * batch_size`` units (see :mod:`.sampling`): ``"short"`` (the
    default, as ``DataLoader`` over a ``DistributedSampler``), ``"drop"`` or ``"wrap"``.

    ``selection`` (a split and filters, :mod:`.selection`) keeps some sequences of each dataset
    directory; ``weights`` makes the directories a weighted mixture (:mod:`.mixture`) instead of
    one concatenated dataset, with ``mixture`` ``"repeat"`` or ``"exhaust"`` saying what an epoch
    is.

    ``shard_window`` (with ``shuffle``) orders an epoch for shards that arrive from an object
    store: the shards in a seeded order, cut into windows of that many shards, each window's
    sequences shuffled among themselves (:func:`.sampling.shard_window_order`), so an epoch reads
    about ``shard_window`` shards at a time instead of every shard in every batch.
    """

    batch_size: int
    seed: int = 0
    shuffle: bool = True
    last_batch: str = "short"
    bucketing: bool = False
    bucket_window: int = 16
    pad_to: int | None = None  # fixed width; None pads each batch to its longest row
    pad_multiple: int = 8
    max_length: int | None = None
    packing: int | None = None  # row length L of packing mode
    selection: Selection | None = None
    weights: tuple[float, ...] | None = None  # one per dataset directory: a mixture
    mixture: str = "repeat"
    shard_window: int | None = None

    def __post_init__(self) -> None:
        _check_positive(
            self,
            shard_window=self.shard_window,
            batch_size=self.batch_size,
            bucket_window=self.bucket_window,
            pad_to=self.pad_to,
            pad_multiple=self.pad_multiple,
            max_length=self.max_length,
            packing=self.packing,
        )
        seed = self.seed
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
            raise ValueError(f"PlanOptions.seed must be a non-negative int, got {seed!r}")
        object.__setattr__(self, "seed", int(seed))
        if self.last_batch not in LAST_BATCH:
            raise ValueError(f"last_batch must be one of {LAST_BATCH}, got {self.last_batch!r}")
        if self.packing is not None and self.bucketing:
            raise ValueError("bucketing and packing exclude each other: packed rows are all full")
        if self.packing is not None and self.pad_to is not None:
            raise ValueError("pad_to does not apply to packing: rows are always `packing` long")
        if self.selection is not None and not isinstance(self.selection, Selection):
            raise TypeError(f"PlanOptions.selection must be a Selection, got {self.selection!r}")
        if self.weights is not None:
            object.__setattr__(self, "weights", check_weights(self.weights))
        if self.shard_window is not None and self.weights is not None:
            raise ValueError("shard_window does not apply to a mixture, which orders each source")
        if self.mixture not in MIXTURES:
            raise ValueError(f"mixture must be one of {MIXTURES}, got {self.mixture!r}")

    @property
    def cap(self) -> int | None:
        """The most tokens taken from one session (its head is kept)."""
        caps = [c for c in (self.max_length, self.pad_to) if c]
        return min(caps) if caps else None

    def plan_key(self, n_units: int) -> dict:
        """What a saved state must agree on to resume (see :mod:`.state`)."""
        ordered = self.bucketing or self.packing is not None
        return {
            "sessions": int(n_units),
            "shuffle": self.shuffle,
            "bucketing": [self.batch_size, self.bucket_window] if self.bucketing else None,
            "packing": self.packing,
            "cap": self.cap if ordered else None,
            "selection": None if self.selection is None else self.selection.key(),
            "mixture": None
            if self.weights is None
            else {"weights": list(self.weights), "mode": self.mixture},
            # Only when set, so that states saved before the option existed still resume.
            **({"shard_window": self.shard_window} if self.shard_window and self.shuffle else {}),
        }

    def to_dict(self) -> dict:
        return asdict(self)


# Default rows per DALI iteration (``batches_per_call`` = this // batch size, at least 1). DALI
# costs ~0.2-0.25 ms per iteration on the 2-core dev machine whatever its size; shared by 512 rows
# it fell to noise: bs 64 gave 75k samples/s with 1 batch per call, 90-98k with 4, 97-107k with 8;
# bs 256 103-111k with 1, 110-131k with 2, and worse again with 8 (16 MB per call).
ROWS_PER_CALL = 512


@dataclass(frozen=True)
class Transport:
    """How a source hands batches to DALI (never which rows they hold).

    ``pad_on_host``: padded-mode rows cross already padded to ``[B, L]`` (the CPU device, where
    padding is a host copy anyway) instead of end to end (a GPU pads after the copy).
    ``batches_per_call``: training batches per DALI iteration (one sample each), so DALI's fixed
    cost per iteration is shared.
    """

    pad_on_host: bool = False
    batches_per_call: int = 1

    def __post_init__(self) -> None:
        _check_positive(self, batches_per_call=self.batches_per_call)

    def to_dict(self) -> dict:
        return asdict(self)
