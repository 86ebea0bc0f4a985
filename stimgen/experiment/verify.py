"""Verification of a written set against its manifest, and regeneration of one stimulus."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .draw import _entry
from .entries import ENTRIES_FILE, Entries
from .manifest import read_manifest
from .measure import _measure, _measure_motion
from .plan import _Plan, _plan
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
    motion: bool = False  # a set of movies: speeds were re-measured too
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
    from ..io import sha256_file

    entries = manifest["stimuli"]
    if isinstance(entries, Entries) and sha256_file(entries.path) != manifest["entries"]["sha256"]:
        rep = VerifyReport(str(root), n_stimuli=manifest["n_stimuli"], motion=bool(manifest["experiment"].get("motion")))
        rep.failures.append(f"{ENTRIES_FILE}: sha256 differs from the manifest (the file was changed); "
                            "its entries cannot be trusted and were not checked")  # fmt: skip
        return rep
    rep = VerifyReport(str(root), n_stimuli=len(entries), motion=bool(manifest["experiment"].get("motion")))

    if manifest.get("experiment_sha256"):
        y = root / "experiment.yaml"
        if not y.is_file():
            rep.failures.append("experiment.yaml: missing")
        elif sha256_file(y) != manifest["experiment_sha256"]:
            rep.failures.append("experiment.yaml: sha256 differs from the manifest")
    plan = None
    try:
        plan = _plan(validate_experiment(manifest["experiment"], source="manifest.json:experiment"))
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
    listed = set()
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
        what = "spectrum or speed" if "speed_check" in e else "spectrum"
        if require_pass and not e.get("pass"):
            rep.failures.append(f"{e['file']}: its {what} failed the design check when generated")
        elif not e.get("pass"):
            rep.failed_checks.append(f"{e['file']}: its {what} failed the design check when generated")
        if plan is not None and ok_files:
            msg = _verify_spectrum(plan, root, e)
            if msg and msg.startswith(_FAILS_RECHECK):
                rep.failed_checks.append(f"{e['file']}: {msg}")
            elif msg and same_version:
                rep.failures.append(f"{e['file']}: {msg}")
            elif msg:
                rep.notes.append(f"{e['file']}: {msg} (measured by stimgen {made_by}, now {__version__})")
        if on_progress is not None:
            on_progress(1)
    for c in manifest.get("conditions") or []:
        if isinstance(c, dict) and c.get("pass") is False and c.get("n_pass") == c.get("repeats"):
            rep.failed_checks.append(f"condition {c.get('index')} ({c.get('label')}): its pooled spectrum "
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


def _close(a: Any, b: Any, rtol: float) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, list):
        return len(a) == len(b) and all(_close(x, y, rtol) for x, y in zip(a, b, strict=True))
    a, b = float(a), float(b)
    if not (math.isfinite(a) and math.isfinite(b)):
        return a == b
    return abs(a - b) <= rtol * max(abs(a), abs(b), 1e-12)


def _verify_spectrum(plan: _Plan, root: Path, e: dict[str, Any]) -> str | None:
    c, _ = plan.locate(int(e["index"]))
    files = {f["format"]: f for f in e.get("files", [])}
    fmt = "npy" if "npy" in files else ("png16" if "png16" in files else "png8")
    f = files.get(fmt, e)
    data = _image_from_file(root / f["file"], fmt, plan.exp["output"]["gamma"])
    movie = plan.motion is not None
    if movie and (data.ndim != 3 or list(data.shape[1:]) != list(plan.shape)):
        return f"is not a (T, H, W) movie of {plan.shape[0]} x {plan.shape[1]} px frames: shape {list(data.shape)}"
    measured, _ = _measure(plan, c, data[0] if movie else data)
    rtol = 1e-6 if fmt == "npy" else 0.02
    for key in ("peak_cpd", "band_cpd", "alpha", "orientation_deg"):
        if key in e and not _close(measured.get(key), e.get(key), rtol if key != "alpha" else max(rtol, 0.01)):
            return f"re-measured {key} {_fmt_num(measured.get(key))} differs from the manifest's {_fmt_num(e.get(key))}"
    flag = e.get("spectral_pass", e.get("pass")) if movie else e.get("pass")
    if fmt == "npy" and bool(measured["pass"]) != bool(flag):
        return f"re-measured spectral pass {measured['pass']} differs from the manifest's {flag}"
    if flag and not measured["pass"]:  # PNG levels: the values agree, the verdict does not
        return f"{_FAILS_RECHECK} re-measured from its {fmt} levels"
    if movie and "motion_record" in e:
        return _verify_speed(plan, data, e)
    return None


_FAILS_RECHECK = "its spectrum fails the design check"


def _verify_speed(plan: _Plan, movie: np.ndarray, e: dict[str, Any]) -> str | None:
    """Measure a movie's velocity again; it must reproduce the manifest's (to 1e-6 px/frame)."""
    got = _measure_motion(plan, movie, e["motion_record"])
    want = e.get("speed_check")
    if got is None or want is None:
        return None if got is None and want is None else "speed check present in only one of manifest and re-measurement"
    a = got["measured"]["velocity_px_per_frame"]
    b = want["measured"]["velocity_px_per_frame"]
    if not all(_close_abs(x, y, 1e-6) for x, y in zip(a, b, strict=True)):
        return (f"re-measured velocity {_fmt_num(a)} px/frame differs from the manifest's {_fmt_num(b)} "
                f"(requested {_fmt_num(e['velocity_px_per_frame'])})")  # fmt: skip
    if bool(got["pass"]) != bool(want["pass"]):
        return f"re-measured speed pass {got['pass']} differs from the manifest's {want['pass']}"
    return None


def _close_abs(a: Any, b: Any, atol: float) -> bool:
    if a is None or b is None:
        return a is None and b is None
    a, b = float(a), float(b)
    if not (math.isfinite(a) and math.isfinite(b)):
        return a == b or (math.isnan(a) and math.isnan(b))
    return abs(a - b) <= atol + 1e-6 * max(abs(a), abs(b))


def _fmt_num(x: Any) -> str:
    if isinstance(x, list):
        return "[" + ", ".join(_fmt_num(y) for y in x) + "]"
    return f"{x:.5g}" if isinstance(x, float) else str(x)


def regenerate_stimulus(
    path: str | os.PathLike,
    index: int,
    *,
    out: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Rebuild stimulus ``index`` of a set from its manifest alone and compare the bytes.

    Parameters
    ----------
    path : path
        The set's directory (or its manifest.json). Only the manifest is read.
    index : int
        0-based stimulus index (``manifest["stimuli"][index]``).
    out : path, optional
        Directory to write the regenerated files into (created if needed).

    Returns
    -------
    dict
        ``index``, ``condition``, ``match`` (all regenerated files byte-identical to the
        manifest's hashes), ``on_disk_match`` (the set's files on disk are those bytes too)
        and ``files``: for each format the manifest's, the regenerated and the on-disk
        sha256 (None for a missing file). Byte identity needs the
        same numpy/scipy versions as the manifest's (a different version may change the
        random stream or the FFT rounding).
    """
    from ..io import sha256_bytes, sha256_file

    root, manifest = read_manifest(path)
    n = len(manifest["stimuli"])
    if isinstance(index, bool) or not isinstance(index, int | np.integer) or not 0 <= int(index) < n:
        raise ValueError(f"index must be an integer in [0, {n - 1}], got {index!r}")
    exp = validate_experiment(manifest["experiment"], source="manifest.json:experiment")
    plan = _plan(exp)
    entry, files, _, _ = _entry(plan, int(index), int(manifest["seed_entropy"]), measure=False)
    want = {f["format"]: f for f in manifest["stimuli"][int(index)].get("files", [])}
    rows = []
    for rel, fmt, data in files:
        got = sha256_bytes(data)
        exp_sha = want.get(fmt, {}).get("sha256")
        on_disk = root / rel
        disk_sha = sha256_file(on_disk) if on_disk.is_file() else None
        rows.append({"file": rel, "format": fmt, "sha256_manifest": exp_sha, "sha256_regenerated": got,
                     "sha256_on_disk": disk_sha, "match": got == exp_sha, "on_disk_match": disk_sha == got})
        if out is not None:
            target = Path(out) / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
    return {
        "index": int(index),
        "condition": entry["condition"],
        "files": rows,
        "match": all(r["match"] for r in rows),
        "on_disk_match": all(r["on_disk_match"] for r in rows),
        "versions": {k: manifest.get(k) for k in ("stimgen_version", "numpy_version", "scipy_version")},
    }
