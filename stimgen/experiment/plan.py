"""Conditions, factorial expansion, seeds and shapes: the plan of a set."""

from __future__ import annotations

import itertools
import json
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._yamlschema import BAD
from ..filters import radial_part
from .keys import (
    _BAND_GROUP,
    CONTRAST_KEYS,
    MOTION_DEFAULTS,
    MOTION_PARAM_KEYS,
    NOISE_DEFAULTS,
    PARAM_KEYS,
)


def _n_frames(motion: Mapping[str, Any]) -> int:
    """Frames of a resolved motion section (``duration_s`` rounded as drifting_noise does)."""
    if motion["n_frames"] is not None:
        return int(motion["n_frames"])
    return round(motion["duration_s"] * motion["frame_rate_hz"])


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
    from ..geometry import ViewingGeometry

    d = exp["display"]
    if d["ppd"] is not None:
        return ViewingGeometry.from_ppd(d["ppd"])
    return ViewingGeometry(d["distance_cm"], d["screen_width_cm"], d["screen_width_px"], d["screen_height_px"])


def _shape(exp: Mapping[str, Any]) -> tuple[tuple[int, int], tuple[float, float]]:
    from ..geometry import resolve_shape

    s = exp["stimulus"]
    shape, size_deg = resolve_shape(size_px=s["size_px"], size_deg=s["size_deg"], ppd=_ppd(exp))
    return shape, size_deg  # type: ignore[return-value]


def _make_filter(p: Mapping[str, Any], ppd: float):
    """The filter of a condition, through the hub (None for white noise)."""
    from ..noise import make_filter

    if p.get("sigma_center_deg") is not None:
        from ..filters import DoG, Orientation

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
    from ..motion import drifting_noise

    key = json.dumps([{k: p[k] for k in sorted(p)}, motion, list(shape), ppd], sort_keys=True, default=str)
    if key not in _PROBES:
        if len(_PROBES) > 256:
            _PROBES.clear()
        err, found = None, []
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                from .budget import one_frame_fits

                one_frame_fits(shape)  # the probe draws a frame: refuse one beyond memory first
                drifting_noise(size_px=shape, rng=0, **_motion_kwargs(p, motion, ppd, 1))
            except ValueError as exc:
                err = " ".join(str(exc).split())
        found = [" ".join(str(w.message).split()) for w in caught if issubclass(w.category, UserWarning)]
        _PROBES[key] = (err, found)
    return _PROBES[key]


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
            from ..spectrum import radial_spectrum

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
