"""Figures for docs/flow.md: ``make_figures(outdir)`` writes flow_*.png into ``outdir``."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _bandpass_noise(n: int, period_px: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    f = np.hypot(np.fft.fftfreq(n)[:, None], np.fft.fftfreq(n)[None, :])
    f[0, 0] = 1.0
    gain = np.exp(-(np.log2(f * period_px) ** 2) / (2 * (1 / 2.355) ** 2))
    gain[0, 0] = 0.0
    a = np.fft.ifft2(np.fft.fft2(rng.standard_normal((n, n))) * gain).real
    return 0.2 * a / a.std()


def _rotated_waves(n: int, angle_deg: float, seed: int):
    rng = np.random.default_rng(seed)
    k = 200
    freq = rng.uniform(1 / 22, 1 / 12, k)
    theta = rng.uniform(0, 2 * np.pi, k)
    phase = rng.uniform(0, 2 * np.pi, k)
    kx, ky = freq * np.cos(theta), freq * np.sin(theta)

    def f(x, y):
        out = np.zeros(x.shape)
        for i in range(k):
            out += np.cos(2 * np.pi * (kx[i] * x + ky[i] * y) + phase[i])
        return 0.2 * out / np.sqrt(k / 2)

    yy, xx = np.mgrid[:n, :n].astype(float)
    c = (n - 1) / 2
    a = np.radians(angle_deg)
    cs, sn = np.cos(a), np.sin(a)
    return f(xx, yy), f(cs * (xx - c) + sn * (yy - c) + c, -sn * (xx - c) + cs * (yy - c) + c)


def make_figures(outdir) -> list[Path]:
    from stimgen import plotting
    from stimgen.flow import lucas_kanade

    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    written = []

    # 1. a rotation field: quiver over the reference, colour wheel
    ref, mov = _rotated_waves(192, 3.0, seed=1)
    res = lucas_kanade(ref, mov)
    fig = plotting.plot_flow(res, reference_image=ref)
    fig.suptitle("3 deg clockwise-on-screen rotation of band-pass waves (rows downwards)")
    path = out / "flow_rotation.png"
    plotting.save(fig, path)
    written.append(path)

    # 2. the aperture problem: noise (left) next to a grating (right), both moving (1.5, 0.5)
    n = 160
    yy, xx = np.mgrid[:n, :n].astype(float)
    nvec = np.array([np.cos(np.radians(30)), np.sin(np.radians(30))])
    d = (1.5, 0.5)

    def scene(dx, dy):
        noise = np.fft.ifft2(
            np.fft.fft2(_bandpass_noise(n, 16.0, seed=4))
            * np.exp(-2j * np.pi * (np.fft.fftfreq(n)[None, :] * dx + np.fft.fftfreq(n)[:, None] * dy))
        ).real
        grating = 0.2 * np.sin(2 * np.pi * (nvec[0] * (xx - dx) + nvec[1] * (yy - dy)) / 16)
        return np.where(xx < n / 2, noise, grating)

    r = lucas_kanade(scene(0, 0), scene(*d))
    plt = plotting._pyplot()
    fig, (a0, a1) = plt.subplots(1, 2, figsize=(10, 5.2), layout="constrained")
    plotting.plot_flow_quiver(r, background=scene(0, 0), ax=a0, step=10)
    ys, xs = np.mgrid[5:n:10, 5:n:10]
    nu, nv = r.normal_u[ys, xs], r.normal_v[ys, xs]
    ap = r.aperture[ys, xs]
    a0.quiver(xs[ap], ys[ap], nu[ap], nv[ap], angles="xy", scale_units="xy", scale=0.2,
              color="tab:blue", width=0.004)
    a0.set_title("red: full flow (reliable: consistent); blue: normal flow only (aperture)",
                 fontsize=9)
    im = a1.imshow(np.log10(r.min_eigenvalue / r.threshold + 1e-6), cmap="viridis",
                   vmin=-3, vmax=1.5)
    a1.contour(r.reliable.astype(float), levels=[0.5], colors="w", linewidths=1)
    a1.set_title("log10(min eigenvalue / threshold); white: reliable boundary", fontsize=9)
    a1.set_xlabel("x (px)")
    fig.colorbar(im, ax=a1, shrink=0.8)
    path = out / "flow_aperture.png"
    plotting.save(fig, path)
    written.append(path)
    return written


if __name__ == "__main__":
    import sys

    for p in make_figures(sys.argv[1] if len(sys.argv) > 1 else "figures"):
        print(p)
