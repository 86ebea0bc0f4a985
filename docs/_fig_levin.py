"""Figures for docs/levin.md: a synthetic colorization (gray image, scribbles, result).

``make_figures(outdir)`` writes ``levin_colorize.png`` and ``levin_weights.png`` and
returns the numbers quoted on the page.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from stimgen.levin import colorize, levin_weights, rgb_to_yiq, yiq_to_rgb
from stimgen.plotting import _pyplot, save


def scene(n: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """Piecewise-smooth colour image: background, disk and square, each with smooth
    luminance and chrominance ramps (colour edges coincide with luminance edges)."""
    r, c = np.mgrid[0:n, 0:n] / (n - 1)
    disk = (r - 0.35) ** 2 + (c - 0.4) ** 2 < 0.2**2
    square = (np.abs(r - 0.72) < 0.18) & (np.abs(c - 0.7) < 0.2)
    y = np.select([disk, square], [0.6 + 0.1 * r, 0.8 - 0.1 * c], 0.3 + 0.1 * c)
    i = np.select([disk, square], [-0.15 + 0.05 * c, np.full_like(c, 0.15)], 0.05 + 0.05 * r)
    q = np.select([disk, square], [np.full_like(c, 0.1), 0.12 - 0.05 * r], -0.05 + 0.04 * c)
    yiq = np.stack([y, i, q], axis=-1)
    return yiq_to_rgb(yiq), yiq


def strokes(n: int = 128) -> np.ndarray:
    """A few short straight scribbles, 2 px wide, inside each region and the background."""
    mask = np.zeros((n, n), dtype=bool)
    segments = [  # (row0, col0, row1, col1) as fractions of the image size
        (0.25, 0.30, 0.45, 0.50),  # disk
        (0.62, 0.58, 0.82, 0.80),  # square
        (0.08, 0.10, 0.08, 0.90),  # background, top
        (0.90, 0.10, 0.60, 0.15),  # background, bottom left
        (0.30, 0.75, 0.45, 0.95),  # background, right
    ]
    t = np.linspace(0, 1, 4 * n)
    for r0, c0, r1, c1 in segments:
        rr = np.round((r0 + (r1 - r0) * t) * (n - 1)).astype(int)
        cc = np.round((c0 + (c1 - c0) * t) * (n - 1)).astype(int)
        mask[rr, cc] = True
        mask[np.minimum(rr + 1, n - 1), cc] = True
    return mask


def make_figures(outdir) -> dict:
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    plt = _pyplot()
    n = 128
    rgb, yiq = scene(n)
    gray = yiq[..., 0]
    mask = strokes(n)
    marked = np.where(mask[..., None], rgb, gray[..., None])
    out = colorize(gray, marked, mask)
    err = rgb_to_yiq(out)[..., 1:] - yiq[..., 1:]
    rms = float(np.sqrt(np.mean(err**2)))
    max_err = float(np.abs(err).max())

    fig, axs = plt.subplots(1, 4, figsize=(12, 3.4), layout="constrained")
    panels = [
        (rgb, "original (synthetic)"),
        (np.repeat(gray[..., None], 3, axis=-1), "gray input Y"),
        (marked, f"scribbles ({mask.sum()} px, {100 * mask.mean():.1f} %)"),
        (out, "colorize(gray, scribbles)"),
    ]
    for ax, (img, title) in zip(axs, panels, strict=True):
        ax.imshow(np.clip(img, 0, 1), interpolation="nearest")
        ax.set_title(title, fontsize=10)
        ax.set_axis_off()
    fig.suptitle(f"chrominance error: RMS {rms:.4f}, max {max_err:.3f} (YIQ units)", fontsize=10)
    save(fig, outdir / "levin_colorize.png")

    # weights of one pixel on each side of a luminance edge, both forms
    y = np.full((7, 7), 0.3)
    y[:, 4:] = 0.7
    y += 0.01 * np.random.default_rng(0).standard_normal((7, 7))
    fig, axs = plt.subplots(1, 3, figsize=(9, 3.2), layout="constrained")
    axs[0].imshow(y, cmap="gray", vmin=0, vmax=1)
    axs[0].add_patch(plt.Rectangle((2.5, 1.5), 3, 3, fill=False, ec="tab:red", lw=1.5))
    axs[0].plot(4, 3, "o", color="tab:red")
    axs[0].set_title("luminance, pixel r (dot) and window", fontsize=10)
    for ax, form in zip(axs[1:], ("gaussian", "correlation"), strict=True):
        nw = levin_weights(y, form=form)
        grid = np.full((3, 3), np.nan)
        for (dy, dx), wt in zip(nw.offsets, nw.weights[3, 4], strict=True):
            grid[1 + dy, 1 + dx] = wt
        im = ax.imshow(grid, cmap="RdBu_r", vmin=-0.4, vmax=0.4)
        for (i, j), wt in np.ndenumerate(grid):
            ax.text(
                j, i, "r" if np.isnan(wt) else f"{wt:.3f}", ha="center", va="center", fontsize=9
            )
        ax.set_title(f'w_rs, form="{form}"', fontsize=10)
        ax.set_xticks([0, 1, 2], ["-1", "0", "+1"])
        ax.set_yticks([0, 1, 2], ["-1", "0", "+1"])
        ax.set_xlabel("column offset (px)")
        ax.set_ylabel("row offset (px)")
    fig.colorbar(im, ax=axs[1:], shrink=0.8, label="weight")
    save(fig, outdir / "levin_weights.png")
    return {"rms": rms, "max": max_err, "scribbled": int(mask.sum())}


if __name__ == "__main__":
    print(make_figures(Path(__file__).resolve().parents[1] / "figures"))
