"""``preprocess()``: a tree of rrweb files -> ``manifest.json``, ``errors.jsonl`` and token shards.

The steps, and what makes each safe to interrupt:

1. Discover the inputs and extend the persisted plan (``state/plan.json``, written atomically
   before any work): existing groups stay as they are, new files become new groups.
2. Find the finished groups: those with a done record (``state/group-GGGGGG.json``) whose shards
   are on disk with the recorded sizes. Remove everything else a killed run may have left: temporary
   files and shards of unfinished groups.
3. Run the unfinished groups (local process pool or Ray). Each writes its shards, then its done
   record; a kill at any moment loses at most the groups in flight. A group whose worker process
   dies (the OOM killer) is read again file by file in fresh processes (:mod:`.crash`): the file
   that kills its process is rejected as ``worker_crashed`` and the run goes on.
4. Merge the done records in group order into ``errors.jsonl`` and, last, ``manifest.json``.

Outputs hold no timestamps, hostnames, absolute paths or worker counts, so the same inputs and
options give the same bytes, however many workers ran and however often the run was interrupted.
(``state/`` records each input's size and mtime, which is how changed inputs are noticed.)

Every file is named in the outputs (``state/``, ``errors.jsonl``, the shards' file tables, the
manifest) by its *stored name*: :func:`~rrweb_dali.ingest.names.portable_name` of its path
relative to its root. A name that is valid UTF-8 is stored as it is; a name holding other bytes
(``b"bad-\\xff.json"``) is stored escaped (``bad-\\xff.json``), losslessly
(:func:`~rrweb_dali.ingest.names.disk_name` gives the name on disk back), and the file is read
like any other. Reruns match files by their stored names.

``errors.jsonl`` has one line per file that was not kept whole and as is::

    {"path": "sub/dir/file.json",   # the stored name, like the shards' file tables
     "status": "rejected" | "salvaged" | "skipped" | "noted",
     "reason": "<a SessionError reason>" | null,
     "detail": "<human text>",
     "salvaged": true | false,
     # on the lines of files that loaded (salvaged, skipped, noted), what reading them noted:
     "parts_skipped": {"<kind>": n, ...}, "missing_timestamps": n, "flags": ["<flag>", ...],
     "malformed_parts": n, "unknown_parts": n}

``rejected``: nothing of the file is in the shards (``reason`` says why; ``worker_crashed`` for a
file whose process died even when it was read alone, see :mod:`.crash`). ``salvaged``: the file
was cut short and the reader recovered the complete events before the cut; its session *is* in
the shards (``reason`` is ``truncated``, ``detail`` starts with ``salvaged``). ``skipped``: the file
read fine but ``--overflow skip`` dropped its session (``reason`` ``too_large``; ``salvaged`` tells
whether it had been salvaged too). ``noted``: the session is in the shards, but the reader skipped
parts of it (``parts_skipped``, by kind; :attr:`~rrweb_dali.ingest.ReadReport.skipped`), kept
events without a timestamp, flagged the recording (``flags``, from
:data:`~rrweb_dali.ingest.SESSION_FLAGS`), or the tokenizer wrote MALFORMED or unknown
tokens for parts it could not read (:meth:`~rrweb_dali.tokenizer.Tokenizer.fault_counts`);
``reason`` is null. So the lines with each status count exactly the manifest's
``files_rejected``, ``salvaged``, ``skipped_overflow`` and ``files_noted``, and the manifest states
the accounting ``files_read = sessions + files_rejected + skipped_overflow``. Its totals also sum
the notes over every file that loaded: ``parts_skipped``, ``missing_timestamps``,
``malformed_parts``, ``unknown_parts`` and ``flags`` (sessions per flag).

Output-side failures (a full disk, a read-only mount) stop the run with an ``OSError`` naming the
file being written; nothing is published half-written (shards, done records, ``errors.jsonl`` and
the manifest all appear under their final names only when complete), and the same command run
again resumes.

Workers are plain child processes that import the task function by module name (see
:mod:`rrweb_dali.parallel`), so :func:`preprocess` works from any script, ``python -c`` or a
notebook, with no ``if __name__ == "__main__":`` guard; ``worker_memory`` caps each one.

A file that was already preprocessed and has changed since (other size or mtime) is *not* read
again: its shards keep the version read first, a warning is logged and the manifest lists it under
``stale_inputs`` (and counts it in ``totals.inputs_changed``). Re-reading it would mean either
rewriting an old group's shards or holding two versions of one file; to take the new version,
preprocess into a new directory. Files that disappeared are reported the same way
(``inputs_missing``); their sessions stay in the dataset.

An ``out`` that is an object-store URL (``s3://bucket/prefix``) is preprocessed into a local
staging directory by this same function and uploaded shard by shard, the manifest last:
:mod:`rrweb_dali.preprocess.publish`, fed by ``on_shard``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rrweb_dali.ingest import ReadLimits
from rrweb_dali.ingest.discover import STATE_DIR, InputFile, discover
from rrweb_dali.ingest.names import portable_name
from rrweb_dali.preprocess.executor import make_executor, run_with_progress
from rrweb_dali.preprocess.plan import (
    Plan,
    done_record_path,
    exclusive,
    extend_plan,
    read_plan,
    remove_leftovers,
    scan_finished,
    write_plan,
)
from rrweb_dali.preprocess.task import COUNTERS, GroupTask, TaskOptions, token_dtype
from rrweb_dali.shards.format import ShardInfo
from rrweb_dali.shards.manifest import (
    ERRORS_NAME,
    SHARDS_DIR,
    Manifest,
    name_os_error,
    write_manifest,
)
from rrweb_dali.store.location import is_remote
from rrweb_dali.tokenizer import Tokenizer
from rrweb_dali.tokenizer.windows import POLICIES

if TYPE_CHECKING:
    from rrweb_dali.store.options import RetryPolicy

logger = logging.getLogger(__name__)

STALE_LISTED = 100  # stale inputs named in the manifest; all are counted
ACCOUNTING = "files_read = sessions + files_rejected + skipped_overflow"
ERRORS_SCHEMA = (
    'one JSON object per line: {"path": stored name, "status": "rejected" (nothing kept) | '
    '"salvaged" (kept, partly recovered) | "skipped" (read, dropped by --overflow skip) | '
    '"noted" (kept, with parts lost or flagged), "reason": SessionError reason or null, '
    '"detail": text, "salvaged": bool; lines of files that loaded add "parts_skipped": '
    '{kind: n}, "missing_timestamps", "flags", "malformed_parts", "unknown_parts"}; in group order'
)


@dataclass(frozen=True)
class PreprocessOptions:
    """The options that decide the output bytes; ``None`` limits take the library defaults."""

    max_tokens: int = 65536
    overflow: str = "split"
    shard_tokens: int = 1 << 26
    group_files: int = 64
    group_bytes: int = 8 << 20
    max_bytes: int | None = None
    max_depth: int | None = None
    max_events: int | None = None
    max_memory: int | None = None
    max_text_bytes: int | None = None
    require_timestamps: bool = False
    require_full_snapshot: bool = False

    def limits(self) -> ReadLimits:
        given = {
            "max_bytes": self.max_bytes,
            "max_depth": self.max_depth,
            "max_events": self.max_events,
            "max_memory": self.max_memory,
        }
        return ReadLimits(
            **{k: v for k, v in given.items() if v is not None},
            require_timestamps=self.require_timestamps,
            require_full_snapshot=self.require_full_snapshot,
        )

    def tokenizer(self) -> Tokenizer:
        if self.max_text_bytes is None:
            return Tokenizer()
        return Tokenizer(max_text_bytes=self.max_text_bytes)

    def validate(self) -> None:
        if self.overflow not in POLICIES:
            raise ValueError(f"overflow must be one of {POLICIES}, got {self.overflow!r}")
        for name in ("max_tokens", "shard_tokens", "group_files", "group_bytes"):
            if getattr(self, name) < (2 if name == "max_tokens" else 1):
                raise ValueError(f"{name} is too small: {getattr(self, name)}")


@dataclass
class PreprocessResult:
    """What a run did (for the CLI's summary); the dataset itself is described by ``manifest``.

    For an object-store run, ``store_url`` is the dataset's URL, ``uploaded_bytes`` what this run
    uploaded, and ``out`` the local staging directory (removed after success unless one was
    given)."""

    out: Path
    manifest: Manifest
    groups_total: int
    groups_run: int
    groups_reused: int
    files_run: int
    bytes_run: int
    tokens_run: int
    seconds: float
    stale_inputs: dict = field(default_factory=dict)
    store_url: str | None = None
    uploaded_bytes: int = 0

    @property
    def totals(self) -> dict:
        return self.manifest.totals


def _write_errors_and_totals(out: Path, plan: Plan) -> tuple[dict, list[ShardInfo]]:
    """Stream every done record, in group order, into errors.jsonl; sum the totals."""
    totals = dict.fromkeys(COUNTERS, 0)
    reasons: Counter[str] = Counter()
    flags: Counter[str] = Counter()
    shards: list[ShardInfo] = []
    lines = 0
    tmp = out / f"{ERRORS_NAME}.tmp"
    try:
        with open(tmp, "wb") as fh:
            for g in plan.groups:
                record = json.loads(done_record_path(out, g.group_id).read_bytes())
                for k in COUNTERS:
                    totals[k] += record["counts"].get(k, 0)
                reasons.update(record["rejected_by_reason"])
                flags.update(record.get("flags", {}))
                shards.extend(ShardInfo.from_json(s) for s in record["shards"])
                for e in record["errors"]:
                    fh.write(json.dumps(e, sort_keys=True, ensure_ascii=False).encode() + b"\n")
                    lines += 1
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, out / ERRORS_NAME)
    except OSError as exc:
        raise name_os_error(exc, tmp) from None
    totals["rejected_by_reason"] = dict(sorted(reasons.items()))
    totals["flags"] = dict(sorted(flags.items()))
    totals["error_lines"] = lines
    totals["groups"] = len(plan.groups)
    totals["shards"] = len(shards)
    return totals, shards


def _shards_of(out: Path, group_ids: list[int]) -> list[ShardInfo]:
    """The shards of finished groups, from their done records."""
    shards: list[ShardInfo] = []
    for gid in group_ids:
        record = json.loads(done_record_path(out, gid).read_bytes())
        shards.extend(ShardInfo.from_json(s) for s in record["shards"])
    return shards


def _each_shard(record: dict, on_shard: Callable[[ShardInfo], None]) -> None:
    for s in record["shards"]:
        on_shard(ShardInfo.from_json(s))


def _stored_names(files: list[InputFile]) -> dict[str, InputFile]:
    """The inputs by stored name (:func:`~rrweb_dali.ingest.names.portable_name`), each with its
    ``relpath`` replaced by that name: everything after discovery knows a file by it, and only
    ``path`` (never written) is what this machine opens."""
    found: dict[str, InputFile] = {}
    for f in files:
        stored = portable_name(f.relpath)
        found[stored] = f if stored == f.relpath else dataclasses.replace(f, relpath=stored)
    return found


def check_output_dir(out: Path) -> None:
    """``out`` must be new, empty or a dataset (its ``state/`` folder, made first, marks one even
    before the first group ends): the run never writes its files among a user's own."""
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(20, "the output exists and is not a directory", str(out))
    if not out.is_dir() or (out / STATE_DIR).is_dir():
        return
    entries = sorted(e.name for e in out.iterdir())
    if entries:
        shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
        raise ValueError(
            f"output {out} is a non-empty directory that is not a dataset ({shown}); "
            "give a new or empty directory"
        )


def preprocess(
    sources: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    options: PreprocessOptions | None = None,
    *,
    workers: int | None = None,
    executor: str = "local",
    ray_address: str | None = None,
    progress: bool = False,
    worker_memory: int | None = None,
    on_shard: Callable[[ShardInfo], None] | None = None,
    staging: str | os.PathLike | None = None,
    storage_options: dict[str, Any] | None = None,
    retry: RetryPolicy | None = None,
) -> PreprocessResult:
    """Preprocess ``sources`` into the dataset directory ``out`` (created, resumed or extended).

    ``workers`` (default: every CPU this process may use), ``executor`` and ``ray_address`` only
    change how fast it goes, never the output bytes. ``worker_memory`` (bytes, local executor)
    caps each worker's address space: a file that needs more is rejected (``too_large`` on a
    ``MemoryError``, or ``worker_crashed``) instead of the machine running out of memory; it runs
    every group in a worker process, even with ``workers=1``. Raises
    :class:`~.plan.PlanMismatch` when ``out`` was made with other options.

    ``on_shard(info)`` is called in this process once for every shard of the finished dataset,
    each as soon as it is complete on disk: first those of the groups an earlier run finished,
    then each new group's as that group ends (before ``errors.jsonl`` and the manifest are
    written). An exception it raises stops the run (the finished groups are kept).

    ``out`` may be ``s3://bucket/prefix``: see :func:`rrweb_dali.preprocess.publish.publish` for
    ``staging``, ``storage_options`` and ``retry``, which only apply then.
    """
    if is_remote(out):
        from rrweb_dali.preprocess.publish import publish  # which runs this function locally

        return publish(
            sources,
            str(out),
            options,
            staging=staging,
            storage_options=storage_options,
            retry=retry,
            workers=workers,
            executor=executor,
            ray_address=ray_address,
            progress=progress,
            worker_memory=worker_memory,
        )
    if staging is not None or storage_options is not None or retry is not None:
        raise ValueError(
            "staging, storage_options and retry apply to an object-store out (s3://...) only, "
            f"not to {out}"
        )
    options = options or PreprocessOptions()
    options.validate()
    started = time.perf_counter()
    out = Path(out)
    found = _stored_names(discover(sources, exclude=[out]))
    check_output_dir(out)
    if not found:
        logger.warning("no input files found in %s", ", ".join(map(str, sources)))
    (out / STATE_DIR).mkdir(parents=True, exist_ok=True)
    (out / SHARDS_DIR).mkdir(exist_ok=True)
    with exclusive(out):
        tok = options.tokenizer()
        limits = options.limits()
        manifest_options = {
            "max_tokens": options.max_tokens,
            "overflow": options.overflow,
            "shard_tokens": options.shard_tokens,
            "group_files": options.group_files,
            "group_bytes": options.group_bytes,
            "max_bytes": limits.max_bytes,
            "max_depth": limits.max_depth,
            "max_events": limits.max_events,
            "max_memory": limits.max_memory,
            "require_timestamps": limits.require_timestamps,
            "require_full_snapshot": limits.require_full_snapshot,
        }
        plan_options = {**manifest_options, "tokenizer": tok.config()}
        previous = read_plan(out)
        plan, new_groups = extend_plan(
            previous, list(found.values()), plan_options, options.group_files, options.group_bytes
        )
        if previous is None or new_groups:
            write_plan(out, plan)
        finished, stale = scan_finished(out, plan, found)
        remove_leftovers(out, finished)
        if on_shard is not None:
            for info in _shards_of(out, sorted(finished)):
                on_shard(info)
        task_options = TaskOptions(
            options.max_tokens,
            options.overflow,
            options.shard_tokens,
            limits,
            tok.max_text_bytes,
        )
        pending = [g for g in plan.groups if g.group_id not in finished]
        tasks = [
            GroupTask(
                str(out),
                g.group_id,
                tuple(
                    (f.relpath, found[f.relpath].path if f.relpath in found else None)
                    for f in g.files
                ),
                task_options,
            )
            for g in pending
        ]
        logger.info(
            "%d groups: %d finished before, %d to run (%d new)",
            len(plan.groups),
            len(finished),
            len(pending),
            len(new_groups),
        )
        group_bytes = {g.group_id: g.bytes for g in pending}
        runner = make_executor(executor, workers, ray_address, worker_memory)
        files_run, tokens_run = run_with_progress(
            runner,
            tasks,
            group_bytes,
            progress,
            None if on_shard is None else lambda rec: _each_shard(rec, on_shard),
        )
        totals, shards = _write_errors_and_totals(out, plan)
        totals["inputs_changed"] = len(stale["changed"])
        totals["inputs_missing"] = len(stale["missing"])
        extra = {
            "accounting": {
                "equation": ACCOUNTING,
                "holds": totals["files_read"]
                == totals["sessions"] + totals["files_rejected"] + totals["skipped_overflow"],
            },
            "errors": {"file": ERRORS_NAME, "schema": ERRORS_SCHEMA},
            "stale_inputs": {k: v[:STALE_LISTED] for k, v in stale.items()},
        }
        if not extra["accounting"]["holds"]:
            logger.error("file accounting does not add up: %s (a bug)", ACCOUNTING)
        manifest = Manifest(
            tokenizer=tok.config(),
            dtype=token_dtype(tok).name,
            shards=shards,
            totals=totals,
            options=manifest_options | {"max_text_bytes": tok.max_text_bytes},
            extra=extra,
        )
        write_manifest(out, manifest)
    return PreprocessResult(
        out=out,
        manifest=manifest,
        groups_total=len(plan.groups),
        groups_run=len(pending),
        groups_reused=len(finished),
        files_run=files_run,
        bytes_run=sum(group_bytes.values()),
        tokens_run=tokens_run,
        seconds=time.perf_counter() - started,
        stale_inputs=stale,
    )


__all__ = ["PreprocessOptions", "PreprocessResult", "preprocess"]
