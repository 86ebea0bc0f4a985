"""Shared input validation and rng handling.

Every public function validates its input at the boundary with these helpers, so that a
bad value raises one ``ValueError`` naming the parameter, the value and what is allowed.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from typing import Any

import numpy as np


def _number(name: str, value: Any) -> float:
    """``value`` as a float; text and booleans are not numbers (``"3"`` and ``True`` are
    refused rather than read as 3.0 and 1.0)."""
    if isinstance(value, (str, bytes, bool, np.bool_)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None


def positive(name: str, value: Any, *, allow_zero: bool = False) -> float:
    """Return ``value`` as a finite float > 0 (>= 0 with ``allow_zero``) or raise."""
    try:
        x = _number(name, value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(x) or x < 0 or (x == 0 and not allow_zero):
        allowed = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be finite and {allowed}, got {value!r}")
    return x


def positive_int(name: str, value: Any, *, minimum: int = 1) -> int:
    """Return ``value`` as an int >= ``minimum`` or raise (floats must be whole).

    Integers of any size (e.g. 128-bit seeds) are taken exactly, without a float detour.
    """
    if isinstance(value, (bool, np.bool_, str, bytes)):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if isinstance(value, (int, np.integer)):
        x = int(value)
    else:
        try:
            f = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}") from None
        if not math.isfinite(f) or f != int(f):
            raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
        x = int(f)
    if x < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return x


def in_range(
    name: str,
    value: Any,
    low: float,
    high: float,
    *,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> float:
    """Return ``value`` as a float inside the stated interval or raise."""
    try:
        x = _number(name, value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    ok_low = x >= low if low_inclusive else x > low
    ok_high = x <= high if high_inclusive else x < high
    if not (math.isfinite(x) and ok_low and ok_high):
        lb = "[" if low_inclusive else "("
        hb = "]" if high_inclusive else ")"
        raise ValueError(f"{name} must be in {lb}{low:g}, {high:g}{hb}, got {value!r}")
    return x


def choice(name: str, value: Any, choices: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``choices``; otherwise raise listing them."""
    options = list(choices)
    if value not in options:
        raise ValueError(
            f"{name} must be one of {', '.join(repr(c) for c in options)}; got {value!r}"
        )
    return value


def finite_array(name: str, array: Any, *, ndim: Iterable[int] | None = None) -> np.ndarray:
    """Return ``np.asarray(array)`` after checking its dimensionality and finiteness."""
    a = np.asarray(array)
    if ndim is not None:
        dims = tuple(ndim)
        if a.ndim not in dims:
            want = " or ".join(str(d) for d in dims)
            raise ValueError(f"{name} must have {want} dimensions, got shape {a.shape}")
    if a.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be a real numeric array, got dtype {a.dtype}")
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return a


def image_stack(name: str, images: Any) -> np.ndarray:
    """Validate an image ``(H, W)`` or a stack ``(N, H, W)`` of finite real values.

    3-D arrays are stacks. An array shaped like a colour image ``(H, W, 3|4)`` would be
    read as H images of W x 3 pixels, so that shape warns: put channels first, ``(C, H, W)``.
    """
    a = finite_array(name, images, ndim=(2, 3))
    if a.ndim == 3 and a.shape[-1] in (3, 4) and min(a.shape[:2]) > 8:
        warnings.warn(
            f"{name} of shape {a.shape} looks like a colour image (H, W, C); 3-D arrays are "
            "stacks (N, H, W) here: pass channels first, (C, H, W)",
            stacklevel=3,
        )
    return a


def pair(name: str, value: Any) -> tuple[float, float]:
    """Return a 2-sequence of numbers as a tuple of floats or raise."""
    if isinstance(value, (str, bytes)):
        raise ValueError(f"{name} must be a pair of numbers [a, b], got {value!r}")
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair of numbers [a, b], got {value!r}") from None
    return lo, hi


def rng(seed: Any) -> np.random.Generator:
    """Normalize ``seed`` (None, int, SeedSequence, Generator) to a Generator.

    A SeedSequence is copied (its entropy, spawn key and pool size; no children spawned):
    what is spawned from the generator (spectral synthesis spawns one seed per image) never
    advances the caller's sequence, so the same SeedSequence gives the same images every
    time, as an int does, and as its record (entropy and spawn key) regenerates them.
    """
    if isinstance(seed, np.random.SeedSequence):
        seed = np.random.SeedSequence(seed.entropy, spawn_key=seed.spawn_key, pool_size=seed.pool_size)
    return np.random.default_rng(seed)


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS tells, else all)."""
    import os

    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def thread_count(workers: Any) -> int:
    """Threads for ``workers``: the available cores when None; a positive count as given;
    negative counts from all cores, as in scipy.fft (-1: all of them, -2: all but one).

    Raises
    ------
    ValueError
        ``workers`` is 0, a bool or not an integer.
    """
    import os

    if workers is None:
        return available_cores()
    if isinstance(workers, (bool, np.bool_)) or not isinstance(workers, (int, np.integer)) or workers == 0:
        raise ValueError(f"workers must be a non-zero integer (negative: all cores but |workers| - 1), "
                         f"got {workers!r}")
    w = int(workers)
    return w if w > 0 else max(1, (os.cpu_count() or 1) + 1 + w)
