"""The ``aperture`` part: a window over target and noise, composed after both.

Section ``aperture`` (optional): ``kind: gaussian | raised_cosine | disk | annulus``, the
kind's sizes in degrees (as :func:`stimgen.aperture`), ``center_deg`` and ``mode: window |
mask`` (:func:`stimgen.apertures.apply_aperture`). Conditions and the factorial vary them
as ``aperture.radius_deg``, ``aperture.mode``, ... The stimulus is
``aperture * (target + noise)`` (``mode: window``), or with ``mode: mask`` the windowed
noise scaled to ``stimulus.rms_contrast`` within the aperture, composed by
:func:`stimgen.apertures.compose` without clipping: the engine's one clip follows.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._yamlschema import Checker, has_bad
from ..apertures import MAX_CENTER_DEG
from .parts import PARTS, BasePart, Drawing, Measured, register
from .plan import Condition, Plan
from .target_part import (
    EnergyPool,
    component_figure,
    energy_fields,
    energy_measure,
    energy_part,
    energy_pool_add,
    energy_summary,
    energy_verify_summary,
)

APERTURE_MODES = ("window", "mask")
SIZE_KEYS = ("sigma_deg", "radius_deg", "ramp_deg", "inner_deg", "outer_deg")
APERTURE_DEFAULTS: dict[str, Any] = {
    "kind": None,
    "sigma_deg": None,
    "radius_deg": None,
    "ramp_deg": None,
    "inner_deg": None,
    "outer_deg": None,
    "center_deg": [0.0, 0.0],
    "mode": "window",
}
_P = "aperture."


def aperture_params(c: Condition) -> dict[str, Any]:
    """A condition's resolved aperture keys, without the ``aperture.`` prefix."""
    return {k: c.params[_P + k] for k in APERTURE_DEFAULTS}


def window_of(p: Mapping[str, Any], shape: tuple[int, int], ppd: float) -> np.ndarray:
    """The window of resolved aperture keys (no warning: :meth:`AperturePart.warnings` says it)."""
    from ..apertures import aperture

    sizes = {k: p[k] for k in SIZE_KEYS if p[k] is not None}
    return aperture(shape, ppd=ppd, kind=p["kind"], center_deg=p["center_deg"], warn=False, **sizes)


def condition_window(plan: Plan, c: Condition) -> np.ndarray:
    """The window of a condition (the last condition's is kept; stimuli arrive in order)."""
    cached = plan.memo("aperture.last", lambda: {})
    if cached.get("index") != c.index:
        w = window_of(aperture_params(c), plan.shape, plan.ppd).astype(plan.exp["output"]["dtype"])
        w.setflags(write=False)
        cached.clear()
        cached.update(index=c.index, window=w)
    return cached["window"]


class AperturePart(BasePart):
    """A window applied after noise and target (``stimulus = window * (target + noise)``)."""

    name = "aperture"
    defaults = APERTURE_DEFAULTS
    condition_keys = tuple(_P + k for k in APERTURE_DEFAULTS)
    nullable = tuple(_P + k for k in SIZE_KEYS)
    composes = True  # verify takes its stimuli apart (stimgen.experiment.verify)
    example = {"kind": "raised_cosine", "radius_deg": 1.0, "ramp_deg": 0.5}

    @property
    def absent_hint(self) -> str:
        return "{} belongs to the aperture section; add an aperture section (kind: gaussian, raised_cosine, disk or annulus)"

    # -- keys and their checks ----------------------------------------------------------
    def check_value(self, ck: Checker, path: tuple, key: str, value: Any) -> Any:
        from ..apertures import APERTURE_KINDS

        k = key.removeprefix(_P)
        if value is None and k in SIZE_KEYS:
            return None
        if k == "kind":
            return ck.choice(path, value, tuple(APERTURE_KINDS))
        if k == "mode":
            return ck.choice(path, value, APERTURE_MODES)
        if k in ("ramp_deg", "inner_deg"):
            return ck.number(path, value, low=0)
        if k in SIZE_KEYS:
            return ck.number(path, value, low=0, low_open=True)
        if k == "center_deg":  # within the range the targets and apertures compute exactly
            return ck.numbers(path, value, length=2, low=-MAX_CENTER_DEG, high=MAX_CENTER_DEG)
        raise AssertionError(key)  # pragma: no cover

    def check_condition(self, ck: Checker, exp: Mapping[str, Any], c: Condition,
                        shape: tuple[int, int], ppd: float) -> bool:  # fmt: skip
        """The kind's sizes (asking :mod:`stimgen.apertures`), and a window inside the image."""
        from ..apertures import APERTURE_KINDS, _aperture_params

        if any(p.movie for p in PARTS.values() if exp.get(p.name) is not None):
            ck.add(("aperture",), "an aperture windows still images; a motion experiment makes movies "
                   "(remove the motion section or the aperture section)", key=True)  # fmt: skip
            return False
        p = aperture_params(c)
        if has_bad(exp["aperture"]) or has_bad(list(p.values())):
            return False
        if p["kind"] is None:
            ck.add(("aperture",), "missing required key 'kind' (gaussian, raised_cosine, disk or annulus), "
                   "in aperture or as aperture.kind in every condition", key=True)  # fmt: skip
            return False
        given = [k for k in SIZE_KEYS if p[k] is not None]
        _, required, optional, _ = APERTURE_KINDS[p["kind"]]
        unknown = [k for k in given if k not in (*required, *optional)]
        where = c.sources.get(_P + (unknown[0] if unknown else "kind"), ("aperture",))  # the key at fault
        try:
            _aperture_params(p["kind"], {k: p[k] for k in given})
        except ValueError as exc:
            ck.add(where, f"aperture kind {p['kind']!r}: " + " ".join(str(exc).split()).removeprefix(f"aperture kind {p['kind']!r} "))
            return False
        if not np.any(window_of(p, shape, ppd) > 0):
            ck.add(c.sources.get(_P + "center_deg", where), f"the aperture lies outside the image "
                   f"(center_deg {p['center_deg']}, image {shape[0]} x {shape[1]} px at {ppd:.4g} ppd): its window is 0 everywhere")  # fmt: skip
            return False
        return True

    def warnings(self, plan: Plan) -> list[str]:
        """A window larger than the image (the image cuts it off), naming the key."""
        from ..apertures import APERTURE_KINDS, ApertureWarning, _aperture_params, _warn_if_cut

        said: list[str] = []
        for c in plan.conditions:
            p = aperture_params(c)
            prm = _aperture_params(p["kind"], {k: p[k] for k in SIZE_KEYS if p[k] is not None})
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", ApertureWarning)
                _warn_if_cut(p["kind"], prm, APERTURE_KINDS[p["kind"]][3](prm), plan.shape, plan.ppd, tuple(p["center_deg"]))
            key = {"gaussian": "sigma_deg", "annulus": "outer_deg"}.get(p["kind"], "radius_deg")
            for w in caught:
                msg = f"aperture.{key}: " + str(w.message)
                if msg not in said:
                    said.append(msg)
        return said

    # -- drawing ------------------------------------------------------------------------
    def draw(self, plan: Plan, c: Condition, rng: np.random.Generator, drawing: Drawing) -> None:
        """Compose ``window * (target + noise)`` (or the mask mode) from the components, unclipped."""
        from ..apertures import apply_aperture, compose

        if drawing.data is None:
            raise ValueError("the aperture windows the noise: no noise was drawn")
        p = aperture_params(c)
        w = condition_window(plan, c)
        noise = drawing.components.setdefault("noise", drawing.data)
        rms = float(c.params["rms_contrast"]) if p["mode"] == "mask" else None
        shown, rec = apply_aperture(noise, w, mode=p["mode"], rms_contrast=rms)
        drawing.data, _ = compose(drawing.components.get("target"), noise, w, mode=p["mode"], rms_contrast=rms, clip="none")
        drawing.components["window"] = w
        drawing.components["noise_shown"] = shown
        drawing.records["aperture_record"] = {
            "kind": p["kind"],
            **{k: p[k] for k in SIZE_KEYS if p[k] is not None},
            "center_deg": list(p["center_deg"]),
            **rec,
        }

    # -- the manifest (E and N here when there is no target) -------------------------------
    def record(self, plan: Plan, c: Condition, drawing: Drawing) -> dict[str, Any]:
        return energy_fields(plan, c, drawing) if energy_part(plan) == self.name else {}

    def measure_drawing(self, plan: Plan, c: Condition, drawing: Drawing, entry: Mapping[str, Any]) -> Measured:
        return energy_measure(plan, c, drawing, entry) if energy_part(plan) == self.name else Measured()

    def pool(self, plan: Plan, c: Condition) -> EnergyPool:
        return EnergyPool()

    def pool_add(self, plan: Plan, c: Condition, pool: EnergyPool, entry: Mapping[str, Any], extra: Any) -> None:
        energy_pool_add(pool, extra)

    def summary(self, plan: Plan, c: Condition, pool: EnergyPool) -> Measured:
        return energy_summary(plan, c, pool) if energy_part(plan) == self.name else Measured()

    def verify_summary(self, plan: Plan, c: Condition, summary: Mapping[str, Any], entries: Sequence[Mapping[str, Any]],
                       data: Iterable[np.ndarray], exact: bool) -> str | None:  # fmt: skip
        return energy_verify_summary(plan, c, summary, entries) if energy_part(plan) == self.name else None

    def condition_figures(self, plan: Plan, c: Condition, pool: EnergyPool, summary: Mapping[str, Any], root: Path) -> list[str]:
        return component_figure(plan, c, pool, summary, root) if energy_part(plan) == self.name else []


APERTURE = register(AperturePart())

__all__ = ["APERTURE", "APERTURE_DEFAULTS", "APERTURE_MODES", "AperturePart"]
