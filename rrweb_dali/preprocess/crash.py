"""Surviving a worker's death: find the file that killed it, record it, finish its group anyway.

A worker can die without an exception: the kernel's OOM killer sends SIGKILL to the process using
the most memory, native code can crash. Without a way out, such a file would stop the run, and
every rerun would die the same way on the same group. So when the process running a group dies,
:func:`recover_group` (run in the parent, as the pool's ``on_death``) reads the group's files again
*one by one, each in a fresh process* (:class:`~rrweb_dali.parallel.LocalExecutor` with
``tasks_per_worker=1``, as many at once as the run has workers). A file whose process dies too is
the culprit: it is rejected with reason ``worker_crashed`` (its ``errors.jsonl`` line says how the
process ended) and the log names its group and file. The group is then put together in the parent
from the outcomes, in file order, by the same :class:`~.task.GroupBuilder` a worker uses, so the
other files' sessions are exactly what an undisturbed run writes.

When no file kills its process on its own (the group as a whole needed too much memory, or
another process's memory use pushed the worker out), every file is kept and a warning says so.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

from rrweb_dali.parallel import LocalExecutor, WorkerDied
from rrweb_dali.preprocess.task import (
    FileOutcome,
    FileTask,
    GroupResult,
    GroupTask,
    build_group,
    error_line,
    read_file_task,
)

logger = logging.getLogger(__name__)


def describe_group(task: GroupTask) -> str:
    """A group in a message: its number and its first and last files."""
    files = task.files
    if not files:
        return f"group {task.group_id} (no files)"
    span = files[0][0] if len(files) == 1 else f"{files[0][0]} .. {files[-1][0]}"
    return f"group {task.group_id} ({len(files)} files: {span})"


def _crashed(task: GroupTask, file: FileTask, how: str) -> FileOutcome:
    """The outcome of a file whose own fresh process died too: the culprit."""
    logger.error(
        "group %d: reading %s kills its process even alone in a fresh one (%s); recorded in "
        "errors.jsonl as worker_crashed",
        task.group_id,
        file.relpath,
        how,
    )
    size = mtime_ns = 0
    if file.path is not None:
        try:
            st = os.stat(file.path)
            size, mtime_ns = st.st_size, st.st_mtime_ns
        except OSError:
            pass
    detail = (
        "the process reading this file died twice, in its group and alone in a fresh process: "
        f"{how}; a memory limit (the OOM killer, --worker-memory) or a crash in native code"
    )
    line = error_line(file.relpath, "rejected", "worker_crashed", detail, False)
    return FileOutcome(file.relpath, size, mtime_ns, error=line)


def _in_file_order(task: GroupTask, outcomes: Iterator[FileOutcome]) -> Iterator[FileOutcome]:
    """``outcomes`` (in the order they finish) in the group's file order, holding only those
    that arrived early."""
    order = [rel for rel, _ in task.files]
    early: dict[str, FileOutcome] = {}
    nxt = 0
    for outcome in outcomes:
        early[outcome.relpath] = outcome
        while nxt < len(order) and order[nxt] in early:
            yield early.pop(order[nxt])
            nxt += 1


def recover_group(
    task: GroupTask, death: WorkerDied, workers: int = 1, memory_limit: int | None = None
) -> GroupResult:
    """The group of ``task``, whose worker died, from its files read one by one in fresh
    processes (see the module docstring); returns its result like
    :func:`~.task.run_group`."""
    logger.warning(
        "the worker process running %s died: %s. Reading its files one by one in fresh "
        "processes to find the one that kills it",
        describe_group(task),
        death.how,
    )
    files = [FileTask(rel, path, task.options) for rel, path in task.files]
    pool = LocalExecutor(
        workers=max(1, min(workers, len(files))), memory_limit=memory_limit, tasks_per_worker=1
    )
    outcomes = pool.map_unordered(
        read_file_task,
        files,
        on_death=lambda file, d: _crashed(task, file, d.how),
        describe=lambda file: f"{file.relpath} of group {task.group_id}",
    )
    result = build_group(task, _in_file_order(task, outcomes))
    if not result.record["counts"]["workers_crashed"]:
        logger.warning(
            "no file of %s kills a process on its own; all were kept (the group as a whole, or "
            "other processes, took the memory)",
            describe_group(task),
        )
    return result
