"""Radial spectra in cpd: definitions checked against naive computations and known signals."""

import numpy as np
import pytest

from stimgen import measure_band, radial_spectrum
from stimgen.filters import DoG, Ideal
from stimgen.spectrum import (
    RadialSpectrum,
    compare_to_design,
    default_tolerance,
    measure_slope,
    orientation_spectrum,
)


def naive_radial(img, edges):
    """Full-plane FFT, annulus means by explicit masks (the reference)."""
    h, w = img.shape
    x = img - img.mean()
    p = np.abs(np.fft.fft2(x)) ** 2 / (h * w)
    f = np.hypot(*np.meshgrid(np.fft.fftfreq(w), np.fft.fftfreq(h)))
    out = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        m = (f >= lo) & (f < hi) & (f > 0)
        if m.any():
            out.append((f[m].mean(), p[m].mean()))
    return np.array(out)


@pytest.mark.parametrize("shape", [(64, 64), (48, 80), (63, 65)])
def test_matches_naive_full_plane_annulus_mean(shape, rng):
    img = rng.standard_normal(shape)
    spec = radial_spectrum(img, bins_per_octave=6)
    f_lo = 1 / min(shape)
    n = int(np.ceil(np.log2(0.5 / f_lo) * 6 - 1e-9))
    edges = f_lo * (0.5 / f_lo) ** (np.arange(n + 1) / n)  # log bins from 1 cycle/image
    edges[0] *= 1 - 1e-9
    edges[-1] = 0.5 * (1 + 1e-12)
    ref = naive_radial(img, edges)
    np.testing.assert_allclose(spec.freq_cpp, ref[:, 0], rtol=1e-12)
    np.testing.assert_allclose(spec.power, ref[:, 1], rtol=1e-10)


def test_white_noise_is_flat_at_its_variance(rng):
    imgs = rng.normal(0, 0.5, (16, 128, 128))
    spec = radial_spectrum(imgs, ppd=30)
    hi = spec.counts * 16 > 2000
    np.testing.assert_allclose(spec.power[hi], 0.25, rtol=0.1)
    assert spec.freq_cpd.max() <= 15.0 + 1e-9  # stops at Nyquist
    assert spec.n_images == 16 and np.all(spec.power_std > 0)


def test_grating_peak_in_cpd():
    ppd, f_cpd = 40.0, 5.0
    y, x = np.mgrid[0:200, 0:200]
    img = np.sin(2 * np.pi * f_cpd / ppd * x)  # exactly 25 cycles per image
    spec = radial_spectrum(img, ppd=ppd, bins_per_octave=24)
    # the peak bin (1/24 octave wide) is the one holding 5 cpd
    assert abs(np.log2(spec.freq_cpd[np.argmax(spec.power)] / f_cpd)) < 1 / 24
    assert measure_band(img, ppd=ppd).peak_cpd == pytest.approx(f_cpd, rel=0.03)


def test_mean_not_sum_keeps_dog_peak():
    # filtered-noise power follows |H|^2: the annulus mean peaks at the filter's peak
    dog = DoG(2.0, 6.0)
    grid = dog.grid((256, 256), dtype=np.float64)
    rng = np.random.default_rng(1)
    noise = np.fft.irfft2(np.fft.rfft2(rng.standard_normal((32, 256, 256))) * grid)
    m = measure_band(noise)
    assert m.peak_cpp == pytest.approx(dog.passband().peak_cpp, rel=0.05)


def test_measure_band_on_exact_spectrum_is_exact():
    # a spectrum equal to |H|^2 on a dense grid: edges are the design's to < 0.3 %
    dog = DoG(1.5, 5.0)
    f = np.geomspace(1e-3, 0.5, 800)
    spec = RadialSpectrum(f, dog.transfer(f) ** 2, np.zeros_like(f), np.full_like(f, 1e6), 1, (512, 512), 10.0)
    m = measure_band(spec, smooth_octaves=0)
    for level in ("half_amplitude", "half_power"):
        pb = dog.passband(level)
        np.testing.assert_allclose(m.edges_cpp[level], (pb.low_cpp, pb.high_cpp), rtol=3e-3)
    assert m.peak_cpp == pytest.approx(dog.passband().peak_cpp, rel=3e-3)
    c = compare_to_design(m, dog, ppd=10.0)
    assert c["pass"] and c["design"]["band_cpd"] == pytest.approx(
        [dog.passband().low_cpp * 10, dog.passband().high_cpp * 10])


def test_compare_flags_a_wrong_design():
    imgs = np.fft.irfft2(np.fft.rfft2(np.random.default_rng(2).standard_normal((16, 256, 256)))
                         * DoG(1.5, 5.0).grid((256, 256), dtype=np.float64))
    m = measure_band(imgs, ppd=30)
    assert compare_to_design(m, DoG(1.5, 5.0), ppd=30)["pass"]
    assert not compare_to_design(m, DoG(1.6, 5.3), ppd=30)["pass"]  # 6 % off
    ideal = Ideal(0.05, 0.1)
    assert not compare_to_design(m, ideal, ppd=30)["pass"]


def test_default_tolerance_scales_with_data():
    assert default_tolerance(16, (512, 512)) == {"edge": 0.02, "peak": 0.05}
    t = default_tolerance(1, (128, 128))
    assert t["edge"] == 0.25 and t["peak"] == 0.5  # capped (the scale factor is 16)
    assert default_tolerance(4, (512, 512))["edge"] == pytest.approx(0.04)


def test_orientation_spectrum_of_grating():
    y, x = np.mgrid[0:128, 0:128]
    vertical = np.sin(2 * np.pi * 8 / 128 * x)  # vertical stripes: orientation 0
    horizontal = np.sin(2 * np.pi * 8 / 128 * y)
    ang, p = orientation_spectrum(vertical, n_bins=18)
    assert abs(ang[np.argmax(p)]) <= 5
    ang, p = orientation_spectrum(horizontal, n_bins=18)
    assert abs(abs(ang[np.argmax(p)]) - 90) <= 5


def test_slope_of_power_law(rng):
    f = np.hypot(*np.meshgrid(np.fft.rfftfreq(256), np.fft.fftfreq(256)))
    f[0, 0] = 1
    imgs = np.fft.irfft2(np.fft.rfft2(rng.standard_normal((4, 256, 256))) * f ** -0.75, s=(256, 256))
    assert measure_slope(imgs) == pytest.approx(1.5, abs=0.05)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: radial_spectrum(np.zeros((4, 4))), r"at least 8 x 8 pixels"),
        (lambda: radial_spectrum(np.zeros((2, 2, 2, 2))), r"images must have 2 or 3 dimensions"),
        (lambda: radial_spectrum(np.full((16, 16), np.nan)), r"NaN or infinite"),
        (lambda: measure_band(np.zeros((16, 16))), r"zero everywhere"),
        (lambda: radial_spectrum(np.ones((16, 16))).freq_cpd, r"no ppd"),
    ],
)
def test_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_orientation_spectrum_refuses_empty_bins_and_reversed_bands():
    img = np.random.default_rng(0).standard_normal((16, 16))
    with pytest.raises(ValueError, match=r"orientation bins hold no DFT sample"):
        orientation_spectrum(img, band_cpp=(0.1, 0.12), n_bins=180)
    with pytest.raises(ValueError, match=r"0 <= low < high"):
        orientation_spectrum(img, band_cpd=(10, 1), ppd=30)


def test_compare_low_pass_and_power_law():
    from stimgen.filters import Gaussian, PowerLaw

    g = Gaussian(3.0)
    f = np.geomspace(1e-3, 0.5, 600)
    spec = RadialSpectrum(f, g.transfer(f) ** 2, np.zeros_like(f), np.full_like(f, 1e6), 1, (512, 512), 10.0)
    c = compare_to_design(measure_band(spec, smooth_octaves=0), g, ppd=10.0)
    assert c["pass"] and c["rel_error"]["peak"] is None and abs(c["rel_error"]["high"]) < 0.01
    with pytest.raises(ValueError, match="measure_slope"):
        compare_to_design(measure_band(spec), PowerLaw(2.0), ppd=10.0)


def test_stimuli_with_spectra_figure(tmp_path):
    from stimgen import bandpass_noise
    from stimgen.noise import make_filter
    from stimgen.plotting import plot_stimuli_with_spectra, save

    imgs, _ = bandpass_noise(size_px=64, ppd=20, band_cpd=(1, 4), n=2, rng=0)
    pink, _ = bandpass_noise(size_px=64, ppd=20, family="power_law", n=2, rng=0)
    fig = plot_stimuli_with_spectra(
        [("dog", imgs, make_filter("dog", ppd=20, band_cpd=(1, 4))), ("pink", pink, None)], ppd=20)
    assert "alpha" in fig.axes[3].get_title()
    assert fig.axes[0].get_xlabel() == "deg" and "cycles/degree" in fig.axes[1].get_xlabel()
    save(fig, tmp_path / "f.png")
    assert (tmp_path / "f.png").stat().st_size > 10_000
