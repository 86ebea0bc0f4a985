"""The target and aperture parts: Gabors in noise inside apertures, E and N, verify, regenerate."""

from __future__ import annotations

import json
import math
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import yaml

from stimgen import aperture, gabor
from stimgen.experiment import (
    ExperimentError,
    RunFailed,
    load_experiment,
    regenerate_stimulus,
    run_experiment,
    verify_set,
)
from stimgen.experiment.draw import draw
from stimgen.experiment.plan import plan_of

#: A small shipped-style masking experiment: a Gabor in band-pass noise inside a raised
#: cosine, at three target contrasts.
MASKING_YAML = """\
name: gabor_in_noise
description: a 4 cpd Gabor in octave-band noise, in a raised-cosine aperture
seed: 12
display: {ppd: 32}
stimulus: {size_deg: 3, rms_contrast: 0.1}
noise:
  family: log_gaussian
  peak_cpd: 4
  octaves: 1
target:
  kind: gabor
  sf_cpd: 4
  sigma_deg: 0.4
  contrast: 0.1
aperture:
  kind: raised_cosine
  radius_deg: 1
  ramp_deg: 0.4
factorial:
  target.contrast: [0.05, 0.1, 0.2]
repeats: 2
output: {formats: [npy, png16]}
"""


def write(tmp_path: Path, text: str, name: str = "exp.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def edit(text: str, **sections) -> str:
    """``text`` with top-level sections replaced (None removes one)."""
    d = yaml.safe_load(text)
    for k, v in sections.items():
        if v is None:
            d.pop(k, None)
        else:
            d[k] = v
    return yaml.safe_dump(d, sort_keys=False)


def run(tmp_path: Path, text: str, name: str = "set") -> tuple[Path, dict]:
    root = tmp_path / name
    m = run_experiment(write(tmp_path, text, name + ".yaml"), root, jobs=1, progress=False)
    return root, m


def entries(root: Path) -> list[dict]:
    return json.loads((root / "manifest.json").read_text())["stimuli"]


def rehash(root: Path, entry: dict, rel: str) -> None:
    """Write the new hash of ``rel`` into the manifest (so only re-measurement can catch a change)."""
    from stimgen.io import sha256_file

    mpath = root / "manifest.json"
    m = json.loads(mpath.read_text())
    for f in m["stimuli"][entry["index"]]["files"]:
        if f["file"] == rel:
            f["sha256"] = sha256_file(root / rel)
    mpath.write_text(json.dumps(m))


# -- the set runs, verifies, regenerates -------------------------------------------------
def test_gabor_in_noise_in_aperture_runs_verifies_and_regenerates(tmp_path):
    root, m = run(tmp_path, MASKING_YAML)
    assert m["n_stimuli"] == 6 and all(e["pass"] for e in entries(root))
    rep = verify_set(root)
    assert rep.ok and rep.status == "ok", rep.failures
    figs = sorted(p.name for p in (root / "figures").iterdir())
    assert sum(n.startswith("components_") for n in figs) == 3 and sum(n.startswith("spectrum_") for n in figs) == 3
    # stimulus 3 alone, bit for bit, in every format
    res = regenerate_stimulus(root, 3)
    assert res["match"] and res["on_disk_match"] and len(res["files"]) == 2


@pytest.mark.parametrize("fmt", ["npy", "png16"])
def test_a_flipped_bit_in_any_file_is_caught(tmp_path, fmt):
    root, _ = run(tmp_path, MASKING_YAML)
    e = entries(root)[4]
    rel = next(f["file"] for f in e["files"] if f["format"] == fmt)
    data = bytearray((root / rel).read_bytes())
    data[-7] ^= 0x10
    (root / rel).write_bytes(bytes(data))
    rep = verify_set(root)
    assert not rep.ok and any(rel in f and "sha256 differs" in f for f in rep.failures), rep.failures
    # the hash forged too: the composition check of the file catches the changed value
    if fmt == "npy":  # the hash forged too: the composition check of the values catches it
        rehash(root, e, rel)
        rep = verify_set(root)
        assert any(rel in f and "re-measured noise (composite - window * target) is off by" in f for f in rep.failures), rep.failures


def test_a_changed_value_inside_the_target_is_caught_from_a_png_only_set(tmp_path):
    root, _ = run(tmp_path, edit(MASKING_YAML, output={"formats": ["png16"]}))
    e = entries(root)[1]
    rel = e["files"][0]["file"]
    from stimgen.io import png_bytes, read_image

    levels = read_image(root / rel).copy()
    levels[48, 48] = levels[48, 48] + 300 if levels[48, 48] < 60000 else levels[48, 48] - 300  # 300 levels
    (root / rel).write_bytes(png_bytes(levels))
    rehash(root, e, rel)
    rep = verify_set(root)
    assert not rep.ok and any("off by" in f and "png16" in f for f in rep.failures), rep.failures


# -- E and N ---------------------------------------------------------------------------------
def test_energy_equals_the_closed_form_and_white_noise_density_is_c2_over_ppd2(tmp_path):
    ppd, c, f, sigma, rms = 35.8375, 0.1, 4.0, 0.5, 0.2
    text = f"""\
name: energy
seed: 3
display: {{ppd: {ppd}}}
stimulus: {{size_deg: 8, rms_contrast: {rms}}}
noise: {{family: white}}
target: {{kind: gabor, sf_cpd: {f}, sigma_deg: {sigma}, contrast: {c}}}
output: {{formats: [npy], figures: false}}
"""
    root, m = run(tmp_path, text)
    e = entries(root)[0]
    closed = c**2 * math.pi * sigma**2 / 2 * (1 + math.exp(-4 * math.pi**2 * f**2 * sigma**2))
    assert e["target_energy_deg2"] == pytest.approx(closed, rel=1e-4)
    assert e["target_energy_design_deg2"] == pytest.approx(closed, rel=1e-12)
    n = e["noise_psd_deg2"]
    assert n["at_target"] == pytest.approx(rms**2 / ppd**2, rel=1e-4) and n["at_peak"] == n["at_target"]
    assert n["at_target"] == pytest.approx(3.1145e-5, rel=1e-4)  # THEORY.md's worked number
    assert e["e_over_n"] == pytest.approx(e["target_energy_deg2"] / n["at_target"], rel=1e-12)
    # N measured from the noise (not the composite): within 4 standard errors of the design
    assert abs(n["measured_at_target"] - n["at_target"]) < 4 * n["measured_se"]
    s = m["conditions"][0]
    assert s["target_energy_deg2"] == pytest.approx(e["target_energy_deg2"], rel=1e-12)
    assert s["target_energy_design_deg2"] == pytest.approx(closed, rel=1e-12)
    assert s["noise_psd_deg2"]["at_target"] == n["at_target"] and s["e_over_n"] == pytest.approx(e["e_over_n"])


def test_conditions_varying_target_contrast_scale_e_with_c_squared(tmp_path):
    root, m = run(tmp_path, edit(MASKING_YAML, output={"formats": ["npy"], "figures": False}))
    by_c = {}
    for e in entries(root):
        by_c.setdefault(e["condition"]["target.contrast"], []).append(e)
    e1, e2, e4 = (by_c[k][0] for k in (0.05, 0.1, 0.2))
    assert e2["target_energy_deg2"] / e1["target_energy_deg2"] == pytest.approx(4.0, rel=1e-5)
    assert e4["target_energy_deg2"] / e1["target_energy_deg2"] == pytest.approx(16.0, rel=1e-5)
    assert e4["e_over_n"] / e1["e_over_n"] == pytest.approx(16.0, rel=1e-5)  # same noise level: N unchanged
    assert e1["noise_psd_deg2"]["at_target"] == e4["noise_psd_deg2"]["at_target"] > 0
    assert e1["condition"]["target.contrast"] == 0.05 and "contrast" not in e1["condition"]
    for s in m["conditions"]:
        c = s["params"]["target.contrast"]
        assert s["target_energy_deg2"] == pytest.approx(by_c[c][0]["target_energy_deg2"], rel=1e-9)


def test_the_noise_part_checks_the_noise_not_the_gabor_in_it(tmp_path):
    """A strong Gabor at the band's peak: the spectral check measures the noise alone, exactly
    what a noise-only set with the same seed measures."""
    noise_only = edit(MASKING_YAML, target=None, aperture=None, factorial=None, output={"formats": ["npy"], "figures": False})
    with_target = edit(noise_only, target={"kind": "gabor", "sf_cpd": 4, "sigma_deg": 0.4, "contrast": 0.9})
    r1, _ = run(tmp_path, noise_only, "a")
    r2, _ = run(tmp_path, with_target, "b")
    for a, b in zip(entries(r1), entries(r2), strict=True):
        assert a["peak_cpd"] == b["peak_cpd"] and a["band_cpd"] == b["band_cpd"] and b["pass"] is True
        na = np.load(r1 / a["file"]).astype(np.float64)
        nb = np.load(r2 / b["file"]).astype(np.float64)
        assert not np.allclose(na, nb)
    assert verify_set(r2).ok


def test_composite_minus_window_times_target_equals_window_times_noise(tmp_path):
    """From the file, with the target and window made independently by the library and the
    noise from a noise-only set of the same seed (the target and aperture draw nothing)."""
    base = edit(MASKING_YAML, factorial=None, output={"formats": ["npy"], "figures": False})
    r1, _ = run(tmp_path, edit(base, target=None, aperture=None), "noise")
    r2, _ = run(tmp_path, base, "composite")
    exp = load_experiment(tmp_path / "composite.yaml")
    plan = plan_of(exp)
    t, _ = gabor(size_px=list(plan.shape), ppd=32, sf_cpd=4, sigma_deg=0.4, contrast=0.1)
    w = aperture(plan.shape, ppd=32, kind="raised_cosine", radius_deg=1, ramp_deg=0.4)
    for a, b in zip(entries(r1), entries(r2), strict=True):
        noise = np.load(r1 / a["file"]).astype(np.float64)
        comp = np.load(r2 / b["file"]).astype(np.float64)
        assert b["clipped_fraction"] == 0
        assert np.max(np.abs((comp - w * t) - w * noise)) < 1e-6


def test_mask_mode_sets_the_rms_within_the_aperture(tmp_path):
    text = edit(MASKING_YAML, aperture={"kind": "disk", "radius_deg": 1, "mode": "mask"}, target=None, factorial=None,
                output={"formats": ["npy"], "figures": False})  # fmt: skip
    root, m = run(tmp_path, text)
    w = aperture([96, 96], ppd=32, kind="disk", radius_deg=1)
    for e in entries(root):
        img = np.load(root / e["file"]).astype(np.float64)
        assert np.sqrt(np.mean(img[w > 0] ** 2)) == pytest.approx(0.1, rel=1e-5)
        assert np.all(img[w == 0] == 0)
        rec = e["aperture_record"]
        assert rec["mode"] == "mask" and 0.5 < rec["gain"] < 2  # the noise's RMS over the disk, scaled to 0.1
        # no target: E and E/N are null with the reason; N is the masked noise's
        assert e["target_energy_deg2"] is None and e["e_over_n"] is None and e["e_over_n_reason"] == "no target"
        assert e["noise_psd_deg2"]["rms_contrast"] == pytest.approx(0.1 * rec["gain"])
    assert verify_set(root).ok


def test_a_grating_in_an_annulus(tmp_path):
    text = edit(MASKING_YAML, target={"kind": "grating", "sf_cpd": 2, "orientation_deg": 45, "contrast": 0.2},
                aperture={"kind": "annulus", "inner_deg": 0.5, "outer_deg": 1.2, "ramp_deg": 0.2}, factorial=None,
                output={"formats": ["npy"], "figures": False})  # fmt: skip
    root, _ = run(tmp_path, text)
    e = entries(root)[0]
    assert e["target_record"]["kind"] == "grating" and e["target_energy_design_deg2"] is None
    w = aperture([96, 96], ppd=32, kind="annulus", inner_deg=0.5, outer_deg=1.2, ramp_deg=0.2)
    img = np.load(root / e["file"])
    assert np.all(img[w == 0] == 0) and e["target_energy_deg2"] > 0
    assert verify_set(root).ok


# -- clipping ----------------------------------------------------------------------------------
def test_clipping_error_refuses_the_run_naming_the_stimulus_and_fraction(tmp_path):
    text = edit(MASKING_YAML, stimulus={"size_deg": 3, "rms_contrast": 0.3, "clipping": "error"},
                target={"kind": "gabor", "sf_cpd": 4, "sigma_deg": 0.4, "contrast": 0.95}, factorial=None)  # fmt: skip
    with pytest.raises(RunFailed, match=r"stimulus 0 \(stimuli/.*0000\.npy\): \d+\.\d+% of pixels were clipped"):
        run(tmp_path, text)
    assert not (tmp_path / "set").exists()
    # the default (clip) finishes, records the composite's clipped fraction and warns
    with pytest.warns(UserWarning, match="clipped"):
        root, m = run(tmp_path, edit(text, stimulus={"size_deg": 3, "rms_contrast": 0.3}), "set2")
    assert all(e["clipped_fraction"] > 0 for e in entries(root))
    assert m["conditions"][0]["clipping"]["max_clipped_fraction"] > 0
    rep = verify_set(root)
    assert rep.ok and any("clipped pixel" in n for n in rep.notes), rep.failures


# -- bad input, at FILE:LINE -----------------------------------------------------------------
def _problem_line(text: str, needle: str) -> int:
    return next(i for i, ln in enumerate(text.splitlines(), 1) if needle in ln)


@pytest.mark.parametrize(
    "old, new, needle, message",
    [
        ("  sf_cpd: 4\n", "  sf_cpd: 40\n", "sf_cpd: 40", r"target\.sf_cpd: sf_cpd 40 cpd exceeds Nyquist \(16 cpd at 32 ppd\)"),
        ("  sigma_deg: 0.4\n", "  sigma_deg: -0.4\n", "sigma_deg: -0.4", r"target\.sigma_deg: must be in \(0, inf\), got -0\.4"),
        ("  kind: gabor\n", "  kind: gabbor\n", "kind: gabbor", r"target\.kind: must be one of gabor, grating; got 'gabbor'"),
        ("  sigma_deg: 0.4\n", "  sigma_deg: 0.4\n  fwhm_deg: 1\n", "fwhm_deg: 1",
         r"target\.fwhm_deg: give sigma_deg or fwhm_deg, not both \(got sigma_deg: 0\.4, fwhm_deg: 1"),
        ("  target.contrast: [0.05, 0.1, 0.2]\n", "  target.sf_cpd: [2, 20]\n", "target.sf_cpd: [2, 20]",
         r"factorial\.target\.sf_cpd\[1\]: sf_cpd 20 cpd exceeds Nyquist \(16 cpd at 32 ppd\)"),
        ("  target.contrast: [0.05, 0.1, 0.2]\n", "  contrast: [0.05, 0.1]\n", "contrast: [0.05",
         r"factorial\.contrast: unknown key 'contrast' here; it belongs in target \(in conditions and factorial: target\.contrast\)"),
        ("  kind: raised_cosine\n", "  kind: disc\n", "kind: disc", r"aperture\.kind: must be one of gaussian, raised_cosine, disk, annulus; got 'disc'"),
        ("  radius_deg: 1\n", "  radius_deg: 0\n", "radius_deg: 0", r"aperture\.radius_deg: must be in \(0, inf\), got 0"),
        ("  ramp_deg: 0.4\n", "  ramp_deg: 0.4\n  sigma_deg: 1\n", "  sigma_deg: 1",
         r"aperture\.sigma_deg: aperture kind 'raised_cosine': takes radius_deg, ramp_deg; unknown: sigma_deg"),
    ],
)
def test_bad_keys_are_located_at_file_line(tmp_path, old, new, needle, message):
    assert old in MASKING_YAML
    text = MASKING_YAML.replace(old, new, 1)
    p = write(tmp_path, text)
    with pytest.raises(ExperimentError) as info:
        load_experiment(p)
    lines = str(info.value).splitlines()
    want = f"{p}:{_problem_line(text, needle)}: "
    assert any(ln.startswith(want) and re.search(message, ln) for ln in lines), (want, lines)


def test_bad_target_on_the_command_line_is_one_line_and_exit_2(tmp_path, capsys):
    from stimgen.cli import main

    p = write(tmp_path, MASKING_YAML.replace("  sf_cpd: 4\n", "  sf_cpd: 40\n"))
    assert main(["run", str(p), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "target.sf_cpd" in err[0] and "40" in err[0] and "16" in err[0] and "nothing was written" in err[-1]


def test_missing_keys_and_misplaced_keys(tmp_path):
    for old, new, message in [
        ("  target.contrast: [0.05, 0.1, 0.2]\n", "  target.phase_deg: [0, 90]\n", "missing required key 'contrast'"),
        ("  sigma_deg: 0.4\n", "", "a gabor needs its envelope"),
        ("  kind: gabor\n", "  kind: grating\n", "a grating has no envelope (sigma_deg: 0.4)"),
        ("  kind: raised_cosine\n", "", "missing required key 'kind'"),
    ]:
        text = MASKING_YAML.replace(old, new, 1)
        if "phase" in new:
            text = text.replace("  contrast: 0.1\n", "")
        with pytest.raises(ExperimentError, match=re.escape(message)):
            load_experiment(write(tmp_path, text))
    # target keys without a target section are refused, not ignored
    text = edit(MASKING_YAML, target=None)
    with pytest.raises(ExperimentError, match="target.contrast belongs to the target section"):
        load_experiment(write(tmp_path, text))
    # movies: refused
    text = edit(MASKING_YAML, motion={"speed_deg_s": 2, "duration_s": 0.1, "frame_rate_hz": 30},
                output={"formats": ["npy"]})  # fmt: skip
    with pytest.raises(ExperimentError, match="a target is drawn into still images"):
        load_experiment(write(tmp_path, text))


def test_a_condition_sigma_replaces_the_sections_fwhm(tmp_path):
    text = MASKING_YAML.replace("  sigma_deg: 0.4\n", "  fwhm_deg: 1\n").replace(
        "  target.contrast: [0.05, 0.1, 0.2]\n", "  target.sigma_deg: [0.3, 0.5]\n")
    exp = load_experiment(write(tmp_path, text))
    cs = plan_of(exp).conditions
    assert [c.params["target.sigma_deg"] for c in cs] == [0.3, 0.5]
    assert all(c.params["target.fwhm_deg"] is None for c in cs)


# -- warnings ------------------------------------------------------------------------------
def test_an_aperture_or_envelope_larger_than_the_image_is_warned_naming_the_key(tmp_path):
    text = edit(MASKING_YAML, aperture={"kind": "disk", "radius_deg": 2}, factorial=None,
                output={"formats": ["npy"], "figures": False})  # fmt: skip
    with pytest.warns(UserWarning, match=r"aperture\.radius_deg: aperture disk radius_deg=2 reaches beyond the image"):
        run(tmp_path, text)
    text = edit(text, aperture=None, target={"kind": "gabor", "sf_cpd": 4, "sigma_deg": 0.8, "contrast": 0.1})
    with pytest.warns(UserWarning, match=r"target\.sigma_deg: sigma_deg=0\.8: 3 sigma .* reaches beyond the image"):
        run(tmp_path, text, "set2")


def test_drawing_leaves_the_components(tmp_path):
    plan = plan_of(load_experiment(write(tmp_path, MASKING_YAML)))
    d, frac, _, c, _ = draw(plan, 1, 99)
    comps = d.components
    assert set(comps) == {"noise", "target", "window", "noise_shown"}
    t, w = comps["target"].astype(np.float64), comps["window"].astype(np.float64)
    assert np.max(np.abs(d.data - (w * t + comps["noise_shown"]))) < 1e-6 and frac == 0
    assert np.max(np.abs(comps["noise_shown"] - w * comps["noise"])) < 1e-7
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert c.params["target.contrast"] == 0.05


def test_the_documented_example_is_the_tested_one():
    text = (Path(__file__).resolve().parents[1] / "docs" / "experiments.md").read_text()
    block = text.split("# gabor_in_noise.yaml\n", 1)[1].split("```", 1)[0]
    assert block == MASKING_YAML


def test_a_changed_summary_e_over_n_is_caught(tmp_path):
    root, _ = run(tmp_path, edit(MASKING_YAML, output={"formats": ["npy"], "figures": False}))
    assert verify_set(root).ok
    mpath = root / "manifest.json"
    m = json.loads(mpath.read_text())
    m["conditions"][1]["e_over_n"] *= 1.01
    mpath.write_text(json.dumps(m))
    rep = verify_set(root)
    assert any("conditions[1]" in f and "re-measured e_over_n" in f for f in rep.failures), rep.failures


def test_e_over_n_is_null_with_the_reason_where_the_noise_has_no_power(tmp_path):
    """A Gaussian blob (sf 0) in band-pass noise: N at 0 cpd is 0, so E / N is no number."""
    text = edit(MASKING_YAML, target={"kind": "gabor", "sf_cpd": 0, "sigma_deg": 0.3, "contrast": 0.2},
                factorial=None, output={"formats": ["npy"]})  # fmt: skip
    root, m = run(tmp_path, text)
    e = entries(root)[0]
    assert e["noise_psd_deg2"]["at_target"] == 0 and e["e_over_n"] is None
    assert e["e_over_n_reason"].startswith("N at the target's frequency is 0")
    assert e["noise_psd_deg2"]["measured_at_target"] is None and "outside the measured range" in e["noise_psd_deg2"]["measured_reason"]
    assert e["target_energy_deg2"] > 0 and m["conditions"][0]["e_over_n"] is None
    assert verify_set(root).ok


def test_far_centres_are_refused_at_their_lines(tmp_path):
    """A target or aperture centre beyond 1e6 deg is an input error at FILE:LINE (it made NaN
    pixels and a failed run before)."""
    y = tmp_path / "far.yaml"
    y.write_text("name: far\nseed: 1\ndisplay: {ppd: 32}\nstimulus: {size_px: 64, rms_contrast: 0.1}\n"
                 "noise: {family: log_gaussian, band_cpd: [2, 4]}\n"
                 "target: {kind: gabor, sf_cpd: 4, sigma_deg: 0.3, contrast: 0.1, center_deg: [1.0e+308, 0]}\n"
                 "aperture: {kind: disk, radius_deg: 1, center_deg: [0, -1.0e+9]}\n")
    with pytest.raises(ExperimentError) as info:
        load_experiment(y)
    text = "\n".join(info.value.lines)
    assert ":6: target.center_deg[0]: must be in [-1e+06, 1e+06], got 1e+308" in text
    assert ":7: aperture.center_deg[1]: must be in [-1e+06, 1e+06]" in text
