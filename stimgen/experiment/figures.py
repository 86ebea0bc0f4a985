"""Figures of a set (matplotlib only through stimgen.plotting, lazily), drawn lean with Agg.

Each active part draws its own figures: per condition as soon as the condition is complete
(the noise part's pooled spectrum), and over the whole set at the end (the motion part's
velocity check); this module adds the contact sheet of example stimuli (a movie's first
frames). Figures are built outside pyplot (:func:`stimgen.plotting.new_figure`) with a
fixed layout and written with a fast PNG compression.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .plan import Condition, Plan
from .pool import ConditionPool

#: PNG zlib level of a set's figures: level 1 writes several times faster than 6.
FIGURE_COMPRESS_LEVEL = 1
#: Subplot margins (left, bottom, right, top) of the per-condition figures (two-line titles).
CONDITION_MARGINS = (0.13, 0.12, 0.97, 0.82)


def _condition_figures(plan: Plan, c: Condition, pool: ConditionPool, summary: Mapping[str, Any], tmp: Path) -> list[str]:
    """The parts' figures of one complete condition, under ``tmp/figures``; their paths relative to ``tmp``."""
    (tmp / "figures").mkdir(exist_ok=True)
    written: list[str] = []
    for part in plan.parts:
        written.extend(part.condition_figures(plan, c, pool.parts[part.name], summary, tmp))
    return written


def _set_figures(plan: Plan, pools: Mapping[int, ConditionPool], summaries: list[dict[str, Any]],
                 examples: Mapping[int, list[np.ndarray]], tmp: Path) -> list[str]:  # fmt: skip
    """The figures over the whole set: the parts' and the contact sheet of examples."""
    from .. import plotting

    (tmp / "figures").mkdir(exist_ok=True)
    written: list[str] = []
    for part in plan.parts:
        written.extend(part.figures(plan, {i: p.parts[part.name] for i, p in pools.items()}, summaries, tmp))
    if examples:
        rows = [(f"{c.index}: {c.label}", examples.get(c.index, [])) for c in plan.conditions]
        fig = plotting.plot_contact_sheet(rows, size_deg=plan.size_deg, lean=True)
        if plan.movie:
            h, w = plan.size_deg
            fig.suptitle(f"first frames of example movies (gray scale: signed contrast -1 to +1, "
                         f"{h:.3g} x {w:.3g} deg)", fontsize=9)  # fmt: skip
        plotting.save(fig, tmp / "figures/contact_sheet.png", compress_level=FIGURE_COMPRESS_LEVEL)
        written.append("figures/contact_sheet.png")
    return written
