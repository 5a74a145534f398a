"""DALI's worker processes (``parallel=True``) and the programs they start from: workers end with
a killed training process, leaving no shared memory; a program read from standard input falls
back to the source in-process. Each case runs a real training process in a subprocess."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rrweb_dali.synth import write_synth_corpus

psutil = pytest.importorskip("psutil")

N_FILES = 8


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    write_synth_corpus(root, N_FILES, seed=3, workers=1)
    return root


_TRAINING = """
import sys, time
from rrweb_dali.loader import make_loader
loader = make_loader(raw=sys.argv[1], cache_dir=sys.argv[2], batch_size=2, device="cpu",
                     py_workers=2, max_tokens=2000)
assert loader.pipeline.parallel
batches = iter(loader)
next(batches)
print("ready", flush=True)
time.sleep(600)
"""


def _semaphores(proc) -> set[str]:
    """The named POSIX semaphores a process has mapped (multiprocessing's ``/dev/shm/sem.mp-*``)."""
    return {m.path for m in proc.memory_maps() if os.path.basename(m.path).startswith("sem.")}


def _wait_gone(paths: set[str], deadline: float) -> set[str]:
    while time.monotonic() < deadline:
        left = {p for p in paths if os.path.exists(p)}
        if not left:
            return left
        time.sleep(0.1)
    return {p for p in paths if os.path.exists(p)}


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /dev/shm and /proc")
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_workers_end_with_a_killed_training_process(corpus, tmp_path, sig):
    proc = subprocess.Popen(
        [sys.executable, "-c", _TRAINING, str(corpus), str(tmp_path / "cache")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
    )
    children = []
    try:
        line = proc.stdout.readline()
        assert line.strip() == b"ready", proc.stderr.read().decode()[-3000:]
        parent = psutil.Process(proc.pid)
        children = parent.children(recursive=True)
        workers = [c for c in children if "spawn_main" in " ".join(c.cmdline())]
        assert len(workers) == 2, [c.cmdline() for c in children]
        semaphores = _semaphores(parent)
        assert semaphores, "DALI's queues use named semaphores: some must be mapped"
        proc.send_signal(sig)
        assert proc.wait(30) == -sig
        # Bounded waits, not speed assertions: the workers exit at once (their parent's pipe
        # closes), then multiprocessing's resource tracker unlinks the semaphores and exits.
        _, alive = psutil.wait_procs(children, timeout=30)
        assert not alive, [(c.pid, c.cmdline()) for c in alive]
        assert _wait_gone(semaphores, time.monotonic() + 30) == set()
    finally:
        proc.kill()
        proc.wait()
        for c in children:  # never leave a process behind, even when the test fails
            with contextlib.suppress(psutil.NoSuchProcess):
                c.kill()


_ONE_PASS = """
import json, logging, os, sys
logging.basicConfig(level=logging.WARNING)
from rrweb_dali.loader import make_loader
out = {}
for name, kw in (("padded", {}), ("packing", {"packing": 512, "cache_dir": sys.argv[2]})):
    loader = make_loader(raw=sys.argv[1], batch_size=2, device="cpu", py_workers=2,
                         max_tokens=2000, shuffle=False, **kw)
    index = [i for b in loader for i in b["index"].tolist()]
    out[name] = {"parallel": loader.pipeline.parallel, "index": index}
    loader.close()
print(json.dumps(out))
"""


def _run(args: list[str], tmp_path: Path, stdin: str | None = None):
    return subprocess.run(
        [sys.executable, *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=tmp_path,  # where a "<stdin>" file would be looked for: none there
        timeout=300,
    )


def _check_pass(result, parallel: bool) -> str:
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["padded"]["parallel"] is parallel and out["packing"]["parallel"] is parallel
    assert sorted(out["padded"]["index"]) == list(range(N_FILES))
    packed = {i for i in out["packing"]["index"] if i >= 0}
    assert packed == set(range(N_FILES))
    return result.stderr


@pytest.mark.slow
def test_a_program_on_standard_input_runs_the_source_in_process(corpus, tmp_path):
    """``python - < train.py``: spawned workers would try to run ``<stdin>`` again and die."""
    stderr = _check_pass(_run(["-", str(corpus), str(tmp_path / "c")], tmp_path, _ONE_PASS), False)
    assert "parallel workers cannot start from this program" in stderr
    assert "<stdin>" in stderr and "Workers initialization failed" not in stderr


@pytest.mark.slow
def test_a_program_given_with_c_uses_worker_processes(corpus, tmp_path):
    """``python -c``: no ``__main__`` file to run again, so the workers start as usual."""
    stderr = _check_pass(_run(["-c", _ONE_PASS, str(corpus), str(tmp_path / "c")], tmp_path), True)
    assert "cannot start" not in stderr


def test_spawn_blocker_follows_what_spawn_would_run(monkeypatch, tmp_path):
    import types

    from rrweb_dali.loader.workers import spawn_blocker

    script = tmp_path / "train.py"
    script.write_text("")
    for attrs, blocked in [
        ({"__file__": str(script)}, False),  # python train.py
        ({}, False),  # python -c, a REPL, a notebook kernel
        ({"__file__": "<stdin>"}, True),  # python - < train.py
        ({"__file__": str(tmp_path / "deleted.py")}, True),
    ]:
        main = types.ModuleType("__main__")
        main.__spec__ = None
        main.__dict__.update(attrs)
        monkeypatch.setitem(sys.modules, "__main__", main)
        assert (spawn_blocker() is not None) is blocked, attrs
    fifo = tmp_path / "pipe.py"  # python <(cat train.py): a pipe, not a file to run again
    os.mkfifo(fifo)
    main = types.ModuleType("__main__")
    main.__spec__, main.__file__ = None, str(fifo)
    monkeypatch.setitem(sys.modules, "__main__", main)
    assert "pipe.py" in spawn_blocker()


def test_a_source_unpickled_outside_a_worker_starts_no_watchdog(tmp_path):
    """Only a process spawned by the one that pickled the source may be ended with it: a copy in
    the same process, or a pickle loaded by an unrelated process, is left alone."""
    import pickle
    import threading

    from rrweb_dali.external_source import BatchSource, PlanOptions
    from rrweb_dali.external_source.lifetime import exit_with_parent

    source = BatchSource([str(tmp_path)], PlanOptions(batch_size=2))
    pickle.loads(pickle.dumps(source))
    assert not [t for t in threading.enumerate() if t.name == "rrweb-dali-parent-watch"]
    assert exit_with_parent(os.getpid()) is False
    assert exit_with_parent(os.getppid()) is False  # our parent, but not a multiprocessing one
