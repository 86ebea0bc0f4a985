"""Motion stimuli: noise drifting at a velocity in deg/s, dynamic and spatiotemporal noise.

Contents
--------
drifting_noise        any noise of :mod:`stimgen.noise` translated by an exact sub-pixel
                      displacement per frame (Fourier shift theorem); optionally refreshed
                      with a fresh sample every ``refresh_frames`` frames (dynamic noise)
spatiotemporal_noise  noise band-limited in space (cycles/degree) and time (Hz) by a 3-D
                      FFT filter
movie_from_record     regenerate a movie bit for bit from its record
verify_motion         measure a movie's velocity with dense Lucas-Kanade flow and compare it
                      with the record's requested velocity
select_pairs          the deterministic, evenly spread frame pairs that verify_motion measures
write_preview_gif     8-bit animated GIF preview of a movie
temporal_aliasing_speed_deg_s   the speed at which a band starts to alias in time

Conventions
-----------
* **Movies** are ``(T, H, W)`` float arrays (float32 by default) in signed contrast
  (0 = mean luminance, display range [-1, 1]); frame ``t`` is shown at ``t / frame_rate_hz``
  seconds. Nothing is clipped here; records give the fraction of values outside [-1, 1].
* **Velocity.** ``speed_deg_s`` in degrees of visual angle per second, ``direction_deg`` in
  degrees counter-clockwise from rightwards *as seen on the screen*: 0 = rightwards,
  90 = upwards (towards row 0), 180 = leftwards, 270 = downwards. Records also give the
  velocity as ``(vx, vy)`` in deg/s and px/frame with **x rightwards (columns) and y
  downwards (rows)** -- the image-array axes used by :mod:`stimgen.flow` -- so upward motion
  has ``vy < 0``: ``vx = s cos(direction)``, ``vy = -s sin(direction)``;
  ``px/frame = deg/s * ppd / frame_rate_hz``.
* **Exact sub-pixel shifts.** The noise field is periodic (circular filtering), so it is a
  trigonometric polynomial that can be evaluated at any position. Frame ``t`` is frame 0
  translated by ``t * (dx, dy)`` px: its ``rfft2`` spectrum is the field's spectrum times
  the phase ramp ``exp(-2 pi i (fx dx + fy dy) t)`` (f in cycles/pixel), one ``irfft2`` per
  frame, no interpolation and no rounding. The Nyquist row/column of even-sized images is
  zeroed first: a sub-pixel shift of a component at exactly 0.5 cycles/pixel is not
  representable by real pixels (its sine phase is invisible on the sample grid).
* **RMS contrast** is set once, on the field: a translation preserves every Fourier
  amplitude, so every frame has the same RMS contrast (exactly, up to float32 rounding of
  the output). Dynamic noise sets it per sample; spatiotemporal noise over the whole movie.
* **Temporal aliasing.** A component of spatial frequency ``f`` (cycles/pixel) moving by
  ``d`` px/frame advances its phase by ``f d`` cycles per frame; at ``f d >= 0.5`` its
  apparent motion is ambiguous or reversed (the wagon-wheel effect). :func:`drifting_noise`
  refuses speeds where the band's high edge (at the design ``level``; Nyquist for white and
  unbounded 1/f noise) reaches half a cycle per frame, i.e.
  ``speed_deg_s >= 0.5 * frame_rate_hz / high_edge_cpd``, and records the fraction of
  power that aliases (in the tails of the band) otherwise.
* **Randomness** as in :mod:`stimgen.noise`: ``rng`` is None, an int, a SeedSequence or a
  Generator; ints and SeedSequences are recorded so :func:`movie_from_record` can
  regenerate the movie.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import _validate as v
from .filters import (
    Butterworth,
    Filter,
    Gaussian,
    Ideal,
    Orientation,
    Passband,
    check_fits_image,
    design_filter,
    frequency_grid_cpp,
)
from .geometry import LinearSizeWarning, ViewingGeometry, angular_size_deg, as_ppd, resolve_shape
from .noise import (
    KINDS,
    VALUE_CONVENTION,
    _draw_white,
    _float_dtype,
    _seed_record,
    bandpass_noise,
    make_filter,
)

__all__ = [
    "drifting_noise",
    "movie_from_record",
    "spatiotemporal_noise",
    "select_pairs",
    "temporal_aliasing_speed_deg_s",
    "verify_motion",
    "write_preview_gif",
]

VELOCITY_CONVENTION = (
    "direction_deg counter-clockwise from rightwards, 90 = upwards on the screen; "
    "velocity (vx, vy): x rightwards (columns), y downwards (rows)"
)
#: warn when more than this fraction of the power moves by half a cycle per frame or more
ALIASED_POWER_WARNING = 0.01
_CHUNK_BYTES = 16 * 2**20
_TEMPORAL_FAMILIES = ("butterworth", "log_gaussian", "ideal", "dog", "gaussian")


# =========================================================================================
# Helpers
# =========================================================================================
#: Reported directions within this many degrees below 360 are reported as 0 (so rightward
#: motion never shows as 359.99999 deg, nor a tiny negative angle as 360.0).
DIRECTION_SNAP_DEG = 1e-6


def _wrap_direction_deg(angle_deg: float) -> float:
    """``angle_deg`` as reported, in [0, 360): values within 1e-6 deg of 360 become 0."""
    a = float(angle_deg) % 360.0  # -1e-20 % 360.0 is 360.0 in floating point
    return 0.0 if a >= 360.0 - DIRECTION_SNAP_DEG else a + 0.0  # + 0.0: no -0.0


def _velocity_direction_deg(vx: float, vy: float) -> float | None:
    """Direction of the velocity ``(vx, vy)`` (y downwards), counter-clockwise from
    rightwards in [0, 360); None for a zero or non-finite velocity."""
    if not (math.isfinite(vx) and math.isfinite(vy)) or (vx == 0 and vy == 0):
        return None
    return _wrap_direction_deg(math.degrees(math.atan2(-vy, vx)))


def _cos_sin_deg(angle_deg: float) -> tuple[float, float]:
    """cos and sin of an angle in degrees, exact at multiples of 90 degrees."""
    a = angle_deg % 360.0
    exact = {0.0: (1.0, 0.0), 90.0: (0.0, 1.0), 180.0: (-1.0, 0.0), 270.0: (0.0, -1.0)}
    if a in exact:
        return exact[a]
    r = math.radians(a)
    return math.cos(r), math.sin(r)


def _frame_count(frame_rate_hz: Any, duration_s: Any, n_frames: Any) -> tuple[float, int]:
    fps = v.positive("frame_rate_hz", frame_rate_hz)
    if (duration_s is None) == (n_frames is None):
        raise ValueError("give exactly one of duration_s and n_frames")
    if n_frames is not None:
        return fps, v.positive_int("n_frames", n_frames)
    dur = v.positive("duration_s", duration_s)
    n = round(dur * fps)
    if n < 1:
        raise ValueError(
            f"duration_s={duration_s!r} is shorter than one frame at {fps:g} Hz "
            f"({1 / fps:.4g} s)"
        )
    return fps, n


def _highest_cpp(filt: Filter | None, level: str) -> float:
    """Upper band edge at ``level`` in cycles/pixel; Nyquist (0.5) when unbounded."""
    if filt is None or isinstance(filt, Orientation):
        return 0.5
    hi = filt.passband(level).high_cpp
    return min(hi, 0.5) if math.isfinite(hi) else 0.5


def temporal_aliasing_speed_deg_s(
    high_edge_cpd: float, *, frame_rate_hz: float
) -> float:
    """Speed at which a component of ``high_edge_cpd`` moves half a cycle per frame.

    Parameters
    ----------
    high_edge_cpd : float
        Highest spatial frequency of the stimulus in cycles/degree (> 0).
    frame_rate_hz : float
        Frame rate in Hz (> 0).

    Returns
    -------
    float
        ``0.5 * frame_rate_hz / high_edge_cpd`` in deg/s: the component's temporal
        frequency ``speed * f`` reaches the temporal Nyquist limit ``frame_rate_hz / 2``.
        Drifting noise must move slower than this.

    Examples
    --------
    >>> temporal_aliasing_speed_deg_s(4.0, frame_rate_hz=60)
    7.5
    """
    f = v.positive("high_edge_cpd", high_edge_cpd)
    return 0.5 * v.positive("frame_rate_hz", frame_rate_hz) / f


def _rfft_weights(shape: tuple[int, int]) -> np.ndarray:
    """How often each rfft2 column appears in the full spectrum (1 or 2)."""
    w = shape[1]
    wt = np.full((1, w // 2 + 1), 2.0)
    wt[0, 0] = 1.0
    if w % 2 == 0:
        wt[0, -1] = 1.0
    return wt


def _zero_nyquist(spec: np.ndarray, shape: tuple[int, int]) -> None:
    """Zero the Nyquist row/column of an rfft2 spectrum of an even-sized image, in place."""
    h, w = shape
    if h % 2 == 0:
        spec[..., h // 2, :] = 0
    if w % 2 == 0:
        spec[..., :, w // 2] = 0


def _phase_ramps(
    shape: tuple[int, int], shift_x: float, shift_y: float
) -> tuple[np.ndarray, np.ndarray]:
    """Separable factors of ``exp(-2 pi i (fx sx + fy sy))`` on the rfft2 grid (float64)."""
    fy, fx = frequency_grid_cpp(shape, True)
    rx = np.exp(-2j * np.pi * np.mod(fx * shift_x, 1.0))
    ry = np.exp(-2j * np.pi * np.mod(fy * shift_y, 1.0))
    return ry, rx


# =========================================================================================
# Drifting (and dynamic) noise
# =========================================================================================
def drifting_noise(
    size_px: Any = None,
    size_deg: Any = None,
    *,
    ppd: float | ViewingGeometry,
    speed_deg_s: float,
    direction_deg: float = 0.0,
    frame_rate_hz: float,
    duration_s: float | None = None,
    n_frames: int | None = None,
    refresh_frames: int | None = None,
    band_cpd: Any = None,
    peak_cpd: float | None = None,
    octaves: float | None = None,
    family: str = "dog",
    level: str = "half_amplitude",
    order: int = 4,
    orientation_deg: float | None = None,
    orientation_bandwidth_deg: float = 30.0,
    alpha: float = 1.0,
    rms_contrast: float = 0.2,
    mean: float = 0.0,
    kind: str = "gaussian",
    allow_aliasing: bool = False,
    rng: Any = None,
    dtype: Any = np.float32,
    workers: int | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Band-limited noise drifting at a velocity in deg/s, shifted exactly by sub-pixels.

    Parameters
    ----------
    size_px : int or (int, int), optional
        Frame height and width in pixels.
    size_deg : float or (float, float), optional
        Frame height and width in degrees (rounded to whole pixels); give one of the sizes.
    ppd : float or ViewingGeometry
        Pixels per degree.
    speed_deg_s : float
        Speed in degrees of visual angle per second (>= 0; 0 gives a static movie).
    direction_deg : float
        Direction of motion in degrees counter-clockwise from rightwards on the screen:
        0 rightwards, 90 upwards (towards row 0), 180 leftwards, 270 downwards. Any
        finite angle; it is used and recorded modulo 360, in [0, 360), with angles within
        1e-6 deg of 360 taken as 0.
    frame_rate_hz : float
        Frame rate of the display in Hz (> 0).
    duration_s : float, optional
        Duration in seconds, rounded to whole frames; or give ``n_frames``.
    n_frames : int, optional
        Number of frames (>= 1).
    refresh_frames : int, optional
        Dynamic noise: draw a fresh, independent sample every ``refresh_frames`` frames
        (1 = a new sample every frame). Frame ``t`` shows sample ``t // refresh_frames``
        translated by ``t * (dx, dy)``. None (default): one sample for the whole movie.
    band_cpd, peak_cpd, octaves, family, level, order, orientation_deg,
    orientation_bandwidth_deg, alpha, kind
        The noise, exactly as for :func:`stimgen.noise.bandpass_noise`: band edges in
        cycles/degree at ``level`` (or peak in cpd and bandwidth in octaves), filter family
        ("dog", "log_gaussian", "butterworth", "ideal", "power_law", "white"), optional
        orientation window, 1/f exponent, white-noise kind.
    rms_contrast : float
        RMS contrast of every frame, in (0, 1].
    mean : float
        Mean signed contrast, in (-1, 1).
    allow_aliasing : bool
        Skip the temporal-aliasing check (see Notes); the record still reports the
        aliased power fraction.
    rng : None, int, SeedSequence or Generator
        Seed; with None fresh entropy is drawn and recorded.
    dtype : {float32, float64}
        Output dtype. The field and the shifts are always computed in float64.
    workers : int, optional
        Threads for ``scipy.fft``.

    Returns
    -------
    movie : ndarray, shape (T, H, W)
        Signed-contrast frames.
    record : dict
        Every parameter that made the movie, the velocity in deg/s and px/frame (x
        rightwards, y downwards), the designed band, the temporal-aliasing margin and the
        seed; :func:`movie_from_record` regenerates the movie bit for bit. ``size_deg`` is
        the linear frame size ``shape_px / ppd``, ``size_deg_angular`` the exact angle
        centred on the line of sight (a :class:`~stimgen.geometry.LinearSizeWarning` is
        issued when a ``size_deg`` above about 14 deg makes them differ by more than 0.5 %).

    Raises
    ------
    ValueError
        On a non-positive frame rate, a negative or non-finite speed or direction, or a
        speed at which the band's high edge moves half a cycle per frame or more
        (temporal aliasing), and on every bad noise parameter.

    Notes
    -----
    The displacement per frame is ``d = speed_deg_s * ppd / frame_rate_hz`` px. Frame
    ``t`` is computed as ``irfft2(S * exp(-2 pi i (fx dx + fy dy) t))`` from the field's
    spectrum ``S``, so it equals frame 0 translated by ``t d`` exactly (circularly: content
    leaving on one side re-enters on the other). A component of ``f`` cycles/pixel then
    changes phase by ``f |d|`` cycles per frame, which is unambiguous only below half a
    cycle; the check uses the band's high edge at ``level``. The tails of the filter above
    the edge can still alias: their share of the expected power (``|H|^2`` on the DFT
    grid) is recorded as ``temporal_aliasing["aliased_power_fraction"]`` and a warning is
    issued above 1 %.

    Examples
    --------
    >>> movie, rec = drifting_noise(size_px=64, ppd=30, band_cpd=(1, 4), speed_deg_s=2.5,
    ...                             direction_deg=90, frame_rate_hz=60, n_frames=3, rng=1)
    >>> movie.shape, rec["velocity_px_per_frame"]
    ((3, 64, 64), [0.0, -1.25])
    """
    from scipy import fft

    p = as_ppd(ppd)
    fps, t_frames = _frame_count(frame_rate_hz, duration_s, n_frames)
    speed = v.positive("speed_deg_s", speed_deg_s, allow_zero=True)
    try:
        direction = float(direction_deg)
    except (TypeError, ValueError):
        raise ValueError(f"direction_deg must be a number, got {direction_deg!r}") from None
    if not math.isfinite(direction):
        raise ValueError(f"direction_deg must be finite, got {direction_deg!r}")
    direction = _wrap_direction_deg(direction)  # recorded in [0, 360), used as recorded
    refresh = None if refresh_frames is None else v.positive_int("refresh_frames", refresh_frames)
    out_dtype = _float_dtype(dtype)
    v.choice("kind", kind, KINDS)
    c = v.in_range("rms_contrast", rms_contrast, 0.0, 1.0, low_inclusive=False)
    m = v.in_range("mean", mean, -1.0, 1.0, low_inclusive=False, high_inclusive=False)

    cos_d, sin_d = _cos_sin_deg(direction)
    vx_deg, vy_deg = speed * cos_d, -speed * sin_d
    d_px = speed * p / fps
    dx, dy = d_px * cos_d, -d_px * sin_d

    # temporal aliasing: checked on the designed band before anything is generated
    filt = make_filter(
        family, ppd=p, band_cpd=band_cpd, peak_cpd=peak_cpd, octaves=octaves, level=level,
        order=order, orientation_deg=orientation_deg,
        orientation_bandwidth_deg=orientation_bandwidth_deg, alpha=alpha,
    )
    f_high = _highest_cpp(filt, level)
    phase_step = f_high * d_px
    limit_deg_s = 0.5 * fps / (f_high * p)
    if phase_step >= 0.5 and not allow_aliasing:
        raise ValueError(
            f"speed_deg_s={speed:g} aliases in time: at {p:g} ppd and {fps:g} Hz the noise "
            f"moves {d_px:.4g} px/frame, and its highest frequency ({f_high * p:.4g} cpd, "
            f"{f_high:.4g} cycles/px) then advances {phase_step:.3g} cycles per frame, "
            f"at least half a cycle, so its motion is ambiguous or reversed; keep the speed "
            f"below {limit_deg_s:.4g} deg/s (0.5 * frame_rate_hz / high_edge_cpd), or raise "
            f"the frame rate, or lower the band's high edge"
        )

    n_samples = 1 if refresh is None else -(-t_frames // refresh)
    shape, actual_deg = resolve_shape(size_px=size_px, size_deg=size_deg, ppd=p)
    angular_deg = angular_size_deg(shape, p, requested_deg=size_deg, what="drifting_noise")
    n_px = shape[0] * shape[1]
    weights = _rfft_weights(shape)

    # temporal aliasing in the tails: the expected power at components with |f . d| >= 0.5
    fy, fx = frequency_grid_cpp(shape, True)
    expected = (
        np.ones((shape[0], fx.shape[1]))
        if filt is None
        else np.square(filt.grid(shape, real=True, dtype=np.float64))
    ) * weights
    _zero_nyquist(expected, shape)
    expected[0, 0] = 0.0
    aliased = np.abs(fx * dx + fy * dy) >= 0.5
    total = float(expected.sum())
    aliased_fraction = float(expected[aliased].sum()) / total if speed > 0 and total > 0 else 0.0
    if aliased_fraction > ALIASED_POWER_WARNING:
        warnings.warn(
            f"{100 * aliased_fraction:.3g} % of the noise power lies above "
            f"{0.5 / d_px * p:.4g} cpd, where {d_px:.4g} px/frame is half a cycle per frame "
            f"or more: those components alias in time",
            stacklevel=2,
        )

    # samples are drawn in chunks from one generator (the same numbers as one big draw),
    # so long dynamic-noise movies need no float64 copy of every sample at once
    gen, seed = _seed_record(rng)
    per_chunk = max(1, _CHUNK_BYTES // (8 * n_px))
    movie = np.empty((t_frames, *shape), dtype=out_dtype)
    noise_record: dict[str, Any] = {}
    for first in range(0, n_samples, per_chunk):
        count = min(per_chunk, n_samples - first)
        with warnings.catch_warnings():  # warned above, once, for the movie
            warnings.simplefilter("ignore", LinearSizeWarning)
            fields, chunk_record = bandpass_noise(
                size_px=shape, ppd=p, band_cpd=band_cpd, peak_cpd=peak_cpd, octaves=octaves,
                family=family, level=level, order=order, orientation_deg=orientation_deg,
                orientation_bandwidth_deg=orientation_bandwidth_deg, alpha=alpha,
                rms_contrast=c, mean=0.0, kind=kind, n=count, rng=gen, dtype=np.float64,
                workers=workers, synthesis="spatial",  # movies keep their fields' method
            )
        if not noise_record:
            noise_record = chunk_record
        for j in range(count):
            sample = first + j
            # spectrum of the field, Nyquist and mean removed, RMS contrast set once
            spec = fft.rfft2(fields[j], workers=workers)
            _zero_nyquist(spec, shape)
            spec[0, 0] = 0.0
            sd = math.sqrt(float(np.sum(np.square(np.abs(spec)) * weights)) / n_px**2)
            if sd == 0:
                raise ValueError("the noise field is constant after removing its Nyquist components")
            spec *= c / sd
            frames = (
                range(t_frames)
                if refresh is None
                else range(sample * refresh, min((sample + 1) * refresh, t_frames))
            )
            for t in frames:
                if t == 0 or speed == 0:
                    spec_t = spec.copy()
                else:
                    ry, rx = _phase_ramps(shape, t * dx, t * dy)
                    spec_t = spec * ry
                    spec_t *= rx
                frame = fft.irfft2(spec_t, s=shape, workers=workers, overwrite_x=True)
                if m != 0.0:
                    frame += m
                movie[t] = frame
        del fields

    record: dict[str, Any] = {
        "stimulus": "drifting_noise",
        "ppd": p,
        "shape_px": list(shape),
        "size_deg": list(actual_deg) if actual_deg else None,
        "size_deg_angular": angular_deg,
        "n_frames": t_frames,
        "frame_rate_hz": fps,
        "duration_s": t_frames / fps,
        "speed_deg_s": speed,
        "direction_deg": direction,
        "velocity_deg_s": [vx_deg, vy_deg],
        "speed_px_per_frame": d_px,
        "velocity_px_per_frame": [dx, dy],
        "velocity_convention": VELOCITY_CONVENTION,
        "refresh_frames": refresh,
        "n_samples": n_samples,
        "family": family,
        "level": level,
        "band_cpd": noise_record["band_cpd"],
        "peak_cpd": peak_cpd,
        "octaves": octaves,
        "order": order,
        "orientation_deg": orientation_deg,
        "orientation_bandwidth_deg": orientation_bandwidth_deg,
        "alpha": alpha,
        "kind": kind,
        "filter": noise_record["filter"],
        "design": noise_record["design"],
        "rms_contrast": c,
        "mean": m,
        "dtype": out_dtype.name,
        "allow_aliasing": bool(allow_aliasing),
        "seed": seed,
        "temporal_aliasing": {
            "high_edge_cpd": f_high * p,
            "phase_step_cycles_per_frame": phase_step,
            "limit_speed_deg_s": limit_deg_s,
            "aliased_power_fraction": aliased_fraction,
        },
        "method": (
            "Fourier shift theorem on the periodic field (rfft2 phase ramp per frame); "
            "Nyquist row/column of even sizes zeroed; RMS contrast set once on the field"
        ),
        "fraction_outside_range": float(np.count_nonzero(np.abs(movie) > 1.0) / movie.size),
        "value_convention": VALUE_CONVENTION,
    }
    return movie, record


# =========================================================================================
# Spatiotemporal noise
# =========================================================================================
def _temporal_filter(
    temporal_band_hz: Any, fps: float, t_frames: int, family: str, level: str, order: int
) -> tuple[Filter, Passband]:
    """Design the temporal filter (frequencies in cycles/frame) from a band in Hz."""
    fam = v.choice("temporal_family", family, _TEMPORAL_FAMILIES)
    lo, hi = v.pair("temporal_band_hz", temporal_band_hz)
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo < 0 or hi <= lo:
        raise ValueError(
            f"temporal_band_hz must be [low, high] with 0 <= low < high, got {temporal_band_hz!r}"
        )
    if hi > fps / 2:
        raise ValueError(
            f"temporal_band_hz high edge {hi:g} Hz exceeds the temporal Nyquist limit "
            f"({fps / 2:g} Hz at {fps:g} Hz)"
        )
    duration = t_frames / fps
    if 0 < lo < 1 / duration:
        raise ValueError(
            f"temporal_band_hz low edge {lo:g} Hz is below one cycle per movie "
            f"({1 / duration:.4g} Hz for {t_frames} frames at {fps:g} Hz); make the movie longer"
        )
    # a band in Hz at `fps` frames/s is a band in cycles/frame, just as cpd at ppd is cpp
    filt: Filter
    if lo == 0:
        if fam == "butterworth":
            filt = Butterworth.lowpass(hi, ppd=fps, level=level, order=order)
        elif fam == "gaussian":
            filt = Gaussian.from_cutoff(hi, ppd=fps, level=level)
        elif fam == "ideal":
            filt = Ideal(0.0, hi / fps)
        else:
            raise ValueError(
                f"temporal_family {fam!r} needs a band with low > 0; use 'butterworth', "
                f"'gaussian' or 'ideal' for a temporal low-pass (low = 0)"
            )
    else:
        if fam == "gaussian":
            raise ValueError("temporal_family 'gaussian' is a low-pass: give temporal_band_hz=[0, high]")
        filt = design_filter(fam, ppd=fps, band_cpd=(lo, hi), level=level, order=order)
    return filt, filt.passband(level)


def spatiotemporal_noise(
    size_px: Any = None,
    size_deg: Any = None,
    *,
    ppd: float | ViewingGeometry,
    frame_rate_hz: float,
    temporal_band_hz: Any,
    duration_s: float | None = None,
    n_frames: int | None = None,
    temporal_family: str = "butterworth",
    band_cpd: Any = None,
    peak_cpd: float | None = None,
    octaves: float | None = None,
    family: str = "dog",
    level: str = "half_amplitude",
    order: int = 4,
    orientation_deg: float | None = None,
    orientation_bandwidth_deg: float = 30.0,
    alpha: float = 1.0,
    rms_contrast: float = 0.2,
    mean: float = 0.0,
    kind: str = "gaussian",
    rng: Any = None,
    dtype: Any = np.float32,
    workers: int | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Noise band-limited in space (cycles/degree) and in time (Hz) by a 3-D FFT filter.

    Parameters
    ----------
    size_px, size_deg : optional
        Frame size in pixels or degrees (give one), as for :func:`drifting_noise`.
    ppd : float or ViewingGeometry
        Pixels per degree.
    frame_rate_hz : float
        Frame rate in Hz (> 0).
    temporal_band_hz : (float, float)
        Temporal band edges ``[low, high]`` in Hz at ``level``; ``low = 0`` gives a temporal
        low-pass (families "butterworth", "gaussian", "ideal"). ``high <= frame_rate_hz /
        2`` and ``low >= 1 / duration`` (one cycle per movie).
    duration_s, n_frames : optional
        Movie length in seconds (rounded to frames) or frames; give one.
    temporal_family : {"butterworth", "log_gaussian", "ideal", "dog", "gaussian"}
        Family of the temporal filter (a function of ``|temporal frequency|``).
    band_cpd, peak_cpd, octaves, family, level, order, orientation_deg,
    orientation_bandwidth_deg, alpha, kind
        The spatial band and noise, as for :func:`stimgen.noise.bandpass_noise`.
    rms_contrast : float
        RMS contrast of the whole movie, in (0, 1] (single frames scatter around it).
    mean : float
        Mean signed contrast, in (-1, 1).
    rng : None, int, SeedSequence or Generator
        Seed; None draws fresh entropy and records it.
    dtype : {float32, float64}
        Output dtype (computed in float64).
    workers : int, optional
        Threads for ``scipy.fft``.

    Returns
    -------
    movie : ndarray, shape (T, H, W)
    record : dict
        Parameters, spatial design (cpd), temporal design (Hz), seed;
        :func:`movie_from_record` regenerates the movie. ``size_deg`` (linear) and
        ``size_deg_angular`` (exact) as in :func:`drifting_noise`.

    Notes
    -----
    White noise ``(T, H, W)`` is transformed with ``rfftn`` and multiplied by
    ``H_s(fx, fy) H_t(|ft|)``: the expected spatiotemporal power spectrum is
    ``|H_s|^2 |H_t|^2``. Filtering is circular in time too, so the movie loops seamlessly.
    The mean is removed and the RMS contrast set over the whole movie (setting it per
    frame would modulate the contrast in time and change the temporal spectrum).
    """
    from scipy import fft

    p = as_ppd(ppd)
    fps, t_frames = _frame_count(frame_rate_hz, duration_s, n_frames)
    if t_frames < 2:
        raise ValueError(f"spatiotemporal noise needs at least 2 frames, got {t_frames}")
    shape, actual_deg = resolve_shape(size_px=size_px, size_deg=size_deg, ppd=p)
    if min(shape) < 2:
        raise ValueError(f"frames must be at least 2 x 2 pixels, got {shape}")
    angular_deg = angular_size_deg(shape, p, requested_deg=size_deg, what="spatiotemporal_noise")
    v.choice("kind", kind, KINDS)
    out_dtype = _float_dtype(dtype)
    c = v.in_range("rms_contrast", rms_contrast, 0.0, 1.0, low_inclusive=False)
    m = v.in_range("mean", mean, -1.0, 1.0, low_inclusive=False, high_inclusive=False)
    filt = make_filter(
        family, ppd=p, band_cpd=band_cpd, peak_cpd=peak_cpd, octaves=octaves, level=level,
        order=order, orientation_deg=orientation_deg,
        orientation_bandwidth_deg=orientation_bandwidth_deg, alpha=alpha,
    )
    design = None
    if filt is not None and (filt.radial or family != "white"):
        passband = filt.passband(level)
        check_fits_image(passband, shape, p)
        design = passband.to_dict(p)
    t_filt, t_band = _temporal_filter(temporal_band_hz, fps, t_frames, temporal_family, level, order)

    gen, seed = _seed_record(rng)
    white = _draw_white(gen, (t_frames, *shape), kind, np.dtype(np.float64))
    spec = fft.rfftn(white, axes=(0, 1, 2), workers=workers)
    del white
    if filt is not None:
        spec *= filt.grid(shape, real=True, dtype=np.float64)[None]
    ft = np.abs(np.fft.fftfreq(t_frames))
    spec *= np.asarray(t_filt.transfer(ft), dtype=np.float64)[:, None, None]
    spec[0, 0, 0] = 0.0
    movie64 = fft.irfftn(spec, s=(t_frames, *shape), axes=(0, 1, 2), workers=workers)
    del spec
    movie64 -= movie64.mean()
    sd = float(np.sqrt(np.mean(np.square(movie64))))
    if sd == 0:
        raise ValueError("the filters pass nothing on this grid: the movie is constant")
    movie64 *= c / sd
    if m != 0.0:
        movie64 += m
    movie = movie64.astype(out_dtype, copy=False)
    frame_rms = movie64.reshape(t_frames, -1).std(axis=1)
    record: dict[str, Any] = {
        "stimulus": "spatiotemporal_noise",
        "ppd": p,
        "shape_px": list(shape),
        "size_deg": list(actual_deg) if actual_deg else None,
        "size_deg_angular": angular_deg,
        "n_frames": t_frames,
        "frame_rate_hz": fps,
        "duration_s": t_frames / fps,
        "temporal_band_hz": [float(x) for x in temporal_band_hz],
        "temporal_family": temporal_family,
        "temporal_filter": t_filt.to_record(),
        "temporal_filter_units": "cycles/frame (= Hz / frame_rate_hz)",
        "temporal_design": {
            "kind": t_band.kind,
            "level": level,
            "peak_hz": t_band.peak_cpp * fps,
            "band_hz": [t_band.low_cpp * fps, t_band.high_cpp * fps],
            "octaves": t_band.octaves,
            "nyquist_hz": fps / 2,
        },
        "family": family,
        "level": level,
        "band_cpd": None if band_cpd is None else [float(x) for x in band_cpd],
        "peak_cpd": peak_cpd,
        "octaves": octaves,
        "order": order,
        "orientation_deg": orientation_deg,
        "orientation_bandwidth_deg": orientation_bandwidth_deg,
        "alpha": alpha,
        "kind": kind,
        "filter": None if filt is None else filt.to_record(),
        "design": design,
        "rms_contrast": c,
        "frame_rms_contrast_range": [float(frame_rms.min()), float(frame_rms.max())],
        "mean": m,
        "dtype": out_dtype.name,
        "seed": seed,
        "method": "3-D rfftn filter H_s(fx, fy) H_t(|ft|) on white noise; circular in space and time",
        "fraction_outside_range": float(np.count_nonzero(np.abs(movie) > 1.0) / movie.size),
        "value_convention": VALUE_CONVENTION,
    }
    return movie, record


# =========================================================================================
# Records
# =========================================================================================
_DRIFT_ARGS = (
    "ppd", "speed_deg_s", "direction_deg", "frame_rate_hz", "n_frames", "refresh_frames",
    "band_cpd", "peak_cpd", "octaves", "family", "level", "order", "orientation_deg",
    "orientation_bandwidth_deg", "alpha", "rms_contrast", "mean", "kind", "allow_aliasing",
    "dtype",
)
_ST_ARGS = (
    "ppd", "frame_rate_hz", "temporal_band_hz", "n_frames", "temporal_family", "band_cpd",
    "peak_cpd", "octaves", "family", "level", "order", "orientation_deg",
    "orientation_bandwidth_deg", "alpha", "rms_contrast", "mean", "kind", "dtype",
)


def movie_from_record(record: dict[str, Any], *, workers: int | None = None) -> np.ndarray:
    """Regenerate a movie from the record of :func:`drifting_noise` or
    :func:`spatiotemporal_noise`, bit for bit.

    Parameters
    ----------
    record : dict
        The record (e.g. read back from a manifest); it must hold a ``seed``.
    workers : int, optional
        Threads for ``scipy.fft``.

    Returns
    -------
    ndarray, shape (T, H, W)

    Raises
    ------
    ValueError
        If the record is of an unknown stimulus, has no seed (made from a Generator) or
        lacks a field.
    """
    kind = record.get("stimulus")
    funcs: dict[str, tuple[Callable[..., tuple[np.ndarray, dict[str, Any]]], tuple[str, ...]]] = {
        "drifting_noise": (drifting_noise, _DRIFT_ARGS),
        "spatiotemporal_noise": (spatiotemporal_noise, _ST_ARGS),
    }
    if kind not in funcs:
        raise ValueError(f"record stimulus must be one of {list(funcs)}; got {kind!r}")
    seed = record.get("seed")
    if not seed:
        raise ValueError("record has no seed (made from a Generator): it cannot be regenerated")
    func, names = funcs[kind]
    missing = [k for k in (*names, "shape_px") if k not in record]
    if missing:
        raise ValueError(f"record lacks the fields {missing}")
    ss = np.random.SeedSequence(seed["entropy"], spawn_key=tuple(seed.get("spawn_key", ())))
    kwargs = {k: record[k] for k in names}
    with warnings.catch_warnings():
        # a warning (aliased tails) was already issued when the movie was first made
        warnings.simplefilter("ignore", UserWarning)
        movie, _ = func(size_px=record["shape_px"], rng=ss, workers=workers, **kwargs)
    return movie


# =========================================================================================
# Verification with optical flow
# =========================================================================================
#: frame pairs that verify_motion measures by default (see :func:`select_pairs`)
DEFAULT_MAX_PAIRS = 8
#: the subset rule, as stated in every verify_motion result
PAIR_SELECTION_RULE = (
    "evenly spaced over the available pairs (positions round(linspace(0, n - 1, max_pairs))), "
    "first and last included"
)


def select_pairs(pairs: Sequence[int], max_pairs: int | None = DEFAULT_MAX_PAIRS) -> list[int]:
    """The frame pairs that :func:`verify_motion` measures: a deterministic, evenly spread
    subset.

    Parameters
    ----------
    pairs : sequence of int
        The available pairs, as the index ``t`` of each pair ``(t, t + 1)``, in order.
    max_pairs : int or None
        Largest number of pairs to keep (>= 2, so that the first and the last are both
        kept); None keeps all.

    Returns
    -------
    list of int
        All of ``pairs`` if there are at most ``max_pairs``; else the pairs at positions
        ``round(linspace(0, n - 1, max_pairs))`` of the ``n`` available: exactly
        ``max_pairs`` of them, the first and the last included.

    Examples
    --------
    >>> select_pairs(range(29))
    [0, 4, 8, 12, 16, 20, 24, 28]
    >>> select_pairs([0, 1, 3, 4], max_pairs=None)
    [0, 1, 3, 4]
    """
    pairs = [int(p) for p in pairs]
    if max_pairs is None:
        return pairs
    k = v.positive_int("max_pairs", max_pairs, minimum=2)
    if k >= len(pairs):
        return pairs
    idx = np.round(np.linspace(0, len(pairs) - 1, k)).astype(int)
    return [pairs[i] for i in idx]


def verify_motion(
    movie: Any,
    record: dict[str, Any],
    *,
    tolerance: float = 0.05,
    atol_px_per_frame: float = 0.01,
    min_reliable_fraction: float = 0.5,
    max_pairs: int | None = DEFAULT_MAX_PAIRS,
    margin_px: int | None = None,
    flow_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Measure a movie's velocity with dense Lucas-Kanade flow and compare it with the record.

    Parameters
    ----------
    movie : ndarray, shape (T, H, W)
        The movie (T >= 2), e.g. from :func:`drifting_noise`.
    record : dict
        Its record: needs ``velocity_px_per_frame`` (x rightwards, y downwards), ``ppd``
        and ``frame_rate_hz``; ``refresh_frames`` (dynamic noise) excludes the pairs that
        straddle a refresh.
    tolerance : float
        Allowed velocity error relative to the requested speed (>= 0; default 5 %).
    atol_px_per_frame : float
        Allowed absolute velocity error in px/frame (>= 0), added to the relative part;
        it is what a static movie (speed 0) is judged by.
    min_reliable_fraction : float
        Smallest acceptable mean fraction of reliable flow pixels, in [0, 1].
    max_pairs : int or None
        Analyse at most this many consecutive frame pairs (>= 2; default 8), chosen by
        :func:`select_pairs`: evenly spaced over the pairs that show one noise sample,
        the first and the last always included. None: all of them.
    margin_px : int, optional
        Border excluded from the statistics (default of :func:`stimgen.flow.movie_flow`).
    flow_options : dict, optional
        Extra keyword arguments for :func:`stimgen.flow.lucas_kanade` (``sigma_window``,
        ``levels``, ...).

    Returns
    -------
    dict
        ``requested`` and ``measured`` speed (deg/s), direction (degrees in [0, 360), 0
        rightwards, 90 upwards; within 1e-6 deg of 360 reported as 0), velocity
        ``(vx, vy)`` in deg/s and px/frame (y downwards);
        ``velocity_error_px_per_frame`` (length of the difference vector),
        ``rel_error`` (that length over the requested speed; None when it is 0),
        ``speed_rel_error``, ``direction_error_deg``, ``reliable_fraction``, ``pairs`` (the
        index ``t`` of each measured pair ``(t, t + 1)``), ``pair_selection`` (the rule,
        ``max_pairs``, how many pairs were ``measured`` of how many were ``available``),
        the tolerances, and ``pass``: the error is at most
        ``tolerance * requested_speed + atol_px_per_frame`` (px/frame) and the reliable
        fraction at least ``min_reliable_fraction``.

    Notes
    -----
    Each analysed pair ``(t, t + 1)`` gives the median flow over its reliable pixels
    (:func:`stimgen.flow.movie_flow`); the movie's velocity is the median over pairs,
    converted with ``deg/s = px/frame * frame_rate_hz / ppd``. Lucas-Kanade needs texture
    in two orientations: narrowly oriented noise gives few reliable pixels (the aperture
    problem) and fails the reliable-fraction test rather than giving a wrong speed.
    """
    from .flow import movie_flow, to_deg_per_s

    m = v.finite_array("movie", movie, ndim=(3,))
    if not isinstance(record, dict) or "velocity_px_per_frame" not in record:
        raise ValueError(
            "record must be a drifting_noise record with velocity_px_per_frame; "
            "spatiotemporal noise has no single velocity to verify"
        )
    t_frames = m.shape[0]
    if t_frames < 2:
        raise ValueError(f"movie needs at least 2 frames to measure motion, got shape {m.shape}")
    if "shape_px" in record and list(m.shape[1:]) != list(record["shape_px"]):
        raise ValueError(
            f"movie frames have shape {list(m.shape[1:])} but the record says {record['shape_px']}"
        )
    tol = v.positive("tolerance", tolerance, allow_zero=True)
    atol = v.positive("atol_px_per_frame", atol_px_per_frame, allow_zero=True)
    min_rel = v.in_range("min_reliable_fraction", min_reliable_fraction, 0.0, 1.0)
    ppd = as_ppd(record["ppd"])
    fps = v.positive("frame_rate_hz", record["frame_rate_hz"])
    rdx, rdy = (float(x) for x in record["velocity_px_per_frame"])

    refresh = record.get("refresh_frames")
    pairs = [t for t in range(t_frames - 1) if refresh is None or (t + 1) % int(refresh) != 0]
    if not pairs:
        raise ValueError(
            f"no two consecutive frames show the same noise sample (refresh_frames={refresh}): "
            "there is no motion to measure"
        )
    available = len(pairs)
    pairs = select_pairs(pairs, max_pairs)
    opts = dict(flow_options or {})
    pu, pv, pf = [], [], []
    for t in pairs:
        r = movie_flow(m[t : t + 2], margin_px=margin_px, **opts)
        pu.append(r.u)
        pv.append(r.v)
        pf.append(r.reliable_fraction)
    pu_a, pv_a = np.asarray(pu), np.asarray(pv)
    has = np.isfinite(pu_a) & np.isfinite(pv_a)
    mu = float(np.median(pu_a[has])) if has.any() else math.nan
    mv = float(np.median(pv_a[has])) if has.any() else math.nan
    reliable = float(np.mean(pf))

    req_speed_px = math.hypot(rdx, rdy)
    err_px = math.hypot(mu - rdx, mv - rdy)
    mu_deg, mv_deg = to_deg_per_s(mu, mv, ppd=ppd, fps=fps)
    rdx_deg, rdy_deg = to_deg_per_s(rdx, rdy, ppd=ppd, fps=fps)
    meas_speed = math.hypot(mu_deg, mv_deg)
    req_speed = math.hypot(rdx_deg, rdy_deg)

    d_meas, d_req = _velocity_direction_deg(mu_deg, mv_deg), _velocity_direction_deg(rdx_deg, rdy_deg)
    d_err = None
    if d_meas is not None and d_req is not None:
        d_err = (d_meas - d_req + 180.0) % 360.0 - 180.0
    ok = (
        math.isfinite(err_px)
        and err_px <= tol * req_speed_px + atol
        and reliable >= min_rel
    )
    return {
        "requested": {
            "speed_deg_s": req_speed,
            "direction_deg": d_req,
            "velocity_deg_s": [rdx_deg, rdy_deg],
            "velocity_px_per_frame": [rdx, rdy],
        },
        "measured": {
            "speed_deg_s": meas_speed,
            "direction_deg": d_meas,
            "velocity_deg_s": [mu_deg, mv_deg],
            "velocity_px_per_frame": [mu, mv],
            "pair_velocity_px_per_frame": [[float(a), float(b)] for a, b in zip(pu, pv, strict=True)],
        },
        "velocity_error_px_per_frame": err_px,
        "rel_error": err_px / req_speed_px if req_speed_px > 0 else None,
        "speed_rel_error": (meas_speed - req_speed) / req_speed if req_speed > 0 else None,
        "direction_error_deg": d_err,
        "reliable_fraction": reliable,
        "pairs": pairs,
        "pair_selection": {
            "rule": PAIR_SELECTION_RULE if max_pairs is not None else "all pairs",
            "max_pairs": max_pairs,
            "measured": len(pairs),
            "available": available,
        },
        "tolerance": {"rel": tol, "atol_px_per_frame": atol, "min_reliable_fraction": min_rel},
        "velocity_convention": VELOCITY_CONVENTION,
        "pass": bool(ok),
    }


# =========================================================================================
# Preview
# =========================================================================================
def write_preview_gif(path: Any, movie: Any, *, fps: float) -> dict[str, Any]:
    """Write an 8-bit animated GIF preview of a signed-contrast movie.

    Parameters
    ----------
    path : str or path-like
        Output ``.gif`` file (written atomically).
    movie : ndarray, shape (T, H, W)
        Signed contrast; [-1, 1] maps to grey levels 0-255 (values outside are clipped).
    fps : float
        Intended frame rate in Hz.

    Returns
    -------
    dict
        ``clipped_fraction`` and the GIF's actual ``frame_duration_ms`` (GIF delays are
        whole hundredths of a second, so a 60 Hz movie previews at 50 Hz: a preview only,
        never a stimulus).
    """
    from .contrast import quantize
    from .io import write_gif

    m = v.finite_array("movie", movie, ndim=(3,))
    levels, clipped = quantize(m, 8)
    duration = write_gif(path, levels, fps=fps)
    return {"clipped_fraction": float(clipped), "frame_duration_ms": duration}
