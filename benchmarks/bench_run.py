"""Benchmark ``stimgen run`` against a hand-written script doing the same work, in the same run.

The baseline (``BASELINE`` below) is what a careful user would write without the runner:
read the YAML, draw every stimulus with the same library calls and seeds (so its files are
byte-identical to the run's, which is checked), write the ``.npy`` and PNG files, hash
them, check each stimulus' spectrum against its design, pool the spectra per condition,
write a JSON manifest and draw the same figures (per-condition spectra and a contact sheet,
with the same plotting functions). Both are timed as whole processes (``python -m stimgen
run`` vs ``python -c BASELINE``), alternating, and the median of ``--repeats`` runs is
compared.

Two sets:

1. the shipped ``experiments/masks_octave_bands.yaml`` (60 masks of 287 x 287 px):
   ``run --jobs 1`` vs the baseline, and the default ``--jobs auto`` vs ``--jobs 1``;
2. ``--big-n`` stimuli (default 1,000) of 512 x 512 px: ``--jobs 2`` vs ``--jobs 1``.

Machines are noisy (and shared ones more so): read the ratios, run it twice.

Usage: python benchmarks/bench_run.py [--repeats 3] [--big-n 1000] [--skip-big]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "experiments" / "masks_octave_bands.yaml"

BIG = """\
name: big
seed: 1
display: {{ppd: 32}}
stimulus: {{size_px: {size}, rms_contrast: 0.2}}
noise: {{family: log_gaussian, band_cpd: [2, 4]}}
repeats: {n}
output: {{formats: [npy, png8], dither: noisy-bit}}
"""

BASELINE = r'''
import hashlib, io, json, sys
from pathlib import Path
import numpy as np
from stimgen import plotting
from stimgen.contrast import clip_contrast, quantize, set_rms_contrast
from stimgen.experiment import load_experiment
from stimgen.geometry import ViewingGeometry, resolve_shape
from stimgen.io import png_bytes
from stimgen.noise import filtered_noise, make_filter
from stimgen.spectrum import RadialSpectrum, compare_to_design, default_tolerance, measure_band, radial_spectrum

exp = load_experiment(sys.argv[1])
out = Path(sys.argv[2])
d = exp["display"]
geo = ViewingGeometry.from_ppd(d["ppd"]) if d["ppd"] else ViewingGeometry(
    d["distance_cm"], d["screen_width_cm"], d["screen_width_px"], d["screen_height_px"])
ppd = geo.ppd
shape, size_deg = resolve_shape(size_px=exp["stimulus"]["size_px"], size_deg=exp["stimulus"]["size_deg"], ppd=ppd)
noise, stim = exp["noise"], exp["stimulus"]
conds = exp["conditions"] or [{}]
entries, summaries, examples, index = [], [], [], 0
out.mkdir()
for ci, cond in enumerate(conds):
    band = cond.get("band_cpd", noise["band_cpd"])
    filt = make_filter(noise["family"], ppd=ppd, band_cpd=band, level=noise["level"])
    folder = out / f"stimuli/c{ci:02d}"
    folder.mkdir(parents=True)
    powers, shown = [], []
    for r in range(exp["repeats"]):
        gen = np.random.default_rng(np.random.SeedSequence(exp["seed"], spawn_key=(index,)))
        img = filtered_noise(shape, filt, kind=noise["kind"], rng=gen, dtype=np.dtype(exp["output"]["dtype"]))
        img = set_rms_contrast(img, stim["rms_contrast"], mean=stim["mean"], out=img)
        img, frac = clip_contrast(img, limit=1.0, out=img, warn_above=None)
        buf = io.BytesIO()
        np.save(buf, img, allow_pickle=False)
        levels, _ = quantize(img, 8, dither=exp["output"]["dither"], gamma=None, rng=gen)
        files = {f"{r:04d}.npy": buf.getvalue(), f"{r:04d}.png": png_bytes(levels)}
        for name, data in files.items():
            (folder / name).write_bytes(data)
        spec = radial_spectrum(img, ppd=ppd, bins_per_octave=24)
        cmp = compare_to_design(measure_band(spec, ppd=ppd), filt, ppd=ppd, level=noise["level"],
                                tolerance=default_tolerance(1, shape))
        powers.append(spec.power)
        if r < 4:
            shown.append(img)
        entries.append({"index": index, "files": {n: hashlib.sha256(b).hexdigest() for n, b in files.items()},
                        "band_cpd": list(cmp["measured"]["band_cpd"]), "pass": bool(cmp["pass"]),
                        "clipped_fraction": float(frac)})
        index += 1
    per = np.asarray(powers)
    pooled = RadialSpectrum(freq_cpp=spec.freq_cpp, power=per.mean(0), power_std=per.std(0, ddof=1),
                            counts=spec.counts, n_images=len(per), shape_px=spec.shape_px, ppd=ppd)
    cmp = compare_to_design(measure_band(pooled, ppd=ppd), filt, ppd=ppd, level=noise["level"],
                            tolerance=default_tolerance(len(per), shape))
    summaries.append({"band_cpd": band, "measured": cmp["measured"], "pass": bool(cmp["pass"])})
    (out / "figures").mkdir(exist_ok=True)
    fig = plotting.new_figure(margins=(0.13, 0.12, 0.97, 0.82))
    plotting.plot_condition_spectrum(pooled, design=filt, level=noise["level"], title=f"condition {ci}",
                                     passed=cmp["pass"], ax=fig.add_subplot())
    plotting.save(fig, out / f"figures/spectrum_c{ci:02d}.png", compress_level=1)
    examples.append((f"{ci}", shown))
fig = plotting.plot_contact_sheet(examples, size_deg=size_deg, lean=True)
plotting.save(fig, out / "figures/contact_sheet.png", compress_level=1)
(out / "manifest.json").write_text(json.dumps({"experiment": exp, "conditions": summaries, "stimuli": entries}, default=str))
print(json.dumps([h for e in entries for h in e["files"].values()]))
'''


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    dt = time.perf_counter() - t0
    if res.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])} ... failed ({res.returncode}): {res.stderr.strip()[-500:]}")
    return dt, res.stdout


def stimgen_run(yaml: Path, out: Path, jobs: str | None, env: dict[str, str]) -> float:
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "stimgen", "run", str(yaml), "--out", str(out), "--no-progress"]
    if jobs is not None:
        cmd += ["--jobs", jobs]
    return timed(cmd, env)[0]


def baseline(yaml: Path, out: Path, env: dict[str, str]) -> tuple[float, list[str]]:
    shutil.rmtree(out, ignore_errors=True)
    dt, stdout = timed([sys.executable, "-c", BASELINE, str(yaml), str(out)], env)
    return dt, json.loads(stdout.strip().splitlines()[-1])


def median_of(fns: dict[str, object], repeats: int) -> dict[str, float]:
    """Run each timed function ``repeats`` times, alternating; the median seconds of each."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            times[k].append(fn())  # type: ignore[operator]
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3, help="timed runs of each (median)")
    ap.add_argument("--big-n", type=int, default=1000, help="stimuli of the large set")
    ap.add_argument("--big-size", type=int, default=512, help="image side of the large set, px")
    ap.add_argument("--skip-big", action="store_true", help="only the shipped set")
    args = ap.parse_args()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    from stimgen.experiment.execute import available_cores

    print(f"{available_cores()} cores available; {os.getloadavg()[0]:.1f} load average at start")
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        # the baseline makes the same files as the run
        _, hashes = baseline(SHIPPED, d / "base", env)
        stimgen_run(SHIPPED, d / "run", "1", env)
        m = json.loads((d / "run/manifest.json").read_text())
        same = hashes == [f["sha256"] for e in m["stimuli"] for f in e["files"]]
        print(f"shipped set {SHIPPED.name}: {m['n_stimuli']} stimuli of {m['shape_px'][0]} px; "
              f"baseline files byte-identical to the run's: {same}")
        t = median_of({
            "baseline": lambda: baseline(SHIPPED, d / "base", env)[0],
            "jobs 1": lambda: stimgen_run(SHIPPED, d / "run", "1", env),
            "default": lambda: stimgen_run(SHIPPED, d / "run", None, env),
        }, args.repeats)  # fmt: skip
        print(f"  baseline script {t['baseline']:.2f} s, stimgen run --jobs 1 {t['jobs 1']:.2f} s, "
              f"default (--jobs auto) {t['default']:.2f} s (medians of {args.repeats})")
        print(f"  run --jobs 1 / baseline = {t['jobs 1'] / t['baseline']:.2f} (target <= 1.25)")
        print(f"  default / --jobs 1 = {t['default'] / t['jobs 1']:.2f} (target <= 1.05)")
        if args.skip_big:
            return
        big = d / "big.yaml"
        big.write_text(BIG.format(n=args.big_n, size=args.big_size))
        t = median_of({
            "jobs 1": lambda: stimgen_run(big, d / "big", "1", env),
            "jobs 2": lambda: stimgen_run(big, d / "big", "2", env),
        }, max(1, args.repeats // 2))  # fmt: skip
        print(f"{args.big_n} stimuli of {args.big_size} px: --jobs 1 {t['jobs 1']:.1f} s, --jobs 2 {t['jobs 2']:.1f} s; "
              f"speed-up {t['jobs 1'] / t['jobs 2']:.2f}x (target >= 1.7 with 2 free cores)")


if __name__ == "__main__":
    main()
