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

SLOPE_FAMILIES = ("power_law", "white")  # checked by their 1/f exponent, not by a band
ONE_SIDED_FAMILIES = ("lowpass", "highpass")  # checked by their one cutoff


def design_alpha(params: Mapping[str, Any]) -> float:
    """The 1/f exponent a power-law or white condition is designed to have."""
    return 0.0 if params["family"] == "white" else params["alpha"]


def spectral_check(img: np.ndarray, ppd: float, params: Mapping[str, Any], filt: Any,
                   check: Mapping[str, Any], *, false_alarm_rate: float | None = None,
                   rms_known: bool = True) -> tuple[dict[str, Any], np.ndarray]:  # fmt: skip
    """One image's spectrum facts for the manifest, and its radial power (for figures).

    Band-pass families: the periodogram is tested against the design
    (:func:`stimgen.spectrum.compare_to_design`, at ``false_alarm_rate`` per image), and
    the measured peak and band at the condition's level are reported with their errors.
    An explicit ``check.edge_tolerance``/``peak_tolerance`` is a requirement too: edges
    outside it fail. An edge that cannot be measured at this image size makes the
    status ``not_measurable`` (``pass`` None), never a failure. Oriented noise also reports
    its dominant orientation. ``power_law``/``white``: the fitted exponent.
    ``lowpass``/``highpass``: the measured ``cutoff_cpd`` (the design's shape fitted to the
    spectrum in frequency scale) and its error; no peak. ``notch``: the stop-band edges
    measured by :func:`stimgen.energy.measure_critical_band` and the notch's depth (mean
    attenuation over its central third of an octave, dB, beside the design's); the
    periodogram test decides as for every family (:func:`notch_verdict`).
    ``rms_known``: the image's RMS contrast is the condition's ``rms_contrast`` (still
    images), so a wrong contrast fails too; otherwise only the spectrum's shape is tested.
    """
    from ..spectrum import (
        compare_to_design,
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
    rms = p["rms_contrast"] if rms_known else None
    if p["family"] == "notch":
        from ..energy import measure_critical_band

        tol = _tolerance(check, 1, shape)
        crit = measure_critical_band(img, filt, ppd=ppd, level=p["level"], tolerance=tol["edge"])
        notch = {"band_cpd": crit["measured_band_cpd"], "depth_db": crit["depth_db"], "rel_error": crit["rel_error"]}
        out = notch_verdict(spec, notch, filt, ppd, p, check, tol, rms_contrast=rms, false_alarm_rate=false_alarm_rate)
        res.update(peak_cpd=None, band_cpd=notch["band_cpd"], rel_error=notch["rel_error"],
                   notch_depth_db=notch["depth_db"], design_notch_depth_db=out.pop("design_depth_db"))  # fmt: skip
        res.update(out)
        return res, spec.power
    m = measure_band(spec, ppd=ppd)
    cmp = compare_to_design(m, filt, ppd=ppd, level=p["level"], tolerance=_tolerance(check, 1, shape),
                            rms_contrast=rms, kind=p["kind"], **_far(false_alarm_rate))  # fmt: skip
    if p["family"] in ONE_SIDED_FAMILIES:  # no peak: the one cutoff, located by the design's shape
        band = cmp["measured"]["band_cpd"]
        res.update(peak_cpd=None, band_cpd=band, cutoff_cpd=one_sided_cutoff(p["family"], band),
                   rel_error=cmp["rel_error"])  # fmt: skip
    else:
        res.update(peak_cpd=m.peak_cpd, band_cpd=list(m.band_cpd(p["level"])), rel_error=cmp["rel_error"])
    res.update(_verdict(cmp, check))
    if p["orientation_deg"] is not None:
        got = measured_orientation(img, ppd, cmp["design"]["band_cpd"])
        err = axial_difference(got, p["orientation_deg"])
        res.update(orientation_deg=got, orientation_error_deg=err)
        if abs(err) > check["orientation_tolerance_deg"]:
            res.update({"pass": False, "spectral_status": "fail",
                        "spectral_reason": f"orientation off by {err:.3g} deg"})
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


def condition_spectrum(bins: Any, power_mean: np.ndarray, power_std: np.ndarray, n_images: int, ppd: float):
    """A condition's :class:`~stimgen.spectrum.RadialSpectrum` from the mean and spread
    (ddof 1) over its repeats of the per-stimulus radial powers.

    ``bins`` is a :class:`~stimgen.spectrum.RadialSpectrum` of the image shape (its bins).
    """
    from ..spectrum import RadialSpectrum

    return RadialSpectrum(
        freq_cpp=bins.freq_cpp,
        power=power_mean,
        power_std=power_std,
        counts=bins.counts,
        n_images=n_images,
        shape_px=bins.shape_px,
        ppd=ppd,
    )


def condition_spectral_check(spec: Any, params: Mapping[str, Any], filt: Any, ppd: float,
                             check: Mapping[str, Any]) -> dict[str, Any]:  # fmt: skip
    """The spectral check of a condition's mean spectrum (tolerances for its number of images)."""
    from ..spectrum import compare_to_design, measure_band, measure_slope

    p = params
    n = spec.n_images
    out: dict[str, Any] = {}
    if p["family"] in SLOPE_FAMILIES:
        alpha = measure_slope(spec, ppd=ppd, band_cpd=p["band_cpd"])
        want = design_alpha(p)
        out["measured"] = {"alpha": alpha, "design_alpha": want}
        out["pass"] = bool(abs(alpha - want) <= alpha_tolerance(check, n, spec.shape_px))
        return out
    tol = _tolerance(check, n, spec.shape_px)
    if p["family"] == "notch":
        got = notch_of_spectrum(spec, filt, ppd, p["level"])
        res = notch_verdict(spec, got, filt, ppd, p, check, tol)
        out["measured"] = {"peak_cpd": None, "band_cpd": got["band_cpd"], "notch_depth_db": got["depth_db"],
                           "design_notch_depth_db": res.pop("design_depth_db")}  # fmt: skip
        out["rel_error"] = got["rel_error"]
        out.update(res)
        return out
    m = measure_band(spec, ppd=ppd)
    cmp = compare_to_design(m, filt, ppd=ppd, level=p["level"], tolerance=tol, kind=p["kind"])
    out["measured"] = cmp["measured"]
    if p["family"] in ONE_SIDED_FAMILIES:
        out["measured"] = dict(cmp["measured"], peak_cpd=None,
                               cutoff_cpd=one_sided_cutoff(p["family"], cmp["measured"]["band_cpd"]))  # fmt: skip
    out["rel_error"] = cmp["rel_error"]
    out.update(_verdict(cmp, check))
    return out


def one_sided_cutoff(family: str, band_cpd: list[float]) -> float:
    """The cutoff of a low-pass (its high edge) or high-pass (its low edge) band, cpd."""
    return band_cpd[1] if family == "lowpass" else band_cpd[0]


#: A notch's depth is its mean attenuation over the central third of an octave around its centre.
_NOTCH_DEPTH_HALF_WIDTH_OCT = 1.0 / 6.0


def design_notch_depth_db(filt: Any) -> float:
    """A notch design's mean attenuation (dB) over the central third of an octave.

    ``-10 log10`` of the area-weighted mean of ``|H|^2`` over the annulus
    ``centre * 2**(+-1/6)`` (the annulus' DFT samples are spread in proportion to radius),
    as :func:`stimgen.energy.measure_critical_band` measures it.
    """
    from ..filters import radial_part

    radial: Any = radial_part(filt)
    c = radial.center_cpp
    f = np.linspace(c * 2 ** -_NOTCH_DEPTH_HALF_WIDTH_OCT, c * 2**_NOTCH_DEPTH_HALF_WIDTH_OCT, 2001)
    h2 = np.asarray(radial.transfer(f), dtype=np.float64) ** 2
    return -10.0 * math.log10(float(np.trapezoid(h2 * f, f) / np.trapezoid(f, f)))


def notch_of_spectrum(spec: Any, filt: Any, ppd: float, level: str) -> dict[str, Any]:
    """A notch's stop-band edges (cpd) and depth (dB) measured from a (pooled) radial spectrum.

    The same measure as :func:`stimgen.energy.measure_critical_band`, for a spectrum whose
    images are gone (a condition's mean): the reference power off the notch is the design
    ``|H|^2`` fitted to the spectrum in scale (count-weighted over every bin); the edges are
    where the spectrum crosses ``L^2`` times it nearest to the designed edges, and the depth
    is the reference over the count-weighted mean power of the central third of an octave.
    An edge the spectrum does not cross near the design is NaN (then not measurable).
    """
    from ..energy import _nearest_crossing
    from ..filters import LEVELS, radial_part

    radial: Any = radial_part(filt)
    pb = radial.passband(level)
    f = spec.freq_cpp * ppd
    power = np.asarray(spec.power, dtype=np.float64)
    w = np.asarray(spec.counts, dtype=np.float64)
    h2 = np.asarray(radial.transfer(spec.freq_cpp), dtype=np.float64) ** 2
    ref = float(np.sum(w * power) / np.sum(w * h2)) * pb.peak_value**2
    design = [pb.low_cpp * ppd, pb.high_cpp * ppd]
    got = []
    for edge in design:
        m = _nearest_crossing(f, power, LEVELS[level] ** 2 * ref, edge)
        got.append(math.nan if m is None else m)
    centre = pb.center_cpp * ppd
    sel = (f >= centre * 2**-_NOTCH_DEPTH_HALF_WIDTH_OCT) & (f <= centre * 2**_NOTCH_DEPTH_HALF_WIDTH_OCT)
    depth = 10.0 * math.log10(ref / float(np.sum(power[sel] * w[sel]) / np.sum(w[sel]))) if np.any(sel) else math.nan
    rel = {k: (g - d) / d for k, g, d in zip(("low", "high"), got, design, strict=True)}
    return {"band_cpd": got, "depth_db": depth, "rel_error": rel}


def notch_verdict(spec: Any, got: Mapping[str, Any], filt: Any, ppd: float, params: Mapping[str, Any],
                  check: Mapping[str, Any], tol: Mapping[str, float], *, rms_contrast: float | None = None,
                  false_alarm_rate: float | None = None) -> dict[str, Any]:  # fmt: skip
    """Pass, fail or not measurable for notched noise, as :func:`_verdict` for the other families.

    The periodogram test (:func:`stimgen.spectrum.periodogram_test`) decides; an edge the
    DFT grid cannot show (:func:`stimgen.spectrum.measurability`) or the measured spectrum
    does not cross near the design makes the status ``not_measurable``; explicit
    tolerances of the experiment must hold too. ``got``: measured ``band_cpd`` and
    ``rel_error`` (:func:`notch_of_spectrum` or :func:`stimgen.energy.measure_critical_band`).
    """
    from ..filters import radial_part
    from ..spectrum import measurability, periodogram_test

    level = params["level"]
    unmeasurable = {k: why for k in ("low", "high")
                    if (why := measurability(radial_part(filt), spec.shape_px, ppd, level=level)[k])}  # fmt: skip
    for k, m in zip(("low", "high"), got["band_cpd"], strict=True):
        if not math.isfinite(m):
            unmeasurable.setdefault(k, f"the measured spectrum does not cross the notch's {level.replace('_', ' ')} "
                                       "level near the designed edge")  # fmt: skip
    errors = [e for k, e in got["rel_error"].items() if k not in unmeasurable]
    within = all(math.isfinite(e) and abs(e) <= tol["edge"] for e in errors)
    test = periodogram_test(spec, filt, rms_contrast=rms_contrast, kind=params["kind"], **_far(false_alarm_rate))
    note = "; ".join(f"{k} edge: {why}" for k, why in unmeasurable.items())
    if test["pass"] is False:
        status, reason = "fail", test["reason"]
    elif unmeasurable:
        status, reason = "not_measurable", note
    elif test["pass"] is True:
        status, reason = "pass", test["reason"]
    else:
        status = "pass" if within else "fail"
        reason = f"stop-band edges {'within' if within else 'outside'} the tolerance (edge {tol['edge']:g})"
    cmp = {"status": status, "reason": reason, "edges_within_tolerance": within, "tolerance": dict(tol), "test": test}
    return {**_verdict(cmp, check), "design_depth_db": design_notch_depth_db(filt)}


def _tolerance(check: Mapping[str, Any], n_images: int, shape: tuple[int, ...]) -> dict[str, float]:
    """Edge and peak tolerances: the experiment's ``check`` where given, else the defaults."""
    from ..spectrum import default_tolerance

    tol = default_tolerance(n_images, tuple(shape[-2:]))  # type: ignore[arg-type]
    for key in ("edge", "peak"):
        if check[f"{key}_tolerance"] is not None:
            tol[key] = check[f"{key}_tolerance"]
    return tol


def _far(rate: float | None) -> dict[str, float]:
    return {} if rate is None else {"false_alarm_rate": rate}


def _verdict(cmp: Mapping[str, Any], check: Mapping[str, Any]) -> dict[str, Any]:
    """``pass`` (True, False, or None when not measurable) and the spectral status, reason and
    p-value of the periodogram test.

    The periodogram test decides; tolerances the experiment states explicitly must hold too.
    """
    status, reason = cmp["status"], cmp.get("reason")
    explicit = check["edge_tolerance"] is not None or check["peak_tolerance"] is not None
    if status != "fail" and explicit and cmp.get("edges_within_tolerance") is False:
        status = "fail"
        reason = f"measured edges or peak outside the experiment's tolerance {cmp['tolerance']}"
    test = cmp.get("test") or {}
    return {
        "pass": {"pass": True, "fail": False}.get(status),
        "spectral_status": status,
        "spectral_reason": reason,
        "spectral_p_value": test.get("p_value"),
    }


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


def speed_summary(requested: Mapping[str, Any], velocities_deg_s: np.ndarray, passed: list[bool]) -> dict[str, Any]:
    """Requested vs measured velocity of a condition's movies (median over its repeats).

    ``requested`` holds the condition's ``speed_deg_s``, ``direction_deg`` and
    ``velocity_deg_s``; ``velocities_deg_s`` (K, 2) and ``passed`` the measured velocity
    and the pass flag of each of its K movies whose speed was checked.
    """
    from ..motion import _velocity_direction_deg

    vel = np.asarray(velocities_deg_s, dtype=np.float64).reshape(-1, 2)
    out: dict[str, Any] = {
        "requested_speed_deg_s": requested["speed_deg_s"],
        "requested_direction_deg": requested["direction_deg"] if requested["speed_deg_s"] > 0 else None,
        "requested_velocity_deg_s": requested["velocity_deg_s"],
        "measured_speed_deg_s": None,
        "measured_speed_range_deg_s": None,
        "measured_direction_deg": None,
        "direction_error_deg": None,
        "measured_velocity_deg_s": None,
        "n_checked": len(vel),
        "n_pass": sum(bool(k) for k in passed),
        "pass": None,
    }
    if not len(vel):
        return out
    speeds = np.hypot(vel[:, 0], vel[:, 1])
    vx, vy = (float(x) for x in np.median(vel, axis=0))
    out["measured_velocity_deg_s"] = [vx + 0.0, vy + 0.0]
    out["measured_speed_deg_s"] = float(np.median(speeds))
    out["measured_speed_range_deg_s"] = [float(speeds.min()), float(speeds.max())]
    d = out["measured_direction_deg"] = _velocity_direction_deg(vx, vy)  # in [0, 360); None for no motion
    if d is not None:
        if out["requested_direction_deg"] is not None:
            out["direction_error_deg"] = (d - out["requested_direction_deg"] + 180.0) % 360.0 - 180.0
    out["pass"] = out["n_pass"] == len(vel)
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


# -- temporal spectra of movies ------------------------------------------------------------
#: amplitude relative to the peak at each band level
_LEVEL_AMPLITUDE = {"half_amplitude": 0.5, "half_power": math.sqrt(0.5)}


def temporal_power(movie: np.ndarray) -> np.ndarray:
    """Pooled temporal power spectrum of a movie ``(T, H, W)``: mean over pixels of ``|rfft_t|^2``.

    Frequencies are ``numpy.fft.rfftfreq(T, 1 / frame_rate_hz)`` (Hz). The movie is treated
    as one period of a circular signal (as the spatiotemporal generator makes it), so no
    window is applied: its power at the ``T // 2 + 1`` frequencies is exact, not leaked.
    """
    t = movie.shape[0]
    power = np.zeros(t // 2 + 1)
    flat = movie.reshape(t, -1)
    step = max(1, (1 << 22) // max(t, 1))  # about 32 MB of complex spectra at a time
    for s in range(0, flat.shape[1], step):
        spec = np.fft.rfft(flat[:, s : s + step].astype(np.float64), axis=0)
        power += np.sum(spec.real**2 + spec.imag**2, axis=1)
    return power / flat.shape[1]


def measure_temporal_band(power: np.ndarray, frame_rate_hz: float, n_frames: int, level: str) -> dict[str, Any]:
    """Peak and band edges (Hz) of a pooled temporal power spectrum at ``level``.

    The spectrum is known at ``k * frame_rate_hz / n_frames`` only. Between those
    frequencies log power is interpolated along log frequency by a monotone cubic (PCHIP;
    linearly in power between 0 Hz and the first frequency); the peak is the interpolant's
    maximum and the edges are where it falls to ``level`` (amplitude 1/2 or 1/sqrt 2 of the
    peak), walking outwards. Noise-free, the interpolation errs by less than about
    ``0.1 * df / edge`` (``df = frame_rate_hz / n_frames``): an edge close to 0 Hz on a
    coarse grid is less certain, which the tolerance (:func:`temporal_tolerance`) states.

    Returns
    -------
    dict
        ``peak_hz``, ``band_hz`` ([low, high]; low 0 for a low-pass, high inf when the
        power does not fall to the level below Nyquist) and ``frequency_resolution_hz``.
    """
    from scipy.interpolate import PchipInterpolator
    from scipy.optimize import brentq

    freq = np.fft.rfftfreq(n_frames, 1.0 / frame_rate_hz)
    p = np.maximum(np.asarray(power, dtype=np.float64), 0.0)
    if len(freq) != len(p) or len(p) < 3 or not np.any(p > 0):
        raise ValueError(f"a temporal spectrum of {n_frames} frames needs {n_frames // 2 + 1} positive values")
    floor = float(p.max()) * 1e-12
    curve = PchipInterpolator(np.log(freq[1:]), np.log(np.maximum(p[1:], floor)))

    def at(f: float) -> float:
        if f >= freq[1]:
            return float(np.exp(curve(math.log(f))))
        return float(np.interp(f, freq[:2], p[:2]))

    fine = np.concatenate([np.linspace(0.0, freq[1], 65)[:-1], np.exp(np.linspace(math.log(freq[1]), math.log(freq[-1]), 256 * len(freq)))])
    y = np.where(fine >= freq[1], np.exp(curve(np.log(np.maximum(fine, freq[1])))), np.interp(fine, freq[:2], p[:2]))
    i = int(np.argmax(y))
    target = float(y[i]) * _LEVEL_AMPLITUDE[level] ** 2

    def edge(step: int) -> float | None:
        j = i
        while 0 <= j + step < len(fine):
            if y[j + step] <= target:
                a, b = sorted((float(fine[j]), float(fine[j + step])))
                return float(brentq(lambda f: at(f) - target, a, b, xtol=1e-12 * max(b, 1.0)))
            j += step
        return None

    lo, hi = edge(-1), edge(+1)
    return {
        "peak_hz": float(fine[i]),
        "band_hz": [0.0 if lo is None else lo, math.inf if hi is None else hi],
        "frequency_resolution_hz": frame_rate_hz / n_frames,
    }


def temporal_tolerance(check: Mapping[str, Any], n_movies: int, shape: tuple[int, ...], frame_rate_hz: float,
                       n_frames: int, design_band_hz: list[float]) -> list[float]:  # fmt: skip
    """Allowed relative error of the measured [low, high] temporal edges.

    ``check.temporal_edge_tolerance`` when given; otherwise a data term, 3 % for 16 movies
    of 64 x 64 px scaled by ``sqrt(16 * 64 * 64 / (n H W))`` (at least 3 %), plus a grid term
    ``0.1 * df / edge`` for the interpolation between frequencies ``df`` apart. An edge at 0
    Hz (a low-pass) is compared absolutely, as a fraction of the high edge.
    """
    if check.get("temporal_edge_tolerance") is not None:
        t = float(check["temporal_edge_tolerance"])
        return [t, t]
    data = max(0.03, 0.03 * math.sqrt(16 * 64 * 64 / (max(n_movies, 1) * shape[-2] * shape[-1])))
    df = frame_rate_hz / n_frames
    hi = design_band_hz[1]
    return [data + 0.1 * df / (e if e > 0 else hi) for e in design_band_hz]


def temporal_check(power: np.ndarray, n_movies: int, shape: tuple[int, ...], record: Mapping[str, Any],
                   check: Mapping[str, Any]) -> dict[str, Any]:  # fmt: skip
    """The measured temporal band of pooled movies against the record's design (Hz)."""
    fps, n = float(record["frame_rate_hz"]), int(record["n_frames"])
    design = record["temporal_design"]
    d_lo, d_hi = (float(x) for x in design["band_hz"])
    got = measure_temporal_band(power, fps, n, design["level"])
    m_lo, m_hi = got["band_hz"]
    tol = temporal_tolerance(check, n_movies, shape, fps, n, [d_lo, d_hi])
    err_lo = (m_lo - d_lo) / d_lo if d_lo > 0 else m_lo / d_hi
    err_hi = (m_hi - d_hi) / d_hi if math.isfinite(m_hi) else math.inf
    return {
        "level": design["level"],
        "design": {"peak_hz": design["peak_hz"], "band_hz": [d_lo, d_hi]},
        "measured": {"peak_hz": got["peak_hz"], "band_hz": [m_lo, m_hi]},
        "rel_error": {"low": err_lo, "high": err_hi},
        "tolerance": {"low": tol[0], "high": tol[1]},
        "frequency_resolution_hz": got["frequency_resolution_hz"],
        "n_movies": n_movies,
        "pass": bool(abs(err_lo) <= tol[0] and abs(err_hi) <= tol[1]),
    }
