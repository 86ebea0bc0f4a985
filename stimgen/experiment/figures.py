"""Per-condition figures of a set (matplotlib only through stimgen.plotting, lazily)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..filters import radial_part
from .plan import _Plan
from .pool import ConditionPool

#: PNG zlib level of a set's figures: level 1 writes several times faster than 6.
FIGURE_COMPRESS_LEVEL = 1
#: Subplot margins (left, bottom, right, top) of the per-condition figures (two-line titles).
_MARGINS = (0.13, 0.12, 0.97, 0.82)


def _condition_figure(plan: _Plan, c: Any, pool: ConditionPool, summary: Mapping[str, Any], tmp: Path) -> str:
    """The measured spectrum of one condition (pooled over its repeats) against its design.

    Drawn as soon as the condition's last stimulus arrives, with the spectrum its summary
    was measured from, while workers go on with the next conditions.
    """
    from .. import plotting

    spec = pool.spectrum(plan)
    fam = c.params["family"]
    slope = {"power_law": c.params["alpha"], "white": 0.0}.get(fam)
    title = f"condition {c.index}: {c.label}"
    if plan.motion:
        title += "\nfirst frames; " + _speed_text(summary["speed"])
    fig = plotting.new_figure(margins=_MARGINS)
    plotting.plot_condition_spectrum(
        spec, design=None if slope is not None else radial_part(plan.filter(c)),
        level=c.params["level"], title=title, passed=summary["pass"], alpha=slope, ax=fig.add_subplot(),
    )  # fmt: skip
    rel = f"figures/spectrum_{c.folder}.png"
    (tmp / "figures").mkdir(exist_ok=True)
    plotting.save(fig, tmp / rel, compress_level=FIGURE_COMPRESS_LEVEL)
    return rel


def _set_figures(plan: _Plan, pools: Mapping[int, ConditionPool], examples: Mapping[int, list[np.ndarray]], tmp: Path) -> list[str]:
    """The figures over the whole set: the contact sheet of examples, the velocities of movies."""
    from .. import plotting

    (tmp / "figures").mkdir(exist_ok=True)
    written = []
    if examples:
        rows = [(f"{c.index}: {c.label}", examples.get(c.index, [])) for c in plan.conditions]
        fig = plotting.plot_contact_sheet(rows, size_deg=plan.size_deg, lean=True)
        if plan.motion:
            h, w = plan.size_deg
            fig.suptitle(f"first frames of example movies (gray scale: signed contrast -1 to +1, "
                         f"{h:.3g} x {w:.3g} deg)", fontsize=9)  # fmt: skip
        plotting.save(fig, tmp / "figures/contact_sheet.png", compress_level=FIGURE_COMPRESS_LEVEL)
        written.append("figures/contact_sheet.png")
    requested, measured, labels, passed = [], [], [], []
    for c in plan.conditions:
        pool = pools[c.index]
        vel = pool.velocities_deg_s
        if not len(vel) or pool.motion is None:
            continue
        requested += [pool.motion["velocity_deg_s"]] * len(vel)
        measured += vel.tolist()
        labels += [f"c{c.index}"] + [""] * (len(vel) - 1)
        passed += pool.speed_passed
    if measured:
        fig = plotting.new_figure((5.0, 5.0), margins=(0.15, 0.11, 0.96, 0.92))
        plotting.plot_velocity_check(
            requested, measured, labels=labels, passed=passed, ax=fig.add_subplot(),
            title=f"{len(measured)} movies: velocity measured by optical flow vs requested",
        )  # fmt: skip
        plotting.save(fig, tmp / "figures/velocity.png", compress_level=FIGURE_COMPRESS_LEVEL)
        written.append("figures/velocity.png")
    return written


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
