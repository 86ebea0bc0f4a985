"""Figure for docs/handoff.md and the README: the first screenful (1280 x 900 px) of the
report.html of the shipped masks_octave_bands set, as headless Chromium shows it."""

from __future__ import annotations

import tempfile
from pathlib import Path

EXPERIMENT = Path(__file__).resolve().parents[1] / "experiments" / "masks_octave_bands.yaml"


def make_figures(outdir: str | Path) -> list[Path]:
    """Run the shipped experiment, write its report and save a screenshot to ``outdir``."""
    from stimgen._browser import find_chromium, open_page
    from stimgen.experiment import run_experiment
    from stimgen.experiment.report import write_report

    if find_chromium() is None:
        raise RuntimeError("figures/report.png needs chromium and chromedriver "
                           "(Debian: apt-get install chromium chromium-driver)")
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as d:
        run_experiment(EXPERIMENT, Path(d) / "masks_octave_bands", progress=False)
        report = write_report(Path(d) / "masks_octave_bands")
        driver = open_page(report, width_px=1280, height_px=900)
        try:
            png = driver.get_screenshot_as_png()
        finally:
            driver.quit()
    (outdir / "report.png").write_bytes(png)
    return [outdir / "report.png"]


if __name__ == "__main__":
    for p in make_figures(Path(__file__).resolve().parents[1] / "figures"):
        print(p)
