"""Raw mode of the DALI loader (``make_loader(raw=...)``, CPU-only): the same batches as shards of
the same files, cache hits on later epochs and runs, changed files, bad files, parallel workers
and the ``warm`` command."""

from __future__ import annotations

import logging
import os
import re
import shutil
from pathlib import Path

import numpy as np
import orjson
import pytest
import torch

from rrweb_dali.cli import main as cli_main
from rrweb_dali.ingest import read_session
from rrweb_dali.loader import IGNORE_INDEX, make_loader
from rrweb_dali.preprocess import PreprocessOptions, preprocess
from rrweb_dali.synth import write_synth_corpus
from rrweb_dali.tokenizer import Tokenizer

MAX_TOKENS = 20_000  # about half of the synthetic sessions are longer: truncation is exercised
N_FILES = 24


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    write_synth_corpus(root, N_FILES, seed=5, workers=1)
    return root


@pytest.fixture(scope="module")
def shards(corpus, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ds") / "ds"
    preprocess(
        [corpus], out, PreprocessOptions(max_tokens=MAX_TOKENS, overflow="truncate"), workers=1
    )
    return out


def raw_loader(src, cache_dir, **kw):
    kw = {"parallel": False, "py_workers": 1, "device": "cpu", "max_tokens": MAX_TOKENS, **kw}
    return make_loader(raw=src, cache_dir=cache_dir, **kw)


def collect(loader):
    return [{k: v.clone() for k, v in b.items()} for b in loader]


def assert_same_batches(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x.keys() == y.keys()
        for k in x:
            assert torch.equal(x[k], y[k]), k


@pytest.mark.parametrize(
    "options",
    [
        {"labels": True, "position_ids": True},
        {"packing": 4096, "labels": True},
        {"max_length": 5000, "pad_to": 5000, "dtype": "int32"},
        {"batches_per_call": 3, "labels": True},  # 3 batches, each with its cache tail, a call
    ],
)
def test_raw_yields_the_tokens_of_shards_preprocessed_with_truncate(
    corpus, shards, tmp_path, options
):
    common = {"seed": 3, "world_size": 2, "rank": 1, **options}
    from_shards = make_loader(shards, batch_size=5, device="cpu", **common)
    from_raw = raw_loader(corpus, tmp_path / "cache", batch_size=5, **common)
    assert len(from_raw) == len(from_shards)
    for _ in range(2):  # a cold epoch, then a warm one
        assert_same_batches(collect(from_shards), collect(from_raw))
    # The same position and plan; only the dataset fingerprints differ (files against shards).
    raw_state, shard_state = from_raw.state_dict(), from_shards.state_dict()
    assert raw_state.pop("dataset") != shard_state.pop("dataset")
    assert raw_state == shard_state
    epochs = from_raw.cache_stats()["epochs"]
    assert [epochs[e]["batches"] for e in ("0", "1")] == [len(from_raw)] * 2


def test_second_epoch_and_second_run_hit_the_cache(corpus, tmp_path):
    loader = raw_loader(corpus, tmp_path / "cache", batch_size=8, seed=1)
    assert loader.cache_stats()["hits"] == 0
    for _ in range(2):
        collect(loader)
    stats = loader.cache_stats()
    assert stats["epochs"]["0"] == {"hits": 0, "misses": N_FILES, "batches": 3, "kind": "cold"}
    assert stats["epochs"]["1"] == {"hits": N_FILES, "misses": 0, "batches": 3, "kind": "warm"}
    assert stats["cold_epochs"] == 1 and stats["warm_epochs"] == 1
    assert stats["tokenize_s"] > 0 and stats["cached_read_s"] > 0
    assert stats["disk"]["appended"] == N_FILES and stats["bytes"] > stats["disk"]["bytes"] > 0
    assert {"hits", "misses", "evictions", "bytes"} <= set(stats)  # what the dashboard reads
    # A later run (a new process would see the same) reads everything from disk.
    later = raw_loader(corpus, tmp_path / "cache", batch_size=8, seed=1, memory_cache_bytes=0)
    collect(later)
    s = later.cache_stats()
    assert s["disk"]["hits"] == N_FILES and s["misses"] == 0 and s["warm_epochs"] == 1
    # Without cache_dir only each process's memory LRU is left (here one process: it all fits).
    memory_only = raw_loader(corpus, None, batch_size=8)
    collect(memory_only)
    collect(memory_only)
    s = memory_only.cache_stats()
    assert s["memory"]["hits"] == N_FILES and s["disk"]["bytes"] == 0 and s["misses"] == N_FILES


def test_a_file_changed_between_epochs_is_retokenized(corpus, tmp_path):
    src = tmp_path / "src"
    shutil.copytree(corpus, src)
    loader = raw_loader(src, tmp_path / "cache", batch_size=8, shuffle=False)
    first = collect(loader)
    files = sorted(p for p in src.rglob("*") if p.is_file())
    target = files[2]  # sorted order is the index: this is file 2
    if target.suffix == ".gz":
        target = target.with_suffix("")
    # New content no cache has seen (a copy of another file would be found by content).
    files[2].unlink()
    target.write_bytes(orjson.dumps(read_session(files[7])[:20]))
    second = collect(loader)
    want = Tokenizer().encode(read_session(target))[:MAX_TOKENS].astype(np.int64)
    row = second[0]
    assert int(row["index"][2]) == 2 and int(row["lengths"][2]) == want.size
    assert np.array_equal(row["input_ids"][2, : want.size].numpy(), want)
    assert not torch.equal(first[0]["input_ids"][2], row["input_ids"][2])
    stats = loader.cache_stats()
    assert stats["invalidations"] == 1 and stats["epochs"]["1"]["misses"] == 1, str(stats)


def test_bad_files_are_skipped_with_their_reason_and_ranks_stay_equal(
    corpus, tmp_path, caplog, hostile_inputs
):
    src = tmp_path / "src"
    shutil.copytree(corpus, src / "good")
    expected = hostile_inputs.write_hostile_inputs(src / "hostile")
    expected.pop("a_directory.json")  # a directory: discovery walks into it, it is not a file
    n = N_FILES + len(expected)
    world, bs = 3, 4
    caplog.set_level(logging.WARNING, logger="rrweb_dali.external_source.raw.cache_stats")
    counts = []
    for rank in range(world):
        loader = raw_loader(
            src, tmp_path / "cache", batch_size=bs, rank=rank, world_size=world, labels=True,
            read_limits=hostile_inputs.HOSTILE_LIMITS, seed=2,
        )  # fmt: skip
        for _ in range(2):
            batches = collect(loader)
            counts.append([b["input_ids"].shape[0] for b in batches])
            for b in batches[:-1]:
                assert b["input_ids"].shape[0] == bs
            for b in batches:
                bad = b["index"] < 0
                for row in torch.nonzero(bad).flatten().tolist():
                    assert b["lengths"][row] == 2
                    assert b["input_ids"][row, :2].tolist() == [Tokenizer.BOS, Tokenizer.EOS]
                    assert (b["labels"][row] == IGNORE_INDEX).all()
                good = ~bad
                assert (b["labels"][good] == torch.where(
                    b["attention_mask"][good].bool(), b["input_ids"][good], IGNORE_INDEX
                )).all()  # fmt: skip
        stats = loader.cache_stats()
        assert stats["bad_rows"] > 0
    # Every rank: the same batches of the same sizes (DDP cannot hang), the last one short.
    assert all(c == counts[0] for c in counts) and len(counts[0]) == -(-n // (bs * world))
    assert sum(counts[0]) == -(-n // world)
    # Over all ranks every hostile file was met; each is logged once per loader, with its reason.
    everyone = make_loader(raw=src, batch_size=n, device="cpu", parallel=False, py_workers=1,
                           cache_dir=tmp_path / "cache", read_limits=hostile_inputs.HOSTILE_LIMITS, shuffle=False)  # fmt: skip
    caplog.clear()
    collect(everyone)
    collect(everyone)
    stats = everyone.cache_stats()
    want: dict[str, int] = {}
    for reason in expected.values():
        want[reason] = want.get(reason, 0) + 1
    assert stats["bad_by_reason"] == dict(sorted(want.items()))
    assert stats["bad_files"] == len(expected) and stats["bad_rows"] == 2 * len(expected)
    logged = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(logged) == len(expected)
    assert any("gzip_bomb.json.gz" in m and "too_large" in m for m in logged)


def test_parallel_workers_tokenize_and_report_counters(corpus, tmp_path):
    """Raw mode's default: the source runs in spawned DALI workers; counters come back."""
    serial_loader = raw_loader(corpus, None, batch_size=6, seed=4, labels=True)
    serial = [collect(serial_loader) for _ in range(2)]
    loader = make_loader(
        raw=str(corpus / "**" / "*"), batch_size=6, device="cpu", seed=4, labels=True,
        cache_dir=tmp_path / "cache", max_tokens=MAX_TOKENS, py_workers=2,
    )  # fmt: skip
    try:
        assert loader.pipeline.parallel is True
        for epoch in range(2):
            assert_same_batches(serial[epoch], collect(loader))
        stats = loader.cache_stats()
        assert stats["misses"] == N_FILES and stats["hits"] == N_FILES
        assert stats["epochs"]["1"]["kind"] == "warm" and stats["workers"] >= 1
        # Each file was tokenized and written once, and found by its stat afterwards, whichever
        # worker wrote it (not re-read and found by content).
        assert stats["disk"]["appended"] == N_FILES and stats["disk"]["content_hits"] == 0
        assert loader.stats()["gather_s"] > 0
    finally:
        loader.close()


def test_make_loader_takes_shards_or_raw(corpus, shards):
    with pytest.raises(ValueError, match="either shards"):
        make_loader(shards, batch_size=4, device="cpu", raw=corpus)
    with pytest.raises(ValueError, match="either shards"):
        make_loader(batch_size=4, device="cpu")
    with pytest.raises(FileNotFoundError):
        make_loader(raw=corpus / "missing", batch_size=4, device="cpu")
    assert make_loader(shards, batch_size=4, device="cpu").cache_stats() is None


def test_warm_command_fills_the_cache(corpus, tmp_path, capsys):
    cache = tmp_path / "cache"
    assert cli_main(["warm", str(corpus), "--cache-dir", str(cache), "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "tokenized now" in out and f"{N_FILES} in" in out
    assert cli_main(["warm", str(corpus), "--cache-dir", str(cache), "--workers", "2"]) == 0
    out = capsys.readouterr().out
    assert re.search(rf"already cached\s+{N_FILES}\n", out), out
    assert re.search(r"tokenized now\s+0\n", out), out
    loader = raw_loader(corpus, cache, batch_size=8)
    collect(loader)
    assert loader.cache_stats()["misses"] == 0  # warmed ahead: even the first epoch is warm
    assert cli_main(["warm", str(tmp_path / "nowhere"), "--cache-dir", str(cache)]) == 2


def test_bucketing_orders_files_by_their_size(corpus, tmp_path):
    """Lengths are unknown before tokenizing: bucketing sorts by the file-size proxy."""
    from rrweb_dali.external_source.raw import RawFiles
    from rrweb_dali.external_source.sampling import bucket_by_length, epoch_permutation

    files = RawFiles.discover(corpus)
    loader = raw_loader(corpus, tmp_path / "cache", batch_size=4, seed=9, bucketing=True,
                        bucket_window=3)  # fmt: skip
    order = torch.cat([b["index"] for b in collect(loader)]).tolist()
    plan = bucket_by_length(epoch_permutation(N_FILES, 9, 0), files.proxy_lengths(), 4, 3, 9, 0)
    assert order == plan.tolist()


def _corpus_with_an_undecodable_name(corpus: Path, dest: Path) -> tuple[Path, str]:
    """A copy of the corpus whose first file is renamed ``bad-\\xff...`` (bytes that are not
    UTF-8); returns the copy and the renamed file's path as Python names it."""
    shutil.copytree(corpus, dest)
    first = sorted(p for p in dest.rglob("*") if p.is_file())[0]
    bad = os.path.join(os.fsencode(first.parent), b"bad-\xff" + os.fsencode(first.name))
    os.rename(first, bad)
    return dest, os.fsdecode(bad)


@pytest.mark.parametrize("cached", [False, True])
def test_a_file_name_that_is_not_utf8_is_read_like_any_other(corpus, tmp_path, cached):
    src, bad = _corpus_with_an_undecodable_name(corpus, tmp_path / "src")
    cache_dir = tmp_path / "cache" if cached else None
    for _ in range(2):  # cold, then from the cache (or the memory LRU)
        loader = raw_loader(src, cache_dir, batch_size=5, shuffle=False)
        files = loader.reader.files
        assert bad in files.paths or os.path.abspath(bad) in files.paths
        seen = []
        for b in collect(loader):
            assert (b["index"] >= 0).all(), b["index"]
            for row, i in enumerate(b["index"].tolist()):
                want = Tokenizer().encode(read_session(files.paths[i]))[:MAX_TOKENS]
                n = int(b["lengths"][row])
                assert np.array_equal(b["input_ids"][row, :n].numpy(), want.astype(np.int64))
                seen.append(i)
        assert sorted(seen) == list(range(N_FILES))
        assert loader.cache_stats()["bad_files"] == 0


def test_a_damaged_cache_row_is_counted_and_served_fresh(corpus, tmp_path):
    cache = tmp_path / "cache"
    first = collect(raw_loader(corpus, cache, batch_size=8, shuffle=False))
    seg = sorted(cache.glob("*/seg-*.bin"))[0]  # a segment per batch, 8 rows each
    data = bytearray(seg.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one byte: one row
    seg.write_bytes(bytes(data))
    later = raw_loader(corpus, cache, batch_size=8, shuffle=False, memory_cache_bytes=0)
    assert_same_batches(first, collect(later))
    stats = later.cache_stats()
    assert stats["corrupt"] == 1 and stats["misses"] == 1 and stats["hits"] == N_FILES - 1
