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

from .keys import FORMATS, MANIFEST_VERSION, VALUE_CONVENTION
from .parts import combine_verdicts
from .plan import Condition, Plan, cond_dict


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


def _condition_summary(plan: Plan, c: Condition, entries: list[dict], extras: list[dict[str, Any]]) -> dict[str, Any]:
    """A condition's summary: its parameters, each part's summary fields, pass counts, clipping."""
    out: dict[str, Any] = {
        **cond_dict(c),
        **pass_counts(entries),
        "clipping": _clipping_summary(plan, entries),
    }
    measured = []
    for part in plan.parts:
        m = part.summary(plan, c, entries, [x[part.name] for x in extras])
        for k, v in m.fields.items():  # mappings under one key (``measured``) are merged
            out[k] = {**out[k], **v} if isinstance(v, dict) and isinstance(out.get(k), dict) else v
        measured.append((part.name, m))
    out["pass"], why = combine_verdicts(measured)  # the pooled check of the condition
    if why:
        out["not_measurable"] = why
    return out


def pass_counts(entries: list[dict[str, Any]]) -> dict[str, int]:
    """``n_pass``, ``n_fail`` and ``n_not_measurable`` of stimulus entries."""
    flags = [e.get("pass") for e in entries]
    return {
        "n_pass": sum(f is True for f in flags),
        "n_fail": sum(f is False for f in flags),
        "n_not_measurable": sum(f is None for f in flags),
    }


def _clipping_summary(plan: Plan, entries: list[dict[str, Any]]) -> dict[str, Any]:
    """How much a condition's stimuli were clipped, against ``stimulus.max_clipped_fraction``."""
    limit = plan.exp["stimulus"]["max_clipped_fraction"]
    fracs = [float(e["clipped_fraction"]) for e in entries]
    return {
        "max_clipped_fraction": max(fracs),
        "mean_clipped_fraction": sum(fracs) / len(fracs),
        "limit": limit,
        "n_over_limit": sum(f > limit for f in fracs),
    }


def _warn_clipping(manifest: Mapping[str, Any], source: str) -> None:
    """One warning when stimuli of the set were clipped beyond the allowed fraction."""
    over = [c for c in manifest["conditions"] if c["clipping"]["n_over_limit"]]
    if not over:
        return
    n = sum(c["clipping"]["n_over_limit"] for c in over)
    worst = max(over, key=lambda c: c["clipping"]["max_clipped_fraction"])
    limit = worst["clipping"]["limit"]
    warnings.warn(
        f"{source}: {n} of {manifest['n_stimuli']} stimuli have more than "
        f"{limit:.3%} of their pixels clipped at contrast -1 or +1 (stimulus.max_clipped_fraction), "
        f"up to {worst['clipping']['max_clipped_fraction']:.3%} in condition {worst['index']} "
        f"({worst['label']}); their contrast and spectrum are distorted: lower stimulus.rms_contrast, "
        "or set stimulus.clipping: error to refuse such sets",
        UserWarning,
        stacklevel=3,
    )


def _manifest(plan, exp, entropy, results, yaml_bytes, source, sha256_bytes) -> dict[str, Any]:
    entries = [r[0] for r in results]
    by_cond: dict[int, tuple[list, list]] = {}
    for entry, extras, _ in results:
        e, x = by_cond.setdefault(entry["condition"]["index"], ([], []))
        e.append(entry)
        x.append(extras)
    conditions = [_condition_summary(plan, c, *by_cond[c.index]) for c in plan.conditions]
    geometry = plan.geometry.to_dict()
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
        "value_convention": VALUE_CONVENTION,
        "n_stimuli": plan.n,
        **pass_counts(entries),
        **{k: v for part in plan.parts for k, v in part.manifest_fields(plan).items()},
        "conditions": conditions,
        "figures": [],
        "stimuli": entries,
    }


def read_manifest(path: str | os.PathLike) -> tuple[Path, dict[str, Any]]:
    """``(set directory, manifest)`` from a set directory or its manifest.json."""
    p = Path(path)
    mpath = p / "manifest.json" if p.is_dir() else p
    root = mpath.parent
    if not mpath.is_file():
        raise FileNotFoundError(f"no manifest.json in {p}")
    try:
        manifest = json.loads(mpath.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{mpath} is not valid JSON: {exc}") from None
    if not isinstance(manifest, dict) or "stimuli" not in manifest or "experiment" not in manifest:
        raise ValueError(f"{mpath} is not a stimgen manifest (no 'stimuli' or 'experiment')")
    _check_manifest(manifest, str(mpath))
    return root, manifest


def _check_manifest(m: Mapping[str, Any], where: str) -> None:
    """The fields verify and regenerate rely on, with their types; ValueError naming the field."""

    def bad(field_: str, want: str, got: Any) -> ValueError:
        shown = type(got).__name__ if isinstance(got, dict | list) else repr(got)
        return ValueError(f"{where}: {field_} must be {want}, got {shown}; the manifest is damaged")

    def is_int(x: Any) -> bool:
        return isinstance(x, int) and not isinstance(x, bool)

    if not isinstance(m["experiment"], dict):
        raise bad("experiment", "a mapping (the resolved experiment)", m["experiment"])
    if not is_int(m.get("seed_entropy")) or m["seed_entropy"] < 0:
        raise bad("seed_entropy", "an integer >= 0", m.get("seed_entropy"))
    if not is_int(m.get("n_stimuli")):
        raise bad("n_stimuli", "an integer", m.get("n_stimuli"))
    if not isinstance(m["stimuli"], list):
        raise bad("stimuli", "a list of entries", m["stimuli"])
    for i, e in enumerate(m["stimuli"]):
        if not isinstance(e, dict):
            raise bad(f"stimuli[{i}]", "a mapping", e)
        if e.get("index") != i or not is_int(e.get("index")):
            raise bad(f"stimuli[{i}].index", f"{i} (entries in plan order)", e.get("index"))
        files = e.get("files", [e])
        if not isinstance(files, list) or not files:
            raise bad(f"stimuli[{i}].files", "a non-empty list of files", files)
        for j, f in enumerate(files):
            name = f"stimuli[{i}]" + ("" if f is e else f".files[{j}]")
            if not isinstance(f, dict):
                raise bad(name, "a mapping", f)
            for key, want in (("file", "a relative path (str)"), ("sha256", "a hex digest (str)")):
                if not isinstance(f.get(key), str):
                    raise bad(f"{name}.{key}", want, f.get(key))
            rel = Path(f["file"])
            if rel.is_absolute() or ".." in rel.parts:
                raise bad(f"{name}.file", "a path inside the set", f["file"])
            if f is not e and f.get("format") not in FORMATS:
                raise bad(f"{name}.format", "one of " + ", ".join(FORMATS), f.get("format"))
