"""Critical-band noise (lowpass, highpass, notch) in experiment files, and frozen noise."""

from __future__ import annotations

import hashlib
import json
import math
import textwrap
from pathlib import Path

import numpy as np
import pytest

from stimgen import experiment as ex
from stimgen import plotting
from stimgen.cli import main
from stimgen.contrast import set_rms_contrast
from stimgen.experiment.draw import make_entry
from stimgen.experiment.noise_part import FROZEN_NOISE_TAG
from stimgen.experiment.plan import plan_of
from stimgen.filters import Notch
from stimgen.noise import _frozen_filtered_noise, make_filter

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
PPD = 35.8375

CRITICAL = """\
name: critical
seed: 5
display: {ppd: 35.8375}
stimulus: {size_px: 512, rms_contrast: 0.15}
noise: {family: lowpass, cutoff_cpd: 3}
conditions:
  - {label: low}
  - {label: high, family: highpass}
  - {label: low gaussian, rolloff: gaussian}
  - {label: notch, family: notch, band_cpd: [2, 4]}
repeats: 16
output: {formats: [npy], dtype: float64, figures: true}
"""


def write(tmp_path: Path, text: str, name: str = "exp.yaml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def load(root: Path, entry: dict) -> np.ndarray:
    return np.load(root / entry["file"])


@pytest.fixture(scope="module")
def critical_set(tmp_path_factory):
    d = tmp_path_factory.mktemp("critical")
    m = ex.run_experiment(write(d, CRITICAL), d / "out", jobs=1, progress=False)
    return d / "out", m


# -- acceptance: cutoffs, stop-band edges, depth, RMS -----------------------------------------
def test_critical_band_conditions_measure_their_design(critical_set):
    root, m = critical_set
    by = {c["label"]: c for c in m["conditions"]}
    assert [c["params"]["family"] for c in m["conditions"]] == ["lowpass", "highpass", "lowpass", "notch"]
    for label, side in (("low", "high"), ("high", "low"), ("low gaussian", "high")):
        c = by[label]
        assert c["pass"] is True and c["spectral_status"] == "pass", c["spectral_reason"]
        assert c["measured"]["peak_cpd"] is None
        assert c["measured"]["cutoff_cpd"] == pytest.approx(3.0, rel=0.02)
        assert abs(c["rel_error"][side]) <= 0.02
        assert c["design"]["band_cpd"][0 if side == "low" else 1] == pytest.approx(3.0, rel=1e-9)
    assert all(c["design"]["peak_cpd"] is None for c in m["conditions"])
    notch = by["notch"]
    assert notch["pass"] is True and notch["spectral_status"] == "pass", notch["spectral_reason"]
    assert notch["params"]["order"] == 8  # a notch's default order, from a low-pass section
    assert notch["measured"]["band_cpd"] == pytest.approx([2.0, 4.0], rel=0.02)
    assert notch["design"]["kind"] == "notch"
    assert notch["measured"]["notch_depth_db"] >= 20.0
    assert notch["measured"]["notch_depth_db"] == pytest.approx(notch["measured"]["design_notch_depth_db"], abs=1.0)
    assert notch["measured"]["design_notch_depth_db"] == pytest.approx(23.6, abs=0.1)  # as filters.Notch says


def test_critical_band_entries_rms_exact_and_edges_per_stimulus(critical_set):
    root, m = critical_set
    for e in m["stimuli"]:
        assert e["clipped_fraction"] == 0.0
        assert e["rms_contrast"] == pytest.approx(0.15, rel=1e-12)
        assert e["pass"] is True
        fam = e["condition"]["family"]
        if fam == "notch":
            assert e["design_band_cpd"] == pytest.approx([2.0, 4.0], rel=1e-9)
            assert e["design_peak_cpd"] is None
            assert e["band_cpd"] == pytest.approx([2.0, 4.0], rel=0.03)
            assert e["notch_depth_db"] >= 20.0
        else:
            assert e["cutoff_cpd"] == pytest.approx(3.0, rel=0.05)
            assert e["design_peak_cpd"] is None


def test_critical_band_set_verifies_and_regenerates(critical_set):
    root, m = critical_set
    rep = ex.verify_set(root)
    assert rep.failures == [] and rep.failed_checks == []
    for i in (0, 20, 63):
        res = ex.regenerate_stimulus(root, i)
        assert all(f["match"] for f in res["files"])
    manifest = json.loads((root / "manifest.json").read_text())
    assert ex.validate_experiment(manifest["experiment"]) == manifest["experiment"]  # resolves to itself
    assert manifest["experiment"]["noise"]["cutoff_cpd"] == 3
    assert manifest["experiment"]["noise"]["rolloff"] == "butterworth"
    assert {"spectrum_c03_notch.png", "spectrum_c01_high.png"} <= {Path(f).name for f in manifest["figures"]}


def test_flipped_bit_in_a_notch_stimulus_caught(critical_set, tmp_path):
    import shutil

    root, m = critical_set
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    f = copy / m["stimuli"][-1]["file"]
    data = bytearray(f.read_bytes())
    data[-5] ^= 0x10
    f.write_bytes(bytes(data))
    rep = ex.verify_set(copy)
    assert any(m["stimuli"][-1]["file"] in msg and "sha256" in msg for msg in rep.failures)


def test_measured_notch_matches_energy_measure_critical_band(critical_set):
    """The entry's notch edges and depth are energy.measure_critical_band's."""
    from stimgen.energy import measure_critical_band

    root, m = critical_set
    e = m["stimuli"][-1]
    filt = make_filter("notch", ppd=PPD, band_cpd=[2, 4])
    got = measure_critical_band(load(root, e), filt, ppd=PPD)
    assert e["band_cpd"] == pytest.approx(got["measured_band_cpd"], rel=1e-12)
    assert e["notch_depth_db"] == pytest.approx(got["depth_db"], rel=1e-12)


# -- resolution: order, rolloff and the resolved section ----------------------------------------
def resolved(tmp_path: Path, noise: str, rest: str = "") -> dict:
    text = ("name: r\ndisplay: {ppd: 35.8375}\nstimulus: {size_px: 256, rms_contrast: 0.2}\n"
            f"noise: {noise}\n{rest}")  # fmt: skip
    return ex.load_experiment(write(tmp_path, text))


def test_order_resolves_to_the_family_default(tmp_path):
    exp = resolved(tmp_path, "{family: notch, band_cpd: [2, 4]}")
    assert exp["noise"]["order"] == 8
    assert "cutoff_cpd" not in exp["noise"] and "frozen" not in exp["noise"]
    exp = resolved(tmp_path, "{family: log_gaussian, band_cpd: [1, 2]}")
    assert exp["noise"]["order"] == 4 and "rolloff" not in exp["noise"]
    # a factorial over families: each takes its own default order
    exp = resolved(tmp_path, "{band_cpd: [2, 4]}", "factorial:\n  family: [butterworth, notch]\n")
    assert [c["params"]["order"] for c in ex.expand_conditions(exp)] == [4, 8]
    # an order the section states (not its family's default) holds for every condition
    exp = resolved(tmp_path, "{family: lowpass, cutoff_cpd: 2, order: 6}",
                   "conditions:\n  - {}\n  - {family: notch, band_cpd: [2, 4]}\n  - {family: notch, band_cpd: [2, 4], order: 10}\n")
    assert [c["params"]["order"] for c in ex.expand_conditions(exp)] == [6, 6, 10]
    exp = resolved(tmp_path, "{family: notch, band_cpd: [2, 4]}",
                   "conditions:\n  - {}\n  - {family: highpass, cutoff_cpd: 2}\n")
    conds = ex.expand_conditions(exp)
    assert [c["params"]["order"] for c in conds] == [8, 4]
    assert conds[1]["params"]["rolloff"] == "butterworth" and conds[1]["params"]["band_cpd"] is None


def test_every_key_varies_by_condition(tmp_path):
    exp = resolved(tmp_path, "{family: lowpass, cutoff_cpd: 2}",
                   "factorial:\n  cutoff_cpd: [1, 2, 4]\n  rolloff: [butterworth, gaussian]\n")
    conds = ex.expand_conditions(exp)
    assert [(c["params"]["cutoff_cpd"], c["params"]["rolloff"]) for c in conds] == [
        (1, "butterworth"), (1, "gaussian"), (2, "butterworth"), (2, "gaussian"), (4, "butterworth"), (4, "gaussian")]
    plan = plan_of(exp)
    for c in plan.conditions:
        d, _ = ex.generate_stimulus(exp, c.first, 3)
        assert d.shape == (256, 256)


#: sha256 (first 16 hex digits) of each shipped experiment's resolved noise section (without
#: ``synthesis``), and of the bytes of its first and last stimulus' files drawn with
#: ``synthesis: spatial``, as made before the critical-band families existed
SHIPPED = {
    "dog_vs_log_gaussian.yaml": ("39c47de0d5e32b22", "ff6e49ca40e2601c"),
    "drifting_noise.yaml": ("64fba9cba3e93761", "8932a3ec1b7ccbb1"),
    "masks_octave_bands.yaml": ("665821b3fc7dabc9", "e32548790a3771d0"),
    "oriented_noise.yaml": ("0899e7aa60eb9100", "072a596c50689694"),
    "pink_noise.yaml": ("66031297d0c23c8e", "98247f0e3fe282bc"),
    "spatiotemporal_noise.yaml": ("d73b2637ae2ae079", "b310e96a365d75e2"),
}


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_experiments_resolve_and_draw_as_before(name):
    exp = ex.load_experiment(EXPERIMENTS / name)
    assert exp["noise"]["synthesis"] == ("spatial" if exp.get("motion") else "spectral")
    exp = {**exp, "noise": {**exp["noise"], "synthesis": "spatial"}}
    plan = plan_of(exp)
    h = hashlib.sha256()
    for i in sorted({0, plan.n - 1}):
        _, files, _, _ = make_entry(plan, i, exp["seed"], measure=False)
        for _, _, data in files:
            h.update(data)
    old_section = {k: v for k, v in exp["noise"].items() if k != "synthesis"}
    section = hashlib.sha256(json.dumps(old_section).encode()).hexdigest()[:16]
    assert (section, h.hexdigest()[:16]) == SHIPPED[name]
    assert not {"cutoff_cpd", "rolloff", "frozen"} & set(exp["noise"])
    assert not {"cutoff_cpd", "rolloff"} & set(plan.conditions[0].params)


# -- errors at FILE:LINE ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("noise", "match"),
    [
        ("{family: lowpass, cutoff_cpd: 30}", r"exp.yaml:4: noise.cutoff_cpd: cutoff_cpd 30 cpd exceeds Nyquist \(17.92 cpd"),
        ("{family: highpass, cutoff_cpd: 20}", r"exp.yaml:4: noise.cutoff_cpd: cutoff_cpd 20 cpd exceeds Nyquist \(17.92 cpd"),
        ("{family: notch, band_cpd: [10, 20]}", r"exp.yaml:4: noise.band_cpd: band_cpd high edge 20 cpd exceeds Nyquist \(17.92 cpd"),
        ("{family: notch, band_cpd: [0.05, 0.1]}", r"exp.yaml:4: noise.band_cpd: band low edge 0.05 cpd is below one cycle per image \(0.14 cpd"),
        ("{family: lowpass, cutoff_cpd: 0.05}", r"exp.yaml:4: noise.cutoff_cpd: cutoff 0.05 cpd is below one cycle per image \(0.14 cpd"),
        ("{family: highpass, cutoff_cpd: 0.05}", r"exp.yaml:4: noise.cutoff_cpd: band low edge 0.05 cpd is below one cycle per image"),
        ("{family: log_gaussian, cutoff_cpd: 2}", r"exp.yaml:4: noise.cutoff_cpd: cutoff_cpd belongs to the families 'lowpass' and 'highpass'"),
        ("{family: notch, cutoff_cpd: 2}", r"exp.yaml:4: noise.cutoff_cpd: family 'notch' takes band_cpd"),
        ("{family: lowpass, band_cpd: [1, 2]}", r"exp.yaml:4: noise.band_cpd: family 'lowpass' takes cutoff_cpd .*not band_cpd"),
        ("{family: highpass}", r"exp.yaml:4: noise.family: family 'highpass' needs cutoff_cpd"),
        ("{family: notch}", r"exp.yaml:4: noise.family: family 'notch' needs the stop band"),
        ("{family: notch, band_cpd: [2, 4], rolloff: gaussian}", r"exp.yaml:4: noise.rolloff: .*rolloff 'gaussian' is not available"),
        ("{family: dog, band_cpd: [1, 4], rolloff: gaussian}", r"exp.yaml:4: noise.rolloff: rolloff 'gaussian' shapes the families"),
        ("{family: lowpass, cutoff_cpd: 2, orientation_deg: 45}", r"exp.yaml:4: noise.orientation_deg: family 'lowpass' is isotropic"),
        ("{family: lowpass, cutoff_cpd: 2, rolloff: cosine}", r"exp.yaml:4: noise.rolloff: must be one of butterworth, gaussian"),
        ("{family: lowpass, cutoff_cpd: -1}", r"exp.yaml:4: noise.cutoff_cpd: "),
        ("{family: lowpass, cutoff_cpd: 2, frozen: 1}", r"exp.yaml:4: noise.frozen: .*true or false"),
    ],
)
def test_bad_critical_band_keys_located(tmp_path, noise, match):
    text = f"name: e\ndisplay: {{ppd: 35.8375}}\nstimulus: {{size_px: 256, rms_contrast: 0.2}}\nnoise: {noise}\n"
    with pytest.raises(ex.ExperimentError, match=match):
        ex.load_experiment(write(tmp_path, text))


def test_notch_above_nyquist_in_a_condition_located(tmp_path, capsys):
    y = write(tmp_path, """\
        name: e
        display: {ppd: 35.8375}
        stimulus: {size_px: 256, rms_contrast: 0.2}
        noise: {family: lowpass, cutoff_cpd: 2}
        conditions:
          - {}
          - {family: notch, band_cpd: [12, 24]}
        """)
    assert main(["run", str(y), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert (f"{y}:7: conditions[1].band_cpd: band_cpd high edge 24 cpd exceeds Nyquist (17.92 cpd at 35.84 ppd) "
            "(with family 'notch' from conditions[1].family)") in err  # fmt: skip
    assert not (tmp_path / "out").exists()


# -- frozen noise -----------------------------------------------------------------------------
FROZEN = """\
name: frozen
seed: 9
display: {ppd: 16}
stimulus: {size_px: 64, rms_contrast: 0.05}
noise: {family: log_gaussian, band_cpd: [1, 2], frozen: true}
conditions:
  - {label: a}
  - {label: a again}
  - {rms_contrast: 0.1}
  - {rms_contrast: 0.15}
  - {band_cpd: [2, 4]}
  - {family: notch, band_cpd: [1, 2], repeats: 2}
repeats: 3
output: {formats: [npy, png8], dither: noisy-bit, figures: false}
"""


@pytest.fixture(scope="module")
def frozen_set(tmp_path_factory):
    d = tmp_path_factory.mktemp("frozen")
    m = ex.run_experiment(write(d, FROZEN), d / "out", jobs=1, progress=False)
    return d / "out", m


def field_of(root: Path, m: dict, cond: int, repeat: int) -> tuple[np.ndarray, dict]:
    c = m["conditions"][cond]
    e = m["stimuli"][c["first"] + repeat]
    assert e["repeat"] == repeat
    return load(root, e), e


def test_frozen_noise_same_across_conditions_new_each_repeat(frozen_set):
    root, m = frozen_set
    assert m["experiment"]["noise"]["frozen"] is True
    for r in range(3):
        a, ea = field_of(root, m, 0, r)
        b, _ = field_of(root, m, 1, r)
        assert a.tobytes() == b.tobytes()  # conditions that differ only in label: the same bytes
        assert ea["frozen_noise"] == {"tag": FROZEN_NOISE_TAG, "repeat": r}
        for cond, rms in ((2, 0.1), (3, 0.15)):  # a contrast series: the noise field / rms is one
            x, e = field_of(root, m, cond, r)
            assert e["clipped_fraction"] == 0.0
            assert e["rms_contrast"] == pytest.approx(rms, rel=1e-5)  # float32
            np.testing.assert_allclose(x / rms, a / 0.05, rtol=0, atol=1e-6)
    for r, s in ((0, 1), (0, 2), (1, 2)):
        a, _ = field_of(root, m, 0, r)
        b, _ = field_of(root, m, 0, s)
        assert np.max(np.abs(a - b)) > 0.02


def test_frozen_noise_is_one_white_draw_through_each_filter(frozen_set):
    """The seeding rule: repeat r's white noise comes from SeedSequence(entropy, (TAG, r))."""
    root, m = frozen_set
    entropy = m["seed_entropy"]
    for cond, band, fam in ((0, [1, 2], "log_gaussian"), (4, [2, 4], "log_gaussian"), (5, [1, 2], "notch")):
        for r in range(m["conditions"][cond]["repeats"]):
            rng = np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=(FROZEN_NOISE_TAG, r)))
            img = _frozen_filtered_noise((64, 64), make_filter(fam, ppd=16, band_cpd=band), kind="gaussian",
                                         rng=rng, dtype=np.float32, synthesis="spectral")  # fmt: skip
            want = set_rms_contrast(img, 0.05, out=img)
            got, _ = field_of(root, m, cond, r)
            assert got.tobytes() == want.tobytes()


def test_frozen_set_verifies_and_each_stimulus_regenerates_alone(frozen_set):
    root, m = frozen_set
    rep = ex.verify_set(root)
    assert rep.failures == [] and rep.failed_checks == []
    for i in (0, 4, 7, m["n_stimuli"] - 1):  # npy and the dithered png8 (the stimulus' generator)
        res = ex.regenerate_stimulus(root, i)
        assert [f["match"] for f in res["files"]] == [True, True]


def test_stimgen_regenerate_rebuilds_a_frozen_stimulus_alone(frozen_set, tmp_path, capsys):
    root, m = frozen_set
    i = m["conditions"][3]["first"] + 2  # rms 0.15, repeat 2
    assert main(["regenerate", str(root), "--index", str(i), "--out", str(tmp_path / "re"), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert [f["match"] for f in res["files"]] == [True, True]
    e = m["stimuli"][i]
    assert (tmp_path / "re" / e["file"]).read_bytes() == (root / e["file"]).read_bytes()


def test_unfrozen_noise_differs_between_conditions(tmp_path):
    exp = ex.load_experiment(write(tmp_path, FROZEN.replace(", frozen: true", "")))
    assert "frozen" not in exp["noise"]
    a, _ = ex.generate_stimulus(exp, 0, 9)
    b, _ = ex.generate_stimulus(exp, 3, 9)  # condition "a again", repeat 0
    assert np.max(np.abs(a - b)) > 0.02
    exp_f = ex.load_experiment(write(tmp_path, FROZEN))
    a, _ = ex.generate_stimulus(exp_f, 0, 9)
    b, _ = ex.generate_stimulus(exp_f, 3, 9)
    assert a.tobytes() == b.tobytes()


def test_frozen_noise_with_motion_refused_at_its_line(tmp_path):
    y = write(tmp_path, FROZEN.replace("repeats: 3\n", "repeats: 3\nmotion: {speed_deg_s: 1, frame_rate_hz: 30, n_frames: 4}\n"))
    with pytest.raises(ex.ExperimentError, match=r"exp.yaml:5: noise.frozen: frozen noise is for still images"):
        ex.load_experiment(y)


# -- figures ----------------------------------------------------------------------------------
def test_notch_transfer_plot_marks_its_stop_band(tmp_path):
    filt = make_filter("notch", ppd=PPD, band_cpd=[2, 4])
    assert isinstance(filt, Notch)
    ax = plotting.plot_transfer(filt, ppd=PPD)
    label = ax.get_legend().get_texts()[0].get_text()
    assert "notch, stop band 2-4 cpd" in label and "high-pass" not in label
    spans = [p for p in ax.patches if p.get_x() > 0]
    assert len(spans) == 1
    assert spans[0].get_x() == pytest.approx(2.0) and spans[0].get_x() + spans[0].get_width() == pytest.approx(4.0)
    plotting.save(ax.figure, tmp_path / "notch.png")
    assert (tmp_path / "notch.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_condition_spectrum_of_critical_band_noise_fits_the_plateau(critical_set):
    from stimgen.spectrum import radial_spectrum

    root, m = critical_set
    entries = [e for e in m["stimuli"] if e["condition"]["family"] == "notch"]
    spec = radial_spectrum(np.stack([load(root, e) for e in entries]), ppd=PPD, bins_per_octave=24)
    filt = make_filter("notch", ppd=PPD, band_cpd=[2, 4])
    ax = plotting.plot_condition_spectrum(spec, design=filt, title="notch")
    assert "stop band at half amplitude" in ax.get_title()
    level = [ln for ln in ax.get_lines() if ln.get_xdata()[0] == 0 and len(set(ln.get_ydata())) == 1]
    plateau = np.median(spec.power[spec.freq_cpd > 8])
    assert level[0].get_ydata()[0] == pytest.approx(0.25 * plateau, rel=0.05)  # half amplitude of the plateau
    assert math.isfinite(level[0].get_ydata()[0])


def test_low_pass_with_motion_refused_at_the_family(tmp_path):
    y = write(tmp_path, """\
        name: m
        display: {ppd: 16}
        stimulus: {size_px: 64, rms_contrast: 0.2}
        noise: {family: lowpass, cutoff_cpd: 2}
        motion: {speed_deg_s: 1, frame_rate_hz: 30, n_frames: 8}
        """)
    with pytest.raises(ex.ExperimentError, match=r"exp.yaml:4: noise.family: family 'lowpass' is for still images"):
        ex.load_experiment(y)


def test_notched_drifting_noise_runs_and_verifies(tmp_path):
    y = write(tmp_path, """\
        name: m
        seed: 2
        display: {ppd: 16}
        stimulus: {size_px: 64, rms_contrast: 0.2}
        noise: {family: notch, band_cpd: [2, 4]}
        motion: {speed_deg_s: 1, frame_rate_hz: 30, n_frames: 8}
        """)
    m = ex.run_experiment(y, tmp_path / "out", jobs=1, progress=False)
    assert m["experiment"]["noise"]["order"] == 8
    assert m["conditions"][0]["pass"] is True
    assert m["conditions"][0]["measured"]["band_cpd"] == pytest.approx([2, 4], rel=0.05)
    rep = ex.verify_set(tmp_path / "out")
    assert rep.failures == [] and rep.failed_checks == []
