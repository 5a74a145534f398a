"""Executors: run :func:`~rrweb_dali.preprocess.task.run_group` over many groups.

Both executors run the *same* task function and yield its results as groups finish, in whatever
order they finish; the outputs do not depend on that order because each group writes only its own
files and the parent merges the records in group order.

``local``
    :class:`~rrweb_dali.parallel.LocalExecutor`, the process pool over the CPUs this process may
    use (``workers=1`` runs the groups in this process), shared with raw mode's cache warming.
``ray``
    Each group is a Ray task (``num_cpus=1``) on ``ray.init(address)``, or on a local Ray started
    for the run. The workers write the shards themselves, so on a multi-node cluster the output
    directory must be on a file system every node sees at the same path. Ray retries a group whose
    worker died; that is safe because a group's writes are atomic and deterministic.

Both keep at most ``2 x workers`` groups in flight, so the parent never holds more than a few
pending tasks and results, whatever the size of the corpus. :func:`run_with_progress` drives
either one and shows the progress bar.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from tqdm import tqdm

from rrweb_dali.extras import require
from rrweb_dali.parallel import LocalExecutor, available_cpus
from rrweb_dali.preprocess.task import GroupResult, GroupTask, run_group

logger = logging.getLogger(__name__)

EXECUTORS = ("local", "ray")


class RayExecutor:
    """Groups as Ray tasks on an existing cluster (``address``) or a local Ray started here."""

    def __init__(self, address: str | None = None, workers: int | None = None):
        self._ray = require("ray", "the ray executor")
        self.address = address
        self.workers = workers

    def map_unordered(self, fn: Callable[[Any], Any], tasks: Iterable[Any]) -> Iterator[Any]:
        ray = self._ray
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
            for t in queue:
                pending.append(remote.remote(t))
                if len(pending) >= in_flight:
                    break
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                result = ray.get(done[0])
                nxt = next(queue, None)
                if nxt is not None:
                    pending.append(remote.remote(nxt))
                yield result
        finally:
            if started_here:
                ray.shutdown()


def make_executor(
    kind: str = "local", workers: int | None = None, ray_address: str | None = None
) -> LocalExecutor | RayExecutor:
    if kind == "local":
        if ray_address:
            raise ValueError("--ray-address needs --executor ray")
        return LocalExecutor(workers)
    if kind == "ray":
        return RayExecutor(ray_address, workers)
    raise ValueError(f"unknown executor {kind!r}; expected one of {EXECUTORS}")


def run_with_progress(
    executor: LocalExecutor | RayExecutor,
    tasks: list[GroupTask],
    group_bytes: dict[int, int],
    progress: bool,
) -> tuple[int, int]:
    """Run ``tasks`` on ``executor``, logging each unexpected per-file error with its traceback
    and showing a progress bar on stderr (bytes, MB/s, ETA; files, tokens/s, errors so far).
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
        for result in executor.map_unordered(run_group, tasks):
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
    return files, tokens
