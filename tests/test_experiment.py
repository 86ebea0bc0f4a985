"""Experiment files, stimulus sets, manifests, verification and regeneration (end to end)."""

from __future__ import annotations

import json
import math
import os
import re
import textwrap
from pathlib import Path

import numpy as np
import pytest

from stimgen import experiment as ex
from stimgen.cli import main
from stimgen.contrast import clip_contrast, set_rms_contrast
from stimgen.experiment import execute, noise_part
from stimgen.io import read_image, sha256_file
from stimgen.noise import filtered_noise, make_filter

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"

TINY = """\
name: tiny
seed: 42
display: {ppd: 16}
stimulus: {size_px: 64, rms_contrast: 0.2}
noise: {family: log_gaussian}
conditions:
  - {band_cpd: [1, 2]}
  - {band_cpd: [2, 4]}
repeats: 3
output: {formats: [npy, png8], dither: noisy-bit, figures: false}
"""


def write(tmp_path: Path, text: str, name: str = "exp.yaml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


@pytest.fixture
def tiny_set(tmp_path_factory):
    d = tmp_path_factory.mktemp("set")
    y = write(d, TINY)
    m = ex.run_experiment(y, d / "out", jobs=1, progress=False)
    return d / "out", m, y


# -- loading and validation ---------------------------------------------------------------
def test_load_fills_every_default(tmp_path):
    exp = ex.load_experiment(write(tmp_path, TINY))
    assert exp["noise"]["level"] == "half_amplitude"
    assert exp["noise"]["kind"] == "gaussian"
    assert exp["stimulus"]["mean"] == 0.0
    assert exp["stimulus"]["clipping"] == "clip"
    assert exp["output"]["dtype"] == "float32"
    assert exp["check"]["alpha_tolerance"] is None
    assert exp["check"]["orientation_tolerance_deg"] == 5.0
    assert set(exp) == set(ex.top_keys())
    # the resolved experiment is itself a valid experiment (it is stored in manifests)
    assert ex.validate_experiment(exp) == exp


BAD_CASES = [
    ("seed: 010", r":2: seed: 010 is read by YAML 1.1 as the octal number 8; write 10"),
    ("seed: 1:30", r":2: seed: 1:30 is read by YAML 1.1 as the base-60 number 90"),
    ("stimulus: {size_px: 64, rms_contrast: 1e-3}",
     r":4: stimulus.rms_contrast: must be a number, got string '1e-3' .*write 1.0e-3"),
    ("output: {dither: no}",
     r"output.dither: must be one of none, noisy-bit, got boolean False .*unquoted no"),
    ("noise: {family: log_gaussian, levle: half_power}",
     r":5: noise.levle: unknown key 'levle'; did you mean 'level'\?"),
    ("noise: {family: log_gausian}", r"noise.family: .*did you mean 'log_gaussian'\?"),
    ("noise: {family: log_gaussian, rms_contrast: 0.1}",
     r"noise.rms_contrast: unknown key 'rms_contrast' here; it belongs in stimulus"),
    ("repeats: 0", r"repeats: must be in \[1, inf\), got 0"),
    ("repeats: 2.5", r"repeats: must be an integer, got float 2.5"),
    ("display: {ppd: 16, distance_cm: 57}", r"display: give either ppd or the screen"),
    ("display: {distance_cm: 57}", r"display: needs ppd, .*missing screen_width_cm, screen_width_px"),
    ("stimulus: {size_px: 64, size_deg: 4}", r"stimulus: give exactly one of size_deg"),
    ("stimulus: {size_px: 64, mean: 1.0}", r"stimulus.mean: must be in \(-1, 1\), got 1.0"),
    ("name: my masks", r"name: must be a name of letters, digits"),
    ("output: {formats: [npy, png9]}", r"output.formats\[1\]: must be one of npy, png8, png16; got 'png9'; did you mean 'png8'\?"),
    ("noise: {family: dog}",
     r"conditions\[0\].band_cpd: a balanced DoG cannot make a band of 1 octaves.*use family 'log_gaussian'"),
    ("noise: {family: white}", r"conditions\[0\].band_cpd: family 'white' takes no band"),
    ("noise: {kind: gaussian}", r"noise: missing required key 'family'"),
    ("display: {ppd: 5}", r"conditions\[1\].band_cpd: band_cpd high edge 4 cpd exceeds Nyquist \(2.5 cpd at 5 ppd\)"),
    ("stimulus: {size_px: 8}",
     r"conditions\[0\].band_cpd: band low edge 1 cpd is below one cycle per image \(2 cpd for an image of 8 px\)"),
    ("factorial: {band_cpd: [[1, 2]]}", r"conditions\[0\].band_cpd: band_cpd is also varied in factorial"),
    ("conditions: []", r"conditions: must be a non-empty list"),
    ("frobnicate: 1", r":\d+: frobnicate: unknown key 'frobnicate'"),
]


@pytest.mark.parametrize(("line", "match"), BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_every_validation_message(tmp_path, line, match):
    lines = TINY.splitlines()
    key = line.split(":")[0]
    replaced = [line if ln.startswith(key + ":") else ln for ln in lines]
    if replaced == lines:
        replaced.append(line)
    if key == "conditions":  # replace the whole block
        i = lines.index("conditions:")
        replaced = [*lines[:i], line, *lines[i + 3 :]]
    path = write(tmp_path, "\n".join(replaced) + "\n")
    with pytest.raises(ex.ExperimentError, match=match) as info:
        ex.load_experiment(path)
    assert all(s.startswith(f"{path}:") for s in info.value.lines)


def test_all_problems_reported_at_once_with_lines(tmp_path, capsys):
    bad = """\
    name: masks-1-8cpd
    seed: 010
    display: {distance_cm: 57, screen_width_cm: 53.3, screen_width_px: 1920}
    stimulus: {size_deg: [8, 8], rms_contrast: 1e-3}
    noise: {family: dog, levle: half_amplitude}
    conditions:
      - {band_cpd: [1, 2]}
      - {band_cpd: [1, 4]}
      - {band_cpd: [2, 40]}
    repeats: 20
    repeats: 3
    output: {formats: [npy, png8], dither: no}
    """
    path = write(tmp_path, bad)
    out = tmp_path / "never"
    code, stdout, err = run_cli(capsys, "run", path, "--out", out)
    assert code == 2 and stdout == ""
    lines = err.strip().splitlines()
    where = [ln.split(": ")[0] for ln in lines[:-1]]
    assert where == [f"{path}:{n}" for n in (2, 4, 5, 7, 9, 11, 12)]
    assert "DoG cannot make a band of 1 octaves" in lines[3]
    assert "exceeds Nyquist (17.92 cpd at 35.84 ppd)" in lines[4]
    assert lines[-1].endswith("7 problems in " + str(path) + "; nothing was written")
    assert not out.exists() and leftovers(tmp_path) == []


def test_malformed_and_missing_files(tmp_path, capsys):
    path = write(tmp_path, "name: x\n  foo: [1, 2\n")
    code, _, err = run_cli(capsys, "run", path)
    assert code == 2 and f"{path}:2: (file): malformed YAML" in err
    code, _, err = run_cli(capsys, "run", tmp_path / "nope.yaml")
    assert code == 2 and err.count("\n") == 1 and "no such experiment file" in err


def test_conditions_list_times_factorial(tmp_path):
    text = TINY.replace("repeats: 3", "repeats: 2\nfactorial:\n  rms_contrast: [0.1, 0.2, 0.3]")
    text = text.replace("  - {band_cpd: [2, 4]}", "  - {peak_cpd: 3, octaves: 1, repeats: 1, label: mid}")
    conds = ex.expand_conditions(ex.load_experiment(write(tmp_path, text)))
    assert [c["params"]["rms_contrast"] for c in conds] == [0.1, 0.2, 0.3] * 2
    assert [c["repeats"] for c in conds] == [2, 2, 2, 1, 1, 1]
    assert [c["first"] for c in conds] == [0, 2, 4, 6, 7, 8]
    # a condition's band replaces the base band as a whole
    assert conds[3]["params"]["band_cpd"] is None and conds[3]["params"]["peak_cpd"] == 3
    assert conds[3]["label"] == "mid, peak_cpd=3, octaves=1, rms_contrast=0.1"


# -- running --------------------------------------------------------------------------------
MANIFEST_KEYS = {
    "stimgen_version", "python_version", "numpy_version", "scipy_version", "platform",
    "created_utc", "experiment", "experiment_sha256", "seed_entropy", "geometry",
    "value_convention", "stimuli", "conditions", "figures",
}  # fmt: skip
ENTRY_KEYS = {
    "file", "sha256", "shape", "dtype", "condition", "spawn_key", "ppd", "design_band_cpd",
    "design_peak_cpd", "band_level", "rms_contrast", "clipped_fraction", "peak_cpd", "band_cpd",
    "pass",
}  # fmt: skip


def test_manifest_fields_hashes_and_spectra(tiny_set):
    root, m, y = tiny_set
    on_disk = json.loads((root / "manifest.json").read_text())
    assert MANIFEST_KEYS <= set(on_disk)
    assert on_disk["experiment_sha256"] == sha256_file(y)
    assert on_disk["seed_entropy"] == 42 and on_disk["experiment"]["seed"] == 42
    assert on_disk["geometry"]["ppd"] == 16
    assert len(on_disk["stimuli"]) == 6
    for i, e in enumerate(on_disk["stimuli"]):
        assert ENTRY_KEYS <= set(e)
        assert e["spawn_key"] == [i]
        assert not Path(e["file"]).is_absolute()
        for f in e["files"]:
            assert sha256_file(root / f["file"]) == f["sha256"]
        want = [1.0, 2.0] if e["condition"]["index"] == 0 else [2.0, 4.0]
        np.testing.assert_allclose(e["design_band_cpd"], want, rtol=1e-9)
        np.testing.assert_allclose(e["design_peak_cpd"], np.sqrt(want[0] * want[1]), rtol=1e-9)
        img = np.load(root / e["file"])
        assert img.shape == (64, 64) and img.dtype == np.float32
        assert abs(img.std(dtype=np.float64) - 0.2) < 1e-6 and abs(e["rms_contrast"] - 0.2) < 1e-6
        assert e["pass"] is True
        np.testing.assert_allclose(e["band_cpd"], want, rtol=0.2)
        # 8-bit PNG: level = floor((x + 1) / 2 * 255 + U[0, 1)) with noisy-bit dither
        png = read_image(root / e["files"][1]["file"])
        assert png.dtype == np.uint8
        lum = (img.astype(np.float64) + 1) / 2 * 255
        assert np.all((png >= np.floor(lum)) & (png <= np.floor(lum) + 1))
    for c in on_disk["conditions"]:
        assert c["pass"] is True and c["n_pass"] == 3
        np.testing.assert_allclose(c["measured"]["band_cpd"], c["design"]["band_cpd"], rtol=0.15)


def test_stimulus_i_is_its_own_seed_sequence(tiny_set):
    root, m, _ = tiny_set
    ppd = 16.0
    for i in (0, 4):
        e = m["stimuli"][i]
        band = [1, 2] if i < 3 else [2, 4]
        gen = np.random.default_rng(np.random.SeedSequence(42, spawn_key=(i,)))
        ref = filtered_noise((64, 64), make_filter("log_gaussian", ppd=ppd, band_cpd=band), rng=gen)
        ref = clip_contrast(set_rms_contrast(ref, 0.2), warn_above=None)[0]
        np.testing.assert_array_equal(np.load(root / e["file"]), ref)
        img, info = ex.generate_stimulus(m["experiment"], i, 42)
        np.testing.assert_array_equal(img, ref)
        assert info["spawn_key"] == [i]


def test_jobs_do_not_change_files(tmp_path, capsys):
    y = write(tmp_path, TINY)
    assert run_cli(capsys, "run", y, "--out", tmp_path / "a", "--jobs", "1")[0] == 0
    assert run_cli(capsys, "run", y, "--out", tmp_path / "b", "--jobs", "2", "--no-progress")[0] == 0
    a = json.loads((tmp_path / "a/manifest.json").read_text())["stimuli"]
    b = json.loads((tmp_path / "b/manifest.json").read_text())["stimuli"]
    assert [e["files"] for e in a] == [e["files"] for e in b]
    for e in b:
        for f in e["files"]:
            assert (tmp_path / "a" / f["file"]).read_bytes() == (tmp_path / "b" / f["file"]).read_bytes()


def test_seed_override_and_fresh_entropy(tmp_path):
    y = write(tmp_path, TINY.replace("seed: 42\n", ""))
    m1 = ex.run_experiment(y, tmp_path / "a", jobs=1, progress=False)
    m2 = ex.run_experiment(y, tmp_path / "b", jobs=1, progress=False)
    assert m1["seed_entropy"] != m2["seed_entropy"] and m1["seed_entropy"] > 2**64
    assert m1["stimuli"][0]["sha256"] != m2["stimuli"][0]["sha256"]
    m3 = ex.run_experiment(y, tmp_path / "c", jobs=1, seed=m1["seed_entropy"], progress=False)
    assert [e["sha256"] for e in m3["stimuli"]] == [e["sha256"] for e in m1["stimuli"]]


def test_run_json_summary(tmp_path, capsys):
    y = write(tmp_path, TINY)
    code, out, err = run_cli(capsys, "run", y, "--out", tmp_path / "s", "--jobs", "1", "--json")
    assert code == 0 and err == ""
    d = json.loads(out)
    assert d["n_stimuli"] == 6 and d["n_pass"] == 6 and d["seed_entropy"] == 42
    assert [c["label"] for c in d["conditions"]] == ["band_cpd=1-2", "band_cpd=2-4"]


def test_figures_and_other_families(tmp_path, capsys):
    text = """\
    name: mixed
    seed: 5
    display: {ppd: 16}
    stimulus: {size_px: [64, 96], rms_contrast: 0.15}
    noise: {family: power_law}
    conditions:
      - {alpha: 1.0, label: pink}
      - {family: dog, sigma_center_deg: 0.05, sigma_surround_deg: 0.1}
      - {family: butterworth, band_cpd: [2, 4], orientation_deg: 45}
    repeats: 2
    output: {formats: [png8, png16], examples_per_condition: 1}
    """
    y = write(tmp_path, text)
    code, out, _ = run_cli(capsys, "run", y, "--out", tmp_path / "s", "--jobs", "1")
    assert code == 0, out
    m = json.loads((tmp_path / "s/manifest.json").read_text())
    assert m["figures"] == [
        "figures/spectrum_c00_pink.png",
        "figures/spectrum_c01_family_dog_sigma_center_deg_0.05_sigma_surround_deg_0.1.png",
        "figures/spectrum_c02_family_butterworth_band_cpd_2-4_orientation_deg_45.png",
        "figures/contact_sheet.png",
    ]
    for f in m["figures"]:
        assert (tmp_path / "s" / f).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    e0, e2 = m["stimuli"][0], m["stimuli"][2]
    assert e0["files"][1]["file"].endswith("0000_16bit.png") and e0["files"][1]["dtype"] == "uint16"
    assert e0["design_band_cpd"] is None
    assert e0["pass"] == (abs(e0["alpha"] - 1.0) <= 0.4)  # one 64 x 96 image: SD about 0.1
    # the DoG from sigmas: peak sqrt(ln r / (s2^2 - s1^2)) / pi with r = 2 (sigmas in deg)
    peak = np.sqrt(np.log(2) / (0.1**2 - 0.05**2)) / np.pi
    np.testing.assert_allclose(e2["design_peak_cpd"], peak, rtol=1e-6)
    # the oriented Butterworth: measured dominant stripe orientation (0 = vertical, ccw)
    for e in m["stimuli"][4:]:
        assert abs(e["orientation_error_deg"]) < 3 and abs(e["orientation_deg"] - 45) < 3
    assert ex.verify_set(tmp_path / "s").ok


# -- atomicity and faults ---------------------------------------------------------------------
def test_existing_directory_refused_and_untouched(tmp_path, capsys):
    y = write(tmp_path, TINY)
    out = tmp_path / "s"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    code, _, err = run_cli(capsys, "run", y, "--out", out, "--jobs", "1")
    assert code == 2 and "already exists (use --force" in err and err.count("\n") == 1
    assert [p.name for p in out.iterdir()] == ["precious.txt"]
    # --force replaces only a stimgen output, never a folder of other files
    code, _, err = run_cli(capsys, "run", y, "--out", out, "--jobs", "1", "--force")
    assert code == 2 and "holds no stimgen output" in err and err.count("\n") == 1
    assert [p.name for p in out.iterdir()] == ["precious.txt"]
    out2 = tmp_path / "s2"
    assert run_cli(capsys, "run", y, "--out", out2, "--jobs", "1")[0] == 0
    stray = next((out2 / "stimuli").iterdir()) / "stray.txt"
    stray.write_text("not stimgen's")  # a file the manifest does not list: never deleted
    code, _, err = run_cli(capsys, "run", y, "--out", out2, "--jobs", "1", "--force")
    assert code == 2 and "stray.txt is not listed in its manifest.json" in err and stray.exists()
    stray.unlink()
    assert run_cli(capsys, "run", y, "--out", out2, "--jobs", "1", "--force")[0] == 0
    assert (out2 / "manifest.json").is_file()
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("exc", "code", "message"),
    [
        (OSError(28, "No space left on device"), 1, "No space left on device; nothing was written"),
        (KeyboardInterrupt(), 130, "interrupted"),
    ],
)
def test_failure_mid_run_leaves_nothing(tmp_path, capsys, monkeypatch, exc, code, message):
    real = noise_part.NoisePart.measure
    calls = []

    def failing(self, plan, c, data, entry):
        calls.append(1)
        if len(calls) == 4:
            raise exc
        return real(self, plan, c, data, entry)

    monkeypatch.setattr(noise_part.NoisePart, "measure", failing)
    y = write(tmp_path, TINY)
    got, _, err = run_cli(capsys, "run", y, "--out", tmp_path / "s", "--jobs", "1")
    assert got == code and message in err
    assert not (tmp_path / "s").exists() and leftovers(tmp_path) == []


def _die_on_second_chunk(task):
    if 3 in task[2]:
        os._exit(9)
    return execute._work(task)


def test_killed_worker_leaves_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(execute, "_work", _die_on_second_chunk)
    y = write(tmp_path, TINY)
    code, _, err = run_cli(capsys, "run", y, "--out", tmp_path / "s", "--jobs", "2", "--no-progress")
    assert code == 1 and "a worker process died" in err and err.count("\n") == 1
    assert not (tmp_path / "s").exists() and leftovers(tmp_path) == []


def test_clipping_error_policy(tmp_path, capsys):
    text = TINY.replace("rms_contrast: 0.2}", "rms_contrast: 0.6, clipping: error}")
    code, _, err = run_cli(capsys, "run", write(tmp_path, text), "--out", tmp_path / "s", "--jobs", "1")
    assert code == 1 and "were clipped, more than stimulus.max_clipped_fraction" in err
    assert not (tmp_path / "s").exists()


# -- verify and regenerate --------------------------------------------------------------------
def test_verify_ok_then_catches_a_changed_byte(tmp_path, capsys, tiny_set):
    root, m, _ = tiny_set
    code, out, _ = run_cli(capsys, "verify", root)
    assert code == 0 and "hashes and spectra checked: OK" in out
    target = root / m["stimuli"][4]["files"][1]["file"]
    data = bytearray(target.read_bytes())
    data[-20] ^= 1
    target.write_bytes(bytes(data))
    try:
        code, out, _ = run_cli(capsys, "verify", root, "--json")
        rep = json.loads(out)
        assert code == 1 and not rep["ok"]
        assert rep["failures"] == [f"{m['stimuli'][4]['files'][1]['file']}: sha256 differs from the manifest (the file was changed)"]
    finally:
        data[-20] ^= 1
        target.write_bytes(bytes(data))


def test_verify_remeasures_spectra(tmp_path, capsys, tiny_set):
    root, m, _ = tiny_set
    d = tmp_path / "copy"
    import shutil

    shutil.copytree(root, d)
    man = json.loads((d / "manifest.json").read_text())
    man["stimuli"][2]["peak_cpd"] *= 1.1
    (d / "manifest.json").write_text(json.dumps(man))
    code, out, _ = run_cli(capsys, "verify", d)
    assert code == 1 and "re-measured peak_cpd" in out and "0002.npy" in out
    code, _, _ = run_cli(capsys, "verify", d, "--no-spectra")
    assert code == 0
    code, _, err = run_cli(capsys, "verify", tmp_path / "nowhere")
    assert code == 2 and "no manifest.json" in err


def test_verify_other_version_notes_instead_of_failing(tmp_path, capsys, tiny_set):
    import shutil

    root, _, _ = tiny_set
    d = tmp_path / "copy"
    shutil.copytree(root, d)
    man = json.loads((d / "manifest.json").read_text())
    man["stimgen_version"] = "0.0.1"
    man["stimuli"][2]["peak_cpd"] *= 1.1
    (d / "manifest.json").write_text(json.dumps(man))
    code, out, _ = run_cli(capsys, "verify", d)
    assert code == 0 and "note the set was made by stimgen 0.0.1" in out
    assert "re-measured peak_cpd" in out and "(measured by stimgen 0.0.1, now" in out


def test_regenerate_matches(tmp_path, capsys, tiny_set):
    root, m, _ = tiny_set
    code, out, _ = run_cli(capsys, "regenerate", root, "--index", "4", "--out", tmp_path / "r")
    assert code == 0 and out.count("identical") == 2
    f = m["stimuli"][4]["file"]
    assert (tmp_path / "r" / f).read_bytes() == (root / f).read_bytes()
    code, _, err = run_cli(capsys, "regenerate", root, "--index", "6")
    assert code == 2 and "index must be an integer in [0, 5], got 6" in err


def test_regenerate_reports_a_changed_file_on_disk(tmp_path, capsys, tiny_set):
    import shutil

    root, m, _ = tiny_set
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    f = copy / m["stimuli"][4]["file"]
    data = bytearray(f.read_bytes())
    data[-1] ^= 1
    f.write_bytes(bytes(data))
    code, out, _ = run_cli(capsys, "regenerate", copy, "--index", "4")
    assert code == 1 and "identical to the manifest; the file on disk differs" in out
    res = ex.regenerate_stimulus(copy, 4)
    assert res["match"] and not res["on_disk_match"]


# -- shipped experiments and dask ---------------------------------------------------------------
@pytest.mark.parametrize(
    "name", ["masks_octave_bands", "dog_vs_log_gaussian", "oriented_noise", "pink_noise", "drifting_noise"]
)
def test_shipped_experiments_validate(name):
    exp = ex.load_experiment(EXPERIMENTS / f"{name}.yaml")
    # the resolved experiment (as stored in a manifest, nulls included) round-trips
    assert ex.validate_experiment(json.loads(json.dumps(exp))) == exp
    conds = ex.expand_conditions(exp)
    assert conds and sum(c["repeats"] for c in conds) <= 100
    if name == "masks_octave_bands":
        assert [c["params"]["band_cpd"] for c in conds] == [[1, 2], [2, 4], [4, 8]]
        assert exp["noise"]["family"] == "log_gaussian"


@pytest.mark.filterwarnings("ignore:Port .* is already in use")
def test_dask_scheduler_byte_identical(tmp_path, tiny_set):
    distributed = pytest.importorskip("dask.distributed")
    root, m, y = tiny_set
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster:  # fmt: skip
        md = ex.run_experiment(y, tmp_path / "d", scheduler="dask", address=cluster.scheduler_address,
                               progress=False)  # fmt: skip
    assert [e["files"] for e in md["stimuli"]] == [e["files"] for e in m["stimuli"]]
    for e in md["stimuli"]:
        assert (tmp_path / "d" / e["file"]).read_bytes() == (root / e["file"]).read_bytes()


# -- motion experiments ---------------------------------------------------------------------
MOTION = """\
name: tinymotion
seed: 42
display: {ppd: 16}
stimulus: {size_px: 40, rms_contrast: 0.2}
noise: {family: log_gaussian, band_cpd: [1, 3]}
motion: {frame_rate_hz: 60, n_frames: 5}
factorial:
  speed_deg_s: [1, 3]
  direction_deg: [0, 90]
output: {examples_per_condition: 1}
"""
MOTION_ENTRY_KEYS = ENTRY_KEYS | {
    "frame_rate_hz", "n_frames", "duration_s", "speed_deg_s", "direction_deg", "velocity_deg_s",
    "velocity_px_per_frame", "speed_px_per_frame", "temporal_aliasing", "spectral_pass",
    "speed_check", "motion_record",
}  # fmt: skip


@pytest.fixture(scope="module")
def motion_set(tmp_path_factory):
    d = tmp_path_factory.mktemp("motion")
    y = write(d, MOTION)
    m = ex.run_experiment(y, d / "out", jobs=1, progress=False)
    return d / "out", m, y


def test_motion_manifest_movies_and_speeds(motion_set):
    from PIL import Image, ImageSequence

    from stimgen.contrast import quantize
    from stimgen.motion import drifting_noise, movie_from_record

    root, m, _ = motion_set
    on_disk = json.loads((root / "manifest.json").read_text())
    assert on_disk["experiment"]["output"]["formats"] == ["npy", "gif"]  # the motion default
    assert on_disk["motion"]["n_frames"] == 5 and on_disk["motion"]["movie_shape"] == [5, 40, 40]
    # factorial keys expand in the file's order (speed outer), not alphabetically
    assert [c["label"] for c in on_disk["conditions"]] == [
        "speed_deg_s=1, direction_deg=0", "speed_deg_s=1, direction_deg=90",
        "speed_deg_s=3, direction_deg=0", "speed_deg_s=3, direction_deg=90",
    ]  # fmt: skip
    for i, e in enumerate(on_disk["stimuli"]):
        assert MOTION_ENTRY_KEYS <= set(e) and e["spawn_key"] == [i]
        speed, direction = [(1, 0), (1, 90), (3, 0), (3, 90)][i]
        assert (e["speed_deg_s"], e["direction_deg"], e["frame_rate_hz"]) == (speed, direction, 60)
        # px/frame = deg/s * ppd / Hz; direction 90 is upwards = towards row 0 (vy < 0)
        d_px = speed * 16 / 60
        want = [d_px, 0.0] if direction == 0 else [0.0, -d_px]
        np.testing.assert_allclose(e["velocity_px_per_frame"], want, atol=1e-15)
        np.testing.assert_allclose(e["velocity_deg_s"], np.array(want) * 60 / 16, atol=1e-15)
        movie = np.load(root / e["file"])
        assert movie.shape == (5, 40, 40) and movie.dtype == np.float32 and e["shape"] == [5, 40, 40]
        # every frame has the RMS contrast (a translation keeps every Fourier amplitude)
        np.testing.assert_allclose(movie.std(axis=(1, 2), dtype=np.float64), 0.2, rtol=1e-5)
        # stimulus i is drifting_noise drawn from SeedSequence(entropy, spawn_key=(i,))
        gen = np.random.default_rng(np.random.SeedSequence(42, spawn_key=(i,)))
        ref, _ = drifting_noise(size_px=40, ppd=16, band_cpd=(1, 3), family="log_gaussian",
                                speed_deg_s=speed, direction_deg=direction, frame_rate_hz=60,
                                n_frames=5, rng=gen)  # fmt: skip
        np.testing.assert_array_equal(movie, ref)
        assert e["clipped_fraction"] == 0.0
        np.testing.assert_array_equal(movie_from_record(e["motion_record"]), movie)
        # the speed measured by optical flow, and the spectrum of the first frame
        sc = e["speed_check"]
        assert sc["pass"] is True and e["spectral_pass"] is True and e["pass"] is True
        assert abs(sc["measured"]["speed_deg_s"] - speed) < 0.01 * speed
        assert abs(sc["direction_error_deg"]) < 0.5 and sc["reliable_fraction"] > 0.9
        np.testing.assert_allclose(e["band_cpd"], [1, 3], rtol=0.25)
        # the GIF preview holds exactly the 8-bit levels of every frame
        with Image.open(root / e["files"][1]["file"]) as gif:
            frames = [np.asarray(f.convert("L")) for f in ImageSequence.Iterator(gif)]
        np.testing.assert_array_equal(np.array(frames), quantize(movie, 8)[0])
        assert e["files"][1]["frame_duration_ms"] == 20
    for c in on_disk["conditions"]:
        s = c["speed"]
        assert c["pass"] is True and s["pass"] is True and s["n_checked"] == 1
        assert abs(s["measured_speed_deg_s"] - s["requested_speed_deg_s"]) < 0.01 * s["requested_speed_deg_s"]
        assert abs(s["direction_error_deg"]) < 0.5
    assert "figures/velocity.png" in on_disk["figures"]
    for f in on_disk["figures"]:
        assert (root / f).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_motion_run_output_jobs_regenerate_verify(tmp_path, capsys, motion_set):
    import shutil

    root, m, y = motion_set
    code, out, err = run_cli(capsys, "run", y, "--out", tmp_path / "b", "--jobs", "2", "--no-progress")
    assert code == 0 and err == ""
    assert "wrote 4 movies (5 frames of 40 x 40 px at 16 ppd, 60 Hz)" in out
    assert re.search(r"1 speed_deg_s=1, direction_deg=90: .*; speed 1\.0\d\d deg/s at 90\.0 deg "
                     r"\(requested 1 deg/s at 90 deg\)  \[pass; 1/1 stimuli pass\]", out)  # fmt: skip
    b = json.loads((tmp_path / "b/manifest.json").read_text())["stimuli"]
    assert [e["files"] for e in b] == [e["files"] for e in m["stimuli"]]
    for e in b:
        for f in e["files"]:
            assert (tmp_path / "b" / f["file"]).read_bytes() == (root / f["file"]).read_bytes()
    code, out, _ = run_cli(capsys, "regenerate", tmp_path / "b", "--index", "3", "--out", tmp_path / "r")
    assert code == 0 and out.count("identical") == 2 and "0000.gif" in out
    f = m["stimuli"][3]["files"][1]["file"]
    assert (tmp_path / "r" / f).read_bytes() == (root / f).read_bytes()
    # verify: hashes, first-frame spectra and speeds; one changed byte of a movie fails
    code, out, _ = run_cli(capsys, "verify", tmp_path / "b")
    assert code == 0 and "hashes, spectra and speeds checked: OK" in out
    target = tmp_path / "b" / m["stimuli"][2]["file"]
    data = bytearray(target.read_bytes())
    data[-7] ^= 1
    target.write_bytes(bytes(data))
    code, out, _ = run_cli(capsys, "verify", tmp_path / "b", "--json")
    assert code == 1 and json.loads(out)["failures"] == [
        f"{m['stimuli'][2]['file']}: sha256 differs from the manifest (the file was changed)"
    ]
    # a manifest whose measured speed does not match the movie fails the re-measurement
    d = tmp_path / "c"
    shutil.copytree(root, d)
    man = json.loads((d / "manifest.json").read_text())
    man["stimuli"][1]["speed_check"]["measured"]["velocity_px_per_frame"][1] *= 1.01
    (d / "manifest.json").write_text(json.dumps(man))
    code, out, _ = run_cli(capsys, "verify", d)
    assert code == 1 and "0000.npy: re-measured velocity" in out and "requested [0, -0.26667]" in out


MOTION_BAD = [
    ("motion: {frame_rate_hz: 15, n_frames: 5}",
     (r":8: factorial.speed_deg_s\[1\]: speed_deg_s=3 aliases in time: at 16 ppd and 15 Hz the noise "
      r"moves 3.2 px/frame, .* keep the speed below 2.5 deg/s")),
    ("  speed_deg_s: [1, 11]",
     r":8: factorial.speed_deg_s\[1\]: speed_deg_s=11 aliases in time: .*below 10 deg/s"),
    ("motion: {frame_rate_hz: 60, n_frames: 5, duration_s: 1}",
     r":6: motion: give exactly one of duration_s \(s\) and n_frames"),
    ("motion: {frame_rate_hz: 60, duration_s: 0.02}",
     r":6: motion.duration_s: 0.02 s is 1 frame\(s\) at 60 Hz; a movie needs at least 2 frames"),
    ("motion: {n_frames: 5}", r":6: motion: missing required key 'frame_rate_hz'"),
    ("motion: {frame_rate_hz: 60, n_frames: 5, refresh_frames: 0}",
     r"motion.refresh_frames: must be in \[1, inf\), got 0"),
    ("motion: {frame_rate_hz: 60, n_frames: 5, speed: 2}",
     r"motion.speed: unknown key 'speed'; did you mean 'speed_deg_s'\?"),
    ("noise: {family: log_gaussian, band_cpd: [1, 3], frame_rate_hz: 60}",
     r":5: noise.frame_rate_hz: unknown key 'frame_rate_hz' here; it belongs in motion"),
    ("output: {formats: [npy, png8]}",
     r"output.formats\[1\]: png8 is for still images; a motion experiment writes npy movies and gif"),
    ("output: {formats: [gif]}", r"output.formats: a motion experiment needs npy, the \(T, H, W\) float movie"),
    ("noise: {family: dog, sigma_center_deg: 0.1, sigma_surround_deg: 0.2}",
     r":5: noise.sigma_center_deg: a moving DoG is stated by band_cpd, or peak_cpd and octaves"),
]


def assert_line_refused(tmp_path, base: str, line: str, match: str) -> None:
    """``base`` with its top-level line for ``line``'s key replaced (or ``line`` added) is
    refused with ``match``, every problem located in the file."""
    lines = base.splitlines()
    key = line.split(":")[0]
    replaced = [line if ln.startswith(key + ":") else ln for ln in lines]
    if replaced == lines:
        replaced.append(line)
    path = write(tmp_path, "\n".join(replaced) + "\n")
    with pytest.raises(ex.ExperimentError, match=match) as info:
        ex.load_experiment(path)
    assert all(s.startswith(f"{path}:") for s in info.value.lines)


@pytest.mark.parametrize(("line", "match"), MOTION_BAD, ids=[c[0] for c in MOTION_BAD])
def test_every_motion_validation_message(tmp_path, line, match):
    assert_line_refused(tmp_path, MOTION, line, match)


def test_motion_validation_cli_and_still_experiments(tmp_path, capsys):
    # the aliasing error of stimgen.motion, with its line, before anything is generated
    text = """\
    name: aliased
    display: {ppd: 16}
    stimulus: {size_px: 40}
    noise: {family: log_gaussian, band_cpd: [1, 3]}
    motion: {frame_rate_hz: 60, n_frames: 5, speed_deg_s: 12}
    conditions:
      - {speed_deg_s: 1, direction_deg: 45}
      - {speed_deg_s: 9, band_cpd: [1, 4]}
      - {speed_deg_s: null}
    """
    path = write(tmp_path, text)
    code, out, err = run_cli(capsys, "run", path, "--out", tmp_path / "never")
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert lines[0] == f"{path}:5: motion: missing required key 'speed_deg_s' (deg/s), in motion or in every condition"
    assert lines[1].startswith(f"{path}:8: conditions[1].speed_deg_s: speed_deg_s=9 aliases in time: at 16 ppd "
                               "and 60 Hz the noise moves 2.4 px/frame, and its highest frequency (4 cpd")  # fmt: skip
    assert lines[-1].endswith("2 problems in " + str(path) + "; nothing was written")
    code, _, err = run_cli(capsys, "run", write(tmp_path, text.replace("      - {speed_deg_s: 9, band_cpd: [1, 4]}\n      - {speed_deg_s: null}\n", "      - {direction_deg: 0}\n")), "--out", tmp_path / "never")
    assert code == 2 and f"{path}:5: motion.speed_deg_s: speed_deg_s=12 aliases in time" in err
    assert not (tmp_path / "never").exists() and leftovers(tmp_path) == []
    # motion keys and gif previews in a still-image experiment
    still = TINY.replace("  - {band_cpd: [2, 4]}", "  - {band_cpd: [2, 4], speed_deg_s: 2}")
    still = still.replace("formats: [npy, png8]", "formats: [npy, gif]") + "factorial: {direction_deg: [0]}\n"
    with pytest.raises(ex.ExperimentError) as info:
        ex.load_experiment(write(tmp_path, still))
    hint = "varies a motion stimulus; add a motion section (frame_rate_hz, and n_frames or duration_s)"
    assert [ln.split(": ", 1)[1] for ln in info.value.lines] == [
        f"conditions[1].speed_deg_s: speed_deg_s {hint}",
        ("output.formats[1]: gif is the animated preview of a motion experiment (add a motion section); "
         "still images (allowed: npy, png8, png16)"),
        f"factorial.direction_deg: direction_deg {hint}",
    ]


def test_motion_dynamic_noise_and_aliased_tails_warning(tmp_path):
    exp = ex.load_experiment(write(tmp_path, MOTION))
    exp["factorial"] = {}
    exp["noise"] = {**exp["noise"], "family": "dog", "band_cpd": [1, 4]}
    exp["conditions"] = [{"speed_deg_s": 0, "refresh_frames": 1}, {"speed_deg_s": 7}]
    exp["output"]["figures"] = False
    with pytest.warns(UserWarning, match=r"condition 1 \(speed_deg_s=7\): 3.19 % of the noise power lies above"):
        m = ex.run_experiment(exp, tmp_path / "s", jobs=1, progress=False)
    twinkle, fast = m["stimuli"]
    movie = np.load(tmp_path / "s" / twinkle["file"])
    assert twinkle["speed_check"] is None and twinkle["refresh_frames"] == 1
    assert twinkle["pass"] == twinkle["spectral_pass"]
    assert m["conditions"][0]["speed"]["pass"] is None
    # a fresh sample every frame: consecutive frames are uncorrelated
    r = np.corrcoef(movie[0].ravel(), movie[1].ravel())[0, 1]
    assert abs(r) < 0.2
    assert fast["temporal_aliasing"]["aliased_power_fraction"] > 0.01
    assert ex.verify_set(tmp_path / "s").ok


# -- spatiotemporal noise: a temporal band in Hz -------------------------------------------
SPATIOTEMPORAL = """\
name: st
seed: 9
display: {ppd: 16}
stimulus: {size_px: 64, rms_contrast: 0.2}
noise: {family: log_gaussian, band_cpd: [2, 4]}
motion: {model: spatiotemporal, temporal_band_hz: [2, 8], frame_rate_hz: 60, n_frames: 64}
repeats: 16
output: {formats: [npy], figures: false}
"""


@pytest.fixture(scope="module")
def st_set(tmp_path_factory):
    d = tmp_path_factory.mktemp("st")
    y = write(d, SPATIOTEMPORAL)
    m = ex.run_experiment(y, d / "out", jobs=1, progress=False)
    return d / "out", m


def test_spatiotemporal_measures_its_temporal_band_within_3_percent(st_set):
    root, m = st_set
    c = m["conditions"][0]
    # pooled over the condition's 16 movies: within 3 % of the design, beside the spatial band
    assert c["measured"]["temporal_band_hz"] == pytest.approx([2.0, 8.0], rel=0.03)
    assert c["measured"]["band_cpd"] == pytest.approx([2.0, 4.0], rel=0.03)
    t = c["temporal"]
    assert t["n_movies"] == 16 and t["level"] == "half_amplitude" and t["pass"]
    assert t["frequency_resolution_hz"] == 60 / 64 and t["design"]["band_hz"] == pytest.approx([2, 8])
    assert c["pass"] and "speed" not in c
    assert m["motion"]["model"] == "spatiotemporal" and m["motion"]["movie_shape"] == [64, 64, 64]
    # one movie of 64 x 64 px suffices: each entry has its own measured band
    for e in m["stimuli"]:
        assert e["temporal_band_hz"] == pytest.approx([2.0, 8.0], rel=0.1)
        assert e["design_temporal_band_hz"] == pytest.approx([2, 8]) and e["pass"]
        assert e["motion_record"]["stimulus"] == "spatiotemporal_noise" and "speed_check" not in e
    # the entry's band is that of its movie, measured independently here
    from stimgen.experiment.measure import measure_temporal_band, temporal_power

    movie = np.load(root / m["stimuli"][3]["file"])
    assert movie.shape == (64, 64, 64)
    got = measure_temporal_band(temporal_power(movie), 60, 64, "half_amplitude")
    assert got["band_hz"] == pytest.approx(m["stimuli"][3]["temporal_band_hz"], rel=1e-9)
    # the movie is that of stimgen.motion.spatiotemporal_noise with the recorded seed
    from stimgen.motion import movie_from_record

    np.testing.assert_array_equal(movie_from_record(m["stimuli"][3]["motion_record"]), movie)


def test_spatiotemporal_verify_rechecks_the_temporal_band(tmp_path, st_set):
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(st_set[0], root)
    assert ex.verify_set(root).ok
    mpath = root / "manifest.json"
    good = mpath.read_text()
    # a condition's pooled band that its movies do not have
    m = json.loads(good)
    m["conditions"][0]["measured"]["temporal_band_hz"][0] *= 1.001
    mpath.write_text(json.dumps(m))
    rep = ex.verify_set(root)
    assert rep.failures == [(f"manifest.json: conditions[0] (all): re-measured pooled temporal band "
                            f"{_fmt(st_set[1]['conditions'][0]['measured']['temporal_band_hz'])} Hz differs "
                            f"from the manifest's {_fmt(m['conditions'][0]['measured']['temporal_band_hz'])} Hz")]  # fmt: skip
    # one movie's band
    m = json.loads(good)
    m["stimuli"][5]["temporal_band_hz"][1] *= 0.999
    mpath.write_text(json.dumps(m))
    rep = ex.verify_set(root)
    assert len(rep.failures) == 1 and rep.failures[0].startswith("stimuli/c00/0005.npy: re-measured temporal band")
    mpath.write_text(good)
    assert ex.verify_set(root).ok


def _fmt(band):
    from stimgen.experiment.measure import fmt_num

    return fmt_num(band)


def test_spatiotemporal_conditions_low_pass_and_one_movie_too_small(tmp_path):
    text = SPATIOTEMPORAL.replace("size_px: 64", "size_px: 16").replace("repeats: 16", "repeats: 4")
    text = text.replace("band_cpd: [2, 4]", "band_cpd: [2, 6]")
    text += "conditions:\n  - {label: band}\n  - {label: low, temporal_band_hz: [0, 6]}\n"
    m = ex.run_experiment(write(tmp_path, text), tmp_path / "s", jobs=1, progress=False)
    band, low = m["conditions"]
    assert low["measured"]["temporal_band_hz"][0] == 0.0  # a temporal low-pass
    assert low["temporal"]["design"]["band_hz"][0] == 0.0
    assert low["measured"]["temporal_band_hz"][1] == pytest.approx(6.0, rel=low["temporal"]["tolerance"]["high"])
    assert band["measured"]["temporal_band_hz"] == pytest.approx([2, 8], rel=0.15)
    # a 16 x 16 px movie is too little data for its own band: said so, not a number
    e = m["stimuli"][0]
    assert e["temporal_band_hz"] is None and e["temporal_check"]["measured"] is None
    assert "one movie of 64 frames of 16 x 16 px does not suffice" in e["temporal_check"]["why"]
    assert e["condition"]["temporal_band_hz"] == [2, 8] and m["stimuli"][4]["condition"]["temporal_band_hz"] == [0, 6]
    assert ex.verify_set(tmp_path / "s").ok


ST_BAD = [
    ("motion: {model: spatiotemporal, temporal_band_hz: [2, 8], frame_rate_hz: 60, n_frames: 64, speed_deg_s: 2}",
     (r":6: motion.speed_deg_s: speed_deg_s is for drifting noise \(model: drift\); spatiotemporal noise has no "
     r"single velocity: it is band-limited in time by temporal_band_hz \(Hz\)")),
    ("motion: {temporal_band_hz: [2, 8], frame_rate_hz: 60, n_frames: 64, speed_deg_s: 2}",
     r":6: motion.temporal_band_hz: temporal_band_hz is for noise band-limited in time \(model: spatiotemporal\)"),
    ("motion: {model: spatiotemporal, frame_rate_hz: 60, n_frames: 64}",
     r":6: motion: missing required key 'temporal_band_hz' \(\[low, high\] in Hz\), in motion or in every condition"),
    ("motion: {model: spatiotemporal, temporal_band_hz: [2, 40], frame_rate_hz: 60, n_frames: 64}",
     r":6: motion.temporal_band_hz: temporal_band_hz high edge 40 Hz exceeds the temporal Nyquist limit \(30 Hz at 60 Hz\)"),
    ("motion: {model: spatiotemporal, temporal_band_hz: [0.5, 8], frame_rate_hz: 60, n_frames: 64}",
     r"motion.temporal_band_hz: temporal_band_hz low edge 0.5 Hz is below one cycle per movie \(0.9375 Hz"),
    ("motion: {model: spatiotemporal, temporal_band_hz: [8, 2], frame_rate_hz: 60, n_frames: 64}",
     r":6: motion.temporal_band_hz: must be \[low, high\] in Hz with low < high"),
    ("motion: {model: spatiotemporal, temporal_band_hz: [2, 8], temporal_family: box, frame_rate_hz: 60, n_frames: 64}",
     r":6: motion.temporal_family: must be one of butterworth, log_gaussian, ideal, dog, gaussian"),
    ("motion: {model: sideways, frame_rate_hz: 60, n_frames: 64}", r":6: motion.model: must be one of drift, spatiotemporal"),
    ("factorial: {speed_deg_s: [1, 2], temporal_band_hz: [[2, 8], [3, 9]]}",
     r"^[^\n]*:9: factorial.speed_deg_s: speed_deg_s is for drifting noise \(model: drift\)[^\n]*$"),
]


@pytest.mark.parametrize(("line", "match"), ST_BAD, ids=[c[0] for c in ST_BAD])
def test_every_spatiotemporal_validation_message(tmp_path, line, match):
    assert_line_refused(tmp_path, SPATIOTEMPORAL, line, match)


@pytest.mark.parametrize(
    ("band", "family", "n_frames", "fps"),
    [((2, 8), "butterworth", 64, 60), ((2, 8), "butterworth", 30, 60), ((1, 4), "log_gaussian", 64, 60),
     ((3, 10), "butterworth", 50, 60), ((2, 9), "dog", 64, 60), ((0, 10), "butterworth", 64, 60),
     ((0, 7), "gaussian", 40, 60), ((2, 8), "butterworth", 64, 100)],
)  # fmt: skip
def test_temporal_band_of_the_exact_design_spectrum(band, family, n_frames, fps):
    """Noise-free (the design's |H_t|^2 at the DFT frequencies): the interpolation errs by < 0.1 df/edge."""
    from stimgen.experiment.measure import measure_temporal_band, temporal_tolerance
    from stimgen.motion import _temporal_filter

    filt, pb = _temporal_filter(band, fps, n_frames, family, "half_amplitude", 4)
    freq = np.fft.rfftfreq(n_frames, 1 / fps)
    got = measure_temporal_band(np.asarray(filt.transfer(freq / fps)) ** 2, fps, n_frames, "half_amplitude")
    design = [pb.low_cpp * fps, pb.high_cpp * fps]
    df = fps / n_frames
    assert got["frequency_resolution_hz"] == df
    for m, d in zip(got["band_hz"], design, strict=True):
        if d == 0:
            assert m == 0.0  # a low-pass: the power never falls below the level towards 0 Hz
        else:
            assert abs(m / d - 1) < 0.1 * df / d
    if n_frames == 30:  # both edges on the frequency grid (2 Hz apart): exact
        assert got["band_hz"] == pytest.approx(design, rel=1e-6)
    # the tolerance covers the grid term
    tol = temporal_tolerance({}, 16, (n_frames, 64, 64), fps, n_frames, design)
    assert all(t >= 0.03 + 0.1 * df / (e or design[1]) - 1e-12 for t, e in zip(tol, design, strict=True))
    assert temporal_tolerance({"temporal_edge_tolerance": 0.01}, 1, (8, 8, 8), fps, n_frames, design) == [0.01, 0.01]


def test_temporal_power_is_the_pixel_mean_periodogram(rng):
    from stimgen.experiment.measure import temporal_power

    movie = rng.standard_normal((12, 5, 7)).astype(np.float32)
    naive = np.mean(np.abs(np.fft.rfft(movie.astype(np.float64), axis=0)) ** 2, axis=(1, 2))
    np.testing.assert_allclose(temporal_power(movie), naive, rtol=1e-12)
    with pytest.raises(ValueError, match=r"a temporal spectrum of 12 frames needs 7 positive values"):
        from stimgen.experiment.measure import measure_temporal_band

        measure_temporal_band(np.zeros(7), 60, 12, "half_amplitude")


def test_spatiotemporal_shipped_experiment_validates():
    exp = ex.load_experiment(EXPERIMENTS / "spatiotemporal_noise.yaml")
    assert exp["motion"]["model"] == "spatiotemporal" and exp["motion"]["temporal_band_hz"] == [2, 8]
    assert ex.validate_experiment(exp) == exp


# -- review fixes: nulls, YAML tags, merges, damaged manifests, clipping, verify ----------------
FAMILY_FACTORIAL = """\
name: fams
seed: 3
display: {ppd: 16}
stimulus: {size_px: 64}
noise: {band_cpd: [1, 4]}
factorial:
  family: [dog, log_gaussian]
output: {figures: false}
"""


def test_factorial_family_set_verifies_and_regenerates(tmp_path, capsys):
    # noise.family is null in the stored experiment: it must re-validate
    exp = ex.load_experiment(write(tmp_path, FAMILY_FACTORIAL))
    assert exp["noise"]["family"] is None
    m = ex.run_experiment(ex.load_experiment(write(tmp_path, FAMILY_FACTORIAL)), tmp_path / "s",
                          jobs=1, progress=False)  # fmt: skip
    assert [e["condition"]["family"] for e in m["stimuli"]] == ["dog", "log_gaussian"]
    code, out, _ = run_cli(capsys, "verify", tmp_path / "s")
    assert code == 0 and out.strip().endswith(": OK")
    code, out, _ = run_cli(capsys, "regenerate", tmp_path / "s", "--index", "1")
    assert code == 0 and "identical" in out


def test_null_means_not_set(tmp_path):
    text = TINY.replace("repeats: 3", "repeats: null").replace("dither: noisy-bit", "dither: null")
    text = text.replace("{family: log_gaussian}", "{family: log_gaussian, kind: null}")
    exp = ex.load_experiment(write(tmp_path, text))
    assert (exp["repeats"], exp["output"]["dither"], exp["noise"]["kind"]) == (1, "none", "gaussian")


@pytest.mark.parametrize(
    ("line", "match"),
    [
        ("seed: !seed 5", r":2: seed: cannot read this value: .*'!seed'.*custom tags .* remove the tag"),
        ("seed: !!int abc", r":2: seed: cannot read 'abc' as int"),
        ("repeats: 100000000", r":\d+: repeats: the plan has 200,000,000 stimuli .*at most 10,000,000"),
        ("stimulus: {size_px: 64, rms_contrast: 1.0e3}", r"must be a number, got string '1.0e3' .*write 1.0e\+3\)"),
        ("output: {dither: no}", r"output.dither: .*unquoted no as the boolean false: did you mean none\?"),
    ],
)
def test_yaml_problems_are_located_never_tracebacks(tmp_path, capsys, line, match):
    key = line.split(":")[0]
    lines = [ln for ln in TINY.splitlines() if not ln.startswith(key + ":")]
    lines.insert(1, line) if key == "seed" else lines.append(line)
    path = write(tmp_path, "\n".join(lines) + "\n")
    with pytest.raises(ex.ExperimentError, match=match):
        ex.load_experiment(path)
    code, out, err = run_cli(capsys, "run", path, "--out", tmp_path / "never")
    assert code == 2 and out == "" and "Traceback" not in err and not (tmp_path / "never").exists()
    assert err.splitlines()[0].startswith(f"{path}:")


def test_tabs_suggest_spaces(tmp_path):
    with pytest.raises(ex.ExperimentError, match=r"malformed YAML: .*tabs for indentation: use spaces"):
        ex.load_experiment(write(tmp_path, "name: x\ndisplay:\n\tppd: 16\n"))


def test_merge_keys_override_silently_duplicates_still_fail(tmp_path):
    merged = TINY.replace("conditions:\n  - {band_cpd: [1, 2]}\n  - {band_cpd: [2, 4]}\n",
                          "base: &base {band_cpd: [1, 2], rms_contrast: 0.1}\n"
                          "conditions:\n  - *base\n  - <<: *base\n    band_cpd: [2, 4]\n")  # fmt: skip
    merged = merged.replace("base: &base", "x-base: &base")
    with pytest.raises(ex.ExperimentError, match=r"x-base: unknown key") as info:
        ex.load_experiment(write(tmp_path, merged))
    assert "duplicate" not in str(info.value)
    text = merged.replace("x-base: &base {band_cpd: [1, 2], rms_contrast: 0.1}\n", "")
    text = text.replace("  - *base\n  - <<: *base\n",
                        "  - &base {band_cpd: [1, 2], rms_contrast: 0.1}\n  - <<: *base\n")  # fmt: skip
    conds = ex.expand_conditions(ex.load_experiment(write(tmp_path, text)))
    assert [c["params"]["band_cpd"] for c in conds] == [[1, 2], [2, 4]]
    assert [c["params"]["rms_contrast"] for c in conds] == [0.1, 0.1]
    dup = text.replace("    band_cpd: [2, 4]\n", "    band_cpd: [2, 4]\n    band_cpd: [4, 8]\n")
    with pytest.raises(ex.ExperimentError, match=r":10: conditions\[1\].band_cpd: duplicate key \(first given on line 9\)"):
        ex.load_experiment(write(tmp_path, dup))


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        (lambda m: m.update(stimuli={"0": m["stimuli"][0]}), r"stimuli must be a list of entries, got dict"),
        (lambda m: m["stimuli"][0]["files"][0].pop("file"), r"stimuli\[0\].files\[0\].file must be a relative path"),
        (lambda m: m["stimuli"][2].update(index=7), r"stimuli\[2\].index must be 2"),
        (lambda m: m.update(seed_entropy="42"), r"seed_entropy must be an integer >= 0, got '42'"),
        (lambda m: m["stimuli"][0]["files"][1].update(file="../../x.png"), r"files\[1\].file must be a path inside"),
    ],
)
def test_damaged_manifest_is_a_clear_error(tiny_set, capsys, damage, match):
    root, _, _ = tiny_set
    m = json.loads((root / "manifest.json").read_text())
    damage(m)
    (root / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(ValueError, match=match):
        ex.verify_set(root)
    with pytest.raises(ValueError, match=match):
        ex.regenerate_stimulus(root, 0)
    for cmd in (["verify", root], ["regenerate", root, "--index", "0"]):
        code, _, err = run_cli(capsys, *cmd)
        assert code == 2 and err.count("\n") == 1 and "manifest is damaged" in err


def test_chunks_are_lazy_ranges():
    chunks = execute._chunks(10_000_000, 2)
    assert isinstance(chunks[0], range) and chunks[-1].stop == 10_000_000
    assert sum(len(c) for c in chunks) == 10_000_000


def test_clipping_beyond_the_limit_warns(tmp_path, capsys):
    text = TINY.replace("rms_contrast: 0.2", "rms_contrast: 0.5").replace("repeats: 3", "repeats: 1")
    y = write(tmp_path, text)
    with pytest.warns(UserWarning, match=r"2 of 2 stimuli have more than 0.100% of their pixels clipped"):
        m = ex.run_experiment(y, tmp_path / "a", jobs=1, progress=False)
    clip = m["conditions"][0]["clipping"]
    # Gaussian noise at RMS 0.5 is clipped where |x| > 2 SD: about 4.6 % of pixels
    assert clip["n_over_limit"] == 1 and 0.02 < clip["max_clipped_fraction"] < 0.08
    # clipped stimuli are not the contrast asked for: they fail their check, the set is marked failed (exit 3)
    assert m["status"] == "failed" and m["n_fail"] >= 1
    code, out, err = run_cli(capsys, "run", y, "--out", tmp_path / "b", "--jobs", "1")
    assert code == 3 and err.startswith("stimgen run: warning: ") and "lower stimulus.rms_contrast" in err
    assert out.count("CLIPPED: 1/1 over 0.100%") == 2


def test_entries_carry_condition_parameters_and_plural(tmp_path, capsys, tiny_set):
    _, m, _ = tiny_set
    c = m["stimuli"][3]["condition"]
    assert c["index"] == 1 and c["label"] == "band_cpd=2-4"
    assert (c["family"], c["band_cpd"], c["level"], c["rms_contrast"], c["mean"]) == (
        "log_gaussian", [2, 4], "half_amplitude", 0.2, 0.0)  # fmt: skip
    assert c["peak_cpd"] is None and c["kind"] == "gaussian"
    y = write(tmp_path, TINY.replace("repeats: 3", "repeats: 1").replace("  - {band_cpd: [2, 4]}\n", ""))
    code, out, _ = run_cli(capsys, "run", y, "--out", tmp_path / "one", "--jobs", "1")
    assert code == 0 and out.startswith("wrote 1 stimulus (")


def test_motion_entries_no_negative_zero(motion_set):
    _, m, _ = motion_set
    for e in m["stimuli"]:
        assert e["condition"]["speed_deg_s"] == e["speed_deg_s"]
        for v in (*e["velocity_deg_s"], *e["velocity_px_per_frame"]):
            assert math.copysign(1.0, v) == 1.0 or v != 0


def test_verify_blind_spots(tiny_set, capsys):
    root, _, _ = tiny_set
    mpath = root / "manifest.json"
    orig = mpath.read_text()
    m = json.loads(orig)
    m["n_stimuli"] = 7
    mpath.write_text(json.dumps(m))
    rep = ex.verify_set(root, spectra=False)
    assert rep.failures == ["manifest.json: n_stimuli is 7 but 6 stimuli are listed"]
    m = json.loads(orig)
    m["stimuli"] = m["stimuli"][:5]
    m["n_stimuli"] = 5
    mpath.write_text(json.dumps(m))
    rep = ex.verify_set(root)
    assert "manifest.json: the stored experiment plans 6 stimuli but 5 are listed" in rep.failures
    assert any(f.endswith("0002.npy: under stimuli/ but not in the manifest") for f in rep.failures)
    m = json.loads(orig)
    m["stimuli"][0]["files"][0]["shape"] = [64, 63]
    m["stimuli"][0]["files"][1]["dtype"] = "uint16"
    mpath.write_text(json.dumps(m))
    rep = ex.verify_set(root, spectra=False)
    f0, f1 = (f["file"] for f in m["stimuli"][0]["files"])
    assert rep.failures == [f"{f0}: holds an array of shape [64, 64], the manifest says [64, 63]",
                            f"{f1}: holds uint8 data, the manifest says uint16"]  # fmt: skip
    mpath.write_text(orig)
    (root / "stimuli" / "extra.npy").write_bytes(b"x")
    code, out, _ = run_cli(capsys, "verify", root, "--no-spectra")
    assert code == 1 and "FAIL stimuli/extra.npy: under stimuli/ but not in the manifest" in out
