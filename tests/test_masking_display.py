"""A target in noise inside an aperture, written through a display model: the band is
checked on the noise as the display shows it, and verify takes the decoded files apart."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stimgen import experiment as ex
from stimgen.io import read_image

YAML = """\
name: masked_display
seed: 5
display: {ppd: 35.8375, gamma: {gamma: 2.2, l_min: 0.3, l_max: 120.3}, mean_cd_m2: 60}
stimulus: {size_px: 192, rms_contrast: 0.1}
noise: {family: log_gaussian, band_cpd: [2, 4]}
target: {kind: gabor, sf_cpd: 4, sigma_deg: 0.5, contrast: 0.2}
aperture: {kind: raised_cosine, radius_deg: 1.5, ramp_deg: 0.5}
repeats: 3
conditions:
  - {target.contrast: 0.1}
  - {target.contrast: 0.4}
output: {formats: [npy, mono++, linear8], dither: noisy-bit}
"""


@pytest.fixture(scope="module")
def masked_set(tmp_path_factory):
    d = tmp_path_factory.mktemp("md")
    y = d / "md.yaml"
    y.write_text(YAML)
    m = ex.run_experiment(y, d / "s", jobs=1, progress=False, budget_check=False)
    return d / "s", m


def test_decoded_noise_band_matches_the_float_noise_band(masked_set):
    """Decoded through the display, the noise under the target and the aperture still
    measures its design band: each display file's decoded check passes, and its band is
    within 2 % of the float noise's (a composite with a Gabor and a window would not be)."""
    _, m = masked_set
    assert m["n_pass"] == m["n_stimuli"]
    for e in m["stimuli"]:
        for f in e["files"]:
            if f["format"] == "npy":
                continue
            dec = f["decoded_check"]
            assert dec["pass"] is True, dec
            np.testing.assert_allclose(dec["band_cpd"], e["band_cpd"], rtol=0.02)


def test_masked_display_set_verifies_and_a_flipped_low_bit_is_caught(masked_set, tmp_path):
    import shutil

    root, m = masked_set
    rep = ex.verify_set(root)
    assert rep.ok, rep.failures
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    f = next(f for f in m["stimuli"][0]["files"] if f["format"] == "mono++")
    path = copy / f["file"]
    rgb = read_image(path).copy()
    rgb[10, 10, 1] ^= 1  # the low byte in green
    from stimgen.io import write_png

    path.unlink()
    write_png(path, rgb)
    rep = ex.verify_set(copy)
    assert not rep.ok
    assert any(Path(f["file"]).name in msg for msg in rep.failures)
