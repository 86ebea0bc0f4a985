"""Figures for docs/targets.md: a Gabor in notched noise in an aperture, and critical-band spectra.

``make_figures`` also returns the numbers the page quotes (measured against the design).
"""

from __future__ import annotations

from pathlib import Path

PPD = 35.8375


def make_figures(outdir: Path) -> dict:
    import numpy as np

    from stimgen import aperture, bandpass_noise, compose, gabor, measure_psd, noise_psd
    from stimgen.energy import measure_critical_band
    from stimgen.noise import make_filter
    from stimgen.plotting import _pyplot, save

    outdir = Path(outdir)
    plt = _pyplot()
    numbers: dict = {}

    # -- 1. target, noise, aperture, composite ------------------------------------------
    spec = {"kind": "raised_cosine", "radius_deg": 3.0, "ramp_deg": 1.0}
    t, trec = gabor(size_px=320, ppd=PPD, sf_cpd=4, sigma_deg=0.5, orientation_deg=30, contrast=0.3)
    n, nrec = bandpass_noise(size_px=320, ppd=PPD, family="notch", band_cpd=(2.83, 5.66), order=8,
                             rms_contrast=0.1, rng=12)
    w = aperture(320, ppd=PPD, **spec)
    comp, crec = compose((t, trec), (n, nrec), spec)
    fig, axs = plt.subplots(1, 4, figsize=(13, 3.6), layout="constrained")
    half = 160 / PPD
    for ax, img, title in zip(
        axs, (t, n, w, comp),
        (f"target: Gabor 4 cpd, sigma 0.5 deg\nE = {crec['target_energy_deg2']:.3g} deg^2 (in the aperture)",
         "noise: notch 2.83-5.66 cpd, order 8\nRMS 0.1",
         "aperture: raised cosine\nradius 3 deg, ramp 1 deg",
         f"composite = aperture x (target + noise)\nE/N = {crec['e_over_n']:.3g} at 4 cpd"),
        strict=True,
    ):
        lim = (0, 1) if img is w else (-0.5, 0.5)
        ax.imshow(img, cmap="gray", vmin=lim[0], vmax=lim[1], extent=(-half, half, -half, half))
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("x (deg)")
    axs[0].set_ylabel("y (deg)")
    path = outdir / "targets_composite.png"
    save(fig, path, dpi=90)
    numbers["composite"] = {"E_deg2": crec["target_energy_deg2"], "N_at_target_deg2": crec["noise_psd_deg2"]["at_target"],
                            "e_over_n": crec["e_over_n"], "clipped_fraction": crec["clipped_fraction"]}

    # -- 2. critical-band noise: measured N(f) against the design, target frequency marked
    fig, ax = plt.subplots(figsize=(7.5, 4.6), layout="constrained")
    cases = [("lowpass", dict(cutoff_cpd=2.0), "tab:blue"), ("highpass", dict(cutoff_cpd=8.0), "tab:orange"),
             ("notch", dict(band_cpd=(2.83, 5.66), order=8), "tab:green")]
    for family, kw, color in cases:
        imgs, rec = bandpass_noise(size_px=512, ppd=PPD, family=family, rms_contrast=0.2, n=16, rng=5, **kw)
        m = measure_psd(imgs, PPD, bins_per_octave=24)
        filt = make_filter(family, ppd=PPD, **kw)
        f = np.geomspace(m.freq_cpd[0], PPD / 2, 400)
        ax.loglog(m.freq_cpd, m.psd_deg2, ".", color=color, ms=4)
        ax.loglog(f, noise_psd(rec, freq_cpd=f), "-", color=color, lw=1.2,
                  label=f"{family} {kw.get('cutoff_cpd', kw.get('band_cpd'))} cpd: measured (dots), design (line)")
        meas = measure_critical_band(imgs, filt, ppd=PPD)
        numbers[family] = {"design_band_cpd": meas["design_band_cpd"], "measured_band_cpd": meas["measured_band_cpd"],
                           "rel_error": meas["rel_error"], **({"depth_db": meas["depth_db"]} if "depth_db" in meas else {})}
    ax.axvline(4.0, color="k", lw=1, ls="--")
    ax.annotate("target 4 cpd", (4.0, 0.02), xycoords=("data", "axes fraction"), rotation=90, ha="right", fontsize=8)
    ax.axvline(PPD / 2, color="0.5", lw=1, ls=":")
    ax.set_ylim(1e-9, 1e-2)
    ax.set_xlabel("spatial frequency (cpd)")
    ax.set_ylabel("noise spectral density N (contrast^2 deg^2)")
    ax.set_title(f"critical-band noise, RMS 0.2, 16 x 512 px at {PPD} ppd", fontsize=10)
    ax.legend(fontsize=8, loc="lower left")
    path2 = outdir / "targets_critical_band.png"
    save(fig, path2)
    numbers["figures"] = [str(path.name), str(path2.name)]
    return numbers
