"""Figures for docs/motion.md: ``make_figures(outdir)`` writes motion_*.png into ``outdir``."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

PPD, FPS = 30.0, 60.0


def make_figures(outdir) -> list[Path]:
    from stimgen import plotting
    from stimgen.motion import drifting_noise, spatiotemporal_noise, verify_motion

    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    plt = plotting._pyplot()

    # 1. a frame and space-time slices of drifting, dynamic and spatiotemporal noise
    common = dict(size_px=(128, 192), ppd=PPD, band_cpd=(1, 4), frame_rate_hz=FPS,
                  duration_s=1.0, rng=4)
    drift, rec = drifting_noise(speed_deg_s=2.5, direction_deg=0, **common)
    dyn, rec_dyn = drifting_noise(speed_deg_s=2.5, direction_deg=0, refresh_frames=15, **common)
    st, rec_st = spatiotemporal_noise(temporal_band_hz=(2, 8), **common)
    fig, axes = plt.subplots(1, 4, figsize=(15, 4.2), layout="constrained")
    h, w = drift.shape[1:]
    axes[0].imshow(drift[0], cmap="gray", vmin=-1, vmax=1,
                   extent=(-0.5 / PPD, (w - 0.5) / PPD, (h - 0.5) / PPD, -0.5 / PPD))
    axes[0].axhline(h // 2 / PPD, color="C1", lw=0.8)
    axes[0].set(title="frame 0 (DoG 1-4 cpd, RMS 0.2)", xlabel="x (deg)", ylabel="y (deg)")
    plotting.plot_space_time(drift, record=rec, ax=axes[1])
    axes[1].set_title("drift 2.5 deg/s rightwards")
    plotting.plot_space_time(dyn, record=rec_dyn, ax=axes[2])
    axes[2].set_title("dynamic: fresh sample every 15 frames")
    plotting.plot_space_time(st, record=rec_st, ax=axes[3])
    axes[3].set_title("spatiotemporal: 1-4 cpd x 2-8 Hz")
    p = out / "motion_space_time.png"
    plotting.save(fig, p)
    paths.append(p)

    # 2. measured (Lucas-Kanade) vs requested speed, up to and past the aliasing limit
    speeds = np.array([0.5, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 14])
    cases = [
        ("DoG 1-4 cpd", dict(family="dog", band_cpd=(1, 4))),
        ("log-Gaussian 4 cpd, 0.5 oct", dict(family="log_gaussian", peak_cpd=4, octaves=0.5)),
    ]
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
    for i, (label, kw) in enumerate(cases):
        measured, limit = [], None
        for s in speeds:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                movie, r = drifting_noise(size_px=128, ppd=PPD, speed_deg_s=s, direction_deg=0,
                                          frame_rate_hz=FPS, n_frames=4, rng=2,
                                          allow_aliasing=True, **kw)
            res = verify_motion(movie, r)
            measured.append(res["measured"]["velocity_deg_s"][0])
            limit = r["temporal_aliasing"]["limit_speed_deg_s"]
        ax0.plot(speeds, measured, "o-", color=f"C{i}", label=label)
        ax0.axvline(limit, color=f"C{i}", ls=":", label=f"aliasing limit {limit:.3g} deg/s")
        err = np.array(measured) / speeds - 1
        ax1.semilogy(speeds, np.maximum(np.abs(err), 1e-6), "o-", color=f"C{i}", label=label)
        ax1.axvline(limit, color=f"C{i}", ls=":")
    ax0.plot(speeds, speeds, "k--", lw=0.8, label="requested")
    ax0.axhline(0, color="0.6", lw=0.5)
    ax0.set(xlabel="requested speed (deg/s, rightwards)", ylabel="measured vx (deg/s)",
            title=f"Lucas-Kanade on drifting noise, {PPD:g} ppd, {FPS:g} Hz")
    ax0.legend(fontsize="small")
    ax1.axhline(0.05, color="0.5", ls="--", lw=0.8, label="verify_motion tolerance 5 %")
    ax1.set(xlabel="requested speed (deg/s)", ylabel="|relative error|",
            title="relative speed error")
    ax1.legend(fontsize="small")
    p = out / "motion_verify.png"
    plotting.save(fig, p)
    paths.append(p)
    return paths


if __name__ == "__main__":
    import sys

    root = Path(__file__).resolve().parent.parent
    for path in make_figures(sys.argv[1] if len(sys.argv) > 1 else root / "figures"):
        print(path)
