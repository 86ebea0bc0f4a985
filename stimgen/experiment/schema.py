"""Line-aware validation of experiment files: every key, its type, range and defaults."""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._yamlschema import BAD, Checker, Problem, SchemaError, _Lines, format_path, load_yaml
from ..filters import radial_part
from .errors import ExperimentError
from .keys import (
    _BAND_GROUP,
    _ELSEWHERE,
    _NAME_PATTERN,
    _OPTIONAL,
    CHECK_DEFAULTS,
    CLIPPING,
    CONDITION_KEYS,
    CONTRAST_KEYS,
    DISPLAY_DEFAULTS,
    DITHERS,
    DTYPES,
    FAMILIES,
    FORMATS,
    KINDS,
    LEVELS,
    MAX_STIMULI,
    MOTION_DEFAULTS,
    MOTION_FORMATS,
    MOTION_PARAM_KEYS,
    NOISE_DEFAULTS,
    OUTPUT_DEFAULTS,
    PARAM_KEYS,
    STILL_FORMATS,
    STIMULUS_DEFAULTS,
    TOP_KEYS,
)
from .plan import _Condition, _expand, _geometry, _has_bad, _make_filter, _motion_probe, _shape


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


def _check_plan(ck: Checker, exp: dict[str, Any]) -> None:
    """Conditions vs the filter hub: bands designable, below Nyquist, above 1 cycle/image."""
    from ..filters import check_fits_image

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
