"""The filter hub: transfer functions, passbands and inverse design, in cycles/pixel.

Contents
--------
Passband              peak, band edges and octave bandwidth at a stated level
Gaussian              low-pass, ``G(f) = exp(-2 pi^2 sigma^2 f^2)``
DoG                   difference of Gaussians ``G1 - w G2`` (balanced: ``w = 1``)
Butterworth           low-, high- or band-pass Butterworth (half power at each cutoff)
LogGaussian           Gaussian on a log2-frequency axis (octave-symmetric band)
Ideal                 annulus (brick wall)
PowerLaw              1/f^alpha amplitude response, optionally band-limited
Orientation           orientation window that multiplies any radial filter
Product               product of filters (``a * b``)
design_filter         one entry point: family name + band in cpd -> filter
apply_filter          filter an image or an ``(N, H, W)`` stack in the FFT domain
frequency_grid_cpp    the DFT frequency grid in cycles/pixel
dog_octaves, dog_ratio_for_octaves, dog_min_octaves   DoG bandwidth theory
sigma_px_from_cutoff  the common ``sigma = 1 / (2 pi f_c)`` convention, explained

Conventions
-----------
* Frequencies are radial spatial frequencies ``f = |(fx, fy)|`` in **cycles/pixel** (cpp)
  and sigmas are in **pixels**. Anything in cycles/degree (cpd) takes ``ppd`` (a number or a
  :class:`~stimgen.geometry.ViewingGeometry`): ``cpp = cpd / ppd``.
* The *amplitude* response ``|H(f)|`` defines a band. Its edges are where ``|H|`` falls to a
  fraction ``L`` of its peak: ``level="half_amplitude"`` (``L = 1/2``, default) or
  ``level="half_power"`` (``L = 1/sqrt 2``). On the power spectrum of filtered white noise
  these are the 1/4 and 1/2 points. Octaves ``= log2(f_high / f_low)``.
* The centre frequency is the peak of ``|H|``; the geometric mean of the edges is reported
  separately as ``center`` where it differs.
* Transfer functions are evaluated on the DFT grid of the image (``rfft2`` layout for real
  images) and applied by multiplication: circular (periodic) filtering, exact for every
  frequency on the grid.
"""

from __future__ import annotations

import functools
import math
import sys
import warnings
from collections import OrderedDict
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, ClassVar

import numpy as np
from scipy import optimize, special

from . import _threads
from . import _validate as v
from .geometry import ViewingGeometry, as_ppd

__all__ = [
    "CRITICAL_BAND_FAMILIES",
    "FAMILIES",
    "LEVELS",
    "Butterworth",
    "DOG_MAX_OCTAVES",
    "DoG",
    "Filter",
    "Gaussian",
    "GaussianHighpass",
    "Ideal",
    "LogGaussian",
    "Notch",
    "Orientation",
    "Passband",
    "PowerLaw",
    "Product",
    "ROLLOFFS",
    "apply_filter",
    "check_fits_image",
    "clear_caches",
    "critical_band_filter",
    "design_filter",
    "dog_min_octaves",
    "dog_octaves",
    "dog_ratio_for_octaves",
    "filter_from_record",
    "frequency_grid_cpp",
    "radial_part",
    "sigma_px_from_cutoff",
]

#: Amplitude fraction of the peak that defines a band edge, by level name.
LEVELS: dict[str, float] = {"half_amplitude": 0.5, "half_power": 2.0**-0.5}

_TWO_PI2 = 2.0 * math.pi**2
_NYQUIST_CPP = 0.5


def _level_fraction(level: str) -> float:
    return LEVELS[v.choice("level", level, LEVELS)]


_FLOAT_MIN = sys.float_info.min  # smallest normal float64


def _geomean(a: float, b: float) -> float:
    """``sqrt(a b)`` for a, b > 0 without under- or overflow of the product.

    ``math.sqrt(a * b)`` where the product is a normal float (so every result made before
    stays bit for bit the same), ``sqrt(a) sqrt(b)`` where it would under- or overflow.
    """
    prod = a * b
    if _FLOAT_MIN <= prod < math.inf:
        return math.sqrt(prod)
    return math.sqrt(a) * math.sqrt(b)


# =========================================================================================
# Frequency grid
# =========================================================================================
def frequency_grid_cpp(shape: Any, real: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """DFT frequencies of an ``(H, W)`` image in cycles/pixel, broadcastable.

    Parameters
    ----------
    shape : (int, int)
        Image height and width in pixels.
    real : bool
        True for the ``rfft2`` layout (non-negative ``fx`` only, ``W // 2 + 1`` columns).

    Returns
    -------
    fy : ndarray, shape (H, 1)
        Vertical frequency in cycles/pixel, ``numpy.fft.fftfreq`` order (row index grows
        downwards, so positive ``fy`` means luminance varying down the image).
    fx : ndarray, shape (1, W // 2 + 1) or (1, W)
        Horizontal frequency in cycles/pixel.

    Notes
    -----
    Multiply by ``ppd`` for cycles/degree; the bin spacing is one cycle per image.
    The arrays are cached and read-only.
    """
    try:
        h, w = shape
    except (TypeError, ValueError):
        raise ValueError(f"shape must be (height, width), got {shape!r}") from None
    return _frequency_grid(v.positive_int("shape", h), v.positive_int("shape", w), bool(real))


@functools.lru_cache(maxsize=32)
def _frequency_grid(h: int, w: int, real: bool) -> tuple[np.ndarray, np.ndarray]:
    fy = np.fft.fftfreq(h)[:, None]
    fx = (np.fft.rfftfreq(w) if real else np.fft.fftfreq(w))[None, :]
    fy.flags.writeable = False
    fx.flags.writeable = False
    return fy, fx


#: Upper bound on the bytes of transfer grids kept by the cache (least recently used go).
GRID_CACHE_BYTES = 256 * 2**20
_grid_cache: OrderedDict[tuple[Any, ...], np.ndarray] = OrderedDict()


def clear_caches() -> None:
    """Forget cached frequency grids, transfer grids and designs (e.g. to time cold starts)."""
    _grid_cache.clear()
    _frequency_grid.cache_clear()
    _design_cached.cache_clear()


def _filter_grid(filt: Filter, shape: tuple[int, int], real: bool, dtype: str) -> np.ndarray:
    key = (filt, shape, real, dtype)
    hit = _grid_cache.get(key)
    if hit is not None:
        _grid_cache.move_to_end(key)
        return hit
    out = _evaluate_grid(filt, shape, real, np.dtype(dtype))
    out.flags.writeable = False
    _grid_cache[key] = out
    while len(_grid_cache) > 1 and sum(a.nbytes for a in _grid_cache.values()) > GRID_CACHE_BYTES:
        _grid_cache.popitem(last=False)
    return out


def _mirrored_rows(filt: Filter) -> bool:
    """Whether row ``H - k`` of the transfer grid of ``filt`` repeats row ``k`` bit for bit.

    True for the filters whose :meth:`Filter.response` is ``transfer(hypot(fx, fy))``: row
    ``H - k`` of the ``fftfreq`` grid has the frequencies of row ``k`` negated, hence the
    same ``hypot`` (and :func:`_evaluate_grid` copies it). False for a subclass that
    overrides :meth:`Filter.grid` itself: its rows are read as they are.
    """
    return type(filt).response is Filter.response and type(filt).grid is Filter.grid


_TILE = 128  # rows and columns of one tile: its float64 temporaries stay in cache
_PARALLEL_GRID_SIZE = 2**20  # grids with more distinct rows x columns use the available cores


def _evaluate_grid(filt: Filter, shape: tuple[int, int], real: bool, dtype: np.dtype) -> np.ndarray:
    """The transfer of ``filt`` on the DFT grid of ``shape``, cast to ``dtype`` once.

    Values are computed in float64 exactly as ``filt.response(fx, fy)`` would compute them
    on the whole grid (every step is elementwise), but tile by tile, so the temporaries
    stay in cache, and for radial filters only on distinct radii: row ``H - k`` has the
    frequencies of row ``k`` negated (``fftfreq``), hence the same ``hypot``; and on a
    square ``rfft2`` grid the quarter ``|fy|, fx <= 1/2`` is symmetric (``hypot`` is), so
    one triangle of tiles is evaluated and the other transposed. Large grids use the
    available cores. This makes the first call at a new size 3-8x cheaper than a whole-grid
    evaluation, bit for bit equal.
    """
    fy, fx = frequency_grid_cpp(shape, real)
    h = shape[0]
    cols = fx.shape[1]
    out = np.empty((h, cols), dtype=dtype)
    fy_col, fx_row = fy[:, 0], fx[0]
    radial = _mirrored_rows(filt)  # response = transfer(hypot(fx, fy))
    rows = h // 2 + 1 if radial else h  # distinct |fy|: rows 0 .. H // 2
    square = radial and real and shape[0] == shape[1]  # then |fy| of rows 0 .. H//2 == fx

    def band(i0: int) -> None:  # one band of tile rows; bands write disjoint parts of out
        i1 = min(rows, i0 + _TILE)
        for j0 in range(i0 if square else 0, cols, _TILE):
            j1 = min(cols, j0 + _TILE)
            fxt, fyt = fx_row[None, j0:j1], fy_col[i0:i1, None]
            tile = filt.transfer(np.hypot(fxt, fyt)) if radial else filt.response(fxt, fyt)
            tile = np.broadcast_to(np.asarray(tile, dtype=np.float64), (i1 - i0, j1 - j0))
            out[i0:i1, j0:j1] = tile
            if square and j0 != i0:
                out[j0:j1, i0:i1] = out[i0:i1, j0:j1].T

    def mirror(part: tuple[int, int]) -> None:  # rows H//2+1 .. H-1 mirror rows (H-1)//2 .. 1
        m0, m1 = part  # rows rows + m0 .. rows + m1 - 1 (H - r mirrors r)
        out[rows + m0 : rows + m1] = out[h - rows - m1 + 1 : h - rows - m0 + 1][::-1]

    mirrored = h - rows if radial else 0
    if rows * cols < _PARALLEL_GRID_SIZE:
        for i0 in range(0, rows, _TILE):
            band(i0)
        mirror((0, mirrored))
    else:  # numpy releases the GIL in the ufuncs: the cores share the bands, then the mirror
        threads = v.available_cores()
        pool = _threads.pool(threads)
        _threads.share(pool, threads, band, range(0, rows, _TILE))
        _threads.share(pool, threads, mirror, [(mirrored * k // threads, mirrored * (k + 1) // threads)
                                               for k in range(threads)])
    return out


# =========================================================================================
# Passband
# =========================================================================================
@dataclass(frozen=True)
class Passband:
    """The band a filter passes, at a stated level, in cycles/pixel.

    Attributes
    ----------
    kind : {"bandpass", "lowpass", "highpass"}
        Band-pass filters have a peak above 0; low-pass ones peak at DC.
    level : {"half_amplitude", "half_power"}
        Amplitude fraction of the peak that defines the edges (1/2 or 1/sqrt 2).
    peak_cpp : float
        Frequency of the amplitude peak in cycles/pixel (0 for low-pass).
    low_cpp, high_cpp : float
        Band edges in cycles/pixel (0 for low-pass, inf for high-pass).
    peak_value : float
        Amplitude response at the peak.
    dc_gain : float
        ``|H(0)| / peak_value``: how much of the mean luminance leaks (0 for a balanced DoG).
    """

    kind: str
    level: str
    peak_cpp: float
    low_cpp: float
    high_cpp: float
    peak_value: float
    dc_gain: float = 0.0

    @property
    def octaves(self) -> float:
        """Octave bandwidth ``log2(high / low)``; inf for low- and high-pass filters."""
        if self.low_cpp <= 0 or not math.isfinite(self.high_cpp):
            return math.inf
        return math.log2(self.high_cpp / self.low_cpp)

    @property
    def center_cpp(self) -> float:
        """Geometric mean of the edges in cycles/pixel (not the peak in general)."""
        if self.low_cpp <= 0 or not math.isfinite(self.high_cpp):
            return self.peak_cpp
        return _geomean(self.low_cpp, self.high_cpp)

    def band_cpd(self, ppd: float | ViewingGeometry) -> tuple[float, float]:
        """Band edges ``(low, high)`` in cycles/degree."""
        p = as_ppd(ppd)
        return (self.low_cpp * p, self.high_cpp * p)

    def to_dict(self, ppd: float | ViewingGeometry | None = None) -> dict[str, Any]:
        """A JSON-ready record; with ``ppd`` also every frequency in cycles/degree."""
        d: dict[str, Any] = {
            "kind": self.kind,
            "level": self.level,
            "peak_cpp": self.peak_cpp,
            "band_cpp": [self.low_cpp, self.high_cpp],
            "center_cpp": self.center_cpp,
            "octaves": self.octaves,
            "peak_value": self.peak_value,
            "dc_gain": self.dc_gain,
        }
        if ppd is not None:
            p = as_ppd(ppd)
            d.update(
                ppd=p,
                peak_cpd=self.peak_cpp * p,
                band_cpd=[self.low_cpp * p, self.high_cpp * p],
                center_cpd=self.center_cpp * p,
                nyquist_cpd=p / 2,
            )
        return d


def _numeric_passband(amp: Any, level: str, *, f_max: float = 1e3) -> Passband:
    """Passband of a radial amplitude response ``amp(f)`` (f in cpp) by root finding.

    The response is assumed unimodal around its main peak (true for every family here).
    """
    L = _level_fraction(level)
    f = np.concatenate([[0.0], np.geomspace(1e-7, f_max, 4001)])
    a = np.abs(np.asarray(amp(f), dtype=float))
    i = int(np.argmax(a))
    if i == 0:
        f_peak = 0.0
    elif a[-1] >= a[i] * (1.0 - 1e-9):  # still at its maximum at f_max: high-pass
        i = len(f) - 1
        f_peak = math.inf
    else:
        try:
            res = optimize.minimize_scalar(
                lambda lf: -abs(float(amp(np.array([math.exp(lf)]))[0])),
                bracket=(math.log(f[i - 1]) if i > 1 else math.log(f[1]) - 1, math.log(f[i]), math.log(f[i + 1])),
                tol=1e-12,
            )
            f_peak = math.exp(res.x)
        except ValueError:  # a flat top (plateau): no strict bracket; the grid maximum will do
            f_peak = float(f[i])
    if f_peak == 0.0:
        peak = a[0]
    elif math.isinf(f_peak):
        peak = a[-1]
    else:
        peak = abs(float(amp(np.array([f_peak]))[0]))
    if not peak > 0:
        raise ValueError("the filter passes nothing (its amplitude response is 0 everywhere)")
    target = L * peak

    def g(x: float) -> float:
        return abs(float(amp(np.array([x]))[0])) - target

    low = 0.0
    if f_peak > 0.0:
        # largest f below the peak where |H| crosses the level (edge of the main lobe)
        below = np.nonzero(a[: i + 1] < target)[0]
        if below.size:
            j = int(below[-1])
            low = optimize.brentq(g, f[j], min(f_peak, f[j + 1]), xtol=1e-15, rtol=1e-13, maxiter=500)
    high = math.inf
    if math.isfinite(f_peak):
        above = np.nonzero(a[i:] < target)[0]
        if above.size:
            j = i + int(above[0])
            high = optimize.brentq(g, max(f_peak, f[j - 1]), f[j], xtol=1e-15, rtol=1e-13, maxiter=500)
    kind = "lowpass" if f_peak == 0.0 else ("highpass" if math.isinf(high) else "bandpass")
    if kind == "bandpass" and low == 0.0:
        kind = "lowpass"
    return Passband(kind, level, float(f_peak), float(low), float(high), float(peak), float(a[0] / peak))


# =========================================================================================
# Base class
# =========================================================================================
class Filter:
    """Base class of all filters: a real, even transfer function of (fx, fy) in cpp.

    Subclasses implement :meth:`response`; radial filters implement :meth:`transfer`
    (amplitude as a function of radial frequency) and get :meth:`response` for free.
    """

    family: ClassVar[str] = ""
    radial: ClassVar[bool] = True

    # -- evaluation ----------------------------------------------------------------------
    def transfer(self, f_cpp: Any) -> np.ndarray:
        """Transfer function at radial frequencies ``f_cpp`` (cycles/pixel)."""
        raise NotImplementedError(f"{type(self).__name__} is not a radial filter")

    def response(self, fx_cpp: Any, fy_cpp: Any) -> np.ndarray:
        """Transfer function on a 2-D frequency grid (cycles/pixel)."""
        return self.transfer(np.hypot(fx_cpp, fy_cpp))

    def grid(self, shape: tuple[int, int], *, real: bool = True, dtype: Any = np.float32) -> np.ndarray:
        """The transfer function on the DFT grid of an ``(H, W)`` image (cached, read-only).

        Parameters
        ----------
        shape : (int, int)
            Image height and width in pixels.
        real : bool
            ``rfft2`` layout (``(H, W // 2 + 1)``) when True, full ``fft2`` layout otherwise.
        dtype : dtype
            float32 (default) or float64.
        """
        h, w = (v.positive_int("shape", s) for s in shape)
        return _filter_grid(self, (h, w), bool(real), np.dtype(dtype).name)

    # -- passband ------------------------------------------------------------------------
    def passband(self, level: str = "half_amplitude") -> Passband:
        """Peak, band edges and octave bandwidth at ``level``, in cycles/pixel."""
        return _numeric_passband(self.transfer, level)

    def describe(self, ppd: float | ViewingGeometry | None = None, level: str = "half_amplitude") -> dict[str, Any]:
        """A JSON-ready record: parameters, passband (cpp, and cpd given ``ppd``), level."""
        d: dict[str, Any] = {"family": self.family, "level": level}
        d.update(self.params())
        if ppd is not None:
            p = as_ppd(ppd)
            for k, val in list(d.items()):
                if k.endswith("_px") and isinstance(val, float):
                    d[k[:-3] + "_deg"] = val / p
                elif k.endswith("_cpp") and isinstance(val, float):
                    d[k[:-4] + "_cpd"] = val * p
        if self.radial:
            d.update(self.passband(level).to_dict(ppd))
        return d

    # -- records -------------------------------------------------------------------------
    def params(self) -> dict[str, Any]:
        """Constructor parameters (units in names): ``type(self)(**params())`` rebuilds it."""
        return {f.name: getattr(self, f.name) for f in fields(self)}  # type: ignore[arg-type]

    def to_record(self) -> dict[str, Any]:
        """``{"family": ..., **params}``; :func:`filter_from_record` inverts it."""
        return {"family": self.family, **self.params()}

    # -- design --------------------------------------------------------------------------
    @classmethod
    def from_peak(
        cls,
        peak_cpd: float,
        octaves: float,
        *,
        ppd: float | ViewingGeometry,
        level: str = "half_amplitude",
        **params: Any,
    ) -> Filter:
        """Filter whose band is ``octaves`` wide at ``level``, centred on ``peak_cpd`` (cpd).

        For families whose band is symmetric on a log-frequency axis (log-Gaussian,
        Butterworth band-pass, ideal) the peak is the geometric centre of the edges, so
        this is ``from_band(peak * 2^(-+octaves/2))``. The DoG overrides it (its peak is not
        the centre of its band).
        """
        band = _peak_band(peak_cpd, octaves, ppd)
        return cls.from_band(band, ppd=ppd, level=level, **params)  # type: ignore[attr-defined]

    # -- algebra ---------------------------------------------------------------------------
    def __mul__(self, other: Filter) -> Product:
        if not isinstance(other, Filter):
            return NotImplemented
        left = self.factors if isinstance(self, Product) else (self,)
        right = other.factors if isinstance(other, Product) else (other,)
        return Product(tuple(left) + tuple(right))

    def kernel(self, size_px: int | None = None) -> np.ndarray:
        """Spatial kernel: the inverse DFT of the transfer on a ``size_px`` square grid.

        Parameters
        ----------
        size_px : int, optional
            Odd kernel width in pixels (default 65). The kernel is centred and circular
            convolution with it equals FFT-domain filtering on that grid size.
        """
        n = 65 if size_px is None else v.positive_int("size_px", size_px)
        if n % 2 == 0:
            raise ValueError(f"size_px must be odd so the kernel has a centre, got {n}")
        k = np.fft.ifft2(self.grid((n, n), real=False, dtype=np.float64)).real
        return np.fft.fftshift(k)


def _band_cpp(band_cpd: Any, ppd: float | ViewingGeometry, name: str = "band_cpd") -> tuple[float, float]:
    """Validate a requested band ``[lo, hi]`` in cpd against Nyquist; return it in cpp."""
    p = as_ppd(ppd)
    lo, hi = v.pair(name, band_cpd)
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo <= 0 or hi <= lo:
        raise ValueError(f"{name} must be [low, high] with 0 < low < high, got {list(band_cpd)!r}")
    if hi > p / 2:
        raise ValueError(
            f"{name} high edge {hi:g} cpd exceeds Nyquist ({p / 2:.4g} cpd at {p:.4g} ppd)"
        )
    if not lo / p >= _FLOAT_MIN:
        raise ValueError(
            f"{name} low edge {lo:g} cpd is {lo / p:.3g} cycles/pixel at {p:.4g} ppd, below the "
            f"float64 range; give frequencies of at least {_FLOAT_MIN * p:.3g} cpd"
        )
    return lo / p, hi / p


def _peak_band(peak_cpd: Any, octaves: Any, ppd: float | ViewingGeometry) -> tuple[float, float]:
    """Octave-symmetric band around ``peak_cpd``: ``peak * 2**(-+octaves/2)`` (cpd).

    Refuses, naming the user's values, a peak or band edges that float64 cannot hold in
    cycles/pixel (a tiny peak used to surface as "peak_cpp ... got 0.0").
    """
    p = as_ppd(ppd)
    f = v.positive("peak_cpd", peak_cpd)
    b = v.positive("octaves", octaves)
    lo, hi = f * 2 ** (-b / 2), f * 2 ** (b / 2)
    if not f / p >= _FLOAT_MIN:
        raise ValueError(
            f"peak_cpd {peak_cpd!r} is {f / p:.3g} cycles/pixel at {p:.4g} ppd, below the float64 "
            f"range; give peak_cpd of at least {_FLOAT_MIN * p:.3g} cpd"
        )
    if not lo / p >= _FLOAT_MIN:
        raise ValueError(
            f"peak_cpd {peak_cpd!r} with octaves {octaves!r} puts the low edge at {lo:.4g} cpd, "
            f"{lo / p:.3g} cycles/pixel at {p:.4g} ppd, below the float64 range (at least "
            f"{_FLOAT_MIN * p:.3g} cpd); give a higher peak or a narrower band"
        )
    return lo, hi


def check_fits_image(
    passband: Passband,
    shape_px: tuple[int, int],
    ppd: float | ViewingGeometry | None = None,
) -> None:
    """Raise if a band cannot be represented in an image of ``shape_px`` pixels.

    The low edge must be at least one cycle per image (the DFT bin spacing along the
    shorter side) and the high edge at most Nyquist (0.5 cycles/pixel).

    Parameters
    ----------
    passband : Passband
        The band to check (cycles/pixel).
    shape_px : (int, int)
        Image height and width in pixels.
    ppd : float or ViewingGeometry, optional
        Used only to state the limits in cpd in the message.
    """
    n = min(int(s) for s in shape_px)
    p = None if ppd is None else as_ppd(ppd)
    unit, k = ("cpd", p) if p is not None else ("cycles/pixel", 1.0)
    if passband.kind in ("bandpass", "highpass", "notch") and passband.low_cpp < 1.0 / n:
        raise ValueError(
            f"band low edge {passband.low_cpp * k:.4g} {unit} is below one cycle per image "
            f"({k / n:.4g} {unit} for an image of {n} px); make the image larger or the band higher"
        )
    if passband.kind == "lowpass" and 0 < passband.high_cpp < 1.0 / n:
        raise ValueError(
            f"cutoff {passband.high_cpp * k:.4g} {unit} is below one cycle per image "
            f"({k / n:.4g} {unit} for an image of {n} px); make the image larger or the cutoff higher"
        )
    if math.isfinite(passband.high_cpp) and passband.high_cpp > _NYQUIST_CPP * (1 + 1e-9):
        raise ValueError(
            f"band high edge {passband.high_cpp * k:.4g} {unit} exceeds Nyquist "
            f"({_NYQUIST_CPP * k:.4g} {unit})"
        )


# =========================================================================================
# Gaussian
# =========================================================================================
@dataclass(frozen=True)
class Gaussian(Filter):
    """Unit-area Gaussian low-pass filter.

    Parameters
    ----------
    sigma_px : float
        Spatial standard deviation in pixels (> 0).

    Notes
    -----
    ``G(f) = exp(-2 pi^2 sigma^2 f^2)`` (the transform of a kernel that sums to 1); its
    frequency-domain standard deviation is ``1 / (2 pi sigma)``. The amplitude falls to
    ``L`` at ``f_L = sqrt(-ln L / 2) / (pi sigma)``: ``f sigma = 0.18739`` at half amplitude,
    ``0.13251`` at half power.
    """

    family: ClassVar[str] = "gaussian"
    sigma_px: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "sigma_px", v.positive("sigma_px", self.sigma_px))

    def transfer(self, f_cpp: Any) -> np.ndarray:
        f = np.asarray(f_cpp, dtype=float)
        return np.exp(-_TWO_PI2 * self.sigma_px**2 * f * f)

    def passband(self, level: str = "half_amplitude") -> Passband:
        L = _level_fraction(level)
        return Passband("lowpass", level, 0.0, 0.0, math.sqrt(-math.log(L) / 2) / (math.pi * self.sigma_px), 1.0, 1.0)

    @classmethod
    def from_cutoff(cls, cutoff_cpd: float, *, ppd: float | ViewingGeometry, level: str = "half_amplitude") -> Gaussian:
        """Gaussian whose amplitude falls to ``level`` at ``cutoff_cpd`` (cycles/degree)."""
        L = _level_fraction(level)
        p = as_ppd(ppd)
        fc = v.positive("cutoff_cpd", cutoff_cpd)
        if fc > p / 2:
            raise ValueError(f"cutoff_cpd {fc:g} cpd exceeds Nyquist ({p / 2:.4g} cpd at {p:.4g} ppd)")
        return cls(math.sqrt(-math.log(L) / 2) / (math.pi * fc / p))

    def kernel(self, size_px: int | None = None) -> np.ndarray:
        """Sampled spatial kernel normalized to sum 1 (``k /= k.sum()``), odd width.

        Parameters
        ----------
        size_px : int, optional
            Odd width in pixels; default ``2 * ceil(4 sigma) + 1``.
        """
        return _sampled_gaussian(self.sigma_px, size_px or 2 * math.ceil(4 * self.sigma_px) + 1)


def _sampled_gaussian(sigma_px: float, size_px: int) -> np.ndarray:
    n = v.positive_int("size_px", size_px)
    if n % 2 == 0:
        raise ValueError(f"size_px must be odd so the kernel has a centre, got {n}")
    x = np.arange(n) - n // 2
    g1 = np.exp(-(x * x) / (2 * sigma_px**2))
    k = g1[:, None] * g1[None, :]
    return k / k.sum()


def sigma_px_from_cutoff(cutoff_cpd: float, *, ppd: float | ViewingGeometry) -> float:
    """The common hand-rolled convention ``sigma = 1 / (2 pi f_c)``, with f_c in cpd.

    Parameters
    ----------
    cutoff_cpd : float
        The "cutoff" in cycles/degree.
    ppd : float or ViewingGeometry
        Pixels per degree: the convention works in cycles/pixel, so ``f_c = cutoff_cpd / ppd``.

    Returns
    -------
    float
        sigma in pixels.

    Notes
    -----
    At this ``f_c`` the Gaussian's amplitude is ``exp(-1/2) = 0.607`` (power ``1/e``): it is
    neither a half-power (0.707) nor a half-amplitude (0.5) cutoff. Two such Gaussians
    subtracted do not pass the band ``[f_c_low, f_c_high]``: see :meth:`DoG.from_cutoff_convention`.
    """
    return 1.0 / (2 * math.pi * v.positive("cutoff_cpd", cutoff_cpd) / as_ppd(ppd))


# =========================================================================================
# Difference of Gaussians
# =========================================================================================
def _dog_h(x: Any, r: float, w: float = 1.0) -> np.ndarray:
    """Scale-free DoG ``h(x; r, w) = exp(-2pi^2 x^2) - w exp(-2pi^2 r^2 x^2)``, ``x = f s1``.

    Evaluated as ``-exp(-u) ((w - 1) + w expm1(-(r - 1)(r + 1) u))`` (``u = 2 pi^2 x^2``;
    balanced: ``-exp(-u) expm1(-(r - 1)(r + 1) u)``) so that r near 1 keeps its relative
    precision: ``r * r - 1`` would lose it (5e-10 at ``r = 1 + 1e-9``).
    """
    u = _TWO_PI2 * np.asarray(x, dtype=float) ** 2
    return -np.exp(-u) * ((w - 1.0) + w * np.expm1(-((r - 1.0) * (r + 1.0)) * u))


def _dog_peak_x(r: float, w: float = 1.0) -> float:
    """``f_peak * s1`` of ``G1 - w G2``: ``sqrt(ln(w r^2) / (2 pi^2 (r^2 - 1)))``.

    ``r^2 - 1`` is formed as ``(r - 1)(r + 1)`` and, balanced, ``ln r^2`` as
    ``2 log1p(r - 1)``, both exact to rounding however close r is to 1.
    """
    log_wr2 = 2.0 * math.log1p(r - 1.0) if w == 1.0 else math.log(w * r * r)
    return math.sqrt(log_wr2 / (_TWO_PI2 * ((r - 1.0) * (r + 1.0))))


def _dog_edges_x(r: float, level: str) -> tuple[float, float, float, float]:
    """(x_low, x_peak, x_high, h_peak) in units of ``f * s1`` for a balanced DoG of ratio r."""
    L = _level_fraction(level)
    xp = _dog_peak_x(r)
    hp = float(_dog_h(xp, r))
    target = L * hp

    def g(x: float) -> float:
        return float(_dog_h(x, r)) - target

    x_lo = optimize.brentq(g, 0.0, xp, xtol=1e-16, rtol=1e-14, maxiter=500)
    hi = 2.0 * xp
    while g(hi) > 0:
        hi *= 2.0
    x_hi = optimize.brentq(g, xp, hi, xtol=1e-16, rtol=1e-14, maxiter=500)
    return x_lo, xp, x_hi, hp


def dog_octaves(ratio: float, level: str = "half_amplitude") -> float:
    """Octave bandwidth of a balanced DoG with ``sigma_surround / sigma_center = ratio``.

    Depends on the ratio alone (the centre sigma only moves the band). Grows strictly with
    the ratio from :func:`dog_min_octaves` (ratio -> 1) to about ``log2(ratio)``.
    """
    r = v.positive("ratio", ratio)
    if r <= 1.0:
        raise ValueError(f"ratio must be > 1 (sigma_surround > sigma_center), got {ratio!r}")
    lo, _, hi, _ = _dog_edges_x(r, level)
    return math.log2(hi / lo)


def dog_min_octaves(level: str = "half_amplitude") -> float:
    """Narrowest band of a balanced DoG (the ratio -> 1 Laplacian-of-Gaussian limit).

    Closed form: with ``y = 2 pi^2 f^2 s^2`` the limit response is ``y exp(-y)``, so the
    edges solve ``y e^-y = L / e``: ``y = -W_k(-L/e)`` on both Lambert-W branches and
    ``B = 0.5 log2(y_high / y_low)``: 1.764695 octaves at half amplitude, 1.224372 at half
    power.
    """
    L = _level_fraction(level)
    y_lo = -special.lambertw(-L / math.e, 0).real
    y_hi = -special.lambertw(-L / math.e, -1).real
    return 0.5 * math.log2(y_hi / y_lo)


#: Widest balanced-DoG band designed (octaves): up to it the designed edges match the
#: request to 1e-6 (relative) at both levels; the edge solver loses that accuracy from
#: about 32.9 octaves on (ratios near 1e10) and fails outright near 50.
DOG_MAX_OCTAVES = 32.0


def _dog_range(level: str) -> str:
    return (f"a balanced DoG is designed to 1e-6 from {dog_min_octaves(level):.4f} to "
            f"{DOG_MAX_OCTAVES:g} octaves at {level}")


def dog_ratio_for_octaves(octaves: float, level: str = "half_amplitude") -> float:
    """The ratio ``sigma_surround / sigma_center`` whose balanced DoG has ``octaves``.

    Raises
    ------
    ValueError
        If ``octaves`` is narrower than :func:`dog_min_octaves` (no DoG can make it) or
        wider than :data:`DOG_MAX_OCTAVES` (beyond float64 accuracy).
    """
    b = v.positive("octaves", octaves)
    b_min = dog_min_octaves(level)
    if b > DOG_MAX_OCTAVES:
        raise ValueError(
            f"octaves {octaves!r}: a balanced DoG design this wide is beyond float64 accuracy, not "
            f"the requested band ({_dog_range(level)}); use family 'log_gaussian' for wider bands"
        )
    r_lo = 1.0 + 1e-7
    if b <= dog_octaves(r_lo, level):
        raise ValueError(
            f"a balanced DoG cannot make a band of {b:.4g} octaves at {level}: its minimum is "
            f"{b_min:.4f} octaves (the Laplacian-of-Gaussian limit); use family "
            "'log_gaussian' or 'butterworth' for narrower bands"
        )
    r_hi = 2.0 ** (b + 4)
    try:
        r = optimize.brentq(lambda r: dog_octaves(r, level) - b, r_lo, r_hi, xtol=1e-14, rtol=1e-15, maxiter=500)
    except (ValueError, RuntimeError):  # no bracket or no convergence: never scipy's words
        r = math.nan
    if not (math.isfinite(r) and math.isclose(dog_octaves(r, level), b, rel_tol=1e-6)):
        raise ValueError(f"octaves {octaves!r} cannot be designed as a balanced DoG in float64: "
                         f"{_dog_range(level)}")
    return r


@dataclass(frozen=True)
class DoG(Filter):
    """Difference of Gaussians ``H(f) = G(f; s1) - weight * G(f; s2)``.

    Parameters
    ----------
    sigma_center_px : float
        Centre (narrow) Gaussian sigma ``s1`` in pixels (> 0).
    sigma_surround_px : float
        Surround (wide) Gaussian sigma ``s2`` in pixels (> ``s1``).
    weight : float
        Ratio of the surround kernel's sum to the centre's (default 1: balanced, zero mean,
        ``H(0) = 0``). ``weight < 1`` leaks the mean (DC); ``weight > 1`` adds a negative
        low-frequency lobe that noise power still passes; band-pass needs ``weight r^2 > 1``.

    Notes
    -----
    With ``r = s2 / s1``: peak ``f_peak = sqrt(ln(w r^2) / (2 pi^2 (s2^2 - s1^2)))``
    (balanced: ``sqrt(ln(r) / (s2^2 - s1^2)) / pi``), peak value
    ``r^(-2/(r^2-1)) (1 - r^-2)``. The edges are the two roots of ``H = L H_peak`` (solved
    with Brent's method). The octave bandwidth depends on ``r`` alone; scaling both sigmas
    by ``k`` moves the band by ``1/k``. The narrowest balanced band is 1.7647 octaves at half
    amplitude (1.2244 at half power).
    """

    family: ClassVar[str] = "dog"
    sigma_center_px: float
    sigma_surround_px: float
    weight: float = 1.0

    def __post_init__(self) -> None:
        s1 = v.positive("sigma_center_px", self.sigma_center_px)
        s2 = v.positive("sigma_surround_px", self.sigma_surround_px)
        w = v.positive("weight", self.weight)
        if s2 <= s1:
            raise ValueError(
                f"sigma_surround_px ({s2:g}) must be larger than sigma_center_px ({s1:g})"
            )
        if w * (s2 / s1) ** 2 <= 1.0:
            raise ValueError(
                f"weight {w:g} with ratio {s2 / s1:g} is not band-pass: need weight * ratio^2 > 1"
            )
        object.__setattr__(self, "sigma_center_px", s1)
        object.__setattr__(self, "sigma_surround_px", s2)
        object.__setattr__(self, "weight", w)

    @property
    def ratio(self) -> float:
        """``sigma_surround / sigma_center``."""
        return self.sigma_surround_px / self.sigma_center_px

    @property
    def center(self) -> Gaussian:
        """The centre Gaussian."""
        return Gaussian(self.sigma_center_px)

    @property
    def surround(self) -> Gaussian:
        """The surround Gaussian (unweighted)."""
        return Gaussian(self.sigma_surround_px)

    def transfer(self, f_cpp: Any) -> np.ndarray:
        return _dog_h(np.asarray(f_cpp, dtype=float) * self.sigma_center_px, self.ratio, self.weight)

    def passband(self, level: str = "half_amplitude") -> Passband:
        """Closed-form peak and root-found edges for a balanced DoG.

        A weighted DoG (``weight != 1``) is measured on ``|H|``: its DC response
        ``|1 - weight|`` may exceed the band-pass bump (then it is reported as low-pass,
        which is what noise through it looks like), and ``dc_gain`` states the leak.
        """
        if self.weight != 1.0:
            return _numeric_passband(self.transfer, level)
        x_lo, xp, x_hi, hp = _dog_edges_x(self.ratio, level)
        s1 = self.sigma_center_px
        return Passband("bandpass", level, xp / s1, x_lo / s1, x_hi / s1, hp, 0.0)

    def describe(self, ppd: float | ViewingGeometry | None = None, level: str = "half_amplitude") -> dict[str, Any]:
        d = super().describe(ppd, level)
        d["ratio"] = self.ratio
        return d

    def kernel(self, size_px: int | None = None) -> np.ndarray:
        """Sampled spatial kernel: two sum-normalized Gaussians subtracted.

        Parameters
        ----------
        size_px : int, optional
            Odd width in pixels; default ``2 * ceil(4 sigma_surround) + 1``.

        Warns
        -----
        UserWarning
            If ``sigma_center_px < 1``: the sampled centre Gaussian aliases (its transfer
            is off by 0.1-2.5 % at 0.7 px and 3-44 % at 0.5 px). The FFT-domain filter
            (:func:`apply_filter`) has no such error.
        """
        if self.sigma_center_px < 1.0:
            warnings.warn(
                f"sigma_center_px {self.sigma_center_px:.3g} < 1 px: the sampled kernel aliases "
                "and deviates from the designed transfer; prefer apply_filter (FFT domain)",
                stacklevel=2,
            )
        n = size_px or 2 * math.ceil(4 * self.sigma_surround_px) + 1
        return _sampled_gaussian(self.sigma_center_px, n) - self.weight * _sampled_gaussian(self.sigma_surround_px, n)

    # -- inverse design ------------------------------------------------------------------
    @classmethod
    def from_band(
        cls, band_cpd: Any, *, ppd: float | ViewingGeometry, level: str = "half_amplitude"
    ) -> DoG:
        """Balanced DoG whose band edges at ``level`` are ``band_cpd = (lo, hi)`` (cpd).

        The ratio follows from the octaves ``log2(hi / lo)`` (:func:`dog_ratio_for_octaves`),
        the centre sigma from the high edge, and the surround sigma is ``ratio * s1``.
        Worked example (ppd 35.8375, 1-5 cpd, half amplitude): s1 = 1.5914 px,
        s2 = 5.9167 px, peak 2.294 cpd.
        """
        lo, hi = _band_cpp(band_cpd, ppd)
        b = math.log2(hi / lo)
        if b > DOG_MAX_OCTAVES:
            raise ValueError(
                f"band_cpd {list(band_cpd)!r} is {b:.4g} octaves wide: a balanced DoG design this wide "
                f"is beyond float64 accuracy, not the requested band ({_dog_range(level)}); use "
                "family 'log_gaussian' for wider bands"
            )
        r = dog_ratio_for_octaves(b, level)
        _, _, x_hi, _ = _dog_edges_x(r, level)
        s1 = x_hi / hi
        dog = cls(s1, r * s1)
        got = dog.passband(level)
        if not (math.isclose(got.low_cpp, lo, rel_tol=1e-6) and math.isclose(got.high_cpp, hi, rel_tol=1e-6)):
            p = as_ppd(ppd)
            raise ValueError(
                f"band_cpd {list(band_cpd)!r}: the balanced DoG came out as {got.low_cpp * p:.6g} - "
                f"{got.high_cpp * p:.6g} cpd, not the requested band (beyond float64 accuracy): "
                f"{_dog_range(level)}"
            )
        return dog

    @classmethod
    def from_peak(  # type: ignore[override]  # narrower keywords than Filter.from_peak
        cls,
        peak_cpd: float,
        octaves: float,
        *,
        ppd: float | ViewingGeometry,
        level: str = "half_amplitude",
    ) -> DoG:
        """Balanced DoG with its amplitude peak at ``peak_cpd`` and ``octaves`` bandwidth."""
        p = as_ppd(ppd)
        f = v.positive("peak_cpd", peak_cpd)
        r = dog_ratio_for_octaves(octaves, level)
        s1 = _dog_peak_x(r) / (f / p)
        dog = cls(s1, r * s1)
        got = dog.passband(level)
        _band_cpp(got.band_cpd(p), p, name="band_cpd (from peak_cpd and octaves)")
        if not (math.isclose(got.peak_cpp * p, f, rel_tol=1e-6) and math.isclose(got.octaves, octaves, rel_tol=1e-6)):
            raise ValueError(
                f"peak_cpd {peak_cpd!r} with octaves {octaves!r}: the balanced DoG came out peaking at "
                f"{got.peak_cpp * p:.6g} cpd, {got.octaves:.6g} octaves wide, not the requested band "
                f"(beyond float64 accuracy): {_dog_range(level)}"
            )
        return dog

    @classmethod
    def from_sigmas_deg(cls, sigma_center_deg: float, sigma_surround_deg: float, *, ppd: float | ViewingGeometry) -> DoG:
        """DoG from sigmas in degrees of visual angle."""
        p = as_ppd(ppd)
        return cls(
            v.positive("sigma_center_deg", sigma_center_deg) * p,
            v.positive("sigma_surround_deg", sigma_surround_deg) * p,
        )

    @classmethod
    def from_cutoff_convention(cls, band_cpd: Any, *, ppd: float | ViewingGeometry) -> DoG:
        """The hand-rolled recipe: ``s = 1 / (2 pi f_c)`` for each "cutoff" in ``band_cpd``.

        The centre sigma comes from the high cutoff and the surround from the low one. The
        result does *not* pass ``band_cpd``: at 35.8375 ppd, "cutoffs 1 and 5 cpd" give a
        half-amplitude band of about 1.08-6.59 cpd. Use :meth:`passband` to see what it does.
        """
        lo, hi = v.pair("band_cpd", band_cpd)
        return cls(sigma_px_from_cutoff(hi, ppd=ppd), sigma_px_from_cutoff(lo, ppd=ppd))


# =========================================================================================
# Butterworth
# =========================================================================================
def _bw_divide(h: np.ndarray, q: np.ndarray, ratio: np.ndarray, order: int) -> np.ndarray:
    """``h / sqrt(1 + q)`` for one Butterworth factor, ``q = ratio^(2 order)``.

    Where ``q`` overflows float64 (high orders far from the cutoff) the factor is
    ``ratio^-order`` (``1 + ratio^(-2 order)`` rounds to 1 there), so every order is
    computed without overflow, and values without overflow are unchanged.
    """
    out = h / np.sqrt(1.0 + q)
    big = np.isinf(q)
    if np.any(big):
        with np.errstate(divide="ignore", under="ignore"):
            out = np.where(big, h * (1.0 / np.where(big, ratio, 1.0)) ** order, out)
    return out


@dataclass(frozen=True)
class Butterworth(Filter):
    """Butterworth low-, high- or band-pass filter of order ``n``.

    Parameters
    ----------
    low_cutoff_cpp : float or None
        High-pass cutoff in cycles/pixel (None: no high-pass factor).
    high_cutoff_cpp : float or None
        Low-pass cutoff in cycles/pixel (None: no low-pass factor).
    order : int
        Filter order ``n`` (>= 1); steeper skirts with higher order.

    Notes
    -----
    ``H(f) = [1 + (f_lo / f)^(2n)]^(-1/2) * [1 + (f / f_hi)^(2n)]^(-1/2)``: each factor has
    gain ``1/sqrt 2`` (half power) at its own cutoff and ``1/2`` at ``cutoff * 3^(+-1/(2n))``.
    The band-pass product is symmetric on a log-frequency axis about ``sqrt(f_lo f_hi)``,
    which is its peak; its edges at a level are computed from the product, not from the
    cutoffs (:meth:`from_band` designs the cutoffs so the product's edges are exact).
    (PsychoPy's Butterworth uses ``1 / (1 + (f/f_c)^(2n))``, half amplitude at f_c, in cycles
    per pixel.)
    """

    family: ClassVar[str] = "butterworth"
    low_cutoff_cpp: float | None = None
    high_cutoff_cpp: float | None = None
    order: int = 4

    def __post_init__(self) -> None:
        if self.low_cutoff_cpp is None and self.high_cutoff_cpp is None:
            raise ValueError("Butterworth needs low_cutoff_cpp, high_cutoff_cpp or both")
        if self.low_cutoff_cpp is not None:
            object.__setattr__(self, "low_cutoff_cpp", v.positive("low_cutoff_cpp", self.low_cutoff_cpp))
        if self.high_cutoff_cpp is not None:
            object.__setattr__(self, "high_cutoff_cpp", v.positive("high_cutoff_cpp", self.high_cutoff_cpp))
        if (
            self.low_cutoff_cpp is not None
            and self.high_cutoff_cpp is not None
            and self.high_cutoff_cpp < self.low_cutoff_cpp
        ):
            raise ValueError(
                f"high_cutoff_cpp ({self.high_cutoff_cpp:g}) must not be below low_cutoff_cpp "
                f"({self.low_cutoff_cpp:g})"
            )
        object.__setattr__(self, "order", v.positive_int("order", self.order))

    def transfer(self, f_cpp: Any) -> np.ndarray:
        f = np.asarray(f_cpp, dtype=float)
        n2 = 2 * self.order
        h = np.ones_like(f)
        with np.errstate(over="ignore"):  # a power beyond float64 is redone by _bw_divide
            if self.high_cutoff_cpp is not None:
                ratio = f / self.high_cutoff_cpp
                h = _bw_divide(h, ratio**n2, ratio, self.order)
            if self.low_cutoff_cpp is not None:
                with np.errstate(divide="ignore"):
                    ratio = np.where(f > 0, self.low_cutoff_cpp / np.where(f > 0, f, 1.0), np.inf)
                h = _bw_divide(h, ratio**n2, ratio, self.order)
        return h

    def passband(self, level: str = "half_amplitude") -> Passband:
        """Peak, edges and octaves at ``level`` (closed form for low- and high-pass).

        A band-pass peaks exactly at ``sqrt(f_lo f_hi)`` (the response is symmetric on a log
        axis about it); its high edge is found with Brent's method, the low edge is its
        mirror image ``peak^2 / high``.
        """
        L = _level_fraction(level)
        k = (1.0 / (L * L) - 1.0) ** (1.0 / (2 * self.order))  # edge / cutoff of one factor
        lo_c, hi_c = self.low_cutoff_cpp, self.high_cutoff_cpp
        if lo_c is None:
            return Passband("lowpass", level, 0.0, 0.0, hi_c * k, 1.0, 1.0)  # type: ignore[operator]
        if hi_c is None:
            return Passband("highpass", level, math.inf, lo_c / k, math.inf, 1.0, 0.0)
        fp = _geomean(lo_c, hi_c)
        hp = float(self.transfer(fp))
        target = L * hp

        def g(f: float) -> float:
            return float(self.transfer(f)) - target

        top = 2.0 * fp
        while g(top) > 0:
            top *= 2.0
        f_hi = optimize.brentq(g, fp, top, xtol=1e-300, rtol=1e-15, maxiter=500)
        fp2 = fp * fp
        f_lo = fp2 / f_hi if _FLOAT_MIN <= fp2 < math.inf else fp * (fp / f_hi)  # no underflow
        return Passband("bandpass", level, fp, f_lo, f_hi, hp, 0.0)

    @staticmethod
    def _octaves_for_ratio(q: float, order: int, level: str) -> float:
        """Bandwidth of the band-pass product with ``f_hi / f_lo = q`` (scale-free)."""
        return Butterworth(1.0, q, order).passband(level).octaves

    @classmethod
    def min_octaves(cls, order: int, level: str = "half_amplitude") -> float:
        """Narrowest band-pass (cutoffs equal) of a Butterworth of ``order``, in octaves."""
        return cls._octaves_for_ratio(1.0, v.positive_int("order", order), level)

    @classmethod
    def from_band(
        cls,
        band_cpd: Any,
        *,
        ppd: float | ViewingGeometry,
        level: str = "half_amplitude",
        order: int = 4,
    ) -> Butterworth:
        """Band-pass Butterworth whose product response has edges ``band_cpd`` at ``level``."""
        lo, hi = _band_cpp(band_cpd, ppd)
        n = v.positive_int("order", order)
        b = math.log2(hi / lo)
        b_min = cls.min_octaves(n, level)
        if b <= b_min:
            raise ValueError(
                f"a Butterworth band-pass of order {n} cannot make {b:.4g} octaves at {level}: "
                f"its minimum is {b_min:.4f} octaves; raise order or use family 'log_gaussian'"
            )
        log_q = optimize.brentq(
            lambda t: cls._octaves_for_ratio(2.0**t, n, level) - b, 0.0, b + 4.0, xtol=1e-13, maxiter=200
        )
        q = 2.0**log_q
        centre = _geomean(lo, hi)
        bw = cls(centre / math.sqrt(q), centre * math.sqrt(q), n)
        got = bw.passband(level)
        if not (math.isclose(got.low_cpp, lo, rel_tol=1e-6) and math.isclose(got.high_cpp, hi, rel_tol=1e-6)):
            p = as_ppd(ppd)
            raise ValueError(
                f"band_cpd {list(band_cpd)!r} with order {n}: the Butterworth band-pass came out as "
                f"{got.low_cpp * p:.6g} - {got.high_cpp * p:.6g} cpd, not the requested band (beyond "
                "float64 accuracy); ask for a lower order or a narrower band"
            )
        return bw

    @classmethod
    def from_peak(  # type: ignore[override]  # narrower keywords than Filter.from_peak
        cls,
        peak_cpd: float,
        octaves: float,
        *,
        ppd: float | ViewingGeometry,
        level: str = "half_amplitude",
        order: int = 4,
    ) -> Butterworth:
        """Band-pass Butterworth peaking at ``peak_cpd`` with ``octaves`` bandwidth."""
        return cls.from_band(_peak_band(peak_cpd, octaves, ppd), ppd=ppd, level=level, order=order)

    @classmethod
    def lowpass(
        cls, cutoff_cpd: float, *, ppd: float | ViewingGeometry, level: str = "half_amplitude", order: int = 4
    ) -> Butterworth:
        """Low-pass Butterworth whose amplitude falls to ``level`` at ``cutoff_cpd``."""
        L = _level_fraction(level)
        p = as_ppd(ppd)
        fc = v.positive("cutoff_cpd", cutoff_cpd)
        if fc > p / 2:
            raise ValueError(f"cutoff_cpd {fc:g} cpd exceeds Nyquist ({p / 2:.4g} cpd at {p:.4g} ppd)")
        n = v.positive_int("order", order)
        return cls(None, fc / p / (1.0 / L**2 - 1.0) ** (1.0 / (2 * n)), n)


# =========================================================================================
# Log-Gaussian
# =========================================================================================
@dataclass(frozen=True)
class LogGaussian(Filter):
    """Gaussian on a log2-frequency axis: an octave-symmetric band-pass filter.

    Parameters
    ----------
    peak_cpp : float
        Peak frequency ``f0`` in cycles/pixel (> 0).
    sigma_octaves : float
        Standard deviation on the log2 axis, in octaves (> 0).

    Notes
    -----
    ``H(f) = exp(-log2(f / f0)^2 / (2 sigma^2))``, ``H(0) = 0``. Edges at level ``L`` are
    ``f0 * 2^(+-sigma sqrt(-2 ln L))``: the bandwidth is ``2 sigma sqrt(-2 ln L)`` octaves
    (2.355 sigma at half amplitude, 1.665 sigma at half power), centred on the peak, and any
    bandwidth can be made.
    """

    family: ClassVar[str] = "log_gaussian"
    peak_cpp: float
    sigma_octaves: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "peak_cpp", v.positive("peak_cpp", self.peak_cpp))
        object.__setattr__(self, "sigma_octaves", v.positive("sigma_octaves", self.sigma_octaves))

    def transfer(self, f_cpp: Any) -> np.ndarray:
        f = np.asarray(f_cpp, dtype=float)
        with np.errstate(all="ignore"):  # values where f <= 0 (or outside the band) are set to 0 below
            lg = np.log2(f / self.peak_cpp)
            h = np.exp(-(lg * lg) / (2.0 * self.sigma_octaves**2))
        return np.where(f > 0, h, 0.0)  # elementwise: no masked (fancy) indexing

    def passband(self, level: str = "half_amplitude") -> Passband:
        half_width = self.sigma_octaves * math.sqrt(-2.0 * math.log(_level_fraction(level)))
        f0 = self.peak_cpp
        return Passband("bandpass", level, f0, f0 * 2**-half_width, f0 * 2**half_width, 1.0, 0.0)

    @classmethod
    def from_band(cls, band_cpd: Any, *, ppd: float | ViewingGeometry, level: str = "half_amplitude") -> LogGaussian:
        """Log-Gaussian with edges ``band_cpd`` at ``level`` (peak at their geometric mean)."""
        lo, hi = _band_cpp(band_cpd, ppd)
        b = math.log2(hi / lo)
        return cls(_geomean(lo, hi), b / (2.0 * math.sqrt(-2.0 * math.log(_level_fraction(level)))))


# =========================================================================================
# Ideal
# =========================================================================================
@dataclass(frozen=True)
class Ideal(Filter):
    """Ideal (brick-wall) annulus: 1 for ``low <= f <= high``, 0 elsewhere.

    Parameters
    ----------
    low_cpp : float
        Inner radius in cycles/pixel (0 for a low-pass disc).
    high_cpp : float
        Outer radius in cycles/pixel (> ``low_cpp``).

    Notes
    -----
    The edges are the radii at any level; the "peak" is reported as the geometric mean of
    the edges (the response is flat). Its spatial kernel rings (a sinc-like Airy pattern).
    """

    family: ClassVar[str] = "ideal"
    low_cpp: float
    high_cpp: float

    def __post_init__(self) -> None:
        lo = v.positive("low_cpp", self.low_cpp, allow_zero=True)
        hi = v.positive("high_cpp", self.high_cpp)
        if hi <= lo:
            raise ValueError(f"high_cpp ({hi:g}) must be larger than low_cpp ({lo:g})")
        object.__setattr__(self, "low_cpp", lo)
        object.__setattr__(self, "high_cpp", hi)

    def transfer(self, f_cpp: Any) -> np.ndarray:
        f = np.asarray(f_cpp, dtype=float)
        return ((f >= self.low_cpp) & (f <= self.high_cpp)).astype(float)

    def passband(self, level: str = "half_amplitude") -> Passband:
        _level_fraction(level)
        if self.low_cpp == 0:
            return Passband("lowpass", level, 0.0, 0.0, self.high_cpp, 1.0, 1.0)
        return Passband("bandpass", level, _geomean(self.low_cpp, self.high_cpp), self.low_cpp, self.high_cpp, 1.0, 0.0)

    @classmethod
    def from_band(cls, band_cpd: Any, *, ppd: float | ViewingGeometry, level: str = "half_amplitude") -> Ideal:
        """Annulus with radii ``band_cpd`` (cycles/degree); ``level`` is irrelevant."""
        _level_fraction(level)
        lo, hi = _band_cpp(band_cpd, ppd)
        return cls(lo, hi)


# =========================================================================================
# Power law
# =========================================================================================
@dataclass(frozen=True)
class PowerLaw(Filter):
    """Power-law amplitude response for 1/f^alpha noise, optionally band-limited.

    Parameters
    ----------
    alpha : float
        Exponent of the *power* spectrum of filtered white noise, ``P(f) ~ 1 / f^alpha``
        (>= 0): 0 white, 1 pink, 2 brown (amplitude ``1/f``, like natural images). The
        amplitude response is ``f^(-alpha / 2)``.
    low_cpp, high_cpp : float, optional
        Hard band limits in cycles/pixel (response 0 outside ``[low, high]``).

    Notes
    -----
    ``H(0) = 0`` (no mean). The response is not normalized: only its shape matters once the
    RMS contrast is set. Its "band" is the pair of hard limits, at any level (0 and inf
    where absent); the response falls as ``f^(-alpha/2)`` between them, so a power-law
    spectrum is verified by its slope (:func:`stimgen.spectrum.measure_slope`), not by
    half-amplitude edges.
    """

    family: ClassVar[str] = "power_law"
    alpha: float = 1.0
    low_cpp: float | None = None
    high_cpp: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "alpha", v.positive("alpha", self.alpha, allow_zero=True))
        if self.low_cpp is not None:
            object.__setattr__(self, "low_cpp", v.positive("low_cpp", self.low_cpp))
        if self.high_cpp is not None:
            object.__setattr__(self, "high_cpp", v.positive("high_cpp", self.high_cpp))
        if self.low_cpp is not None and self.high_cpp is not None and self.high_cpp <= self.low_cpp:
            raise ValueError(f"high_cpp ({self.high_cpp:g}) must be larger than low_cpp ({self.low_cpp:g})")

    def transfer(self, f_cpp: Any) -> np.ndarray:
        f = np.asarray(f_cpp, dtype=float)
        keep = f > 0
        if self.low_cpp is not None:
            keep &= f >= self.low_cpp
        if self.high_cpp is not None:
            keep &= f <= self.high_cpp
        with np.errstate(all="ignore"):  # values where f <= 0 (or outside the band) are set to 0 below
            h = f ** (-self.alpha / 2.0)
        return np.where(keep, h, 0.0)  # elementwise: no masked (fancy) indexing

    def passband(self, level: str = "half_amplitude") -> Passband:
        """The hard limits (``level`` does not move them); peak at the lowest passed frequency."""
        _level_fraction(level)
        lo = self.low_cpp or 0.0
        hi = self.high_cpp if self.high_cpp is not None else math.inf
        kind = "highpass" if math.isinf(hi) and lo > 0 else ("bandpass" if lo > 0 else "lowpass")
        peak_value = lo ** (-self.alpha / 2.0) if lo > 0 else math.inf
        return Passband(kind, level, lo, lo, hi, peak_value, 0.0)

    @classmethod
    def from_band(
        cls, band_cpd: Any, *, ppd: float | ViewingGeometry, alpha: float = 1.0, level: str = "half_amplitude"
    ) -> PowerLaw:
        """1/f^alpha response limited to ``band_cpd = [low, high]`` in cycles/degree."""
        _level_fraction(level)
        lo, hi = _band_cpp(band_cpd, ppd)
        return cls(alpha, lo, hi)


# =========================================================================================
# Orientation window and products
# =========================================================================================
@dataclass(frozen=True)
class Orientation(Filter):
    """Orientation window: a Gaussian in the angle of the frequency vector.

    Parameters
    ----------
    angle_deg : float
        Orientation of the passed *grating stripes*, in degrees counter-clockwise from
        vertical as seen on the screen: 0 passes vertical stripes (luminance varying left to
        right), 90 horizontal stripes, 45 stripes tilted counter-clockwise from vertical,
        i.e. running from top-left to bottom-right (``\\``), 135 (same as -45) stripes running
        from bottom-left to top-right (``/``). This equals the angle of the frequency vector
        from the horizontal axis. PsychoPy's ``ori`` turns clockwise: ``angle_deg = -ori``.
    bandwidth_deg : float
        Full width of the window at half amplitude, in degrees (0 < bw <= 180).

    Notes
    -----
    With ``phi`` the angle of the frequency vector on screen (``atan2(-fy, fx)``, rows grow
    downwards) and ``d`` its axial distance to ``angle_deg`` (wrapped into [-90, 90)),
    ``W = exp(-d^2 / (2 s^2))`` with ``s = bandwidth_deg / (2 sqrt(2 ln 2))``. Real images
    have symmetric spectra, so ``angle`` and ``angle + 180`` are the same. ``W(0) = 1``.
    Multiply with a radial filter: ``DoG(...) * Orientation(45, 30)``.
    """

    family: ClassVar[str] = "orientation"
    radial: ClassVar[bool] = False
    angle_deg: float
    bandwidth_deg: float = 30.0

    def __post_init__(self) -> None:
        try:
            a = float(self.angle_deg)
        except (TypeError, ValueError):
            raise ValueError(f"angle_deg must be a number in degrees, got {self.angle_deg!r}") from None
        if not math.isfinite(a):
            raise ValueError(f"angle_deg must be finite, got {self.angle_deg!r}")
        object.__setattr__(self, "angle_deg", a)
        object.__setattr__(
            self, "bandwidth_deg", v.in_range("bandwidth_deg", self.bandwidth_deg, 0, 180, low_inclusive=False)
        )

    def response(self, fx_cpp: Any, fy_cpp: Any) -> np.ndarray:
        fx = np.asarray(fx_cpp, dtype=float)
        fy = np.asarray(fy_cpp, dtype=float)
        phi = np.degrees(np.arctan2(-fy, fx))  # frequency-vector angle on screen
        d = (phi - self.angle_deg + 90.0) % 180.0 - 90.0
        s = self.bandwidth_deg / (2.0 * math.sqrt(2.0 * math.log(2.0)))
        w = np.exp(-(d * d) / (2.0 * s * s))
        return np.where((fx == 0) & (fy == 0), 1.0, w)

    def passband(self, level: str = "half_amplitude") -> Passband:
        raise ValueError("an orientation window has no radial passband; multiply it with a radial filter")


@dataclass(frozen=True)
class Product(Filter):
    """Product of filters (e.g. a radial band-pass times an orientation window).

    Parameters
    ----------
    factors : tuple of Filter
        The filters multiplied. The radial passband is that of the product of the radial
        factors; orientation windows select orientations without changing it.
    """

    family: ClassVar[str] = "product"
    factors: tuple[Filter, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not self.factors or not all(isinstance(f, Filter) for f in self.factors):
            raise ValueError("factors must be a non-empty tuple of filters")
        if not any(f.radial for f in self.factors):
            raise ValueError("a product needs at least one radial filter to define a passband")

    def transfer(self, f_cpp: Any) -> np.ndarray:
        h = np.ones_like(np.asarray(f_cpp, dtype=float))
        for f in self.factors:
            if f.radial:
                h = h * f.transfer(f_cpp)
        return h

    def response(self, fx_cpp: Any, fy_cpp: Any) -> np.ndarray:
        h = np.ones(np.broadcast_shapes(np.shape(fx_cpp), np.shape(fy_cpp)))
        for f in self.factors:
            h = h * f.response(fx_cpp, fy_cpp)
        return h

    def passband(self, level: str = "half_amplitude") -> Passband:
        part = radial_part(self)
        if part is not self and part is not None:
            return part.passband(level)
        return _numeric_passband(self.transfer, level)

    def params(self) -> dict[str, Any]:
        return {"factors": [f.to_record() for f in self.factors]}

    def describe(self, ppd: float | ViewingGeometry | None = None, level: str = "half_amplitude") -> dict[str, Any]:
        d = {"family": self.family, "level": level, "factors": [f.describe(ppd, level) for f in self.factors]}
        d.update(self.passband(level).to_dict(ppd))
        return d


def radial_part(filt: Filter | None) -> Filter | None:
    """The part of a filter that defines its radial band.

    The filter itself when radial; the single radial factor of a product (an orientation
    window only selects orientations); the product itself when it has several radial
    factors (its radial transfer is their product); None for an orientation window alone
    (or None).
    """
    if isinstance(filt, Product):
        radial = [f for f in filt.factors if f.radial]
        return radial[0] if len(radial) == 1 else filt
    return filt if filt is not None and filt.radial else None


# =========================================================================================
# Registry and design
# =========================================================================================
#: Filter classes by family name (the ``family`` key of records and YAML files).
FAMILIES: dict[str, type[Filter]] = {
    "gaussian": Gaussian,
    "dog": DoG,
    "butterworth": Butterworth,
    "log_gaussian": LogGaussian,
    "ideal": Ideal,
    "power_law": PowerLaw,
    "orientation": Orientation,
    "product": Product,
}

_DESIGNABLE = ("dog", "log_gaussian", "butterworth", "ideal", "power_law")


def filter_from_record(record: dict[str, Any]) -> Filter:
    """Rebuild a filter from :meth:`Filter.to_record` output (e.g. a manifest entry)."""
    rec = dict(record)
    family = v.choice("family", rec.pop("family", None), FAMILIES)
    if family == "product":
        factors = rec.get("factors")
        if not isinstance(factors, (list, tuple)) or not factors:
            raise ValueError("a 'product' record needs a non-empty list 'factors'")
        return Product(tuple(filter_from_record(r) for r in factors))
    cls = FAMILIES[family]
    params = fields(cls)  # type: ignore[arg-type]
    allowed = {f.name for f in params}
    required = {f.name for f in params if f.default is MISSING and f.default_factory is MISSING}
    unknown, missing = set(rec) - allowed, required - set(rec)
    if unknown or missing:
        raise ValueError(
            f"record for family {family!r} has unknown parameters {sorted(unknown)} and lacks "
            f"{sorted(missing)}; it takes {sorted(allowed)}"
        )
    return cls(**rec)


def design_filter(
    family: str,
    *,
    ppd: float | ViewingGeometry,
    band_cpd: Any = None,
    peak_cpd: float | None = None,
    octaves: float | None = None,
    level: str = "half_amplitude",
    order: int = 4,
    alpha: float = 1.0,
) -> Filter:
    """Design a band-pass filter of ``family`` from a band in cycles/degree.

    Parameters
    ----------
    family : {"dog", "log_gaussian", "butterworth", "ideal", "power_law"}
        Filter family.
    ppd : float or ViewingGeometry
        Pixels per degree.
    band_cpd : (float, float), optional
        Requested band edges ``[low, high]`` in cycles/degree at ``level``.
    peak_cpd, octaves : float, optional
        Alternatively, the peak in cycles/degree and the bandwidth in octaves.
    level : {"half_amplitude", "half_power"}
        Amplitude level that defines the edges.
    order : int
        Butterworth order (ignored by other families).
    alpha : float
        Power-spectrum exponent of "power_law" (its band is a pair of hard limits).

    Returns
    -------
    Filter
        The designed filter; ``filter.passband(level)`` reproduces the request (for
        "power_law" the band is the pair of hard limits).
    """
    fam = v.choice("family", family, _DESIGNABLE)
    _level_fraction(level)
    try:  # designs are pure functions of their arguments: reuse them (root finding costs ~1 ms)
        return _design_cached(
            fam, as_ppd(ppd), None if band_cpd is None else v.pair("band_cpd", band_cpd),
            peak_cpd, octaves, level, order, alpha,
        )
    except TypeError:  # unhashable arguments: design without the cache
        return _design(fam, as_ppd(ppd), band_cpd, peak_cpd, octaves, level, order, alpha)


@functools.lru_cache(maxsize=256)
def _design_cached(*args: Any) -> Filter:
    return _design(*args)


def _design(
    fam: str, ppd: float, band_cpd: Any, peak_cpd: Any, octaves: Any, level: str, order: int, alpha: float
) -> Filter:
    cls = FAMILIES[fam]
    per_family: dict[str, dict[str, Any]] = {"butterworth": {"order": order}, "power_law": {"alpha": alpha}}
    extra = per_family.get(fam, {})
    if band_cpd is not None:
        if peak_cpd is not None or octaves is not None:
            raise ValueError("give either band_cpd or peak_cpd with octaves, not both")
        return cls.from_band(band_cpd, ppd=ppd, level=level, **extra)  # type: ignore[attr-defined]
    if peak_cpd is None or octaves is None:
        raise ValueError("a band needs band_cpd=[low, high] or both peak_cpd and octaves")
    return cls.from_peak(peak_cpd, octaves, ppd=ppd, level=level, **extra)  # type: ignore[attr-defined]


# =========================================================================================
# Application
# =========================================================================================
def apply_filter(
    image: Any,
    filt: Filter,
    *,
    workers: int | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Filter an image or a stack of images in the FFT domain (circular boundaries).

    Parameters
    ----------
    image : ndarray, shape (H, W) or (N, H, W)
        Image(s); the last two axes are spatial. float32 stays float32, float64 stays
        float64, integer input is converted to float64 (values unchanged, never rescaled).
    filt : Filter
        Any filter of this module (transfer in cycles/pixel).
    workers : int, optional
        Threads for ``scipy.fft`` (default: scipy's default, 1; -1 for all cores).
    out : ndarray, optional
        Array of the input's shape and float dtype to write the result into.

    Returns
    -------
    ndarray
        Filtered image(s), same shape, float dtype.

    Notes
    -----
    ``irfft2(rfft2(image) * H)`` with ``H`` the cached transfer grid, so the output's
    spectrum is the input's times ``H`` exactly on every DFT frequency.
    """
    if not isinstance(filt, Filter):
        raise ValueError(f"filt must be a stimgen filter, got {type(filt).__name__}")
    a = v.image_stack("image", image)
    if a.dtype not in (np.float32, np.float64):
        a = a.astype(np.float64)
    if out is not None and out.shape != a.shape:
        raise ValueError(f"out has shape {out.shape}, expected {a.shape}")
    return _apply(a, filt, workers, out)


def _apply(a: np.ndarray, filt: Filter, workers: int | None, out: np.ndarray | None) -> np.ndarray:
    """FFT-domain filtering of validated float images (the core of :func:`apply_filter`)."""
    from scipy import fft

    h, w = a.shape[-2:]
    spec = fft.rfft2(a, axes=(-2, -1), workers=workers)
    spec *= filt.grid((h, w), real=True, dtype=a.dtype)
    res = fft.irfft2(spec, s=(h, w), axes=(-2, -1), workers=workers, overwrite_x=True)
    if out is None:
        return res
    out[...] = res
    return out



# =========================================================================================
# Critical-band families: low-pass, high-pass and notch (Solomon & Pelli 1994)
# =========================================================================================
#: Noise families for critical-band masking, designed by :func:`critical_band_filter`.
CRITICAL_BAND_FAMILIES = ("lowpass", "highpass", "notch")
#: Roll-offs of the low- and high-pass families.
ROLLOFFS = ("butterworth", "gaussian")


@dataclass(frozen=True)
class GaussianHighpass(Filter):
    """Gaussian high-pass, power-complementary to the Gaussian low-pass of the same sigma.

    Parameters
    ----------
    sigma_px : float
        Spatial standard deviation in pixels of the complementary low-pass :class:`Gaussian`.

    Notes
    -----
    ``H(f) = sqrt(1 - G(f)^2)`` with ``G(f) = exp(-2 pi^2 sigma^2 f^2)``, so
    ``|H|^2 + |G|^2 = 1``: low-pass and high-pass noise of the same sigma add up to white
    noise in power. ``H(0) = 0``; the amplitude rises to ``L`` at
    ``f_L = sqrt(-ln(1 - L^2)) / (2 pi sigma)`` (``f sigma = 0.08541`` at half amplitude,
    ``0.13251`` at half power).
    """

    family: ClassVar[str] = "gaussian_highpass"
    sigma_px: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "sigma_px", v.positive("sigma_px", self.sigma_px))

    def transfer(self, f_cpp: Any) -> np.ndarray:
        f = np.asarray(f_cpp, dtype=float)
        return np.sqrt(-np.expm1(-2.0 * _TWO_PI2 * self.sigma_px**2 * f * f))

    def passband(self, level: str = "half_amplitude") -> Passband:
        L = _level_fraction(level)
        edge = math.sqrt(-math.log1p(-L * L)) / (2.0 * math.pi * self.sigma_px)
        return Passband("highpass", level, math.inf, edge, math.inf, 1.0, 0.0)

    @classmethod
    def from_cutoff(
        cls, cutoff_cpd: float, *, ppd: float | ViewingGeometry, level: str = "half_amplitude"
    ) -> GaussianHighpass:
        """Gaussian high-pass whose amplitude rises to ``level`` at ``cutoff_cpd`` (cpd)."""
        L = _level_fraction(level)
        fc = _cutoff_cpp(cutoff_cpd, ppd)
        return cls(math.sqrt(-math.log1p(-L * L)) / (2.0 * math.pi * fc))


def _cutoff_cpp(cutoff_cpd: Any, ppd: float | ViewingGeometry) -> float:
    """Validate a cutoff in cpd against Nyquist; return it in cycles/pixel."""
    p = as_ppd(ppd)
    fc = v.positive("cutoff_cpd", cutoff_cpd)
    if fc > p / 2:
        raise ValueError(f"cutoff_cpd {fc:g} cpd exceeds Nyquist ({p / 2:.4g} cpd at {p:.4g} ppd)")
    return fc / p


@dataclass(frozen=True)
class Notch(Filter):
    """Notch (band-stop) filter, power-complementary to a Butterworth band-pass.

    Parameters
    ----------
    low_cutoff_cpp, high_cutoff_cpp : float
        Cutoffs of the complementary :class:`Butterworth` band-pass ``B``, cycles/pixel.
    order : int
        Order of ``B`` (>= 1); steeper notch walls with higher order.

    Notes
    -----
    ``H(f) = sqrt(1 - |B(f)|^2)``: notched noise plus the band-pass noise of ``B`` add up to
    white noise in power. ``H = 1`` at DC and far from the notch; the notch is deepest at
    ``sqrt(f_lo f_hi)``, where ``H = sqrt(1 - B_peak^2)`` (:attr:`depth`). The notch's band
    edges at a level ``L`` are where its own amplitude rises back to ``L``, i.e. where
    ``|B| = sqrt(1 - L^2)``; at half power they are the half-power edges of ``B``. Its
    :class:`Passband` has ``kind="notch"``: ``low_cpp``/``high_cpp`` are the stop-band
    edges, ``peak_cpp`` is 0 (the amplitude is largest, 1, away from the notch) and
    ``center_cpp`` is the notch centre. An order-8 notch of one octave with edges at half
    amplitude is on average 23.6 dB down over its central third of an octave.
    """

    family: ClassVar[str] = "notch"
    low_cutoff_cpp: float
    high_cutoff_cpp: float
    order: int = 8

    def __post_init__(self) -> None:
        lo = v.positive("low_cutoff_cpp", self.low_cutoff_cpp)
        hi = v.positive("high_cutoff_cpp", self.high_cutoff_cpp)
        if hi < lo:
            raise ValueError(f"high_cutoff_cpp ({hi:g}) must not be below low_cutoff_cpp ({lo:g})")
        object.__setattr__(self, "low_cutoff_cpp", lo)
        object.__setattr__(self, "high_cutoff_cpp", hi)
        object.__setattr__(self, "order", v.positive_int("order", self.order))

    @property
    def bandpass(self) -> Butterworth:
        """The complementary Butterworth band-pass ``B``."""
        return Butterworth(self.low_cutoff_cpp, self.high_cutoff_cpp, self.order)

    @property
    def center_cpp(self) -> float:
        """Notch centre (deepest point) ``sqrt(f_lo f_hi)`` in cycles/pixel."""
        return math.sqrt(self.low_cutoff_cpp * self.high_cutoff_cpp)

    @property
    def depth(self) -> float:
        """Amplitude at the notch centre, ``sqrt(1 - B_peak^2)`` (0 for a perfect notch)."""
        return float(self.transfer(self.center_cpp))

    def transfer(self, f_cpp: Any) -> np.ndarray:
        b = self.bandpass.transfer(f_cpp)
        return np.sqrt(np.maximum(1.0 - b * b, 0.0))

    def passband(self, level: str = "half_amplitude") -> Passband:
        """Stop-band edges at ``level`` (where ``H`` rises back to ``L``), kind ``"notch"``."""
        L = _level_fraction(level)
        fc = self.center_cpp
        if self.depth >= L:
            raise ValueError(
                f"this notch is only {self.depth:.4g} deep (amplitude at its centre): it never "
                f"falls to {level} ({L:.4g}); widen the cutoffs or raise the order"
            )

        def g(f: float) -> float:
            return float(self.transfer(f)) - L

        top = 2.0 * fc
        while g(top) < 0:
            top *= 2.0
        f_hi = optimize.brentq(g, fc, top, xtol=1e-300, rtol=1e-15, maxiter=500)
        return Passband("notch", level, 0.0, fc * fc / f_hi, f_hi, 1.0, 1.0)

    @classmethod
    def from_band(
        cls, band_cpd: Any, *, ppd: float | ViewingGeometry, level: str = "half_amplitude", order: int = 8
    ) -> Notch:
        """Notch whose stop-band edges at ``level`` are ``band_cpd = (lo, hi)`` (cpd).

        The cutoffs of ``B`` are placed symmetrically (on a log axis) about
        ``sqrt(lo hi)`` so that ``|B| = sqrt(1 - L^2)`` at both requested edges.
        """
        lo, hi = _band_cpp(band_cpd, ppd)
        n = v.positive_int("order", order)
        L = _level_fraction(level)
        centre = math.sqrt(lo * hi)
        target = math.sqrt(1.0 - L * L)

        def g(log_q: float) -> float:
            q = 2.0**log_q
            return float(Butterworth(centre / math.sqrt(q), centre * math.sqrt(q), n).transfer(hi)) - target

        # g(0) < 0: with equal cutoffs |B| <= 1/2 < sqrt(1 - L^2) everywhere
        top = math.log2(hi / lo) + 4.0
        while g(top) < 0:
            top *= 2.0
        log_q = optimize.brentq(g, 0.0, top, xtol=1e-14, maxiter=500)
        q = 2.0**log_q
        # |B| = sqrt(1 - L^2) at the edges and larger between them: the notch reaches L
        return cls(centre / math.sqrt(q), centre * math.sqrt(q), n)


def _highpass_butterworth(cutoff_cpd: Any, ppd: float | ViewingGeometry, level: str, order: int) -> Butterworth:
    """High-pass Butterworth whose amplitude rises to ``level`` at ``cutoff_cpd``."""
    L = _level_fraction(level)
    fc = _cutoff_cpp(cutoff_cpd, ppd)
    n = v.positive_int("order", order)
    return Butterworth(fc * (1.0 / L**2 - 1.0) ** (1.0 / (2 * n)), None, n)


def critical_band_filter(
    family: str,
    *,
    ppd: float | ViewingGeometry,
    cutoff_cpd: float | None = None,
    band_cpd: Any = None,
    peak_cpd: float | None = None,
    octaves: float | None = None,
    level: str = "half_amplitude",
    order: int | None = None,
    rolloff: str = "butterworth",
) -> Filter:
    """Design a low-pass, high-pass or notch filter for critical-band masking.

    Parameters
    ----------
    family : {"lowpass", "highpass", "notch"}
        Filter family.
    ppd : float or ViewingGeometry
        Pixels per degree.
    cutoff_cpd : float
        Low- and high-pass: the frequency in cycles/degree where the amplitude is at
        ``level`` (default: half amplitude, like every band edge).
    band_cpd : (float, float), optional
        Notch: the stop-band edges in cycles/degree, where the notch's amplitude rises back
        to ``level``. Alternatively ``peak_cpd`` (the notch centre) with ``octaves``.
    level : {"half_amplitude", "half_power"}
        Amplitude level of the cutoff or edges.
    order : int, optional
        Butterworth order (low-/high-pass with ``rolloff="butterworth"``, and the notch's
        complementary band-pass); default 4, and 8 for the notch (an order-4 notch of one
        octave is only 13 dB down).
    rolloff : {"butterworth", "gaussian"}
        Low- and high-pass shape. The Gaussian high-pass is power-complementary to a
        Gaussian low-pass (:class:`GaussianHighpass`); the notch is Butterworth only.

    Returns
    -------
    Filter
        :class:`Butterworth` or :class:`Gaussian` (low-pass), :class:`Butterworth` or
        :class:`GaussianHighpass` (high-pass), :class:`Notch`; its ``passband(level)``
        reproduces the request.
    """
    fam = v.choice("family", family, CRITICAL_BAND_FAMILIES)
    roll = v.choice("rolloff", rolloff, ROLLOFFS)
    order = (8 if fam == "notch" else 4) if order is None else order
    _level_fraction(level)
    if fam in ("lowpass", "highpass"):
        if band_cpd is not None or peak_cpd is not None or octaves is not None:
            raise ValueError(f"family {fam!r} takes cutoff_cpd, not band_cpd, peak_cpd or octaves")
        if cutoff_cpd is None:
            raise ValueError(f"family {fam!r} needs cutoff_cpd (cpd, at {level})")
        if fam == "lowpass":
            if roll == "gaussian":
                return Gaussian.from_cutoff(cutoff_cpd, ppd=ppd, level=level)
            return Butterworth.lowpass(cutoff_cpd, ppd=ppd, level=level, order=order)
        if roll == "gaussian":
            return GaussianHighpass.from_cutoff(cutoff_cpd, ppd=ppd, level=level)
        return _highpass_butterworth(cutoff_cpd, ppd, level, order)
    if cutoff_cpd is not None:
        raise ValueError("family 'notch' takes band_cpd (the stop-band edges), not cutoff_cpd")
    if roll != "butterworth":
        raise ValueError(f"family 'notch' is power-complementary to a Butterworth band-pass; rolloff {roll!r} is not available")
    if band_cpd is not None:
        if peak_cpd is not None or octaves is not None:
            raise ValueError("give either band_cpd or peak_cpd with octaves, not both")
        return Notch.from_band(band_cpd, ppd=ppd, level=level, order=order)
    if peak_cpd is None or octaves is None:
        raise ValueError("a notch needs band_cpd=[low, high] (cpd) or both peak_cpd and octaves")
    return Notch.from_band(_peak_band(peak_cpd, octaves, ppd), ppd=ppd, level=level, order=order)


FAMILIES.update({"gaussian_highpass": GaussianHighpass, "notch": Notch})
