"""What the loader hands to its runners and to frameworks: callables that never keep it alive.

A runner's background thread, and a framework holding ``loader.sampler``, must not keep a loader
the program dropped (with its pipelines and worker processes) alive: these hold only what they
need, or the loader weakly.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING

from rrweb_dali.external_source.source import BatchSource

if TYPE_CHECKING:
    from rrweb_dali.loader.loader import Loader


class EpochSampler:
    """``loader.sampler``: what frameworks call ``set_epoch`` on (Lightning does, at each epoch
    start, for any loader with a ``sampler``). Holds the loader weakly."""

    def __init__(self, loader: Loader):
        self._loader = weakref.ref(loader)

    def set_epoch(self, epoch: int) -> None:
        loader = self._loader()
        if loader is not None:
            loader.set_epoch(epoch)


class SourceAt:
    """``(epoch, start) -> BatchSource`` for this loader's rank: what a runner builds from.
    Holds no reference to the loader, so that runners never keep a dropped loader alive."""

    def __init__(self, make_source, paths, plan, transport, rank, world_size, reader):
        self._make_source, self._paths, self._reader = make_source, paths, reader
        self._plan, self._transport, self._rank, self._world = plan, transport, rank, world_size

    def __call__(self, epoch: int, start: int) -> BatchSource:
        return self._make_source(
            self._paths,
            self._plan,
            self._transport,
            self._rank,
            self._world,
            start_epoch=epoch,
            start_consumed=start,
            reader=self._reader,
        )


def weak_call(method: Callable) -> Callable:
    """``method`` of an object held weakly: a no-op once the object is gone."""
    ref = weakref.WeakMethod(method)

    def call(*args):
        bound = ref()
        if bound is not None:
            bound(*args)

    return call
