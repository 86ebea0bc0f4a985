"""stimgen export: PsychoPy (conditions.csv, present.py) and BIDS stimuli, hash-checked and deterministic."""

from __future__ import annotations

import csv
import hashlib
import json
import re
import runpy
import sys
import textwrap
import types
from pathlib import Path

import numpy as np
import pytest

from stimgen import experiment as ex
from stimgen.cli import main
from stimgen.contrast import quantize
from stimgen.export import export_set
from stimgen.io import read_image

STILLS = """\
name: stills
seed: 5
display: {ppd: 32}
stimulus: {size_px: [48, 64], rms_contrast: 0.2}
noise: {family: log_gaussian}
conditions:
  - {band_cpd: [2, 4]}
  - {band_cpd: [4, 8]}
repeats: 3
output: {formats: [npy, png8], dither: noisy-bit, figures: false}
"""
MOVIES = """\
name: movies
seed: 1
display: {ppd: 16}
stimulus: {size_px: [32, 40], rms_contrast: 0.2}
noise: {family: log_gaussian, band_cpd: [1, 3]}
motion: {frame_rate_hz: 60, n_frames: 4}
factorial: {speed_deg_s: [1, 2], direction_deg: [0, 90]}
output: {formats: [npy, gif], figures: false}
"""
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _run(tmp: Path, text: str, name: str) -> tuple[Path, dict]:
    y = tmp / f"{name}.yaml"
    y.write_text(textwrap.dedent(text))
    m = ex.run_experiment(y, tmp / name, jobs=1, progress=False)
    return tmp / name, m


@pytest.fixture(scope="module")
def stills(tmp_path_factory):
    return _run(tmp_path_factory.mktemp("export"), STILLS, "stills")


@pytest.fixture(scope="module")
def movies(tmp_path_factory):
    return _run(tmp_path_factory.mktemp("export"), MOVIES, "movies")


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _rows(path: Path, delimiter: str = ",") -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="") as f:
        r = csv.DictReader(f, delimiter=delimiter)
        return list(r.fieldnames or []), list(r)


def test_psychopy_conditions_and_pixels(stills, tmp_path, capsys):
    root, m = stills
    out = tmp_path / "pp"
    assert main(["export", str(root), "--to", "psychopy", str(out)]) == 0
    assert "copied: the set's own png8 file" in capsys.readouterr().out
    names, rows = _rows(out / "conditions.csv")
    assert len(rows) == m["n_stimuli"] == 6
    assert names[:3] == ["stim_file", "stim_id", "condition"]
    assert {"band_low_cpd", "band_high_cpd", "size_px_w", "size_px_h", "size_deg_w", "size_deg_h", "ppd",
            "sha256"} <= set(names)
    assert all(NAME.match(n) for n in names) and len(set(names)) == len(names)
    assert len({r["stim_id"] for r in rows}) == len(rows)
    for r, e in zip(rows, m["stimuli"], strict=True):
        f = out / r["stim_file"]
        assert f.is_file() and f.suffix == ".png"
        assert hashlib.sha256(f.read_bytes()).hexdigest() == r["sha256"]
        png8 = next(x for x in e["files"] if x["format"] == "png8")
        assert f.read_bytes() == (root / png8["file"]).read_bytes()  # the set's own bytes
        np.testing.assert_array_equal(read_image(f), read_image(root / png8["file"]))  # no flip, no resampling
        assert (int(r["size_px_w"]), int(r["size_px_h"])) == (64, 48)
        assert float(r["size_deg_w"]) == 2.0 and float(r["ppd"]) == 32.0
        band = e["condition"]["band_cpd"]
        assert (float(r["band_low_cpd"]), float(r["band_high_cpd"])) == tuple(band)
    record = json.loads((out / "export.json").read_text())
    assert sorted(record["files"]) == sorted(_tree(out))
    assert record["source"]["experiment_sha256"] == m["experiment_sha256"]


def test_conditions_load_in_psychopy_or_by_its_rules(stills, tmp_path):
    root, m = stills
    export_set(root, tmp_path / "pp", to="psychopy")
    try:
        from psychopy.data import importConditions
    except ImportError:  # PsychoPy is optional: check its rules for conditions files with csv
        names, rows = _rows(tmp_path / "pp" / "conditions.csv")
        assert all(n and NAME.match(n) and not n[0].isdigit() for n in names)
        assert len(set(names)) == len(names)
        assert all(len(r) == len(names) and None not in r.values() for r in rows)
        assert len(rows) == m["n_stimuli"]
    else:
        trials = importConditions(str(tmp_path / "pp" / "conditions.csv"))
        assert len(trials) == m["n_stimuli"]
        assert all((tmp_path / "pp" / t["stim_file"]).is_file() for t in trials)


class _FakePsychoPy:
    """Just enough of psychopy for present.py to run headless, recording what it draws."""

    def __init__(self, monkeypatch, conditions: list[dict]):
        self.stims: list[dict] = []
        fake = types.ModuleType("psychopy")
        visual, core, data, event = (types.ModuleType(f"psychopy.{n}") for n in ("visual", "core", "data", "event"))
        test = self

        class Window:
            def __init__(self, **kw):
                test.window = kw

            def getActualFrameRate(self):
                return 60.0

            def flip(self):
                pass

            def close(self):
                pass

        class ImageStim:
            def __init__(self, win, **kw):
                test.stims.append(kw)

            def draw(self):
                pass

        visual.Window, visual.ImageStim = Window, ImageStim
        core.wait = lambda s: None
        core.quit = lambda: None
        data.importConditions = lambda path: conditions
        data.TrialHandler = lambda trials, nReps, method: list(trials)
        event.getKeys = lambda keys: []
        for name, mod in (("visual", visual), ("core", core), ("data", data), ("event", event)):
            setattr(fake, name, mod)
            monkeypatch.setitem(sys.modules, f"psychopy.{name}", mod)
        monkeypatch.setitem(sys.modules, "psychopy", fake)


def test_present_py_shows_stills_at_native_size(stills, tmp_path, monkeypatch):
    root, m = stills
    export_set(root, tmp_path / "pp", to="psychopy")
    _, rows = _rows(tmp_path / "pp" / "conditions.csv")
    fake = _FakePsychoPy(monkeypatch, rows)
    runpy.run_path(str(tmp_path / "pp" / "present.py"), run_name="__main__")
    assert fake.window["units"] == "pix" and fake.window["color"] == (0, 0, 0)
    assert len(fake.stims) == len(rows)
    for kw, r in zip(fake.stims, rows, strict=True):
        assert kw["units"] == "pix" and kw["interpolate"] is False and kw["size"] == (64, 48)
        assert kw["image"] == str(tmp_path / "pp" / r["stim_file"])


def test_movies_export_npy_and_present_flips_rows(movies, tmp_path, monkeypatch):
    root, m = movies
    export_set(root, tmp_path / "pp", to="psychopy")
    names, rows = _rows(tmp_path / "pp" / "conditions.csv")
    assert {"speed_deg_s", "direction_deg", "n_frames", "frame_rate_hz"} <= set(names)
    assert len(rows) == 4
    fake = _FakePsychoPy(monkeypatch, rows)
    runpy.run_path(str(tmp_path / "pp" / "present.py"), run_name="__main__")
    assert len(fake.stims) == 4 * 4  # one ImageStim per frame
    movie = np.load(root / m["stimuli"][0]["file"])
    for t in range(4):  # ImageStim draws an array's row 0 at the bottom: frames go in flipped
        kw = fake.stims[t]
        np.testing.assert_array_equal(kw["image"], np.flipud(movie[t]))
        assert kw["size"] == (40, 32) and kw["interpolate"] is False and kw["units"] == "pix"


def test_float_only_set_is_quantized_and_says_so(tmp_path, capsys):
    root, m = _run(tmp_path, STILLS.replace("[npy, png8], dither: noisy-bit", "[npy]"), "floats")
    assert main(["export", str(root), "--to", "psychopy", str(tmp_path / "pp")]) == 0
    assert "quantized from the .npy (round to nearest, no dither)" in capsys.readouterr().out
    _, rows = _rows(tmp_path / "pp" / "conditions.csv")
    for r, e in zip(rows, m["stimuli"], strict=True):
        want, _ = quantize(np.load(root / e["file"]), 8)
        np.testing.assert_array_equal(read_image(tmp_path / "pp" / r["stim_file"]), want)
    assert "quantized" in json.loads((tmp_path / "pp" / "export.json").read_text())["method"]


@pytest.mark.parametrize("which", ["stills", "movies"])
def test_bids_catalog_and_byte_identical_reexport(which, stills, movies, tmp_path, capsys):
    root, m = stills if which == "stills" else movies
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["export", str(root), "--to", "bids", str(a)]) == 0
    assert main(["export", str(root), "--to", "bids", str(b)]) == 0
    assert _tree(a) == _tree(b)  # deterministic, byte for byte
    names, rows = _rows(a / "stimuli" / "stimuli.tsv", "\t")
    n_files = sum(len(e["files"]) for e in m["stimuli"])
    assert len(rows) == n_files
    assert len({r["stim_id"] for r in rows}) == len(rows)
    sidecar = json.loads((a / "stimuli" / "stimuli.json").read_text())
    for n in names:
        assert sidecar[n]["Description"]
    for n, unit in (("size_px_w", "pixel"), ("size_deg_h", "degree"), ("ppd", "pixel/degree")):
        assert sidecar[n]["Units"] == unit
    for n in names:
        if re.search(r"_(px|deg|cpd|hz|s)(_|$)", n):
            assert "Units" in sidecar[n], n
    gen = sidecar["GeneratedBy"][0]
    assert gen["Name"] == "stimgen" and gen["Version"]
    assert gen["ExperimentSha256"] == m["experiment_sha256"] and gen["SeedEntropy"] == m["seed_entropy"]
    by_sha = {f["sha256"]: f for e in m["stimuli"] for f in e["files"]}
    kind = "video" if which == "movies" else "image"
    for r in rows:
        f = a / "stimuli" / r["stim_file"]
        assert re.fullmatch(rf"stim-[A-Za-z0-9]+_{kind}\.(png|npy|gif)", r["stim_file"])
        assert hashlib.sha256(f.read_bytes()).hexdigest() == r["sha256"] and r["sha256"] in by_sha
    # --force replaces an earlier export, never a folder with other files
    assert main(["export", str(root), "--to", "bids", str(a)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["export", str(root), "--to", "bids", str(a), "--force"]) == 0
    assert _tree(a) == _tree(b)
    (a / "notes.txt").write_text("mine")
    assert main(["export", str(root), "--to", "bids", str(a), "--force"]) == 2
    assert "notes.txt is not listed" in capsys.readouterr().err
    assert (a / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("to", ["psychopy", "bids"])
def test_tampered_file_refuses_export_naming_it(to, tmp_path, capsys):
    root, m = _run(tmp_path, STILLS, "t")
    victim = next(f["file"] for f in m["stimuli"][4]["files"] if f["format"] == "png8")
    data = bytearray((root / victim).read_bytes())
    data[-20] ^= 1
    (root / victim).write_bytes(bytes(data))
    assert main(["export", str(root), "--to", to, str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert victim in err and "sha256 differs from the manifest" in err
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_bad_requests(stills, tmp_path, capsys):
    root, _ = stills
    with pytest.raises(ValueError, match="to must be one of 'psychopy', 'bids'; got 'eprime'"):
        export_set(root, tmp_path / "x", to="eprime")
    assert main(["export", str(root), "--to", "psychopy", str(root / "inside")]) == 2
    assert "inside the stimulus set" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:  # argparse: a usage error, one line
        main(["export", str(root), "--to", "psychopy"])
    assert exc.value.code == 2
    assert "the following arguments are required: out" in capsys.readouterr().err


def test_json_output_is_one_object(stills, tmp_path, capsys):
    root, m = stills
    assert main(["export", str(root), "--to", "bids", str(tmp_path / "b"), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["n_stimuli"] == m["n_stimuli"] and res["to"] == "bids"
    assert res["n_files"] == len(json.loads((tmp_path / "b" / "export.json").read_text())["files"])
    assert main(["report", str(root), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"report": str(root / "report.html")}
