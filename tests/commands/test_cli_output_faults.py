"""The output side failing under ``preprocess``: a full disk (a small tmpfs), a write over the
file size limit in a worker (``RLIMIT_FSIZE``: EFBIG), a read-only mount. Each is one ``error:``
line naming the file, exit status 2, nothing published half-written, and the same command run
again (with room) finishes with the bytes of an undisturbed run.

Mounting a tmpfs needs root with CAP_SYS_ADMIN (CI's containers have it); elsewhere those cases
skip visibly.
"""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rrweb_dali.commands.demo import sample_files


def _cli(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rrweb_dali", *args],
        capture_output=True,
        text=True,
        timeout=300,
        **kw,
    )


def _one_error_line(result: subprocess.CompletedProcess, *needles: str) -> str:
    detail = f"rc {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    assert result.returncode == 2, detail
    assert "Traceback" not in result.stderr + result.stdout, detail
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, detail
    for needle in needles:
        assert needle in errors[0], detail
    return errors[0]


def _nothing_half_published(out: Path) -> None:
    """No manifest or errors.jsonl; every shard on disk is one a done record lists; and the
    failed group cleaned up after itself (no temporary file left, even on a full disk)."""
    assert not (out / "manifest.json").exists()
    assert not (out / "errors.jsonl").exists()
    listed = set()
    for record in (out / "state").glob("group-*.json"):
        for s in json.loads(record.read_bytes())["shards"]:
            listed |= {f"{s['name']}.bin", f"{s['name']}.idx"}
    on_disk = {p.name for p in (out / "shards").iterdir()}
    assert on_disk <= listed, on_disk - listed
    assert not list(out.rglob("*.tmp"))


def _tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "lock"
    }


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("faults") / "src"
    src.mkdir()
    for sample in sample_files():
        shutil.copyfile(sample, src / sample.name)
    return src


@pytest.fixture(scope="module")
def clean(corpus, tmp_path_factory) -> Path:
    """The dataset of an undisturbed run, to compare the finished reruns with."""
    out = tmp_path_factory.mktemp("clean") / "ds"
    result = _cli("preprocess", str(corpus), "--out", str(out), "--group-files", "2")
    assert result.returncode == 0, result.stderr
    return out


def _mount_tmpfs(where: Path, options: str) -> None:
    where.mkdir(parents=True, exist_ok=True)
    if shutil.which("mount") is None:
        pytest.skip("no mount command: a small tmpfs cannot be made here")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.decode().strip()}")


@pytest.fixture
def tmpfs(tmp_path):
    """``tmpfs(options) -> directory``: a fresh tmpfs mounted for the test, unmounted after."""
    mounted: list[Path] = []

    def mount(options: str) -> Path:
        where = tmp_path / f"mnt{len(mounted)}"
        _mount_tmpfs(where, options)
        mounted.append(where)
        return where

    yield mount
    for where in mounted:
        subprocess.run(["umount", str(where)], capture_output=True)


def test_a_worker_write_over_the_file_size_limit(corpus, clean, tmp_path):
    """EFBIG from a worker (two workers, several groups): the error names the shard."""

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (50_000, 50_000))

    out = tmp_path / "ds"
    args = ("preprocess", str(corpus), "--out", str(out), "--group-files", "2", "--workers", "2")
    _one_error_line(
        _cli(*args, preexec_fn=small_files), "File too large", "shards/shard-", "run the same"
    )
    _nothing_half_published(out)
    again = _cli(*args)
    assert again.returncode == 0, again.stderr
    assert _tree(out) == _tree(clean)


def test_a_full_disk(corpus, clean, tmpfs):
    disk = tmpfs("size=160k")
    out = disk / "ds"
    args = ("preprocess", str(corpus), "--out", str(out), "--group-files", "2", "--workers", "2")
    _one_error_line(_cli(*args), "No space left on device", str(out / "shards" / "shard-"))
    _nothing_half_published(out)
    grown = subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], capture_output=True)
    assert grown.returncode == 0, grown.stderr
    again = _cli(*args)
    assert again.returncode == 0, again.stderr
    assert _tree(out) == _tree(clean)


def test_a_read_only_mount(corpus, tmpfs):
    locked = tmpfs("ro,size=1m")
    result = _cli("preprocess", str(corpus), "--out", str(locked / "ds"))
    _one_error_line(result, "Read-only file system", str(locked / "ds"))
    assert not (locked / "ds").exists()
