"""YAML experiment files -> validated plans -> reproducible, verified stimulus sets.

Contents
--------
load_experiment       read and validate a YAML file; every default filled in
validate_experiment   the same for a plain dict (e.g. the experiment stored in a manifest)
ExperimentError       ValueError carrying every ``FILE:LINE: key.path: message`` problem
expand_conditions     the list and/or factorial conditions as resolved parameter sets
generate_stimulus     stimulus ``i`` of an experiment, alone (float image or movie, its facts)
run_experiment        generate a whole set in parallel, atomically, with manifest and figures
verify_set            re-hash every file and re-measure every spectrum against the manifest
regenerate_stimulus   rebuild one stimulus from a manifest and compare its bytes
RunFailed             a run that could not complete (worker died, disk error); nothing written

Conventions
-----------
* Values are signed contrast (0 = mean luminance, display range [-1, 1]); PNG levels are
  ``round((x + 1) / 2 * (2^bits - 1))`` (see :func:`stimgen.contrast.quantize`).
* Motion experiments (a ``motion`` section) make ``(T, H, W)`` movies of drifting noise
  (:func:`stimgen.motion.drifting_noise`): ``.npy`` movies plus optional animated GIF
  previews; speeds in deg/s, directions counter-clockwise from rightwards (90 = upwards);
  each movie's speed is measured with optical flow (:func:`stimgen.motion.verify_motion`)
  and its first frame's spectrum against the design.
* Seeding: one ``SeedSequence(entropy)`` per set; stimulus ``i`` (0-based, in plan order:
  conditions in order, repeats within a condition) draws everything - the noise (or movie),
  then the dither of each PNG or GIF in the order of ``output.formats`` - from
  ``default_rng(SeedSequence(entropy, spawn_key=(i,)))``. So any stimulus regenerates alone,
  and the files do not depend on the number of workers or the scheduler.
* A set is written into a temporary sibling directory and renamed into place only when
  complete (:func:`stimgen.io.atomic_directory`): a failed or interrupted run leaves nothing.
* Frequencies in cycles/degree (``_cpd``), sizes in degrees (``_deg``) or pixels (``_px``).
  Every band states its level (``half_amplitude`` by default).
"""

from __future__ import annotations

import concurrent.futures as cf
import copy
import io as _io
import itertools
import json
import math
import os
import platform
import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from ._yamlschema import BAD, Checker, Problem, SchemaError, _Lines, format_path, load_yaml
from .filters import radial_part

__all__ = [
    "ExperimentError",
    "RunFailed",
    "VerifyReport",
    "expand_conditions",
    "generate_stimulus",
    "load_experiment",
    "regenerate_stimulus",
    "run_experiment",
    "validate_experiment",
    "verify_set",
]

VALUE_CONVENTION = (
    "signed contrast: 0 = mean luminance, display range [-1, 1]; "
    "PNG level = round((x + 1) / 2 * (2^bits - 1)) (noisy-bit dither: floor(level + U[0, 1)))"
)
MANIFEST_VERSION = 1

FAMILIES = ("dog", "log_gaussian", "butterworth", "ideal", "power_law", "white")
KINDS = ("gaussian", "uniform", "binary", "flat")
LEVELS = ("half_amplitude", "half_power")
FORMATS = ("npy", "png8", "png16", "gif")
STILL_FORMATS = ("npy", "png8", "png16")
MOTION_FORMATS = ("npy", "gif")
DITHERS = ("none", "noisy-bit")
DTYPES = ("float32", "float64")
CLIPPING = ("clip", "error")

# -- schema: every key, its default ------------------------------------------------------
TOP_KEYS = (
    "name", "description", "seed", "display", "stimulus", "noise",
    "conditions", "factorial", "repeats", "motion", "output", "check",
)  # fmt: skip
DISPLAY_DEFAULTS: dict[str, Any] = {
    "ppd": None,
    "distance_cm": None,
    "screen_width_cm": None,
    "screen_width_px": None,
    "screen_height_px": None,
}
STIMULUS_DEFAULTS: dict[str, Any] = {
    "size_deg": None,
    "size_px": None,
    "rms_contrast": 0.2,
    "mean": 0.0,
    "clipping": "clip",
    "max_clipped_fraction": 0.001,
}
NOISE_DEFAULTS: dict[str, Any] = {
    "family": None,
    "kind": "gaussian",
    "level": "half_amplitude",
    "band_cpd": None,
    "peak_cpd": None,
    "octaves": None,
    "sigma_center_deg": None,
    "sigma_surround_deg": None,
    "order": 4,
    "orientation_deg": None,
    "orientation_bandwidth_deg": 30.0,
    "alpha": 1.0,
}
OUTPUT_DEFAULTS: dict[str, Any] = {
    "formats": ["npy", "png8"],
    "dither": "none",
    "gamma": None,
    "dtype": "float32",
    "figures": True,
    "examples_per_condition": 4,
}
MOTION_DEFAULTS: dict[str, Any] = {
    "speed_deg_s": None,
    "direction_deg": 0.0,
    "frame_rate_hz": None,
    "duration_s": None,
    "n_frames": None,
    "refresh_frames": None,
    "allow_aliasing": False,
}
CHECK_DEFAULTS: dict[str, Any] = {
    "edge_tolerance": None,
    "peak_tolerance": None,
    "alpha_tolerance": None,
    "orientation_tolerance_deg": 5.0,
    "speed_tolerance": 0.05,
    "speed_atol_px_per_frame": 0.01,
    "min_reliable_fraction": 0.5,
}
CONTRAST_KEYS = ("rms_contrast", "mean")
MOTION_PARAM_KEYS = ("speed_deg_s", "direction_deg", "refresh_frames")  # may vary by condition
PARAM_KEYS = (*NOISE_DEFAULTS, *CONTRAST_KEYS, *MOTION_PARAM_KEYS)  # what a condition may vary
CONDITION_KEYS = ("label", "repeats", *PARAM_KEYS)
# band groups: a condition that gives keys of one group replaces the base's band entirely
_BAND_GROUP = {
    "band_cpd": "band",
    "peak_cpd": "peak",
    "octaves": "peak",
    "sigma_center_deg": "sigmas",
    "sigma_surround_deg": "sigmas",
}
_DESIGNABLE = ("dog", "log_gaussian", "butterworth", "ideal")
_ELSEWHERE = {
    **{k: "display" for k in DISPLAY_DEFAULTS},
    **{k: "stimulus" for k in STIMULUS_DEFAULTS},
    **{k: "noise" for k in NOISE_DEFAULTS},
    **{k: "output" for k in OUTPUT_DEFAULTS},
    **{k: "check" for k in CHECK_DEFAULTS},
    **{k: "motion" for k in MOTION_DEFAULTS},
    **{k: "the top level" for k in ("seed", "repeats", "conditions", "factorial", "name")},
}
_NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]*"


class ExperimentError(SchemaError):
    """An experiment failed validation.

    ``str(error)`` has one ``FILE:LINE: key.path: message`` per line; ``.problems`` holds
    them as :class:`~stimgen._yamlschema.Problem` and ``.lines`` as strings.
    """


class RunFailed(RuntimeError):
    """A run could not complete (a worker died, a disk error, ...); no set was written."""


# =========================================================================================
# Loading and validation
# =========================================================================================
def load_experiment(path: str | os.PathLike) -> dict[str, Any]:
    """Read and validate an experiment file; return the resolved experiment.

    Parameters
    ----------
    path : str or path-like
        The YAML file.

    Returns
    -------
    dict
        The resolved experiment: every section and key present, defaults filled in
        (see docs/experiments.md). ``seed`` stays None when the file gives none (the run
        draws and records fresh entropy).

    Raises
    ------
    ExperimentError
        With every problem found, each as ``FILE:LINE: key.path: message``.
    FileNotFoundError
        If the file does not exist.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no such experiment file: {p}")
    raw = p.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ExperimentError(str(p), [Problem(None, "(file)", f"not UTF-8 text: {exc}")]) from None
    try:
        data, lines, problems = load_yaml(text, str(p))
    except SchemaError as exc:
        raise ExperimentError(str(p), exc.problems) from None
    return _validate(data, lines, problems, str(p))


def validate_experiment(data: Mapping[str, Any], *, source: str = "<experiment>") -> dict[str, Any]:
    """Validate an experiment given as a dict (as loaded from YAML or stored in a manifest).

    Parameters
    ----------
    data : mapping
        The experiment.
    source : str
        Name used in messages (lines are unknown, shown as ``?``).

    Returns
    -------
    dict
        The resolved experiment, as :func:`load_experiment`.
    """
    resolved = copy.deepcopy(dict(data))
    if resolved.get("conditions") == []:  # how a resolved experiment says "no conditions list"
        resolved["conditions"] = None
    return _validate(resolved, _Lines(), [], source)


def _validate(data: Any, lines: _Lines, problems: list[Problem], source: str) -> dict[str, Any]:
    ck = Checker(lines, problems)
    if data is None:
        ck.add((), "the file is empty; an experiment needs name, display, stimulus and noise")
        raise ExperimentError(source, ck.problems)
    top = ck.mapping((), data, TOP_KEYS, required=("name", "display", "stimulus", "noise"), elsewhere=_ELSEWHERE)
    if top is BAD:
        raise ExperimentError(source, ck.problems)
    res: dict[str, Any] = {}
    res["name"] = ck.string(("name",), top["name"], pattern=_NAME_PATTERN, what="a name of letters, digits, '.', '_' or '-'") if "name" in top else BAD
    desc = top.get("description", "")
    res["description"] = "" if desc is None else ck.string(("description",), desc)
    seed = top.get("seed")
    res["seed"] = None if seed is None else ck.number(("seed",), seed, low=0, integer=True)
    res["display"] = _check_display(ck, top.get("display"))
    res["stimulus"] = _check_stimulus(ck, top.get("stimulus"))
    res["noise"] = _check_params(ck, ("noise",), top.get("noise"), NOISE_DEFAULTS, fill=True) if "noise" in top else BAD
    rep = 1 if top.get("repeats") is None else top["repeats"]
    res["repeats"] = ck.number(("repeats",), rep, low=1, integer=True)
    res["conditions"] = _check_conditions(ck, top.get("conditions"))
    res["factorial"] = _check_factorial(ck, top.get("factorial"))
    res["motion"] = None if top.get("motion") is None else _check_motion(ck, top["motion"])
    if res["motion"] is None:
        _refuse_motion_keys(ck, res["conditions"], res["factorial"])
    res["output"] = _check_output(ck, top.get("output"), motion=res["motion"] is not None)
    res["check"] = _check_check(ck, top.get("check"))
    if _check_size(ck, res):
        _check_plan(ck, res)
    if ck.problems:
        raise ExperimentError(source, ck.problems)
    return res


#: Most stimuli one set may hold (the manifest keeps one entry per stimulus in memory).
MAX_STIMULI = 10_000_000


def _check_size(ck: Checker, exp: dict[str, Any]) -> bool:
    """Refuse absurd plans (more than :data:`MAX_STIMULI` stimuli) before expanding them."""
    if any(exp[k] is BAD for k in ("conditions", "factorial", "repeats")):
        return True
    if any(c is BAD or c.get("repeats") is BAD for c in exp["conditions"]):
        return True
    n_combos = math.prod(len(v) for v in exp["factorial"].values())
    listed = exp["conditions"] or [{}]
    total = n_combos * sum(int(c.get("repeats") or exp["repeats"]) for c in listed)
    if total > MAX_STIMULI:
        where = ("repeats",) if not any(c.get("repeats") for c in listed) else ("conditions",)
        ck.add(where, f"the plan has {total:,} stimuli ({len(listed) * n_combos:,} condition(s)); "
               f"a set may hold at most {MAX_STIMULI:,}: lower repeats or split the experiment")  # fmt: skip
        return False
    return True


def _section(ck: Checker, name: str, value: Any, defaults: Mapping[str, Any]) -> Any:
    if value is None:
        return {}
    return ck.mapping((name,), value, defaults, elsewhere=_ELSEWHERE)


def _check_display(ck: Checker, value: Any) -> Any:
    d = _section(ck, "display", value, DISPLAY_DEFAULTS)
    if d is BAD or value is None:
        return BAD
    out = dict(DISPLAY_DEFAULTS)
    pos: dict[str, Any] = {"low": 0, "low_open": True}
    for k in ("ppd", "distance_cm", "screen_width_cm"):
        if d.get(k) is not None:
            out[k] = ck.number(("display", k), d[k], **pos)
    for k in ("screen_width_px", "screen_height_px"):
        if d.get(k) is not None:
            out[k] = ck.number(("display", k), d[k], low=1, integer=True)
    screen = [k for k in ("distance_cm", "screen_width_cm", "screen_width_px") if d.get(k) is not None]
    if out["ppd"] is not None and (screen or d.get("screen_height_px") is not None):
        ck.add(("display",), "give either ppd or the screen (distance_cm, screen_width_cm, screen_width_px), not both")
    elif out["ppd"] is None and len(screen) < 3:
        missing = [k for k in ("distance_cm", "screen_width_cm", "screen_width_px") if k not in screen]
        ck.add(("display",), "needs ppd, or distance_cm, screen_width_cm and screen_width_px; missing "
               + ", ".join(missing), key=True)  # fmt: skip
    return out


def _size(ck: Checker, path: tuple, value: Any, integer: bool) -> Any:
    if isinstance(value, list):
        return ck.numbers(path, value, length=2, low=0, low_open=True, integer=integer)
    x = ck.number(path, value, low=0, low_open=True, integer=integer)
    return BAD if x is BAD else [x, x]


def _check_stimulus(ck: Checker, value: Any) -> Any:
    s = _section(ck, "stimulus", value, STIMULUS_DEFAULTS)
    if s is BAD or value is None:
        return BAD
    out = dict(STIMULUS_DEFAULTS)
    given = [k for k in ("size_deg", "size_px") if s.get(k) is not None]
    if len(given) != 1:
        ck.add(("stimulus",), "give exactly one of size_deg ([height, width] in deg) and size_px", key=True)
    for k in given:
        out[k] = _size(ck, ("stimulus", k), s[k], integer=(k == "size_px"))
    for k in CONTRAST_KEYS:
        if s.get(k) is not None:
            out[k] = _check_param(ck, ("stimulus", k), k, s[k])
    if s.get("clipping") is not None:
        out["clipping"] = ck.choice(("stimulus", "clipping"), s["clipping"], CLIPPING)
    if s.get("max_clipped_fraction") is not None:
        out["max_clipped_fraction"] = ck.number(("stimulus", "max_clipped_fraction"), s["max_clipped_fraction"], low=0, high=1)
    return out


#: parameters whose null is a value ("none": no band of this kind, no orientation, ...)
_OPTIONAL = ("band_cpd", "peak_cpd", "octaves", "sigma_center_deg", "sigma_surround_deg", "orientation_deg",
             "refresh_frames", "speed_deg_s")


def _check_param(ck: Checker, path: tuple, key: str, value: Any) -> Any:
    """One noise or contrast parameter (None means 'not set' for optional ones)."""
    if value is None and key in _OPTIONAL:
        return None
    if key == "family":
        return ck.choice(path, value, FAMILIES)
    if key == "kind":
        return ck.choice(path, value, KINDS)
    if key == "level":
        return ck.choice(path, value, LEVELS)
    if key == "band_cpd":
        band = ck.numbers(path, value, length=2, low=0, low_open=True)
        if band is not BAD and band[1] <= band[0]:
            ck.add(path, f"must be [low, high] with low < high, got {value!r}")
            return BAD
        return band
    if key in ("peak_cpd", "octaves", "sigma_center_deg", "sigma_surround_deg"):
        return ck.number(path, value, low=0, low_open=True)
    if key == "order":
        return ck.number(path, value, low=1, high=32, integer=True)
    if key == "orientation_deg":
        return ck.number(path, value)
    if key == "orientation_bandwidth_deg":
        return ck.number(path, value, low=0, high=180, low_open=True)
    if key == "alpha":
        return ck.number(path, value, low=-2, high=6)
    if key == "rms_contrast":
        return ck.number(path, value, low=0, high=1, low_open=True)
    if key == "mean":
        return ck.number(path, value, low=-1, high=1, low_open=True, high_open=True)
    if key == "speed_deg_s":
        return ck.number(path, value, low=0)
    if key == "direction_deg":
        return ck.number(path, value)
    if key == "refresh_frames":
        return ck.number(path, value, low=1, integer=True)
    raise AssertionError(key)  # pragma: no cover


def _check_params(ck: Checker, path: tuple, value: Any, allowed: Mapping[str, Any] | tuple, *, fill: bool) -> Any:
    m = ck.mapping(path, value, allowed, elsewhere=_ELSEWHERE)
    if m is BAD:
        return BAD
    out = dict(NOISE_DEFAULTS) if fill else {}
    for k, val in m.items():
        if k not in PARAM_KEYS or (val is None and k not in _OPTIONAL):
            continue  # null means "not set": the default (noise) or the base (conditions)
        out[k] = _check_param(ck, (*path, k), k, val)
    groups = {_BAND_GROUP[k] for k, val in m.items() if k in _BAND_GROUP and val is not None}
    if len(groups) > 1:
        ck.add(path, "give one way to state the band: band_cpd, or peak_cpd with octaves, "
               "or sigma_center_deg with sigma_surround_deg", key=True)  # fmt: skip
    return out


def _check_conditions(ck: Checker, value: Any) -> Any:
    if value is None:
        return []
    if not isinstance(value, list) or not value:
        ck.add(("conditions",), "must be a non-empty list of mappings such as {band_cpd: [1, 2]}")
        return BAD
    out = []
    for i, c in enumerate(value):
        path = ("conditions", i)
        if c is None:
            c = {}
        m = _check_params(ck, path, c, CONDITION_KEYS, fill=False)
        if m is BAD:
            out.append(BAD)
            continue
        if c.get("label") is not None:
            m["label"] = ck.string((*path, "label"), c["label"])
        if c.get("repeats") is not None:
            m["repeats"] = ck.number((*path, "repeats"), c["repeats"], low=1, integer=True)
        out.append(m)
    return out


def _check_factorial(ck: Checker, value: Any) -> Any:
    if value is None:
        return {}
    m = ck.mapping(("factorial",), value, PARAM_KEYS, elsewhere=_ELSEWHERE)
    if m is BAD:
        return BAD
    out = {}
    for k, vals in m.items():
        path = ("factorial", k)
        if not isinstance(vals, list) or not vals:
            ck.add(path, f"must be a non-empty list of values for {k}, got {vals!r}")
            continue
        out[k] = [_check_param(ck, (*path, j), k, x) for j, x in enumerate(vals)]
    return out


def _check_motion(ck: Checker, value: Any) -> Any:
    """The ``motion`` section: frame rate, length, and the velocity shared by all conditions."""
    m = ck.mapping(("motion",), value, MOTION_DEFAULTS, required=("frame_rate_hz",), elsewhere=_ELSEWHERE)
    if m is BAD:
        return BAD
    out = dict(MOTION_DEFAULTS)
    path = ("motion",)
    fps = BAD
    if m.get("frame_rate_hz") is not None:
        fps = out["frame_rate_hz"] = ck.number((*path, "frame_rate_hz"), m["frame_rate_hz"], low=0, low_open=True)
    else:
        out["frame_rate_hz"] = BAD
    given = [k for k in ("duration_s", "n_frames") if m.get(k) is not None]
    if len(given) != 1:
        ck.add(path, "give exactly one of duration_s (s) and n_frames (the movie's length)", key=True)
        out["n_frames"] = BAD
    elif given == ["n_frames"]:
        out["n_frames"] = ck.number((*path, "n_frames"), m["n_frames"], low=2, integer=True)
    else:
        dur = out["duration_s"] = ck.number((*path, "duration_s"), m["duration_s"], low=0, low_open=True)
        if dur is not BAD and fps is not BAD and round(dur * fps) < 2:
            ck.add((*path, "duration_s"), f"{dur:g} s is {round(dur * fps)} frame(s) at {fps:g} Hz; "
                   "a movie needs at least 2 frames to move")  # fmt: skip
            out["duration_s"] = BAD
    for k in MOTION_PARAM_KEYS:
        if m.get(k) is not None:
            out[k] = _check_param(ck, (*path, k), k, m[k])
    if m.get("allow_aliasing") is not None:
        out["allow_aliasing"] = ck.boolean((*path, "allow_aliasing"), m["allow_aliasing"])
    return out


def _refuse_motion_keys(ck: Checker, conditions: Any, factorial: Any) -> None:
    """Motion parameters in a still-image experiment are a mistake, not something to ignore."""
    msg = "{} varies a motion stimulus; add a motion section (frame_rate_hz, and n_frames or duration_s)"
    for i, c in enumerate(conditions if conditions is not BAD else []):
        for k in MOTION_PARAM_KEYS:
            if c is not BAD and k in c:
                ck.add(("conditions", i, k), msg.format(k), key=True)
    for k in MOTION_PARAM_KEYS:
        if factorial is not BAD and k in factorial:
            ck.add(("factorial", k), msg.format(k), key=True)


def _n_frames(motion: Mapping[str, Any]) -> int:
    """Frames of a resolved motion section (``duration_s`` rounded as drifting_noise does)."""
    if motion["n_frames"] is not None:
        return int(motion["n_frames"])
    return round(motion["duration_s"] * motion["frame_rate_hz"])


def _check_output(ck: Checker, value: Any, *, motion: bool = False) -> Any:
    o = _section(ck, "output", value, OUTPUT_DEFAULTS)
    if o is BAD:
        return BAD
    out = copy.deepcopy(OUTPUT_DEFAULTS)
    allowed = MOTION_FORMATS if motion else STILL_FORMATS
    if motion:
        out["formats"] = ["npy", "gif"]
    if o.get("formats") is not None:
        f = o["formats"]
        if isinstance(f, str):
            f = [f]
        if not isinstance(f, list) or not f:
            ck.add(("output", "formats"), "must be a non-empty list of " + ", ".join(allowed))
            out["formats"] = BAD
        else:
            out["formats"] = []
            for i, x in enumerate(f):
                path = ("output", "formats", i)
                if x in FORMATS and x not in allowed:
                    if motion:
                        msg = f"{x} is for still images; a motion experiment writes npy movies and gif previews"
                    else:
                        msg = "gif is the animated preview of a motion experiment (add a motion section); still images"
                    ck.add(path, f"{msg} (allowed: {', '.join(allowed)})")
                    out["formats"].append(BAD)
                else:
                    out["formats"].append(ck.choice(path, x, allowed))
            if len(set(map(str, f))) != len(f):
                ck.add(("output", "formats"), f"lists a format twice: {f!r}")
            elif motion and "npy" not in f:
                ck.add(("output", "formats"), "a motion experiment needs npy, the (T, H, W) float "
                       f"movie (the gif is only a preview); got {f!r}")  # fmt: skip
    if o.get("dither") is not None:
        out["dither"] = ck.choice(("output", "dither"), o["dither"], DITHERS)
    if o.get("gamma") is not None:
        out["gamma"] = ck.number(("output", "gamma"), o["gamma"], low=0, low_open=True)
    if o.get("dtype") is not None:
        out["dtype"] = ck.choice(("output", "dtype"), o["dtype"], DTYPES)
    if o.get("figures") is not None:
        out["figures"] = ck.boolean(("output", "figures"), o["figures"])
    if o.get("examples_per_condition") is not None:
        out["examples_per_condition"] = ck.number(("output", "examples_per_condition"), o["examples_per_condition"], low=0, high=64, integer=True)
    return out


def _check_check(ck: Checker, value: Any) -> Any:
    c = _section(ck, "check", value, CHECK_DEFAULTS)
    if c is BAD:
        return BAD
    out = dict(CHECK_DEFAULTS)
    for k, val in c.items():
        if val is None:
            continue
        if k == "min_reliable_fraction":
            out[k] = ck.number(("check", k), val, low=0, high=1)
        elif k in ("speed_tolerance", "speed_atol_px_per_frame"):
            out[k] = ck.number(("check", k), val, low=0)
        else:
            out[k] = ck.number(("check", k), val, low=0, low_open=True)
    return out


# =========================================================================================
# Conditions -> plan
# =========================================================================================
@dataclass
class _Condition:
    index: int
    label: str
    folder: str
    own: dict[str, Any]  # the condition's own parameters (from conditions[i] and factorial)
    params: dict[str, Any]  # every noise and contrast parameter, resolved
    repeats: int
    first: int  # index of its first stimulus
    list_index: int = 0  # which entry of ``conditions`` it comes from
    sources: dict[str, tuple] = field(default_factory=dict, repr=False)


def _has_bad(x: Any) -> bool:
    if x is BAD:
        return True
    if isinstance(x, dict):
        return any(_has_bad(y) for y in x.values())
    if isinstance(x, list):
        return any(_has_bad(y) for y in x)
    return False


def _fmt(x: Any) -> str:
    if isinstance(x, list):
        return "-".join(_fmt(y) for y in x)
    if isinstance(x, float):
        return f"{x:g}"
    return str(x)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "_", text).strip("_")[:60]


def expand_conditions(experiment: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The conditions of a resolved experiment, in plan order.

    Every entry of ``conditions`` is crossed with every combination of the ``factorial``
    lists (``conditions`` outer, factorial inner, factorial keys in file order, last key
    fastest). A condition's band (any of band_cpd / peak_cpd + octaves / sigmas) replaces
    the ``noise`` section's band as a whole; other keys override one by one.

    Returns
    -------
    list of dict
        ``index``, ``label``, ``folder`` (relative to ``stimuli/``), ``own`` (the
        condition's own parameters), ``params`` (all noise and contrast parameters, and
        in motion experiments ``speed_deg_s``, ``direction_deg``, ``refresh_frames``),
        ``repeats`` and ``first`` (index of its first stimulus).
    """
    return [_cond_dict(c) for c in _expand(experiment)]


def _cond_dict(c: _Condition) -> dict[str, Any]:
    return {
        "index": c.index,
        "label": c.label,
        "folder": c.folder,
        "own": c.own,
        "params": c.params,
        "repeats": c.repeats,
        "first": c.first,
    }


def _expand(exp: Mapping[str, Any]) -> list[_Condition]:
    base = dict(exp["noise"])
    sources: dict[str, tuple] = {k: ("noise", k) if k in _given_noise(exp) else ("noise",) for k in base}
    for k in CONTRAST_KEYS:
        base[k] = exp["stimulus"][k]
        sources[k] = ("stimulus", k)
    motion = exp.get("motion")
    if motion:
        for k in MOTION_PARAM_KEYS:
            base[k] = motion[k]
            sources[k] = ("motion", k) if motion[k] != MOTION_DEFAULTS[k] else ("motion",)
    listed = exp["conditions"] or [{}]
    fact = exp["factorial"] or {}
    fkeys = list(fact)
    combos = list(itertools.product(*[list(enumerate(fact[k])) for k in fkeys]))
    conds: list[_Condition] = []
    first = 0
    n_total = len(listed) * len(combos)
    width = max(2, len(str(n_total - 1)))
    for li, lc in enumerate(listed):
        for combo in combos:
            own = {k: val for k, val in lc.items() if k in PARAM_KEYS}
            src = dict(sources)
            src.update({k: ("conditions", li, k) for k in own})
            for k, (j, val) in zip(fkeys, combo, strict=True):
                own[k] = val
                src[k] = ("factorial", k, j)
            params = dict(base)
            groups = {_BAND_GROUP[k] for k, val in own.items() if k in _BAND_GROUP and val is not None}
            if groups:
                for k, g in _BAND_GROUP.items():
                    if g not in groups:
                        params[k] = None
            params.update(own)
            auto = ", ".join(f"{k}={_fmt(val)}" for k, val in own.items()) or "all"
            label = lc.get("label") or auto
            if lc.get("label") and len(combos) > 1:
                label = f"{lc['label']}, {auto}"
            index = len(conds)
            folder = f"c{index:0{width}d}" + (f"_{_slug(label)}" if own or lc.get("label") else "")
            repeats = int(lc.get("repeats") or exp["repeats"])
            conds.append(_Condition(index, label, folder, own, params, repeats, first, li, src))
            first += repeats
    return conds


def _given_noise(exp: Mapping[str, Any]) -> set[str]:
    return {k for k, val in exp["noise"].items() if val is not None and val != NOISE_DEFAULTS[k]}


def _ppd(exp: Mapping[str, Any]) -> float:
    return _geometry(exp).ppd


def _geometry(exp: Mapping[str, Any]):
    from .geometry import ViewingGeometry

    d = exp["display"]
    if d["ppd"] is not None:
        return ViewingGeometry.from_ppd(d["ppd"])
    return ViewingGeometry(d["distance_cm"], d["screen_width_cm"], d["screen_width_px"], d["screen_height_px"])


def _shape(exp: Mapping[str, Any]) -> tuple[tuple[int, int], tuple[float, float]]:
    from .geometry import resolve_shape

    s = exp["stimulus"]
    shape, size_deg = resolve_shape(size_px=s["size_px"], size_deg=s["size_deg"], ppd=_ppd(exp))
    return shape, size_deg  # type: ignore[return-value]


def _band_spec_problem(p: Mapping[str, Any]) -> str | None:
    """Whether the band keys fit the family (before asking the filter hub)."""
    fam = p["family"]
    has = {k for k in _BAND_GROUP if p.get(k) is not None}
    groups = {_BAND_GROUP[k] for k in has}
    if len(groups) > 1:
        return "give one way to state the band: band_cpd, or peak_cpd with octaves, or sigmas"
    if fam == "white":
        if has:
            return "family 'white' takes no band (" + ", ".join(sorted(has)) + "); use a band-pass family"
        if p.get("orientation_deg") is not None:
            return "family 'white' cannot be oriented; use an oriented band-pass family"
        return None
    if fam == "power_law":
        if groups - {"band"}:
            return "family 'power_law' takes only band_cpd (optional hard band limits)"
        return None
    if "sigmas" in groups:
        if fam != "dog":
            return f"sigma_center_deg and sigma_surround_deg define a DoG; family is {fam!r}"
        if p.get("sigma_center_deg") is None or p.get("sigma_surround_deg") is None:
            return "a DoG from sigmas needs both sigma_center_deg and sigma_surround_deg"
        return None
    if "peak" in groups and (p.get("peak_cpd") is None or p.get("octaves") is None):
        return "a band from its peak needs both peak_cpd and octaves"
    if not groups:
        return (f"family {fam!r} needs a band: band_cpd: [low, high] (cpd), or peak_cpd and octaves"
                + (", or sigma_center_deg and sigma_surround_deg" if fam == "dog" else ""))  # fmt: skip
    return None


def _make_filter(p: Mapping[str, Any], ppd: float):
    """The filter of a condition, through the hub (None for white noise)."""
    from .noise import make_filter

    if p.get("sigma_center_deg") is not None:
        from .filters import DoG, Orientation

        filt: Any = DoG.from_sigmas_deg(p["sigma_center_deg"], p["sigma_surround_deg"], ppd=ppd)
        if p.get("orientation_deg") is not None:
            filt = filt * Orientation(p["orientation_deg"], p["orientation_bandwidth_deg"])
        return filt
    return make_filter(
        p["family"],
        ppd=ppd,
        band_cpd=p["band_cpd"],
        peak_cpd=p["peak_cpd"],
        octaves=p["octaves"],
        level=p["level"],
        order=p["order"],
        orientation_deg=p["orientation_deg"],
        orientation_bandwidth_deg=p["orientation_bandwidth_deg"],
        alpha=p["alpha"],
    )


def _check_plan(ck: Checker, exp: dict[str, Any]) -> None:
    """Conditions vs the filter hub: bands designable, below Nyquist, above 1 cycle/image."""
    from .filters import check_fits_image

    if any(_has_bad(exp[k]) for k in ("display", "noise")) or exp["stimulus"] is BAD:
        return
    if _has_bad([exp["stimulus"]["size_deg"], exp["stimulus"]["size_px"]]):
        return
    listed = [] if exp["conditions"] is BAD else exp["conditions"]
    fact = {} if exp["factorial"] is BAD else exp["factorial"]
    for i, lc in enumerate(listed):
        for k in fact:
            if lc is not BAD and k in lc:
                ck.add(("conditions", i, k), f"{k} is also varied in factorial; give it in one place", key=True)
    safe = dict(exp)
    safe["conditions"] = [{} if lc is BAD else lc for lc in listed]
    safe["factorial"] = fact
    safe["repeats"] = 1
    try:
        geom = _geometry(safe)
        shape, _ = _shape(safe)
    except ValueError as exc:
        ck.add(("stimulus",), str(exc))
        return
    ppd = geom.ppd
    filter_keys = ("family", "level", "order", "orientation_deg", "orientation_bandwidth_deg", "alpha", *_BAND_GROUP)
    for c in _expand(safe):
        p = c.params
        if _has_bad([p[k] for k in filter_keys]) or (listed and listed[c.list_index] is BAD):
            continue
        band_keys = [k for k in ("band_cpd", "peak_cpd", "octaves", "sigma_center_deg", "sigma_surround_deg") if p.get(k) is not None]
        where = c.sources.get(band_keys[0], ("noise",)) if band_keys else c.sources.get("family", ("noise",))
        fam_src = c.sources.get("family", ("noise",))
        note = ""
        if fam_src[0] in ("conditions", "factorial") and where != fam_src:
            note = f" (with family {p['family']!r} from {format_path(fam_src)})"
        if p["family"] is None:
            ck.add(("noise",), "missing required key 'family' (one of " + ", ".join(FAMILIES)
                   + "), in noise or in every condition", key=True)  # fmt: skip
            continue
        msg = _band_spec_problem(p)
        if msg is not None:
            ck.add(where, msg + note)
            continue
        try:
            filt = _make_filter(p, ppd)
            radial = radial_part(filt)
            if radial is not None:
                check_fits_image(radial.passband(p["level"]), shape, ppd)
        except ValueError as exc:
            ck.add(where, " ".join(str(exc).split()) + note)
            continue
        motion = exp.get("motion")
        # the length does not matter here (one frame is probed); the rate and the speed do
        if motion is not None and motion is not BAD and not _has_bad([motion["frame_rate_hz"], motion["allow_aliasing"]]):
            _check_motion_condition(ck, c, motion, shape, ppd, where)


def _check_motion_condition(ck: Checker, c: _Condition, motion: Mapping[str, Any], shape: tuple[int, int],
                            ppd: float, band_where: tuple) -> None:  # fmt: skip
    """A motion condition: a speed given, a band drifting_noise can make, no temporal aliasing."""
    p = c.params
    if _has_bad([p.get(k) for k in MOTION_PARAM_KEYS]):
        return
    if p.get("speed_deg_s") is None:
        ck.add(("motion",), "missing required key 'speed_deg_s' (deg/s), in motion or in every condition", key=True)
        return
    if p.get("sigma_center_deg") is not None:
        ck.add(band_where, "a moving DoG is stated by band_cpd, or peak_cpd and octaves, not by sigmas")
        return
    err, _ = _motion_probe(p, motion, shape, ppd)
    if err is not None:
        speed_src = c.sources.get("speed_deg_s", ("motion",))
        note = ""
        if band_where[0] in ("conditions", "factorial") and band_where[:2] != speed_src[:2]:
            note = f" (with the band of {format_path(band_where)})"
        where = speed_src if err.startswith("speed_deg_s") else ("motion",)
        ck.add(where, err + note)


_PROBES: dict[str, tuple[str | None, list[str]]] = {}


def _motion_kwargs(p: Mapping[str, Any], motion: Mapping[str, Any], ppd: float, n_frames: int) -> dict[str, Any]:
    """Keyword arguments of :func:`stimgen.motion.drifting_noise` for a motion condition."""
    return {
        "ppd": ppd, "speed_deg_s": p["speed_deg_s"], "direction_deg": p["direction_deg"],
        "frame_rate_hz": motion["frame_rate_hz"], "n_frames": n_frames,
        "refresh_frames": p["refresh_frames"], "band_cpd": p["band_cpd"], "peak_cpd": p["peak_cpd"],
        "octaves": p["octaves"], "family": p["family"], "level": p["level"], "order": p["order"],
        "orientation_deg": p["orientation_deg"], "orientation_bandwidth_deg": p["orientation_bandwidth_deg"],
        "alpha": p["alpha"], "rms_contrast": p["rms_contrast"], "mean": p["mean"], "kind": p["kind"],
        "allow_aliasing": motion["allow_aliasing"],
    }  # fmt: skip


def _motion_probe(p: Mapping[str, Any], motion: Mapping[str, Any], shape: tuple[int, int], ppd: float) -> tuple[str | None, list[str]]:
    """Ask drifting_noise itself whether a condition can move: (its error, its warnings).

    One frame is made (cached per parameter set) so that the temporal-aliasing rules and
    messages are exactly those of :mod:`stimgen.motion`; the aliasing error is raised there
    before any noise is drawn.
    """
    from .motion import drifting_noise

    key = json.dumps([{k: p[k] for k in sorted(p)}, motion, list(shape), ppd], sort_keys=True, default=str)
    if key not in _PROBES:
        if len(_PROBES) > 256:
            _PROBES.clear()
        err, found = None, []
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                drifting_noise(size_px=shape, rng=0, **_motion_kwargs(p, motion, ppd, 1))
            except ValueError as exc:
                err = " ".join(str(exc).split())
        found = [" ".join(str(w.message).split()) for w in caught if issubclass(w.category, UserWarning)]
        _PROBES[key] = (err, found)
    return _PROBES[key]


# =========================================================================================
# Generating one stimulus
# =========================================================================================
class _Plan:
    """Everything a worker needs, derived once per process from the resolved experiment."""

    def __init__(self, exp: Mapping[str, Any]) -> None:
        self.exp = exp
        self.geometry = _geometry(exp)
        self.ppd = self.geometry.ppd
        self.shape, self.size_deg = _shape(exp)
        self.conditions = _expand(exp)
        self.motion = exp.get("motion") or None
        self.n_frames = _n_frames(self.motion) if self.motion else None
        self.starts = [c.first for c in self.conditions]
        self.n = sum(c.repeats for c in self.conditions)
        self._filters: dict[int, Any] = {}
        self._bins: Any = None

    def locate(self, index: int) -> tuple[_Condition, int]:
        import bisect

        if not 0 <= index < self.n:
            raise ValueError(f"stimulus index must be in [0, {self.n - 1}], got {index}")
        c = self.conditions[bisect.bisect_right(self.starts, index) - 1]
        return c, index - c.first

    def filter(self, c: _Condition) -> Any:
        if c.index not in self._filters:
            self._filters[c.index] = _make_filter(c.params, self.ppd)
        return self._filters[c.index]

    def bins(self) -> Any:
        """The radial-spectrum bins of this image shape (a spectrum of zeros, cached)."""
        if self._bins is None:
            from .spectrum import radial_spectrum

            self._bins = radial_spectrum(np.ones(self.shape), ppd=self.ppd, bins_per_octave=24)
        return self._bins

    def design(self, c: _Condition) -> dict[str, Any] | None:
        radial = radial_part(self.filter(c))
        if radial is None:
            return None
        return radial.passband(c.params["level"]).to_dict(self.ppd)


_PLANS: dict[str, _Plan] = {}


def _plan(exp: Mapping[str, Any]) -> _Plan:
    key = json.dumps(exp)  # key order matters: factorial keys expand in the file's order
    plan = _PLANS.get(key)
    if plan is None:
        if len(_PLANS) > 8:
            _PLANS.clear()
        plan = _PLANS[key] = _Plan(exp)
    return plan


def _draw(plan: _Plan, index: int, entropy: int) -> tuple[np.ndarray, float, np.random.Generator, _Condition, int]:
    """The float image of stimulus ``index`` (clipped), its clipped fraction and its rng."""
    from .contrast import clip_contrast, set_rms_contrast
    from .noise import filtered_noise, white_noise

    c, r = plan.locate(index)
    gen = np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=(index,)))
    p = c.params
    dtype = np.dtype(plan.exp["output"]["dtype"])
    filt = plan.filter(c)
    if filt is None:
        img = white_noise(plan.shape, kind=p["kind"], rng=gen, dtype=dtype)
    else:
        img = filtered_noise(plan.shape, filt, kind=p["kind"], rng=gen, dtype=dtype)
    img = set_rms_contrast(img, p["rms_contrast"], mean=p["mean"], out=img)
    img, frac = clip_contrast(img, limit=1.0, out=img, warn_above=None)
    return img, float(frac), gen, c, r


def _draw_movie(plan: _Plan, index: int, entropy: int) -> tuple[np.ndarray, float, np.random.Generator, _Condition, int, dict[str, Any]]:
    """The movie of stimulus ``index`` (clipped), its clipped fraction, rng and drifting_noise record."""
    from .contrast import clip_contrast
    from .motion import drifting_noise

    c, r = plan.locate(index)
    gen = np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=(index,)))
    if plan.motion is None or plan.n_frames is None:
        raise ValueError("the experiment has no motion section: its stimuli are still images")
    with warnings.catch_warnings():
        # aliased filter tails: warned about once per condition by run_experiment
        warnings.simplefilter("ignore", UserWarning)
        movie, record = drifting_noise(
            size_px=plan.shape, rng=gen, dtype=np.dtype(plan.exp["output"]["dtype"]),
            **_motion_kwargs(c.params, plan.motion, plan.ppd, plan.n_frames),
        )
    # the same generator, recorded as its seed: movie_from_record(record) rebuilds the movie
    record["seed"] = {"entropy": int(entropy), "spawn_key": [int(index)]}
    movie, frac = clip_contrast(movie, limit=1.0, out=movie, warn_above=None)
    return movie, float(frac), gen, c, r, record


def generate_stimulus(experiment: Mapping[str, Any], index: int, entropy: int) -> tuple[np.ndarray, dict[str, Any]]:
    """Stimulus ``index`` of a resolved experiment, generated alone.

    Parameters
    ----------
    experiment : mapping
        A resolved experiment (:func:`load_experiment`, or ``manifest["experiment"]``).
    index : int
        0-based stimulus index in plan order.
    entropy : int
        The set's seed entropy (``manifest["seed_entropy"]``).

    Returns
    -------
    image : ndarray, shape (H, W), or (T, H, W) for a motion experiment
        Signed contrast, float (``output.dtype``), clipped to [-1, 1].
    info : dict
        ``condition`` (index, label and every resolved parameter), ``repeat``, ``spawn_key``,
        ``clipped_fraction``; for movies also ``motion_record``, the record of
        :func:`stimgen.motion.drifting_noise` (before clipping).
    """
    plan = _plan(experiment)
    record = None
    if plan.motion:
        img, frac, _, c, r, record = _draw_movie(plan, int(index), int(entropy))
    else:
        img, frac, _, c, r = _draw(plan, int(index), int(entropy))
    info = {
        "condition": _entry_condition(c),
        "repeat": r,
        "spawn_key": [int(index)],
        "clipped_fraction": frac,
    }
    if record is not None:
        info["motion_record"] = record
    return img, info


def _entry_condition(c: _Condition) -> dict[str, Any]:
    """A stimulus' condition: index, label and every resolved parameter (noise, contrast, motion)."""
    return {"index": c.index, "label": c.label, **c.params}


def _encode(plan: _Plan, img: np.ndarray, gen: np.random.Generator) -> tuple[list[dict[str, Any]], float]:
    """Encode an image (or movie) in every output format, in order.

    Returns ``[{"format", "bytes", "dtype", "shape", ...}]`` (a gif also has
    ``frame_duration_ms``) and the largest clipped fraction of the quantizations.
    """
    from .contrast import quantize
    from .io import gif_bytes, png_bytes

    out = plan.exp["output"]
    files: list[dict[str, Any]] = []
    q_clip = 0.0
    for fmt in out["formats"]:
        if fmt == "npy":
            buf = _io.BytesIO()
            np.save(buf, img, allow_pickle=False)
            files.append({"format": fmt, "bytes": buf.getvalue(), "dtype": str(img.dtype), "shape": list(img.shape)})
            continue
        bits = 16 if fmt == "png16" else 8
        levels, frac = quantize(img, bits, dither=out["dither"], gamma=out["gamma"], rng=gen)
        q_clip = max(q_clip, frac)
        f = {"format": fmt, "dtype": str(levels.dtype), "shape": list(levels.shape)}
        if fmt == "gif":
            f["bytes"], f["frame_duration_ms"] = gif_bytes(levels, fps=plan.exp["motion"]["frame_rate_hz"])
        else:
            f["bytes"] = png_bytes(levels)
        files.append(f)
    return files, q_clip


def _suffix(fmt: str) -> str:
    return {"npy": ".npy", "gif": ".gif"}.get(fmt, ".png")


def _files_of(plan: _Plan, c: _Condition, r: int) -> dict[str, str]:
    """Relative paths of a stimulus' files by format (png8 and png16 never share a name)."""
    both_png = "png8" in plan.exp["output"]["formats"] and "png16" in plan.exp["output"]["formats"]
    out = {}
    for fmt in plan.exp["output"]["formats"]:
        stem = f"stimuli/{c.folder}/{r:04d}"
        if both_png and fmt == "png16":
            stem += "_16bit"
        out[fmt] = stem + _suffix(fmt)
    return out


def _measure(plan: _Plan, c: _Condition, img: np.ndarray) -> tuple[dict[str, Any], np.ndarray]:
    """Per-stimulus spectrum facts for the manifest, and its radial power (for figures)."""
    from .spectrum import (
        compare_to_design,
        default_tolerance,
        measure_band,
        measure_slope,
        radial_spectrum,
    )

    spec = radial_spectrum(img, ppd=plan.ppd, bins_per_octave=24)
    p = c.params
    check = plan.exp["check"]
    filt = plan.filter(c)
    radial = radial_part(filt)
    res: dict[str, Any] = {}
    if p["family"] in ("power_law", "white"):
        alpha = measure_slope(spec, ppd=plan.ppd, band_cpd=p["band_cpd"])
        want = 0.0 if p["family"] == "white" else p["alpha"]
        res.update(peak_cpd=None, band_cpd=None, alpha=alpha, design_alpha=want)
        res["pass"] = bool(abs(alpha - want) <= _alpha_tolerance(check, 1, plan.shape))
        return res, spec.power
    m = measure_band(spec, ppd=plan.ppd)
    assert radial is not None  # band-pass families always have a radial filter
    tol = default_tolerance(1, plan.shape)
    if check["edge_tolerance"] is not None:
        tol["edge"] = check["edge_tolerance"]
    if check["peak_tolerance"] is not None:
        tol["peak"] = check["peak_tolerance"]
    cmp = compare_to_design(m, radial, ppd=plan.ppd, level=p["level"], tolerance=tol)
    res.update(peak_cpd=m.peak_cpd, band_cpd=list(m.band_cpd(p["level"])), rel_error=cmp["rel_error"])
    res["pass"] = cmp["pass"]
    if p["orientation_deg"] is not None:
        got = _measured_orientation(img, plan.ppd, cmp["design"]["band_cpd"])
        err = _axial_difference(got, p["orientation_deg"])
        res.update(orientation_deg=got, orientation_error_deg=err)
        res["pass"] = bool(res["pass"] and abs(err) <= check["orientation_tolerance_deg"])
    return res, spec.power


def _measured_orientation(img: np.ndarray, ppd: float, band_cpd: list[float]) -> float:
    """Dominant stripe orientation in deg (0 vertical, counter-clockwise), in [0, 180).

    The power-weighted circular mean of doubled angles of the power inside the design band,
    in 72 orientation bins (2.5 deg), or fewer when a small image leaves a bin without DFT
    samples in the band.
    """
    from .spectrum import orientation_spectrum

    for n_bins in (72, 36, 18, 9):
        try:
            ang, power = orientation_spectrum(img, n_bins=n_bins, ppd=ppd, band_cpd=band_cpd)
            break
        except ValueError:
            if n_bins == 9:
                raise
    ok = np.isfinite(power)
    a2 = np.radians(2 * ang[ok])
    theta = 0.5 * math.degrees(math.atan2(float(np.sum(power[ok] * np.sin(a2))), float(np.sum(power[ok] * np.cos(a2)))))
    return theta % 180.0


def _axial_difference(a: float, b: float) -> float:
    """``a - b`` for orientations (period 180 deg), in [-90, 90)."""
    return (a - b + 90.0) % 180.0 - 90.0


def _alpha_tolerance(check: Mapping[str, Any], n_images: int, shape: tuple[int, int]) -> float:
    """Allowed |measured - design| of the 1/f exponent: ``check.alpha_tolerance`` or a default.

    The default scales with the number of Fourier samples like the band tolerances: the
    fitted exponent of one 64 x 96 px image scatters by about 0.1 (SD), so the tolerance is
    ``0.4 * sqrt(64 * 96 / (n H W))``, never below 0.1.
    """
    if check["alpha_tolerance"] is not None:
        return float(check["alpha_tolerance"])
    return max(0.1, 0.4 * math.sqrt(64 * 96 / (max(n_images, 1) * shape[0] * shape[1])))


def _measure_motion(plan: _Plan, movie: np.ndarray, record: dict[str, Any]) -> dict[str, Any] | None:
    """verify_motion of a movie with the experiment's tolerances (None: nothing to measure).

    Dynamic noise with ``refresh_frames = 1`` shows a new sample every frame: no two frames
    show the same noise, so there is no motion to measure.
    """
    from .motion import verify_motion

    if record.get("refresh_frames") == 1:
        return None
    check = plan.exp["check"]
    res = verify_motion(
        movie, record, tolerance=check["speed_tolerance"],
        atol_px_per_frame=check["speed_atol_px_per_frame"],
        min_reliable_fraction=check["min_reliable_fraction"],
    )  # fmt: skip
    res.pop("requested", None)  # in the entry already
    res.pop("velocity_convention", None)  # in the manifest once
    return res


_MOTION_ENTRY_KEYS = (
    "frame_rate_hz", "n_frames", "duration_s", "speed_deg_s", "direction_deg", "velocity_deg_s",
    "speed_px_per_frame", "velocity_px_per_frame", "refresh_frames", "temporal_aliasing",
)  # fmt: skip


def _entry(plan: _Plan, index: int, entropy: int, *, measure: bool = True) -> tuple[dict[str, Any], list[tuple[str, str, bytes]], np.ndarray | None, np.ndarray]:
    """Everything about stimulus ``index``: manifest entry, files (rel path, fmt, bytes), power, image.

    For a movie the image is its first frame; without ``measure`` the spectral and speed
    checks are skipped (power None), e.g. to regenerate the bytes only.
    """
    from .io import sha256_bytes

    record = None
    if plan.motion:
        data, frac, gen, c, r, record = _draw_movie(plan, index, entropy)
        img = data[0]
    else:
        data, frac, gen, c, r = _draw(plan, index, entropy)
        img = data
    encoded, q_clip = _encode(plan, data, gen)
    paths = _files_of(plan, c, r)
    files = [
        {"file": paths[f["format"]], "format": f["format"], "sha256": sha256_bytes(f["bytes"]),
         **{k: val for k, val in f.items() if k not in ("format", "bytes")}}
        for f in encoded
    ]  # fmt: skip
    design = plan.design(c)
    if c.params["family"] in ("power_law", "white"):  # no peak; optional hard band limits
        design = {"band_cpd": c.params["band_cpd"], "peak_cpd": None}
    measured, power = _measure(plan, c, img) if measure else ({}, None)
    entry = {
        "index": index,
        "file": files[0]["file"],
        "sha256": files[0]["sha256"],
        "shape": files[0]["shape"],
        "dtype": files[0]["dtype"],
        "files": files,
        "condition": _entry_condition(c),
        "repeat": r,
        "spawn_key": [index],
        "ppd": plan.ppd,
        "design_band_cpd": None if design is None else design["band_cpd"],
        "design_peak_cpd": None if design is None else design["peak_cpd"],
        "band_level": c.params["level"],
        "rms_contrast": float(np.std(data, dtype=np.float64)),
        "mean": float(np.mean(data, dtype=np.float64)),
        "clipped_fraction": max(frac, q_clip),
        **measured,
    }
    if record is not None:
        entry.update({k: _no_negative_zero(record[k]) for k in _MOTION_ENTRY_KEYS})
        if measure:
            entry["spectral_pass"] = entry["pass"]
            entry["speed_check"] = check = _measure_motion(plan, data, record)
            entry["pass"] = bool(entry["pass"] and (check is None or check["pass"]))
        entry["motion_record"] = record
    return entry, [(paths[f["format"]], f["format"], f["bytes"]) for f in encoded], power, img


def _no_negative_zero(x: Any) -> Any:
    """``-0.0`` -> ``0.0`` (e.g. the vertical velocity of rightward motion), in lists too."""
    if isinstance(x, list | tuple):
        return [_no_negative_zero(y) for y in x]
    return x + 0.0 if isinstance(x, float) else x


def _work(task: tuple[str, int, range, str, int]) -> list[tuple[dict[str, Any], np.ndarray, np.ndarray | None]]:
    """Worker: generate, encode, write and measure a chunk of stimuli (spawn-safe)."""
    exp_json, entropy, indices, outdir, n_examples = task
    plan = _plan(json.loads(exp_json))
    root = Path(outdir)
    results = []
    for i in indices:
        entry, files, power, img = _entry(plan, i, entropy)
        assert power is not None  # measured
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
        results.append((entry, power, img if entry["repeat"] < n_examples else None))
    return results


# =========================================================================================
# Running a set
# =========================================================================================
def _versions() -> dict[str, Any]:
    import scipy

    from ._version import __version__

    return {
        "stimgen_version": __version__,
        "python_version": platform.python_version(),
        "numpy_version": np.__version__,
        "scipy_version": scipy.__version__,
        "platform": platform.platform(),
    }


def _chunks(n: int, jobs: int) -> list[range]:
    """Stimulus indices in chunks of at most 32 (ranges: nothing is built per index)."""
    size = max(1, min(32, math.ceil(n / max(1, jobs * 4))))
    return [range(s, min(n, s + size)) for s in range(0, n, size)]


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
    from . import _validate as v
    from ._progress import Progress
    from .io import atomic_directory, sha256_bytes

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
    plan = _plan(exp)
    _warn_aliased_tails(plan, source or exp["name"])
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
    results: list[tuple[dict[str, Any], np.ndarray, np.ndarray | None]] = []
    with atomic_directory(final, force=force) as tmp:
        tasks = [(exp_json, entropy, ch, str(tmp), n_examples) for ch in chunks]
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
        from .io import atomic_write_bytes

        atomic_write_bytes(tmp / "manifest.json", _dumps(manifest).encode())
    manifest["path"] = str(final)
    _warn_clipping(manifest, source or exp["name"])
    return manifest


def _warn_aliased_tails(plan: _Plan, source: str) -> None:
    """One warning per motion condition whose filter tails alias in time (before generating)."""
    if not plan.motion:
        return
    for c in plan.conditions:
        _, found = _motion_probe(c.params, plan.motion, plan.shape, plan.ppd)
        for msg in found:
            warnings.warn(f"{source}: condition {c.index} ({c.label}): {msg}", UserWarning, stacklevel=3)


def _dumps(obj: Any) -> str:
    from .cli import jsonable

    return json.dumps(jsonable(obj), indent=1) + "\n"


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


def _condition_summary(plan: _Plan, c: _Condition, entries: list[dict], powers: list[np.ndarray]) -> dict[str, Any]:
    from .spectrum import compare_to_design, default_tolerance, measure_band, measure_slope

    filt = plan.filter(c)
    radial = radial_part(filt)
    spec = _condition_spectrum(plan, powers)
    out: dict[str, Any] = {
        **_cond_dict(c),
        "filter": None if filt is None else filt.to_record(),
        "design": plan.design(c),
        "n_pass": sum(bool(e["pass"]) for e in entries),
        "clipping": _clipping_summary(plan, entries),
        "spectrum": {"freq_cpd": spec.freq_cpd, "power_mean": spec.power, "power_std": spec.power_std, "n_images": spec.n_images},
    }
    p = c.params
    if p["family"] in ("power_law", "white"):
        alpha = measure_slope(spec, ppd=plan.ppd, band_cpd=p["band_cpd"])
        want = 0.0 if p["family"] == "white" else p["alpha"]
        out["measured"] = {"alpha": alpha, "design_alpha": want}
        out["pass"] = bool(abs(alpha - want) <= _alpha_tolerance(plan.exp["check"], len(powers), plan.shape))
    else:
        m = measure_band(spec, ppd=plan.ppd)
        assert radial is not None  # band-pass families always have a radial filter
        cmp = compare_to_design(m, radial, ppd=plan.ppd, level=p["level"], tolerance=default_tolerance(len(powers), plan.shape))
        out["measured"] = cmp["measured"]
        out["rel_error"] = cmp["rel_error"]
        out["pass"] = cmp["pass"]
    if plan.motion:
        out["spectral_pass"] = out["pass"]
        out["speed"] = speed = _speed_summary(entries)
        out["pass"] = bool(out["pass"] and speed["pass"] is not False)
    return out


def _clipping_summary(plan: _Plan, entries: list[dict[str, Any]]) -> dict[str, Any]:
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


def _speed_summary(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """Requested vs measured velocity of a condition's movies (median over its repeats)."""
    e0 = entries[0]
    checks = [e["speed_check"] for e in entries if e.get("speed_check") is not None]
    out: dict[str, Any] = {
        "requested_speed_deg_s": e0["speed_deg_s"],
        "requested_direction_deg": e0["direction_deg"] if e0["speed_deg_s"] > 0 else None,
        "requested_velocity_deg_s": e0["velocity_deg_s"],
        "measured_speed_deg_s": None,
        "measured_speed_range_deg_s": None,
        "measured_direction_deg": None,
        "direction_error_deg": None,
        "measured_velocity_deg_s": None,
        "n_checked": len(checks),
        "n_pass": sum(bool(k["pass"]) for k in checks),
        "pass": None,
    }
    if not checks:
        return out
    vel = np.array([k["measured"]["velocity_deg_s"] for k in checks], dtype=np.float64)
    speeds = np.hypot(vel[:, 0], vel[:, 1])
    vx, vy = (float(x) for x in np.median(vel, axis=0))
    out["measured_velocity_deg_s"] = [vx + 0.0, vy + 0.0]
    out["measured_speed_deg_s"] = float(np.median(speeds))
    out["measured_speed_range_deg_s"] = [float(speeds.min()), float(speeds.max())]
    if vx != 0 or vy != 0:
        d = out["measured_direction_deg"] = math.degrees(math.atan2(-vy, vx)) % 360.0
        if out["requested_direction_deg"] is not None:
            out["direction_error_deg"] = (d - out["requested_direction_deg"] + 180.0) % 360.0 - 180.0
    out["pass"] = out["n_pass"] == len(checks)
    return out


def _condition_spectrum(plan: _Plan, powers: list[np.ndarray]):
    """Mean and spread over a condition's repeats of the per-stimulus radial spectra."""
    from .spectrum import RadialSpectrum

    ref = plan.bins()
    per = np.asarray(powers)
    return RadialSpectrum(
        freq_cpp=ref.freq_cpp,
        power=per.mean(axis=0),
        power_std=per.std(axis=0, ddof=1) if len(per) > 1 else np.zeros(per.shape[1]),
        counts=ref.counts,
        n_images=len(per),
        shape_px=ref.shape_px,
        ppd=plan.ppd,
    )


def _manifest(plan, exp, entropy, results, yaml_bytes, source, sha256_bytes) -> dict[str, Any]:
    entries = [r[0] for r in results]
    by_cond: dict[int, tuple[list, list]] = {}
    for entry, power, _ in results:
        e, p = by_cond.setdefault(entry["condition"]["index"], ([], []))
        e.append(entry)
        p.append(power)
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
        "n_pass": sum(bool(e["pass"]) for e in entries),
        **(_motion_summary(plan) if plan.motion else {}),
        "conditions": conditions,
        "figures": [],
        "stimuli": entries,
    }


def _motion_summary(plan: _Plan) -> dict[str, Any]:
    from .motion import VELOCITY_CONVENTION

    fps = plan.motion["frame_rate_hz"]  # type: ignore[index]
    return {
        "motion": {
            "frame_rate_hz": fps,
            "n_frames": plan.n_frames,
            "duration_s": plan.n_frames / fps,  # type: ignore[operator]
            "movie_shape": [plan.n_frames, *plan.shape],
            "velocity_convention": VELOCITY_CONVENTION,
            "generator": "stimgen.motion.drifting_noise (exact Fourier shifts of a periodic field)",
            "speed_check": "stimgen.motion.verify_motion (median dense Lucas-Kanade flow)",
        },
    }


def _figures(plan: _Plan, results: list, tmp: Path, manifest: dict[str, Any]) -> list[str]:
    from . import plotting

    figdir = tmp / "figures"
    figdir.mkdir()
    written = []
    by_cond: dict[int, list[np.ndarray]] = {}
    examples: dict[int, list[np.ndarray]] = {}
    for entry, power, img in results:
        ci = entry["condition"]["index"]
        by_cond.setdefault(ci, []).append(power)
        if img is not None:
            examples.setdefault(ci, []).append(img)
    for c, summary in zip(plan.conditions, manifest["conditions"], strict=True):
        spec = _condition_spectrum(plan, by_cond[c.index])
        fam = c.params["family"]
        slope = {"power_law": c.params["alpha"], "white": 0.0}.get(fam)
        title = f"condition {c.index}: {c.label}"
        if plan.motion:
            title += "\nfirst frames; " + _speed_text(summary["speed"])
        ax = plotting.plot_condition_spectrum(
            spec, design=None if slope is not None else radial_part(plan.filter(c)),
            level=c.params["level"], title=title, passed=summary["pass"], alpha=slope,
        )  # fmt: skip
        rel = f"figures/spectrum_{c.folder}.png"
        plotting.save(ax.figure, tmp / rel)
        written.append(rel)
    if examples:
        rows = [(f"{c.index}: {c.label}", examples.get(c.index, [])) for c in plan.conditions]
        fig = plotting.plot_contact_sheet(rows, size_deg=plan.size_deg)
        if plan.motion:
            h, w = plan.size_deg
            fig.suptitle(f"first frames of example movies (gray scale: signed contrast -1 to +1, "
                         f"{h:.3g} x {w:.3g} deg)", fontsize=9)  # fmt: skip
        plotting.save(fig, tmp / "figures/contact_sheet.png")
        written.append("figures/contact_sheet.png")
    checked = [e for e in manifest["stimuli"] if e.get("speed_check") is not None]
    if checked:
        ax = plotting.plot_velocity_check(
            [e["velocity_deg_s"] for e in checked],
            [e["speed_check"]["measured"]["velocity_deg_s"] for e in checked],
            labels=[_first_label(checked, i) for i in range(len(checked))],
            passed=[e["speed_check"]["pass"] for e in checked],
            title=f"{len(checked)} movies: velocity measured by optical flow vs requested",
        )  # fmt: skip
        plotting.save(ax.figure, tmp / "figures/velocity.png")
        written.append("figures/velocity.png")
    return written


def _first_label(entries: list[dict[str, Any]], i: int) -> str:
    """``c<index>`` at the first entry of each condition, empty for its repeats."""
    ci = entries[i]["condition"]["index"]
    return "" if i and entries[i - 1]["condition"]["index"] == ci else f"c{ci}"


def _speed_text(speed: Mapping[str, Any]) -> str:
    """``speed 2.001 deg/s at 90.0 deg (requested 2 deg/s at 90 deg)`` for a condition summary."""
    want = f"{speed['requested_speed_deg_s']:g} deg/s"
    if speed["requested_direction_deg"] is not None:
        want += f" at {speed['requested_direction_deg']:g} deg"
    if speed["measured_speed_deg_s"] is None:
        return f"speed not measurable (dynamic noise, a new sample every frame); requested {want}"
    got = f"speed {speed['measured_speed_deg_s']:.3f} deg/s"
    if speed["direction_error_deg"] is not None:  # near the requested one: 359.98 shows as 0.0
        got += f" at {round(speed['requested_direction_deg'] + speed['direction_error_deg'], 1) + 0.0:.1f} deg"
    elif speed["measured_direction_deg"] is not None:
        got += f" at {speed['measured_direction_deg']:.1f} deg"
    return f"{got} (requested {want})"


# =========================================================================================
# Verification and regeneration
# =========================================================================================
@dataclass
class VerifyReport:
    """Result of :func:`verify_set`: ``ok`` and a list of what does not hold."""

    path: str
    n_files: int = 0
    n_stimuli: int = 0
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    motion: bool = False  # a set of movies: speeds were re-measured too

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "ok": self.ok, "n_files": self.n_files, "n_stimuli": self.n_stimuli,
                "motion": self.motion, "failures": self.failures, "notes": self.notes}  # fmt: skip


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


def _image_from_file(path: Path, fmt: str, gamma: float | None) -> np.ndarray:
    from .io import read_image

    a = read_image(path)
    if fmt == "npy":
        return a
    top = 255.0 if fmt == "png8" else 65535.0
    lum = a.astype(np.float64) / top
    if gamma is not None:
        lum = lum**gamma
    return lum * 2.0 - 1.0


def verify_set(
    path: str | os.PathLike,
    *,
    spectra: bool = True,
    require_pass: bool = False,
    on_progress: Callable[[int], None] | None = None,
) -> VerifyReport:
    """Check a stimulus set against its manifest.

    Re-hashes every listed file (a changed byte fails), checks the copy of the experiment
    file, and re-measures each stimulus' spectrum: the measured peak and band (or 1/f
    exponent) must agree with the manifest (exactly up to float rounding for ``.npy``;
    within the quantization noise, 2 %, for PNG-only sets) and give the same pass flag.
    Movies: the spectrum of the first frame, and the velocity measured again with
    :func:`stimgen.motion.verify_motion`, which must reproduce the manifest's (to 1e-6
    px/frame) and its pass flag.
    When the manifest was written by another stimgen version, spectral differences are
    reported as notes instead (the measurement itself may have changed).

    Parameters
    ----------
    path : path
        The set's directory (or its manifest.json).
    spectra : bool
        Also re-measure the spectra (default True).
    require_pass : bool
        Also fail when a stimulus' spectral ``pass`` flag in the manifest is false.
    on_progress : callable, optional
        Called with 1 after each stimulus.

    Returns
    -------
    VerifyReport
    """
    root, manifest = read_manifest(path)
    rep = VerifyReport(str(root), n_stimuli=len(manifest["stimuli"]), motion=bool(manifest["experiment"].get("motion")))
    from .io import sha256_file

    if manifest.get("experiment_sha256"):
        y = root / "experiment.yaml"
        if not y.is_file():
            rep.failures.append("experiment.yaml: missing")
        elif sha256_file(y) != manifest["experiment_sha256"]:
            rep.failures.append("experiment.yaml: sha256 differs from the manifest")
    plan = None
    try:
        plan = _plan(validate_experiment(manifest["experiment"], source="manifest.json:experiment"))
    except ValueError as exc:
        rep.failures.append(f"manifest.json: the stored experiment is invalid: {' '.join(str(exc).split())}")
    n_listed = len(manifest["stimuli"])
    if manifest["n_stimuli"] != n_listed:
        rep.failures.append(f"manifest.json: n_stimuli is {manifest['n_stimuli']} but {n_listed} stimuli are listed")
    if plan is not None and plan.n != n_listed:
        rep.failures.append(f"manifest.json: the stored experiment plans {plan.n} stimuli but {n_listed} are listed")
        plan = None  # entries do not match the plan: their spectra cannot be checked by index
    if not spectra:
        plan = None
    from ._version import __version__

    made_by = manifest.get("stimgen_version")
    same_version = made_by == __version__
    if not same_version:
        rep.notes.append(
            f"the set was made by stimgen {made_by}, this is {__version__}: spectra that measure "
            "differently are noted, not failed (the hashes still must match)"
        )
    listed = set()
    for e in manifest["stimuli"]:
        ok_files = True
        for f in e.get("files", [e]):
            rep.n_files += 1
            listed.add(f["file"])
            fp = root / f["file"]
            if not fp.is_file():
                rep.failures.append(f"{f['file']}: missing")
                ok_files = False
            elif sha256_file(fp) != f["sha256"]:
                rep.failures.append(f"{f['file']}: sha256 differs from the manifest (the file was changed)")
                ok_files = False
            else:
                msg = _check_layout(fp, f.get("format", Path(f["file"]).suffix.lstrip(".")), f)
                if msg:
                    rep.failures.append(f"{f['file']}: {msg}")
                    ok_files = False
        what = "spectrum or speed" if "speed_check" in e else "spectrum"
        if require_pass and not e.get("pass"):
            rep.failures.append(f"{e['file']}: its {what} failed the design check when generated")
        elif not e.get("pass"):
            rep.notes.append(f"{e['file']}: {what} pass flag is false in the manifest")
        if plan is not None and ok_files:
            msg = _verify_spectrum(plan, root, e)
            if msg and same_version:
                rep.failures.append(f"{e['file']}: {msg}")
            elif msg:
                rep.notes.append(f"{e['file']}: {msg} (measured by stimgen {made_by}, now {__version__})")
        if on_progress is not None:
            on_progress(1)
    stim_dir = root / "stimuli"
    if stim_dir.is_dir():
        extra = sorted(str(p.relative_to(root)) for p in stim_dir.rglob("*") if p.is_file() and str(p.relative_to(root)) not in listed)
        for rel in extra[:5]:
            rep.failures.append(f"{rel}: under stimuli/ but not in the manifest")
        if len(extra) > 5:
            rep.failures.append(f"... and {len(extra) - 5} more file(s) under stimuli/ not in the manifest")
    return rep


def _check_layout(path: Path, fmt: str, f: Mapping[str, Any]) -> str | None:
    """Whether a file's array shape and dtype are those its manifest entry states."""
    if "shape" not in f and "dtype" not in f:
        return None
    try:
        if fmt == "npy":
            a = np.load(path, mmap_mode="r", allow_pickle=False)
            shape, dtype = list(a.shape), str(a.dtype)
        elif fmt == "gif":
            from PIL import Image

            with Image.open(path) as im:
                shape, dtype = [getattr(im, "n_frames", 1), im.size[1], im.size[0]], "uint8"
        else:
            from .io import read_image

            a = read_image(path)
            shape, dtype = list(a.shape), str(a.dtype)
    except (OSError, ValueError) as exc:
        return f"cannot be read as {fmt}: {' '.join(str(exc).split())}"
    if "shape" in f and list(f["shape"]) != shape:
        return f"holds an array of shape {shape}, the manifest says {f['shape']}"
    if "dtype" in f and f["dtype"] != dtype:
        return f"holds {dtype} data, the manifest says {f['dtype']}"
    return None


def _close(a: Any, b: Any, rtol: float) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, list):
        return len(a) == len(b) and all(_close(x, y, rtol) for x, y in zip(a, b, strict=True))
    a, b = float(a), float(b)
    if not (math.isfinite(a) and math.isfinite(b)):
        return a == b
    return abs(a - b) <= rtol * max(abs(a), abs(b), 1e-12)


def _verify_spectrum(plan: _Plan, root: Path, e: dict[str, Any]) -> str | None:
    c, _ = plan.locate(int(e["index"]))
    files = {f["format"]: f for f in e.get("files", [])}
    fmt = "npy" if "npy" in files else ("png16" if "png16" in files else "png8")
    f = files.get(fmt, e)
    data = _image_from_file(root / f["file"], fmt, plan.exp["output"]["gamma"])
    movie = plan.motion is not None
    if movie and (data.ndim != 3 or list(data.shape[1:]) != list(plan.shape)):
        return f"is not a (T, H, W) movie of {plan.shape[0]} x {plan.shape[1]} px frames: shape {list(data.shape)}"
    measured, _ = _measure(plan, c, data[0] if movie else data)
    rtol = 1e-6 if fmt == "npy" else 0.02
    for key in ("peak_cpd", "band_cpd", "alpha", "orientation_deg"):
        if key in e and not _close(measured.get(key), e.get(key), rtol if key != "alpha" else max(rtol, 0.01)):
            return f"re-measured {key} {_fmt_num(measured.get(key))} differs from the manifest's {_fmt_num(e.get(key))}"
    flag = e.get("spectral_pass", e.get("pass")) if movie else e.get("pass")
    if fmt == "npy" and bool(measured["pass"]) != bool(flag):
        return f"re-measured spectral pass {measured['pass']} differs from the manifest's {flag}"
    if movie and "motion_record" in e:
        return _verify_speed(plan, data, e)
    return None


def _verify_speed(plan: _Plan, movie: np.ndarray, e: dict[str, Any]) -> str | None:
    """Measure a movie's velocity again; it must reproduce the manifest's (to 1e-6 px/frame)."""
    got = _measure_motion(plan, movie, e["motion_record"])
    want = e.get("speed_check")
    if got is None or want is None:
        return None if got is None and want is None else "speed check present in only one of manifest and re-measurement"
    a = got["measured"]["velocity_px_per_frame"]
    b = want["measured"]["velocity_px_per_frame"]
    if not all(_close_abs(x, y, 1e-6) for x, y in zip(a, b, strict=True)):
        return (f"re-measured velocity {_fmt_num(a)} px/frame differs from the manifest's {_fmt_num(b)} "
                f"(requested {_fmt_num(e['velocity_px_per_frame'])})")  # fmt: skip
    if bool(got["pass"]) != bool(want["pass"]):
        return f"re-measured speed pass {got['pass']} differs from the manifest's {want['pass']}"
    return None


def _close_abs(a: Any, b: Any, atol: float) -> bool:
    if a is None or b is None:
        return a is None and b is None
    a, b = float(a), float(b)
    if not (math.isfinite(a) and math.isfinite(b)):
        return a == b or (math.isnan(a) and math.isnan(b))
    return abs(a - b) <= atol + 1e-6 * max(abs(a), abs(b))


def _fmt_num(x: Any) -> str:
    if isinstance(x, list):
        return "[" + ", ".join(_fmt_num(y) for y in x) + "]"
    return f"{x:.5g}" if isinstance(x, float) else str(x)


def regenerate_stimulus(
    path: str | os.PathLike,
    index: int,
    *,
    out: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Rebuild stimulus ``index`` of a set from its manifest alone and compare the bytes.

    Parameters
    ----------
    path : path
        The set's directory (or its manifest.json). Only the manifest is read.
    index : int
        0-based stimulus index (``manifest["stimuli"][index]``).
    out : path, optional
        Directory to write the regenerated files into (created if needed).

    Returns
    -------
    dict
        ``index``, ``condition``, ``match`` (all regenerated files byte-identical to the
        manifest's hashes), ``on_disk_match`` (the set's files on disk are those bytes too)
        and ``files``: for each format the manifest's, the regenerated and the on-disk
        sha256 (None for a missing file). Byte identity needs the
        same numpy/scipy versions as the manifest's (a different version may change the
        random stream or the FFT rounding).
    """
    from .io import sha256_bytes, sha256_file

    root, manifest = read_manifest(path)
    n = len(manifest["stimuli"])
    if isinstance(index, bool) or not isinstance(index, int | np.integer) or not 0 <= int(index) < n:
        raise ValueError(f"index must be an integer in [0, {n - 1}], got {index!r}")
    exp = validate_experiment(manifest["experiment"], source="manifest.json:experiment")
    plan = _plan(exp)
    entry, files, _, _ = _entry(plan, int(index), int(manifest["seed_entropy"]), measure=False)
    want = {f["format"]: f for f in manifest["stimuli"][int(index)].get("files", [])}
    rows = []
    for rel, fmt, data in files:
        got = sha256_bytes(data)
        exp_sha = want.get(fmt, {}).get("sha256")
        on_disk = root / rel
        disk_sha = sha256_file(on_disk) if on_disk.is_file() else None
        rows.append({"file": rel, "format": fmt, "sha256_manifest": exp_sha, "sha256_regenerated": got,
                     "sha256_on_disk": disk_sha, "match": got == exp_sha, "on_disk_match": disk_sha == got})
        if out is not None:
            target = Path(out) / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
    return {
        "index": int(index),
        "condition": entry["condition"],
        "files": rows,
        "match": all(r["match"] for r in rows),
        "on_disk_match": all(r["on_disk_match"] for r in rows),
        "versions": {k: manifest.get(k) for k in ("stimgen_version", "numpy_version", "scipy_version")},
    }
