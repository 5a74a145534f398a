"""The process pool of :mod:`rrweb_dali.parallel`: results, a task's exception, a worker's death
(a real SIGKILL of the worker process), fresh processes per task, the memory cap, and
``preprocess`` with workers from a script that has no main module to re-run.

The task functions live in this module: the workers import them by module name, with the
parent's ``sys.path``, as they would a library function.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys

import pytest

from rrweb_dali.commands.demo import sample_files
from rrweb_dali.parallel import MIN_MEMORY_LIMIT, LocalExecutor, WorkerDied, death_cause

KILLER = 3  # the task whose worker SIGKILLs itself


def square_or_die(x: int) -> int:
    if x == KILLER:
        os.kill(os.getpid(), signal.SIGKILL)
    if x == 5:
        raise ValueError("five is not allowed")
    return x * x


def pid_of(_: int) -> int:
    return os.getpid()


def address_space_limit(_: int) -> int:
    return resource.getrlimit(resource.RLIMIT_AS)[0]


def allocate(megabytes: int) -> int:
    return len(bytearray(megabytes << 20))


def test_results_of_every_task():
    tasks = [0, 1, 2, 4, 6, 7, 8]
    assert sorted(LocalExecutor(2).map_unordered(square_or_die, tasks)) == sorted(
        x * x for x in tasks
    )


def test_a_dead_worker_raises_naming_the_task_and_signal():
    with pytest.raises(WorkerDied) as info:
        list(LocalExecutor(2).map_unordered(square_or_die, range(5), describe=lambda t: f"#{t}"))
    assert info.value.task == KILLER
    assert "#3" in str(info.value) and "SIGKILL" in str(info.value)


def test_a_dead_worker_goes_to_on_death_and_the_rest_finish():
    deaths = []

    def on_death(task, death):
        deaths.append((task, death.how))
        return -1

    tasks = [0, 1, 2, KILLER, 4, 6, 7]
    results = list(LocalExecutor(2).map_unordered(square_or_die, tasks, on_death=on_death))
    assert sorted(results) == sorted([-1] + [x * x for x in tasks if x != KILLER])
    assert deaths == [(KILLER, death_cause(-signal.SIGKILL))]


def test_a_task_that_raises_stops_the_run_with_its_exception_and_traceback():
    with pytest.raises(ValueError, match="five is not allowed") as info:
        list(LocalExecutor(2).map_unordered(square_or_die, [5, 1, 2]))
    assert "square_or_die" in str(info.value.__cause__)  # the worker's traceback


def test_fresh_process_per_task():
    pids = list(LocalExecutor(2, tasks_per_worker=1).map_unordered(pid_of, range(6)))
    assert len(set(pids)) == 6 and os.getpid() not in pids
    reused = list(LocalExecutor(2).map_unordered(pid_of, range(6)))
    assert len(set(reused)) <= 2


def test_one_worker_runs_in_this_process_unless_a_cap_needs_a_worker():
    assert list(LocalExecutor(1).map_unordered(pid_of, [0])) == [os.getpid()]
    capped = LocalExecutor(1, memory_limit=512 << 20)
    assert list(capped.map_unordered(pid_of, [0])) != [os.getpid()]


def test_memory_limit_caps_each_worker():
    pool = LocalExecutor(2, memory_limit=400 << 20)
    assert set(pool.map_unordered(address_space_limit, range(2))) == {400 << 20}
    with pytest.raises(MemoryError):
        list(pool.map_unordered(allocate, [600]))
    assert list(pool.map_unordered(allocate, [16])) == [16 << 20]
    with pytest.raises(ValueError, match="at least"):
        LocalExecutor(2, memory_limit=MIN_MEMORY_LIMIT - 1)


def test_a_function_of_main_is_refused():
    def local(x):
        return x

    local.__module__ = "__main__"
    with pytest.raises(ValueError, match="importable module"):
        list(LocalExecutor(2).map_unordered(local, [1, 2]))


def test_death_cause_in_words():
    assert "SIGKILL" in death_cause(-9) and "OOM" in death_cause(-9)
    assert death_cause(3) == "exit status 3"


@pytest.mark.parametrize("how", ["stdin", "-c"])
def test_preprocess_with_workers_from_a_script_without_a_main_guard(tmp_path, how):
    """Workers import the task function by module name, never the main module: a script read
    from standard input or given with ``-c`` (no ``__main__`` file to re-run) works."""
    src = tmp_path / "src"
    src.mkdir()
    for sample in sample_files()[:4]:
        (src / sample.name).write_bytes(sample.read_bytes())
    script = (
        "from rrweb_dali.preprocess import PreprocessOptions, preprocess\n"
        f"r = preprocess([{str(src)!r}], {str(tmp_path / 'out')!r}, "
        "PreprocessOptions(group_files=1), workers=2)\n"
        "print(r.groups_run, r.totals['sessions'])\n"
    )
    args = [sys.executable, "-"] if how == "stdin" else [sys.executable, "-c", script]
    done = subprocess.run(
        args,
        input=script if how == "stdin" else None,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["4", "4"]
