"""Benchmark: build and apply a DoG in the FFT domain vs a bare scipy.fft round trip.

Run: ``python benchmarks/bench_filters.py``. Prints, for float32 images of 512 x 512 and
2048 x 2048 and a (64, 512, 512) stack:

* ``apply (cached)``: :func:`stimgen.apply_filter` with the transfer grid already cached,
  as a ratio against ``irfft2(rfft2(x) * H)`` with a precomputed ``H`` (target <= 1.2x);
* ``build+apply (cold)``: the same with every cache cleared first (grid evaluated);
* the filter build time alone (evaluating the transfer on the grid), cold vs cached.

Times are the minimum of several repeats, measured in the same run (machines are noisy).
"""

from __future__ import annotations

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


if __name__ == "__main__":
    main()
