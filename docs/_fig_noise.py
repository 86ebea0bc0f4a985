"""Figures for docs/noise.md: measured spectra of generated noise against the design."""

from __future__ import annotations

from pathlib import Path


def make_figures(outdir: Path) -> list[Path]:
    from stimgen import bandpass_noise
    from stimgen.noise import make_filter
    from stimgen.plotting import _pyplot, plot_spectrum, plot_stimuli_with_spectra, save
    from stimgen.spectrum import measure_band, radial_spectrum

    outdir = Path(outdir)
    ppd = 35.84
    written = []
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(13, 4), layout="constrained")
    for ax, (family, band) in zip(
        axes, [("dog", (1, 5)), ("log_gaussian", (1, 2)), ("butterworth", (2, 4))], strict=True
    ):
        imgs, _ = bandpass_noise(size_px=512, ppd=ppd, band_cpd=band, family=family, n=16, rng=1)
        spec = radial_spectrum(imgs, ppd=ppd, bins_per_octave=24)
        plot_spectrum(spec, design=make_filter(family, ppd=ppd, band_cpd=band),
                      measured=measure_band(spec), ax=ax)
        ax.set_title(f"{family} {band[0]}-{band[1]} cpd, 16 x 512 px at {ppd} ppd", fontsize=9)
    path = outdir / "noise_spectrum_dog.png"
    save(fig, path)
    written.append(path)

    rows = []
    for family, band in [("dog", (1, 5)), ("log_gaussian", (2, 4)), ("power_law", None)]:
        imgs, rec = bandpass_noise(size_deg=6, ppd=ppd, band_cpd=band, family=family,
                                   alpha=2.0, n=16, rng=3)
        label = f"{family} {band[0]}-{band[1]} cpd" if band else "power law 1/f^2 (brown)"
        design = make_filter(family, ppd=ppd, band_cpd=band) if band else None
        rows.append((label, imgs, design))
    fig = plot_stimuli_with_spectra(rows, ppd=ppd)
    path = outdir / "noise_examples.png"
    save(fig, path)
    written.append(path)
    return written
