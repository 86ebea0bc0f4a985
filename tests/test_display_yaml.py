"""The display in experiment files: calibration or gamma, mean_cd_m2, display encodings in
output.formats, what the manifest records of them, and verify's re-decoding."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import numpy as np
import pytest

from stimgen import experiment as ex
from stimgen.display import DisplayModel, check_shown_stats, decode
from stimgen.io import png_bytes, read_image, sha256_file

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"

#: L = 0.3 + 120 (v/255)^2.2 cd/m^2, the display of the issue's acceptance tests
GAMMA_DISPLAY = "{ppd: 32, gamma: {gamma: 2.2, l_min: 0.3, l_max: 120.3}, mean_cd_m2: 60}"


def write(folder: Path, text: str, name: str = "exp.yaml") -> Path:
    p = folder / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(textwrap.dedent(text))
    return p


def calibration_csv(folder: Path, name: str = "cal.csv", *, bump_row: int | None = None) -> Path:
    """A 17-row gray ramp of the gamma display (rows 0, 16, ..., 240, 255)."""
    lv = np.array([*range(0, 256, 16), 255])
    lum = 0.3 + 120 * (lv / 255) ** 2.2
    if bump_row is not None:  # make row bump_row (0-based) not above its predecessor
        lum[bump_row] = lum[bump_row - 1] - 0.01
    rows = ["# gray ramp", "level,luminance_cd_m2", *(f"{a},{b:.5f}" for a, b in zip(lv, lum, strict=True))]
    p = folder / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text("\n".join(rows) + "\n")
    return p


def run(y: Path, out: Path) -> dict:
    return ex.run_experiment(y, out, jobs=1, progress=False, budget_check=False)


def files_of(m: dict, fmt: str) -> list[dict]:
    return [f for e in m["stimuli"] for f in e["files"] if f["format"] == fmt]


# =========================================================================================
# Acceptance: 8-bit noisy-bit through YAML
# =========================================================================================
def test_acceptance_8bit_noisy_bit_through_yaml(tmp_path):
    """RMS 0.05 at 60 cd/m^2 on L = 0.3 + 120 (v/255)^2.2, 16 images of 256 px, linear8."""
    y = write(tmp_path, f"""\
    name: eight_bit
    seed: 11
    display: {GAMMA_DISPLAY}
    stimulus: {{size_px: 256, rms_contrast: 0.05}}
    noise: {{family: log_gaussian, peak_cpd: 4, octaves: 1}}
    repeats: 16
    output: {{formats: [npy, linear8], dither: noisy-bit, figures: false}}
    """)
    m = run(y, tmp_path / "s")
    assert m["mean_cd_m2"] == 60
    assert m["display_model"]["kind"] == "gamma" and m["display_model"]["gamma"] == 2.2
    lin = files_of(m, "linear8")
    assert len(lin) == 16
    stats = [f["display"] for f in lin]
    assert all(s["method"] == "linear8" and s["dither"] == "noisy-bit" and s["clipped_fraction"] == 0 for s in stats)
    mean = np.mean([s["predicted_mean_cd_m2"] for s in stats])
    rms = np.mean([s["predicted_rms_contrast"] for s in stats])
    assert abs(mean / 60 - 1) < 0.005
    assert abs(rms / 0.05 - 1) < 0.01
    # the band measured on the decoded luminance (contrast about 60 cd/m^2), averaged
    design = np.array(m["stimuli"][0]["design_band_cpd"])
    bands = np.array([f["decoded_check"]["band_cpd"] for f in lin])
    assert np.all(np.abs(bands.mean(axis=0) / design - 1) < 0.02), (bands.mean(axis=0), design)
    assert all(f["decoded_check"]["status"] == "pass" and f["decoded_check"]["pass"] for f in lin)
    # what the record says is what the file shows
    model = DisplayModel.from_record(m["display_model"])
    for f in lin[:3]:
        vals = read_image(tmp_path / "s" / f["file"])
        assert vals.dtype == np.uint8 and vals.shape == (256, 256)
        assert check_shown_stats(vals, model, f["display"], method="linear8") is None
    assert ex.verify_set(tmp_path / "s").status == "ok"


# =========================================================================================
# Every encoding: run, names, manifest, verify, regenerate
# =========================================================================================
ALL = "[npy, png8, linear8, png16, bitstealing, mono++, m16]"


@pytest.fixture(scope="module")
def all_set(tmp_path_factory):
    d = tmp_path_factory.mktemp("all")
    calibration_csv(d / "cal")
    y = write(d, f"""\
    name: all_encodings
    seed: 3
    display: {{ppd: 16, calibration: cal/cal.csv, mean_cd_m2: 50}}
    stimulus: {{size_px: 64, rms_contrast: 0.1}}
    noise: {{family: log_gaussian}}
    conditions:
      - {{band_cpd: [1, 2]}}
    repeats: 2
    output: {{formats: {ALL}, figures: false}}
    """)
    return d, run(y, d / "s")


def test_every_encoding_round_trips_through_run_and_verify(all_set):
    d, m = all_set
    names = [f["file"].rsplit("/", 1)[1] for f in m["stimuli"][0]["files"]]
    assert names == ["0000.npy", "0000.png", "0000_linear8.png", "0000_linear16.png", "0000_bitstealing.png",
                     "0000_mono14.png", "0000_m16.png"]
    model = DisplayModel.from_record(m["display_model"])
    x = np.load(d / "s" / m["stimuli"][0]["file"]).astype(np.float64)
    for fmt, dtype, shape, atol in (("linear8", "uint8", [64, 64], 0.02), ("png16", "uint16", [64, 64], 2e-4),
                                    ("bitstealing", "uint8", [64, 64, 3], 4e-3), ("mono++", "uint8", [64, 64, 3], 5e-4),
                                    ("m16", "uint8", [64, 64, 3], 2e-4)):  # fmt: skip
        f = m["stimuli"][0]["files"][[g["format"] for g in m["stimuli"][0]["files"]].index(fmt)]
        assert f["dtype"] == dtype and f["shape"] == shape
        vals = read_image(d / "s" / f["file"])
        assert str(vals.dtype) == dtype and list(vals.shape) == shape
        lum = decode(vals, model, method=fmt)
        # the decoded luminance is the request, mean_cd_m2 (1 + x), to the method's step
        assert np.max(np.abs(lum / 50 - 1 - x)) < atol, fmt
        assert f["display"]["predicted_mean_cd_m2"] == pytest.approx(float(lum.mean()), rel=1e-12)
        assert f["decoded_check"]["status"] in ("pass", "fail", "not_measurable")
        assert f["decoded_check"]["band_cpd"] == pytest.approx(m["stimuli"][0]["band_cpd"], rel=0.02)
    # png8 keeps its meaning: signed contrast levels, no display record
    png8 = m["stimuli"][0]["files"][1]
    assert "display" not in png8
    assert np.array_equal(read_image(d / "s" / png8["file"]), np.round((np.clip(x, -1, 1) + 1) / 2 * 255).astype(np.uint8))
    rep = ex.verify_set(d / "s")
    assert rep.status == "ok", rep.failures
    assert rep.n_files == 14
    for i in range(2):
        r = ex.regenerate_stimulus(d / "s", i)
        assert r["match"] and r["on_disk_match"]


def test_manifest_records_the_calibration_file(all_set):
    d, m = all_set
    csv = d / "cal" / "cal.csv"
    assert m["experiment"]["display"]["calibration"] == "cal/cal.csv"  # as given, relative to the YAML
    src = m["display_model"]["source"]
    assert src["sha256"] == sha256_file(csv)
    assert Path(src["path"]) == csv.resolve()
    assert m["display_model"]["kind"] == "table" and len(m["display_model"]["levels"]) == 17
    assert m["experiment"]["display"]["model"] == m["display_model"]


def test_calibration_is_read_relative_to_the_yaml_not_the_working_directory(tmp_path, monkeypatch):
    calibration_csv(tmp_path / "exp")
    y = write(tmp_path / "exp", """\
    name: rel
    seed: 1
    display: {ppd: 16, calibration: cal.csv, mean_cd_m2: 40}
    stimulus: {size_px: 32, rms_contrast: 0.1}
    noise: {family: log_gaussian, band_cpd: [1, 2]}
    output: {formats: [bitstealing], figures: false}
    """)
    monkeypatch.chdir(tmp_path)  # cal.csv is not here
    exp = ex.load_experiment(y)
    assert exp["display"]["model"]["source"]["path"] == str((tmp_path / "exp" / "cal.csv").resolve())


def test_verify_detects_a_changed_calibration_file(tmp_path):
    csv = calibration_csv(tmp_path)
    y = write(tmp_path, """\
    name: cal
    seed: 2
    display: {ppd: 16, calibration: cal.csv, mean_cd_m2: 40}
    stimulus: {size_px: 32, rms_contrast: 0.1}
    noise: {family: log_gaussian, band_cpd: [1, 2]}
    output: {formats: [npy, m16], figures: false}
    """)
    run(y, tmp_path / "s")
    assert ex.verify_set(tmp_path / "s").status == "ok"
    text = csv.read_text().splitlines()
    text[-2] = text[-2].split(",")[0] + ",104.0"  # level 240 re-measured
    csv.write_text("\n".join(text) + "\n")
    rep = ex.verify_set(tmp_path / "s")
    assert rep.status == "corrupt"
    assert any(re.search(r"calibration file .*cal\.csv: sha256 differs", f) for f in rep.failures), rep.failures
    csv.unlink()
    rep = ex.verify_set(tmp_path / "s")
    assert rep.status == "ok" and any("no longer there" in n for n in rep.notes)


# =========================================================================================
# A flipped low bit
# =========================================================================================
@pytest.mark.parametrize("fmt", ["png16", "bitstealing", "m16", "mono++"])
def test_a_flipped_low_bit_is_caught_by_the_statistics_recheck(tmp_path, fmt):
    y = write(tmp_path, f"""\
    name: flip
    seed: 9
    display: {GAMMA_DISPLAY}
    stimulus: {{size_px: 64, rms_contrast: 0.1}}
    noise: {{family: log_gaussian, band_cpd: [2, 4]}}
    output: {{formats: [{fmt}], figures: false}}
    """)
    m = run(y, tmp_path / "s")
    f = m["stimuli"][0]["files"][0]
    path = tmp_path / "s" / f["file"]
    vals = read_image(path).copy()
    if fmt == "png16":
        vals[10, 10] ^= 1
    elif fmt == "bitstealing":
        vals[10, 10, 2] ^= 1  # blue: the smallest luminance step
    else:
        vals[10, 10, 1] ^= 4 if fmt == "mono++" else 1  # green holds the low byte (mono++ ignores its 2 lowest bits)
    path.write_bytes(png_bytes(vals))
    rep = ex.verify_set(tmp_path / "s")
    assert rep.status == "corrupt"
    mine = [x for x in rep.failures if x.startswith(f["file"])]
    assert any("sha256 differs" in x for x in mine)
    # the display re-check ran too, and says which file and which statistic
    assert any(re.search(rf"{re.escape(f['file'])}: {re.escape(fmt)} display statistics: re-decoded predicted_", x)
               for x in mine), mine  # fmt: skip


# =========================================================================================
# png16 without a model is unchanged
# =========================================================================================
def test_png16_without_a_model_keeps_its_meaning(tmp_path):
    y = write(tmp_path, """\
    name: old
    seed: 4
    display: {ppd: 16}
    stimulus: {size_px: 32, rms_contrast: 0.2}
    noise: {family: log_gaussian, band_cpd: [1, 2]}
    output: {formats: [npy, png8, png16], figures: false}
    """)
    m = run(y, tmp_path / "s")
    e = m["stimuli"][0]
    assert [f["file"].rsplit("/", 1)[1] for f in e["files"]] == ["0000.npy", "0000.png", "0000_16bit.png"]
    assert "display_model" not in m and "mean_cd_m2" not in m
    assert all("display" not in f and "decoded_check" not in f for f in e["files"])
    x = np.load(tmp_path / "s" / e["file"]).astype(np.float64)
    got = read_image(tmp_path / "s" / e["files"][2]["file"])
    assert got.dtype == np.uint16
    assert np.array_equal(got, np.round((x + 1) / 2 * 65535).astype(np.uint16))  # the value convention
    assert m["experiment"]["display"]["model"] is None


# =========================================================================================
# Contrast the display cannot show
# =========================================================================================
def test_clipping_at_the_display_is_counted_and_never_wraps(tmp_path):
    """Requests below the display's black (contrast -1 at 60 cd/m^2 asks for 0) are clipped."""
    y = write(tmp_path, f"""\
    name: clip
    seed: 5
    display: {GAMMA_DISPLAY}
    stimulus: {{size_px: 64, rms_contrast: 0.6, max_clipped_fraction: 1}}
    noise: {{family: log_gaussian, band_cpd: [1, 2]}}
    output: {{formats: [npy, m16, linear8], figures: false}}
    """)
    m = run(y, tmp_path / "s")
    e = m["stimuli"][0]
    x = np.load(tmp_path / "s" / e["file"])
    model = DisplayModel.from_record(m["display_model"])
    for f in e["files"][1:]:
        lum = decode(read_image(tmp_path / "s" / f["file"]), model, method=f["format"])
        low = x < 0.3 / 60 - 1  # below black: clipped to black, never wrapped to white
        assert low.any()
        assert np.all(lum[low] == pytest.approx(0.3))
        assert f["display"]["clipped_fraction"] == pytest.approx(np.mean(low), abs=1e-3)
        assert lum.max() <= 120.3
    assert e["clipped_fraction"] >= np.mean(x < 0.3 / 60 - 1)


def test_a_stimulus_clipped_beyond_the_limit_is_refused_with_its_index(tmp_path):
    y = write(tmp_path, """\
    name: refuse
    seed: 5
    display: {ppd: 32, gamma: {gamma: 2.2, l_min: 0.3, l_max: 120.3}, mean_cd_m2: 100}
    stimulus: {size_px: 64, rms_contrast: 0.3, clipping: error}
    noise: {family: log_gaussian, band_cpd: [1, 2], kind: uniform}
    output: {formats: [linear8], figures: false}
    """)
    with pytest.raises(Exception, match=r"stimulus 0 \(.*_linear8\.png\): .* of pixels were clipped"):
        run(y, tmp_path / "s")
    assert not (tmp_path / "s").exists()


# =========================================================================================
# Bad input at FILE:LINE
# =========================================================================================
BASE = """\
name: bad
seed: 1
display:
  ppd: 16
  {display}
stimulus: {{size_px: 32, rms_contrast: {rms}}}
noise: {{family: log_gaussian, band_cpd: [1, 2]}}
output: {{formats: [{formats}]{extra}}}
"""


@pytest.mark.parametrize(("display", "rms", "formats", "extra", "line", "match"), [
    ("calibration: nothere.csv\n  mean_cd_m2: 50", 0.1, "linear8", "", 5,
     r"display.calibration: calibration file .*nothere\.csv does not exist"),
    ("calibration: bumpy.csv\n  mean_cd_m2: 50", 0.1, "linear8", "", 5,
     (r"display.calibration: the display is not monotone: .* but bumpy\.csv line 8 \(level 80: .*\) is not above "
     r"bumpy\.csv line 7 \(level 64")),
    ("gamma: {gamma: 2.2, l_min: 0.3, l_max: 120.3}\n  mean_cd_m2: 130", 0.1, "linear8", "", 6,
     r"display.mean_cd_m2: mean_cd_m2 = 130 cd/m\^2 is outside the display's range: it shows 0.3 to 120.3 cd/m\^2"),
    ("gamma: {gamma: 2.2, l_min: 0.3, l_max: 120.3}\n  calibration: cal.csv\n  mean_cd_m2: 50", 0.1, "linear8", "", 3,
     r"display: give either calibration .* or gamma .*, not both"),
    ("distance_cm: null", 0.1, "npy, bitstealing", "", 8,
     r"output.formats\[1\]: bitstealing is a display encoding: it needs a display model"),
    ("gamma: {gamma: 2.2, l_min: 0.3, l_max: 120.3}\n  mean_cd_m2: 50", 0.1, "png16", ", gamma: 2.2", 9,
     r"output.gamma: .*the display model .* is the gamma: remove output.gamma"),
    ("mean_cd_m2: 50", 0.1, "npy", "", 5, r"display.mean_cd_m2: needs a display model"),
    ("gamma: {gamma: 2.2, l_min: 0.3, l_max: 120.3}", 0.1, "linear8", "", 3,
     r"display: a display model \(calibration or gamma\) needs mean_cd_m2"),
    ("gamma: {gamma: 2.2, l_min: 0.3}\n  mean_cd_m2: 50", 0.1, "linear8", "", 5,
     r"display.gamma: missing required key 'l_max'"),
    ("gamma: {gamma: 2.2, l_min: 5, l_max: 4}\n  mean_cd_m2: 4.5", 0.1, "linear8", "", 5,
     r"display.gamma: l_max must be above l_min, got l_min=5, l_max=4"),
    ("gamma: {gamma: 2.2, l_min: 0.3, l_max: 120.3}\n  mean_cd_m2: 110", 0.2, "linear8", "", 7,
     (r"stimulus.rms_contrast: condition 0 .*: Gaussian noise of RMS contrast 0.2 .* about display.mean_cd_m2 = 110 "
     r"cd/m\^2 .* shows contrast -0.9973 to \+0.09364 .* than stimulus.max_clipped_fraction = 0.001")),
])  # fmt: skip
def test_bad_display_input_at_file_line(tmp_path, display, rms, formats, extra, line, match):
    calibration_csv(tmp_path)
    calibration_csv(tmp_path, "bumpy.csv", bump_row=5)
    y = write(tmp_path, BASE.format(display=display, rms=rms, formats=formats, extra=extra))
    with pytest.raises(ex.ExperimentError) as info:
        ex.load_experiment(y)
    msg = str(info.value)
    assert re.search(rf"exp\.yaml:{line}: {match}", msg), msg


def test_a_condition_the_display_cannot_show_is_named_at_its_line(tmp_path):
    y = write(tmp_path, f"""\
    name: cond
    seed: 1
    display: {GAMMA_DISPLAY}
    stimulus: {{size_px: 64, rms_contrast: 0.1}}
    noise: {{family: log_gaussian, band_cpd: [1, 2]}}
    factorial:
      rms_contrast: [0.1, 0.4]
    output: {{formats: [linear8]}}
    """)
    with pytest.raises(ex.ExperimentError) as info:
        ex.load_experiment(y)
    msg = str(info.value)
    assert re.search(r"exp\.yaml:7: factorial.rms_contrast\[1\]: condition 1 .*RMS contrast 0.4", msg), msg
    assert "RMS contrast 0.1 " not in msg


def test_a_stored_model_must_be_the_one_gamma_describes(tmp_path):
    y = write(tmp_path, f"""\
    name: stored
    seed: 1
    display: {GAMMA_DISPLAY}
    stimulus: {{size_px: 64, rms_contrast: 0.1}}
    noise: {{family: log_gaussian, band_cpd: [1, 2]}}
    output: {{formats: [linear8]}}
    """)
    exp = ex.load_experiment(y)
    assert ex.validate_experiment(exp) == exp  # the resolved experiment validates as itself
    exp["display"]["model"]["gamma"] = 2.0
    with pytest.raises(ex.ExperimentError, match=r"display.model: differs from the model display.gamma describes"):
        ex.validate_experiment(exp)


# =========================================================================================
# The shipped example
# =========================================================================================
def test_the_calibrated_display_example_runs_and_verifies(tmp_path):
    m = run(EXPERIMENTS / "calibrated_display.yaml", tmp_path / "s")
    assert m["status"] == "passed"
    assert m["display_model"]["source"]["sha256"] == sha256_file(EXPERIMENTS / "calibrated_display.csv")
    fmts = {f["format"] for e in m["stimuli"] for f in e["files"]}
    assert fmts == {"npy", "linear8", "mono++", "bitstealing"}
    for e in m["stimuli"]:
        for f in e["files"][1:]:
            assert abs(f["display"]["mean_rel_error"]) < 0.005
            assert f["decoded_check"]["status"] == "pass"
    rep = ex.verify_set(tmp_path / "s")
    assert rep.status == "ok", rep.failures
    data = json.loads((tmp_path / "s" / "manifest.json").read_text())
    assert data["mean_cd_m2"] == 60


# =========================================================================================
# Quantization that breaks the band is not silent
# =========================================================================================
def test_eight_bits_that_break_the_band_fail_the_stimulus_and_name_the_file(tmp_path):
    """RMS 0.003 at 60 cd/m^2 through rounded 8 bits: a few levels; 16 bits pass."""
    y = write(tmp_path, f"""\
    name: low
    seed: 9
    display: {GAMMA_DISPLAY}
    stimulus: {{size_px: 128, rms_contrast: 0.003}}
    noise: {{family: log_gaussian, band_cpd: [2, 4]}}
    repeats: 2
    output: {{formats: [npy, linear8, m16], figures: false}}
    """)
    m = run(y, tmp_path / "s")
    assert m["status"] == "failed" and m["n_fail"] == 2
    for e in m["stimuli"]:
        npy, lin, m16 = e["files"]
        assert e["spectral_status"] == "pass"  # the float image is right
        assert lin["decoded_check"]["status"] == "fail" and lin["decoded_check"]["pass"] is False
        assert "RMS contrast" in lin["decoded_check"]["reason"]
        assert lin["display"]["distinct_levels"] < 8
        assert m16["decoded_check"]["status"] == "pass"
        assert e["pass"] is False
        assert e["display_check"] == {"pass": False, "image_pass": True, "failed": [lin["file"]]}
    rep = ex.verify_set(tmp_path / "s")
    assert rep.status == "failed_checks" and not rep.failures
    assert sorted(rep.failed_checks) == sorted(
        f"{e['files'][1]['file']}: its decoded linear8 image failed the design check when generated "
        f"({e['files'][1]['decoded_check']['reason']})" for e in m["stimuli"])
    rep = ex.verify_set(tmp_path / "s", require_pass=True)
    assert rep.status == "corrupt" and len(rep.failures) == 2


def test_a_set_without_npy_is_verified_from_its_decoded_display_files(tmp_path):
    y = write(tmp_path, f"""\
    name: nonpy
    seed: 2
    display: {GAMMA_DISPLAY}
    stimulus: {{size_px: 64, rms_contrast: 0.1}}
    noise: {{family: log_gaussian, band_cpd: [2, 4]}}
    repeats: 2
    output: {{formats: [linear8, m16], figures: false}}
    """)
    m = run(y, tmp_path / "s")
    rep = ex.verify_set(tmp_path / "s")
    assert rep.status == "ok", rep.failures
    # the stimulus is read back from m16 (the most levels), decoded about mean_cd_m2
    from stimgen.experiment import display_out
    from stimgen.experiment.plan import plan_of

    plan = plan_of(ex.validate_experiment(m["experiment"]))
    assert display_out.exact_display_file(plan, m["stimuli"][0])["format"] == "m16"
    x, _ = ex.generate_stimulus(m["experiment"], 0, m["seed_entropy"])
    got = display_out.read_contrast(plan, tmp_path / "s" / m["stimuli"][0]["files"][1]["file"], "m16")
    assert np.max(np.abs(got - x)) < 2e-4


def test_the_cli_budget_counts_every_display_encoding(tmp_path, capsys):
    """`stimgen run` (with its size budget) takes every display encoding, and the budget grows
    with the RGB files: the disk estimate counts 3 bytes per pixel for each of them."""
    from stimgen.cli import main
    from stimgen.experiment.budget import estimate
    from stimgen.experiment.plan import plan_of

    exp = EXPERIMENTS / "calibrated_display.yaml"
    assert main(["run", str(exp), "--out", str(tmp_path / "s")]) == 0
    capsys.readouterr()
    resolved = ex.load_experiment(exp)
    plan = plan_of(resolved)
    rgb = {**resolved, "output": {**resolved["output"], "formats": ["npy", "mono++", "m16", "bitstealing"]}}
    gray = {**resolved, "output": {**resolved["output"], "formats": ["npy", "linear8"]}}
    px = plan.shape[0] * plan.shape[1]
    d_rgb, d_gray = estimate(plan_of(rgb), 1).disk, estimate(plan_of(gray), 1).disk
    assert d_rgb - d_gray >= (3 * 3 - 1) * px * plan.n
