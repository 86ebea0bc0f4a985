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


def pool(threads: int) -> ThreadPoolExecutor:
    """A lasting pool of ``threads`` threads of this process (a forked child makes its own)."""
    key = (os.getpid(), threads)
    found = _POOLS.get(key)
    if found is None:
        found = _POOLS[key] = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="stimgen")
    return found


def share(workers: ThreadPoolExecutor | None, threads: int, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
    """``[fn(x) for x in items]`` by this thread and up to ``threads - 1`` threads of ``workers``.

    Every thread takes the next item in turn until none is left, this one included. The
    results are in the order of ``items`` whichever thread made them; an exception of any
    item is raised here once every thread has stopped. Without ``workers``, with
    ``threads < 2``, with fewer than two items, or in a pool thread already doing items of
    a ``share`` (so that nested calls never wait for threads busy waiting themselves), this
    thread does them all, in order.
    """
    if workers is None or threads < 2 or len(items) < 2 or getattr(_helping, "now", False):
        return [fn(x) for x in items]
    results: list[Any] = [None] * len(items)
    todo = iter(enumerate(items))  # next() is atomic: each item is taken once

    def work() -> None:
        for i, x in todo:
            results[i] = fn(x)

    def helper() -> None:
        _helping.now = True  # a share() inside runs in this thread: no wait on a busy pool
        try:
            work()
        finally:
            _helping.now = False

    helpers = [workers.submit(helper) for _ in range(min(threads, len(items)) - 1)]
    try:
        work()
    finally:
        for f in helpers:  # every helper done before the caller sees the results (or the error)
            f.result()
    return results
