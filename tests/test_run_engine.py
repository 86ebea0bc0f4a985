"""The run engine: streamed entries, pooled summaries, --jobs auto, durability, lean figures,
exit statuses of failing sets, the size budget, and byte-identical shipped outputs."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from stimgen import experiment as ex
from stimgen.cli import main
from stimgen.experiment import budget, durable, entries, execute, figures, run
from stimgen.experiment.pool import ConditionPool
from stimgen.io import sha256_file

ROOT = Path(__file__).resolve().parents[1]

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

# the check tolerances no measured band can meet: every stimulus fails, the set is complete
FAILING = TINY.replace("repeats: 3", "repeats: 3\ncheck: {edge_tolerance: 0.0001, peak_tolerance: 0.0001}")


def write(tmp_path: Path, text: str, name: str = "exp.yaml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def flip_byte(path: Path, at: int = -20) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 1
    path.write_bytes(bytes(data))


# -- streamed entries -----------------------------------------------------------------------
@pytest.fixture
def streamed(tmp_path, monkeypatch):
    """The tiny set with its entries in entries.jsonl (the layout of sets over 1,000 stimuli)."""
    monkeypatch.setattr(entries, "INLINE_MAX_STIMULI", 4)
    y = write(tmp_path, TINY)
    m = ex.run_experiment(y, tmp_path / "s", jobs=1, progress=False)
    return tmp_path / "s", m, y


def test_streamed_manifest_indexes_its_entries(streamed):
    root, m, _ = streamed
    head = json.loads((root / "manifest.json").read_text())
    assert head["manifest_version"] == ex.MANIFEST_VERSION == 3
    assert "stimuli" not in head and head["entries"]["file"] == "entries.jsonl"
    lines = (root / "entries.jsonl").read_bytes().splitlines(keepends=True)
    assert head["entries"]["n"] == len(lines) == 6 == head["n_stimuli"]
    assert head["entries"]["sha256"] == hashlib.sha256(b"".join(lines)).hexdigest()
    # one entry per line, in index order, each naming files whose bytes it hashes
    for i, line in enumerate(lines):
        e = json.loads(line)
        assert e["index"] == i
        for f in e["files"]:
            assert sha256_file(root / f["file"]) == f["sha256"]
    # the returned manifest and read_manifest give the same entries, read lazily
    _, back = ex.read_manifest(root)
    assert isinstance(m["stimuli"], entries.Entries) and isinstance(back["stimuli"], entries.Entries)
    assert m["stimuli"] == back["stimuli"] == [json.loads(x) for x in lines]
    assert m["stimuli"][-1]["index"] == 5 and [e["index"] for e in m["stimuli"][1:6:2]] == [1, 3, 5]
    with pytest.raises(IndexError):
        m["stimuli"][6]


def test_streamed_and_inline_sets_hold_the_same_entries(streamed, tmp_path, monkeypatch):
    root, m, y = streamed
    monkeypatch.setattr(entries, "INLINE_MAX_STIMULI", 1000)
    inline = ex.run_experiment(y, tmp_path / "inline", jobs=1, progress=False)
    head = json.loads((tmp_path / "inline/manifest.json").read_text())
    assert isinstance(head["stimuli"], list) and not (tmp_path / "inline/entries.jsonl").exists()
    assert head["stimuli"] == list(m["stimuli"])
    assert head["conditions"] == json.loads((root / "manifest.json").read_text())["conditions"]
    assert inline["n_pass"] == m["n_pass"]


def test_streamed_round_trip_verify_catches_a_flipped_byte(streamed, capsys):
    root, m, _ = streamed
    code, out, _ = run_cli(capsys, "verify", root)
    assert code == 0 and "hashes and spectra checked: OK" in out
    res = ex.regenerate_stimulus(root, 5)
    assert res["match"] and res["on_disk_match"]
    jsonl = root / "entries.jsonl"
    flip_byte(jsonl, at=-40)
    code, out, _ = run_cli(capsys, "verify", root, "--json")
    rep = json.loads(out)
    assert code == 1 and rep["status"] == "corrupt"
    assert rep["failures"][0].startswith("entries.jsonl: sha256 differs from the manifest")
    flip_byte(jsonl, at=-40)
    target = root / m["stimuli"][4]["files"][1]["file"]
    flip_byte(target)
    code, out, _ = run_cli(capsys, "verify", root)
    assert code == 1 and f"FAIL {m['stimuli'][4]['files'][1]['file']}: sha256 differs" in out


def test_streamed_entries_missing_or_damaged(streamed, capsys):
    root, _, _ = streamed
    jsonl = root / "entries.jsonl"
    lines = jsonl.read_bytes().splitlines(keepends=True)
    # a damaged line whose hash was updated too: read as an error naming the line
    jsonl.write_bytes(b"".join(lines[:2] + [b"{not json\n"] + lines[3:]))
    head = json.loads((root / "manifest.json").read_text())
    head["entries"]["sha256"] = sha256_file(jsonl)
    (root / "manifest.json").write_text(json.dumps(head))
    code, _, err = run_cli(capsys, "verify", root)
    assert code == 2 and "line 3 is not valid JSON" in err and err.count("\n") == 1
    jsonl.unlink()
    code, _, err = run_cli(capsys, "verify", root)
    assert code == 2 and "entries file" in err and "missing" in err


# -- pooled summaries -----------------------------------------------------------------------
def test_condition_pool_equals_the_statistics_of_all_spectra(rng, tmp_path):
    from stimgen.experiment import PARTS
    from stimgen.experiment.plan import plan_of

    plan = plan_of(ex.load_experiment(write(tmp_path, TINY)))
    c = plan.conditions[0]
    powers = rng.gamma(2.0, 1.0, size=(37, 50)) * np.logspace(0, -3, 50)
    pool = ConditionPool(plan, c)
    pool.clip_limit = 0.01
    fracs = rng.uniform(0, 0.02, size=37)
    for k, (p, f) in enumerate(zip(powers, fracs, strict=True)):
        pool.add({"pass": k % 3 != 0, "clipped_fraction": float(f)}, {"noise": p})
    spectra = pool.parts["noise"]  # the noise part's running mean of the radial spectra
    assert np.allclose(spectra.mean, powers.mean(axis=0), rtol=1e-13, atol=0)
    assert np.allclose(spectra.std, powers.std(axis=0, ddof=1), rtol=1e-10, atol=0)
    assert pool.n == 37 and pool.n_pass == sum(k % 3 != 0 for k in range(37))
    clip = pool.clipping()
    assert clip["max_clipped_fraction"] == fracs.max()
    assert clip["mean_clipped_fraction"] == pytest.approx(fracs.mean(), rel=1e-14)
    assert clip["n_over_limit"] == int((fracs > 0.01).sum())
    one = ConditionPool(plan, c)
    one.add({"pass": True, "clipped_fraction": 0.0}, {"noise": powers[0]})
    assert np.all(one.parts["noise"].std == 0) and np.array_equal(one.parts["noise"].mean, powers[0])
    assert set(one.parts) == {p.name for p in plan.parts} and set(plan.parts) <= set(PARTS.values())


def test_condition_summary_pools_the_stimuli_spectra(tmp_path):
    """The pooled spectrum in the manifest is the mean of the per-stimulus spectra."""
    from stimgen.experiment.measure import spectral_check
    from stimgen.experiment.noise_part import condition_filter
    from stimgen.experiment.plan import plan_of

    m = ex.run_experiment(write(tmp_path, TINY), tmp_path / "s", jobs=1, progress=False)
    plan = plan_of(m["experiment"])
    for c, summary in zip(plan.conditions, m["conditions"], strict=True):
        per = []
        for r in range(c.repeats):
            img = np.load(tmp_path / "s" / m["stimuli"][c.first + r]["file"])
            per.append(spectral_check(img, plan.ppd, c.params, condition_filter(plan, c), plan.exp["check"])[1])
        assert np.allclose(summary["spectrum"]["power_mean"], np.mean(per, axis=0), rtol=1e-10)
        assert np.allclose(summary["spectrum"]["power_std"], np.std(per, axis=0, ddof=1), rtol=1e-8)


# -- failing checks: exit 3, marked failed ----------------------------------------------------
def test_failing_run_writes_its_set_marked_failed_and_exits_3(tmp_path, capsys):
    y = write(tmp_path, FAILING)
    code, out, err = run_cli(capsys, "run", y, "--out", tmp_path / "s", "--jobs", "1")
    assert code == 3 and "FAILED checks: 6 of 6 stimuli" in err and "(exit 3)" in err
    assert "spectra pass: 0/6 stimuli" in out
    head = json.loads((tmp_path / "s/manifest.json").read_text())
    assert head["status"] == "failed" and head["n_fail"] == 6 and head["n_pass"] == 0
    assert all(not e["pass"] for e in head["stimuli"])
    code, out, _ = run_cli(capsys, "run", y, "--out", tmp_path / "j", "--jobs", "1", "--json")
    assert code == 3 and json.loads(out)["status"] == "failed" and json.loads(out)["n_fail"] == 6
    code, _, err = run_cli(capsys, "run", y, "--out", tmp_path / "a", "--jobs", "1", "--allow-fail")
    assert code == 0 and "--allow-fail: exit 0" in err
    # verify: the intact failed set exits 3, or 0 with --allow-fail; a changed byte wins (1)
    code, out, _ = run_cli(capsys, "verify", tmp_path / "s")
    assert code == 3 and out.count("FAILED CHECK") == 6 and "intact, but 6 stimuli" in out
    code, out, _ = run_cli(capsys, "verify", tmp_path / "s", "--json", "--allow-fail")
    assert code == 0 and json.loads(out)["status"] == "failed_checks"
    flip_byte(tmp_path / "s" / head["stimuli"][0]["file"])
    code, out, _ = run_cli(capsys, "verify", tmp_path / "s", "--allow-fail")
    assert code == 1 and "sha256 differs" in out


def test_passing_run_is_marked_passed(tmp_path, capsys):
    code, out, err = run_cli(capsys, "run", write(tmp_path, TINY), "--out", tmp_path / "s", "--jobs", "1")
    assert code == 0 and err == ""
    assert json.loads((tmp_path / "s/manifest.json").read_text())["status"] == "passed"
    assert run_cli(capsys, "verify", tmp_path / "s")[0] == 0


def test_verify_of_a_version_1_set_still_works(tmp_path, capsys):
    """Sets written before manifest version 2 (no status, entries inline) verify as before."""
    y = write(tmp_path, FAILING)
    ex.run_experiment(y, tmp_path / "s", jobs=1, progress=False)
    mp = tmp_path / "s/manifest.json"
    head = json.loads(mp.read_text())
    head["manifest_version"] = 1
    for k in ("status", "n_fail"):
        head.pop(k)
    mp.write_text(json.dumps(head))
    assert run_cli(capsys, "verify", tmp_path / "s")[0] == 3
    assert run_cli(capsys, "verify", tmp_path / "s", "--allow-fail")[0] == 0
    assert ex.regenerate_stimulus(tmp_path / "s", 2)["match"]


# -- size budget ------------------------------------------------------------------------------
def test_budget_refuses_with_both_numbers(tmp_path, capsys, monkeypatch):
    y = write(tmp_path, TINY.replace("size_px: 64", "size_px: [20000, 20000]"))
    monkeypatch.setattr(budget, "available_memory", lambda: 10**9)
    with pytest.raises(ValueError, match=r"needs about [\d.]+ GB of memory but 1 GB is available"):
        ex.run_experiment(y, tmp_path / "s", jobs=1, progress=False)
    code, _, err = run_cli(capsys, "run", y, "--out", tmp_path / "s", "--jobs", "1")
    assert code == 2 and err.count("\n") == 1 and "20000 x 20000 px" in err and "--no-budget-check" in err
    assert not (tmp_path / "s").exists() and [p for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    # disk: 6 stimuli of 64 x 64 px in npy + png8 need far more than 1 kB
    monkeypatch.setattr(budget, "available_memory", lambda: None)
    monkeypatch.setattr(budget, "free_disk", lambda path: (1000, Path(path)))
    with pytest.raises(ValueError, match=r"needs about [\d.]+ MB of disk but 1 kB is free on"):
        ex.run_experiment(write(tmp_path, TINY, "t.yaml"), tmp_path / "s", jobs=1, progress=False)
    # explicitly overridden: the run starts (and here succeeds: the estimate was the only obstacle)
    m = ex.run_experiment(write(tmp_path, TINY, "t.yaml"), tmp_path / "s", jobs=1, progress=False, budget_check=False)
    assert m["n_stimuli"] == 6


def test_budget_estimate_scales_with_the_plan():
    from stimgen.experiment.plan import plan_of as _plan

    base = ex.validate_experiment(
        {"name": "b", "display": {"ppd": 16}, "stimulus": {"size_px": 256}, "noise": {"family": "white"}, "repeats": 10}
    )
    b1 = budget.estimate(_plan(base), 1)
    big = json.loads(json.dumps(base))
    big["stimulus"]["size_px"] = 512
    big["repeats"] = 20
    b2 = budget.estimate(_plan(ex.validate_experiment(big)), 2)
    work1 = b1.memory_per_process - budget.PROCESS_BASE_BYTES
    assert b2.memory_per_process - budget.PROCESS_BASE_BYTES == 4 * work1  # per pixel
    assert b2.memory > 2 * b2.memory_per_process - 1  # two workers and the main process
    npy_png = 256 * 256 * (4 + 1)  # float32 npy and png8 bytes per stimulus
    assert 10 * npy_png < b1.disk - budget.FIGURES_BYTES < 10 * (npy_png + 16_384)
    assert isinstance(budget.available_memory(), int) and budget.available_memory() > 0


def test_huge_motion_frame_is_refused_while_validating(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(budget, "available_memory", lambda: 2 * 10**9)
    text = TINY.replace("size_px: 64", "size_px: [30000, 30000]") + "motion: {frame_rate_hz: 60, n_frames: 4, speed_deg_s: 1}\n"
    text = text.replace("[npy, png8], dither: noisy-bit", "[npy]")
    code, _, err = run_cli(capsys, "run", write(tmp_path, text), "--out", tmp_path / "s")
    assert code == 2 and "one frame of 30000 x 30000 px needs about" in err and "2 GB is available" in err


# -- --jobs auto ------------------------------------------------------------------------------
def test_jobs_auto_rule(monkeypatch):
    monkeypatch.setattr(execute, "available_cores", lambda: 8)
    assert execute.auto_jobs(60, (287, 287), None) == 1  # the shipped masks: 4.9 Mpx
    assert execute.auto_jobs(8, (120, 120), 30) == 1  # the shipped movies: 3.5 Mpx
    assert execute.auto_jobs(1000, (512, 512), None) == 8  # 262 Mpx, capped by the cores
    assert execute.auto_jobs(130, (512, 512), None) == 2  # 34 Mpx: two workers
    assert execute.auto_jobs(100, (512, 512), None) == 1  # 26 Mpx: fewer than two -> in process
    monkeypatch.setattr(execute, "available_cores", lambda: 1)
    assert execute.auto_jobs(10**6, (512, 512), None) == 1


def test_jobs_auto_runs_a_small_set_in_this_process(tmp_path, monkeypatch):
    def no_pool(*args, **kwargs):
        raise AssertionError("a small set must not start worker processes")

    monkeypatch.setattr(execute.cf, "ProcessPoolExecutor", no_pool)
    m = ex.run_experiment(write(tmp_path, TINY), tmp_path / "s", progress=False)  # jobs="auto"
    assert m["n_stimuli"] == 6
    with pytest.raises(ValueError, match="jobs must be 'auto' or an integer >= 1, got 0"):
        ex.run_experiment(write(tmp_path, TINY), tmp_path / "t", jobs=0)


@pytest.mark.parametrize("jobs", ["0", "-2", "many", "1.5"])
def test_cli_jobs_must_be_auto_or_a_count(tmp_path, capsys, jobs):
    with pytest.raises(SystemExit) as exc:
        main(["run", str(write(tmp_path, TINY)), "--out", str(tmp_path / "s"), "--jobs", jobs])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "expected 'auto' or a whole number >= 1" in err and err.count("\n") == 1


def test_worker_pool_uses_the_initializer(tmp_path, monkeypatch):
    seen = {}
    real = execute.cf.ProcessPoolExecutor

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(execute.cf, "ProcessPoolExecutor", spy)
    m = ex.run_experiment(write(tmp_path, TINY), tmp_path / "s", jobs=2, progress=False)
    assert seen["initializer"] is execute._worker_init and json.loads(seen["initargs"][0]) == m["experiment"]
    from stimgen.experiment import plan

    plan._PLANS.clear()
    execute._worker_init(seen["initargs"][0])
    assert len(plan._PLANS) == 1


# -- durability and atomicity ------------------------------------------------------------------
@pytest.mark.parametrize("repeats", [1, 8])
def test_one_filesystem_sync_per_run_not_one_per_file(tmp_path, monkeypatch, repeats):
    calls = {"syncfs": 0, "fsync": 0}
    real_syncfs, real_fsync = durable._syncfs, os.fsync

    def syncfs(fd):
        calls["syncfs"] += 1
        return real_syncfs(fd)

    def fsync(fd):
        calls["fsync"] += 1
        return real_fsync(fd)

    monkeypatch.setattr(durable, "_syncfs", syncfs)
    monkeypatch.setattr(os, "fsync", fsync)
    y = write(tmp_path, TINY.replace("repeats: 3", f"repeats: {repeats}"))
    ex.run_experiment(y, tmp_path / "s", jobs=1, progress=False)
    # 2 * repeats stimuli of 2 files each, the manifest, the copy of the YAML: one sync,
    # and one fsync of the parent folder so the rename itself is durable
    assert calls == {"syncfs": 1, "fsync": 1}


def test_interrupted_run_leaves_the_old_set_intact(tmp_path, capsys, monkeypatch):
    text = TINY.replace("figures: false", "figures: true")
    y = write(tmp_path, text)
    old = ex.run_experiment(y, tmp_path / "s", jobs=1, progress=False)
    before = {p: p.read_bytes() for p in (tmp_path / "s").rglob("*") if p.is_file()}

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(run, "_condition_figures", interrupted)
    code, _, err = run_cli(capsys, "run", y, "--out", tmp_path / "s", "--jobs", "1", "--force", "--seed", "7")
    assert code == 130 and "interrupted" in err
    after = {p: p.read_bytes() for p in (tmp_path / "s").rglob("*") if p.is_file()}
    assert after == before and old["seed_entropy"] == 42
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


# -- figures ------------------------------------------------------------------------------------
def test_run_figures_are_drawn_without_pyplot(tmp_path):
    y = write(tmp_path, TINY.replace("figures: false", "figures: true"))
    code = textwrap.dedent(f"""
        import sys
        from stimgen.experiment import run_experiment
        m = run_experiment({str(y)!r}, {str(tmp_path / 's')!r}, jobs=1, progress=False)
        print("matplotlib.pyplot" in sys.modules, "matplotlib" in sys.modules, len(m["figures"]))
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.split() == ["False", "True", "3"]
    from PIL import Image

    m = json.loads((tmp_path / "s/manifest.json").read_text())
    assert m["figures"] == ["figures/spectrum_c00_band_cpd_1-2.png", "figures/spectrum_c01_band_cpd_2-4.png",
                            "figures/contact_sheet.png"]  # fmt: skip
    for rel in m["figures"]:
        with Image.open(tmp_path / "s" / rel) as im:
            assert im.size[0] > 300 and im.size[1] > 200


def test_condition_figure_is_drawn_from_the_pooled_spectrum(tmp_path, monkeypatch):
    seen = []
    real = figures._condition_figures

    def spy(plan, c, pool, summary, tmp):
        seen.append((c.index, pool.n, summary["n_pass"], summary["spectrum"]["n_images"]))
        return real(plan, c, pool, summary, tmp)

    monkeypatch.setattr(run, "_condition_figures", spy)
    ex.run_experiment(write(tmp_path, TINY.replace("figures: false", "figures: true")), tmp_path / "s", jobs=1, progress=False)
    assert [(i, n, k) for i, n, _, k in seen] == [(0, 3, 3), (1, 3, 3)]


# -- memory stays flat in the number of stimuli ---------------------------------------------------
_PEAK = r"""
import sys
def main():
    from stimgen.experiment import entries, run_experiment, verify_set
    entries.INLINE_MAX_STIMULI = 50
    n, out = int(sys.argv[1]), sys.argv[2]
    exp = {"name": "m", "seed": 1, "display": {"ppd": 16}, "stimulus": {"size_px": 32},
           "noise": {"family": "log_gaussian", "band_cpd": [1, 4]}, "repeats": n,
           "output": {"figures": False}}
    if sys.argv[3] == "run":
        run_experiment(exp, out, jobs=1, progress=False)
    else:
        verify_set(out)
    # VmHWM: this process' own high-water mark (ru_maxrss would include the parent's
    # resident size inherited across fork and exec)
    with open("/proc/self/status") as fh:
        print(next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:")) / 1024)
if __name__ == "__main__":
    main()
"""


@pytest.mark.skipif(sys.platform != "linux", reason="VmHWM of /proc/self/status is Linux's")
def test_peak_memory_does_not_grow_with_the_set(tmp_path):
    """Run and verify 100 and 700 stimuli: the peak resident memory hardly moves.

    Holding the entries (as the engine did) costs about 16 kB per stimulus, 10 MB for the
    600 more here; streaming them must stay within 3 MB (noise of the allocator), which
    scaled to 100,000 stimuli keeps the run well under its 300 MB bound.
    """
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    peaks = {}
    for n in (100, 700):
        for what in ("run", "verify"):
            res = subprocess.run([sys.executable, "-c", _PEAK, str(n), str(tmp_path / f"s{n}"), what],
                                 capture_output=True, text=True, env=env, check=True)  # fmt: skip
            peaks[what, n] = float(res.stdout.split()[-1])
    for what in ("run", "verify"):
        assert peaks[what, 700] - peaks[what, 100] < 3.0, peaks
        assert peaks[what, 700] < 300, peaks


# -- the shipped experiments: same bytes, exit 0 ------------------------------------------------
# sha256 over (path, sha256) of every file of the shipped sets, made by the engine before
# entries were streamed (manifest version 1): the stimuli must not change. The masks are
# those of manifest version 3 (spectral synthesis); with synthesis: spatial they are the
# version-1 bytes bd5d3914... (tests/test_spectral_synthesis.py).
SHIPPED = {
    "masks_octave_bands": "30971850ade9b0d12d8daec6398705da384c7be9667ffbdb2428ef6f56f05784",
    "drifting_noise": "0bb21f452dc0393b8a9a90fa5a316d50ac7128c37e5efe1c573bc9a1f657dbe4",
}


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_sets_keep_their_bytes_and_exit_0(tmp_path, capsys, name):
    code, _, err = run_cli(capsys, "run", ROOT / "experiments" / f"{name}.yaml", "--out", tmp_path / "s")
    assert code == 0, err
    m = json.loads((tmp_path / "s/manifest.json").read_text())
    assert m["status"] == "passed"
    h = hashlib.sha256()
    for e in m["stimuli"]:
        for f in e["files"]:
            assert sha256_file(tmp_path / "s" / f["file"]) == f["sha256"]
            h.update(f["file"].encode())
            h.update(f["sha256"].encode())
    assert h.hexdigest() == SHIPPED[name]
