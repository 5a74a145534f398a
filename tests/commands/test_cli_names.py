"""``rrweb-dali preprocess`` over a file whose name is not valid UTF-8 (made at test time from
bytes): the run finishes (exit 0, no ``error:`` line), the file is in the dataset under its
escaped name, and ``inspect DATASET_DIR`` reads the result."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rrweb_dali.commands.demo import sample_files
from rrweb_dali.shards.manifest import open_shards


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rrweb_dali", *args], capture_output=True, timeout=300
    )


@pytest.mark.parametrize("workers", ["1", "2"])
def test_preprocess_reads_an_undecodable_name(tmp_path: Path, workers: str):
    src = tmp_path / "src"
    src.mkdir()
    good, other = sample_files()[:2]
    try:
        for name, data in ((b"bad-\xff.json", good.read_bytes()), (b"broken-\xfe.json", b"{")):
            with open(os.path.join(os.fsencode(src), name), "wb") as fh:
                fh.write(data)
    except OSError as exc:
        pytest.skip(f"this file system refuses non-UTF-8 names: {exc}")
    (src / "ok.json").write_bytes(other.read_bytes())
    out = tmp_path / "ds"
    result = _cli("preprocess", str(src), "--out", str(out), "--workers", workers, "--no-progress")
    assert result.returncode == 0, result.stderr
    assert b"error:" not in result.stderr
    _, shards = open_shards(out, verify=True)
    names = {name for shard in shards for name in shard.index.files}
    assert names == {"bad-\\xff.json", "ok.json"}
    lines = [json.loads(line) for line in (out / "errors.jsonl").read_text().splitlines()]
    assert [(e["path"], e["status"]) for e in lines] == [("broken-\\xfe.json", "rejected")]

    shown = _cli("inspect", str(out))
    assert shown.returncode == 0, shown.stderr
    assert b"sessions kept                2" in shown.stdout
