"""One stimulus from (plan, index): draw it part by part, encode it, name its files, its entry.

generate_stimulus   stimulus ``i`` of an experiment, alone (float image or movie, its facts)
draw                the parts draw in turn with the stimulus' generator; then one clip
make_entry          everything about stimulus ``i``: manifest entry, file bytes, measurements

The runner and ``regenerate`` call :func:`make_entry`; it knows no part by name: each
active part draws (:meth:`~stimgen.experiment.parts.Part.draw`), records
(:meth:`~stimgen.experiment.parts.Part.record`) and measures
(:meth:`~stimgen.experiment.parts.Part.measure`) in registration order.
"""

from __future__ import annotations

import io as _io
from collections.abc import Mapping
from typing import Any

import numpy as np

from . import display_out
from .parts import Drawing, Measured, Part, combine_verdicts
from .plan import Condition, Plan, plan_of


def draw(plan: Plan, index: int, entropy: int) -> tuple[Drawing, float, np.random.Generator, Condition, int]:
    """Stimulus ``index`` drawn (clipped to [-1, 1]), its clipped fraction, generator, condition, repeat."""
    from ..contrast import clip_contrast

    c, r = plan.locate(index)
    gen = plan.rng(index, entropy)
    drawing = Drawing(index=index, entropy=entropy)
    for part in plan.drawers:
        part.draw(plan, c, gen, drawing)
    if drawing.data is None:
        raise ValueError(f"no part of the experiment drew stimulus {index} (parts: {', '.join(p.name for p in plan.parts)})")
    drawing.data, frac = clip_contrast(drawing.data, limit=1.0, out=drawing.data, warn_above=None)
    return drawing, float(frac), gen, c, r


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
        ``clipped_fraction``, and what the parts recorded while drawing: for movies
        ``motion_record``, the record of :func:`stimgen.motion.drifting_noise` (before clipping).
    """
    plan = plan_of(experiment)
    drawing, frac, _, c, r = draw(plan, int(index), int(entropy))
    info = {
        "condition": entry_condition(c),
        "repeat": r,
        "spawn_key": [int(index)],
        "clipped_fraction": frac,
        **drawing.records,
    }
    assert drawing.data is not None
    return drawing.data, info


def entry_condition(c: Condition) -> dict[str, Any]:
    """A stimulus' condition: index, label and every resolved parameter."""
    return {"index": c.index, "label": c.label, **c.params}


def encode(plan: Plan, drawing: Drawing, gen: np.random.Generator) -> tuple[list[dict[str, Any]], float]:
    """Encode an image (or movie) in every output format, in order.

    Returns ``[{"format", "bytes", "dtype", "shape", ...}]`` (a gif also has
    ``frame_duration_ms``; a display encoding ``display``, its predicted statistics, and
    ``_decoded``, its decoded image as contrast) and the largest clipped fraction of the
    quantizations.
    """
    from ..contrast import quantize
    from ..io import gif_bytes, png_bytes

    img = drawing.data
    assert img is not None
    out = plan.exp["output"]
    files: list[dict[str, Any]] = []
    q_clip = 0.0
    for fmt in out["formats"]:
        if fmt == "npy":
            buf = _io.BytesIO()
            np.save(buf, img, allow_pickle=False)
            files.append({"format": fmt, "bytes": buf.getvalue(), "dtype": str(img.dtype), "shape": list(img.shape)})
            continue
        if display_out.is_display_format(plan, fmt):  # through the display model (display.py)
            f, frac = display_out.encode_file(plan, img, fmt, gen)
            q_clip = max(q_clip, frac)
            files.append(f)
            continue
        bits = 16 if fmt == "png16" else 8
        levels, frac = quantize(img, bits, dither=out["dither"], gamma=out["gamma"], rng=gen)
        q_clip = max(q_clip, frac)
        f = {"format": fmt, "dtype": str(levels.dtype), "shape": list(levels.shape)}
        if fmt == "gif":
            if drawing.frame_rate_hz is None:
                raise ValueError("a gif preview needs a movie with a frame rate")
            f["bytes"], f["frame_duration_ms"] = gif_bytes(levels, fps=drawing.frame_rate_hz)
        else:
            f["bytes"] = png_bytes(levels)
        files.append(f)
    return files, q_clip


def _suffix(fmt: str) -> str:
    return {"npy": ".npy", "gif": ".gif"}.get(fmt, ".png")


def files_of(plan: Plan, c: Condition, r: int) -> dict[str, str]:
    """Relative paths of a stimulus' files by format (png8, png16 and the display encodings never share a name)."""
    both_png = "png8" in plan.exp["output"]["formats"] and "png16" in plan.exp["output"]["formats"]
    out = {}
    for fmt in plan.exp["output"]["formats"]:
        stem = f"stimuli/{c.folder}/{r:04d}"
        if display_out.is_display_format(plan, fmt):  # e.g. 0000_mono14.png
            stem += display_out.DISPLAY_SUFFIX[fmt]
        elif both_png and fmt == "png16":
            stem += "_16bit"
        out[fmt] = stem + _suffix(fmt)
    return out


def measure_part(part: Part, plan: Plan, c: Condition, drawing: Drawing, entry: Mapping[str, Any]) -> Measured:
    """What ``part`` measures of a drawn stimulus: its own component when it left one.

    A part with a ``measure_drawing(plan, c, drawing, entry)`` method gets the whole
    drawing (its components, e.g. the noise under a target); any other part measures
    ``drawing.components[part.name]`` when the drawing holds that component (the noise
    part: the noise before a target was added and an aperture applied), else the stimulus.
    """
    hook = getattr(part, "measure_drawing", None)
    if hook is not None:
        return hook(plan, c, drawing, entry)
    data = drawing.components.get(part.name, drawing.data)
    assert data is not None
    return part.measure(plan, c, data, entry)


def make_entry(plan: Plan, index: int, entropy: int, *, measure: bool = True) -> tuple[dict[str, Any], list[tuple[str, str, bytes]], dict[str, Any], np.ndarray]:
    """Everything about stimulus ``index``: manifest entry, files (rel path, fmt, bytes), extras, image.

    ``extras`` maps each part's name to what it keeps for the condition summary
    (:attr:`~stimgen.experiment.parts.Measured.extra`); the image is a movie's first
    frame. Without ``measure`` the parts' checks are skipped (extras empty), e.g. to
    regenerate the bytes only.
    """
    from ..io import sha256_bytes

    drawing, frac, gen, c, r = draw(plan, index, entropy)
    data = drawing.data
    assert data is not None
    encoded, q_clip = encode(plan, drawing, gen)
    paths = files_of(plan, c, r)
    files = [
        {"file": paths[f["format"]], "format": f["format"], "sha256": sha256_bytes(f["bytes"]),
         **{k: val for k, val in f.items() if k not in ("format", "bytes") and not k.startswith("_")}}
        for f in encoded
    ]  # fmt: skip
    decoded = {paths[f["format"]]: f["_decoded"] for f in encoded if "_decoded" in f}
    entry: dict[str, Any] = {
        "index": index,
        "file": files[0]["file"],
        "sha256": files[0]["sha256"],
        "shape": files[0]["shape"],
        "dtype": files[0]["dtype"],
        "files": files,
        "condition": entry_condition(c),
        "repeat": r,
        "spawn_key": [index],
        "ppd": plan.ppd,
    }
    for part in plan.parts:
        entry.update(part.record(plan, c, drawing))
    entry.update(
        rms_contrast=float(np.std(data, dtype=np.float64)),
        mean=float(np.mean(data, dtype=np.float64)),
        clipped_fraction=max(frac, q_clip),
    )
    entry.update(drawing.records)
    extras: dict[str, Any] = {}
    if measure:
        measured = []
        for part in plan.parts:
            m = measure_part(part, plan, c, drawing, entry)
            entry.update(m.fields)
            extras[part.name] = m.extra
            measured.append((part.name, m))
        entry["pass"], why = combine_verdicts(measured)
        shown = display_out.decoded_checks(plan, c, entry, files, decoded, drawing)  # the band as displayed
        if shown:
            entry["display_check"] = display_out.shown_verdict(entry["pass"], shown, files)
            entry["pass"], why = combine_verdicts(measured + shown)
        if why:
            entry["not_measurable"] = why
    return entry, [(paths[f["format"]], f["format"], f["bytes"]) for f in encoded], extras, data[0] if data.ndim == 3 else data
