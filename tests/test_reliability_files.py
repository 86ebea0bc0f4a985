"""Hostile file cases: a user's files are never lost, replaced or half-written.

``CASES`` is the table of what was tried: races with a target that appears while a run
writes, concurrent runs into one target, ``force`` on folders that are not (all)
stimgen's, stale temporary folders of dead and live runs, the umask, non-regular files at
an output path, a noise output that fails half-way, and colorize/regenerate outputs over
existing files, inputs and stimulus sets. Each case failed before these were fixed. The
signal and worker cases at the end run real processes.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import stimgen
from stimgen import _procs
from stimgen import io as sio
from stimgen.cli import main
from stimgen.io import atomic_directory, atomic_write_bytes, write_png

LINUX = sys.platform.startswith("linux")
SET_YAML = """\
name: tiny
seed: 7
display: {ppd: 16}
stimulus: {size_px: 32, rms_contrast: 0.2}
noise: {family: log_gaussian}
conditions:
  - {band_cpd: [1, 4]}
repeats: 2
output: {formats: [npy], figures: false}
"""
NOISE = ["noise", "--size-px", "32", "32", "--ppd", "16", "--band-cpd", "1", "4", "--seed", "3"]


def cli(capsys, *argv) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


def tree(root: Path) -> dict[str, str]:
    """Every file under root with its sha256 (hidden ones too)."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def hidden(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def make_set(parent: Path, name: str = "set") -> Path:
    y = parent / "tiny.yaml"
    y.write_text(SET_YAML)
    stimgen.run_experiment(y, parent / name, jobs=1, progress=False)
    return parent / name


def dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


# -- the cases --------------------------------------------------------------------------------
def case_target_appears_mid_run(tmp, capsys, monkeypatch):
    target = tmp / "target"
    with pytest.raises(FileExistsError, match=r"appeared while .* nothing was replaced.* kept in") as info, \
            atomic_directory(target) as out:
        (out / "a.npy").write_text("mine")
        target.mkdir()
        (target / "notes.txt").write_text("precious")
    assert tree(target) == {"notes.txt": hashlib.sha256(b"precious").hexdigest()}
    kept = info.value.kept
    assert kept is not None and str(kept) in str(info.value) and not kept.name.startswith(".")
    assert (kept / "a.npy").read_text() == "mine" and hidden(tmp) == []


def case_target_appears_mid_run_with_force(tmp, capsys, monkeypatch):
    target = tmp / "target"
    with pytest.raises(sio.OutputConflictError, match="appeared while"), \
            atomic_directory(target, force=True) as out:
        (out / "a.npy").write_text("mine")
        target.mkdir()  # force replaces only what was checked at the start: nothing
    assert target.is_dir() and list(target.iterdir()) == []


def case_braces_in_paths(tmp, capsys, monkeypatch):
    target = tmp / "set{0}{force}"
    target.mkdir()
    (target / "a.txt").write_text("x")
    with pytest.raises(FileExistsError, match=r"set\{0\}\{force\} already exists \(pass force=True"):
        atomic_directory(target).__enter__()
    code, err = cli(capsys, *NOISE, "--out", target)
    assert code == 2 and "set{0}{force} already exists (use --force" in err


def case_file_into_empty_folder_appears(tmp, capsys, monkeypatch):
    target = tmp / "target"  # an empty folder was checked; a file went into it meanwhile
    target.mkdir()
    with pytest.raises(sio.OutputConflictError, match=r"changed while .* not empty \(notes\.txt\)"), \
            atomic_directory(target, force=True) as out:
        (out / "a.npy").write_text("mine")
        (target / "notes.txt").write_text("precious")
    assert (target / "notes.txt").read_text() == "precious"


def case_two_concurrent_runs_one_wins(tmp, capsys, monkeypatch):
    target = tmp / "target"
    results: dict[str, object] = {}
    ready = threading.Barrier(2)

    def run(name: str) -> None:
        try:
            with atomic_directory(target) as out:
                (out / "who.txt").write_text(name)
                ready.wait(timeout=30)
            results[name] = "won"
        except sio.OutputConflictError as exc:
            results[name] = exc

    threads = [threading.Thread(target=run, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [n for n, r in results.items() if r == "won"]
    assert len(winners) == 1
    loser = next(r for r in results.values() if r != "won")
    assert isinstance(loser, sio.OutputConflictError) and loser.kept is not None
    assert (target / "who.txt").read_text() == winners[0]
    assert (loser.kept / "who.txt").read_text() != winners[0]


def case_old_set_gains_a_file_during_forced_run(tmp, capsys, monkeypatch):
    old = make_set(tmp)
    before = tree(old)
    with pytest.raises(sio.OutputConflictError, match=r"notes\.txt is not listed"), \
            atomic_directory(old, force=True) as out:
        (out / "manifest.json").write_text("{}")
        (old / "notes.txt").write_text("added while the run ran")
    assert tree(old) == {**before, "notes.txt": hashlib.sha256(b"added while the run ran").hexdigest()}


def case_old_set_swapped_during_forced_run(tmp, capsys, monkeypatch):
    old = make_set(tmp)
    with pytest.raises(sio.OutputConflictError, match="replaced by something else"), \
            atomic_directory(old, force=True) as out:
        (out / "x").write_text("new")
        old.rename(tmp / "moved")
        make_set(tmp, "set")  # another set, never checked
    assert (tmp / "moved" / "manifest.json").is_file() and (old / "manifest.json").is_file()


def case_without_renameat2(tmp, capsys, monkeypatch):
    # other systems and file systems: mkdir-claim and move-aside paths, same guarantees
    monkeypatch.setattr(sio, "_renameat2", lambda src, dst, flags: False)
    case_target_appears_mid_run(tmp, capsys, monkeypatch)
    old = make_set(tmp, "b")
    before = tree(old)
    with pytest.raises(sio.OutputConflictError, match=r"notes\.txt is not listed"), \
            atomic_directory(old, force=True) as out:
        (out / "x").write_text("new")
        (old / "notes.txt").write_text("added")
    assert tree(old) == {**before, "notes.txt": hashlib.sha256(b"added").hexdigest()}
    (old / "notes.txt").unlink()
    with atomic_directory(old, force=True) as out:
        (out / "x").write_text("new")
    assert tree(old) == {"x": hashlib.sha256(b"new").hexdigest()}
    assert [n for n in hidden(tmp) if not n.endswith(".yaml")] == []


FOREIGN = {
    "name-only manifest": ({"manifest.json": "{}", "thesis.tex": "x"}, r"manifest\.json is not a stimgen manifest"),
    "name-only record": ({"record.json": '{"a": 1}', "data.csv": "1,2"}, r"record\.json is not a stimgen noise record"),
    "set plus a stray file": (None, r"stimuli/c00_r00/notes\.txt is not listed in its manifest\.json"),
    "noise folder plus a file": ({"record.json": None, "noise_0000.npy": "x", "mine.py": "x"},
                                 r"mine\.py is not listed in its record\.json"),
    "no marker": ({"a.txt": "x"}, r"not empty \(a\.txt\) and holds no stimgen output"),
}


def case_force_on_foreign_folders(tmp, capsys, monkeypatch):
    for i, (files, match) in enumerate(FOREIGN.values()):
        if files is None:
            root = make_set(tmp, f"s{i}")
            stim = next((root / "stimuli").rglob("*.npy")).parent
            (stim / "notes.txt").write_text("x")
            match = match.replace("c00_r00", stim.name)
        else:
            root = tmp / f"f{i}"
            root.mkdir()
            for name, text in files.items():
                if text is None:
                    text = json.dumps({"value_convention": "signed", "seed": {}, "n": 1, "shape_px": [2, 2]})
                (root / name).write_text(text)
        before = tree(root)
        with pytest.raises(FileExistsError, match=match), atomic_directory(root, force=True):
            pass
        assert tree(root) == before
    code, err = cli(capsys, *NOISE, "--out", tmp / "f0", "--force")
    assert code == 2 and "is not a stimgen manifest" in err and err.count("\n") == 1


def case_link_to_a_set_is_not_replaced(tmp, capsys, monkeypatch):
    s = make_set(tmp)
    (tmp / "link").symlink_to(s)
    with pytest.raises(FileExistsError, match="symbolic link, not a directory"), \
            atomic_directory(tmp / "link", force=True):
        pass
    assert (tmp / "link").is_symlink() and (s / "manifest.json").is_file()


def case_stale_partials_dead_removed_live_kept(tmp, capsys, monkeypatch):
    me = _procs.machine_token()
    names = {
        "dead": f".old.{me}-{dead_pid()}-{_procs.process_start() + 1}.abcdefgh.partial",
        "live": f".other.{_procs.owner_tag()}.abcdefgh.partial",
        "other machine": f".far.00000000-{dead_pid()}-5.abcdefgh.partial",
        "not stimgen's": f".mine.{me}-{dead_pid()}.partial",
        "dead tmp file": f".x.npy.{me}-{dead_pid()}-9.abcdefgh.tmp",
    }
    if LINUX:  # PID reused: a live PID with another start time is not the owner
        names["pid reused"] = f".re.{me}-{os.getppid()}-1.abcdefgh.partial"
    for what, name in names.items():
        if what == "dead tmp file":
            (tmp / name).write_text("x")
        else:
            (tmp / name).mkdir()
            (tmp / name / "big.npy").write_text("x")
    with atomic_directory(tmp / "new") as out:
        (out / "a").write_text("a")
    gone = {"dead", "dead tmp file", "pid reused"}
    assert hidden(tmp) == sorted(n for w, n in names.items() if w not in gone)


def case_dead_run_killed_mid_replacement_is_rolled_back(tmp, capsys, monkeypatch):
    # a run that had moved the old set aside (no exchange available) and was then killed
    work = tmp / f".set.{_procs.machine_token()}-{dead_pid()}-3.abcdefgh.partial"
    (work / "new").mkdir(parents=True)
    (work / "old").mkdir()
    (work / "old" / "manifest.json").write_text("old set")
    (work / "plan.json").write_text(json.dumps({"kind": "directory", "target": "set"}))
    sio.clean_stale_partials(tmp)
    assert (tmp / "set" / "manifest.json").read_text() == "old set" and hidden(tmp) == []
    if LINUX:  # killed right after exchanging the folders, before checking the old one
        work = tmp / f".set.{_procs.machine_token()}-{dead_pid()}-3.abcdefgh.partial"
        work.mkdir()
        (work / "plan.json").write_text(json.dumps({"kind": "directory", "target": "set"}))
        (tmp / "set").rename(work / "new")  # the old set, taken out
        (tmp / "set").mkdir()  # the new set, put in
        (tmp / "set" / "manifest.json").write_text("new set")
        ids = {k: list(sio._ident(os.lstat(p))) for k, p in (("old", work / "new"), ("new", tmp / "set"))}
        (work / "journal.json").write_text(json.dumps(ids))
        sio.clean_stale_partials(tmp)
        assert (tmp / "set" / "manifest.json").read_text() == "old set" and hidden(tmp) == []


def case_umask_respected(tmp, capsys, monkeypatch):
    for mask in (0o022, 0o002, 0o077):
        old = os.umask(mask)
        try:
            d = tmp / f"d{mask:o}"
            with atomic_directory(d) as out:
                atomic_write_bytes(out / "m.json", b"{}")
            atomic_write_bytes(tmp / f"f{mask:o}.png", b"x")
            assert cli(capsys, *NOISE, "--out", tmp / f"n{mask:o}.npy", "--png", "8")[0] == 0
        finally:
            os.umask(old)
        capsys.readouterr()
        assert stat.S_IMODE(d.stat().st_mode) == 0o777 & ~mask
        for f in (d / "m.json", tmp / f"f{mask:o}.png", tmp / f"n{mask:o}.npy",
                  tmp / f"n{mask:o}.json", tmp / f"n{mask:o}_0000.png"):
            assert stat.S_IMODE(f.stat().st_mode) == 0o666 & ~mask, f


def case_fifo_at_output_refused(tmp, capsys, monkeypatch):
    fifo = tmp / "out.png"
    os.mkfifo(fifo)
    with pytest.raises(FileExistsError, match="named pipe"):
        atomic_write_bytes(fifo, b"x")
    write_png(tmp / "g.png", np.full((8, 8), 100, np.uint8))
    marked = np.full((8, 8, 3), 100, np.uint8)
    marked[2, 2] = (255, 0, 0)
    write_png(tmp / "m.png", marked)
    code, err = cli(capsys, "colorize", tmp / "g.png", tmp / "m.png", "--out", fifo, "--force")
    assert code == 2 and "named pipe (fifo), not a regular file" in err
    os.mkfifo(tmp / "n.npy")
    code, err = cli(capsys, *NOISE, "--out", tmp / "n.npy", "--force")
    assert code == 2 and "named pipe" in err
    with pytest.raises(FileExistsError, match="named pipe"), atomic_directory(fifo, force=True):
        pass
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and stat.S_ISFIFO(os.lstat(tmp / "n.npy").st_mode)


def _trio(tmp: Path) -> dict[str, str]:
    return {k: v for k, v in tree(tmp).items() if k.startswith("n")}


def case_noise_file_set_fails_half_way(tmp, capsys, monkeypatch):
    assert cli(capsys, *NOISE, "--count", "3", "--png", "8", "--out", tmp / "n.npy")[0] == 0
    before = _trio(tmp)
    assert sorted(before) == ["n.json", "n.npy", "n_0000.png", "n_0001.png", "n_0002.png"]
    calls = {"n": 0}
    real = sio.png_bytes

    def failing(*a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(28, "No space left on device")
        return real(*a, **k)

    monkeypatch.setattr(sio, "png_bytes", failing)
    code, err = cli(capsys, *NOISE[:-1], "9", "--count", "3", "--png", "8", "--out", tmp / "n.npy", "--force")
    assert code == 2 and "No space left" in err
    assert _trio(tmp) == before and hidden(tmp) == []


def case_noise_file_set_fails_while_renaming(tmp, capsys, monkeypatch):
    assert cli(capsys, *NOISE, "--count", "2", "--png", "8", "--out", tmp / "n.npy")[0] == 0
    before = _trio(tmp)
    real = sio._rename_noreplace
    calls = {"n": 0}

    def failing(src, dst):
        calls["n"] += 1
        if calls["n"] == 3:  # two PNGs in place, then the stack fails
            raise OSError(5, "Input/output error")
        return real(src, dst)

    monkeypatch.setattr(sio, "_rename_noreplace", failing)
    code, err = cli(capsys, *NOISE[:-1], "9", "--count", "2", "--png", "8", "--out", tmp / "n.npy", "--force")
    assert code == 2 and "Input/output error" in err
    assert _trio(tmp) == before and hidden(tmp) == []


def case_noise_smaller_count_leaves_no_stale_pngs(tmp, capsys, monkeypatch):
    assert cli(capsys, *NOISE, "--count", "3", "--png", "8", "--out", tmp / "n.npy")[0] == 0
    (tmp / "n_0007.png").write_bytes(b"the user's own file, not in the record")
    assert cli(capsys, *NOISE, "--count", "1", "--png", "8", "--out", tmp / "n.npy", "--force")[0] == 0
    capsys.readouterr()
    assert sorted(_trio(tmp)) == ["n.json", "n.npy", "n_0000.png", "n_0007.png"]
    rec = json.loads((tmp / "n.json").read_text())
    assert rec["files"] == ["n_0000.png", "n.npy", "n.json"] and np.load(tmp / "n.npy").shape[0] == 1
    # a record from before records listed their files: its files follow from n and png
    del rec["files"]
    rec.update(n=1, png={"bits": 8})
    (tmp / "n.json").write_text(json.dumps(rec))
    assert cli(capsys, *NOISE, "--count", "2", "--out", tmp / "n.npy", "--force")[0] == 0
    assert sorted(_trio(tmp)) == ["n.json", "n.npy", "n_0007.png"]
    # the folder layout: a smaller count replaces the whole folder
    assert cli(capsys, *NOISE, "--count", "3", "--png", "8", "--out", tmp / "d")[0] == 0
    assert cli(capsys, *NOISE, "--count", "1", "--out", tmp / "d", "--force")[0] == 0
    assert sorted(tree(tmp / "d")) == ["noise_0000.npy", "record.json"]


def case_noise_force_over_a_users_npy(tmp, capsys, monkeypatch):
    np.save(tmp / "n.npy", np.arange(3))
    code, err = cli(capsys, *NOISE, "--out", tmp / "n.npy", "--force")
    assert code == 2 and "not listed as stimgen's by a noise record n.json" in err
    assert np.array_equal(np.load(tmp / "n.npy"), np.arange(3))
    s = make_set(tmp)  # nor into a stimulus set, as a file set or a folder
    before = tree(s)
    for out in (s / "n.npy", s / "stimuli" / "noise"):
        code, err = cli(capsys, *NOISE, "--out", out, "--force")
        assert code == 2 and f"inside the stimulus set {s}" in err
    assert tree(s) == before


def case_colorize_refuses_existing_inputs_and_sets(tmp, capsys, monkeypatch):
    write_png(tmp / "g.png", np.full((8, 8), 100, np.uint8))
    marked = np.full((8, 8, 3), 100, np.uint8)
    marked[2, 2] = (255, 0, 0)
    write_png(tmp / "m.png", marked)
    args = ["colorize", tmp / "g.png", tmp / "m.png", "--out"]
    (tmp / "o.png").write_bytes(b"precious")
    code, err = cli(capsys, *args, tmp / "o.png")
    assert code == 2 and "already exists (use --force" in err
    assert (tmp / "o.png").read_bytes() == b"precious"
    g = (tmp / "g.png").read_bytes()
    (tmp / "hard.png").hardlink_to(tmp / "m.png")  # another name, the same file
    for out in (tmp / "g.png", tmp / "hard.png"):
        code, err = cli(capsys, *args, out, "--force")
        assert code == 2 and "is an input of this command" in err
    assert (tmp / "g.png").read_bytes() == g
    s = make_set(tmp)
    code, err = cli(capsys, *args, s / "stimuli" / "c.png", "--force")
    assert code == 2 and f"inside the stimulus set {s}" in err and not (s / "stimuli" / "c.png").exists()
    assert cli(capsys, *args, tmp / "o.png", "--force")[0] == 0 and (tmp / "o.png").read_bytes() != b"precious"


def case_regenerate_refuses_existing_inputs_and_sets(tmp, capsys, monkeypatch):
    s = make_set(tmp)
    before = tree(s)
    (tmp / "r").mkdir()
    (tmp / "r" / "notes.txt").write_text("x")
    code, err = cli(capsys, "regenerate", s, "--index", "0", "--out", tmp / "r")
    assert code == 2 and "already exists (use --force" in err
    code, err = cli(capsys, "regenerate", s, "--index", "0", "--out", tmp / "r", "--force")
    assert code == 2 and "holds no stimgen output" in err and (tmp / "r" / "notes.txt").exists()
    for out in (s / "regen", s / "stimuli"):
        code, err = cli(capsys, "regenerate", s, "--index", "0", "--out", out, "--force")
        assert code == 2 and "stimulus set" in err
    other = make_set(tmp, "other")
    code, err = cli(capsys, "regenerate", s, "--index", "0", "--out", other, "--force")
    assert code == 2 and "holds a stimulus set (manifest.json)" in err
    assert tree(s) == before
    assert cli(capsys, "regenerate", s, "--index", "1", "--out", tmp / "new")[0] == 0
    assert cli(capsys, "regenerate", s, "--index", "0", "--out", tmp / "new", "--force")[0] == 0
    rec = json.loads((tmp / "new" / "regenerated.json").read_text())
    assert rec["index"] == 0 and all((tmp / "new" / f).is_file() for f in rec["files"])


CASES = {
    "target appears mid-run": case_target_appears_mid_run,
    "target appears mid-run, force": case_target_appears_mid_run_with_force,
    "file put into the checked empty target": case_file_into_empty_folder_appears,
    "two concurrent runs into one new target": case_two_concurrent_runs_one_wins,
    "braces in an output path": case_braces_in_paths,
    "old set gains a file during a forced run": case_old_set_gains_a_file_during_forced_run,
    "old set swapped during a forced run": case_old_set_swapped_during_forced_run,
    "no renameat2: claim and move-aside paths": case_without_renameat2,
    "force on foreign folders": case_force_on_foreign_folders,
    "force on a link to a set": case_link_to_a_set_is_not_replaced,
    "stale partials: dead removed, live kept": case_stale_partials_dead_removed_live_kept,
    "run killed mid-replacement rolled back": case_dead_run_killed_mid_replacement_is_rolled_back,
    "umask 022, 002, 077 respected": case_umask_respected,
    "fifo at an output refused": case_fifo_at_output_refused,
    "noise --out FILE.npy fails half-way": case_noise_file_set_fails_half_way,
    "noise --out FILE.npy fails while renaming": case_noise_file_set_fails_while_renaming,
    "noise smaller --count leaves no stale PNGs": case_noise_smaller_count_leaves_no_stale_pngs,
    "noise --force over a user's .npy, into a set": case_noise_force_over_a_users_npy,
    "colorize --out: existing, input, inside a set": case_colorize_refuses_existing_inputs_and_sets,
    "regenerate --out: existing, inside a set, a set": case_regenerate_refuses_existing_inputs_and_sets,
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_hostile_file_case(case, tmp_path, capsys, monkeypatch):
    if "fifo" in case and not hasattr(os, "mkfifo"):
        pytest.skip("no fifos on this platform")
    CASES[case](tmp_path, capsys, monkeypatch)


# -- signals and workers (real processes) ------------------------------------------------------
def _python(code: str, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(Path(stimgen.__file__).parents[1])}
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(pred, timeout_s: float = 30.0) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGHUP"])
def test_sigterm_and_sighup_clean_up_like_ctrl_c(tmp_path, sig):
    proc = _python("""
        import sys, time
        from stimgen._procs import signals_as_interrupt
        from stimgen.io import atomic_directory
        try:
            with signals_as_interrupt(), atomic_directory(sys.argv[1]) as out:
                (out / "big.npy").write_bytes(b"x" * 1000)
                print("ready", flush=True)
                time.sleep(60)
        except KeyboardInterrupt as exc:
            print(type(exc).__name__, getattr(exc, "signum", None), flush=True)
            sys.exit(3)
        """, str(tmp_path / "set"))
    assert proc.stdout.readline().strip() == "ready"
    assert hidden(tmp_path) != []  # the partial folder exists while it runs
    proc.send_signal(getattr(signal, sig))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 3 and out.split() == ["Terminated", str(int(getattr(signal, sig)))], err
    assert list(tmp_path.iterdir()) == []


def _catches(pid: int, sig: int) -> bool:
    """True once process ``pid`` has a handler for ``sig`` (Linux: SigCgt in /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (sig - 1) & 1)
    return False


@pytest.mark.skipif(not LINUX, reason="needs a fifo to block on and /proc")
def test_cli_exits_128_plus_signal_on_sigterm(tmp_path):
    fifo = tmp_path / "frame.png"
    os.mkfifo(fifo)  # opening it blocks until killed
    proc = _python("import sys; from stimgen.cli import main; sys.exit(main(sys.argv[1:]))",
                   "stats", str(fifo), "--no-progress")
    assert _wait_for(lambda: _catches(proc.pid, signal.SIGTERM), 60)  # main() installed it
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert err.strip().endswith("terminated by SIGTERM; nothing was left half-written")


def test_worker_dies_with_its_parent(tmp_path):
    pidfile = tmp_path / "worker.pid"
    parent = _python("""
        import subprocess, sys, time
        code = ("import sys, time; from stimgen._procs import die_with_parent; die_with_parent(); "
                "open(sys.argv[1], 'w').write(str(__import__('os').getpid())); time.sleep(120)")
        subprocess.Popen([sys.executable, "-c", code, sys.argv[1]])
        time.sleep(120)
        """, str(pidfile))
    assert _wait_for(lambda: pidfile.exists() and pidfile.read_text().strip() != "")
    worker = int(pidfile.read_text())
    start = _procs.process_start(worker)
    parent.kill()  # SIGKILL: no cleanup code runs in the parent
    parent.communicate(timeout=60)

    def gone() -> bool:
        return _procs.owner_gone(_procs.machine_token(), worker, start)

    assert _wait_for(gone), f"worker {worker} outlived its parent"


def test_pool_workers_with_the_initializer_die_with_their_parent(tmp_path):
    # the hook-up for a worker pool: initializer=die_with_parent, initargs=(os.getpid(),)
    pidfile = tmp_path / "workers"
    parent = _python("""
        import concurrent.futures as cf, multiprocessing as mp, os, sys, time
        from stimgen._procs import die_with_parent

        def work(_):
            time.sleep(120)

        if __name__ == "__main__":
            pool = cf.ProcessPoolExecutor(2, mp_context=mp.get_context("spawn"),
                                          initializer=die_with_parent, initargs=(os.getpid(),))
            futs = [pool.submit(work, i) for i in range(2)]
            time.sleep(2)
            open(sys.argv[1], "w").write(" ".join(str(p) for p in pool._processes))
            time.sleep(120)
        """, str(pidfile))
    assert _wait_for(lambda: pidfile.exists() and len(pidfile.read_text().split()) == 2, 60)
    workers = [int(p) for p in pidfile.read_text().split()]
    starts = [_procs.process_start(p) for p in workers]
    parent.kill()
    parent.communicate(timeout=60)
    me = _procs.machine_token()
    assert _wait_for(lambda: all(_procs.owner_gone(me, p, s) for p, s in zip(workers, starts, strict=True)))


@pytest.mark.slow
def test_stimgen_run_into_a_target_that_appears_mid_run(tmp_path):
    y = tmp_path / "big.yaml"
    y.write_text(SET_YAML.replace("repeats: 2", "repeats: 200").replace("size_px: 32", "size_px: 64"))
    run = _python("import sys; from stimgen.cli import main; sys.exit(main(sys.argv[1:]))",
                  "run", str(y), "--out", str(tmp_path / "target"), "--jobs", "1", "--no-progress")
    assert _wait_for(lambda: any(n.endswith(".partial") for n in hidden(tmp_path)), 60)
    (tmp_path / "target").mkdir()
    (tmp_path / "target" / "notes.txt").write_text("precious")
    _, err = run.communicate(timeout=300)
    assert run.returncode == 2, err
    assert "appeared while this output was being written; nothing was replaced" in err
    assert (tmp_path / "target" / "notes.txt").read_text() == "precious"
    kept = [p for p in tmp_path.iterdir() if p.name.startswith("target.stimgen-new-")]
    assert len(kept) == 1 and str(kept[0]) in err and (kept[0] / "manifest.json").is_file()
    assert hidden(tmp_path) == []


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        kids += [int(k) for k in (task / "children").read_text().split()]
    return kids


@pytest.mark.slow
@pytest.mark.skipif(not LINUX, reason="lists child processes through /proc")
@pytest.mark.parametrize("sig", ["SIGTERM", "SIGHUP"])
def test_stimgen_run_with_workers_cleans_up_on_sigterm_and_sighup(tmp_path, sig):
    y = tmp_path / "big.yaml"
    y.write_text(SET_YAML.replace("repeats: 2", "repeats: 400").replace("size_px: 32", "size_px: 64"))
    run = _python("import sys; from stimgen.cli import main; sys.exit(main(sys.argv[1:]))",
                  "run", str(y), "--out", str(tmp_path / "target"), "--jobs", "2", "--no-progress")
    assert _wait_for(lambda: any(n.endswith(".partial") for n in hidden(tmp_path)), 60)
    assert _wait_for(lambda: len(_children(run.pid)) >= 2, 60)
    kids = {k: _procs.process_start(k) for k in _children(run.pid)}
    run.send_signal(getattr(signal, sig))
    _, err = run.communicate(timeout=300)
    assert run.returncode == 128 + getattr(signal, sig), err
    assert f"terminated by {sig}" in err
    assert list(tmp_path.iterdir()) == [y]  # no partial folder, no set
    me = _procs.machine_token()
    assert _wait_for(lambda: all(_procs.owner_gone(me, k, s) for k, s in kids.items()), 60)


def test_signal_inside_a_wrapped_import_error_is_still_the_signal(capsys, monkeypatch):
    """SIGTERM during numpy's import surfaces as an ImportError whose context is the
    Terminated exception: the CLI reports the signal (128 + N), not an internal error."""
    import signal as _signal

    from stimgen import cli

    def handler(args):
        try:
            raise _procs.Terminated(_signal.SIGTERM)
        except KeyboardInterrupt:
            raise ImportError("Importing the numpy C-extensions failed") from None

    def handler_ctx(args):
        try:
            raise _procs.Terminated(_signal.SIGTERM)
        except KeyboardInterrupt as exc:
            raise ImportError("Importing the numpy C-extensions failed") from exc

    parser = cli.build_parser()
    args = parser.parse_args(["geometry", "--ppd", "30"])
    args._handler = handler_ctx
    assert cli._run_handler(args) == 128 + _signal.SIGTERM
    assert "terminated by SIGTERM" in capsys.readouterr().err
    args._handler = handler  # `from None` hides the cause but keeps the context
    assert cli._run_handler(args) == 128 + _signal.SIGTERM
