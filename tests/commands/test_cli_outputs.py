"""What the commands print when they succeed: ``inspect`` of a dataset directory, ``profile``
without a terminal (no progress bar), and the dataset marker shared by discovery and shards."""

from __future__ import annotations

import subprocess
import sys

from rrweb_dali.commands.demo import sample_files
from rrweb_dali.ingest.discover import DATASET_FORMAT, DATASET_MANIFEST
from rrweb_dali.preprocess import preprocess
from rrweb_dali.shards.manifest import FORMAT_NAME, MANIFEST_NAME, read_manifest


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rrweb_dali", *args], capture_output=True, text=True, timeout=300
    )


def test_discovery_knows_a_dataset_by_the_manifest_shards_write():
    assert (DATASET_MANIFEST, DATASET_FORMAT) == (MANIFEST_NAME, FORMAT_NAME)


def test_inspect_a_dataset_prints_its_summary(tmp_path):
    out = tmp_path / "ds"
    preprocess(sample_files()[:4], out, progress=False)
    manifest = read_manifest(out)
    result = cli("inspect", str(out))
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(None, 1) for line in result.stdout.splitlines() if line.strip())
    assert lines["sequences"].strip() == f"{sum(s.sessions for s in manifest.shards):,}"
    assert f"{sum(s.tokens for s in manifest.shards):,}" in result.stdout
    assert "rrweb-dali-structural" in result.stdout


def test_profile_draws_no_progress_bar_off_a_terminal(tmp_path, write_dataset):
    write_dataset(tmp_path / "ds", n=40, shards=1)
    result = cli(
        "profile", str(tmp_path / "ds"), "--out", str(tmp_path / "runs"), "--device", "cpu",
        "--batch-size", "8", "--epochs", "1",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "samples/s" in result.stdout
    assert "\r" not in result.stderr and "batch/s" not in result.stderr  # no tqdm bar
