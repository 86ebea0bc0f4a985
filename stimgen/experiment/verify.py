"""Verification of a written set against its manifest, and regeneration of one stimulus."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import display_out
from .draw import make_entry
from .entries import ENTRIES_FILE, Entries
from .manifest import read_manifest
from .parts import FailsCheck, Part, active_parts
from .plan import Condition, Plan, plan_of
from .schema import validate_experiment


@dataclass
class VerifyReport:
    """Result of :func:`verify_set`.

    ``failures``: what does not hold (a changed, missing or unlisted file, a damaged
    manifest, a re-measurement that differs from the manifest); ``ok`` is true without
    them. ``failed_checks``: stimuli and conditions of an intact set that fail their design
    checks (as generated, or when re-measured from PNG levels). ``status`` is ``"ok"``,
    ``"failed_checks"`` or ``"corrupt"`` (failures win).
    """

    path: str
    n_files: int = 0
    n_stimuli: int = 0
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    motion: bool = False  # a set of movies: their motion was re-measured too
    failed_checks: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def status(self) -> str:
        return "corrupt" if self.failures else ("failed_checks" if self.failed_checks else "ok")

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "ok": self.ok, "status": self.status, "n_files": self.n_files,
                "n_stimuli": self.n_stimuli, "motion": self.motion, "failures": self.failures,
                "failed_checks": self.failed_checks, "notes": self.notes}  # fmt: skip


def _image_from_file(path: Path, fmt: str, gamma: float | None) -> np.ndarray:
    from ..io import read_image

    a = read_image(path)
    if fmt == "npy":
        return a
    top = 255.0 if fmt == "png8" else 65535.0
    lum = a.astype(np.float64) / top
    if gamma is not None:
        lum = lum**gamma
    return lum * 2.0 - 1.0


def stored_experiment(manifest: Mapping[str, Any]) -> Any:
    """The manifest's resolved experiment, as it was drawn.

    Sets made before ``noise.synthesis`` existed (manifest version 2 and older, whose
    noise section does not state it) drew their Gaussian noise in space: they say
    ``synthesis: spatial``, so they verify and regenerate bit for bit.
    """
    exp = manifest["experiment"]
    noise = exp.get("noise") if isinstance(exp, Mapping) else None
    if isinstance(noise, Mapping) and "synthesis" not in noise:
        return {**exp, "noise": {**noise, "synthesis": "spatial"}}
    return exp


def verify_set(
    path: str | os.PathLike,
    *,
    spectra: bool = True,
    require_pass: bool = False,
    on_progress: Callable[[int], None] | None = None,
) -> VerifyReport:
    """Check a stimulus set against its manifest.

    Re-hashes every listed file (a changed byte fails), checks the copy of the experiment
    file, and re-measures each stimulus' spectrum: the measured peak and band (or 1/f
    exponent) must agree with the manifest (exactly up to float rounding for ``.npy``;
    within the quantization noise, 2 %, for PNG-only sets) and give the same pass flag.
    Movies: the spectrum of the first frame, and the velocity measured again with
    :func:`stimgen.motion.verify_motion`, which must reproduce the manifest's (to 1e-6
    px/frame) and its pass flag.
    When the manifest was written by another stimgen version, spectral differences are
    reported as notes instead (the measurement itself may have changed).

    Parameters
    ----------
    path : path
        The set's directory (or its manifest.json).
    spectra : bool
        Also re-measure the spectra (default True).
    require_pass : bool
        Count stimuli whose ``pass`` flag in the manifest is false as failures (default:
        they are listed in ``failed_checks``).
    on_progress : callable, optional
        Called with 1 after each stimulus.

    Returns
    -------
    VerifyReport
    """
    root, manifest = read_manifest(path)
    try:
        parts: list[Part] = active_parts(manifest["experiment"])
    except ValueError:
        parts = []  # reported below, as an invalid stored experiment
    what = " or ".join(p.checks for p in parts if p.checks) or "design check"
    from ..io import sha256_file

    entries = manifest["stimuli"]
    motion = any(p.movie for p in parts)
    if isinstance(entries, Entries) and sha256_file(entries.path) != manifest["entries"]["sha256"]:
        rep = VerifyReport(str(root), n_stimuli=manifest["n_stimuli"], motion=motion)
        rep.failures.append(f"{ENTRIES_FILE}: sha256 differs from the manifest (the file was changed); "
                            "its entries cannot be trusted and were not checked")  # fmt: skip
        return rep
    rep = VerifyReport(str(root), n_stimuli=len(entries), motion=motion)

    if manifest.get("experiment_sha256"):
        y = root / "experiment.yaml"
        if not y.is_file():
            rep.failures.append("experiment.yaml: missing")
        elif sha256_file(y) != manifest["experiment_sha256"]:
            rep.failures.append("experiment.yaml: sha256 differs from the manifest")
    plan = None
    try:
        plan = plan_of(validate_experiment(stored_experiment(manifest), source="manifest.json:experiment"))
    except ValueError as exc:
        rep.failures.append(f"manifest.json: the stored experiment is invalid: {' '.join(str(exc).split())}")
    n_listed = len(manifest["stimuli"])
    if manifest["n_stimuli"] != n_listed:
        rep.failures.append(f"manifest.json: n_stimuli is {manifest['n_stimuli']} but {n_listed} stimuli are listed")
    if plan is not None and plan.n != n_listed:
        rep.failures.append(f"manifest.json: the stored experiment plans {plan.n} stimuli but {n_listed} are listed")
        plan = None  # entries do not match the plan: their spectra cannot be checked by index
    if not spectra:
        plan = None
    from .._version import __version__

    made_by = manifest.get("stimgen_version")
    same_version = made_by == __version__
    if not same_version:
        rep.notes.append(
            f"the set was made by stimgen {made_by}, this is {__version__}: spectra that measure "
            "differently are noted, not failed (the hashes still must match)"
        )
    display_model, bad_display, display_notes = display_out.verify_calibration(manifest)
    rep.failures.extend(bad_display)
    rep.notes.extend(display_notes)
    listed = set()
    summaries = manifest.get("conditions")
    if plan is not None and (not isinstance(summaries, list) or len(summaries) != len(plan.conditions)):
        summaries = None  # nothing to re-check per condition
    intact = True  # every file of the condition being read is intact so far (else it is not re-summarized)
    for e in manifest["stimuli"]:
        ok_files = True
        for f in e.get("files", [e]):
            rep.n_files += 1
            listed.add(f["file"])
            fp = root / f["file"]
            if not fp.is_file():
                rep.failures.append(f"{f['file']}: missing")
                ok_files = False
            elif sha256_file(fp) != f["sha256"]:
                rep.failures.append(f"{f['file']}: sha256 differs from the manifest (the file was changed)")
                ok_files = False
            else:
                msg = _check_layout(fp, f.get("format", Path(f["file"]).suffix.lstrip(".")), f)
                if msg:
                    rep.failures.append(f"{f['file']}: {msg}")
                    ok_files = False
            if display_model is not None and "display" in f and fp.is_file():  # even when changed
                _verify_display(rep, display_model, manifest, plan, root, e, f, same_version, require_pass)
        judged = display_out.image_entry(e)  # a decoded display file that failed is named above
        if judged.get("pass") is None and "pass" in e:
            rep.notes.append(f"{e['file']}: {what} not measurable when generated "
                             f"({e.get('not_measurable') or 'no reason recorded'})")
        elif require_pass and not judged.get("pass"):
            rep.failures.append(f"{e['file']}: its {what} failed the design check when generated")
        elif not judged.get("pass"):
            rep.failed_checks.append(f"{e['file']}: its {what} failed the design check when generated")
        intact = intact and ok_files
        if plan is not None and ok_files:
            msg = _verify_stimulus(plan, root, e, int(manifest["seed_entropy"]), rep.notes)
            if isinstance(msg, FailsCheck):
                rep.failed_checks.append(f"{e['file']}: {msg}")
            elif msg and same_version and _read_format(e) != "npy" and _regenerates_exactly(plan, root, e, int(manifest["seed_entropy"])):
                rep.notes.append(f"{e['file']}: {msg}, re-measured from its quantized levels; the file is byte for byte "
                                 "the stimulus regenerated from the manifest, so this is the estimate's spread on "
                                 "the levels (the manifest's numbers are the float image's), not damage")  # fmt: skip
            elif msg and same_version:
                rep.failures.append(f"{e['file']}: {msg}")
            elif msg:
                rep.notes.append(f"{e['file']}: {msg} (measured by stimgen {made_by}, now {__version__})")
        if plan is not None and summaries is not None:
            c, r = plan.locate(int(e["index"]))
            if r == c.repeats - 1:  # the condition's last stimulus: re-check its summary
                if intact and isinstance(summaries[c.index], dict):
                    own = _EntrySpan(manifest["stimuli"], c.first, c.first + c.repeats)  # read again when asked for
                    for where, msg in _verify_summary(plan, root, c, summaries[c.index], own):
                        if same_version:
                            rep.failures.append(f"{where}: {msg}")
                        else:
                            rep.notes.append(f"{where}: {msg} (measured by stimgen {made_by}, now {__version__})")
                intact = True
        if plan is not None:
            plan.memo("verify.regenerated", dict).clear()  # the stimulus' components are done with
        if on_progress is not None:
            on_progress(1)
    for c in manifest.get("conditions") or []:
        # a condition whose stimuli did not fail (each failure is listed already) but whose pooled check did
        n_fail = c.get("n_fail", (c.get("repeats") or 0) - (c.get("n_pass") or 0)) if isinstance(c, dict) else None
        if isinstance(c, dict) and c.get("pass") is False and n_fail == 0:
            rep.failed_checks.append(f"condition {c.get('index')} ({c.get('label')}): its pooled {what} "
                                     "failed the design check when generated")  # fmt: skip
    stim_dir = root / "stimuli"
    if stim_dir.is_dir():
        extra = sorted(rel for rel in _files_under(root, "stimuli") if rel not in listed)
        for rel in extra[:5]:
            rep.failures.append(f"{rel}: under stimuli/ but not in the manifest")
        if len(extra) > 5:
            rep.failures.append(f"... and {len(extra) - 5} more file(s) under stimuli/ not in the manifest")
    return rep


def _files_under(root: Path, folder: str):
    """Relative paths (``folder/...``, ``/``-separated) of the files under ``root/folder``.

    Streams ``os.scandir`` entries: unlike ``Path.rglob``, which remembers every path it
    yielded, memory does not grow with the number of files (200,000 in a large set).
    """
    stack = [folder]
    while stack:
        rel_dir = stack.pop()
        with os.scandir(root / rel_dir) as it:
            for entry in it:
                rel = f"{rel_dir}/{entry.name}"
                if entry.is_dir(follow_symlinks=False):
                    stack.append(rel)
                elif entry.is_file():
                    yield rel


def _check_layout(path: Path, fmt: str, f: Mapping[str, Any]) -> str | None:
    """Whether a file's array shape and dtype are those its manifest entry states."""
    if "shape" not in f and "dtype" not in f:
        return None
    try:
        if fmt == "npy":
            a = np.load(path, mmap_mode="r", allow_pickle=False)
            shape, dtype = list(a.shape), str(a.dtype)
        elif fmt == "gif":
            from PIL import Image

            with Image.open(path) as im:
                shape, dtype = [getattr(im, "n_frames", 1), im.size[1], im.size[0]], "uint8"
        else:
            from ..io import read_image

            a = read_image(path)
            shape, dtype = list(a.shape), str(a.dtype)
    except (OSError, ValueError) as exc:
        return f"cannot be read as {fmt}: {' '.join(str(exc).split())}"
    if "shape" in f and list(f["shape"]) != shape:
        return f"holds an array of shape {shape}, the manifest says {f['shape']}"
    if "dtype" in f and f["dtype"] != dtype:
        return f"holds {dtype} data, the manifest says {f['dtype']}"
    return None


def _verify_display(rep: VerifyReport, model: Any, manifest: Mapping[str, Any], plan: Plan | None,
                    root: Path, e: Mapping[str, Any], f: Mapping[str, Any], same_version: bool,
                    require_pass: bool) -> None:  # fmt: skip
    """A display file decoded again: its predicted statistics and the band it shows.

    Made by another stimgen version, differences are notes (the hashes still must match).
    """
    c = plan.locate(int(e["index"]))[0] if plan is not None else None
    drawing = None
    if plan is not None and any(getattr(p, "composes", False) for p in plan.parts):
        drawing = _regenerated(plan, int(e["index"]), int(manifest["seed_entropy"]))[0]  # its components
    for msg in display_out.verify_display_file(model, float(manifest["mean_cd_m2"]), root / f["file"], f, plan, c, drawing):
        if isinstance(msg, FailsCheck) and not require_pass:
            rep.failed_checks.append(f"{f['file']}: {msg}")
        elif same_version:
            rep.failures.append(f"{f['file']}: {msg}")
        else:
            rep.notes.append(f"{f['file']}: {msg} (recorded by stimgen {manifest.get('stimgen_version')})")


def _read_stimulus(plan: Plan, root: Path, e: Mapping[str, Any]) -> tuple[np.ndarray, str]:
    """A stimulus read back from its most exact file (npy, else the display encoding with the
    most levels, decoded to contrast, else png16, else png8) and that format."""
    fmt = _read_format(e)
    shown = display_out.exact_display_file(plan, e) if fmt != "npy" else None
    if shown is not None:
        return display_out.read_contrast(plan, root / shown["file"], shown["format"]), shown["format"]
    f = next((f for f in e.get("files", []) if f.get("format") == fmt), e)
    return _image_from_file(root / f["file"], fmt, plan.exp["output"]["gamma"]), fmt


def _verify_stimulus(plan: Plan, root: Path, e: dict[str, Any], entropy: int, notes: list[str]) -> str | None:
    """Read a stimulus back from its file and let each part re-check it; the first failure.

    A composed stimulus (a target, an aperture) is first taken apart
    (:func:`_verify_composition`); each part then re-checks its own component.
    """
    c, _ = plan.locate(int(e["index"]))
    data, fmt = _read_stimulus(plan, root, e)
    judged = display_out.image_entry(e)  # the float image's verdict (the decoded files are checked apart)
    if plan.movie and (data.ndim != 3 or list(data.shape[1:]) != list(plan.shape)):
        return f"is not a (T, H, W) movie of {plan.shape[0]} x {plan.shape[1]} px frames: shape {list(data.shape)}"
    msg = _check_other_files(plan, root, e, data, fmt)
    if msg:
        return msg
    comps: dict[str, np.ndarray] = {}
    if any(getattr(p, "composes", False) for p in plan.parts):
        if list(data.shape) != list(plan.shape):
            return f"holds an image of shape {list(data.shape)}, the plan's is {list(plan.shape)}"
        msg, comps, note = _verify_composition(plan, root, e, data, fmt, entropy)
        if note:
            notes.append(f"{e['file']}: {note}")
        if msg:
            return msg
    for part in plan.parts:
        msg = part.verify(plan, c, judged, comps.get(part.name, data), fmt == "npy")
        if msg:
            return msg
    return None


def _check_other_files(plan: Plan, root: Path, e: Mapping[str, Any], data: np.ndarray, fmt: str) -> str | None:
    """Every other image file of a still stimulus shows the image of the file read (``fmt``).

    The file read is re-checked by the parts; a PNG or display file beside it is re-checked
    here, pixel by pixel: decoded (with the gamma, or through the display model) it must lie
    within its format's tolerance (one level up or down: rounding and dither) plus the read
    file's of the image read, clipped to what the format can show. Without this, a file
    beside the ``.npy`` changed in a way that keeps its statistics (mirrored, its contrast
    scaled, values moved) and re-hashed into the manifest would pass.
    """
    from .keys import DISPLAY_FORMATS

    if data.ndim != 2:
        return None
    gamma = plan.exp["output"]["gamma"]
    ref = np.asarray(data, dtype=np.float64)
    read = next((f["file"] for f in e.get("files", []) if f.get("format") == fmt), e["file"])
    inside = np.ones(ref.shape, dtype=bool)  # where the file read holds the value itself, not a clip
    if display_out.is_display_format(plan, fmt):
        own = display_out.value_tolerance(plan, fmt, ref)
        p_lo, p_hi = display_out.shown_contrast_range(plan, fmt)
        inside = (ref > p_lo + own) & (ref < p_hi - own)  # the display's range clips more than +-1
    else:
        own = _value_tolerance(root, e, data, fmt, gamma)
    for f in e.get("files", []):
        other = f.get("format")
        if other == fmt or other not in ("png8", "png16", *DISPLAY_FORMATS):
            continue
        path = root / f["file"]
        if display_out.is_display_format(plan, other):
            got = display_out.read_contrast(plan, path, other)
            lo, hi = display_out.shown_contrast_range(plan, other)
            tol = display_out.value_tolerance(plan, other, ref)
        else:
            got = _image_from_file(path, other, gamma)
            lo, hi = -1.0, 1.0
            tol = _value_tolerance(root, {"files": [f]}, ref, other, gamma)
        if list(got.shape) != list(ref.shape):
            return f"{f['file']} ({other}) does not show the image of this file: shape {list(got.shape)}, not {list(ref.shape)}"
        expect = np.clip(ref, lo, hi)
        resid = np.abs(got - expect)
        allowed = tol + own
        over = np.where(inside, resid - allowed, -np.inf)
        if not inside.all():  # clipped in the file read: the other file shows at least (at most) that clip
            top = ref >= 0.0
            over = np.where(~inside & top, expect - allowed - got, over)
            over = np.where(~inside & ~top, got - expect - allowed, over)
        if np.any(over > 0):
            worst = np.unravel_index(int(np.argmax(over)), resid.shape)
            return (f"{f['file']} ({other}) does not show the image of {read} ({fmt}): decoded, it is off by "
                    f"{resid[worst]:.3g} at pixel {list(map(int, worst))} (allowed {allowed[worst]:.3g}: one "
                    f"{other} level and the {fmt} rounding)")  # fmt: skip
    return None


def _value_tolerance(root: Path, e: Mapping[str, Any], data: np.ndarray, fmt: str, gamma: float | None) -> np.ndarray:
    """Per pixel, how far a value read back may lie from the value written (signed contrast).

    ``.npy``: float rounding (a few float32 ulps of the values composed, none where they are 0). PNG: one level up
    or down, decoded (with the gamma), which bounds rounding (half a level) and the
    noisy-bit dither (under one level).
    """
    if fmt == "npy":
        return np.abs(data).astype(np.float64) * 4 * np.finfo(data.dtype).eps  # exactly 0 stays exactly 0
    from ..io import read_image

    f = next((f for f in e.get("files", []) if f.get("format") == fmt), e)
    levels = read_image(root / f["file"]).astype(np.float64)
    top = 255.0 if fmt == "png8" else 65535.0

    def decode(lv: np.ndarray) -> np.ndarray:
        lum = np.clip(lv, 0.0, top) / top
        return (lum**gamma if gamma is not None else lum) * 2.0 - 1.0

    mid = decode(levels)
    return np.maximum(decode(levels + 1) - mid, mid - decode(levels - 1)) + 1e-12


def _verify_composition(plan: Plan, root: Path, e: Mapping[str, Any], data: np.ndarray, fmt: str,
                        entropy: int) -> tuple[str | None, dict[str, np.ndarray], str | None]:  # fmt: skip
    """Take a composed stimulus apart from its file; re-check E and N.

    The stimulus is regenerated (noise, target, window); then from the FILE:
    ``composite - window * target`` must equal the regenerated noise as shown
    (``window * noise``, or the masked noise) within the format's tolerance
    (:func:`_value_tolerance`) at every pixel the one clip left alone; E of
    ``composite - noise shown`` must equal the manifest's ``target_energy_deg2`` within the
    bound those tolerances give (``2 |t| |d| + |d|^2``, Cauchy-Schwarz); and without an
    aperture, N at the target's frequency measured (:func:`stimgen.energy.measure_psd`)
    from ``composite - target`` must equal the manifest's ``measured_at_target`` within the
    bound ``2 sqrt(N D) + D`` with ``D = sum(d^2) / (k ppd^2)`` (Parseval, k DFT samples of
    the bin). With an aperture the noise outside it is not in the file, so N and the
    spectrum are re-measured from the regenerated noise, which the file was just shown to
    hold (windowed).

    Returns the failure (or None), the components each part re-checks (``noise``), and a
    note (what could not be re-checked from the file, or None).
    """
    from ..energy import contrast_energy, measure_psd
    from .noise_part import condition_filter
    from .target_part import measure_at_target, orientation_window, target_params

    drawing, frac, c = _regenerated(plan, int(e["index"]), entropy)
    comps = drawing.components
    noise = comps.get("noise")
    if noise is None:
        return None, {}, None
    msg = _recheck_energy(plan, c, drawing, e)
    if msg:
        return msg, {}, None
    shown_clip = [f["display"].get("clipped_fraction") for f in e.get("files", []) if isinstance(f.get("display"), Mapping)]
    least = max([frac, *(x for x in shown_clip if isinstance(x, int | float))])
    recorded = e.get("clipped_fraction")
    if not isinstance(recorded, int | float) or recorded < least - 1e-12:
        return (f"the regenerated composite clips {least:.6g} of its pixels (at +-1, or in a display file), "
                f"more than the manifest's clipped_fraction {recorded!r}"), {}, None  # fmt: skip
    f64 = np.float64
    t = comps.get("target")
    w = comps.get("window")
    tw = np.zeros(plan.shape) if t is None else (t.astype(f64) if w is None else t.astype(f64) * w.astype(f64))
    shown = comps.get("noise_shown", noise).astype(f64)
    got = data.astype(f64) - tw
    if display_out.is_display_format(plan, fmt):
        tol = display_out.value_tolerance(plan, fmt, data)
    else:
        tol = _value_tolerance(root, e, data, fmt, plan.exp["output"]["gamma"])
    if fmt == "npy":
        tol = tol + 4 * np.finfo(data.dtype).eps * (np.abs(tw) + np.abs(shown))
    lo, hi = -1.0, 1.0  # what the file can hold: the clip to [-1, 1], and a display's range
    if display_out.is_display_format(plan, fmt):
        d_lo, d_hi = display_out.shown_contrast_range(plan, fmt)
        lo, hi = max(lo, d_lo), min(hi, d_hi)
    total = tw + shown
    kept = (total >= lo + tol) & (total <= hi - tol)  # pixels the clip did not touch
    resid = np.abs(got - shown)
    bad = kept & (resid > tol)
    if np.any(bad):
        worst = np.unravel_index(int(np.argmax(np.where(bad, resid - tol, -np.inf))), resid.shape)
        return (f"re-measured noise (composite - window * target) is off by {resid[worst]:.3g} from the "
                f"regenerated noise (window * noise) at pixel {list(map(int, worst))} (allowed {tol[worst]:.3g} for {fmt})"), {}, None  # fmt: skip
    off = np.where(kept, 0.0, np.abs(data.astype(f64) - np.clip(total, lo, hi)) - tol)  # a clipped pixel holds the clip
    if np.any(off > 0):
        worst = np.unravel_index(int(np.argmax(off)), off.shape)
        return (f"clipped pixel {list(map(int, worst))} holds {float(data[worst]):.6g}, but the regenerated stimulus "
                f"({float(total[worst]):.6g}) clipped to [{lo:.4g}, {hi:.4g}] is {float(np.clip(total[worst], lo, hi)):.6g} "
                f"(allowed {tol[worst]:.3g} for {fmt})"), {}, None  # fmt: skip
    n_clipped = int(np.count_nonzero(~kept))
    notes = []
    out: dict[str, np.ndarray] = {"noise": noise}
    ppd = plan.ppd
    if n_clipped:
        notes.append(f"{n_clipped} clipped pixel(s) (or within rounding of +-1): E and N re-checked from the regenerated parts only")
    e_rec = e.get("target_energy_deg2")
    if t is not None and e_rec is not None and not n_clipped:
        shown_t = data.astype(f64) - shown
        e_file = float(contrast_energy(shown_t, ppd))
        d2 = float(np.sum(np.square(tol)))
        bound = (2.0 * np.sqrt(float(np.sum(np.square(tw))) * d2) + d2) / ppd**2 + 1e-12 * abs(e_rec)
        if abs(e_file - e_rec) > bound:
            return (f"re-measured E of the target in the file ({e_file:.6g} deg^2) differs from the manifest's "
                    f"target_energy_deg2 {e_rec:.6g} by more than {bound:.3g} ({fmt})"), {}, None  # fmt: skip
    n_rec = (e.get("noise_psd_deg2") or {}) if isinstance(e.get("noise_psd_deg2"), dict) else {}
    if w is None and not n_clipped:
        out["noise"] = got  # the noise part re-measures the noise read from the file
        sf, n_man = n_rec.get("target_sf_cpd"), n_rec.get("measured_at_target")
        filt = condition_filter(plan, plan.locate(int(e["index"]))[0])
        if sf is not None and n_man is not None and orientation_window(filt) is not None:
            ori = float(target_params(plan.locate(int(e["index"]))[0])["orientation_deg"])  # the plan's, as measured
            m = measure_at_target(got, ppd, filt, sf, ori)  # the sector the manifest's N was measured in
            if m["value"] is None:
                return f"N at {sf:g} cpd cannot be re-measured from the file: {m['reason']}", {}, None
            n_file = float(m["value"])
            d = float(np.sum(np.square(tol))) / (m["k"] * ppd**2)
            bound = 2.0 * np.sqrt(max(n_file, n_man) * d) + d + 1e-9 * abs(n_man)
            if abs(n_file - n_man) > bound:
                return (f"re-measured N at {sf:g} cpd along {ori:g} deg from the file ({n_file:.6g} deg^2) differs from "
                        f"the manifest's measured_at_target {n_man:.6g} by more than {bound:.3g} ({fmt})"), {}, None  # fmt: skip
        elif sf is not None and n_man is not None:
            psd = measure_psd(got, ppd)
            n_file = float(psd.at(sf))
            j = np.searchsorted(psd.freq_cpd, sf)
            near = [i for i in (j - 1, j) if 0 <= i < len(psd.counts)]
            d = float(np.sum(np.square(tol))) / (min(float(psd.counts[i]) for i in near) * ppd**2)
            n_max = max(float(psd.psd_deg2[i]) for i in near)
            bound = 2.0 * np.sqrt(n_max * d) + d + 1e-9 * abs(n_man)
            if abs(n_file - n_man) > bound:
                return (f"re-measured N at {sf:g} cpd from the file ({n_file:.6g} deg^2) differs from the "
                        f"manifest's measured_at_target {n_man:.6g} by more than {bound:.3g} ({fmt})"), {}, None  # fmt: skip
    return None, out, ("; ".join(notes) or None)


def _regenerated(plan: Plan, index: int, entropy: int) -> tuple[Any, float, Condition]:
    """``draw(plan, index, entropy)``'s drawing, clipped fraction and condition, drawn once
    per stimulus: verify takes a composed stimulus apart once and re-decodes each of its
    display files against the same components (the last stimulus' is kept; read-only)."""
    from .draw import draw

    memo = plan.memo("verify.regenerated", dict)
    if memo.get("key") != (index, entropy):
        drawing, frac, _, c, _ = draw(plan, index, entropy)
        for a in (drawing.data, *drawing.components.values()):
            if isinstance(a, np.ndarray):
                a.setflags(write=False)
        memo.clear()
        memo.update(key=(index, entropy), value=(drawing, frac, c))
    return memo["value"]


def _recheck_energy(plan: Plan, c: Condition, drawing: Any, e: Mapping[str, Any]) -> str | None:
    """The entry's E, N and E / N re-derived from the regenerated stimulus (to 1e-9).

    Every number is the one :mod:`stimgen.experiment.target_part` recorded: E of the
    regenerated target (windowed), the design N, the N measured from the regenerated noise,
    E / N; so a manifest number that is not the stimulus' fails even where the file cannot
    show it (clipped pixels, the noise outside an aperture).
    """
    from .._json import jsonable
    from .measure import close
    from .target_part import condition_target, energy_fields, measured_noise_psd

    if "target" in drawing.components:  # the target's record: what the file shows, not what was edited in
        rec = jsonable({k: v for k, v in condition_target(plan, c)[1].items() if k != "value_convention"})
        got = e.get("target_record")
        if not isinstance(got, Mapping) or set(got) != set(rec):
            return f"target_record {got!r} is not the regenerated target's record (keys {sorted(rec)})"
        for k, want_v in rec.items():
            if not _same_json(want_v, got[k]):
                return f"target_record.{k} {got[k]!r} differs from the regenerated target's {want_v!r}"
    want = energy_fields(plan, c, drawing)
    n_want = measured_noise_psd(plan, c, drawing, want)
    n_got = e.get("noise_psd_deg2") if isinstance(e.get("noise_psd_deg2"), Mapping) else {}
    checks = [(k, want.get(k), e.get(k)) for k in ("target_energy_deg2", "target_energy_design_deg2", "e_over_n")]
    checks += [(f"noise_psd_deg2.{k}", n_want.get(k), n_got.get(k))  # type: ignore[union-attr]
               for k in ("at_target", "at_peak", "measured_at_target", "measured_se", "design_in_sector")]  # fmt: skip
    for key, a, b in checks:
        if not close(a, b, 1e-9):
            return f"re-derived {key} {a!r} of the regenerated stimulus differs from the manifest's {b!r}"
    return None


class _EntrySpan(Sequence):
    """Entries ``start .. stop - 1`` of a set, read from its list or its entries file when asked for.

    Holds no entry itself, so re-checking a condition of many stimuli costs no memory per stimulus.
    """

    def __init__(self, entries: Sequence[Mapping[str, Any]], start: int, stop: int) -> None:
        self.entries, self.start, self.stop = entries, start, stop

    def __len__(self) -> int:
        return self.stop - self.start

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        j = i + len(self) if i < 0 else i
        if not 0 <= j < len(self):
            raise IndexError(f"entry {i} out of range for {len(self)} entries")
        return self.entries[self.start + j]


def _verify_summary(plan: Plan, root: Path, c: Condition, summary: Mapping[str, Any], entries: Sequence[Mapping[str, Any]]):
    """``(where, message)`` for each part that re-measures a condition's summary differently.

    Each part reads the condition's stimuli lazily, only if it re-checks its summary.
    """
    exact = all(_read_format(e) == "npy" for e in entries)
    for part in plan.parts:
        data = (_read_stimulus(plan, root, e)[0] for e in entries)
        msg = part.verify_summary(plan, c, summary, entries, data, exact)
        if msg:
            yield f"manifest.json: conditions[{c.index}] ({c.label})", msg


def _same_json(a: Any, b: Any) -> bool:
    """JSON values equal, numbers within 1e-9 relative (lists and mappings element by element)."""
    from .measure import close

    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return set(a) == set(b) and all(_same_json(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same_json(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, int | float) and not isinstance(a, bool) and isinstance(b, int | float) and not isinstance(b, bool):
        return close(a, b, 1e-9)
    return a == b


def _regenerates_exactly(plan: Plan, root: Path, e: Mapping[str, Any], entropy: int) -> bool:
    """Whether every file of a stimulus is byte for byte the stimulus regenerated from the
    manifest (a re-measurement from quantized levels that differs is then no damage)."""
    from .draw import make_entry

    try:
        _, files, _, _ = make_entry(plan, int(e["index"]), entropy, measure=False)
    except (ValueError, OSError):
        return False
    for rel, _, data in files:
        p = root / rel
        try:
            if not p.is_file() or p.read_bytes() != data:
                return False
        except OSError:
            return False
    return bool(files)


def _read_format(e: Mapping[str, Any]) -> str:
    formats = {f.get("format") for f in e.get("files", [])}
    return "npy" if "npy" in formats else ("png16" if "png16" in formats else "png8")


def regenerate_stimulus(
    path: str | os.PathLike,
    index: int,
    *,
    out: str | os.PathLike | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Rebuild stimulus ``index`` of a set from its manifest alone and compare the bytes.

    Parameters
    ----------
    path : path
        The set's directory (or its manifest.json). Only the manifest is read.
    index : int
        0-based stimulus index (``manifest["stimuli"][index]``).
    out : path, optional
        A new directory to write the regenerated files into (the set's layout), with a
        ``regenerated.json`` record of what was regenerated from where. It is written
        whole or not at all, never inside a stimulus set, and must not exist unless
        ``force``.
    force : bool
        Replace an existing ``out`` that an earlier regeneration wrote (one holding only
        the files its ``regenerated.json`` lists, or an empty folder); nothing else is
        ever replaced.

    Returns
    -------
    dict
        ``index``, ``condition``, ``match`` (all regenerated files byte-identical to the
        manifest's hashes), ``on_disk_match`` (the set's files on disk are those bytes too)
        and ``files``: for each format the manifest's, the regenerated and the on-disk
        sha256 (None for a missing file); with ``out``, also ``out``. Byte identity needs
        the same numpy/scipy versions as the manifest's (a different version may change the
        random stream or the FFT rounding).

    Raises
    ------
    stimgen.io.OutputExistsError
        If ``out`` exists and ``force`` is false, may not be replaced, or lies inside a
        stimulus set (this one or another). Nothing is written.
    """
    from ..io import sha256_bytes, sha256_file

    root, manifest = read_manifest(path)
    n = len(manifest["stimuli"])
    if isinstance(index, bool) or not isinstance(index, int | np.integer) or not 0 <= int(index) < n:
        raise ValueError(f"index must be an integer in [0, {n - 1}], got {index!r}")
    target = None if out is None else _regeneration_target(out)
    exp = validate_experiment(stored_experiment(manifest), source="manifest.json:experiment")
    plan = plan_of(exp)
    entry, files, _, _ = make_entry(plan, int(index), int(manifest["seed_entropy"]), measure=False)
    want = {f["format"]: f for f in manifest["stimuli"][int(index)].get("files", [])}
    rows = []
    for rel, fmt, data in files:
        got = sha256_bytes(data)
        exp_sha = want.get(fmt, {}).get("sha256")
        on_disk = root / rel
        disk_sha = sha256_file(on_disk) if on_disk.is_file() else None
        rows.append({"file": rel, "format": fmt, "sha256_manifest": exp_sha, "sha256_regenerated": got,
                     "sha256_on_disk": disk_sha, "match": got == exp_sha, "on_disk_match": disk_sha == got})
    res: dict[str, Any] = {
        "index": int(index),
        "condition": entry["condition"],
        "files": rows,
        "match": all(r["match"] for r in rows),
        "on_disk_match": all(r["on_disk_match"] for r in rows),
        "versions": {k: manifest.get(k) for k in ("stimgen_version", "numpy_version", "scipy_version")},
    }
    if target is not None:
        _write_regenerated(target, root, res, files, force=force)
        res["out"] = str(out)
    return res


def _regeneration_target(out: str | os.PathLike) -> Path:
    """``out`` made absolute; refused when it lies inside a stimulus set."""
    from ..io import OutputExistsError, stimulus_set_of

    target = Path(os.path.abspath(out))
    inside = stimulus_set_of(target.parent)
    if inside is not None:
        raise OutputExistsError("output {out} is inside the stimulus set {inside}; write the regenerated files elsewhere",
                                out=out, inside=inside)  # fmt: skip
    return target


def _write_regenerated(target: Path, root: Path, res: Mapping[str, Any], files: list[tuple[str, str, bytes]],
                       *, force: bool) -> None:  # fmt: skip
    """The regenerated files and their ``regenerated.json`` record, as one new folder (atomic)."""
    from .._json import jsonable
    from .._version import __version__
    from ..io import REGENERATED_KIND, atomic_directory

    with atomic_directory(target, force=force, kinds=("regenerated.json",)) as tmp:
        for rel, _, data in files:
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp / rel).write_bytes(data)
        names = sorted({rel for rel, _, _ in files}) + ["regenerated.json"]
        record = {"kind": REGENERATED_KIND, "stimgen_version": __version__,
                  "source": str(Path(os.path.abspath(root))), "index": res["index"],
                  "files": names, "sha256": {f["file"]: f["sha256_regenerated"] for f in res["files"]}}  # fmt: skip
        (tmp / "regenerated.json").write_text(json.dumps(jsonable(record), indent=2) + "\n")
