"""Executors: run :func:`~rrweb_dali.preprocess.task.run_group` over many groups.

Both executors run the *same* task function and yield its results as groups finish, in whatever
order they finish; the outputs do not depend on that order because each group writes only its own
files and the parent merges the records in group order.

``local``
    :class:`~rrweb_dali.parallel.LocalExecutor`, the process pool over the CPUs this process may
    use (``workers=1`` runs the groups in this process), shared with raw mode's cache warming.
    ``memory_limit`` caps each worker's address space.
``ray``
    Each group is a Ray task (``num_cpus=1``) on ``ray.init(address)``, or on a local Ray started
    for the run. The workers write the shards themselves, so on a multi-node cluster the output
    directory must be on a file system every node sees at the same path. Ray retries a group whose
    worker died; that is safe because a group's writes are atomic and deterministic.

When a worker dies for good (a local worker at once; a Ray task after Ray's retries), the group is
recovered by :func:`~rrweb_dali.preprocess.crash.recover_group`: its files are read one by one in
fresh local processes, the one that kills its process is recorded as ``worker_crashed``, and the
run goes on. The local pool keeps one group in flight per worker, Ray at most ``2 x workers``, so
the parent never holds more than a few pending tasks and results, whatever the size of the corpus.
:func:`run_with_progress` drives either one and shows the progress bar.
"""

from __future__ import annotations

import functools
import logging
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from tqdm import tqdm

from rrweb_dali.extras import require
from rrweb_dali.parallel import LocalExecutor, WorkerDied, available_cpus
from rrweb_dali.preprocess.crash import describe_group, recover_group
from rrweb_dali.preprocess.task import GroupResult, GroupTask, run_group

logger = logging.getLogger(__name__)

EXECUTORS = ("local", "ray")


class RayExecutor:
    """Groups as Ray tasks on an existing cluster (``address``) or a local Ray started here."""

    def __init__(self, address: str | None = None, workers: int | None = None):
        self._ray = require("ray", "the ray executor")
        self.address = address
        self.workers = workers
        self.memory_limit: int | None = None  # Ray manages its workers' memory

    def map_unordered(
        self,
        fn: Callable[[Any], Any],
        tasks: Iterable[Any],
        on_death: Callable[[Any, WorkerDied], Any] | None = None,
        describe: Callable[[Any], str] | None = None,
    ) -> Iterator[Any]:
        """Like :meth:`LocalExecutor.map_unordered`: a task whose worker still dies after Ray's
        retries goes to ``on_death`` (or raises :class:`WorkerDied`)."""
        ray = self._ray
        died = (ray.exceptions.WorkerCrashedError, ray.exceptions.OutOfMemoryError)
        started_here = False
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": True}
            if self.address:
                kwargs["address"] = self.address
            else:
                kwargs["num_cpus"] = self.workers or available_cpus()
            ray.init(**kwargs)
            started_here = True
        try:
            cpus = int(ray.cluster_resources().get("CPU", 1))
            in_flight = 2 * max(1, self.workers or cpus)
            remote = ray.remote(num_cpus=1, max_retries=2)(fn)
            queue = iter(tasks)
            pending = []
            task_of: dict[Any, Any] = {}

            def submit(t: Any) -> None:
                ref = remote.remote(t)
                task_of[ref] = t
                pending.append(ref)

            for t in queue:
                submit(t)
                if len(pending) >= in_flight:
                    break
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                task = task_of.pop(done[0])
                try:
                    result = ray.get(done[0])
                except died as exc:
                    how = f"Ray: {type(exc).__name__}"
                    if on_death is None:
                        raise WorkerDied(task, how, describe) from exc
                    result = on_death(task, WorkerDied(task, how, describe))
                nxt = next(queue, None)
                if nxt is not None:
                    submit(nxt)
                yield result
        finally:
            if started_here:
                ray.shutdown()


def make_executor(
    kind: str = "local",
    workers: int | None = None,
    ray_address: str | None = None,
    memory_limit: int | None = None,
) -> LocalExecutor | RayExecutor:
    if kind == "local":
        if ray_address:
            raise ValueError("--ray-address needs --executor ray")
        return LocalExecutor(workers, memory_limit=memory_limit)
    if kind == "ray":
        if memory_limit is not None:
            raise ValueError(
                "--worker-memory needs --executor local (Ray manages its workers' memory itself)"
            )
        return RayExecutor(ray_address, workers)
    raise ValueError(f"unknown executor {kind!r}; expected one of {EXECUTORS}")


def run_with_progress(
    executor: LocalExecutor | RayExecutor,
    tasks: list[GroupTask],
    group_bytes: dict[int, int],
    progress: bool,
    on_record: Callable[[dict], None] | None = None,
) -> tuple[int, int]:
    """Run ``tasks`` on ``executor``, logging each unexpected per-file error with its traceback
    and showing a progress bar on stderr (bytes, MB/s, ETA; files, tokens/s, errors so far). A
    group whose worker dies is recovered (:mod:`~rrweb_dali.preprocess.crash`). ``on_record``
    gets each group's done record as the group finishes (its shards and done record are then on
    disk), in this process: what lets ``preprocess --out s3://`` upload shards during the run.
    Returns (files, tokens) processed."""
    bytes_total = sum(group_bytes.values())
    files_total = sum(len(t.files) for t in tasks)
    files = tokens = errors = 0
    start = time.perf_counter()
    with tqdm(
        total=bytes_total,
        unit="B",
        unit_scale=True,
        desc="preprocess",
        file=sys.stderr,
        disable=not progress,
        dynamic_ncols=True,
        smoothing=0.05,
    ) as bar:
        result: GroupResult
        recover = functools.partial(
            recover_group,
            workers=executor.workers or available_cpus(),
            memory_limit=executor.memory_limit,
        )
        results = executor.map_unordered(
            run_group, tasks, on_death=recover, describe=describe_group
        )
        for result in results:
            rec = result.record
            for tb in result.tracebacks:
                logger.error("unexpected error, recorded in errors.jsonl: %s", tb)
            files += len(rec["files"])
            tokens += rec["counts"]["tokens"]
            errors += rec["counts"]["files_rejected"]
            elapsed = max(time.perf_counter() - start, 1e-9)
            bar.set_postfix_str(
                f"files {files}/{files_total}, {tokens / elapsed / 1e6:.2f}M tok/s, errors {errors}",
                refresh=False,
            )
            bar.update(group_bytes[rec["group"]])
            if on_record is not None:
                on_record(rec)
    return files, tokens
