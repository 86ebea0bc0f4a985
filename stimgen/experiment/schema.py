"""Line-aware validation of experiment files: every key, its type, range and defaults.

load_experiment      read a YAML file and validate it
validate_experiment  validate a dict (e.g. the experiment stored in a manifest)
top_keys             the top-level keys: the frame's and one section per registered part

The frame (name, seed, display, stimulus, conditions, factorial, repeats, output, check) is
checked here; each part's section, its condition keys, its tolerances in ``check`` and its
plan-level rules are checked by the part (:mod:`stimgen.experiment.parts`).
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._yamlschema import BAD, Checker, Problem, SchemaError, _Lines, has_bad, load_yaml
from . import display_out
from .errors import ExperimentError
from .keys import (
    _NAME_PATTERN,
    CLIPPING,
    DISPLAY_DEFAULTS,
    DISPLAY_FORMATS,
    DITHERS,
    DTYPES,
    FORMATS,
    FRAME_HEAD,
    FRAME_TAIL,
    MAX_STIMULI,
    MOTION_FORMATS,
    OUTPUT_DEFAULTS,
    PLAIN_STILL_FORMATS,
    STILL_FORMATS,
    STIMULUS_DEFAULTS,
)
from .parts import CONTRAST_KEYS, PARTS, Part, elsewhere, owner_of
from .plan import expand, geometry, param_keys, shape_of


def top_keys() -> tuple[str, ...]:
    """Every top-level key of an experiment: the frame's and the registered parts' sections."""
    return (*FRAME_HEAD, *PARTS, *FRAME_TAIL)


def check_defaults() -> dict[str, Any]:
    """The ``check`` section's keys (the parts' tolerances) and their defaults."""
    return {k: default for p in PARTS.values() for k, (default, _) in p.tolerances.items()}


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
    return _validate(data, lines, problems, str(p), base=p.parent)


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


def _validate(data: Any, lines: _Lines, problems: list[Problem], source: str, *, base: Path | None = None) -> dict[str, Any]:
    ck = Checker(lines, problems)
    required = ("name", "display", "stimulus", *(p.name for p in PARTS.values() if p.required))
    if data is None:
        ck.add((), "the file is empty; an experiment needs " + ", ".join(required[:-1]) + " and " + required[-1])
        raise ExperimentError(source, ck.problems)
    top = ck.mapping((), data, top_keys(), required=required, elsewhere=elsewhere())
    if top is BAD:
        raise ExperimentError(source, ck.problems)
    res: dict[str, Any] = {}
    res["name"] = ck.string(("name",), top["name"], pattern=_NAME_PATTERN, what="a name of letters, digits, '.', '_' or '-'") if "name" in top else BAD
    desc = top.get("description", "")
    res["description"] = "" if desc is None else ck.string(("description",), desc)
    seed = top.get("seed")
    res["seed"] = None if seed is None else ck.number(("seed",), seed, low=0, integer=True)
    res["display"] = _check_display(ck, top.get("display"), base)
    res["stimulus"] = _check_stimulus(ck, top.get("stimulus"))
    for part in PARTS.values():
        if part.required:
            res[part.name] = part.check_section(ck, top[part.name]) if part.name in top else BAD
        else:
            res[part.name] = None if top.get(part.name) is None else part.check_section(ck, top[part.name])
    rep = 1 if top.get("repeats") is None else top["repeats"]
    res["repeats"] = ck.number(("repeats",), rep, low=1, integer=True)
    res["conditions"] = _check_conditions(ck, top.get("conditions"))
    res["factorial"] = _check_factorial(ck, top.get("factorial"))
    _refuse_absent_parts(ck, res)
    movie = any(p.movie for p in PARTS.values() if res[p.name] is not None)
    if movie:
        _movie_synthesis(ck, res, top)
    res["output"] = _check_output(ck, top.get("output"), motion=movie, modelled=display_out.has_model(res["display"]))
    res["check"] = _check_check(ck, top.get("check"))
    if _check_size(ck, res):
        _check_plan(ck, res)
    if ck.problems:
        raise ExperimentError(source, ck.problems)
    return res


def _movie_synthesis(ck: Checker, res: dict[str, Any], top: Mapping[str, Any]) -> None:
    """Movies draw their noise fields spatially (:func:`stimgen.motion.drifting_noise`): the
    resolved ``noise.synthesis`` of a movie experiment says so, and an explicit
    ``synthesis: spectral`` is refused rather than recorded for a method not used."""
    noise = res.get("noise")
    if not isinstance(noise, dict) or "synthesis" not in noise:
        return
    given = top.get("noise")
    if isinstance(given, Mapping) and given.get("synthesis") == "spectral":
        ck.add(("noise", "synthesis"), "a movie's noise fields are drawn spatially (synthesis: spatial); "
               "spectral synthesis is for still images")  # fmt: skip
        return
    noise["synthesis"] = "spatial"


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
    return ck.mapping((name,), value, defaults, elsewhere=elsewhere())


def _check_display(ck: Checker, value: Any, base: Path | None = None) -> Any:
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
    display_out.check_display_model(ck, d, out, base)  # calibration or gamma, mean_cd_m2
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


def _check_output(ck: Checker, value: Any, *, motion: bool = False, modelled: bool = False) -> Any:
    o = _section(ck, "output", value, OUTPUT_DEFAULTS)
    if o is BAD:
        return BAD
    out = copy.deepcopy(OUTPUT_DEFAULTS)
    allowed = MOTION_FORMATS if motion else (STILL_FORMATS if modelled else PLAIN_STILL_FORMATS)
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
                if x in DISPLAY_FORMATS and x not in allowed and not motion:
                    ck.add(path, f"{x} is a display encoding: it needs a display model (display.calibration "
                           "or display.gamma, and display.mean_cd_m2)")  # fmt: skip
                    out["formats"].append(BAD)
                elif x in FORMATS and x not in allowed:
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
        if modelled:
            ck.add(("output", "gamma"), "output.gamma is a power law for png8/png16 without a display model; "
                   "the display model (display.calibration or display.gamma) is the gamma: remove output.gamma")  # fmt: skip
    if o.get("dtype") is not None:
        out["dtype"] = ck.choice(("output", "dtype"), o["dtype"], DTYPES)
    if o.get("figures") is not None:
        out["figures"] = ck.boolean(("output", "figures"), o["figures"])
    if o.get("examples_per_condition") is not None:
        out["examples_per_condition"] = ck.number(("output", "examples_per_condition"), o["examples_per_condition"], low=0, high=64, integer=True)
    return out


def _check_contrast(ck: Checker, path: tuple, key: str, value: Any) -> Any:
    if key == "rms_contrast":
        return ck.number(path, value, low=0, high=1, low_open=True)
    return ck.number(path, value, low=-1, high=1, low_open=True, high_open=True)  # mean


def _check_param(ck: Checker, path: tuple, key: str, value: Any) -> Any:
    """One value of a condition key: the contrast's, or that of the part that owns the key."""
    if key in CONTRAST_KEYS:
        return _check_contrast(ck, path, key, value)
    part = owner_of(key)
    assert part is not None, key
    return part.check_value(ck, path, key, value)


def _nullable(key: str) -> bool:
    part = owner_of(key)
    return part is not None and key in part.nullable


def _check_conditions(ck: Checker, value: Any) -> Any:
    if value is None:
        return []
    if not isinstance(value, list) or not value:
        ck.add(("conditions",), "must be a non-empty list of mappings such as {band_cpd: [1, 2]}")
        return BAD
    varied = param_keys()
    out = []
    for i, c in enumerate(value):
        path = ("conditions", i)
        if c is None:
            c = {}
        m = ck.mapping(path, c, ("label", "repeats", *varied), elsewhere=elsewhere())
        if m is BAD:
            out.append(BAD)
            continue
        own: dict[str, Any] = {}
        for k, val in m.items():
            if k not in varied or (val is None and not _nullable(k)):
                continue  # null means "not set": the base value
            own[k] = _check_param(ck, (*path, k), k, val)
        for part in PARTS.values():
            part.check_keys(ck, path, {k: v for k, v in m.items() if k in part.condition_keys})
        if c.get("label") is not None:
            own["label"] = ck.string((*path, "label"), c["label"])
        if c.get("repeats") is not None:
            own["repeats"] = ck.number((*path, "repeats"), c["repeats"], low=1, integer=True)
        out.append(own)
    return out


def _check_factorial(ck: Checker, value: Any) -> Any:
    if value is None:
        return {}
    m = ck.mapping(("factorial",), value, param_keys(), elsewhere=elsewhere())
    if m is BAD:
        return BAD
    out = {}
    for k, vals in m.items():
        path = ("factorial", k)
        if not isinstance(vals, list) or not vals:
            ck.add(path, f"must be a non-empty list of values for {k}, got {vals!r}")
            continue
        out[k] = [None if x is None and _nullable(k) else _check_param(ck, (*path, j), k, x) for j, x in enumerate(vals)]
    return out


def _refuse_absent_parts(ck: Checker, exp: Mapping[str, Any]) -> None:
    """Keys of a part whose section is absent are a mistake, not something to ignore."""
    conditions, factorial = exp["conditions"], exp["factorial"]
    for part in PARTS.values():
        if exp[part.name] is not None:
            continue
        for i, c in enumerate(conditions if conditions is not BAD else []):
            for k in part.condition_keys:
                if c is not BAD and k in c:
                    ck.add(("conditions", i, k), part.absent_hint.format(k), key=True)
        for k in part.condition_keys:
            if factorial is not BAD and k in factorial:
                ck.add(("factorial", k), part.absent_hint.format(k), key=True)


def _check_check(ck: Checker, value: Any) -> Any:
    bounds = {k: b for p in PARTS.values() for k, (_, b) in p.tolerances.items()}
    c = ck.mapping(("check",), value, bounds, elsewhere=elsewhere()) if value is not None else {}
    if c is BAD:
        return BAD
    out = check_defaults()
    for k, val in c.items():
        if val is not None:
            out[k] = ck.number(("check", k), val, **bounds[k])
    return out




def _check_plan(ck: Checker, exp: dict[str, Any]) -> None:
    """Each resolved condition, asked of every active part in turn (bands, speeds, ...)."""
    if has_bad(exp["display"]) or exp["stimulus"] is BAD:
        return
    if any(has_bad(exp[p.name]) for p in PARTS.values() if p.required):
        return
    if has_bad([exp["stimulus"]["size_deg"], exp["stimulus"]["size_px"]]):
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
        ppd = geometry(safe).ppd
        shape, _ = shape_of(safe)
    except ValueError as exc:
        ck.add(("stimulus",), str(exc))
        return
    parts: list[Part] = [p for p in PARTS.values() if p.required or exp[p.name] is not None]
    seen: dict = {}
    for c in expand(safe):
        if listed and listed[c.list_index] is BAD:
            continue
        for part in parts:
            if not part.check_condition(ck, exp, c, shape, ppd):
                break
        else:
            display_out.check_shown_contrast(ck, exp, c, seen)
