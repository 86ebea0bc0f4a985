"""Stimulus parts: the registry, every registered part end to end, and the toy part of docs/extending.md."""

from __future__ import annotations

import importlib
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from stimgen import experiment as ex
from stimgen.experiment import PARTS, BasePart, Measured, Part, register
from stimgen.experiment.parts import active_parts

ROOT = Path(__file__).resolve().parents[1]
EXTENDING = ROOT / "docs" / "extending.md"


def experiment_with(part_name: str | None = None, section=None, **top) -> dict:
    """A small experiment: the required parts' examples, plus ``part_name``'s section."""
    exp = {
        "name": "parts",
        "seed": 5,
        "display": {"ppd": 16},
        "stimulus": {"size_px": 48, "rms_contrast": 0.2},
        "conditions": [{"label": "a"}, {"label": "b"}],
        "repeats": 2,
        "output": {"formats": ["npy"], "figures": False},
    }
    for p in PARTS.values():
        if p.required:
            exp[p.name] = dict(p.example or {})
    if part_name is not None:
        exp[part_name] = dict(section if section is not None else PARTS[part_name].example or {})
    exp.update(top)
    return exp


def flip_and_rehash(root: Path, entry: dict) -> None:
    """Double (or halve) one value of a stimulus' .npy, off-centre in its first frame, by
    flipping the lowest exponent bit; write the file's new hash into the manifest.

    The hash check then passes, so only the parts' re-measurement can catch the change.
    """
    f = next(f for f in entry["files"] if f["format"] == "npy")
    path = root / f["file"]
    a = np.load(path)
    bits = a.view(np.uint32)
    bits.flat[5 * a.shape[-1] + 7] ^= np.uint32(1 << 23)
    np.save(path, a)
    from stimgen.io import sha256_file

    mpath = root / "manifest.json"
    m = json.loads(mpath.read_text())
    for g in m["stimuli"][entry["index"]]["files"]:
        if g["file"] == f["file"]:
            g["sha256"] = sha256_file(path)
    m["stimuli"][entry["index"]]["sha256"] = m["stimuli"][entry["index"]]["files"][0]["sha256"]
    mpath.write_text(json.dumps(m))


def run_verify_flip_regenerate(tmp_path: Path, exp: dict, jobs: int = 1) -> dict:
    """run -> verify OK -> a changed byte fails -> regenerate -> a changed value fails the re-check."""
    root = tmp_path / "set"
    m = ex.run_experiment(exp, root, jobs=jobs, progress=False)
    assert m["n_pass"] == m["n_stimuli"] == 4
    rep = ex.verify_set(root)
    assert rep.ok, rep.failures
    # a flipped bit: the hash fails
    target = root / m["stimuli"][1]["files"][0]["file"]
    data = bytearray(target.read_bytes())
    data[-3] ^= 1
    target.write_bytes(bytes(data))
    rep = ex.verify_set(root)
    assert not rep.ok and any("sha256 differs" in f for f in rep.failures)
    # regenerate: the manifest's bytes come back; the file on disk is the changed one
    res = ex.regenerate_stimulus(root, 1)
    assert res["match"] and not res["on_disk_match"]
    res = ex.regenerate_stimulus(root, 1, out=tmp_path / "again")
    target.write_bytes((tmp_path / "again" / m["stimuli"][1]["files"][0]["file"]).read_bytes())
    assert ex.verify_set(root).ok
    # a value changed and the hash forged: a part's re-measurement catches it
    flip_and_rehash(root, m["stimuli"][2])
    rep = ex.verify_set(root)
    assert not rep.ok and any("re-measured" in f or "off by" in f for f in rep.failures), rep.failures
    return m


# -- the registry -----------------------------------------------------------------------------
def test_built_in_parts_are_registered_in_drawing_order():
    assert list(PARTS)[:2] == ["noise", "motion"]
    for part in PARTS.values():
        assert isinstance(part, Part) and part.example is not None
    assert ex.top_keys().index("noise") < ex.top_keys().index("motion")


@pytest.mark.parametrize("name", list(PARTS))
def test_every_part_runs_verifies_and_regenerates(tmp_path, name):
    exp = experiment_with(name)
    m = run_verify_flip_regenerate(tmp_path, exp)
    resolved = ex.validate_experiment(exp)
    assert name in [p.name for p in active_parts(resolved)]
    assert all(e["pass"] for e in m["stimuli"])


def test_registry_refuses_clashes():
    class Clash(BasePart):
        name = "clash"
        defaults = {"band_cpd": None}
        condition_keys = ("band_cpd",)

    with pytest.raises(ValueError, match=r"condition key 'band_cpd' is already used"):
        register(Clash())

    class Frame(BasePart):
        name = "output"

    with pytest.raises(ValueError, match=r"part name must be a new section name, got 'output'"):
        register(Frame())
    with pytest.raises(ValueError, match=r"must implement the Part protocol"):
        register(object())  # type: ignore[arg-type]
    assert "clash" not in PARTS and "output" not in PARTS


def test_unknown_section_in_a_stored_experiment_is_not_silently_ignored(tmp_path):
    from stimgen.experiment.plan import Plan

    exp = ex.validate_experiment(experiment_with())
    exp["fixation"] = {"radius_deg": 0.2}
    with pytest.raises(ValueError, match=r"no stimulus part is registered for section\(s\) 'fixation'"):
        Plan(exp)


# -- the toy part of docs/extending.md ----------------------------------------------------------
def doc_blocks(lang: str) -> list[str]:
    text = EXTENDING.read_text(encoding="utf-8")
    return re.findall(rf"^```{lang}\n(.*?)^```", text, flags=re.S | re.M)


@pytest.fixture
def fixation(tmp_path, monkeypatch):
    """The doc's part, written to an importable module as it stands, registered; removed after."""
    (code,) = doc_blocks("python")
    assert len(code.splitlines()) < 60
    moddir = tmp_path / "mods"
    moddir.mkdir()
    (moddir / "toy_fixation.py").write_text(code)
    monkeypatch.syspath_prepend(str(moddir))
    try:
        yield importlib.import_module("toy_fixation")
    finally:
        PARTS.pop("fixation", None)
        sys.modules.pop("toy_fixation", None)


@pytest.mark.parametrize("jobs", [1, 2])
def test_toy_part_of_the_docs(tmp_path, fixation, jobs):
    (exp,) = [yaml.safe_load(b) for b in doc_blocks("yaml")]
    m = run_verify_flip_regenerate(tmp_path, exp, jobs=jobs)
    e = m["stimuli"][0]
    assert e["fixation"] == {"radius_deg": 0.0625, "contrast": 0.0, "n_px": 12}  # r = 2 px: 12 pixel centres
    assert e["fixation_error"] == 0.0
    a = np.load(tmp_path / "set" / e["file"])
    assert a[63, 63] == a[64, 64] == a[62, 64] == 0.0 and a[61, 61] != 0.0
    # the PNG of a stimulus shows the spot too, within one 8-bit step
    from stimgen.io import read_image

    png = read_image(tmp_path / "set" / e["files"][1]["file"]).astype(float) / 255 * 2 - 1
    assert abs(png[63, 63]) <= 1 / 255


def test_toy_part_on_movies_and_its_line_aware_errors(tmp_path, fixation):
    exp = experiment_with("fixation", {"radius_deg": 0.25}, motion=PARTS["motion"].example)
    exp["output"] = {"formats": ["npy"], "figures": False}
    m = ex.run_experiment(exp, tmp_path / "movies", jobs=1, progress=False)
    movie = np.load(tmp_path / "movies" / m["stimuli"][0]["file"])
    assert movie.ndim == 3 and np.all(movie[:, 24, 24] == -1.0)
    assert m["stimuli"][0]["fixation_error"] == 0.0 and m["stimuli"][0]["speed_check"] is not None
    assert ex.verify_set(tmp_path / "movies").ok
    y = tmp_path / "exp.yaml"
    y.write_text("name: x\ndisplay: {ppd: 16}\nstimulus: {size_px: 48}\nnoise: {family: white}\n"
                 "fixation: {radius_deg: 0}\n")  # fmt: skip
    with pytest.raises(ex.ExperimentError, match=r"exp.yaml:5: fixation.radius_deg: must be in \(0, inf\), got 0"):
        ex.load_experiment(y)


def test_the_docs_quote_the_toy_parts_error(tmp_path, fixation):
    doc = EXTENDING.read_text(encoding="utf-8")
    quoted = re.search(r"`exp\.yaml:6: (fixation\.radius_deg: [^`]+)`", doc)
    assert quoted is not None
    y = tmp_path / "exp.yaml"
    (block,) = doc_blocks("yaml")
    y.write_text(block.replace("radius_deg: 0.0625", "radius_deg: 0"))
    with pytest.raises(ex.ExperimentError) as info:
        ex.load_experiment(y)
    assert info.value.lines == [f"{y}:6: {quoted.group(1)}"]


def test_extending_md_lists_every_part_member():
    members = [m for m in vars(Part) if not m.startswith("_")]
    table = EXTENDING.read_text(encoding="utf-8").split("## A toy part")[0]
    missing = [m for m in members if f"`{m}`" not in table and f"`{m}(" not in table]
    assert missing == []


class _Peak(BasePart):
    """A test part: pools each stimulus' largest |contrast| and draws one figure per condition."""

    name = "peak"
    defaults = {"limit": 1.0}
    checks = "peak contrast"

    def check_value(self, ck, path, key, value):
        return ck.number(path, value, low=0, low_open=True)

    def measure(self, plan, c, data, entry):
        peak = float(np.max(np.abs(data)))
        return Measured({"peak": peak}, peak <= plan.exp["peak"]["limit"], extra=peak)

    def pool(self, plan, c):
        return []

    def pool_add(self, plan, c, pool, entry, extra):
        assert extra == entry["peak"]  # the extra of the same stimulus, in index order
        pool.append((entry["index"], extra))

    def summary(self, plan, c, pool):
        return Measured({"peak_max": max(p for _, p in pool), "peak_indices": [i for i, _ in pool]})

    def condition_figures(self, plan, c, pool, summary, root):
        rel = f"figures/peak_{c.folder}.txt"
        (root / rel).write_text(f"{summary['peak_max']!r} {summary['pass']}")
        return [rel]

    def figures(self, plan, pools, summaries, root):
        (root / "figures/peaks.txt").write_text(" ".join(str(len(p)) for _, p in sorted(pools.items())))
        return ["figures/peaks.txt"]

    def verify(self, plan, c, entry, data, exact):
        peak = float(np.max(np.abs(data)))
        if peak > plan.exp["peak"]["limit"]:
            return ex.FailsCheck(f"peak contrast {peak:.3g} is above the limit")
        return None


@pytest.fixture
def peak_part():
    part = register(_Peak())
    try:
        yield part
    finally:
        PARTS.pop("peak", None)


def test_a_part_pools_summarizes_draws_and_fails_checks_through_its_hooks(tmp_path, peak_part):
    """A new part's pool, summary, figures and FailsCheck reach the manifest and verify, no edit elsewhere."""
    exp = experiment_with("peak", {"limit": 1.0}, repeats=3)
    exp["output"] = {"formats": ["npy"], "figures": True, "examples_per_condition": 1}
    m = ex.run_experiment(exp, tmp_path / "s", jobs=1, progress=False)
    for c in m["conditions"]:
        own = m["stimuli"][c["first"] : c["first"] + c["repeats"]]
        assert c["peak_indices"] == [e["index"] for e in own]
        assert c["peak_max"] == max(e["peak"] for e in own) > 0
        assert (tmp_path / "s" / f"figures/peak_{c['folder']}.txt").read_text() == f"{c['peak_max']!r} True"
    assert (tmp_path / "s/figures/peaks.txt").read_text() == "3 3"  # each condition's pool, by index
    assert "figures/peaks.txt" in m["figures"] and m["status"] == "passed"
    # a tighter limit in the stored experiment: intact files, failed checks (not damage)
    mpath = tmp_path / "s/manifest.json"
    stored = json.loads(mpath.read_text())
    stored["experiment"]["peak"]["limit"] = 1e-3
    mpath.write_text(json.dumps(stored))
    rep = ex.verify_set(tmp_path / "s")
    assert rep.ok and rep.status == "failed_checks"
    assert len(rep.failed_checks) == 6 and all("peak contrast" in f for f in rep.failed_checks)
