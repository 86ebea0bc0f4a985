"""Apertures in degrees, the two ways to window noise, and composition without silent clipping."""

import math

import numpy as np
import pytest

from stimgen import aperture, bandpass_noise, compose, contrast_energy, gabor
from stimgen.apertures import ApertureWarning, apply_aperture, radius_deg_grid


def test_raised_cosine_half_value_inside_and_outside():
    # ppd 200: the pixel 250 px right of the centre lies exactly at radius + ramp / 2
    w = aperture(801, ppd=200, kind="raised_cosine", radius_deg=1.0, ramp_deg=0.5)
    r = radius_deg_grid(801, ppd=200)
    assert w[400, 650] == pytest.approx(0.5, abs=1e-6)
    assert np.all(w[r <= 1.0] == 1.0) and np.all(w[r >= 1.5] == 0.0)
    # the ramp is a raised cosine: symmetric about its half-value point, and monotone
    row = w[400, 400:]
    for d in (10, 25, 49):
        assert row[250 + d] + row[250 - d] == pytest.approx(1.0, abs=1e-12)
    assert np.all(np.diff(row) <= 0)


def test_gaussian_second_moment_is_sigma():
    sigma = 0.7
    w = aperture(512, ppd=60, kind="gaussian", sigma_deg=sigma)
    r = radius_deg_grid(512, ppd=60)
    x = (np.arange(512) - 255.5) / 60
    # second moment along x of the window as a distribution: sigma^2
    m2 = np.sum(w * x[None, :] ** 2) / np.sum(w)
    assert math.sqrt(m2) == pytest.approx(sigma, rel=0.005)
    # radial: E[r^2] = 2 sigma^2
    assert math.sqrt(np.sum(w * r**2) / np.sum(w) / 2) == pytest.approx(sigma, rel=0.005)


def test_disk_area_and_annulus_edges():
    ppd = 50
    d = aperture(301, ppd=ppd, kind="disk", radius_deg=1.2)
    assert set(np.unique(d)) == {0.0, 1.0}
    assert d.sum() / ppd**2 == pytest.approx(math.pi * 1.2**2, rel=0.01)
    a = aperture(401, ppd=100, kind="annulus", inner_deg=0.5, outer_deg=1.2, ramp_deg=0.2)
    row = a[200, 200:]  # radius = column offset / 100 deg
    assert row[0] == 0.0 and row[30] == 0.0  # within inner - ramp
    assert row[40] == pytest.approx(0.5, abs=1e-6) and row[130] == pytest.approx(0.5, abs=1e-6)
    assert np.all(row[50:121] == 1.0) and np.all(row[140:] == 0.0)


def test_center_deg_moves_the_window_right_and_up():
    w = aperture(101, ppd=10, kind="gaussian", sigma_deg=0.5, center_deg=(2.0, 1.0))
    assert np.unravel_index(np.argmax(w), w.shape) == (50 - 10, 50 + 20)


def test_aperture_larger_than_the_image_warns_naming_the_key():
    with pytest.warns(ApertureWarning, match=r"aperture raised_cosine radius_deg=3 reaches beyond the image"):
        aperture(128, ppd=32, kind="raised_cosine", radius_deg=3, ramp_deg=0.5)
    with pytest.warns(ApertureWarning, match=r"aperture gaussian sigma_deg=1 .*3 sigma"):
        aperture(128, ppd=32, kind="gaussian", sigma_deg=1.0)
    with pytest.warns(ApertureWarning, match=r"outer_deg=1\.9"):
        aperture(128, ppd=32, kind="annulus", inner_deg=1, outer_deg=1.9, ramp_deg=0.2)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(kind="square", radius_deg=1), r"kind must be one of 'gaussian', 'raised_cosine', 'disk', 'annulus'; got 'square'"),
        (dict(kind="disk"), r"aperture kind 'disk' takes radius_deg; missing: radius_deg"),
        (dict(kind="disk", radius_deg=1, sigma_deg=1), r"unknown: sigma_deg"),
        (dict(kind="gaussian", sigma_deg=-1), r"sigma_deg must be finite and > 0, got -1"),
        (dict(kind="raised_cosine", radius_deg=1, ramp_deg=-0.1), r"ramp_deg must be finite and >= 0, got -0\.1"),
        (dict(kind="annulus", inner_deg=1, outer_deg=0.5), r"outer_deg \(0\.5\) must be larger than inner_deg \(1\)"),
        (dict(kind="annulus", inner_deg=0.2, outer_deg=0.5, ramp_deg=0.3), r"ramp_deg 0\.3 is wider than inner_deg 0\.2"),
    ],
)
def test_bad_apertures(kwargs, match):
    with pytest.raises(ValueError, match=match):
        aperture(64, ppd=32, **kwargs)


def _noise(n=None):
    return bandpass_noise(size_px=128, ppd=32, band_cpd=(1, 4), family="log_gaussian", rms_contrast=0.2, n=n, rng=3,
                          dtype=np.float64)


def test_window_mode_multiplies_and_states_the_noise_rms():
    img, _ = _noise()
    w = aperture(128, ppd=32, kind="raised_cosine", radius_deg=1.2, ramp_deg=0.4)
    out, rec = apply_aperture(img, w, mode="window")
    np.testing.assert_array_equal(out, img * w)
    assert rec["mode"] == "window" and rec["gain"] == 1.0
    assert rec["rms_contrast"] == pytest.approx(0.2, rel=1e-9)  # the noise's RMS, where w = 1
    assert "before windowing" in rec["rms_where"]


def test_mask_mode_sets_the_rms_within_the_aperture():
    imgs, _ = _noise(n=3)
    w = aperture(128, ppd=32, kind="raised_cosine", radius_deg=1.2, ramp_deg=0.4)
    out, rec = apply_aperture(imgs, w, mode="mask", rms_contrast=0.15)
    inside = w > 0
    for img in out:
        assert math.sqrt(np.mean(img[inside] ** 2)) == pytest.approx(0.15, rel=1e-9)
    assert not np.any(out[:, ~inside])
    assert rec["mode"] == "mask" and len(rec["gain"]) == 3 and rec["aperture_px"] == int(inside.sum())
    np.testing.assert_allclose(out, imgs * w * np.asarray(rec["gain"])[:, None, None], rtol=1e-12)


def test_compose_is_aperture_times_target_plus_noise():
    t, trec = gabor(size_px=128, ppd=32, sf_cpd=4, sigma_deg=0.5, contrast=0.1)
    n, nrec = bandpass_noise(size_px=128, ppd=32, band_cpd=(2, 8), family="log_gaussian", rms_contrast=0.1, rng=5)
    spec = {"kind": "raised_cosine", "radius_deg": 1.4, "ramp_deg": 0.4}
    out, rec = compose((t, trec), (n, nrec), spec)
    w = aperture(128, ppd=32, **spec)
    np.testing.assert_allclose(out - w * t, w * n, atol=1e-6)
    assert rec["target"] == trec and rec["noise"] == nrec and rec["aperture"] == spec
    assert rec["mode"] == "window" and rec["clipped_fraction"] == 0.0
    assert rec["target_energy_deg2"] == pytest.approx(contrast_energy(w * t, 32), rel=1e-6)
    n_rec = rec["noise_psd_deg2"]
    assert n_rec["at_target"] > 0 and rec["e_over_n"] == pytest.approx(rec["target_energy_deg2"] / n_rec["at_target"])


def test_compose_never_clips_silently():
    t, _ = gabor(size_px=64, ppd=32, sf_cpd=2, sigma_deg=0.3, contrast=0.9, dtype=np.float64)
    n, _ = bandpass_noise(size_px=64, ppd=32, band_cpd=(1, 4), family="log_gaussian", rms_contrast=0.3, rng=1,
                          dtype=np.float64)
    with pytest.raises(ValueError, match=r"the composite has [0-9.]+% of its pixels outside \[-1, 1\]"):
        compose(t, n)
    with pytest.warns(UserWarning, match=r"compose clipped [0-9.]+% of the composite's pixels"):
        out, rec = compose(t, n, clip="report")
    frac = np.mean(np.abs(t + n) > 1)
    assert frac > 0 and rec["clipped_fraction"] == pytest.approx(frac) and np.abs(out).max() == 1.0
    kept, rec2 = compose(t, n, clip="none")
    np.testing.assert_array_equal(kept, t + n)
    assert rec2["fraction_outside_range"] == pytest.approx(frac) and rec2["clipped_fraction"] == 0.0


def test_compose_bad_input():
    t, _ = gabor(size_px=64, ppd=32, sf_cpd=2, sigma_deg=0.3, contrast=0.1)
    with pytest.raises(ValueError, match=r"target has shape \(64, 64\), the noise images \(32, 32\)"):
        compose(t, np.zeros((32, 32)))
    with pytest.raises(ValueError, match=r"compose needs a target, noise or both"):
        compose()
    with pytest.raises(ValueError, match=r"an aperture record needs ppd"):
        compose(t, aperture={"kind": "disk", "radius_deg": 0.5})
    with pytest.raises(ValueError, match=r"clip must be one of 'error', 'report', 'none'"):
        compose(t, clip="silent")
