"""Viewing geometry: reference values (docs/theory.md), conversions and every error."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stimgen.geometry import (
    LINEAR_SIZE_TOLERANCE,
    LinearSizeWarning,
    ViewingGeometry,
    as_ppd,
    linear_size_error,
    resolve_shape,
)

# Reference set-up of docs/theory.md: 57 cm from a 53.3 cm wide, 1920 px screen.
REF = dict(distance_cm=57.0, screen_width_cm=53.3, screen_width_px=1920)


@pytest.fixture
def ref():
    return ViewingGeometry(**REF)


def test_reference_ppd_exact_central_degree(ref):
    # ppd = N / W * 2 d tan(0.5 deg)
    expected = 1920 / 53.3 * 2 * 57 * math.tan(math.radians(0.5))
    assert ref.ppd == pytest.approx(expected, rel=1e-15)
    assert round(ref.ppd, 2) == 35.84
    assert ref.ppd == pytest.approx(35.837464, abs=5e-7)


def test_small_angle_form_differs_by_minus_2_5e_5(ref):
    small = 1920 / 53.3 * 57 * math.pi / 180
    assert small / ref.ppd - 1 == pytest.approx(-2.54e-5, abs=0.01e-5)


def test_screen_average_ppd_is_not_the_central_ppd(ref):
    # docs/theory.md: +6.9 % at 57 cm on a 53 cm, 1920 px screen
    assert ref.mean_ppd / ref.ppd - 1 == pytest.approx(0.069, abs=0.0005)
    assert ref.screen_width_deg == pytest.approx(2 * math.degrees(math.atan(53.3 / 114)), rel=1e-14)
    assert ref.mean_ppd == pytest.approx(1920 / ref.screen_width_deg, rel=1e-14)


def test_nyquist_and_conversions(ref):
    p = ref.ppd
    assert ref.nyquist_cpd == pytest.approx(p / 2, rel=1e-15)
    assert ref.deg_to_px(2.0) == pytest.approx(2 * p, rel=1e-15)
    assert ref.px_to_deg(p) == pytest.approx(1.0, rel=1e-15)
    assert ref.cpp_to_cpd(0.5) == pytest.approx(ref.nyquist_cpd, rel=1e-15)
    assert ref.cpd_to_cpp(p) == pytest.approx(1.0, rel=1e-15)
    arr = ref.cpd_to_cpp(np.array([1.0, 5.0]))
    assert isinstance(arr, np.ndarray)
    np.testing.assert_allclose(ref.cpp_to_cpd(arr), [1.0, 5.0], rtol=1e-15)
    assert isinstance(ref.deg_to_px(3), float)


def test_local_ppd_at_eccentricity(ref):
    p = ref.ppd
    assert ref.local_ppd(0.0) == pytest.approx(p, rel=1e-15)
    assert ref.local_ppd(0.0, "tangential") == pytest.approx(p, rel=1e-15)
    # tangential: exactly ppd / cos(e)
    assert ref.local_ppd(25.0, "tangential") == pytest.approx(p / math.cos(math.radians(25)), rel=1e-14)
    # radial: N/W d (tan(e + 0.5) - tan(e - 0.5)), about ppd / cos^2(e)
    e = math.radians(25)
    h = math.radians(0.5)
    exact = 1920 / 53.3 * 57 * (math.tan(e + h) - math.tan(e - h))
    assert ref.local_ppd(25.0) == pytest.approx(exact, rel=1e-13)
    assert ref.local_ppd(25.0) / p == pytest.approx(1 / math.cos(e) ** 2, rel=1e-4)
    # docs/theory.md: a fixed-cpp noise is +22 % higher in cpd at the edge of a 50 deg screen
    assert ref.local_ppd(25.0) / p - 1 == pytest.approx(0.22, abs=0.005)
    # symmetric, and vectorized
    got = ref.local_ppd(np.array([-10.0, 0.0, 10.0]))
    assert got[0] == pytest.approx(got[2], rel=1e-14)
    assert np.all(np.diff(ref.local_ppd(np.linspace(0, 40, 9))) > 0)


def test_height_and_record(ref):
    g = ViewingGeometry(57, 53.3, 1920, 1080)
    h_cm = 1080 * 53.3 / 1920
    assert g.screen_height_deg == pytest.approx(2 * math.degrees(math.atan(h_cm / 114)), rel=1e-14)
    assert ref.screen_height_deg is None
    d = g.to_dict()
    assert d["ppd"] == g.ppd and d["nyquist_cpd"] == g.ppd / 2
    assert d["screen_height_px"] == 1080 and d["mean_ppd"] == pytest.approx(g.mean_ppd)
    assert g == ViewingGeometry(57, 53.3, 1920, 1080) and hash(g) == hash(ViewingGeometry(57, 53.3, 1920, 1080))
    assert g != ref
    assert "ppd=35.8375" in repr(g)


def test_from_ppd_and_as_ppd(ref):
    g = ViewingGeometry.from_ppd(40.0)
    assert g.ppd == 40.0 and g.nyquist_cpd == 20.0 and g.cpd_to_cpp(4.0) == 0.1
    assert g.to_dict()["distance_cm"] is None and "screen_width_deg" not in g.to_dict()
    assert as_ppd(g) == 40.0 and as_ppd(ref) == ref.ppd and as_ppd(30) == 30.0
    assert "from_ppd" in repr(g)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(REF, distance_cm=0), r"distance_cm must be finite and > 0, got 0"),
        (dict(REF, distance_cm=-57), r"distance_cm must be finite and > 0, got -57"),
        (dict(REF, distance_cm=math.inf), r"distance_cm must be finite and > 0, got inf"),
        (dict(REF, screen_width_cm=math.nan), r"screen_width_cm must be finite and > 0, got nan"),
        (dict(REF, screen_width_cm="wide"), r"screen_width_cm must be a number, got 'wide'"),
        (dict(REF, screen_width_px=0), r"screen_width_px must be an integer >= 1, got 0"),
        (dict(REF, screen_width_px=1920.5), r"screen_width_px must be an integer >= 1, got 1920.5"),
        (dict(REF, screen_height_px=-1), r"screen_height_px must be an integer >= 1, got -1"),
    ],
)
def test_bad_geometry_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ViewingGeometry(**kwargs)


def test_other_errors(ref):
    with pytest.raises(ValueError, match=r"ppd must be finite and > 0, got -3"):
        ViewingGeometry.from_ppd(-3)
    with pytest.raises(ValueError, match=r"ppd must be finite and > 0, got 0"):
        as_ppd(0)
    g = ViewingGeometry.from_ppd(40)
    with pytest.raises(ValueError, match=r"screen_width_deg needs distance_cm, screen_width_cm"):
        _ = g.screen_width_deg
    with pytest.raises(ValueError, match=r"mean_ppd|screen_width_deg needs distance_cm"):
        _ = g.mean_ppd
    with pytest.raises(ValueError, match=r"eccentricity_deg must be finite with \|e\| < 89.5, got 90"):
        ref.local_ppd(90)
    with pytest.raises(ValueError, match=r"direction must be one of 'radial', 'tangential'; got 'up'"):
        ref.local_ppd(10, "up")


def test_resolve_shape():
    assert resolve_shape(size_px=64) == ((64, 64), None)
    assert resolve_shape(size_px=(32, 48), ppd=16) == ((32, 48), (2.0, 3.0))
    shape, deg = resolve_shape(size_deg=(2.0, 8.0), ppd=35.8375)
    assert shape == (72, 287)
    assert deg == pytest.approx((72 / 35.8375, 287 / 35.8375))
    with pytest.raises(ValueError, match="give exactly one of size_px and size_deg"):
        resolve_shape()
    with pytest.raises(ValueError, match="give exactly one of size_px and size_deg"):
        resolve_shape(size_px=3, size_deg=1, ppd=3)
    with pytest.raises(ValueError, match="size_deg needs ppd"):
        resolve_shape(size_deg=2)
    with pytest.raises(ValueError, match=r"size_px must be one number or \(height, width\), got \[1, 2, 3\]"):
        resolve_shape(size_px=[1, 2, 3])
    with pytest.raises(ValueError, match=r"size_deg must be finite and > 0, got -1"):
        resolve_shape(size_deg=-1, ppd=30)


@settings(max_examples=30, deadline=None)
@given(
    d=st.floats(10, 300),
    w=st.floats(5, 200),
    n=st.integers(64, 8000),
    k=st.floats(0.25, 4),
)
def test_ppd_scales_with_distance_and_resolution(d, w, n, k):
    g = ViewingGeometry(d, w, n)
    # ppd is proportional to distance and to pixel density; cpd <-> cpp are inverses
    assert ViewingGeometry(d * k, w, n).ppd == pytest.approx(k * g.ppd, rel=1e-12)
    assert ViewingGeometry(d, w / k, n).ppd == pytest.approx(k * g.ppd, rel=1e-12)
    assert g.cpp_to_cpd(g.cpd_to_cpp(3.7)) == pytest.approx(3.7, rel=1e-14)
    # a flat screen's periphery has more px per degree than its central degree, so the
    # average over a screen wider than 1 deg is larger (and smaller for a narrower one)
    if g.screen_width_deg > 1.001:
        assert g.mean_ppd > g.ppd
    elif g.screen_width_deg < 0.999:
        assert g.mean_ppd < g.ppd


def test_size_deg_rounds_half_up_and_band_strings_refused():
    from stimgen.filters import DoG
    from stimgen.geometry import resolve_shape

    assert resolve_shape(size_deg=(8.5, 2.5), ppd=1.0)[0] == (9, 3)
    with pytest.raises(ValueError, match=r"band_cpd must be a pair of numbers \[a, b\], got '15'"):
        DoG.from_band("15", ppd=30)


# -- exact angular sizes (linear deg <-> px understates large stimuli) ---------------------
def _chord_deg(ref, size_px):
    """Angle of ``size_px`` centred on the line of sight, from the screen in cm (independent of ppd)."""
    half_cm = size_px / 2 * REF["screen_width_cm"] / REF["screen_width_px"]
    return math.degrees(2 * math.atan(half_cm / REF["distance_cm"]))


@pytest.mark.parametrize("size_px", [1, 36, 287, 717, 1500])
def test_exact_size_conversion_is_the_subtended_angle(ref, size_px):
    assert ref.px_to_deg_exact(size_px) == pytest.approx(_chord_deg(ref, size_px), rel=1e-13)
    assert ref.deg_to_px_exact(ref.px_to_deg_exact(size_px)) == pytest.approx(size_px, rel=1e-13)
    # the same from ppd alone: the viewing distance cancels
    g = ViewingGeometry.from_ppd(ref.ppd)
    assert g.px_to_deg_exact(size_px) == pytest.approx(ref.px_to_deg_exact(size_px), rel=1e-14)


def test_exact_and_linear_sizes_agree_at_one_degree_and_differ_above(ref):
    assert ref.deg_to_px_exact(1.0) == pytest.approx(ref.ppd, rel=1e-14)  # ppd is the central degree
    # the audit's case: 287 px is 7.9956 deg, not the linear 8.0084
    assert ref.px_to_deg(287) == pytest.approx(8.0084, abs=5e-5)
    assert ref.px_to_deg_exact(287) == pytest.approx(7.9956, abs=5e-5)
    np.testing.assert_allclose(ref.deg_to_px_exact([0.0, 1.0]), [0.0, ref.ppd], rtol=1e-14)


@pytest.mark.parametrize(("size_deg", "error"), [(8, 0.0016), (20, 0.0101), (40, 0.0409), (1, 0.0)])
def test_linear_size_error(ref, size_deg, error):
    err = linear_size_error(size_deg)
    assert err == pytest.approx(error, abs=5e-5)
    assert err == pytest.approx(1 - ref.deg_to_px(size_deg) / ref.deg_to_px_exact(size_deg), rel=1e-9, abs=1e-15)


def test_linear_size_tolerance_is_crossed_near_14_deg():
    assert LINEAR_SIZE_TOLERANCE == 0.005
    assert linear_size_error(14.06) < LINEAR_SIZE_TOLERANCE < linear_size_error(14.08)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda g: g.deg_to_px_exact(180), r"size_deg must be finite and in \[0, 180\) deg, got 180"),
        (lambda g: g.deg_to_px_exact(-1), r"size_deg must be finite"),
        (lambda g: g.px_to_deg_exact(float("nan")), r"size_px must be finite and >= 0, got nan"),
        (lambda g: linear_size_error(0), r"size_deg must be finite and in \(0, 180\) deg, got 0"),
    ],
)
def test_exact_size_errors(ref, call, match):
    with pytest.raises(ValueError, match=match):
        call(ref)


def test_large_size_deg_warns_and_records_the_true_angle():
    from stimgen import bandpass_noise, noise_from_record

    with pytest.warns(LinearSizeWarning, match=r"size_deg 20 became 640 px .* 20 deg need 646.6 px: the linear "
                      r"conversion understates the size by 1 %") as caught:  # fmt: skip
        img, rec = bandpass_noise(size_deg=(20, 10), ppd=32, band_cpd=(1, 4), rng=1)
    assert caught[0].filename == __file__  # stacklevel: the caller's line
    assert img.shape == (640, 320)  # still linear: old records regenerate bit for bit
    assert rec["size_deg"] == [20.0, 10.0]
    assert rec["size_deg_angular"] == pytest.approx([19.80, 9.975], abs=5e-3)
    assert rec["size_deg_angular"][0] == ViewingGeometry.from_ppd(32).px_to_deg_exact(640)
    np.testing.assert_array_equal(noise_from_record(rec), img)


def test_sizes_in_pixels_and_up_to_14_deg_do_not_warn():
    from stimgen import bandpass_noise

    # pytest turns warnings into errors: none of these may warn
    _, rec = bandpass_noise(size_deg=8, ppd=35.8375, band_cpd=(1, 4), rng=1)
    assert rec["shape_px"] == [287, 287]
    assert rec["size_deg"][0] == pytest.approx(8.0084, abs=5e-5)
    assert rec["size_deg_angular"][0] == pytest.approx(7.9956, abs=5e-5)
    bandpass_noise(size_deg=14.0, ppd=16, band_cpd=(1, 4), rng=1)
    _, rec = bandpass_noise(size_px=640, ppd=32, band_cpd=(1, 4), rng=1)  # made as given
    assert rec["size_deg_angular"] == pytest.approx([19.80, 19.80], abs=5e-3)


def test_motion_records_the_true_angle_and_warns_for_large_size_deg():
    from stimgen.motion import drifting_noise, spatiotemporal_noise

    kw = dict(ppd=8, band_cpd=(0.5, 2), frame_rate_hz=60, n_frames=2, rng=1)
    _, rec = drifting_noise(size_deg=4, speed_deg_s=1.0, **kw)
    assert rec["size_deg_angular"] == [ViewingGeometry.from_ppd(8).px_to_deg_exact(32)] * 2
    with pytest.warns(LinearSizeWarning, match=r"^drifting_noise: size_deg 24 became 192 px"):
        _, rec = drifting_noise(size_deg=24, speed_deg_s=1.0, **kw)
    assert rec["size_deg"] == [24.0, 24.0] and rec["size_deg_angular"][0] == pytest.approx(23.66, abs=5e-3)
    with pytest.warns(LinearSizeWarning, match=r"^spatiotemporal_noise: size_deg 24 became 192 px"):
        _, rec = spatiotemporal_noise(size_deg=24, temporal_band_hz=(0, 20), temporal_family="gaussian", **kw)
    assert rec["size_deg_angular"][0] == pytest.approx(23.66, abs=5e-3)


def test_shipped_experiments_do_not_warn():
    from pathlib import Path

    from stimgen.experiment import load_experiment
    from stimgen.geometry import angular_size_deg

    files = sorted((Path(__file__).parent.parent / "experiments").glob("*.yaml"))
    assert files
    for f in files:
        exp = load_experiment(f)
        ppd = exp["display"]["ppd"] or ViewingGeometry(
            exp["display"]["distance_cm"], exp["display"]["screen_width_cm"], exp["display"]["screen_width_px"]
        ).ppd
        size_deg = exp["stimulus"]["size_deg"]
        shape, _ = resolve_shape(size_px=exp["stimulus"]["size_px"], size_deg=size_deg, ppd=ppd)
        angular = angular_size_deg(shape, ppd, requested_deg=size_deg)  # an error if it warned
        assert max(angular) < 14.0, f


# -- local ppd: what it is exactly ----------------------------------------------------------
def test_local_ppd_is_the_centred_degree_and_says_so(ref):
    h = math.radians(0.5)
    px_per_cm = REF["screen_width_px"] / REF["screen_width_cm"]
    d = REF["distance_cm"]
    for e_deg in (0.0, 10.0, 30.0, 60.0):
        e = math.radians(e_deg)
        # tangential: the degree centred at e, perpendicular to the radius, seen from d / cos e
        chord_cm = 2 * (d / math.cos(e)) * math.tan(h)
        assert ref.local_ppd(e_deg, "tangential") == pytest.approx(px_per_cm * chord_cm, rel=1e-14)
        assert ref.local_ppd(e_deg, "tangential") == pytest.approx(ref.ppd / math.cos(e), rel=1e-14)
        closed = ref.ppd * math.cos(h) ** 2 / (math.cos(e) ** 2 - math.sin(h) ** 2)
        assert ref.local_ppd(e_deg, "radial") == pytest.approx(closed, rel=1e-13)
        # the instantaneous density (derivative) is smaller by (pi / 360) / tan(0.5 deg)
        deriv_tangential = px_per_cm * (d / math.cos(e)) * math.pi / 180
        factor = (math.pi / 360) / math.tan(h)
        assert deriv_tangential == pytest.approx(factor * ref.local_ppd(e_deg, "tangential"), rel=1e-14)
        assert 1 - factor == pytest.approx(2.54e-5, abs=5e-8)
    doc = " ".join(ViewingGeometry.local_ppd.__doc__.split())
    assert "ppd cos^2(0.5) / (cos^2 e - sin^2(0.5))" in doc
    assert "(pi / 360) / tan(0.5 deg)`` (1 - 2.54e-5)" in doc


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [  # ZeroDivisionError (in to_dict) or a ppd of inf or 0 before
        (dict(REF, distance_cm=1e308), (r"the ppd of distance_cm=1e\+308, screen_width_cm=53\.3 and "
         r"screen_width_px=1920 must be finite and in \[4\.45e-308, 1\.798e\+308\] px/deg.* got inf")),
        (dict(REF, screen_width_cm=5e-324), (r"screen_width_cm=5e-324 .*must be finite and in "
         r"\[4\.45e-308, 1\.798e\+308\] px/deg.* got inf")),
        (dict(REF, distance_cm=1e-300, screen_width_cm=1e10, screen_width_px=1),
         r"distance_cm=1e-300, .*must be finite and in \[4\.45e-308.* got 1\.745.*e-312"),
        (dict(REF, screen_width_px=10**400), r"must be finite and in .* got inf"),  # no OverflowError
        (dict(REF, distance_cm=1e300, screen_width_cm=1e-9, screen_width_px=1),
         r"the ppd of distance_cm=1e\+300.* got inf"),
        (dict(REF, distance_cm=1e300, screen_width_cm=1e-10, screen_width_px=1),  # 1.7e308 whose
         r"screen_width_cm=1e-10 .* got inf"),  # intermediate product overflows: refused too
    ],
)
def test_geometry_beyond_float64_is_refused_naming_the_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ViewingGeometry(**kwargs)


@pytest.mark.parametrize("ppd", [5e-324, 1e-310, 2.2250738585072014e-308, 4e-308])
def test_ppd_whose_nyquist_is_not_a_normal_number_is_refused(ppd):
    match = rf"ppd must be finite and in \[4\.45e-308, 1\.798e\+308\] px/deg, so that it and its Nyquist .* got {ppd!r}"
    with pytest.raises(ValueError, match=match):
        ViewingGeometry.from_ppd(ppd)
    with pytest.raises(ValueError, match=match):
        as_ppd(ppd)  # every function taking ppd as a number (filters, noise, spectrum)


def test_extreme_but_representable_geometries_keep_working():
    assert ViewingGeometry.from_ppd(4.5e-308).nyquist_cpd == 2.25e-308
    assert ViewingGeometry.from_ppd(1e308).nyquist_cpd == 5e307
    g = ViewingGeometry(1e6, 1e-3, 10**9)  # a far, tiny, dense screen: ppd ~ 1.7e20
    assert g.ppd == pytest.approx(10**9 / 1e-3 * 2e6 * math.tan(math.radians(0.5)), rel=1e-15)
    assert all(math.isfinite(x) for x in g.to_dict().values() if isinstance(x, float))


@pytest.mark.parametrize(
    "argv",
    [
        ["noise", "--size-px", "32", "32", "--band-cpd", "1", "2", "--out", "{d}/x.npy"],
        ["spectrum", "{d}/img.npy"],
        ["flow", "{d}/img.npy", "{d}/img.npy", "--fps", "60"],
    ],
)
@pytest.mark.parametrize(
    ("geometry", "match"),
    [
        (["--ppd", "1e-310"], (r"--ppd: the viewing geometry gives ppd 1e-310 px/deg, which is not a usable "
         r"finite number > 0 \(it cannot be computed in float64; allowed: \[4\.45e-308, 1\.798e\+308\] px/deg\)")),
        (["--distance-cm", "1e308", "--screen-width-cm", "50", "--screen-width-px", "1920"],
         r"--distance-cm, --screen-width-cm and --screen-width-px: the viewing geometry gives ppd inf px/deg"),
        (["--distance-cm", "57", "--screen-width-cm", "5e-324", "--screen-width-px", "1920"],
         r"the viewing geometry gives ppd inf px/deg"),
    ],
)
def test_noise_spectrum_and_flow_refuse_geometries_beyond_float64(tmp_path, capsys, argv, geometry, match):
    """`spectrum` printed "inf cpd ... inf octaves" with exit 0 and `flow` reported deg/s of a
    subnormal ppd; they share `geometry_from_args` with `geometry` and `design` now."""
    import re

    from stimgen.cli import main

    np.save(tmp_path / "img.npy", np.random.default_rng(0).standard_normal((32, 32)))
    assert main([a.format(d=tmp_path) for a in argv] + geometry) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and re.search(match, err), err
    assert not (tmp_path / "x.npy").exists()
