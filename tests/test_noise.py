"""Noise generation: measured spectra match the design in cpd; seeds; records; errors."""

import json

import numpy as np
import pytest

from stimgen import bandpass_noise, power_law_noise, white_noise
from stimgen.cli import main
from stimgen.filters import DoG, LogGaussian
from stimgen.noise import filtered_noise, make_filter, noise_from_record
from stimgen.spectrum import compare_to_design, measure_band, measure_slope, orientation_spectrum

CASES = [
    ("dog", (1, 5), 35.8375, "half_amplitude"),
    ("dog", (1, 4), 35.8375, "half_power"),
    ("dog", (2, 8), 60.0, "half_amplitude"),
    ("dog", (2, 8), 60.0, "half_power"),
    ("dog", (0.5, 3), 20.0, "half_amplitude"),
    ("log_gaussian", (1, 2), 35.8375, "half_amplitude"),
    ("log_gaussian", (1, 2), 35.8375, "half_power"),
    ("log_gaussian", (4, 8), 35.8375, "half_amplitude"),
    ("butterworth", (1, 2), 35.8375, "half_amplitude"),
    ("butterworth", (2, 6), 50.0, "half_power"),
    ("ideal", (1, 2), 35.8375, "half_amplitude"),
    ("ideal", (3, 9), 40.0, "half_power"),
]


@pytest.mark.parametrize(("family", "band", "ppd", "level"), CASES)
def test_measured_spectrum_matches_design(family, band, ppd, level, edge_se):
    # 16 images of 512 x 512: edges within 2 % plus 3 standard errors of the measured edge
    imgs, rec = bandpass_noise(size_px=512, ppd=ppd, band_cpd=band, family=family, level=level,
                               n=16, rng=2024)
    filt = make_filter(family, ppd=ppd, band_cpd=band, level=level)
    if level == "half_amplitude" or family == "ideal":
        np.testing.assert_allclose(rec["design"]["band_cpd"], band, rtol=1e-9)
    m = measure_band(imgs, ppd=ppd)
    c = compare_to_design(m, filt, ppd=ppd, level=level)
    assert c["pass"], c
    for k, edge in zip(("low", "high"), c["design"]["band_cpd"], strict=True):
        assert abs(c["rel_error"][k]) <= 0.02 + 3 * edge_se(m.spectrum, filt, ppd, edge), (k, c["rel_error"])



def test_design_band_is_the_measured_quarter_power_band():
    # the filter's half-amplitude edges are the noise spectrum's 1/4-power points
    imgs, _ = bandpass_noise(size_px=512, ppd=35.8375, band_cpd=(1, 5), n=16, rng=7)
    m = measure_band(imgs, ppd=35.8375)
    lo, hi = m.band_cpd("half_amplitude")
    assert lo == pytest.approx(1.0, rel=0.02) and hi == pytest.approx(5.0, rel=0.02)
    assert m.peak_cpd == pytest.approx(2.294, rel=0.05)


def test_rms_contrast_exact_and_mean_zero():
    imgs, rec = bandpass_noise(size_deg=4, ppd=32, band_cpd=(1, 4), rms_contrast=0.15, n=5, rng=1)
    assert imgs.dtype == np.float32 and imgs.shape == (5, 128, 128)
    np.testing.assert_allclose(imgs.std(axis=(1, 2), dtype=np.float64), 0.15, rtol=1e-6)
    np.testing.assert_allclose(imgs.mean(axis=(1, 2), dtype=np.float64), 0.0, atol=1e-7)
    assert rec["size_deg"] == [4.0, 4.0] and rec["rms_contrast"] == 0.15


def test_seed_reproduces_and_record_regenerates():
    a, rec = bandpass_noise(size_px=96, ppd=30, band_cpd=(2, 8), n=3, rng=99)
    b, _ = bandpass_noise(size_px=96, ppd=30, band_cpd=(2, 8), n=3, rng=99)
    c, _ = bandpass_noise(size_px=96, ppd=30, band_cpd=(2, 8), n=3, rng=100)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    rec = json.loads(json.dumps(rec))  # survives JSON
    assert np.array_equal(noise_from_record(rec), a)
    d, rec2 = bandpass_noise(size_px=96, ppd=30, band_cpd=(2, 8), rng=None)
    assert rec2["seed"]["entropy"] > 0 and np.array_equal(noise_from_record(rec2), d)


def test_seedsequence_spawn_key_regenerates_one_stimulus():
    ss = np.random.SeedSequence(20261124, spawn_key=(3,))
    a, rec = bandpass_noise(size_px=64, ppd=20, band_cpd=(1, 4), rng=ss)
    assert rec["seed"] == {"entropy": 20261124, "spawn_key": [3]}
    assert np.array_equal(noise_from_record(rec), a)


def test_chunking_does_not_change_output():
    filt = DoG(1.5, 4.0)
    a = filtered_noise((64, 64), filt, n=7, rng=5)
    b = filtered_noise((64, 64), filt, n=7, rng=5, chunk_bytes=64 * 64 * 4 * 2)
    assert np.array_equal(a, b)
    single = filtered_noise((64, 64), filt, n=1, rng=5)[0]
    assert np.array_equal(single, a[0])


@pytest.mark.parametrize("kind", ["gaussian", "uniform", "binary", "flat"])
def test_white_noise_variance_one(kind):
    x = white_noise((256, 256), n=4, kind=kind, rng=3, dtype=np.float64)
    assert abs(x.mean()) < 0.01
    assert x.var() == pytest.approx(1.0, rel=0.01)
    if kind == "binary":
        assert set(np.unique(x)) == {-1.0, 1.0}
    if kind == "uniform":
        assert x.max() < np.sqrt(3) and x.min() >= -np.sqrt(3)


def test_flat_noise_has_exactly_flat_amplitude():
    x = white_noise((64, 48), kind="flat", rng=1, dtype=np.float64)
    amp = np.abs(np.fft.fft2(x))
    n = x.size
    assert amp[0, 0] == pytest.approx(0.0, abs=1e-9)
    np.testing.assert_allclose(amp.ravel()[1:], n / np.sqrt(n - 1), rtol=1e-9)
    assert x.var() == pytest.approx(1.0, rel=1e-12)


def test_flat_filtered_noise_has_exactly_the_design_power():
    filt = LogGaussian(0.1, 0.5)
    x = filtered_noise((128, 128), filt, kind="flat", rng=0, dtype=np.float64)
    power = np.abs(np.fft.rfft2(x)) ** 2 / x.size
    h2 = filt.grid((128, 128), dtype=np.float64) ** 2 * x.size / (x.size - 1)
    h2[0, 0] = 0
    np.testing.assert_allclose(power, h2, atol=1e-12)


@pytest.mark.parametrize("alpha", [1.0, 2.0])
def test_power_law_slope(alpha):
    x = power_law_noise((256, 256), alpha, n=8, rng=4)
    assert measure_slope(x) == pytest.approx(alpha, abs=0.05)
    np.testing.assert_allclose(x.std(axis=(1, 2), dtype=np.float64), 0.2, rtol=1e-6)


def test_band_limited_power_law():
    x = power_law_noise((256, 256), 2.0, band_cpd=(1, 8), ppd=32, n=4, rng=4)
    assert measure_slope(x, ppd=32, band_cpd=(1.2, 7)) == pytest.approx(2.0, abs=0.1)
    spec = np.abs(np.fft.fft2(x[0])) ** 2
    f = np.hypot(*np.meshgrid(np.fft.fftfreq(256), np.fft.fftfreq(256))) * 32
    assert spec[(f > 8.2) | (f < 0.9)].max() < 1e-6 * spec.max()


def test_orientation_window_selects_orientation():
    imgs, _ = bandpass_noise(size_px=128, ppd=32, band_cpd=(2, 8), orientation_deg=45,
                             orientation_bandwidth_deg=20, n=4, rng=2)
    ang, power = orientation_spectrum(imgs, ppd=32, band_cpd=(2, 8), n_bins=18)
    assert ang[np.argmax(power)] == pytest.approx(45, abs=10)
    assert power.min() < 1e-3 * power.max()


def test_float64_and_workers():
    a, _ = bandpass_noise(size_px=64, ppd=20, band_cpd=(1, 4), rng=1, dtype=np.float64, workers=2)
    assert a.dtype == np.float64


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"band_cpd": (1, 40)}, r"band_cpd high edge 40 cpd exceeds Nyquist \(18\.\d+ cpd"),
        ({"band_cpd": (1, 2)}, r"minimum is 1\.7647 octaves.*log_gaussian"),
        ({"band_cpd": (0.01, 4)}, r"below one cycle per image"),
        ({"band_cpd": (1, 4), "family": "gabor"}, r"family must be one of 'dog', 'log_gaussian'"),
        ({"band_cpd": (1, 4), "rms_contrast": 0}, r"rms_contrast must be in \(0, 1\]"),
        ({"band_cpd": (1, 4), "rms_contrast": 1.5}, r"rms_contrast must be in \(0, 1\]"),
        ({"band_cpd": (1, 4), "kind": "pink"}, r"kind must be one of"),
        ({"band_cpd": (4, 1)}, r"band_cpd must be \[low, high\] with 0 < low < high"),
        ({"peak_cpd": 3}, r"needs band_cpd=\[low, high\] or both peak_cpd and octaves"),
    ],
)
def test_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        bandpass_noise(size_deg=4, ppd=36.8, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"size_deg": -1}, r"size_deg must be finite and > 0, got -1"),
        ({"size_deg": float("nan")}, r"size_deg must be finite and > 0"),
        ({"size_px": 0}, r"size_px must be an integer >= 1, got 0"),
        ({"size_px": 64, "size_deg": 2}, r"give exactly one of size_px and size_deg"),
    ],
)
def test_bad_sizes(kwargs, match):
    with pytest.raises(ValueError, match=match):
        bandpass_noise(ppd=32, band_cpd=(1, 4), **kwargs)


def test_cli_noise_and_spectrum(tmp_path, capsys):
    out = tmp_path / "n.npy"
    assert main(["noise", "--size-px", "256", "256", "--ppd", "32", "--band-cpd", "1", "4",
                 "--count", "16", "--seed", "5", "--out", str(out), "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)["record"]
    assert rec["design"]["band_cpd"] == pytest.approx([1, 4])
    stack = np.load(out)
    assert stack.shape == (16, 256, 256)
    assert main(["spectrum", str(out), "--ppd", "32", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert set(res) >= {"peak_cpd", "half_amplitude", "half_power", "freq_cpd", "power"}
    lo, hi = res["half_amplitude"]["band_cpd"]
    assert lo == pytest.approx(1, rel=0.05) and hi == pytest.approx(4, rel=0.05)
    # directory output with PNGs, and refusing to overwrite
    d = tmp_path / "set"
    assert main(["noise", "--size-deg", "2", "2", "--ppd", "32", "--family", "pink", "--count", "2",
                 "--png", "8", "--seed", "1", "--out", str(d)]) == 0
    assert sorted(p.name for p in d.iterdir()) == [
        "noise_0000.npy", "noise_0000.png", "noise_0001.npy", "noise_0001.png", "record.json"]
    capsys.readouterr()
    assert main(["noise", "--size-px", "32", "32", "--ppd", "32", "--band-cpd", "1", "4",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "exists" in err and err.count("\n") == 1
    assert np.array_equal(np.load(out), stack)  # nothing lost


def test_cli_noise_error_one_line(capsys):
    assert main(["noise", "--size-px", "64", "64", "--ppd", "32", "--band-cpd", "1", "2",
                 "--out", "x.npy"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("stimgen noise: error:") and "1.7647" in err and err.count("\n") == 1


def test_cli_png_beside_npy_with_independent_recorded_dither(tmp_path, capsys):
    out = tmp_path / "m.npy"
    assert main(["noise", "--size-px", "64", "64", "--ppd", "30", "--band-cpd", "1", "8",
                 "--count", "2", "--png", "8", "--seed", "4", "--rms-contrast", "0.05",
                 "--out", str(out), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert [p.rsplit("/", 1)[-1] for p in res["files"]] == ["m.npy", "m.json", "m_0000.png", "m_0001.png"]
    assert res["record"]["png"]["dither_seed"] == {"entropy": 4, "spawn_key": [1]}
    from stimgen.io import read_image

    stack = np.load(out)
    resid = [read_image(tmp_path / f"m_{i:04d}.png") - (stack[i] + 1) / 2 * 255 for i in range(2)]
    r = np.corrcoef(resid[0].ravel(), resid[1].ravel())[0, 1]
    assert abs(r) < 0.1  # each image has its own dither


def test_band_without_dft_samples_is_an_error():
    with pytest.raises(ValueError, match=r"band_cpd \[2, 2\.05\] holds no DFT frequency of a 64 x 64"):
        bandpass_noise(size_px=64, ppd=30, family="ideal", band_cpd=(2, 2.05))


def test_cli_flag_names_in_errors(capsys):
    assert main(["noise", "--size-px", "64", "64", "--ppd", "30", "--band-cpd", "1", "4",
                 "--count", "0", "--out", "x.npy"]) == 2
    assert "--count must be an integer >= 1, got 0" in capsys.readouterr().err


def test_cli_warns_about_out_of_range_contrast_and_lists_aliases(tmp_path, capsys):
    assert main(["noise", "--size-px", "64", "64", "--ppd", "30", "--band-cpd", "1", "4",
                 "--rms-contrast", "0.9", "--seed", "1", "--out", str(tmp_path / "hi.npy")]) == 0
    err = capsys.readouterr().err
    assert "of the pixels lie outside the display range [-1, 1]" in err and err.count("\n") == 1
    assert main(["noise", "--size-px", "64", "64", "--ppd", "30", "--family", "gabor",
                 "--out", str(tmp_path / "g.npy")]) == 2
    assert "white, pink, brown; got 'gabor'" in capsys.readouterr().err


# -- batches: chunked, threaded, contrast set per chunk, the same bytes -------------------
@pytest.mark.parametrize("kind", ["gaussian", "uniform", "binary", "flat"])
def test_stacks_are_the_same_bytes_for_any_workers_and_chunking(kind, monkeypatch):
    import stimgen.noise as noise

    ref = None
    for workers in (None, 1, 2, 3, -1):
        for chunk in (1, 3 * 40 * 56 * 4, 16 * 2**20):  # one image, 3 images, all at once
            monkeypatch.setattr(noise, "_DEFAULT_CHUNK_BYTES", chunk)
            imgs, rec = bandpass_noise(size_px=(40, 56), ppd=20, band_cpd=(1, 4), family="log_gaussian",
                                       kind=kind, n=11, rng=7, rms_contrast=0.6, workers=workers)
            raw = filtered_noise((40, 56), DoG(1.0, 3.0), n=11, kind=kind, rng=7, workers=workers,
                                 chunk_bytes=chunk)
            got = (imgs.tobytes(), rec["fraction_outside_range"], raw.tobytes())
            ref = got if ref is None else ref
            assert got == ref, (workers, chunk)
    # the images are the single-image draws of one generator, in order, contrast-set one by one
    gen = np.random.default_rng(7)
    one = [bandpass_noise(size_px=(40, 56), ppd=20, band_cpd=(1, 4), family="log_gaussian", kind=kind,
                          rng=gen, rms_contrast=0.6)[0] for _ in range(11)] if kind == "gaussian" else None
    if one is not None:
        assert np.stack(one).tobytes() == ref[0]
    stack = np.frombuffer(ref[0], dtype=np.float32).reshape(11, 40, 56)
    np.testing.assert_allclose(stack.std(axis=(1, 2), dtype=np.float64), 0.6, rtol=1e-6)
    assert ref[1] == np.count_nonzero(np.abs(stack) > 1) / stack.size > 0  # counted per chunk


def test_stack_workers_default_to_the_available_cores_and_are_validated():
    import os

    from stimgen.noise import _stack_workers

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert _stack_workers(None) == cores and _stack_workers(3) == 3
    assert _stack_workers(-1) == os.cpu_count() and _stack_workers(-10_000) == 1
    for bad in (0, 1.5, "2", True):
        with pytest.raises(ValueError, match=r"workers must be a non-zero integer .* got"):
            filtered_noise((8, 8), DoG(1.0, 2.0), n=2, rng=0, workers=bad)


def test_a_failing_chunk_raises_in_the_caller(monkeypatch):
    import stimgen.noise as noise

    calls = []

    def failing(images, *args, **kwargs):
        calls.append(len(images))
        if len(calls) == 3:
            raise ValueError("images 3 is constant")
        return original(images, *args, **kwargs)

    original = noise.set_rms_contrast
    monkeypatch.setattr(noise, "_DEFAULT_CHUNK_BYTES", 1)
    monkeypatch.setattr(noise, "set_rms_contrast", failing)
    with pytest.raises(ValueError, match="images 3 is constant"):
        bandpass_noise(size_px=16, ppd=16, band_cpd=(1, 4), n=9, rng=0, workers=2, synthesis="spatial")
