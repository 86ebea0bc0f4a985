"""Power spectra of stimuli in cycles/degree, band measurement and design comparison.

Contents
--------
radial_spectrum       radially averaged power spectrum (mean over annuli), log-spaced bins
orientation_spectrum  power as a function of stripe orientation within a band
measure_band          measured peak and band edges at half amplitude and half power
measure_slope         fitted exponent alpha of a 1/f^alpha power spectrum
compare_to_design     measured vs designed passband: relative errors and pass/fail
default_tolerance     tolerance that scales with the number of Fourier samples

Conventions
-----------
* Power is the periodogram ``|DFT(x)|^2 / (H W)``: white noise of variance ``v`` has
  expected power ``v`` at every frequency, and filtered white noise ``v |H(f)|^2``.
* Each bin holds the *mean* power over the DFT samples of its annulus (a sum would multiply
  by the circumference and shift the peak up), bins are log-spaced, the DC sample is left
  out, and the spectrum stops at Nyquist (the corners of the 2-D spectrum are not used).
  Bin frequencies are the mean radial frequency of the samples in the bin.
* Band edges of a filter at half amplitude are where noise power falls to 1/4 of its peak;
  at half power, to 1/2.
* The image mean is removed first (per image); no window is applied, because stimuli are
  generated periodic (circular filtering), so their DFT has no edge leakage.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import special

from . import _validate as v
from .filters import LEVELS, Filter, Ideal, Orientation, PowerLaw, frequency_grid_cpp, radial_part
from .geometry import ViewingGeometry, as_ppd

__all__ = [
    "MeasuredBand",
    "RadialSpectrum",
    "compare_to_design",
    "default_tolerance",
    "measure_band",
    "measure_slope",
    "orientation_spectrum",
    "radial_spectrum",
]

_CHUNK_BYTES = 64 * 2**20
_STEEP = 20.0  # natural-log power per octave above which an edge counts as steep
_TOP = 0.95  # fraction of the peak power that counts as the top of the spectrum


def _stack(images: Any) -> np.ndarray:
    a = v.image_stack("images", images)
    if a.ndim == 2:
        a = a[None]
    if min(a.shape[-2:]) < 8:
        raise ValueError(f"images must be at least 8 x 8 pixels for a spectrum, got {a.shape[-2:]}")
    return a


def _periodograms(a: np.ndarray, workers: int | None = None):
    """Yield ``|rfft2(x - mean)|^2 / (H W)`` for chunks of the stack (float64)."""
    from scipy import fft

    h, w = a.shape[-2:]
    per = max(1, _CHUNK_BYTES // (h * w * 16))
    for s in range(0, a.shape[0], per):
        x = np.asarray(a[s : s + per], dtype=np.float64)
        x = x - x.mean(axis=(-2, -1), keepdims=True)
        spec = fft.rfft2(x, axes=(-2, -1), workers=workers)
        yield (spec.real**2 + spec.imag**2) / (h * w)


def _rfft_weights(shape: tuple[int, int]) -> np.ndarray:
    """Weight of each rfft2 column in the full spectrum (interior columns stand for two)."""
    h, w = shape
    wr = w // 2 + 1
    weights = np.full(wr, 2.0)
    weights[0] = 1.0
    if w % 2 == 0:
        weights[-1] = 1.0
    return np.broadcast_to(weights[None, :], (h, wr))


def _log_edges(f_lo: float, bins_per_octave: float) -> np.ndarray:
    """Log-spaced bin edges from ``f_lo`` to Nyquist (0.5 cpp), about ``bins_per_octave``.

    The outer edges are widened by a hair so that samples exactly at ``f_lo`` and at
    Nyquist are counted.
    """
    if f_lo >= 0.5:
        raise ValueError(f"f_min_cpp must be below Nyquist (0.5 cycles/pixel), got {f_lo!r}")
    n = max(1, int(math.ceil(math.log2(0.5 / f_lo) * bins_per_octave - 1e-9)))
    edges = f_lo * (0.5 / f_lo) ** (np.arange(n + 1) / n)
    edges[0] *= 1 - 1e-9
    edges[-1] = 0.5 * (1 + 1e-12)
    return edges


@dataclass(frozen=True)
class RadialSpectrum:
    """A radially averaged power spectrum.

    Attributes
    ----------
    freq_cpp : ndarray
        Mean radial frequency of each bin, cycles/pixel.
    power : ndarray
        Mean over images of the annulus-mean power.
    power_std : ndarray
        Standard deviation of the annulus-mean power over images (0 for one image).
    counts : ndarray
        DFT samples per bin (per image, counting both halves of the spectrum).
    n_images : int
        Number of images averaged.
    shape_px : (int, int)
        Image shape.
    ppd : float or None
        Pixels per degree, if known.
    """

    freq_cpp: np.ndarray
    power: np.ndarray
    power_std: np.ndarray
    counts: np.ndarray
    n_images: int
    shape_px: tuple[int, int]
    ppd: float | None = None
    per_image: np.ndarray | None = field(default=None, repr=False)

    @property
    def freq_cpd(self) -> np.ndarray:
        """Bin frequencies in cycles/degree (needs ppd)."""
        if self.ppd is None:
            raise ValueError("this spectrum has no ppd: give ppd to radial_spectrum for cpd")
        return self.freq_cpp * self.ppd

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``freq_cpd`` (when ppd is known), ``freq_cpp``, ``power``, ..."""
        d: dict[str, Any] = {
            "freq_cpp": self.freq_cpp.tolist(),
            "power": self.power.tolist(),
            "power_std": self.power_std.tolist(),
            "counts": self.counts.tolist(),
            "n_images": self.n_images,
            "shape_px": list(self.shape_px),
            "ppd": self.ppd,
        }
        if self.ppd is not None:
            d["freq_cpd"] = self.freq_cpd.tolist()
        return d


def radial_spectrum(
    images: Any,
    *,
    ppd: float | ViewingGeometry | None = None,
    bins_per_octave: float = 12.0,
    f_min_cpp: float | None = None,
    keep_per_image: bool = False,
    workers: int | None = None,
) -> RadialSpectrum:
    """Radially averaged power spectrum, averaged over a stack of images.

    Parameters
    ----------
    images : ndarray, shape (H, W) or (N, H, W)
        Image(s); the mean of each is removed.
    ppd : float or ViewingGeometry, optional
        Pixels per degree, for frequencies in cycles/degree.
    bins_per_octave : float
        Log-spaced bin density (default 12). Bins without DFT samples are dropped.
    f_min_cpp : float, optional
        Lowest bin edge in cycles/pixel (default: one cycle per image, ``1 / min(H, W)``).
    keep_per_image : bool
        Also keep the ``(N, n_bins)`` per-image spectra.
    workers : int, optional
        Threads for ``scipy.fft``.

    Returns
    -------
    RadialSpectrum
    """
    a = _stack(images)
    p = None if ppd is None else as_ppd(ppd)
    h, w = a.shape[-2:]
    bpo = v.positive("bins_per_octave", bins_per_octave)
    f_lo = (1.0 / min(h, w)) if f_min_cpp is None else v.positive("f_min_cpp", f_min_cpp)
    edges = _log_edges(f_lo, bpo)
    fy, fx = frequency_grid_cpp((h, w), True)
    f = np.hypot(fx, fy)
    idx = np.digitize(f, edges) - 1  # -1 below, len(edges)-1 above
    nb = len(edges) - 1
    valid = (idx >= 0) & (idx < nb) & (f > 0)
    weights = _rfft_weights((h, w))
    idx_v = idx[valid]
    wts = weights[valid]
    counts = np.bincount(idx_v, weights=wts, minlength=nb)
    fsum = np.bincount(idx_v, weights=wts * f[valid], minlength=nb)
    keep = counts > 0
    per_image = []
    for pg in _periodograms(a, workers):
        for img in pg:
            per_image.append(np.bincount(idx_v, weights=wts * img[valid], minlength=nb)[keep] / counts[keep])
    per = np.asarray(per_image)
    return RadialSpectrum(
        freq_cpp=fsum[keep] / counts[keep],
        power=per.mean(axis=0),
        power_std=per.std(axis=0, ddof=1) if per.shape[0] > 1 else np.zeros(per.shape[1]),
        counts=counts[keep],
        n_images=a.shape[0],
        shape_px=(h, w),
        ppd=p,
        per_image=per if keep_per_image else None,
    )


def orientation_spectrum(
    images: Any,
    *,
    n_bins: int = 36,
    band_cpp: Any = None,
    ppd: float | ViewingGeometry | None = None,
    band_cpd: Any = None,
    workers: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean power as a function of stripe orientation (same convention as ``Orientation``).

    Parameters
    ----------
    images : ndarray, shape (H, W) or (N, H, W)
    n_bins : int
        Orientation bins over [-90, 90) degrees.
    band_cpp, band_cpd : (float, float), optional
        Radial band to include (cycles/pixel, or cycles/degree with ``ppd``); default all
        frequencies up to Nyquist.
    ppd : float or ViewingGeometry, optional
        Pixels per degree (for ``band_cpd``).

    Returns
    -------
    angle_deg : ndarray
        Bin centres, stripe orientation counter-clockwise from vertical.
    power : ndarray
        Mean power per orientation bin, averaged over images.
    """
    a = _stack(images)
    h, w = a.shape[-2:]
    nb = v.positive_int("n_bins", n_bins, minimum=2)
    if band_cpd is not None:
        if ppd is None:
            raise ValueError("band_cpd needs ppd")
        lo, hi = (x / as_ppd(ppd) for x in v.pair("band_cpd", band_cpd))
    elif band_cpp is not None:
        lo, hi = v.pair("band_cpp", band_cpp)
    else:
        lo, hi = 0.0, 0.5
    if not 0.0 <= lo < hi:
        raise ValueError(f"the band must be [low, high] with 0 <= low < high, got [{lo:.4g}, {hi:.4g}] cpp")
    fy, fx = frequency_grid_cpp((h, w), True)
    f = np.hypot(fx, fy)
    phi = np.degrees(np.arctan2(-fy, fx)) * np.ones_like(f)
    ang = (phi + 90.0) % 180.0 - 90.0
    sel = (f > 0) & (f >= lo) & (f <= hi)
    idx = np.minimum(((ang[sel] + 90.0) / 180.0 * nb).astype(int), nb - 1)
    wts = _rfft_weights((h, w))[sel]
    counts = np.bincount(idx, weights=wts, minlength=nb)
    total = np.zeros(nb)
    for pg in _periodograms(a, workers):
        total += np.bincount(idx, weights=wts * pg[:, sel].sum(axis=0), minlength=nb)
    if np.any(counts == 0):
        raise ValueError(
            f"{np.count_nonzero(counts == 0)} of {nb} orientation bins hold no DFT sample of a "
            f"{h} x {w} image in this band; use fewer n_bins or a wider band"
        )
    centres = -90.0 + (np.arange(nb) + 0.5) * 180.0 / nb
    return centres, total / (counts * a.shape[0])


# =========================================================================================
# Band measurement
# =========================================================================================
@dataclass(frozen=True)
class MeasuredBand:
    """Peak and band edges measured from a power spectrum.

    Attributes
    ----------
    peak_cpp : float
        Frequency of the power peak, cycles/pixel.
    edges_cpp : dict
        ``{level: (low, high)}`` in cycles/pixel for "half_amplitude" (power 1/4 of the
        peak) and "half_power" (power 1/2). ``low`` is 0 when the power never falls to the
        level below the peak (low-pass); ``high`` is inf when it does not above it.
    peak_power : float
        Smoothed power at the peak.
    ppd : float or None
        Pixels per degree, for the ``_cpd`` accessors.
    """

    peak_cpp: float
    edges_cpp: dict[str, tuple[float, float]]
    peak_power: float
    ppd: float | None = None

    def _p(self) -> float:
        if self.ppd is None:
            raise ValueError("this measurement has no ppd; cycles/degree need ppd")
        return self.ppd

    @property
    def peak_cpd(self) -> float:
        """Peak frequency in cycles/degree."""
        return self.peak_cpp * self._p()

    def band_cpd(self, level: str = "half_amplitude") -> tuple[float, float]:
        """Band edges in cycles/degree at ``level``."""
        lo, hi = self.edges_cpp[v.choice("level", level, LEVELS)]
        return lo * self._p(), hi * self._p()

    def octaves(self, level: str = "half_amplitude") -> float:
        """Measured octave bandwidth at ``level``."""
        lo, hi = self.edges_cpp[v.choice("level", level, LEVELS)]
        return math.log2(hi / lo) if lo > 0 and math.isfinite(hi) else math.inf

    def to_dict(self) -> dict[str, Any]:
        """``{"peak_cpd", "half_amplitude": {"band_cpd", "octaves"}, "half_power": {...}}``."""
        d: dict[str, Any] = {"peak_cpp": self.peak_cpp, "peak_power": self.peak_power}
        if self.ppd is not None:
            d["ppd"] = self.ppd
            d["peak_cpd"] = self.peak_cpd
        for level, (lo, hi) in self.edges_cpp.items():
            entry: dict[str, Any] = {"band_cpp": [lo, hi], "octaves": self.octaves(level)}
            if self.ppd is not None:
                entry["band_cpd"] = [lo * self.ppd, hi * self.ppd]
            d[level] = entry
        return d


def _smooth(y: np.ndarray, width: float) -> np.ndarray:
    """Gaussian smoothing along bins (``width`` = sigma in bins), edge-normalized."""
    if width <= 0:
        return y
    r = int(math.ceil(3 * width))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / width) ** 2)
    num = np.convolve(np.pad(y, r, mode="constant"), k, mode="valid")
    den = np.convolve(np.pad(np.ones_like(y), r, mode="constant"), k, mode="valid")
    return num / den


def _crossing(x: np.ndarray, y: np.ndarray, i0: int, target: float, step: int) -> float | None:
    """First crossing of ``y = target`` walking from index i0 by ``step``; log-log interp."""
    i = i0
    while 0 <= i + step < len(y):
        j = i + step
        if y[j] <= target:
            if y[j] <= 0 or y[i] <= 0:
                return float(x[j])
            ly0, ly1 = math.log(y[i]), math.log(y[j])
            lx0, lx1 = math.log(x[i]), math.log(x[j])
            t = (math.log(target) - ly0) / (ly1 - ly0) if ly1 != ly0 else 0.0
            return math.exp(lx0 + t * (lx1 - lx0))
        i = j
    return None


def _refined_crossing(
    x: np.ndarray, y_raw: np.ndarray, approx: float | None, target: float, window_octaves: float
) -> float | None:
    """Crossing of the raw spectrum at a steep edge near ``approx`` (the smoothed one).

    Smoothing locates an edge robustly but moves a steep one (a brick wall moves by about
    1.6 sigma). Where the raw spectrum falls by more than ``_STEEP`` (natural-log power per
    octave) across a crossing within ``window_octaves`` of ``approx``, that raw crossing is
    unbiased and noise cannot move it much, so it is used; on gentle slopes the smoothed
    crossing has less scatter and is kept.
    """
    if approx is None or window_octaves <= 0:
        return approx
    best, best_d = approx, math.inf
    for k in range(len(x) - 1):
        a, b = y_raw[k] - target, y_raw[k + 1] - target
        if a * b > 0 or (a == 0 and b == 0):
            continue
        lo_y, hi_y = sorted((max(y_raw[k], 1e-300), max(y_raw[k + 1], 1e-300)))
        if math.log(hi_y / lo_y) / math.log2(x[k + 1] / x[k]) < _STEEP:
            continue
        c = _crossing(x[k : k + 2], y_raw[k : k + 2], 0 if a > 0 else 1, target, 1 if a > 0 else -1)
        if c is None:
            continue
        d = abs(math.log2(c / approx))
        if d <= window_octaves and d < best_d:
            best, best_d = c, d
    return best


def measure_band(
    images: Any,
    *,
    ppd: float | ViewingGeometry | None = None,
    bins_per_octave: float = 24.0,
    smooth_octaves: float = 1.0 / 12.0,
    workers: int | None = None,
) -> MeasuredBand:
    """Measure the peak and band edges of images' (or a spectrum's) radial power spectrum.

    Parameters
    ----------
    images : ndarray or RadialSpectrum
        Image(s) ``(H, W)`` / ``(N, H, W)``, or a spectrum from :func:`radial_spectrum`.
    ppd : float or ViewingGeometry, optional
        Pixels per degree (for cpd results).
    bins_per_octave : float
        Bin density of the spectrum computed from images (default 24).
    smooth_octaves : float
        Gaussian smoothing of log power along log frequency before locating the peak and
        crossings, as a standard deviation in octaves (default 1/12); 0 disables it.

    Returns
    -------
    MeasuredBand
        Peak (the maximum of the smoothed spectrum, refined by a parabola in log-log
        coordinates) and edges at half amplitude (power 1/4) and half power (power 1/2),
        found by log-log interpolation walking outwards from the peak.
    """
    if isinstance(images, RadialSpectrum):
        spec = images
        p = spec.ppd if ppd is None else as_ppd(ppd)
    else:
        p = None if ppd is None else as_ppd(ppd)
        spec = radial_spectrum(images, ppd=p, bins_per_octave=bins_per_octave, workers=workers)
    x = spec.freq_cpp
    y = spec.power
    if not np.any(y > 0):
        raise ValueError("the spectrum is zero everywhere: nothing to measure")
    # smooth log power on a log-frequency axis; bins are (nearly) uniform in log f
    logx = np.log2(x)
    dlog = np.median(np.diff(logx)) if len(x) > 1 else 1.0
    ly = np.log(np.maximum(y, np.max(y) * 1e-12))
    ys = np.exp(_smooth(ly, smooth_octaves / dlog if smooth_octaves > 0 else 0.0))
    i = int(np.argmax(ys))
    peak_x, peak_y = float(x[i]), float(ys[i])
    # peak height: parabola through the three top bins of the smoothed spectrum
    if 0 < i < len(x) - 1:
        c2, c1, c0 = np.polyfit(logx[i - 1 : i + 2], np.log(ys[i - 1 : i + 2]), 2)
        if c2 < 0:
            xv = float(np.clip(-c1 / (2 * c2), logx[i - 1], logx[i + 1]))
            peak_x, peak_y = float(2.0**xv), float(np.exp(c0 + c1 * xv + c2 * xv * xv))
    # peak position: a wider parabola through the top (>= 95 % of the max), weighted by
    # the samples per bin, is steadier on the flat tops of broad bands (bias < 2.5 %)
    lo_i, hi_i = i, i
    while lo_i > 0 and ys[lo_i - 1] >= _TOP * ys[i]:
        lo_i -= 1
    while hi_i < len(x) - 1 and ys[hi_i + 1] >= _TOP * ys[i]:
        hi_i += 1
    if hi_i - lo_i >= 3:
        sl = slice(lo_i, hi_i + 1)
        c2, c1, _ = np.polyfit(logx[sl], np.log(ys[sl]), 2, w=np.sqrt(spec.counts[sl]))
        if c2 < 0 and logx[lo_i] <= -c1 / (2 * c2) <= logx[hi_i]:
            peak_x = float(2.0 ** (-c1 / (2 * c2)))
    edges: dict[str, tuple[float, float]] = {}
    for level, frac in LEVELS.items():
        target = peak_y * frac**2
        window = 2.0 * smooth_octaves
        lo = _refined_crossing(x, y, _crossing(x, ys, i, target, -1), target, window)
        hi = _refined_crossing(x, y, _crossing(x, ys, i, target, +1), target, window)
        edges[level] = (0.0 if lo is None else lo, math.inf if hi is None else hi)
    return MeasuredBand(peak_x, edges, peak_y, p)


def measure_slope(
    images: Any,
    *,
    ppd: float | ViewingGeometry | None = None,
    band_cpd: Any = None,
    workers: int | None = None,
) -> float:
    """Fitted exponent ``alpha`` of a ``1/f^alpha`` power spectrum (least squares, log-log).

    Parameters
    ----------
    images : ndarray or RadialSpectrum
    ppd : float or ViewingGeometry, optional
        Pixels per degree (needed with ``band_cpd``).
    band_cpd : (float, float), optional
        Frequency range of the fit in cycles/degree (default: 2 cycles/image to Nyquist/2).
    """
    spec = images if isinstance(images, RadialSpectrum) else radial_spectrum(images, ppd=ppd, workers=workers)
    x, y = spec.freq_cpp, spec.power
    if band_cpd is not None:
        pp = as_ppd(ppd) if ppd is not None else spec.ppd
        if pp is None:
            raise ValueError("band_cpd needs ppd")
        lo, hi = (f / pp for f in v.pair("band_cpd", band_cpd))
    else:
        lo, hi = 2.0 / min(spec.shape_px), 0.25
    sel = (x >= lo) & (x <= hi) & (y > 0)
    if np.count_nonzero(sel) < 3:
        raise ValueError("fewer than 3 spectrum bins in the fit range; widen band_cpd")
    # The log of a mean of k independent exponential periodogram samples is biased by
    # psi(k) - ln(k) (about -1/(2k)); low-frequency bins hold few samples, so uncorrected
    # the fit reads alpha low on small images. Mirror samples are not independent: k is
    # half the counted samples, times the number of images.
    k = np.maximum(spec.counts[sel] / 2.0 * spec.n_images, 1.0)
    log_y = np.log(y[sel]) - special.digamma(k) + np.log(k)
    slope = np.polyfit(np.log(x[sel]), log_y, 1, w=np.sqrt(spec.counts[sel]))[0]
    return float(-slope)


# =========================================================================================
# Comparison with a design
# =========================================================================================
def default_tolerance(n_images: int, shape_px: tuple[int, int]) -> dict[str, float]:
    """Relative tolerances for edges and peak, scaled to the amount of data.

    The reference is 16 images of 512 x 512 px, where measured edges scatter by about 0.6 %
    and the peak by 1.6 %: there the tolerance is 2 % for edges and 5 % for the peak. The
    scatter grows as ``1 / sqrt(number of pixels)``, so the tolerance is scaled by
    ``sqrt(16 * 512^2 / (n H W))`` (never below the reference values, capped at 25 % / 50 %).
    """
    k = math.sqrt(16 * 512 * 512 / (max(int(n_images), 1) * int(shape_px[0]) * int(shape_px[1])))
    k = max(k, 1.0)
    return {"edge": min(0.02 * k, 0.25), "peak": min(0.05 * k, 0.5)}


def compare_to_design(
    measured: MeasuredBand,
    filt: Filter,
    *,
    ppd: float | ViewingGeometry,
    level: str = "half_amplitude",
    tolerance: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Compare a measured band with a filter's design.

    Parameters
    ----------
    measured : MeasuredBand
        From :func:`measure_band`.
    filt : Filter
        The designed filter.
    ppd : float or ViewingGeometry
        Pixels per degree.
    level : {"half_amplitude", "half_power"}
        Level at which the edges are compared.
    tolerance : dict, optional
        ``{"edge": rel, "peak": rel}``; default 2 % and 5 %.

    Returns
    -------
    dict
        ``design`` and ``measured`` peak/band in cpd, ``rel_error`` for ``peak``, ``low``,
        ``high``, the tolerance, and ``pass`` (all within tolerance). For flat-topped
        filters (ideal) the peak is ill-defined, so the measured peak is compared with the
        geometric centre of the design and passes when it lies inside the band.
    """
    p = as_ppd(ppd)
    tol = {"edge": 0.02, "peak": 0.05} if tolerance is None else dict(tolerance)
    if isinstance(filt, Orientation):
        raise ValueError("an orientation window alone has no radial design to compare with")
    if isinstance(radial_part(filt), PowerLaw):
        raise ValueError("a power-law spectrum has no half-amplitude band: check it with measure_slope")
    design = filt.passband(level)
    d_lo, d_hi = design.low_cpp, design.high_cpp
    m_lo, m_hi = measured.edges_cpp[v.choice("level", level, LEVELS)]

    def rel(m: float, d: float) -> float:
        if m == d:
            return 0.0
        if d == 0 or not (math.isfinite(d) and math.isfinite(m)):
            return math.inf
        return (m - d) / d

    flat_top = isinstance(radial_part(filt), Ideal)
    d_peak = design.center_cpp if flat_top else design.peak_cpp
    errors: dict[str, float | None] = {
        "peak": rel(measured.peak_cpp, d_peak), "low": rel(m_lo, d_lo), "high": rel(m_hi, d_hi)
    }
    ok_edges = abs(rel(m_lo, d_lo)) <= tol["edge"] and abs(rel(m_hi, d_hi)) <= tol["edge"]
    if design.kind == "lowpass":  # the peak is at DC: nothing to compare but the edge
        errors["peak"] = None
        ok_peak = True
    elif flat_top:
        ok_peak = d_lo <= measured.peak_cpp <= d_hi
    else:
        ok_peak = abs(rel(measured.peak_cpp, d_peak)) <= tol["peak"]
    return {
        "level": level,
        "design": {"peak_cpd": d_peak * p, "band_cpd": [d_lo * p, d_hi * p]},
        "measured": {"peak_cpd": measured.peak_cpp * p, "band_cpd": [m_lo * p, m_hi * p]},
        "rel_error": errors,
        "tolerance": tol,
        "pass": bool(ok_edges and ok_peak),
    }
