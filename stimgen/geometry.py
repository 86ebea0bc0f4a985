"""Viewing geometry: pixels per degree, degrees <-> pixels, cpd <-> cycles/pixel.

Conventions
-----------
* ``ppd`` is the exact number of pixels subtended by the central degree of visual angle,
  ``ppd = N_px / W_cm * 2 d tan(0.5 deg)``. The small-angle form ``N_px / W_cm * d pi/180``
  differs by -2.5e-5 (relative). The screen-average ppd (``N_px / screen width in deg``,
  :attr:`ViewingGeometry.mean_ppd`) is a different quantity and is larger (+6.9 % at 57 cm on a
  53 cm, 1920 px screen).
* Spatial frequencies: ``cpd = cpp * ppd`` (cycles/degree = cycles/pixel * pixels/degree);
  the Nyquist frequency is ``ppd / 2`` cpd.
* On a flat screen the local ppd grows with eccentricity theta. Counted like ``ppd``, as
  the pixels spanned by the one degree centred there: radially exactly
  ``ppd cos^2(0.5 deg) / (cos^2 theta - sin^2(0.5 deg))`` (about ``ppd / cos(theta)^2``),
  tangentially exactly ``ppd / cos(theta)``. The instantaneous density (pixels per degree
  in the limit of a vanishing angle) is ``(pi / 360) / tan(0.5 deg) = 1 - 2.54e-5`` times
  these.
* Sizes. ``size_px = size_deg * ppd`` (:meth:`ViewingGeometry.deg_to_px`) is linear: it
  counts every degree as a central one. A stimulus centred on the line of sight spans
  ``size_deg = 2 atan(size_px tan(0.5 deg) / ppd)`` exactly
  (:meth:`ViewingGeometry.px_to_deg_exact`); the linear size understates the pixels of a
  large stimulus by 0.16 % at 8 deg, 1 % at 20 deg and 4.1 % at 40 deg
  (:func:`linear_size_error`). Records keep the linear ``size_deg`` and add the exact
  ``size_deg_angular``. A size requested in degrees that is wider than about 14 deg, where
  the linear error exceeds :data:`LINEAR_SIZE_TOLERANCE` (0.5 %), raises a
  :class:`LinearSizeWarning` (a size given in pixels is made as given; its record states
  the exact angle).
"""

from __future__ import annotations

import math
import sys
import warnings
from typing import Any

import numpy as np

from . import _validate as v

__all__ = [
    "LINEAR_SIZE_TOLERANCE",
    "PPD_MAX",
    "PPD_MIN",
    "GeometryRangeError",
    "LinearSizeWarning",
    "ViewingGeometry",
    "as_ppd",
    "linear_size_error",
    "resolve_shape",
]

_HALF_DEG = math.radians(0.5)
_TAN_HALF_DEG = math.tan(_HALF_DEG)

#: Largest relative error of the linear size conversion accepted without a
#: :class:`LinearSizeWarning` (0.5 %; reached at a true size of 14.06 deg).
LINEAR_SIZE_TOLERANCE = 0.005


_FLOAT_MIN = sys.float_info.min  # smallest normal float64: below it precision is lost
#: Smallest ppd accepted: its Nyquist frequency ``ppd / 2`` is still a normal float64.
PPD_MIN = 2.0 * _FLOAT_MIN
#: Largest ppd accepted (the largest finite float64).
PPD_MAX = sys.float_info.max


class GeometryRangeError(ValueError):
    """A viewing geometry whose derived numbers float64 cannot carry (a ``ValueError``).

    Attributes
    ----------
    quantity : str
        The derived quantity out of range ("ppd").
    value : float
        Its value (inf, 0 or a subnormal number).
    """

    def __init__(self, message: str, quantity: str, value: float) -> None:
        super().__init__(message)
        self.quantity = quantity
        self.value = value


def _checked_ppd(ppd: float, what: str = "ppd") -> float:
    """``ppd`` if it and its Nyquist frequency are normal, finite float64 numbers, else raise."""
    if not (math.isfinite(ppd) and PPD_MIN <= ppd <= PPD_MAX):
        raise GeometryRangeError(
            f"{what} must be finite and in [{PPD_MIN:.4g}, {PPD_MAX:.4g}] px/deg, so that it and "
            f"its Nyquist frequency ppd / 2 are normal float64 numbers; got {ppd!r}",
            "ppd", ppd,
        )
    return ppd


class LinearSizeWarning(UserWarning):
    """A stimulus is so large that its linear size in degrees (``size_px / ppd``) is off.

    The linear conversion counts every degree as a central one; on a flat screen the outer
    degrees span more pixels. The stimulus itself is unchanged; its record holds the exact
    ``size_deg_angular`` beside the linear ``size_deg``.
    """


class ViewingGeometry:
    """A display seen from a viewing distance.

    Parameters
    ----------
    distance_cm : float
        Viewing distance from the eye to the screen centre, in cm (> 0).
    screen_width_cm : float
        Visible width of the screen, in cm (> 0).
    screen_width_px : int
        Horizontal resolution of the screen, in pixels (>= 1).
    screen_height_px : int, optional
        Vertical resolution in pixels; square pixels are assumed.

    Examples
    --------
    >>> g = ViewingGeometry(57, 53.3, 1920)
    >>> round(g.ppd, 2)
    35.84
    >>> round(g.nyquist_cpd, 2)
    17.92
    """

    __slots__ = ("distance_cm", "screen_width_cm", "screen_width_px", "screen_height_px", "_ppd")
    distance_cm: float | None
    screen_width_cm: float | None
    screen_width_px: int | None
    screen_height_px: int | None
    _ppd: float

    def __init__(
        self,
        distance_cm: float,
        screen_width_cm: float,
        screen_width_px: int,
        screen_height_px: int | None = None,
    ) -> None:
        self.distance_cm = v.positive("distance_cm", distance_cm)
        self.screen_width_cm = v.positive("screen_width_cm", screen_width_cm)
        self.screen_width_px = v.positive_int("screen_width_px", screen_width_px)
        self.screen_height_px = (
            None if screen_height_px is None else v.positive_int("screen_height_px", screen_height_px)
        )
        given = (f"distance_cm={distance_cm!r}, screen_width_cm={screen_width_cm!r} and "
                 f"screen_width_px={screen_width_px!r}")
        try:
            n_px = float(self.screen_width_px)
        except OverflowError:  # an int beyond float64
            n_px = math.inf
        with np.errstate(all="ignore"):  # the check below reports over- and underflow
            ppd = float(np.float64(n_px) / self.screen_width_cm * 2.0 * self.distance_cm
                        * _TAN_HALF_DEG)
        self._ppd = _checked_ppd(ppd, f"the ppd of {given}")
        # a ppd in range keeps the screen's angle and average ppd in range too: the screen
        # subtends ~57.3 W / d deg and its average ppd is about ppd (the intermediate
        # products overflow first)

    @classmethod
    def from_ppd(cls, ppd: float) -> ViewingGeometry:
        """A geometry known only by its pixels per degree (no screen or distance).

        Parameters
        ----------
        ppd : float
            Pixels per degree of visual angle (> 0).
        """
        self = cls.__new__(cls)
        self.distance_cm = None
        self.screen_width_cm = None
        self.screen_width_px = None
        self.screen_height_px = None
        self._ppd = _checked_ppd(v.positive("ppd", ppd))
        return self

    # -- basic quantities -------------------------------------------------------------
    @property
    def ppd(self) -> float:
        """Pixels per degree at the screen centre (exact central-degree formula)."""
        return self._ppd

    @property
    def nyquist_cpd(self) -> float:
        """Highest representable frequency, ``ppd / 2``, in cycles/degree."""
        return self._ppd / 2.0

    def _screen(self, what: str) -> tuple[float, float, int]:
        """(distance_cm, screen_width_cm, screen_width_px), or raise if built from ppd."""
        if self.distance_cm is None or self.screen_width_cm is None or self.screen_width_px is None:
            raise ValueError(
                f"{what} needs distance_cm, screen_width_cm and screen_width_px; "
                "this geometry was built from ppd alone"
            )
        return self.distance_cm, self.screen_width_cm, self.screen_width_px

    @property
    def screen_width_deg(self) -> float:
        """Full screen width in degrees of visual angle, ``2 atan(W / 2d)``."""
        d, w_cm, _ = self._screen("screen_width_deg")
        return math.degrees(2 * math.atan(w_cm / (2 * d)))

    @property
    def screen_height_deg(self) -> float | None:
        """Full screen height in degrees (square pixels), or None without a height."""
        d, w_cm, n_px = self._screen("screen_height_deg")
        if self.screen_height_px is None:
            return None
        height_cm = self.screen_height_px * w_cm / n_px
        return math.degrees(2 * math.atan(height_cm / (2 * d)))

    @property
    def mean_ppd(self) -> float:
        """Screen-average pixels per degree, ``N_px / screen_width_deg`` (not the central ppd)."""
        _, _, n_px = self._screen("mean_ppd")
        return n_px / self.screen_width_deg

    # -- conversions ------------------------------------------------------------------
    def deg_to_px(self, size_deg: Any) -> Any:
        """Convert a size in degrees to pixels (central ppd), as float(s)."""
        return _scaled(size_deg, self._ppd)

    def px_to_deg(self, size_px: Any) -> Any:
        """Convert a size in pixels to degrees (central ppd)."""
        return _scaled(size_px, 1.0 / self._ppd)

    def deg_to_px_exact(self, size_deg: Any) -> Any:
        """Pixels spanned by ``size_deg`` centred on the line of sight, on a flat screen.

        ``size_px = ppd tan(size_deg / 2) / tan(0.5 deg)``: exact for an extent centred on
        the point the line of sight meets the screen (and equal to :meth:`deg_to_px` for
        one degree). It needs ppd alone (the viewing distance cancels).

        Parameters
        ----------
        size_deg : float or array
            Full angle in degrees, in [0, 180).

        Returns
        -------
        float or ndarray
            Size in pixels (not rounded).
        """
        x = np.asarray(size_deg, dtype=float)
        if not np.all(np.isfinite(x)) or np.any(x < 0) or np.any(x >= 180):
            raise ValueError(f"size_deg must be finite and in [0, 180) deg, got {size_deg!r}")
        out = self._ppd * np.tan(np.radians(x) / 2.0) / _TAN_HALF_DEG
        return float(out) if out.ndim == 0 else out

    def px_to_deg_exact(self, size_px: Any) -> Any:
        """Full angle in degrees of ``size_px`` pixels centred on the line of sight.

        ``size_deg = 2 atan(size_px tan(0.5 deg) / ppd)``, the inverse of
        :meth:`deg_to_px_exact`. For 287 px at 35.8375 ppd: 7.9955 deg, where the linear
        :meth:`px_to_deg` says 8.0084 deg.

        Parameters
        ----------
        size_px : float or array
            Size in pixels (>= 0).

        Returns
        -------
        float or ndarray
            Size in degrees of visual angle.
        """
        x = np.asarray(size_px, dtype=float)
        if not np.all(np.isfinite(x)) or np.any(x < 0):
            raise ValueError(f"size_px must be finite and >= 0, got {size_px!r}")
        out = np.degrees(2.0 * np.arctan(x * _TAN_HALF_DEG / self._ppd))
        return float(out) if out.ndim == 0 else out

    def cpd_to_cpp(self, freq_cpd: Any) -> Any:
        """Convert cycles/degree to cycles/pixel: ``cpp = cpd / ppd``."""
        return _scaled(freq_cpd, 1.0 / self._ppd)

    def cpp_to_cpd(self, freq_cpp: Any) -> Any:
        """Convert cycles/pixel to cycles/degree: ``cpd = cpp * ppd``."""
        return _scaled(freq_cpp, self._ppd)

    def local_ppd(self, eccentricity_deg: Any, direction: str = "radial") -> Any:
        """Local pixels per degree at an eccentricity on a flat screen.

        Parameters
        ----------
        eccentricity_deg : float or array
            Angle from the line of sight to the screen centre, in degrees, |e| < 90.
        direction : {"radial", "tangential"}
            Both count, like :attr:`ppd`, the pixels spanned by the one degree centred on
            the eccentricity. Radial (along the radius):
            ``N/W * d (tan(e + 0.5) - tan(e - 0.5))``, which is exactly
            ``ppd cos^2(0.5) / (cos^2 e - sin^2(0.5))`` (larger than ``ppd / cos(e)^2`` by
            the factor ``1 + sin^2(0.5) tan^2 e``, to first order: 2.3e-4 at 60 deg). Tangential (perpendicular to the radius, where
            the eye is ``d / cos e`` away): exactly ``ppd / cos(e)``.

        Returns
        -------
        float or ndarray
            Local ppd in pixels/degree. A fixed noise in cycles/pixel has its cpd
            frequency multiplied by ``local_ppd / ppd`` there.

        Notes
        -----
        The instantaneous density (the derivative, pixels per degree in the limit of a
        vanishing angle) is smaller by the factor ``(pi / 360) / tan(0.5 deg)``
        (1 - 2.54e-5): ``ppd_0 / cos(e)`` tangentially and ``ppd_0 / cos(e)^2`` radially,
        with ``ppd_0 = N/W * d * pi / 180``.
        """
        v.choice("direction", direction, ("radial", "tangential"))
        e = np.asarray(eccentricity_deg, dtype=float)
        if not np.all(np.isfinite(e)) or np.any(np.abs(e) >= 89.5):
            raise ValueError(f"eccentricity_deg must be finite with |e| < 89.5, got {eccentricity_deg!r}")
        rad = np.radians(e)
        if direction == "tangential":
            out = self._ppd / np.cos(rad)
        else:
            px_per_cm_times_d = self._ppd / (2 * math.tan(_HALF_DEG))
            out = px_per_cm_times_d * (np.tan(rad + _HALF_DEG) - np.tan(rad - _HALF_DEG))
        return float(out) if out.ndim == 0 else out

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready record of the geometry and its derived quantities."""
        d: dict[str, Any] = {
            "ppd": self._ppd,
            "nyquist_cpd": self.nyquist_cpd,
            "distance_cm": self.distance_cm,
            "screen_width_cm": self.screen_width_cm,
            "screen_width_px": self.screen_width_px,
            "screen_height_px": self.screen_height_px,
        }
        if self.distance_cm is not None:
            d["screen_width_deg"] = self.screen_width_deg
            d["screen_height_deg"] = self.screen_height_deg
            d["mean_ppd"] = self.mean_ppd
        return d

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ViewingGeometry):
            return NotImplemented
        return all(getattr(self, s) == getattr(other, s) for s in self.__slots__)

    def __hash__(self) -> int:
        return hash(tuple(getattr(self, s) for s in self.__slots__))

    def __repr__(self) -> str:
        if self.distance_cm is None:
            return f"ViewingGeometry.from_ppd({self._ppd!r})"
        return (
            f"ViewingGeometry(distance_cm={self.distance_cm!r}, screen_width_cm="
            f"{self.screen_width_cm!r}, screen_width_px={self.screen_width_px!r}, "
            f"screen_height_px={self.screen_height_px!r})  # ppd={self._ppd:.4f}"
        )


def _scaled(x: Any, k: float) -> Any:
    """``x * k`` as a float for scalars and a float array otherwise."""
    return float(x) * k if np.ndim(x) == 0 else np.asarray(x, dtype=float) * k


def linear_size_error(size_deg: Any) -> Any:
    """How much the linear conversion ``size_px = size_deg * ppd`` understates a size.

    For a stimulus centred on the line of sight whose true full angle is ``size_deg``:
    ``1 - linear_px / exact_px`` (:meth:`ViewingGeometry.deg_to_px_exact`); equally, the
    linear size in degrees ``size_px / ppd`` overstates the true angle by the factor
    ``1 / (1 - error)``. About 0.16 % at 8 deg, 1.0 % at 20 deg, 4.1 % at 40 deg; independent
    of ppd. Negative (and tiny) below 1 deg.

    Parameters
    ----------
    size_deg : float or array
        True full angle in degrees, in (0, 180).

    Returns
    -------
    float or ndarray
        The relative error (0.01 is 1 %).
    """
    x = np.asarray(size_deg, dtype=float)
    if not np.all(np.isfinite(x)) or np.any(x <= 0) or np.any(x >= 180):
        raise ValueError(f"size_deg must be finite and in (0, 180) deg, got {size_deg!r}")
    half = np.radians(x) / 2.0
    out = 1.0 - (x / 2.0) * _TAN_HALF_DEG / (0.5 * np.tan(half))
    return float(out) if out.ndim == 0 else out


def angular_size_deg(
    shape_px: tuple[int, int],
    ppd: float,
    *,
    requested_deg: Any = None,
    what: str = "stimulus",
    stacklevel: int = 3,
) -> list[float]:
    """Exact angular size ``[height, width]`` (deg) of an image centred on the line of sight.

    When the size was requested in degrees (``requested_deg``, made into ``shape_px`` by the
    linear conversion), warns with :class:`LinearSizeWarning` if the larger side is off by
    more than :data:`LINEAR_SIZE_TOLERANCE`. ``stacklevel`` is passed to
    :func:`warnings.warn` (3: the caller of the function that calls this one).
    """
    g = ViewingGeometry.from_ppd(ppd)
    exact = [float(g.px_to_deg_exact(n)) for n in shape_px]
    if requested_deg is None:
        return exact
    i = 0 if exact[0] >= exact[1] else 1
    req = [requested_deg, requested_deg] if np.ndim(requested_deg) == 0 else list(requested_deg)
    want = float(req[i])
    err = linear_size_error(want)
    if err > LINEAR_SIZE_TOLERANCE:
        warnings.warn(
            f"{what}: size_deg {want:g} became {shape_px[i]} px by the linear conversion "
            f"(size_deg * ppd, {ppd:.4g} ppd), but centred on the line of sight {shape_px[i]} px "
            f"span {exact[i]:.4g} deg and {want:g} deg need {float(g.deg_to_px_exact(want)):.1f} px: "
            f"the linear conversion understates the size by {100 * err:.2g} % (more than "
            f"{100 * LINEAR_SIZE_TOLERANCE:g} %, above about 14 deg). The record's "
            "size_deg_angular is the exact angle; for an exact size give size_px from "
            "ViewingGeometry.deg_to_px_exact",
            LinearSizeWarning,
            stacklevel=stacklevel,
        )
    return exact


def as_ppd(ppd: float | ViewingGeometry, name: str = "ppd") -> float:
    """Return pixels per degree from a number or a :class:`ViewingGeometry`, validated."""
    if isinstance(ppd, ViewingGeometry):
        return ppd.ppd
    return _checked_ppd(v.positive(name, ppd), name)


def resolve_shape(
    *,
    size_px: Any = None,
    size_deg: Any = None,
    ppd: float | ViewingGeometry | None = None,
) -> tuple[tuple[int, int], tuple[float, float] | None]:
    """Resolve an image shape in pixels from a size in px or in degrees.

    Any two of (shape in px, size in deg, ppd) determine the third; this is the one place
    where that happens. A size in degrees is rounded to the nearest whole pixel (halves up).

    Parameters
    ----------
    size_px : int or (int, int), optional
        Image height and width in pixels (one number: square).
    size_deg : float or (float, float), optional
        Image height and width in degrees of visual angle; needs ``ppd``.
    ppd : float or ViewingGeometry, optional
        Pixels per degree.

    Returns
    -------
    shape_px : (int, int)
        (height, width) in pixels.
    size_deg : (float, float) or None
        The actual size in degrees of the returned shape (after rounding), if ppd is known.
    """
    if (size_px is None) == (size_deg is None):
        raise ValueError("give exactly one of size_px and size_deg")
    p = None if ppd is None else as_ppd(ppd)
    if size_px is not None:
        vals = [size_px, size_px] if np.ndim(size_px) == 0 else list(size_px)
        if len(vals) != 2:
            raise ValueError(f"size_px must be one number or (height, width), got {size_px!r}")
        shape = (v.positive_int("size_px", vals[0]), v.positive_int("size_px", vals[1]))
    else:
        if p is None:
            raise ValueError("size_deg needs ppd (or a viewing geometry) to become pixels")
        vals = [size_deg, size_deg] if np.ndim(size_deg) == 0 else list(size_deg)
        if len(vals) != 2:
            raise ValueError(f"size_deg must be one number or (height, width), got {size_deg!r}")
        degs = [v.positive("size_deg", x) for x in vals]
        shape = (max(1, math.floor(degs[0] * p + 0.5)), max(1, math.floor(degs[1] * p + 0.5)))
    actual = None if p is None else (shape[0] / p, shape[1] / p)
    return shape, actual
