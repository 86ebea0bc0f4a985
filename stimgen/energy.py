"""Signal energy E and noise power spectral density N, in the units of masking experiments.

Contents
--------
contrast_energy        E of a target: sum of squared signed contrast times the pixel area
noise_psd              N of noise from its design (white, or any filter), at its peak or at
                       given frequencies
measure_psd            N measured from images (radially averaged periodogram)
MeasuredPSD            the measured N(f) in cpd, with interpolation at a frequency
measure_critical_band  measured cutoffs / notch edges of low-pass, high-pass or notched noise

Conventions
-----------
* Signed contrast ``c(x, y) = (L - L_mean) / L_mean``; a pixel covers ``(1 / ppd)^2`` deg^2.
* E is in contrast^2 * deg^2 (written deg^2): ``E = sum(c^2) / ppd^2``. For a movie shown
  for ``frame_duration_s`` per frame it is in contrast^2 * deg^2 * s.
* N is in contrast^2 * deg^2 (deg^2); its integral over the frequency plane (cpd^2) is the
  noise variance. Noise of RMS contrast ``c`` through a filter ``H``:
  ``N(f) = c^2 |H(f)|^2 / integral |H|^2 dfx dfy``. White noise: ``N = c^2 / ppd^2``.
  Dynamic noise that changes every frame for ``dt`` seconds: ``N * dt`` (s * deg^2).
* ``E / N`` is dimensionless; the ideal observer's d' for a known signal in white noise is
  ``sqrt(2 E / N)``.

See docs/theory.md ("Energy and noise spectral density") for the derivations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _validate as v
from .filters import (
    LEVELS,
    Filter,
    Orientation,
    Product,
    filter_from_record,
    radial_part,
)
from .geometry import ViewingGeometry, as_ppd

__all__ = [
    "MeasuredPSD",
    "contrast_energy",
    "measure_critical_band",
    "measure_psd",
    "noise_psd",
]


def _duration(frame_duration_s: Any) -> float:
    return 1.0 if frame_duration_s is None else v.positive("frame_duration_s", frame_duration_s)


# =========================================================================================
# Energy
# =========================================================================================
def contrast_energy(
    image: Any,
    ppd: float | ViewingGeometry,
    *,
    frame_duration_s: float | None = None,
) -> float | np.ndarray:
    """Contrast energy E of a target, in contrast^2 * deg^2 (deg^2).

    Parameters
    ----------
    image : ndarray, shape (H, W) or (N, H, W)
        Signed contrast (0 = mean luminance). A stack gives one E per image, unless
        ``frame_duration_s`` makes it a movie.
    ppd : float or ViewingGeometry
        Pixels per degree: a pixel covers ``1 / ppd^2`` deg^2.
    frame_duration_s : float, optional
        For a movie ``(T, H, W)``: the duration of one frame in seconds. E is then summed
        over the frames and is in contrast^2 * deg^2 * s.

    Returns
    -------
    float or ndarray of shape (N,)
        ``sum(c^2) / ppd^2`` (times ``frame_duration_s`` for a movie), accumulated in float64.

    Notes
    -----
    For a Gabor of contrast c, frequency f (cpd), envelope standard deviation sigma (deg)
    and phase phi: ``E = c^2 pi sigma^2 / 2 * (1 + cos(2 phi) exp(-4 pi^2 f^2 sigma^2))``.

    Examples
    --------
    >>> import numpy as np
    >>> float(contrast_energy(np.full((10, 10), 0.5), ppd=10.0))  # 1 deg^2 at contrast 0.5
    0.25
    """
    a = v.image_stack("image", image)
    p = as_ppd(ppd)
    sq = np.square(a, dtype=np.float64)
    if frame_duration_s is not None:
        return float(sq.sum()) / (p * p) * _duration(frame_duration_s)
    if a.ndim == 2:
        return float(sq.sum()) / (p * p)
    return sq.sum(axis=(-2, -1)) / (p * p)


# =========================================================================================
# Noise spectral density from a design
# =========================================================================================
def _noise_filter(noise: Any) -> tuple[Filter | None, dict[str, Any]]:
    """The filter of ``noise`` (None: white) and what its record says (ppd, rms, shape)."""
    if noise is None or isinstance(noise, Filter):
        return noise, {}
    if isinstance(noise, dict):
        if "filter" not in noise:
            raise ValueError("a noise record needs a 'filter' entry (None for white noise); "
                             "pass the record of bandpass_noise or a filter")
        rec = noise["filter"]
        filt = None if rec is None else filter_from_record(rec)
        known = {k: noise[k] for k in ("ppd", "rms_contrast", "shape_px") if noise.get(k) is not None}
        return filt, known
    raise ValueError(f"noise must be None (white), a filter or a noise record, got {type(noise).__name__}")


def _arc_inside_square(f: np.ndarray) -> np.ndarray:
    """Length of the circle of radius f (cpp) inside the Nyquist square [-0.5, 0.5]^2."""
    f = np.asarray(f, dtype=float)
    out = 2.0 * np.pi * f
    far = f > 0.5
    out[far] -= 8.0 * f[far] * np.arccos(np.minimum(0.5 / f[far], 1.0))
    return np.maximum(out, 0.0)


def _power_integral_cpp(filt: Filter | None, shape_px: tuple[int, int] | None) -> float:
    """``integral |H|^2 dfx dfy`` over the Nyquist square, in cycles/pixel squared.

    With ``shape_px`` it is the sum over the image's DFT grid without DC (exact for noise
    made on that grid with its mean removed), times the bin area ``1 / (H W)``. Without it,
    the continuous integral (radial filters: by quadrature over the radius).
    """
    if shape_px is not None:
        h, w = shape_px
        if filt is None:
            return (h * w - 1) / (h * w)
        g = np.asarray(filt.grid((h, w), real=False, dtype=np.float64))
        return (float(np.sum(g * g)) - float(g[0, 0]) ** 2) / (h * w)
    if filt is None:
        return 1.0
    if filt.radial and not isinstance(filt, Product):
        from scipy import integrate

        def integrand(f: float) -> float:
            a = np.array([f])
            return float(filt.transfer(a)[0] ** 2 * _arc_inside_square(a)[0])

        try:
            pb = filt.passband()
            points = [x for x in (pb.low_cpp, pb.peak_cpp, pb.high_cpp) if 0 < x < 0.5 * math.sqrt(2)]
        except ValueError:
            points = []
        total = 0.0
        knots = [0.0, *sorted(points), 0.5, 0.5 * math.sqrt(2)]
        for a, b in zip(knots[:-1], knots[1:], strict=True):
            if b > a:
                total += integrate.quad(integrand, a, b, limit=400, epsabs=0, epsrel=1e-10)[0]
        return total
    n = 2048  # midpoint rule on the square for oriented filters
    f1 = (np.arange(n) + 0.5) / n - 0.5
    resp = np.asarray(filt.response(f1[None, :], f1[:, None]), dtype=float)
    return float(np.mean(resp * resp))


def _peak_power(filt: Filter | None) -> tuple[float, float | None]:
    """``(max |H|^2, frequency of the peak in cpp or None)`` of a noise filter."""
    if filt is None:
        return 1.0, None
    radial = radial_part(filt)
    if radial is None or isinstance(filt, Orientation) or (isinstance(filt, Product) and radial is filt):
        n = 1024
        f1 = (np.arange(n) + 0.5) / n - 0.5
        resp = np.asarray(filt.response(f1[None, :], f1[:, None]), dtype=float)
        return float(np.max(resp * resp)), None
    pb = radial.passband()
    if not math.isfinite(pb.peak_value):
        raise ValueError(f"the {radial.family} filter has no finite peak (1/f noise without a low "
                         "limit): give freq_cpd to get N at a frequency")
    return pb.peak_value**2, pb.peak_cpp


def noise_psd(
    noise: Any = None,
    *,
    ppd: float | ViewingGeometry | None = None,
    rms_contrast: float | None = None,
    freq_cpd: Any = None,
    orientation_deg: float | None = None,
    shape_px: Any = None,
    frame_duration_s: float | None = None,
) -> float | np.ndarray:
    """Noise power spectral density N from the design, in contrast^2 * deg^2 (deg^2).

    Parameters
    ----------
    noise : None, Filter or dict
        None for white noise, the noise's filter, or a :func:`stimgen.bandpass_noise`
        record (its filter, ppd, RMS contrast and shape are used unless given here).
    ppd : float or ViewingGeometry
        Pixels per degree (from the record if omitted).
    rms_contrast : float
        RMS contrast c of the noise (from the record if omitted).
    freq_cpd : float or array_like, optional
        Radial frequencies in cycles/degree. None: N at the filter's peak (the maximum of
        ``|H|``; for white noise everywhere).
    orientation_deg : float, optional
        For oriented filters: the stripe orientation of the frequencies asked for (degrees
        counter-clockwise from vertical, as :class:`stimgen.filters.Orientation`); default
        the orientation window's own angle (0 when there is none).
    shape_px : (int, int), optional
        Image shape: the power integral is then the sum over that image's DFT grid without
        DC (exactly what noise of that size with its mean removed holds). Default: the
        continuous integral over the Nyquist square.
    frame_duration_s : float, optional
        Dynamic noise that changes every frame: N is multiplied by the frame duration and
        is in s * deg^2.

    Returns
    -------
    float or ndarray
        ``N(f) = c^2 |H(f)|^2 / integral |H|^2 dfx dfy`` with frequencies in cpd (white
        noise: ``c^2 / ppd^2``), times ``frame_duration_s`` if given.

    Examples
    --------
    >>> round(noise_psd(None, ppd=35.8375, rms_contrast=0.2), 10)  # white noise
    3.11451e-05
    """
    filt, known = _noise_filter(noise)
    if ppd is None and "ppd" not in known:
        raise ValueError("noise_psd needs ppd (pixels per degree), or a record that holds it")
    p = as_ppd(ppd if ppd is not None else known["ppd"])
    c_in = rms_contrast if rms_contrast is not None else known.get("rms_contrast")
    if c_in is None:
        raise ValueError("noise_psd needs rms_contrast, or a record that holds it")
    c = v.positive("rms_contrast", c_in)
    shape = shape_px if shape_px is not None else known.get("shape_px")
    if shape is not None:
        vals = [shape, shape] if np.ndim(shape) == 0 else list(shape)
        if len(vals) != 2:
            raise ValueError(f"shape_px must be (height, width), got {shape!r}")
        shape = (v.positive_int("shape_px", vals[0]), v.positive_int("shape_px", vals[1]))
    dt = _duration(frame_duration_s)
    scale = c * c / (_power_integral_cpp(filt, shape) * p * p) * dt
    if freq_cpd is None:
        return _peak_power(filt)[0] * scale
    f = np.asarray(freq_cpd, dtype=float)
    if not np.all(np.isfinite(f)) or np.any(f < 0):
        raise ValueError(f"freq_cpd must be finite frequencies >= 0 in cpd, got {freq_cpd!r}")
    angle = orientation_deg
    if angle is None:
        factors = () if filt is None else (filt.factors if isinstance(filt, Product) else (filt,))
        windows = [x for x in factors if isinstance(x, Orientation)]
        angle = windows[0].angle_deg if windows else 0.0
    theta = math.radians(v._number("orientation_deg", angle))
    fx, fy = f / p * math.cos(theta), -f / p * math.sin(theta)
    if np.any(np.maximum(np.abs(fx), np.abs(fy)) > 0.5 * (1 + 1e-12)):
        raise ValueError(
            f"freq_cpd {float(np.max(f)):g} cpd at orientation {float(angle):g} deg lies beyond Nyquist "
            f"({p / 2:.4g} cpd at {p:.4g} ppd, along each axis)"
        )
    if filt is None:
        out = np.full(f.shape, scale)
    else:
        h = np.asarray(filt.response(fx, fy), dtype=float)
        out = h * h * scale
    return float(out) if out.ndim == 0 else out


# =========================================================================================
# Measured noise spectral density
# =========================================================================================
@dataclass(frozen=True)
class MeasuredPSD:
    """Noise power spectral density measured from images, radially averaged.

    Attributes
    ----------
    freq_cpd : ndarray
        Mean radial frequency of each bin, cycles/degree.
    psd_deg2 : ndarray
        Mean N over images in each bin, contrast^2 * deg^2 (s * deg^2 with a frame duration).
    psd_std_deg2 : ndarray
        Standard deviation over images of each bin's N.
    counts : ndarray
        DFT samples per bin (per image).
    n_images : int
        Number of images averaged.
    ppd : float
        Pixels per degree.
    unit : str
        ``"deg2"`` or ``"s_deg2"``.
    """

    freq_cpd: np.ndarray
    psd_deg2: np.ndarray
    psd_std_deg2: np.ndarray
    counts: np.ndarray
    n_images: int
    ppd: float
    unit: str = "deg2"

    @property
    def mean_deg2(self) -> float:
        """N averaged over every frequency (weighted by samples): the level of white noise."""
        return float(np.sum(self.psd_deg2 * self.counts) / np.sum(self.counts))

    def at(self, freq_cpd: Any) -> float | np.ndarray:
        """N at ``freq_cpd`` (cpd), interpolated linearly in log N over log frequency.

        Raises
        ------
        ValueError
            Outside the measured range (below one cycle per image, above Nyquist).
        """
        f = np.asarray(freq_cpd, dtype=float)
        lo, hi = float(self.freq_cpd[0]), float(self.freq_cpd[-1])
        if np.any(f < lo) or np.any(f > hi):
            raise ValueError(f"freq_cpd must lie within the measured range [{lo:.4g}, {hi:.4g}] cpd, got {freq_cpd!r}")
        y = np.log(np.maximum(self.psd_deg2, np.max(self.psd_deg2) * 1e-300))
        out = np.exp(np.interp(np.log(f), np.log(self.freq_cpd), y))
        return float(out) if out.ndim == 0 else out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``freq_cpd``, ``psd_deg2``, ``psd_std_deg2``, ``counts``, ..."""
        return {
            "freq_cpd": self.freq_cpd.tolist(),
            "psd_deg2": self.psd_deg2.tolist(),
            "psd_std_deg2": self.psd_std_deg2.tolist(),
            "counts": self.counts.tolist(),
            "n_images": self.n_images,
            "ppd": self.ppd,
            "unit": self.unit,
        }


def measure_psd(
    images: Any,
    ppd: float | ViewingGeometry,
    *,
    frame_duration_s: float | None = None,
    bins_per_octave: float = 12.0,
    workers: int | None = None,
) -> MeasuredPSD:
    """Measure the noise power spectral density N of images, in contrast^2 * deg^2.

    Parameters
    ----------
    images : ndarray, shape (H, W) or (N, H, W)
        Signed-contrast noise images (each image's mean is removed).
    ppd : float or ViewingGeometry
        Pixels per degree.
    frame_duration_s : float, optional
        The images are frames of dynamic noise, each shown for this long: N is multiplied
        by it (s * deg^2). Frames are taken as independent draws.
    bins_per_octave : float
        Density of the log-spaced radial bins (default 12).
    workers : int, optional
        Threads for ``scipy.fft``.

    Returns
    -------
    MeasuredPSD

    Notes
    -----
    The periodogram ``|DFT(c)|^2 / (H W ppd^2)``, averaged over each annulus and over the
    images: :func:`stimgen.spectrum.radial_spectrum` divided by ``ppd^2``. For white noise
    of RMS contrast c its expectation is ``c^2 / ppd^2`` at every frequency.
    """
    from .spectrum import radial_spectrum

    p = as_ppd(ppd)
    dt = _duration(frame_duration_s)
    spec = radial_spectrum(images, ppd=p, bins_per_octave=bins_per_octave, workers=workers)
    k = dt / (p * p)
    return MeasuredPSD(
        freq_cpd=spec.freq_cpd, psd_deg2=spec.power * k, psd_std_deg2=spec.power_std * k,
        counts=spec.counts, n_images=spec.n_images, ppd=p,
        unit="deg2" if frame_duration_s is None else "s_deg2",
    )


# =========================================================================================
# Critical-band measurement
# =========================================================================================
def _nearest_crossing(f: np.ndarray, y: np.ndarray, target: float, near: float) -> float | None:
    """The crossing of ``y = target`` nearest (in log f) to ``near``; log-log interpolation."""
    s = y - target
    best, best_d = None, math.inf
    for k in np.nonzero(np.sign(s[:-1]) != np.sign(s[1:]))[0]:
        y0, y1 = math.log(max(y[k], 1e-300)), math.log(max(y[k + 1], 1e-300))
        x0, x1 = math.log(f[k]), math.log(f[k + 1])
        t = (math.log(target) - y0) / (y1 - y0) if y1 != y0 else 0.5
        c = math.exp(x0 + t * (x1 - x0))
        d = abs(math.log(c / near))
        if d < best_d:
            best, best_d = c, d
    return best


def measure_critical_band(
    images: Any,
    filt: Filter,
    *,
    ppd: float | ViewingGeometry,
    level: str = "half_amplitude",
    bins_per_octave: float = 24.0,
    tolerance: float = 0.02,
    workers: int | None = None,
) -> dict[str, Any]:
    """Measure the cutoff(s) of low-pass, high-pass or notched (or band-pass) noise.

    Parameters
    ----------
    images : ndarray, shape (H, W) or (N, H, W)
        Noise images made through ``filt``.
    filt : Filter
        The design (any radial filter; notches from :class:`stimgen.filters.Notch`).
    ppd : float or ViewingGeometry
        Pixels per degree.
    level : {"half_amplitude", "half_power"}
        Level of the edges compared.
    bins_per_octave : float
        Radial bin density of the measured N (default 24).
    tolerance : float
        Relative tolerance of each edge for ``pass`` (default 2 %).

    Returns
    -------
    dict
        ``kind``, ``level``, ``design_band_cpd`` and ``measured_band_cpd`` (0 / inf where a
        family has no edge), ``rel_error`` per edge, ``pass``, and for a notch its measured
        ``depth_db`` (mean attenuation over its central third of an octave, in dB).

    Notes
    -----
    The reference level is the design's N at the peak, scaled by the measured variance
    of the images (so a wrong RMS contrast does not move the edges, and no noisy
    maximum of the spectrum sets the level). The measured edges are where the measured N
    crosses ``L^2`` times that reference, nearest to the designed edge; a band-pass noise'
    edges, a low-pass cutoff, a high-pass cutoff, or a notch's two walls.
    """
    from .contrast import rms_contrast

    p = as_ppd(ppd)
    L = LEVELS[v.choice("level", level, LEVELS)]
    radial = radial_part(filt)
    if radial is None:
        raise ValueError("an orientation window alone has no radial band to measure")
    a = v.image_stack("images", images)
    stack = a if a.ndim == 3 else a[None]
    c = float(np.sqrt(np.mean(np.square(np.asarray(rms_contrast(stack), dtype=np.float64)))))
    shape = (int(stack.shape[-2]), int(stack.shape[-1]))
    n_peak = float(noise_psd(filt, ppd=p, rms_contrast=c, shape_px=shape))
    measured = measure_psd(stack, p, bins_per_octave=bins_per_octave, workers=workers)
    pb = radial.passband(level)
    target = L * L * n_peak
    design = [pb.low_cpp * p, pb.high_cpp * p]
    got: list[float] = [0.0, math.inf]
    for i, edge in enumerate(design):
        if 0 < edge < math.inf:
            m = _nearest_crossing(measured.freq_cpd, measured.psd_deg2, target, edge)
            got[i] = math.nan if m is None else m

    def rel(m: float, d: float) -> float | None:
        if d == 0 or not math.isfinite(d):
            return None
        return (m - d) / d if math.isfinite(m) else math.inf

    errors = [rel(m, d) for m, d in zip(got, design, strict=True)]
    ok = all(e is None or abs(e) <= tolerance for e in errors)
    out: dict[str, Any] = {
        "kind": pb.kind,
        "level": level,
        "design_band_cpd": design,
        "measured_band_cpd": got,
        "rel_error": {"low": errors[0], "high": errors[1]},
        "tolerance": tolerance,
        "pass": bool(ok),
    }
    if pb.kind == "notch":
        centre = pb.center_cpp * p
        sel = (measured.freq_cpd >= centre * 2 ** (-1 / 6)) & (measured.freq_cpd <= centre * 2 ** (1 / 6))
        if not np.any(sel):
            raise ValueError("no spectrum bin lies within the notch's central third of an octave")
        mean_n = float(np.sum(measured.psd_deg2[sel] * measured.counts[sel]) / np.sum(measured.counts[sel]))
        out["depth_db"] = 10.0 * math.log10(n_peak / mean_n)
    return out
