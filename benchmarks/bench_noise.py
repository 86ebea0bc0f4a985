"""Benchmark: band-limited noise generation against its floor and the spatial recipe.

First, interleaved rounds (median of ``--rounds``, default 7; each round times every case
once, and the ratio is taken per round against the floor timed in that round):

* one 512x512 and one 2048x2048 DoG band-pass image (``bandpass_noise``, RMS contrast set)
  by spectral synthesis with ``workers=1`` (target <= 0.9x) and with the default threads
  (the available cores; target <= 0.7x), and by spatial synthesis with ``workers=1``,
  against the classic floor on one thread: a bare float32 pipeline (draw white noise,
  ``scipy.fft.rfft2``, multiply by a cached transfer grid, ``irfft2``), no contrast set;
* a 64 x 512 x 512 batch (one ``bandpass_noise(n=64)`` call) with ``workers=1`` and with the
  default workers against a loop of 64 single-image floors (target <= 0.8x). The images are
  the same bytes for every ``workers``.

Then (without ``--ratios-only``) a table: per-image time of the floor, stimgen and the
common hand-rolled spatial-convolution recipe (two ``scipy.ndimage.gaussian_filter`` calls
subtracted, float32), and peak memory per image (tracemalloc).

Run: ``python benchmarks/bench_noise.py [--quick] [--ratios-only] [--rounds N]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
import tracemalloc

import numpy as np
from scipy import fft, ndimage

from stimgen import DoG, bandpass_noise

PPD = 35.8375
BAND = (1.0, 5.0)


def best_time(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def floor(shape, n, grid, rng):
    white = rng.standard_normal((n, *shape), dtype=np.float32)
    spec = fft.rfft2(white, axes=(-2, -1))
    spec *= grid
    return fft.irfft2(spec, s=shape, axes=(-2, -1))


def spatial(shape, n, dog, rng):
    out = np.empty((n, *shape), np.float32)
    for i in range(n):
        white = rng.standard_normal(shape, dtype=np.float32)
        out[i] = ndimage.gaussian_filter(white, dog.sigma_center_px, mode="wrap") - ndimage.gaussian_filter(
            white, dog.sigma_surround_px, mode="wrap"
        )
    return out


def peak_bytes(fn) -> int:
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def run_case(dog: DoG, shape: tuple[int, int], n: int) -> dict[str, float]:
    """Seconds per image for the floor, stimgen and the spatial recipe; peak bytes per image."""
    repeat = 3 if n > 1 else 7
    grid = dog.grid(shape)
    rng = np.random.default_rng(0)

    def ours() -> None:
        bandpass_noise(size_px=shape, ppd=PPD, band_cpd=BAND, n=n, rng=1)

    n_sp = min(n, 4)
    return {
        "floor": best_time(lambda: floor(shape, n, grid, rng), repeat) / n,
        "ours": best_time(ours, repeat) / n,
        "spatial": best_time(lambda: spatial(shape, n_sp, dog, rng), 1 if shape[0] > 1000 else 2) / n_sp,
        "mem": peak_bytes(ours) / n,
    }


def interleaved(cases: dict, rounds: int) -> dict[str, list[float]]:
    """Seconds of every case per round; each round runs every case once, in order."""
    for fn in cases.values():  # warm: transfer grids, FFT plans, thread pools
        fn()
    times: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(rounds):
        for name, fn in cases.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    return times


def report(title: str, times: dict[str, list[float]], base_name: str) -> None:
    base = times[base_name]
    print(f"\n{title}, median of {len(base)} interleaved rounds (ratio to {base_name!r} per round, "
          "then the median; min-max in brackets)")
    for name, ts in times.items():
        ratios = [t / b for t, b in zip(ts, base, strict=True)]
        print(f"{name:>26} {statistics.median(ts) * 1e3:9.1f} ms  ratio {statistics.median(ratios):5.2f}x  "
              f"({min(ratios):.2f}-{max(ratios):.2f})")


def single_case(n_px: int, rounds: int) -> None:
    """One n_px^2 band-pass image, spectral (one thread, default threads) and spatial, against the floor."""
    shape = (n_px, n_px)
    grid = DoG.from_band(BAND, ppd=PPD).grid(shape)
    rng = np.random.default_rng(0)

    def ours(**kw):
        return lambda: bandpass_noise(size_px=shape, ppd=PPD, band_cpd=BAND, rng=1, **kw)

    cases = {
        "floor (1 thread)": lambda: floor(shape, 1, grid, rng),
        "spectral workers=1": ours(workers=1),
        "spectral default threads": ours(),
        "spatial workers=1": ours(workers=1, synthesis="spatial"),
    }
    a = cases["spectral workers=1"]()[0]
    assert a.tobytes() == cases["spectral default threads"]()[0].tobytes()  # same bytes
    report(f"one {n_px}x{n_px} DoG image", interleaved(cases, rounds), "floor (1 thread)")


def batch_vs_single_floors(rounds: int) -> None:
    """A 64 x 512^2 batch against a loop of 64 single-image floors, interleaved rounds."""
    shape, n = (512, 512), 64
    dog = DoG.from_band(BAND, ppd=PPD)
    grid = dog.grid(shape)
    rng = np.random.default_rng(0)

    def loop_of_floors() -> None:
        for _ in range(n):
            floor(shape, 1, grid, rng)

    cases = {
        "loop of floors": loop_of_floors,
        "batch workers=1": lambda: bandpass_noise(size_px=shape, ppd=PPD, band_cpd=BAND, n=n, rng=1, workers=1),
        "batch default": lambda: bandpass_noise(size_px=shape, ppd=PPD, band_cpd=BAND, n=n, rng=1),
        "batch spatial workers=1": lambda: bandpass_noise(size_px=shape, ppd=PPD, band_cpd=BAND, n=n, rng=1,
                                                          workers=1, synthesis="spatial"),
    }
    a = cases["batch workers=1"]()[0]
    assert a.tobytes() == cases["batch default"]()[0].tobytes()  # same bytes for any workers
    report("64 x 512x512 DoG batch", interleaved(cases, rounds), "loop of floors")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="smaller batches, fewer repeats in the table")
    ap.add_argument("--ratios-only", action="store_true", help="only the interleaved ratios, no table")
    ap.add_argument("--rounds", type=int, default=7, help="interleaved rounds (at least 7 for the targets)")
    args = ap.parse_args()
    single_case(512, 3 * args.rounds)
    single_case(2048, args.rounds)
    batch_vs_single_floors(args.rounds)
    print("\ntargets: one image <= 0.9x with workers=1 and <= 0.7x with the default threads; "
          "the batch <= 0.8x")
    if args.ratios_only:
        return
    dog = DoG.from_band(BAND, ppd=PPD)
    cases = [((512, 512), 1), ((512, 512), 64 if args.quick else 256), ((2048, 2048), 1),
             ((2048, 2048), 4 if args.quick else 16)]
    print(f"\nDoG band {BAND} cpd at {PPD} ppd: sigmas {dog.sigma_center_px:.3f}, "
          f"{dog.sigma_surround_px:.3f} px (best of a few calls)")
    print(f"{'case':>18} {'floor ms/img':>13} {'stimgen ms/img':>15} {'ratio':>6} "
          f"{'spatial ms/img':>15} {'spatial/stimgen':>16} {'peak MB/img':>12}")
    for shape, n in cases:
        row = run_case(dog, shape, n)
        print(f"{str(shape) + ' x' + str(n):>18} {row['floor'] * 1e3:13.2f} {row['ours'] * 1e3:15.2f} "
              f"{row['ours'] / row['floor']:6.2f} {row['spatial'] * 1e3:15.2f} "
              f"{row['spatial'] / row['ours']:16.1f} {row['mem'] / 2**20:12.2f}")
    print("output float32 is 1.0 MB per 512x512 image")


if __name__ == "__main__":
    main()
