"""Figures for docs/theory.md: ``make_figures(outdir)`` writes theory_*.png into ``outdir``.

Run directly with ``python docs/_fig_theory.py`` to write them into the repo's figures/.
"""

from __future__ import annotations

from pathlib import Path

PPD = 35.8375  # 57 cm, 53.3 cm, 1920 px (the worked example of docs/theory.md)


def make_figures(outdir: str | Path) -> list[Path]:
    """Write the theory figures into ``outdir``; return their paths."""
    import numpy as np

    from stimgen import plotting
    from stimgen.filters import DoG

    freqs = np.geomspace(0.1, PPD / 2 * 1.05, 600)  # a common cpd axis for comparisons
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    written = []

    designed = DoG.from_band((1, 5), ppd=PPD)
    ax = plotting.plot_dog_design(designed, ppd=PPD)
    written.append(out / "theory_dog_design.png")
    plotting.save(ax.figure, written[-1])

    ax = plotting.plot_dog_octaves(ratio_max=30)
    written.append(out / "theory_octaves_vs_ratio.png")
    plotting.save(ax.figure, written[-1])

    recipe = DoG.from_cutoff_convention((1, 5), ppd=PPD)
    _, ax = plotting._axes(figsize=(6.5, 4.2))
    ax.axvspan(1, 5, color="0.92", zorder=0, label="requested band 1-5 cpd")
    plotting.plot_transfer(designed, ppd=PPD, ax=ax, normalize=True, color="black", freqs_cpd=freqs,
                           label="designed: " + plotting._band_label(designed.passband(), PPD))
    plotting.plot_transfer(recipe, ppd=PPD, ax=ax, normalize=True, color="tab:red", freqs_cpd=freqs,
                           label="σ = 1/(2π f_c): " + plotting._band_label(recipe.passband(), PPD))
    ax.set_title("'cutoffs' 1 and 5 cpd with σ = 1/(2π f_c) vs the designed DoG", fontsize=9)
    written.append(out / "theory_cutoff_convention.png")
    plotting.save(ax.figure, written[-1])

    s1, s2 = designed.sigma_center_px, designed.sigma_surround_px
    unbalanced = DoG(s1, s2, weight=s2 / s1)  # kernels of amplitude 1/(2 pi sigma) sum to sigma
    _, ax = plotting._axes(figsize=(6.5, 4.2))
    plotting.plot_transfer(designed, ppd=PPD, ax=ax, normalize=True, color="black", freqs_cpd=freqs,
                           label="kernels sum to 1 (k /= k.sum()): zero mean")
    plotting.plot_transfer(unbalanced, ppd=PPD, ax=ax, normalize=True, color="tab:red", freqs_cpd=freqs,
                           label="amplitude 1/(2πσ): kernels sum to σ, H(0) = s1 − s2", marks=False)
    ax.set_title("same sigmas, wrong normalization: a large negative low-frequency lobe", fontsize=9)
    written.append(out / "theory_unbalanced_dog.png")
    plotting.save(ax.figure, written[-1])
    return written


if __name__ == "__main__":
    for p in make_figures(Path(__file__).resolve().parent.parent / "figures"):
        print(p)
