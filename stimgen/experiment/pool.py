"""Per-condition summaries accumulated one stimulus at a time (nothing kept per stimulus).

A :class:`ConditionPool` takes each stimulus' manifest entry and radial power spectrum as
it arrives and keeps only what the condition's summary and figures need: the pooled
spectrum (running mean and sum of squared deviations, Welford's update, in float64), the
pass count, clipping statistics, and for movies the measured velocities (two numbers per
movie, for the median). The per-condition figure and the summary share the one pooled
spectrum.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class ConditionPool:
    """Running summary of one condition's stimuli.

    Parameters
    ----------
    clip_limit : float
        ``stimulus.max_clipped_fraction``: clipped fractions above it are counted.
    """

    def __init__(self, clip_limit: float) -> None:
        self.clip_limit = float(clip_limit)
        self.n = 0
        self.n_pass = 0
        self._mean: np.ndarray | None = None
        self._m2: np.ndarray | None = None
        self.clip_max = 0.0
        self.clip_sum = 0.0
        self.n_over_limit = 0
        self.motion: dict[str, Any] | None = None  # the first entry's requested motion
        self._velocity: list[tuple[float, float]] = []  # measured deg/s of each checked movie
        self._speed_pass: list[bool] = []
        self._spectrum: Any = None

    def add(self, entry: dict[str, Any], power: np.ndarray) -> None:
        """Count one stimulus: its manifest entry and its radial power spectrum."""
        x = np.asarray(power, dtype=np.float64)
        self.n += 1
        if self._mean is None:
            self._mean = x.copy()
            self._m2 = np.zeros_like(x)
        else:
            delta = x - self._mean
            self._mean += delta / self.n
            self._m2 += delta * (x - self._mean)  # type: ignore[operator]
        self._spectrum = None
        self.n_pass += bool(entry["pass"])
        frac = float(entry["clipped_fraction"])
        self.clip_max = max(self.clip_max, frac)
        self.clip_sum += frac
        self.n_over_limit += frac > self.clip_limit
        if "speed_deg_s" in entry:
            if self.motion is None:
                self.motion = {k: entry[k] for k in ("speed_deg_s", "direction_deg", "velocity_deg_s")}
            check = entry.get("speed_check")
            if check is not None:
                vx, vy = check["measured"]["velocity_deg_s"]
                self._velocity.append((float(vx), float(vy)))
                self._speed_pass.append(bool(check["pass"]))

    @property
    def power_mean(self) -> np.ndarray:
        if self._mean is None:
            raise ValueError("the condition has no stimuli yet")
        return self._mean

    @property
    def power_std(self) -> np.ndarray:
        """Standard deviation over repeats (ddof 1; zeros for a single stimulus)."""
        if self._m2 is None:
            raise ValueError("the condition has no stimuli yet")
        return np.sqrt(self._m2 / (self.n - 1)) if self.n > 1 else np.zeros_like(self._m2)

    def spectrum(self, plan: Any) -> Any:
        """The condition's pooled :class:`~stimgen.spectrum.RadialSpectrum` (cached)."""
        if self._spectrum is None:
            from .measure import _pooled_spectrum

            self._spectrum = _pooled_spectrum(plan, self.power_mean, self.power_std, self.n)
        return self._spectrum

    def clipping(self) -> dict[str, Any]:
        """How much the condition's stimuli were clipped, against the allowed fraction."""
        return {
            "max_clipped_fraction": self.clip_max,
            "mean_clipped_fraction": self.clip_sum / self.n if self.n else 0.0,
            "limit": self.clip_limit,
            "n_over_limit": self.n_over_limit,
        }

    @property
    def velocities_deg_s(self) -> np.ndarray:
        """Measured velocities ``(vx, vy)`` in deg/s of the checked movies, shape (K, 2)."""
        return np.asarray(self._velocity, dtype=np.float64).reshape(-1, 2)

    @property
    def speed_passed(self) -> list[bool]:
        return list(self._speed_pass)
