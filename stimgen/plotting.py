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


# == flow (stimgen.flow) ================================================================
def _flow_rgb(u: Any, v: Any, max_speed: float) -> Any:
    """Colour-wheel coding of a flow field: hue = direction, saturation = speed.

    Unreliable (NaN) pixels are mid gray. Directions follow the screen: a flow drawn
    with rows downwards has the colour of its arrow in the legend wheel.
    """
    import numpy as np
    from matplotlib.colors import hsv_to_rgb

    u = np.asarray(u, dtype=float)
    v = np.asarray(v, dtype=float)
    bad = ~(np.isfinite(u) & np.isfinite(v))
    uu = np.where(bad, 0.0, u)
    vv = np.where(bad, 0.0, v)
    hue = (np.arctan2(-vv, uu) / (2 * np.pi)) % 1.0  # counter-clockwise from rightwards
    sat = np.clip(np.hypot(uu, vv) / max_speed, 0.0, 1.0)
    rgb = hsv_to_rgb(np.stack([hue, sat, np.ones_like(hue)], axis=-1))
    rgb[bad] = 0.5
    return rgb


def plot_flow_quiver(
    result: Any,
    *,
    background: Any = None,
    step: int | None = None,
    ax: Any = None,
    color: str = "tab:red",
):
    """Arrows of a :class:`stimgen.flow.FlowResult` over an optional background frame.

    Parameters
    ----------
    result : FlowResult
        Flow in px/frame; only reliable pixels get arrows.
    background : ndarray, shape (H, W), optional
        Image drawn in gray underneath (e.g. the reference frame).
    step : int, optional
        Arrow spacing in px (default: about 24 arrows across the wider side).
    ax : matplotlib Axes, optional
        Axes to draw into (default: a new figure).
    color : str
        Arrow colour.

    Returns
    -------
    matplotlib Axes
        Image axes in px, rows downwards; arrows are drawn to scale in data units
        (``angles="xy"``), so an arrow points where the content moved on the screen.
    """
    import numpy as np

    u, v = result.u, result.v
    h, w = u.shape
    fig, ax = _axes(ax, figsize=(5.5, 5.5 * h / w + 0.5))
    if background is not None:
        ax.imshow(background, cmap="gray", interpolation="nearest")
    step = max(1, int(step) if step is not None else round(max(h, w) / 24))
    ys, xs = np.mgrid[step // 2 : h : step, step // 2 : w : step]
    su, sv = u[ys, xs], v[ys, xs]
    ok = np.isfinite(su) & np.isfinite(sv)
    speed = np.hypot(su[ok], sv[ok])
    # longest typical arrow spans ~0.9 of the spacing; arrows are in data (px) units
    scale = float(np.percentile(speed, 95)) / (0.9 * step) if speed.size else 1.0
    if scale <= 0:
        scale = 1.0
    ax.quiver(
        xs[ok], ys[ok], su[ok], sv[ok], angles="xy", scale_units="xy", scale=scale,
        color=color, width=0.004,
    )
    ax.set_xlim(-0.5, w - 0.5)
    ax.set_ylim(h - 0.5, -0.5)
    ax.set_aspect("equal")
    ax.set_xlabel("x (px)")
    ax.set_ylabel("y (px, downwards)")
    mu, mv = result.median()
    ax.set_title(
        f"median u = {mu:+.3f}, v = {mv:+.3f} px/frame\n"
        f"arrows x{1 / scale:.3g}; reliable {100 * result.reliable_fraction:.1f} %",
        fontsize=9,
    )
    return ax


def plot_flow_colorwheel(
    result: Any,
    *,
    max_speed: float | None = None,
    ax: Any = None,
    legend: bool = True,
):
    """Colour-wheel image of a flow field (hue = direction, saturation = speed).

    Parameters
    ----------
    result : FlowResult
        Flow in px/frame; unreliable pixels are gray.
    max_speed : float, optional
        Speed in px/frame shown fully saturated (default: 99th percentile of the speed).
    ax : matplotlib Axes, optional
        Axes to draw into (default: a new figure).
    legend : bool
        Draw the colour wheel (radius = ``max_speed``) in the top-right corner.

    Returns
    -------
    matplotlib Axes
    """
    import numpy as np

    u, v = result.u, result.v
    h, w = u.shape
    speed = np.hypot(u, v)
    finite = speed[np.isfinite(speed)]
    if max_speed is None:
        max_speed = float(np.percentile(finite, 99)) if finite.size else 1.0
    max_speed = max_speed if max_speed > 0 else 1.0
    fig, ax = _axes(ax, figsize=(5.5, 5.5 * h / w + 0.5))
    ax.imshow(_flow_rgb(u, v, max_speed), interpolation="nearest")
    ax.set_xlabel("x (px)")
    ax.set_ylabel("y (px, downwards)")
    ax.set_title(f"direction = hue, speed = saturation (full at {max_speed:.3g} px/frame)",
                 fontsize=9)
    if legend:
        n = 101
        d = np.linspace(-1, 1, n) * max_speed
        lu, lv = np.meshgrid(d, d)  # legend rows downwards, like the image
        rgb = _flow_rgb(lu, lv, max_speed)
        alpha = (np.hypot(lu, lv) <= max_speed).astype(float)
        inset = ax.inset_axes([0.76, 0.76, 0.22, 0.22])
        inset.imshow(np.dstack([rgb, alpha]), interpolation="bilinear")
        inset.set_axis_off()
    return ax


def plot_flow(result: Any, *, reference_image: Any = None):
    """Figure with the quiver plot (over ``reference_image``) and the colour-wheel image.

    Parameters
    ----------
    result : FlowResult
        Flow in px/frame.
    reference_image : ndarray, shape (H, W), optional
        Background of the quiver panel.

    Returns
    -------
    matplotlib Figure
    """
    plt = _pyplot()
    h, w = result.u.shape
    fig, (a0, a1) = plt.subplots(1, 2, figsize=(10, 5 * h / w + 0.8), layout="constrained")
    plot_flow_quiver(result, background=reference_image, ax=a0)
    plot_flow_colorwheel(result, ax=a1)
    return fig


# -- spectra (stimgen.spectrum) ----------------------------------------------------------
def plot_spectrum(
    spectrum: Any,
    *,
    design: Any = None,
    ppd: float | None = None,
    level: str = "half_amplitude",
    measured: Any = None,
    ax: Any = None,
    label: str = "measured",
):
    """Measured radial power spectrum (mean and spread) against a filter's design.

    Parameters
    ----------
    spectrum : RadialSpectrum
        From :func:`stimgen.spectrum.radial_spectrum` (with ppd, or give ``ppd``).
    design : Filter, optional
        The designed filter: its ``|H|^2``, scaled to the measured peak, is drawn dashed
        with the designed edges at ``level`` and the peak as vertical lines.
    ppd : float, optional
        Pixels per degree, if the spectrum has none.
    level : {"half_amplitude", "half_power"}
        Level of the drawn edges (power 1/4 or 1/2 of the peak).
    measured : MeasuredBand, optional
        Measured edges to mark (dotted).
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Axes
    """
    import numpy as np

    from .filters import LEVELS

    fig, ax = _axes(ax)
    p = ppd if ppd is not None else spectrum.ppd
    if p is None:
        raise ValueError("plot_spectrum needs ppd (on the spectrum or as an argument)")
    f_cpd = spectrum.freq_cpp * p
    mean = spectrum.power
    ax.loglog(f_cpd, mean, color="C0", lw=1.5, label=f"{label} (n={spectrum.n_images})")
    if spectrum.n_images > 1:
        lo = np.maximum(mean - spectrum.power_std, mean * 1e-3)
        ax.fill_between(f_cpd, lo, mean + spectrum.power_std, color="C0", alpha=0.25, lw=0,
                        label="±1 s.d. over images")
    if design is not None:
        f = np.geomspace(f_cpd.min(), p / 2, 400)
        h2 = design.transfer(f / p) ** 2
        pb = design.passband(level)
        scale = np.max(mean) / max(pb.peak_value**2, 1e-300)
        ax.loglog(f, h2 * scale, "k--", lw=1.2, label="design |H|²")
        for edge in (pb.low_cpp * p, pb.high_cpp * p):
            if 0 < edge < np.inf:
                ax.axvline(edge, color="k", lw=0.8, ls="--")
        if pb.peak_cpp > 0:
            ax.axvline(pb.peak_cpp * p, color="k", lw=0.8, ls=":")
        ax.axhline(np.max(mean) * LEVELS[level] ** 2, color="0.5", lw=0.6)
    if measured is not None:
        for edge in measured.band_cpd(level):
            if 0 < edge < np.inf:
                ax.axvline(edge, color="C3", lw=1.0, ls=":")
    ax.set_xlabel("spatial frequency (cycles/degree)")
    ax.set_ylabel("power (contrast² per DFT bin)")
    ax.set_ylim(np.max(mean) * 1e-4, np.max(mean) * 3)
    ax.legend(fontsize=8, loc="lower left")
    ax.set_title(f"band edges at {level.replace('_', ' ')}", fontsize=9)
    return ax
