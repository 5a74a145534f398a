"""Which shards to fetch ahead: each epoch's need order and how far the reading has got.

An epoch's *need order* is its shards in the order its sequence first touches them (the same on
every rank: it comes from the global epoch plan). The *frontier* of an epoch is the furthest
position in that order of any shard a batch has acquired; the shards to fetch ahead are the next
``want`` after it, running on into the next epoch's order once that is planned (DALI starts the
next epoch before the last one ends). Plain bookkeeping, no I/O and no threads: the fetcher holds
the lock.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

PLANNED_EPOCHS = 2  # need orders kept: the epoch being read and the next one


class NeedOrder:
    """The need orders of the latest epochs and their frontiers."""

    def __init__(self) -> None:
        self._orders: OrderedDict[int, np.ndarray] = OrderedDict()
        self._frontier: dict[int, int] = {}
        self.epoch: int | None = None  # the newest epoch a batch was acquired for

    def plan(self, epoch: int, order: np.ndarray) -> None:
        """Epoch ``epoch`` reads the shards ``order`` (distinct, in order of first need)."""
        self._orders[epoch] = np.asarray(order, dtype=np.int64)
        self._orders = OrderedDict(sorted(self._orders.items()))
        self._frontier.setdefault(epoch, -1)
        while len(self._orders) > PLANNED_EPOCHS:
            old, _ = self._orders.popitem(last=False)
            self._frontier.pop(old, None)
        if self.epoch is None:
            self.epoch = epoch

    def order(self, epoch: int) -> np.ndarray | None:
        """Epoch ``epoch``'s need order, while it is kept."""
        return self._orders.get(epoch)

    def advance(self, epoch: int, shards: list[int]) -> None:
        """A batch of ``epoch`` reads ``shards``: move to that epoch if it is newer (forgetting
        the orders before the one it follows) and its frontier past them."""
        if self.epoch is None or epoch > self.epoch:
            self.epoch = epoch
            for old in [e for e in self._orders if e < epoch - 1]:
                del self._orders[old]
                self._frontier.pop(old, None)
        order = self._orders.get(epoch)
        if order is None:
            return
        positions = np.flatnonzero(np.isin(order, shards))
        if positions.size:
            self._frontier[epoch] = max(self._frontier.get(epoch, -1), int(positions[-1]))

    def ahead(self, want: int) -> list[int]:
        """The ``want`` shards after the current epoch's frontier, then the next epoch's first."""
        if want == 0 or self.epoch is None:
            return []
        out: list[int] = []
        for epoch, order in self._orders.items():
            if epoch < self.epoch:
                continue
            start = self._frontier.get(epoch, -1) + 1 if epoch == self.epoch else 0
            for s in order[start:].tolist():
                if len(out) == want:
                    return out
                if s not in out:
                    out.append(s)
        return out
