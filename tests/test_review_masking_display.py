"""A hostile review of the masking and display sections: each test failed before its fix.

* A PNG or display file written beside the ``.npy`` (or, without one, beside the most
  exact display file) must show its image: a changed file whose hash was written into the
  manifest is caught by ``verify``; a clipped pixel of a composite must hold the clip.
* E, N, E / N and the clipped fraction of a composed entry are re-derived from the
  regenerated stimulus (the file cannot show clipped pixels or the noise under an aperture).
* N measured at the target's frequency for oriented noise is measured along the target's
  orientation (as the design's N is), not averaged over every orientation; E / N is null
  when the design N is below the stored values' rounding.
* A Gabor whose pixels miss its closed-form E (aliasing, sub-pixel envelope) is warned about.
* The clipping warning names the display's range when the display clipped.
* Calibration files: a UTF-8 byte-order mark is skipped; gray ramp plus channels is refused.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from stimgen import experiment as ex
from stimgen.io import read_image, sha256_file

MASKED = """\
name: review_masked
seed: 11
display: {ppd: 32}
stimulus: {size_px: 128, rms_contrast: 0.1}
noise: {family: log_gaussian, band_cpd: [2, 4]}
target: {kind: gabor, sf_cpd: 4, sigma_deg: 0.4, contrast: 0.2}
aperture: {kind: raised_cosine, radius_deg: 1.5, ramp_deg: 0.4}
repeats: 1
output: {formats: [npy, png16], figures: false}
"""

DISPLAYED = """\
name: review_displayed
seed: 12
display: {ppd: 32, gamma: {gamma: 2.2, l_min: 0.3, l_max: 120.3}, mean_cd_m2: 60}
stimulus: {size_px: 128, rms_contrast: 0.1}
noise: {family: log_gaussian, band_cpd: [2, 4]}
target: {kind: gabor, sf_cpd: 4, sigma_deg: 0.4, contrast: 0.2}
repeats: 1
output: {formats: [npy, linear8, mono++], dither: noisy-bit, figures: false}
"""

ORIENTED = """\
name: review_oriented
seed: 3
display: {ppd: 32}
stimulus: {size_px: 256, rms_contrast: 0.1}
noise: {family: log_gaussian, peak_cpd: 4, octaves: 1, orientation_deg: 30, orientation_bandwidth_deg: 20}
target: {kind: gabor, sf_cpd: 4, sigma_deg: 0.5, contrast: 0.1, orientation_deg: 30}
conditions:
  - {label: along}
  - {label: across, target.orientation_deg: 120}
repeats: 12
output: {formats: [npy], figures: false}
"""


def run(tmp_path: Path, text: str, name: str) -> tuple[Path, dict]:
    y = tmp_path / f"{name}.yaml"
    y.write_text(text)
    root = tmp_path / name
    m = ex.run_experiment(y, root, jobs=1, progress=False, budget_check=False)
    return root, m


def replace_and_rehash(root: Path, index: int, rel: str, values: np.ndarray) -> None:
    """Write ``values`` into the PNG ``rel`` and its new hash into the manifest, so that only
    a re-measurement can tell the file was changed."""
    from PIL import Image

    Image.fromarray(values).save(root / rel)
    mpath = root / "manifest.json"
    m = json.loads(mpath.read_text())
    for f in m["stimuli"][index]["files"]:
        if f["file"] == rel:
            f["sha256"] = sha256_file(root / rel)
    mpath.write_text(json.dumps(m))


def file_of(entry: dict, fmt: str) -> str:
    return next(f["file"] for f in entry["files"] if f["format"] == fmt)


# -- files beside the npy must show its image ---------------------------------------------
def test_a_png16_beside_the_npy_with_five_percent_more_contrast_is_caught(tmp_path):
    root, m = run(tmp_path, MASKED, "masked")
    assert ex.verify_set(root).ok
    rel = file_of(m["stimuli"][0], "png16")
    lv = read_image(root / rel).astype(np.float64)
    louder = np.clip(np.round((lv - 32767.5) * 1.05 + 32767.5), 0, 65535).astype(np.uint16)
    replace_and_rehash(root, 0, rel, louder)
    rep = ex.verify_set(root)
    assert not rep.ok
    assert any(f"{rel} (png16) does not show the image of" in f for f in rep.failures), rep.failures


@pytest.mark.parametrize("fmt", ["linear8", "mono++"])
def test_a_display_file_mirrored_and_rehashed_is_caught(tmp_path, fmt):
    """Mirrored, a display file has the same mean, RMS, levels and radial spectrum: only a
    comparison with the stimulus itself sees it."""
    root, m = run(tmp_path, DISPLAYED, "displayed")
    assert ex.verify_set(root).ok
    rel = file_of(m["stimuli"][0], fmt)
    values = read_image(root / rel)
    replace_and_rehash(root, 0, rel, np.ascontiguousarray(values[:, ::-1]))
    rep = ex.verify_set(root)
    assert not rep.ok
    assert any(f"{rel} ({fmt}) does not show the image of" in f for f in rep.failures), rep.failures


# -- N at the target's frequency of oriented noise ----------------------------------------
def test_measured_n_of_oriented_noise_is_taken_along_the_target_orientation(tmp_path):
    """The design N is at the target's 2-D frequency; the measured one must be too. Before,
    the radial average (every orientation) read 14 times below the design along the noise's
    orientation, and far above it across."""
    _, m = run(tmp_path, ORIENTED, "oriented")
    along, across = m["conditions"]
    for c in (along, across):
        n = c["noise_psd_deg2"]
        measured, se = n["measured_at_target_mean"], n["measured_at_target_se"]
        design = n["design_in_sector"]
        assert abs(measured - design) <= 4 * se + 1e-3 * n["at_peak"], (c["label"], n)
    n = along["noise_psd_deg2"]
    # the sector the measurement averages over is narrow enough that its design is the
    # design at the target's own frequency (deterministic; the measurement is tested above)
    assert n["design_in_sector"] == pytest.approx(n["at_target"], rel=0.15)
    assert across["noise_psd_deg2"]["measured_at_target_mean"] < 1e-3 * n["at_target"]
    e = m["stimuli"][0]["noise_psd_deg2"]
    assert "orientation" in e["measured_where"]


def test_oriented_noise_set_verifies_and_a_changed_noise_value_is_caught(tmp_path):
    root, m = run(tmp_path, ORIENTED.replace("repeats: 12", "repeats: 1"), "oriented1")
    assert ex.verify_set(root).ok


# -- calibration files --------------------------------------------------------------------
def test_a_calibration_csv_with_a_byte_order_mark_reads_as_without(tmp_path):
    from stimgen.display import read_calibration

    text = (Path(__file__).parents[1] / "experiments" / "calibrated_display.csv").read_text()
    plain, bom = tmp_path / "plain.csv", tmp_path / "bom.csv"
    plain.write_text(text)
    bom.write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode())
    a, b = read_calibration(plain).to_record(), read_calibration(bom).to_record()
    a.pop("source"), b.pop("source")
    assert a == b


def test_e_over_n_is_null_with_a_reason_when_n_is_below_the_stored_values_rounding(tmp_path):
    """Across a narrow orientation window the design N is ~1e-52 deg^2, far below what float32
    values can hold (the measured N there is float rounding, ~1e-19): E / N was 1e49."""
    _, m = run(tmp_path, ORIENTED.replace("repeats: 12", "repeats: 1"), "floor")
    along, across = m["stimuli"]
    assert along["e_over_n"] == pytest.approx(along["target_energy_deg2"] / along["noise_psd_deg2"]["at_target"])
    assert across["noise_psd_deg2"]["at_target"] < 1e-40
    assert across["e_over_n"] is None
    assert "below the rounding noise of the stored float32 values" in across["e_over_n_reason"]
    assert m["conditions"][1]["e_over_n"] is None


CLIPPED = """\
name: review_clipped
seed: 5
display: {ppd: 32}
stimulus: {size_px: 96, rms_contrast: 0.2, max_clipped_fraction: 0.05}
noise: {family: log_gaussian, peak_cpd: 4, octaves: 1}
target: {kind: gabor, sf_cpd: 4, sigma_deg: 0.3, contrast: 0.95}
repeats: 1
output: {formats: [npy], figures: false}
"""


def test_a_clipped_pixel_of_a_composite_changed_and_rehashed_is_caught(tmp_path):
    """Pixels the clip to [-1, 1] touched were left unchecked: the Gabor's clipped peaks could
    be set to anything (here 0) and the set verified."""
    root, m = run(tmp_path, CLIPPED, "clipped")
    assert m["stimuli"][0]["clipped_fraction"] > 0
    assert ex.verify_set(root).ok
    rel = m["stimuli"][0]["file"]
    a = np.load(root / rel)
    a[np.abs(a) >= 1.0] = 0.0
    np.save(root / rel, a)
    mpath = root / "manifest.json"
    man = json.loads(mpath.read_text())
    man["stimuli"][0]["sha256"] = man["stimuli"][0]["files"][0]["sha256"] = sha256_file(root / rel)
    mpath.write_text(json.dumps(man))
    rep = ex.verify_set(root)
    assert any("clipped pixel" in f and "holds 0" in f for f in rep.failures), rep.failures


def test_e_of_a_clipped_composite_edited_in_the_manifest_is_caught(tmp_path):
    """With clipped pixels E and N were said to be "re-checked from the regenerated parts",
    but were not checked at all: E and E / N doubled in the entry and its summary verified."""
    root, _ = run(tmp_path, CLIPPED, "clipped_manifest")
    mpath = root / "manifest.json"
    man = json.loads(mpath.read_text())
    for rec in (man["stimuli"][0], man["conditions"][0]):
        rec["target_energy_deg2"] *= 2
        rec["e_over_n"] *= 2
    mpath.write_text(json.dumps(man))
    rep = ex.verify_set(root)
    assert any("re-derived target_energy_deg2" in f for f in rep.failures), rep.failures


def test_n_measured_under_an_aperture_edited_in_the_manifest_is_caught(tmp_path):
    """With an aperture the noise outside it is not in the file; its measured N was never
    compared with the regenerated noise's."""
    root, _ = run(tmp_path, MASKED, "aperture_manifest")
    mpath = root / "manifest.json"
    man = json.loads(mpath.read_text())
    man["stimuli"][0]["noise_psd_deg2"]["measured_at_target"] *= 3
    man["conditions"][0]["noise_psd_deg2"]["measured_at_target_mean"] *= 3
    mpath.write_text(json.dumps(man))
    rep = ex.verify_set(root)
    assert any("re-derived noise_psd_deg2.measured_at_target" in f for f in rep.failures), rep.failures


def test_the_clipping_warning_names_the_display_range_that_clipped(tmp_path):
    """Clipped by the display (mean_cd_m2 near white), not at +-1: the warning said +-1."""
    text = DISPLAYED.replace("mean_cd_m2: 60", "mean_cd_m2: 100").replace("contrast: 0.2", "contrast: 0.5").replace("rms_contrast: 0.1", "rms_contrast: 0.03")
    with pytest.warns(UserWarning, match=r"beyond the display's range \(-0\.997 to \+0\.203 about mean_cd_m2 = 100\)"):
        run(tmp_path, text, "display_clipped")


@pytest.mark.parametrize("target, key, rel", [
    ("{kind: gabor, sf_cpd: 15.5, sigma_deg: 0.5, contrast: 0.1, phase_deg: 90}", "target.sf_cpd", "+8.48%"),
    ("{kind: gabor, sf_cpd: 4, sigma_deg: 0.02, contrast: 0.1}", "target.sigma_deg", "-11.10%"),
])
def test_a_gabor_whose_pixels_miss_its_closed_form_energy_is_warned_about(tmp_path, target, key, rel):
    """Near Nyquist (aliasing) or narrower than a pixel, the sampled Gabor's E is not the
    closed form that target_energy_design_deg2 records: said, naming the key."""
    text = MASKED.replace("{kind: gabor, sf_cpd: 4, sigma_deg: 0.4, contrast: 0.2}", target).replace(
        "aperture: {kind: raised_cosine, radius_deg: 1.5, ramp_deg: 0.4}\n", "")
    with pytest.warns(UserWarning, match=rf"{key}: the sampled Gabor's E .* by {re.escape(rel)}"):
        _, m = run(tmp_path, text, "sampled")
    e = m["stimuli"][0]
    assert e["target_energy_deg2"] / e["target_energy_design_deg2"] - 1 == pytest.approx(float(rel[:-1]) / 100, abs=1e-4)


DISPLAY_ONLY = """\
name: review_display_only
seed: 5
display: {ppd: 32, gamma: {gamma: 2.2, l_min: 0.3, l_max: 120.3}, mean_cd_m2: 90}
stimulus: {size_px: 96, rms_contrast: 0.1, max_clipped_fraction: 0.2}
noise: {family: log_gaussian, peak_cpd: 4, octaves: 1}
target: {kind: gabor, sf_cpd: 4, sigma_deg: 0.3, contrast: 0.6}
aperture: {kind: disk, radius_deg: 1.2}
repeats: 1
output: {formats: [linear8, m16, png8], dither: noisy-bit, figures: false}
"""


def test_without_npy_files_are_compared_with_the_most_exact_one_where_it_is_not_clipped(tmp_path):
    """The display clips at +0.337 (90 of 120.3 cd/m^2), the png8 preview at +1: the set
    verifies; the png8 preview mirrored and re-hashed does not."""
    root, m = run(tmp_path, DISPLAY_ONLY, "display_only")
    assert m["stimuli"][0]["clipped_fraction"] > 0
    rep = ex.verify_set(root)
    assert rep.ok, rep.failures
    rel = file_of(m["stimuli"][0], "png8")
    replace_and_rehash(root, 0, rel, np.ascontiguousarray(read_image(root / rel)[:, ::-1]))
    rep = ex.verify_set(root)
    assert any(f"{rel} (png8) does not show the image of" in f and "(m16)" in f for f in rep.failures), rep.failures


@pytest.mark.parametrize("name, text", [
    ("both.csv", ("level,luminance_cd_m2,red_cd_m2,green_cd_m2,blue_cd_m2\n0,0.3,0.1,0.1,0.1\n64,9,2,6,1\n"
                 "128,36,8,25,3\n192,82,18,58,6\n255,140,30,100,10\n")),
    ("both.yaml", ("levels: [0, 64, 128, 192, 255]\nluminance_cd_m2: [0.3, 9, 36, 82, 140]\n"
                  "red_cd_m2: [0.1, 2, 8, 18, 30]\ngreen_cd_m2: [0.1, 6, 25, 58, 100]\nblue_cd_m2: [0.1, 1, 3, 6, 10]\n")),
])
def test_a_calibration_with_both_a_gray_ramp_and_channels_is_refused(tmp_path, name, text):
    """The channels were silently ignored (and bit stealing used Rec. 709 weights instead)."""
    from stimgen.display import read_calibration

    p = tmp_path / name
    p.write_text(text)
    with pytest.raises(ValueError, match="luminance_cd_m2.*not both"):
        read_calibration(p)


def test_clipping_hidden_in_the_manifest_is_caught(tmp_path):
    """The clipped fraction of a composite was never re-derived: set to 0 (and the
    condition's clipping with it), a clipped set verified."""
    root, m = run(tmp_path, CLIPPED, "clipped_hidden")
    assert m["stimuli"][0]["clipped_fraction"] > 0
    mpath = root / "manifest.json"
    man = json.loads(mpath.read_text())
    man["stimuli"][0]["clipped_fraction"] = 0.0
    man["conditions"][0]["clipping"].update(max_clipped_fraction=0.0, mean_clipped_fraction=0.0)
    mpath.write_text(json.dumps(man))
    rep = ex.verify_set(root)
    assert any("more than the manifest's clipped_fraction 0.0" in f for f in rep.failures), rep.failures
