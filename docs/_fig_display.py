"""Figures for docs/display.md: displayed-contrast error by encoding, and a gamma fit."""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: the display of the docs: L = 0.3 + 120 (v / 255)^2.2 cd/m^2, background 60 cd/m^2
MEAN_CD_M2 = 60.0
ENCODINGS = (
    ("8-bit", "linear8", "none"),
    ("8-bit noisy-bit", "linear8", "noisy-bit"),
    ("bit-stealing", "bitstealing", "none"),
    ("16-bit", "png16", "none"),
)


def contrast_errors(contrasts, *, n=4, size_px=128, ppd=32.0, rng=0):
    """``{label: (gain error, RMS contrast error, added noise)}`` arrays, one per contrast.

    For each requested RMS contrast, ``n`` band-limited noise images (2-4 cpd) are
    encoded, and the display's predicted statistics are averaged: the error of the
    contrast at which the requested pattern is shown, ``|mean(contrast_gain) - 1|``; the
    relative error of the displayed RMS contrast, ``|mean(shown) / requested - 1|``; and
    the RMS of the pixel errors (quantization and dither noise) relative to the request.
    """
    from stimgen import DisplayModel, bandpass_noise, encode
    from stimgen.contrast import set_rms_contrast
    from stimgen.display import predict_display_stats

    display = DisplayModel.from_gamma(2.2, 0.3, 120.3)
    base, _ = bandpass_noise(size_px=size_px, ppd=ppd, band_cpd=(2, 4), family="log_gaussian",
                             n=n, rng=rng)
    gen = np.random.default_rng(rng)
    out = {}
    for label, method, dither in ENCODINGS:
        gain, bias, noise = [], [], []
        for c in contrasts:
            imgs = set_rms_contrast(base, float(c))
            stats = [predict_display_stats(img, encode(img, display, mean_cd_m2=MEAN_CD_M2,
                                                       method=method, dither=dither, rng=gen), display)
                     for img in imgs]  # fmt: skip
            gain.append(abs(np.mean([s["contrast_gain"] for s in stats]) - 1))
            shown = np.mean([s["predicted_rms_contrast"] for s in stats])
            bias.append(abs(shown / c - 1))
            noise.append(np.mean([s["error_rms_contrast"] for s in stats]) / c)
        out[label] = (np.array(gain), np.array(bias), np.array(noise))
    return out


def make_figures(outdir: Path) -> list[Path]:
    from stimgen import fit_gamma
    from stimgen.plotting import _pyplot, plot_display_contrast_error, plot_gamma_fit, save

    outdir = Path(outdir)
    written = []
    contrasts = np.geomspace(0.001, 0.2, 14)
    errors = contrast_errors(contrasts)
    plt = _pyplot()
    fig, (a, b, c) = plt.subplots(1, 3, figsize=(15, 4.4), layout="constrained")
    plot_display_contrast_error({k: (contrasts, v[0]) for k, v in errors.items()}, ax=a)
    a.set_ylabel("|contrast gain - 1|")
    a.set_title("contrast at which the requested pattern is shown", fontsize=9)
    plot_display_contrast_error({k: (contrasts, v[1]) for k, v in errors.items()}, ax=b)
    b.set_title("RMS contrast of the displayed image (60 cd/m$^2$, gamma 2.2)", fontsize=9)
    plot_display_contrast_error({k: (contrasts, v[2]) for k, v in errors.items()}, ax=c)
    c.set_ylabel("RMS pixel error / requested RMS contrast")
    c.set_title("added quantization (and dither) noise", fontsize=9)
    path = outdir / "display_contrast_error.png"
    save(fig, path)
    written.append(path)

    levels = np.linspace(0, 255, 17)
    rng = np.random.default_rng(7)
    lum = (0.3 + 120 * (levels / 255) ** 2.2) * (1 + 0.002 * rng.standard_normal(17))
    from stimgen import DisplayModel

    fig = plot_gamma_fit({"gray": fit_gamma(levels, lum)}, model=DisplayModel.from_measurements(levels, lum))
    path = outdir / "display_gamma_fit.png"
    save(fig, path)
    written.append(path)
    return written


if __name__ == "__main__":  # the numbers docs/display.md quotes
    c = np.array([0.002, 0.005, 0.01, 0.02, 0.05, 0.1])
    for label, rows in contrast_errors(c).items():
        print(f"{label:16s}", " | ".join(" ".join(f"{x:7.4f}" for x in r) for r in rows))
