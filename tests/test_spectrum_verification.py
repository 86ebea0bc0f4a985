"""Spectral verification: unbiased edges on the DFT radii, the periodogram test, measurability.

Exact-spectrum noise (``kind="flat"``) leaves only measurement error, so the measured edges
and peak must equal the design; Gaussian noise checks the false-alarm rate of the test.
"""

import numpy as np
import pytest

import stimgen
from stimgen.filters import filter_from_record
from stimgen.noise import make_filter
from stimgen.spectrum import (
    check_measurable,
    compare_to_design,
    measurability,
    measure_band,
    orientation_spectrum,
    periodogram_test,
    radial_spectrum,
)


def _flat(family, size, ppd, band, level="half_amplitude", n=1):
    imgs, rec = stimgen.bandpass_noise(size_px=size, ppd=ppd, band_cpd=band, family=family, level=level,
                                       kind="flat", n=n, rng=1, dtype=np.float64)
    return imgs, filter_from_record(rec["filter"])


def test_issue_repro_low_edge_at_two_cycles_per_image():
    imgs, rec = stimgen.bandpass_noise(size_px=128, ppd=32, band_cpd=(0.5, 1.0), family="log_gaussian",
                                       kind="flat", n=4, rng=1)
    m = measure_band(imgs, ppd=32)
    assert m.band_cpd() == pytest.approx((0.5, 1.0), rel=0.01)  # was (0.555, 1.050)
    assert m.peak_cpd == pytest.approx(0.5**0.5, rel=0.01)  # was 0.787
    c = compare_to_design(m, filter_from_record(rec["filter"]), ppd=32)
    assert c["pass"] is True and c["status"] == "pass"
    assert compare_to_design(m, filter_from_record(rec["filter"]), ppd=32, kind="flat")["pass"] is True


CASES = [  # family, size_px, ppd, low edge in cycles/image, high/low
    (fam, size, ppd, k, ratio)
    for fam, ratio in (("dog", 4.0), ("log_gaussian", 2.0), ("butterworth", 2.5), ("ideal", 2.0))
    for size, ppd in ((100, 20.0), (128, 37.3))
    for k in (2, 3, 4, 6, 10)
]


@pytest.mark.parametrize("level", ["half_amplitude", "half_power"])
@pytest.mark.parametrize(("family", "size", "ppd", "k", "ratio"), CASES)
def test_flat_noise_edges_and_peak_match_design(family, size, ppd, k, ratio, level):
    lo = k * ppd / size
    hi = lo * ratio
    if hi >= ppd / 2 * 0.95:
        pytest.skip("band beyond Nyquist for this size")
    imgs, filt = _flat(family, size, ppd, (lo, hi), level)
    m = measure_band(imgs, ppd=ppd)
    c = compare_to_design(m, filt, ppd=ppd, level=level, rms_contrast=0.2)
    assert c["status"] == "pass", c["reason"]
    tol = 0.01 if k >= 3 else 0.02
    assert abs(c["rel_error"]["low"]) <= tol and abs(c["rel_error"]["high"]) <= tol, c["rel_error"]
    if family != "ideal":
        assert abs(c["rel_error"]["peak"]) <= tol
        got = m.band_cpd(level)
        pb = filt.passband(level)
        assert got == pytest.approx((pb.low_cpp * ppd, pb.high_cpp * ppd), rel=tol)
    else:  # a brick wall lies between the last DFT radius that passes and the first blocked
        a, b = m.wall_bounds_cpp[level]["low"]
        assert a < filt.low_cpp * (1 + 1e-9) and filt.low_cpp <= b * (1 + 1e-9)


@pytest.mark.parametrize("family", ["dog", "log_gaussian", "butterworth", "ideal"])
@pytest.mark.parametrize("k", [1.2, 1.5])
def test_below_two_cycles_per_image_is_not_measurable_never_fail(family, k):
    size, ppd = 128, 32.0
    lo = k * ppd / size
    imgs, filt = _flat(family, size, ppd, (lo, lo * (4.0 if family == "dog" else 2.0)))
    c = compare_to_design(measure_band(imgs, ppd=ppd), filt, ppd=ppd)
    assert c["status"] == "not_measurable" and c["pass"] is None
    assert "not measurable at this image size" in c["not_measurable"]["low"]
    assert c["rel_error"]["low"] is None and c["test"]["pass"] is True


def test_false_alarm_rate_on_correct_gaussian_stimuli():
    # 120 correct single stimuli: p-values are uniform, so about 5 % fall below 0.05
    p = []
    for family, band in (("log_gaussian", (1.0, 2.0)), ("dog", (1.0, 4.0)), ("butterworth", (1.0, 3.0))):
        imgs, rec = stimgen.bandpass_noise(size_px=64, ppd=16, band_cpd=band, family=family, n=40, rng=11)
        filt = filter_from_record(rec["filter"])
        for img in imgs:
            t = compare_to_design(measure_band(img, ppd=16), filt, ppd=16)["test"]
            p.append(t["p_value"])
    p = np.array(p)
    assert np.count_nonzero(p < 0.05) <= 14  # binomial(120, 0.05): P(> 14) < 0.5 %
    assert 0.3 < np.mean(p < 0.5) < 0.7
    assert np.count_nonzero(p < 1e-3) <= 2


@pytest.mark.parametrize("kind", ["gaussian", "flat"])
def test_wrong_stimuli_fail(kind):
    imgs, rec = stimgen.bandpass_noise(size_px=256, ppd=32, band_cpd=(1.0, 2.0), family="log_gaussian",
                                       kind=kind, rng=5)
    m = measure_band(imgs, ppd=32)
    right = filter_from_record(rec["filter"])
    assert compare_to_design(m, right, ppd=32, rms_contrast=0.2, kind=kind)["status"] == "pass"
    shifted = make_filter("log_gaussian", ppd=32, band_cpd=(1.1, 2.2))
    other = make_filter("butterworth", ppd=32, band_cpd=(1.0, 2.0))
    for filt, contrast in ((shifted, 0.2), (other, 0.2), (right, 0.22)):
        c = compare_to_design(m, filt, ppd=32, rms_contrast=contrast, kind=kind)
        assert c["status"] == "fail" and c["pass"] is False, c["reason"]


def test_identical_frames_count_once():
    # the frames of a drifting pattern have identical spectra: not 8 independent images
    imgs, rec = stimgen.bandpass_noise(size_px=64, ppd=16, band_cpd=(1.0, 3.0), family="log_gaussian", rng=3)
    movie = np.stack([np.roll(imgs, s, axis=1) for s in range(8)])
    t = periodogram_test(radial_spectrum(movie, bins_per_octave=24), filter_from_record(rec["filter"]))
    assert t["n_images_effective"] == pytest.approx(1.0, abs=1e-6)
    assert t["p_value"] == pytest.approx(
        periodogram_test(radial_spectrum(imgs, bins_per_octave=24), filter_from_record(rec["filter"]))["p_value"],
        rel=1e-6)


def test_high_edge_at_nyquist_is_refused_with_both_numbers():
    filt = make_filter("ideal", ppd=32, band_cpd=(4.0, 16.0))  # 16 cpd is Nyquist at 32 ppd
    with pytest.raises(ValueError, match=r"high edge 16 cpd is not below the highest DFT frequency.*16 cpd"):
        check_measurable(filt, (128, 128), 32)
    info = measurability(filt, (128, 128), 32)
    assert info["measurable"] is False and info["refuse"]
    check_measurable(make_filter("ideal", ppd=32, band_cpd=(4.0, 15.0)), (128, 128), 32)  # fine
    # a low edge at 1.5 cycles per image: valid, but not measurable to 3 %
    soft = measurability((0.375, 1.0), (128, 128), 32)
    assert soft["measurable"] is False and not soft["refuse"] and "1.5 cycles per image" in soft["low"]
    with pytest.raises(ValueError, match=r"at or below one cycle per image"):
        check_measurable((0.25, 1.0), (128, 128), 32)


def test_nyquist_band_is_not_a_false_fail():
    imgs, rec = stimgen.bandpass_noise(size_px=64, ppd=32, band_cpd=(4.0, 16.0), family="ideal", rng=2)
    c = compare_to_design(measure_band(imgs, ppd=32), filter_from_record(rec["filter"]), ppd=32)
    assert c["status"] == "not_measurable" and c["pass"] is None and "Nyquist" in c["not_measurable"]["high"]


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: measure_band(np.zeros((0, 64, 64))), r"images is an empty stack of shape \(0, 64, 64\)"),
        (lambda: radial_spectrum(np.ones((16, 16)) * (1 + 1j)), r"images must be a real numeric array"),
        (lambda: measure_band([[1.0, 2.0], [3.0]]), r"images must be a real numeric array"),
        (lambda: measure_band("x.npy"), r"images must be a real numeric array"),
        (lambda: measure_band(np.random.default_rng(0).random((16, 16)) * 1e300),
         r"values up to about .* beyond the float64 range"),
        (lambda: measure_band(np.ones((16, 16)), smooth_octaves="a"), r"smooth_octaves must be a number"),
        (lambda: measure_band(np.ones((16, 16)), smooth_octaves=float("nan")), r"smooth_octaves must be in"),
        (lambda: radial_spectrum(np.ones((16, 16)), bins_per_octave=1e300), r"bins_per_octave must be in"),
        (lambda: radial_spectrum(np.ones((16, 16)), f_min_cpp=0.7), r"f_min_cpp must be in"),
        (lambda: orientation_spectrum(np.ones((16, 16)), n_bins=1e300), r"n_bins must be an integer"),
    ],
)
def test_input_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_large_finite_values_do_not_overflow():
    img, _ = stimgen.bandpass_noise(size_px=64, ppd=16, band_cpd=(1.0, 3.0), family="log_gaussian", rng=4,
                                    dtype=np.float64)
    a, b = measure_band(img, ppd=16), measure_band(img * 1e140, ppd=16)
    assert b.band_cpd() == pytest.approx(a.band_cpd(), rel=1e-9)
    assert np.isfinite(b.octaves())
    tiny = measure_band(img * 1e-140, ppd=16)
    assert tiny.band_cpd() == pytest.approx(a.band_cpd(), rel=1e-9)


def test_oriented_stimulus_needs_the_full_filter():
    imgs, rec = stimgen.bandpass_noise(size_px=128, ppd=32, band_cpd=(1.0, 4.0), family="log_gaussian",
                                       orientation_deg=30, n=20, rng=5)
    full = filter_from_record(rec["filter"])
    radial = make_filter("log_gaussian", ppd=32, band_cpd=(1.0, 4.0))
    for img in imgs:
        m = measure_band(img, ppd=32)
        c = compare_to_design(m, full, ppd=32, rms_contrast=0.2)
        assert c["status"] == "pass", c["reason"]
        # an isotropic design for an oriented stimulus: flagged, never a statistical FAIL
        r = compare_to_design(m, radial, ppd=32)
        assert r["test"]["anisotropic"] and r["test"]["pass"] is None
        assert "orientation window" in r["reason"]
