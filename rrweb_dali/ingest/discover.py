"""Find the rrweb files of a set of sources: the inputs of ``preprocess`` and of raw mode.

Both name and order the files the same way, so a raw-mode loader's file ``i`` is the file whose
sessions ``preprocess`` writes ``i``-th.

Each source is a directory (walked recursively), a file, or a glob (``data/**/*.json.gz``). Every
file is named in the outputs by its path *relative to its root* (the directory given, the
directory part of a glob before its first wildcard, or the parent of a single file), never by an
absolute path, so the outputs do not depend on where the corpus lives. Files are sorted by that
relative path, which makes the plan, and with it every output byte, independent of directory
listing order.

Symbolic links to files are read; links to directories are not followed (no cycles), by a walk
or by a glob's ``**`` alike: globs are matched here, component by component, against one
``os.walk`` of the glob's root (Python's own ``glob`` follows directory links under ``**``, so a
link to ``.`` or ``..`` made its enumeration exponential). A directory given as a source is read
even when it is itself a link. Skipped:
hidden files and directories (a name starting with ``.``), the output directory itself
and any other preprocessed dataset found inside a source (a directory holding ``state/plan.json``),
so running with ``--out`` inside the corpus does not feed the shards back in. Everything else is an
input: a file that is not rrweb is not silently ignored but rejected with a reason in
``errors.jsonl``.
"""

from __future__ import annotations

import fnmatch
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson

logger = logging.getLogger(__name__)

# A preprocessed dataset directory holds ``state/plan.json``: discovery never descends into one,
# and ``preprocess`` writes its plan under these names.
STATE_DIR = "state"
PLAN_NAME = "plan.json"
# What marks a finished dataset (rrweb_dali.shards.manifest writes it; a test checks they agree).
DATASET_MANIFEST = "manifest.json"
DATASET_FORMAT = "rrweb-dali-shards"
_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class InputFile:
    """One input: ``relpath`` (POSIX, relative to its root) is what every output records;
    ``path`` is where to read it on this machine and is never written anywhere."""

    relpath: str
    path: str
    size: int
    mtime_ns: int


def _has_glob(part: str) -> bool:
    return any(c in _GLOB_CHARS for c in part)


def _is_dataset_dir(directory: Path) -> bool:
    """A preprocess output: its plan (written first) or its manifest (written last; a user's own
    file of that name does not count)."""
    if (directory / STATE_DIR / PLAN_NAME).is_file():
        return True
    manifest = directory / DATASET_MANIFEST
    if not manifest.is_file():
        return False
    try:
        return orjson.loads(manifest.read_bytes()).get("format") == DATASET_FORMAT
    except (OSError, orjson.JSONDecodeError, AttributeError):
        return False


def _stat(path: str) -> tuple[int, int]:
    """Size and mtime; an unreadable entry (a broken link) stays an input and fails as io_error."""
    try:
        st = os.stat(path)
    except OSError:
        return 0, 0
    return st.st_size, st.st_mtime_ns


def _prunable(sub: Path, name: str, exclude: set[Path]) -> bool:
    return name.startswith(".") or sub.resolve() in exclude or _is_dataset_dir(sub)


def _walk(root: Path, exclude: set[Path]) -> Iterable[tuple[Path, Path]]:
    """(root, file) pairs under ``root``, pruning hidden and excluded directories; links to
    directories are listed by ``os.walk`` among the directories but never entered."""
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = [d for d in sorted(dirnames) if not _prunable(here / d, d, exclude)]
        for f in filenames:
            if not f.startswith("."):
                yield root, here / f


def _closure(states: frozenset[int], pattern: Sequence[str]) -> frozenset[int]:
    """``states`` plus every position reachable by letting a ``**`` match no component."""
    out = set(states)
    for i in sorted(states):
        while i < len(pattern) and pattern[i] == "**":
            i += 1
            out.add(i)
    return frozenset(out)


def _advance(states: frozenset[int], name: str, pattern: Sequence[str]) -> frozenset[int]:
    """The pattern positions after matching one more path component ``name``: the states of a
    small automaton over the glob's components (``**``: any number of them; else fnmatch)."""
    out = set()
    for i in _closure(states, pattern):
        if i == len(pattern):
            continue
        if pattern[i] == "**":
            out.add(i)
        elif fnmatch.fnmatchcase(name, pattern[i]):
            out.add(i + 1)
    return frozenset(out)


def _glob(root: Path, pattern: Sequence[str], exclude: set[Path]) -> Iterable[Path]:
    """Files under ``root`` whose path relative to it matches the components ``pattern``, and
    every file under a matching directory; one walk, which never enters a directory that no match
    can lie in (so ``data/*/x.json`` reads one level) nor a link to a directory."""
    start = _closure(frozenset({0}), pattern)
    end = len(pattern)
    states: dict[str, frozenset[int]] = {os.fspath(root): start}
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        now = states.pop(dirpath)
        if end in now:  # a matching directory: everything under it
            dirnames[:] = [d for d in sorted(dirnames) if not _prunable(here / d, d, exclude)]
            yield from (here / f for f in filenames if not f.startswith("."))
            for d in dirnames:
                states[os.path.join(dirpath, d)] = frozenset({end})
            continue
        keep = []
        for d in sorted(dirnames):
            nxt = _advance(now, d, pattern)
            if nxt and not _prunable(here / d, d, exclude):
                keep.append(d)
                states[os.path.join(dirpath, d)] = nxt
        dirnames[:] = keep
        for f in filenames:
            if not f.startswith(".") and end in _closure(_advance(now, f, pattern), pattern):
                yield here / f


def _expand(source: str, exclude: set[Path]) -> Iterable[tuple[Path, Path]]:
    parts = Path(source).parts
    if any(_has_glob(p) for p in parts):
        first = next(i for i, p in enumerate(parts) if _has_glob(p))
        root = Path(*parts[:first]) if first else Path(".")
        matches = sorted(_glob(root, parts[first:], exclude)) if root.is_dir() else []
        if not matches:
            logger.warning("source %s matches no file", source)
        for p in matches:
            yield root, p
        return
    p = Path(source)
    if p.is_dir():
        if p.resolve() in exclude:
            raise ValueError(f"source {source} is also the output; write the dataset elsewhere")
        if _is_dataset_dir(p):
            raise ValueError(f"source {source} is a preprocessed dataset, not a corpus")
        yield from _walk(p, exclude)
    elif p.exists() or p.is_symlink():
        yield p.parent, p
    else:
        raise FileNotFoundError(f"source {source} does not exist")


def discover(
    sources: Sequence[str | os.PathLike], exclude: Sequence[str | os.PathLike] = ()
) -> list[InputFile]:
    """The input files of ``sources`` sorted by relative path, each with its size and mtime.

    ``exclude`` names directories never to enter (the output directory). A file reached twice
    (a directory and a glob inside it) counts once; two *different* files with the same relative
    path (``a/x.json`` and ``b/x.json`` given as roots ``a`` and ``b``) are an error, because the
    outputs could not tell them apart.
    """
    excluded = {Path(e).resolve() for e in exclude}
    by_rel: dict[str, InputFile] = {}
    seen_real: set[str] = set()
    for source in sources:
        for root, path in _expand(os.fspath(source), excluded):
            real = os.path.realpath(path)
            if real in seen_real:
                continue
            seen_real.add(real)
            rel = path.relative_to(root).as_posix() if root != Path(".") else path.as_posix()
            if any(part.startswith(".") for part in Path(rel).parts if part not in (".", "..")):
                continue
            if rel in by_rel:
                raise ValueError(
                    f"two inputs have the same relative path {rel!r} ({by_rel[rel].path} and "
                    f"{path}); give their common parent directory as the source instead"
                )
            size, mtime_ns = _stat(str(path))
            by_rel[rel] = InputFile(rel, str(path), size, mtime_ns)
    return [by_rel[k] for k in sorted(by_rel)]
