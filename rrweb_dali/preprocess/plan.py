"""Deterministic grouping of the input files into independent tasks, persisted for resumption.

A *group* is a run of consecutive files of the sorted input list, closed when it reaches
``group_files`` files or ``group_bytes`` bytes on disk. Each group is one task: it writes its own
shards, named after the group (``shard-GGGGGG-PPPP``, part ``PPPP`` when ``shard_tokens`` splits a
group's output), and its own done record, so groups never share a file and any number of workers
can run them in any order with the same result.

This module also owns the rest of ``state/``: the done records (which groups are finished), the
clean-up of what a killed run left, and the lock that keeps two runs off one directory.

The plan is written to ``state/plan.json`` before any group runs and is never regrouped
afterwards. That is what makes a resumed run end byte-identical to an uninterrupted one (the groups
left to do are exactly the ones the first run planned, whichever finished first) and what makes
runs incremental: files found later go into *new* groups numbered after the existing ones, so the
shards of old groups are never touched.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from rrweb_dali.ingest.discover import PLAN_NAME, STATE_DIR, InputFile
from rrweb_dali.shards.format import ShardFormatError, ShardInfo
from rrweb_dali.shards.manifest import (
    ERRORS_NAME,
    MANIFEST_NAME,
    SHARDS_DIR,
    verify_shard,
    write_json_atomic,
)

logger = logging.getLogger(__name__)

PLAN_VERSION = 1
LOCK_NAME = "lock"


def group_name(group_id: int) -> str:
    return f"group-{group_id:06d}"


def done_record_path(out: Path, group_id: int) -> Path:
    """Where a finished group's record lives; it exists only once the group's shards do."""
    return out / STATE_DIR / f"{group_name(group_id)}.json"


def shard_name(group_id: int, part: int) -> str:
    """The shard stem for ``part`` of a group's output; sorts in (group, part) order."""
    return f"shard-{group_id:06d}-{part:04d}"


def shard_group(name: str) -> int | None:
    """The group id a shard file name belongs to, or ``None`` if it is not one of ours."""
    parts = name.split(".", 1)[0].split("-")
    if len(parts) != 3 or parts[0] != "shard" or not (parts[1].isdigit() and parts[2].isdigit()):
        return None
    return int(parts[1])


@dataclass(frozen=True)
class PlannedFile:
    """A file as the plan recorded it (size and mtime at planning time)."""

    relpath: str
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class Group:
    group_id: int
    files: tuple[PlannedFile, ...]

    @property
    def name(self) -> str:
        return group_name(self.group_id)

    @property
    def bytes(self) -> int:
        return sum(f.size for f in self.files)


class PlanMismatch(ValueError):
    """The output directory was made with other options; mixing them would corrupt the dataset."""


def make_groups(
    files: Sequence[InputFile], first_id: int, group_files: int, group_bytes: int
) -> list[Group]:
    """Consecutive runs of ``files`` (already sorted) of at most ``group_files`` files and
    ``group_bytes`` bytes each (a single larger file makes a group of its own)."""
    if group_files < 1 or group_bytes < 1:
        raise ValueError("group_files and group_bytes must be positive")
    groups: list[Group] = []
    current: list[PlannedFile] = []
    size = 0
    for f in files:
        if current and (len(current) >= group_files or size + f.size > group_bytes):
            groups.append(Group(first_id + len(groups), tuple(current)))
            current, size = [], 0
        current.append(PlannedFile(f.relpath, f.size, f.mtime_ns))
        size += f.size
    if current:
        groups.append(Group(first_id + len(groups), tuple(current)))
    return groups


@dataclass
class Plan:
    """All groups of an output directory, old and new, and the options they were made with."""

    options: dict
    groups: list[Group]

    def to_json(self) -> dict:
        return {
            "version": PLAN_VERSION,
            "options": self.options,
            "groups": [
                {"group": g.group_id, "files": [[f.relpath, f.size, f.mtime_ns] for f in g.files]}
                for g in self.groups
            ],
        }

    @classmethod
    def from_json(cls, obj: dict) -> Plan:
        if obj.get("version") != PLAN_VERSION:
            raise PlanMismatch(f"plan version {obj.get('version')!r}, expected {PLAN_VERSION}")
        groups = [
            Group(g["group"], tuple(PlannedFile(r, s, m) for r, s, m in g["files"]))
            for g in obj["groups"]
        ]
        return cls(obj["options"], groups)

    @property
    def relpaths(self) -> set[str]:
        return {f.relpath for g in self.groups for f in g.files}


def plan_path(out: Path) -> Path:
    return out / STATE_DIR / PLAN_NAME


def read_plan(out: Path) -> Plan | None:
    path = plan_path(out)
    if not path.is_file():
        return None
    return Plan.from_json(json.loads(path.read_bytes()))


def write_plan(out: Path, plan: Plan) -> None:
    write_json_atomic(plan_path(out), plan.to_json())


def check_options(previous: dict, current: dict) -> None:
    """Raise :class:`PlanMismatch` naming every option that differs from the existing plan."""
    keys = sorted(set(previous) | set(current))
    diff = [
        f"{k}: {previous.get(k)!r} -> {current.get(k)!r}"
        for k in keys
        if previous.get(k) != current.get(k)
    ]
    if diff:
        raise PlanMismatch(
            "the output directory was preprocessed with other options ("
            + "; ".join(diff)
            + "); use a new --out directory, or the same options to resume or add files"
        )


def extend_plan(
    previous: Plan | None,
    files: Sequence[InputFile],
    options: dict,
    group_files: int,
    group_bytes: int,
) -> tuple[Plan, list[Group]]:
    """The plan for ``files``: the previous groups unchanged, plus new groups for files the
    previous plan does not know. Returns the plan and the new groups."""
    if previous is None:
        groups = make_groups(files, 0, group_files, group_bytes)
        return Plan(options, groups), groups
    check_options(previous.options, options)
    known = previous.relpaths
    new_files = [f for f in files if f.relpath not in known]
    first = max((g.group_id for g in previous.groups), default=-1) + 1
    new_groups = make_groups(new_files, first, group_files, group_bytes)
    return Plan(previous.options, previous.groups + new_groups), new_groups


@contextlib.contextmanager
def exclusive(out: Path) -> Iterator[None]:
    """Refuse a second concurrent run on one directory (an flock, released even by kill -9)."""
    fh = open(out / STATE_DIR / LOCK_NAME, "a+b")  # noqa: SIM115 - closed below
    try:
        try:
            import fcntl

            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # not POSIX: no lock, one run at a time is then up to the user
            pass
        except BlockingIOError:
            raise RuntimeError(f"{out}: another preprocess run is writing this directory") from None
        yield
    finally:
        fh.close()


def scan_finished(out: Path, plan: Plan, found: dict[str, InputFile]) -> tuple[set[int], dict]:
    """Ids of the groups whose done record and shards are intact, and the stale inputs among
    them (changed or vanished since they were read)."""
    finished: set[int] = set()
    changed: list[str] = []
    missing: list[str] = []
    for g in plan.groups:
        path = done_record_path(out, g.group_id)
        if not path.is_file():
            continue
        try:
            record = json.loads(path.read_bytes())
            for s in record["shards"]:
                verify_shard(out, ShardInfo.from_json(s), full=False)
        except (ValueError, KeyError, ShardFormatError) as exc:
            logger.warning(
                "group %d will run again: its done record or shards are bad (%s)", g.group_id, exc
            )
            path.unlink()
            continue
        finished.add(g.group_id)
        for relpath, size, mtime_ns in record["files"]:
            now = found.get(relpath)
            if now is None:
                missing.append(relpath)
            elif (now.size, now.mtime_ns) != (size, mtime_ns):
                changed.append(relpath)
    if changed:
        logger.warning(
            "%d input file(s) changed after they were preprocessed (first: %s); the dataset keeps "
            "the version read first. Preprocess into a new --out directory to read them again.",
            len(changed),
            changed[0],
        )
    if missing:
        logger.warning(
            "%d preprocessed input file(s) are no longer in the sources (first: %s); their "
            "sessions stay in the dataset.",
            len(missing),
            missing[0],
        )
    stale = {"changed": sorted(changed), "missing": sorted(missing)}
    return finished, stale


def remove_leftovers(out: Path, finished: set[int]) -> None:
    """Delete what a killed run left behind: temporary files, shards of unfinished groups."""
    ours = {f"{MANIFEST_NAME}.tmp", f"{ERRORS_NAME}.tmp"}
    leftovers = [out / name for name in ours if (out / name).is_file()]
    leftovers += [p for p in (out / STATE_DIR).glob("*.tmp") if p.is_file()]
    for p in (out / SHARDS_DIR).iterdir():
        group = shard_group(p.name)
        if p.is_file() and group is not None and (p.name.endswith(".tmp") or group not in finished):
            leftovers.append(p)
    for p in sorted(leftovers):
        logger.info("removing leftover %s", p)
        p.unlink()
