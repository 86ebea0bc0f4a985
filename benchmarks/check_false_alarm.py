"""False-alarm rate of the spectral check: how often correct stimuli fail compare_to_design.

Generates correct stimuli (single images, as in experiment runs) of several families, sizes,
ppd and noise kinds, measures each with ``measure_band`` and tests it with
``compare_to_design`` against its own design (``rms_contrast`` given, so the contrast is
tested too). Prints the measured false-alarm rate at several nominal rates, with the
binomial 95 % interval, and the fraction of wrong stimuli (band 10 % higher, another family,
contrast 10 % higher) that fail. Run: ``python benchmarks/check_false_alarm.py [N]``.
"""

from __future__ import annotations

import sys
import time

import numpy as np

import stimgen
from stimgen.filters import filter_from_record
from stimgen.noise import make_filter
from stimgen.spectrum import compare_to_design, measure_band

CASES = [  # family, size_px, ppd, band_cpd, kind
    ("dog", 128, 32.0, (1.0, 4.0), "gaussian"),
    ("log_gaussian", 128, 32.0, (0.5, 1.0), "gaussian"),
    ("butterworth", 100, 25.0, (1.5, 4.0), "gaussian"),
    ("ideal", 96, 30.0, (2.0, 5.0), "gaussian"),
    ("log_gaussian", 160, 40.0, (2.0, 4.0), "uniform"),
    ("dog", 128, 32.0, (1.0, 4.0), "binary"),
]


def _interval(k: int, n: int) -> tuple[float, float]:
    from scipy import stats

    lo = stats.beta.ppf(0.025, k, n - k + 1) if k else 0.0
    hi = stats.beta.ppf(0.975, k + 1, n - k) if k < n else 1.0
    return float(lo), float(hi)


def main(n_total: int = 1000) -> None:
    rates = (0.001, 0.01, 0.05)
    p_values: list[float] = []
    t0 = time.perf_counter()
    for i, (family, size, ppd, band, kind) in enumerate(CASES):
        per_case = max(1, n_total // len(CASES) + (i < n_total % len(CASES)))
        imgs, rec = stimgen.bandpass_noise(size_px=size, ppd=ppd, band_cpd=band, family=family, kind=kind,
                                           n=per_case, rng=20261202)
        filt = filter_from_record(rec["filter"])
        for img in imgs:
            c = compare_to_design(measure_band(img, ppd=ppd), filt, ppd=ppd, rms_contrast=0.2, kind=kind)
            p_values.append(c["test"]["p_value"])
    n = len(p_values)
    p = np.asarray(p_values)
    print(f"{n} correct stimuli ({len(CASES)} designs, one image each), {time.perf_counter() - t0:.1f} s")
    for a in rates:
        k = int(np.count_nonzero(p < a))
        lo, hi = _interval(k, n)
        print(f"nominal false-alarm rate {a:<6g} measured {k / n:.4f} ({k}/{n}, 95 % interval {lo:.4f}-{hi:.4f})")
    # wrong stimuli: each must fail
    wrong = {"band 10 % higher": 0, "other family": 0, "contrast 10 % higher": 0}
    m_wrong = 50
    imgs, rec = stimgen.bandpass_noise(size_px=256, ppd=32, band_cpd=(1.0, 2.0), family="log_gaussian",
                                       n=m_wrong, rng=7)
    filt = filter_from_record(rec["filter"])
    shifted = make_filter("log_gaussian", ppd=32, band_cpd=(1.1, 2.2))
    other = make_filter("butterworth", ppd=32, band_cpd=(1.0, 2.0))
    for img in imgs:
        m = measure_band(img, ppd=32)
        wrong["band 10 % higher"] += compare_to_design(m, shifted, ppd=32, rms_contrast=0.2)["status"] == "fail"
        wrong["other family"] += compare_to_design(m, other, ppd=32, rms_contrast=0.2)["status"] == "fail"
        wrong["contrast 10 % higher"] += compare_to_design(m, filt, ppd=32, rms_contrast=0.22)["status"] == "fail"
    for name, k in wrong.items():
        print(f"wrong design ({name}, 256 x 256 px, 1 image): {k}/{m_wrong} fail")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
