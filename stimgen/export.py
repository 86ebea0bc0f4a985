"""Hand a stimulus set to presentation software or an archive: PsychoPy and BIDS exports.

export_set   ``stimgen export DIR --to psychopy|bids OUT``

Conventions
-----------
* Every file an export takes from the set is hashed first and must match the manifest's
  sha256; a changed or missing file refuses the export (``ValueError`` naming the file),
  before anything is written.
* Exports are deterministic: the same set gives byte-identical output (no timestamps,
  sorted JSON keys, rows in plan order, numbers as Python's shortest round-trip text).
* The output folder is written atomically (:func:`stimgen.io.atomic_directory`) with an
  ``export.json`` record listing its files; ``force`` replaces only an earlier export.
* Rows and orientation: row 0 of every stimgen array is the top of the image, as in a PNG
  file. PsychoPy's ``ImageStim`` shows an image *file* upright (it flips the rows for
  OpenGL itself) but draws a numpy array with row 0 at the bottom, so the generated
  ``present.py`` passes movie frames as ``numpy.flipud(frame)``.
* PsychoPy gets 8-bit PNGs at the stimuli's native size: the set's own ``png8`` files,
  byte for byte, when it has them; otherwise levels quantized from the ``.npy`` (or the
  ``png16``) with :func:`stimgen.contrast.quantize` (rounded to nearest, no dither, the
  set's gamma), which ``export.json`` states. Movies are exported as the set's ``.npy``
  files (float signed contrast, PsychoPy's ``rgb`` range [-1, 1]).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["EXPORT_KINDS", "EXPORT_RECORD", "export_set"]

EXPORT_KINDS = ("psychopy", "bids")
#: The record every export writes at its root (its files, the source set, the method).
EXPORT_RECORD = "export.json"
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: Units of column names by their ending (BIDS ``Units``).
_UNITS = (("_deg_s", "degree/second"), ("_cpd", "cycle/degree"), ("_hz", "Hz"), ("_deg", "degree"),
          ("_px", "pixel"), ("_ms", "millisecond"), ("_s", "second"), ("_octaves", "octave"),
          ("_cm", "centimeter"))


def _unit_of(column: str) -> str | None:
    """The unit a column's name carries (``size_deg_w`` -> degree), or None."""
    if column == "ppd":
        return "pixel/degree"
    for suffix, unit in _UNITS:
        if column.endswith(suffix) or f"{suffix}_" in column:
            return unit
    return None


def _text(v: Any) -> str:
    """A cell: numbers as their shortest round-trip text, None as ``n/a``."""
    if v is None:
        return "n/a"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v)
    return str(v)


def _param_columns(key: str, value: Any) -> list[tuple[str, Any]]:
    """A varied parameter as columns; a band ``band_cpd: [1, 2]`` as ``band_low_cpd``/``band_high_cpd``."""
    if not isinstance(value, list | tuple):
        return [(key, value)]
    unit = next((s for s, _ in _UNITS if key.endswith(s)), "")
    stem = key[: len(key) - len(unit)] if unit else key
    names = ("low", "high") if len(value) == 2 and "band" in key else tuple(str(i) for i in range(len(value)))
    return [(f"{stem}_{n}{unit}", v) for n, v in zip(names, value, strict=True)]


def _param_values(manifest: Mapping[str, Any], vk: list[str]) -> dict[int, list[tuple[str, Any]]]:
    """Per condition index, its varied parameters as ``(column, value)``."""
    out: dict[int, list[tuple[str, Any]]] = {}
    for c in manifest.get("conditions") or []:
        own, params = c.get("own") or {}, c.get("params") or {}
        cols: list[tuple[str, Any]] = []
        for k in vk:
            cols += _param_columns(k, own.get(k, params.get(k)))
        out[int(c["index"])] = cols
    return out


def _checked_bytes(root: Path, f: Mapping[str, Any]) -> bytes:
    """A set file's bytes, after checking them against the manifest's sha256."""
    from .io import sha256_bytes

    rel = str(f["file"])
    p = root / rel
    if not p.is_file():
        raise ValueError(f"{rel}: missing from the set {root}; refusing to export")
    data = p.read_bytes()
    if sha256_bytes(data) != f.get("sha256"):
        raise ValueError(f"{rel}: sha256 differs from the manifest (the file was changed); "
                         "refusing to export this set (run stimgen verify)")
    return data


def _check_all(root: Path, manifest: Mapping[str, Any], entries: list[dict[str, Any]]) -> None:
    """Hash every file of the set (and experiment.yaml) against the manifest, before writing anything."""
    for e in entries:
        for f in e.get("files", [e]):
            _checked_bytes(root, f)
    if manifest.get("experiment_sha256"):
        _checked_bytes(root, {"file": "experiment.yaml", "sha256": manifest["experiment_sha256"]})


def _png8(root: Path, e: Mapping[str, Any], gamma: float | None) -> tuple[bytes, str]:
    """An 8-bit PNG of a still stimulus and how it was made (copied or quantized)."""
    import numpy as np

    from .contrast import quantize
    from .io import png_bytes, read_image

    files = {f.get("format"): f for f in e.get("files", [e])}
    if "png8" in files:
        return _checked_bytes(root, files["png8"]), "copied: the set's own png8 file"
    if "npy" in files:
        _checked_bytes(root, files["npy"])
        a = np.load(root / files["npy"]["file"], allow_pickle=False)
        levels, _ = quantize(a, 8, gamma=gamma)
        return png_bytes(levels, compress_level=9), "quantized from the .npy (round to nearest, no dither)"
    if "png16" in files:
        _checked_bytes(root, files["png16"])
        enc = read_image(root / files["png16"]["file"]).astype(np.float64) / 65535.0 * 2.0 - 1.0
        levels, _ = quantize(enc, 8)  # the 16-bit levels are gamma-encoded already
        return png_bytes(levels, compress_level=9), "quantized from the png16 (round to nearest, no dither)"
    raise ValueError(f"stimulus {e.get('index')} has no npy, png8 or png16 file to export")


class _Writer:
    """Writes an export's files into its temporary folder one at a time (memory stays flat)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.names: list[str] = []
        self.method: set[str] = set()

    def put(self, rel: str, data: bytes) -> None:
        p = self.folder / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        self.names.append(rel)


def _dump_json(obj: Any) -> bytes:
    from ._json import jsonable

    return (json.dumps(jsonable(obj), indent=2, sort_keys=True) + "\n").encode("utf-8")


def _table(columns: list[str], rows: list[dict[str, Any]], delimiter: str) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=delimiter, lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        w.writerow([_text(r.get(c)) for c in columns])
    return buf.getvalue().encode("utf-8")


def _geometry_columns(manifest: Mapping[str, Any]) -> dict[str, Any]:
    h, w = manifest["shape_px"]
    hd, wd = manifest["size_deg"]
    return {"size_px_w": int(w), "size_px_h": int(h), "size_deg_w": float(wd), "size_deg_h": float(hd),
            "ppd": float(manifest["geometry"]["ppd"])}


def _source(manifest: Mapping[str, Any]) -> dict[str, Any]:
    from ._version import __version__

    return {"set": manifest.get("name"), "experiment_file": manifest.get("experiment_file"),
            "experiment_sha256": manifest.get("experiment_sha256"), "seed_entropy": manifest.get("seed_entropy"),
            "set_made_by_stimgen": manifest.get("stimgen_version"), "exported_by_stimgen": __version__,
            "value_convention": manifest.get("value_convention")}


def _psychopy(root: Path, manifest: Mapping[str, Any], entries: list[dict[str, Any]], out: _Writer) -> None:
    """Write the files of a PsychoPy export."""
    motion = manifest.get("motion")
    gamma = (manifest["experiment"].get("output") or {}).get("gamma")
    from .experiment.report import varied_keys

    vk = varied_keys(manifest)
    params = _param_values(manifest, vk)
    geo = _geometry_columns(manifest)
    rows: list[dict[str, Any]] = []
    how = out.method
    width = max(4, len(str(len(entries) - 1)))
    for e in entries:
        i = int(e["index"])
        cond = e["condition"]
        fmts = {f.get("format"): f for f in e.get("files", [e])}
        if motion:
            if "npy" not in fmts:
                raise ValueError(f"movie {i} has no .npy file; PsychoPy export of movies needs npy in output.formats")
            data = _checked_bytes(root, fmts["npy"])
            how.add("copied: the set's own .npy movie (float signed contrast)")
            rel = f"stimuli/{Path(fmts['npy']['file']).parent.name}/{Path(fmts['npy']['file']).name}"
        else:
            data, method = _png8(root, e, gamma)
            how.add(method)
            src = Path(next(f["file"] for f in e.get("files", [e])))
            rel = f"stimuli/{src.parent.name}/{src.stem}.png"
        from .io import sha256_bytes

        out.put(rel, data)
        row: dict[str, Any] = {"stim_file": rel, "stim_id": f"stim_{i:0{width}d}", "condition": int(cond["index"]),
                               "condition_label": cond.get("label"), "repeat": e.get("repeat")}
        row.update(dict(params[int(cond["index"])]))
        row.update(geo)
        if motion:
            row.update({"n_frames": int(manifest["motion"]["n_frames"]),
                        "frame_rate_hz": float(manifest["motion"]["frame_rate_hz"])})
        row["sha256"] = sha256_bytes(data)
        rows.append(row)
    columns = list(rows[0]) if rows else ["stim_file", "stim_id", "condition", "sha256"]
    for c in columns:
        if not _NAME_RE.match(c):  # a rule of PsychoPy's conditions files, never broken silently
            raise ValueError(f"conditions.csv column {c!r} is not a valid PsychoPy name ([A-Za-z_][A-Za-z0-9_]*)")
    out.put("conditions.csv", _table(columns, rows, ","))
    out.put("present.py", _present_py(manifest, bool(motion)).encode("utf-8"))
    if manifest.get("experiment_sha256"):
        out.put("experiment.yaml", _checked_bytes(root, {"file": "experiment.yaml", "sha256": manifest["experiment_sha256"]}))


def _present_py(manifest: Mapping[str, Any], movie: bool) -> str:
    """A minimal runnable PsychoPy script for the exported conditions file."""
    name = manifest.get("name", "stimuli")
    rate = float(manifest["motion"]["frame_rate_hz"]) if movie else 0.0
    lines = [
        f'"""Present the stimulus set {name!r} with PsychoPy (written by stimgen export).',
        "",
        "Each row of conditions.csv is one stimulus, shown once in random order at its native",
        "size in pixels (units='pix', size=native, no interpolation): it subtends size_deg_w x",
        "size_deg_h degrees only on a display with the set's ppd at the set's viewing distance.",
        "The background is the mean luminance (PsychoPy rgb 0 = stimgen signed contrast 0).",
        "Image files are shown upright by ImageStim; numpy arrays (movie frames) are drawn with",
        "row 0 at the bottom, so frames are passed as numpy.flipud(frame). Escape quits.",
        '"""',
        "from pathlib import Path",
        "",
        "import numpy as np",
        "from psychopy import core, data, event, visual",
        "",
        "HERE = Path(__file__).resolve().parent",
        "STIMULUS_S = 0.5  # how long a still stimulus stays on (s)",
        "BLANK_S = 0.5  # mean-luminance blank between stimuli (s)",
        f"MOVIE_FRAME_RATE_HZ = {rate!r}  # the movies' frame rate (0: still images)",
        "",
        "",
        "def main():",
        '    win = visual.Window(fullscr=True, units="pix", color=(0, 0, 0), colorSpace="rgb")',
        '    trials = data.TrialHandler(data.importConditions(str(HERE / "conditions.csv")), nReps=1, method="random")',
        "    refresh_hz = win.getActualFrameRate() or 60.0",
        "    for trial in trials:",
        '        size = (int(trial["size_px_w"]), int(trial["size_px_h"]))',
        "        if MOVIE_FRAME_RATE_HZ:",
        '            movie = np.load(HERE / trial["stim_file"])',
        '            frames = [visual.ImageStim(win, image=np.flipud(f), units="pix", size=size, interpolate=False)',
        "                      for f in movie]",
        "            repeat = max(1, round(refresh_hz / MOVIE_FRAME_RATE_HZ))",
        "            for frame in frames:",
        "                for _ in range(repeat):",
        "                    frame.draw()",
        "                    win.flip()",
        "        else:",
        '            stim = visual.ImageStim(win, image=str(HERE / trial["stim_file"]), units="pix", size=size,',
        "                                    interpolate=False)",
        "            stim.draw()",
        "            win.flip()",
        "            core.wait(STIMULUS_S)",
        "        win.flip()",
        "        core.wait(BLANK_S)",
        '        if event.getKeys(["escape"]):',
        "            break",
        "    win.close()",
        "    core.quit()",
        "",
        "",
        'if __name__ == "__main__":',
        "    main()",
        "",
    ]
    return "\n".join(lines)


_BIDS_DESCRIPTIONS: dict[str, str] = {
    "stim_id": "Unique identifier of the stimulus file (stim-<label>), for the stim_id column of events.tsv",
    "stim_file": "Path of the file, relative to the stimuli/ folder",
    "type": "Media type: image (a still) or video (a movie)",
    "format": "stimgen format: npy (float signed contrast, exact), png8, png16 (quantized levels), gif (8-bit movie preview)",
    "stimulus_index": "0-based index of the stimulus in the set (files of one stimulus share it)",
    "condition": "0-based index of the stimulus' condition",
    "condition_label": "The condition's label",
    "repeat": "0-based repeat of the stimulus within its condition",
    "size_px_w": "Width of the image",
    "size_px_h": "Height of the image",
    "size_deg_w": "Width of the image in visual angle at the set's viewing geometry",
    "size_deg_h": "Height of the image in visual angle at the set's viewing geometry",
    "ppd": "Pixels per degree of visual angle of the set's viewing geometry",
    "n_frames": "Number of frames of a movie (n/a for stills)",
    "frame_rate_hz": "Frame rate a movie is made for (n/a for stills)",
    "pass": "Whether the stimulus passed stimgen's checks (spectrum; speed for movies) when generated",
    "sha256": "SHA-256 of the file",
}


def _bids(root: Path, manifest: Mapping[str, Any], entries: list[dict[str, Any]], out: _Writer) -> None:
    """Write the files of a BIDS (BEP044 draft) stimuli export."""
    from ._version import __version__
    from .experiment.report import varied_keys
    from .io import sha256_bytes

    motion = bool(manifest.get("motion"))
    vk = varied_keys(manifest)
    params = _param_values(manifest, vk)
    geo = _geometry_columns(manifest)
    width = max(4, len(str(len(entries) - 1)))
    rows: list[dict[str, Any]] = []
    for e in entries:
        i = int(e["index"])
        cond = e["condition"]
        for f in e.get("files", [e]):
            fmt = str(f.get("format") or Path(f["file"]).suffix.lstrip("."))
            label = f"{i:0{width}d}{fmt}"
            kind = "video" if motion else "image"
            ext = Path(f["file"]).suffix
            rel = f"stim-{label}_{kind}{ext}"
            data = _checked_bytes(root, f)
            out.put(f"stimuli/{rel}", data)
            row: dict[str, Any] = {"stim_id": f"stim-{label}", "stim_file": rel, "type": kind, "format": fmt,
                                   "stimulus_index": i, "condition": int(cond["index"]),
                                   "condition_label": cond.get("label"), "repeat": e.get("repeat")}
            row.update(dict(params[int(cond["index"])]))
            row.update(geo)
            if motion:
                row.update({"n_frames": int(manifest["motion"]["n_frames"]),
                            "frame_rate_hz": float(manifest["motion"]["frame_rate_hz"])})
            row["pass"] = bool(e.get("pass"))
            row["sha256"] = sha256_bytes(data)
            rows.append(row)
    columns = list(rows[0]) if rows else list(_BIDS_DESCRIPTIONS)
    ids = [r["stim_id"] for r in rows]
    if len(set(ids)) != len(ids):
        raise ValueError("stimuli.tsv: stim_id values are not unique")
    sidecar: dict[str, Any] = {}
    for c in columns:
        desc = _BIDS_DESCRIPTIONS.get(c)
        if desc is None:
            desc = f"Experiment parameter {c} of the stimulus' condition (varied across conditions)"
        sidecar[c] = {"Description": desc}
        unit = _unit_of(c)
        if unit is not None:
            sidecar[c]["Units"] = unit
    sidecar["GeneratedBy"] = [{
        "Name": "stimgen", "Version": __version__,
        "Description": f"stimulus set {manifest.get('name')!r}, made by stimgen {manifest.get('stimgen_version')} "
                       "from its experiment file; regenerate any stimulus with stimgen regenerate",
        "ExperimentFile": manifest.get("experiment_file"), "ExperimentSha256": manifest.get("experiment_sha256"),
        "SeedEntropy": manifest.get("seed_entropy"),
    }]
    sidecar["ValueConvention"] = manifest.get("value_convention")
    out.put("stimuli/stimuli.tsv", _table(columns, rows, "\t"))
    out.put("stimuli/stimuli.json", _dump_json(sidecar))
    if manifest.get("experiment_sha256"):
        out.put("stimuli/experiment.yaml", _checked_bytes(
            root, {"file": "experiment.yaml", "sha256": manifest["experiment_sha256"]}))
    out.method.add("copied: every file of the set, byte for byte")


def export_set(set_dir: str | os.PathLike, out: str | os.PathLike, *, to: str,
               force: bool = False) -> dict[str, Any]:
    """Export a stimulus set for PsychoPy or as BIDS stimuli (BEP044 draft).

    Parameters
    ----------
    set_dir : path
        The set's directory (or its manifest.json).
    out : path
        The export folder to write (must not exist unless ``force``; never inside a set).
    to : {"psychopy", "bids"}
        ``psychopy``: ``stimuli/`` (8-bit PNGs at native size, or the ``.npy`` movies),
        ``conditions.csv`` (one row per stimulus; columns ``stim_file``, ``stim_id``,
        ``condition``, ``condition_label``, ``repeat``, each varied parameter, ``size_px_w``,
        ``size_px_h``, ``size_deg_w``, ``size_deg_h``, ``ppd``, [``n_frames``,
        ``frame_rate_hz``], ``sha256``) and ``present.py``. ``bids``: ``stimuli/`` with every
        file of the set named ``stim-<label>_<image|video>.<ext>``, ``stimuli/stimuli.tsv``
        (one row per file, unique ``stim_id``) and ``stimuli/stimuli.json`` (every column
        described, ``Units`` where its name carries one, ``GeneratedBy`` provenance).
    force : bool
        Replace an existing ``out`` written by an earlier export.

    Returns
    -------
    dict
        ``out``, ``to``, ``n_stimuli``, ``n_files`` (files written) and ``method``.

    Raises
    ------
    ValueError
        ``to`` unknown, or a file of the set is missing or differs from its manifest sha256
        (named; nothing is written).
    """
    from . import _validate as v
    from .experiment import read_manifest
    from .experiment.report import _entries
    from .io import OutputExistsError, atomic_directory, stimulus_set_of

    v.choice("to", to, EXPORT_KINDS)
    root, manifest = read_manifest(set_dir)
    target = Path(os.path.abspath(out))
    inside = stimulus_set_of(target.parent)
    if inside is not None or target == Path(os.path.abspath(root)):
        raise OutputExistsError(f"export folder {out} is inside the stimulus set {inside or root}; "
                                "write the export elsewhere")
    entries = list(_entries(root, manifest))
    _check_all(root, manifest, entries)
    with atomic_directory(out, force=force, kinds=(EXPORT_RECORD,)) as tmp:
        writer = _Writer(tmp)
        (_psychopy if to == "psychopy" else _bids)(root, manifest, entries, writer)
        method = "; ".join(sorted(writer.method))
        record = {"kind": f"stimgen export ({to})", "to": to, "source": _source(manifest), "method": method,
                  "files": sorted([*writer.names, EXPORT_RECORD])}
        writer.put(EXPORT_RECORD, _dump_json(record))
    return {"out": str(out), "to": to, "n_stimuli": len(entries), "n_files": len(writer.names), "method": method}
