"""Per-condition figures of a set (matplotlib only through stimgen.plotting, lazily)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..filters import radial_part
from .measure import _condition_spectrum
from .plan import _Plan


def _figures(plan: _Plan, results: list, tmp: Path, manifest: dict[str, Any]) -> list[str]:
    from .. import plotting

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
