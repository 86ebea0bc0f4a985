"""Benchmark ``stimgen run``: wall time vs the sum of its parts, and stimuli/s for 1 and 2 jobs.

A set of N 512 x 512 px stimuli (float32 .npy + 8-bit PNG with noisy-bit dither, one
log-Gaussian 2-4 cpd band at 32 ppd) is generated with ``run_experiment`` at --jobs 1 and 2.
The parts are timed in the same run on a sample of stimuli, one by one, with the same
library calls a worker makes: noise generation (filter + RMS contrast + clipping), .npy
encoding, PNG quantization + encoding, sha256, writing the files, and the spectral check.
Their sum times N is the floor a one-process run cannot beat; the ratio shows the runner's
overhead (process start-up, manifest, figures). Machines are noisy: read the ratios.

Usage: python benchmarks/bench_run.py [--n 1000] [--size 512] [--sample 100]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from stimgen import experiment as ex
from stimgen.contrast import clip_contrast, quantize, set_rms_contrast
from stimgen.noise import filtered_noise, make_filter

YAML = """\
name: bench
seed: 1
display: {{ppd: 32}}
stimulus: {{size_px: {size}, rms_contrast: 0.2}}
noise: {{family: log_gaussian, band_cpd: [2, 4]}}
repeats: {n}
output: {{formats: [npy, png8], dither: noisy-bit}}
"""


def parts(size: int, sample: int, workdir: Path) -> dict[str, float]:
    """Seconds per stimulus of each step, timed one stimulus at a time."""
    from stimgen.io import png_bytes
    from stimgen.spectrum import compare_to_design, measure_band, radial_spectrum

    filt = make_filter("log_gaussian", ppd=32, band_cpd=[2, 4])
    t = dict.fromkeys(["generate", "npy_encode", "png8_encode", "sha256", "write", "spectrum"], 0.0)
    for i in range(sample):
        t0 = time.perf_counter()
        gen = np.random.default_rng(np.random.SeedSequence(1, spawn_key=(i,)))
        img = filtered_noise((size, size), filt, rng=gen)
        img = set_rms_contrast(img, 0.2, out=img)
        img, _ = clip_contrast(img, out=img, warn_above=None)
        t1 = time.perf_counter()
        buf = io.BytesIO()
        np.save(buf, img)
        npy = buf.getvalue()
        t2 = time.perf_counter()
        levels, _ = quantize(img, 8, dither="noisy-bit", rng=gen)
        png = png_bytes(levels)  # the encoder the runner uses
        t3 = time.perf_counter()
        hashlib.sha256(npy).hexdigest()
        hashlib.sha256(png).hexdigest()
        t4 = time.perf_counter()
        (workdir / f"{i}.npy").write_bytes(npy)
        (workdir / f"{i}.png").write_bytes(png)
        t5 = time.perf_counter()
        spec = radial_spectrum(img, ppd=32, bins_per_octave=24)
        compare_to_design(measure_band(spec, ppd=32), filt, ppd=32)
        t6 = time.perf_counter()
        for k, dt in zip(t, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5), strict=True):
            t[k] += dt
    return {k: val / sample for k, val in t.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000, help="stimuli per run")
    ap.add_argument("--size", type=int, default=512, help="image side in px")
    ap.add_argument("--sample", type=int, default=100, help="stimuli for timing the parts")
    args = ap.parse_args()
    print(f"{args.n} stimuli of {args.size} x {args.size} px, npy + png8; {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        y = d / "bench.yaml"
        y.write_text(YAML.format(size=args.size, n=args.n))
        (d / "parts").mkdir()
        per = parts(args.size, args.sample, d / "parts")
        floor = sum(per.values()) * args.n
        print("parts, ms per stimulus: " + ", ".join(f"{k} {1e3 * val:.1f}" for k, val in per.items()))
        print(f"sum of parts x {args.n}: {floor:.1f} s")
        walls = {}
        for jobs in (1, 2):
            t0 = time.perf_counter()
            m = ex.run_experiment(y, d / f"set{jobs}", jobs=jobs, progress=False)
            walls[jobs] = time.perf_counter() - t0
            assert m["n_stimuli"] == args.n
            print(f"stimgen run --jobs {jobs}: {walls[jobs]:.1f} s = {args.n / walls[jobs]:.1f} stimuli/s; "
                  f"wall / sum of parts = {walls[jobs] / floor:.2f}")
        same = all(
            (d / "set1" / e["file"]).read_bytes() == (d / "set2" / e["file"]).read_bytes()
            for e in m["stimuli"][:: max(1, args.n // 50)]
        )
        print(f"speed-up 2 jobs vs 1: {walls[1] / walls[2]:.2f}x; files identical across jobs: {same}")


if __name__ == "__main__":
    main()
