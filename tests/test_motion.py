"""Tests for stimgen.motion: exact shifts, spectra, verified speeds, records, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from stimgen.motion import (
    PAIR_SELECTION_RULE,
    drifting_noise,
    movie_from_record,
    select_pairs,
    spatiotemporal_noise,
    temporal_aliasing_speed_deg_s,
    verify_motion,
    write_preview_gif,
)
from stimgen.spectrum import compare_to_design, default_tolerance, measure_band

PPD, FPS = 30.0, 60.0
BAND = (1.0, 4.0)


def fourier_shift(image: np.ndarray, shift_x: float, shift_y: float) -> np.ndarray:
    """Independent reference: full complex fft2, phase ramp, real part of ifft2."""
    h, w = image.shape
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.fftfreq(w)[None, :]
    ramp = np.exp(-2j * np.pi * (fx * shift_x + fy * shift_y))
    return np.fft.ifft2(np.fft.fft2(image.astype(np.float64)) * ramp).real


def drift(**kw):
    args = dict(size_px=64, ppd=PPD, band_cpd=BAND, frame_rate_hz=FPS, n_frames=4, rng=7)
    args.update(kw)
    return drifting_noise(**args)


# -- exact shifts ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("shape", "speed", "direction"),
    [((64, 64), 1.0, 0.0), ((64, 64), 2.5, 135.0), ((63, 80), 1.7, 200.0), ((64, 48), 0.3, 90.0)],
)
def test_frame_t_is_frame_0_shifted_by_t_d(shape, speed, direction):
    movie, rec = drift(size_px=shape, speed_deg_s=speed, direction_deg=direction, n_frames=6,
                       dtype=np.float64)
    dx, dy = rec["velocity_px_per_frame"]
    assert math.hypot(dx, dy) == pytest.approx(speed * PPD / FPS, rel=1e-14)
    for t in range(1, 6):
        ref = fourier_shift(movie[0], t * dx, t * dy)
        np.testing.assert_allclose(movie[t], ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize(("direction", "axis", "sign"), [(0, 1, 1), (90, 0, -1), (180, 1, -1), (270, 0, 1)])
def test_integer_displacement_equals_np_roll(direction, axis, sign):
    # 4 deg/s at 30 ppd and 60 Hz = 2 px/frame; 90 deg = upwards = towards row 0
    movie, rec = drift(speed_deg_s=4.0, direction_deg=direction, n_frames=5)
    assert movie.dtype == np.float32
    assert rec["speed_px_per_frame"] == 2.0
    for t in range(5):
        np.testing.assert_allclose(movie[t], np.roll(movie[0], sign * 2 * t, axis=axis), atol=1e-6)


def test_direction_convention_in_record():
    _, rec = drift(speed_deg_s=2.0, direction_deg=90)
    assert rec["velocity_deg_s"] == [0.0, -2.0]  # upwards: vy < 0 (rows grow downwards)
    assert rec["velocity_px_per_frame"] == [0.0, -1.0]
    _, rec = drift(speed_deg_s=2.0, direction_deg=-45)  # down-right
    vx, vy = rec["velocity_deg_s"]
    assert vx == pytest.approx(math.sqrt(2)) and vy == pytest.approx(math.sqrt(2))


def test_rms_contrast_identical_in_every_frame():
    movie, rec = drift(speed_deg_s=1.3, direction_deg=17, n_frames=12, rms_contrast=0.25, mean=0.1)
    sd = movie.astype(np.float64).std(axis=(1, 2))
    np.testing.assert_allclose(sd, 0.25, rtol=2e-6)
    np.testing.assert_allclose(movie.astype(np.float64).mean(axis=(1, 2)), 0.1, atol=1e-7)
    assert rec["rms_contrast"] == 0.25


def test_amplitude_spectrum_unchanged_by_the_shift():
    movie, _ = drift(speed_deg_s=1.9, direction_deg=60, n_frames=8, dtype=np.float64)
    amp = np.abs(np.fft.rfft2(movie))
    np.testing.assert_allclose(amp[1:], np.broadcast_to(amp[0], amp[1:].shape), atol=1e-10)


def test_nyquist_components_are_zero_for_even_sizes():
    movie, _ = drift(size_px=(64, 32), family="white", band_cpd=None, speed_deg_s=0.5,
                     dtype=np.float64)
    spec = np.fft.rfft2(movie)
    assert np.abs(spec[:, 32, :]).max() < 1e-10
    assert np.abs(spec[:, :, 16]).max() < 1e-10


def test_float32_and_float64_agree():
    m32, _ = drift(speed_deg_s=1.1, direction_deg=33)
    m64, _ = drift(speed_deg_s=1.1, direction_deg=33, dtype=np.float64)
    np.testing.assert_allclose(m32, m64, atol=1e-7)


# -- spectra ---------------------------------------------------------------------------
@pytest.mark.parametrize("family", ["dog", "log_gaussian"])
def test_frame_spectra_match_the_design(family):
    # dynamic noise, fresh sample every frame: 8 independent frames for the statistics
    movie, rec = drift(size_px=128, family=family, band_cpd=(1.5, 6.0), speed_deg_s=1.0,
                       refresh_frames=1, n_frames=8, rng=3)
    from stimgen.filters import filter_from_record

    measured = measure_band(movie, ppd=PPD)
    res = compare_to_design(measured, filter_from_record(rec["filter"]), ppd=PPD,
                            tolerance=default_tolerance(8, (128, 128)))
    assert res["pass"], res
    assert rec["design"]["band_cpd"] == pytest.approx([1.5, 6.0], rel=1e-6)


def test_power_law_noise_drifts_too():
    movie, rec = drift(family="power_law", band_cpd=None, alpha=2.0, speed_deg_s=0.9,
                       direction_deg=10, dtype=np.float64)
    dx, dy = rec["velocity_px_per_frame"]
    np.testing.assert_allclose(movie[3], fourier_shift(movie[0], 3 * dx, 3 * dy), atol=1e-12)
    # unbounded 1/f noise reaches Nyquist: limit 0.5 * fps / (ppd / 2) = 2 deg/s at 30 ppd
    assert rec["temporal_aliasing"]["limit_speed_deg_s"] == pytest.approx(2.0)


# -- dynamic noise ---------------------------------------------------------------------
def test_dynamic_noise_draws_a_fresh_sample_every_k_frames():
    movie, rec = drift(speed_deg_s=1.0, refresh_frames=3, n_frames=7, dtype=np.float64)
    assert rec["n_samples"] == 3
    dx, dy = rec["velocity_px_per_frame"]
    # within a sample: exact shifts; across a refresh: uncorrelated
    np.testing.assert_allclose(movie[2], fourier_shift(movie[1], dx, dy), atol=1e-12)
    np.testing.assert_allclose(movie[5], fourier_shift(movie[3], 2 * dx, 2 * dy), atol=1e-12)
    corr = np.corrcoef(movie[3].ravel(), fourier_shift(movie[2], dx, dy).ravel())[0, 1]
    assert abs(corr) < 0.2
    res = verify_motion(movie, rec, max_pairs=None)
    assert res["pairs"] == [0, 1, 3, 4]
    assert res["pass"]


def test_static_dynamic_noise_has_no_pairs_to_verify():
    movie, rec = drift(speed_deg_s=0.0, refresh_frames=1, n_frames=3)
    with pytest.raises(ValueError, match="no two consecutive frames show the same noise sample"):
        verify_motion(movie, rec)


# -- verification with flow ------------------------------------------------------------
@pytest.mark.parametrize(("speed", "direction"), [(1.0, 0.0), (2.5, 90.0), (2.5, 225.0), (1.0, 300.0)])
def test_verify_motion_measures_the_requested_velocity(speed, direction):
    movie, rec = drift(size_px=96, speed_deg_s=speed, direction_deg=direction, n_frames=3)
    res = verify_motion(movie, rec)
    assert res["pass"], res
    assert res["measured"]["speed_deg_s"] == pytest.approx(speed, rel=0.01)
    assert res["direction_error_deg"] == pytest.approx(0.0, abs=0.5)
    assert res["requested"]["direction_deg"] == pytest.approx(direction)
    assert res["reliable_fraction"] > 0.9


def test_static_movie_measures_zero_speed():
    movie, rec = drift(speed_deg_s=0.0, n_frames=3)
    assert np.array_equal(movie[0], movie[2])
    res = verify_motion(movie, rec)
    assert res["measured"]["speed_deg_s"] == 0.0
    assert res["measured"]["direction_deg"] is None and res["rel_error"] is None
    assert res["pass"]


def test_verify_motion_fails_a_wrong_speed():
    movie, rec = drift(size_px=96, speed_deg_s=2.0, n_frames=3)
    wrong = dict(rec, velocity_px_per_frame=[1.1, 0.0])  # 10 % too fast
    res = verify_motion(movie, wrong)
    assert not res["pass"]
    assert res["rel_error"] == pytest.approx(0.1 / 1.1, abs=0.01)


def test_verify_motion_bad_input():
    movie, rec = drift(speed_deg_s=1.0)
    with pytest.raises(ValueError, match="movie must have 3 dimensions"):
        verify_motion(movie[0], rec)
    with pytest.raises(ValueError, match="at least 2 frames"):
        verify_motion(movie[:1], rec)
    with pytest.raises(ValueError, match="record says"):
        verify_motion(movie[:, :32], rec)
    with pytest.raises(ValueError, match="velocity_px_per_frame"):
        verify_motion(movie, {"ppd": PPD})
    with pytest.raises(ValueError, match="tolerance must be finite"):
        verify_motion(movie, rec, tolerance=float("nan"))
    bad = movie.copy()
    bad[1, 3, 3] = np.inf
    with pytest.raises(ValueError, match="movie contains NaN or infinite"):
        verify_motion(bad, rec)


# -- temporal aliasing -----------------------------------------------------------------
def test_aliasing_limit_is_half_a_cycle_per_frame():
    limit = temporal_aliasing_speed_deg_s(4.0, frame_rate_hz=FPS)
    assert limit == 7.5  # 4 cpd moving 7.5 deg/s = 30 Hz = the temporal Nyquist limit
    with pytest.raises(ValueError, match=r"speed_deg_s=7.5 aliases in time.*below 7.5 deg/s"):
        drift(speed_deg_s=7.5)
    with pytest.raises(ValueError, match="aliases in time"):
        drift(speed_deg_s=30.0, direction_deg=45)
    with pytest.warns(UserWarning, match="alias in time"):  # the DoG's tails above 4 cpd
        _, rec = drift(speed_deg_s=7.4)
    ta = rec["temporal_aliasing"]
    assert ta["phase_step_cycles_per_frame"] == pytest.approx(7.4 / 7.5 * 0.5)
    assert 0.01 < ta["aliased_power_fraction"] < 0.5


def test_allow_aliasing_records_the_aliased_power():
    with pytest.warns(UserWarning, match="alias in time"):
        _, rec = drift(family="white", band_cpd=None, speed_deg_s=3.0, allow_aliasing=True)
    # white noise at 1.5 px/frame: every component above 1/3 cycle/px along x aliases
    assert rec["allow_aliasing"] is True
    assert rec["temporal_aliasing"]["aliased_power_fraction"] > 0.2


# -- records ---------------------------------------------------------------------------
def test_movie_from_record_is_bit_for_bit():
    movie, rec = drift(size_px=None, size_deg=2.0, speed_deg_s=1.7, direction_deg=123, refresh_frames=2,
                       n_frames=5, mean=-0.05, rng=np.random.SeedSequence(99, spawn_key=(3,)))
    assert rec["shape_px"] == [60, 60]
    assert rec["seed"] == {"entropy": 99, "spawn_key": [3]}
    assert np.array_equal(movie_from_record(rec), movie)


def test_record_with_fresh_entropy_regenerates():
    movie, rec = drift(speed_deg_s=0.7, rng=None, n_frames=None, duration_s=0.05)
    assert rec["n_frames"] == 3 and rec["duration_s"] == pytest.approx(0.05)
    assert np.array_equal(movie_from_record(rec), movie)


def test_record_from_a_generator_cannot_regenerate():
    _, rec = drift(speed_deg_s=0.7, rng=np.random.default_rng(1))
    with pytest.raises(ValueError, match="no seed"):
        movie_from_record(rec)
    with pytest.raises(ValueError, match="record stimulus must be one of"):
        movie_from_record({"stimulus": "grating"})
    _, rec = drift(speed_deg_s=0.7)
    del rec["frame_rate_hz"]
    with pytest.raises(ValueError, match=r"lacks the fields \['frame_rate_hz'\]"):
        movie_from_record(rec)


# -- bad input -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"frame_rate_hz": 0}, "frame_rate_hz must be finite and > 0"),
        ({"frame_rate_hz": -60}, "frame_rate_hz must be finite and > 0"),
        ({"frame_rate_hz": float("inf")}, "frame_rate_hz must be finite"),
        ({"speed_deg_s": float("nan")}, "speed_deg_s must be finite"),
        ({"speed_deg_s": -1.0}, r"speed_deg_s must be finite and >= 0"),
        ({"direction_deg": float("inf")}, "direction_deg must be finite"),
        ({"direction_deg": "up"}, "direction_deg must be a number"),
        ({"duration_s": 1.0}, "exactly one of duration_s and n_frames"),
        ({"n_frames": None, "duration_s": 0.001}, "shorter than one frame"),
        ({"n_frames": 0}, "n_frames must be an integer >= 1"),
        ({"refresh_frames": 0}, "refresh_frames must be an integer >= 1"),
        ({"band_cpd": (1, 20)}, "exceeds Nyquist"),
        ({"rms_contrast": 0}, "rms_contrast must be in"),
        ({"dtype": np.int16}, "dtype must be float32 or float64"),
    ],
)
def test_bad_input(kwargs, match):
    args = {"speed_deg_s": 1.0, **kwargs}
    with pytest.raises(ValueError, match=match):
        drift(**args)


# -- spatiotemporal noise --------------------------------------------------------------
def st(**kw):
    args = dict(size_px=32, ppd=PPD, band_cpd=(1.5, 6), frame_rate_hz=FPS, n_frames=60,
                temporal_band_hz=(4, 12), rng=5)
    args.update(kw)
    return spatiotemporal_noise(**args)


def test_spatiotemporal_noise_is_band_limited_in_time():
    movie, rec = st(temporal_family="ideal", dtype=np.float64)
    assert movie.shape == (60, 32, 32)
    assert movie.std() == pytest.approx(0.2, rel=1e-12)
    power = np.abs(np.fft.fft(movie, axis=0)) ** 2
    f_hz = np.abs(np.fft.fftfreq(60)) * FPS
    per_f = power.mean(axis=(1, 2))
    inside = (f_hz >= 4) & (f_hz <= 12)
    assert per_f[~inside].max() < 1e-20 * per_f[inside].max()
    assert rec["temporal_design"]["band_hz"] == pytest.approx([4, 12])


def test_spatiotemporal_noise_matches_its_spatial_design():
    movie, rec = st(size_px=64, n_frames=30, temporal_band_hz=(0, 10), band_cpd=(1.5, 6))
    from stimgen.filters import filter_from_record

    frames = movie[::6]  # temporal low-pass: frames 6 apart are nearly independent
    res = compare_to_design(measure_band(frames, ppd=PPD), filter_from_record(rec["filter"]),
                            ppd=PPD, tolerance=default_tolerance(len(frames), (64, 64)))
    assert res["pass"], res
    assert np.array_equal(movie_from_record(rec), movie)


def test_spatiotemporal_bad_input():
    with pytest.raises(ValueError, match="exceeds the temporal Nyquist limit"):
        st(temporal_band_hz=(4, 31))
    with pytest.raises(ValueError, match="below one cycle per movie"):
        st(temporal_band_hz=(0.5, 10))
    with pytest.raises(ValueError, match="temporal_family 'log_gaussian' needs a band with low > 0"):
        st(temporal_band_hz=(0, 10), temporal_family="log_gaussian")
    with pytest.raises(ValueError, match="temporal_family must be one of"):
        st(temporal_family="boxcar")
    with pytest.raises(ValueError, match="at least 2 frames"):
        st(n_frames=1)
    movie, rec = st()
    with pytest.raises(ValueError, match="no single velocity"):
        verify_motion(movie, rec)


# -- previews --------------------------------------------------------------------------
def test_write_preview_gif(tmp_path):
    from PIL import Image

    movie, _ = drift(speed_deg_s=1.0, n_frames=4)
    out = tmp_path / "prev.gif"
    info = write_preview_gif(out, movie, fps=FPS)
    assert info["frame_duration_ms"] == 20 and info["clipped_fraction"] == 0.0
    with Image.open(out) as im:
        assert im.n_frames == 4 and im.size == (64, 64)
        assert im.info["duration"] == 20
        im.seek(2)
        grey = np.asarray(im.convert("L"))
    from stimgen.contrast import quantize

    np.testing.assert_array_equal(grey, quantize(movie[2], 8)[0])


def test_write_gif_needs_uint8(tmp_path):
    from stimgen.io import write_gif

    with pytest.raises(ValueError, match="GIF output needs uint8 data"):
        write_gif(tmp_path / "x.gif", np.zeros((2, 8, 8)), fps=30)
    with pytest.raises(ValueError, match=r"needs a \(T, H, W\) movie"):
        write_gif(tmp_path / "x.gif", np.zeros((8, 8), np.uint8), fps=30)
    with pytest.raises(ValueError, match="fps must be finite and > 0"):
        write_gif(tmp_path / "x.gif", np.zeros((2, 8, 8), np.uint8), fps=0)
    assert not list(tmp_path.iterdir())


def test_plot_space_time_draws_the_requested_trajectory(tmp_path):
    from stimgen.plotting import plot_space_time, save

    movie, rec = drift(speed_deg_s=2.0, n_frames=6)
    ax = plot_space_time(movie, record=rec)
    (line,) = ax.get_lines()
    x, t = line.get_data()
    assert (x[1] - x[0]) / (t[1] - t[0]) == pytest.approx(2.0)  # slope = vx in deg/s
    assert ax.get_xlabel() == "x (deg)" and ax.get_ylabel() == "time (s)"
    save(ax.figure, tmp_path / "st.png")
    assert (tmp_path / "st.png").stat().st_size > 0
    with pytest.raises(ValueError, match=r"movie must have shape \(T, H, W\)"):
        plot_space_time(movie[0])


def test_dynamic_noise_does_not_depend_on_the_generation_chunks(monkeypatch):
    import stimgen.motion as motion

    movie, rec = drift(speed_deg_s=0.8, refresh_frames=2, n_frames=7, rng=11)
    monkeypatch.setattr(motion, "_CHUNK_BYTES", 1)  # one sample per chunk
    chunked, _ = drift(speed_deg_s=0.8, refresh_frames=2, n_frames=7, rng=11)
    assert np.array_equal(chunked, movie)
    assert rec["n_samples"] == 4
    np.testing.assert_allclose(movie.astype(np.float64).std(axis=(1, 2)), 0.2, rtol=2e-6)


# -- directions are reported in [0, 360) -----------------------------------------------------
@pytest.mark.parametrize("direction", [0.0, -1e-14, 360.0, 720.0, 359.9999999999999, -1e-9])
def test_rightward_directions_are_reported_as_0(direction):
    # angles a hair below 0 (or 360) used to be recorded and measured as 359.99999... or 360.0
    movie, rec = drift(size_px=64, speed_deg_s=2.0, direction_deg=direction, n_frames=3)
    assert rec["direction_deg"] == 0.0 and rec["velocity_px_per_frame"][1] == 0.0
    res = verify_motion(movie, rec)
    assert res["requested"]["direction_deg"] == 0.0
    assert 0.0 <= res["measured"]["direction_deg"] < 360.0


@pytest.mark.parametrize(
    ("vx", "vy", "expected"),
    [(1.0, 0.0, 0.0), (1.0, 1e-12, 0.0), (1.0, -1e-12, 5.729577951308232e-11), (1.0, 1e-300, 0.0),
     (0.0, -1.0, 90.0), (-1.0, 0.0, 180.0), (0.0, 1.0, 270.0), (1.0, 1.0, 315.0),
     (1.0, math.tan(math.radians(2e-6)), 359.999998), (0.0, 0.0, None), (math.nan, 1.0, None)],
)  # fmt: skip
def test_velocity_direction_is_in_0_360(vx, vy, expected):
    from stimgen.motion import _velocity_direction_deg

    d = _velocity_direction_deg(vx, vy)
    if expected is None:
        assert d is None
    else:
        assert d == pytest.approx(expected, rel=1e-9, abs=1e-15) and 0.0 <= d < 360.0


def test_verify_motion_reports_measured_rightward_motion_in_0_360(monkeypatch):
    # flow whose median is exactly rightward with a vanishing downward part: 0, not 359.99999...
    import stimgen.flow as flow

    class Flow:
        def __init__(self, u, v):
            self.u, self.v, self.reliable_fraction = u, v, 1.0

    monkeypatch.setattr(flow, "movie_flow", lambda pair, **kw: Flow(0.5, 1e-12))
    movie, rec = drift(size_px=64, speed_deg_s=2.0, direction_deg=0.0, n_frames=3)
    res = verify_motion(movie, rec)
    assert res["measured"]["direction_deg"] == 0.0 and res["direction_error_deg"] == 0.0


# -- the measured subset of frame pairs (issue 15 item 4) --------------------------------
def test_select_pairs_is_evenly_spread_deterministic_and_keeps_both_ends():
    assert select_pairs(range(29)) == [0, 4, 8, 12, 16, 20, 24, 28]
    assert select_pairs(range(29), max_pairs=3) == [0, 14, 28]
    assert select_pairs(range(5)) == [0, 1, 2, 3, 4]  # fewer than max_pairs: all
    assert select_pairs(range(29), max_pairs=None) == list(range(29))
    gaps = [t for t in range(30) if (t + 1) % 3 != 0]  # dynamic noise: 20 usable pairs
    sub = select_pairs(gaps)
    assert len(sub) == 8 and sub[0] == gaps[0] and sub[-1] == gaps[-1] and set(sub) <= set(gaps)
    assert select_pairs(gaps) == sub  # no randomness
    for bad in (1, 0, 2.5, "8"):
        with pytest.raises(ValueError, match="max_pairs must be an integer >= 2"):
            select_pairs(range(10), max_pairs=bad)


def test_verify_motion_states_which_pairs_it_measured():
    movie, rec = drift(size_px=48, speed_deg_s=1.5, direction_deg=30.0, n_frames=30)
    res = verify_motion(movie, rec)
    assert res["pass"], res
    assert res["pairs"] == [0, 4, 8, 12, 16, 20, 24, 28]
    assert len(res["measured"]["pair_velocity_px_per_frame"]) == 8
    assert res["pair_selection"] == {"rule": PAIR_SELECTION_RULE, "max_pairs": 8,
                                     "measured": 8, "available": 29}
    every = verify_motion(movie, rec, max_pairs=None)
    assert every["pairs"] == list(range(29)) and every["pass"]
    assert every["pair_selection"] == {"rule": "all pairs", "max_pairs": None,
                                       "measured": 29, "available": 29}
    # the subset and all pairs agree on the velocity of an exact drift
    a = np.array(res["measured"]["velocity_px_per_frame"])
    b = np.array(every["measured"]["velocity_px_per_frame"])
    assert np.abs(a - b).max() < 1e-3


def test_a_wrong_speed_is_caught_with_the_subset():
    movie, rec = drift(size_px=48, speed_deg_s=2.0, n_frames=30)  # 1 px/frame rightwards
    wrong = dict(rec, velocity_px_per_frame=[1.1, 0.0])  # the record says 10 % faster
    res = verify_motion(movie, wrong)
    assert res["pair_selection"]["measured"] == 8 and not res["pass"]
    assert res["rel_error"] == pytest.approx(0.1 / 1.1, abs=0.01)
    # a movie that stops halfway: the subset sees the still pairs, and fails it
    half = movie.copy()
    half[15:] = movie[15]
    res = verify_motion(half, rec)
    assert not res["pass"]
    assert sum(abs(u) < 0.01 for u, _ in res["measured"]["pair_velocity_px_per_frame"]) == 4
