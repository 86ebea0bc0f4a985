"""Make every figure the docs and the README show, into figures/.

Each topic has its own script ``docs/_fig_<topic>.py`` with ``make_figures(outdir)``;
this runs them all (or the topics named on the command line):

    python docs/make_figures.py            # all
    python docs/make_figures.py noise flow # some
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE.parent / "figures"


def topics() -> list[str]:
    return sorted(p.stem[len("_fig_"):] for p in HERE.glob("_fig_*.py"))


def main(argv: list[str]) -> int:
    OUT.mkdir(exist_ok=True)
    sys.path.insert(0, str(HERE))
    chosen = argv or topics()
    unknown = sorted(set(chosen) - set(topics()))
    if unknown:
        print(f"unknown topics {unknown}; available: {topics()}", file=sys.stderr)
        return 2
    for topic in chosen:
        module = importlib.import_module(f"_fig_{topic}")
        written = module.make_figures(OUT) or []
        if isinstance(written, dict):  # some topics return the numbers their page quotes
            print(f"{topic}: {written}")
            continue
        for path in written:
            print(f"{topic}: {Path(path).resolve().relative_to(OUT.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
