"""Hostile cases of ``stimgen run`` and ``stimgen verify``: exit statuses that tell the truth,
and requests too large for the machine refused before anything is made.

Each row of the tables is a case tried as a new user or an adversary would; the expected
exit status and a fragment of the one-line message are part of the row.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from stimgen.cli import main
from stimgen.experiment import budget, entries

BASE = """\
name: hostile
seed: 5
display: {ppd: 16}
stimulus: {size_px: 64, rms_contrast: 0.2}
noise: {family: log_gaussian, band_cpd: [1, 2]}
repeats: 2
output: {formats: [npy, png8], figures: false}
"""

GIB = 2**30

# (case, text replacements, extra arguments, fake MemAvailable in bytes or None, exit status, message fragment)
RUN_CASES = [
    ("passing set", {}, [], None, 0, ""),
    ("tight edge tolerance: every stimulus fails", {"repeats: 2": "repeats: 2\ncheck: {edge_tolerance: 0.0001}"},
     [], None, 3, "FAILED checks: 2 of 2 stimuli"),
    ("tight peak tolerance, --allow-fail", {"repeats: 2": "repeats: 2\ncheck: {peak_tolerance: 0.00001}"},
     ["--allow-fail"], None, 0, "--allow-fail: exit 0"),
    ("huge still image", {"size_px: 64": "size_px: [100000, 100000]"}, [], 16 * GIB, 2,
     "needs about 640 GB of memory but 17.2 GB is available"),
    ("huge image, more jobs than fit", {"size_px: 64": "size_px: [8000, 8000]"}, ["--jobs", "2"], 8 * GIB, 2,
     "2 worker processes of"),
    ("huge frame count", {"repeats: 2": "repeats: 2\nmotion: {frame_rate_hz: 60, n_frames: 10000000, speed_deg_s: 1}",
                          "[npy, png8]": "[npy]"}, [], 16 * GIB, 2, "10000000 frames of 64 x 64 px"),
    ("huge movie frame, refused at validation", {"size_px: 64": "size_px: [50000, 50000]",
                                                 "repeats: 2": "repeats: 2\nmotion: {frame_rate_hz: 60, n_frames: 2, speed_deg_s: 1}",
                                                 "[npy, png8]": "[npy]"}, [], 16 * GIB, 2,
     "one frame of 50000 x 50000 px needs about"),
    ("ten million repeats", {"repeats: 2": "repeats: 10000000"}, [], None, 2, "of disk but"),
    ("huge image with --no-budget-check is attempted", {"size_px: 64": "size_px: [64, 64]"},
     ["--no-budget-check"], 1, 0, ""),
]  # fmt: skip


@pytest.mark.parametrize("case, edits, extra, mem, code, fragment", RUN_CASES, ids=[c[0] for c in RUN_CASES])
def test_run_hostile_cases(tmp_path, capsys, monkeypatch, case, edits, extra, mem, code, fragment):
    text = BASE
    for old, new in edits.items():
        text = text.replace(old, new)
    y = tmp_path / "e.yaml"
    y.write_text(textwrap.dedent(text))
    if mem is not None:
        monkeypatch.setattr(budget, "available_memory", lambda: mem)
    if "ten million" in case:  # whatever the real disk: far less free than 10 million stimuli need
        monkeypatch.setattr(budget, "free_disk", lambda path: (50 * 10**9, Path(path)))
    got = main(["run", str(y), "--out", str(tmp_path / "s"), "--no-progress", *extra])
    out, err = capsys.readouterr()
    assert got == code, err
    assert fragment in err
    written = (tmp_path / "s").exists()
    assert written == (code in (0, 3))
    if code == 2:  # one line; an experiment error: its located line and the summary line
        assert err.count("\n") == (2 if "1 problem in" in err else 1) and "Traceback" not in err
    if written:
        status = json.loads((tmp_path / "s/manifest.json").read_text())["status"]
        assert status == ("passed" if not fragment else "failed")


@pytest.fixture
def failing_set(tmp_path_factory):
    d = tmp_path_factory.mktemp("failing")
    y = d / "e.yaml"
    y.write_text(BASE.replace("repeats: 2", "repeats: 3\ncheck: {edge_tolerance: 0.0001}"))
    assert main(["run", str(y), "--out", str(d / "s"), "--jobs", "1", "--allow-fail"]) == 0
    return d / "s"


def _flip(path: Path, at: int = -10) -> None:
    b = bytearray(path.read_bytes())
    b[at] ^= 1
    path.write_bytes(bytes(b))


def _first_npy(root: Path) -> Path:
    return sorted((root / "stimuli").rglob("*.npy"))[0]


# (case, damage to the failing set, extra arguments, exit status, output fragment)
VERIFY_CASES = [
    ("intact set whose stimuli failed", None, [], 3, "FAILED CHECK"),
    ("intact failed set, --allow-fail", None, ["--allow-fail"], 0, "intact, but 3 stimuli"),
    ("a changed stimulus byte", lambda r: _flip(_first_npy(r)), [], 1, "sha256 differs"),
    ("a changed byte, --allow-fail", lambda r: _flip(_first_npy(r)), ["--allow-fail"], 1, "sha256 differs"),
    ("a missing stimulus", lambda r: _first_npy(r).unlink(), [], 1, "missing"),
    ("an unlisted file", lambda r: (r / "stimuli" / "extra.npy").write_bytes(b"x"), [], 1, "not in the manifest"),
    ("--require-pass counts failed checks as problems", None, ["--require-pass"], 1, "failed the design check"),
]  # fmt: skip


@pytest.mark.parametrize("case, damage, extra, code, fragment", VERIFY_CASES, ids=[c[0] for c in VERIFY_CASES])
def test_verify_hostile_cases(tmp_path, capsys, failing_set, case, damage, extra, code, fragment):
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(failing_set, root)
    if damage is not None:
        damage(root)
    got = main(["verify", str(root), *extra])
    out, err = capsys.readouterr()
    assert got == code and fragment in out + err


# streamed entries (sets over 1,000 stimuli keep them in entries.jsonl): the same statuses
STREAMED_CASES = [
    ("intact streamed set", None, 3, "FAILED CHECK"),
    ("entries.jsonl: one byte flipped", lambda r: _flip(r / "entries.jsonl", at=-30), 1,
     "entries.jsonl: sha256 differs from the manifest"),
    ("entries.jsonl: truncated", lambda r: (r / "entries.jsonl").write_bytes((r / "entries.jsonl").read_bytes()[:-50]),
     1, "entries.jsonl: sha256 differs"),
    ("entries.jsonl: deleted", lambda r: (r / "entries.jsonl").unlink(), 2, "entries file"),
    ("manifest.json: entries reference damaged", lambda r: (r / "manifest.json").write_text(
        json.dumps({**json.loads((r / "manifest.json").read_text()), "entries": {"file": "../x", "sha256": "0", "n": 3}})),
     2, "entries.file must be 'entries.jsonl'"),
]  # fmt: skip


@pytest.mark.parametrize("case, damage, code, fragment", STREAMED_CASES, ids=[c[0] for c in STREAMED_CASES])
def test_verify_streamed_hostile_cases(tmp_path, capsys, monkeypatch, case, damage, code, fragment):
    monkeypatch.setattr(entries, "INLINE_MAX_STIMULI", 2)
    y = tmp_path / "e.yaml"
    y.write_text(BASE.replace("repeats: 2", "repeats: 3\ncheck: {edge_tolerance: 0.0001}"))
    assert main(["run", str(y), "--out", str(tmp_path / "s"), "--jobs", "1"]) == 3
    capsys.readouterr()
    root = tmp_path / "s"
    assert (root / "entries.jsonl").is_file()
    if damage is not None:
        damage(root)
    got = main(["verify", str(root)])
    out, err = capsys.readouterr()
    assert got == code and fragment in out + err
