"""Fetch-ahead of remote shards in the order an epoch needs them, and handing them out checked.

The batch source tells the fetcher each epoch's *need order* (:meth:`Fetcher.plan`, kept by
:class:`~.need.NeedOrder`) and, before gathering a batch, which shards the batch reads
(:meth:`Fetcher.acquire`, which blocks until they are in the cache and memory-mapped).
Background threads keep the ``fetch_ahead`` shards after the frontier downloaded.

Protection from eviction: a download a batch waits for may evict anything but the shards in use
by that epoch's latest batch; a download ahead also spares every epoch's shards in use and the
other shards ahead. Two epochs can be read at once (DALI starts the next before the last ends), so
a shard may be evicted while the other epoch's batch still reads it: its memory map stays valid
(the file's inode lives on) and is dropped once no batch uses it.

Counters, per epoch: a shard's first use in an epoch is a *hit* when it was in the cache (fetched
ahead, left by an earlier epoch, or downloaded by another process of the node) and a *miss* when
the batch had to wait for it. ``downloads`` / ``download_bytes`` / ``download_s`` count this
process's own downloads, ``shared`` the ones it waited for while another process downloaded.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rrweb_dali.shards.format import ShardInfo
from rrweb_dali.store.cache import TOUCH_EVERY_S, CacheTooSmall, ShardCache
from rrweb_dali.store.location import Store
from rrweb_dali.store.need import NeedOrder
from rrweb_dali.store.options import StoreOptions
from rrweb_dali.store.remote import token_key
from rrweb_dali.store.threads import DaemonPool
from rrweb_dali.store.transfer import checked_download

logger = logging.getLogger(__name__)

ROOM_WAIT_S = 600.0  # the longest a batch's download waits for others to free room
COUNTERS = ("hits", "misses", "downloads", "download_bytes", "download_ns", "wait_ns", "shared")


@dataclass(frozen=True)
class RemoteEntry:
    """What fetching one shard takes: where it is, what the manifest says, its local index."""

    store: Store
    info: ShardInfo
    index_path: Path
    dtype: np.dtype

    @property
    def key(self) -> str:
        return self.info.sha256


class Fetcher:
    """The remote shards of one reader. ``arrays`` is the reader's token list (by global shard
    number); the fetcher fills the entries of its shards as they are acquired, and clears them
    once their files are evicted and no batch uses them."""

    def __init__(
        self,
        entries: dict[int, RemoteEntry],
        arrays: list[np.ndarray | None],
        cache: ShardCache,
        options: StoreOptions,
    ):
        self._entries = entries
        self._keys = {s: e.key for s, e in entries.items()}
        self._arrays = arrays
        self._cache = cache
        self._options = options
        if entries:
            largest = max(entries.values(), key=lambda e: e.info.bin_bytes).info
            cache.check_fits(largest.bin_bytes, f"its largest shard, {largest.name},")
        self._lock = threading.RLock()  # a done callback may run inside _submit
        self._pool = DaemonPool(options.fetch_threads, "rrweb-dali-fetch")
        self._futures: dict[int, Future] = {}
        self._need = NeedOrder()
        self._in_use: dict[int | None, set[int]] = {}  # epoch -> shards of its latest batch
        self._counted: dict[int, set[int]] = {}  # epoch -> shards whose first use is counted
        self._stale: set[int] = set()  # evicted while in use: mapped until no batch uses them
        self._counters = dict.fromkeys(COUNTERS, 0)
        self._steady: int | None = None  # the epoch whose every shard is mapped and counted
        self._steady_shards: list[int] = []
        self._recent: set[int] = set()  # shards used since their cache times were refreshed
        self._touch_due = 0.0

    # ---- the plan ---------------------------------------------------------------------------
    def plan(self, epoch: int, order: np.ndarray) -> None:
        """Epoch ``epoch`` reads the shards ``order`` (distinct, in order of first need)."""
        with self._lock:
            self._need.plan(epoch, order)
            self._schedule()

    def _ahead(self) -> list[int]:
        return self._need.ahead(self._options.fetch_ahead)

    def _protected(self, ahead: bool, epoch: int | None) -> set[str]:
        """The keys a download may not evict (see the module docstring)."""
        with self._lock:
            if not ahead:
                return {self._keys[s] for s in self._in_use.get(epoch, ())}
            shards = set(self._ahead()).union(*self._in_use.values())
            return {self._keys[s] for s in shards}

    def _schedule(self) -> None:
        """Start downloads of the shards ahead that are neither here nor on their way (locked)."""
        for s in self._ahead():
            here = self._arrays[s] is not None or self._cache.has(self._keys[s])
            if not here and s not in self._futures:
                self._submit(s, ahead=True, epoch=None)

    def _submit(self, s: int, ahead: bool, epoch: int | None) -> Future:
        future = self._pool.submit(self._fetch, s, ahead, epoch)
        self._futures[s] = future
        future.add_done_callback(lambda f, s=s: self._done(s, f))
        return future

    def _done(self, s: int, future: Future) -> None:
        with self._lock:
            # A failed download stays, so that the batch that needs the shard raises its error.
            if not future.cancelled() and future.exception() is None:
                self._futures.pop(s, None)

    # ---- downloading (pool threads) ---------------------------------------------------------
    def _fetch(self, s: int, ahead: bool, epoch: int | None) -> None:
        entry = self._entries[s]
        t0 = time.perf_counter_ns()
        got = 0

        def download(part: Path) -> None:
            nonlocal got
            got = checked_download(
                entry.store,
                token_key(entry.info),
                part,
                entry.index_path,
                entry.info,
                self._options.retry,
            )

        evicted: list[str] = []
        protect = self._protected(ahead, epoch)
        # A batch's own need waits for downloads ahead that hold the room it needs (they become
        # evictable once done); a download ahead never waits: it is dropped and done later.
        wait_s = 0.0 if ahead else ROOM_WAIT_S
        try:
            downloaded = self._cache.fill(
                entry.key, entry.info.bin_bytes, download, protect, evicted, wait_s
            )
        except CacheTooSmall:
            if not ahead:
                raise
            return  # no room ahead of time: a batch that needs the shard fetches it then
        with self._lock:
            if downloaded:
                self._counters["downloads"] += 1
                self._counters["download_bytes"] += got
                self._counters["download_ns"] += time.perf_counter_ns() - t0
            else:  # another process of the node had it, or finished it while we waited
                self._counters["shared"] += 1
            if evicted:
                self._steady = None
                gone = set(evicted)
                self._stale.update(n for n, key in self._keys.items() if key in gone)
                self._release()

    def _release(self) -> None:
        """Drop the maps of evicted shards that no batch uses any more (locked)."""
        if not self._stale:
            return
        in_use = set().union(*self._in_use.values())
        for n in [n for n in self._stale if n not in in_use]:
            self._arrays[n] = None
            self._stale.discard(n)

    # ---- handing shards out -----------------------------------------------------------------
    def _map(self, s: int) -> bool:
        """Memory-map shard ``s`` from the cache; False when its file is not there (any more)."""
        entry = self._entries[s]
        try:
            tokens = np.memmap(self._cache.token_path(entry.key), dtype=entry.dtype, mode="r")
        except FileNotFoundError:
            return False
        except ValueError:  # an empty shard: numpy cannot map zero bytes
            tokens = np.zeros(0, dtype=entry.dtype)
        self._arrays[s] = np.asarray(tokens)
        return True

    def acquire(self, shards: list[int], epoch: int | None = None) -> None:
        """Make ``shards`` present in ``arrays``, waiting for their downloads; ``epoch`` (the
        batch's) moves the frontier and counts first uses. Raises what a download raised."""
        if self._in_hand(shards, epoch):
            return
        while True:
            waiting: list[tuple[int, Future]] = []
            with self._lock:
                self._use(shards, epoch)
                counted = self._counted.setdefault(epoch, set()) if epoch is not None else None
                for s in shards:
                    first_use = counted is not None and s not in counted
                    if self._arrays[s] is not None or (
                        s not in self._futures and self._cache.has(self._keys[s]) and self._map(s)
                    ):
                        if first_use:
                            counted.add(s)
                            self._counters["hits"] += 1
                        continue
                    if first_use:
                        counted.add(s)
                        self._counters["misses"] += 1
                    future = self._futures.get(s) or self._submit(s, ahead=False, epoch=epoch)
                    waiting.append((s, future))
                self._schedule()
            if not waiting:
                break
            t0 = time.perf_counter_ns()
            for _, future in waiting:
                future.result()  # raises the download's error
            with self._lock:
                self._counters["wait_ns"] += time.perf_counter_ns() - t0
                for s, _ in waiting:
                    self._futures.pop(s, None)
            # Loop: map what arrived (another process may have evicted it meanwhile).
        with self._lock:
            self._check_steady(epoch)
        self._touch(shards)

    def _check_steady(self, epoch: int | None) -> None:
        """Note when every shard of the newest epoch is mapped and counted (locked): its batches
        then need no look at their shards at all (:meth:`steady`)."""
        order = None if epoch is None else self._need.order(epoch)
        if order is None or epoch != self._need.epoch or self._stale:
            return
        counted = self._counted.get(epoch, set())
        if all(s in counted and self._arrays[s] is not None for s in order.tolist()):
            self._steady = epoch
            self._steady_shards = order.tolist()

    def steady(self, epoch: int | None) -> bool:
        """True while epoch ``epoch``'s every shard is mapped and counted and nothing was
        evicted since: a batch of it can be gathered at once (the shards' times are still
        refreshed, for least recently needed eviction)."""
        if epoch is None or epoch != self._steady or self._stale:
            return False
        self._touch(self._steady_shards)
        return True

    def _touch(self, shards: list[int]) -> None:
        """Refresh the cache times of the shards used since the last refresh, at most once a
        ``TOUCH_EVERY_S``: one call per shard per batch would cost more than the gather."""
        self._recent.update(shards)
        now = time.monotonic()
        if now < self._touch_due:
            return
        self._touch_due = now + TOUCH_EVERY_S
        recent, self._recent = self._recent, set()
        for s in recent:
            self._cache.touch(self._keys[s])

    def _use(self, shards: list[int], epoch: int | None) -> None:
        """Record the batch's shards as in use, move the plan on, forget old epochs (locked)."""
        self._in_use[epoch] = set(shards)
        if epoch is None:
            return
        self._need.advance(epoch, shards)
        newest = self._need.epoch
        for old in [e for e in self._in_use if e is not None and e < newest - 1]:
            del self._in_use[old]
        for old in [e for e in self._counted if e < newest - 1]:
            del self._counted[old]
        self._release()

    def _in_hand(self, shards: list[int], epoch: int | None) -> bool:
        """The steady state, without the lock: every shard mapped and counted in the newest
        epoch (so the frontier cannot move), nothing evicted waiting to be released."""
        if epoch is None or epoch != self._need.epoch or self._stale:
            return False
        arrays, counted = self._arrays, self._counted.get(epoch, ())
        for s in shards:
            if arrays[s] is None or s not in counted:
                return False
        self._in_use[epoch] = set(shards)
        self._touch(shards)
        return True

    # ---- counters and life cycle ------------------------------------------------------------
    def counters(self) -> dict[str, int]:
        """Totals of this process: hits, misses, downloads, bytes, nanoseconds, evictions."""
        with self._lock:
            return {**self._counters, "evictions": self._cache.evictions}

    def close(self) -> None:
        """Cancel the downloads not started and let the threads end (using the fetcher again
        starts new ones)."""
        with self._lock:
            for s in [s for s, f in self._futures.items() if f.cancel()]:
                self._futures.pop(s, None)
        self._pool.shutdown()
