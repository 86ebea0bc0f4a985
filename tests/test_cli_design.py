"""``stimgen design``: JSON keys, the worked example, text mode, warnings, plots, errors."""

from __future__ import annotations

import json
import math
import re

import pytest

from stimgen.cli import main
from stimgen.filters import Butterworth, DoG, LogGaussian, dog_min_octaves

PPD = "35.8375"
SCREEN = ["--distance-cm", "57", "--screen-width-cm", "53.3", "--screen-width-px", "1920"]
KEYS = {
    "family", "level", "ppd", "sigma_center_px", "sigma_surround_px", "sigma_center_deg",
    "sigma_surround_deg", "peak_cpd", "band_cpd", "octaves", "nyquist_cpd", "center_cpd",
}


def run_json(capsys, argv):
    assert main(argv + ["--json"]) == 0
    out, err = capsys.readouterr()
    return json.loads(out), err


def run_error(capsys, argv):
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    return err.strip()


def test_dog_band_worked_example(capsys):
    d, err = run_json(capsys, ["design", "dog", "--band-cpd", "1", "5", "--ppd", PPD])
    assert err == ""
    assert KEYS <= set(d)
    assert d["family"] == "dog" and d["level"] == "half_amplitude" and d["ppd"] == 35.8375
    assert d["sigma_center_px"] == pytest.approx(1.5914, abs=5e-5)
    assert d["sigma_surround_px"] == pytest.approx(5.9167, abs=5e-5)
    assert d["sigma_center_deg"] == pytest.approx(d["sigma_center_px"] / 35.8375, rel=1e-12)
    assert d["peak_cpd"] == pytest.approx(2.294, abs=5e-4)
    assert d["band_cpd"] == pytest.approx([1, 5], rel=1e-9)
    assert d["octaves"] == pytest.approx(math.log2(5), rel=1e-9)
    assert d["nyquist_cpd"] == pytest.approx(35.8375 / 2)
    # the peak is not the geometric centre: both reported
    assert d["center_cpd"] == pytest.approx(math.sqrt(5)) and d["peak_is_center"] is False
    assert d["min_octaves"] == pytest.approx(dog_min_octaves())
    assert d["designed_from"] == "band_cpd" and d["warnings"] == []


def test_dog_all_four_inputs_agree(capsys):
    ref = DoG.from_band((1, 5), ppd=35.8375)
    s1, s2 = ref.sigma_center_px, ref.sigma_surround_px
    runs = [
        ["--band-cpd", "1", "5"],
        ["--peak-cpd", repr(ref.passband().peak_cpp * 35.8375), "--octaves", repr(math.log2(5))],
        ["--sigmas-px", repr(s1), repr(s2)],
        ["--sigmas-deg", repr(s1 / 35.8375), repr(s2 / 35.8375)],
    ]
    for args in runs:
        d, _ = run_json(capsys, ["design", "dog", *args, "--ppd", PPD])
        assert d["band_cpd"] == pytest.approx([1, 5], rel=1e-9)
        assert d["sigma_center_px"] == pytest.approx(s1, rel=1e-9)


def test_geometry_flags_and_half_power(capsys):
    d, _ = run_json(capsys, ["design", "dog", "--band-cpd", "1", "5", "--level", "half_power", *SCREEN])
    assert d["ppd"] == pytest.approx(35.837464, abs=1e-6)
    assert d["level"] == "half_power" and d["band_cpd"] == pytest.approx([1, 5], rel=1e-9)
    assert d["geometry"]["distance_cm"] == 57
    # a narrower ratio than at half amplitude makes the same edges at half power
    assert d["sigma_surround_px"] / d["sigma_center_px"] > 3.718


def test_sigmas_below_one_pixel_warns_on_stderr(capsys):
    d, err = run_json(capsys, ["design", "dog", "--sigmas-px", "0.8", "3", "--ppd", PPD])
    assert err.startswith("stimgen design: warning: sigma_center_px 0.8 < 1 px")
    assert len(err.strip().splitlines()) == 1
    assert d["warnings"] and d["band_cpd"][1] == pytest.approx(DoG(0.8, 3).passband().high_cpp * 35.8375)


def test_sigmas_above_nyquist_and_unbalanced_warn(capsys):
    _, err = run_json(capsys, ["design", "dog", "--sigmas-px", "0.4", "0.8", "--ppd", "20"])
    assert "exceeds Nyquist (10 cpd)" in err and "sigma_center_px 0.4 < 1 px" in err
    assert len(err.strip().splitlines()) == 2
    d, err = run_json(capsys, ["design", "dog", "--sigmas-px", "1", "6", "--weight", "6", "--ppd", PPD])
    assert "not zero-mean: the response at 0 cpd is" in err
    assert d["weight"] == 6 and d["kind"] == "lowpass" and d["dc_gain"] == 1.0
    assert "min_octaves" not in d


def test_log_gaussian(capsys):
    d, _ = run_json(capsys, ["design", "log_gaussian", "--band-cpd", "2", "4", "--ppd", PPD])
    assert d["family"] == "log_gaussian" and d["band_cpd"] == pytest.approx([2, 4], rel=1e-12)
    assert d["peak_cpd"] == pytest.approx(math.sqrt(8)) and d["peak_is_center"] is True
    d, _ = run_json(capsys, ["design", "log_gaussian", "--peak-cpd", "3", "--octaves", "1", "--ppd", PPD])
    assert d["octaves"] == pytest.approx(1) and d["peak_cpd"] == pytest.approx(3)
    assert LogGaussian(d["peak_cpp"], d["sigma_octaves"]).passband().octaves == pytest.approx(1)


def test_butterworth(capsys):
    d, _ = run_json(capsys, ["design", "butterworth", "--band-cpd", "1", "5", "--order", "2", "--ppd", PPD])
    assert d["order"] == 2 and d["band_cpd"] == pytest.approx([1, 5], rel=1e-9)
    assert d["min_octaves"] == pytest.approx(Butterworth.min_octaves(2))
    d, _ = run_json(capsys, ["design", "butterworth", "--cutoffs-cpd", "1", "5", "--ppd", PPD])
    # the cutoffs are half-power points of each factor, not the product's band edges
    assert d["low_cutoff_cpd"] == pytest.approx(1) and d["high_cutoff_cpd"] == pytest.approx(5)
    assert d["band_cpd"][0] < 1 and d["band_cpd"][1] > 5
    d, _ = run_json(capsys, ["design", "butterworth", "--cutoffs-cpd", "0", "5", "--ppd", PPD])
    assert d["kind"] == "lowpass" and d["band_cpd"][1] == pytest.approx(5 * 3 ** (1 / 8))


def test_text_mode(capsys):
    assert main(["design", "dog", "--band-cpd", "1", "5", "--ppd", PPD]) == 0
    out = capsys.readouterr().out
    assert "band:            1.0000 - 5.0000 cpd  (2.3219 octaves)" in out
    assert "sigma centre:    1.5914 px" in out and "sigma surround:  5.9167 px" in out
    assert "peak:            2.2939 cpd" in out
    assert "geometric centre of the edges: 2.2361 cpd (the peak is 2.6% above it)" in out
    assert main(["design", "butterworth", "--band-cpd", "1", "5", "--ppd", PPD]) == 0
    assert "order 4" in capsys.readouterr().out


def test_plot(capsys, tmp_path):
    png = tmp_path / "dog.png"
    d, _ = run_json(capsys, ["design", "dog", "--band-cpd", "1", "5", "--ppd", PPD, "--plot", str(png)])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and d["plot"] == str(png)
    png2 = tmp_path / "lg.png"
    assert main(["design", "log_gaussian", "--band-cpd", "1", "5", "--ppd", PPD, "--plot", str(png2)]) == 0
    assert png2.stat().st_size > 1000


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["design", "dog", "--band-cpd", "2", "4", "--ppd", PPD],
         ("a balanced DoG cannot make a band of 1 octaves at half_amplitude: its minimum is 1.7647 "
          "octaves (the Laplacian-of-Gaussian limit); use family 'log_gaussian' or 'butterworth'")),
        (["design", "dog", "--band-cpd", "1", "20", "--ppd", PPD],
         "band_cpd high edge 20 cpd exceeds Nyquist (17.92 cpd at 35.84 ppd)"),
        (["design", "dog", "--ppd", PPD],
         "design dog needs exactly one of --band-cpd, --peak-cpd with --octaves, --sigmas-px, --sigmas-deg"),
        (["design", "dog", "--band-cpd", "1", "5", "--sigmas-px", "1", "3", "--ppd", PPD],
         "design dog needs exactly one of"),
        (["design", "dog", "--peak-cpd", "3", "--ppd", PPD], "--peak-cpd and --octaves must be given together"),
        (["design", "dog", "--band-cpd", "1", "5", "--weight", "2", "--ppd", PPD],
         "--weight applies only to --sigmas-px or --sigmas-deg"),
        (["design", "dog", "--sigmas-px", "3", "1", "--ppd", PPD],
         "sigma_surround_px (1) must be larger than sigma_center_px (3)"),
        (["design", "dog", "--sigmas-deg", "-1", "1", "--ppd", PPD], "--sigmas-deg must be finite and > 0, got -1"),
        (["design", "dog", "--band-cpd", "1", "5"],
         "give --ppd or --distance-cm, --screen-width-cm and --screen-width-px"),
        (["design", "dog", "--band-cpd", "1", "5", "--ppd", PPD, "--distance-cm", "57"],
         "give either --ppd or the screen flags, not both"),
        (["design", "dog", "--band-cpd", "1", "5", "--ppd", "-3"], "ppd must be finite and > 0, got -3"),
        (["design", "log_gaussian", "--band-cpd", "5", "1", "--ppd", PPD],
         "band_cpd must be [low, high] with 0 < low < high, got [5.0, 1.0]"),
        (["design", "butterworth", "--band-cpd", "2", "3", "--order", "1", "--ppd", PPD],
         "a Butterworth band-pass of order 1 cannot make 0.585 octaves at half_amplitude"),
        (["design", "butterworth", "--cutoffs-cpd", "5", "1", "--ppd", PPD],
         "--cutoffs-cpd must be LO HI with 0 <= LO < HI, got 5 1"),
        (["design", "butterworth", "--band-cpd", "1", "5", "--order", "0", "--ppd", PPD],
         "--order must be an integer between 1 and 100, got 0"),
        (["design"], "choose a family: stimgen design dog|log_gaussian|butterworth"),
    ],
)
def test_errors_are_one_line_exit_2(capsys, argv, match):
    err = run_error(capsys, argv)
    assert err.startswith("stimgen design: error: ")
    assert match in err


def test_design_notch_plot_draws_the_stop_band(capsys, tmp_path):
    """A notch's transfer is plotted (no peak to divide by): the figure is written and the
    printed stop band is the requested one."""
    fig = tmp_path / "notch.png"
    d, err = run_json(capsys, ["design", "notch", "--band-cpd", "2", "4", "--ppd", PPD, "--plot", str(fig)])
    assert fig.stat().st_size > 1000
    assert d["band_cpd"] == pytest.approx([2, 4], rel=1e-9)


def test_run_summary_names_cutoffs_and_stop_bands(capsys, tmp_path):
    """The run's one-line summaries say cutoff for low/high-pass and stop band for a notch,
    each with the measured number, not a band with an 'n/a' edge."""
    exp = tmp_path / "cb.yaml"
    exp.write_text(
        "name: cb\nseed: 3\ndisplay: {ppd: 35.8375}\nstimulus: {size_px: 256, rms_contrast: 0.2}\n"
        "noise: {family: lowpass, cutoff_cpd: 3}\nrepeats: 1\noutput: {formats: [npy]}\n"
        "conditions:\n  - {family: lowpass, cutoff_cpd: 3}\n  - {family: highpass, cutoff_cpd: 3}\n"
        "  - {family: notch, band_cpd: [2, 4]}\n"
    )
    assert main(["run", str(exp), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    lines = [ln for ln in out.splitlines() if "family=" in ln]
    assert "lowpass cutoff 3" in lines[0] and "n/a" not in lines[0]
    assert "highpass cutoff 3" in lines[1] and "n/a" not in lines[1]
    assert re.search(r"stop band \d\.\d+-\d\.\d+ cpd", lines[2]) and "dB" in lines[2]
