"""Workers and schedulers: chunks of stimuli in this process, local processes or Dask.

Chunks are submitted a few at a time (a window of about three per worker) and their
results come back in plan order, so the caller can stream entries to disk as they arrive
and never holds more than the window's results, however large the set.
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import json
import math
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .draw import make_entry
from .errors import RunFailed
from .plan import plan_of

#: ``--jobs auto``: one worker process per this many pixels of the set (height x width x
#: frames, summed over all stimuli), at most one per available core; a set that would get
#: fewer than two runs in the calling process, where starting workers (each imports numpy,
#: scipy and stimgen anew) costs more than it saves.
AUTO_PX_PER_WORKER = 16_000_000

#: ``(entry, extras by part name, example image or None)`` per stimulus of a chunk
Result = list[tuple[dict[str, Any], dict[str, Any], np.ndarray | None]]


def available_cores() -> int:
    """Cores this process may run on (:func:`stimgen._validate.available_cores`)."""
    from .._validate import available_cores as cores

    return cores()


def auto_jobs(n_stimuli: int, shape: tuple[int, int], n_frames: int | None) -> int:
    """Worker processes for ``--jobs auto``: see :data:`AUTO_PX_PER_WORKER`."""
    px = n_stimuli * shape[0] * shape[1] * (n_frames or 1)
    workers = min(available_cores(), px // AUTO_PX_PER_WORKER)
    return int(workers) if workers >= 2 else 1


def part_modules(parts: list) -> list[str]:
    """The modules defining ``parts``, for workers to import (so the parts are registered)."""
    return sorted({type(p).__module__ for p in parts} - {"__main__", "__mp_main__"})


def _import_parts(modules: Sequence[str]) -> None:
    import importlib

    for name in modules:
        importlib.import_module(name)  # registers parts defined outside the package


def _worker_init(exp_json: str | None = None, modules: Sequence[str] = (), parent_pid: int | None = None) -> None:
    """Run once in each worker process, before its first chunk.

    The worker exits when the main process ``parent_pid`` does, however it ends (SIGKILL
    too: :func:`stimgen._procs.die_with_parent`), so no orphan goes on writing. Then it
    imports the modules of the experiment's parts and builds the plan of the experiment
    (its filters; the imports of the generation path) while the parent is still
    submitting, so the first chunk does not pay for it.
    """
    if parent_pid is not None:
        from .._procs import die_with_parent

        die_with_parent(parent_pid)
    _import_parts(modules)
    if exp_json is not None:
        plan_of(json.loads(exp_json))


def _work(task: tuple) -> Result:
    """Worker: generate, encode, write and measure a chunk of stimuli (spawn-safe).

    ``task`` is ``(experiment JSON, entropy, indices, output folder, examples per
    condition, modules defining the experiment's parts[, sync])``; results are ``(entry,
    extras, example image or None)`` per stimulus. Files are written plainly: the run makes
    the whole set durable with one filesystem sync before renaming it into place (no fsync
    per file); ``sync`` (a remote worker) syncs them on the worker's side.
    """
    exp_json, entropy, indices, outdir, n_examples, modules = task[:6]
    _import_parts(modules)
    plan = plan_of(json.loads(exp_json))
    root = Path(outdir)
    results = []
    made: set[Path] = set()
    for i in indices:
        entry, files, extras, img = make_entry(plan, i, entropy)
        for rel, _, data in files:
            target = root / rel
            if target.parent not in made:
                target.parent.mkdir(parents=True, exist_ok=True)
                made.add(target.parent)
            with open(target, "wb") as fh:
                fh.write(data)
        clip = plan.exp["stimulus"]
        if clip["clipping"] == "error" and entry["clipped_fraction"] > clip["max_clipped_fraction"]:
            raise ValueError(
                f"stimulus {i} ({entry['file']}): {entry['clipped_fraction']:.4%} of pixels "
                f"were clipped, more than stimulus.max_clipped_fraction = {clip['max_clipped_fraction']:g}; "
                "lower rms_contrast"
            )
        results.append((entry, extras, img if entry["repeat"] < n_examples else None))
    if len(task) > 6 and task[6]:  # a remote worker: make its files durable on its side
        from .durable import sync_tree

        sync_tree(root)
    return results


def _chunk_size(n: int, jobs: int) -> int:
    """At most 32 stimuli per chunk, about 8 chunks per worker for small sets."""
    return max(1, min(32, math.ceil(n / max(1, jobs * 8))))


class _Chunks(Sequence):
    """Stimulus indices ``0 .. n-1`` in ranges of ``size``, made as they are asked for."""

    def __init__(self, n: int, size: int) -> None:
        self.n, self.size = n, size

    def __len__(self) -> int:
        return math.ceil(self.n / self.size)

    def __getitem__(self, k):  # type: ignore[override]
        if isinstance(k, slice):
            return [self[j] for j in range(*k.indices(len(self)))]
        k = k + len(self) if k < 0 else k
        if not 0 <= k < len(self):
            raise IndexError(f"chunk {k} out of range")
        return range(k * self.size, min(self.n, (k + 1) * self.size))


def _chunks(n: int, jobs: int) -> _Chunks:
    """Stimulus indices in chunks: a lazy sequence of ranges (nothing is built per index)."""
    return _Chunks(n, _chunk_size(n, jobs))


def _execute(tasks: Iterable[tuple], jobs: int, scheduler: str, address: str | None,
             exp_json: str | None = None, modules: Sequence[str] = ()) -> Iterator[Result]:  # fmt: skip
    """Yield the results of each task in order, by the chosen scheduler; failures -> RunFailed."""
    if scheduler == "dask":
        yield from _execute_dask(tasks, address)
        return
    if jobs == 1:
        for t in tasks:
            try:
                yield _work(t)
            except (OSError, ValueError) as exc:
                raise RunFailed(f"stimulus generation failed: {exc}") from exc
        return
    import multiprocessing as mp
    from concurrent.futures.process import BrokenProcessPool

    pool = cf.ProcessPoolExecutor(
        max_workers=jobs, mp_context=mp.get_context("spawn"),
        initializer=_worker_init, initargs=(exp_json, list(modules), os.getpid()),
    )  # fmt: skip
    try:
        for fut in _in_order(tasks, lambda t: pool.submit(_work, t), window=3 * jobs):
            try:
                yield fut.result()
            except BrokenProcessPool as exc:
                raise RunFailed(
                    "a worker process died while generating stimuli (killed, out of memory, or started "
                    "from a script without `if __name__ == '__main__':`)"
                ) from exc
            except (OSError, ValueError) as exc:
                raise RunFailed(f"stimulus generation failed: {exc}") from exc
    finally:
        # cancel what has not started and wait for running chunks, so nothing writes into
        # the temporary directory after it is removed
        pool.shutdown(wait=True, cancel_futures=True)


def _in_order(tasks: Iterable[tuple], submit: Any, window: int) -> Iterator[Any]:
    """Futures of ``tasks`` in task order, keeping at most ``window`` submitted ahead.

    The next task is submitted before the oldest future is handed out (the caller waits on
    it), so the workers stay busy while the caller works on a result.
    """
    it = iter(tasks)
    pending: collections.deque = collections.deque()

    def fill() -> None:
        while len(pending) < window:
            t = next(it, None)
            if t is None:
                return
            pending.append(submit(t))

    fill()
    while pending:
        fut = pending.popleft()
        fill()
        yield fut


def _execute_dask(tasks: Iterable[tuple], address: str | None) -> Iterator[Result]:
    try:
        from dask.distributed import Client
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ValueError("scheduler 'dask' needs dask.distributed: pip install 'stimgen[dask]'") from exc
    try:
        client = Client(address, timeout="10s")
    except OSError as exc:
        raise RunFailed(f"cannot connect to the dask scheduler at {address}: {exc}") from exc
    futures: set = set()  # submitted and not yet handed out

    def submit(t: tuple) -> Any:
        fut = client.submit(_work, (*t[:6], True), pure=False)
        futures.add(fut)
        return fut

    try:
        for fut in _in_order(tasks, submit, window=64):
            try:
                res = fut.result()
            except (OSError, ValueError) as exc:
                raise RunFailed(f"stimulus generation failed on a dask worker: {exc}") from exc
            futures.discard(fut)
            yield res
    finally:
        unfinished = [f for f in futures if not f.done()]
        if unfinished:
            client.cancel(unfinished)
        client.close()
