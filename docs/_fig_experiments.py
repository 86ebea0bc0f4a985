"""Figures for docs/experiments.md: the masks_octave_bands set's spectra and contact sheet,
the drifting_noise set's velocity check and a first-frame spectrum, and the
critical_band_masking set's components and notched-noise spectrum with the target marked."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
EXPERIMENT = EXPERIMENTS / "masks_octave_bands.yaml"
MOTION_EXPERIMENT = EXPERIMENTS / "drifting_noise.yaml"
MOTION_FIGURES = ("velocity.png", "spectrum_c03_speed_deg_s_4_direction_deg_90.png")
MASKING_EXPERIMENT = EXPERIMENTS / "critical_band_masking.yaml"
MASKING_FIGURES = ("components_c10_target.contrast_0.2.png", "spectrum_c10_target.contrast_0.2.png",
                   "spectrum_c00_family_lowpass_cutoff_cpd_2.png", "spectrum_c04_family_highpass_cutoff_cpd_4.png")


def make_figures(outdir: str | Path) -> list[Path]:
    """Run the three experiments and copy their figures to ``outdir``."""
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
        m = run_experiment(MOTION_EXPERIMENT, Path(d) / "motion", jobs=1, progress=False)
        for rel in m["figures"]:
            if Path(rel).name in MOTION_FIGURES:
                name = "experiments_motion_" + Path(rel).name
                shutil.copyfile(Path(d) / "motion" / rel, outdir / name)
                written.append(outdir / name)
        m = run_experiment(MASKING_EXPERIMENT, Path(d) / "masking", jobs=1, progress=False)
        for rel in m["figures"]:
            if Path(rel).name in MASKING_FIGURES:
                name = "experiments_masking_" + Path(rel).name
                shutil.copyfile(Path(d) / "masking" / rel, outdir / name)
                written.append(outdir / name)
    return written


if __name__ == "__main__":
    for p in make_figures(Path(__file__).resolve().parents[1] / "figures"):
        print(p)
