"""A script that ends without ``loader.close()`` exits cleanly: the loaders still open are closed
at interpreter exit, before CPython ends the daemon threads that run DALI (ended inside DALI's
C++, one aborted the process with status 134 in 3 of 40 runs). Each case is a real
program in a subprocess; an exit hook registered before the library's (so run after it) lists
the loader threads still alive."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

_PROGRAM = """
import atexit, json, sys, threading
root, out, how = sys.argv[1:]

def threads_left():  # registered first, so it runs after the library's own exit hook
    alive = [t.name for t in threading.enumerate() if t.name.startswith("rrweb-dali-loader")]
    json.dump(alive, open(out, "w"))

atexit.register(threads_left)
from rrweb_dali import make_loader
loader = make_loader(root, batch_size=16, device="cpu", seed=7)
batches = iter(loader)
if how == "mid-epoch":
    next(batches)
else:
    for batch in batches:
        pass
"""


@pytest.mark.parametrize("how", ["whole-epoch", "mid-epoch"])
def test_a_script_that_never_closes_its_loader_exits_cleanly(dataset, tmp_path, how):
    """After a whole epoch the next epoch's thread is already running; mid-epoch the pass's."""
    root, _ = dataset
    out = tmp_path / "threads.json"
    done = subprocess.run(
        [sys.executable, "-c", _PROGRAM, str(root), str(out), how],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(out.read_text()) == []
