"""Dense Lucas-Kanade optical flow with a reliability output.

Contents
--------
lucas_kanade      dense flow between two frames -> :class:`FlowResult`
movie_flow        median flow over the reliable pixels of a ``(T, H, W)`` movie -> :class:`MovieFlow`
FlowResult        per-pixel flow, eigenvalues, reliability mask and normal flow
MovieFlow         per-pair and overall median flow of a movie
to_deg_per_s      px/frame -> deg/s

Conventions (stated once, used everywhere in this module)
---------------------------------------------------------
* **Sign and axis order.** ``u`` is the x (column) component and ``v`` the y (row)
  component of the displacement of image content *from* ``reference_image`` *to*
  ``moving_image``, in px/frame::

      moving_image(x + u, y + v) == reference_image(x, y)

  Content drifting rightwards gives ``u > 0``; content drifting downwards (towards
  increasing row index) gives ``v > 0``. Note that ``skimage.registration.optical_flow_ilk``
  returns the row component first, ``(v, u)``, and that the textbook normal equations
  need ``b = -I_t``: ``A [u, v]^T = -[sum I_x I_t, sum I_y I_t]^T`` with
  ``I_t = moving - reference``.
* **Structure tensor.** ``A = G_w * [[I_x^2, I_x I_y], [I_x I_y, I_y^2]]`` with a Gaussian
  window ``G_w`` of standard deviation ``sigma_window`` px. Its eigenvalues are in
  (image units / px)^2. ``I_x`` and ``I_y`` are Gaussian derivatives of standard deviation
  ``sigma_derivative`` px (``I_t`` smoothed by the same Gaussian), or Sobel kernels divided
  by 8 (``I_t`` smoothed by the matching ``[1, 2, 1] / 4`` binomial in both axes).
* **Brightness.** By default (``normalize="global"``) the moving frame is modelled as
  ``gain * reference + offset``: each frame's mean is removed and the moving frame's RMS
  contrast matched to the reference's, so a global brightness or contrast change (a
  flicker, a camera's exposure) creates no flow. ``normalize=None`` uses the raw values.
* **Reliability.** A pixel is *reliable* when (1) the smaller eigenvalue of ``A`` reaches
  the threshold (default 1e-4 of the image-mean trace), (2) the flow does not point
  outside the moving frame and, with ``consistency=True`` (default), (3) the flow measured
  backwards from the moving frame returns within ``consistency_px`` (0.5 px) of the start
  and the last warping iteration changed the estimate by at most that much. (1) says only
  that the local system is well conditioned; (3) rejects occlusions, motion boundaries and
  wrong or unconverged matches.
* **The aperture problem.** Where only the larger eigenvalue reaches the threshold (a grating, an edge: the tensor is rank 1),
  only the *normal flow* -- the component along the dominant gradient direction -- is
  determined; :class:`FlowResult` reports it in ``normal_u``, ``normal_v`` and sets ``u``,
  ``v`` to NaN there. Where neither eigenvalue reaches it (no texture) everything is NaN.
* **Large shifts.** Each estimate is refined by warping the moving frame with the current
  flow (cubic B-spline interpolation) and re-solving, from coarse to fine over a Gaussian
  pyramid. Downsampling keeps the ratio shift / pattern period, so for narrow-band stimuli
  the pyramid helps only until the pattern approaches the coarse level's Nyquist limit;
  ``levels="auto"`` stops before that (see :func:`lucas_kanade`).
* **Units.** Flow in px/frame; ``to_deg_per_s`` multiplies by ``fps / ppd``. Directions
  (where reported) are in degrees counter-clockwise from rightward with *up* on the screen
  positive, i.e. ``atan2(-v, u)``.
"""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Callable
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeoutError
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import fft as sfft
from scipy import ndimage as ndi

from . import _validate as val
from .geometry import ViewingGeometry, as_ppd

__all__ = [
    "FlowResult",
    "MovieFlow",
    "auto_levels",
    "lucas_kanade",
    "movie_flow",
    "to_deg_per_s",
]

_DERIVATIVES = ("gaussian", "sobel")
#: default eigenvalue threshold, as a fraction of the image-mean trace of the tensor
RELATIVE_THRESHOLD = 1e-4
#: default largest forward-backward error (px) of a consistent pixel
CONSISTENCY_PX = 0.5
#: coarse pyramid levels: solve threshold (fraction of the mean trace, as the old default)
#: and iterations per level (times ``iterations``; they cost little there)
_COARSE_THRESHOLD = 1e-2
_COARSE_ITERATIONS = 3
#: stopping rule: a level's iterations end once at most _STOP_SHARE of its pixels moved by
#: more than _STOP_PX (finest level, px; the iteration contracts the error ~25-fold per
#: step, so ~1e-4 px remains), _STOP_PX_COARSE (coarse levels, their px) or
#: _STOP_PX_BACKWARD (the finest level of the backward estimate of the consistency check,
#: which only has to be well within consistency_px)
_STOP_PX = 2e-3
_STOP_PX_COARSE = 0.01
_STOP_PX_BACKWARD = 0.05
_STOP_SHARE = 0.01
#: phase-correlation peaks tried (besides zero) as starts of the coarsest level
_CANDIDATE_PEAKS = 3
#: ... when the pyramid has at least this many levels (the coarsest has <= 1/16 of the
#: pixels, so the candidates cost little)
_CANDIDATE_MIN_LEVELS = 3
#: smallest image side (px) accepted, and smallest side of a pyramid level
MIN_SIZE_PX = 8
_MIN_LEVEL_SIZE_PX = 16
#: Gaussian antialiasing filter (px) before each 2x pyramid downsampling
_PYRAMID_SIGMA_PX = 1.0
_WINDOW_TRUNCATE = 3.0
_MAX_LEVELS = 6
#: the window follows the flow smoothed over this many sigma_window (box filter)
_FLOW_SMOOTHING = 2.0
#: updates of windows that lost data outside the frame are scaled up by at most 1 / this
_MIN_VALID_SHARE = 0.25


# == result objects ====================================================================
@dataclass(frozen=True, eq=False)
class FlowResult:
    """Dense flow between two frames; every array has the frames' shape ``(H, W)``.

    Attributes
    ----------
    u, v : ndarray
        Flow in px/frame, x (columns, rightwards) and y (rows, downwards), such that
        ``moving(x + u, y + v) = reference(x, y)``. NaN where not :attr:`reliable`.
    min_eigenvalue, max_eigenvalue : ndarray
        Eigenvalues of the structure tensor at the finest level, in (image units / px)^2.
    reliable : ndarray of bool
        ``min_eigenvalue >= threshold``, ``(x + u, y + v)`` inside the moving frame and,
        when the consistency check ran, ``fb_error_px <= consistency_px``.
    normal_u, normal_v : ndarray
        Normal flow in px/frame: the flow projected on the dominant gradient direction
        (the eigenvector of ``max_eigenvalue``). Defined wherever
        ``max_eigenvalue >= threshold`` (NaN elsewhere); on a grating it is all the
        data determine. Equals the projection of ``(u, v)`` where reliable.
    threshold : float
        The eigenvalue threshold used, in (image units / px)^2.
    levels : int
        Pyramid levels used (1 = single scale).
    iterations : int
        Warping iterations per level.
    sigma_window : float
        Gaussian window standard deviation in px.
    derivative : str
        ``"gaussian"`` or ``"sobel"``.
    normalize : str or None
        Brightness model used: ``"global"`` or None (see :func:`lucas_kanade`).
    brightness_gain, brightness_offset : float
        With ``normalize="global"``, the moving frame's brightness as
        ``gain * reference + offset`` (offset in image units) that was removed before the
        flow was measured; 1 and 0 with ``normalize=None``.
    consistency_px : float or None
        Forward-backward threshold in px; None if the check was off.
    fb_error_px : ndarray or None
        Forward-backward error ``|f(x) + b(x + f(x))|`` in px at every pixel (None if the
        check was off).
    last_update_px : ndarray or None
        Length in px of the change of the flow in the last warping iteration at the
        finest level: large where the iteration has not converged.
    """

    u: np.ndarray
    v: np.ndarray
    min_eigenvalue: np.ndarray
    max_eigenvalue: np.ndarray
    reliable: np.ndarray
    normal_u: np.ndarray
    normal_v: np.ndarray
    threshold: float
    levels: int
    iterations: int
    sigma_window: float
    derivative: str
    normalize: str | None = None
    brightness_gain: float = 1.0
    brightness_offset: float = 0.0
    consistency_px: float | None = None
    fb_error_px: np.ndarray | None = None
    last_update_px: np.ndarray | None = None

    @property
    def aperture(self) -> np.ndarray:
        """Bool mask: only the normal flow is known (rank-1 tensor, e.g. a grating)."""
        has_normal = (self.max_eigenvalue >= self.threshold) & (self.max_eigenvalue > 0)
        return has_normal & ~((self.min_eigenvalue >= self.threshold) & (self.min_eigenvalue > 0))

    @property
    def reliable_fraction(self) -> float:
        """Fraction of pixels that are reliable, in [0, 1]."""
        return float(np.count_nonzero(self.reliable)) / self.reliable.size

    def median(self) -> tuple[float, float]:
        """Median ``(u, v)`` in px/frame over the reliable pixels (NaN, NaN if none)."""
        if not self.reliable.any():
            return math.nan, math.nan
        return float(np.median(self.u[self.reliable])), float(np.median(self.v[self.reliable]))

    def summary(
        self, *, ppd: float | ViewingGeometry | None = None, fps: float | None = None
    ) -> dict[str, Any]:
        """A JSON-ready summary: median flow, reliable fraction, and deg/s when possible.

        Parameters
        ----------
        ppd : float or ViewingGeometry, optional
            Pixels per degree; with ``fps`` adds the deg/s values.
        fps : float, optional
            Frame rate in Hz (frames per second).
        """
        mu, mv = self.median()
        d: dict[str, Any] = {
            "median_u_px_per_frame": mu,
            "median_v_px_per_frame": mv,
            "reliable_fraction": self.reliable_fraction,
            "aperture_fraction": float(np.count_nonzero(self.aperture)) / self.aperture.size,
            "shape": list(self.u.shape),
            "threshold": self.threshold,
            "levels": self.levels,
            "iterations": self.iterations,
            "sigma_window_px": self.sigma_window,
            "derivative": self.derivative,
            "normalize": self.normalize,
            "brightness_gain": self.brightness_gain,
            "brightness_offset": self.brightness_offset,
            "consistency_px": self.consistency_px,
            "convention": "moving(x + u, y + v) = reference(x, y); u rightwards, v downwards",
        }
        d.update(_speed_dict(mu, mv, ppd, fps))
        return d


@dataclass(frozen=True, eq=False)
class MovieFlow:
    """Median flow of a movie over its consecutive frame pairs.

    Attributes
    ----------
    u, v : float
        Median over pairs of each pair's median flow over reliable pixels, px/frame
        (x rightwards, y downwards). NaN if no pair has a reliable pixel.
    reliable_fraction : float
        Mean over pairs of the fraction of reliable pixels (inside the margin).
    pair_u, pair_v : ndarray, shape (P,)
        Per-pair median flow in px/frame (NaN for pairs without reliable pixels).
    pair_reliable_fraction : ndarray, shape (P,)
        Per-pair reliable fraction.
    pairs : ndarray of int, shape (P,)
        Index ``t`` of each analysed pair ``(t, t + 1)``.
    margin_px : int
        Border excluded from every statistic, in px.
    """

    u: float
    v: float
    reliable_fraction: float
    pair_u: np.ndarray
    pair_v: np.ndarray
    pair_reliable_fraction: np.ndarray
    pairs: np.ndarray
    margin_px: int
    options: dict[str, Any] = field(default_factory=dict)

    def to_deg_per_s(self, ppd: float | ViewingGeometry, fps: float) -> tuple[float, float]:
        """The median flow ``(u, v)`` in deg/s (x rightwards, y downwards)."""
        return to_deg_per_s(self.u, self.v, ppd=ppd, fps=fps)

    def summary(
        self, *, ppd: float | ViewingGeometry | None = None, fps: float | None = None
    ) -> dict[str, Any]:
        """A JSON-ready summary (see :meth:`FlowResult.summary`)."""
        d: dict[str, Any] = {
            "median_u_px_per_frame": self.u,
            "median_v_px_per_frame": self.v,
            "reliable_fraction": self.reliable_fraction,
            "pairs": len(self.pairs),
            "margin_px": self.margin_px,
            **self.options,
        }
        d.update(_speed_dict(self.u, self.v, ppd, fps))
        return d


def to_deg_per_s(
    u: Any, v: Any, *, ppd: float | ViewingGeometry, fps: float
) -> tuple[Any, Any]:
    """Convert a flow from px/frame to deg/s.

    Parameters
    ----------
    u, v : float or ndarray
        Flow in px/frame (x rightwards, y downwards).
    ppd : float or ViewingGeometry
        Pixels per degree (> 0).
    fps : float
        Frame rate in Hz (> 0).

    Returns
    -------
    (u_deg_per_s, v_deg_per_s)
        ``u * fps / ppd`` and ``v * fps / ppd``; same axes and signs as the input.
    """
    k = val.positive("fps", fps) / as_ppd(ppd)
    if np.ndim(u) == 0 and np.ndim(v) == 0:
        return float(u) * k, float(v) * k
    return np.asarray(u, dtype=float) * k, np.asarray(v, dtype=float) * k


def _speed_dict(mu: float, mv: float, ppd: Any, fps: Any) -> dict[str, Any]:
    if (ppd is None) != (fps is None):
        raise ValueError("deg/s needs both ppd and fps; got only one of them")
    if ppd is None:
        return {}
    ud, vd = to_deg_per_s(mu, mv, ppd=ppd, fps=fps)
    speed = math.hypot(ud, vd)
    return {
        "ppd": as_ppd(ppd),
        "fps": float(fps),
        "median_u_deg_per_s": ud,
        "median_v_deg_per_s": vd,
        "speed_deg_per_s": speed,
        "direction_deg": math.degrees(math.atan2(-vd, ud)) % 360.0 if speed > 0 else math.nan,
    }


# == validation ========================================================================
#: accepted ``normalize`` values
_NORMALIZE = ("global",)
#: bounds on the options (cost grows with them; beyond them nothing improves)
MAX_ITERATIONS = 100
MAX_SIGMA_WINDOW_PX = 64.0
MAX_SIGMA_DERIVATIVE_PX = 16.0


def _value_limit(dtype: Any) -> float:
    """Largest accepted value range (max - min) of a frame computed in ``dtype``: 1e-4 of
    the square root of the largest float (1.3e150 for float64, 1.8e15 for float32), so
    that squared gradients and eigenvalues in image units cannot overflow."""
    return math.sqrt(float(np.finfo(dtype).max)) * 1e-4


def _frame_stats(name: str, a: np.ndarray, limit: float) -> tuple[np.ndarray, float, float]:
    """``a`` as float64 with its mean removed, its mean and RMS, without overflow."""
    x = np.asarray(a, dtype=np.float64)
    lo, hi = float(x.min()), float(x.max())
    with np.errstate(over="ignore"):
        span = hi - lo
    if not span <= limit:
        raise ValueError(
            f"{name} has values from {lo:.6g} to {hi:.6g}: a range of {span:.3g}; flow "
            f"accepts a range (max - min) <= {limit:.3g} for this dtype (its structure "
            "tensor squares the gradients). Rescale both frames by the same factor: the "
            "flow does not depend on it"
        )
    mean = lo + float(np.mean(x - lo))
    x = x - mean
    peak = float(np.max(np.abs(x)))
    rms = peak * math.sqrt(float(np.mean((x / peak) ** 2))) if peak > 0 else 0.0
    return x, mean, rms


def _check_frames(
    reference_image: Any, moving_image: Any, normalize: str | None
) -> tuple[np.ndarray, np.ndarray, float, float, float]:
    """Validate the frames and bring them to a common internal scale.

    Returns ``(ref, mov, scale, gain, offset)``: both frames minus the reference's mean
    (``normalize=None``) or each minus its own mean with the moving frame's RMS contrast
    matched to the reference's (``"global"``), divided by ``scale`` (the reference's RMS
    about its mean, or 1 for a blank frame) and cast to the compute dtype; ``gain`` and
    ``offset`` describe the moving frame as ``gain * reference + offset`` (1 and 0 when
    ``normalize=None``).
    """
    ref = val.finite_array("reference_image", reference_image, ndim=(2,))
    mov = val.finite_array("moving_image", moving_image, ndim=(2,))
    if ref.shape != mov.shape:
        raise ValueError(
            f"reference_image and moving_image must have the same shape, "
            f"got {ref.shape} and {mov.shape}"
        )
    if min(ref.shape) < MIN_SIZE_PX:
        raise ValueError(
            f"images must be at least {MIN_SIZE_PX}x{MIN_SIZE_PX} px, got shape {ref.shape}"
        )
    if normalize is not None:
        val.choice("normalize", normalize, _NORMALIZE)
    dtype = np.float32 if (ref.dtype == np.float32 and mov.dtype == np.float32) else np.float64
    limit = _value_limit(dtype)
    r0, r_mean, r_rms = _frame_stats("reference_image", ref, limit)
    m0, m_mean, m_rms = _frame_stats("moving_image", mov, limit)
    scale = r_rms if r_rms > 0 else (m_rms if m_rms > 0 else 1.0)
    gain, offset = 1.0, 0.0
    if normalize == "global":
        # the moving frame is modelled as gain * reference + offset: remove both
        if r_rms > 0 and m_rms > 0:
            gain = m_rms / r_rms
        offset = m_mean - gain * r_mean
        m_scale = gain * scale
    else:
        # a common offset (the reference's mean) does not change the flow; removing it
        # keeps float32 precise on frames like 1000 + small pattern
        m0 += m_mean - r_mean
        m_scale = scale
    return ((r0 / scale).astype(dtype, copy=False), (m0 / m_scale).astype(dtype, copy=False),
            scale, gain, offset)


def _check_options(
    shape: tuple[int, int],
    sigma_window: float,
    sigma_derivative: float,
    iterations: int,
) -> tuple[float, float, int]:
    """Validate the options that set the cost, with upper bounds from the image size."""
    side = min(shape)
    sigma_window = val.positive("sigma_window", sigma_window)
    hi = min(MAX_SIGMA_WINDOW_PX, side / 2)
    if sigma_window > hi:
        raise ValueError(
            f"sigma_window must be in (0, {hi:g}] px for frames of shape {shape} (at most "
            f"half the smaller side and {MAX_SIGMA_WINDOW_PX:g} px), got {sigma_window:g}"
        )
    sigma_derivative = val.positive("sigma_derivative", sigma_derivative)
    hi = min(MAX_SIGMA_DERIVATIVE_PX, side / 8)
    if sigma_derivative > hi:
        raise ValueError(
            f"sigma_derivative must be in (0, {hi:g}] px for frames of shape {shape} (at most "
            f"an eighth of the smaller side and {MAX_SIGMA_DERIVATIVE_PX:g} px), got "
            f"{sigma_derivative:g}"
        )
    iterations = val.positive_int("iterations", iterations)
    if iterations > MAX_ITERATIONS:
        raise ValueError(
            f"iterations must be an integer in [1, {MAX_ITERATIONS}], got {iterations} "
            "(the warping converges in a few iterations per level)"
        )
    return sigma_window, sigma_derivative, iterations


# == pyramid and filters ===============================================================
def _downsample(image: np.ndarray) -> np.ndarray:
    """Gaussian antialiasing then every second pixel (level pixel i <-> fine pixel 2i);
    the second pass filters the kept rows only (the values of ``ndi.gaussian_filter``)."""
    rows = ndi.gaussian_filter1d(image, _PYRAMID_SIGMA_PX, axis=0, mode="mirror")[::2]
    return ndi.gaussian_filter1d(rows, _PYRAMID_SIGMA_PX, axis=1, mode="mirror")[:, ::2]


def _upsample_flow(f: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Separable linear interpolation of a coarse flow component at fine pixel ``j / 2``,
    times 2 (coarse px -> fine px)."""
    for axis, n in enumerate(shape):
        nc = f.shape[axis]
        p = np.arange(n) / 2.0
        i0 = np.minimum(np.floor(p).astype(np.intp), nc - 1)
        i1 = np.minimum(i0 + 1, nc - 1)
        w = (p - i0).astype(f.dtype)
        shp = [1, 1]
        shp[axis] = n
        w = w.reshape(shp)
        f = np.take(f, i0, axis=axis) * (1 - w) + np.take(f, i1, axis=axis) * w
    return 2 * f


def auto_levels(image: Any, *, sigma_window: float = 4.0) -> int:
    """Pyramid depth that keeps a narrow-band pattern resolved at the coarsest level.

    Parameters
    ----------
    image : ndarray, shape (H, W)
        The reference frame (any real values).
    sigma_window : float
        Window standard deviation in px (coarse levels must stay larger than the window).

    Returns
    -------
    int
        The largest ``L`` (1 = single scale) such that at level ``L`` at least half of the
        image's (mean-removed) power lies below a quarter cycle per coarse pixel, i.e. at
        fine-scale frequencies ``<= 0.25 / 2**(L - 1)`` cycles/px, and the coarsest level
        is at least ``max(16, 4 sigma_window)`` px on its smaller side. A pattern of
        period 16 px gets 2 levels, 1/f noise on 512x512 px 4, white noise 1.
    """
    a = val.finite_array("image", image, ndim=(2,)).astype(float)
    sigma_window = val.positive("sigma_window", sigma_window)
    a = a - a.mean()
    power = np.abs(np.fft.rfft2(a)) ** 2
    fy = np.fft.fftfreq(a.shape[0])[:, None]
    fx = np.fft.rfftfreq(a.shape[1])[None, :]
    # the rfft half-plane counts the columns 1..n/2-1 twice in the full spectrum
    weight = np.full(fx.shape, 2.0)
    weight[0, 0] = 1.0
    if a.shape[1] % 2 == 0:
        weight[0, -1] = 1.0
    power = power * weight
    total = power.sum()
    if total <= 0:
        return 1
    f = np.hypot(fy, fx)
    min_side = max(_MIN_LEVEL_SIZE_PX, 4 * sigma_window)
    levels = 1
    while levels < _MAX_LEVELS:
        cand = levels + 1
        if min(a.shape) / 2 ** (cand - 1) < min_side:
            break
        if power[f <= 0.25 / 2 ** (cand - 1)].sum() < 0.5 * total:
            break
        levels = cand
    return levels


class _Derivatives:
    """Pre-smoothing ``S`` and spatial derivatives of one pyramid level."""

    def __init__(self, kind: str, sigma_derivative: float) -> None:
        self.kind = kind
        self.sigma = sigma_derivative

    @property
    def rim(self) -> int:
        """Border width in px whose derivatives depend on mirrored pixels (>= 1)."""
        return 1 if self.kind == "sobel" else max(1, math.ceil(2 * self.sigma))

    def rows_smoothed(self, image: np.ndarray) -> np.ndarray | None:
        """The Gaussian's pass along the rows axis (0), shared by :meth:`smooth` and
        :meth:`gradient`'s ``Ix`` (None for Sobel, whose passes differ)."""
        if self.kind == "gaussian":
            return ndi.gaussian_filter1d(image, self.sigma, axis=0, mode="mirror")
        return None

    def smooth(self, image: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """``S(image)``; ``rows``: :meth:`rows_smoothed` of ``image`` if already known.
        (The separable passes are those of ``ndi.gaussian_filter``: the same values.)"""
        if self.kind == "gaussian":
            if rows is None:
                rows = self.rows_smoothed(image)
            return ndi.gaussian_filter1d(rows, self.sigma, axis=1, mode="mirror")
        out = ndi.correlate1d(image, _BINOMIAL, axis=0, mode="mirror")
        return ndi.correlate1d(out, _BINOMIAL, axis=1, mode="mirror")

    def gradient(
        self, image: np.ndarray, rows: np.ndarray | None = None, out: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(Ix, Iy)``; ``rows`` as in :meth:`smooth`; ``out``: an array of shape
        ``(2, H, W)`` and the image's dtype to write them into (then ``out[0], out[1]``)."""
        if out is None:
            out = np.empty((2, *image.shape), image.dtype)
        if self.kind == "gaussian":
            if rows is None:
                rows = self.rows_smoothed(image)
            g = functools.partial(ndi.gaussian_filter1d, sigma=self.sigma, mode="mirror")
            g(rows, axis=1, order=1, output=out[0])
            g(g(image, axis=0, order=1), axis=1, output=out[1])
        else:
            # Sobel / 8 = central difference [-1, 0, 1] / 2 (x) binomial [1, 2, 1] / 4
            np.divide(ndi.sobel(image, axis=1, mode="mirror"), 8, out=out[0])
            np.divide(ndi.sobel(image, axis=0, mode="mirror"), 8, out=out[1])
        return out[0], out[1]


_BINOMIAL = np.array([0.25, 0.5, 0.25])
#: threads of the FFTs (results do not depend on the number: each transform is computed
#: the same way whichever thread runs it)
_FFT_WORKERS = 1


class _FFTThreads:
    """Threads of an estimate's FFTs, which may change while it runs (one while the other
    estimate runs beside it, two once that has finished): the values do not depend on it."""

    def __init__(self, n: int = _FFT_WORKERS) -> None:
        self.n = n

#: window sums of the tensor below this many float epsilons of the largest are FFT
#: rounding (1.2e-5 in float32, 2.2e-14 in float64) and set to 0
_WINDOW_FLOOR_EPS = 100


@functools.lru_cache(maxsize=64)
def _window_transfer(shape: tuple[int, int], sigma: float, dtype: str):
    """FFT sizes and transfer function of the Gaussian window (``scipy.ndimage``'s kernel
    truncated at ``_WINDOW_TRUNCATE`` sigma, normalized to sum 1) on zero-padded frames,
    so that the circular convolution equals the linear one with zeros outside."""
    radius = int(_WINDOW_TRUNCATE * sigma + 0.5)
    x = np.arange(-radius, radius + 1)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    k /= k.sum()
    sizes = []
    lines = []
    for axis, n in enumerate(shape):
        r = min(radius, n - 1)  # taps further than the frame never meet a pixel
        size = sfft.next_fast_len(n + r, real=True)
        h = np.zeros(size)
        h[: r + 1] = k[radius : radius + r + 1]
        if r > 0:
            h[size - r :] = k[radius - r : radius]
        lines.append((np.fft.rfft(h) if axis == 1 else np.fft.fft(h)).real)
        sizes.append(size)
    return tuple(sizes), (lines[0][:, None] * lines[1][None, :]).astype(dtype)


def _window(a: np.ndarray, sigma: float, padded: np.ndarray | None = None,
            workers: int = _FFT_WORKERS) -> np.ndarray:
    """Gaussian window sums over in-frame pixels only (zero outside, no mirrored data),
    of one frame ``(H, W)`` or a stack ``(K, H, W)``, by FFT in ``a``'s precision.

    ``padded``: an array of :func:`_window_padded` whose top-left ``(H, W)`` corner is
    ``a`` and which is zero elsewhere (the same transform, without a padded copy).
    ``workers``: threads of the FFTs (the same values for any number)."""
    h, w = a.shape[-2:]
    sizes, t = _window_transfer((h, w), float(sigma), a.dtype.char)
    if padded is not None:
        f = sfft.rfft2(padded, axes=(-2, -1), workers=workers)
    else:
        f = sfft.rfft2(a, s=sizes, axes=(-2, -1), workers=workers)
    f *= t
    return sfft.irfft2(f, s=sizes, axes=(-2, -1), workers=workers)[..., :h, :w]


def _window_pieces(a: np.ndarray, pieces: list[tuple[int, int, int, int]],
                   sigma: float) -> np.ndarray:
    """:func:`_window` of a frame that is zero outside the blocks ``pieces`` (rows
    ``r0:r1``, columns ``c0:c1``; disjoint), as direct separable sums over each block
    and the window's reach around it: cheap for thin border strips."""
    h, w = a.shape
    reach = int(_WINDOW_TRUNCATE * sigma + 0.5)
    out = np.zeros_like(a)
    for r0, r1, c0, c1 in pieces:
        if r1 <= r0 or c1 <= c0:
            continue
        y0, y1, x0, x1 = max(0, r0 - reach), min(h, r1 + reach), max(0, c0 - reach), min(w, c1 + reach)
        blk = np.zeros((y1 - y0, x1 - x0), a.dtype)
        blk[r0 - y0 : r1 - y0, c0 - x0 : c1 - x0] = a[r0:r1, c0:c1]
        for axis in (0, 1):  # zeros outside the frame: in-frame sums, as _window
            blk = ndi.gaussian_filter1d(blk, sigma, axis=axis, mode="constant",
                                        truncate=_WINDOW_TRUNCATE)
        out[y0:y1, x0:x1] += blk
    return out


def _window_padded(lead: tuple[int, ...], shape: tuple[int, int], sigma: float,
                   dtype: Any) -> np.ndarray:
    """Zeros of the padded FFT size of :func:`_window` for ``(*lead, *shape)`` frames:
    write the frames into ``[..., :H, :W]`` and pass it as ``padded``."""
    sizes, _ = _window_transfer(shape, float(sigma), np.dtype(dtype).char)
    return np.zeros((*lead, *sizes), dtype)


def _tensor(ix: np.ndarray, iy: np.ndarray, sigma: float, eigenvector: bool = True):
    """Window sums ``axx, axy, ayy`` of the gradient products, their eigenvalues
    ``lmin, lmax``, determinant ``det``, the unit eigenvector ``(ex, ey)`` of ``lmax``
    (None, None unless ``eigenvector``) and the trace ``axx + ayy`` (in-place passes: the
    same values as the textbook formulas)."""
    h, w = ix.shape
    padded = _window_padded((3,), ix.shape, sigma, ix.dtype)
    g = padded[:, :h, :w]
    np.multiply(ix, ix, out=g[0])
    np.multiply(ix, iy, out=g[1])
    np.multiply(iy, iy, out=g[2])
    axx, axy, ayy = a = _window(g, sigma, padded)
    # FFT rounding is relative to the largest sum: where the windowed trace is below
    # _WINDOW_FLOOR_EPS float epsilons of its largest value the window holds no gradient
    # (a blank region), and its tensor is exactly 0 as a direct sum would give
    tr = axx + ayy
    floor = _WINDOW_FLOOR_EPS * float(np.finfo(tr.dtype).eps) * float(tr.max(initial=0.0))
    blank = tr < floor
    if blank.any():
        a[:, blank] = 0
        tr[blank] = 0
    # lmax = tr / 2 + sqrt(((axx - ayy) / 2)^2 + axy^2), lmin = det / lmax
    axy2 = axy * axy
    disc = np.subtract(axx, ayy)
    disc *= 0.5
    disc *= disc
    disc += axy2
    np.sqrt(disc, out=disc)
    lmax = np.multiply(tr, 0.5)
    lmax += disc
    det = np.multiply(axx, ayy)
    det -= axy2
    lmin = np.zeros_like(det)
    with np.errstate(divide="ignore", invalid="ignore"):
        np.divide(det, lmax, out=lmin, where=lmax > 0)
    np.maximum(lmin, 0, out=lmin)
    ex, ey = _eigenvector(axx, axy, ayy, lmax) if eigenvector else (None, None)
    return axx, axy, ayy, lmin, lmax, det, ex, ey, tr


def _eigenvector(axx: np.ndarray, axy: np.ndarray, ayy: np.ndarray,
                 lmax: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit eigenvector ``(ex, ey)`` of the larger eigenvalue ``lmax``, from the
    better-conditioned of the two equivalent formulas; ``(1, 0)`` where isotropic."""
    use_x = axx >= ayy
    ex = np.subtract(lmax, ayy)
    np.copyto(ex, axy, where=~use_x)
    ey = np.subtract(lmax, axx)
    np.copyto(ey, axy, where=use_x)
    norm = np.hypot(ex, ey)
    iso = norm == 0  # isotropic tensor: any direction is an eigenvector
    any_iso = bool(iso.any())
    if any_iso:
        norm[iso] = 1
    ex /= norm
    ey /= norm
    if any_iso:
        ex[iso] = 1
        ey[iso] = 0
    return ex, ey


def _pseudo_inverse(axx, axy, ayy, lmin, lmax, det, ex, ey, threshold):
    """Per-pixel ``-A^+``: the full inverse where both eigenvalues pass the threshold,
    the rank-1 pseudo-inverse ``e e^T / lmax`` where only the larger does, else 0."""
    full = (lmin >= threshold) & (lmin > 0)
    rank1 = (lmax >= threshold) & (lmax > 0) & ~full
    inv_det = np.zeros_like(det)
    with np.errstate(divide="ignore", invalid="ignore"):
        np.divide(1, det, out=inv_det, where=full)
    mxx = np.multiply(ayy, inv_det)
    mxy = np.multiply(axy, inv_det)
    myy = np.multiply(axx, inv_det)
    if rank1.any():
        if ex is None or ey is None:
            ex, ey = _eigenvector(axx, axy, ayy, lmax)
        inv_l = np.zeros_like(lmax)
        np.divide(1, lmax, out=inv_l, where=rank1)
        mxx += ex * ex * inv_l
        mxy -= ex * ey * inv_l
        myy += ey * ey * inv_l
    np.negative(mxx, out=mxx)
    np.negative(myy, out=myy)
    return mxx, mxy, myy


def _spline_weights(
    f: np.ndarray, order: int, scratch: np.ndarray | None = None
) -> tuple[int, list[np.ndarray]]:
    """Cubic (``order=3``) or linear (1) B-spline weights of the samples at offset ``f`` in
    [0, 2) px (per pixel) from a common integer base: ``(first_tap, weights)``, the taps
    being ``first_tap``, ``first_tap + 1``, ... (one more when the ``f`` do not all share
    their integer part). ``scratch``: an array of shape ``(order + 3, *f.shape)`` and
    ``f``'s dtype that the weights are written into (fresh arrays cost page faults)."""
    lo, hi = float(f.min()), float(f.max())
    k = 1 if lo >= 1 else 0
    first = k - (order - 1) // 2
    buf = np.empty((order + 3, *f.shape), f.dtype) if scratch is None else scratch
    # mixed integer parts: the taps of the pixels with f >= 1 start one further
    up = f >= 1 if k == 0 and hi >= 1 else None
    t = np.subtract(f, k if up is None else up, out=buf[order + 1])  # f - 0 is f
    if order == 1:
        w = [np.subtract(1, t, out=buf[0]), t]
        spare = buf[1]
    else:
        w0, w1, w2, w3, tmp = buf[0], buf[1], buf[2], buf[3], buf[5]
        # w0 = (1 - t)^3 / 6, w1 = 2/3 - t^2 + t^3 / 2, w3 = t^3 / 6, w2 = 1 - w0 - w1 - w3
        np.subtract(1, t, out=tmp)
        np.multiply(tmp, tmp, out=w0)
        w0 *= tmp
        w0 /= 6
        np.multiply(t, t, out=tmp)
        np.multiply(tmp, t, out=w3)
        np.subtract(2 / 3, tmp, out=w1)
        np.multiply(0.5, w3, out=tmp)
        w1 += tmp
        w3 /= 6
        np.subtract(1, w0, out=w2)
        w2 -= w1
        w2 -= w3
        w = [w0, w1, w2, w3]
        spare = t  # no longer needed
    if up is not None:
        # one tap more: tap j weighs w[j - 1] where f >= 1, else w[j] (0 beyond the ends)
        spare[...] = 0
        np.copyto(spare, w[-1], where=up)
        for j in range(len(w) - 1, 0, -1):
            np.copyto(w[j], w[j - 1], where=up)
        np.copyto(w[0], 0, where=up)
        w.append(spare)
    return first, w


class _Sampler:
    """B-spline samples of an image ``(H, W)`` or a stack ``(K, H, W)`` at
    ``(x + u, y + v)``: cubic with ``mode="mirror"`` (``order=3``, the image is prefiltered
    once) or bilinear with ``mode="nearest"`` (``order=1``).

    The result is ``scipy.ndimage.map_coordinates(coeffs, ..., order, prefilter=False,
    mode)``, computed as a sum of shifted copies of the coefficients with per-pixel weights
    (16 to 25 slices for cubic, 4 to 9 for bilinear) for the pixels whose displacement lies
    in a 2 px span per axis around the typical one, and by ``map_coordinates`` for the
    others: a near-uniform flow costs a few array passes instead of a gather per sample.
    """

    def __init__(
        self, image: np.ndarray, order: int = 3, scratch: dict[Any, np.ndarray] | None = None
    ) -> None:
        self.order = order
        if order == 3:
            c = image
            for axis in (-2, -1):
                c = ndi.spline_filter1d(c, order=3, axis=axis, mode="mirror", output=image.dtype)
            self.coeffs = c
            self.mode, pad_mode = "mirror", "reflect"  # numpy's reflect == mirror
        else:
            self.coeffs = image
            self.mode, pad_mode = "nearest", "edge"
        self._pad_mode: Any = pad_mode
        self.shape = image.shape[-2:]
        self._padded = self.coeffs
        self._pad = 0
        # scratch arrays, possibly shared with other samplers used one after the other
        self._scratch: dict[Any, np.ndarray] = {} if scratch is None else scratch

    def _buffer(self, name: str, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        """A scratch array kept between calls: writing into memory already touched costs
        no page faults, which on frames of a megabyte cost as much as the arithmetic."""
        key = (name, shape, np.dtype(dtype))
        buf = self._scratch.get(key)
        if buf is None:
            buf = self._scratch[key] = np.empty(shape, dtype)
        return buf

    def _padded_coeffs(self, pad: int) -> tuple[np.ndarray, int]:
        """The coefficients extended by at least ``pad`` px, and the actual pad."""
        if pad > self._pad:
            widths = [(0, 0)] * (self.coeffs.ndim - 2) + [(pad, pad)] * 2
            self._padded = np.pad(self.coeffs, widths, mode=self._pad_mode)
            self._pad = pad
        return self._padded, self._pad

    def _map(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        c = self.coeffs
        kw = {"order": self.order, "prefilter": False, "mode": self.mode, "output": c.dtype}
        if c.ndim == 2:
            return ndi.map_coordinates(c, [rows, cols], **kw)
        return np.stack([ndi.map_coordinates(a, [rows, cols], **kw) for a in c])

    def __call__(self, u: np.ndarray, v: np.ndarray, xx: np.ndarray, yy: np.ndarray,
                 out: np.ndarray | None = None) -> np.ndarray:
        """The samples at ``(xx + u, yy + v)``, written into ``out`` (if given) unless
        they all go through ``map_coordinates``."""
        h, w = self.shape
        # base of the 2 px span per axis: covers at least +-0.5 px about the median flow
        n0x = math.floor(float(np.median(u[::8, ::8])) - 0.5)
        n0y = math.floor(float(np.median(v[::8, ::8])) - 0.5)
        pad = max(abs(n0x), abs(n0y)) + 3
        if pad >= min(h, w):
            return self._map(yy + v, xx + u)
        fx = np.subtract(u, np.asarray(n0x, u.dtype), out=self._buffer("fx", u.shape, u.dtype))
        fy = np.subtract(v, np.asarray(n0y, v.dtype), out=self._buffer("fy", v.shape, v.dtype))
        ok = (fx >= 0) & (fx < 2) & (fy >= 0) & (fy < 2)
        some_out = not ok.all()
        if some_out:
            if np.count_nonzero(ok) < 0.25 * ok.size:
                return self._map(yy + v, xx + u)
            top = np.nextafter(np.asarray(2, u.dtype), 0)  # [0, 2): the good ones unchanged
            fx = np.clip(fx, 0, top, out=fx)
            fy = np.clip(fy, 0, top, out=fy)
        nw = (self.order + 3, *u.shape)
        ix0, wx = _spline_weights(fx, self.order, self._buffer("wx", nw, u.dtype))
        iy0, wy = _spline_weights(fy, self.order, self._buffer("wy", nw, u.dtype))
        c, pad = self._padded_coeffs(pad)
        lead = c.shape[:-2]
        if out is None:
            out = np.empty((*lead, h, w), u.dtype)
        row = self._buffer("row", out.shape, u.dtype)
        tmp = self._buffer("tmp", out.shape, u.dtype)
        # (the first product of each sum is written, not added to zeros: the same values)
        for j, wj in enumerate(wy):
            r0 = pad + n0y + iy0 + j
            for i, wi in enumerate(wx):
                c0 = pad + n0x + ix0 + i
                np.multiply(wi, c[..., r0 : r0 + h, c0 : c0 + w], out=row if i == 0 else tmp)
                if i:
                    row += tmp
            if j:
                row *= wj
                out += row
            else:
                np.multiply(row, wj, out=out)
        if some_out:
            bad = ~ok
            out[..., bad] = self._map(yy[bad] + v[bad], xx[bad] + u[bad])
        return out


def _inside(
    cols: np.ndarray, rows: np.ndarray, shape: tuple[int, int], rim: float = 0.0
) -> np.ndarray:
    """Sample points at least ``rim`` px inside the frame's area ``[-0.5, n - 0.5]``."""
    h, w = shape
    lo = rim - 0.5
    return (cols >= lo) & (cols <= w - 0.5 - rim) & (rows >= lo) & (rows <= h - 0.5 - rim)


def _smooth_flow(f: np.ndarray, sigma_window: float, out: np.ndarray | None = None) -> np.ndarray:
    """Low-pass of a flow component that keeps affine fields: a symmetric box filter of
    standard deviation about ``_FLOW_SMOOTHING * sigma_window`` (cost independent of it),
    into ``out`` if given."""
    size = 2 * round(_FLOW_SMOOTHING * sigma_window * math.sqrt(3)) + 1
    return ndi.uniform_filter(f, size, mode="nearest", output=out)


# == the estimator =====================================================================
#: s between checks of a thread waiting for a frame item that its builder abandoned
_WAIT_POLL_S = 0.1


#: index grids up to this size (bytes) are kept between calls; larger ones (e.g. a
#: 4096 x 2160 float64 frame's 140 MB) are made per call and freed with it
_GRID_CACHE_BYTES = 16 * 2**20


def _grid(shape: tuple[int, int], dtype: str) -> np.ndarray:
    """``np.indices(shape)`` in ``dtype``, read-only (shared by every frame of the shape;
    kept between calls when it is small)."""
    if 2 * shape[0] * shape[1] * np.dtype(dtype).itemsize > _GRID_CACHE_BYTES:
        return _new_grid(shape, dtype)
    return _kept_grid(shape, dtype)


def _new_grid(shape: tuple[int, int], dtype: str) -> np.ndarray:
    grid = np.indices(shape, dtype=dtype)
    grid.setflags(write=False)
    return grid


_kept_grid = functools.lru_cache(maxsize=8)(_new_grid)


class _Frame:
    """One frame's pyramid and its per-level smoothed image, gradients, structure tensor
    and cubic sampler, built on demand and shared by the forward and the backward
    estimates. Thread-safe: each item is built once, by the first thread that asks for it
    (the others wait for it)."""

    def __init__(self, image: np.ndarray, deriv: _Derivatives,
                 scratch: dict[Any, np.ndarray] | None = None,
                 stop: threading.Event | None = None) -> None:
        self.scratch: dict[Any, np.ndarray] = {} if scratch is None else scratch
        self.deriv = deriv
        self._cache: dict[tuple[Any, ...], Future] = {}
        self._lock = threading.Lock()
        # set when the calling thread abandons the estimate (an error, an interrupt):
        # the other thread then stops at its next item instead of waiting for one that
        # will never be built
        self._stop = threading.Event() if stop is None else stop
        self._get("image", 0, lambda: image)

    def _get(self, what: str, lev: int, make, *extra: Any, wait: bool = True):
        if self._stop.is_set():
            raise CancelledError("the estimate was abandoned")
        key = (what, lev, *extra)
        item: Future | None = None
        mine = False
        try:
            with self._lock:
                item = self._cache.get(key)
                if item is None:
                    item = Future()
                    mine = True  # (before the item is seen: an interrupt from here on fails it)
                    self._cache[key] = item
            if mine:
                value = make()
        except BaseException as exc:  # the waiting threads see it too
            if mine and item is not None and not item.done():
                item.set_exception(exc)
            raise
        if mine:
            item.set_result(value)
            return value
        if not (wait or item.done()):
            return None
        # the builder may never finish the item (a signal can interrupt the calling thread
        # between any two lines): then the wait ends through `_stop`
        while True:
            try:  # (`exception` raises TimeoutError for the wait alone, not for a stored one)
                item.exception(timeout=_WAIT_POLL_S)
            except FutureTimeoutError:
                if self._stop.is_set():
                    raise CancelledError("the estimate was abandoned") from None
                continue
            return item.result()

    def image(self, lev: int) -> np.ndarray:
        """Pyramid level ``lev`` (0: the frame; each further one half the size)."""
        return self._get("image", lev, lambda: _downsample(self.image(lev - 1)))

    def _rows(self, lev: int) -> np.ndarray | None:
        return self._get("rows", lev, lambda: self.deriv.rows_smoothed(self.image(lev)))

    def smooth(self, lev: int) -> np.ndarray:
        return self._get("smooth", lev, lambda: self.deriv.smooth(self.image(lev), self._rows(lev)))

    def sampler(self, lev: int) -> _Sampler:
        return self._get("sampler", lev, lambda: _Sampler(self.smooth(lev), scratch=self.scratch))

    def gradient(self, lev: int) -> tuple[np.ndarray, np.ndarray]:
        grad = self.gradient_stack(lev)
        return grad[0], grad[1]

    def gradient_stack(self, lev: int) -> np.ndarray:
        """``(Ix, Iy)`` side by side, shape ``(2, H, W)`` (both window sums of an
        iteration in one FFT pass)."""
        def make():
            img = self.image(lev)
            grad = np.empty((2, *img.shape), img.dtype)
            self.deriv.gradient(img, self._rows(lev), out=grad)
            # gradients within the derivative kernel's reach of the border see mirrored
            # data (which turns a grating into a chevron): left out of every window sum
            rim = self.deriv.rim
            grad[:, :rim] = 0
            grad[:, -rim:] = 0
            grad[:, :, :rim] = 0
            grad[:, :, -rim:] = 0
            return grad

        return self._get("gradient", lev, make)

    def tensor(self, lev: int, sigma_window: float, eigenvector: bool) -> tuple[Any, ...]:
        """:func:`_tensor` of this level's gradients (the frame as the reference)."""
        return self._get("tensor", lev, lambda: _tensor(*self.gradient(lev), sigma_window, eigenvector),
                         sigma_window, eigenvector)

    def start_tensor(self, lev: int, sigma_window: float, eigenvector: bool) -> None:
        """Build :meth:`tensor` now unless another thread is building it (then return)."""
        self._get("tensor", lev, lambda: _tensor(*self.gradient(lev), sigma_window, eigenvector),
                  sigma_window, eigenvector, wait=False)

    def grid(self, lev: int) -> np.ndarray:
        """Row and column indices ``(yy, xx)`` of this level (shared, read-only)."""
        img = self.image(lev)
        return _grid(img.shape, img.dtype.char)

    def prepare(self, levels: range, parts: tuple[str, ...] = ("gradient", "sampler")) -> None:
        """Build the ``levels``' smoothed images and the ``parts`` (gradients, samplers): all
        that the forward and the backward estimates take from this frame, but the tensors."""
        for lev in levels:
            self.smooth(lev)
            if "gradient" in parts:
                self.gradient_stack(lev)
            if "sampler" in parts:
                self.sampler(lev)


@dataclass(frozen=True)
class _Options:
    """The estimator's settings shared by the forward and the backward estimates
    (``min_eigenvalue`` on the internal scale, None for the relative threshold)."""

    sigma_window: float
    n_levels: int
    iterations: int
    min_eigenvalue: float | None


def _coarse_to_fine(
    ref: _Frame,
    mov: _Frame,
    opt: _Options,
    fine_stop_px: float,
    eigenvector: bool = True,
    fft: _FFTThreads | None = None,
    before_finest: Callable[[], Any] | None = None,
) -> dict[str, Any]:
    """The flow from ``ref`` to ``mov`` (both on the internal scale) and the finest
    level's tensor products (see :func:`lucas_kanade`, Notes); the finest level's
    eigenvector ``ex, ey`` only with ``eigenvector`` (else None). ``fft``: the threads of
    the iterations' FFTs (one if None); ``before_finest``: a function called (without
    arguments) before the finest level."""
    sigma_window, n_levels, iterations = opt.sigma_window, opt.n_levels, opt.iterations
    min_eigenvalue = opt.min_eigenvalue
    # candidate starts where the coarsest level is small (cheap) and a shift can be large;
    # phase correlation at the level downsampled 4x (whole pixels there: 4 px)
    starts = [(0.0, 0.0)]
    if n_levels >= _CANDIDATE_MIN_LEVELS:
        starts = [(4 * dx, 4 * dy) for dx, dy in _candidate_shifts(ref.image(2), mov.image(2))]

    u = v = None
    for lev in range(n_levels - 1, -1, -1):
        stop_px = fine_stop_px if lev == 0 else _STOP_PX_COARSE
        if lev == 0 and before_finest is not None:
            before_finest()
        lv = _Level(ref, mov, sigma_window, lev, min_eigenvalue, stop_px,
                    eigenvector=eigenvector and lev == 0, fft=fft)
        n_iter = iterations if lev == 0 else _COARSE_ITERATIONS * iterations
        if u is None or v is None:
            # coarsest level: start from each candidate translation, keep per pixel the
            # result whose warped frame matches the reference best (windowed residual)
            best = None
            k = 2.0 ** -lev
            for dx, dy in starts:
                cu, cv, step = lv.iterate(np.full(lv.shape, dx * k, lv.dtype),
                                          np.full(lv.shape, dy * k, lv.dtype), n_iter)
                if len(starts) == 1:
                    best = [None, cu, cv]
                    break
                res = lv.residual(cu, cv)
                if best is None:
                    best = [res, cu, cv]
                else:
                    better = res < best[0]
                    best = [np.where(better, res, best[0]), np.where(better, cu, best[1]),
                            np.where(better, cv, best[2])]
            assert best is not None
            u, v = best[1], best[2]
        else:
            u, v, step = lv.iterate(_upsample_flow(u, lv.shape), _upsample_flow(v, lv.shape),
                                    n_iter)
    assert u is not None and v is not None  # at least one level ran
    return {"u": u, "v": v, "lmin": lv.lmin, "lmax": lv.lmax, "ex": lv.ex, "ey": lv.ey,
            "thr": lv.thr, "xx": lv.xx, "yy": lv.yy, "last_update": step}


def _candidate_shifts(ref: np.ndarray, mov: np.ndarray) -> list[tuple[float, float]]:
    """Zero and the whole-pixel translations of the strongest phase-correlation peaks
    (Hann-windowed frames): starting points for the coarsest pyramid level."""
    h, w = ref.shape
    win = np.outer(np.hanning(h), np.hanning(w))
    cross = np.fft.rfft2(mov * win) * np.conj(np.fft.rfft2(ref * win))
    mag = np.abs(cross)
    top = float(mag.max()) if mag.size else 0.0
    out = [(0.0, 0.0)]
    if not top > 0:
        return out
    corr = np.fft.irfft2(cross / (mag + 1e-6 * top), s=(h, w))
    for _ in range(_CANDIDATE_PEAKS):
        iy, ix = np.unravel_index(int(np.argmax(corr)), corr.shape)
        dy = float(iy - h if iy > h // 2 else iy)
        dx = float(ix - w if ix > w // 2 else ix)
        if all(abs(dx - a) + abs(dy - b) > 1 for a, b in out):
            out.append((dx, dy))
        ys = np.arange(iy - 2, iy + 3) % h
        xs = np.arange(ix - 2, ix + 3) % w
        corr[np.ix_(ys, xs)] = -np.inf
    return out


class _Level:
    """One pyramid level: the reference's derivatives and tensor, and the iteration."""

    def __init__(self, ref: _Frame, mov: _Frame, sigma_window: float, lev: int,
                 min_eigenvalue: float | None, stop_px: float,
                 eigenvector: bool = True, fft: _FFTThreads | None = None) -> None:
        r = ref.image(lev)
        self.shape = r.shape
        self.dtype = r.dtype
        self.sigma = sigma_window
        self.ix, self.iy = ix, iy = ref.gradient(lev)
        self.rim = ref.deriv.rim
        self.s_ref = ref.smooth(lev)
        self.s_mov = mov.smooth(lev)
        # warps are cubic on every level: bilinear ones leave a bias of ~1e-5 px that the
        # finest level's few iterations do not remove entirely
        self.sample = mov.sampler(lev)
        self.stop_px = stop_px
        # the eigenvector is reported at the forward estimate's finest level only (the
        # pseudo-inverse computes it elsewhere where rank-1 pixels need it)
        axx, axy, ayy, lmin, lmax, det, ex, ey, trace_a = ref.tensor(lev, sigma_window,
                                                                     eigenvector)
        rel = RELATIVE_THRESHOLD if lev == 0 else _COARSE_THRESHOLD
        rel_thr = rel * float(np.mean(trace_a, dtype=np.float64))
        self.thr = rel_thr if (lev > 0 or min_eigenvalue is None) else min_eigenvalue
        self.lmin, self.lmax, self.ex, self.ey = lmin, lmax, ex, ey
        self.trace_a = trace_a
        self.m = _pseudo_inverse(axx, axy, ayy, lmin, lmax, det, ex, ey, self.thr)
        self.yy, self.xx = ref.grid(lev)
        self.grad = ref.gradient_stack(lev)
        self.fft = _FFTThreads() if fft is None else fft
        self._gain_cache: tuple[np.ndarray, np.ndarray] | None = None
        self._strips: tuple[int, ...] = (0, 0, 0, 0)

    def _outside(self, u: np.ndarray, v: np.ndarray) -> np.ndarray | None:
        """Pixels whose flow points outside the moving frame or into its rim (None if
        none); only the border strips that the flow's range can reach are tested."""
        h, w = self.shape
        lo, rim = self.rim - 0.5, self.rim
        out = None
        strips = []
        # columns x with x + u < lo can only be x < lo - min(u); likewise on every side
        for axis, f, n in ((1, u, w), (0, v, h)):
            fmin, fmax = float(f.min()), float(f.max())
            # (one pixel of margin on each bound: the positions are rounded sums)
            a = min(n, max(0, math.ceil(lo - fmin) + 1))  # all from a on are in on that side
            b = max(0, min(n, math.floor(n - 0.5 - rim - fmax)))  # all before b are in
            strips += [a, b]
            for sl in (slice(0, a), slice(b, n)):
                if sl.stop <= sl.start:
                    continue
                idx = (slice(None), sl) if axis == 1 else (sl, slice(None))
                grid = (self.xx if axis == 1 else self.yy)[idx]
                pos = grid + f[idx]
                bad = (pos < lo) | (pos > n - 0.5 - rim)
                if bad.any():
                    if out is None:
                        out = np.zeros(self.shape, bool)
                    out[idx] |= bad
        # every pixel of `out` lies in columns [0, a) or [b, w) or rows [0, a') or [b', h)
        self._strips = tuple(strips)
        return out

    def _gain(self, out: np.ndarray) -> np.ndarray:
        """Update gain ``1 / share`` of the windows that lost the pixels ``out`` (cached:
        the mask rarely changes between iterations)."""
        if self._gain_cache is not None and np.array_equal(self._gain_cache[0], out):
            return self._gain_cache[1]
        ix, iy = self.ix, self.iy
        h, w = self.shape
        xa, xb, ya, yb = self._strips
        # the pixels lie in border strips: window sums of those strips alone, directly
        # (the window's reach around them), unless the strips cover much of the frame
        pieces = [(0, h, 0, xa), (0, h, xb, w), (0, ya, xa, xb), (yb, h, xa, xb)]
        if xa <= xb and ya <= yb and (xa + w - xb) * h + (ya + h - yb) * w <= 0.25 * h * w:
            lost_px = np.zeros(self.shape, self.dtype)  # |grad I|^2 of the pixels `out`
            for r0, r1, c0, c1 in pieces:
                sl = (slice(r0, r1), slice(c0, c1))
                gx, gy = ix[sl], iy[sl]
                lost_px[sl] = np.where(out[sl], gx * gx + gy * gy, 0)
            lost = _window_pieces(lost_px, pieces, self.sigma)
            # the gain is 1 where no window lost anything: compute it within the strips'
            # reach only
            reach = int(_WINDOW_TRUNCATE * self.sigma + 0.5)
            boxes = [(slice(max(0, r0 - reach), r1 + reach), slice(max(0, c0 - reach), c1 + reach))
                     for r0, r1, c0, c1 in pieces if r1 > r0 and c1 > c0]
        else:
            lost = _window(np.where(out, ix * ix + iy * iy, 0), self.sigma, workers=self.fft.n)
            boxes = [(slice(None), slice(None))]
        gain = np.ones(self.shape, self.dtype)
        for box in boxes:
            with np.errstate(divide="ignore", invalid="ignore"):
                share = 1 - lost[box] / self.trace_a[box]
            gain[box] = 1 / np.clip(np.nan_to_num(share, nan=1.0), _MIN_VALID_SHARE, 1)
        self._gain_cache = (out, gain)
        return gain

    def residual(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Windowed mean squared difference between the warped moving and the reference
        frame; infinite where the flow points outside the moving frame."""
        d = self.sample(u, v, self.xx, self.yy) - self.s_ref
        res = _window(d * d, self.sigma, workers=self.fft.n)
        res[~_inside(self.xx + u, self.yy + v, self.shape)] = np.inf
        return res

    def iterate(self, u: np.ndarray, v: np.ndarray, n_iter: int):
        """Up to ``n_iter`` warping iterations from ``(u, v)`` (updated in place); returns
        ``u, v`` and the length of the last iteration's change (px)."""
        ix, iy, xx, yy, sigma = self.ix, self.iy, self.xx, self.yy, self.sigma
        mxx, mxy, myy = self.m
        h, w = self.shape
        # work arrays reused by every iteration (fresh ones would cost page faults)
        us, vs, du, dv, tmp, it_buf = np.empty((6, h, w), self.dtype)
        padded = _window_padded((2,), self.shape, sigma, self.dtype)
        prod = padded[:, :h, :w]
        step2 = du
        for _ in range(n_iter):
            # Linearize around the current per-pixel warp but let the window move as the
            # smoothed field (u_s, v_s): exact for affine flows, no null space (see Notes)
            _smooth_flow(u, sigma, out=us)
            _smooth_flow(v, sigma, out=vs)
            gain = None
            if u.any() or v.any():
                it = self.sample(u, v, xx, yy, out=it_buf)
                it -= self.s_ref
                np.subtract(u, us, out=tmp)
                tmp *= ix
                it -= tmp  # I_t - Ix (u - u_s) - Iy (v - v_s)
                np.subtract(v, vs, out=tmp)
                tmp *= iy
                it -= tmp
                # no data where the flow points outside the moving frame or into its
                # rim (smoothed with mirrored pixels): those pixels keep the smoothed
                # estimate; the update is rescaled by the valid share of the tensor
                out = self._outside(u, v)
                if out is not None:
                    it[out] = 0
                    gain = self._gain(out)
            else:  # exactly zero flow: no interpolation, identical frames stay at 0
                it = self.s_mov - self.s_ref
            np.multiply(self.grad, it, out=prod)
            bx, by = _window(prod, sigma, padded, self.fft.n)
            np.multiply(mxx, bx, out=du)
            np.multiply(mxy, by, out=tmp)
            du += tmp
            np.multiply(mxy, bx, out=dv)
            np.multiply(myy, by, out=tmp)
            dv += tmp
            if gain is not None:
                du *= gain
                dv *= gain
            np.subtract(us, u, out=tmp)
            du += tmp  # du, dv: this iteration's change of the estimate
            np.subtract(vs, v, out=tmp)
            dv += tmp
            u += du
            v += dv
            du *= du
            dv *= dv
            step2 = np.add(du, dv, out=du)  # squared length of this iteration's change
            # stopping rule: all but 1 % of the pixels have converged
            if np.count_nonzero(step2 > self.stop_px**2) <= _STOP_SHARE * step2.size:
                break
        return u, v, np.sqrt(step2)


def _on_two_threads(ref: np.ndarray, mov: np.ndarray, deriv: _Derivatives,
                    options: Callable[[], _Options],
                    consistency: bool) -> tuple[dict[str, Any], np.ndarray | None, _Options]:
    """The forward estimate (:func:`_coarse_to_fine` with ``options()``) and, with
    ``consistency``, the backward one, on two threads. First the frames' pyramids,
    gradients and samplers (the moving frame's finest level while ``options()`` runs, then
    the other levels in turn). Then with ``consistency`` the forward estimate on one
    thread and the backward one on the other, then the forward-backward error; without,
    the forward estimate, while the other thread builds its finest tensor (then its FFTs
    use both threads). Each thread runs the operations of the serial run in the same
    order on data it does not share for writing (own samplers and scratch arrays), so the
    results are the same bit for bit. Returns ``(forward, fb_error_px or None, options)``."""
    fwd_fft = _FFTThreads()
    # set if this thread leaves with an error (or an interrupt): the other one then stops
    stop = threading.Event()
    ref_f, mov_f = _Frame(ref, deriv, {}, stop), _Frame(mov, deriv, {}, stop)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="stimgen-flow") as pool:
        try:
            # (the moving frame's gradients and the reference's sampler are the backward
            # estimate's)
            both = ("gradient", "sampler")
            ref_parts, mov_parts = (both, both) if consistency else (("gradient",), ("sampler",))
            job = pool.submit(mov_f.prepare, range(1), mov_parts)  # the finest level needs no depth
            opt = options()
            sigma_window, n_levels = opt.sigma_window, opt.n_levels
            # the other levels, taken in turn by the two threads
            units = iter([(ref_f, 0)] + [(f, lev) for lev in range(1, n_levels) for f in (mov_f, ref_f)])
            lock = threading.Lock()

            def prepare_units() -> None:
                while True:
                    with lock:
                        unit = next(units, None)
                    if unit is None:
                        return
                    frame, lev = unit
                    frame.prepare(range(lev, lev + 1), ref_parts if frame is ref_f else mov_parts)

            rest = pool.submit(prepare_units)  # after the finest level (one worker: in order)
            prepare_units()
            job.result()
            rest.result()
            if not consistency:
                tensor_job = pool.submit(ref_f.tensor, 0, sigma_window, True)
                tensor_job.add_done_callback(lambda _: setattr(fwd_fft, "n", 2))
                fwd = _coarse_to_fine(ref_f, mov_f, opt, _STOP_PX, True, fwd_fft)
                tensor_job.result()
                return fwd, None, opt
            # the forward estimate iterates more at the finest level: this thread builds its
            # finest tensor, then runs the backward estimate, whose finest tensor the other
            # thread builds between the forward estimate's coarse and finest levels (unless
            # this thread got there first)
            fwd_job = pool.submit(_coarse_to_fine, ref_f, mov_f, opt, _STOP_PX, True, fwd_fft,
                                  lambda: mov_f.start_tensor(0, sigma_window, False))
            ref_f.tensor(0, sigma_window, True)
            bwd = _coarse_to_fine(mov_f, ref_f, opt, _STOP_PX_BACKWARD, False)
            fwd_fft.n = 2  # the forward estimate's remaining FFTs use both threads
            fwd = fwd_job.result()
            fb = _forward_backward_error(fwd, bwd, ref_f.scratch, pool, mov_f.scratch)
        except BaseException:
            stop.set()
            raise
    return fwd, fb, opt


def _forward_backward_error(fwd: dict[str, Any], bwd: dict[str, Any],
                            scratch: dict[Any, np.ndarray] | None = None,
                            pool: ThreadPoolExecutor | None = None,
                            pool_scratch: dict[Any, np.ndarray] | None = None) -> np.ndarray:
    """``|f(x) + b(x + f(x))|`` in px: the forward flow ``f`` followed by the backward
    flow ``b`` (bilinear, clamped at the border) should return to the start. With a
    ``pool``, one component of ``b`` is sampled there (with ``pool_scratch``): each
    sample is the same as the stack's."""
    args = (fwd["u"], fwd["v"], fwd["xx"], fwd["yy"])
    if pool is None:
        bu, bv = _Sampler(np.stack([bwd["u"], bwd["v"]]), order=1, scratch=scratch)(*args)
    else:
        job = pool.submit(lambda: _Sampler(bwd["v"], order=1, scratch=pool_scratch)(*args))
        bu = _Sampler(bwd["u"], order=1, scratch=scratch)(*args)
        bv = job.result()
    return np.hypot(fwd["u"] + bu, fwd["v"] + bv)


def lucas_kanade(
    reference_image: Any,
    moving_image: Any,
    *,
    sigma_window: float = 4.0,
    derivative: str = "gaussian",
    sigma_derivative: float = 1.0,
    levels: int | str = "auto",
    iterations: int = 3,
    min_eigenvalue: float | None = None,
    normalize: str | None = "global",
    consistency: bool = True,
    consistency_px: float = CONSISTENCY_PX,
    workers: int | None = None,
) -> FlowResult:
    """Dense Lucas-Kanade optical flow, coarse to fine with iterative warping.

    Parameters
    ----------
    reference_image : ndarray, shape (H, W)
        First frame, any real dtype (integers are converted to float without rescaling);
        finite values whose range (max - min) is at most 1.3e150 (1.8e15 when both
        frames are float32); H, W >= 8 px. Complex frames are refused.
    moving_image : ndarray, shape (H, W)
        Second frame, same shape.
    sigma_window : float
        Standard deviation of the Gaussian integration window in px, in
        ``(0, min(64, min(H, W) / 2)]``, at every pyramid level. Larger windows average
        more pixels (lower noise, smoother flow).
    derivative : {"gaussian", "sobel"}
        Spatial derivatives: Gaussian derivatives of ``sigma_derivative`` px with ``I_t``
        smoothed by the same Gaussian, or Sobel / 8 with ``I_t`` smoothed by the binomial
        ``[1, 2, 1] / 4`` in both axes.
    sigma_derivative : float
        Standard deviation of the derivative Gaussian in px, in
        ``(0, min(16, min(H, W) / 8)]`` (``"gaussian"`` only).
    levels : int or "auto"
        Number of pyramid levels (1 = single scale, each further level halves the size;
        the coarsest level keeps >= 8 px per side). ``"auto"`` (default) uses
        :func:`auto_levels` on the reference frame, which keeps narrow-band patterns
        resolved (not aliased) at the coarsest level.
    iterations : int
        Largest number of warping iterations at the finest level, in [1, 100] (coarse
        levels allow 3 times as many). Each warps the moving frame by the current flow
        and solves for the remaining displacement. Stopping rule: a level stops early
        once all but 1 % of its pixels moved by at most 0.002 px in the last iteration
        (the iteration contracts the error ~25-fold per step, so ~1e-4 px remains); 0.01
        px of their own on coarse levels, which only start the next level, and 0.05 px
        for the backward estimate of the consistency check.
    min_eigenvalue : float or None
        Threshold on the smaller structure-tensor eigenvalue, in (image units / px)^2
        (>= 0). None (default): ``RELATIVE_THRESHOLD`` (1e-4) of the image-mean trace of
        the tensor, which is invariant to contrast.
    normalize : {"global"} or None
        ``"global"`` (default): the moving frame is modelled as ``gain * reference +
        offset`` with one gain and offset for the whole frame; each frame's mean is
        removed and the moving frame's RMS contrast is matched to the reference's before
        the flow is estimated, so a global brightness or contrast change creates no flow.
        None: brightness constancy on the raw values (only the reference's mean is
        removed from both frames); a contrast change between the frames then shows up as
        flow.
    consistency : bool
        If True (default), the flow is also estimated from the moving to the reference
        frame and a pixel is reliable only where the two agree: ``|f(x) + b(x + f(x))|
        <= consistency_px``. This rejects occluded pixels, motion boundaries and
        wrong matches. The backward estimate is a search of its own, coarse to fine from
        the moving frame (it shares the frames' pyramids and interpolation coefficients),
        that stops at 0.05 px. Its cost: about 1.6 times that of ``consistency=False`` on
        one thread; with two ``workers`` and a free core the two estimates run side by
        side, for about 1.4 times ``consistency=False`` on two. False: reliability is
        conditioning only; the forward flow is the same bits either way.
    consistency_px : float
        Largest forward-backward error in px of a consistent pixel (> 0; default 0.5).
    workers : int, optional
        Threads (default: the cores this process may use; a negative count leaves
        ``|workers| - 1`` cores out, as in ``scipy.fft``); at most two are used. With two,
        the frames are prepared in parallel and, with ``consistency``, the forward and the
        backward estimates run side by side (without, the finest level's tensor is built
        beside the coarse levels, and the FFTs use both threads). The result is the same
        bit for bit for every number of workers.

    Returns
    -------
    FlowResult
        ``u``, ``v`` (px/frame, NaN where unreliable), ``min_eigenvalue``,
        ``max_eigenvalue``, ``reliable``, ``normal_u``, ``normal_v``,
        ``fb_error_px`` (with ``consistency``), the brightness model and the settings used.

    Raises
    ------
    ValueError
        On non-2-D, complex, non-finite, differently shaped or too small frames, on
        frames whose value range would overflow, or on an option outside its range.

    Notes
    -----
    Per level, the reference gradients ``Ix, Iy`` and the tensor ``A`` (window ``G``) are
    built once. Each iteration warps the smoothed moving frame by the current flow
    ``d(y) = (u, v)`` (cubic B-spline), ``I_t = S(W) - S(reference)``, and re-solves::

        A(x) d_new(x) = A(x) d_s(x) - G * [grad I (I_t - grad I . (d - d_s))](x)

    where ``d_s`` is ``d`` smoothed over about ``2 sigma_window``. With ``d_s = d``
    this is the usual incremental update ``A dd = -G * (grad I I_t)`` (textbook
    ``b = -I_t``), whose pixel-wise warping leaves errors that vary faster than the
    window uncorrected; with ``d_s = 0`` it is the classic LK window that moves rigidly,
    which is biased on rotations. Letting the window follow the smoothed field corrects
    both: the fixed point is exact for translations and affine fields (rotation,
    expansion), and ``I_t`` vanishes there, so it does not depend on the derivative
    filters. Pixels whose warp samples outside the moving frame (or within the
    derivative's reach of its border) give no data: they keep the smoothed estimate, and
    the updates of windows that contain them are scaled by the share of the tensor that
    remains. Window sums use in-frame pixels only. Rank-1 pixels are solved with the
    pseudo-inverse (normal flow only). Identical frames give exactly zero flow: no
    interpolation happens while the flow is exactly zero. With 3 or more levels, the
    coarsest level is started from zero and from the strongest phase-correlation
    translations (whole pixels of the level downsampled 4x), and keeps per pixel the
    start with the smallest windowed residual.

    A pixel is **reliable** when (1) the smaller eigenvalue reaches the threshold (the
    flow is determined, not only its normal component), (2) ``(x + u, y + v)`` lies in
    the moving frame and, with ``consistency``, (3) the forward-backward error is at most
    ``consistency_px``. (1) alone says the local system is well conditioned, not that its
    answer is right: at occlusions and motion boundaries it is well conditioned and
    wrong, which (3) detects.

    References
    ----------
    B. D. Lucas and T. Kanade (1981), An iterative image registration technique with an
    application to stereo vision, IJCAI, 674-679. J.-Y. Bouguet (2000), Pyramidal
    implementation of the Lucas Kanade feature tracker, Intel Corporation. N. Sundaram,
    T. Brox and K. Keutzer (2010), Dense point trajectories by GPU-accelerated large
    displacement optical flow, ECCV (forward-backward consistency).

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.ndimage import gaussian_filter
    >>> rng = np.random.default_rng(0)
    >>> ref = gaussian_filter(rng.standard_normal((64, 64)), 2.0, mode="wrap")
    >>> mov = np.roll(ref, 1, axis=1)  # content moves 1 px to the right
    >>> r = lucas_kanade(ref, mov)
    >>> u, v = r.median()  # px/frame over reliable pixels
    >>> print(f"u = {u:.3f}, v = {abs(v):.3f}, reliable: {r.reliable_fraction:.2f}")
    u = 1.000, v = 0.000, reliable: 0.98
    >>> r = lucas_kanade(ref, 1.1 * mov + 0.2)  # 10 % brighter and offset: same flow
    >>> print(f"u = {r.median()[0]:.3f}, gain {r.brightness_gain:.2f}")
    u = 1.000, gain 1.10
    """
    ref, mov, scale, b_gain, b_offset = _check_frames(reference_image, moving_image, normalize)
    sigma_window, sigma_derivative, iterations = _check_options(
        ref.shape, sigma_window, sigma_derivative, iterations
    )
    val.choice("derivative", derivative, _DERIVATIVES)
    if min_eigenvalue is not None:
        min_eigenvalue = val.positive("min_eigenvalue", min_eigenvalue, allow_zero=True)
    if not isinstance(consistency, (bool, np.bool_)):
        raise ValueError(f"consistency must be True or False, got {consistency!r}")
    consistency_px = val.positive("consistency_px", consistency_px)
    n_levels: int | None = None
    if isinstance(levels, str):
        val.choice("levels", levels, ("auto",))  # auto_levels below
    else:
        n_levels = val.positive_int("levels", levels)
        max_levels = 1
        while min(ref.shape) / 2**max_levels >= MIN_SIZE_PX:
            max_levels += 1
        if n_levels > max_levels:
            raise ValueError(
                f"levels={n_levels} is too deep for shape {ref.shape}: the coarsest level "
                f"must keep >= {MIN_SIZE_PX} px per side, so levels <= {max_levels}"
            )

    threads = val.thread_count(workers)
    deriv = _Derivatives(derivative, sigma_derivative)
    # the estimator runs on frames divided by `scale`: eigenvalues scale with its square
    thr_internal = None if min_eigenvalue is None else min_eigenvalue / scale**2

    def options() -> _Options:
        depth = auto_levels(ref, sigma_window=sigma_window) if n_levels is None else n_levels
        return _Options(sigma_window, depth, iterations, thr_internal)

    scratch: dict[Any, np.ndarray] = {}  # the samplers' scratch arrays, reused
    # the backward estimate searches on its own, coarse to fine (a start from the inverse
    # forward flow agrees with a wrong forward match that is a local optimum seen from the
    # moving frame), sharing the frames' pyramids and samplers
    fb = None
    if threads > 1:
        fwd, fb, opt = _on_two_threads(ref, mov, deriv, options, bool(consistency))
    else:
        opt = options()
        ref_f, mov_f = _Frame(ref, deriv, scratch), _Frame(mov, deriv, scratch)
        fwd = _coarse_to_fine(ref_f, mov_f, opt, _STOP_PX)
        if consistency:
            bwd = _coarse_to_fine(mov_f, ref_f, opt, _STOP_PX_BACKWARD, False)
            fb = _forward_backward_error(fwd, bwd, scratch)
    u, v, lmin, lmax, ex, ey = (fwd[k] for k in ("u", "v", "lmin", "lmax", "ex", "ey"))
    thr = fwd["thr"]
    inside = _inside(fwd["xx"] + u, fwd["yy"] + v, ref.shape)
    full = (lmin >= thr) & (lmin > 0)
    has_normal = (lmax >= thr) & (lmax > 0)
    reliable = full & inside
    last_update = fwd["last_update"]
    if fb is not None:
        reliable &= (fb <= consistency_px) & (last_update <= consistency_px)
    nu = np.where(has_normal, ex * (ex * u + ey * v), np.nan).astype(u.dtype, copy=False)
    nv = np.where(has_normal, ey * (ex * u + ey * v), np.nan).astype(u.dtype, copy=False)
    s2 = scale * scale
    return FlowResult(
        u=np.where(reliable, u, np.nan).astype(u.dtype, copy=False),
        v=np.where(reliable, v, np.nan).astype(u.dtype, copy=False),
        min_eigenvalue=(lmin * s2).astype(u.dtype, copy=False),
        max_eigenvalue=(lmax * s2).astype(u.dtype, copy=False),
        reliable=reliable,
        normal_u=nu,
        normal_v=nv,
        threshold=float(min_eigenvalue) if min_eigenvalue is not None else float(thr) * s2,
        levels=opt.n_levels,
        iterations=iterations,
        sigma_window=sigma_window,
        derivative=derivative,
        normalize=normalize,
        brightness_gain=b_gain,
        brightness_offset=b_offset,
        consistency_px=consistency_px if consistency else None,
        fb_error_px=fb,
        last_update_px=last_update,
    )


def movie_flow(
    movie: Any,
    *,
    margin_px: int | None = None,
    max_pairs: int | None = None,
    sigma_window: float = 4.0,
    derivative: str = "gaussian",
    sigma_derivative: float = 1.0,
    levels: int | str = "auto",
    iterations: int = 3,
    min_eigenvalue: float | None = None,
    normalize: str | None = "global",
    consistency: bool = True,
    consistency_px: float = CONSISTENCY_PX,
    workers: int | None = None,
) -> MovieFlow:
    """Median flow of a movie over the reliable pixels of its consecutive frame pairs.

    Parameters
    ----------
    movie : ndarray, shape (T, H, W)
        Frames in time order (T >= 2), any real dtype, finite.
    margin_px : int, optional
        Border in px excluded from the statistics (>= 0). Default
        ``ceil(2 * sigma_window)``, where mirrored borders bias the derivatives.
    max_pairs : int, optional
        Analyse at most this many pairs ``(t, t + 1)``, evenly spaced over the movie
        (>= 1; default all ``T - 1``).
    sigma_window, derivative, sigma_derivative, levels, iterations, min_eigenvalue
        As in :func:`lucas_kanade`.
    normalize, consistency, consistency_px
        As in :func:`lucas_kanade`: by default a global brightness change between frames
        (e.g. a flicker) creates no flow, and only forward-backward consistent pixels
        count as reliable.
    workers : int, optional
        Threads of each pair's :func:`lucas_kanade` (the same numbers for any count).

    Returns
    -------
    MovieFlow
        ``u``, ``v``: median over pairs of the per-pair median over reliable pixels, in
        px/frame (x rightwards, y downwards); ``reliable_fraction``; the per-pair values.
        Use :meth:`MovieFlow.to_deg_per_s` or :func:`to_deg_per_s` for deg/s.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.ndimage import gaussian_filter
    >>> frame = gaussian_filter(np.random.default_rng(1).standard_normal((64, 64)), 2.0,
    ...                         mode="wrap")
    >>> movie = np.stack([np.roll(frame, (-t, 2 * t), axis=(0, 1)) for t in range(4)])
    >>> m = movie_flow(movie)
    >>> print(f"{m.u:.2f} {m.v:.2f} px/frame")
    2.00 -1.00 px/frame
    >>> print("%.2f %.2f deg/s" % m.to_deg_per_s(ppd=30, fps=60))
    4.00 -2.00 deg/s
    """
    m = val.finite_array("movie", movie, ndim=(3,))
    t_frames = m.shape[0]
    if t_frames < 2:
        raise ValueError(f"movie needs at least 2 frames, got shape {m.shape}")
    sigma_window = val.positive("sigma_window", sigma_window)
    if margin_px is None:
        margin = math.ceil(2 * sigma_window)
    else:
        margin = val.positive_int("margin_px", margin_px, minimum=0)
    if 2 * margin >= min(m.shape[1:]):
        raise ValueError(
            f"margin_px={margin} leaves no pixels in frames of shape {m.shape[1:]}; "
            f"it must be < {min(m.shape[1:]) / 2:g}"
        )
    pairs = np.arange(t_frames - 1)
    if max_pairs is not None:
        k = val.positive_int("max_pairs", max_pairs)
        if k < len(pairs):
            pairs = np.unique(np.round(np.linspace(0, t_frames - 2, k)).astype(int))
    opts: dict[str, Any] = {
        "sigma_window": sigma_window,
        "derivative": derivative,
        "sigma_derivative": sigma_derivative,
        "levels": levels,
        "iterations": iterations,
        "min_eigenvalue": min_eigenvalue,
        "normalize": normalize,
        "consistency": consistency,
        "consistency_px": consistency_px,
    }
    inner = (slice(margin, m.shape[1] - margin), slice(margin, m.shape[2] - margin))
    pu = np.full(len(pairs), np.nan)
    pv = np.full(len(pairs), np.nan)
    pf = np.zeros(len(pairs))
    for i, t in enumerate(pairs):
        r = lucas_kanade(m[t], m[t + 1], workers=workers, **opts)
        ok = r.reliable[inner]
        pf[i] = np.count_nonzero(ok) / ok.size
        if ok.any():
            pu[i] = np.median(r.u[inner][ok])
            pv[i] = np.median(r.v[inner][ok])
    has = np.isfinite(pu)
    return MovieFlow(
        u=float(np.median(pu[has])) if has.any() else math.nan,
        v=float(np.median(pv[has])) if has.any() else math.nan,
        reliable_fraction=float(pf.mean()),
        pair_u=pu,
        pair_v=pv,
        pair_reliable_fraction=pf,
        pairs=pairs,
        margin_px=margin,
        options=opts,
    )
