"""The loader's background thread (``rrweb_dali.loader.ahead``): order, bounds, errors, stop."""

from __future__ import annotations

import threading
import time

import pytest

from rrweb_dali.loader.ahead import Ahead


def counter():
    state = {"n": 0}

    def produce():
        state["n"] += 1
        return state["n"]

    return produce, state


def test_items_arrive_in_order_exactly_count_times():
    produce, state = counter()
    ahead = Ahead(produce, count=7, depth=2)
    assert [ahead.get() for _ in range(7)] == list(range(1, 8))
    assert ahead.remaining == 0 and state["n"] == 7
    with pytest.raises(RuntimeError, match="after the last item"):
        ahead.get()


def test_producer_stays_at_most_depth_ahead():
    produce, state = counter()
    ahead = Ahead(produce, count=100, depth=3)
    deadline = time.monotonic() + 10
    while state["n"] < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)  # time to run further ahead if it could
    # ``depth`` queued plus the one produced and waiting for room.
    assert state["n"] == 3 + 1
    assert ahead.get() == 1
    ahead.stop()
    assert state["n"] <= 3 + 2


def test_an_error_is_raised_at_its_item_and_ends_the_stream():
    calls = []

    def produce():
        calls.append(1)
        if len(calls) == 3:
            raise OSError("shard unreadable")
        return len(calls)

    ahead = Ahead(produce, count=10, depth=4)
    assert ahead.get() == 1 and ahead.get() == 2
    with pytest.raises(OSError, match="shard unreadable"):
        ahead.get()
    assert len(calls) == 3  # nothing produced after the failure
    with pytest.raises(RuntimeError):
        ahead.get()


def test_stop_returns_while_the_producer_is_blocked_on_a_full_queue():
    produce, _ = counter()
    ahead = Ahead(produce, count=1000, depth=1)
    time.sleep(0.1)
    t0 = time.perf_counter()
    ahead.stop()
    assert time.perf_counter() - t0 < 2
    assert not any(t.name == "ahead" and t.is_alive() for t in threading.enumerate())


def test_stop_waits_for_the_item_in_production():
    started, release, finished = threading.Event(), threading.Event(), threading.Event()

    def produce():
        started.set()
        release.wait(5)
        finished.set()
        return 0

    ahead = Ahead(produce, count=5, depth=1)
    started.wait(5)
    threading.Timer(0.2, release.set).start()
    ahead.stop()  # must not return while produce() still runs (it uses the pipeline)
    assert finished.is_set()


def test_stop_from_the_producer_thread_does_not_join_itself():
    """A loader's finalizer can run on the producer's thread; stop() there must not raise."""
    box, ready = {}, threading.Event()

    def produce():
        ready.wait(5)
        try:
            box["ahead"].stop()
        except Exception as error:  # joining its own thread would raise here
            box["error"] = error
        return 1

    box["ahead"] = Ahead(produce, count=3, depth=1, name="self-stopping")
    ready.set()
    deadline = time.monotonic() + 10
    while any(t.name == "self-stopping" for t in threading.enumerate()):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert "error" not in box
    box["ahead"].stop()
