"""Running a set: validate, plan, execute, write the manifest and figures atomically."""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from . import budget
from . import entries as _entries
from .durable import sync_dir_entry, sync_tree
from .entries import ENTRIES_FILE, Entries, EntryWriter
from .execute import _chunks, _execute, auto_jobs, part_modules
from .figures import _condition_figures, _set_figures
from .manifest import (
    _clipping_message,
    _condition_summary,
    _dumps,
    _manifest,
    _warn_clipping,
    read_manifest,
)
from .plan import Plan, plan_of
from .pool import ConditionPool
from .report import build_report_html
from .schema import load_experiment, validate_experiment


def run_experiment(
    experiment: str | os.PathLike | Mapping[str, Any],
    out: str | os.PathLike | None = None,
    *,
    jobs: int | str | None = "auto",
    seed: int | None = None,
    force: bool = False,
    progress: bool | None = None,
    scheduler: str = "local",
    address: str | None = None,
    budget_check: bool = True,
) -> dict[str, Any]:
    """Generate a complete stimulus set: files, ``manifest.json`` and figures.

    Parameters
    ----------
    experiment : path or mapping
        A YAML experiment file, or an experiment dict (validated with
        :func:`validate_experiment`).
    out : path, optional
        Output directory (default: ``./<name>`` in the current directory). Its parent
        is created if needed. Must not exist unless ``force``.
    jobs : int or "auto", optional
        Worker processes for the local scheduler; 1 runs in this process. ``"auto"`` (the
        default, also None): one worker per 16 million pixels of the set (height x width
        x frames summed over its stimuli), at most one per available core, and this
        process alone when that gives fewer than two (small sets do not repay starting
        workers). The files do not depend on it.
    seed : int, optional
        Seed entropy overriding the file's ``seed``. Without either, fresh entropy is drawn
        and recorded in the manifest.
    force : bool
        Replace an existing ``out`` (only after the new set is complete).
    progress : bool, optional
        Draw a progress bar on stderr (default: only when stderr is a terminal).
    scheduler : {"local", "dask"}
        "dask" sends the chunks to a ``dask.distributed`` scheduler at ``address``
        (workers must see ``out``'s parent directory, e.g. a shared filesystem).
    address : str, optional
        ``HOST:PORT`` of the Dask scheduler.
    budget_check : bool
        Estimate the memory (per process) and the disk the set needs, and refuse to start
        when they exceed the available memory (``MemAvailable``) or the free disk of the
        output's parent (default True; False tries anyway).

    Returns
    -------
    dict
        The manifest, as written to ``out/manifest.json`` (``manifest["path"]`` is not
        stored in the file but added here: the set's directory). ``manifest["status"]``
        is ``"failed"`` when a stimulus or a condition failed its checks: the set is
        written all the same. ``manifest["stimuli"]`` holds the entries; for a set of more
        than 1,000 stimuli they stay in ``entries.jsonl`` and are read from it on demand.

    Raises
    ------
    ExperimentError
        If the experiment is invalid (nothing is written).
    ValueError
        If the set would need more memory or disk than available (nothing is written).
    stimgen.io.OutputExistsError
        (a FileExistsError) If ``out`` exists and ``force`` is false, or ``force`` may not
        replace it (it holds files stimgen did not make). Nothing is written.
    stimgen.io.OutputConflictError
        (an OutputExistsError) If ``out`` appeared or changed while the set was written:
        nothing was replaced, and the new, complete set is kept in the sibling folder
        ``exc.kept`` named in the message.
    RunFailed
        If a worker died or a stimulus could not be written; no set is left behind.
    """
    from .. import _validate as v
    from .._progress import Progress
    from ..io import OutputExistsError, atomic_directory, sha256_bytes

    v.choice("scheduler", scheduler, ("local", "dask"))
    if scheduler == "dask" and not address:
        raise ValueError("scheduler 'dask' needs address HOST:PORT of a dask.distributed scheduler")
    if jobs is not None and jobs != "auto":
        if isinstance(jobs, str) or isinstance(jobs, bool) or not isinstance(jobs, int | np.integer) or jobs < 1:
            raise ValueError(f"jobs must be 'auto' or an integer >= 1, got {jobs!r}")
    yaml_bytes: bytes | None = None
    source: str | None = None
    if isinstance(experiment, Mapping):
        exp = validate_experiment(experiment)
    else:
        exp = load_experiment(experiment)
        yaml_bytes = Path(experiment).read_bytes()
        source = Path(experiment).name
    if seed is not None:
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
        exp["seed"] = int(seed)  # not via float: 128-bit entropy must stay exact
    entropy = int(exp["seed"]) if exp["seed"] is not None else int(np.random.SeedSequence().entropy)  # type: ignore[arg-type]
    exp["seed"] = entropy
    plan = plan_of(exp)
    if scheduler == "dask":
        n_jobs = 16
    else:
        n_jobs = auto_jobs(plan.n, plan.shape, plan.n_frames) if jobs in (None, "auto") else int(jobs)  # type: ignore[arg-type]
        n_jobs = max(1, min(n_jobs, len(_chunks(plan.n, n_jobs))))
    final = Path(out) if out is not None else Path.cwd() / exp["name"]
    if os.path.lexists(final) and not force:  # before any work; atomic_directory checks again
        raise OutputExistsError("output directory {path} already exists ({force})", path=final)
    if budget_check:
        if scheduler == "local" and jobs in (None, "auto"):  # auto: no more workers than fit
            n_jobs = budget.fitting_processes(budget.estimate(plan, n_jobs), n_jobs)
        h, w = plan.shape
        frames = f"{plan.n_frames} frames of " if plan.n_frames else ""
        what = f"{source or exp['name']} ({plan.n:,} stimuli of {frames}{h} x {w} px)"
        budget.check(budget.estimate(plan, n_jobs if scheduler == "local" else 1), final.parent, what=what)
    run_warnings = _warn_parts(plan, source or exp["name"])
    from ..geometry import angular_size_deg

    # the exact angle of each side, once; warns when a size given in degrees is large
    size_deg_angular = angular_size_deg(plan.shape, plan.ppd, requested_deg=exp["stimulus"]["size_deg"],
                                        what="stimulus.size_deg")  # fmt: skip
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OSError(f"cannot create the parent folder of the output {final}: {exc.strerror or exc}") from None
    exp_json = json.dumps(exp)  # not sort_keys: the factorial's key order is the plan's order
    figures_on = bool(exp["output"]["figures"])
    n_examples = exp["output"]["examples_per_condition"] if figures_on else 0
    with atomic_directory(final, force=force) as tmp:
        modules = part_modules(plan.parts)
        tasks = ((exp_json, entropy, ch, str(tmp), n_examples, modules) for ch in _chunks(plan.n, n_jobs))
        pools = {c.index: ConditionPool(plan, c) for c in plan.conditions}
        summaries: list[dict[str, Any]] = []
        examples: dict[int, list[np.ndarray]] = {}
        figures: list[str] = []
        writer = EntryWriter(tmp / ENTRIES_FILE)
        try:
            with Progress(plan.n, exp["name"], enabled=progress) as bar:
                for chunk in _execute(tasks, n_jobs, scheduler, address, exp_json, modules):
                    for entry, extras, img in chunk:
                        writer.write(entry)
                        c = plan.conditions[entry["condition"]["index"]]
                        pool = pools[c.index]
                        pool.add(entry, extras)
                        if img is not None:
                            examples.setdefault(c.index, []).append(img)
                        if pool.n == c.repeats:  # the condition is complete: summary, figures
                            summaries.append(_condition_summary(plan, c, pool))
                            if figures_on:
                                figures += _condition_figures(plan, c, pool, summaries[-1], tmp)
                    bar.update(len(chunk))
        finally:
            entries_sha = writer.close()
        if yaml_bytes is not None:
            (tmp / "experiment.yaml").write_bytes(yaml_bytes)
        counts = {k: sum(p.pass_counts()[k] for p in pools.values()) for k in ("n_pass", "n_fail", "n_not_measurable")}
        manifest = _manifest(plan, exp, entropy, summaries, counts, yaml_bytes, source, sha256_bytes,
                             size_deg_angular=size_deg_angular)  # fmt: skip
        if figures_on:
            figures += _set_figures(plan, pools, summaries, examples, tmp)
        manifest["figures"] = figures
        clipped = _clipping_message(manifest, source or exp["name"])
        manifest["warnings"] = run_warnings + ([clipped] if clipped else [])  # for the report
        del examples
        streamed = plan.n > _entries.INLINE_MAX_STIMULI
        if streamed:
            manifest["entries"] = {
                "file": ENTRIES_FILE, "n": writer.n, "sha256": entries_sha,
                "format": "JSON Lines: one stimulus entry per line, in index order",
            }  # fmt: skip
        else:
            manifest["stimuli"] = list(Entries(tmp / ENTRIES_FILE))
            (tmp / ENTRIES_FILE).unlink()
        with open(tmp / "manifest.json", "wb") as fh:
            fh.write(_dumps(manifest).encode())
        # the review page, built from what the run recorded (never recomputed)
        (tmp / "report.html").write_bytes(build_report_html(tmp, read_manifest(tmp)[1]).encode("utf-8"))
        sync_tree(tmp)  # one filesystem sync makes the whole set durable before the rename
    sync_dir_entry(final.parent)  # and the rename itself
    if streamed:
        manifest["stimuli"] = Entries(final / ENTRIES_FILE)
    manifest["path"] = str(final)
    _warn_clipping(manifest, source or exp["name"])
    return manifest


def _warn_parts(plan: Plan, source: str) -> list[str]:
    """The parts' warnings about the plan, once each, before generating; returns them."""
    said = [f"{source}: {msg}" for part in plan.parts for msg in part.warnings(plan)]
    for msg in said:
        warnings.warn(msg, UserWarning, stacklevel=3)
    return said
