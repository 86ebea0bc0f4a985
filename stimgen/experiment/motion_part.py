"""The ``motion`` part: the noise as a movie, checked by its measured velocity or temporal band.

Section ``motion`` (optional; with it stimuli are ``(T, H, W)`` movies): frame rate,
length (``n_frames`` or ``duration_s``) and a ``model``:

* ``drift`` (the default): the noise moves at a velocity (``speed_deg_s``,
  ``direction_deg``; ``refresh_frames`` for dynamic noise), drawn by
  :func:`stimgen.motion.drifting_noise`; each movie's velocity is measured with optical
  flow (:func:`stimgen.motion.verify_motion`).
* ``spatiotemporal``: the noise is band-limited in time too (``temporal_band_hz``,
  ``temporal_family``), drawn by :func:`stimgen.motion.spatiotemporal_noise`; the temporal
  band is measured from the pooled temporal power spectrum (Hz), per movie where one movie
  suffices and over each condition's movies.

Conditions may vary ``speed_deg_s``, ``direction_deg``, ``refresh_frames`` (drift) and
``temporal_band_hz`` (spatiotemporal). The part draws the condition's noise itself
(``supersedes`` the noise part's drawing).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._yamlschema import BAD, Checker, format_path
from .measure import (
    close,
    close_abs,
    fmt_num,
    speed_check,
    speed_summary,
    temporal_check,
    temporal_power,
)
from .noise_part import band_source
from .parts import BasePart, Drawing, Measured, elsewhere, register
from .plan import Condition, Plan
from .pool import RunningMean

MODELS = ("drift", "spatiotemporal")
MOTION_DEFAULTS: dict[str, Any] = {
    "model": "drift",
    "speed_deg_s": None,
    "direction_deg": 0.0,
    "frame_rate_hz": None,
    "duration_s": None,
    "n_frames": None,
    "refresh_frames": None,
    "allow_aliasing": False,
    "temporal_band_hz": None,
    "temporal_family": "butterworth",
}
MOTION_PARAM_KEYS = ("speed_deg_s", "direction_deg", "refresh_frames")  # drift: may vary by condition
TEMPORAL_PARAM_KEYS = ("temporal_band_hz",)  # spatiotemporal: may vary by condition
DRIFT_ONLY = ("speed_deg_s", "direction_deg", "refresh_frames", "allow_aliasing")
SPATIOTEMPORAL_ONLY = ("temporal_band_hz", "temporal_family")
#: a single movie's temporal band is recorded when its tolerance is at most this (relative)
ONE_MOVIE_LIMIT = 0.25
MOTION_ENTRY_KEYS = (
    "frame_rate_hz", "n_frames", "duration_s", "speed_deg_s", "direction_deg", "velocity_deg_s",
    "speed_px_per_frame", "velocity_px_per_frame", "refresh_frames", "temporal_aliasing",
)  # fmt: skip


def n_frames_of(motion: Mapping[str, Any]) -> int:
    """Frames of a resolved motion section (``duration_s`` rounded as drifting_noise does)."""
    if motion["n_frames"] is not None:
        return int(motion["n_frames"])
    return round(motion["duration_s"] * motion["frame_rate_hz"])


def drift_kwargs(p: Mapping[str, Any], motion: Mapping[str, Any], ppd: float, n_frames: int) -> dict[str, Any]:
    """Keyword arguments of :func:`stimgen.motion.drifting_noise` for a motion condition."""
    return {
        "ppd": ppd, "speed_deg_s": p["speed_deg_s"], "direction_deg": p["direction_deg"],
        "frame_rate_hz": motion["frame_rate_hz"], "n_frames": n_frames,
        "refresh_frames": p["refresh_frames"], "band_cpd": p["band_cpd"], "peak_cpd": p["peak_cpd"],
        "octaves": p["octaves"], "family": p["family"], "level": p["level"], "order": p["order"],
        "orientation_deg": p["orientation_deg"], "orientation_bandwidth_deg": p["orientation_bandwidth_deg"],
        "alpha": p["alpha"], "rms_contrast": p["rms_contrast"], "mean": p["mean"], "kind": p["kind"],
        "allow_aliasing": motion["allow_aliasing"],
    }  # fmt: skip


_PROBES: dict[str, tuple[str | None, list[str]]] = {}


def probe(p: Mapping[str, Any], motion: Mapping[str, Any], shape: tuple[int, int], ppd: float) -> tuple[str | None, list[str]]:
    """Ask drifting_noise itself whether a condition can move: (its error, its warnings).

    One frame is made (cached per parameter set) so that the temporal-aliasing rules and
    messages are exactly those of :mod:`stimgen.motion`; the aliasing error is raised there
    before any noise is drawn.
    """
    from ..motion import drifting_noise

    key = json.dumps([{k: p[k] for k in sorted(p)}, motion, list(shape), ppd], sort_keys=True, default=str)
    if key not in _PROBES:
        if len(_PROBES) > 256:
            _PROBES.clear()
        err = None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                from .budget import one_frame_fits

                one_frame_fits(shape)  # the probe draws a frame: refuse one beyond memory first
                drifting_noise(size_px=shape, rng=0, **drift_kwargs(p, motion, ppd, 1))
            except ValueError as exc:
                err = " ".join(str(exc).split())
        found = [" ".join(str(w.message).split()) for w in caught if issubclass(w.category, UserWarning)]
        _PROBES[key] = (err, found)
    return _PROBES[key]


def no_negative_zero(x: Any) -> Any:
    """``-0.0`` -> ``0.0`` (e.g. the vertical velocity of rightward motion), in lists too."""
    if isinstance(x, list | tuple):
        return [no_negative_zero(y) for y in x]
    return x + 0.0 if isinstance(x, float) else x


def speed_text(speed: Mapping[str, Any]) -> str:
    """``speed 2.001 deg/s at 90.0 deg (requested 2 deg/s at 90 deg)`` for a condition summary."""
    want = f"{speed['requested_speed_deg_s']:g} deg/s"
    if speed["requested_direction_deg"] is not None:
        want += f" at {speed['requested_direction_deg']:g} deg"
    if speed["measured_speed_deg_s"] is None:
        return f"speed not measurable (dynamic noise, a new sample every frame); requested {want}"
    got = f"speed {speed['measured_speed_deg_s']:.3f} deg/s"
    if speed["direction_error_deg"] is not None:  # near the requested one: 359.98 shows as 0.0
        got += f" at {round(speed['requested_direction_deg'] + speed['direction_error_deg'], 1) + 0.0:.1f} deg"
    elif speed["measured_direction_deg"] is not None:
        got += f" at {speed['measured_direction_deg']:.1f} deg"
    return f"{got} (requested {want})"


class MotionPart(BasePart):
    """Movies of the noise: drifting (velocity checked by optical flow) or spatiotemporal
    (temporal band checked on the pooled temporal spectrum)."""

    name = "motion"
    defaults = MOTION_DEFAULTS
    condition_keys = (*MOTION_PARAM_KEYS, *TEMPORAL_PARAM_KEYS)
    nullable = ("refresh_frames", "speed_deg_s", "temporal_band_hz")
    tolerances = {
        "speed_tolerance": (0.05, {"low": 0}),
        "speed_atol_px_per_frame": (0.01, {"low": 0}),
        "min_reliable_fraction": (0.5, {"low": 0, "high": 1}),
        "temporal_edge_tolerance": (None, {"low": 0, "low_open": True}),
    }
    movie = True
    supersedes = ("noise",)
    checks = "motion"
    absent_hint = "{} varies a motion stimulus; add a motion section (frame_rate_hz, and n_frames or duration_s)"
    example = {"frame_rate_hz": 60, "n_frames": 8, "speed_deg_s": 1.0}

    # -- keys and their checks ----------------------------------------------------------
    def check_value(self, ck: Checker, path: tuple, key: str, value: Any) -> Any:
        if value is None and key in self.nullable:
            return None
        if key == "speed_deg_s":
            return ck.number(path, value, low=0)
        if key == "direction_deg":
            return ck.number(path, value)
        if key == "refresh_frames":
            return ck.number(path, value, low=1, integer=True)
        if key == "temporal_band_hz":
            band = ck.numbers(path, value, length=2, low=0)
            if band is not BAD and band[1] <= band[0]:
                ck.add(path, f"must be [low, high] in Hz with low < high (low 0: a temporal low-pass), got {value!r}")
                return BAD
            return band
        raise AssertionError(key)  # pragma: no cover

    def check_section(self, ck: Checker, value: Any) -> Any:
        """Model, frame rate, length, and the velocity or temporal band shared by all conditions."""
        from ..motion import _TEMPORAL_FAMILIES  # the generator's own list

        m = ck.mapping(("motion",), value, MOTION_DEFAULTS, required=("frame_rate_hz",), elsewhere=elsewhere())
        if m is BAD:
            return BAD
        out = dict(MOTION_DEFAULTS)
        path = ("motion",)
        if m.get("model") is not None:
            out["model"] = ck.choice((*path, "model"), m["model"], MODELS)
        fps = BAD
        if m.get("frame_rate_hz") is not None:
            fps = out["frame_rate_hz"] = ck.number((*path, "frame_rate_hz"), m["frame_rate_hz"], low=0, low_open=True)
        else:
            out["frame_rate_hz"] = BAD
        given = [k for k in ("duration_s", "n_frames") if m.get(k) is not None]
        if len(given) != 1:
            ck.add(path, "give exactly one of duration_s (s) and n_frames (the movie's length)", key=True)
            out["n_frames"] = BAD
        elif given == ["n_frames"]:
            out["n_frames"] = ck.number((*path, "n_frames"), m["n_frames"], low=2, integer=True)
        else:
            dur = out["duration_s"] = ck.number((*path, "duration_s"), m["duration_s"], low=0, low_open=True)
            if dur is not BAD and fps is not BAD and round(dur * fps) < 2:
                ck.add((*path, "duration_s"), f"{dur:g} s is {round(dur * fps)} frame(s) at {fps:g} Hz; "
                       "a movie needs at least 2 frames to move")  # fmt: skip
                out["duration_s"] = BAD
        for k in self.condition_keys:
            if m.get(k) is not None:
                out[k] = self.check_value(ck, (*path, k), k, m[k])
        if m.get("allow_aliasing") is not None:
            out["allow_aliasing"] = ck.boolean((*path, "allow_aliasing"), m["allow_aliasing"])
        if m.get("temporal_family") is not None:
            out["temporal_family"] = ck.choice((*path, "temporal_family"), m["temporal_family"], _TEMPORAL_FAMILIES)
        model = out["model"]
        for k in DRIFT_ONLY if model == "spatiotemporal" else SPATIOTEMPORAL_ONLY if model == "drift" else ():
            if m.get(k) is not None and m[k] != MOTION_DEFAULTS[k]:  # a resolved section holds every default
                ck.add((*path, k), _wrong_model(k, model), key=True)
        return out

    def check_condition(self, ck: Checker, exp: Mapping[str, Any], c: Condition,
                        shape: tuple[int, int], ppd: float) -> bool:  # fmt: skip
        """Drift: a speed given, no temporal aliasing. Spatiotemporal: a temporal band it can make."""
        motion = exp["motion"]
        if motion is BAD or _bad([motion["model"], motion["frame_rate_hz"], motion["allow_aliasing"]]):
            return True
        p = c.params
        if _bad([p.get(k) for k in self.condition_keys]):
            return True
        model = motion["model"]
        wrong = [k for k in (DRIFT_ONLY if model == "spatiotemporal" else SPATIOTEMPORAL_ONLY) if k in c.own]
        for k in wrong:
            _add_once(ck, c.sources[k][:2], _wrong_model(k, model))
        if wrong:
            return False
        if model == "spatiotemporal":
            return _check_spatiotemporal(ck, motion, c, shape, ppd)
        band_where = band_source(c)
        if p.get("speed_deg_s") is None:
            ck.add(("motion",), "missing required key 'speed_deg_s' (deg/s), in motion or in every condition", key=True)
            return False
        if p.get("sigma_center_deg") is not None:
            ck.add(band_where, "a moving DoG is stated by band_cpd, or peak_cpd and octaves, not by sigmas")
            return False
        err, _ = probe(p, motion, shape, ppd)
        if err is not None:
            speed_src = c.sources.get("speed_deg_s", ("motion",))
            note = ""
            if band_where[0] in ("conditions", "factorial") and band_where[:2] != speed_src[:2]:
                note = f" (with the band of {format_path(band_where)})"
            where = speed_src if err.startswith("speed_deg_s") else ("motion",)
            ck.add(where, err + note)
            return False
        return True

    def warnings(self, plan: Plan) -> list[str]:
        """One warning per drifting condition whose filter tails alias in time."""
        motion = plan.exp["motion"]
        out: list[str] = []
        if motion["model"] != "drift":
            return out
        for c in plan.conditions:
            _, found = probe(c.params, motion, plan.shape, plan.ppd)
            out.extend(f"condition {c.index} ({c.label}): {msg}" for msg in found)
        return out

    # -- drawing ------------------------------------------------------------------------
    def draw(self, plan: Plan, c: Condition, rng: np.random.Generator, drawing: Drawing) -> None:
        from ..motion import drifting_noise, spatiotemporal_noise

        motion = plan.exp["motion"]
        dtype = np.dtype(plan.exp["output"]["dtype"])
        if motion["model"] == "spatiotemporal":
            movie, record = spatiotemporal_noise(
                size_px=plan.shape, rng=rng, dtype=dtype, **spatiotemporal_kwargs(c.params, motion, plan.ppd)
            )
        else:
            with warnings.catch_warnings():
                # aliased filter tails: warned about once per condition before the run
                warnings.simplefilter("ignore", UserWarning)
                movie, record = drifting_noise(
                    size_px=plan.shape, rng=rng, dtype=dtype,
                    **drift_kwargs(c.params, motion, plan.ppd, n_frames_of(motion)),
                )  # fmt: skip
        # the same generator, recorded as its seed: movie_from_record(record) rebuilds the movie
        record["seed"] = {"entropy": int(drawing.entropy), "spawn_key": [int(drawing.index)]}
        drawing.data = movie
        drawing.frame_rate_hz = motion["frame_rate_hz"]
        drawing.records["motion_record"] = record

    # -- the manifest -------------------------------------------------------------------
    def record(self, plan: Plan, c: Condition, drawing: Drawing) -> dict[str, Any]:
        record = drawing.records["motion_record"]
        if record["stimulus"] == "spatiotemporal_noise":
            return {
                **{k: record[k] for k in ("frame_rate_hz", "n_frames", "duration_s", "temporal_family")},
                "design_temporal_band_hz": record["temporal_design"]["band_hz"],
                "design_temporal_peak_hz": record["temporal_design"]["peak_hz"],
            }
        return {k: no_negative_zero(record[k]) for k in MOTION_ENTRY_KEYS}

    def measure(self, plan: Plan, c: Condition, data: np.ndarray, entry: Mapping[str, Any]) -> Measured:
        record = entry["motion_record"]
        if record["stimulus"] == "spatiotemporal_noise":
            power = temporal_power(data)
            fields, passed = _one_movie_temporal(power, data.shape, record, plan.exp["check"])
            return Measured(fields, passed, power)
        check = speed_check(data, record, plan.exp["check"])
        return Measured({"speed_check": check}, None if check is None else bool(check["pass"]))

    def n_frames(self, plan: Plan) -> int | None:
        return n_frames_of(plan.exp["motion"])

    def pool(self, plan: Plan, c: Condition) -> MotionPool:
        return MotionPool()

    def pool_add(self, plan: Plan, c: Condition, pool: MotionPool, entry: Mapping[str, Any], extra: Any) -> None:
        record = entry["motion_record"]
        if pool.record is None:
            pool.record = record
            if record["stimulus"] != "spatiotemporal_noise":
                pool.requested = {k: entry[k] for k in ("speed_deg_s", "direction_deg", "velocity_deg_s")}
        if record["stimulus"] == "spatiotemporal_noise":
            pool.temporal.add(extra)
            return
        check = entry.get("speed_check")
        if check is not None:
            vx, vy = check["measured"]["velocity_deg_s"]
            pool.velocities_deg_s.append((float(vx), float(vy)))
            pool.speed_passed.append(bool(check["pass"]))

    def summary(self, plan: Plan, c: Condition, pool: MotionPool) -> Measured:
        record = pool.record
        assert record is not None  # a condition has at least one movie
        if plan.exp["motion"]["model"] == "spatiotemporal":
            t = pool.temporal
            chk = temporal_check(t.mean, t.n, (record["n_frames"], *plan.shape), record, plan.exp["check"])
            measured = {"temporal_band_hz": chk["measured"]["band_hz"], "temporal_peak_hz": chk["measured"]["peak_hz"]}
            return Measured({"measured": measured, "temporal": chk}, chk["pass"])
        assert pool.requested is not None
        speed = speed_summary(pool.requested, np.asarray(pool.velocities_deg_s), pool.speed_passed)
        return Measured({"speed": speed}, speed["pass"])

    def manifest_fields(self, plan: Plan) -> dict[str, Any]:
        from ..motion import DEFAULT_MAX_PAIRS, PAIR_SELECTION_RULE, VELOCITY_CONVENTION

        motion = plan.exp["motion"]
        fps = motion["frame_rate_hz"]
        n = n_frames_of(motion)
        if motion["model"] == "spatiotemporal":
            return {
                "motion": {
                    "model": "spatiotemporal",
                    "frame_rate_hz": fps,
                    "n_frames": n,
                    "duration_s": n / fps,
                    "movie_shape": [n, *plan.shape],
                    "generator": "stimgen.motion.spatiotemporal_noise (3-D FFT filter, circular in space and time)",
                    "temporal_check": ("pooled temporal power spectrum (mean over pixels of |rfft over frames|^2); "
                                       "edges where the interpolated power falls to the band level"),
                },
            }  # fmt: skip
        return {
            "motion": {
                "frame_rate_hz": fps,
                "n_frames": n,
                "duration_s": n / fps,
                "movie_shape": [n, *plan.shape],
                "velocity_convention": VELOCITY_CONVENTION,
                "generator": "stimgen.motion.drifting_noise (exact Fourier shifts of a periodic field)",
                "speed_check": "stimgen.motion.verify_motion (median dense Lucas-Kanade flow)",
                "speed_check_pairs": {
                    "max_pairs": DEFAULT_MAX_PAIRS,
                    "rule": PAIR_SELECTION_RULE,
                    "note": "each movie's speed_check lists its measured pairs and how many "
                            "of how many (pair_selection)",
                },
            },
        }

    def verify(self, plan: Plan, c: Condition, entry: Mapping[str, Any], data: np.ndarray, exact: bool) -> str | None:
        """Drift: the velocity measured again must reproduce the manifest's (to 1e-6 px/frame).
        Spatiotemporal: a movie's temporal band, where recorded, measured again (to 1e-6)."""
        if "motion_record" not in entry:
            return None
        record = entry["motion_record"]
        if record.get("stimulus") == "spatiotemporal_noise":
            if entry.get("temporal_band_hz") is None:
                return None
            fields, passed = _one_movie_temporal(temporal_power(data), data.shape, record, plan.exp["check"])
            return _compare_temporal(fields["temporal_band_hz"], entry["temporal_band_hz"], passed,
                                     entry.get("temporal_check", {}).get("pass"), exact)  # fmt: skip
        got = speed_check(data, record, plan.exp["check"])
        want = entry.get("speed_check")
        if got is None or want is None:
            return None if got is None and want is None else "speed check present in only one of manifest and re-measurement"
        a = got["measured"]["velocity_px_per_frame"]
        b = want["measured"]["velocity_px_per_frame"]
        if not all(close_abs(x, y, 1e-6) for x, y in zip(a, b, strict=True)):
            return (f"re-measured velocity {fmt_num(a)} px/frame differs from the manifest's {fmt_num(b)} "
                    f"(requested {fmt_num(entry['velocity_px_per_frame'])})")  # fmt: skip
        if bool(got["pass"]) != bool(want["pass"]):
            return f"re-measured speed pass {got['pass']} differs from the manifest's {want['pass']}"
        return None

    def verify_summary(self, plan: Plan, c: Condition, summary: Mapping[str, Any], entries: Sequence[Mapping[str, Any]],
                       movies: Iterable[np.ndarray], exact: bool) -> str | None:  # fmt: skip
        """Spatiotemporal: the condition's pooled temporal band, measured again from its files."""
        if plan.exp["motion"]["model"] != "spatiotemporal" or "temporal" not in summary:
            return None
        powers = [temporal_power(m) for m in movies]
        record = entries[0]["motion_record"]
        chk = temporal_check(np.mean(powers, axis=0), len(powers), (record["n_frames"], *plan.shape), record, plan.exp["check"])
        return _compare_temporal(chk["measured"]["band_hz"], summary["measured"]["temporal_band_hz"], chk["pass"],
                                 summary["temporal"]["pass"], exact, what="pooled temporal band")  # fmt: skip

    # -- figures ------------------------------------------------------------------------
    def figures(self, plan: Plan, pools: Mapping[int, MotionPool], summaries: Sequence[Mapping[str, Any]], root: Path) -> list[str]:
        """Measured against requested velocity of every movie whose speed was checked."""
        from .. import plotting
        from .figures import FIGURE_COMPRESS_LEVEL

        requested: list[Any] = []
        measured: list[Any] = []
        labels: list[str] = []
        passed: list[bool] = []
        for c in plan.conditions:
            pool = pools[c.index]
            vel = pool.velocities_deg_s
            if not vel or pool.requested is None:
                continue
            requested += [pool.requested["velocity_deg_s"]] * len(vel)
            measured += [list(v) for v in vel]
            labels += [f"c{c.index}"] + [""] * (len(vel) - 1)
            passed += pool.speed_passed
        if not measured:
            return []
        fig = plotting.new_figure((5.0, 5.0), margins=(0.15, 0.11, 0.96, 0.92))
        plotting.plot_velocity_check(
            requested, measured, labels=labels, passed=passed, ax=fig.add_subplot(),
            title=f"{len(measured)} movies: velocity measured by optical flow vs requested",
        )  # fmt: skip
        plotting.save(fig, root / "figures/velocity.png", compress_level=FIGURE_COMPRESS_LEVEL)
        return ["figures/velocity.png"]

    def caption(self, summary: Mapping[str, Any]) -> str | None:
        if "temporal" in summary:
            t = summary["temporal"]
            lo, hi = t["measured"]["band_hz"]
            d_lo, d_hi = t["design"]["band_hz"]
            return f"temporal band {lo:.3g}-{hi:.3g} Hz (design {d_lo:.3g}-{d_hi:.3g} Hz)"
        return speed_text(summary["speed"])


@dataclass
class MotionPool:
    """What a condition's summary and the velocity figure need of its movies.

    Drift: the requested motion and, per movie whose speed was checked, its measured
    velocity (deg/s) and pass flag. Spatiotemporal: the running mean of the movies'
    temporal power spectra.
    """

    record: dict[str, Any] | None = None  # the first movie's motion record
    requested: dict[str, Any] | None = None
    velocities_deg_s: list[tuple[float, float]] = field(default_factory=list)
    speed_passed: list[bool] = field(default_factory=list)
    temporal: RunningMean = field(default_factory=RunningMean)


def _wrong_model(key: str, model: str) -> str:
    if model == "spatiotemporal":
        return (f"{key} is for drifting noise (model: drift); spatiotemporal noise has no single "
                "velocity: it is band-limited in time by temporal_band_hz (Hz)")  # fmt: skip
    return f"{key} is for noise band-limited in time (model: spatiotemporal); drifting noise moves at speed_deg_s"


def _add_once(ck: Checker, path: tuple, message: str) -> None:
    """Report a problem once, however many expanded conditions share its key."""
    where = format_path(path)
    if not any(p.path == where and p.message == message for p in ck.problems):
        ck.add(path, message, key=True)


def spatiotemporal_kwargs(p: Mapping[str, Any], motion: Mapping[str, Any], ppd: float) -> dict[str, Any]:
    """Keyword arguments of :func:`stimgen.motion.spatiotemporal_noise` for a condition."""
    return {
        "ppd": ppd, "frame_rate_hz": motion["frame_rate_hz"], "n_frames": n_frames_of(motion),
        "temporal_band_hz": p["temporal_band_hz"], "temporal_family": motion["temporal_family"],
        "band_cpd": p["band_cpd"], "peak_cpd": p["peak_cpd"], "octaves": p["octaves"], "family": p["family"],
        "level": p["level"], "order": p["order"], "orientation_deg": p["orientation_deg"],
        "orientation_bandwidth_deg": p["orientation_bandwidth_deg"], "alpha": p["alpha"],
        "rms_contrast": p["rms_contrast"], "mean": p["mean"], "kind": p["kind"],
    }  # fmt: skip


def _check_spatiotemporal(ck: Checker, motion: Mapping[str, Any], c: Condition, shape: tuple[int, int], ppd: float) -> bool:
    """A temporal band given that the generator's temporal filter can make, a spatial band it takes."""
    from ..motion import _temporal_filter  # the generator's own design and rules

    p = c.params
    if p.get("temporal_band_hz") is None:
        ck.add(("motion",), "missing required key 'temporal_band_hz' ([low, high] in Hz), in motion or in every condition", key=True)
        return False
    if p.get("sigma_center_deg") is not None:
        ck.add(band_source(c), "spatiotemporal noise states its spatial band by band_cpd, or peak_cpd and octaves, not by sigmas")
        return False
    if _bad([motion["n_frames"], motion["duration_s"], motion["temporal_family"]]):
        return True
    try:
        _temporal_filter(p["temporal_band_hz"], motion["frame_rate_hz"], n_frames_of(motion),
                         motion["temporal_family"], p["level"], p["order"])  # fmt: skip
    except ValueError as exc:
        ck.add(c.sources.get("temporal_band_hz", ("motion",)), " ".join(str(exc).split()))
        return False
    return True


def _one_movie_temporal(power: np.ndarray, shape: tuple[int, ...], record: Mapping[str, Any],
                        check: Mapping[str, Any]) -> tuple[dict[str, Any], bool | None]:  # fmt: skip
    """A single movie's temporal band, where one movie suffices (its tolerance at most 25 %)."""
    chk = temporal_check(power, 1, shape, record, check)
    if max(chk["tolerance"].values()) > ONE_MOVIE_LIMIT and check.get("temporal_edge_tolerance") is None:
        why = (f"one movie of {shape[0]} frames of {shape[1]} x {shape[2]} px does not suffice (its edges would be "
               f"known to +-{max(chk['tolerance'].values()):.0%}); see the condition's pooled temporal band")  # fmt: skip
        return {"temporal_band_hz": None, "temporal_peak_hz": None, "temporal_check": {"measured": None, "why": why}}, None
    m = chk["measured"]
    return {"temporal_band_hz": m["band_hz"], "temporal_peak_hz": m["peak_hz"], "temporal_check": chk}, chk["pass"]


def _compare_temporal(got: Any, want: Any, got_pass: Any, want_pass: Any, exact: bool, what: str = "temporal band") -> str | None:
    rtol = 1e-6 if exact else 0.02
    if not close(got, want, rtol):
        return f"re-measured {what} {fmt_num(got)} Hz differs from the manifest's {fmt_num(want)} Hz"
    if exact and got_pass is not None and bool(got_pass) != bool(want_pass):
        return f"re-measured {what} pass {got_pass} differs from the manifest's {want_pass}"
    return None


def _bad(values: list) -> bool:
    return any(v is BAD for v in values)


MOTION = register(MotionPart())
