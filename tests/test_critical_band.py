"""Critical-band noise: low-pass, high-pass and notch, designed and measured in cpd."""

import json
import math

import numpy as np
import pytest

from stimgen import bandpass_noise
from stimgen.cli import main
from stimgen.energy import measure_critical_band
from stimgen.filters import (
    Butterworth,
    Gaussian,
    GaussianHighpass,
    Notch,
    critical_band_filter,
    filter_from_record,
)
from stimgen.noise import make_filter, noise_from_record
from stimgen.spectrum import compare_to_design, measure_band

PPD = 35.8375


def test_notch_is_power_complementary_and_edges_at_its_own_level():
    for level, frac in (("half_amplitude", 0.5), ("half_power", 2**-0.5)):
        notch = Notch.from_band((2, 4), ppd=PPD, level=level, order=8)
        f = np.geomspace(0.01, 0.5, 500)
        np.testing.assert_allclose(notch.transfer(f) ** 2 + notch.bandpass.transfer(f) ** 2, 1.0, atol=1e-12)
        pb = notch.passband(level)
        assert pb.kind == "notch" and pb.band_cpd(PPD) == pytest.approx((2, 4), rel=1e-9)
        assert notch.transfer(np.array([2 / PPD, 4 / PPD])) == pytest.approx([frac, frac], rel=1e-9)
        assert pb.center_cpp * PPD == pytest.approx(math.sqrt(8), rel=1e-12)
    # at half power, notched and band-pass noise hold half the power each at the edges
    hp = Notch.from_band((2, 4), ppd=PPD, level="half_power", order=8)
    assert hp.bandpass.transfer(np.array([2 / PPD, 4 / PPD])) ** 2 == pytest.approx([0.5, 0.5], rel=1e-9)


def test_notch_depth_and_edges_measured():
    imgs, rec = bandpass_noise(size_px=512, ppd=PPD, family="notch", band_cpd=(2, 4), order=8,
                               rms_contrast=0.2, n=16, rng=8)
    np.testing.assert_allclose(imgs.std(axis=(1, 2), dtype=np.float64), 0.2, rtol=1e-6)
    filt = make_filter("notch", ppd=PPD, band_cpd=(2, 4), order=8)
    # design: 23.6 dB on average over the central third of an octave (theory)
    c = filt.center_cpp
    f = c * 2 ** np.linspace(-1 / 6, 1 / 6, 2001)
    assert -10 * math.log10(np.mean(filt.transfer(f) ** 2)) == pytest.approx(23.6, abs=0.05)
    m = measure_critical_band(imgs, filt, ppd=PPD)
    assert m["kind"] == "notch" and m["pass"]
    assert m["depth_db"] >= 20.0
    assert m["measured_band_cpd"] == pytest.approx([2, 4], rel=0.02)
    assert rec["design"]["kind"] == "notch" and rec["design"]["band_cpd"] == pytest.approx([2, 4], rel=1e-9)


@pytest.mark.parametrize(
    ("family", "rolloff", "level"),
    [("lowpass", "butterworth", "half_amplitude"), ("lowpass", "gaussian", "half_amplitude"),
     ("highpass", "butterworth", "half_amplitude"), ("highpass", "gaussian", "half_power"),
     ("lowpass", "butterworth", "half_power")],
)
def test_lowpass_and_highpass_cutoffs_measured(family, rolloff, level):
    imgs, rec = bandpass_noise(size_px=512, ppd=PPD, family=family, cutoff_cpd=4, rolloff=rolloff, level=level,
                               rms_contrast=0.2, n=16, rng=4)
    np.testing.assert_allclose(imgs.std(axis=(1, 2), dtype=np.float64), 0.2, rtol=1e-6)
    filt = make_filter(family, ppd=PPD, cutoff_cpd=4, rolloff=rolloff, level=level)
    pb = filt.passband(level)
    assert pb.kind == family
    edge = pb.high_cpp if family == "lowpass" else pb.low_cpp
    assert edge * PPD == pytest.approx(4.0, rel=1e-9)
    m = measure_critical_band(imgs, filt, ppd=PPD, level=level)
    assert m["pass"], m
    got = m["measured_band_cpd"][1 if family == "lowpass" else 0]
    assert got == pytest.approx(4.0, rel=0.02)
    if family == "lowpass":  # the spectrum module's comparison handles low-pass designs too
        assert abs(compare_to_design(measure_band(imgs, ppd=PPD), filt, ppd=PPD, level=level)["rel_error"]["high"]) < 0.03


def test_gaussian_highpass_is_power_complementary_to_the_lowpass():
    f = np.linspace(0, 0.5, 101)
    np.testing.assert_allclose(GaussianHighpass(3.0).transfer(f) ** 2 + Gaussian(3.0).transfer(f) ** 2, 1.0,
                               atol=1e-12)
    hp = critical_band_filter("highpass", ppd=PPD, cutoff_cpd=4)
    lp = critical_band_filter("lowpass", ppd=PPD, cutoff_cpd=4)
    assert isinstance(hp, Butterworth) and isinstance(lp, Butterworth)
    assert hp.transfer(4 / PPD) == pytest.approx(0.5) and lp.transfer(4 / PPD) == pytest.approx(0.5)


def test_records_regenerate_critical_band_noise():
    for kw in (dict(family="notch", band_cpd=(2, 4), order=8), dict(family="highpass", cutoff_cpd=3, rolloff="gaussian")):
        imgs, rec = bandpass_noise(size_px=64, ppd=PPD, n=2, rng=5, **kw)
        np.testing.assert_array_equal(noise_from_record(json.loads(json.dumps(rec, default=str))), imgs)
        fam = kw.pop("family")
        assert filter_from_record(rec["filter"]) == make_filter(fam, ppd=PPD, **kw)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(family="notch", band_cpd=(10, 20)), r"band_cpd high edge 20 cpd exceeds Nyquist \(17\.92 cpd at 35\.84 ppd\)"),
        (dict(family="lowpass", cutoff_cpd=20), r"cutoff_cpd 20 cpd exceeds Nyquist \(17\.92 cpd at 35\.84 ppd\)"),
        (dict(family="highpass", cutoff_cpd=20, rolloff="gaussian"), r"cutoff_cpd 20 cpd exceeds Nyquist"),
        (dict(family="notch", band_cpd=(0.1, 0.2)), r"band low edge 0\.1 cpd is below one cycle per image \(0\.56 cpd"),
        (dict(family="lowpass", cutoff_cpd=0.2), r"cutoff 0\.2 cpd is below one cycle per image"),
        (dict(family="highpass", cutoff_cpd=0.2), r"band low edge 0\.2 cpd is below one cycle per image"),
        (dict(family="lowpass"), r"family 'lowpass' needs cutoff_cpd"),
        (dict(family="lowpass", band_cpd=(1, 2)), r"family 'lowpass' takes cutoff_cpd, not band_cpd"),
        (dict(family="notch", cutoff_cpd=2), r"cutoff_cpd belongs to the families 'lowpass' and 'highpass', not 'notch'"),
        (dict(family="dog", band_cpd=(1, 4), cutoff_cpd=2), r"cutoff_cpd belongs to the families"),
        (dict(family="notch", band_cpd=(2, 4), rolloff="gaussian"), r"power-complementary to a Butterworth"),
        (dict(family="lowpass", cutoff_cpd=2, rolloff="ideal"), r"rolloff must be one of 'butterworth', 'gaussian'"),
    ],
)
def test_bad_critical_band_requests(kwargs, match):
    with pytest.raises(ValueError, match=match):
        bandpass_noise(size_px=64, ppd=PPD, rng=1, **kwargs)


def test_too_shallow_notch_has_no_band():
    # equal cutoffs of order 1: |B| peaks at 1/2, so the notch only falls to 0.866
    shallow = Notch(0.1, 0.1, 1)
    assert shallow.depth == pytest.approx(math.sqrt(0.75))
    with pytest.raises(ValueError, match=r"this notch is only 0\.866 deep .* never falls to half_amplitude"):
        shallow.passband()
    with pytest.raises(ValueError, match=r"never falls to half_power"):
        shallow.passband("half_power")
    # a narrow notch of low order is still designed: its cutoffs spread to reach the level
    narrow = Notch.from_band((2, 2 * 2**0.1), ppd=PPD, order=1)
    assert narrow.passband().band_cpd(PPD) == pytest.approx((2, 2 * 2**0.1), rel=1e-9)


def test_cli_noise_notch_and_lowpass(tmp_path, capsys):
    out = tmp_path / "notch.npy"
    assert main(["noise", "--family", "notch", "--band-cpd", "2", "4", "--size-px", "128", "128",
                 "--ppd", str(PPD), "--seed", "3", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "notch (stop band) 2.000-4.000 cpd (1.000 octaves at half_amplitude)" in text
    rec = json.loads(out.with_suffix(".json").read_text())
    assert rec["family"] == "notch" and rec["order"] == 8 and rec["filter"]["family"] == "notch"
    assert main(["noise", "--family", "lowpass", "--cutoff-cpd", "3", "--rolloff", "gaussian",
                 "--size-px", "64", "64", "--ppd", "30", "--seed", "1", "--out", str(tmp_path / "lp.npy"),
                 "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["record"]["design"]["kind"] == "lowpass" and d["record"]["design"]["band_cpd"][1] == pytest.approx(3)
    assert main(["noise", "--family", "notch", "--band-cpd", "10", "20", "--size-px", "64", "64",
                 "--ppd", str(PPD), "--out", str(tmp_path / "x.npy")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "band_cpd high edge 20 cpd exceeds Nyquist (17.92 cpd" in err


def test_cli_design_critical_band(capsys):
    assert main(["design", "notch", "--band-cpd", "2", "4", "--ppd", str(PPD), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["kind"] == "notch" and d["band_cpd"] == pytest.approx([2, 4], rel=1e-9) and d["order"] == 8
    assert d["center_cpd"] == pytest.approx(math.sqrt(8)) and d["depth"] < 0.06
    assert main(["design", "highpass", "--cutoff-cpd", "4", "--ppd", str(PPD), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["kind"] == "highpass" and d["band_cpd"][0] == pytest.approx(4) and d["requested_family"] == "highpass"
    assert main(["design", "lowpass", "--cutoff-cpd", "4", "--rolloff", "gaussian", "--ppd", str(PPD)]) == 0
    assert "band:            0.0000 - 4.0000 cpd" in capsys.readouterr().out
    assert main(["design", "lowpass", "--band-cpd", "1", "2", "--ppd", str(PPD)]) == 2
    assert "design lowpass needs exactly one of --cutoff-cpd" in capsys.readouterr().err
    assert main(["design", "notch", "--band-cpd", "10", "20", "--ppd", str(PPD)]) == 2
    assert "band_cpd high edge 20 cpd exceeds Nyquist (17.92 cpd at 35.84 ppd)" in capsys.readouterr().err


def test_notch_order_defaults_to_8_and_butterworth_to_4():
    _, rec = bandpass_noise(size_px=64, ppd=PPD, family="notch", band_cpd=(2, 4), rng=1)
    assert rec["order"] == 8 and rec["filter"]["order"] == 8
    _, rec = bandpass_noise(size_px=64, ppd=PPD, family="lowpass", cutoff_cpd=4, rng=1)
    assert rec["order"] == 4 and rec["filter"]["order"] == 4
    _, rec = bandpass_noise(size_px=64, ppd=PPD, family="butterworth", band_cpd=(2, 6), rng=1)
    assert rec["order"] == 4 and rec["filter"]["order"] == 4


@pytest.mark.parametrize(("family", "shift"), [("lowpass", 1.0), ("highpass", 1.0), ("lowpass", 1.1), ("highpass", 0.9)])
def test_compare_to_design_locates_one_sided_edges(family, shift):
    """Low- and high-pass edges are located by fitting the design's shape (no noisy
    reference bin): within 1 % on correct noise, and a 10 % wrong cutoff fails."""
    imgs, _ = bandpass_noise(size_px=256, ppd=PPD, family=family, cutoff_cpd=4 * shift, rolloff="butterworth",
                             rms_contrast=0.2, n=4, rng=11)
    filt = make_filter(family, ppd=PPD, cutoff_cpd=4, rolloff="butterworth")
    res = compare_to_design(measure_band(imgs, ppd=PPD), filt, ppd=PPD, rms_contrast=0.2)
    side = "high" if family == "lowpass" else "low"
    assert res["rel_error"]["peak"] is None
    assert res["rel_error"][side] == pytest.approx(shift - 1, abs=0.01)
    assert res["status"] == ("pass" if shift == 1.0 else "fail")


def test_notch_from_peak_and_octaves_equals_notch_from_band():
    a = make_filter("notch", ppd=PPD, peak_cpd=2 * 2 ** 0.5, octaves=1)
    b = make_filter("notch", ppd=PPD, band_cpd=[2, 4])
    assert a.passband().low_cpp * PPD == pytest.approx(2.0, rel=1e-9)
    assert a.passband().high_cpp == pytest.approx(b.passband().high_cpp, rel=1e-9)
