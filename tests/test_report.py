"""report.html: built from the manifest alone, self-contained, failures first (no browser needed)."""

from __future__ import annotations

import base64
import io
import json
import re
import textwrap
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from stimgen import experiment as ex
from stimgen.cli import main
from stimgen.contrast import quantize
from stimgen.experiment.report import _entries, build_report_html, write_report
from stimgen.io import SET_OWN_FILES, check_replaceable, read_image

SMALL = """\
name: small
seed: 5
display: {ppd: 32}
stimulus: {size_px: [48, 64], rms_contrast: 0.2}
noise: {family: log_gaussian}
conditions:
  - {band_cpd: [2, 4]}
  - {band_cpd: [4, 8]}
repeats: 2
output: {formats: [npy, png8], examples_per_condition: 2}
"""


def _run(tmp_path: Path, text: str, name: str = "s") -> tuple[Path, dict]:
    y = tmp_path / f"{name}.yaml"
    y.write_text(textwrap.dedent(text))
    m = ex.run_experiment(y, tmp_path / name, jobs=1, progress=False)
    return tmp_path / name, m


class _Page(HTMLParser):
    """Tags of interest, with whether they sit inside a table."""

    def __init__(self) -> None:
        super().__init__()
        self.imgs: list[dict] = []
        self.refs: list[str] = []
        self.tags: list[str] = []
        self.depth_table = 0
        self.problems_in_table: bool | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        if tag == "table":
            self.depth_table += 1
        if a.get("id") == "problems":
            self.problems_in_table = self.depth_table > 0
        if tag == "img":
            self.imgs.append(a)
        for k in ("src", "href"):
            if k in a:
                self.refs.append(a[k])

    def handle_endtag(self, tag):
        if tag == "table":
            self.depth_table -= 1


def _parse(text: str) -> _Page:
    p = _Page()
    p.feed(text)
    return p


@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
    return _run(tmp_path_factory.mktemp("report"), SMALL)


def test_report_is_self_contained_and_shows_the_set(small_set):
    root, m = small_set
    path = write_report(root)
    assert path == root / "report.html"
    text = path.read_text()
    page = _parse(text)
    assert "script" not in page.tags and "link" not in page.tags
    assert not re.search(r"(https?:)?//", " ".join(page.refs))  # nothing from the network
    for ref in page.refs:  # every image is a file of the set or embedded
        assert ref.startswith("data:") or (root / ref).is_file(), ref
    # examples: the set's own PNGs at native size (48 x 64 px), two per condition
    examples = [a for a in page.imgs if a["src"].startswith("stimuli/")]
    assert [a["src"] for a in examples] == [e["files"][1]["file"] for e in m["stimuli"]]
    assert all((a["width"], a["height"]) == ("64", "48") for a in examples)
    assert "image-rendering: pixelated" in text and "@media print" in text
    # the spectrum figure of each condition and the contact sheet, as listed in the manifest
    figs = [a["src"] for a in page.imgs if a["src"].startswith("figures/")]
    assert sorted(figs) == sorted(m["figures"])
    # recorded numbers, not recomputed ones
    c0 = m["conditions"][0]
    lo, hi = c0["measured"]["band_cpd"]
    assert f"{lo:.3g}-{hi:.3g} cpd at half amplitude" in text
    assert m["experiment_sha256"] in text and (root / "experiment.yaml").read_text().splitlines()[0] in text
    assert "PASS: 4 of 4 stimuli pass" in text and "stimgen verify ." in text
    assert page.problems_in_table is False


def test_report_text_comes_from_the_manifest_only(small_set, tmp_path):
    """A manifest edited to say otherwise gives a page that says otherwise."""
    root, m = small_set
    edited = json.loads((root / "manifest.json").read_text())
    edited["conditions"][1]["pass"] = False
    edited["conditions"][1]["measured"]["band_cpd"] = [5.5, 6.125]
    edited["conditions"][1]["clipping"].update(n_over_limit=1, max_clipped_fraction=0.02)
    edited["warnings"] = ["a warning the run recorded"]
    edited["stimuli"][3]["temporal_aliasing"] = {"aliased_power_fraction": 0.25}
    text = build_report_html(root, edited)
    head = text[: text.index("<table")]  # the failures come before any table
    assert "FAIL: " in head
    assert "FAIL condition 1 (band_cpd=4-8): its pooled measurement fails the design check: measured 5.5-6.12 cpd" in head
    assert "CLIPPED condition 1 (band_cpd=4-8): 1/2 stimuli have more than 0.1 % of their pixels clipped" in head
    assert "WARNING a warning the run recorded" in head
    assert "WARNING 1 of 4 movies have more than 1 % of their power temporally aliased (up to 25 %" in head
    assert _parse(text).problems_in_table is False


def test_entries_inline_or_streamed_as_json_lines(small_set, tmp_path):
    root, m = small_set
    manifest = json.loads((root / "manifest.json").read_text())
    inline = list(_entries(root, manifest))
    assert inline == manifest["stimuli"]
    (tmp_path / "entries.jsonl").write_text("".join(json.dumps(e) + "\n" for e in inline))
    streamed = {k: v for k, v in manifest.items() if k != "stimuli"}
    streamed["entries_file"] = "entries.jsonl"
    assert list(_entries(tmp_path, streamed)) == inline
    with pytest.raises(ValueError, match="not a path inside the set"):
        list(_entries(tmp_path, {**streamed, "entries_file": "../x.jsonl"}))
    (tmp_path / "bad.jsonl").write_text('{"index": 0}\nnot json\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:2: not a JSON entry"):
        list(_entries(tmp_path, {**streamed, "entries_file": "bad.jsonl"}))


def test_float_only_set_embeds_pngs_of_the_npy(tmp_path):
    root, m = _run(tmp_path, SMALL.replace("[npy, png8]", "[npy]"), "floats")
    text = write_report(root).read_text()
    embedded = [a for a in _parse(text).imgs if a["src"].startswith("data:image/png;base64,")]
    assert len(embedded) == 4
    for a, e in zip(embedded, m["stimuli"], strict=True):
        png = base64.b64decode(a["src"].split(",", 1)[1])
        (tmp_path / "x.png").write_bytes(png)
        got = read_image(tmp_path / "x.png")
        want, _ = quantize(np.load(root / e["file"]), 8)
        assert got.shape == (48, 64) and (a["width"], a["height"]) == ("64", "48")
        np.testing.assert_array_equal(got, want)


def test_cli_report_rewrites_and_the_set_stays_stimgens(small_set, capsys):
    root, _ = small_set
    (root / "report.html").write_text("old")
    assert main(["report", str(root)]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {root / 'report.html'}"
    assert (root / "report.html").read_text().startswith("<!DOCTYPE html>")
    assert not [p for p in root.iterdir() if p.name.startswith(".")]  # no temporary left
    assert "report.html" in SET_OWN_FILES
    check_replaceable(root)  # a set with its report may still be replaced with --force
    assert main(["verify", str(root), "--no-spectra"]) == 0
    capsys.readouterr()
    assert main(["report", str(root / "nothing")]) == 2
    assert "no manifest.json" in capsys.readouterr().err


def test_motion_set_shows_gif_previews(tmp_path):
    motion = """\
    name: m
    seed: 1
    display: {ppd: 16}
    stimulus: {size_px: 32, rms_contrast: 0.2}
    noise: {family: log_gaussian, band_cpd: [1, 3]}
    motion: {frame_rate_hz: 60, n_frames: 4}
    factorial: {speed_deg_s: [1, 2]}
    output: {formats: [npy, gif], examples_per_condition: 1, figures: false}
    """
    root, m = _run(tmp_path, motion, "movies")
    text = write_report(root).read_text()
    gifs = [a for a in _parse(text).imgs if a["src"].endswith(".gif")]
    assert [a["src"] for a in gifs] == [e["files"][1]["file"] for e in m["stimuli"]]
    assert all((a["width"], a["height"]) == ("32", "32") for a in gifs)
    assert "deg/s at 0.0 deg (requested 1 deg/s at 0 deg)" in text
    from PIL import Image

    with Image.open(io.BytesIO((root / gifs[0]["src"]).read_bytes())) as im:
        assert im.n_frames == 4
