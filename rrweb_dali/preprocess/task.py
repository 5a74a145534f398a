"""One group, start to finish: read -> tokenize -> overflow policy -> shards -> done record.

:func:`run_group` is the only function a worker runs, in a local process pool or as a Ray task,
so both executors produce the same bytes. It streams: one file's events and tokens are in memory
at a time (:func:`read_file`), tokens go straight to the :class:`~rrweb_dali.shards.ShardWriter`
(:class:`GroupBuilder`), and what comes back to the parent is a small record (counts, shard infos,
the group's error lines), never tokens.

Bad files never stop a group. A :class:`~rrweb_dali.errors.SessionError` is recorded with its
reason. Any *other* exception raised while reading or tokenizing one file is a bug or an input shape
nobody foresaw; it is recorded too, under the closest existing reason
(:func:`~rrweb_dali.errors.classify_unexpected`, whose table is in :mod:`rrweb_dali.errors`).
Such a line's ``detail`` starts with ``"unexpected <ExceptionType>"`` and the traceback travels
back in :attr:`GroupResult.tracebacks` for the parent to log. A file that kills its worker outright
(the OOM killer, a crash in native code) is found by :mod:`.crash` and recorded as
``worker_crashed``. Failures that are not about one file (the output disk is full) do stop the
group, and with it the run; the groups finished before stay finished and a rerun resumes.

The done record (``state/group-GGGGGG.json``) is written atomically *after* the group's shards are
renamed into place, so its presence proves the group's shards are complete.
"""

from __future__ import annotations

import functools
import os
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rrweb_dali.errors import SessionError, classify_unexpected
from rrweb_dali.ingest import ReadLimits, ReadReport, load_session
from rrweb_dali.preprocess.notes import any_notes, file_notes, notes_text
from rrweb_dali.preprocess.plan import done_record_path, shard_name
from rrweb_dali.shards.format import DType, ShardInfo, ShardWriter
from rrweb_dali.shards.manifest import SHARDS_DIR, name_os_error, write_json_atomic
from rrweb_dali.tokenizer import Tokenizer
from rrweb_dali.tokenizer.windows import SKIPPED, SPLIT, TRUNCATED, apply_overflow

#: the counters of a done record, summed into the manifest's totals
COUNTERS = (
    "files_read",
    "files_rejected",
    "skipped_overflow",
    "sessions",
    "salvaged",
    "truncated",
    "split",
    "windows",
    "tokens",
    "tokens_dropped_overflow",
    "bytes_in",
    "bytes_decoded",
    "events",
    "duplicates_dropped",
    "reordered",
    "parts_skipped",
    "missing_timestamps",
    "malformed_parts",
    "unknown_parts",
    "files_noted",
    "workers_crashed",
    "unexpected_errors",
)


@dataclass(frozen=True)
class TaskOptions:
    """Everything that decides the bytes a group writes (and nothing that does not)."""

    max_tokens: int
    overflow: str
    shard_tokens: int
    limits: ReadLimits
    max_text_bytes: int


@dataclass(frozen=True)
class GroupTask:
    """One unit of work: ``files`` are ``(relpath, path to read or None if it is gone)``.

    ``relpath`` is the file's stored name (:func:`~rrweb_dali.ingest.names.portable_name` of its
    path relative to its root: valid Unicode whatever bytes the name holds), the only name that
    is written anywhere; ``path`` is where this machine reads it and is never written.
    """

    out_dir: str
    group_id: int
    files: tuple[tuple[str, str | None], ...]
    options: TaskOptions


@dataclass
class GroupResult:
    record: dict
    tracebacks: list[str] = field(default_factory=list)


@dataclass
class FileOutcome:
    """What reading and tokenizing one file gave: its tokens and report, or its error line.

    :func:`read_file` makes one in the worker that runs the group; after a worker's death the
    files are read again one by one in fresh processes (:mod:`.crash`), and the group is put
    together from their outcomes by the same :class:`GroupBuilder`, so a group's bytes do not
    depend on where its files were read.
    """

    relpath: str
    size: int = 0
    mtime_ns: int = 0
    tokens: np.ndarray | None = None
    report: ReadReport | None = None
    faults: dict[str, int] = field(default_factory=dict)
    error: dict | None = None  # the errors.jsonl line of a rejected file
    unexpected: str | None = None  # the traceback of an unexpected exception


@dataclass(frozen=True)
class FileTask:
    """One file of a group, to read on its own (the retry after a worker died)."""

    relpath: str
    path: str | None
    options: TaskOptions


@functools.lru_cache(maxsize=4)
def _tokenizer(max_text_bytes: int | None) -> Tokenizer:
    """One tokenizer per worker process and configuration (tasks reuse it; it holds no state)."""
    return Tokenizer() if max_text_bytes is None else Tokenizer(max_text_bytes=max_text_bytes)


def token_dtype(tok: Tokenizer) -> DType:
    """The narrowest shard dtype that holds every token id of ``tok``."""
    return DType.of(np.uint16 if tok.vocab_size <= 1 << 16 else np.uint32)


def error_line(relpath: str, status: str, reason: str | None, detail: str, salvaged: bool) -> dict:
    """A line of ``errors.jsonl`` (the schema is in :mod:`rrweb_dali.preprocess.run`)."""
    return {
        "path": relpath,
        "status": status,
        "reason": reason,
        "detail": detail,
        "salvaged": salvaged,
    }


def _stat(path: str | None) -> tuple[int, int]:
    """Size and mtime of an input, or the io_error of one that vanished since discovery."""
    if path is None:
        raise SessionError("io_error", "the file is no longer in the sources")
    try:
        st = os.stat(path)
    except OSError as exc:
        raise SessionError("io_error", f"cannot stat the file: {exc.strerror}") from None
    return st.st_size, st.st_mtime_ns


def _relative(detail: str, path: str | None, relpath: str) -> str:
    """``detail`` with this machine's path of the file replaced by its stored name (outputs never
    hold absolute paths, whatever an exception message quotes), as valid Unicode text (a message
    may quote a name's undecodable bytes, which JSON cannot hold: they become ``\\udcNN``)."""
    if path:
        for form in sorted({os.path.abspath(path), path}, key=len, reverse=True):
            detail = detail.replace(form, relpath)
    return detail.encode("utf-8", "backslashreplace").decode("utf-8")


def read_file(relpath: str, path: str | None, opts: TaskOptions) -> FileOutcome:
    """Read and tokenize one file; every per-file failure becomes the outcome's error line."""
    tok = _tokenizer(opts.max_text_bytes)
    out = FileOutcome(relpath)
    try:
        out.size, out.mtime_ns = _stat(path)
        session = load_session(path, opts.limits)  # type: ignore[arg-type] - _stat checked it
        out.tokens = tok.encode(session.events)
        out.report = session.report
        del session
        out.faults = tok.fault_counts(out.tokens)
    except SessionError as exc:
        detail = _relative(exc.detail, path, relpath)
        out.error = error_line(relpath, "rejected", exc.reason, detail, False)
        out.tokens = out.report = None
    except Exception as exc:  # one bad file must never stop the run: see module docstring
        reason = classify_unexpected(exc)
        detail = _relative(f"unexpected {type(exc).__name__}: {exc}"[:500], path, relpath)
        out.error = error_line(relpath, "rejected", reason, detail, False)
        out.unexpected = f"{relpath}:\n{traceback.format_exc()}"
        out.tokens = out.report = None
    return out


def read_file_task(task: FileTask) -> FileOutcome:
    """:func:`read_file` as a pool task."""
    return read_file(task.relpath, task.path, task.options)


class _Shards:
    """The group's shard writers: a new part whenever the next window would pass ``shard_tokens``.

    An ``OSError`` that names no file (a ``write`` on a full disk: ENOSPC, EFBIG) is raised again
    naming the shard being written, so the run's one-line error says where."""

    def __init__(self, directory: Path, group_id: int, shard_tokens: int, dtype):
        self.directory, self.group_id, self.shard_tokens, self.dtype = (
            directory,
            group_id,
            shard_tokens,
            dtype,
        )
        self.writer: ShardWriter | None = None
        self.infos: list[ShardInfo] = []

    def _named(self, exc: OSError) -> OSError:
        name = self.writer.name if self.writer else shard_name(self.group_id, len(self.infos))
        return name_os_error(exc, self.directory / name)

    def add(self, relpath: str, tokens, window: int) -> None:
        try:
            w = self.writer
            if w is not None and w.sessions and w.tokens + len(tokens) > self.shard_tokens:
                self.infos.append(w.close())
                w = self.writer = None
            if w is None:
                name = shard_name(self.group_id, len(self.infos))
                w = self.writer = ShardWriter(self.directory, name, self.dtype)
            w.add(tokens, w.add_file(relpath), window)
        except OSError as exc:
            raise self._named(exc) from None

    def close(self) -> list[ShardInfo]:
        try:
            if self.writer is not None:
                self.infos.append(self.writer.close())
                self.writer = None
        except OSError as exc:
            raise self._named(exc) from None
        return self.infos

    def abort(self) -> None:
        """Drop the shard being written; never raises over the error that caused the abort.

        On a full disk, closing the file fails again (its buffered bytes cannot be written), but
        the file is closed then, so a second abort removes it."""
        writer, self.writer = self.writer, None
        if writer is None:
            return
        for _ in range(2):
            try:
                writer.abort()
                return
            except OSError:
                continue


class GroupBuilder:
    """Puts one group together from its files' outcomes, in file order: counts, error lines,
    overflow policy, shards, and last the done record."""

    def __init__(self, task: GroupTask):
        self.task = task
        opts = task.options
        dtype = token_dtype(_tokenizer(opts.max_text_bytes)).numpy
        out = Path(task.out_dir)
        self.counts = dict.fromkeys(COUNTERS, 0)
        self.reasons: dict[str, int] = {}
        self.flags: dict[str, int] = {}
        self.errors: list[dict] = []
        self.files: list[list] = []
        self.tracebacks: list[str] = []
        self.shards = _Shards(out / SHARDS_DIR, task.group_id, opts.shard_tokens, dtype)

    def add(self, outcome: FileOutcome) -> None:
        opts, counts = self.task.options, self.counts
        relpath = outcome.relpath
        counts["files_read"] += 1
        self.files.append([relpath, outcome.size, outcome.mtime_ns])
        if outcome.error is not None:
            self.errors.append(outcome.error)
            reason = outcome.error["reason"]
            self.reasons[reason] = self.reasons.get(reason, 0) + 1
            counts["files_rejected"] += 1
            counts["unexpected_errors"] += outcome.unexpected is not None
            counts["workers_crashed"] += reason == "worker_crashed"
            if outcome.unexpected:
                self.tracebacks.append(outcome.unexpected)
            return
        tokens, report = outcome.tokens, outcome.report
        assert tokens is not None and report is not None
        counts["bytes_in"] += report.bytes_in
        counts["bytes_decoded"] += report.bytes_decoded
        counts["events"] += report.events
        counts["duplicates_dropped"] += report.duplicates_dropped
        counts["reordered"] += int(bool(report.reordered))
        notes = file_notes(report, outcome.faults)
        counts["parts_skipped"] += sum(notes["parts_skipped"].values())
        counts["missing_timestamps"] += notes["missing_timestamps"]
        counts["malformed_parts"] += notes["malformed_parts"]
        counts["unknown_parts"] += notes["unknown_parts"]
        for flag in notes["flags"]:
            self.flags[flag] = self.flags.get(flag, 0) + 1
        noted = notes_text(notes)
        ov = apply_overflow(tokens, opts.max_tokens, opts.overflow)
        counts["tokens_dropped_overflow"] += ov.dropped_tokens
        salvage_note = f"salvaged: {report.salvage_detail}" if report.salvaged else ""
        if ov.outcome == SKIPPED:
            counts["skipped_overflow"] += 1
            detail = (
                f"{len(tokens)} tokens > --max-tokens {opts.max_tokens}; skipped (--overflow skip)"
            )
            detail = "; ".join(d for d in (detail, salvage_note, noted) if d)
            line = error_line(relpath, "skipped", "too_large", detail, report.salvaged)
            self.errors.append(line | notes)
            return
        if report.salvaged:
            counts["salvaged"] += 1
            detail = "; ".join(d for d in (salvage_note, noted) if d)
            self.errors.append(error_line(relpath, "salvaged", "truncated", detail, True) | notes)
        elif any_notes(notes):
            counts["files_noted"] += 1
            self.errors.append(error_line(relpath, "noted", None, noted, False) | notes)
        counts["sessions"] += 1
        counts["truncated"] += ov.outcome == TRUNCATED
        counts["split"] += ov.outcome == SPLIT
        for window, piece in enumerate(ov.windows):
            self.shards.add(relpath, piece, window)
            counts["windows"] += 1
            counts["tokens"] += int(piece.shape[0])

    def finish(self) -> GroupResult:
        """Close the shards and write the done record (after the shards: see the docstring)."""
        infos = self.shards.close()
        record = {
            "group": self.task.group_id,
            "files": self.files,
            "shards": [i.to_json() for i in infos],
            "errors": self.errors,
            "counts": self.counts,
            "flags": dict(sorted(self.flags.items())),
            "rejected_by_reason": dict(sorted(self.reasons.items())),
        }
        write_json_atomic(done_record_path(Path(self.task.out_dir), self.task.group_id), record)
        return GroupResult(record, self.tracebacks)

    def abort(self) -> None:
        self.shards.abort()


def build_group(task: GroupTask, outcomes: Iterable[FileOutcome]) -> GroupResult:
    """The group of ``task`` from its files' outcomes (in file order); shards removed on errors."""
    builder = GroupBuilder(task)
    try:
        for outcome in outcomes:
            builder.add(outcome)
        return builder.finish()
    except BaseException:
        builder.abort()
        raise


def run_group(task: GroupTask) -> GroupResult:
    """Process one group and write its shards and done record; return the record."""
    opts = task.options
    return build_group(task, (read_file(rel, path, opts) for rel, path in task.files))
