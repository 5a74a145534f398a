"""The token cache on its own (no DALI): levels, keys, invalidation, eviction, crash safety and
hostile files."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from rrweb_dali.external_source.raw import CacheOptions, DiskCache, RawFiles, TokenCache, warm
from rrweb_dali.external_source.raw.disk_cache import FileKey
from rrweb_dali.external_source.raw.token_cache import MemoryLRU

from rrweb_dali.ingest import read_session
from rrweb_dali.shards.format import ShardWriter
from rrweb_dali.synth import write_synth_corpus
from rrweb_dali.tokenizer import Tokenizer
from rrweb_dali.tokenizer.windows import apply_overflow

REPO = Path(__file__).resolve().parents[1]
MAX_TOKENS = 20_000


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    write_synth_corpus(root, 24, seed=5, workers=1)
    return root


def files_of(root: Path) -> list[str]:
    return sorted(str(p.resolve()) for p in root.rglob("*") if p.is_file())


def expected_tokens(path: str, max_tokens: int = MAX_TOKENS) -> np.ndarray:
    full = Tokenizer().encode(read_session(path))
    return np.asarray(apply_overflow(full, max_tokens, "truncate").windows[0])


def test_memory_lru_is_bounded_in_bytes_and_evicts_least_recent():
    from rrweb_dali.external_source.raw.token_cache import Fetched

    lru = MemoryLRU(max_bytes=3 * (1000 + 128))
    for name in "abc":
        lru.put(name, 1, 1, Fetched(np.zeros(500, np.uint16)))  # 1000 bytes each
    assert len(lru) == 3 and lru.bytes <= lru.max_bytes
    assert lru.get("a") is not None  # a is now the most recent
    lru.put("d", 1, 1, Fetched(np.zeros(500, np.uint16)))
    assert lru.get("b") is None and lru.get("a") is not None and lru.evictions == 1
    lru.put("huge", 1, 1, Fetched(np.zeros(10_000, np.uint16)))  # larger than the whole cache
    assert lru.get("huge") is None and lru.bytes <= lru.max_bytes


def test_levels_tokens_and_counters(corpus, tmp_path):
    paths = files_of(corpus)
    options = CacheOptions(cache_dir=str(tmp_path / "cache"), max_tokens=MAX_TOKENS)
    cache = TokenCache(options)
    first = [cache.get(p) for p in paths]
    assert [f.level for f in first] == ["tokenized"] * len(paths)
    for p, f in zip(paths, first, strict=True):
        assert np.array_equal(f.tokens, expected_tokens(p))
    assert cache.counts["tokenized"] == cache.counts["disk_misses"] == len(paths)
    cache.flush()
    again = [cache.get(p) for p in paths]
    assert {f.level for f in again} == {"memory"}
    assert cache.counts["memory_hits"] == len(paths)
    # Another process or a later run: a fresh cache on the same directory reads from disk.
    other = TokenCache(options)
    from_disk = [other.get(p) for p in paths]
    assert {f.level for f in from_disk} == {"disk"} and other.counts["tokenized"] == 0
    for a, b in zip(first, from_disk, strict=True):
        assert np.array_equal(a.tokens, b.tokens)
    # The disk keeps every token: a smaller max_tokens is served from the same entries.
    short = TokenCache(CacheOptions(cache_dir=str(tmp_path / "cache"), max_tokens=100))
    assert np.array_equal(short.get(paths[0]).tokens, expected_tokens(paths[0], 100))
    assert short.counts["disk_hits"] == 1
    # A different tokenizer config is another namespace: nothing is shared.
    other_tok = TokenCache(CacheOptions(cache_dir=str(tmp_path / "cache"), max_text_bytes=8))
    assert other_tok.get(paths[0]).level == "tokenized"


def test_changed_file_is_retokenized_and_moved_file_found_by_content(corpus, tmp_path):
    src = tmp_path / "src"
    shutil.copytree(corpus, src)
    a, b = files_of(src)[:2]
    options = CacheOptions(cache_dir=str(tmp_path / "cache"), max_tokens=MAX_TOKENS)
    cache = TokenCache(options)
    old = cache.get(a).tokens
    cache.flush()
    shutil.copyfile(b, a)  # rewrite a with other content (another size and mtime)
    new = cache.get(a)
    assert new.level == "tokenized" and cache.counts["invalidations"] == 1
    assert np.array_equal(new.tokens, expected_tokens(b)) and not np.array_equal(new.tokens, old)
    cache.flush()
    fresh = TokenCache(options)  # the disk holds the new version under the new stat
    assert np.array_equal(fresh.get(a).tokens, new.tokens) and fresh.counts["disk_hits"] == 1
    # Same bytes under a new path (a copy, a move): found by content hash, not tokenized.
    moved = tmp_path / "moved.json"
    shutil.copyfile(b, moved)
    hit = fresh.get(str(moved))
    assert hit.level == "disk" and fresh.counts["content_hits"] == 1
    assert fresh.counts["tokenized"] == 0


def test_eviction_keeps_the_disk_cache_under_its_limit(corpus, tmp_path):
    paths = files_of(corpus)
    limit = 300_000
    options = CacheOptions(cache_dir=str(tmp_path / "cache"), disk_bytes=limit)
    cache = TokenCache(options)
    for p in paths:
        cache.get(p)
        cache.flush()  # one segment per file, so eviction has whole segments to choose from
    disk = cache.disk
    on_disk = sum(f.stat().st_size for f in disk.directory.glob("seg-*"))
    assert 0 < on_disk <= limit
    assert cache.snapshot()[list(cache.counts).index("disk_evictions")] > 0
    assert len(DiskCache(tmp_path / "cache", options.namespace())) < len(paths)
    # The oldest files were evicted: a fresh cache tokenizes the first file again.
    fresh = TokenCache(options)
    assert fresh.get(paths[0]).level == "tokenized"
    assert fresh.get(paths[-1]).level == "disk"


def test_leftovers_of_a_killed_writer_are_ignored(corpus, tmp_path):
    options = CacheOptions(cache_dir=str(tmp_path / "cache"))
    cache = TokenCache(options)
    paths = files_of(corpus)[:3]
    for p in paths:
        cache.get(p)
    cache.flush()
    ns = cache.disk.directory
    # A writer killed before close (only a .bin.tmp), and one killed between its two renames.
    w = ShardWriter(ns, "seg-00000000000000000001-1-aaaaaa-000001")
    w.add(np.arange(10, dtype=np.uint16), w.add_file("not a key"))
    (ns / "seg-00000000000000000002-1-bbbbbb-000001.bin").write_bytes(b"\x00" * 8)
    reopened = DiskCache(tmp_path / "cache", options.namespace())
    assert len(reopened) == len(paths)
    fresh = TokenCache(options)
    assert [fresh.get(p).level for p in paths] == ["disk"] * 3


_WARM_SCRIPT = """
import sys
from rrweb_dali.external_source.raw import CacheOptions, RawFiles
from rrweb_dali.external_source.raw.warm import warm_chunk, WarmTask
files = RawFiles.discover(sys.argv[1])
task = WarmTask(CacheOptions(cache_dir=sys.argv[2]), tuple(range(len(files))), files.paths, 1)
print("ready", flush=True)
warm_chunk(task)
"""


def test_sigkilled_warm_leaves_a_usable_cache(corpus, tmp_path):
    """SIGKILL a process that is filling the cache: what it made durable reads back exactly, and
    a later warm run completes, tokenizing only the rest."""
    cache_dir = tmp_path / "cache"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", _WARM_SCRIPT, str(corpus), str(cache_dir)],
        env=env,
        stdout=subprocess.PIPE,
    )
    try:
        assert proc.stdout.readline().strip() == b"ready"
        deadline = time.monotonic() + 30
        while not list(cache_dir.glob("*/seg-*.idx")) and time.monotonic() < deadline:
            time.sleep(0.002)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(10) == -signal.SIGKILL
    finally:
        proc.kill()
    options = CacheOptions(cache_dir=str(cache_dir), max_tokens=MAX_TOKENS)
    disk = DiskCache(cache_dir, options.namespace())
    files = RawFiles.discover(corpus)
    assert 0 < len(disk) < len(files)  # killed mid-way, with some files durable
    cached = [p for p in files.paths if disk.known_stat(p) is not None]
    for p in cached:
        st = os.stat(p)
        entry = disk.lookup_stat(p, st.st_size, st.st_mtime_ns)
        full = Tokenizer().encode(read_session(p))
        assert np.array_equal(disk.tokens(entry), full)
    result = warm(files, options, workers=1)
    assert result.hits == len(cached)
    assert result.counts["tokenized"] == len(files) - len(cached) and not result.bad
    assert len(DiskCache(cache_dir, options.namespace())) == len(files)
    # And a training run on the cache finds every file (loader in this process: no spawn).
    from rrweb_dali.loader import make_loader

    loader = make_loader(
        raw=corpus, batch_size=8, device="cpu", cache_dir=cache_dir, max_tokens=MAX_TOKENS,
        parallel=False,
    )  # fmt: skip
    assert sum(b["index"].numel() for b in loader) == len(files)
    assert loader.cache_stats()["misses"] == 0


def test_hostile_files_give_their_reason_and_are_cached_as_bad(tmp_path, hostile_inputs):
    expected = hostile_inputs.write_hostile_inputs(tmp_path / "hostile")
    options = CacheOptions(cache_dir=str(tmp_path / "cache"), limits=hostile_inputs.HOSTILE_LIMITS)
    cache = TokenCache(options)
    for name, reason in expected.items():
        got = cache.get(str((tmp_path / "hostile" / name).resolve()))
        assert got.tokens is None and got.error == reason, name
    cache.flush()
    fresh = TokenCache(options)
    for name, reason in expected.items():
        got = fresh.get(str((tmp_path / "hostile" / name).resolve()))
        assert got.error == reason, name
    # Only what the stat alone rejects (a directory) is checked again; the rest is not re-read.
    assert fresh.counts["tokenized"] == 0 and fresh.counts["bytes_read"] == 0
    assert fresh.counts["disk_hits"] == len(expected) - 1


def test_file_key_round_trips_through_a_segment(tmp_path):
    disk = DiskCache(tmp_path, "ns")
    key = FileKey('/x/\u00e9 "quoted".json', 12, 34, "ab" * 16)
    disk.append(key, np.arange(5, dtype=np.uint16))
    disk.append(FileKey("/y.json", 1, 2, "cd" * 16), None, "not_json", "bad")
    assert disk.pending == 2 and len(disk) == 0  # not visible before the flush
    disk.flush()
    other = DiskCache(tmp_path, "ns")
    entry = other.lookup_stat('/x/\u00e9 "quoted".json', 12, 34)
    assert np.array_equal(other.tokens(entry), np.arange(5))
    assert other.lookup_digest("cd" * 16).error == "not_json"


def _one_segment_per_file(options: CacheOptions, paths: list[str]) -> list[Path]:
    """Cache ``paths`` with a flush after each file: one segment (one row) per file."""
    cache = TokenCache(options)
    for p in paths:
        assert cache.get(p).tokens is not None
        cache.flush()
    return sorted(cache.disk.directory.glob("seg-*.bin"))


def test_damaged_segments_are_detected_counted_and_tokenized_again(corpus, tmp_path, caplog):
    """Two flipped bytes in each of 5 segments: never served as hits, but counted as corrupt
    and tokenized again; the fresh rows win, so the next process hits every file."""
    options = CacheOptions(cache_dir=str(tmp_path / "cache"), max_tokens=MAX_TOKENS)
    paths = files_of(corpus)
    segments = _one_segment_per_file(options, paths)
    assert len(segments) == len(paths)
    damaged = segments[1:21:4]
    assert len(damaged) == 5
    for seg in damaged:
        data = bytearray(seg.read_bytes())
        assert len(data) > 8
        for pos in (3, len(data) // 2):  # same size: no size check can see it
            data[pos] ^= 0x5A
        seg.write_bytes(bytes(data))
    fresh = TokenCache(options)
    for p in paths:
        got = fresh.get(p)
        assert np.array_equal(got.tokens, expected_tokens(p)), p
    c = fresh.counts
    assert c["corrupt"] == 5 and c["tokenized"] == 5
    assert c["disk_hits"] == len(paths) - 5 and fresh.disk.counters["corrupt_rows"] == 5
    assert sum("fails its CRC-32" in r.getMessage() for r in caplog.records) == 5
    fresh.flush()
    later = TokenCache(options)
    assert [later.get(p).level for p in paths] == ["disk"] * len(paths)
    assert later.counts["corrupt"] == 0 and later.counts["tokenized"] == 0


def test_a_segment_whose_index_is_damaged_is_skipped(corpus, tmp_path, caplog):
    from rrweb_dali.shards.format import HEADER_SIZE

    options = CacheOptions(cache_dir=str(tmp_path / "cache"), max_tokens=MAX_TOKENS)
    paths = files_of(corpus)[:3]
    segments = _one_segment_per_file(options, paths)
    idx = segments[1].with_suffix(".idx")
    data = bytearray(idx.read_bytes())
    data[HEADER_SIZE + 8 : HEADER_SIZE + 16] = (2**40).to_bytes(8, "little")  # offsets[1]
    idx.write_bytes(bytes(data))
    fresh = TokenCache(options)
    assert fresh.disk.counters["corrupt_segments"] == 1
    assert any("is damaged" in r.getMessage() for r in caplog.records)
    levels = [fresh.get(p).level for p in paths]
    assert levels == ["disk", "tokenized", "disk"]
    assert np.array_equal(fresh.get(paths[1]).tokens, expected_tokens(paths[1]))


def test_a_file_name_that_is_not_utf8_is_cached_under_its_portable_name(corpus, tmp_path):
    import orjson

    from rrweb_dali.ingest.names import name_bytes, portable_name
    from rrweb_dali.shards.format import ShardIndex

    src = files_of(corpus)[0]
    raw_dir = os.fsencode(tmp_path / "odd")
    os.mkdir(raw_dir)
    bad = os.fsdecode(os.path.join(raw_dir, b"bad-\xff" + os.fsencode(Path(src).name)))
    shutil.copyfile(src, bad)
    options = CacheOptions(cache_dir=str(tmp_path / "cache"), max_tokens=MAX_TOKENS)
    cache = TokenCache(options)
    got = cache.get(bad)
    assert got.error is None and np.array_equal(got.tokens, expected_tokens(src))
    cache.flush()
    (idx,) = cache.disk.directory.glob("seg-*.idx")
    (key,) = ShardIndex(idx).files  # the file table is valid UTF-8 JSON
    stored = orjson.loads(key)["p"]
    assert stored == portable_name(bad) and "\\xff" in stored
    assert name_bytes(stored) == os.fsencode(bad)  # lossless
    fresh = TokenCache(options)
    again = fresh.get(bad)
    assert again.level == "disk" and np.array_equal(again.tokens, got.tokens)
