"""Display models, gamma fits, encodings and predicted display statistics (stimgen.display)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import stimgen
from stimgen.cli import main
from stimgen.display import (
    DisplayModel,
    Encoded,
    contrast_of_luminance,
    decode,
    display_levels,
    encode,
    fit_gamma,
    predict_display_stats,
    read_calibration,
)

LEVELS_17 = np.linspace(0, 255, 17)


def true_display(v):
    """The synthetic display of the acceptance checks: L = 0.3 + 120 (v / 255)^2.2 cd/m^2."""
    return 0.3 + 120.0 * (np.asarray(v, dtype=float) / 255.0) ** 2.2


def measured_table(seed=7):
    """The display measured at 17 levels with multiplicative photometer noise of sd 0.2 %."""
    rng = np.random.default_rng(seed)
    return LEVELS_17, true_display(LEVELS_17) * (1 + 0.002 * rng.standard_normal(17))


GAMMA_DISPLAY = DisplayModel.from_gamma(2.2, 0.3, 120.3)


def test_public_names():
    assert stimgen.DisplayModel is DisplayModel
    assert stimgen.fit_gamma is fit_gamma and stimgen.encode is encode and stimgen.decode is decode


# -- the gamma fit --------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [7, 11, 2026])
def test_gamma_fit_recovers_the_synthetic_display(seed):
    levels, lum = measured_table(seed)
    fit = fit_gamma(levels, lum)
    assert abs(fit.gamma - 2.2) <= 0.01
    assert np.max(np.abs(fit.predict(levels) / lum - 1)) <= 0.005  # the measurements
    every = np.arange(256)
    assert np.max(np.abs(fit.predict(every) / true_display(every) - 1)) <= 0.005  # the truth
    assert fit.l_min_cd_m2 == pytest.approx(0.3, rel=0.01)
    assert fit.l_max_cd_m2 == pytest.approx(120.3, rel=0.005)
    assert fit.residual_max_rel == pytest.approx(np.max(np.abs(fit.fitted_cd_m2 / lum - 1)))
    model = fit.model()
    assert np.allclose(model.luminance(every / 255), fit.predict(every), rtol=1e-12)


def test_gamma_fit_is_exact_on_noiseless_data():
    fit = fit_gamma(LEVELS_17, true_display(LEVELS_17))
    assert fit.gamma == pytest.approx(2.2, abs=1e-6)
    assert fit.offset_cd_m2 == pytest.approx(0.3, rel=1e-6)
    assert fit.residual_rms_cd_m2 < 1e-6


# -- measured tables ------------------------------------------------------------------------
def test_table_model_passes_through_the_measurements_and_stays_monotone():
    levels, lum = measured_table()
    model = DisplayModel.from_measurements(levels, lum)
    assert np.allclose(model.luminance(levels / 255), lum, rtol=1e-13)
    fine = model.luminance(np.linspace(0, 1, 4097))
    assert np.all(np.diff(fine) > 0)
    assert model.l_min_cd_m2 == pytest.approx(lum[0], rel=1e-13)
    assert model.l_max_cd_m2 == pytest.approx(lum[-1], rel=1e-13)
    # between 17 levels PCHIP follows a gamma curve to 3 % near black, 0.6 % above level 64
    low, high = np.arange(16, 64), np.arange(64, 256)
    assert np.max(np.abs(model.luminance(low / 255) / true_display(low) - 1)) < 0.03
    assert np.max(np.abs(model.luminance(high / 255) / true_display(high) - 1)) < 0.006


def test_rgb_tables_add_per_channel():
    levels = LEVELS_17
    weights = np.array([0.2, 0.7, 0.1])
    table = np.column_stack([0.1 + 120 * w * (levels / 255) ** 2.2 for w in weights])
    model = DisplayModel.from_measurements(levels, table)
    assert model.kind == "rgb_table"
    assert np.allclose(model.channel_weights, weights)
    # gray = black + the three increments; white = 0.1 + 120
    assert model.l_min_cd_m2 == pytest.approx(0.1)
    assert model.l_max_cd_m2 == pytest.approx(120.1)
    assert model.luminance_rgb([1.0, 0.0, 0.0]) == pytest.approx(0.1 + 24)
    with pytest.raises(ValueError, match="channel_weights is for a gray table"):
        DisplayModel.from_measurements(levels, table, channel_weights=(1, 1, 1))


def test_non_monotone_table_names_the_first_offending_row():
    levels, lum = measured_table()
    lum = lum.copy()
    lum[5] = lum[4] * 0.99  # row 6 dips
    lum[9] = lum[8]
    with pytest.raises(ValueError, match=r"not monotone.*row 6 \(level 79.6875: .*\) is not above row 5"):
        DisplayModel.from_measurements(levels, lum)
    with pytest.raises(ValueError, match="not monotone"):
        fit_gamma(levels, lum)
    good = true_display(levels)
    rgb = np.column_stack([good, lum, good])
    with pytest.raises(ValueError, match=r"green luminance must increase.*row 6"):
        DisplayModel.from_measurements(levels, rgb)


@pytest.mark.parametrize(
    ("levels", "lum", "match"),
    [
        ([0, 128, 255], [0.3, 30, 120], "at least 5 rows"),
        ([0, 64, 64, 200, 255], [0.3, 5, 6, 80, 120], r"levels must increase strictly: row 3 \(level 64\)"),
        ([10, 64, 128, 200, 255], [0.3, 5, 30, 80, 120], "must span the levels 0 to level_max=255"),
        ([0, 64, 128, 200, 255], [-0.1, 5, 30, 80, 120], r"must be >= 0: row 1"),
        ([0, 64, 128, 200, 255], [0.3, 5, np.nan, 80, 120], "NaN"),
        ([0, 64, 128, 200, 255], [0.3, 5, 30, 80], r"shape \(5,\) or \(5, 3\)"),
    ],
)  # fmt: skip
def test_bad_tables_are_refused(levels, lum, match):
    with pytest.raises(ValueError, match=match):
        DisplayModel.from_measurements(levels, lum)


def test_bad_gamma_models_are_refused():
    with pytest.raises(ValueError, match="l_max must be above l_min"):
        DisplayModel.from_gamma(2.2, 50, 40)
    with pytest.raises(ValueError, match="gamma must be finite and > 0"):
        DisplayModel.from_gamma(0, 0.3, 120)
    with pytest.raises(ValueError, match="channel_weights must be three numbers"):
        DisplayModel.from_gamma(2.2, 0.3, 120, channel_weights=(1, -1, 1))


# -- calibration files ----------------------------------------------------------------------
def test_csv_calibration(tmp_path):
    levels, lum = measured_table()
    path = tmp_path / "monitor.csv"
    rows = "\n".join(f"{float(lv)!r},{float(x)!r}" for lv, x in zip(levels, lum, strict=True))
    path.write_text(f"# photometer readings, 2026-12-01\nlevel,luminance_cd_m2\n{rows}\n")
    model = read_calibration(path)
    assert np.allclose(model.luminance(levels / 255), lum, rtol=1e-13)
    rec = model.to_record()
    from stimgen.io import sha256_file

    assert rec["source"]["sha256"] == sha256_file(path) and rec["kind"] == "table"
    # a dip on the file's line 9 (the 7th data row) is reported at that line
    bad = path.read_text().splitlines()
    lv, _ = bad[8].split(",")
    bad[8] = f"{lv},0.5"
    path.write_text("\n".join(bad) + "\n")
    with pytest.raises(ValueError, match=r"monitor.csv line 9 \(level 95.625: 0.5 cd/m\^2\) is not above monitor.csv line 8"):
        read_calibration(path)


def test_csv_rgb_and_yaml_calibrations(tmp_path):
    levels = LEVELS_17
    table = np.column_stack([0.1 + 120 * w * (levels / 255) ** 2.2 for w in (0.2, 0.7, 0.1)])
    csv = tmp_path / "rgb.csv"
    csv.write_text("level,red_cd_m2,green_cd_m2,blue_cd_m2\n"
                   + "\n".join(",".join(f"{float(x)!r}" for x in (lv, *row)) for lv, row in zip(levels, table, strict=True)))
    assert read_calibration(csv).kind == "rgb_table"
    yml = tmp_path / "gamma.yaml"
    yml.write_text("gamma: 2.2\nl_min: 0.3\nl_max: 120.3\n")
    m = read_calibration(yml)
    assert m.kind == "gamma" and m.luminance(1.0) == pytest.approx(120.3)
    tab = tmp_path / "table.yml"
    tab.write_text(f"levels: {levels.tolist()}\nluminance_cd_m2: {true_display(levels).tolist()}\n")
    assert read_calibration(tab).luminance(0.5) == pytest.approx(true_display(127.5), rel=2e-3)
    odd = tmp_path / "odd.yaml"
    odd.write_text("gama: 2.2\n")
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['gama'\]"):
        read_calibration(odd)
    with pytest.raises(ValueError, match=r"must be \.csv, \.yaml or \.yml"):
        read_calibration(tmp_path / "monitor.txt")


def test_psychopy_is_optional():
    import importlib.util

    if importlib.util.find_spec("psychopy") is not None:
        pytest.skip("psychopy is installed here")
    with pytest.raises(ValueError, match="needs psychopy, which is not installed"):
        DisplayModel.from_psychopy("testMonitor")


# -- encoding: every representable level round-trips exactly --------------------------------
@pytest.mark.parametrize(("method", "bits", "n"), [("linear8", None, 256), ("png16", 10, 1024),
                                                    ("mono++", None, 16384), ("m16", None, 65536),
                                                    ("png16", None, 65536)])  # fmt: skip
def test_every_level_round_trips(method, bits, n):
    top = n - 1
    lum = GAMMA_DISPLAY.luminance(np.arange(n) / top)
    l0 = 60.0
    x = (lum / l0 - 1.0).reshape(1, -1)
    enc = encode(x, GAMMA_DISPLAY, mean_cd_m2=l0, method=method, bits=bits)
    back = decode(enc, GAMMA_DISPLAY)
    assert np.array_equal(back[0], lum)  # exactly the level's luminance, every level


def test_bitstealing_levels_round_trip_and_follow_the_model():
    from stimgen.display import _pseudo_gray

    lum, codes = _pseudo_gray(GAMMA_DISPLAY)
    assert np.all(np.diff(lum) > 0)
    # the levels are the model's luminance of each RGB triple
    assert np.allclose(lum, GAMMA_DISPLAY.luminance_rgb(codes / 255.0), rtol=0, atol=0)
    x = (lum / 60.0 - 1.0).reshape(1, -1)
    enc = encode(x, GAMMA_DISPLAY, mean_cd_m2=60, method="bitstealing")
    assert np.array_equal(enc.values[0], codes)
    assert np.array_equal(decode(enc, GAMMA_DISPLAY)[0], lum)
    # a flipped low bit of any channel changes the luminance shown (and what verify decodes)
    for c in range(3):
        flipped = enc.values.copy()
        flipped[0, 1000, c] ^= 1
        assert decode(flipped, GAMMA_DISPLAY, method="bitstealing")[0, 1000] != lum[1000]


def test_bitstealing_follows_per_channel_tables():
    levels = LEVELS_17
    table = np.column_stack([0.1 + 120 * w * (levels / 255) ** g for w, g in ((0.3, 2.0), (0.6, 2.2), (0.1, 2.4))])
    model = DisplayModel.from_measurements(levels, table)
    d = display_levels(model, "bitstealing")
    assert 1700 <= d["n_levels"] <= 1786
    x = np.linspace(-0.5, 0.5, 64 * 64).reshape(64, 64)
    enc = encode(x, model, mean_cd_m2=40, method="bitstealing")
    shown = decode(enc, model)
    assert np.allclose(shown, model.luminance_rgb(enc.values / 255.0), rtol=0, atol=0)
    # nearest level: off by at most half the largest step there
    assert np.max(np.abs(shown - 40 * (1 + x))) <= 0.5 * d["largest_step_cd_m2"] + 1e-12


def test_bitstealing_on_a_linear_display():
    linear = DisplayModel.from_gamma(1.0, 0.0, 100.0, channel_weights=(0.2126, 0.7152, 0.0722))
    d = display_levels(linear, "bitstealing")
    assert d["n_levels"] >= 1700
    assert d["n_levels"] == 1786  # 7 sub-levels per gray step, 0/+1 scheme
    assert d["largest_step_gray8"] <= 0.45
    assert d["largest_step_gray8"] == pytest.approx(0.4304, abs=1e-9)
    from stimgen.display import _pseudo_gray

    lum, _ = _pseudo_gray(linear)
    sub = np.sort(np.round((lum[lum < 0.99 * 100 / 255] / (100 / 255)), 6))
    assert sub.tolist() == [0.0, 0.0722, 0.2126, 0.2848, 0.7152, 0.7874, 0.9278]


def test_mono_plus_plus_layout_and_round_trip_at_every_14_bit_value():
    n = np.arange(16384)
    lum = GAMMA_DISPLAY.luminance(n / 16383)
    enc = encode((lum / 60 - 1).reshape(128, 128), GAMMA_DISPLAY, mean_cd_m2=60, method="mono++")
    rgb = enc.values.reshape(-1, 3).astype(np.int64)
    word = rgb[:, 0] << 8 | rgb[:, 1]
    assert np.array_equal(word, n << 2)  # the level in the top 14 bits, high byte in red
    assert np.all(rgb[:, 2] == 0) and np.all(word & 3 == 0)
    # the display ignores the lowest 2 bits
    noisy = enc.values.copy()
    noisy[..., 1] |= np.uint8(3)
    assert np.array_equal(decode(noisy, GAMMA_DISPLAY, method="mono++"), decode(enc, GAMMA_DISPLAY))
    assert np.array_equal(decode(enc, GAMMA_DISPLAY).reshape(-1), lum)


def test_m16_layout_and_round_trip_at_every_16_bit_value():
    n = np.arange(65536)
    lum = GAMMA_DISPLAY.luminance(n / 65535)
    enc = encode((lum / 60 - 1).reshape(256, 256), GAMMA_DISPLAY, mean_cd_m2=60, method="m16")
    rgb = enc.values.reshape(-1, 3).astype(np.int64)
    assert np.array_equal(rgb[:, 0] << 8 | rgb[:, 1], n)
    assert np.array_equal(decode(enc, GAMMA_DISPLAY).reshape(-1), lum)
    # one flipped low bit changes the luminance: a 16-bit file carries every bit
    flipped = enc.values.copy()
    flipped[0, 5, 1] ^= 1
    assert not np.array_equal(decode(flipped, GAMMA_DISPLAY, method="m16"), decode(enc, GAMMA_DISPLAY))


def test_overlay_bits_are_refused_on_decode():
    vals = np.zeros((4, 4, 3), dtype=np.uint8)
    vals[0, 0, 2] = 1
    with pytest.raises(ValueError, match="non-zero blue channel at 1 pixel"):
        decode(vals, GAMMA_DISPLAY, method="m16")
    with pytest.raises(ValueError, match="give method="):
        decode(vals, GAMMA_DISPLAY)
    with pytest.raises(ValueError, match="linear8 values must be in 0..255, got 0..300"):
        decode(np.array([[0, 300]]), GAMMA_DISPLAY, method="linear8")
    with pytest.raises(ValueError, match="integer device values"):
        decode(np.zeros((2, 2)), GAMMA_DISPLAY, method="linear8")


# -- physical properties of 8-bit output ----------------------------------------------------
def test_8bit_noisy_bit_shows_the_requested_noise_and_band():
    from stimgen import bandpass_noise
    from stimgen.contrast import set_rms_contrast
    from stimgen.noise import make_filter
    from stimgen.spectrum import compare_to_design, measure_band

    ppd = 32.0
    levels, lum = measured_table()
    display = fit_gamma(levels, lum).model()
    imgs, _ = bandpass_noise(size_px=256, ppd=ppd, band_cpd=(2, 4), family="log_gaussian", n=16, rng=1)
    imgs = set_rms_contrast(imgs, 0.05)
    means, rms, decoded = [], [], []
    for i, img in enumerate(imgs):
        enc = encode(img, display, mean_cd_m2=60, method="linear8", dither="noisy-bit", rng=i)
        assert enc.values.dtype == np.uint8 and enc.clipped_fraction == 0
        s = predict_display_stats(img, enc, display)
        means.append(s["predicted_mean_cd_m2"])
        rms.append(s["predicted_rms_contrast"])
        decoded.append(contrast_of_luminance(decode(enc, display)))
        assert s["distinct_levels"] < 60  # 8 bits: a few dozen levels carry the noise
    assert abs(np.mean(means) / 60 - 1) <= 0.005
    assert abs(np.mean(rms) / 0.05 - 1) <= 0.01
    filt = make_filter("log_gaussian", ppd=ppd, band_cpd=(2, 4))
    res = compare_to_design(measure_band(np.stack(decoded), ppd=ppd), filt, ppd=ppd,
                            tolerance={"edge": 0.02, "peak": 0.05})
    assert res["pass"], res["rel_error"]


def test_rounding_without_dither_loses_low_contrast_and_dither_keeps_it():
    rng = np.random.default_rng(5)
    img = rng.standard_normal((128, 128))
    img *= 0.003 / img.std()  # RMS 0.003: a quarter of an 8-bit step at 60 cd/m^2
    plain = predict_display_stats(img, encode(img, GAMMA_DISPLAY, mean_cd_m2=60), GAMMA_DISPLAY)
    dith = [predict_display_stats(img, encode(img, GAMMA_DISPLAY, mean_cd_m2=60, dither="noisy-bit", rng=k),
                                  GAMMA_DISPLAY)["predicted_mean_cd_m2"] for k in range(4)]  # fmt: skip
    assert plain["distinct_levels"] <= 3
    assert abs(plain["rms_contrast_rel_error"]) > 0.3  # rounding distorts the contrast
    assert abs(plain["contrast_gain_error"]) > 0.1
    gains = [predict_display_stats(img, encode(img, GAMMA_DISPLAY, mean_cd_m2=60, dither="noisy-bit", rng=k),
                                   GAMMA_DISPLAY)["contrast_gain"] for k in range(8)]  # fmt: skip
    assert abs(np.mean(gains) - 1) < 0.03  # the dither shows the pattern at its contrast
    assert abs(np.mean(dith) / 60 - 1) < 2e-4  # the dither is unbiased in luminance
    deep = predict_display_stats(img, encode(img, GAMMA_DISPLAY, mean_cd_m2=60, method="png16"), GAMMA_DISPLAY)
    assert abs(deep["rms_contrast_rel_error"]) < 1e-3 and deep["distinct_levels"] > 100


def test_levels_spanned_by_rms_002_noise_at_60():
    # THEORY.md: on a 0.5-120 cd/m^2 gamma-2.2 display an 8-bit step at 60 is ~0.70 cd/m^2
    theory = DisplayModel.from_gamma(2.2, 0.5, 120)
    d = display_levels(theory, "linear8", mean_cd_m2=60, rms_contrast=0.02)
    assert d["step_at_mean_contrast"] * 60 == pytest.approx(0.70, abs=0.02)
    assert d["levels_spanned"] == 10
    assert display_levels(theory, "bitstealing", mean_cd_m2=60, rms_contrast=0.02)["levels_spanned"] > 60
    assert display_levels(theory, "m16", mean_cd_m2=60, rms_contrast=0.02)["levels_spanned"] > 2500


# -- bad input ------------------------------------------------------------------------------
def test_mean_outside_the_display_is_refused_with_both_numbers():
    with pytest.raises(ValueError, match=r"mean_cd_m2=150 is outside the display's range: it shows 0.3 to 120.3 cd/m\^2"):
        encode(np.zeros((8, 8)), GAMMA_DISPLAY, mean_cd_m2=150)


def test_contrast_the_display_cannot_show_is_refused_with_both_numbers():
    x = np.zeros((8, 8))
    x[0, 0] = 1.2
    with pytest.raises(ValueError, match=r"spans \+0 to \+1.2, but about mean_cd_m2=60 .* shows contrast -0.995 to \+1.005"):
        encode(x, GAMMA_DISPLAY, mean_cd_m2=60)


@pytest.mark.parametrize("method", ["linear8", "png16", "bitstealing", "mono++", "m16"])
def test_encoding_never_wraps(method):
    x = np.array([[-5.0, -1.0, -0.99, 0.0], [0.99, 1.0, 1.004, 5.0]])
    with pytest.raises(ValueError, match="cannot|shows contrast"):
        encode(x, GAMMA_DISPLAY, mean_cd_m2=60, method=method)
    enc = encode(x, GAMMA_DISPLAY, mean_cd_m2=60, method=method, clip=True)
    lum = decode(enc, GAMMA_DISPLAY)
    lo, hi = GAMMA_DISPLAY.l_min_cd_m2, GAMMA_DISPLAY.l_max_cd_m2
    assert lum[0, 0] == lum[0, 1] == pytest.approx(lo)  # -5 and -1: black, not white
    assert lum[1, 3] == pytest.approx(hi) and lum[1, 1] > 59.5  # +5: white, not black
    assert np.all(np.diff(lum.reshape(-1)[[0, 2, 3, 4, 5, 7]]) >= 0)  # order kept
    assert enc.clipped_fraction == pytest.approx(3 / 8)  # -5, -1 (below 0.3 cd/m^2) and +5
    s = predict_display_stats(x, enc, GAMMA_DISPLAY)
    assert s["clipped_fraction"] == pytest.approx(3 / 8)


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="method must be one of 'linear8', 'png16'"):
        encode(np.zeros((4, 4)), GAMMA_DISPLAY, mean_cd_m2=60, method="png8")
    with pytest.raises(ValueError, match="bits for method 'png16' must be 8 to 16, got 20"):
        encode(np.zeros((4, 4)), GAMMA_DISPLAY, mean_cd_m2=60, method="png16", bits=20)
    with pytest.raises(ValueError, match="bits for method 'mono..' must be 14, got 16"):
        encode(np.zeros((4, 4)), GAMMA_DISPLAY, mean_cd_m2=60, method="mono++", bits=16)
    with pytest.raises(ValueError, match="dither must be one of"):
        encode(np.zeros((4, 4)), GAMMA_DISPLAY, mean_cd_m2=60, dither="floyd")


def test_png_files_hold_the_device_values(tmp_path):
    from stimgen.io import read_image

    rng = np.random.default_rng(2)
    x = 0.1 * rng.standard_normal((32, 32))
    for method in ("linear8", "png16", "bitstealing", "mono++", "m16"):
        enc = encode(x, GAMMA_DISPLAY, mean_cd_m2=60, method=method)
        path = tmp_path / f"{method}.png"
        path.write_bytes(enc.png_bytes())
        back = read_image(path)
        assert back.dtype == enc.values.dtype and np.array_equal(back, enc.values)
        assert np.array_equal(decode(back, GAMMA_DISPLAY, method=method), decode(enc, GAMMA_DISPLAY))
    with pytest.raises(ValueError, match="a PNG holds one image"):
        encode(np.stack([x, x]), GAMMA_DISPLAY, mean_cd_m2=60).png_bytes()
    assert isinstance(enc, Encoded) and enc.to_record()["method"] == "m16"


# -- the command line -----------------------------------------------------------------------
def _csv(tmp_path):
    levels, lum = measured_table()
    path = tmp_path / "monitor.csv"
    path.write_text("level,luminance_cd_m2\n" + "\n".join(f"{float(a)!r},{float(b)!r}" for a, b in zip(levels, lum, strict=True)))
    return path


def test_cli_display_fit(tmp_path, capsys):
    path = _csv(tmp_path)
    plot = tmp_path / "fit.png"
    assert main(["display", "fit", str(path), "--json", "--plot", str(plot)]) == 0
    d = json.loads(capsys.readouterr().out)
    assert abs(d["gamma"] - 2.2) <= 0.01 and d["residual_max_rel"] <= 0.005
    assert d["plot"] == str(plot) and plot.stat().st_size > 1000
    assert d["calibration"]["sha256"]
    assert main(["display", "fit", str(path)]) == 0
    out = capsys.readouterr().out
    assert "gamma" in out and "cd/m^2" in out


def test_cli_display_levels(tmp_path, capsys):
    assert main(["display", "levels", "--method", "bitstealing", "--gamma", "1", "--l-min", "0",
                 "--l-max", "100", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["n_levels"] == 1786 and d["largest_step_gray8"] == pytest.approx(0.4304)
    assert main(["display", "levels", "--method", "linear8", "--calibration", str(_csv(tmp_path)),
                 "--mean-cd-m2", "60", "--rms-contrast", "0.02"]) == 0
    out = capsys.readouterr().out
    assert "levels spanned" in out and "smallest step" in out


def test_cli_display_errors_are_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("level,luminance_cd_m2\n0,0.3\n64,5\n128,4\n192,60\n255,120\n")
    assert main(["display", "fit", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bad.csv line 4" in err and err.startswith("stimgen display: error:")
    assert main(["display", "levels", "--method", "m16"]) == 2
    assert "--calibration FILE or --gamma" in capsys.readouterr().err


@pytest.mark.parametrize("method", ["png16", "bitstealing", "m16"])
def test_recorded_statistics_are_rechecked_from_the_values(method):
    from stimgen.display import check_shown_stats, shown_stats

    rng = np.random.default_rng(4)
    x = 0.05 * rng.standard_normal((64, 64))
    enc = encode(x, GAMMA_DISPLAY, mean_cd_m2=60, method=method)
    recorded = predict_display_stats(x, enc, GAMMA_DISPLAY)
    assert {k: recorded[k] for k in shown_stats(enc, GAMMA_DISPLAY)} == shown_stats(enc, GAMMA_DISPLAY)
    assert check_shown_stats(enc.values, GAMMA_DISPLAY, recorded, method=method) is None
    flipped = enc.values.copy()
    i = np.unravel_index(np.argmin(np.abs(x - 0.0)), x.shape)  # a pixel at mid gray
    if method == "png16":
        flipped[i] ^= 1  # the word's lowest bit
    else:
        flipped[(*i, 1)] ^= 1  # the lowest bit of green (m16: the word's lowest bit)
    msg = check_shown_stats(flipped, GAMMA_DISPLAY, recorded, method=method)
    assert msg is not None and "predicted_mean_cd_m2" in msg
    other = DisplayModel.from_gamma(2.0, 0.3, 120.3)
    assert "differs from the recorded" in check_shown_stats(enc.values, other, recorded, method=method)


def test_a_model_is_rebuilt_exactly_from_its_record(tmp_path):
    levels, lum = measured_table()
    rgb = np.column_stack([0.1 + 120 * w * (levels / 255) ** 2.2 for w in (0.2, 0.7, 0.1)])
    yml = tmp_path / "m.yaml"
    yml.write_text("gamma: 2.4\nl_min: 0.2\nl_max: 95\nchannel_weights: [0.3, 0.6, 0.1]\n")
    models = [GAMMA_DISPLAY, DisplayModel.from_measurements(levels, lum),
              DisplayModel.from_measurements(levels, rgb), read_calibration(yml)]
    u = np.linspace(0, 1, 1001)
    rgb_u = np.random.default_rng(0).random((100, 3))
    for m in models:
        rec = json.loads(json.dumps(m.to_record()))  # through a manifest
        again = DisplayModel.from_record(rec)
        assert again.kind == m.kind and again.to_record() == rec
        assert np.array_equal(again.luminance(u), m.luminance(u))
        assert np.array_equal(again.luminance_rgb(rgb_u), m.luminance_rgb(rgb_u))
    assert DisplayModel.from_record(models[3].to_record()).source["sha256"]
    with pytest.raises(ValueError, match="lacks the field 'gamma'"):
        DisplayModel.from_record({"kind": "gamma", "l_min_cd_m2": 0.3})
    with pytest.raises(ValueError, match="must be a display model's record"):
        DisplayModel.from_record({"kind": "crt"})
