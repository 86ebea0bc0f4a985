"""The manifest: per-condition summaries, versions, reading and checking a manifest."""

from __future__ import annotations

import json
import os
import platform
import warnings
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from . import display_out
from .entries import ENTRIES_FILE, Entries
from .keys import FORMATS, MANIFEST_VERSION, VALUE_CONVENTION
from .parts import combine_verdicts
from .plan import Condition, Plan, cond_dict
from .pool import ConditionPool


def _versions() -> dict[str, Any]:
    import scipy

    from .._version import __version__

    return {
        "stimgen_version": __version__,
        "python_version": platform.python_version(),
        "numpy_version": np.__version__,
        "scipy_version": scipy.__version__,
        "platform": platform.platform(),
    }


def _dumps(obj: Any) -> str:
    from .._json import dumps

    return dumps(obj)


def _condition_summary(plan: Plan, c: Condition, pool: ConditionPool) -> dict[str, Any]:
    """A condition's summary from its pool: parameters, each part's summary fields, pass counts, clipping."""
    out: dict[str, Any] = {
        **cond_dict(c),
        **pool.pass_counts(),
        "clipping": pool.clipping(),
    }
    measured = []
    for part in plan.parts:
        m = part.summary(plan, c, pool.parts[part.name])
        for k, v in m.fields.items():  # mappings under one key (``measured``) are merged
            out[k] = {**out[k], **v} if isinstance(v, dict) and isinstance(out.get(k), dict) else v
        measured.append((part.name, m))
    out["pass"], why = combine_verdicts(measured)  # the pooled check of the condition
    if why:
        out["not_measurable"] = why
    return out


def _clipping_message(manifest: Mapping[str, Any], source: str) -> str | None:
    """The warning for stimuli clipped beyond the allowed fraction (None when none were)."""
    over = [c for c in manifest["conditions"] if c["clipping"]["n_over_limit"]]
    if not over:
        return None
    n = sum(c["clipping"]["n_over_limit"] for c in over)
    worst = max(over, key=lambda c: c["clipping"]["max_clipped_fraction"])
    limit = worst["clipping"]["limit"]
    where = "at contrast -1 or +1"
    model, l0 = manifest.get("display_model"), manifest.get("mean_cd_m2")
    if isinstance(model, Mapping) and isinstance(l0, int | float) and l0 > 0:  # the display clips too
        lo, hi = max(-1.0, model["l_min_cd_m2"] / l0 - 1.0), min(1.0, model["l_max_cd_m2"] / l0 - 1.0)
        where = f"at contrast -1 or +1 or beyond the display's range ({lo:+.4g} to {hi:+.4g} about mean_cd_m2 = {l0:g})"
    return (
        f"{source}: {n} of {manifest['n_stimuli']} stimuli have more than "
        f"{limit:.3%} of their pixels clipped {where} (stimulus.max_clipped_fraction), "
        f"up to {worst['clipping']['max_clipped_fraction']:.3%} in condition {worst['index']} "
        f"({worst['label']}); their contrast and spectrum are distorted: lower stimulus.rms_contrast, "
        "or set stimulus.clipping: error to refuse such sets"
    )


def _warn_clipping(manifest: Mapping[str, Any], source: str) -> None:
    """One warning when stimuli of the set were clipped beyond the allowed fraction."""
    msg = _clipping_message(manifest, source)
    if msg:
        warnings.warn(msg, UserWarning, stacklevel=3)


def _manifest(plan, exp, entropy, conditions, counts, yaml_bytes, source, sha256_bytes, *,
              size_deg_angular: list[float]) -> dict[str, Any]:  # fmt: skip
    """The manifest without its entries: ``stimuli`` (or ``entries``) is added by the run.

    ``size_deg_angular``: the exact angle (deg) of each side, beside the linear ``size_deg``.
    ``counts``: ``n_pass``, ``n_fail`` and ``n_not_measurable`` of the set's stimuli.
    ``status`` is ``"failed"`` when a stimulus or a condition failed its checks, else
    ``"passed"`` (a quantity that could not be measured is not a failure; it is counted in
    ``n_not_measurable``); the set is complete either way.
    """
    geometry = plan.geometry.to_dict()
    failed = counts["n_fail"] > 0 or any(c["pass"] is False for c in conditions)
    return {
        "manifest_version": MANIFEST_VERSION,
        **_versions(),
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "name": exp["name"],
        "experiment_file": source,
        "experiment_sha256": None if yaml_bytes is None else sha256_bytes(yaml_bytes),
        "experiment": exp,
        "seed_entropy": entropy,
        "geometry": geometry,
        "shape_px": list(plan.shape),
        "size_deg": list(plan.size_deg),
        "size_deg_angular": list(size_deg_angular),
        "value_convention": VALUE_CONVENTION,
        "n_stimuli": plan.n,
        **counts,
        "status": "failed" if failed else "passed",
        **{k: v for part in plan.parts for k, v in part.manifest_fields(plan).items()},
        **display_out.manifest_fields(plan),  # display_model, mean_cd_m2 (with a display model)
        "conditions": conditions,
        "figures": [],
    }


def read_manifest(path: str | os.PathLike) -> tuple[Path, dict[str, Any]]:
    """``(set directory, manifest)`` from a set directory or its manifest.json.

    ``manifest["stimuli"]`` holds the entries: a list, or for a set that streams them to
    ``entries.jsonl`` (manifest ``entries``) an :class:`~stimgen.experiment.entries.Entries`
    that reads them one at a time (checked as they are read).
    """
    p = Path(path)
    mpath = p / "manifest.json" if p.is_dir() else p
    root = mpath.parent
    if not mpath.is_file():
        raise FileNotFoundError(f"no manifest.json in {p}")
    try:
        manifest = json.loads(mpath.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{mpath} is not valid JSON: {exc}") from None
    streamed = isinstance(manifest, dict) and "stimuli" not in manifest and "entries" in manifest
    if not isinstance(manifest, dict) or ("stimuli" not in manifest and not streamed) or "experiment" not in manifest:
        raise ValueError(f"{mpath} is not a stimgen manifest (no 'stimuli' or 'experiment')")
    if streamed:
        manifest["stimuli"] = _streamed_entries(manifest, root, str(mpath))
    _check_manifest(manifest, str(mpath))
    return root, manifest


def _bad(where: str, field_: str, want: str, got: Any) -> ValueError:
    shown = type(got).__name__ if isinstance(got, dict | list) else repr(got)
    return ValueError(f"{where}: {field_} must be {want}, got {shown}; the manifest is damaged")


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _streamed_entries(m: Mapping[str, Any], root: Path, where: str) -> Entries:
    """The lazily read entries of a set that keeps them in ``entries.jsonl``."""
    ref = m["entries"]
    if not isinstance(ref, dict):
        raise _bad(where, "entries", "a mapping (file, sha256, n)", ref)
    if ref.get("file") != ENTRIES_FILE:
        raise _bad(where, "entries.file", repr(ENTRIES_FILE), ref.get("file"))
    if not isinstance(ref.get("sha256"), str):
        raise _bad(where, "entries.sha256", "a hex digest (str)", ref.get("sha256"))
    if not _is_int(ref.get("n")):
        raise _bad(where, "entries.n", "an integer", ref.get("n"))
    fp = root / ENTRIES_FILE
    if not fp.is_file():
        raise FileNotFoundError(f"{where}: the set's entries file {fp} is missing")
    return Entries(fp, check=lambda i, e: _check_entry(e, i, str(fp)))


def _check_manifest(m: Mapping[str, Any], where: str) -> None:
    """The fields verify and regenerate rely on, with their types; ValueError naming the field.

    Entries listed in the manifest are checked here; streamed ones as they are read.
    """
    if not isinstance(m["experiment"], dict):
        raise _bad(where, "experiment", "a mapping (the resolved experiment)", m["experiment"])
    if not _is_int(m.get("seed_entropy")) or m["seed_entropy"] < 0:
        raise _bad(where, "seed_entropy", "an integer >= 0", m.get("seed_entropy"))
    if not _is_int(m.get("n_stimuli")):
        raise _bad(where, "n_stimuli", "an integer", m.get("n_stimuli"))
    if isinstance(m["stimuli"], Entries):
        return
    if not isinstance(m["stimuli"], list):
        raise _bad(where, "stimuli", "a list of entries", m["stimuli"])
    for i, e in enumerate(m["stimuli"]):
        _check_entry(e, i, where)


def _check_entry(e: Any, i: int, where: str) -> None:
    """One stimulus entry: its index, and its files as relative paths with hashes."""
    if not isinstance(e, dict):
        raise _bad(where, f"stimuli[{i}]", "a mapping", e)
    if e.get("index") != i or not _is_int(e.get("index")):
        raise _bad(where, f"stimuli[{i}].index", f"{i} (entries in plan order)", e.get("index"))
    files = e.get("files", [e])
    if not isinstance(files, list) or not files:
        raise _bad(where, f"stimuli[{i}].files", "a non-empty list of files", files)
    for j, f in enumerate(files):
        name = f"stimuli[{i}]" + ("" if f is e else f".files[{j}]")
        if not isinstance(f, dict):
            raise _bad(where, name, "a mapping", f)
        for key, want in (("file", "a relative path (str)"), ("sha256", "a hex digest (str)")):
            if not isinstance(f.get(key), str):
                raise _bad(where, f"{name}.{key}", want, f.get(key))
        rel = Path(f["file"])
        if rel.is_absolute() or ".." in rel.parts:
            raise _bad(where, f"{name}.file", "a path inside the set", f["file"])
        if f is not e and f.get("format") not in FORMATS:
            raise _bad(where, f"{name}.format", "one of " + ", ".join(FORMATS), f.get("format"))
