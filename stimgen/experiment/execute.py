"""Workers and schedulers: chunks of stimuli in this process, local processes or Dask."""

from __future__ import annotations

import concurrent.futures as cf
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from .draw import make_entry
from .errors import RunFailed
from .plan import plan_of


def part_modules(parts: list) -> list[str]:
    """The modules defining ``parts``, for workers to import (so the parts are registered)."""
    return sorted({type(p).__module__ for p in parts} - {"__main__", "__mp_main__"})


def _work(task: tuple[str, int, range, str, int, list[str]]) -> list[tuple[dict[str, Any], dict[str, Any], np.ndarray | None]]:
    """Worker: generate, encode, write and measure a chunk of stimuli (spawn-safe).

    A task is ``(experiment JSON, entropy, indices, output dir, examples per condition,
    modules defining the experiment's parts)``; results are ``(entry, extras, example image
    or None)`` per stimulus.
    """
    import importlib

    exp_json, entropy, indices, outdir, n_examples, modules = task
    for name in modules:
        importlib.import_module(name)  # registers parts defined outside the package
    plan = plan_of(json.loads(exp_json))
    root = Path(outdir)
    results = []
    for i in indices:
        entry, files, extras, img = make_entry(plan, i, entropy)
        for rel, _, data in files:
            target = root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
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
    return results


def _chunks(n: int, jobs: int) -> list[range]:
    """Stimulus indices in chunks of at most 32 (ranges: nothing is built per index)."""
    size = max(1, min(32, math.ceil(n / max(1, jobs * 4))))
    return [range(s, min(n, s + size)) for s in range(0, n, size)]


def _execute(tasks: list, jobs: int, scheduler: str, address: str | None):
    """Yield the results of each task, by the chosen scheduler; failures -> RunFailed."""
    if scheduler == "dask":
        yield from _execute_dask(tasks, address)
        return
    if jobs == 1 or len(tasks) == 1:
        for t in tasks:
            try:
                yield _work(t)
            except (OSError, ValueError) as exc:
                raise RunFailed(f"stimulus generation failed: {exc}") from exc
        return
    import multiprocessing as mp
    from concurrent.futures.process import BrokenProcessPool

    pool = cf.ProcessPoolExecutor(max_workers=min(jobs, len(tasks)), mp_context=mp.get_context("spawn"))
    try:
        futures = [pool.submit(_work, t) for t in tasks]
        for fut in cf.as_completed(futures):
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


def _execute_dask(tasks: list, address: str | None):
    try:
        from dask.distributed import Client, as_completed
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ValueError("scheduler 'dask' needs dask.distributed: pip install 'stimgen[dask]'") from exc
    try:
        client = Client(address, timeout="10s")
    except OSError as exc:
        raise RunFailed(f"cannot connect to the dask scheduler at {address}: {exc}") from exc
    futures = []
    try:
        futures = client.map(_work, tasks, pure=False)
        for fut in as_completed(futures):
            try:
                yield fut.result()
            except (OSError, ValueError) as exc:
                raise RunFailed(f"stimulus generation failed on a dask worker: {exc}") from exc
    finally:
        unfinished = [f for f in futures if not f.done()]
        if unfinished:
            client.cancel(unfinished)
        client.close()
