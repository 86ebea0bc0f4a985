"""One stimulus from (plan, index): draw, encode, name its files, its manifest entry."""

from __future__ import annotations

import io as _io
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from .measure import _measure, _measure_motion
from .plan import _Condition, _motion_kwargs, _Plan, _plan


def _draw(plan: _Plan, index: int, entropy: int) -> tuple[np.ndarray, float, np.random.Generator, _Condition, int]:
    """The float image of stimulus ``index`` (clipped), its clipped fraction and its rng."""
    from ..contrast import clip_contrast, set_rms_contrast
    from ..noise import filtered_noise, white_noise

    c, r = plan.locate(index)
    gen = np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=(index,)))
    p = c.params
    dtype = np.dtype(plan.exp["output"]["dtype"])
    filt = plan.filter(c)
    if filt is None:
        img = white_noise(plan.shape, kind=p["kind"], rng=gen, dtype=dtype)
    else:
        img = filtered_noise(plan.shape, filt, kind=p["kind"], rng=gen, dtype=dtype)
    img = set_rms_contrast(img, p["rms_contrast"], mean=p["mean"], out=img)
    img, frac = clip_contrast(img, limit=1.0, out=img, warn_above=None)
    return img, float(frac), gen, c, r


def _draw_movie(plan: _Plan, index: int, entropy: int) -> tuple[np.ndarray, float, np.random.Generator, _Condition, int, dict[str, Any]]:
    """The movie of stimulus ``index`` (clipped), its clipped fraction, rng and drifting_noise record."""
    from ..contrast import clip_contrast
    from ..motion import drifting_noise

    c, r = plan.locate(index)
    gen = np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=(index,)))
    if plan.motion is None or plan.n_frames is None:
        raise ValueError("the experiment has no motion section: its stimuli are still images")
    with warnings.catch_warnings():
        # aliased filter tails: warned about once per condition by run_experiment
        warnings.simplefilter("ignore", UserWarning)
        movie, record = drifting_noise(
            size_px=plan.shape, rng=gen, dtype=np.dtype(plan.exp["output"]["dtype"]),
            **_motion_kwargs(c.params, plan.motion, plan.ppd, plan.n_frames),
        )
    # the same generator, recorded as its seed: movie_from_record(record) rebuilds the movie
    record["seed"] = {"entropy": int(entropy), "spawn_key": [int(index)]}
    movie, frac = clip_contrast(movie, limit=1.0, out=movie, warn_above=None)
    return movie, float(frac), gen, c, r, record


def generate_stimulus(experiment: Mapping[str, Any], index: int, entropy: int) -> tuple[np.ndarray, dict[str, Any]]:
    """Stimulus ``index`` of a resolved experiment, generated alone.

    Parameters
    ----------
    experiment : mapping
        A resolved experiment (:func:`load_experiment`, or ``manifest["experiment"]``).
    index : int
        0-based stimulus index in plan order.
    entropy : int
        The set's seed entropy (``manifest["seed_entropy"]``).

    Returns
    -------
    image : ndarray, shape (H, W), or (T, H, W) for a motion experiment
        Signed contrast, float (``output.dtype``), clipped to [-1, 1].
    info : dict
        ``condition`` (index, label and every resolved parameter), ``repeat``, ``spawn_key``,
        ``clipped_fraction``; for movies also ``motion_record``, the record of
        :func:`stimgen.motion.drifting_noise` (before clipping).
    """
    plan = _plan(experiment)
    record = None
    if plan.motion:
        img, frac, _, c, r, record = _draw_movie(plan, int(index), int(entropy))
    else:
        img, frac, _, c, r = _draw(plan, int(index), int(entropy))
    info = {
        "condition": _entry_condition(c),
        "repeat": r,
        "spawn_key": [int(index)],
        "clipped_fraction": frac,
    }
    if record is not None:
        info["motion_record"] = record
    return img, info


def _entry_condition(c: _Condition) -> dict[str, Any]:
    """A stimulus' condition: index, label and every resolved parameter (noise, contrast, motion)."""
    return {"index": c.index, "label": c.label, **c.params}


def _encode(plan: _Plan, img: np.ndarray, gen: np.random.Generator) -> tuple[list[dict[str, Any]], float]:
    """Encode an image (or movie) in every output format, in order.

    Returns ``[{"format", "bytes", "dtype", "shape", ...}]`` (a gif also has
    ``frame_duration_ms``) and the largest clipped fraction of the quantizations.
    """
    from ..contrast import quantize
    from ..io import gif_bytes, png_bytes

    out = plan.exp["output"]
    files: list[dict[str, Any]] = []
    q_clip = 0.0
    for fmt in out["formats"]:
        if fmt == "npy":
            buf = _io.BytesIO()
            np.save(buf, img, allow_pickle=False)
            files.append({"format": fmt, "bytes": buf.getvalue(), "dtype": str(img.dtype), "shape": list(img.shape)})
            continue
        bits = 16 if fmt == "png16" else 8
        levels, frac = quantize(img, bits, dither=out["dither"], gamma=out["gamma"], rng=gen)
        q_clip = max(q_clip, frac)
        f = {"format": fmt, "dtype": str(levels.dtype), "shape": list(levels.shape)}
        if fmt == "gif":
            f["bytes"], f["frame_duration_ms"] = gif_bytes(levels, fps=plan.exp["motion"]["frame_rate_hz"])
        else:
            f["bytes"] = png_bytes(levels)
        files.append(f)
    return files, q_clip


def _suffix(fmt: str) -> str:
    return {"npy": ".npy", "gif": ".gif"}.get(fmt, ".png")


def _files_of(plan: _Plan, c: _Condition, r: int) -> dict[str, str]:
    """Relative paths of a stimulus' files by format (png8 and png16 never share a name)."""
    both_png = "png8" in plan.exp["output"]["formats"] and "png16" in plan.exp["output"]["formats"]
    out = {}
    for fmt in plan.exp["output"]["formats"]:
        stem = f"stimuli/{c.folder}/{r:04d}"
        if both_png and fmt == "png16":
            stem += "_16bit"
        out[fmt] = stem + _suffix(fmt)
    return out


_MOTION_ENTRY_KEYS = (
    "frame_rate_hz", "n_frames", "duration_s", "speed_deg_s", "direction_deg", "velocity_deg_s",
    "speed_px_per_frame", "velocity_px_per_frame", "refresh_frames", "temporal_aliasing",
)  # fmt: skip


def _entry(plan: _Plan, index: int, entropy: int, *, measure: bool = True) -> tuple[dict[str, Any], list[tuple[str, str, bytes]], np.ndarray | None, np.ndarray]:
    """Everything about stimulus ``index``: manifest entry, files (rel path, fmt, bytes), power, image.

    For a movie the image is its first frame; without ``measure`` the spectral and speed
    checks are skipped (power None), e.g. to regenerate the bytes only.
    """
    from ..io import sha256_bytes

    record = None
    if plan.motion:
        data, frac, gen, c, r, record = _draw_movie(plan, index, entropy)
        img = data[0]
    else:
        data, frac, gen, c, r = _draw(plan, index, entropy)
        img = data
    encoded, q_clip = _encode(plan, data, gen)
    paths = _files_of(plan, c, r)
    files = [
        {"file": paths[f["format"]], "format": f["format"], "sha256": sha256_bytes(f["bytes"]),
         **{k: val for k, val in f.items() if k not in ("format", "bytes")}}
        for f in encoded
    ]  # fmt: skip
    design = plan.design(c)
    if c.params["family"] in ("power_law", "white"):  # no peak; optional hard band limits
        design = {"band_cpd": c.params["band_cpd"], "peak_cpd": None}
    measured, power = _measure(plan, c, img) if measure else ({}, None)
    entry = {
        "index": index,
        "file": files[0]["file"],
        "sha256": files[0]["sha256"],
        "shape": files[0]["shape"],
        "dtype": files[0]["dtype"],
        "files": files,
        "condition": _entry_condition(c),
        "repeat": r,
        "spawn_key": [index],
        "ppd": plan.ppd,
        "design_band_cpd": None if design is None else design["band_cpd"],
        "design_peak_cpd": None if design is None else design["peak_cpd"],
        "band_level": c.params["level"],
        "rms_contrast": float(np.std(data, dtype=np.float64)),
        "mean": float(np.mean(data, dtype=np.float64)),
        "clipped_fraction": max(frac, q_clip),
        **measured,
    }
    if record is not None:
        entry.update({k: _no_negative_zero(record[k]) for k in _MOTION_ENTRY_KEYS})
        if measure:
            entry["spectral_pass"] = entry["pass"]
            entry["speed_check"] = check = _measure_motion(plan, data, record)
            entry["pass"] = bool(entry["pass"] and (check is None or check["pass"]))
        entry["motion_record"] = record
    return entry, [(paths[f["format"]], f["format"], f["bytes"]) for f in encoded], power, img


def _no_negative_zero(x: Any) -> Any:
    """``-0.0`` -> ``0.0`` (e.g. the vertical velocity of rightward motion), in lists too."""
    if isinstance(x, list | tuple):
        return [_no_negative_zero(y) for y in x]
    return x + 0.0 if isinstance(x, float) else x
