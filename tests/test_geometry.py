"""Viewing geometry: reference values (docs/theory.md), conversions and every error."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stimgen.geometry import ViewingGeometry, as_ppd, resolve_shape

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
