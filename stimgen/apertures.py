"""Apertures (windows) in degrees, their application to noise, and stimulus composition.

Contents
--------
aperture          a float window in [0, 1] of a named kind, sized in degrees
APERTURE_KINDS    the kinds and their parameters (gaussian, raised_cosine, disk, annulus)
apply_aperture    window noise: ``mode="window"`` (multiply) or ``mode="mask"`` (RMS set
                  within the aperture after windowing)
compose           ``aperture * (target + noise)`` with a record of every part and an
                  explicit clipping rule
ApertureWarning   warned when an aperture reaches beyond the image

Conventions
-----------
* Positions are in degrees from the image centre, ``x`` to the right and ``y`` up; the
  image centre is the point halfway between the middle pixels (pixel ``((H-1)/2,
  (W-1)/2)``), so a window is symmetric on images of even and odd size. ``center_deg =
  (x, y)`` moves a window.
* A pixel's value is the window at the pixel's centre.
* Signed contrast throughout (0 = mean luminance); nothing here clips silently.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from . import _validate as v
from .geometry import ViewingGeometry, as_ppd

__all__ = [
    "APERTURE_KINDS",
    "MODES",
    "ApertureWarning",
    "aperture",
    "aperture_from_record",
    "apply_aperture",
    "compose",
    "radius_deg_grid",
]

#: Ways to apply a window to noise (see :func:`apply_aperture`).
MODES = ("window", "mask")
#: Clipping rules of :func:`compose`.
CLIP_RULES = ("error", "report", "none")


class ApertureWarning(UserWarning):
    """An aperture (or a target's envelope) reaches beyond the image: it is cut off."""


def _shape(shape_px: Any) -> tuple[int, int]:
    vals = [shape_px, shape_px] if np.ndim(shape_px) == 0 else list(shape_px)
    if len(vals) != 2:
        raise ValueError(f"shape_px must be (height, width), got {shape_px!r}")
    return v.positive_int("shape_px", vals[0]), v.positive_int("shape_px", vals[1])


#: Largest |x| or |y| of a centre, degrees: beyond it a carrier's phase at the image
#: (frequency times distance, in cycles) is no longer computed exactly in float64.
MAX_CENTER_DEG = 1e6


def _center(center_deg: Any) -> tuple[float, float]:
    x, y = v.pair("center_deg", center_deg)
    if not (abs(x) <= MAX_CENTER_DEG and abs(y) <= MAX_CENTER_DEG):
        raise ValueError(f"center_deg must be finite (x, y) in degrees within +-{MAX_CENTER_DEG:g} of the image "
                         f"centre (a carrier's phase beyond is not exact in float64), got {center_deg!r}")
    return x, y


def coordinates_deg(
    shape_px: tuple[int, int], ppd: float, center_deg: tuple[float, float] = (0.0, 0.0)
) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` in degrees of every pixel centre from ``center_deg`` (x right, y up).

    Returns broadcastable arrays of shapes ``(1, W)`` and ``(H, 1)``.
    """
    h, w = shape_px
    x = (np.arange(w, dtype=np.float64) - (w - 1) / 2.0) / ppd - center_deg[0]
    y = ((h - 1) / 2.0 - np.arange(h, dtype=np.float64)) / ppd - center_deg[1]
    return x[None, :], y[:, None]


def radius_deg_grid(
    shape_px: Any, *, ppd: float | ViewingGeometry, center_deg: Any = (0.0, 0.0)
) -> np.ndarray:
    """Distance in degrees of every pixel centre from ``center_deg``, shape (H, W)."""
    x, y = coordinates_deg(_shape(shape_px), as_ppd(ppd), _center(center_deg))
    return np.hypot(x, y)


# -- the kinds ------------------------------------------------------------------------
def _cosine_ramp(t: np.ndarray) -> np.ndarray:
    """1 at t <= 0, 0 at t >= 1, ``(1 + cos(pi t)) / 2`` between (0.5 at t = 1/2)."""
    tc = np.clip(t, 0.0, 1.0)
    return 0.5 * (1.0 + np.cos(np.pi * tc))


def _gaussian(r: np.ndarray, p: dict[str, float]) -> np.ndarray:
    s = p["sigma_deg"]
    return np.exp(-(r * r) / (2.0 * s * s))


def _raised_cosine(r: np.ndarray, p: dict[str, float]) -> np.ndarray:
    R, ramp = p["radius_deg"], p["ramp_deg"]
    if ramp == 0:
        return (r <= R).astype(np.float64)
    return _cosine_ramp((r - R) / ramp)


def _disk(r: np.ndarray, p: dict[str, float]) -> np.ndarray:
    return (r <= p["radius_deg"]).astype(np.float64)


def _annulus(r: np.ndarray, p: dict[str, float]) -> np.ndarray:
    inner, outer, ramp = p["inner_deg"], p["outer_deg"], p["ramp_deg"]
    if ramp == 0:
        return ((r >= inner) & (r <= outer)).astype(np.float64)
    return _cosine_ramp((r - outer) / ramp) * _cosine_ramp((inner - r) / ramp)


#: ``kind -> (window function of radius, required parameters, optional parameters with
#: defaults, outer extent in degrees)``. The extent is where the window ends (3 sigma for
#: the Gaussian, whose tails never reach 0).
APERTURE_KINDS: dict[str, tuple[Any, tuple[str, ...], dict[str, float], Any]] = {
    "gaussian": (_gaussian, ("sigma_deg",), {}, lambda p: 3.0 * p["sigma_deg"]),
    "raised_cosine": (_raised_cosine, ("radius_deg", "ramp_deg"), {},
                      lambda p: p["radius_deg"] + p["ramp_deg"]),
    "disk": (_disk, ("radius_deg",), {}, lambda p: p["radius_deg"]),
    "annulus": (_annulus, ("inner_deg", "outer_deg"), {"ramp_deg": 0.0},
                lambda p: p["outer_deg"] + p["ramp_deg"]),
}


def _aperture_params(kind: str, params: Mapping[str, Any]) -> dict[str, float]:
    """Validate the parameters of ``kind``: names, and each a number in its range."""
    k = v.choice("kind", kind, APERTURE_KINDS)
    _, required, optional, _ = APERTURE_KINDS[k]
    allowed = (*required, *optional)
    unknown = sorted(set(params) - set(allowed))
    missing = [n for n in required if params.get(n) is None]
    if unknown or missing:
        raise ValueError(
            f"aperture kind {k!r} takes {', '.join(allowed)}"
            + (f"; unknown: {', '.join(unknown)}" if unknown else "")
            + (f"; missing: {', '.join(missing)}" if missing else "")
        )
    out: dict[str, float] = dict(optional)
    for n in allowed:
        if params.get(n) is not None:
            zero_ok = n in ("ramp_deg", "inner_deg")
            out[n] = v.positive(n, params[n], allow_zero=zero_ok)
    if k == "annulus":
        if out["outer_deg"] <= out["inner_deg"]:
            raise ValueError(f"outer_deg ({out['outer_deg']:g}) must be larger than inner_deg ({out['inner_deg']:g})")
        if out["inner_deg"] - out["ramp_deg"] < 0:
            raise ValueError(
                f"ramp_deg {out['ramp_deg']:g} is wider than inner_deg {out['inner_deg']:g}: the inner "
                "ramp would cross the centre; make ramp_deg <= inner_deg"
            )
    return out


def aperture(
    shape_px: Any,
    *,
    ppd: float | ViewingGeometry,
    kind: str,
    center_deg: Any = (0.0, 0.0),
    warn: bool = True,
    **params: Any,
) -> np.ndarray:
    """A window in [0, 1] of ``kind``, sized in degrees.

    Parameters
    ----------
    shape_px : int or (int, int)
        Image height and width in pixels.
    ppd : float or ViewingGeometry
        Pixels per degree.
    kind : {"gaussian", "raised_cosine", "disk", "annulus"}
        The window:

        * ``gaussian(sigma_deg)``: ``exp(-r^2 / (2 sigma^2))``; sigma is the standard
          deviation of the Gaussian in degrees.
        * ``raised_cosine(radius_deg, ramp_deg)``: 1 for ``r <= radius``, a cosine ramp of
          width ``ramp_deg`` beyond it (0.5 at ``radius + ramp / 2``), 0 beyond
          ``radius + ramp``.
        * ``disk(radius_deg)``: 1 for ``r <= radius``, else 0 (a hard edge).
        * ``annulus(inner_deg, outer_deg, ramp_deg=0)``: 1 for ``inner <= r <= outer``, with
          cosine ramps of width ``ramp_deg`` outside both edges (0.5 at ``inner - ramp/2``
          and ``outer + ramp/2``).
    center_deg : (float, float)
        Window centre ``(x, y)`` in degrees from the image centre (x right, y up).
    warn : bool
        Warn (:class:`ApertureWarning`) when the window reaches beyond the image.
    **params
        The kind's parameters, in degrees.

    Returns
    -------
    ndarray, shape (H, W), float64
        The window sampled at the pixel centres.

    Warns
    -----
    ApertureWarning
        When the window's outer extent (``radius + ramp``, ``outer + ramp``, 3 sigma) from
        its centre passes an image edge: the image cuts it off.

    Examples
    --------
    >>> w = aperture(65, ppd=16, kind="raised_cosine", radius_deg=1.0, ramp_deg=0.5)
    >>> float(w[32, 32]), float(w[32, 32 + 20]), float(w[32, 32 + 24])  # r = 0, 1.25, 1.5 deg
    (1.0, 0.5, 0.0)
    """
    shape = _shape(shape_px)
    p = as_ppd(ppd)
    ctr = _center(center_deg)
    prm = _aperture_params(kind, params)
    fn, _, _, extent = APERTURE_KINDS[kind]
    if warn:
        _warn_if_cut(kind, prm, extent(prm), shape, p, ctr)
    x, y = coordinates_deg(shape, p, ctr)
    return fn(np.hypot(x, y), prm)


def _warn_if_cut(kind: str, prm: dict[str, float], extent_deg: float, shape: tuple[int, int], ppd: float,
                 ctr: tuple[float, float]) -> None:  # fmt: skip
    h, w = shape
    half_w, half_h = w / (2.0 * ppd), h / (2.0 * ppd)  # image edges (outer pixel borders)
    room = min(half_w - abs(ctr[0]), half_h - abs(ctr[1]))
    if extent_deg > room * (1 + 1e-12):
        key = {"gaussian": "sigma_deg", "annulus": "outer_deg"}.get(kind, "radius_deg")
        what = "3 sigma" if kind == "gaussian" else "its outer edge"
        warnings.warn(
            f"aperture {kind} {key}={prm[key]:g} reaches beyond the image: {what} lies "
            f"{extent_deg:.4g} deg from its centre, but the nearest image edge is {room:.4g} deg away "
            f"({h} x {w} px at {ppd:.4g} ppd); the window is cut off",
            ApertureWarning,
            stacklevel=3,
        )


def aperture_from_record(record: Mapping[str, Any], shape_px: Any, *, ppd: float | ViewingGeometry) -> np.ndarray:
    """The window of an aperture record ``{"kind": ..., parameters..., "center_deg"?}``."""
    rec = dict(record)
    if "kind" not in rec:
        raise ValueError("an aperture record needs 'kind' (gaussian, raised_cosine, disk, annulus)")
    rec.pop("mode", None)
    kind = rec.pop("kind")
    center = rec.pop("center_deg", (0.0, 0.0))
    return aperture(shape_px, ppd=ppd, kind=kind, center_deg=center, **rec)


# -- applying a window to noise ---------------------------------------------------------
def _rms_within(x: np.ndarray, inside: np.ndarray) -> float:
    """RMS (about 0, the background) of ``x`` over the pixels where ``inside`` is true."""
    sel = x[..., inside]
    return float(np.sqrt(np.mean(np.square(sel, dtype=np.float64)))) if sel.size else 0.0


def apply_aperture(
    noise: Any,
    window: Any,
    *,
    mode: str = "window",
    rms_contrast: float | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Apply a window to noise in one of two stated ways.

    Parameters
    ----------
    noise : ndarray, shape (H, W) or (N, H, W)
        Signed-contrast noise (for example from :func:`stimgen.bandpass_noise`).
    window : ndarray, shape (H, W)
        A window in [0, 1] (from :func:`aperture`).
    mode : {"window", "mask"}
        * ``"window"``: multiply. The noise keeps its RMS contrast where the window is 1;
          the stated RMS is the noise's own (before windowing), i.e. inside the aperture.
        * ``"mask"``: multiply, then scale so that the RMS contrast over the aperture's
          pixels (window > 0) is ``rms_contrast`` (default: the noise's own RMS contrast).
    rms_contrast : float, optional
        The RMS contrast within the aperture for ``mode="mask"`` (about 0, the background
        luminance). Not used by ``mode="window"``.

    Returns
    -------
    windowed : ndarray
        Same shape and float dtype as ``noise``.
    record : dict
        ``mode``, ``rms_contrast`` (the stated RMS and ``rms_where``, what it refers to),
        ``gain`` (the scale applied after windowing, 1 for ``"window"``),
        ``rms_within_aperture`` (measured over window > 0, per image) and ``aperture_px``
        (pixels with window > 0).
    """
    m = v.choice("mode", mode, MODES)
    a = v.image_stack("noise", noise)
    if a.dtype.kind != "f":
        a = a.astype(np.float64)
    wnd = v.finite_array("window", window, ndim=(2,))
    if wnd.shape != a.shape[-2:]:
        raise ValueError(f"window has shape {wnd.shape}, the noise images {a.shape[-2:]}")
    if np.any(wnd < 0) or np.any(wnd > 1):
        raise ValueError("window must lie in [0, 1] (make it with stimgen.aperture)")
    inside = wnd > 0
    if not np.any(inside):
        raise ValueError("the window is 0 everywhere: the aperture lies outside the image")
    out = a * wnd.astype(a.dtype)
    stack = out if out.ndim == 3 else out[None]
    own = float(np.sqrt(np.mean(np.square(a, dtype=np.float64), axis=(-2, -1))).mean())
    if m == "window":
        gains = [1.0] * stack.shape[0]
        stated, where = own, "the noise before windowing: its RMS where the window is 1"
        if rms_contrast is not None:
            raise ValueError("rms_contrast is set by mode='mask'; mode='window' keeps the noise's own RMS")
    else:
        stated = own if rms_contrast is None else v.in_range("rms_contrast", rms_contrast, 0.0, 1.0, low_inclusive=False)
        where = "over the aperture's pixels (window > 0) after windowing, about 0"
        gains = []
        for img in stack:
            r = _rms_within(img, inside)
            if r == 0:
                raise ValueError("the windowed noise is 0 within the aperture: its RMS cannot be set")
            g = stated / r
            img *= img.dtype.type(g)
            gains.append(g)
    record = {
        "mode": m,
        "rms_contrast": stated,
        "rms_where": where,
        "gain": gains[0] if out.ndim == 2 else gains,
        "rms_within_aperture": [_rms_within(img, inside) for img in stack] if out.ndim == 3
        else _rms_within(out, inside),
        "aperture_px": int(np.count_nonzero(inside)),
    }
    return out, record


# -- composition ----------------------------------------------------------------------------
def _part(name: str, value: Any) -> tuple[np.ndarray | None, dict[str, Any] | None]:
    """``(array, record)`` from an array, an ``(array, record)`` pair or None."""
    if value is None:
        return None, None
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], Mapping):
        return v.image_stack(name, value[0]), dict(value[1])
    if isinstance(value, Mapping):
        raise ValueError(f"{name} must be an image or an (image, record) pair, got a mapping")
    return v.image_stack(name, value), None


def compose(
    target: Any = None,
    noise: Any = None,
    aperture: Any = None,
    *,
    ppd: float | ViewingGeometry | None = None,
    mode: str = "window",
    rms_contrast: float | None = None,
    clip: str = "error",
) -> tuple[np.ndarray, dict[str, Any]]:
    """A stimulus from a target, noise and an aperture: ``aperture * (target + noise)``.

    Parameters
    ----------
    target : ndarray or (ndarray, dict), optional
        Signed-contrast target ``(H, W)``, e.g. the pair returned by :func:`stimgen.gabor`.
    noise : ndarray or (ndarray, dict), optional
        Signed-contrast noise ``(H, W)`` or ``(N, H, W)`` (N composites, one per noise
        image), e.g. the pair returned by :func:`stimgen.bandpass_noise`.
    aperture : ndarray, (ndarray, dict) or dict, optional
        A window in [0, 1], or an aperture record ``{"kind": ..., ...}`` (made here at the
        images' shape; needs ``ppd`` or a part's record holding it). None: no window.
    ppd : float or ViewingGeometry, optional
        Pixels per degree (default: from the target's or the noise's record); needed for
        an aperture record and for E and N.
    mode : {"window", "mask"}
        How the aperture applies to the noise (:func:`apply_aperture`); the target is
        always multiplied by the window.
    rms_contrast : float, optional
        With ``mode="mask"``: the noise's RMS contrast within the aperture.
    clip : {"error", "report", "none"}
        Values outside [-1, 1]: ``"error"`` refuses (naming the fraction out of range),
        ``"report"`` clips to [-1, 1] and records the clipped fraction (and warns),
        ``"none"`` keeps them and records their fraction. Nothing is clipped silently.

    Returns
    -------
    stimulus : ndarray
        ``w * target + noise_part``, where ``noise_part = w * noise`` (``"window"``) or the
        masked noise (``"mask"``); float64 unless both parts are float32.
    record : dict
        ``target``, ``noise`` and ``aperture`` records (None when absent or not given),
        ``mode``, ``noise_aperture`` (from :func:`apply_aperture`), ``clip``,
        ``fraction_outside_range``, ``clipped_fraction``, and with ``ppd``:
        ``target_energy_deg2`` (E of the windowed target), ``noise_psd_deg2`` (N at the
        target's frequency and at the noise's peak, from the noise record) and
        ``e_over_n``.

    Raises
    ------
    ValueError
        Shapes that differ, nothing to compose, or (``clip="error"``) values outside
        [-1, 1].
    """
    rule = v.choice("clip", clip, CLIP_RULES)
    t, t_rec = _part("target", target)
    nz, n_rec = _part("noise", noise)
    if t is None and nz is None:
        raise ValueError("compose needs a target, noise or both")
    if t is not None and t.ndim != 2:
        raise ValueError(f"target must be one image (H, W), got shape {t.shape}")
    shape = (t if t is not None else nz).shape[-2:]  # type: ignore[union-attr]
    if t is not None and nz is not None and nz.shape[-2:] != t.shape:
        raise ValueError(f"target has shape {t.shape}, the noise images {nz.shape[-2:]}: they must match")
    p: float | None = None
    if ppd is not None:
        p = as_ppd(ppd)
    else:
        for rec in (t_rec, n_rec):
            if rec is not None and rec.get("ppd") is not None:
                p = as_ppd(rec["ppd"])
                break
    # the window
    a_rec: dict[str, Any] | None = None
    if aperture is None:
        wnd = None
    elif isinstance(aperture, Mapping):
        if p is None:
            raise ValueError("an aperture record needs ppd (give ppd=, or parts with records that hold it)")
        a_rec = dict(aperture)
        wnd = aperture_from_record(a_rec, shape, ppd=p)
    else:
        wnd, a_rec = _part("aperture", aperture)
        if wnd is not None and wnd.shape != shape:
            raise ValueError(f"aperture has shape {wnd.shape}, the images {shape}: they must match")
    parts = [x for x in (t, nz) if x is not None]
    dtype = np.float32 if all(x.dtype == np.float32 for x in parts) else np.float64
    # the noise part
    n_ap = None
    if nz is not None and wnd is not None:
        noise_part, n_ap = apply_aperture(nz.astype(dtype, copy=False), wnd, mode=mode, rms_contrast=rms_contrast)
    elif nz is not None:
        if rms_contrast is not None or mode != "window":
            raise ValueError("mode='mask' and rms_contrast need an aperture")
        noise_part = nz.astype(dtype, copy=True)
    else:
        noise_part = None
    t_part = None
    if t is not None:
        t_part = (t * wnd if wnd is not None else t).astype(dtype, copy=False)
    if noise_part is None:
        out = np.array(t_part, dtype=dtype, copy=True)
    elif t_part is None:
        out = noise_part
    else:
        out = noise_part + t_part
    outside = int(np.count_nonzero(np.abs(out) > 1.0))
    frac = outside / out.size
    clipped = 0.0
    if outside:
        if rule == "error":
            raise ValueError(
                f"the composite has {frac:.4%} of its pixels outside [-1, 1] (largest |value| "
                f"{float(np.max(np.abs(out))):.4g}): lower the target or noise contrast, or pass "
                "clip='report' to clip and record it"
            )
        if rule == "report":
            np.clip(out, -1.0, 1.0, out=out)
            clipped = frac
            warnings.warn(f"compose clipped {frac:.4%} of the composite's pixels to [-1, 1]", stacklevel=2)
    record: dict[str, Any] = {
        "target": t_rec,
        "noise": n_rec,
        "aperture": a_rec,
        "mode": mode if wnd is not None else None,
        "noise_aperture": n_ap,
        "clip": rule,
        "fraction_outside_range": frac,
        "clipped_fraction": clipped,
        "ppd": p,
        "shape_px": list(shape),
        "value_convention": "signed contrast: 0 = mean luminance, display range [-1, 1]",
    }
    if p is not None:
        record.update(_energy_fields(t_part, n_rec, n_ap, t_rec, p))
    return out, record


def _energy_fields(t_part: np.ndarray | None, n_rec: dict[str, Any] | None, n_ap: dict[str, Any] | None,
                   t_rec: dict[str, Any] | None, ppd: float) -> dict[str, Any]:  # fmt: skip
    """E of the windowed target, N of the noise (from its record), and E / N."""
    from .energy import contrast_energy, noise_psd

    out: dict[str, Any] = {"target_energy_deg2": None, "noise_psd_deg2": None, "e_over_n": None}
    if t_part is not None:
        out["target_energy_deg2"] = float(contrast_energy(t_part, ppd))
    if n_rec is not None and "filter" in n_rec:
        c = n_rec.get("rms_contrast")
        if c is not None and n_ap is not None and n_ap["mode"] == "mask":
            c = float(c) * float(np.mean(n_ap["gain"]))  # the masked noise' level scales with its gain
        at_peak = float(noise_psd(n_rec, ppd=ppd, rms_contrast=c))  # type: ignore[arg-type]
        n: dict[str, Any] = {"at_peak": at_peak, "at_target": None}
        sf = None if t_rec is None else t_rec.get("sf_cpd")
        if sf is not None:
            n["at_target"] = float(noise_psd(n_rec, ppd=ppd, rms_contrast=c, freq_cpd=sf,  # type: ignore[arg-type]
                                             orientation_deg=t_rec.get("orientation_deg")))  # type: ignore[union-attr]
        out["noise_psd_deg2"] = n
        if out["target_energy_deg2"] is not None and n["at_target"]:
            out["e_over_n"] = out["target_energy_deg2"] / n["at_target"]
    return out
