"""``rrweb-dali inspect DATASET_DIR``: the manifest summary, the dataset's, a length histogram and a
few decoded rows, every line bounded."""

from __future__ import annotations

import re
import subprocess
import sys

from rrweb_dali.dataset import open_dataset
from rrweb_dali.shards.manifest import read_manifest


def _inspect(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "rrweb_dali", "inspect", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_inspect_prints_the_summary_histogram_and_bounded_rows(dataset_dir):
    rows, row_lines, chars, bins = 3, 2, 70, 6
    out = _inspect(
        str(dataset_dir), "--rows", str(rows), "--row-lines", str(row_lines),
        "--max-line-chars", str(chars), "--bins", str(bins),
    )  # fmt: skip
    ds = open_dataset(dataset_dir)
    s = ds.summary()
    lines = out.splitlines()
    # the manifest's block is still there, and every line still parses as "label  value"
    assert all(len(line.split(None, 1)) == 2 for line in lines if line.strip())
    labels = dict(line.split(None, 1) for line in lines if line.strip())
    assert (
        labels["sequences"].strip()
        == f"{sum(x.sessions for x in read_manifest(dataset_dir).shards):,}"
    )
    assert f"sessions               {s.sessions:,} ({s.split_sessions:,} split" in out
    assert f"p50 {s.lengths['p50']:,}" in out and ".json.gz" in out
    # the histogram: one line per bin, the counts add up to the sequences
    start = lines.index(f"tokens per sequence: sequences ({bins} bins)")
    hist = ds.length_histogram(bins)
    shown = lines[start + 1 : start + 1 + len(hist.counts)]
    parsed = [re.fullmatch(r"\s*(\d+) - +(\d+) +([\d,]+) *#*", line) for line in shown]
    assert all(parsed), shown
    counts = [int(m[3].replace(",", "")) for m in parsed]
    assert counts == hist.counts.tolist() and sum(counts) == len(ds)
    assert int(parsed[0][1]) == s.lengths["min"] and int(parsed[-1][2]) == s.lengths["max"]
    # the rows: a heading naming the record, then at most row_lines decoded lines, each bounded
    headings = [k for k, line in enumerate(lines) if line.startswith("sequence ")]
    assert len(headings) == rows
    tok = ds.tokenizer
    cut_rows = 0
    for k, at in enumerate(headings):
        r = ds[k]
        assert lines[at] == (
            f"sequence {r.index}: {r.source} window {r.window}, session {r.session}, "
            f"{len(r):,} tokens"
        )
        body = []
        for line in lines[at + 1 :]:
            if not line.startswith("  | "):
                break
            body.append(line[4:])
        decoded = tok.decode(r.tokens, max_line_chars=chars).splitlines()
        assert body[:row_lines] == decoded[:row_lines]
        more = len(decoded) - row_lines
        assert body[row_lines:] == (
            [f"... {more} more lines (--row-lines 0 prints all)"] if more > 0 else []
        )
        cut_rows += more > 0
        assert all(len(line.rpartition(" ... [+")[0] or line) <= chars for line in body)
        assert any(" ... [+" in line for line in body)  # the snapshot's line is cut
    assert cut_rows > 0


def test_inspect_of_a_dataset_of_another_tokenizer_shows_no_guessed_rows(tmp_path, write_dataset):
    write_dataset(tmp_path / "ds", n=12, shards=2)
    out = _inspect(str(tmp_path / "ds"))
    assert "rows not decoded:" in out and "  | " not in out
    assert "sessions               2 (2 split into windows)" in out  # 6 sequences a file
