"""Hostile inputs for ``geometry``, ``design``, ``stats``, ``colorize`` and the analysis
functions (``datastats``, ``levin``, ``standardize``, ``contrast``).

Each row of the tables is one case tried as a new user or as an adversary would: bad
numbers (nan, inf, 0, negative, 1e308, 5e-324, huge integers), text, wrong dtypes and
files. Every CLI case must end in exactly one of: exit 0 with its report, or exit 2 with
one line on stderr naming the user's flag, file or parameter, nothing on stdout, and never
"internal error", a traceback, a raw Python warning or a hidden temporary name.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import warnings

import numpy as np
import pytest
from PIL import Image

from stimgen import contrast, datastats, levin
from stimgen import standardize as standardize_function
from stimgen.cli import main

# -- hostile files ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def d(tmp_path_factory):
    """A folder of hostile inputs (returned as a string for the argv templates)."""
    root = tmp_path_factory.mktemp("hostile")
    rng = np.random.default_rng(16)

    def sub(name):
        p = root / name
        p.mkdir()
        return p

    stim = sub("float_stimuli")  # float .npy stimuli of RMS contrast 0.2
    for i in range(3):
        x = rng.standard_normal((32, 32))
        np.save(stim / f"s{i}.npy", 0.2 * (x - x.mean()) / x.std())
    mixed = sub("mixed")
    np.save(mixed / "a.npy", 0.2 * rng.standard_normal((8, 8)).astype(np.float32))
    Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(mixed / "b.png")
    np.save(sub("huge") / "a.npy", rng.random((8, 8)) * 1e300)
    np.save(sub("complex") / "a.npy", rng.standard_normal((8, 8)) + 1j)
    np.save(sub("int64") / "a.npy", np.full((8, 8), 2**62, dtype=np.int64))
    Image.fromarray(rng.integers(0, 65536, (8, 8), dtype=np.uint16)).save(sub("gray16") / "g.png")
    ok = sub("rgb8")
    Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(ok / "a.png")
    bad = rng.random((8, 8))
    bad[0, 0] = np.nan
    np.save(sub("nan") / "a.npy", bad)
    sub("empty")
    zero = sub("zero_pixels")  # an empty array beside a real image: counted as a skip
    np.save(zero / "a.npy", np.zeros((0, 8)))
    np.save(zero / "b.npy", np.ones((4, 4)))
    # colorize inputs
    cz = sub("colorize")
    g = rng.random((16, 16))
    m = np.repeat(g[..., None], 3, axis=-1)
    m[2, 2], m[10, 10] = (1, 0, 0), (0, 0, 1)
    np.save(cz / "gray.npy", g)
    np.save(cz / "marked.npy", m)
    np.save(cz / "gray255.npy", g * 255)
    np.save(cz / "marked255.npy", m * 255)
    np.save(cz / "gray_negative.npy", g - 0.5)
    np.save(cz / "gray_huge.npy", g * 1e300)
    np.save(cz / "gray_nan.npy", np.where(g > 0.5, np.nan, g))
    np.save(cz / "gray_complex.npy", g + 0j)
    return str(root)


def run_cli(argv):
    """Run ``stimgen`` in this process; returns (status, stdout, stderr)."""
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main(argv)
        except SystemExit as exc:  # argparse usage errors
            status = exc.code
    return status, out.getvalue(), err.getvalue()


# -- the CLI table: (argv, expected status, expected message fragment) ---------------------
# "fixed" marks cases that failed before (traceback or internal error, wrong number,
# half a report, raw warning, scipy message, hidden path); the others held and stay held.
PPD = ["--ppd", "30"]
CLI_CASES = [
    # geometry
    (["geometry", "--ppd", "nan"], 2, r"ppd must be finite and > 0, got nan"),
    (["geometry", "--ppd", "-5"], 2, r"ppd must be finite and > 0"),
    (["geometry", "--ppd", "abc"], 2, r"argument --ppd: invalid float value: 'abc'"),
    (["geometry", "--ppd", "5e-324"], 2, r"--ppd: the viewing geometry gives ppd 4\.9.*e-324"),  # fixed
    (["geometry", "--ppd", "1e-308"], 2, r"not a usable finite number"),  # fixed
    (["geometry", "--ppd", "1e308"], 0, r"ppd \(central degree\): 1e\+308 px/deg"),  # fixed
    (["geometry", "--distance-cm", "1e308", "--screen-width-cm", "50", "--screen-width-px",
      "1920"], 2, r"--distance-cm, --screen-width-cm and --screen-width-px: .*float64"),  # fixed
    (["geometry", "--distance-cm", "57", "--screen-width-cm", "1e-308", "--screen-width-px",
      "1920"], 2, r"gives ppd inf px/deg"),  # fixed
    (["geometry", "--distance-cm", "57", "--screen-width-cm", "5e-324", "--screen-width-px",
      "1920"], 2, r"cannot be computed in float64"),  # fixed
    (["geometry", "--distance-cm", "57", "--screen-width-cm", "50", "--screen-width-px", "0"],
     2, r"screen_width_px must be an integer >= 1, got 0"),
    (["geometry", "--distance-cm", "57", "--screen-width-cm", "50", "--screen-width-px", "1.5"],
     2, r"invalid int value: '1\.5'"),
    (["geometry", "--distance-cm", "57", "--screen-width-cm", "50"], 2,
     r"needs all of --distance-cm, --screen-width-cm and --screen-width-px"),
    # design: degenerate and extreme numbers
    (["design", "dog", "--sigmas-px", "2", "1", *PPD], 2, r"must be larger than sigma_center_px"),
    (["design", "dog", "--sigmas-px", "nan", "2", *PPD], 2, r"sigma_center_px must be finite"),
    (["design", "dog", "--sigmas-px", "1", "2", *PPD, "--weight", "nan"], 2, r"weight must be finite"),
    (["design", "dog", "--sigmas-deg", "1e300", "1e301", *PPD], 0, r"peak:\s+4\.854e-302 cpd"),  # fixed
    (["design", "dog", "--sigmas-px", "1", "1e308", *PPD], 2,
     r"--sigmas-px 1 1e\+308: the dog design overflows float64"),  # fixed
    (["design", "dog", "--sigmas-px", "1e-308", "1", *PPD], 2, r"overflows float64"),  # fixed
    (["design", "dog", "--sigmas-px", "1", "1e30", *PPD], 2, r"beyond float64 accuracy"),  # fixed
    (["design", "dog", "--sigmas-deg", "1e-300", "1e-299", *PPD], 0,
     r"band:\s+1\.817e\+298 - 1\.949e\+299 cpd"),  # fixed
    (["design", "dog", "--band-cpd", "1e-300", "1", *PPD], 2,
     r"--band-cpd 1e-300 1: 1e-300 cpd is 3\.33e-302 cycles/pixel .*at least 3e-149 cpd"),  # fixed
    (["design", "dog", "--band-cpd", "1e-50", "1", *PPD], 2,
     r"band_cpd \[1e-50, 1\.0\] is 166\.1 octaves wide: a balanced DoG design this wide is beyond float64 accuracy"),  # fixed
    (["design", "dog", "--band-cpd", "1e-15", "1", *PPD], 2, r"not the requested band"),  # fixed
    (["design", "dog", "--band-cpd", "1e-20", "1", *PPD], 2, r"beyond float64 accuracy"),  # fixed
    (["design", "dog", "--peak-cpd", "2", "--octaves", "1e308", *PPD], 2,
     r"octaves 1e\+308: a balanced DoG design this wide is beyond float64 accuracy"),  # fixed
    (["design", "log_gaussian", "--peak-cpd", "2", "--octaves", "1e308", *PPD], 2, r"overflows"),  # fixed
    (["design", "butterworth", "--peak-cpd", "2", "--octaves", "1e308", *PPD], 2, r"overflows"),  # fixed
    (["design", "butterworth", "--band-cpd", "1", "5", *PPD, "--order", "1000000"], 2,
     r"--order must be an integer between 1 and 100, got 1000000"),  # fixed
    (["design", "butterworth", "--band-cpd", "1", "5", *PPD, "--order", "99999999999999999999"],
     2, r"--order must be an integer between 1 and 100"),  # fixed
    (["design", "butterworth", "--band-cpd", "1", "5", *PPD, "--order", "0"], 2, r"--order"),
    (["design", "dog", "--sigmas-px", "1", "2", "--distance-cm", "1e308", "--screen-width-cm",
      "50", "--screen-width-px", "1920"], 2, r"cannot be computed in float64"),  # fixed
    (["design", "dog", "--sigmas-px", "1", "2", *PPD, "--plot", "{d}/figure.txt"], 2,
     r"--plot must name a figure file"),  # fixed
    (["design", "dog", "--sigmas-px", "1", "2", *PPD, "--plot", "{d}/no/such/dir/f.png"], 2,
     r"--plot .*f\.png: the folder .* does not exist"),  # fixed
    (["design", "dog", "--band-cpd", "1", "16", *PPD], 2, r"exceeds Nyquist \(15 cpd"),
    (["design", "dog", "--band-cpd", "1", "inf", *PPD], 2, r"band_cpd must be \[low, high\]"),
    (["design", "dog", "--peak-cpd", "2", *PPD], 2, r"--peak-cpd and --octaves must be given together"),
    (["design", "log_gaussian", "--peak-cpd", "1e-300", "--octaves", "1", *PPD], 2,
     r"--peak-cpd 1e-300 --octaves 1: 1e-300 cpd is 3\.33e-302 cycles/pixel"),  # fixed
    (["design", "log_gaussian", "--band-cpd", "1e-310", "1", *PPD], 2, r"below the float64 range"),  # fixed
    (["design"], 2, r"choose a family"),
    (["design", "dog", "--sigmas-px", "1", "2", *PPD, "--weight", "1e308"], 0, r"surround weight: 1e\+308"),
    # stats
    (["stats", "{d}/mixed", "--no-progress"], 2,
     (r"mixes float arrays \(float32, e\.g\. .*a\.npy\) and integer images \(uint8, e\.g\. "
     r".*b\.png\).*give --scale S")),  # fixed
    (["stats", "{d}/huge", "--no-progress"], 2, r"huge/a\.npy: values up to 9\.\d+e\+299 are too large"),  # fixed
    (["stats", "{d}/int64", "--no-progress"], 2, r"int64, e\.g\. .*a\.npy\) need an explicit scale"),  # fixed
    (["stats", "{d}/gray16", "--no-progress"], 2, r"uint16.* need an explicit scale \(e\.g\. --scale 1/65535"),  # fixed
    (["stats", "{d}/rgb8", "--no-progress", "--scale", "1e308"], 2,
     r"--scale 1e\+308 makes the statistics overflow"),  # fixed
    (["stats", "{d}/rgb8", "--no-progress", "--scale", "1e-320"], 2, r"is too small: the scaled variance underflows"),  # fixed
    (["stats", "{d}/rgb8", "--no-progress", "--jobs", "99999999999999"], 2,
     r"--jobs must be an integer between 1 and \d+"),  # fixed
    (["stats", "{d}/complex", "--no-progress"], 2, r"complex"),
    (["stats", "{d}/nan", "--no-progress"], 2, r"nan/a\.npy: batch contains NaN"),
    (["stats", "{d}/empty", "--no-progress"], 2, r"no image files found"),
    (["stats", "{d}/zero_pixels", "--no-progress"], 2, r"zero_pixels/a\.npy: empty image \(shape \(0, 8\)"),  # fixed
    (["stats", "{d}/zero_pixels", "--no-progress", "--skip-errors"], 0, r"images: 1 .* skipped: 1"),  # fixed
    (["stats", "{d}/no_such_folder", "--no-progress"], 2, r"no such file or directory"),
    (["stats", "{d}/rgb8", "--no-progress", "--scale", "0"], 2, r"scale must be finite and > 0"),
    (["stats", "{d}/rgb8", "--no-progress", "--scale", "1/0"], 2, r"expected a number or a fraction"),
    (["stats", "{d}/rgb8", "--no-progress", "--jobs", "0"], 2, r"jobs must be an integer >= 1"),
    (["stats", "{d}/float_stimuli", "--no-progress"], 0, r"scale: +1 \(float arrays taken as they are\)"),  # fixed
    (["stats", "{d}/rgb8", "--no-progress"], 0, r"scale: +1/255 \(default for 8-bit images\)"),  # fixed
    (["stats", "{d}/mixed", "--no-progress", "--scale", "1"], 0, r"scale: +1 \(given\)"),
    # colorize
    (["colorize", "{d}/colorize/gray255.npy", "{d}/colorize/marked255.npy", "--out", "{d}/c1.png"],
     2, r"gray255\.npy: float values must lie in \[0, 1\], got [\d.]+ \.\. [\d.]+ \(8-bit levels"),  # fixed
    (["colorize", "{d}/colorize/gray_negative.npy", "{d}/colorize/marked.npy", "--out",
      "{d}/c2.png"], 2, r"gray_negative\.npy: float values must lie in \[0, 1\], got -0\.4"),  # fixed
    (["colorize", "{d}/colorize/gray_huge.npy", "{d}/colorize/marked.npy", "--out", "{d}/c3.png"],
     2, r"gray_huge\.npy: float values must lie in \[0, 1\]"),  # fixed
    (["colorize", "{d}/colorize/gray_nan.npy", "{d}/colorize/marked.npy", "--out", "{d}/c4.png"],
     2, r"NaN"),
    (["colorize", "{d}/colorize/gray_complex.npy", "{d}/colorize/marked.npy", "--out",
      "{d}/c5.png"], 2, r"gray_complex\.npy: unsupported dtype complex128"),
    (["colorize", "{d}/colorize/gray.npy", "{d}/colorize/marked.npy", "--out", "{d}/c6.png",
      "--threshold", "nan"], 2, r"--threshold must be finite and >= 0, got nan"),
    (["colorize", "{d}/colorize/gray.npy", "{d}/colorize/marked.npy", "--out", "{d}/c7.png",
      "--threshold", "1e308"], 2, r"mask has no scribbled pixels"),
    (["colorize", "{d}/colorize/gray.npy", "{d}/colorize/marked.npy", "--out", "{d}/c8.png"],
     0, r"wrote .*c8\.png \(16 x 16 px, 2 scribbled pixels\)"),
]


@pytest.mark.parametrize(
    "argv, status, fragment", CLI_CASES, ids=[" ".join(c[0])[:70] for c in CLI_CASES]
)
def test_cli_hostile_input(d, argv, status, fragment):
    args = [a.format(d=d) for a in argv]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing may leak as a Python warning
        got, out, err = run_cli(args)
    assert "internal error" not in err and "Traceback" not in err
    assert got == status, (got, out, err)
    if status == 2:
        assert out == ""  # validation happens before anything is printed
        assert len(err.strip().splitlines()) == 1, err
        assert err.startswith("stimgen")
        assert "/." not in err  # no hidden temporary name
        text = err
    else:
        text = out
    assert re.search(fragment, text), text


# -- CLI cases that need more than a status and a fragment ---------------------------------
def test_stats_takes_float_stimuli_as_they_are(d):
    """16.12: float .npy stimuli of RMS contrast 0.2 report std 0.2, not 0.2 / 255."""
    status, out, err = run_cli(["stats", f"{d}/float_stimuli", "--no-progress", "--json"])
    assert status == 0 and err == ""
    rec = json.loads(out)
    assert rec["std"][0] == pytest.approx(0.2, rel=1e-12)
    assert rec["mean"][0] == pytest.approx(0.0, abs=1e-15)
    assert rec["scale"] == 1.0 and rec["scale_source"] == "float arrays taken as they are"
    assert rec["skipped"] == 0 and rec["skipped_files"] == []


def test_stats_counts_and_reports_an_unreadable_folder(tmp_path, monkeypatch):
    """16.12: an unreadable subfolder is an error, or with --skip-errors a counted skip
    listed with its reason (JSON and text); never silently left out."""
    rng = np.random.default_rng(1)
    top = tmp_path / "data"
    (top / "locked").mkdir(parents=True)
    for name in ("a.png", "locked/b.png"):
        Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(top / name)
    real = os.scandir

    def scandir(path="."):  # as an unreadable folder behaves, also when run as root
        if os.fspath(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    status, out, err = run_cli(["stats", str(top), "--no-progress"])
    assert status == 2 and out == ""
    assert "locked: folder cannot be listed (Permission denied)" in err and "--skip-errors" in err
    status, out, err = run_cli(["stats", str(top), "--no-progress", "--json", "--skip-errors"])
    assert status == 0
    rec = json.loads(out)
    assert rec["n_images"] == 1 and rec["skipped"] == 1
    assert rec["skipped_files"][0][0].endswith("locked")
    assert "folder cannot be listed" in rec["skipped_files"][0][1]
    assert err.count("stimgen stats: skipped") == 1 and "locked" in err
    status, out, err = run_cli(["stats", str(top), "--no-progress", "--skip-errors"])
    assert status == 0 and "skipped: 1" in out and "folder cannot be listed" in err


def test_stats_counts_a_folder_reached_twice_through_links(tmp_path):
    rng = np.random.default_rng(2)
    top = tmp_path / "data"
    top.mkdir()
    Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(top / "a.png")
    os.symlink(top, top / "loop")  # a link loop: each file counted once, the loop reported
    s = None
    with pytest.warns(RuntimeWarning, match=r"skipped 1 file.*reached a second time"):
        s = datastats.dataset_stats(top)
    assert s.n_images == 1 and s.skipped == 1 and s.skipped_files[0][0].endswith("loop")


def test_design_prints_nothing_before_a_late_failure(capsys):
    """16.15: the old code printed half a report, then 'internal error: ZeroDivisionError'."""
    assert main(["design", "dog", "--sigmas-px", "1", "1e30", "--ppd", "30"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1 and "internal error" not in err


def test_design_library_warning_is_one_line_and_json_stays_clean(capsys):
    status = main(["design", "dog", "--sigmas-px", "1", "2", "--ppd", "30", "--weight", "0.5",
                   "--json"])
    out, err = capsys.readouterr()
    assert status == 0 and json.loads(out)["weight"] == 0.5
    assert err.strip().startswith("stimgen design: warning: not zero-mean")
    assert len(err.strip().splitlines()) == 1


def test_python_warnings_print_as_one_clean_line(d):
    """16.18: a Python warning inside a command prints as one 'stimgen CMD: warning:' line,
    without the file name and source line (the old output showed both)."""
    cz = f"{d}/colorize"
    marked = np.load(f"{cz}/marked.npy")
    np.save(f"{d}/marked_everywhere.npy", np.clip(marked + 0.1, 0, 1))
    proc = subprocess.run(
        [sys.executable, "-m", "stimgen", "colorize", f"{cz}/gray.npy",
         f"{d}/marked_everywhere.npy", "--out", f"{d}/everywhere.png"],
        capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONWARNINGS": ""},
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("stimgen colorize: warning: 100% of the pixels differ")
    assert ".py" not in proc.stderr and "warnings.warn" not in proc.stderr


def test_numpy_warning_in_a_handler_is_one_line(monkeypatch, capsys):
    """Any stray RuntimeWarning (here injected into the geometry computation) is shown as one
    line naming the command, even when the caller turned warnings into errors."""
    from stimgen import geometry

    real = geometry.ViewingGeometry.from_ppd

    def noisy(ppd):
        np.float64(1e308) * np.float64(10)  # overflow encountered in scalar multiply
        return real(ppd)

    monkeypatch.setattr(geometry.ViewingGeometry, "from_ppd", staticmethod(noisy))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert main(["geometry", "--ppd", "30"]) == 0
    out, err = capsys.readouterr()
    assert err == "stimgen geometry: warning: overflow encountered in scalar multiply\n"
    assert "Nyquist" in out


@pytest.mark.parametrize("argv", [
    ["geometry", "--distance-cm", "1e308", "--screen-width-cm", "50", "--screen-width-px", "1920"],
    ["design", "dog", "--band-cpd", "1e-50", "1", "--ppd", "30"],
    ["stats", "{d}/mixed", "--no-progress"],
    ["colorize", "{d}/colorize/gray255.npy", "{d}/colorize/marked255.npy", "--out", "{d}/s.png"],
])
def test_subprocess_one_line_exit_2(d, argv):
    proc = subprocess.run([sys.executable, "-m", "stimgen", *(a.format(d=d) for a in argv)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == "" and len(proc.stderr.strip().splitlines()) == 1
    assert "internal error" not in proc.stderr and "Traceback" not in proc.stderr


def test_errors_never_name_hidden_temporary_files(tmp_path):
    """16.18: a write into a missing folder named '.NAME.xxxx.tmp' before; now the folder."""
    from stimgen.cli import _error_text

    exc = FileNotFoundError(2, "No such file or directory", str(tmp_path / "out" / ".x.png.ab12.tmp"))
    msg = _error_text(exc)
    assert msg == f"cannot write in the folder {tmp_path / 'out'}: No such file or directory"
    plain = FileNotFoundError(2, "No such file or directory", str(tmp_path / "x.png"))
    assert "x.png" in _error_text(plain)


def test_out_of_memory_is_not_called_singular(monkeypatch):
    """16.18: SuperLU reports a failed allocation as RuntimeError('Malloc fails ...') or a
    MemoryError; both are MemoryError naming the problem size, never "singular"."""
    import scipy.sparse.linalg

    g = np.random.default_rng(3).random((12, 10))
    marked = np.repeat(g[..., None], 3, axis=-1)
    marked[5, 5] = (1, 0, 0)
    for failure in (RuntimeError("Malloc fails for local work[]."), MemoryError()):
        def splu(*args, exc=failure, **kwargs):
            raise exc

        monkeypatch.setattr(scipy.sparse.linalg, "splu", splu)
        with pytest.raises(MemoryError, match=r"not enough memory to factorize the colorization "
                                              r"system of 12 x 10 px \(119 unknown pixels\)"):
            levin.colorize(g, marked)

    def singular(*args, **kwargs):
        raise RuntimeError("Factor is exactly singular")

    monkeypatch.setattr(scipy.sparse.linalg, "splu", singular)
    with pytest.raises(ValueError, match=r"singular .* for form='correlation', window=3, eps=1e-06"):
        levin.colorize(g, marked, form="correlation")


def test_cli_reports_memory_errors_in_one_line(monkeypatch, d, capsys):
    def boom(*args, **kwargs):
        raise MemoryError("not enough memory to factorize the colorization system of 16 x 16 px")

    monkeypatch.setattr(levin, "colorize", boom)
    cz = f"{d}/colorize"
    assert main(["colorize", f"{cz}/gray.npy", f"{cz}/marked.npy", "--out", f"{d}/m.png"]) == 2
    out, err = capsys.readouterr()
    assert err == ("stimgen colorize: error: not enough memory to factorize the colorization "
                   "system of 16 x 16 px\n") and out == ""


# -- library table: (call, expected exception or None, message fragment) ---------------------
def _rng():
    return np.random.default_rng(7)


def _gray_and_marks():
    g = _rng().random((8, 8))
    m = np.repeat(g[..., None], 3, axis=-1)
    m[1, 1] = (1, 0, 0)
    return g, m


LIB_CASES = [
    # datastats
    ("dataset_stats float arrays as they are", lambda: datastats.dataset_stats(
        [0.2 * np.array([[1.0, -1.0], [-1.0, 1.0]])]).std[0], None, 0.2),  # fixed (was /255)
    ("dataset_stats mixed float and uint8", lambda: datastats.dataset_stats(
        [np.zeros((2, 2)), np.zeros((2, 2), np.uint8)]), ValueError,
     r"mixes float arrays \(float64, e\.g\. item 0 of the source\) and integer images \(uint8, e\.g\. item 1"),  # fixed
    ("dataset_stats uint16 without scale", lambda: datastats.dataset_stats(
        [np.zeros((2, 2), np.uint16)]), ValueError, r"need an explicit scale"),  # fixed
    ("dataset_stats 1e300", lambda: datastats.dataset_stats([_rng().random((8, 8)) * 1e300]),
     ValueError, r"item 0 of the source: values up to .* are too large"),  # fixed
    ("dataset_stats +-1e200", lambda: datastats.dataset_stats(
        [np.full((4, 4), 1e200), np.full((4, 4), -1e200)]), ValueError, r"too large"),  # fixed
    ("dataset_stats complex", lambda: datastats.dataset_stats([np.ones((2, 2)) + 1j]),
     ValueError, r"real numeric array, got dtype complex128"),
    ("dataset_stats text items", lambda: datastats.dataset_stats([np.zeros((2, 2)), "x"]),
     ValueError, r"item 1 of the source: .*dtype <U1"),
    ("dataset_stats scale as text", lambda: datastats.dataset_stats([np.zeros((2, 2))], scale="1"),
     ValueError, r"scale must be a number, got '1'"),  # fixed (text read as 1.0)
    ("dataset_stats jobs True", lambda: datastats.dataset_stats("x", jobs=True), ValueError,
     r"jobs must be an integer >= 1, got True"),
    ("dataset_stats jobs huge", lambda: datastats.dataset_stats("x", jobs=10**14), ValueError,
     r"jobs must be an integer between 1 and"),  # fixed (OverflowError)
    ("dataset_stats source 5", lambda: datastats.dataset_stats(5), ValueError, r"got int"),
    ("RunningStats scale 1e300", lambda: datastats.RunningStats(scale=1e300).update(
        np.arange(16.0).reshape(4, 4) * 1e10), ValueError, r"values times scale=1e\+300 overflow"),  # fixed
    ("RunningStats scale True", lambda: datastats.RunningStats(scale=True), ValueError,
     r"scale must be a number, got True"),  # fixed (True read as 1.0)
    # levin
    ("levin_weights 1e300", lambda: levin.levin_weights(_rng().random((8, 8)) * 1e300), ValueError,
     r"luminance values must be at most 1e\+150 in magnitude .* got up to 9\.\d+e\+299"),  # fixed
    ("levin_weights eps 1e308", lambda: levin.levin_weights(_rng().random((8, 8)), eps=1e308),
     ValueError, r"eps must be in \(0, 1e\+300\]"),  # fixed (NaN weights)
    ("levin_weights window 99", lambda: levin.levin_weights(_rng().random((8, 8)), window=99),
     ValueError, r"window must be at most 17 px for an image of 8 x 8 px"),  # fixed
    ("levin_weights window '3'", lambda: levin.levin_weights(_rng().random((8, 8)), window="3"),
     ValueError, r"window must be an integer >= 3, got '3'"),  # fixed
    ("levin_weights complex", lambda: levin.levin_weights(np.ones((4, 4), complex)), ValueError,
     r"real numeric array, got dtype complex128"),
    ("levin_cost 1e301", lambda: levin.levin_cost(np.arange(16.0).reshape(4, 4) * 1e300,
                                                  _rng().random((4, 4))),
     ValueError, r"u values up to 1\.5e\+301 make the cost overflow"),  # fixed
    ("colorize gray 0..255 floats", lambda: levin.colorize(_gray_and_marks()[0] * 255,
                                                           _gray_and_marks()[1]),
     ValueError, r"gray must have values in \[0, 1\], got values in \[.*\]; 8-bit levels"),  # fixed
    ("colorize negative scribbles", lambda: levin.colorize(_gray_and_marks()[0],
                                                           _gray_and_marks()[1] - 0.5),
     ValueError, r"scribbles must have values in \[0, 1\], got values in \[-0\.5"),  # fixed
    ("colorize int64 gray", lambda: levin.colorize(np.zeros((4, 4), np.int64), np.zeros((4, 4, 3))),
     ValueError, r"gray must be a float array"),
    ("scribble_mask threshold text", lambda: levin.scribble_mask(*_gray_and_marks(), threshold="x"),
     ValueError, r"threshold must be a number"),
    # standardize
    ("standardize std 1e-300", lambda: standardize_function(
        _rng().random((2, 8, 8, 3)) * 1e-300).std(axis=(1, 2)).min(), None, 1.0),  # fixed (NaN)
    ("standardize std 1e-160", lambda: standardize_function(
        _rng().random((2, 8, 8, 3)) * 1e-160).std(axis=(1, 2)).max(), None, 1.0),  # fixed (1.0017)
    ("standardize std 1e-160 strided", lambda: standardize_function(
        _rng().random((2, 8, 8, 3)) * 1e-160, axis=(0, 2)).std(axis=(0, 2)).max(), None, 1.0),  # fixed
    ("standardize 1e160", lambda: standardize_function(
        _rng().random((2, 8, 8, 3)) * 1e160).std(axis=(1, 2)).max(), None, 1.0),  # fixed (raised)
    ("standardize 1e-320", lambda: standardize_function(_rng().random((2, 8, 8, 3)) * 1e-320),
     ValueError, r"too small to standardize in group \(0, 0\)"),  # fixed (NaN)
    ("standardize given std 1e-320", lambda: standardize_function(
        _rng().random((2, 4, 4, 3)), mean=[0, 0, 0], std=[1e-320] * 3),
     ValueError, r"std must be >= 5\.56e-309"),  # fixed (inf output)
    ("standardize near 1e308", lambda: standardize_function(np.full((2, 64, 64, 3), 1e307)
                                                          + np.arange(3) * 1e306),
     ValueError, r"too large to standardize"),  # fixed (said NaN or infinite)
    ("standardize complex", lambda: standardize_function(np.ones((2, 4, 4, 3), complex)),
     ValueError, r"real numeric array, got dtype complex128"),
    # contrast
    ("rms_contrast 1e300", lambda: contrast.rms_contrast(
        np.array([[1.0, -1.0], [-1.0, 1.0]]) * 1e300), None, 1e300),  # fixed (inf + warning)
    ("rms_contrast 1e-300", lambda: contrast.rms_contrast(
        np.array([[1.0, -1.0], [-1.0, 1.0]]) * 1e-300), None, 1e-300),  # fixed (0)
    ("set_rms_contrast 1e300", lambda: contrast.rms_contrast(contrast.set_rms_contrast(
        _rng().standard_normal((8, 8)) * 1e300, 0.2)), None, 0.2),  # fixed (zeros)
    ("set_rms_contrast float32 1e25", lambda: contrast.rms_contrast(contrast.set_rms_contrast(
        (_rng().standard_normal((8, 8)) * 1e25).astype(np.float32), 0.2)) * (1 + 1e-8), None,
     0.2),  # fixed (zeros); float32 output: 0.2 to float32 precision
    ("set_rms_contrast std 4e-321", lambda: contrast.set_rms_contrast(
        np.array([[0.0, 1e-320], [0.0, 0.0]]), 0.2), ValueError, r"std 4\.\d+e-321 is too small"),  # fixed
    ("set_rms_contrast target True", lambda: contrast.set_rms_contrast(np.eye(4), True),
     ValueError, r"rms_contrast must be a number, got True"),  # fixed (True read as 1)
    ("quantize 1e300", lambda: contrast.quantize(np.full((2, 2), 1e300), 8)[1], None, 1.0),  # fixed (warning)
    ("quantize bits 8.5", lambda: contrast.quantize(np.zeros((2, 2)), 8.5), ValueError,
     r"bits must be an integer >= 1, got 8\.5"),
    ("michelson complex", lambda: contrast.michelson_contrast(np.ones((4, 4), complex)),
     ValueError, r"real numeric array"),
]


@pytest.mark.parametrize("call, error, expected", [c[1:] for c in LIB_CASES],
                         ids=[c[0] for c in LIB_CASES])
def test_library_hostile_input(call, error, expected):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy overflow/invalid warnings may leak
        if error is None:
            got = call()
            assert math.isclose(float(got), expected, rel_tol=5e-8), got
        else:
            with pytest.raises(error, match=expected):
                call()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
@pytest.mark.parametrize("command", ["stats-folder", "stats-file", "colorize"])
def test_a_fifo_is_refused_not_read_forever(tmp_path, command):
    """Reading a FIFO blocks until someone writes into it: the old code hung."""
    rng = np.random.default_rng(5)
    (tmp_path / "c").mkdir()
    np.save(tmp_path / "c" / "gray.npy", rng.random((8, 8)))  # apart: not part of the stats
    data = tmp_path / "data"
    data.mkdir()
    Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(data / "a.png")
    fifo = data / "pipe.png"
    os.mkfifo(fifo)
    argv = {
        "stats-folder": ["stats", str(data), "--no-progress"],
        "stats-file": ["stats", str(fifo), "--no-progress"],
        "colorize": ["colorize", str(tmp_path / "c" / "gray.npy"), str(fifo), "--out",
                     str(tmp_path / "out.png")],
    }[command]
    proc = subprocess.run([sys.executable, "-m", "stimgen", *argv], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().endswith("cannot be read as an image)" if command == "colorize"
                                        else "(skip such files with --skip-errors)")
    assert "pipe.png: not a regular file" in proc.stderr
    if command == "stats-folder":
        proc = subprocess.run([sys.executable, "-m", "stimgen", *argv, "--skip-errors", "--json"],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0
        rec = json.loads(proc.stdout)
        assert rec["n_images"] == 1 and rec["skipped"] == 1 and "pipe.png" in rec["skipped_files"][0][0]


def test_recursion_error_is_one_line_exit_2(monkeypatch, capsys):
    import stimgen.cli as cli

    def deep(args):
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(cli, "geometry_from_args", deep)
    assert main(["geometry", "--ppd", "30"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == "stimgen geometry: error: the input is nested too deeply to process\n"


def test_stats_of_a_noise_stack_is_its_rms_contrast(tmp_path, capsys):
    """A stack written by ``stimgen noise --out FILE.npy`` is (N, H, W): N grayscale images
    (the old code read it as one image with W channels, and divided it by 255)."""
    out = tmp_path / "masks.npy"
    assert main(["noise", "--size-px", "32", "48", "--ppd", "30", "--band-cpd", "2", "8",
                 "--count", "5", "--seed", "1", "--rms-contrast", "0.2", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["stats", str(out), "--no-progress", "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["n_images"] == 5 and rec["n_channels"] == 1 and rec["n_pixels"] == 5 * 32 * 48
    assert rec["std"][0] == pytest.approx(0.2, rel=1e-6)  # zero-mean images of RMS 0.2
    assert rec["mean_of_stds"][0] == pytest.approx(0.2, rel=1e-6)
    assert abs(rec["mean"][0]) < 1e-7 and rec["scale_source"] == "float arrays taken as they are"


def test_stats_counts_a_file_named_twice_once(d, capsys):
    """`stimgen stats DIR DIR/a.png` counted a.png twice (a silently wrong mean)."""
    one = f"{d}/rgb8/a.png"
    assert main(["stats", f"{d}/rgb8", one, "--no-progress", "--json"]) == 0
    captured = capsys.readouterr()
    rec = json.loads(captured.out)
    assert rec["n_images"] == 1 and rec["skipped"] == 1
    assert "listed more than once" in rec["skipped_files"][0][1]
    assert "stimgen stats: skipped" in captured.err
    alone = datastats.dataset_stats(one)
    np.testing.assert_array_equal(rec["mean"], alone.mean)


def test_cli_messages_name_the_commands_flags(monkeypatch, d, capsys):
    """The library says form='gaussian'; the command says --form gaussian (no eps flag)."""
    import scipy.sparse.linalg

    def singular(*args, **kwargs):
        raise RuntimeError("Factor is exactly singular")

    monkeypatch.setattr(scipy.sparse.linalg, "splu", singular)
    cz = f"{d}/colorize"
    assert main(["colorize", f"{cz}/gray.npy", f"{cz}/marked.npy", "--out", f"{d}/sing.png",
                 "--form", "correlation"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "singular (it has no unique solution) for --form correlation" in err
    assert "use --form gaussian (always solvable with at least one scribble)" in err
    assert "form='" not in err and "larger eps" not in err and "Factor is" not in err
