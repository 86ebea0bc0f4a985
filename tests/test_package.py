"""The package surface: lazy public API, fast import, CLI entry points."""

import subprocess
import sys

import pytest

import stimgen
from stimgen.cli import main


def test_every_public_name_resolves():
    for name in stimgen.__all__:
        assert getattr(stimgen, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        stimgen.nonexistent  # noqa: B018


def test_import_is_light():
    code = ("import sys, stimgen; "
            "print(sorted(m for m in ('matplotlib', 'scipy', 'yaml', 'PIL') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_version_and_help(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"stimgen {stimgen.__version__}"
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for cmd in ("run", "verify", "regenerate", "noise", "spectrum", "design", "geometry",
                "stats", "flow", "colorize"):
        assert f"    {cmd}" in out, cmd
    assert out.index("    run") < out.index("    design") < out.index("    colorize")


def test_python_dash_m():
    out = subprocess.run([sys.executable, "-m", "stimgen", "geometry", "--ppd", "36.8", "--json"],
                         capture_output=True, text=True)
    assert out.returncode == 0 and '"nyquist_cpd": 18.4' in out.stdout
    bad = subprocess.run([sys.executable, "-m", "stimgen", "geometry", "--ppd", "0"],
                         capture_output=True, text=True)
    assert bad.returncode == 2
    assert bad.stderr == "stimgen geometry: error: ppd must be finite and > 0, got 0.0\n"


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


def test_unexpected_errors_are_one_line(monkeypatch, capsys):
    import stimgen.geometry

    def broken(*args, **kwargs):
        raise RuntimeError("simulated bug\nwith two lines")

    monkeypatch.setattr(stimgen.geometry.ViewingGeometry, "from_ppd", broken)
    assert main(["geometry", "--ppd", "30"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "internal error: RuntimeError: simulated bug with two lines" in err
    monkeypatch.setenv("STIMGEN_DEBUG", "1")
    with pytest.raises(RuntimeError, match="simulated bug"):
        main(["geometry", "--ppd", "30"])


def test_usage_errors_are_one_line(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["design", "dog", "--band-cpd", "1", "5", "--ppd", "30", "--level", "foo"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.count("\n") == 1
    assert "invalid choice: 'foo'" in err and "(see stimgen design dog --help)" in err
