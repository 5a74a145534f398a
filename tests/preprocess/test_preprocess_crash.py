"""A worker killed outright (the kernel's OOM killer sends SIGKILL) does not stop ``preprocess``:
the group is read again file by file in fresh processes, the file that kills its process is
rejected as ``worker_crashed``, everything else is kept, and reruns finish.

The deaths are real: the command line runs in a subprocess with the ``killer_hooks``
``sitecustomize`` on its ``PYTHONPATH`` (see the conftest), which makes the process reading a
chosen file SIGKILL itself. The library has no test hook; the wrapper is installed from outside,
as a memory limit would be.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rrweb_dali.commands.demo import sample_files
from rrweb_dali.shards.manifest import read_manifest

REPO = Path(__file__).resolve().parents[2]


def _corpus(root: Path, culprit: str) -> Path:
    """Six sample files in groups of three; the culprit is the second file of the first group."""
    root.mkdir()
    for i, sample in enumerate(sample_files()[:6]):
        name = f"{i:02d}-{culprit}.json" if i == 1 else f"{i:02d}.json"
        (root / name).write_bytes(sample.read_bytes())
    return root


def _run(
    src: Path, out: Path, hooks: Path | None, *extra: str, workers: int = 2
) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if hooks is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(hooks), str(REPO)])
    args = ["preprocess", str(src), "--out", str(out), "--group-files", "3", "--no-progress"]
    return subprocess.run(
        [sys.executable, "-m", "rrweb_dali", *args, "--workers", str(workers), *extra],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _lines(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "errors.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_a_file_that_kills_its_worker_is_rejected_and_the_run_finishes(
    tmp_path, killer_hooks, windows_by_file, expected_tokens, assert_accounting
):
    src = _corpus(tmp_path / "src", "killer")
    out = tmp_path / "out"
    hooks = killer_hooks(tmp_path / "hooks", "killer")
    result = _run(src, out, hooks)
    assert result.returncode == 0, result.stderr
    # The log names the group and the file, and how the process died.
    assert "group 0" in result.stderr and "01-killer.json" in result.stderr, result.stderr
    assert "SIGKILL" in result.stderr
    assert "killed the worker process" in result.stdout  # the end-of-run summary says so

    totals = assert_accounting(out)
    assert totals["workers_crashed"] == 1 and totals["rejected_by_reason"] == {"worker_crashed": 1}
    (line,) = _lines(out)
    assert line["path"] == "01-killer.json" and line["status"] == "rejected"
    assert line["reason"] == "worker_crashed" and "SIGKILL" in line["detail"]
    # Every other file, of the crashed group too, is in the shards, with the tokens it makes.
    by_file = windows_by_file(out)
    assert sorted(by_file) == [f"{i:02d}.json" for i in (0, 2, 3, 4, 5)]
    for name, pieces in by_file.items():
        assert (pieces[0][1] == expected_tokens(src, name)[: len(pieces[0][1])]).all()

    # A rerun with the same hook finishes at once: the group is done, nothing dies again.
    again = _run(src, out, hooks)
    assert again.returncode == 0, again.stderr
    assert "0 run now" in again.stdout and "SIGKILL" not in again.stderr


@pytest.mark.slow
def test_a_worker_that_dies_once_changes_no_output_byte(tmp_path, assert_same_tree, killer_hooks):
    """A worker killed while reading a file that is fine alone (the group, or another process,
    took the memory): the recovered group is byte-identical to an undisturbed run's."""
    src = _corpus(tmp_path / "src", "flaky")
    marker = tmp_path / "die-once"
    marker.write_text("")
    disturbed = _run(
        src, tmp_path / "disturbed", killer_hooks(tmp_path / "hooks", "flaky", once=marker)
    )
    assert disturbed.returncode == 0, disturbed.stderr
    assert not marker.exists()  # the worker did die
    assert "SIGKILL" in disturbed.stderr and "kills a process on its own" in disturbed.stderr
    plain = _run(src, tmp_path / "plain", None)
    assert plain.returncode == 0, plain.stderr
    assert_same_tree(tmp_path / "disturbed", tmp_path / "plain")
    assert read_manifest(tmp_path / "plain").totals["workers_crashed"] == 0


@pytest.mark.slow
def test_with_a_memory_cap_even_one_worker_survives(tmp_path, assert_accounting, killer_hooks):
    """``--worker-memory`` runs groups in worker processes even with ``--workers 1``, so a
    death there is survived too."""
    src = _corpus(tmp_path / "src", "killer")
    out = tmp_path / "out"
    result = _run(
        src, out, killer_hooks(tmp_path / "hooks", "killer"), "--worker-memory", "1024", workers=1
    )
    assert result.returncode == 0, result.stderr
    totals = assert_accounting(out)
    assert totals["workers_crashed"] == 1 and totals["sessions"] == 5


def _big_session(events: int) -> bytes:
    """A valid recording whose events, as Python objects, take far more memory than its bytes."""
    meta = {"type": 4, "timestamp": 0, "data": {"href": "https://x.test/", "width": 1, "height": 1}}
    snap = {
        "type": 2,
        "timestamp": 1,
        "data": {"node": {"type": 0, "id": 1, "childNodes": []}, "initialOffset": {}},
    }
    moves = [
        {
            "type": 3,
            "timestamp": 2 + i,
            "data": {"source": 1, "positions": [{"x": i, "y": i, "id": 1, "timeOffset": 0}]},
        }
        for i in range(events)
    ]
    return json.dumps([meta, snap, *moves]).encode()


@pytest.mark.slow
def test_memory_cap_rejects_the_file_that_needs_more(tmp_path, assert_accounting):
    src = _corpus(tmp_path / "src", "small")
    (src / "99-huge.json").write_bytes(_big_session(400_000))
    out = tmp_path / "out"
    result = _run(src, out, None, "--worker-memory", "300", "--max-events", "1000000")
    assert result.returncode == 0, result.stderr
    totals = assert_accounting(out)
    assert totals["sessions"] == 6 and totals["files_rejected"] == 1
    (line,) = _lines(out)
    assert line["path"] == "99-huge.json"
    # A MemoryError, or orjson's "Not enough memory" decode error, is too_large; a worker the
    # cap killed outright is worker_crashed.
    assert line["reason"] in ("too_large", "worker_crashed"), line
    # Without the cap the same file is kept: it was the memory, not the file.
    free = _run(src, tmp_path / "free", None, "--max-events", "1000000")
    assert free.returncode == 0, free.stderr
    assert read_manifest(tmp_path / "free").totals["sessions"] == 7
