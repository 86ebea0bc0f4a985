"""Running a set: validate, plan, execute, write the manifest and figures atomically."""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .execute import _chunks, _execute, part_modules
from .figures import _figures
from .manifest import _dumps, _manifest, _warn_clipping
from .plan import Plan, plan_of
from .schema import load_experiment, validate_experiment


def run_experiment(
    experiment: str | os.PathLike | Mapping[str, Any],
    out: str | os.PathLike | None = None,
    *,
    jobs: int | None = None,
    seed: int | None = None,
    force: bool = False,
    progress: bool | None = None,
    scheduler: str = "local",
    address: str | None = None,
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
    jobs : int, optional
        Worker processes for the local scheduler (default: all cores; 1 runs in this
        process). The files do not depend on it.
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

    Returns
    -------
    dict
        The manifest, as written to ``out/manifest.json`` (``manifest["path"]`` is not
        stored in the file but added here: the set's directory).

    Raises
    ------
    ExperimentError
        If the experiment is invalid (nothing is written).
    FileExistsError
        If ``out`` exists and ``force`` is false.
    RunFailed
        If a worker died or a stimulus could not be written; no set is left behind.
    """
    from .. import _validate as v
    from .._progress import Progress
    from ..io import atomic_directory, sha256_bytes

    v.choice("scheduler", scheduler, ("local", "dask"))
    if scheduler == "dask" and not address:
        raise ValueError("scheduler 'dask' needs address HOST:PORT of a dask.distributed scheduler")
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
    if jobs is None:
        jobs = os.cpu_count() or 1
    jobs = v.positive_int("jobs", jobs)
    plan = plan_of(exp)
    _warn_parts(plan, source or exp["name"])
    final = Path(out) if out is not None else Path.cwd() / exp["name"]
    if final.exists() and not force:
        raise FileExistsError(f"output directory {final} already exists (use --force to replace it)")
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OSError(f"cannot create the parent folder of the output {final}: {exc.strerror or exc}") from None
    exp_json = json.dumps(exp)  # not sort_keys: the factorial's key order is the plan's order
    n_examples = exp["output"]["examples_per_condition"] if exp["output"]["figures"] else 0
    chunks = _chunks(plan.n, jobs if scheduler == "local" else 16)
    results: list[tuple[dict[str, Any], dict[str, Any], np.ndarray | None]] = []
    with atomic_directory(final, force=force) as tmp:
        modules = part_modules(plan.parts)
        tasks = [(exp_json, entropy, ch, str(tmp), n_examples, modules) for ch in chunks]
        with Progress(plan.n, exp["name"], enabled=progress) as bar:
            for chunk_results in _execute(tasks, jobs, scheduler, address):
                results.extend(chunk_results)
                bar.update(len(chunk_results))
        results.sort(key=lambda t: t[0]["index"])
        if yaml_bytes is not None:
            (tmp / "experiment.yaml").write_bytes(yaml_bytes)
        manifest = _manifest(plan, exp, entropy, results, yaml_bytes, source, sha256_bytes)
        if exp["output"]["figures"]:
            manifest["figures"] = _figures(plan, results, tmp, manifest)
        from ..io import atomic_write_bytes

        atomic_write_bytes(tmp / "manifest.json", _dumps(manifest).encode())
    manifest["path"] = str(final)
    _warn_clipping(manifest, source or exp["name"])
    return manifest


def _warn_parts(plan: Plan, source: str) -> None:
    """The parts' warnings about the plan, once each, before generating."""
    for part in plan.parts:
        for msg in part.warnings(plan):
            warnings.warn(f"{source}: {msg}", UserWarning, stacklevel=3)
