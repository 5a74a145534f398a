"""Whether spawned worker processes can start from this program at all.

DALI's parallel ``external_source`` starts its workers with ``multiprocessing``'s ``spawn``
method, and a spawned child first re-creates the parent's ``__main__``: by importing it by name
(``python -m pkg``), by running its file again (``python train.py``, under ``__name__ ==
"__mp_main__"``), or not at all when it has no file (``python -c``, an interactive interpreter, a
notebook kernel; the source and everything it needs are importable library classes, so nothing
of ``__main__`` is needed). A program read from standard input (``python - < train.py``) or from
a pipe (``python <(cat train.py)``) names a file that is not there to run again, and every worker
dies at start ("Workers initialization failed"). (Raw packing's cache warming runs on
:mod:`rrweb_dali.parallel`, whose workers import only the task's module: it is not affected.)

:func:`spawn_blocker` finds that case by asking ``multiprocessing.spawn`` what it would hand a
child, so it follows the interpreter's own rules rather than a copy of them.
"""

from __future__ import annotations

import logging
import multiprocessing.spawn
import os
import stat

logger = logging.getLogger(__name__)


def spawn_blocker() -> str | None:
    """Why a spawned worker could not start from this program (the ``__main__`` file it would
    try to run), or None when it can."""
    try:
        data = multiprocessing.spawn.get_preparation_data("rrweb-dali-check")
    except Exception as exc:  # an interpreter whose spawn differs: let DALI try
        logger.debug("cannot tell whether spawned workers start: %s", exc)
        return None
    path = data.get("init_main_from_path")
    if path is None:
        return None
    try:
        if stat.S_ISREG(os.stat(path).st_mode):
            return None
    except OSError:
        pass
    return f"__main__ is {path!r}, which a spawned worker cannot run again"
