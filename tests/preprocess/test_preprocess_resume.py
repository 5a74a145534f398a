"""``preprocess`` survives kill -9, grows incrementally and its shards verify.

The kill test runs the real command line in a subprocess, kills it with SIGKILL while groups are
half done, runs it again and compares every output byte with an uninterrupted run.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from rrweb_dali.cli import main as cli_main
from rrweb_dali.preprocess import PreprocessOptions, preprocess
from rrweb_dali.shards.manifest import read_manifest

REPO = Path(__file__).resolve().parents[2]
KILL_N = 32  # files; one per group, so the run has many points to be killed at


def _cli(src: Path, out: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "rrweb_dali",
        "preprocess",
        str(src),
        "--out",
        str(out),
        "--group-files",
        "1",
        "--workers",
        "2",
        "--no-progress",
    ]


def _done_groups(out: Path) -> int:
    return len(list((out / "state").glob("group-*.json")))


def _alive_in_group(pgid: int) -> list[int]:
    """Running processes of a process group (zombies are dead: in a container whose PID 1 does
    not reap, orphans stay zombies forever)."""
    alive = []
    for p in psutil.process_iter():
        try:
            if os.getpgid(p.pid) == pgid and p.status() != psutil.STATUS_ZOMBIE:
                alive.append(p.pid)
        except (ProcessLookupError, psutil.Error):
            continue
    return alive


def _describe(pgid: int) -> list[str]:
    return [" ".join(psutil.Process(pid).cmdline())[:200] for pid in _alive_in_group(pgid)]


def _wait_gone(pgid: int, timeout: float = 20.0) -> bool:
    """Whether every process of the group exited (the killed parent's workers must not linger)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive_in_group(pgid):
            return True
        time.sleep(0.02)
    return False


def _kill_after(src: Path, out: Path, groups: int) -> int:
    """Start the CLI, SIGKILL its main process once ``groups`` groups are done; return how many
    were done then."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        _cli(src, out), cwd=REPO, env=env, start_new_session=True, stderr=subprocess.PIPE
    )
    try:
        while _done_groups(out) < groups:
            assert proc.poll() is None, f"the run ended before the kill: {proc.stderr.read()!r}"
            time.sleep(0.005)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        done = _done_groups(out)
        # The pool workers die with their parent (no orphan keeps writing into `out`).
        assert _wait_gone(proc.pid), f"processes outlived the killed run: {_describe(proc.pid)}"
    finally:
        if _alive_in_group(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.stderr.close()
    return done


def test_kill_9_and_resume_ends_byte_identical(tmp_path, synth_corpus, assert_same_tree):
    src = synth_corpus(tmp_path / "src", n=KILL_N, seed=3)
    preprocess([src], tmp_path / "whole", PreprocessOptions(group_files=1), workers=1)

    out = tmp_path / "killed"
    first = _kill_after(src, out, 1)
    second = _kill_after(src, out, first + 5)
    assert 1 <= first < second < KILL_N, (first, second)
    assert not (out / "manifest.json").exists()  # written last: not before every group is done
    rc = subprocess.run(
        _cli(src, out), cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True
    ).returncode
    assert rc == 0
    assert not list(out.rglob("*.tmp"))
    assert_same_tree(tmp_path / "whole", out)


def _semaphores() -> set[str]:
    """The named POSIX semaphores (``multiprocessing`` makes ``sem.mp-*``) in /dev/shm."""
    return {p.name for p in Path("/dev/shm").glob("sem.*")}


@pytest.mark.skipif(not Path("/dev/shm").is_dir(), reason="no /dev/shm on this system")
@pytest.mark.parametrize(
    "how", ["SIGKILL of the process group", "SIGTERM of the main process"], ids=["killpg", "term"]
)
def test_a_killed_run_leaves_no_process_and_no_semaphore(tmp_path, synth_corpus, how):
    """Killing the whole process group (Ctrl-\\, a job scheduler, ``timeout -s KILL``) takes a
    ``multiprocessing`` resource tracker with it, and its named semaphores stay in /dev/shm; the
    pool makes none. SIGTERM of the main process alone: the workers die with it."""
    src = synth_corpus(tmp_path / "src", n=16, seed=4)
    out = tmp_path / "out"
    before = _semaphores()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        _cli(src, out), cwd=REPO, env=env, start_new_session=True, stderr=subprocess.PIPE
    )
    try:
        while _done_groups(out) < 1 or len(_alive_in_group(proc.pid)) < 3:  # main + 2 workers
            assert proc.poll() is None, f"the run ended before the kill: {proc.stderr.read()!r}"
            time.sleep(0.005)
        if how.startswith("SIGKILL"):
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            os.kill(proc.pid, signal.SIGTERM)
        proc.wait()
        assert _wait_gone(proc.pid), f"processes outlived the killed run: {_describe(proc.pid)}"
    finally:
        if _alive_in_group(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.stderr.close()
    assert _semaphores() - before == set()
    # And the rerun finishes.
    rc = subprocess.run(_cli(src, out), cwd=REPO, env=env, capture_output=True).returncode
    assert rc == 0 and (out / "manifest.json").is_file()


def _shard_stats(out: Path) -> dict[str, tuple[int, int, int]]:
    return {
        p.name: (p.stat().st_ino, p.stat().st_mtime_ns, p.stat().st_size)
        for p in (out / "shards").iterdir()
    }


def test_incremental_add_writes_new_groups_only(
    tmp_path, caplog, synth_corpus, assert_accounting, joined_by_file, expected_tokens, error_lines
):
    src = synth_corpus(tmp_path / "src", n=12, seed=5)
    opts = PreprocessOptions(group_files=4)
    first = preprocess([src], tmp_path / "out", opts, workers=2)
    assert first.groups_total == 3
    before = _shard_stats(tmp_path / "out")

    # New files, some sorting before and some after the old ones.
    more = synth_corpus(tmp_path / "more", n=6, seed=6)
    added = sorted(p for p in more.rglob("*") if p.is_file())
    for i, p in enumerate(added):
        dest = src / ("aaa" if i % 2 else "zzz") / p.name
        dest.parent.mkdir(exist_ok=True)
        dest.write_bytes(p.read_bytes())
    second = preprocess([src], tmp_path / "out", opts, workers=2)
    assert (second.groups_reused, second.groups_run, second.files_run) == (3, 2, 6)
    after = _shard_stats(tmp_path / "out")
    assert {k: after[k] for k in before} == before  # old shards untouched: same inode and mtime
    assert sorted(set(after) - set(before)) == [
        "shard-000003-0000.bin",
        "shard-000003-0000.idx",
        "shard-000004-0000.bin",
        "shard-000004-0000.idx",
    ]
    t = assert_accounting(tmp_path / "out")
    assert t["files_read"] == t["sessions"] == 18 and t["groups"] == 5
    joined = joined_by_file(tmp_path / "out")
    assert len(joined) == 18
    for rel, tokens in joined.items():
        np.testing.assert_array_equal(tokens, expected_tokens(src, rel))

    # A third run with nothing new reads nothing and rewrites no shard.
    third = preprocess([src], tmp_path / "out", opts, workers=2)
    assert third.groups_run == 0 and _shard_stats(tmp_path / "out") == after

    # A processed file that changed is reported, not silently re-read or mixed in.
    changed = sorted(p for p in (src / "000").iterdir())[1]
    rel = changed.relative_to(src).as_posix()
    changed.write_bytes(changed.read_bytes() + b"  ")  # another size: a different file now
    gone = sorted((src / "zzz").iterdir())[0]
    gone.unlink()
    with caplog.at_level(logging.WARNING):
        fourth = preprocess([src], tmp_path / "out", opts, workers=2)
    assert fourth.groups_run == 0 and _shard_stats(tmp_path / "out") == after
    m = read_manifest(tmp_path / "out")
    assert m.extra["stale_inputs"]["changed"] == [rel] and m.totals["inputs_changed"] == 1
    assert m.extra["stale_inputs"]["missing"] == [f"zzz/{gone.name}"]
    assert m.totals["inputs_missing"] == 1
    assert "changed after they were preprocessed" in caplog.text
    assert not error_lines(tmp_path / "out")


def test_verify_passes_then_names_a_damaged_shard(tmp_path, capsys, synth_corpus):
    src = synth_corpus(tmp_path / "src", n=8, seed=7)
    out = tmp_path / "out"
    preprocess([src], out, PreprocessOptions(group_files=3), workers=1)
    assert cli_main(["verify", str(out)]) == 0
    assert "bad shards      none" in capsys.readouterr().out
    victim = out / "shards" / "shard-000001-0000.bin"
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01
    victim.write_bytes(bytes(data))
    assert cli_main(["verify", str(out)]) == 1
    err = capsys.readouterr().err
    assert "shard-000001-0000" in err and "shard-000000-0000" not in err
    assert "SHA-256" in err


@pytest.mark.parametrize("missing", ["manifest.json"])
def test_verify_refuses_a_directory_without_manifest(tmp_path, capsys, missing):
    assert cli_main(["verify", str(tmp_path)]) == 2  # not a dataset: a usage error; a bad shard: 1
    assert missing in capsys.readouterr().err


def test_a_second_concurrent_run_is_refused(tmp_path, synth_corpus):
    from rrweb_dali.preprocess.plan import exclusive

    src = synth_corpus(tmp_path / "src", n=2, seed=8)
    out = tmp_path / "out"
    (out / "state").mkdir(parents=True)
    with exclusive(out), pytest.raises(RuntimeError, match="another preprocess run"):
        preprocess([src], out, workers=1)
    assert preprocess([src], out, workers=1).totals["sessions"] == 2  # free again afterwards
