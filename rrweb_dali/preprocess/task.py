"""One group, start to finish: read -> tokenize -> overflow policy -> shards -> done record.

This is the only function a worker runs, in a local process pool or as a Ray task, so both
executors produce the same bytes. It streams: one file's events and tokens are in memory at a time,
tokens go straight to the :class:`~rrweb_dali.shards.ShardWriter`, and what comes back to the
parent is a small record (counts, shard infos, the group's error lines), never tokens.

Bad files never stop a group. A :class:`~rrweb_dali.errors.SessionError` is recorded with its
reason. Any *other* exception raised while reading or tokenizing one file is a bug or an input shape
nobody foresaw; it is recorded too, under the closest existing reason
(:func:`~rrweb_dali.errors.classify_unexpected`, whose table is in :mod:`rrweb_dali.errors`).
Such a line's ``detail`` starts with ``"unexpected <ExceptionType>"`` and the traceback travels
back in :attr:`GroupResult.tracebacks` for the parent to log. Failures that are not about one file
(the output disk is full) do stop the group, and with it the run; the groups finished before stay
finished and a rerun resumes.

The done record (``state/group-GGGGGG.json``) is written atomically *after* the group's shards are
renamed into place, so its presence proves the group's shards are complete.
"""

from __future__ import annotations

import functools
import os
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rrweb_dali.errors import SessionError, classify_unexpected
from rrweb_dali.ingest import ReadLimits, load_session
from rrweb_dali.preprocess.plan import done_record_path, shard_name
from rrweb_dali.shards.format import DType, ShardInfo, ShardWriter
from rrweb_dali.shards.manifest import SHARDS_DIR, write_json_atomic
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
    """One unit of work: ``files`` are ``(relpath, path to read or None if it is gone)``."""

    out_dir: str
    group_id: int
    files: tuple[tuple[str, str | None], ...]
    options: TaskOptions


@dataclass
class GroupResult:
    record: dict
    tracebacks: list[str] = field(default_factory=list)


@functools.lru_cache(maxsize=4)
def _tokenizer(max_text_bytes: int | None) -> Tokenizer:
    """One tokenizer per worker process and configuration (tasks reuse it; it holds no state)."""
    return Tokenizer() if max_text_bytes is None else Tokenizer(max_text_bytes=max_text_bytes)


def token_dtype(tok: Tokenizer) -> DType:
    """The narrowest shard dtype that holds every token id of ``tok``."""
    return DType.of(np.uint16 if tok.vocab_size <= 1 << 16 else np.uint32)


def _error_line(relpath: str, status: str, reason: str, detail: str, salvaged: bool) -> dict:
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
    """``detail`` with this machine's path of the file replaced by its relative path (outputs
    never hold absolute paths, whatever an exception message quotes)."""
    if path:
        for form in sorted({os.path.abspath(path), path}, key=len, reverse=True):
            detail = detail.replace(form, relpath)
    return detail


class _Shards:
    """The group's shard writers: a new part whenever the next window would pass ``shard_tokens``."""

    def __init__(self, directory: Path, group_id: int, shard_tokens: int, dtype):
        self.directory, self.group_id, self.shard_tokens, self.dtype = (
            directory,
            group_id,
            shard_tokens,
            dtype,
        )
        self.writer: ShardWriter | None = None
        self.infos: list[ShardInfo] = []

    def add(self, relpath: str, tokens, window: int) -> None:
        w = self.writer
        if w is not None and w.sessions and w.tokens + len(tokens) > self.shard_tokens:
            self.infos.append(w.close())
            w = self.writer = None
        if w is None:
            name = shard_name(self.group_id, len(self.infos))
            w = self.writer = ShardWriter(self.directory, name, self.dtype)
        w.add(tokens, w.add_file(relpath), window)

    def close(self) -> list[ShardInfo]:
        if self.writer is not None:
            self.infos.append(self.writer.close())
            self.writer = None
        return self.infos

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.abort()


def run_group(task: GroupTask) -> GroupResult:
    """Process one group and write its shards and done record; return the record."""
    opts = task.options
    out = Path(task.out_dir)
    tok = _tokenizer(opts.max_text_bytes)
    counts = dict.fromkeys(COUNTERS, 0)
    reasons: dict[str, int] = {}
    errors: list[dict] = []
    files: list[list] = []
    tracebacks: list[str] = []
    shards = _Shards(out / SHARDS_DIR, task.group_id, opts.shard_tokens, token_dtype(tok).numpy)
    try:
        for relpath, path in task.files:
            counts["files_read"] += 1
            size = mtime_ns = 0
            try:
                size, mtime_ns = _stat(path)
                session = load_session(path, opts.limits)
                tokens = tok.encode(session.events)
                report = session.report
                del session
            except SessionError as exc:
                detail = _relative(exc.detail, path, relpath)
                errors.append(_error_line(relpath, "rejected", exc.reason, detail, False))
                reasons[exc.reason] = reasons.get(exc.reason, 0) + 1
                counts["files_rejected"] += 1
                continue
            except Exception as exc:  # one bad file must never stop the run: see module docstring
                reason = classify_unexpected(exc)
                detail = _relative(f"unexpected {type(exc).__name__}: {exc}"[:500], path, relpath)
                errors.append(_error_line(relpath, "rejected", reason, detail, False))
                reasons[reason] = reasons.get(reason, 0) + 1
                counts["files_rejected"] += 1
                counts["unexpected_errors"] += 1
                tracebacks.append(f"{relpath}:\n{traceback.format_exc()}")
                continue
            finally:
                files.append([relpath, size, mtime_ns])
            counts["bytes_in"] += report.bytes_in
            counts["bytes_decoded"] += report.bytes_decoded
            counts["events"] += report.events
            counts["duplicates_dropped"] += report.duplicates_dropped
            counts["reordered"] += int(bool(report.reordered))
            counts["parts_skipped"] += sum(report.skipped.values())
            ov = apply_overflow(tokens, opts.max_tokens, opts.overflow)
            counts["tokens_dropped_overflow"] += ov.dropped_tokens
            salvage_note = f"salvaged: {report.salvage_detail}" if report.salvaged else ""
            if ov.outcome == SKIPPED:
                counts["skipped_overflow"] += 1
                detail = f"{len(tokens)} tokens > --max-tokens {opts.max_tokens}; skipped (--overflow skip)"
                if salvage_note:
                    detail += f"; {salvage_note}"
                errors.append(_error_line(relpath, "skipped", "too_large", detail, report.salvaged))
                continue
            if report.salvaged:
                counts["salvaged"] += 1
                errors.append(_error_line(relpath, "salvaged", "truncated", salvage_note, True))
            counts["sessions"] += 1
            counts["truncated"] += ov.outcome == TRUNCATED
            counts["split"] += ov.outcome == SPLIT
            for window, piece in enumerate(ov.windows):
                shards.add(relpath, piece, window)
                counts["windows"] += 1
                counts["tokens"] += int(piece.shape[0])
        infos = shards.close()
    except BaseException:
        shards.abort()
        raise
    record = {
        "group": task.group_id,
        "files": files,
        "shards": [i.to_json() for i in infos],
        "errors": errors,
        "counts": counts,
        "rejected_by_reason": dict(sorted(reasons.items())),
    }
    write_json_atomic(done_record_path(out, task.group_id), record)
    return GroupResult(record, tracebacks)
