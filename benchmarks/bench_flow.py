"""Benchmark of stimgen.lucas_kanade: endpoint error (EPE) and time per 512x512 pair.

Stimuli (made here with numpy's FFT; stimgen.noise is not used):
* band-pass noise, one-octave log-Gaussian band around a period of 16 px;
* 1/f noise (amplitude spectrum 1/f);
translated by exact Fourier sub-pixel shifts (periodic), plus a 1-degree rotation about the
centre of a band-pass sum of plane waves (evaluated exactly on rotated coordinates).
Convention: moving(x + u, y + v) = reference(x, y). EPE = mean |(u, v) - truth| over the
interior (a 32 px border is excluded: the shifted frames wrap around).

Baselines, measured in the same run: single-scale one-step dense LK (the textbook recipe),
stimgen without the forward-backward check (``consistency=False``), the implementation
before the speed work of issue 15 (a frozen copy in ``benchmarks/flow_before.py``, no git
needed), OpenCV's Farneback flow on one thread (``cv2.setNumThreads(1)``; pyr_scale 0.5,
levels 3, winsize 15, iterations 3, poly_n 5, poly_sigma 1.2) and scikit-image's
``optical_flow_ilk`` when they are installed (benchmark-only, optional).
Targets: EPE <= 0.005 px for shifts up to 2.5 px and <= 0.05 px at 5 px on band-pass
noise; on 512x512 band-pass noise shifted by (2.2, -1.4) px, median EPE <= 0.001 px and,
in interleaved rounds (median time), <= 1.5x the time of Farneback and >= 5x faster than
the frozen implementation. Times vary with the machine's load: the ratios, measured in
the same rounds, are what to compare.

Run: python benchmarks/bench_flow.py [--repeat 3] [--rounds 7]
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import numpy as np

from stimgen.flow import lucas_kanade

#: the flow module before the speed work (frozen copy next to this file)
BEFORE_FILE = Path(__file__).resolve().parent / "flow_before.py"
FARNEBACK = {"pyr_scale": 0.5, "levels": 3, "winsize": 15, "iterations": 3, "poly_n": 5,
             "poly_sigma": 1.2, "flags": 0}

N = 512
MARGIN = 32
SHIFTS = [(0.25, 0.1), (1.0, -0.5), (2.5, 1.5), (5.0, 0.0)]


def bandpass_noise(n: int, period_px: float, rng) -> np.ndarray:
    f = np.hypot(np.fft.fftfreq(n)[:, None], np.fft.fftfreq(n)[None, :])
    f[0, 0] = 1.0
    gain = np.exp(-(np.log2(f * period_px) ** 2) / (2 * (1 / 2.355) ** 2))
    gain[0, 0] = 0.0
    a = np.fft.ifft2(np.fft.fft2(rng.standard_normal((n, n))) * gain).real
    return a / a.std()


def pink_noise(n: int, rng) -> np.ndarray:
    f = np.hypot(np.fft.fftfreq(n)[:, None], np.fft.fftfreq(n)[None, :])
    f[0, 0] = np.inf
    a = np.fft.ifft2(np.fft.fft2(rng.standard_normal((n, n))) / f).real
    return a / a.std()


def fourier_shift(a: np.ndarray, dx: float, dy: float) -> np.ndarray:
    ky = np.fft.fftfreq(a.shape[0])[:, None]
    kx = np.fft.fftfreq(a.shape[1])[None, :]
    return np.fft.ifft2(np.fft.fft2(a) * np.exp(-2j * np.pi * (kx * dx + ky * dy))).real


def rotation_pair(n: int, angle_deg: float, rng, waves: int = 300):
    """Plane waves with periods 12-22 px; moving = reference rotated about the centre."""
    freq = rng.uniform(1 / 22, 1 / 12, waves)
    theta = rng.uniform(0, 2 * np.pi, waves)
    phase = rng.uniform(0, 2 * np.pi, waves)
    kx, ky = freq * np.cos(theta), freq * np.sin(theta)

    def f(x, y):
        out = np.zeros(x.shape)
        for i in range(waves):
            out += np.cos(2 * np.pi * (kx[i] * x + ky[i] * y) + phase[i])
        return out / np.sqrt(waves / 2)

    yy, xx = np.mgrid[:n, :n].astype(float)
    c = (n - 1) / 2
    a = np.radians(angle_deg)
    cs, sn = np.cos(a), np.sin(a)
    ref = f(xx, yy)
    mov = f(cs * (xx - c) + sn * (yy - c) + c, -sn * (xx - c) + cs * (yy - c) + c)
    u = cs * (xx - c) - sn * (yy - c) + c - xx
    v = sn * (xx - c) + cs * (yy - c) + c - yy
    return ref, mov, u, v


def epe(u, v, ut, vt) -> float:
    e = np.hypot(u - ut, v - vt)[MARGIN:-MARGIN, MARGIN:-MARGIN]
    return float(np.nanmean(e))


def timed(fn, repeat: int):
    best, out = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return out, best * 1e3


def baseline_module():
    """``benchmarks/flow_before.py`` imported as ``stimgen._flow_before`` (None if absent)."""
    if not BEFORE_FILE.is_file():
        print(f"{BEFORE_FILE} not found: no baseline of the implementation before")
        return None
    spec = importlib.util.spec_from_file_location("stimgen._flow_before", BEFORE_FILE)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    mod.__package__ = "stimgen"
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def farneback():
    """OpenCV's Farneback flow on one thread as ``f(a, b) -> (u, v)`` (None without cv2)."""
    try:
        import cv2
    except ImportError:
        print("OpenCV (cv2) not installed: no Farneback baseline")
        return None
    cv2.setNumThreads(1)

    def fb(a, b):
        # Farneback expects 8-bit-like values (on contrast 0.2 frames it returns ~0 flow):
        # the same linear rescaling of both frames, 128 + 255 * contrast
        a8 = (128 + 255 * np.asarray(a, np.float32)).astype(np.float32)
        b8 = (128 + 255 * np.asarray(b, np.float32)).astype(np.float32)
        f = cv2.calcOpticalFlowFarneback(a8, b8, None, **FARNEBACK)
        return f[..., 0], f[..., 1]  # same convention: b(x + u, y + v) = a(x, y)

    return fb


def methods(baseline):
    m = {
        "stimgen": lambda a, b: _lk(a, b),
        "stimgen no check": lambda a, b: _lk(a, b, consistency=False),
        "stimgen sobel": lambda a, b: _lk(a, b, derivative="sobel"),
        # textbook recipe: no pyramid, one solve, reliability = conditioning only
        "1-step LK": lambda a, b: _lk(a, b, levels=1, iterations=1, consistency=False),
    }
    if baseline is not None:

        def before(a, b):
            r = baseline.lucas_kanade(a, b)
            return r.u, r.v

        m["before"] = before
    fb = farneback()
    if fb is not None:
        m["farneback"] = fb
    try:
        from skimage.registration import optical_flow_ilk
    except ImportError:
        print("scikit-image not installed: no optical_flow_ilk baseline")
    else:

        def ilk(a, b):
            # skimage returns (v, u) -- row first -- and uses the same sign convention
            fv, fu = optical_flow_ilk(a, b, radius=7)
            return fu, fv

        m["skimage ilk"] = ilk
    return m


def _lk(a, b, **kw):
    r = lucas_kanade(a, b, **kw)
    return r.u, r.v


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=3, help="timing repeats (best is kept)")
    p.add_argument("--rounds", type=int, default=7, help="interleaved rounds vs the baseline")
    args = p.parse_args()
    baseline = baseline_module()
    rng = np.random.default_rng(2024)
    cases = []
    for name, img in (("band-pass 16px", bandpass_noise(N, 16.0, rng)), ("1/f", pink_noise(N, rng))):
        ref = (0.2 * img).astype(np.float32)
        for dx, dy in SHIFTS:
            mov = (0.2 * fourier_shift(img, dx, dy)).astype(np.float32)
            cases.append((name, f"shift ({dx:g}, {dy:g})", ref, mov, dx, dy))
    ref, mov, ut, vt = rotation_pair(N, 1.0, rng)
    cases.append(("band-pass waves", "rotation 1 deg (<=6.3 px)", (0.2 * ref).astype(np.float32),
                  (0.2 * mov).astype(np.float32), ut, vt))

    meth = methods(baseline)
    names = list(meth)
    print(f"{N}x{N} float32 pairs, EPE in px over the interior (border {MARGIN} px), "
          f"time = best of {args.repeat} in ms")
    header = f"{'stimulus':16s} {'motion':27s}" + "".join(f"{n:>22s}" for n in names)
    print(header)
    print("-" * len(header))
    results = {n: [] for n in names}
    for stim, motion, a, b, ut, vt in cases:
        row = f"{stim:16s} {motion:27s}"
        for n in names:
            (u, v), ms = timed(lambda f=meth[n], a=a, b=b: f(a, b), args.repeat)
            e = epe(u, v, ut, vt)
            results[n].append((stim, motion, e, ms))
            row += f"{e:12.5f} {ms:6.0f} ms"
        print(row, flush=True)

    # targets and ratios
    print()
    sg = results["stimgen"]
    bp = [r for r in sg if r[0] == "band-pass 16px"]
    small = max(r[2] for r in bp if not r[1].startswith("shift (5"))
    large = max(r[2] for r in bp if r[1].startswith("shift (5"))
    med_ms = float(np.median([r[3] for r in sg]))
    worst_ms = max(r[3] for r in sg)
    print(f"target EPE <= 0.005 px up to 2.5 px (band-pass): worst {small:.5f}  "
          f"{'PASS' if small <= 0.005 else 'FAIL'}")
    print(f"target EPE <= 0.05 px at 5 px (band-pass):       {large:.5f}  "
          f"{'PASS' if large <= 0.05 else 'FAIL'}")
    print(f"target <= 300 ms per pair:                        median {med_ms:.0f} ms "
          f"(worst {worst_ms:.0f})  {'PASS' if med_ms <= 300 else 'FAIL'}")
    for base in ("skimage ilk", "farneback", "1-step LK", "before", "stimgen no check"):
        if base not in results:
            continue
        b = results[base]
        epe_ratio = np.median([x[2] / max(y[2], 1e-12) for x, y in zip(b, sg, strict=True)])
        time_ratio = np.median([x[3] / y[3] for x, y in zip(b, sg, strict=True)])
        print(f"vs {base}: median EPE ratio {base}/stimgen = {epe_ratio:.3g}, "
              f"time ratio = {time_ratio:.2f}")


    speed_vs_baseline(baseline, args.rounds)


def speed_vs_baseline(baseline, rounds: int) -> None:
    """512x512 band-pass noise shifted by (2.2, -1.4) px: median time over interleaved
    rounds of stimgen (default options, and without the check), the implementation
    before and Farneback on one thread, with each one's median EPE and the time ratios."""
    rng = np.random.default_rng(15)
    img = bandpass_noise(N, 16.0, rng)
    a = (0.2 * img).astype(np.float32)
    b = (0.2 * fourier_shift(img, 2.2, -1.4)).astype(np.float32)

    def lk(**kw):
        return lambda: _lk(a, b, **kw)

    fns = {"stimgen": lk(), "stimgen no check": lk(consistency=False)}
    if baseline is not None:
        fns["before"] = lambda: _uv(baseline.lucas_kanade(a, b))
    fb = farneback()
    if fb is not None:
        fns["farneback"] = lambda: fb(a, b)
    times: dict[str, list[float]] = {k: [] for k in fns}
    epe_med = {}
    for _ in range(rounds):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            u, v = fn()
            times[k].append(time.perf_counter() - t0)
            err = np.hypot(u - 2.2, v + 1.4)[MARGIN:-MARGIN, MARGIN:-MARGIN]
            epe_med[k] = float(np.nanmedian(err))
    med = {k: float(np.median(t)) for k, t in times.items()}
    print()
    print(f"512x512 band-pass noise, shift (2.2, -1.4) px, median of {rounds} interleaved rounds:")
    for k in fns:
        print(f"  {k:18s} {1e3 * med[k]:7.0f} ms   median EPE {epe_med[k]:.6f} px")
    ok = epe_med["stimgen"] <= 0.001
    print(f"target median EPE <= 0.001 px (stimgen defaults): {epe_med['stimgen']:.6f}  "
          f"{'PASS' if ok else 'FAIL'}")
    if "farneback" in med:
        r = med["stimgen"] / med["farneback"]
        print(f"target stimgen / Farneback (1 thread) <= 1.5: {r:.2f}  {'PASS' if r <= 1.5 else 'FAIL'}"
              f"   (no check: {med['stimgen no check'] / med['farneback']:.2f})")
    if "before" in med:
        r = med["before"] / med["stimgen"]
        print(f"target before / stimgen >= 5: {r:.2f}  {'PASS' if r >= 5 else 'FAIL'}"
              f"   (before / no check: {med['before'] / med['stimgen no check']:.2f})")


def _uv(r):
    return r.u, r.v


if __name__ == "__main__":
    main()
