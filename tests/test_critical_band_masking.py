"""The shipped critical-band masking experiment: runs, verifies, records E and N, and its
contrast series shows byte-identical frozen noise."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from stimgen import experiment as ex
from stimgen.experiment.draw import draw
from stimgen.experiment.plan import plan_of

YAML = Path(__file__).resolve().parents[1] / "experiments" / "critical_band_masking.yaml"


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    out = tmp_path_factory.mktemp("cbm") / "set"
    m = ex.run_experiment(YAML, out, jobs=1, progress=False, budget_check=False)
    return out, m


def test_every_stimulus_passes_and_the_set_verifies(shipped):
    out, m = shipped
    assert m["n_pass"] == m["n_stimuli"] == 48
    assert ex.verify_set(out).ok


def test_critical_band_edges_are_measured_where_designed(shipped):
    """Low/high-pass cutoffs within 2 % and notch stop bands within 3 % of the design
    (pooled over the condition's 4 stimuli of 215 px)."""
    _, m = shipped
    for c in m["conditions"]:
        fam, meas = c["params"]["family"], c["measured"]
        if fam in ("lowpass", "highpass"):
            assert meas["cutoff_cpd"] == pytest.approx(c["params"]["cutoff_cpd"], rel=0.02)
        else:
            assert meas["band_cpd"] == pytest.approx(c["params"]["band_cpd"], rel=0.03)


def test_energy_and_noise_density_are_recorded_in_the_field_units(shipped):
    """E scales as the target contrast squared; N at the target frequency is the noise's
    |H(4 cpd)|^2 share of c^2 (tiny in the notch, large in low-pass noise above 4 cpd);
    E/N is their ratio (0 for a zero-contrast target)."""
    _, m = shipped
    by_label = {c["label"]: c for c in m["conditions"]}
    e05 = by_label["target.contrast=0.05"]["target_energy_deg2"]
    e02 = by_label["target.contrast=0.2"]["target_energy_deg2"]
    assert e02 / e05 == pytest.approx(16.0, rel=1e-6)
    zero = by_label["target.contrast=0"]
    assert zero["target_energy_deg2"] == 0.0 and zero["e_over_n"] == 0.0
    notch = by_label["target.contrast=0.2"]["noise_psd_deg2"]
    low8 = next(c for c in m["conditions"] if c["params"].get("cutoff_cpd") == 8 and c["params"]["family"] == "lowpass")
    assert low8["noise_psd_deg2"]["at_target"] > 100 * notch["at_target"]
    for e in m["stimuli"]:
        n = e["noise_psd_deg2"]["at_target"]
        if e["e_over_n"] is not None:
            assert e["e_over_n"] == pytest.approx(e["target_energy_deg2"] / n, rel=1e-9)
        assert math.isfinite(e["noise_psd_deg2"]["at_peak"])


def test_the_contrast_series_shows_one_frozen_noise_per_repeat(shipped):
    """composite - window * target is the same (to float rounding) across the series'
    conditions, and differs between repeats."""
    out, m = shipped
    plan = plan_of(m["experiment"])
    series = [c for c in m["conditions"] if c["label"].startswith("target.contrast")]
    assert len(series) == 4
    noise = {}
    for c in series:
        for r in range(c["repeats"]):
            e = m["stimuli"][c["first"] + r]
            d = draw(plan, e["index"], m["seed_entropy"])[0]
            x = np.load(out / e["file"]).astype(np.float64)
            noise.setdefault(r, []).append(x - d.components["window"] * d.components["target"])
    for ns in noise.values():
        for n in ns[1:]:
            np.testing.assert_allclose(n, ns[0], atol=1e-6)
    assert np.max(np.abs(noise[0][0] - noise[1][0])) > 0.05


def test_a_flipped_bit_in_any_file_is_caught(shipped, tmp_path):
    out, m = shipped
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    for f in (m["stimuli"][5]["files"][0], m["stimuli"][45]["files"][1]):  # an npy, a png16
        p = copy / f["file"]
        b = bytearray(p.read_bytes())
        b[-40] ^= 1
        p.write_bytes(bytes(b))
    rep = ex.verify_set(copy)
    assert not rep.ok
    assert sum(("0001.npy" in msg or "0001.png" in msg) for msg in rep.failures) >= 2


def test_a_windowed_target_states_no_closed_form_energy_anywhere(shipped):
    """With an aperture the recorded E is the windowed target's: neither the entries nor the
    condition summaries give the unwindowed closed form as its design value."""
    _, m = shipped
    assert all(e["target_energy_design_deg2"] is None for e in m["stimuli"])
    assert all(c["target_energy_design_deg2"] is None for c in m["conditions"])
