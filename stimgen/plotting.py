"""All matplotlib code of stimgen (nothing else imports matplotlib).

matplotlib is imported inside the functions, with the non-interactive Agg backend when no
backend was chosen, so ``import stimgen`` stays fast. Every function takes ``ax=None``
(or returns a new Figure) and returns the Axes or Figure; none calls ``plt.show()``.
Frequency axes are labelled in cycles/degree (cpd).
"""

from __future__ import annotations

from typing import Any


def _pyplot():
    """Import pyplot lazily, choosing Agg when no display backend was set."""
    import matplotlib

    if "matplotlib.pyplot" not in __import__("sys").modules:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _axes(ax: Any = None, figsize: tuple[float, float] = (6.0, 4.0)):
    """Return ``(fig, ax)``: the given Axes and its Figure, or a new pair."""
    if ax is not None:
        return ax.figure, ax
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    return fig, ax


def save(fig: Any, path: Any, *, dpi: int = 120) -> None:
    """Save a figure to ``path`` and close it."""
    fig.savefig(path, dpi=dpi)
    _pyplot().close(fig)
