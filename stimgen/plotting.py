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


def _cpd_ticks(ax: Any) -> None:
    """Plain-number labels (0.5, 1, 2, 5, 10) on a log frequency axis, no crowded minors."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def new_figure(figsize: tuple[float, float] = (6.0, 4.0), *, margins: tuple[float, float, float, float] | None = None):
    """A Figure drawn by Agg outside pyplot: no global figure state, nothing to close.

    For batch work (the figures of a stimulus set): no pyplot import, no figure manager,
    and a fixed layout instead of the constrained layout's repeated text measurements.

    Parameters
    ----------
    figsize : (float, float)
        Width and height in inches.
    margins : (left, bottom, right, top), optional
        Subplot margins as fractions of the figure (see ``Figure.subplots_adjust``).

    Returns
    -------
    matplotlib Figure
        With an Agg canvas attached; ``fig.add_subplot()`` for Axes, :func:`save` to write.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    if margins is not None:
        left, bottom, right, top = margins
        fig.subplots_adjust(left=left, bottom=bottom, right=right, top=top)
    return fig


def save(fig: Any, path: Any, *, dpi: int = 120, compress_level: int | None = None) -> None:
    """Save a figure to ``path`` and close it (if pyplot manages it).

    ``compress_level`` (0-9) sets the PNG's zlib level; 1 writes several times faster than
    the default 6 for files a little larger.
    """
    import sys

    kwargs = {} if compress_level is None else {"pil_kwargs": {"compress_level": int(compress_level)}}
    fig.savefig(path, dpi=dpi, **kwargs)
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close(fig)


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
    units: str = "contrast",
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
    label : str
        Legend label of the measurement.
    units : str
        Unit of the image values, for the power axis ("contrast" for signed-contrast
        stimuli; e.g. "grey level" for integer images).

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
    title = f"band edges at {level.replace('_', ' ')}"
    if design is not None:
        f = np.geomspace(f_cpd.min(), p / 2, 400)
        h2 = design.transfer(f / p) ** 2
        pb = design.passband(level)
        scale = np.max(mean) / max(pb.peak_value**2, 1e-300)
        top = np.max(mean)
        if pb.kind in ("lowpass", "highpass", "notch"):
            # no interior peak: the plateau's level is the design fitted to every bin, not
            # the noisiest bin's maximum
            w = spectrum.counts
            scale = float(np.sum(w * mean) / np.sum(w * design.transfer(spectrum.freq_cpp) ** 2))
            top = scale * pb.peak_value**2
            title = {"notch": "stop band", "lowpass": "cutoff", "highpass": "cutoff"}[pb.kind] + \
                f" at {level.replace('_', ' ')}"
        ax.loglog(f, h2 * scale, "k--", lw=1.2, label="design |H|²")
        for edge in (pb.low_cpp * p, pb.high_cpp * p):
            if 0 < edge < np.inf:
                ax.axvline(edge, color="k", lw=0.8, ls="--")
        if pb.kind == "notch":
            ax.axvspan(pb.low_cpp * p, pb.high_cpp * p, color="k", alpha=0.07, lw=0, label="stop band (design)")
        elif 0 < pb.peak_cpp < np.inf:
            ax.axvline(pb.peak_cpp * p, color="k", lw=0.8, ls=":")
        ax.axhline(top * LEVELS[level] ** 2, color="0.5", lw=0.6)
    if measured is not None:
        for edge in measured.band_cpd(level):
            if 0 < edge < np.inf:
                ax.axvline(edge, color="C3", lw=1.0, ls=":")
    _cpd_ticks(ax)
    ax.set_xlabel("spatial frequency (cycles/degree)")
    ax.set_ylabel(f"power ({units}² per DFT bin)")
    ax.set_ylim(np.max(mean) * 1e-4, np.max(mean) * 3)
    ax.legend(fontsize=8, loc="lower left")
    ax.set_title(title, fontsize=9)
    return ax


# -- filters: transfer functions on a cpd axis (issue 2) --------------------------------
def _freq_axis_cpd(pb: Any, ppd: float, n: int = 800) -> Any:
    """Log-spaced frequencies in cpd covering a passband and reaching Nyquist."""
    import math

    import numpy as np

    nyq = ppd / 2.0
    finite = [f for f in (pb.low_cpp, pb.peak_cpp, pb.high_cpp) if 0 < f < math.inf]
    lo = min(finite) * ppd / 8.0 if finite else nyq / 1000.0
    hi = max(nyq * 1.05, (max(finite) * ppd * 1.5) if finite else nyq)
    return np.geomspace(lo, hi, n)


def _mark_band(ax: Any, pb: Any, ppd: float, scale: float, color: Any, *, what: str = "") -> None:
    """Mark the band edges (at the level), the peak and the geometric centre of a passband.

    A notch (``pb.kind == "notch"``, no peak) has its stop band shaded between its edges
    and its centre (the deepest point) marked on the level line.
    """
    import math

    from .filters import LEVELS

    L = LEVELS[pb.level]
    y = L * pb.peak_value * scale
    edges = [f * ppd for f in (pb.low_cpp, pb.high_cpp) if 0 < f < math.inf]
    if edges:
        ax.plot(edges, [y] * len(edges), "o", color=color, ms=5, zorder=4)
        for e in edges:
            ax.axvline(e, color=color, lw=0.8, ls=":", zorder=1)
    if len(edges) == 2:
        ax.hlines(y, edges[0], edges[1], color=color, lw=0.8, ls=":")
    if pb.kind == "notch":
        if len(edges) == 2:
            ax.axvspan(edges[0], edges[1], color=color, alpha=0.08, lw=0, zorder=0)
        ax.plot([pb.center_cpp * ppd], [y], "|", color=color, ms=12, mew=1.5)
        return
    if 0 < pb.peak_cpp < math.inf:
        ax.plot([pb.peak_cpp * ppd], [pb.peak_value * scale], "v", color=color, ms=7, zorder=4)
    if len(edges) == 2 and 0 < pb.peak_cpp < math.inf and abs(pb.center_cpp / pb.peak_cpp - 1) > 1e-3:
        ax.plot([pb.center_cpp * ppd], [pb.peak_value * scale], "|", color=color, ms=12, mew=1.5)


def _band_label(pb: Any, ppd: float) -> str:
    import math

    level = pb.level.replace("_", " ")
    if pb.kind == "bandpass":
        return (
            f"{pb.low_cpp * ppd:.3g}-{pb.high_cpp * ppd:.3g} cpd, {pb.octaves:.3g} oct, "
            f"peak {pb.peak_cpp * ppd:.3g} cpd ({level})"
        )
    if pb.kind == "notch":
        return (
            f"notch, stop band {pb.low_cpp * ppd:.3g}-{pb.high_cpp * ppd:.3g} cpd, {pb.octaves:.3g} oct, "
            f"centre {pb.center_cpp * ppd:.3g} cpd ({level})"
        )
    if pb.kind == "lowpass":
        return f"low-pass, edge {pb.high_cpp * ppd:.3g} cpd ({level})"
    edge = pb.low_cpp * ppd if math.isfinite(pb.low_cpp) else float("nan")
    return f"high-pass, edge {edge:.3g} cpd ({level})"


def _nyquist(ax: Any, ppd: float) -> None:
    ax.axvline(ppd / 2.0, color="0.5", lw=1.0, ls="--", zorder=0)
    ax.annotate(
        "Nyquist", (ppd / 2.0, 1.0), xycoords=("data", "axes fraction"), rotation=90,
        ha="right", va="top", fontsize=7, color="0.4",
    )


def plot_transfer(
    filt: Any,
    *,
    ppd: Any,
    level: str = "half_amplitude",
    ax: Any = None,
    label: str | None = None,
    color: Any = None,
    normalize: bool = False,
    freqs_cpd: Any = None,
    marks: bool = True,
):
    """Plot a radial filter's transfer function ``H(f)`` on a log cpd axis.

    Parameters
    ----------
    filt : stimgen.filters.Filter
        Any radial filter (or a product with a radial factor).
    ppd : float or ViewingGeometry
        Pixels per degree, to turn cycles/pixel into cycles/degree.
    level : {"half_amplitude", "half_power"}
        Level that defines the marked band edges.
    ax : matplotlib Axes, optional
        Axes to draw into (default: a new figure).
    label : str, optional
        Legend label (default: the family and its band in cpd).
    color : matplotlib color, optional
        Line colour.
    normalize : bool
        Divide by the peak amplitude so different filters compare on one scale.
    freqs_cpd : array, optional
        Frequencies in cpd to evaluate at (default: log-spaced around the band, to Nyquist).
    marks : bool
        Mark the band edges (circles on the level line), the peak (triangle), the
        geometric centre of the edges (bar, where it differs from the peak) and Nyquist.

    Returns
    -------
    matplotlib Axes
    """
    import numpy as np

    from .geometry import as_ppd

    p = as_ppd(ppd)
    pb = filt.passband(level)
    f = _freq_axis_cpd(pb, p) if freqs_cpd is None else np.asarray(freqs_cpd, dtype=float)
    scale = 1.0 / pb.peak_value if normalize else 1.0
    _, ax = _axes(ax)
    h = np.asarray(filt.transfer(f / p), dtype=float) * scale
    if label is None:
        label = f"{filt.family}: {_band_label(pb, p)}"
    (line,) = ax.plot(f, h, color=color, lw=1.8, label=label, zorder=3)
    if marks:
        _mark_band(ax, pb, p, scale, line.get_color())
        _nyquist(ax, p)
    ax.set_xscale("log")
    _cpd_ticks(ax)
    ax.axhline(0.0, color="0.7", lw=0.6, zorder=0)
    ax.set_xlabel("spatial frequency (cpd)")
    ax.set_ylabel("transfer H(f) / peak" if normalize else "transfer H(f) (amplitude)")
    ax.legend(fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, -0.16), frameon=False)
    return ax


def plot_dog_design(dog: Any, *, ppd: Any, level: str = "half_amplitude", ax: Any = None):
    """Both Gaussians' transfer functions and their difference (the DoG) on a cpd axis.

    Parameters
    ----------
    dog : stimgen.filters.DoG
        The difference of Gaussians (sigmas in pixels).
    ppd : float or ViewingGeometry
        Pixels per degree.
    level : {"half_amplitude", "half_power"}
        Level that defines the marked band edges.
    ax : matplotlib Axes, optional
        Axes to draw into (default: a new figure).

    Returns
    -------
    matplotlib Axes
        Centre Gaussian ``G1`` (dashed), surround ``w G2`` (dash-dotted), the DoG
        ``G1 - w G2`` (solid) with its band edges at ``level``, its peak and Nyquist marked.
    """
    from .geometry import as_ppd

    p = as_ppd(ppd)
    pb = dog.passband(level)
    f = _freq_axis_cpd(pb, p)
    _, ax = _axes(ax, figsize=(6.5, 4.2))
    s1, s2, w = dog.sigma_center_px, dog.sigma_surround_px, dog.weight
    ax.plot(f, dog.center.transfer(f / p), "--", color="tab:blue", lw=1.2,
            label=f"centre Gaussian G1, σ = {s1:.3g} px = {s1 / p:.3g} deg")
    wl = "" if w == 1 else f"{w:.3g} × "
    ax.plot(f, w * dog.surround.transfer(f / p), "-.", color="tab:orange", lw=1.2,
            label=f"surround {wl}G2, σ = {s2:.3g} px = {s2 / p:.3g} deg")
    plot_transfer(dog, ppd=p, level=level, ax=ax, color="black", freqs_cpd=f,
                  label=f"DoG = G1 − {wl}G2: {_band_label(pb, p)}")
    ax.set_ylabel("transfer (amplitude)")
    ax.set_title(f"difference of Gaussians, ratio σ2/σ1 = {dog.ratio:.3g}, {p:.4g} ppd", fontsize=9)
    return ax


def plot_dog_octaves(*, ratio_max: float = 30.0, ax: Any = None):
    """Octave bandwidth of a balanced DoG against the ratio ``sigma_surround / sigma_center``.

    Parameters
    ----------
    ratio_max : float
        Largest ratio plotted (> 1).
    ax : matplotlib Axes, optional
        Axes to draw into (default: a new figure).

    Returns
    -------
    matplotlib Axes
        Both levels, their minima (the ratio -> 1 limit) and the ``log2(ratio)`` asymptote.
    """
    import numpy as np

    from .filters import dog_min_octaves, dog_octaves

    _, ax = _axes(ax)
    r = np.geomspace(1.0 + 1e-4, float(ratio_max), 160)
    for level, color in (("half_amplitude", "tab:blue"), ("half_power", "tab:red")):
        b = [dog_octaves(x, level) for x in r]
        b_min = dog_min_octaves(level)
        name = level.replace("_", " ")
        ax.plot(r, b, color=color, lw=1.8, label=f"{name} (minimum {b_min:.4f} oct at ratio → 1)")
        ax.axhline(b_min, color=color, lw=0.8, ls=":")
    ax.plot(r, np.log2(r), color="0.5", lw=1.0, ls="--", label="log2(ratio) (large-ratio limit)")
    ax.set_xscale("log")
    ax.set_xlabel("ratio σ_surround / σ_centre")
    ax.set_ylabel("bandwidth (octaves)")
    ax.set_ylim(0, None)
    ax.legend(fontsize=8, loc="upper left")
    ax.set_title("balanced DoG: bandwidth depends on the ratio alone", fontsize=9)
    return ax


# == stimulus sets (stimgen.experiment) =================================================
def plot_condition_spectrum(
    spectrum: Any,
    *,
    design: Any = None,
    level: str = "half_amplitude",
    title: str = "",
    passed: bool | None = None,
    alpha: float | None = None,
    ax: Any = None,
):
    """One condition of a stimulus set: measured spectrum (mean, spread) vs its design.

    Parameters
    ----------
    spectrum : RadialSpectrum
        Mean and spread over the condition's repeats (with ppd).
    design : Filter, optional
        The radial filter of the condition (band-pass families); drawn with
        :func:`plot_spectrum`.
    level : {"half_amplitude", "half_power"}
        Level of the drawn band edges.
    title : str
        Condition label.
    passed : bool, optional
        Spectral check of the condition, shown in the title.
    alpha : float, optional
        For 1/f noise: the designed exponent, drawn as a dashed ``f^-alpha`` line through
        the measured spectrum's geometric mean.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Axes
    """
    import numpy as np

    fig, ax = _axes(ax)
    plot_spectrum(spectrum, design=design, level=level, ax=ax)
    if alpha is not None and design is None:
        f = spectrum.freq_cpd
        k = np.exp(np.mean(np.log(np.maximum(spectrum.power, 1e-300)) + alpha * np.log(f)))
        ax.loglog(f, k * f**-alpha, "k--", lw=1.2, label=f"design 1/f^{alpha:g}")
        ax.set_ylim(np.min(spectrum.power) * 0.3, np.max(spectrum.power) * 3)
        ax.legend(fontsize=8, loc="lower left")
    verdict = "" if passed is None else ("  [pass]" if passed else "  [FAIL]")
    ax.set_title(f"{title}{verdict}\n{ax.get_title()}", fontsize=9)
    return ax


def plot_contact_sheet(
    rows: Any,
    *,
    size_deg: Any = None,
    panel_in: float = 1.4,
    lean: bool = False,
):
    """A grid of example stimuli: one row per condition, signed contrast on a fixed scale.

    Parameters
    ----------
    rows : list of (str, list of ndarray)
        Condition label and its example images (signed contrast, shown with -1 black,
        0 mid-grey, +1 white; never rescaled per image).
    size_deg : (float, float), optional
        Stimulus height and width in degrees, stated in the figure title.
    panel_in : float
        Panel size in inches.
    lean : bool
        Build the figure outside pyplot with a fixed layout (:func:`new_figure`): several
        times faster, for batch work; nothing to close.

    Returns
    -------
    matplotlib Figure
    """
    import textwrap

    n_rows = max(len(rows), 1)
    n_cols = max([len(imgs) for _, imgs in rows] + [1])
    figsize = (max(panel_in * n_cols, 3.0), (panel_in + 0.25) * n_rows + 0.5)
    if lean:
        fig = new_figure(figsize)
        # fixed margins in inches: 0.5 in for the title above, 0.25 in for each row's label
        w_in, h_in = figsize
        axes = fig.subplots(n_rows, n_cols, squeeze=False, gridspec_kw={
            "left": 0.05 / w_in, "right": 1 - 0.05 / w_in, "bottom": 0.05 / h_in, "top": 1 - 0.5 / h_in,
            "wspace": 0.05, "hspace": 0.25 / panel_in,
        })  # fmt: skip
    else:
        fig, axes = _pyplot().subplots(n_rows, n_cols, figsize=figsize, squeeze=False, layout="constrained")
    for r, (label, imgs) in enumerate(rows):
        for c in range(n_cols):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(imgs):
                ax.imshow(imgs[c], cmap="gray", vmin=-1.0, vmax=1.0, interpolation="nearest")
            else:
                ax.set_axis_off()
        short = textwrap.shorten(str(label), width=max(16, int(14 * n_cols * panel_in)))
        axes[r][0].set_title(short, fontsize=7, loc="left")
    size = "" if size_deg is None else f", {size_deg[0]:.3g} x {size_deg[1]:.3g} deg"
    width_in = fig.get_size_inches()[0]
    fig.suptitle(textwrap.fill(f"example stimuli (gray scale: signed contrast -1 to +1{size})",
                               width=max(24, int(width_in * 13))), fontsize=9)
    return fig


def plot_stimulus_components(panels: Any, *, size_deg: Any = None, title: str = "", panel_in: float = 1.6):
    """The parts of one stimulus side by side: target, noise, composite, aperture.

    Parameters
    ----------
    panels : list of (str, ndarray or None)
        Name and image of each panel; images in signed contrast are drawn on the fixed
        scale -1 (black) to +1 (white), never rescaled; a panel named ``"aperture"`` (a
        window in [0, 1]) is drawn from 0 (black) to 1 (white). None: "none" is written.
    size_deg : (float, float), optional
        Stimulus height and width in degrees, stated in the title.
    title : str
        Figure title (e.g. the condition and its E / N).
    panel_in : float
        Panel size in inches.

    Returns
    -------
    matplotlib Figure
        Built outside pyplot (:func:`new_figure`).
    """
    n = max(len(panels), 1)
    w_in, h_in = panel_in * n + 0.2, panel_in + 0.95
    fig = new_figure((w_in, h_in))
    axes = fig.subplots(1, n, squeeze=False, gridspec_kw={
        "left": 0.1 / w_in, "right": 1 - 0.1 / w_in, "bottom": 0.08 / h_in, "top": 1 - 0.75 / h_in, "wspace": 0.08,
    })[0]  # fmt: skip
    for ax, (name, img) in zip(axes, panels, strict=False):
        ax.set_xticks([])
        ax.set_yticks([])
        if img is None:
            ax.text(0.5, 0.5, "none", ha="center", va="center", fontsize=8, transform=ax.transAxes)
            scale = ""
        elif name == "aperture":
            ax.imshow(img, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
            scale = " (0 to 1)"
        else:
            ax.imshow(img, cmap="gray", vmin=-1.0, vmax=1.0, interpolation="nearest")
            scale = ""
        ax.set_title(name + scale, fontsize=8)
    size = "" if size_deg is None else f"; {size_deg[0]:.3g} x {size_deg[1]:.3g} deg"
    fig.suptitle(f"{title}\n(gray scale: signed contrast -1 to +1{size})", fontsize=8)
    return fig


def mark_frequencies(ax: Any, marks: Any) -> Any:
    """Mark frequencies on a spectrum plot (e.g. a target's in the noise spectrum).

    Parameters
    ----------
    ax : matplotlib Axes
        A plot with frequency in cpd on its x axis.
    marks : list of (float, str)
        Frequency in cpd and its label; each is a dotted vertical line.

    Returns
    -------
    matplotlib Axes
    """
    for f_cpd, label in marks:
        ax.axvline(float(f_cpd), color="tab:red", ls=":", lw=1.5, label=label)
    if marks:
        ax.legend(fontsize=7, loc="best")
    return ax


# == motion (stimgen.motion) ============================================================
def plot_space_time(
    movie: Any,
    *,
    record: Any = None,
    row: int | None = None,
    ax: Any = None,
):
    """Space-time (x-t) slice of a movie: one row of every frame, time running downwards.

    Parameters
    ----------
    movie : ndarray, shape (T, H, W)
        Signed-contrast frames; shown on a fixed [-1, 1] grey scale.
    record : dict, optional
        Its record (needs ``ppd`` and ``frame_rate_hz``): axes in degrees and seconds; for
        :func:`stimgen.motion.drifting_noise` also a dashed line with the requested
        horizontal velocity ``vx`` (drift makes streaks of slope ``1 / vx``).
    row : int, optional
        Row index of the slice (default: the middle row).
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Axes
    """
    import numpy as np

    m = np.asarray(movie)
    if m.ndim != 3:
        raise ValueError(f"movie must have shape (T, H, W), got {m.shape}")
    r = m.shape[1] // 2 if row is None else int(row)
    fig, ax = _axes(ax)
    sl = m[:, r, :]
    t_n, w = sl.shape
    if record is not None:
        ppd, fps = float(record["ppd"]), float(record["frame_rate_hz"])
        extent = (-0.5 / ppd, (w - 0.5) / ppd, (t_n - 0.5) / fps, -0.5 / fps)
        ax.imshow(sl, cmap="gray", vmin=-1, vmax=1, aspect="auto", extent=extent,
                  interpolation="nearest")
        if "velocity_deg_s" in record:  # drifting noise: the requested trajectory
            vx = float(record["velocity_deg_s"][0])
            x0 = w / (2 * ppd)
            t_end = (t_n - 1) / fps
            ax.plot([x0, x0 + vx * t_end], [0, t_end], "--", color="C1",
                    label=f"requested vx = {vx:.3g} deg/s")
            ax.legend(loc="lower right", fontsize="small")
        ax.set_xlim(extent[0], extent[1])
        ax.set_ylim(extent[2], extent[3])
        ax.set_xlabel("x (deg)")
        ax.set_ylabel("time (s)")
    else:
        ax.imshow(sl, cmap="gray", vmin=-1, vmax=1, aspect="auto", interpolation="nearest")
        ax.set_xlabel("x (px)")
        ax.set_ylabel("frame")
    ax.set_title(f"space-time slice, row {r}")
    return ax


# == experiment motion sets (stimgen.experiment) =========================================
def plot_velocity_check(
    requested_deg_s: Any,
    measured_deg_s: Any,
    *,
    labels: Any = None,
    passed: Any = None,
    title: str = "",
    ax: Any = None,
):
    """Measured vs requested velocities of motion stimuli, in the velocity plane (deg/s).

    Parameters
    ----------
    requested_deg_s : array_like, shape (N, 2)
        Requested velocities ``(vx, vy)`` in deg/s, x rightwards and y downwards (the
        records of :func:`stimgen.motion.drifting_noise`).
    measured_deg_s : array_like, shape (N, 2)
        Measured velocities in deg/s, same axes (``verify_motion``).
    labels : list of str, optional
        One label per requested velocity (e.g. the condition), written next to it.
    passed : array_like of bool, optional
        Speed check per stimulus; failures are drawn in red.
    title : str
        Figure title.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Axes

    Notes
    -----
    Drawn as seen on the screen: rightwards and **upwards** are positive (the plotted
    vertical component is ``-vy``), so a point's angle is its direction of motion
    (0 = rightwards, 90 = upwards) and its distance from the origin its speed.
    """
    import numpy as np
    from matplotlib.patches import Circle

    req = np.asarray(requested_deg_s, dtype=float).reshape(-1, 2)
    meas = np.asarray(measured_deg_s, dtype=float).reshape(-1, 2)
    ok = np.ones(len(meas), bool) if passed is None else np.asarray(passed, dtype=bool)
    fig, ax = _axes(ax, figsize=(5.0, 5.0))
    top = float(np.nanmax(np.abs(np.concatenate([req, meas])))) if len(req) else 1.0
    top = 1.15 * top if top > 0 else 1.0
    for radius in np.unique(np.round(np.hypot(req[:, 0], req[:, 1]), 9)):
        if radius > 0:
            ax.add_patch(Circle((0, 0), radius, fill=False, ls=":", lw=0.8, color="0.6"))
    ax.axhline(0, color="0.85", lw=0.8)
    ax.axvline(0, color="0.85", lw=0.8)
    ax.plot(req[:, 0], -req[:, 1], "o", mfc="none", mec="k", ms=11, label="requested")
    ax.plot(meas[ok, 0], -meas[ok, 1], "x", color="C0", ms=7, label="measured (pass)")
    if (~ok).any():
        ax.plot(meas[~ok, 0], -meas[~ok, 1], "x", color="C3", ms=8, mew=2, label="measured (FAIL)")
    if labels is not None:
        for (x, y), text in zip(req, labels, strict=True):
            ax.annotate(str(text), (x, -y), textcoords="offset points", xytext=(8, 8), fontsize=7)
    ax.set_xlim(-top, top)
    ax.set_ylim(-top, top)
    ax.set_aspect("equal")
    ax.set_xlabel("horizontal velocity (deg/s, rightwards +)")
    ax.set_ylabel("vertical velocity (deg/s, upwards +)")
    ax.legend(fontsize=8, loc="lower left")
    ax.set_title(title or "velocity: measured (optical flow) vs requested", fontsize=9)
    return ax


# == stimuli next to their spectra (stimgen.noise / stimgen.spectrum) =====================
def plot_stimuli_with_spectra(
    conditions: Any,
    *,
    ppd: float,
    level: str = "half_amplitude",
    panel_in: float = 2.6,
):
    """One row per condition: an example stimulus (in degrees) next to its measured spectrum.

    Parameters
    ----------
    conditions : list of (str, ndarray, Filter or None)
        Label, a stack ``(N, H, W)`` of signed-contrast stimuli of that condition, and the
        designed filter (its ``|H|^2`` and band edges are drawn over the measured mean and
        spread of the N spectra).
    ppd : float
        Pixels per degree (image extent in degrees, frequency axis in cycles/degree).
    level : {"half_amplitude", "half_power"}
        Level of the drawn band edges.
    panel_in : float
        Height of a row in inches.

    Returns
    -------
    matplotlib Figure
    """
    from .spectrum import measure_band, measure_slope, radial_spectrum

    plt = _pyplot()
    n = max(len(conditions), 1)
    fig, axes = plt.subplots(n, 2, figsize=(panel_in * 3.2, panel_in * n), squeeze=False,
                             layout="constrained", gridspec_kw={"width_ratios": [1, 2]})
    for (label, stack, design), (ax_img, ax_spec) in zip(conditions, axes, strict=False):
        h, w = stack.shape[-2:]
        ax_img.imshow(stack[0], cmap="gray", vmin=-1.0, vmax=1.0, interpolation="nearest",
                      extent=(0, w / ppd, h / ppd, 0))
        ax_img.set_xlabel("deg")
        ax_img.set_ylabel("deg")
        ax_img.set_title(label, fontsize=9, loc="left")
        spec = radial_spectrum(stack, ppd=ppd, bins_per_octave=24)
        measured = measure_band(spec) if design is not None else None
        plot_spectrum(spec, design=design, level=level, measured=measured, ax=ax_spec)
        if design is None:  # broadband (e.g. 1/f): state the fitted slope instead of edges
            ax_spec.set_title(f"fitted power spectrum 1/f^alpha: alpha = {measure_slope(spec):.2f}",
                              fontsize=9)
    return fig


# == displays (stimgen.display) =========================================================
def plot_gamma_fit(fits: Any, *, model: Any = None):
    """Calibration measurements, the gain-offset-gamma fit and its inverse lookup table.

    Parameters
    ----------
    fits : GammaFit or dict of {name: GammaFit}
        From :func:`stimgen.display.fit_gamma` (e.g. ``{"gray": fit}`` or one per channel).
    model : DisplayModel, optional
        The table's monotone interpolant, drawn dashed for comparison.

    Returns
    -------
    Figure
        Left: luminance (cd/m^2) vs device level, measured points and fitted curves.
        Right: the inverse LUT, the device level that shows each fraction of the
        luminance range.
    """
    import numpy as np

    plt = _pyplot()
    items = fits.items() if isinstance(fits, dict) else [("gray", fits)]
    colors = {"gray": "0.2", "red": "tab:red", "green": "tab:green", "blue": "tab:blue"}
    fig, (ax, inv) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
    for name, f in items:
        c = colors.get(name, None)
        v = np.linspace(0, f.level_max, 512)
        ax.plot(f.levels, f.luminance_cd_m2, "o", color=c, ms=4, label=f"{name}: measured")
        ax.plot(v, f.predict(v), "-", color=c, lw=1.2,
                label=f"{name}: fit, gamma {f.gamma:.3f} (max error {f.residual_max_rel:.2%})")
        frac = np.linspace(0, 1, 256)
        level = f.level_max * (frac * (f.l_max_cd_m2 - f.l_min_cd_m2)) ** (1 / f.gamma) / f.gain
        inv.plot(frac, np.clip(level, 0, f.level_max), "-", color=c, label=name)
    if model is not None and getattr(model, "kind", "") == "table":
        first = next(iter(dict(items).values()))
        v = np.linspace(0, first.level_max, 512)
        ax.plot(v, model.luminance(v / first.level_max), "--", color="tab:orange", lw=1,
                label="table (monotone PCHIP)")
    ax.set_xlabel("device level")
    ax.set_ylabel("luminance (cd/m$^2$)")
    ax.set_title("L = a + (b v / v$_{max}$)$^\\gamma$", fontsize=10)
    ax.legend(fontsize=8)
    inv.set_xlabel("fraction of the luminance range (L - a) / (L$_{max}$ - a)")
    inv.set_ylabel("device level")
    inv.set_title("inverse lookup table (from the fit)", fontsize=10)
    inv.legend(fontsize=8)
    return fig


def plot_display_contrast_error(rows: Any, *, ax: Any = None):
    """Displayed-contrast error against requested RMS contrast, one line per encoding.

    Parameters
    ----------
    rows : dict of {label: (rms_contrast, values)}
        For each encoding, the requested RMS contrasts and the error to plot there (e.g.
        ``|predicted / requested - 1|`` of the RMS contrast shown).

    Returns
    -------
    Axes
        Log-log axes: requested RMS contrast vs error.
    """
    import numpy as np

    fig, ax = _axes(ax)
    for label, (c, err) in rows.items():
        err = np.maximum(np.asarray(err, dtype=float), 1e-7)
        ax.loglog(c, err, "o-", ms=3, label=label)
    ax.set_xlabel("requested RMS contrast")
    ax.set_ylabel("relative error of the displayed RMS contrast")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return ax
