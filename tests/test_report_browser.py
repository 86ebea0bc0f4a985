"""report.html opened in a real browser (headless Chromium): it loads, decodes and shows failures first.

Skipped when no Chromium (with its chromedriver) or no selenium is installed; ``.ci/run``
installs Debian's ``chromium`` and ``chromium-driver`` when they are missing.
"""

from __future__ import annotations

import io
import textwrap
from pathlib import Path

import numpy as np
import pytest

from stimgen._browser import find_chromium, open_page
from stimgen.cli import main

if find_chromium() is None:
    pytest.skip("no chromium and chromedriver on the PATH (Debian: apt-get install chromium chromium-driver)",
                allow_module_level=True)
pytest.importorskip("selenium", reason="selenium is not installed (pip install -e '.[test]')")

VIEWPORT = (1280, 900)

# the shipped masks_octave_bands experiment, smaller: 3 one-octave bands, 3 repeats, 4 x 4 deg
SHIPPED_LIKE = """\
name: masks_small
description: 1-octave noise masks, 1-2, 2-4 and 4-8 cpd, 4 x 4 deg, RMS contrast 0.2
seed: 20261124
display: {distance_cm: 57, screen_width_cm: 53.3, screen_width_px: 1920}
stimulus: {size_deg: [4, 4], rms_contrast: 0.2}
noise: {family: log_gaussian, level: half_amplitude}
conditions:
  - {band_cpd: [1, 2]}
  - {band_cpd: [2, 4]}
  - {band_cpd: [4, 8]}
repeats: 3
output: {formats: [npy, png8], dither: noisy-bit, examples_per_condition: 3}
"""


def _set(tmp_path: Path, text: str, name: str = "set") -> Path:
    y = tmp_path / f"{name}.yaml"
    y.write_text(textwrap.dedent(text))
    out = tmp_path / name
    # --allow-fail: a set that fails its checks is written and marked failed (exit 3 without it)
    assert main(["run", str(y), "--out", str(out), "--jobs", "1", "--no-progress", "--allow-fail"]) == 0
    assert main(["report", str(out)]) == 0
    return out


def _look(report: Path) -> dict:
    """What the browser sees: console, images, the summary's box, a screenshot."""
    driver = open_page(report, width_px=VIEWPORT[0], height_px=VIEWPORT[1])
    try:
        seen = driver.execute_script(
            "const s = document.getElementById('summary').getBoundingClientRect();"
            "const p = document.getElementById('problems');"
            "return {inner: [window.innerWidth, window.innerHeight],"
            " images: Array.from(document.images).map(i => [i.getAttribute('src').slice(0, 60), i.naturalWidth,"
            "   i.naturalHeight, i.width, i.height]),"
            " summary: [s.top, s.bottom, s.height], summaryText: document.getElementById('summary').innerText,"
            " problemsTop: p.getBoundingClientRect().top, problemsInTable: p.closest('table') !== null,"
            " failItems: Array.from(document.querySelectorAll('#problems li.fail')).map(li =>"
            "   [li.innerText, li.getBoundingClientRect().top, li.closest('table') !== null])};")
        seen["console"] = driver.get_log("browser")
        seen["png"] = driver.get_screenshot_as_png()
    finally:
        driver.quit()
    return seen


def _screenshot_array(png: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(png)) as im:
        return np.asarray(im.convert("L"), dtype=np.float64)


def test_shipped_like_report_in_chromium(tmp_path):
    out = _set(tmp_path, SHIPPED_LIKE)
    seen = _look(out / "report.html")
    assert seen["inner"] == list(VIEWPORT)
    assert [c for c in seen["console"] if c.get("level") == "SEVERE"] == []
    # every image decoded; examples at their native size (4 deg at 35.84 ppd = 143 px)
    assert len(seen["images"]) >= 3 * 3 + 3
    for src, nw, nh, _, _ in seen["images"]:
        assert nw > 0 and nh > 0, src
    examples = [im for im in seen["images"] if im[0].startswith("stimuli/")]
    assert len(examples) == 9
    assert all(nw == w == 143 and nh == h == 143 for _, nw, nh, w, h in examples)
    top, bottom, height = seen["summary"]
    assert 0 <= top < VIEWPORT[1] and height > 0 and bottom < VIEWPORT[1]
    assert "PASS: 9 of 9 stimuli pass" in seen["summaryText"]
    shot = _screenshot_array(seen["png"])
    assert shot.shape == (VIEWPORT[1], VIEWPORT[0])
    assert shot.std() > 10  # text, tables and noise: far from a blank page
    assert (shot < 60).mean() > 0.005 and (shot > 200).mean() > 0.3


def test_failing_set_shows_the_failure_in_the_first_screenful(tmp_path):
    failing = SHIPPED_LIKE.replace("repeats: 3", "repeats: 2\ncheck: {edge_tolerance: 1.0e-9}")
    out = _set(tmp_path, failing, "failing")
    seen = _look(out / "report.html")
    assert "FAIL" in seen["summaryText"].split("\n")[0]
    assert not seen["problemsInTable"]
    assert seen["failItems"], seen["summaryText"]
    for text, top, in_table in seen["failItems"]:
        assert 0 <= top < VIEWPORT[1]
        assert text.startswith("FAIL")
        assert not in_table
    assert sum(t.startswith("FAIL condition") for t, _, _ in seen["failItems"]) == 3
    assert "0 of 6 stimuli pass" in seen["summaryText"]
    first_text, first_top, _ = seen["failItems"][0]
    assert 0 <= first_top < VIEWPORT[1]
    assert [c for c in seen["console"] if c.get("level") == "SEVERE"] == []
