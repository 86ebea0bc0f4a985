"""Threads of this process: lasting pools, and work shared by the caller and a pool.

* :func:`pool` is a lasting pool of ``threads`` threads, made once per process and size
  (a forked child makes its own), so no call pays for starting threads.
* :func:`share` runs a function over a list of items by the calling thread and threads of
  a pool, each taking the next item in turn: the caller works too (no idle caller waiting
  for a wake-up), a thread slowed by another process takes fewer items, and the results
  come back in the order of the items.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

__all__ = ["pool", "share"]

_POOLS: dict[tuple[int, int], ThreadPoolExecutor] = {}
_helping = threading.local()  # .now: this thread is doing items of a share()
_making = threading.Lock()  # one pool per process and size, whichever threads ask at once


def _new_lock_in_child() -> None:  # a fork while another thread made a pool: not left held
    global _making
    _making = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_lock_in_child)


def pool(threads: int) -> ThreadPoolExecutor:
    """A lasting pool of ``threads`` threads of this process (a forked child makes its own).

    Threads asking at once for a pool not made yet get the same one.
    """
    key = (os.getpid(), threads)
    found = _POOLS.get(key)
    if found is None:
        with _making:
            found = _POOLS.get(key)
            if found is None:
                found = _POOLS[key] = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="stimgen")
    return found


def share(workers: ThreadPoolExecutor | None, threads: int, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
    """``[fn(x) for x in items]`` by this thread and up to ``threads - 1`` threads of ``workers``.

    Every thread takes the next item in turn until none is left, this one included. The
    results are in the order of ``items`` whichever thread made them. After an exception of
    any item, or an interrupt of this thread (Ctrl-C, SIGTERM), no thread takes another
    item, and it is raised here once the others have finished the item they were doing
    (at most one each). Without ``workers``, with
    ``threads < 2``, with fewer than two items, or in a pool thread already doing items of
    a ``share`` (so that nested calls never wait for threads busy waiting themselves), this
    thread does them all, in order.
    """
    if workers is None or threads < 2 or len(items) < 2 or getattr(_helping, "now", False):
        return [fn(x) for x in items]
    results: list[Any] = [None] * len(items)
    todo = iter(enumerate(items))  # next() is atomic: each item is taken once
    stop: list[bool] = []  # set on an error or an interrupt: no thread takes another item

    def work() -> None:
        for i, x in todo:
            if stop:
                return
            try:
                results[i] = fn(x)
            except BaseException:
                stop.append(True)
                raise

    def helper() -> None:
        _helping.now = True  # a share() inside runs in this thread: no wait on a busy pool
        try:
            work()
        finally:
            _helping.now = False

    helpers = [workers.submit(helper) for _ in range(min(threads, len(items)) - 1)]
    try:
        work()
        for f in helpers:
            f.result()
    except BaseException:  # an item failed, or an interrupt (Ctrl-C, SIGTERM) came here
        stop.append(True)
        for f in helpers:
            f.cancel()  # not started: never will
        for f in helpers:  # started: done after its current item
            if not f.cancelled():
                f.exception()
        raise
    return results
