"""Benchmark stimgen.dataset_stats against decode-only throughput (P3), ratios from one run.

Generates ~2,000 RGB PNG/JPEG files of mixed sizes (64..384 px a side) in a temporary
folder, then measures with the same number of processes and the same partitioning:
  * decode only: Pillow decode (stimgen.io.read_image) of every file, no statistics
  * stimgen.dataset_stats(folder, jobs=J)
Targets: >= 90% of the decode-only throughput with 1 process and >= 95% with 2 processes
(the median of the paired wall-time ratios); constant memory (numpy peak for 1/4 of the
files vs all of them); exact to 1e-12 against an exact integer ground truth.

The machine is shared and noisy: each measurement is repeated (decode-only and
dataset_stats interleaved, alternating which goes first) and reported three ways: the
ratio of the best wall times, the median of the paired wall-time ratios, and the ratio of
the CPU times (this process plus its worker processes). A last, finer comparison alternates
decode-only and statistics on each partition of files in this process (paired seconds
apart, so load from other jobs hits both alike) and reports the median ratio.

Run: python benchmarks/bench_datastats.py [N_FILES [ROUNDS]]   (default 2000 7)
"""

from __future__ import annotations

import math
import resource
import sys
import tempfile
import time
import tracemalloc
from concurrent.futures import ProcessPoolExecutor
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

from stimgen import dataset_stats
from stimgen.datastats import _file_list, _partitions, _stats_of_files, _task_size
from stimgen.io import read_image


def make_files(folder: Path, n: int) -> None:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:384, 0:384]
    textures = []  # smooth gradients plus noise: realistic file sizes and decode costs
    for _ in range(8):
        base = np.sin(xx / rng.uniform(5, 60)) + np.cos(yy / rng.uniform(5, 60))
        img = 128 + 50 * base[..., None] * rng.uniform(0.2, 1, 3) + rng.normal(0, 8, (384, 384, 3))
        textures.append(np.clip(img, 0, 255).astype(np.int16))
    for i in range(n):
        h, w = (int(v) for v in rng.integers(64, 385, 2))
        y, x = int(rng.integers(0, 385 - h)), int(rng.integers(0, 385 - w))
        crop = textures[i % 8][y : y + h, x : x + w] + int(rng.integers(-60, 61))
        img = np.clip(crop, 0, 255).astype(np.uint8)
        if i % 2:
            Image.fromarray(img).save(folder / f"im{i:05d}.jpg", quality=90)
        else:
            Image.fromarray(img).save(folder / f"im{i:05d}.png", compress_level=1)


def _decode(paths):
    n = 0
    for p in paths:
        n += read_image(p).shape[0]
    return n


def decode_only(files, jobs):
    parts = _partitions(files, _task_size(len(files), jobs, None))
    if jobs == 1:
        for part in parts:
            _decode(part)
        return
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        list(pool.map(_decode, parts))


def exact_truth(files):
    """Exact per-channel mean and std (scale 1/255) from integer sums."""
    s1 = np.zeros(3, dtype=object)
    s2 = np.zeros(3, dtype=object)
    n = 0
    for p in files:
        a = read_image(p).reshape(-1, 3).astype(np.int64)
        s1 += a.sum(axis=0).astype(object)
        s2 += (a * a).sum(axis=0).astype(object)
        n += a.shape[0]
    mean = [Fraction(int(x), n * 255) for x in s1]
    var = [Fraction(int(q), n * 255**2) - m * m for q, m in zip(s2, mean, strict=True)]
    return np.array([float(m) for m in mean]), np.array([math.sqrt(v) for v in var])


def timed(f):
    t0 = time.perf_counter()
    f()
    return time.perf_counter() - t0


def cpu_seconds():
    """CPU time of this process and of its finished (joined) child processes."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def measure(f):
    """(wall seconds, CPU seconds) of one call."""
    c0 = cpu_seconds()
    t = timed(f)
    return t, cpu_seconds() - c0


def compare(files, folder, jobs, rounds):
    """Interleaved runs of decode-only and dataset_stats: lists of (wall, cpu) per run."""
    dec, st = [], []
    for r in range(rounds):
        runs = [(dec, lambda: decode_only(files, jobs)),
                (st, lambda: dataset_stats(folder, jobs=jobs))]
        for out, f in runs if r % 2 == 0 else runs[::-1]:
            out.append(measure(f))
    return np.array(dec), np.array(st)


def block_paired(files, size=125, rounds=2):
    """Median over partitions of t(decode only) / t(statistics), alternating which runs first."""
    ratios = []
    for r in range(rounds):
        for i, part in enumerate(_partitions(files, size)):
            first_decode = (i + r) % 2 == 0
            t_dec = t_st = 0.0
            for which in ("decode", "stats") if first_decode else ("stats", "decode"):
                if which == "decode":
                    t_dec = timed(lambda p=part: _decode(p))
                else:
                    t_st = timed(lambda p=part: _stats_of_files(p, 1 / 255, "raise"))
            ratios.append(t_dec / t_st)
    return float(np.median(ratios)), float(np.percentile(ratios, 25)), float(np.percentile(ratios, 75))


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 7
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t_gen = timed(lambda: make_files(folder, n))
        files = _file_list(folder)
        mb = sum(Path(f).stat().st_size for f in files) / 1e6
        print(f"{n} files ({mb:.0f} MB on disk) generated in {t_gen:.1f} s")
        dataset_stats(files[:50])  # warm up imports and the file cache
        decode_only(files, 1)
        for jobs, target in ((1, 0.90), (2, 0.95)):
            dec, st = compare(files, folder, jobs, rounds)
            best = dec[:, 0].min() / st[:, 0].min()
            ratios = dec[:, 0] / st[:, 0]
            paired = np.median(ratios)
            cpu = dec[:, 1].sum() / st[:, 1].sum()
            print(f"jobs={jobs}: decode only {n / np.median(dec[:, 0]):5.0f} files/s, dataset_stats "
                  f"{n / np.median(st[:, 0]):5.0f} files/s -> {paired:6.1%} of decode throughput "
                  f"(median of {rounds} paired rounds; target >= {target:.0%})")
            print(f"        paired wall ratios {', '.join(f'{x:.0%}' for x in ratios)} (range "
                  f"{ratios.min():.1%}-{ratios.max():.1%}); best wall times {best:.1%}; "
                  f"CPU time ratio {cpu:.1%}")
        med, q1, q3 = block_paired(files)
        print(f"per partition (125 files, 1 process, paired): statistics at {med:.1%} of "
              f"decode throughput (median; quartiles {q1:.1%}-{q3:.1%})")
        s = dataset_stats(folder, jobs=2)
        mean, std = exact_truth(files)
        print(f"exactness: max rel error mean {np.abs(s.mean / mean - 1).max():.1e}, "
              f"std {np.abs(s.std / std - 1).max():.1e} (target <= 1e-12)")
        print(f"mean {np.round(s.mean, 4).tolist()}, std {np.round(s.std, 4).tolist()}, "
              f"mean of per-image stds {np.round(s.mean_of_stds, 4).tolist()}")
        peaks = []
        for subset in (files[: n // 4], files):
            tracemalloc.start()
            dataset_stats(subset)
            peaks.append(tracemalloc.get_traced_memory()[1])
            tracemalloc.stop()
        print(f"memory (numpy/python peak, sequential): {len(files) // 4} files "
              f"{peaks[0] / 1e6:.1f} MB, {len(files)} files {peaks[1] / 1e6:.1f} MB "
              f"(constant: ratio {peaks[1] / peaks[0]:.2f})")


if __name__ == "__main__":
    main()
