"""The run engine hooked up to the rest of stimgen: workers die with the run, output safety
for Python callers, regeneration into a folder, directions, exact sizes, CLI text, --force."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import stimgen
from stimgen import _procs

LINUX = sys.platform.startswith("linux")

SLEEPY_PART = '''
import os, time
from pathlib import Path
from stimgen.experiment import BasePart, register


class Sleepy(BasePart):
    """Records the drawing process in a folder, then sleeps (a worker busy for minutes)."""

    name = "sleepy"
    defaults = {"folder": None}

    def draw(self, plan, c, rng, drawing):
        Path(plan.exp["sleepy"]["folder"], str(os.getpid())).write_text("")
        time.sleep(120)


register(Sleepy())
'''


def _wait_for(pred, timeout_s: float = 60.0) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.skipif(not LINUX, reason="needs /proc to tell a process' start time")
def test_run_workers_exit_when_the_run_is_killed(tmp_path):
    """SIGKILL of the running process: its worker processes, busy in a chunk, exit too."""
    (tmp_path / "mods").mkdir()
    (tmp_path / "mods" / "sleepy_part.py").write_text(SLEEPY_PART)
    pids = tmp_path / "pids"
    pids.mkdir()
    code = textwrap.dedent(f"""
        import sleepy_part
        from stimgen.experiment import run_experiment

        if __name__ == "__main__":
            exp = {{"name": "s", "seed": 1, "display": {{"ppd": 16}}, "stimulus": {{"size_px": 32}},
                    "noise": {{"family": "white"}}, "sleepy": {{"folder": {str(pids)!r}}}, "repeats": 8,
                    "output": {{"formats": ["npy"], "figures": False}}}}
            run_experiment(exp, {str(tmp_path / "set")!r}, jobs=2, progress=False, budget_check=False)
    """)
    script = tmp_path / "run_it.py"
    script.write_text(code)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(stimgen.__file__).parents[1]), str(tmp_path / "mods")])}
    parent = subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert _wait_for(lambda: len(list(pids.iterdir())) == 2, 120), parent.stderr
        workers = [int(p.name) for p in pids.iterdir()]
        assert parent.pid not in workers
        starts = [_procs.process_start(p) for p in workers]
    finally:
        parent.kill()  # SIGKILL: no cleanup code runs in the parent
        parent.communicate(timeout=60)
    me = _procs.machine_token()
    assert _wait_for(lambda: all(_procs.owner_gone(me, p, s) for p, s in zip(workers, starts, strict=True)), 30), (
        f"workers {workers} outlived the run"
    )


def test_the_worker_initializer_ties_workers_to_the_main_process(monkeypatch):
    from stimgen.experiment import execute

    seen = []
    monkeypatch.setattr(_procs, "die_with_parent", lambda pid=None, **kw: seen.append(pid))
    execute._worker_init(None, (), 4242)
    execute._worker_init(None, ())  # in this process (no pool): nothing to tie
    assert seen == [4242]


# -- B: an existing output, told in the caller's terms ----------------------------------------
TINY = {"name": "t", "seed": 3, "display": {"ppd": 16}, "stimulus": {"size_px": 32},
        "noise": {"family": "log_gaussian", "band_cpd": [1, 3]}, "repeats": 2,
        "output": {"formats": ["npy"], "figures": False}}  # fmt: skip


def test_run_experiment_refuses_an_existing_output_in_python_terms(tmp_path):
    from stimgen import experiment as ex
    from stimgen.io import OutputExistsError

    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "notes.txt").write_text("mine")
    with pytest.raises(OutputExistsError, match=r"already exists \(pass force=True to replace it\)") as info:
        ex.run_experiment(TINY, tmp_path / "s", jobs=1, progress=False)
    assert "--force" not in str(info.value) and "use --force" in info.value.cli_message
    assert isinstance(info.value, FileExistsError)
    assert [p.name for p in (tmp_path / "s").iterdir()] == ["notes.txt"]


# -- C: regenerating into a folder, safely, from Python -------------------------------------------
def test_regenerate_stimulus_out_is_safe_for_python_callers(tmp_path):
    import json

    from stimgen import experiment as ex
    from stimgen.io import OutputExistsError

    s = tmp_path / "s"
    m = ex.run_experiment(TINY, s, jobs=1, progress=False)
    before = {p: p.read_bytes() for p in s.rglob("*") if p.is_file()}
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("precious")
    with pytest.raises(OutputExistsError, match=r"already exists \(pass force=True"):
        ex.regenerate_stimulus(s, 0, out=mine)
    with pytest.raises(OutputExistsError, match=r"holds no stimgen output"):
        ex.regenerate_stimulus(s, 0, out=mine, force=True)
    assert (mine / "notes.txt").read_text() == "precious" and len(list(mine.iterdir())) == 1
    for out in (s / "stimuli", s / "regen", s):  # never into a set, nor over one
        with pytest.raises(OutputExistsError, match=r"stimulus set"):
            ex.regenerate_stimulus(s, 0, out=out, force=True)
    assert {p: p.read_bytes() for p in s.rglob("*") if p.is_file()} == before
    res = ex.regenerate_stimulus(s, 1, out=tmp_path / "new")
    rec = json.loads((tmp_path / "new" / "regenerated.json").read_text())
    rel = m["stimuli"][1]["file"]
    assert res["match"] and res["out"] == str(tmp_path / "new") and rec["index"] == 1
    assert rec["files"] == [rel, "regenerated.json"] and rec["source"] == str(s)
    assert (tmp_path / "new" / rel).read_bytes() == (s / rel).read_bytes()
    res = ex.regenerate_stimulus(s, 0, out=tmp_path / "new", force=True)  # an earlier regeneration: replaced
    rec = json.loads((tmp_path / "new" / "regenerated.json").read_text())
    assert rec["index"] == 0 and not (tmp_path / "new" / rel).exists()
    assert (tmp_path / "new" / m["stimuli"][0]["file"]).read_bytes() == (s / m["stimuli"][0]["file"]).read_bytes()


# -- D: a condition's measured direction in [0, 360) ------------------------------------------------
@pytest.mark.parametrize(("vel", "want"), [([1.0, 1e-20], 0.0), ([1.0, -1e-20], 0.0), ([0.0, -2.0], 90.0),
                                           ([-1.0, 0.0], 180.0), ([0.0, 0.0], None)])  # fmt: skip
def test_measured_direction_of_a_condition_is_in_0_360(vel, want):
    from stimgen.experiment.measure import speed_summary

    requested = {"speed_deg_s": 1.0, "direction_deg": 0.0, "velocity_deg_s": [1.0, 0.0]}
    out = speed_summary(requested, [vel, vel, vel], [True, True, True])
    if want is not None:
        assert 0.0 <= out["measured_direction_deg"] < 360.0
        assert out["measured_direction_deg"] == pytest.approx(want, abs=1e-12)
        assert out["direction_error_deg"] == pytest.approx((want + 180.0) % 360.0 - 180.0, abs=1e-12)
    else:
        assert out["measured_direction_deg"] is None and out["direction_error_deg"] is None


# -- E: the exact angular size in the manifest ---------------------------------------------------
def test_manifest_records_the_exact_angular_size_and_warns_for_large_sizes_in_degrees(tmp_path):
    import math

    from stimgen import experiment as ex
    from stimgen.geometry import LinearSizeWarning

    small = {**TINY, "stimulus": {"size_deg": [2, 4]}}
    m = ex.run_experiment(small, tmp_path / "small", jobs=1, progress=False)
    assert m["shape_px"] == [32, 64] and m["size_deg"] == [2.0, 4.0]
    # ppd is the density at the centre (1 deg spans ppd px there): n px centred subtend 2 atan(n tan(0.5 deg) / ppd)
    want = [2 * math.degrees(math.atan(n * math.tan(math.radians(0.5)) / 16)) for n in (32, 64)]
    assert m["size_deg_angular"] == pytest.approx(want, rel=1e-12)
    assert m["size_deg_angular"][1] > 4.0 * (1 - 0.005)
    big = {**TINY, "display": {"ppd": 2}, "stimulus": {"size_deg": 40},
           "noise": {"family": "white"}, "repeats": 1}  # fmt: skip
    with pytest.warns(LinearSizeWarning, match=r"stimulus.size_deg: size_deg 40 became 80 px") as caught:
        m = ex.run_experiment(big, tmp_path / "big", jobs=1, progress=False)
    assert len([w for w in caught if issubclass(w.category, LinearSizeWarning)]) == 1  # once per run
    assert m["size_deg"] == [40.0, 40.0] and m["size_deg_angular"][0] < 40.0 * (1 - 0.005)


# -- F: the command line speaks of temporal bands for spatiotemporal sets -------------------------
SPATIOTEMPORAL = """\
name: st
seed: 4
display: {ppd: 16}
stimulus: {size_px: 32, rms_contrast: 0.2}
noise: {family: log_gaussian, band_cpd: [1, 4]}
motion: {model: spatiotemporal, temporal_band_hz: [4, 12], frame_rate_hz: 60, n_frames: 32}
conditions:
  - {label: a}
  - {label: b, temporal_band_hz: [0, 6]}
repeats: 2
output: {formats: [npy], figures: false}
"""


def test_cli_text_of_a_spatiotemporal_set_names_its_temporal_bands(tmp_path, capsys):
    import json

    from stimgen.cli import main

    y = tmp_path / "st.yaml"
    y.write_text(SPATIOTEMPORAL)
    code = main(["run", str(y), "--out", str(tmp_path / "s"), "--jobs", "1", "--no-progress", "--allow-fail"])
    out = capsys.readouterr().out
    assert code == 0
    m = json.loads((tmp_path / "s/manifest.json").read_text())
    lines = [ln for ln in out.splitlines() if ln.startswith("    ")]
    assert len(lines) == 2
    for c, line in zip(m["conditions"], lines, strict=True):
        lo, hi = c["measured"]["temporal_band_hz"]
        assert f"; temporal band {lo:.3g}-{hi:.3g} Hz" in line
    assert "spectra (first frames) and temporal bands pass:" in out and "speeds" not in out
    code = main(["verify", str(tmp_path / "s"), "--allow-fail"])
    out = capsys.readouterr().out
    assert code == 0 and "hashes, spectra and temporal bands checked" in out


def test_docs_index_lists_every_page():
    docs = Path(__file__).resolve().parents[1] / "docs"
    index = (docs / "README.md").read_text()
    pages = sorted(p.name for p in docs.glob("*.md") if p.name != "README.md")
    assert [p for p in pages if f"]({p})" not in index] == []


# -- G: --force replaces a set stimgen made, whatever it holds, and nothing else ----------------------
@pytest.mark.parametrize("streamed", [False, True])
def test_run_force_replaces_its_own_set_but_not_a_foreign_file(tmp_path, capsys, monkeypatch, streamed):
    import json

    from stimgen.cli import main
    from stimgen.experiment import entries

    if streamed:  # a set that keeps its entries in entries.jsonl (more than INLINE_MAX_STIMULI)
        monkeypatch.setattr(entries, "INLINE_MAX_STIMULI", 1)
    y = tmp_path / "e.yaml"
    y.write_text(json.dumps({**TINY, "output": {"formats": ["npy", "png8"], "figures": True,
                                                "examples_per_condition": 1}}))  # fmt: skip
    s = tmp_path / "s"
    args = ["run", str(y), "--out", str(s), "--jobs", "1", "--no-progress", "--allow-fail"]
    assert main(args) == 0
    m = json.loads((s / "manifest.json").read_text())
    assert ("entries" in m) == streamed and (s / "entries.jsonl").is_file() == streamed
    assert m["figures"] and all((s / f).is_file() for f in m["figures"])
    assert main([*args, "--force", "--seed", "9"]) == 0  # every file is stimgen's: replaced
    assert json.loads((s / "manifest.json").read_text())["seed_entropy"] == 9
    capsys.readouterr()
    for foreign in (s / "notes.txt", s / "stimuli" / "mine.npy", s / "figures" / "data.csv"):
        foreign.write_text("precious")
        assert main([*args, "--force", "--seed", "11"]) == 2
        err = capsys.readouterr().err
        assert f"{foreign.relative_to(s)} is not listed in its manifest.json" in err
        assert foreign.read_text() == "precious"
        assert json.loads((s / "manifest.json").read_text())["seed_entropy"] == 9
        foreign.unlink()


def test_report_reads_a_large_sets_streamed_entries(tmp_path, monkeypatch):
    """A set that keeps its entries in entries.jsonl: the report (and the export, through it) reads them all."""
    import json

    from stimgen import experiment as ex
    from stimgen.experiment import entries
    from stimgen.experiment.report import _entries

    monkeypatch.setattr(entries, "INLINE_MAX_STIMULI", 1)
    m = ex.run_experiment(TINY, tmp_path / "s", jobs=1, progress=False)
    root, read = ex.read_manifest(tmp_path / "s")
    assert "entries" in json.loads((tmp_path / "s/manifest.json").read_text())
    assert [e["index"] for e in _entries(root, read)] == [0, 1] == [e["index"] for e in m["stimuli"]]


def test_a_notch_from_its_peak_and_octaves():
    """The notch's peak-and-octaves form passes ppd on (main's merge of two branches had lost it)."""
    from stimgen.noise import make_filter

    a = make_filter("notch", ppd=32, peak_cpd=4, octaves=1)
    b = make_filter("notch", ppd=32, band_cpd=[4 * 2**-0.5, 4 * 2**0.5])
    assert a.to_record() == b.to_record()
