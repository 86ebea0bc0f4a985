"""Figures of a set (matplotlib only through stimgen.plotting, lazily).

Each active part draws its own figures (the noise part one spectrum per condition, the
motion part the velocity check); this module adds the contact sheet of example stimuli
(a movie's first frames).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .plan import Plan


def _figures(plan: Plan, results: list, tmp: Path, manifest: dict[str, Any]) -> list[str]:
    """Write the set's figures into ``tmp/figures``; their paths relative to ``tmp``."""
    from .. import plotting

    figdir = tmp / "figures"
    figdir.mkdir()
    written: list[str] = []
    for part in plan.parts:
        written.extend(part.figures(plan, results, tmp, manifest))
    examples: dict[int, list[np.ndarray]] = {}
    for entry, _, img in results:
        if img is not None:
            examples.setdefault(entry["condition"]["index"], []).append(img)
    if examples:
        rows = [(f"{c.index}: {c.label}", examples.get(c.index, [])) for c in plan.conditions]
        fig = plotting.plot_contact_sheet(rows, size_deg=plan.size_deg)
        if plan.movie:
            h, w = plan.size_deg
            fig.suptitle(f"first frames of example movies (gray scale: signed contrast -1 to +1, "
                         f"{h:.3g} x {w:.3g} deg)", fontsize=9)  # fmt: skip
        plotting.save(fig, tmp / "figures/contact_sheet.png")
        written.append("figures/contact_sheet.png")
    return written
