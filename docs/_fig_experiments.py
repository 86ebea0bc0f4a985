"""Figures for docs/experiments.md: the masks_octave_bands set's spectra and contact sheet."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

EXPERIMENT = Path(__file__).resolve().parents[1] / "experiments" / "masks_octave_bands.yaml"


def make_figures(outdir: str | Path) -> list[Path]:
    """Run experiments/masks_octave_bands.yaml and copy its figures to ``outdir``."""
    from stimgen.experiment import run_experiment

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory() as d:
        m = run_experiment(EXPERIMENT, Path(d) / "set", jobs=1, progress=False)
        for rel in m["figures"]:
            name = "experiments_" + Path(rel).name
            shutil.copyfile(Path(d) / "set" / rel, outdir / name)
            written.append(outdir / name)
    return written


if __name__ == "__main__":
    for p in make_figures(Path(__file__).resolve().parents[1] / "figures"):
        print(p)
