"""The Ray executor runs the same task function and writes the same bytes as the local one, and
survives a worker that dies on every try (after Ray's retries, the group is recovered locally)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rrweb_dali.preprocess import PreprocessOptions, preprocess

ray = pytest.importorskip(
    "ray", reason="the ray extra is not installed (pip install 'rrweb-dali[ray]')"
)


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


def test_ray_output_is_byte_identical_to_local(
    local_ray, tmp_path, synth_corpus, assert_accounting, assert_same_tree
):
    src = synth_corpus(tmp_path / "src", n=16, seed=11)
    opts = PreprocessOptions(group_files=3)
    preprocess([src], tmp_path / "local", opts, workers=2)
    result = preprocess([src], tmp_path / "ray", opts, executor="ray")
    assert result.groups_run == 6
    assert ray.is_initialized()  # a Ray the caller started is left running
    assert_accounting(tmp_path / "ray")
    assert_same_tree(tmp_path / "local", tmp_path / "ray")


@pytest.mark.slow
def test_a_file_that_kills_ray_workers_is_rejected_and_the_run_finishes(
    tmp_path, synth_corpus, killer_hooks, assert_accounting
):
    src = synth_corpus(tmp_path / "src", n=8, seed=12)
    culprit = sorted(p.name for p in src.rglob("*.json"))[2]
    hooks = killer_hooks(tmp_path / "hooks", culprit)
    out = tmp_path / "out"
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(hooks), str(repo)])}
    args = ["preprocess", str(src), "--out", str(out), "--group-files", "4"]
    result = subprocess.run(
        [sys.executable, "-m", "rrweb_dali", *args, "--executor", "ray", "--workers", "2"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    totals = assert_accounting(out)
    assert totals["workers_crashed"] == 1 and totals["sessions"] == 7
    (line,) = [json.loads(x) for x in (out / "errors.jsonl").read_text().splitlines()]
    assert line["path"].endswith(culprit) and line["reason"] == "worker_crashed"
