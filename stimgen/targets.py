"""Targets for masking experiments: Gabor patches and gratings, in signed contrast.

Contents
--------
gabor               a cosine grating in a Gaussian envelope, sized in degrees
grating             the same without the envelope, optionally inside an aperture
target_from_record  regenerate a target from its record
TARGETS             the target kinds by name (for ``kind:`` keys)

Conventions
-----------
* Every function returns ``(image, record)`` like :func:`stimgen.bandpass_noise`: the
  image in signed contrast (0 = mean luminance) and every parameter that made it; the
  record alone regenerates the image (:func:`target_from_record`).
* Orientation is the stripe orientation of :class:`stimgen.filters.Orientation`: 0 gives
  vertical stripes (luminance varying left to right), positive angles turn the stripes
  counter-clockwise on the screen (45: stripes from top-left to bottom-right). The
  frequency vector points at ``orientation_deg`` from the horizontal axis, so the
  target's spectrum peaks where ``Orientation(orientation_deg)`` passes.
* Phase is that of the cosine carrier at the target's centre: 0 is cosine phase (a bright
  bar of the full contrast at the centre), 90 sine phase, 180 a dark centre bar. The
  carrier is ``cos(2 pi f (x cos t + y sin t) + phase)`` with x right and y up, in degrees
  from the centre.
* Positions (``center_deg``) are ``(x, y)`` in degrees from the image centre, x to the
  right and y up, as for :func:`stimgen.aperture`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import _validate as v
from .apertures import ApertureWarning, _center, aperture_from_record, coordinates_deg
from .geometry import ViewingGeometry, as_ppd, resolve_shape

__all__ = ["TARGETS", "gabor", "grating", "target_from_record"]

VALUE_CONVENTION = "signed contrast: 0 = mean luminance, display range [-1, 1]"
_FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))


def _float_dtype(dtype: Any) -> np.dtype:
    dt = np.dtype(dtype)
    if dt not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dt}")
    return dt


def _carrier_params(ppd: Any, sf_cpd: Any, orientation_deg: Any, phase_deg: Any, contrast: Any) -> dict[str, float]:
    p = as_ppd(ppd)
    f = v.positive("sf_cpd", sf_cpd, allow_zero=True)
    if f > p / 2:
        raise ValueError(f"sf_cpd {f:g} cpd exceeds Nyquist ({p / 2:.4g} cpd at {p:.4g} ppd)")
    out = {"ppd": p, "sf_cpd": f}
    for name, val in (("orientation_deg", orientation_deg), ("phase_deg", phase_deg)):
        x = v._number(name, val)
        if not math.isfinite(x):
            raise ValueError(f"{name} must be finite, in degrees, got {val!r}")
        out[name] = x
    out["contrast"] = v.in_range("contrast", contrast, -1.0, 1.0)
    return out


def _carrier(shape: tuple[int, int], c: dict[str, float], ctr: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """``(carrier, r^2)``: the unit cosine carrier and the squared radius (deg^2)."""
    x, y = coordinates_deg(shape, c["ppd"], ctr)
    t = math.radians(c["orientation_deg"])
    arg = (2.0 * math.pi * c["sf_cpd"]) * (x * math.cos(t) + y * math.sin(t)) + math.radians(c["phase_deg"])
    return np.cos(arg), x * x + y * y


def _sigma(sigma_deg: Any, fwhm_deg: Any) -> float:
    if (sigma_deg is None) == (fwhm_deg is None):
        raise ValueError("give exactly one of sigma_deg (the envelope's standard deviation) and fwhm_deg")
    if sigma_deg is not None:
        return v.positive("sigma_deg", sigma_deg)
    return v.positive("fwhm_deg", fwhm_deg) / _FWHM_PER_SIGMA


def gabor(
    size_px: Any = None,
    size_deg: Any = None,
    *,
    ppd: float | ViewingGeometry,
    sf_cpd: float,
    orientation_deg: float = 0.0,
    phase_deg: float = 0.0,
    sigma_deg: float | None = None,
    fwhm_deg: float | None = None,
    contrast: float,
    center_deg: Any = (0.0, 0.0),
    dtype: Any = np.float32,
) -> tuple[np.ndarray, dict[str, Any]]:
    """A Gabor patch: a cosine grating in a circular Gaussian envelope, in signed contrast.

    Parameters
    ----------
    size_px : int or (int, int), optional
        Image height and width in pixels.
    size_deg : float or (float, float), optional
        Image height and width in degrees (rounded to whole pixels); give one of the sizes.
    ppd : float or ViewingGeometry
        Pixels per degree.
    sf_cpd : float
        Carrier spatial frequency in cycles/degree (>= 0, at most Nyquist ``ppd / 2``).
    orientation_deg : float
        Stripe orientation in degrees counter-clockwise from vertical (0: vertical stripes),
        as :class:`stimgen.filters.Orientation`.
    phase_deg : float
        Carrier phase at the centre in degrees: 0 cosine (bright centre bar), 90 sine.
    sigma_deg : float, optional
        Standard deviation of the Gaussian envelope in degrees: the envelope is
        ``exp(-r^2 / (2 sigma^2))`` with r the distance from the centre in degrees.
    fwhm_deg : float, optional
        Alternatively the envelope's full width at half maximum in degrees
        (``sigma = fwhm / (2 sqrt(2 ln 2)) = fwhm / 2.3548``).
    contrast : float
        Peak contrast of the carrier, in [-1, 1] (the amplitude of the cosine; the centre
        value in cosine phase).
    center_deg : (float, float)
        Centre ``(x, y)`` in degrees from the image centre (x right, y up).
    dtype : {float32, float64}
        Output dtype (computed in float64).

    Returns
    -------
    image : ndarray, shape (H, W)
        ``contrast * exp(-r^2 / (2 sigma^2)) * cos(2 pi sf (x cos o + y sin o) + phase)``.
    record : dict
        ``kind: "gabor"`` and every parameter (with ``shape_px``, ``size_deg``, both
        ``sigma_deg`` and ``fwhm_deg``), ``energy_deg2`` (E of the image as made) and
        ``energy_formula_deg2`` (the closed form), ``value_convention``.

    Warns
    -----
    ApertureWarning
        When 3 sigma of the envelope reaches beyond the image (the image cuts it off, and
        E falls short of the closed form).

    Notes
    -----
    The contrast energy of the (untruncated) Gabor is
    ``E = c^2 pi sigma^2 / 2 * (1 + cos(2 phase) exp(-4 pi^2 f^2 sigma^2))`` deg^2
    (docs/theory.md). Its spectrum peaks at ``sf_cpd`` in the direction ``orientation_deg``,
    with a Gaussian spread of standard deviation ``1 / (2 pi sigma)`` cpd.

    Examples
    --------
    >>> img, rec = gabor(size_deg=8, ppd=35.8375, sf_cpd=4, sigma_deg=0.5, contrast=0.1)
    >>> img.shape, round(rec["energy_deg2"], 8), round(rec["energy_formula_deg2"], 8)
    ((287, 287), 0.00392699, 0.00392699)
    """
    c = _carrier_params(ppd, sf_cpd, orientation_deg, phase_deg, contrast)
    s = _sigma(sigma_deg, fwhm_deg)
    ctr = _center(center_deg)
    dt = _float_dtype(dtype)
    shape, actual = resolve_shape(size_px=size_px, size_deg=size_deg, ppd=c["ppd"])
    _warn_envelope(s, shape, c["ppd"], ctr)
    carrier, r2 = _carrier(shape, c, ctr)
    img = (c["contrast"] * np.exp(-r2 / (2.0 * s * s)) * carrier).astype(dt)
    f, phi = c["sf_cpd"], math.radians(c["phase_deg"])
    formula = c["contrast"] ** 2 * math.pi * s * s / 2.0 * (1.0 + math.cos(2 * phi) * math.exp(-4 * math.pi**2 * f * f * s * s))
    record = {
        "kind": "gabor",
        **c,
        "sigma_deg": s,
        "fwhm_deg": s * _FWHM_PER_SIGMA,
        "center_deg": list(ctr),
        "shape_px": list(shape),
        "size_deg": [shape[0] / c["ppd"], shape[1] / c["ppd"]] if actual is None else list(actual),
        "dtype": dt.name,
        "energy_deg2": float(np.sum(np.square(img, dtype=np.float64))) / c["ppd"] ** 2,
        "energy_formula_deg2": formula,
        "value_convention": VALUE_CONVENTION,
    }
    return img, record


def _warn_envelope(sigma: float, shape: tuple[int, int], ppd: float, ctr: tuple[float, float]) -> None:
    import warnings

    h, w = shape
    room = min(w / (2.0 * ppd) - abs(ctr[0]), h / (2.0 * ppd) - abs(ctr[1]))
    if 3.0 * sigma > room:
        warnings.warn(
            f"gabor sigma_deg={sigma:g}: 3 sigma ({3 * sigma:.4g} deg) reaches beyond the image (nearest "
            f"edge {room:.4g} deg from the centre, {h} x {w} px at {ppd:.4g} ppd); the envelope is cut off "
            "and E falls short of the closed form",
            ApertureWarning,
            stacklevel=3,
        )


def grating(
    size_px: Any = None,
    size_deg: Any = None,
    *,
    ppd: float | ViewingGeometry,
    sf_cpd: float,
    orientation_deg: float = 0.0,
    phase_deg: float = 0.0,
    contrast: float,
    center_deg: Any = (0.0, 0.0),
    aperture: dict[str, Any] | None = None,
    dtype: Any = np.float32,
) -> tuple[np.ndarray, dict[str, Any]]:
    """A cosine grating in signed contrast, optionally inside an aperture.

    Parameters
    ----------
    size_px, size_deg, ppd, sf_cpd, orientation_deg, phase_deg, contrast, dtype
        As for :func:`gabor` (phase is the carrier's at ``center_deg``).
    center_deg : (float, float)
        The point of the stated phase, and the aperture's centre, ``(x, y)`` in degrees
        from the image centre.
    aperture : dict, optional
        An aperture ``{"kind": ..., parameters}`` as for :func:`stimgen.aperture` (e.g.
        ``{"kind": "raised_cosine", "radius_deg": 2, "ramp_deg": 0.5}``), centred on
        ``center_deg``. None: the grating fills the image.

    Returns
    -------
    image : ndarray, shape (H, W)
        ``contrast * window * cos(2 pi sf (x cos o + y sin o) + phase)``.
    record : dict
        ``kind: "grating"``, every parameter, the ``aperture`` record, ``energy_deg2``.
    """
    c = _carrier_params(ppd, sf_cpd, orientation_deg, phase_deg, contrast)
    ctr = _center(center_deg)
    dt = _float_dtype(dtype)
    shape, actual = resolve_shape(size_px=size_px, size_deg=size_deg, ppd=c["ppd"])
    carrier, _ = _carrier(shape, c, ctr)
    img = c["contrast"] * carrier
    ap_rec = None
    if aperture is not None:
        if not isinstance(aperture, dict):
            raise ValueError(f"aperture must be a dict {{'kind': ..., parameters}}, got {aperture!r}")
        ap_rec = {**aperture, "center_deg": list(ctr)}
        img = img * aperture_from_record(ap_rec, shape, ppd=c["ppd"])
    img = img.astype(dt)
    record = {
        "kind": "grating",
        **c,
        "center_deg": list(ctr),
        "aperture": ap_rec,
        "shape_px": list(shape),
        "size_deg": [shape[0] / c["ppd"], shape[1] / c["ppd"]] if actual is None else list(actual),
        "dtype": dt.name,
        "energy_deg2": float(np.sum(np.square(img, dtype=np.float64))) / c["ppd"] ** 2,
        "value_convention": VALUE_CONVENTION,
    }
    return img, record


#: Target kinds by name, and the record keys each takes to regenerate it.
TARGETS: dict[str, tuple[Any, tuple[str, ...]]] = {
    "gabor": (gabor, ("ppd", "sf_cpd", "orientation_deg", "phase_deg", "sigma_deg", "contrast", "center_deg", "dtype")),
    "grating": (grating, ("ppd", "sf_cpd", "orientation_deg", "phase_deg", "contrast", "center_deg", "aperture", "dtype")),
}


def target_from_record(record: dict[str, Any]) -> np.ndarray:
    """Regenerate the image of a :func:`gabor` or :func:`grating` record, bit for bit.

    Raises
    ------
    ValueError
        If the kind is unknown or the record lacks a field.
    """
    kind = v.choice("kind", record.get("kind"), TARGETS)
    fn, keys = TARGETS[kind]
    missing = [k for k in (*keys, "shape_px") if k not in record]
    if missing:
        raise ValueError(f"{kind} record lacks the fields {missing}")
    kwargs = {k: record[k] for k in keys}
    if kind == "grating" and kwargs["aperture"] is not None:
        kwargs["aperture"] = {k: val for k, val in kwargs["aperture"].items() if k != "center_deg"}
    img, _ = fn(size_px=record["shape_px"], **kwargs)
    return img
