"""Per-condition summaries accumulated one stimulus at a time (nothing kept per stimulus).

A :class:`ConditionPool` takes each stimulus' manifest entry and the parts' extras
(:attr:`~stimgen.experiment.parts.Measured.extra`) as they arrive, and keeps only what the
condition's summary and figures need: the pass count and clipping statistics here, and
each active part's own accumulator (:meth:`~stimgen.experiment.parts.Part.pool`, fed by
:meth:`~stimgen.experiment.parts.Part.pool_add`): the noise part's pooled radial spectrum,
the motion part's measured velocities or pooled temporal spectrum. A part's summary and
its per-condition figure share its one accumulator.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # the plan imports the parts; these are for annotations only
    from .plan import Condition, Plan


class RunningMean:
    """Mean and spread of equally shaped arrays added one at a time (Welford, float64).

    Keeps two arrays, however many are added.
    """

    def __init__(self) -> None:
        self.n = 0
        self._mean: np.ndarray | None = None
        self._m2: np.ndarray | None = None

    def add(self, x: Any) -> None:
        x = np.asarray(x, dtype=np.float64)
        self.n += 1
        if self._mean is None or self._m2 is None:
            self._mean = x.copy()
            self._m2 = np.zeros_like(x)
            return
        delta = x - self._mean
        self._mean += delta / self.n
        self._m2 += delta * (x - self._mean)

    @property
    def mean(self) -> np.ndarray:
        if self._mean is None:
            raise ValueError("nothing was added yet")
        return self._mean

    @property
    def std(self) -> np.ndarray:
        """Standard deviation over the added arrays (ddof 1; zeros for a single one)."""
        if self._m2 is None:
            raise ValueError("nothing was added yet")
        return np.sqrt(self._m2 / (self.n - 1)) if self.n > 1 else np.zeros_like(self._m2)


class ConditionPool:
    """Running summary of one condition's stimuli, with each active part's accumulator.

    Parameters
    ----------
    plan : Plan
        The set's plan (its active parts make their accumulators).
    c : Condition
        The condition pooled.
    """

    def __init__(self, plan: Plan, c: Condition) -> None:
        self.plan, self.condition = plan, c
        self.clip_limit = float(plan.exp["stimulus"]["max_clipped_fraction"])
        self.n = 0
        self.n_pass = 0
        self.n_fail = 0
        self.clip_max = 0.0
        self.clip_sum = 0.0
        self.n_over_limit = 0
        self.parts: dict[str, Any] = {p.name: p.pool(plan, c) for p in plan.parts}

    def add(self, entry: dict[str, Any], extras: dict[str, Any]) -> None:
        """Count one stimulus: its manifest entry and the parts' extras (by part name)."""
        self.n += 1
        self.n_pass += entry["pass"] is True
        self.n_fail += entry["pass"] is False
        frac = float(entry["clipped_fraction"])
        self.clip_max = max(self.clip_max, frac)
        self.clip_sum += frac
        self.n_over_limit += frac > self.clip_limit
        for p in self.plan.parts:
            p.pool_add(self.plan, self.condition, self.parts[p.name], entry, extras.get(p.name))

    def pass_counts(self) -> dict[str, int]:
        """``n_pass``, ``n_fail`` and ``n_not_measurable`` (pass None) of the stimuli so far."""
        return {"n_pass": self.n_pass, "n_fail": self.n_fail, "n_not_measurable": self.n - self.n_pass - self.n_fail}

    def clipping(self) -> dict[str, Any]:
        """How much the condition's stimuli were clipped, against the allowed fraction."""
        return {
            "max_clipped_fraction": self.clip_max,
            "mean_clipped_fraction": self.clip_sum / self.n if self.n else 0.0,
            "limit": self.clip_limit,
            "n_over_limit": self.n_over_limit,
        }
