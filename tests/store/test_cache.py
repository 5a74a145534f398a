"""The node's shard cache on its own: one download per key across processes, least recently
needed eviction, protection, failed downloads, stale parts; and the retry policy."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time

import pytest

from rrweb_dali.store import CacheTooSmall, RetryPolicy, ShardCache
from rrweb_dali.store.cache import locked
from rrweb_dali.store.transfer import retryable, with_retries


def _put(cache: ShardCache, key: str, size: int, protect=(), evicted=None) -> bool:
    def download(part):
        with open(part, "r+b") as fh:
            fh.write(b"x" * size)

    return cache.fill(key, size, download, protect, [] if evicted is None else evicted)


def test_a_filled_key_is_not_downloaded_again(tmp_path):
    cache = ShardCache(tmp_path, 1000)
    assert _put(cache, "a", 100) is True
    assert _put(cache, "a", 100) is False
    assert cache.token_path("a").read_bytes() == b"x" * 100
    assert cache.used_bytes() == 100


def test_eviction_takes_the_least_recently_needed_unprotected_shard(tmp_path):
    cache = ShardCache(tmp_path, 300)
    for k, key in enumerate("abc"):
        _put(cache, key, 100)
        os.utime(cache.token_path(key), (1000 + k, 1000 + k))  # a oldest, c newest
    cache.touch("a")  # needed now: b becomes the least recently needed
    evicted: list[str] = []
    _put(cache, "d", 100, evicted=evicted)
    assert evicted == ["b"] and not cache.has("b") and cache.has("a")
    evicted = []
    _put(cache, "e", 200, protect={"c"}, evicted=evicted)
    assert sorted(evicted) == ["a", "d"] and cache.has("c")
    assert cache.used_bytes() <= 300
    with pytest.raises(CacheTooSmall, match="full of shards in use"):
        _put(cache, "f", 200, protect={"c", "e"})
    with pytest.raises(CacheTooSmall, match="holds at most 300 bytes, but one shard needs 301"):
        _put(cache, "g", 301)


def test_a_failed_download_leaves_nothing_behind(tmp_path):
    cache = ShardCache(tmp_path, 1000)

    def broken(part):
        with open(part, "r+b") as fh:
            fh.write(b"half")
        raise OSError("connection reset")

    with pytest.raises(OSError, match="connection reset"):
        cache.fill("k", 100, broken, (), [])
    assert not cache.has("k") and not list((tmp_path / "tokens").iterdir())
    assert _put(cache, "k", 100) is True  # and a later try works


def test_only_abandoned_partial_files_are_removed(tmp_path):
    cache = ShardCache(tmp_path, 1000)
    dead, live = tmp_path / "tokens" / "dead.part", tmp_path / "tokens" / "live.part"
    dead.write_bytes(b"1")
    live.write_bytes(b"2")
    with locked(tmp_path / "locks" / "live.lock"):  # a download still running (any age)
        cache.remove_abandoned_parts()
        assert not dead.exists() and live.exists()
    cache.remove_abandoned_parts()  # its process died: the lock is free
    assert not live.exists()


def test_room_held_by_a_dead_download_is_taken_back_at_once(tmp_path):
    cache = ShardCache(tmp_path, 200)
    _put(cache, "kept", 100)
    (tmp_path / "tokens" / "dead.part").write_bytes(b"x" * 100)  # no one holds its lock
    t0 = time.monotonic()
    assert cache.fill("new", 100, lambda part: part.write_bytes(b"n" * 100), {"kept"}, [], 30)
    assert time.monotonic() - t0 < 5  # not the 30 s a live download would be waited for
    assert cache.has("kept") and cache.has("new") and cache.used_bytes() == 200


FILL = """
import os, sys, time
from rrweb_dali.store import ShardCache
root, log = sys.argv[1:]
cache = ShardCache(root, 10_000)
def download(part):
    with open(log, "a") as fh:
        fh.write(f"{os.getpid()}\\n")
    time.sleep(1.0)  # long enough for the other process to be waiting on the lock
    with open(part, "r+b") as fh:
        fh.write(b"y" * 500)
print(cache.fill("same", 500, download, (), []))
"""


def test_two_processes_filling_one_key_download_it_once(tmp_path):
    script = tmp_path / "fill.py"
    script.write_text(FILL)
    log = tmp_path / "downloads.log"
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(tmp_path / "cache"), str(log)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = sorted(p.communicate(timeout=120)[0].strip() for p in procs)
    assert [p.returncode for p in procs] == [0, 0]
    assert outs == ["False", "True"]  # one downloaded, the other found it done
    assert len(log.read_text().split()) == 1
    assert (tmp_path / "cache" / "tokens" / "same.bin").read_bytes() == b"y" * 500


def test_retry_waits_grow_to_their_cap_and_bugs_are_not_retried():
    assert list(RetryPolicy(attempts=6, backoff_s=0.5, max_backoff_s=3).waits()) == [
        0.5,
        1.0,
        2.0,
        3,
        3,
    ]
    assert retryable(ConnectionResetError()) and retryable(TimeoutError())
    assert not retryable(FileNotFoundError()) and not retryable(TypeError("bug"))
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionRefusedError("refused")
        return "ok"

    assert with_retries(flaky, RetryPolicy(attempts=3, backoff_s=0), "x") == "ok"
    calls.clear()
    with pytest.raises(OSError, match=r"x: failed 2 times, last with ConnectionRefusedError"):
        with_retries(flaky, RetryPolicy(attempts=2, backoff_s=0), "x")
    with pytest.raises(TypeError):
        with_retries(lambda: int([]), RetryPolicy(attempts=5, backoff_s=0), "x")


HANGING_DOWNLOAD = """
import threading, time
from rrweb_dali.store.threads import DaemonPool
pool = DaemonPool(2, "test")
started = threading.Event()
def download():
    started.set()
    time.sleep(600)  # a download riding out a dead server's retries
pool.submit(download)
started.wait()
print("done")
"""


def test_a_download_in_the_background_never_keeps_a_finished_program_alive(tmp_path):
    script = tmp_path / "hang.py"
    script.write_text(HANGING_DOWNLOAD)
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "done"


def test_the_daemon_pool_hands_results_and_errors_over():
    from rrweb_dali.store.threads import DaemonPool

    pool = DaemonPool(2, "test")
    assert pool.submit(lambda a, b: a + b, 2, 3).result(timeout=10) == 5
    failing = pool.submit(int, "not a number")
    with pytest.raises(ValueError):
        failing.result(timeout=10)
    pool.shutdown()


def test_concurrent_fills_wait_for_room_and_never_overfill(tmp_path):
    """Threads filling a cache with room for two shards: every fill gets room in time (a
    download finishing elsewhere frees it), and no download ever runs over the limit."""
    size, limit = 100, 200
    cache = ShardCache(tmp_path, limit)
    over: list[int] = []
    errors: list[BaseException] = []

    def download(part):
        used = cache.used_bytes()
        if used > limit:
            over.append(used)
        time.sleep(random.uniform(0, 0.002))
        with open(part, "r+b") as fh:
            fh.write(b"z" * size)

    def worker(w: int) -> None:
        try:
            for n in range(60):
                cache.fill(f"{w}-{n}", size, download, (), [], wait_s=30)
        except BaseException as exc:  # handed to the test thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a fill never returned"
    assert not errors, errors[:1]
    assert not over, f"a download ran with {max(over)} bytes in a {limit}-byte cache"
    assert cache.used_bytes() <= limit
