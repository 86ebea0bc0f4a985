"""Targets: Gabor energy in deg^2, measured spectral peak and orientation, conventions, records."""

import math

import numpy as np
import pytest

from stimgen import contrast_energy, gabor, grating
from stimgen.apertures import ApertureWarning
from stimgen.filters import Orientation, apply_filter
from stimgen.spectrum import measure_band
from stimgen.targets import target_from_record

PPD = 35.8375


def gabor_energy(c, f, sigma, phase_deg):
    phi = math.radians(phase_deg)
    return c**2 * math.pi * sigma**2 / 2 * (1 + math.cos(2 * phi) * math.exp(-4 * math.pi**2 * f**2 * sigma**2))


def test_gabor_energy_worked_example():
    img, rec = gabor(size_deg=8, ppd=PPD, sf_cpd=4, sigma_deg=0.5, contrast=0.1)
    e = contrast_energy(img, PPD)
    assert e == pytest.approx(gabor_energy(0.1, 4, 0.5, 0), rel=1e-4)
    assert e == pytest.approx(3.92699e-3, rel=1e-5)
    assert rec["energy_deg2"] == pytest.approx(e, rel=1e-12)
    assert rec["energy_formula_deg2"] == pytest.approx(3.92699e-3, rel=1e-5)


@pytest.mark.parametrize("phase", [0, 45, 90, 180])
def test_gabor_energy_depends_on_phase_at_low_frequency(phase):
    # at 0.5 cpd and sigma 0.5 deg the cos(2 phi) term is 8.5 % of E: the phase matters
    img, _ = gabor(size_deg=6, ppd=PPD, sf_cpd=0.5, sigma_deg=0.5, phase_deg=phase, contrast=0.3, dtype=np.float64)
    assert contrast_energy(img, PPD) == pytest.approx(gabor_energy(0.3, 0.5, 0.5, phase), rel=1e-4)


def test_gabor_spectral_peak_and_orientation():
    f0, ori = 4.0, 30.0
    img, _ = gabor(size_px=512, ppd=PPD, sf_cpd=f0, orientation_deg=ori, sigma_deg=2.0, contrast=0.5,
                   dtype=np.float64)
    # radially averaged peak (the spectrum module's own measurement)
    assert measure_band(img, ppd=PPD).peak_cpd == pytest.approx(f0, rel=0.02)
    # the 2-D peak of the zero-padded spectrum: frequency and stripe orientation
    n = 2048
    power = np.abs(np.fft.rfft2(img, s=(n, n))) ** 2
    fy = np.fft.fftfreq(n)[:, None] * np.ones((1, n // 2 + 1))
    fx = np.fft.rfftfreq(n)[None, :] * np.ones((n, 1))
    top = power >= 0.5 * power.max()
    wts = power[top]
    fxm, fym = np.sum(fx[top] * wts) / wts.sum(), np.sum(fy[top] * wts) / wts.sum()
    assert math.hypot(fxm, fym) * PPD == pytest.approx(f0, rel=0.02)
    assert math.degrees(math.atan2(-fym, fxm)) == pytest.approx(ori, abs=1.0)


def test_orientation_convention_matches_the_filter_hub():
    # 0: vertical stripes (rows identical); 90: horizontal stripes (columns identical);
    # 45: stripes from top-left to bottom-right (constant along the down-right diagonal)
    g0, _ = grating(size_px=64, ppd=32, sf_cpd=2, contrast=0.5, dtype=np.float64)
    g90, _ = grating(size_px=64, ppd=32, sf_cpd=2, orientation_deg=90, contrast=0.5, dtype=np.float64)
    g45, _ = grating(size_px=64, ppd=32, sf_cpd=2, orientation_deg=45, contrast=0.5, dtype=np.float64)
    np.testing.assert_allclose(g0, np.broadcast_to(g0[:1], g0.shape), atol=1e-12)
    np.testing.assert_allclose(g90, np.broadcast_to(g90[:, :1], g90.shape), atol=1e-12)
    np.testing.assert_allclose(g45[1:, 1:], g45[:-1, :-1], atol=1e-12)
    assert np.ptp(g45[0]) > 0.9
    # the Orientation window at 45 passes it, the one at -45 stops it
    img, _ = gabor(size_px=256, ppd=32, sf_cpd=3, orientation_deg=45, sigma_deg=1.2, contrast=0.5, dtype=np.float64)
    kept = np.sum(apply_filter(img, Orientation(45, 20)) ** 2) / np.sum(img**2)
    lost = np.sum(apply_filter(img, Orientation(-45, 20)) ** 2) / np.sum(img**2)
    assert kept > 0.95 and lost < 1e-3


def test_phase_is_cosine_at_the_centre():
    kw = dict(size_px=129, ppd=32, sf_cpd=2, sigma_deg=0.5, contrast=0.25, dtype=np.float64)
    assert gabor(**kw)[0][64, 64] == pytest.approx(0.25, abs=1e-12)
    assert gabor(**kw, phase_deg=180)[0][64, 64] == pytest.approx(-0.25, abs=1e-12)
    s, _ = gabor(**kw, phase_deg=90)
    assert s[64, 64] == pytest.approx(0.0, abs=1e-12) and s[64, 65] < 0 < s[64, 63]


def test_center_moves_the_patch_right_and_up():
    img, _ = gabor(size_px=65, ppd=10, sf_cpd=0.0, sigma_deg=0.3, contrast=1.0, center_deg=(1.0, 0.5))
    row, col = np.unravel_index(np.argmax(img), img.shape)
    assert (row, col) == (32 - 5, 32 + 10)


def test_fwhm_is_the_alternative_to_sigma():
    a, ra = gabor(size_px=128, ppd=PPD, sf_cpd=3, sigma_deg=0.5, contrast=0.1)
    b, rb = gabor(size_px=128, ppd=PPD, sf_cpd=3, fwhm_deg=0.5 * 2 * math.sqrt(2 * math.log(2)), contrast=0.1)
    np.testing.assert_allclose(a, b, atol=1e-7)
    assert rb["sigma_deg"] == pytest.approx(0.5, rel=1e-12) and ra["fwhm_deg"] == pytest.approx(1.17741, rel=1e-5)
    # the envelope is at half maximum fwhm/2 from the centre
    env, _ = gabor(size_px=301, ppd=100, sf_cpd=0, fwhm_deg=1.0, contrast=1.0, dtype=np.float64)
    assert env[150, 200] == pytest.approx(0.5, abs=1e-12)


def test_records_regenerate_the_images():
    img, rec = gabor(size_deg=3, ppd=PPD, sf_cpd=4, orientation_deg=-20, phase_deg=33, sigma_deg=0.4,
                     contrast=0.2, center_deg=(0.3, -0.1))
    np.testing.assert_array_equal(target_from_record(rec), img)
    ap = {"kind": "raised_cosine", "radius_deg": 1.0, "ramp_deg": 0.25}
    g, grec = grating(size_deg=3, ppd=PPD, sf_cpd=2, contrast=0.3, aperture=ap, center_deg=(0.2, 0))
    np.testing.assert_array_equal(target_from_record(grec), g)
    assert grec["aperture"]["kind"] == "raised_cosine"


def test_grating_in_an_aperture():
    g, rec = grating(size_px=129, ppd=32, sf_cpd=2, contrast=0.4, dtype=np.float64,
                     aperture={"kind": "disk", "radius_deg": 1.0})
    assert g[64, 64] == pytest.approx(0.4) and g[0, 0] == 0 and np.abs(g).max() <= 0.4
    # outside the disk zero, inside the full grating
    full, _ = grating(size_px=129, ppd=32, sf_cpd=2, contrast=0.4, dtype=np.float64)
    y, x = np.mgrid[:129, :129]
    inside = np.hypot(y - 64, x - 64) <= 32
    np.testing.assert_array_equal(g[inside], full[inside])
    assert not np.any(g[~inside])
    assert rec["energy_deg2"] == pytest.approx(np.sum(g**2) / 32**2)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(sf_cpd=20), r"sf_cpd 20 cpd exceeds Nyquist \(17\.92 cpd at 35\.84 ppd\)"),
        (dict(sigma_deg=-0.5), r"sigma_deg must be finite and > 0, got -0\.5"),
        (dict(sigma_deg=None, fwhm_deg=-1), r"fwhm_deg must be finite and > 0, got -1"),
        (dict(fwhm_deg=1.0), r"give exactly one of sigma_deg .* and fwhm_deg"),
        (dict(contrast=1.5), r"contrast must be in \[-1, 1\], got 1\.5"),
        (dict(orientation_deg=float("nan")), r"orientation_deg must be finite"),
        (dict(dtype=np.int16), r"dtype must be float32 or float64"),
    ],
)
def test_bad_input_names_the_parameter(kwargs, match):
    args = dict(size_px=64, ppd=PPD, sf_cpd=4, sigma_deg=0.5, contrast=0.1)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        gabor(**args)


def test_envelope_cut_off_by_the_image_warns():
    with pytest.warns(ApertureWarning, match=r"gabor sigma_deg=1: 3 sigma \(3 deg\) reaches beyond the image"):
        img, rec = gabor(size_deg=4, ppd=PPD, sf_cpd=4, sigma_deg=1.0, contrast=0.1)
    assert rec["energy_deg2"] < rec["energy_formula_deg2"]


def test_cli_target_gabor_prints_energy(tmp_path, capsys):
    from stimgen.cli import main

    args = ["target", "gabor", "--size-deg", "8", "8", "--ppd", str(PPD), "--sf-cpd", "4", "--sigma-deg", "0.5",
            "--contrast", "0.1"]
    assert main([*args, "--noise-rms", "0.2", "--json"]) == 0
    import json

    d = json.loads(capsys.readouterr().out)
    assert d["energy_deg2"] == pytest.approx(3.92699e-3, rel=1e-5)
    assert d["noise"]["psd"] == pytest.approx(3.1145e-5, rel=1e-4) and d["noise"]["unit"] == "deg2"
    assert d["e_over_n"] == pytest.approx(126.09, rel=1e-3)
    out = tmp_path / "g.npy"
    assert main([*args, "--out", str(out)]) == 0
    assert "energy E:        0.00392699 deg^2" in capsys.readouterr().out
    rec = json.loads(out.with_suffix(".json").read_text())
    np.testing.assert_array_equal(np.load(out), target_from_record(rec))
    assert main([*args, "--out", str(out)]) == 2  # no silent overwrite
    assert "use --force" in capsys.readouterr().err
    assert main([*args[:-2], "--contrast", "0.1", "--sf-cpd", "40"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "sf_cpd 40 cpd exceeds Nyquist (17.92 cpd at 35.84 ppd)" in err
    assert main(["target", "gabor", "--size-px", "64", "64", "--ppd", "32", "--sf-cpd", "2", "--sigma-deg", "-1",
                 "--contrast", "0.1"]) == 2
    assert "sigma_deg must be finite and > 0, got -1" in capsys.readouterr().err


def test_cli_target_grating_in_an_aperture(capsys):
    import json

    from stimgen.cli import main

    assert main(["target", "grating", "--size-px", "129", "129", "--ppd", "32", "--sf-cpd", "2", "--contrast", "0.4",
                 "--aperture", "disk", "--radius-deg", "1", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    g, _ = grating(size_px=129, ppd=32, sf_cpd=2, contrast=0.4, aperture={"kind": "disk", "radius_deg": 1})
    assert d["energy_deg2"] == pytest.approx(np.sum(g.astype(np.float64) ** 2) / 32**2, rel=1e-9)
    assert d["target"]["aperture"]["kind"] == "disk"
    assert main(["target", "grating", "--size-px", "64", "64", "--ppd", "32", "--sf-cpd", "2", "--contrast", "0.4",
                 "--radius-deg", "1"]) == 2
    assert "aperture sizes need --aperture KIND" in capsys.readouterr().err


@pytest.mark.parametrize("center", [(1e308, 0.0), (0.0, -2e6), (float("nan"), 0.0)])
def test_a_centre_too_far_for_an_exact_carrier_phase_is_refused(center):
    """Far centres overflowed the carrier's phase into NaN pixels (or lost its precision):
    refused, naming center_deg and the allowed range, for targets and apertures alike."""
    from stimgen import aperture, gabor, grating

    with pytest.raises(ValueError, match=r"center_deg must be finite .* within \+-1e\+06"):
        gabor(size_px=32, ppd=32, sf_cpd=4, sigma_deg=0.3, contrast=0.1, center_deg=center)
    with pytest.raises(ValueError, match=r"center_deg must be finite .* within \+-1e\+06"):
        grating(size_px=32, ppd=32, sf_cpd=4, contrast=0.1, center_deg=center)
    with pytest.raises(ValueError, match=r"center_deg must be finite"):
        aperture((32, 32), ppd=32, kind="disk", radius_deg=0.5, center_deg=center)
