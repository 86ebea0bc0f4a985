"""Conditions, factorial expansion, seeds and shapes: the plan of a set.

expand_conditions   the conditions of a resolved experiment, in plan order (public)
Condition           one condition: label, folder, resolved parameters, repeats, first index
Plan                everything a worker needs, derived once per process from the experiment
plan_of             the (cached) plan of a resolved experiment
"""

from __future__ import annotations

import bisect
import itertools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .parts import CONTRAST_KEYS, PARTS, Part, active_parts, section_key


@dataclass
class Condition:
    index: int
    label: str
    folder: str
    own: dict[str, Any]  # the condition's own parameters (from conditions[i] and factorial)
    params: dict[str, Any]  # every parameter of the parts and the contrast, resolved
    repeats: int
    first: int  # index of its first stimulus
    list_index: int = 0  # which entry of ``conditions`` it comes from
    sources: dict[str, tuple] = field(default_factory=dict, repr=False)


def _fmt(x: Any) -> str:
    if isinstance(x, list):
        return "-".join(_fmt(y) for y in x)
    if isinstance(x, float):
        return f"{x:g}"
    return str(x)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "_", text).strip("_")[:60]


def param_keys() -> tuple[str, ...]:
    """Every key a condition or the factorial may vary: the parts' and the contrast's."""
    keys: list[str] = []
    for p in PARTS.values():
        keys.extend(p.condition_keys)
    return (*keys, *CONTRAST_KEYS)


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
    return [cond_dict(c) for c in expand(experiment)]


def cond_dict(c: Condition) -> dict[str, Any]:
    return {
        "index": c.index,
        "label": c.label,
        "folder": c.folder,
        "own": c.own,
        "params": c.params,
        "repeats": c.repeats,
        "first": c.first,
    }


def expand(exp: Mapping[str, Any]) -> list[Condition]:
    """The conditions of an experiment (sections may hold BAD while it is being validated)."""
    base: dict[str, Any] = {}
    sources: dict[str, tuple] = {}
    parts = active_parts(exp)
    for part in parts:
        section = exp.get(part.name)
        if not isinstance(section, Mapping):
            continue
        for k in part.condition_keys:
            sk = section_key(part, k)
            if sk not in section:  # an optional key the file does not give: not stated
                continue
            base[k] = section[sk]
            given = section[sk] is not None and section[sk] != part.defaults[sk]
            sources[k] = (part.name, sk) if given else (part.name,)
    for k in CONTRAST_KEYS:
        base[k] = exp["stimulus"][k]
        sources[k] = ("stimulus", k)
    varied = param_keys()
    listed = exp["conditions"] or [{}]
    fact = exp["factorial"] or {}
    fkeys = list(fact)
    combos = list(itertools.product(*[list(enumerate(fact[k])) for k in fkeys]))
    conds: list[Condition] = []
    first = 0
    n_total = len(listed) * len(combos)
    width = max(2, len(str(n_total - 1)))
    for li, lc in enumerate(listed):
        for combo in combos:
            own = {k: val for k, val in lc.items() if k in varied}
            src = dict(sources)
            src.update({k: ("conditions", li, k) for k in own})
            for k, (j, val) in zip(fkeys, combo, strict=True):
                own[k] = val
                src[k] = ("factorial", k, j)
            params = dict(base)
            for part in parts:
                part.resolve_condition(params, own)
            params.update(own)
            auto = ", ".join(f"{k}={_fmt(val)}" for k, val in own.items()) or "all"
            label = lc.get("label") or auto
            if lc.get("label") and len(combos) > 1:
                label = f"{lc['label']}, {auto}"
            index = len(conds)
            folder = f"c{index:0{width}d}" + (f"_{_slug(label)}" if own or lc.get("label") else "")
            repeats = int(lc.get("repeats") or exp["repeats"])
            conds.append(Condition(index, label, folder, own, params, repeats, first, li, src))
            first += repeats
    return conds


def geometry(exp: Mapping[str, Any]):
    from ..geometry import ViewingGeometry

    d = exp["display"]
    if d["ppd"] is not None:
        return ViewingGeometry.from_ppd(d["ppd"])
    return ViewingGeometry(d["distance_cm"], d["screen_width_cm"], d["screen_width_px"], d["screen_height_px"])


def shape_of(exp: Mapping[str, Any]) -> tuple[tuple[int, int], tuple[float, float]]:
    from ..geometry import resolve_shape

    s = exp["stimulus"]
    shape, size_deg = resolve_shape(size_px=s["size_px"], size_deg=s["size_deg"], ppd=geometry(exp).ppd)
    return shape, size_deg  # type: ignore[return-value]


class Plan:
    """Everything a worker needs, derived once per process from the resolved experiment.

    ``parts`` are the active parts, ``drawers`` those that draw (not superseded by another),
    ``movie`` whether stimuli are (T, H, W) movies (``n_frames`` frames each); ``memo`` caches per-plan values of the
    parts (filters, spectrum bins, ...).
    """

    def __init__(self, exp: Mapping[str, Any]) -> None:
        self.exp = exp
        self.geometry = geometry(exp)
        self.ppd = self.geometry.ppd
        self.shape, self.size_deg = shape_of(exp)
        self.parts: list[Part] = active_parts(exp)
        superseded = {name for p in self.parts for name in p.supersedes}
        self.drawers: list[Part] = [p for p in self.parts if p.name not in superseded]
        self.movie = any(p.movie for p in self.parts)
        #: frames of each movie (None for still images), as the part making movies states it
        self.n_frames: int | None = next((k for p in self.parts if (k := p.n_frames(self)) is not None), None)
        self.conditions = expand(exp)
        self.starts = [c.first for c in self.conditions]
        self.n = sum(c.repeats for c in self.conditions)
        self._memo: dict[Any, Any] = {}

    def locate(self, index: int) -> tuple[Condition, int]:
        if not 0 <= index < self.n:
            raise ValueError(f"stimulus index must be in [0, {self.n - 1}], got {index}")
        c = self.conditions[bisect.bisect_right(self.starts, index) - 1]
        return c, index - c.first

    def memo(self, key: Any, make: Any) -> Any:
        """``make()``, computed once per plan for ``key``."""
        if key not in self._memo:
            self._memo[key] = make()
        return self._memo[key]

    def rng(self, index: int, entropy: int) -> np.random.Generator:
        """The generator of stimulus ``index``: everything it draws comes from it."""
        return np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=(index,)))

    def frozen_rng(self, tag: int, repeat: int, entropy: int) -> np.random.Generator:
        """A generator shared by every condition's stimulus of one ``repeat`` (frozen noise).

        ``default_rng(SeedSequence(entropy, spawn_key=(tag, repeat)))``: keyed by the set's
        seed entropy, a part's fixed ``tag`` and the repeat, never by the stimulus index, so
        stimulus ``i`` is still made alone from ``(entropy, i)`` and its repeat in the plan.
        Its two-word spawn key never equals a stimulus' one-word key ``(index,)``.
        """
        return np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=(tag, repeat)))


_PLANS: dict[str, Plan] = {}


def plan_of(exp: Mapping[str, Any]) -> Plan:
    key = json.dumps(exp)  # key order matters: factorial keys expand in the file's order
    plan = _PLANS.get(key)
    if plan is None:
        if len(_PLANS) > 8:
            _PLANS.clear()
        plan = _PLANS[key] = Plan(exp)
    return plan
