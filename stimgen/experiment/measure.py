"""Spectral, orientation, slope and speed checks of stimuli and conditions.

Plain functions of arrays, designs and tolerances (no plan, no parts), used by the parts:

spectral_check          one image's radial spectrum against its design (band or 1/f slope)
condition_spectrum      mean and spread of a condition's radial spectra
condition_spectral_check  the same check on a condition's mean spectrum
speed_check             one movie's velocity by optical flow against its record
speed_summary           requested vs measured velocity over a condition's movies
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..filters import radial_part

SLOPE_FAMILIES = ("power_law", "white")  # checked by their 1/f exponent, not by a band


def design_alpha(params: Mapping[str, Any]) -> float:
    """The 1/f exponent a power-law or white condition is designed to have."""
    return 0.0 if params["family"] == "white" else params["alpha"]


def spectral_check(img: np.ndarray, ppd: float, params: Mapping[str, Any], filt: Any,
                   check: Mapping[str, Any]) -> tuple[dict[str, Any], np.ndarray]:  # fmt: skip
    """One image's spectrum facts for the manifest, and its radial power (for figures).

    Band-pass families: measured peak and band at the condition's level against the
    design (``check.edge_tolerance``/``peak_tolerance`` or defaults for one image), and for
    oriented noise the dominant orientation. ``power_law``/``white``: the fitted exponent.
    """
    from ..spectrum import (
        compare_to_design,
        default_tolerance,
        measure_band,
        measure_slope,
        radial_spectrum,
    )

    spec = radial_spectrum(img, ppd=ppd, bins_per_octave=24)
    p = params
    shape = img.shape
    res: dict[str, Any] = {}
    if p["family"] in SLOPE_FAMILIES:
        alpha = measure_slope(spec, ppd=ppd, band_cpd=p["band_cpd"])
        want = design_alpha(p)
        res.update(peak_cpd=None, band_cpd=None, alpha=alpha, design_alpha=want)
        res["pass"] = bool(abs(alpha - want) <= alpha_tolerance(check, 1, shape))
        return res, spec.power
    radial = radial_part(filt)
    m = measure_band(spec, ppd=ppd)
    assert radial is not None  # band-pass families always have a radial filter
    tol = default_tolerance(1, shape)
    if check["edge_tolerance"] is not None:
        tol["edge"] = check["edge_tolerance"]
    if check["peak_tolerance"] is not None:
        tol["peak"] = check["peak_tolerance"]
    cmp = compare_to_design(m, radial, ppd=ppd, level=p["level"], tolerance=tol)
    res.update(peak_cpd=m.peak_cpd, band_cpd=list(m.band_cpd(p["level"])), rel_error=cmp["rel_error"])
    res["pass"] = cmp["pass"]
    if p["orientation_deg"] is not None:
        got = measured_orientation(img, ppd, cmp["design"]["band_cpd"])
        err = axial_difference(got, p["orientation_deg"])
        res.update(orientation_deg=got, orientation_error_deg=err)
        res["pass"] = bool(res["pass"] and abs(err) <= check["orientation_tolerance_deg"])
    return res, spec.power


def measured_orientation(img: np.ndarray, ppd: float, band_cpd: list[float]) -> float:
    """Dominant stripe orientation in deg (0 vertical, counter-clockwise), in [0, 180).

    The power-weighted circular mean of doubled angles of the power inside the design band,
    in 72 orientation bins (2.5 deg), or fewer when a small image leaves a bin without DFT
    samples in the band.
    """
    from ..spectrum import orientation_spectrum

    for n_bins in (72, 36, 18, 9):
        try:
            ang, power = orientation_spectrum(img, n_bins=n_bins, ppd=ppd, band_cpd=band_cpd)
            break
        except ValueError:
            if n_bins == 9:
                raise
    ok = np.isfinite(power)
    a2 = np.radians(2 * ang[ok])
    theta = 0.5 * math.degrees(math.atan2(float(np.sum(power[ok] * np.sin(a2))), float(np.sum(power[ok] * np.cos(a2)))))
    return theta % 180.0


def axial_difference(a: float, b: float) -> float:
    """``a - b`` for orientations (period 180 deg), in [-90, 90)."""
    return (a - b + 90.0) % 180.0 - 90.0


def alpha_tolerance(check: Mapping[str, Any], n_images: int, shape: tuple[int, ...]) -> float:
    """Allowed |measured - design| of the 1/f exponent: ``check.alpha_tolerance`` or a default.

    The default scales with the number of Fourier samples like the band tolerances: the
    fitted exponent of one 64 x 96 px image scatters by about 0.1 (SD), so the tolerance is
    ``0.4 * sqrt(64 * 96 / (n H W))``, never below 0.1.
    """
    if check["alpha_tolerance"] is not None:
        return float(check["alpha_tolerance"])
    return max(0.1, 0.4 * math.sqrt(64 * 96 / (max(n_images, 1) * shape[0] * shape[1])))


def condition_spectrum(bins: Any, powers: list[np.ndarray], ppd: float):
    """Mean and spread over a condition's repeats of the per-stimulus radial spectra.

    ``bins`` is a :class:`~stimgen.spectrum.RadialSpectrum` of the image shape (its bins).
    """
    from ..spectrum import RadialSpectrum

    per = np.asarray(powers)
    return RadialSpectrum(
        freq_cpp=bins.freq_cpp,
        power=per.mean(axis=0),
        power_std=per.std(axis=0, ddof=1) if len(per) > 1 else np.zeros(per.shape[1]),
        counts=bins.counts,
        n_images=len(per),
        shape_px=bins.shape_px,
        ppd=ppd,
    )


def condition_spectral_check(spec: Any, params: Mapping[str, Any], filt: Any, ppd: float,
                             check: Mapping[str, Any]) -> dict[str, Any]:  # fmt: skip
    """The spectral check of a condition's mean spectrum (tolerances for its number of images)."""
    from ..spectrum import compare_to_design, default_tolerance, measure_band, measure_slope

    p = params
    n = spec.n_images
    out: dict[str, Any] = {}
    if p["family"] in SLOPE_FAMILIES:
        alpha = measure_slope(spec, ppd=ppd, band_cpd=p["band_cpd"])
        want = design_alpha(p)
        out["measured"] = {"alpha": alpha, "design_alpha": want}
        out["pass"] = bool(abs(alpha - want) <= alpha_tolerance(check, n, spec.shape_px))
        return out
    radial = radial_part(filt)
    m = measure_band(spec, ppd=ppd)
    assert radial is not None  # band-pass families always have a radial filter
    cmp = compare_to_design(m, radial, ppd=ppd, level=p["level"], tolerance=default_tolerance(n, spec.shape_px))
    out["measured"] = cmp["measured"]
    out["rel_error"] = cmp["rel_error"]
    out["pass"] = cmp["pass"]
    return out


def speed_check(movie: np.ndarray, record: Mapping[str, Any], check: Mapping[str, Any]) -> dict[str, Any] | None:
    """verify_motion of a movie with the experiment's tolerances (None: nothing to measure).

    Dynamic noise with ``refresh_frames = 1`` shows a new sample every frame: no two frames
    show the same noise, so there is no motion to measure.
    """
    from ..motion import verify_motion

    if record.get("refresh_frames") == 1:
        return None
    res = verify_motion(
        movie, dict(record), tolerance=check["speed_tolerance"],
        atol_px_per_frame=check["speed_atol_px_per_frame"],
        min_reliable_fraction=check["min_reliable_fraction"],
    )  # fmt: skip
    res.pop("requested", None)  # in the entry already
    res.pop("velocity_convention", None)  # in the manifest once
    return res


def speed_summary(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """Requested vs measured velocity of a condition's movies (median over its repeats)."""
    e0 = entries[0]
    checks = [e["speed_check"] for e in entries if e.get("speed_check") is not None]
    out: dict[str, Any] = {
        "requested_speed_deg_s": e0["speed_deg_s"],
        "requested_direction_deg": e0["direction_deg"] if e0["speed_deg_s"] > 0 else None,
        "requested_velocity_deg_s": e0["velocity_deg_s"],
        "measured_speed_deg_s": None,
        "measured_speed_range_deg_s": None,
        "measured_direction_deg": None,
        "direction_error_deg": None,
        "measured_velocity_deg_s": None,
        "n_checked": len(checks),
        "n_pass": sum(bool(k["pass"]) for k in checks),
        "pass": None,
    }
    if not checks:
        return out
    vel = np.array([k["measured"]["velocity_deg_s"] for k in checks], dtype=np.float64)
    speeds = np.hypot(vel[:, 0], vel[:, 1])
    vx, vy = (float(x) for x in np.median(vel, axis=0))
    out["measured_velocity_deg_s"] = [vx + 0.0, vy + 0.0]
    out["measured_speed_deg_s"] = float(np.median(speeds))
    out["measured_speed_range_deg_s"] = [float(speeds.min()), float(speeds.max())]
    if vx != 0 or vy != 0:
        d = out["measured_direction_deg"] = math.degrees(math.atan2(-vy, vx)) % 360.0
        if out["requested_direction_deg"] is not None:
            out["direction_error_deg"] = (d - out["requested_direction_deg"] + 180.0) % 360.0 - 180.0
    out["pass"] = out["n_pass"] == len(checks)
    return out


def close(a: Any, b: Any, rtol: float) -> bool:
    """``a`` and ``b`` (numbers, None or lists of them) agree to ``rtol``."""
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, list):
        return len(a) == len(b) and all(close(x, y, rtol) for x, y in zip(a, b, strict=True))
    a, b = float(a), float(b)
    if not (math.isfinite(a) and math.isfinite(b)):
        return a == b
    return abs(a - b) <= rtol * max(abs(a), abs(b), 1e-12)


def fmt_num(x: Any) -> str:
    if isinstance(x, list):
        return "[" + ", ".join(fmt_num(y) for y in x) + "]"
    return f"{x:.5g}" if isinstance(x, float) else str(x)


def close_abs(a: Any, b: Any, atol: float) -> bool:
    """``a`` and ``b`` (numbers or None) agree to ``atol`` (plus 1e-6 relative)."""
    if a is None or b is None:
        return a is None and b is None
    a, b = float(a), float(b)
    if not (math.isfinite(a) and math.isfinite(b)):
        return a == b or (math.isnan(a) and math.isnan(b))
    return abs(a - b) <= atol + 1e-6 * max(abs(a), abs(b))
