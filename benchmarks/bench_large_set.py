"""Peak memory of a large set: ``run`` and then ``verify`` of N stimuli, each in its own process.

Runs ``stimgen.run_experiment`` on N log-Gaussian (1-4 cpd) noise stimuli of S x S px
(default 100,000 of 32 x 32 px, ``jobs="auto"``) in a child process and reports the
resident-memory high-water mark of the main process and of the largest worker
(``VmHWM`` of ``/proc/self/status``, and ``resource.getrusage(RUSAGE_CHILDREN)`` for the
workers: an upper bound, as a child's ``ru_maxrss`` includes the parent's resident size at
the moment it was started), then does the same for ``verify_set`` on the written set. Wall times are printed beside them.

Usage: python benchmarks/bench_large_set.py [--n 100000] [--size 32] [--jobs auto] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
def main():
    what, out, n, size, jobs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    t0 = time.perf_counter()
    if what == "run":
        from stimgen.experiment import run_experiment
        exp = {"name": "large", "seed": 1, "display": {"ppd": 16}, "stimulus": {"size_px": size},
               "noise": {"family": "log_gaussian", "band_cpd": [1, 4]}, "repeats": n}
        m = run_experiment(exp, out, jobs=jobs if jobs == "auto" else int(jobs), progress=False)
        info = {"n_stimuli": m["n_stimuli"], "n_pass": m["n_pass"], "status": m["status"]}
    else:
        from stimgen.experiment import verify_set
        rep = verify_set(out)
        info = {"status": rep.status, "n_files": rep.n_files, "failures": rep.failures[:3]}
    info["seconds"] = time.perf_counter() - t0
    with open("/proc/self/status") as fh:  # this process' own high-water mark
        info["self_max_rss_mb"] = next(int(x.split()[1]) for x in fh if x.startswith("VmHWM:")) / 1024
    info["children_max_rss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps(info))
if __name__ == "__main__":
    main()
"""


def measure(what: str, out: Path, n: int, size: int, jobs: str) -> dict:
    res = subprocess.run([sys.executable, "-c", CHILD, what, str(out), str(n), str(size), jobs],
                         capture_output=True, text=True, check=True)  # fmt: skip
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--jobs", default="auto")
    ap.add_argument("--out", type=Path, help="keep the set here (default: a temporary folder)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        out = args.out or Path(d) / "large"
        t0 = time.perf_counter()
        run = measure("run", out, args.n, args.size, args.jobs)
        print(f"run    {args.n:,} stimuli of {args.size} x {args.size} px (jobs {args.jobs}): {run['seconds']:.0f} s; "
              f"peak RSS main {run['self_max_rss_mb']:.0f} MB, largest worker {run['children_max_rss_mb']:.0f} MB; "
              f"status {run['status']} ({run['n_pass']:,} pass)")
        ver = measure("verify", out, args.n, args.size, args.jobs)
        print(f"verify: {ver['seconds']:.0f} s; peak RSS {ver['self_max_rss_mb']:.0f} MB; status {ver['status']}, "
              f"{ver['n_files']:,} files {ver['failures']}")
        print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
