"""The spectral verdicts a run records: periodogram test, explicit tolerances, bands the
DFT grid cannot show, and edges that cannot be measured at the image size."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from stimgen import experiment as ex
from stimgen.cli import main


def _yaml(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "exp.yaml"
    p.write_text(textwrap.dedent(body))
    return p


BASE = """\
name: verdicts
seed: 7
display: {{ppd: {ppd}}}
stimulus: {{size_px: {size}, rms_contrast: 0.2}}
noise: {{family: {family}, band_cpd: [{lo}, {hi}], kind: {kind}}}
repeats: {repeats}
output: {{formats: [npy], figures: false}}
{extra}"""


def test_correct_set_passes_and_records_the_test(tmp_path):
    y = _yaml(tmp_path, BASE.format(ppd=32, size=128, family="log_gaussian", lo=2, hi=4,
                                    kind="gaussian", repeats=6, extra=""))
    m = ex.run_experiment(y, tmp_path / "out", jobs=1, progress=False)
    assert m["n_pass"] == 6 and m["n_fail"] == 0 and m["n_not_measurable"] == 0
    for e in m["stimuli"]:
        assert e["pass"] is True and e["spectral_status"] == "pass"
        # a p-value from the periodogram test, above the per-stimulus false-alarm rate
        assert 1e-3 / 6 < e["spectral_p_value"] <= 1


def test_explicit_edge_tolerance_binds(tmp_path):
    y = _yaml(tmp_path, BASE.format(ppd=32, size=128, family="log_gaussian", lo=2, hi=4,
                                    kind="gaussian", repeats=3,
                                    extra="check: {edge_tolerance: 1.0e-9}\n"))
    m = ex.run_experiment(y, tmp_path / "out", jobs=1, progress=False)
    assert m["n_fail"] == 3
    assert all(e["spectral_status"] == "fail" and "tolerance" in e["spectral_reason"]
               for e in m["stimuli"])


def test_low_edge_below_two_cycles_is_not_measurable_never_fail(tmp_path):
    # 64 px at 32 ppd: 0.5 cpd is 1 cycle per image... use 0.75 cpd = 1.5 cycles per image
    y = _yaml(tmp_path, BASE.format(ppd=32, size=64, family="log_gaussian", lo=0.75, hi=1.5,
                                    kind="flat", repeats=3, extra=""))
    m = ex.run_experiment(y, tmp_path / "out", jobs=1, progress=False)
    assert m["n_fail"] == 0
    assert m["n_not_measurable"] == 3
    for e in m["stimuli"]:
        assert e["pass"] is None and e["spectral_status"] == "not_measurable"
        assert "cycles per image" in e["not_measurable"]
    assert m["conditions"][0]["n_not_measurable"] == 3


def test_high_edge_at_nyquist_refused_with_both_numbers(tmp_path, capsys):
    y = _yaml(tmp_path, BASE.format(ppd=32, size=64, family="ideal", lo=8, hi=16,
                                    kind="gaussian", repeats=2, extra=""))
    with pytest.raises(ex.ExperimentError, match=r"exp\.yaml:5: noise\.band_cpd: .*high edge 16 cpd.*Nyquist 16 cpd"):
        ex.run_experiment(y, tmp_path / "out", jobs=1, progress=False)
    assert not (tmp_path / "out").exists()
    assert main(["run", str(y), "--out", str(tmp_path / "out2")]) == 2
    assert "high edge 16 cpd" in capsys.readouterr().err


def test_spectrum_cli_names_unmeasurable_edges_and_refuses_complex(tmp_path, capsys):
    import numpy as np

    import stimgen

    imgs, _ = stimgen.bandpass_noise(size_px=64, ppd=32, band_cpd=(0.7, 1.4), family="log_gaussian",
                                     kind="flat", n=2, rng=1)
    np.save(tmp_path / "lo.npy", imgs)
    assert main(["spectrum", str(tmp_path / "lo.npy"), "--ppd", "32"]) == 0
    out = capsys.readouterr().out
    assert "inf" not in out and "low edge not measurable at this image size" in out
    np.save(tmp_path / "cx.npy", imgs.astype(complex))
    assert main(["spectrum", str(tmp_path / "cx.npy"), "--ppd", "32"]) == 2
    assert "complex128 values" in capsys.readouterr().err


def test_run_writes_its_report_and_records_its_warnings(tmp_path):
    text = BASE.format(ppd=32, size=64, family="log_gaussian", lo=2, hi=4, kind="gaussian", repeats=2, extra="")
    y = _yaml(tmp_path, text.replace("rms_contrast: 0.2", "rms_contrast: 0.6"))
    with pytest.warns(UserWarning, match="clipped"):
        m = ex.run_experiment(y, tmp_path / "out", jobs=1, progress=False)
    page = (tmp_path / "out" / "report.html").read_text()
    assert m["warnings"] and "clipped" in m["warnings"][-1]
    assert "clipped" in page  # the page shows the run's warnings, from the manifest
    assert main(["run", str(y), "--out", str(tmp_path / "out"), "--force", "--allow-fail"]) == 0
    assert (tmp_path / "out" / "report.html").exists()


def test_png_only_white_and_vertical_sets_verify(tmp_path):
    """Slopes near 0 (white noise) and orientations near 0 deg are re-measured from PNG levels
    to an absolute tolerance: a relative one (2 % of 0) failed intact sets."""
    from stimgen import experiment as ex

    for name, noise in (("white", "{family: white}"),
                        ("vertical", "{family: log_gaussian, band_cpd: [2, 4], orientation_deg: 0, orientation_bandwidth_deg: 20}")):
        y = tmp_path / f"{name}.yaml"
        y.write_text(f"name: {name}\nseed: 1\ndisplay: {{ppd: 35.8375}}\nstimulus: {{size_px: 128, rms_contrast: 0.2}}\n"
                     f"noise: {noise}\nrepeats: 8\noutput: {{formats: [png8], dither: noisy-bit}}\n")
        ex.run_experiment(y, tmp_path / name, jobs=1, progress=False, budget_check=False)
        rep = ex.verify_set(tmp_path / name)
        assert rep.ok, rep.failures
