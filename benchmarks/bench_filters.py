"""Benchmark: build and apply a DoG in the FFT domain vs a bare scipy.fft round trip.

Run: ``python benchmarks/bench_filters.py``. Prints, for float32 images of 512 x 512 and
2048 x 2048 and a (64, 512, 512) stack:

* ``apply (cached)``: :func:`stimgen.apply_filter` with the transfer grid already cached,
  as a ratio against ``irfft2(rfft2(x) * H)`` with a precomputed ``H`` (target <= 1.2x);
* ``build+apply (cold)``: the same with every cache cleared first (grid evaluated);
* the filter build time alone (evaluating the transfer on the grid), cold vs cached.

Times are the minimum of several repeats, measured in the same run (machines are noisy).

Then the cold start: in fresh processes (warmed at 2048 x 2048), the first
:func:`stimgen.bandpass_noise` call at 4096 x 4096 against a warm call at that size (target
<= 1.5x), median over interleaved rounds; and the transfer-grid evaluation (tiled, distinct
radii only) against evaluating ``filt.response`` on the whole grid, which it equals bit for bit.
Run ``python benchmarks/bench_filters.py --cold-only`` for the cold start alone.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

import numpy as np
from scipy import fft

from stimgen import filters
from stimgen.filters import DoG, apply_filter


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    rng = np.random.default_rng(0)
    dog = DoG.from_band((1, 5), ppd=35.8375)
    cases = [("512x512", (512, 512), 15), ("2048x2048", (2048, 2048), 5), ("64x512x512", (64, 512, 512), 3)]
    print(f"DoG s1 = {dog.sigma_center_px:.4f} px, s2 = {dog.sigma_surround_px:.4f} px, float32, "
          f"scipy.fft default workers")
    print(f"{'case':>12} {'bare fft':>10} {'apply':>10} {'ratio':>6} {'cold':>10} {'ratio':>6} "
          f"{'build cold':>11} {'build hit':>10}")
    for name, shape, repeat in cases:
        x = rng.standard_normal(shape).astype(np.float32)
        hw = shape[-2:]
        h = np.array(dog.grid(hw, dtype=np.float32))  # precomputed, outside the timing

        def bare(x=x, h=h, hw=hw):
            return fft.irfft2(fft.rfft2(x, axes=(-2, -1)) * h, s=hw, axes=(-2, -1))

        out = apply_filter(x, dog)
        assert out.dtype == np.float32
        np.testing.assert_allclose(out, bare(), atol=1e-5)

        t_bare = best(bare, repeat)
        t_apply = best(lambda x=x: apply_filter(x, dog), repeat)

        def cold(x=x):
            filters.clear_caches()
            return apply_filter(x, dog)

        t_cold = best(cold, repeat)

        def build_cold(hw=hw):
            filters.clear_caches()
            return dog.grid(hw)

        t_build_cold = best(build_cold, repeat)
        t_build_hit = best(lambda hw=hw: dog.grid(hw), repeat)
        print(f"{name:>12} {t_bare * 1e3:8.2f}ms {t_apply * 1e3:8.2f}ms {t_apply / t_bare:5.2f}x "
              f"{t_cold * 1e3:8.2f}ms {t_cold / t_bare:5.2f}x {t_build_cold * 1e3:9.2f}ms "
              f"{t_build_hit * 1e6:8.1f}us")


_COLD_CHILD = """
import sys, time
from stimgen import bandpass_noise
family = sys.argv[1]
def call(n):
    t = time.perf_counter()
    bandpass_noise(size_px=n, ppd=35.8375, band_cpd=(1, 4), family=family, rng=1)
    return time.perf_counter() - t
call(2048); call(2048)            # warm: imports, designs, FFT plans at another size
cold = call(4096)                  # first call at a new size: builds the transfer grid
warm = sorted(call(4096) for _ in range(3))[1]
print(cold, warm)
"""


def whole_grid(filt, shape: tuple[int, int]) -> np.ndarray:
    """The previous evaluation: ``filt.response`` on the whole float64 grid, then a cast."""
    fy, fx = filters.frequency_grid_cpp(shape, True)
    g = np.asarray(filt.response(fx, fy), dtype=np.float64)
    return np.ascontiguousarray(np.broadcast_to(g, (fy.shape[0], fx.shape[1])), dtype=np.float32)


def cold_start(rounds: int = 5) -> None:
    print("\ncold start at 4096 x 4096 (fresh processes warmed at 2048 x 2048; median of "
          f"{rounds} interleaved rounds)")
    print(f"{'family':>13} {'cold s':>8} {'warm s':>8} {'cold/warm':>10} {'grid: whole':>12} "
          f"{'tiled':>8} {'speed-up':>9}")
    families = ("dog", "log_gaussian", "butterworth")
    shape = (4096, 4096)
    res: dict[str, list[tuple[float, float, float]]] = {f: [] for f in families}
    for _ in range(rounds):
        for fam in families:  # interleaved: every family in every round
            out = subprocess.run([sys.executable, "-c", _COLD_CHILD, fam], capture_output=True,
                                 text=True, check=True).stdout.split()
            cold, warm = float(out[0]), float(out[1])
            res[fam].append((cold, warm, cold / warm))
    for fam in families:
        filt = filters.design_filter(fam, ppd=35.8375, band_cpd=(1, 4))
        ref = whole_grid(filt, shape)
        filters.clear_caches()
        assert np.array_equal(filt.grid(shape), ref)  # bit for bit
        t_whole = best(lambda filt=filt: whole_grid(filt, shape), 3)
        t_tiled = best(lambda filt=filt: (filters.clear_caches(), filt.grid(shape)), 3)
        cold = statistics.median(r[0] for r in res[fam])
        warm = statistics.median(r[1] for r in res[fam])
        ratio = statistics.median(r[2] for r in res[fam])
        print(f"{fam:>13} {cold:8.3f} {warm:8.3f} {ratio:9.2f}x {t_whole:11.3f}s {t_tiled:7.3f}s "
              f"{t_whole / t_tiled:8.1f}x")
    print("target: cold/warm <= 1.5")


if __name__ == "__main__":
    if "--cold-only" not in sys.argv:
        main()
    cold_start()
