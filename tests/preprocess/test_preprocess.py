"""``preprocess``: round trips, determinism across worker counts, overflow policies, bad input.

Real processes and real files throughout: the corpora are written to disk, the local executor
runs a real process pool, and the shards are read back through the public shard reader. The
helpers (``synth_corpus``, ``assert_accounting``, ...) are fixtures of ``conftest.py`` here,
shared with ``test_preprocess_resume.py`` and ``test_preprocess_ray.py``.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from rrweb_dali.cli import main as cli_main
from rrweb_dali.preprocess import (
    PlanMismatch,
    PreprocessOptions,
    apply_overflow,
    discover,
    preprocess,
)
from rrweb_dali.shards.manifest import read_manifest
from rrweb_dali.tokenizer import Tokenizer

SYNTH_N = 24


@pytest.fixture(scope="module")
def synth(tmp_path_factory, synth_corpus) -> Path:
    return synth_corpus(tmp_path_factory.mktemp("synth") / "corpus", SYNTH_N)


SMALL_GROUPS = PreprocessOptions(group_files=5)


# ---------------------------------------------------------------- the overflow policy


def test_split_windows_restore_the_session_and_mark_its_ends():
    tok = Tokenizer()
    tokens = np.arange(10, 33, dtype=np.uint16)  # 23 tokens, BOS/EOS not needed for slicing
    tokens[0], tokens[-1] = tok.BOS, tok.EOS
    ov = apply_overflow(tokens, 10, "split")
    assert ov.outcome == "split" and ov.dropped_tokens == 0
    assert [len(w) for w in ov.windows] == [10, 10, 3]
    np.testing.assert_array_equal(np.concatenate(ov.windows), tokens)
    assert ov.windows[0][0] == tok.BOS and ov.windows[-1][-1] == tok.EOS
    assert all(w[0] != tok.BOS for w in ov.windows[1:])
    assert all(w[-1] != tok.EOS for w in ov.windows[:-1])
    assert all(w.base is not None for w in ov.windows)  # views, not copies


def test_truncate_keeps_window_zero_and_skip_drops_all():
    tokens = np.arange(25, dtype=np.uint16)
    tr = apply_overflow(tokens, 10, "truncate")
    assert tr.outcome == "truncated" and tr.dropped_tokens == 15
    np.testing.assert_array_equal(tr.windows[0], tokens[:10])
    sk = apply_overflow(tokens, 10, "skip")
    assert sk.outcome == "skipped" and sk.windows == [] and sk.dropped_tokens == 25
    for policy in ("split", "truncate", "skip"):
        fit = apply_overflow(tokens, 25, policy)
        assert fit.outcome == "fit" and len(fit.windows) == 1 and len(fit.windows[0]) == 25
    with pytest.raises(ValueError):
        apply_overflow(tokens, 1, "split")
    with pytest.raises(ValueError):
        apply_overflow(tokens, 10, "wrap")


# ---------------------------------------------------------------- discovery


def test_discover_sorts_relative_paths_and_skips_hidden_and_outputs(tmp_path):
    src = tmp_path / "src"
    for rel in ("b/2.json", "a.json", "b/10.json", ".hidden.json", ".git/x.json", "c/.d/y.json"):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(b"[]")
    out = src / "dataset"
    (out / "state").mkdir(parents=True)
    (out / "state" / "plan.json").write_text("{}")
    (out / "shards").mkdir()
    (out / "shards" / "shard-000000-0000.bin").write_bytes(b"")
    files = discover([src], exclude=[out])
    assert [f.relpath for f in files] == ["a.json", "b/10.json", "b/2.json"]
    assert all(f.size == 2 and f.mtime_ns > 0 for f in files)
    # A glob: relative to the part before the first wildcard; a file: relative to its folder.
    assert [f.relpath for f in discover([str(src / "b" / "*.json")])] == ["10.json", "2.json"]
    assert [f.relpath for f in discover([src / "a.json"])] == ["a.json"]
    # The same file twice counts once; two different files with one relative path are refused.
    assert len(discover([src, src / "b" / "2.json", str(src / "**" / "*.json")])) == 3
    (tmp_path / "src2").mkdir()
    (tmp_path / "src2" / "a.json").write_bytes(b"[]")
    with pytest.raises(ValueError, match="same relative path"):
        discover([src / "a.json", tmp_path / "src2" / "a.json"])
    with pytest.raises(FileNotFoundError):
        discover([tmp_path / "nope"])


# ---------------------------------------------------------------- round trips


def test_round_trip_synth(synth, tmp_path, joined_by_file, expected_tokens, assert_accounting):
    result = preprocess([synth], tmp_path / "out", SMALL_GROUPS, workers=2)
    joined = joined_by_file(tmp_path / "out")
    files = [f.relpath for f in discover([synth])]
    assert len(files) == SYNTH_N and sorted(joined) == files
    for rel in files:
        np.testing.assert_array_equal(joined[rel], expected_tokens(synth, rel), err_msg=rel)
    t = assert_accounting(tmp_path / "out")
    assert t["files_read"] == t["sessions"] == SYNTH_N and t["files_rejected"] == 0
    assert result.groups_total == -(-SYNTH_N // 5) and result.groups_run == result.groups_total
    m = read_manifest(tmp_path / "out")
    assert m.tokenizer == Tokenizer().config() and m.dtype == "uint16"
    assert m.options["max_tokens"] == 65536 and m.options["overflow"] == "split"
    text = (tmp_path / "out" / "manifest.json").read_text()
    assert str(synth) not in text and str(tmp_path) not in text  # relative paths only


def test_round_trip_real_corpus(
    tmp_path, real_corpus, joined_by_file, windows_by_file, expected_tokens, assert_accounting
):
    recorded = real_corpus / "recorded"
    options = PreprocessOptions(max_tokens=50_000)  # some real sessions are longer: exercise split
    preprocess([recorded], tmp_path / "out", options, workers=2)
    t = assert_accounting(tmp_path / "out")
    joined = joined_by_file(tmp_path / "out")
    files = [f.relpath for f in discover([recorded])]
    assert sorted(joined) == files and t["files_rejected"] == 0
    for rel in files:
        np.testing.assert_array_equal(joined[rel], expected_tokens(recorded, rel), err_msg=rel)
    assert t["split"] > 0 and t["windows"] > t["sessions"]
    assert all(
        len(tokens) <= 50_000
        for pieces in windows_by_file(tmp_path / "out").values()
        for _, tokens in pieces
    )


def test_outputs_do_not_depend_on_worker_count(synth, tmp_path, assert_same_tree):
    preprocess([synth], tmp_path / "w1", SMALL_GROUPS, workers=1)
    preprocess([synth], tmp_path / "w2", SMALL_GROUPS, workers=2)
    assert len(list((tmp_path / "w1" / "shards").glob("*.idx"))) == 5
    assert_same_tree(tmp_path / "w1", tmp_path / "w2")


# ---------------------------------------------------------------- overflow, end to end


def test_overflow_policies_count_and_preserve_tokens(
    synth,
    tmp_path,
    expected_tokens,
    assert_accounting,
    windows_by_file,
    joined_by_file,
    error_lines,
):
    lengths = {f.relpath: len(expected_tokens(synth, f.relpath)) for f in discover([synth])}
    limit = int(np.median(list(lengths.values())))  # about half the sessions overflow
    longer = [rel for rel, n in lengths.items() if n > limit]
    assert 0 < len(longer) < len(lengths)

    def run(policy: str, shard_tokens: int = 1 << 26) -> dict:
        out = tmp_path / f"{policy}-{shard_tokens}"
        opts = PreprocessOptions(
            max_tokens=limit, overflow=policy, group_files=5, shard_tokens=shard_tokens
        )
        preprocess([synth], out, opts, workers=1)
        return assert_accounting(out)

    t = run("split")
    assert t["split"] == len(longer) and t["truncated"] == t["skipped_overflow"] == 0
    assert t["windows"] == sum(-(-n // limit) for n in lengths.values())
    assert t["tokens"] == sum(lengths.values()) and t["tokens_dropped_overflow"] == 0
    for rel, pieces in windows_by_file(tmp_path / f"split-{1 << 26}").items():
        assert all(len(tokens) <= limit for _, tokens in pieces)
        assert (len(pieces) > 1) == (rel in longer)

    t = run("truncate")
    assert t["truncated"] == len(longer) and t["split"] == 0 and t["windows"] == len(lengths)
    assert t["tokens"] == sum(min(n, limit) for n in lengths.values())
    assert t["tokens"] + t["tokens_dropped_overflow"] == sum(lengths.values())

    t = run("skip")
    assert t["skipped_overflow"] == len(longer) and t["sessions"] == len(lengths) - len(longer)
    skipped = [e for e in error_lines(tmp_path / f"skip-{1 << 26}") if e["status"] == "skipped"]
    assert sorted(e["path"] for e in skipped) == sorted(longer)
    assert all(e["reason"] == "too_large" for e in skipped)

    # A small --shard-tokens splits each group's output over several shards; windows stay whole
    # and in order (one file's windows may straddle two shards).
    t = run("split", shard_tokens=limit)
    assert t["shards"] > t["groups"]
    joined = joined_by_file(tmp_path / f"split-{limit}")
    for rel in lengths:
        np.testing.assert_array_equal(joined[rel], expected_tokens(synth, rel))


# ---------------------------------------------------------------- bad input


def test_hostile_files_are_recorded_and_good_sessions_kept(
    synth, tmp_path, hostile_inputs, assert_accounting, error_lines, joined_by_file, expected_tokens
):
    src = tmp_path / "src"
    good = sorted(p for p in synth.rglob("*") if p.is_file())[:4]
    for p in good:
        (src / "good").mkdir(parents=True, exist_ok=True)
        shutil.copy(p, src / "good" / p.name)
    expected = hostile_inputs.write_hostile_inputs(src / "hostile")
    salvageable = hostile_inputs.write_salvageable_inputs(src / "salvage")
    limits = hostile_inputs.HOSTILE_LIMITS
    opts = PreprocessOptions(
        max_bytes=limits.max_bytes,
        max_depth=limits.max_depth,
        max_events=limits.max_events,
        group_files=7,
    )
    preprocess([src], tmp_path / "out", opts, workers=2)
    t = assert_accounting(tmp_path / "out")
    lines = {e["path"]: e for e in error_lines(tmp_path / "out")}
    # A directory is walked, not read: the hostile "a_directory.json" (empty) adds no input.
    expected.pop("a_directory.json")
    for name, reason in expected.items():
        line = lines[f"hostile/{name}"]
        assert (line["status"], line["reason"], line["salvaged"]) == ("rejected", reason, False), (
            name
        )
    for name in salvageable:
        line = lines[f"salvage/{name}"]
        assert (line["status"], line["reason"], line["salvaged"]) == ("salvaged", "truncated", True)
        assert line["detail"].startswith("salvaged")
    assert t["files_rejected"] == len(expected) and t["salvaged"] == len(salvageable)
    assert t["sessions"] == len(good) + len(salvageable)
    joined = joined_by_file(tmp_path / "out")
    for p in good:
        rel = f"good/{p.name}"
        np.testing.assert_array_equal(joined[rel], expected_tokens(src, rel, limits))
    assert not any(k.startswith("hostile/") for k in joined)


def test_unexpected_exception_is_classified_and_logged(
    synth, tmp_path, monkeypatch, caplog, error_lines, assert_accounting
):
    import rrweb_dali.preprocess.task as task

    real = task.load_session
    files = [f.relpath for f in discover([synth])]

    def flaky(path, limits=None):
        if str(path).endswith(files[1]):
            raise KeyError("nodes")
        if str(path).endswith(files[2]):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path, limits)

    monkeypatch.setattr(task, "load_session", flaky)
    with caplog.at_level(logging.ERROR):
        preprocess([synth], tmp_path / "out", SMALL_GROUPS, workers=1)
    lines = {e["path"]: e for e in error_lines(tmp_path / "out")}
    assert lines[files[1]]["reason"] == "not_rrweb"
    assert lines[files[1]]["detail"].startswith("unexpected KeyError")
    assert lines[files[2]]["reason"] == "io_error"
    assert lines[files[2]]["detail"].endswith(f"Permission denied: '{files[2]}'")  # no abs path
    assert str(synth) not in (tmp_path / "out" / "errors.jsonl").read_text()
    t = assert_accounting(tmp_path / "out")
    assert t["unexpected_errors"] == 2 and t["sessions"] == SYNTH_N - 2
    assert "Traceback" in caplog.text and files[1] in caplog.text


def test_other_options_on_an_existing_directory_are_refused(synth, tmp_path):
    preprocess([synth], tmp_path / "out", SMALL_GROUPS, workers=1)
    with pytest.raises(PlanMismatch, match="max_tokens"):
        preprocess(
            [synth], tmp_path / "out", PreprocessOptions(group_files=5, max_tokens=100), workers=1
        )


# ---------------------------------------------------------------- the command line


def test_cli_preprocess_prints_a_summary_and_help_shows_defaults(
    synth, tmp_path, capsys, assert_same_tree_subset
):
    rc = cli_main(
        [
            "preprocess",
            str(synth),
            "--out",
            str(tmp_path / "out"),
            "--workers",
            "1",
            "--group-files",
            "5",
            "--no-progress",
        ]
    )
    assert rc == 0
    printed = capsys.readouterr().out
    assert "files read" in printed and f"{SYNTH_N}" in printed
    assert_same_tree_subset(tmp_path / "out", synth)
    rc = cli_main(
        [
            "preprocess",
            str(synth),
            "--out",
            str(tmp_path / "out"),
            "--max-tokens",
            "10",
            "--no-progress",
        ]
    )
    assert rc == 2 and "other options" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli_main(["preprocess", "--help"])
    helptext = capsys.readouterr().out
    assert "default 65536" in helptext and "--overflow" in helptext and "--ray-address" in helptext


@pytest.fixture
def assert_same_tree_subset(joined_by_file):
    def assert_same_tree_subset(out: Path, synth: Path) -> None:
        joined = joined_by_file(out)
        assert sorted(joined) == [f.relpath for f in discover([synth])]

    return assert_same_tree_subset
