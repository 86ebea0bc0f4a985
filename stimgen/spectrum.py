"""Power spectra of stimuli in cycles/degree, band measurement and design comparison.

Contents
--------
radial_spectrum       radially averaged power spectrum (mean over annuli), log-spaced bins
orientation_spectrum  power as a function of stripe orientation within a band
measure_band          measured peak and band edges at half amplitude and half power
measure_slope         fitted exponent alpha of a 1/f^alpha power spectrum
compare_to_design     measured vs designed spectrum: a statistical test of the periodogram
                      (pass / fail / not_measurable) and the relative errors of peak and edges
periodogram_test      the test alone: binned periodogram against the designed ``|H|^2``
measurability         which edges of a band can be measured on an image's DFT grid
check_measurable      raise when an edge of a band cannot be measured at all
default_tolerance     tolerance that scales with the number of Fourier samples

Conventions
-----------
* Power is the periodogram ``|DFT(x)|^2 / (H W)``: white noise of variance ``v`` has
  expected power ``v`` at every frequency, and filtered white noise ``v |H(f)|^2``.
* Each bin holds the *mean* power over the DFT samples of its annulus (a sum would multiply
  by the circumference and shift the peak up), bins are log-spaced, the DC sample is left
  out, and the spectrum stops at Nyquist (the corners of the 2-D spectrum are not used).
  Bin frequencies are the mean radial frequency of the samples in the bin, so at low
  frequencies (one DFT radius per bin) they are the exact radii of the DFT samples.
* Band edges of a filter at half amplitude are where noise power falls to 1/4 of its peak;
  at half power, to 1/2.
* The image mean is removed first (per image); no window is applied, because stimuli are
  generated periodic (circular filtering), so their DFT has no edge leakage.
* Images are scaled by a power of two before the transform, so finite input of any
  magnitude is transformed without overflow; a spectrum that does not fit in float64 is
  refused with the value range that does.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import special

from . import _validate as v
from .filters import (
    LEVELS,
    Filter,
    Ideal,
    Orientation,
    Passband,
    PowerLaw,
    Product,
    frequency_grid_cpp,
    radial_part,
)
from .geometry import ViewingGeometry, as_ppd

__all__ = [
    "FALSE_ALARM_RATE",
    "MIN_CYCLES_PER_IMAGE",
    "MeasuredBand",
    "RadialSpectrum",
    "check_measurable",
    "compare_to_design",
    "default_tolerance",
    "measurability",
    "measure_band",
    "measure_slope",
    "orientation_spectrum",
    "periodogram_test",
    "radial_spectrum",
]

#: Default false-alarm rate of :func:`periodogram_test` (probability that a correct
#: stimulus fails).
FALSE_ALARM_RATE = 1e-3
#: Band edges below this many cycles per image (along the shorter side) are "not measurable
#: at this image size": the DFT radii there are up to half an octave apart.
MIN_CYCLES_PER_IMAGE = 2.0

_CHUNK_BYTES = 64 * 2**20
_STEEP = 20.0  # natural-log power per octave above which an edge counts as steep
_TOP = 0.95  # fraction of the peak power that counts as the top of the spectrum
_FLOOR = 1e-12  # power below this fraction of the maximum counts as zero
_WALL = 1e-6  # power below this fraction of the peak just beyond an edge: a brick wall
_TEST_LEVEL = 1e-2  # bins whose designed power is below this fraction of the peak are not tested
_EXACT_TOLERANCE = 1e-2  # relative tolerance per bin for exact-spectrum ("flat") noise
_MAX_BINS_PER_OCTAVE = 1000.0
_MAX_WIDEN_OCTAVES = 0.5  # ... but no wider than this (octaves)
_MIN_SAMPLES = 96.0  # DFT samples (times images) the local fit spans at least on noisy spectra


# =========================================================================================
# Input checks and the periodogram
# =========================================================================================
def _stack(images: Any, name: str = "images") -> np.ndarray:
    """Validate images ``(H, W)`` or ``(N, H, W)`` (finite, real, non-empty, >= 8 x 8)."""
    if isinstance(images, (str, bytes, dict)):
        raise ValueError(f"{name} must be a real numeric array (H, W) or (N, H, W), got {type(images).__name__}")
    try:
        a = v.image_stack(name, images)
    except (TypeError, OverflowError) as exc:  # ragged nested lists and the like
        raise ValueError(f"{name} must be a real numeric array (H, W) or (N, H, W): {exc}") from None
    except ValueError as exc:
        if "inhomogeneous" not in str(exc) and "sequence" not in str(exc):
            raise
        raise ValueError(f"{name} must be a real numeric array (H, W) or (N, H, W), got ragged nested lists") from None
    if np.iscomplexobj(a):  # pragma: no cover - image_stack refuses complex dtypes already
        raise ValueError(f"{name} must be real, got complex dtype {a.dtype}: pass the real part explicitly")
    if a.ndim == 3 and a.shape[0] == 0:
        raise ValueError(f"{name} is an empty stack of shape {a.shape}: give at least one image")
    if a.ndim == 2:
        a = a[None]
    if min(a.shape[-2:]) < 8:
        raise ValueError(f"{name} must be at least 8 x 8 pixels for a spectrum, got {a.shape[-2:]}")
    return a


def _power_of_two_scale(a: np.ndarray) -> int:
    """Exponent ``e`` such that ``a * 2**e`` has its largest magnitude in [0.5, 1)."""
    peak = max(abs(float(np.max(a))), abs(float(np.min(a)))) if a.size else 0.0
    return 0 if peak == 0.0 else -math.frexp(peak)[1]


def _periodograms(a: np.ndarray, workers: int | None = None):
    """Yield ``|rfft2(x - mean)|^2 / (H W)`` for chunks of the stack (float64).

    The images are scaled by a power of two (exact) so that the transform cannot overflow;
    a power spectrum that does not fit in float64 raises ``ValueError``.
    """
    from scipy import fft

    h, w = a.shape[-2:]
    e = _power_of_two_scale(a)
    per = max(1, _CHUNK_BYTES // (h * w * 16))
    for s in range(0, a.shape[0], per):
        x = np.ldexp(np.asarray(a[s : s + per], dtype=np.float64), e)
        x = x - x.mean(axis=(-2, -1), keepdims=True)
        spec = fft.rfft2(x, axes=(-2, -1), workers=workers)
        scaled = (spec.real**2 + spec.imag**2) / (h * w)
        with np.errstate(over="ignore", under="ignore"):
            power = np.ldexp(scaled, -2 * e)
        if not np.all(np.isfinite(power)):
            peak = math.ldexp(1.0, -e)
            raise ValueError(
                f"images: values up to about {peak:.3g} give power-spectrum values beyond the "
                f"float64 range ({np.finfo(np.float64).max:.3g}); allowed are images whose "
                f"values times sqrt(H W) = {math.sqrt(h * w):.4g} stay below about 1e150: "
                "rescale the images first"
            )
        if np.any(scaled > 0) and not np.any(power > 0):
            raise ValueError(
                f"images: values of about {math.ldexp(1.0, -e):.3g} give power-spectrum values "
                "below the smallest float64: rescale the images first"
            )
        yield power


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
    if n > 1_000_000:
        raise ValueError(
            f"f_min_cpp {f_lo!r} with bins_per_octave {bins_per_octave!r} gives {n} bins; "
            "allowed are at most 1000000: raise f_min_cpp or lower bins_per_octave"
        )
    edges = f_lo * (0.5 / f_lo) ** (np.arange(n + 1) / n)
    edges[0] *= 1 - 1e-9
    edges[-1] = 0.5 * (1 + 1e-12)
    return edges


@dataclass(frozen=True)
class _Binning:
    """Which rfft2 samples of an ``(H, W)`` grid fall in which (non-empty) radial bin."""

    valid: np.ndarray  # bool (H, W//2+1): samples used (0 < f <= Nyquist, f >= f_lo)
    index: np.ndarray  # bin of each valid sample (0 .. n_bins-1)
    weights: np.ndarray  # full-grid weight of each valid sample (1 or 2)
    radius: np.ndarray  # radial frequency of each valid sample, cpp
    counts: np.ndarray  # full-grid samples per bin
    freq: np.ndarray  # mean radial frequency per bin, cpp


@functools.lru_cache(maxsize=16)
def _binning(shape: tuple[int, int], bins_per_octave: float, f_lo: float) -> _Binning:
    h, w = shape
    edges = _log_edges(f_lo, bins_per_octave)
    fy, fx = frequency_grid_cpp((h, w), True)
    f = np.hypot(fx, fy)
    idx = np.digitize(f, edges) - 1  # -1 below, len(edges)-1 above
    nb = len(edges) - 1
    valid = (idx >= 0) & (idx < nb) & (f > 0)
    idx_v = idx[valid]
    wts = np.ascontiguousarray(_rfft_weights((h, w))[valid])
    counts = np.bincount(idx_v, weights=wts, minlength=nb)
    fsum = np.bincount(idx_v, weights=wts * f[valid], minlength=nb)
    keep = counts > 0
    renumber = np.cumsum(keep) - 1
    out = _Binning(valid, renumber[idx_v], wts, f[valid], counts[keep], fsum[keep] / counts[keep])
    for a in (out.valid, out.index, out.weights, out.radius, out.counts, out.freq):
        a.flags.writeable = False
    return out


def _check_bins_per_octave(value: Any) -> float:
    bpo = v.positive("bins_per_octave", value)
    if bpo > _MAX_BINS_PER_OCTAVE:
        raise ValueError(f"bins_per_octave must be in (0, {_MAX_BINS_PER_OCTAVE:g}], got {value!r}")
    return bpo


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
    per_image : ndarray or None
        ``(N, n_bins)`` per-image spectra when kept.
    power_sq : ndarray or None
        Mean over images of the annulus mean of the squared power (set by
        :func:`radial_spectrum`): the spread of the power within each annulus, which
        :func:`periodogram_test` compares with the design's.
    bins_per_octave, f_min_cpp : float or None
        The binning (set by :func:`radial_spectrum`); with them the DFT samples of every bin
        are known, which :func:`periodogram_test` uses. Spectra built by hand without them
        are matched against the default binnings (24 and 12 bins per octave from one cycle
        per image).
    """

    freq_cpp: np.ndarray
    power: np.ndarray
    power_std: np.ndarray
    counts: np.ndarray
    n_images: int
    shape_px: tuple[int, int]
    ppd: float | None = None
    per_image: np.ndarray | None = field(default=None, repr=False)
    bins_per_octave: float | None = None
    f_min_cpp: float | None = None
    power_sq: np.ndarray | None = field(default=None, repr=False)

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


def _binning_of(spec: RadialSpectrum) -> _Binning | None:
    """The DFT-sample binning of a spectrum, or None when it matches no known binning."""
    h, w = (int(s) for s in spec.shape_px)
    if min(h, w) < 2:
        return None
    f_default = 1.0 / min(h, w)
    candidates: list[tuple[float, float]] = []
    if spec.bins_per_octave is not None:
        candidates.append((float(spec.bins_per_octave), float(spec.f_min_cpp or f_default)))
    candidates += [(24.0, f_default), (12.0, f_default)]
    for bpo, f_lo in candidates:
        try:
            b = _binning((h, w), bpo, f_lo)
        except ValueError:
            continue
        if (
            len(b.counts) == len(spec.counts)
            and np.array_equal(b.counts, np.asarray(spec.counts, dtype=float))
            and np.allclose(b.freq, spec.freq_cpp, rtol=1e-9, atol=0.0)
        ):
            return b
    return None


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
        Finite real image(s), at least 8 x 8 px; the mean of each is removed.
    ppd : float or ViewingGeometry, optional
        Pixels per degree, for frequencies in cycles/degree.
    bins_per_octave : float
        Log-spaced bin density (default 12; at most 1000). Bins without DFT samples are
        dropped.
    f_min_cpp : float, optional
        Lowest bin edge in cycles/pixel, in (0, 0.5) (default: one cycle per image,
        ``1 / min(H, W)``).
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
    bpo = _check_bins_per_octave(bins_per_octave)
    f_lo = (1.0 / min(h, w)) if f_min_cpp is None else v.in_range("f_min_cpp", f_min_cpp, 0.0, 0.5, low_inclusive=False, high_inclusive=False)
    b = _binning((int(h), int(w)), bpo, f_lo)
    nb = len(b.counts)
    per_image = []
    sq = np.zeros(nb)
    for pg in _periodograms(a, workers):
        for img in pg:
            vals = img[b.valid]
            per_image.append(np.bincount(b.index, weights=b.weights * vals, minlength=nb) / b.counts)
            with np.errstate(over="ignore", under="ignore"):  # only its ratios are used
                sq += np.bincount(b.index, weights=b.weights * vals * vals, minlength=nb) / b.counts
    per = np.asarray(per_image)
    return RadialSpectrum(
        freq_cpp=b.freq.copy(),
        power=per.mean(axis=0),
        power_std=per.std(axis=0, ddof=1) if per.shape[0] > 1 else np.zeros(per.shape[1]),
        counts=b.counts.copy(),
        n_images=a.shape[0],
        shape_px=(int(h), int(w)),
        ppd=p,
        per_image=per if keep_per_image else None,
        bins_per_octave=bpo,
        f_min_cpp=f_lo,
        power_sq=sq / a.shape[0],
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
    if nb > 3600:
        raise ValueError(f"n_bins must be an integer in [2, 3600], got {n_bins!r}")
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
    not_measurable : dict
        ``{level: {"low" | "high": reason}}`` for edges that could not be measured at this
        image size (or not at all), with the reason; empty when every edge was measured.
    spectrum : RadialSpectrum or None
        The spectrum measured (used by :func:`compare_to_design` for its statistical test).
    wall_bounds_cpp : dict
        ``{level: {"low" | "high": (a, b)}}`` for edges at a brick wall (ideal filters): the
        wall lies somewhere between the last DFT radius that passes and the first that is
        blocked, ``a < wall <= b`` in cycles/pixel; the edge reported is the radius on the
        passing side.
    """

    peak_cpp: float
    edges_cpp: dict[str, tuple[float, float]]
    peak_power: float
    ppd: float | None = None
    not_measurable: dict[str, dict[str, str]] = field(default_factory=dict)
    spectrum: RadialSpectrum | None = field(default=None, repr=False, compare=False)
    wall_bounds_cpp: dict[str, dict[str, tuple[float, float]]] = field(default_factory=dict)

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
        """Measured octave bandwidth at ``level`` (inf when an edge is missing)."""
        lo, hi = self.edges_cpp[v.choice("level", level, LEVELS)]
        return math.log2(hi / lo) if lo > 0 and math.isfinite(hi) else math.inf

    def to_dict(self) -> dict[str, Any]:
        """``{"peak_cpd", "half_amplitude": {"band_cpd", "octaves"[, "not_measurable"]}, ...}``."""
        d: dict[str, Any] = {"peak_cpp": self.peak_cpp, "peak_power": self.peak_power}
        if self.ppd is not None:
            d["ppd"] = self.ppd
            d["peak_cpd"] = self.peak_cpd
        for level, (lo, hi) in self.edges_cpp.items():
            entry: dict[str, Any] = {"band_cpp": [lo, hi], "octaves": self.octaves(level)}
            if self.ppd is not None:
                entry["band_cpd"] = [lo * self.ppd, hi * self.ppd]
            if self.not_measurable.get(level):
                entry["not_measurable"] = dict(self.not_measurable[level])
            if self.wall_bounds_cpp.get(level):
                entry["wall_bounds_cpp"] = {k: list(b) for k, b in self.wall_bounds_cpp[level].items()}
            d[level] = entry
        return d


class _Curve:
    """Log power as a smooth function of log2 frequency: a local quadratic regression.

    At each point the fit weighs the bins by their DFT sample counts and a Gaussian kernel
    in log frequency whose width is ``smooth_octaves`` or, where the bins are sparser (low
    frequencies), the distance to the third-nearest bin, so the fit uses the actual radii
    of the DFT samples however far apart they are. A local quadratic is unbiased for
    quadratic log spectra (log-Gaussian) and nearly so for the others, and it does not
    smear a brick wall: bins on the two sides of a wall (a drop of more than a factor
    1e4 between neighbouring bins) are fitted separately.
    """

    def __init__(self, u: np.ndarray, ly: np.ndarray, weight: np.ndarray, h_min: float, min_weight: float = 0.0) -> None:
        self.u, self.ly, self.weight, self.h_min, self.min_weight = u, ly, weight, h_min, min_weight
        jump = np.abs(np.diff(ly)) > math.log(1e4)
        self.segment = np.concatenate([[0], np.cumsum(jump)])
        self.h_bins = self._bandwidth(u, self.segment)

    def _bandwidth(self, t: np.ndarray, seg: np.ndarray) -> np.ndarray:
        """Kernel width at ``t``: ``h_min``, widened to the third-nearest bin (and to hold
        ``min_weight`` samples, up to ``_MAX_WIDEN_OCTAVES``)."""
        same = self.segment[None, :] == seg[:, None]
        ad = np.where(same, np.abs(self.u[None, :] - t[:, None]), np.inf)
        n_same = same.sum(axis=1)
        k = np.minimum(n_same, 3) - 1
        order = np.argsort(ad, axis=1)
        part = np.take_along_axis(ad, order, axis=1)
        h = np.maximum(self.h_min, part[np.arange(len(t)), np.maximum(k, 0)])
        if self.min_weight > 0:  # widen until the kernel holds enough DFT samples
            cum = np.cumsum(np.where(np.isfinite(part), self.weight[order], 0.0), axis=1)
            j = np.minimum(np.argmax(cum >= self.min_weight, axis=1), np.maximum(n_same - 1, 0))
            j = np.where(cum[:, -1] >= self.min_weight, j, np.maximum(n_same - 1, 0))
            h = np.maximum(h, np.minimum(part[np.arange(len(t)), j], _MAX_WIDEN_OCTAVES))
        return np.where(np.isfinite(h) & (h > 0), h, 1.0)

    def __call__(self, t: Any, segment: Any) -> np.ndarray:
        t = np.atleast_1d(np.asarray(t, dtype=float))
        seg = np.broadcast_to(np.asarray(segment), t.shape)
        same = self.segment[None, :] == seg[:, None]
        d = self.u[None, :] - t[:, None]
        ad = np.where(same, np.abs(d), np.inf)
        n_same = same.sum(axis=1)
        # the width between bins: interpolated from the bins of the same segment
        h = np.empty(len(t))
        for sgm in np.unique(seg):
            sel = seg == sgm
            own = self.segment == sgm
            h[sel] = np.interp(t[sel], self.u[own], self.h_bins[own])
        z = np.where(same, d / h[:, None], 0.0)
        kern = np.where(same, self.weight[None, :] * np.exp(-0.5 * z * z), 0.0)
        zk, s, r = kern, [], []
        for j in range(5):
            s.append(zk.sum(axis=1))
            if j < 3:
                r.append(zk @ self.ly)
            zk = zk * z
        deg = np.minimum(2, n_same - 1)
        out = self.ly[np.argmin(ad, axis=1)].astype(float)  # degree 0: the nearest bin
        for d in (1, 2):
            q = np.nonzero(deg == d)[0]
            if q.size == 0:
                continue
            m = np.stack([np.stack([s[i + j][q] for j in range(d + 1)], axis=-1) for i in range(d + 1)], axis=-2)
            rhs = np.stack([r[i][q] for i in range(d + 1)], axis=-1)
            ok = np.abs(np.linalg.det(m)) > 1e-12 * np.abs(m[:, 0, 0]) ** (d + 1)
            if np.any(ok):
                out[q[ok]] = np.linalg.solve(m[ok], rhs[ok][..., None])[:, 0, 0]
        return out


class _SplineCurve:
    """Log power through noise-free bins: a cubic spline (not-a-knot) per wall-free segment.

    It passes through every bin (the spectrum of exact-spectrum noise is the design at the
    DFT radii, nothing to smooth) and reproduces quadratic log spectra exactly.
    """

    def __init__(self, u: np.ndarray, ly: np.ndarray, segment: np.ndarray) -> None:
        from scipy.interpolate import CubicSpline

        self.u, self.ly, self.segment = u, ly, segment
        self.parts: dict[int, Any] = {}
        for sgm in np.unique(segment):
            sel = segment == sgm
            uu, yy = u[sel], ly[sel]
            if len(uu) >= 4:
                self.parts[int(sgm)] = CubicSpline(uu, yy, bc_type="not-a-knot", extrapolate=True)
            elif len(uu) >= 2:
                self.parts[int(sgm)] = np.poly1d(np.polyfit(uu, yy, len(uu) - 1))
            else:
                self.parts[int(sgm)] = np.poly1d([float(yy[0])])

    def __call__(self, t: Any, segment: Any) -> np.ndarray:
        t = np.atleast_1d(np.asarray(t, dtype=float))
        seg = np.broadcast_to(np.asarray(segment), t.shape)
        out = np.empty(len(t))
        for sgm in np.unique(seg):
            sel = seg == sgm
            out[sel] = self.parts[int(sgm)](t[sel])
        return out


def _bin_radii(binning: _Binning | None, k: int) -> tuple[np.ndarray, np.ndarray] | None:
    if binning is None:
        return None
    sel = binning.index == k
    r, w = binning.radius[sel], binning.weights[sel]
    order = np.argsort(r, kind="stable")
    return r[order], w[order]


def _wall_edge(
    x: np.ndarray, y: np.ndarray, inside: int, outside: int, step: int, peak_y: float, target: float,
    binning: _Binning | None,
) -> tuple[float, tuple[float, float]]:
    """Edge of a brick wall between bin ``inside`` (>= target) and ``outside`` (< target).

    With the DFT samples of the bins known, the wall is put at the last DFT radius that
    passes: the outermost radius of the inside bin, or, when one of the two bins is partly
    filled (the wall runs through it), the radius below which that bin holds its measured
    fraction of the plateau power. Otherwise log-log interpolation between the two bins.
    Also returns the interval of wall positions consistent with the samples: from the last
    passing DFT radius to the first blocked one.
    """
    beyond = outside + step
    frac_out = y[outside] / peak_y
    frac_in = y[inside] / peak_y
    partial: tuple[int, float] | None = None
    if frac_out > 1e-4 and (not 0 <= beyond < len(y) or y[beyond] <= _WALL * peak_y):
        partial = (outside, frac_out)
    elif frac_in < 0.97:
        partial = (inside, frac_in)
    if partial is not None:
        got = _bin_radii(binning, partial[0])
        if got is not None:
            r, w = got
            if step < 0:  # low edge: the passing samples are the outer ones
                r, w = r[::-1], w[::-1]
            cum = np.cumsum(w) / np.sum(w)
            i = min(int(np.searchsorted(cum, min(max(partial[1], 0.0), 1.0) - 1e-9)), len(r) - 1)
            nxt = r[i + 1] if i + 1 < len(r) else _next_radius(binning, partial[0] + step, step, r[i])
            return float(r[i]), (float(min(r[i], nxt)), float(max(r[i], nxt)))
    else:
        got = _bin_radii(binning, inside)
        if got is not None:
            edge = float(got[0][-1] if step > 0 else got[0][0])
            nxt = _next_radius(binning, outside, step, edge)
            return edge, (min(edge, nxt), max(edge, nxt))
    ly0, ly1 = math.log(max(y[inside], 1e-300)), math.log(max(y[outside], 1e-300))
    lx0, lx1 = math.log(x[inside]), math.log(x[outside])
    t = (math.log(target) - ly0) / (ly1 - ly0) if ly1 != ly0 else 0.0
    return math.exp(lx0 + t * (lx1 - lx0)), (float(min(x[inside], x[outside])), float(max(x[inside], x[outside])))


def _next_radius(binning: _Binning | None, k: int, step: int, default: float) -> float:
    """The DFT radius of bin ``k`` nearest to the previous bin (walking by ``step``)."""
    got = _bin_radii(binning, k) if binning is not None and 0 <= k < len(binning.counts) else None
    if got is None or len(got[0]) == 0:
        return default
    return float(got[0][0] if step > 0 else got[0][-1])


def _edge(
    curve: _Curve | _SplineCurve, sv: np.ndarray, x: np.ndarray, y: np.ndarray, i: int, step: int, peak_y: float,
    target: float, binning: _Binning | None,
) -> tuple[float | None, tuple[float, float] | None]:
    """First crossing of ``target`` walking from the peak bin ``i`` by ``step``."""
    lt = math.log(target)
    j = i
    while 0 <= j + step < len(x):
        k = j + step
        if sv[k] <= lt:
            nxt = k + step
            wall = curve.segment[j] != curve.segment[k] or y[k] <= _WALL * peak_y or (
                0 <= nxt < len(y) and y[nxt] <= _WALL * peak_y and y[k] < target
            )
            if wall:
                return _wall_edge(x, y, j, k, step, peak_y, target, binning)
            seg = int(curve.segment[j])
            a, b = float(curve.u[j]), float(curve.u[k])
            for _ in range(2):  # the first crossing from the peak side, on ever finer grids
                t = np.linspace(a, b, 33)
                gt = curve(t, seg) - lt
                below = np.nonzero(gt <= 0)[0]
                if below.size == 0 or below[0] == 0:
                    break
                a, b = float(t[below[0] - 1]), float(t[below[0]])
            else:
                ga, gb = float(curve(a, seg)[0]) - lt, float(curve(b, seg)[0]) - lt
                frac = ga / (ga - gb) if ga != gb else 0.0
                return float(2.0 ** (a + frac * (b - a))), None
            frac = (sv[j] - lt) / (sv[j] - sv[k]) if sv[j] != sv[k] else 0.0
            return float(2.0 ** (curve.u[j] + frac * (curve.u[k] - curve.u[j]))), None
        j = k
    return None, None


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
        Smallest width (standard deviation, octaves, in [0, 2]) of the local quadratic fit
        of log power against log frequency (default 1/12). Where the DFT radii are sparser
        (low frequencies) the fit widens to the third-nearest bin. 0 fits through the
        nearest bins only (for spectra without sampling noise).

    Returns
    -------
    MeasuredBand
        Peak (the maximum of the fitted log spectrum) and edges at half amplitude (power
        1/4) and half power (power 1/2), the first crossings of the fit walking outwards
        from the peak. At a brick wall (the power falls by more than 1e6 just beyond the
        crossing) the edge is the last DFT radius that passes. Edges below
        ``MIN_CYCLES_PER_IMAGE`` cycles per image, or missing, are listed in
        ``not_measurable`` with the reason.

    Notes
    -----
    On exact-spectrum noise (``kind="flat"``) the edges and peak of every family are within
    1 % of the design when the low edge lies at 3 or more cycles per image, and within 2 %
    from 2 cycles per image (brick walls: within the spacing of the DFT radii).
    """
    if isinstance(images, RadialSpectrum):
        spec = images
        p = spec.ppd if ppd is None else as_ppd(ppd)
    else:
        p = None if ppd is None else as_ppd(ppd)
        spec = radial_spectrum(images, ppd=p, bins_per_octave=bins_per_octave, workers=workers)
    sm = v.in_range("smooth_octaves", smooth_octaves, 0.0, 2.0)
    x = np.asarray(spec.freq_cpp, dtype=float)
    y = np.asarray(spec.power, dtype=float)
    counts = np.asarray(spec.counts, dtype=float)
    if x.ndim != 1 or x.shape != y.shape or x.shape != counts.shape or len(x) == 0:
        raise ValueError("the spectrum's freq_cpp, power and counts must be 1-D arrays of one length")
    if not (np.all(np.isfinite(y)) and np.all(np.isfinite(x)) and np.all(x > 0)):
        raise ValueError("the spectrum holds NaN, infinite or non-positive frequencies or powers")
    if not np.any(y > 0):
        raise ValueError("the spectrum is zero everywhere: nothing to measure")
    order = np.argsort(x, kind="stable")
    if not np.array_equal(order, np.arange(len(x))):
        x, y, counts = x[order], y[order], counts[order]
    binning = _binning_of(spec) if np.array_equal(order, np.arange(len(x))) else None
    top = float(np.max(y))
    ly = np.log(np.maximum(y, top * _FLOOR))
    u = np.log2(x)
    smooth = _Curve(u, ly, np.maximum(counts, 1e-12), sm)
    sv = smooth(u, smooth.segment)
    # noise-free spectra (exact-spectrum noise, designs) are interpolated, not smoothed:
    # sampling noise of the log annulus mean is about 1 / sqrt(counts * n_images / 2)
    inband = y > top * 1e-3
    scale_noise = np.sqrt(counts * max(spec.n_images, 1) / 2.0)
    noise_ratio = float(np.median(np.abs(ly - sv)[inband] * scale_noise[inband]))
    if len(u) >= 3:  # also: deviation of each bin from the line through its neighbours
        du = u[2:] - u[:-2]
        dev = ly[1:-1] - (ly[:-2] + (ly[2:] - ly[:-2]) * (u[1:-1] - u[:-2]) / np.where(du > 0, du, 1.0))
        mid = inband[1:-1] & inband[:-2] & inband[2:]
        if np.any(mid):
            noise_ratio = min(noise_ratio, float(np.median(np.abs(dev[mid]) * scale_noise[1:-1][mid])))
    curve: _Curve | _SplineCurve
    if noise_ratio < 0.05:
        curve = _SplineCurve(u, ly, smooth.segment)
        sv = ly.copy()
    else:  # sampling noise: widen the fit where the bins hold few DFT samples
        curve = _Curve(u, ly, counts * max(spec.n_images, 1), sm, min_weight=_MIN_SAMPLES)
        sv = curve(u, curve.segment)
    i = int(np.argmax(sv))
    seg = int(curve.segment[i])
    peak_u, peak_l = float(u[i]), float(sv[i])
    lo_u = u[i - 1] if i > 0 and curve.segment[i - 1] == seg else u[i]
    hi_u = u[i + 1] if i < len(u) - 1 and curve.segment[i + 1] == seg else u[i]
    a_u, b_u = float(lo_u), float(hi_u)
    for _ in range(4):  # the maximum of the fit, on ever finer grids
        if not b_u > a_u:
            break
        t = np.linspace(a_u, b_u, 33)
        val = curve(t, seg)
        q = int(np.argmax(val))
        if val[q] > peak_l:
            peak_u, peak_l = float(t[q]), float(val[q])
        step_u = t[1] - t[0]
        a_u, b_u = max(float(lo_u), float(t[q]) - step_u), min(float(hi_u), float(t[q]) + step_u)
    # on noisy spectra the fitted maximum of a flat top wanders: a parabola through the top
    # (>= 95 % of the maximum), weighted by the samples per bin, is steadier there
    noisy = isinstance(curve, _Curve)
    lo_i, hi_i = i, i
    while lo_i > 0 and sv[lo_i - 1] >= peak_l + math.log(_TOP) and curve.segment[lo_i - 1] == seg:
        lo_i -= 1
    while hi_i < len(x) - 1 and sv[hi_i + 1] >= peak_l + math.log(_TOP) and curve.segment[hi_i + 1] == seg:
        hi_i += 1
    if noisy and hi_i - lo_i >= 3:
        sl = slice(lo_i, hi_i + 1)
        c2, c1, _ = np.polyfit(u[sl], sv[sl], 2, w=np.sqrt(counts[sl]))
        if c2 < 0 and u[lo_i] <= -c1 / (2 * c2) <= u[hi_i]:
            peak_u = float(-c1 / (2 * c2))
    peak_x, peak_y = float(2.0**peak_u), float(math.exp(peak_l))
    n_min = min(int(s) for s in spec.shape_px)
    edges: dict[str, tuple[float, float]] = {}
    notes: dict[str, dict[str, str]] = {}
    bounds: dict[str, dict[str, tuple[float, float]]] = {}
    for level, frac in LEVELS.items():
        target = peak_y * frac**2
        lo, lo_bounds = _edge(curve, sv, x, y, i, -1, peak_y, target, binning)
        hi, hi_bounds = _edge(curve, sv, x, y, i, +1, peak_y, target, binning)
        walls = {k: b for k, b in (("low", lo_bounds), ("high", hi_bounds)) if b is not None}
        if walls:
            bounds[level] = walls
        note: dict[str, str] = {}
        if lo is None:
            note["low"] = (
                f"the power does not fall to {frac**2:g} of its peak between the peak and "
                f"{x[0] * n_min:.3g} cycles per image (the lowest frequency measured)"
            )
        elif lo * n_min < MIN_CYCLES_PER_IMAGE * (1 - 1e-6):
            note["low"] = (
                f"not measurable at this image size: the low edge lies at {lo * n_min:.3g} "
                f"cycles per image, below {MIN_CYCLES_PER_IMAGE:g}, where the DFT radii "
                "(1, 1.41, 2 cycles per image) are too far apart to locate it"
            )
        if hi is None:
            note["high"] = f"the power does not fall to {frac**2:g} of its peak below Nyquist"
        if note:
            notes[level] = note
        edges[level] = (0.0 if lo is None else lo, math.inf if hi is None else hi)
    return MeasuredBand(peak_x, edges, peak_y, p, notes, spec, bounds)


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
# Measurability of a band on a DFT grid
# =========================================================================================
def _as_passband(band: Any, ppd: float | None, level: str) -> Passband:
    if isinstance(band, Passband):
        return band
    if isinstance(band, Filter):
        radial = radial_part(band)
        if radial is None:
            raise ValueError("an orientation window alone has no radial band to measure")
        return radial.passband(level)
    if ppd is None:
        raise ValueError("a band given as (low, high) in cpd needs ppd")
    lo, hi = v.pair("band", band)
    if not (math.isfinite(lo) and 0 < lo < hi):
        raise ValueError(f"band must be [low, high] in cpd with 0 < low < high, got {band!r}")
    return Passband("bandpass", level, math.sqrt(lo * hi) / ppd, lo / ppd, hi / ppd, 1.0)


def measurability(
    band: Any,
    shape_px: Any,
    ppd: float | ViewingGeometry | None = None,
    *,
    level: str = "half_amplitude",
) -> dict[str, Any]:
    """Which edges of a band can be measured on the DFT grid of an image.

    Parameters
    ----------
    band : Filter, Passband or (float, float)
        The designed band: a filter (its radial part), a passband, or edges in cpd.
    shape_px : (int, int)
        Image height and width in pixels.
    ppd : float or ViewingGeometry, optional
        Pixels per degree (for messages in cpd, and needed for a band in cpd).
    level : {"half_amplitude", "half_power"}
        Level of the edges.

    Returns
    -------
    dict
        ``measurable`` (bool: every edge can be measured to the stated accuracy),
        ``refuse`` (list of reasons why an edge cannot be measured at all: a low edge at or
        below one cycle per image, a high edge at or above the highest DFT frequency below
        Nyquist), ``low`` and ``high`` (None, or why that edge is not measurable),
        ``low_cycles_per_image`` and ``high_cpp``. A low edge between 1 and
        ``MIN_CYCLES_PER_IMAGE`` cycles per image is *not measurable at this image size*
        (listed in ``low``, not in ``refuse``): the stimulus is valid and is still tested
        statistically, but its edge cannot be located to 3 %.
    """
    p = None if ppd is None else as_ppd(ppd)
    try:
        h, w = (v.positive_int("shape_px", s) for s in shape_px)
    except TypeError:
        raise ValueError(f"shape_px must be (height, width), got {shape_px!r}") from None
    pb = _as_passband(band, p, v.choice("level", level, LEVELS))
    n = min(h, w)
    unit, k = ("cpd", p) if p is not None else ("cycles/pixel", 1.0)
    fy, fx = frequency_grid_cpp((h, w), True)
    f = np.hypot(fx, fy)
    r_max = float(np.max(f[f <= 0.5 * (1 + 1e-12)]))
    out: dict[str, Any] = {
        "low": None, "high": None, "refuse": [],
        "low_cycles_per_image": pb.low_cpp * n, "high_cpp": pb.high_cpp,
    }
    if pb.kind != "lowpass" and pb.low_cpp > 0:
        c = pb.low_cpp * n
        if pb.low_cpp <= (1.0 / n) * (1 + 1e-9):
            why = (
                f"low edge {pb.low_cpp * k:.4g} {unit} is at or below one cycle per image "
                f"({k / n:.4g} {unit} for {n} px): no DFT sample of the spectrum lies below it"
            )
            out["low"] = why
            out["refuse"].append(why)
        elif c < MIN_CYCLES_PER_IMAGE * (1 - 1e-9):
            out["low"] = (
                f"not measurable at this image size: low edge {pb.low_cpp * k:.4g} {unit} is "
                f"{c:.3g} cycles per image, below {MIN_CYCLES_PER_IMAGE:g} "
                f"({MIN_CYCLES_PER_IMAGE * k / n:.4g} {unit}), where the DFT radii are too "
                "sparse to locate it within 3 %"
            )
    if math.isfinite(pb.high_cpp) and pb.high_cpp >= r_max * (1 - 1e-9):
        why = (
            f"high edge {pb.high_cpp * k:.4g} {unit} is not below the highest DFT frequency "
            f"within Nyquist ({r_max * k:.4g} {unit}; Nyquist {0.5 * k:.4g} {unit}): no DFT "
            "sample lies above it, so the fall of the power cannot be seen"
        )
        out["high"] = why
        out["refuse"].append(why)
    out["measurable"] = out["low"] is None and out["high"] is None
    out["reason"] = "; ".join(r for r in (out["low"], out["high"]) if r) or None
    return out


def check_measurable(
    band: Any,
    shape_px: Any,
    ppd: float | ViewingGeometry | None = None,
    *,
    level: str = "half_amplitude",
) -> None:
    """Raise ``ValueError`` if an edge of ``band`` cannot be measured on the image's DFT grid.

    The message gives both numbers (the edge and the limit). Edges that can be seen but not
    located to 3 % (a low edge below ``MIN_CYCLES_PER_IMAGE`` cycles per image) do not
    raise; :func:`measurability` reports them. Arguments as for :func:`measurability`.
    """
    m = measurability(band, shape_px, ppd, level=level)
    if m["refuse"]:
        raise ValueError("band cannot be verified on this image: " + "; ".join(m["refuse"]))


# =========================================================================================
# Comparison with a design
# =========================================================================================
def _design_frequency_scale(spec: RadialSpectrum, radial: Filter) -> float | None:
    """The factor ``k`` for which ``s |H(f / k)|^2`` best fits the measured radial power.

    Least squares on log power over the bins with samples where the scaled design is above
    1e-3 of its maximum, the scale ``s`` solved in closed form for each ``k``
    (bounded search over ``k`` in [0.5, 2]). A measured edge is then ``k`` times the
    designed one: this is how one-sided (low- and high-pass) designs are located, since
    their reference level cannot be read off a noisy lowest or highest bin. None when too
    few bins hold power.
    """
    from scipy.optimize import minimize_scalar

    f = np.asarray(spec.freq_cpp, dtype=np.float64)
    pw = np.asarray(spec.power, dtype=np.float64)
    w = np.asarray(spec.counts, dtype=np.float64)
    ok = np.isfinite(pw) & (pw > 0) & (w > 0) & (f > 0)
    if np.count_nonzero(ok) < 4:
        return None
    f, lp, w = f[ok], np.log(pw[ok]), w[ok]

    def cost(k: float) -> float:
        h2 = np.asarray(radial.transfer(f / k), dtype=np.float64) ** 2
        use = h2 > 1e-3 * h2.max()
        if np.count_nonzero(use) < 3:
            return math.inf
        r = lp[use] - np.log(h2[use])
        ww = w[use]
        c = np.sum(ww * r) / np.sum(ww)
        return float(np.sum(ww * (r - c) ** 2) / np.sum(ww))

    res = minimize_scalar(cost, bounds=(0.5, 2.0), method="bounded", options={"xatol": 1e-6})
    return float(res.x) if res.success and math.isfinite(res.fun) else None


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


def _probit_of_gamma(ratio: np.ndarray, nu: np.ndarray) -> np.ndarray:
    """``z`` with ``Phi(z) = P(chi2_nu / nu <= ratio)``, accurate in both tails."""
    a = nu / 2.0
    lower = special.gammainc(a, a * ratio)
    upper = special.gammaincc(a, a * ratio)
    z = np.where(lower < 0.5, special.ndtri(np.maximum(lower, 1e-300)), -special.ndtri(np.maximum(upper, 1e-300)))
    return np.clip(z, -38.0, 38.0)


def periodogram_test(
    spectrum: RadialSpectrum,
    filt: Filter,
    *,
    rms_contrast: float | None = None,
    kind: str = "gaussian",
    false_alarm_rate: float = FALSE_ALARM_RATE,
) -> dict[str, Any]:
    """Test a measured radial spectrum against a filter's designed power ``|H|^2``.

    For noise made by filtering white noise, each DFT sample's power is exponentially
    distributed (chi-square with 2 degrees of freedom, halved) around
    ``mu = H W c^2 |H|^2 / sum |H|^2`` (``c`` the RMS contrast, the sum over the full DFT
    grid without DC); the samples of the DC, Nyquist row and column are real (1 degree of
    freedom) and the two halves of the spectrum are mirror images (counted once). The sum
    of the powers in an annulus bin is then a weighted sum of chi-square variables, taken
    as a scaled chi-square with ``nu = (sum mu)^2 / sum mu^2`` degrees of freedom
    (Satterthwaite; exact when ``mu`` is constant over the bin). Each bin tested (designed
    power at least 1 % of the peak) is turned into a standard normal ``z`` through its
    gamma distribution function, and ``sum z^2`` is compared with chi-square with (bins - 1)
    degrees of freedom: the stimulus fails when its p-value is below ``false_alarm_rate``.

    Parameters
    ----------
    spectrum : RadialSpectrum
        From :func:`radial_spectrum` (one image or the mean of several).
    filt : Filter
        The design, with any orientation window (the full 2-D response is used).
    rms_contrast : float, optional
        Designed RMS contrast: the scale of ``mu`` is fixed by it, so a wrong contrast
        fails. Without it the scale is fitted (maximum likelihood) and only the shape of
        the spectrum is tested.
    kind : {"gaussian", "uniform", "binary", "flat"}
        White noise fed to the filter. Uniform and binary noise have Gaussian DFT samples
        to within ``O(1 / (H W))`` (central limit theorem) and use the same test. "flat"
        (exact spectrum, no sampling variance) is tested for equality instead: every bin
        within 1 % of the design.
    false_alarm_rate : float
        Probability, in (0, 0.5], that a correct stimulus fails (default 0.001).

    Returns
    -------
    dict
        ``pass`` (bool, or None when fewer than 2 bins can be tested), ``p_value``,
        ``statistic``, ``dof``, ``false_alarm_rate``, ``n_bins``, ``n_images``,
        ``n_images_effective`` (images whose spectra are identical, such as the frames of a
        drifting pattern, count once), ``scale`` ("rms_contrast" or "fitted"),
        ``power_ratio`` (fitted over designed power; 1 for a correct contrast, only with
        ``rms_contrast``), ``worst`` (frequency in cpp, observed/expected ratio and z of
        the bin furthest off), ``dispersion`` (spread of the power over what the design
        implies; above 1 the degrees of freedom are divided by it), ``anisotropic`` (True
        when an isotropic design was given for a stimulus with orientation structure: then
        :func:`compare_to_design` decides by the edge tolerance), ``binning`` ("exact" when the DFT samples of every bin are
        known, else "approximate": the design evaluated at the bin frequencies), ``method``
        and ``reason``.
    """
    if not isinstance(spectrum, RadialSpectrum):
        raise ValueError(f"spectrum must be a RadialSpectrum, got {type(spectrum).__name__}")
    if not isinstance(filt, Filter):
        raise ValueError(f"filt must be a stimgen filter, got {type(filt).__name__}")
    alpha = v.in_range("false_alarm_rate", false_alarm_rate, 0.0, 0.5, low_inclusive=False)
    kind = v.choice("kind", kind, ("gaussian", "uniform", "binary", "flat"))
    h, w = (int(s) for s in spectrum.shape_px)
    grid = np.asarray(filt.grid((h, w), real=True, dtype=np.float64), dtype=np.float64) ** 2
    weights = _rfft_weights((h, w))
    total = float(np.sum(weights * grid) - grid[0, 0])
    if not total > 0:
        raise ValueError("the filter passes nothing on this image's DFT grid")
    counts = np.asarray(spectrum.counts, dtype=float)
    b = _binning_of(spectrum)
    rest_var = None  # variance of the design power outside the bins (for the contrast test)
    if b is not None:
        gv = grid[b.valid]
        rest = ~b.valid.copy()
        rest[0, 0] = False
        rest_var = float(np.sum(2.0 * weights[rest] * grid[rest] ** 2))
        e1 = np.bincount(b.index, weights=b.weights * gv, minlength=len(counts))
        e2 = np.bincount(b.index, weights=b.weights * gv * gv, minlength=len(counts))
        binning = "exact"
    else:
        radial = radial_part(filt)
        if radial is None:
            raise ValueError("an orientation window alone has no radial design to test")
        g = np.asarray(radial.transfer(spectrum.freq_cpp), dtype=float) ** 2
        e1, e2 = counts * g, counts * g * g
        binning = "approximate"
    mean_design = e1 / counts
    test = (mean_design >= _TEST_LEVEL * float(np.max(mean_design))) & (e2 > 0)
    obs = np.asarray(spectrum.power, dtype=float) * counts
    n = int(spectrum.n_images)
    out: dict[str, Any] = {
        "method": "exact" if kind == "flat" else "chi-square of probit-transformed annulus powers",
        "false_alarm_rate": alpha, "n_bins": int(np.count_nonzero(test)), "n_images": n,
        "binning": binning, "scale": "fitted" if rms_contrast is None else "rms_contrast",
    }
    e1t, e2t, obst = e1[test], e2[test], obs[test]
    nu1 = e1t**2 / e2t
    # the scale: from the designed contrast, or fitted (maximum likelihood for gammas)
    fitted = float(np.sum(nu1 * obst / e1t) / np.sum(nu1))
    if rms_contrast is None:
        scale = fitted
    else:
        c = v.in_range("rms_contrast", rms_contrast, 0.0, 1e6, low_inclusive=False)
        scale = h * w * c * c / total
        out["power_ratio"] = fitted / scale
        alpha = alpha / 2.0  # Bonferroni: half for the shape, half for the contrast
    expected = scale * e1t
    ratio = obst / expected
    # The spread of the power, compared with what the design implies at the measured level
    # of each bin (so a wrong radial profile does not enter): over images, a spread below it
    # means the images are not independent (the frames of a drifting pattern), and a spread
    # above it within annuli or over images means structure the design lacks (an orientation
    # window left out of ``filt``), which widens the distribution (over-dispersion).
    shape_var = 2.0 * e2t / e1t**2  # variance / mean^2 of one image's annulus sum
    n_eff, dispersion = float(n), 1.0
    mean_t = obst / counts[test]
    if n > 1:
        want = float(np.sum(shape_var * mean_t**2))
        spread = float(np.sum(np.asarray(spectrum.power_std, dtype=float)[test] ** 2) / want) if want > 0 else 1.0
        n_eff = n / (1.0 + (n - 1) * (1.0 - min(max(spread, 0.0), 1.0)))
        dispersion = max(dispersion, spread)
    if spectrum.power_sq is not None:
        with np.errstate(over="ignore", under="ignore"):
            q = np.asarray(spectrum.power_sq, dtype=float)[test] * counts[test]  # sum of w P^2, per image
            want_q = float(np.sum(2.0 * e2t * (obst / e1t) ** 2))
        if want_q > 0 and math.isfinite(want_q) and np.all(np.isfinite(q)):
            within = float(np.sum(q)) / want_q
            dispersion = max(dispersion, within)
            # an isotropic design, but power concentrated at some orientations: the design
            # given lacks the stimulus' orientation window, so the annulus means cannot be
            # predicted from it (the sample sd of the ratio is about sqrt(10 / samples))
            n_samples = float(np.sum(counts[test])) * n_eff
            limit = max(1.3, 1.0 + 4.0 * math.sqrt(10.0 / max(n_samples, 1.0)))
            out["anisotropic"] = bool(filt.radial and not isinstance(filt, Product) and within > limit)
    out.setdefault("anisotropic", False)
    out["n_images_effective"] = n_eff
    out["dispersion"] = dispersion
    freq = np.asarray(spectrum.freq_cpp, dtype=float)[test]
    if kind == "flat":
        dev = np.abs(ratio - 1.0)
        k = int(np.argmax(dev)) if dev.size else 0
        out.update(statistic=float(dev.max()) if dev.size else 0.0, dof=None, p_value=None,
                   tolerance=_EXACT_TOLERANCE)
        if dev.size:
            out["worst"] = {"freq_cpp": float(freq[k]), "ratio": float(ratio[k]), "z": None}
        if dev.size == 0:
            out.update({"pass": None, "reason": "no DFT bin of this image lies in the designed band"})
        else:
            ok = bool(dev.max() <= _EXACT_TOLERANCE)
            out["pass"] = ok
            out["reason"] = (
                f"exact spectrum: every bin within {_EXACT_TOLERANCE:.0%} of the design (worst {dev.max():.3g})"
                if ok else f"exact spectrum: a bin at {freq[k]:.4g} cpp is {ratio[k]:.4g} times the design "
                f"(allowed 1 +- {_EXACT_TOLERANCE:g})"
            )
        return out
    contrast_ok = True
    if rms_contrast is not None:
        # each image's RMS contrast is exact, so the power in the bins can differ from the
        # design only by what the samples outside them (below one cycle per image, beyond
        # Nyquist, DC excluded) take: their variance, plus 0.5 % for rounding and clipping
        all_e1 = float(np.sum(e1))
        got, want = float(np.sum(obs)), scale * all_e1
        var = (scale**2 * (rest_var if rest_var is not None else 2.0 * float(np.sum(e2)))) / n_eff
        sd = math.sqrt(var + (0.005 * want) ** 2)
        z_c = (got - want) / sd
        p_c = float(2.0 * special.ndtr(-abs(z_c)))
        contrast_ok = p_c >= alpha
        out["contrast"] = {"measured_over_design": math.sqrt(max(got, 0.0) / want), "z": z_c, "p_value": p_c}
    nu = n_eff * nu1 / dispersion
    z = _probit_of_gamma(ratio, nu)
    bins = len(z)
    dof = bins - 1
    if dof < 1:
        out.update({"pass": None, "p_value": None, "statistic": None, "dof": dof,
                    "reason": f"only {bins} spectrum bin(s) lie in the designed band: too few to test"})
        return out
    stat = float(np.sum(z * z))
    p_value = float(special.chdtrc(dof, stat))
    k = int(np.argmax(np.abs(z)))
    out.update(statistic=stat, dof=dof, p_value=p_value,
               worst={"freq_cpp": float(freq[k]), "ratio": float(ratio[k]), "z": float(z[k])})
    out["pass"] = bool(p_value >= alpha and contrast_ok)
    verdict = "consistent with" if p_value >= alpha else "not consistent with"
    out["reason"] = (
        f"periodogram shape {verdict} the design: chi-square {stat:.4g} on {dof} degrees of "
        f"freedom, p = {p_value:.3g} (limit {alpha:g}); worst bin at {freq[k]:.4g} cpp holds "
        f"{ratio[k]:.3g} times the designed power"
    )
    if "contrast" in out:
        cc = out["contrast"]
        out["reason"] += (
            f"; RMS contrast {cc['measured_over_design']:.4g} times the design, p = {cc['p_value']:.3g} "
            f"(limit {alpha:g})"
        )
    if rms_contrast is not None and out["pass"] is not None:
        out["p_value"] = min(1.0, 2.0 * min(p_value, out["contrast"]["p_value"]))
    return out


def compare_to_design(
    measured: MeasuredBand,
    filt: Filter,
    *,
    ppd: float | ViewingGeometry,
    level: str = "half_amplitude",
    tolerance: dict[str, float] | None = None,
    rms_contrast: float | None = None,
    kind: str = "gaussian",
    false_alarm_rate: float = FALSE_ALARM_RATE,
) -> dict[str, Any]:
    """Compare a measured spectrum with a filter's design.

    Parameters
    ----------
    measured : MeasuredBand
        From :func:`measure_band` (which keeps the spectrum for the statistical test).
    filt : Filter
        The designed filter; pass the full filter (with its orientation window) so that the
        test uses the full 2-D design; the band is that of its radial part.
    ppd : float or ViewingGeometry
        Pixels per degree.
    level : {"half_amplitude", "half_power"}
        Level at which the edges are compared.
    tolerance : dict, optional
        ``{"edge": rel, "peak": rel}`` for the reported ``edges_within_tolerance``; default
        2 % and 5 %.
    rms_contrast : float, optional
        Designed RMS contrast; with it a wrong contrast fails the test.
    kind : {"gaussian", "uniform", "binary", "flat"}
        White noise the stimulus was made from (see :func:`periodogram_test`).
    false_alarm_rate : float
        Probability that a correct stimulus fails (default 0.001).

    Returns
    -------
    dict
        ``status``: "pass", "fail" or "not_measurable"; ``pass``: True, False or None (not
        measurable); ``reason``: why, in words. ``test``: the result of
        :func:`periodogram_test`, which decides pass and fail. ``not_measurable``:
        ``{"low" | "high": reason}`` for edges that cannot be measured at this image size.
        ``design`` and ``measured`` peak/band in cpd, ``rel_error`` for ``peak``, ``low``
        and ``high`` (None where not measurable, and for the peak of a low-pass design),
        ``tolerance`` and ``edges_within_tolerance`` (reported numbers: the decision is the
        test's). A stimulus whose periodogram is consistent with the design but one of
        whose edges cannot be measured is "not_measurable", never "fail". Without a
        spectrum (a ``MeasuredBand`` built by hand) the tolerance decides. For flat-topped
        filters (ideal) the measured peak is compared with the geometric centre of the
        design and is within tolerance when it lies inside the band.
    """
    p = as_ppd(ppd)
    tol = {"edge": 0.02, "peak": 0.05} if tolerance is None else dict(tolerance)
    if not isinstance(measured, MeasuredBand):
        raise ValueError(f"measured must be a MeasuredBand from measure_band, got {type(measured).__name__}")
    if not isinstance(filt, Filter):
        raise ValueError(f"filt must be a stimgen filter, got {type(filt).__name__}")
    if isinstance(filt, Orientation):
        raise ValueError("an orientation window alone has no radial design to compare with")
    radial = radial_part(filt)
    if isinstance(radial, PowerLaw):
        raise ValueError("a power-law spectrum has no half-amplitude band: check it with measure_slope")
    level = v.choice("level", level, LEVELS)
    design = filt.passband(level)
    d_lo, d_hi = design.low_cpp, design.high_cpp
    m_lo, m_hi = measured.edges_cpp[level]

    def rel(m: float, d: float) -> float:
        if m == d:
            return 0.0
        if d == 0 or not (math.isfinite(d) and math.isfinite(m)):
            return math.inf
        return (m - d) / d

    spec = measured.spectrum
    unmeasurable: dict[str, str] = {}
    if spec is not None:
        mb = measurability(design, spec.shape_px, p, level=level)
        unmeasurable.update({k: mb[k] for k in ("low", "high") if mb[k]})
    for k, why in measured.not_measurable.get(level, {}).items():
        one_sided = (k == "low" and design.kind == "lowpass") or (k == "high" and design.kind == "highpass")
        if one_sided or (spec is not None and why.startswith("not measurable at")):
            continue  # with the image size known, the design decides whether an edge is measurable
        unmeasurable.setdefault(k, why)
    walls = measured.wall_bounds_cpp.get(level, {})
    if design.kind in ("lowpass", "highpass") and spec is not None and radial is not None:
        # a one-sided design has no interior peak to set the level: locate its edge by the
        # frequency scale that best fits the design's shape to the spectrum (all bins count)
        scale = _design_frequency_scale(spec, radial)
        if scale is not None:
            if design.kind == "lowpass":
                m_lo, m_hi = 0.0, d_hi * scale
            else:
                m_lo, m_hi = d_lo * scale, math.inf

    def edge_error(side: str, m: float, d: float) -> float | None:
        if side in unmeasurable:
            return None
        if side in walls:  # a brick wall is located only between two DFT radii
            a, b = walls[side]
            if a < d <= b * (1 + 1e-9):
                return 0.0
            return rel(a if d <= a else b, d)
        return rel(m, d)

    flat_top = isinstance(radial, Ideal)
    d_peak = design.center_cpp if flat_top else design.peak_cpp
    errors: dict[str, float | None] = {
        "peak": rel(measured.peak_cpp, d_peak),
        "low": edge_error("low", m_lo, d_lo),
        "high": edge_error("high", m_hi, d_hi),
    }
    ok_edges = all(abs(e) <= tol["edge"] for k, e in errors.items() if k != "peak" and e is not None)
    if design.kind in ("lowpass", "highpass"):  # no interior peak: nothing to compare but the edge
        errors["peak"] = None
        ok_peak = True
    elif flat_top:
        ok_peak = d_lo <= measured.peak_cpp <= d_hi
    else:
        ok_peak = abs(errors["peak"] or 0.0) <= tol["peak"]
    within = bool(ok_edges and ok_peak)
    test = None
    if spec is not None:
        test = periodogram_test(spec, filt, rms_contrast=rms_contrast, kind=kind, false_alarm_rate=false_alarm_rate)
    note = "; ".join(f"{k} edge: {why}" for k, why in unmeasurable.items())
    if test is not None and test.get("anisotropic"):
        test = dict(test)
        test["periodogram_pass"], test["pass"] = test["pass"], None
        test["reason"] = (
            "the stimulus has orientation structure that the isotropic design given lacks: pass "
            "the full filter (with its orientation window) to test the periodogram"
        )
    if test is not None and test["pass"] is False:
        status, reason = "fail", test["reason"]
    elif unmeasurable:
        status = "not_measurable"
        reason = note + (f"; {test['reason']}" if test is not None and test["pass"] is not None else "")
    elif test is not None and test["pass"] is True:
        status, reason = "pass", test["reason"]
    else:
        status = "pass" if within else "fail"
        reason = (
            f"edges and peak {'within' if within else 'outside'} the tolerance "
            f"(edge {tol['edge']:g}, peak {tol['peak']:g})"
            + (f"; {test['reason']}" if test is not None else "; no spectrum kept for a statistical test")
        )
    return {
        "level": level,
        "design": {"peak_cpd": d_peak * p, "band_cpd": [d_lo * p, d_hi * p]},
        "measured": {
            "peak_cpd": measured.peak_cpp * p, "band_cpd": [m_lo * p, m_hi * p],
            "wall_bounds_cpd": {k: [b[0] * p, b[1] * p] for k, b in walls.items()},
        },
        "rel_error": errors,
        "tolerance": tol,
        "edges_within_tolerance": within,
        "test": test,
        "not_measurable": unmeasurable,
        "status": status,
        "reason": reason,
        "pass": None if status == "not_measurable" else status == "pass",
    }
