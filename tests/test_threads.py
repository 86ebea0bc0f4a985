"""stimgen._threads: lasting pools, and work shared by the caller and a pool."""

from __future__ import annotations

import os
import threading
import time

import pytest

from stimgen import _threads


def test_a_pool_lasts_per_process_and_size():
    assert _threads.pool(3) is _threads.pool(3)
    assert _threads.pool(2) is not _threads.pool(3)
    assert _threads._POOLS[(os.getpid(), 3)] is _threads.pool(3)


@pytest.mark.parametrize("threads", [1, 2, 3, 8])
def test_share_does_every_item_once_and_keeps_their_order(threads):
    seen: list[int] = []
    lock = threading.Lock()
    names: set[str] = set()

    def square(x: int) -> int:
        with lock:
            seen.append(x)
            names.add(threading.current_thread().name)
        return x * x

    items = list(range(200))
    assert _threads.share(_threads.pool(threads), threads, square, items) == [x * x for x in items]
    assert sorted(seen) == items  # each item once
    assert len(names) <= threads
    assert _threads.share(None, threads, square, [5]) == [25]
    assert _threads.share(_threads.pool(threads), threads, square, []) == []


def test_share_without_a_pool_or_with_one_thread_runs_here_in_order():
    order: list[int] = []
    here = threading.get_ident()

    def note(x: int) -> int:
        assert threading.get_ident() == here
        order.append(x)
        return -x

    assert _threads.share(None, 4, note, [3, 1, 2]) == [-3, -1, -2]
    assert _threads.share(_threads.pool(4), 1, note, [7, 8]) == [-7, -8]
    assert order == [3, 1, 2, 7, 8]


def test_an_error_of_any_item_is_raised_once_every_thread_stopped():
    running = []
    lock = threading.Lock()

    def fn(x: int) -> int:
        with lock:
            running.append(x)
        if x == 13:
            raise ValueError("item 13 failed")
        return x

    with pytest.raises(ValueError, match="item 13 failed"):
        _threads.share(_threads.pool(3), 3, fn, list(range(40)))
    assert 13 in running
    after = list(running)
    _threads.pool(3).submit(lambda: None).result()  # any helper still at work would run on
    assert running == after  # no thread took an item after share() returned


def test_a_share_inside_a_shared_item_runs_in_its_thread_and_never_deadlocks():
    """Items that share work themselves, on the same pool: its one thread is busy with an
    outer item (waiting for an inner helper would wait for itself), so the inner items run
    in the thread that asked for them."""

    def inner(x: int) -> int:
        return x + 1

    def outer(x: int) -> list[int]:
        return _threads.share(_threads.pool(1), 2, inner, [x, x * 10, x * 100])

    got: list[list[list[int]]] = []
    caller = threading.Thread(target=lambda: got.append(_threads.share(_threads.pool(1), 2, outer, list(range(20)))),
                              daemon=True)  # a deadlock fails the test instead of hanging it
    caller.start()
    caller.join(60)
    assert got == [[[x + 1, x * 10 + 1, x * 100 + 1] for x in range(20)]]


def test_after_an_error_no_thread_takes_another_item():
    """A failing item stops the sharing: the other threads finish the item they hold and take
    no more, as after an interrupt of the caller."""
    started: list[int] = []
    lock = threading.Lock()
    second, raised = threading.Event(), threading.Event()

    def fn(x: int) -> int:
        with lock:
            started.append(x)
            first = len(started) == 1
        if first:  # the first item taken fails once another thread holds an item too
            second.wait(10)
            raised.set()
            raise KeyboardInterrupt
        second.set()
        raised.wait(10)
        time.sleep(0.05)  # the failing thread marks the stop meanwhile
        return x

    with pytest.raises(KeyboardInterrupt):
        _threads.share(_threads.pool(2), 2, fn, list(range(1000)))
    assert len(started) <= 3  # the failing item, the other thread's item and at most the one after


def test_threads_asking_at_once_for_a_new_pool_get_the_same_one(monkeypatch):
    made: list[object] = []
    plain = _threads.ThreadPoolExecutor

    class SlowToMake(plain):  # type: ignore[misc, valid-type]
        def __init__(self, *args: object, **kwargs: object) -> None:
            time.sleep(0.05)  # the other thread asks meanwhile
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(_threads, "ThreadPoolExecutor", SlowToMake)
    size = 977  # a size no other test asks for
    got: list[object] = []
    askers = [threading.Thread(target=lambda: got.append(_threads.pool(size))) for _ in range(2)]
    for t in askers:
        t.start()
    for t in askers:
        t.join()
    try:
        assert len(made) == 1 and got[0] is got[1] is made[0]
    finally:
        _threads._POOLS.pop((os.getpid(), size), None)
        for p in made:
            p.shutdown()  # type: ignore[attr-defined]
