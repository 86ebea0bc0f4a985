"""Memory and disk a run will need, estimated before anything is generated.

A plan of 100,000 x 100,000 px images, ten million repeats or a million frames per movie
would end in ``MemoryError`` half-way, fill the disk, or take the machine down. The
estimates below are checked against what the machine has *now* (``MemAvailable`` of
``/proc/meminfo``, the free space of the output's parent folder) before the run starts,
and a plan that does not fit is refused with both numbers (``ValueError``).

The estimates are upper bounds measured on the generation path (tracemalloc peaks of
:func:`stimgen.experiment.draw._entry`): about 58 bytes per pixel of a still image in
float64 (filter, FFT, contrast, quantization and encoded files held at once; 64 is used),
about 28 bytes per pixel-frame of a movie plus the spatial work of one frame; each process
also holds about 200 MB of interpreter and libraries.
"""

from __future__ import annotations

import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Resident memory of one process before it holds any stimulus (Python, numpy, scipy, stimgen), bytes.
PROCESS_BASE_BYTES = 200 * 2**20
#: Peak working memory per pixel of a still image being generated, encoded and measured, bytes.
STILL_BYTES_PER_PX = 64
#: Peak working memory per pixel-frame of a movie (plus the spatial work of one frame), bytes.
MOVIE_BYTES_PER_PX = 32
#: Bytes per pixel of each file format on disk (PNG of incompressible noise: its raw samples;
#: LZW expands incompressible noise up to about 1.5x for a GIF); npy is the output dtype.
FILE_BYTES_PER_PX = {"png8": 1, "png16": 2, "gif": 2, "linear8": 1, "bitstealing": 3, "mono++": 3, "m16": 3}
#: Extra working memory per pixel of a set encoded through a display model, bytes.
DISPLAY_BYTES_PER_PX = 24
#: Manifest entry of one stimulus on disk (JSON), bytes (a generous bound).
ENTRY_BYTES = 4096
#: Figures of a set (spectra, contact sheet, velocities), bytes.
FIGURES_BYTES = 8 * 2**20


@dataclass(frozen=True)
class Budget:
    """What a run will need: memory per process, processes, and disk (bytes)."""

    memory_per_process: int
    processes: int
    main_extra: int  # what the main process holds besides a worker's share (examples for figures)
    disk: int

    @property
    def memory(self) -> int:
        """Memory of the whole run: every process at its peak at once."""
        return self.memory_per_process * self.processes + self.main_extra + (
            PROCESS_BASE_BYTES if self.processes > 1 else 0
        )


def estimate(plan: Any, processes: int) -> Budget:
    """The memory and disk a run of ``plan`` with ``processes`` worker processes needs.

    Parameters
    ----------
    plan : stimgen.experiment.plan.Plan
    processes : int
        Worker processes (1: the run happens in the calling process).

    Returns
    -------
    Budget
    """
    h, w = plan.shape
    frames = plan.n_frames or 1
    itemsize = 8 if plan.exp["output"]["dtype"] == "float64" else 4
    px = h * w
    if plan.movie:
        work = MOVIE_BYTES_PER_PX * frames * px + STILL_BYTES_PER_PX * px
    else:
        work = STILL_BYTES_PER_PX * px
    if (plan.exp.get("display") or {}).get("model") is not None:
        work += DISPLAY_BYTES_PER_PX * px  # the request in float64, its luminance, the decoded contrast
    per_file = 0
    for fmt in plan.exp["output"]["formats"]:
        per_file += FILE_BYTES_PER_PX.get(fmt, itemsize) * frames * px
        per_file += 128 + 16 * max(h, 1) * (frames if fmt == "gif" else 1)  # headers, PNG row filters
    per_file += ENTRY_BYTES
    n_examples = plan.exp["output"]["examples_per_condition"] if plan.exp["output"]["figures"] else 0
    examples = itemsize * px * min(n_examples, max(c.repeats for c in plan.conditions)) * len(plan.conditions)
    return Budget(
        memory_per_process=PROCESS_BASE_BYTES + work,
        processes=max(1, int(processes)),
        main_extra=examples,
        disk=per_file * plan.n + FIGURES_BYTES,
    )


def fitting_processes(budget: Budget, processes: int) -> int:
    """The most worker processes, up to ``processes``, whose run fits in the available memory."""
    mem = available_memory()
    if mem is None or processes <= 1:
        return max(1, processes)
    while processes > 1 and Budget(budget.memory_per_process, processes, budget.main_extra, budget.disk).memory > mem:
        processes -= 1
    return processes


def available_memory() -> int | None:
    """``MemAvailable`` of ``/proc/meminfo`` in bytes (None where the kernel does not say)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def free_disk(path: str | os.PathLike) -> tuple[int, Path]:
    """Free bytes on the filesystem that holds ``path`` (or its nearest existing ancestor)."""
    p = Path(path).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return shutil.disk_usage(p).free, p


def fmt_bytes(n: float) -> str:
    """``1.5 GB`` (powers of 1000, as disks and ``df -H`` count)."""
    for unit in ("bytes", "kB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1000 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.3g} {unit}"
        n /= 1000
    raise AssertionError("unreachable")  # pragma: no cover


def check(budget: Budget, out_parent: str | os.PathLike, *, what: str) -> None:
    """Refuse a run that needs more memory or disk than the machine has now.

    Parameters
    ----------
    budget : Budget
        From :func:`estimate`.
    out_parent : path
        Where the set will be written (its filesystem's free space counts).
    what : str
        The set, for the message (e.g. ``"masks.yaml: 60 stimuli of 287 x 287 px"``).

    Raises
    ------
    ValueError
        Naming both numbers: what the run needs and what is available.
    """
    mem = available_memory()
    if mem is not None and budget.memory > mem:
        per = ""
        if budget.processes > 1:
            per = (f" ({budget.processes} worker processes of {fmt_bytes(budget.memory_per_process)} each, "
                   "plus the main process)")  # fmt: skip
        hint = "fewer jobs, " if budget.processes > 1 else ""
        raise ValueError(
            f"{what} needs about {fmt_bytes(budget.memory)} of memory{per} but "
            f"{fmt_bytes(mem)} is available (MemAvailable in /proc/meminfo); use smaller stimuli, "
            f"fewer frames, {hint}or turn the budget check off to try anyway (budget_check=False; "
            "stimgen run --no-budget-check)"
        )
    free, where = free_disk(out_parent)
    if budget.disk > free:
        raise ValueError(
            f"{what} needs about {fmt_bytes(budget.disk)} of disk but {fmt_bytes(free)} is free on "
            f"{where}; use fewer or smaller stimuli, fewer formats, another output folder, or turn the "
            "budget check off to try anyway (budget_check=False; stimgen run --no-budget-check)"
        )


def one_frame_fits(shape: tuple[int, int]) -> None:
    """Refuse to allocate one float64 frame of ``shape`` (with its FFT work) beyond free memory."""
    mem = available_memory()
    need = STILL_BYTES_PER_PX * math.prod(int(s) for s in shape)
    if mem is not None and need > mem:
        raise ValueError(
            f"one frame of {shape[0]} x {shape[1]} px needs about {fmt_bytes(need)} of memory "
            f"but {fmt_bytes(mem)} is available (MemAvailable in /proc/meminfo); use a smaller stimulus"
        )
