"""Energy E and noise spectral density N in deg^2: closed forms, measured from images, units."""

import math

import numpy as np
import pytest

from stimgen import bandpass_noise, contrast_energy, measure_psd, noise_psd
from stimgen.filters import DoG, LogGaussian, Orientation
from stimgen.noise import make_filter

PPD = 35.8375


def test_contrast_energy_units():
    # a 2 x 3 deg patch of contrast 0.5 holds 0.25 * 6 deg^2
    img = np.full((20, 30), 0.5)
    assert contrast_energy(img, 10.0) == pytest.approx(1.5, rel=1e-12)
    stack = np.stack([img, 2 * img])
    np.testing.assert_allclose(contrast_energy(stack, 10.0), [1.5, 6.0], rtol=1e-12)
    # a movie of 2 frames, 1/60 s each: deg^2 * s
    assert contrast_energy(stack, 10.0, frame_duration_s=1 / 60) == pytest.approx(7.5 / 60, rel=1e-12)
    with pytest.raises(ValueError, match=r"frame_duration_s must be finite and > 0, got 0"):
        contrast_energy(stack, 10.0, frame_duration_s=0)
    with pytest.raises(ValueError, match=r"ppd must be finite and > 0, got -1"):
        contrast_energy(img, -1)


def test_white_noise_density_worked_example_and_measured():
    assert noise_psd(None, ppd=PPD, rms_contrast=0.2) == pytest.approx(3.1145e-5, rel=1e-4)
    imgs, rec = bandpass_noise(size_px=512, ppd=PPD, family="white", rms_contrast=0.2, n=16, rng=11)
    m = measure_psd(imgs, PPD)
    assert m.unit == "deg2"
    assert m.mean_deg2 == pytest.approx(3.1145e-5, rel=0.03)
    assert m.at(8.0) == pytest.approx(3.1145e-5, rel=0.03)
    # from the record: the same number, with the exact DFT-grid integral
    assert noise_psd(rec) == pytest.approx(3.1145e-5, rel=1e-4)


@pytest.mark.parametrize(
    ("family", "band"), [("log_gaussian", (2, 4)), ("dog", (1, 5)), ("butterworth", (2, 6))]
)
def test_bandpass_density_at_the_peak_matches_the_design(family, band):
    imgs, rec = bandpass_noise(size_px=512, ppd=PPD, family=family, band_cpd=band, rms_contrast=0.2,
                               n=16, rng=21)
    peak = rec["design"]["peak_cpd"]
    design = noise_psd(rec)
    filt = make_filter(family, ppd=PPD, band_cpd=band)
    # from the filter alone (continuous integral) and from the record (DFT grid): the same
    assert noise_psd(filt, ppd=PPD, rms_contrast=0.2) == pytest.approx(design, rel=1e-3)
    assert noise_psd(filt, ppd=PPD, rms_contrast=0.2, freq_cpd=peak) == pytest.approx(design, rel=1e-3)
    m = measure_psd(imgs, PPD)
    assert m.at(peak) == pytest.approx(design, rel=0.03)
    # as a function of frequency: half an octave either side of the peak too
    for f in (peak * 2**-0.5, peak * 2**0.5):
        assert m.at(f) == pytest.approx(noise_psd(rec, freq_cpd=f), rel=0.05)


def test_density_integrates_to_the_variance():
    # c^2 = integral of N over the frequency plane, for a DoG evaluated on a fine cpd grid
    filt = DoG.from_band((1, 5), ppd=PPD)
    f = np.linspace(0, PPD / 2, 4001)
    n_f = noise_psd(filt, ppd=PPD, rms_contrast=0.3, freq_cpd=f)
    # the DoG is ~0 near Nyquist, so the plane integral is the radial one
    assert np.trapezoid(n_f * 2 * np.pi * f, f) == pytest.approx(0.09, rel=1e-3)


def test_oriented_noise_density_depends_on_direction():
    filt = LogGaussian.from_band((2, 4), ppd=PPD) * Orientation(30, 20)
    along = noise_psd(filt, ppd=PPD, rms_contrast=0.2, freq_cpd=2.83)
    across = noise_psd(filt, ppd=PPD, rms_contrast=0.2, freq_cpd=2.83, orientation_deg=120)
    assert across < 1e-6 * along
    assert noise_psd(filt, ppd=PPD, rms_contrast=0.2) == pytest.approx(along, rel=0.01)
    # narrower in orientation: the same variance is spread over fewer directions
    wide = noise_psd(LogGaussian.from_band((2, 4), ppd=PPD), ppd=PPD, rms_contrast=0.2)
    assert along > 5 * wide


def test_dynamic_noise_density_is_per_frame_duration():
    n = noise_psd(None, ppd=PPD, rms_contrast=0.2, frame_duration_s=1 / 60)
    assert n == pytest.approx(3.1145e-5 / 60, rel=1e-4)
    frames, _ = bandpass_noise(size_px=256, ppd=PPD, family="white", n=8, rng=2)
    m = measure_psd(frames, PPD, frame_duration_s=1 / 60)
    assert m.unit == "s_deg2" and m.mean_deg2 == pytest.approx(n, rel=0.03)


def test_bad_input():
    with pytest.raises(ValueError, match=r"noise_psd needs ppd"):
        noise_psd(None, rms_contrast=0.2)
    with pytest.raises(ValueError, match=r"noise_psd needs rms_contrast"):
        noise_psd(None, ppd=PPD)
    with pytest.raises(ValueError, match=r"freq_cpd 20 cpd at orientation 0 deg lies beyond Nyquist \(17\.92 cpd"):
        noise_psd(None, ppd=PPD, rms_contrast=0.2, freq_cpd=20)
    with pytest.raises(ValueError, match=r"no finite peak .* give freq_cpd"):
        noise_psd(make_filter("power_law", ppd=PPD), ppd=PPD, rms_contrast=0.2)
    m = measure_psd(np.random.default_rng(1).standard_normal((64, 64)), PPD)
    with pytest.raises(ValueError, match=r"freq_cpd must lie within the measured range"):
        m.at(0.01)


def test_e_over_n_is_the_ideal_observer_snr():
    # d' = sqrt(2 E / N): E/N = 126.1 for the worked Gabor in the worked white noise
    e = 3.92699e-3
    n = noise_psd(None, ppd=PPD, rms_contrast=0.2)
    assert e / n == pytest.approx(126.09, rel=1e-3)
    assert math.sqrt(2 * e / n) == pytest.approx(15.88, rel=1e-3)
