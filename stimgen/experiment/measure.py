"""Spectral, orientation, slope and speed checks of stimuli and conditions."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..filters import radial_part
from .plan import _Condition, _Plan


def _measure(plan: _Plan, c: _Condition, img: np.ndarray) -> tuple[dict[str, Any], np.ndarray]:
    """Per-stimulus spectrum facts for the manifest, and its radial power (for figures)."""
    from ..spectrum import (
        compare_to_design,
        default_tolerance,
        measure_band,
        measure_slope,
        radial_spectrum,
    )

    spec = radial_spectrum(img, ppd=plan.ppd, bins_per_octave=24)
    p = c.params
    check = plan.exp["check"]
    filt = plan.filter(c)
    radial = radial_part(filt)
    res: dict[str, Any] = {}
    if p["family"] in ("power_law", "white"):
        alpha = measure_slope(spec, ppd=plan.ppd, band_cpd=p["band_cpd"])
        want = 0.0 if p["family"] == "white" else p["alpha"]
        res.update(peak_cpd=None, band_cpd=None, alpha=alpha, design_alpha=want)
        res["pass"] = bool(abs(alpha - want) <= _alpha_tolerance(check, 1, plan.shape))
        return res, spec.power
    m = measure_band(spec, ppd=plan.ppd)
    assert radial is not None  # band-pass families always have a radial filter
    tol = default_tolerance(1, plan.shape)
    if check["edge_tolerance"] is not None:
        tol["edge"] = check["edge_tolerance"]
    if check["peak_tolerance"] is not None:
        tol["peak"] = check["peak_tolerance"]
    cmp = compare_to_design(m, radial, ppd=plan.ppd, level=p["level"], tolerance=tol)
    res.update(peak_cpd=m.peak_cpd, band_cpd=list(m.band_cpd(p["level"])), rel_error=cmp["rel_error"])
    res["pass"] = cmp["pass"]
    if p["orientation_deg"] is not None:
        got = _measured_orientation(img, plan.ppd, cmp["design"]["band_cpd"])
        err = _axial_difference(got, p["orientation_deg"])
        res.update(orientation_deg=got, orientation_error_deg=err)
        res["pass"] = bool(res["pass"] and abs(err) <= check["orientation_tolerance_deg"])
    return res, spec.power


def _measured_orientation(img: np.ndarray, ppd: float, band_cpd: list[float]) -> float:
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


def _axial_difference(a: float, b: float) -> float:
    """``a - b`` for orientations (period 180 deg), in [-90, 90)."""
    return (a - b + 90.0) % 180.0 - 90.0


def _alpha_tolerance(check: Mapping[str, Any], n_images: int, shape: tuple[int, int]) -> float:
    """Allowed |measured - design| of the 1/f exponent: ``check.alpha_tolerance`` or a default.

    The default scales with the number of Fourier samples like the band tolerances: the
    fitted exponent of one 64 x 96 px image scatters by about 0.1 (SD), so the tolerance is
    ``0.4 * sqrt(64 * 96 / (n H W))``, never below 0.1.
    """
    if check["alpha_tolerance"] is not None:
        return float(check["alpha_tolerance"])
    return max(0.1, 0.4 * math.sqrt(64 * 96 / (max(n_images, 1) * shape[0] * shape[1])))


def _measure_motion(plan: _Plan, movie: np.ndarray, record: dict[str, Any]) -> dict[str, Any] | None:
    """verify_motion of a movie with the experiment's tolerances (None: nothing to measure).

    Dynamic noise with ``refresh_frames = 1`` shows a new sample every frame: no two frames
    show the same noise, so there is no motion to measure.
    """
    from ..motion import verify_motion

    if record.get("refresh_frames") == 1:
        return None
    check = plan.exp["check"]
    res = verify_motion(
        movie, record, tolerance=check["speed_tolerance"],
        atol_px_per_frame=check["speed_atol_px_per_frame"],
        min_reliable_fraction=check["min_reliable_fraction"],
    )  # fmt: skip
    res.pop("requested", None)  # in the entry already
    res.pop("velocity_convention", None)  # in the manifest once
    return res


def _condition_spectrum(plan: _Plan, powers: list[np.ndarray]):
    """Mean and spread over a condition's repeats of the per-stimulus radial spectra."""
    per = np.asarray(powers)
    std = per.std(axis=0, ddof=1) if len(per) > 1 else np.zeros(per.shape[1])
    return _pooled_spectrum(plan, per.mean(axis=0), std, len(per))


def _pooled_spectrum(plan: _Plan, power_mean: np.ndarray, power_std: np.ndarray, n: int):
    """A condition's RadialSpectrum from the mean and spread of its stimuli's radial powers."""
    from ..spectrum import RadialSpectrum

    ref = plan.bins()
    return RadialSpectrum(
        freq_cpp=ref.freq_cpp,
        power=power_mean,
        power_std=power_std,
        counts=ref.counts,
        n_images=n,
        shape_px=ref.shape_px,
        ppd=plan.ppd,
    )
