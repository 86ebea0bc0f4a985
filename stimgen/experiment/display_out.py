"""The display of an experiment: its model, the display encodings of ``output.formats``, what
they will show, and their re-check by ``verify``.

check_display_model   ``display.calibration`` / ``gamma`` / ``mean_cd_m2`` (schema, at FILE:LINE)
check_shown_contrast  refuse a condition whose noise the display cannot show about the mean
model_of              the :class:`~stimgen.display.DisplayModel` of a plan (None without one)
encode_file           one display encoding of a stimulus: PNG bytes and predicted statistics
decoded_checks        the parts' checks on each display file's decoded luminance
manifest_fields       ``display_model`` and ``mean_cd_m2`` for the manifest
read_contrast         a display file read back as signed contrast about ``mean_cd_m2``
verify_display_file   a display file re-decoded: its statistics and its band
verify_calibration    the set's display model and its calibration file, re-checked

Everything about displays is :mod:`stimgen.display`'s; this module only connects it to the
experiment engine.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .._yamlschema import BAD, Checker
from .keys import DISPLAY_FORMATS, DISPLAY_GAMMA_KEYS
from .parts import Drawing, FailsCheck, Measured, combine_verdicts
from .plan import Condition, Plan

#: File name suffix of each display encoding (never that of png8, ``0000.png``, or of
#: png16 without a model, ``0000_16bit.png``).
DISPLAY_SUFFIX = {
    "linear8": "_linear8",
    "png16": "_linear16",
    "bitstealing": "_bitstealing",
    "mono++": "_mono14",
    "m16": "_m16",
}
#: Read back for the stimulus' own re-check when a set has no npy: the most levels first.
EXACTNESS = ("m16", "png16", "mono++", "bitstealing", "linear8")
#: Relative tolerance of the band re-measured on a decoded file (verify).
DECODED_BAND_RTOL = 0.02


# =========================================================================================
# Validation (called by the schema)
# =========================================================================================
def has_model(display: Any) -> bool:
    """Whether a (resolved) display section describes a display model."""
    return isinstance(display, Mapping) and any(display.get(k) is not None for k in ("calibration", "gamma", "model"))


def check_display_model(ck: Checker, d: Mapping[str, Any], out: dict[str, Any], base: Path | None) -> None:
    """Check ``display.calibration`` / ``gamma`` / ``model`` / ``mean_cd_m2`` into ``out``.

    ``base`` is the folder a relative calibration path is read from (the YAML file's; the
    working directory when None). ``out["model"]`` becomes the model's record
    (:meth:`~stimgen.display.DisplayModel.to_record`, with the calibration file's path and
    sha256), or BAD when the model cannot be built (the problem is reported).
    """
    from ..display import DisplayModel, read_calibration

    cal, gam, rec = d.get("calibration"), d.get("gamma"), d.get("model")
    model = None
    if cal is not None and gam is not None:
        ck.add(("display",), "give either calibration (a measured table in a file) or gamma (a model), not both", key=True)
        out["model"] = BAD
    elif cal is not None:
        path = ck.string(("display", "calibration"), cal)
        out["calibration"] = path
        if path is not BAD and rec is None:
            p = Path(path)
            if base is not None and not p.is_absolute():
                p = base / p
            try:
                if p.is_dir():
                    raise ValueError(f"calibration {p} is a folder, not a calibration file (CSV or YAML)")
                if not p.is_file():
                    raise FileNotFoundError(f"calibration file {p} does not exist (a path relative to the experiment file)")
                model = read_calibration(p.resolve())
            except (OSError, UnicodeDecodeError, ValueError) as exc:
                ck.add(("display", "calibration"), " ".join(str(exc).split()))
                out["model"] = BAD
        elif path is BAD:
            out["model"] = BAD
    elif gam is not None:
        model = _gamma_model(ck, gam, out)
    if rec is not None and out.get("model") is not BAD:
        try:
            stored = DisplayModel.from_record(rec)
        except (ValueError, TypeError) as exc:
            ck.add(("display", "model"), f"is not a display model's record: {' '.join(str(exc).split())}")
            out["model"] = BAD
        else:
            if model is not None and model.to_record() != stored.to_record():
                ck.add(("display", "model"), "differs from the model display.gamma describes; give one of them")
                out["model"] = BAD
            else:
                model = stored
                out["model"] = dict(rec)
    elif model is not None:
        out["model"] = model.to_record()
    _check_mean(ck, d, out, model)


def _gamma_model(ck: Checker, gam: Any, out: dict[str, Any]) -> Any:
    from ..display import DisplayModel

    g = ck.mapping(("display", "gamma"), gam, DISPLAY_GAMMA_KEYS, required=("gamma", "l_min", "l_max"))
    if g is BAD or any(g.get(k) is None for k in ("gamma", "l_min", "l_max")):
        out["model"] = BAD
        return None
    vals: dict[str, Any] = {
        "gamma": ck.number(("display", "gamma", "gamma"), g["gamma"], low=0, low_open=True),
        "l_min": ck.number(("display", "gamma", "l_min"), g["l_min"], low=0),
        "l_max": ck.number(("display", "gamma", "l_max"), g["l_max"], low=0, low_open=True),
    }
    if g.get("channel_weights") is not None:
        vals["channel_weights"] = ck.numbers(("display", "gamma", "channel_weights"), g["channel_weights"], length=3, low=0)
    out["gamma"] = vals
    if any(x is BAD for x in vals.values()):
        out["model"] = BAD
        return None
    try:
        kw = {"channel_weights": vals["channel_weights"]} if "channel_weights" in vals else {}
        return DisplayModel.from_gamma(vals["gamma"], vals["l_min"], vals["l_max"], **kw)
    except ValueError as exc:
        ck.add(("display", "gamma"), " ".join(str(exc).split()))
        out["model"] = BAD
        return None


def _check_mean(ck: Checker, d: Mapping[str, Any], out: dict[str, Any], model: Any) -> None:
    mean = d.get("mean_cd_m2")
    if mean is None:
        if has_model(out) or out.get("model") is BAD:
            ck.add(("display",), "a display model (calibration or gamma) needs mean_cd_m2, the background "
                   "luminance (contrast 0) in cd/m^2", key=True)  # fmt: skip
        return
    m = ck.number(("display", "mean_cd_m2"), mean, low=0, low_open=True)
    out["mean_cd_m2"] = m
    if m is BAD:
        return
    if not has_model(out) and out.get("model") is not BAD:
        ck.add(("display", "mean_cd_m2"), "needs a display model: give display.calibration (a measured "
               "table, CSV or YAML) or display.gamma ({gamma, l_min, l_max} in cd/m^2)")  # fmt: skip
    elif model is not None and not model.l_min_cd_m2 < m < model.l_max_cd_m2:
        ck.add(("display", "mean_cd_m2"), f"mean_cd_m2 = {m:g} cd/m^2 is outside the display's range: it "
               f"shows {model.l_min_cd_m2:.4g} to {model.l_max_cd_m2:.4g} cd/m^2")  # fmt: skip


def _gaussian_clipped(lo_c: float, hi_c: float, mean: float, rms: float) -> float:
    """Expected fraction of Gaussian noise (``mean``, ``rms``) outside ``[lo_c, hi_c]`` inside [-1, 1]."""
    below = 0.0 if lo_c <= -1 else 0.5 * math.erfc((mean - lo_c) / (rms * math.sqrt(2)))
    above = 0.0 if hi_c >= 1 else 0.5 * math.erfc((hi_c - mean) / (rms * math.sqrt(2)))
    return below + above


def check_shown_contrast(ck: Checker, exp: Mapping[str, Any], c: Condition, seen: dict) -> None:
    """Refuse a condition of Gaussian noise the display cannot show about ``mean_cd_m2``.

    The expected fraction of pixels outside the display's range (for Gaussian noise of the
    condition's RMS contrast and mean) must not exceed ``stimulus.max_clipped_fraction``;
    other stimuli are checked one by one when drawn (their clipped fraction). ``seen`` is
    kept by the caller across conditions (the model, the places already reported).
    """
    from ..display import DisplayModel

    d = exp["display"]
    if not has_model(d) or d.get("model") in (None, BAD) or d.get("mean_cd_m2") in (None, BAD):
        return
    p = c.params
    if p.get("kind") != "gaussian" or p.get("rms_contrast") in (None, BAD) or p.get("mean") in (None, BAD):
        return
    if "model" not in seen:
        seen["model"] = DisplayModel.from_record(d["model"])
    model = seen["model"]
    l0 = float(d["mean_cd_m2"])
    lo_c, hi_c = model.l_min_cd_m2 / l0 - 1.0, model.l_max_cd_m2 / l0 - 1.0
    r, m = float(p["rms_contrast"]), float(p["mean"])
    frac = _gaussian_clipped(lo_c, hi_c, m, r)
    limit = float(exp["stimulus"]["max_clipped_fraction"])
    where = c.sources.get("rms_contrast", ("stimulus", "rms_contrast"))
    if frac > limit and where not in seen:
        seen[where] = True
        ck.add(where, f"condition {c.index} ({c.label}): Gaussian noise of RMS contrast {r:g} (mean {m:g}) "
               f"about display.mean_cd_m2 = {l0:g} cd/m^2 needs luminance the display cannot show: it "
               f"shows contrast {lo_c:+.4g} to {hi_c:+.4g} about that mean ({model.l_min_cd_m2:.4g} to "
               f"{model.l_max_cd_m2:.4g} cd/m^2), so about {frac:.3%} of pixels would be clipped, more "
               f"than stimulus.max_clipped_fraction = {limit:g}; lower rms_contrast, move mean_cd_m2 "
               "toward the middle of the range, or raise max_clipped_fraction")  # fmt: skip


# =========================================================================================
# Encoding (called by draw)
# =========================================================================================
def model_of(plan: Plan) -> Any:
    """The plan's display model (None without one), built once per plan from its record."""
    rec = plan.exp["display"].get("model")
    if rec is None:
        return None
    from ..display import DisplayModel

    return plan.memo("display_model", lambda: DisplayModel.from_record(rec))


def is_display_format(plan: Plan, fmt: str) -> bool:
    """Whether ``fmt`` is written as a display encoding (a display format with a model)."""
    return fmt in DISPLAY_FORMATS and model_of(plan) is not None


def encode_file(plan: Plan, img: np.ndarray, fmt: str, rng: np.random.Generator) -> tuple[dict[str, Any], float]:
    """A stimulus in display encoding ``fmt``: its file record and clipped fraction.

    :func:`stimgen.display.encode` with ``clip=True`` (a request outside the display's range
    gets the lowest or highest level and is counted; nothing wraps) and the experiment's
    dither. The record holds ``bytes`` (the PNG), ``dtype``, ``shape``, ``display``
    (:func:`stimgen.display.predict_display_stats`) and, not for the manifest,
    ``_decoded``: the decoded luminance as signed contrast about ``mean_cd_m2``.
    """
    from ..display import decode, encode, predict_display_stats

    model = model_of(plan)
    l0 = float(plan.exp["display"]["mean_cd_m2"])
    enc = encode(img, model, mean_cd_m2=l0, method=fmt, dither=plan.exp["output"]["dither"], rng=rng, clip=True)
    stats = predict_display_stats(img, enc, model)
    f = {"format": fmt, "bytes": enc.png_bytes(), "dtype": str(enc.values.dtype), "shape": list(enc.values.shape),
         "display": stats, "_decoded": _contrast(decode(enc, model), l0)}  # fmt: skip
    return f, enc.clipped_fraction


def _contrast(lum: np.ndarray, mean_cd_m2: float) -> np.ndarray:
    from ..display import contrast_of_luminance

    return contrast_of_luminance(lum, mean_cd_m2=mean_cd_m2)


def decoded_checks(plan: Plan, c: Condition, entry: Mapping[str, Any], files: list[dict[str, Any]],
                   decoded: Mapping[str, np.ndarray], drawing: Drawing | None = None) -> list[tuple[str, Measured]]:  # fmt: skip
    """Each checking part's check of each display file's decoded image, recorded as its ``decoded_check``.

    The decoded luminance, as signed contrast about ``mean_cd_m2``, is checked exactly as
    the float stimulus is (e.g. the noise part's spectral check), so quantization and the
    display's gamma cannot break the band unseen. A part that measures its own component
    of a composed stimulus (the noise under a target and an aperture) measures that
    component plus the display's error (decoded minus requested contrast, at every pixel):
    the noise as the display's levels and gamma leave it. Parts that check nothing (a
    target's energy is recorded, not checked) are not re-measured. ``decoded_check`` holds
    the parts' fields, ``pass`` (None: not measurable), ``status`` and ``reason``.
    """
    out = []
    comps = {} if drawing is None else drawing.components
    for f in files:
        x = decoded.get(f["file"])
        if x is None:
            continue
        err = None if drawing is None or drawing.data is None else x - drawing.data
        measured = [(p.name, p.measure(plan, c, x if err is None or p.name not in comps else comps[p.name] + err, entry))
                    for p in plan.parts if p.checks is not None]  # fmt: skip
        passed, why = combine_verdicts(measured)
        rec: dict[str, Any] = {}
        for _, m in measured:
            rec.update(m.fields)
        reason = why
        if passed is False:
            reason = "; ".join(str(m.fields.get("spectral_reason") or f"{n} check failed")
                               for n, m in measured if m.passed is False)  # fmt: skip
        rec.update({"pass": passed, "status": {True: "pass", False: "fail"}.get(passed, "not_measurable"),  # type: ignore[arg-type]
                    "reason": reason})  # fmt: skip
        f["decoded_check"] = rec
        what = f"{f['format']} file {f['file']} (decoded)"
        out.append((what, Measured(passed=passed, not_measurable=why)))
    return out


def shown_verdict(image_pass: bool | None, shown: list[tuple[str, Measured]], files: list[dict[str, Any]]) -> dict[str, Any]:
    """An entry's ``display_check``: ``pass`` of its decoded images together, ``image_pass``
    (the parts' verdict on the float image, what ``verify`` re-measures it against) and the
    display files that ``failed``."""
    passed, _ = combine_verdicts(shown)
    failed = [f["file"] for f in files if isinstance(f.get("decoded_check"), dict) and f["decoded_check"]["pass"] is False]
    return {"pass": passed, "image_pass": image_pass, "failed": failed}


def image_entry(e: Mapping[str, Any]) -> Mapping[str, Any]:
    """An entry as its parts judged the float image: ``pass`` without its decoded images'."""
    dc = e.get("display_check")
    if not isinstance(dc, Mapping) or "image_pass" not in dc:
        return e
    return {**e, "pass": dc["image_pass"]}


def manifest_fields(plan: Plan) -> dict[str, Any]:
    """``display_model`` (its record, with the calibration file's path and sha256) and ``mean_cd_m2``."""
    rec = plan.exp["display"].get("model")
    if rec is None:
        return {}
    return {"display_model": rec, "mean_cd_m2": plan.exp["display"]["mean_cd_m2"]}


# =========================================================================================
# Verification
# =========================================================================================
def exact_display_file(plan: Plan, e: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The display file of an entry with the most levels (None without a model or such file)."""
    if model_of(plan) is None:
        return None
    by_fmt = {f.get("format"): f for f in e.get("files", [])}
    return next((by_fmt[f] for f in EXACTNESS if f in by_fmt), None)


def value_tolerance(plan: Plan, fmt: str, data: np.ndarray) -> np.ndarray:
    """Per pixel, how far a display file's decoded contrast may lie from the value requested.

    The larger of the gaps to the neighbouring representable levels (in contrast about
    ``mean_cd_m2``): rounding moves a value by at most half a gap, noisy-bit dither by
    less than one.
    """
    from ..display import level_luminances

    l0 = float(plan.exp["display"]["mean_cd_m2"])
    levels = _contrast(np.asarray(level_luminances(model_of(plan), fmt), dtype=np.float64), l0)
    gaps = np.diff(levels)
    right = np.concatenate([gaps, gaps[-1:]])
    left = np.concatenate([gaps[:1], gaps])
    i = np.clip(np.searchsorted(levels, np.asarray(data, dtype=np.float64)), 0, len(levels) - 1)
    return np.maximum(left[i], right[i]) + 1e-12


def shown_contrast_range(plan: Plan, fmt: str) -> tuple[float, float]:
    """The lowest and highest contrast about ``mean_cd_m2`` that encoding ``fmt`` can show."""
    from ..display import level_luminances

    lum = np.asarray(level_luminances(model_of(plan), fmt), dtype=np.float64)
    c = _contrast(lum[[0, -1]], float(plan.exp["display"]["mean_cd_m2"]))
    return float(c[0]), float(c[1])


def read_contrast(plan: Plan, path: Path, fmt: str) -> np.ndarray:
    """A display file read back, decoded through the plan's model, as contrast about ``mean_cd_m2``."""
    from ..display import decode
    from ..io import read_image

    model = model_of(plan)
    return _contrast(decode(read_image(path), model, method=fmt), float(plan.exp["display"]["mean_cd_m2"]))


def verify_display_file(model: Any, mean_cd_m2: float, path: Path, f: Mapping[str, Any],
                        plan: Plan | None, c: Condition | None, drawing: Drawing | None = None) -> list[str]:  # fmt: skip
    """Problems of one display file re-decoded (empty when it shows what its record says).

    The predicted statistics are recomputed from the values read back
    (:func:`stimgen.display.check_shown_stats`), then each part re-checks the decoded image
    against the file's ``decoded_check`` (peak and band within 2 %); of a composed stimulus
    (``drawing``: the stimulus regenerated) a part re-checks its own component plus the
    display's error read back, as :func:`decoded_checks` measured it. A message that is a
    :class:`~stimgen.experiment.parts.FailsCheck` is a failed design check, not damage.
    """
    from ..display import check_shown_stats, decode
    from ..io import read_image

    fmt = f["format"]
    try:
        values = read_image(path)
        lum = decode(values, model, method=fmt)
    except (OSError, ValueError) as exc:
        return [f"cannot be decoded as {fmt}: {' '.join(str(exc).split())}"]
    out: list[str] = []
    rec = f.get("display")
    if isinstance(rec, Mapping):
        msg = check_shown_stats(values, model, rec, method=fmt)
        if msg:
            out.append(f"{fmt} display statistics: {msg}")
    else:
        out.append("the manifest records no display statistics for this display encoding")
    dec = f.get("decoded_check")
    if isinstance(dec, Mapping) and dec.get("pass") is False:
        out.append(FailsCheck(f"its decoded {fmt} image failed the design check when generated "
                              f"({dec.get('reason') or 'no reason recorded'})"))  # fmt: skip
    if plan is not None and c is not None and isinstance(dec, Mapping):
        x = _contrast(lum, mean_cd_m2)
        comps = {} if drawing is None or drawing.data is None else drawing.components
        for part in plan.parts:
            if part.checks is None:
                continue
            assert drawing is None or drawing.data is not None
            y = x if part.name not in comps else comps[part.name] + (x - drawing.data)  # type: ignore[union-attr]
            msg = part.verify(plan, c, dec, y, False)
            if isinstance(msg, FailsCheck):
                out.append(FailsCheck(f"decoded {fmt} image: {msg}"))
            elif msg:
                out.append(f"decoded {fmt} image: {msg}")
    return out


def verify_calibration(manifest: Mapping[str, Any]) -> tuple[Any, list[str], list[str]]:
    """``(model, failures, notes)`` of a set's display: the model rebuilt from the manifest.

    The manifest's ``display_model`` must rebuild (:meth:`DisplayModel.from_record`) and be
    the stored experiment's; a calibration file that still exists at its recorded path
    must have the recorded sha256 (a changed calibration means the set was made for a
    display that is no longer described by it). A file no longer there is a note.
    """
    from ..display import DisplayModel
    from ..io import sha256_file

    rec = manifest.get("display_model")
    if rec is None:
        return None, [], []
    try:
        model = DisplayModel.from_record(rec)
    except (ValueError, TypeError) as exc:
        return None, [f"manifest.json: display_model cannot be rebuilt: {' '.join(str(exc).split())}"], []
    failures, notes = [], []
    if not isinstance(manifest.get("mean_cd_m2"), int | float) or isinstance(manifest.get("mean_cd_m2"), bool):
        msg = (f"manifest.json: mean_cd_m2 must be a luminance in cd/m^2 beside display_model, got "
               f"{manifest.get('mean_cd_m2')!r}; the display files were not decoded")  # fmt: skip
        return None, [msg], []
    exp_display = manifest["experiment"].get("display") if isinstance(manifest["experiment"], Mapping) else None
    if not isinstance(exp_display, Mapping) or exp_display.get("model") != rec:
        failures.append("manifest.json: display_model differs from the stored experiment's display.model")
    if isinstance(exp_display, Mapping) and exp_display.get("mean_cd_m2") != manifest.get("mean_cd_m2"):
        failures.append(f"manifest.json: mean_cd_m2 {manifest.get('mean_cd_m2')!r} differs from the stored experiment's")
    src = rec.get("source") if isinstance(rec, Mapping) else None
    if isinstance(src, Mapping) and isinstance(src.get("path"), str) and src.get("sha256"):
        p = Path(src["path"])
        if not p.is_file():
            notes.append(f"calibration file {p} is no longer there; the display model in the manifest was used")
        elif sha256_file(p) != src["sha256"]:
            failures.append(f"calibration file {p}: sha256 differs from the manifest's display_model (the "
                            "calibration changed since the set was made: the set shows what the old one predicted)")  # fmt: skip
    return model, failures, notes
