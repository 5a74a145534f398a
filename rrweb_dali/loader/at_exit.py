"""Close the loaders still open when the interpreter exits.

Why: a loader runs DALI in background daemon threads (the next epoch's first batches are made
while the loop still computes on the last ones). When a script ends without ``loader.close()``,
CPython (3.11 here) ends each daemon thread that tries to take the GIL back after finalization
has begun with ``pthread_exit``. If that thread is inside DALI's C++ ``run()``, the unwinding
meets a ``noexcept`` frame and the whole process aborts ("terminate called without an active
exception", exit status 134) after the script's own work succeeded. Handlers registered with
:mod:`atexit` run before finalization, while those threads still run normally, so closing the
open loaders there stops their threads and pipelines cleanly.

The registry holds loaders weakly: a loader the program dropped is collected (and closed by its
``__del__``) as before.
"""

from __future__ import annotations

import atexit
import logging
import weakref
from typing import Protocol

logger = logging.getLogger(__name__)


class Closeable(Protocol):
    def close(self) -> None: ...


_open: weakref.WeakSet[Closeable] = weakref.WeakSet()


def close_at_exit(obj: Closeable) -> None:
    """Have ``obj.close()`` called at interpreter exit if ``obj`` is still alive then."""
    _open.add(obj)


def _close_open() -> None:
    for obj in list(_open):
        try:
            obj.close()
        except Exception:  # exiting anyway: one failed close must not skip the others
            logger.debug("closing %r at exit failed", obj, exc_info=True)


atexit.register(_close_open)
