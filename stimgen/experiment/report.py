"""``report.html``: one self-contained page that shows a stimulus set to a reviewer.

The page is built from the set's manifest alone (what the run recorded: measured bands,
pass/fail counts, clipping, warnings, figures, versions, the experiment and its sha256),
never from recomputation, so it cannot disagree with the files. It loads nothing from the
network and has no scripts: images are files of the set (relative links) or embedded PNGs
(``data:`` URIs, for sets without PNG files). Failures come first, above the fold and
outside any table; the condition table, figures, example stimuli at their native pixel size,
movies (the set's GIF previews) and provenance follow. It prints on paper (``@media print``).

write_report        (re)write ``DIR/report.html`` atomically; its path
build_report_html   the page's text, from a set directory and its manifest
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .manifest import read_manifest

__all__ = ["build_report_html", "write_report"]

#: Manifest keys that may name a JSON Lines file holding the per-stimulus entries.
ENTRIES_FILE_KEYS = ("entries_file", "entries", "stimuli_file")


def _entries(root: Path, manifest: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """The per-stimulus entries of a set, in plan order.

    Inline in ``manifest["stimuli"]``, or streamed to a JSON Lines file (one entry per line)
    that the manifest names (``manifest["stimuli"]`` itself a file name, or one of
    :data:`ENTRIES_FILE_KEYS`), relative to the set's directory.
    """
    inline = manifest.get("stimuli")
    if isinstance(inline, Sequence) and not isinstance(inline, str):  # a list, or read_manifest's lazy Entries
        yield from inline
        return
    names = [inline] + [manifest.get(k) for k in ENTRIES_FILE_KEYS]
    name = next((n for n in names if isinstance(n, str) and n), None)
    if name is None:
        raise ValueError("the manifest lists no stimuli (no 'stimuli' list and no entries file)")
    rel = Path(name)
    if rel.is_absolute() or ".." in rel.parts:
        raise ValueError(f"the manifest's entries file {name!r} is not a path inside the set")
    with open(root / rel, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{rel}:{n}: not a JSON entry ({exc.msg})") from None


def varied_keys(manifest: Mapping[str, Any]) -> list[str]:
    """The parameters the experiment varies across conditions (each condition's own keys), in order."""
    keys: list[str] = []
    for c in manifest.get("conditions") or []:
        for k in c.get("own") or {}:
            if k != "label" and k not in keys:
                keys.append(k)
    return keys


# -- formatting --------------------------------------------------------------------------
def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _g(x: Any, digits: int = 4) -> str:
    """A number with ``digits`` significant digits; lists as ``a-b``; None as an en dash."""
    if x is None:
        return "\u2013"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        return f"{x:.{digits}g}"
    if isinstance(x, list | tuple):
        return "-".join(_g(v, digits) for v in x)
    return str(x)


def _value(v: Any) -> str:
    """A parameter value as text (a band ``[1, 2]`` as ``1-2``)."""
    if isinstance(v, list | tuple) and all(isinstance(a, int | float) and not isinstance(a, bool) for a in v):
        return "-".join(_g(a) for a in v)
    if isinstance(v, dict | list | tuple):
        return json.dumps(v, sort_keys=True)
    return _g(v)


def _pct(x: float) -> str:
    return f"{100 * x:.3g} %"


def _level(c: Mapping[str, Any]) -> str:
    design = c.get("design") or {}
    return str(design.get("level") or (c.get("params") or {}).get("level") or "half_amplitude").replace("_", " ")


def _design_text(c: Mapping[str, Any]) -> str:
    """The designed band (with its level), or the design exponent, of a condition summary."""
    meas = c.get("measured") or {}
    design = c.get("design") or {}
    if "design_alpha" in meas:
        return f"1/f^{_g(meas['design_alpha'], 3)} power spectrum"
    band = design.get("band_cpd")
    kind = design.get("kind")
    if kind in ("lowpass", "highpass") and isinstance(band, list) and len(band) == 2:
        cutoff = band[1] if kind == "lowpass" else band[0]
        return f"{kind} cutoff {_g(cutoff, 3)} cpd at {_level(c)}"
    if kind == "notch" and isinstance(band, list) and len(band) == 2 and None not in band:
        return f"notch, stop band {_g(band[0], 3)}-{_g(band[1], 3)} cpd at {_level(c)}"
    if isinstance(band, list) and len(band) == 2 and None not in band:
        peak = design.get("peak_cpd")
        return f"{_g(band[0], 3)}-{_g(band[1], 3)} cpd at {_level(c)}" + (
            f", peak {_g(peak, 3)} cpd" if peak is not None else "")
    return "\u2013"


def _measured_text(c: Mapping[str, Any]) -> str:
    """What the run measured for a condition (pooled over its stimuli), as recorded."""
    meas = c.get("measured") or {}
    parts: list[str] = []
    if "alpha" in meas:
        parts.append(f"alpha {_g(meas['alpha'], 3)}")
    band = meas.get("band_cpd")
    kind = (c.get("design") or {}).get("kind")
    if meas.get("cutoff_cpd") is not None:
        parts.append(f"cutoff {_g(meas['cutoff_cpd'], 3)} cpd at {_level(c)}")
    elif isinstance(band, list) and len(band) == 2:
        what = "stop band " if kind == "notch" else ""
        parts.append(f"{what}{_g(band[0], 3)}-{_g(band[1], 3)} cpd at {_level(c)}")
    if meas.get("peak_cpd") is not None:
        parts.append(f"peak {_g(meas['peak_cpd'], 3)} cpd")
    tband = meas.get("temporal_band_hz")
    if isinstance(tband, list) and len(tband) == 2:
        parts.append(f"temporal {_g(tband[0], 3)}-{_g(tband[1], 3)} Hz")
    for k, v in meas.items():  # any further measured quantity a part records
        if k not in ("alpha", "design_alpha", "band_cpd", "peak_cpd", "cutoff_cpd", "temporal_band_hz") and not isinstance(v, dict):
            parts.append(f"{k} {_value(v)}")
    return "; ".join(parts) or "not measured"


def _speed_text(c: Mapping[str, Any]) -> str:
    s = c.get("speed")
    if not isinstance(s, Mapping):
        return ""
    want = f"{_g(s.get('requested_speed_deg_s'), 3)} deg/s"
    if s.get("requested_direction_deg") is not None:
        want += f" at {_g(s['requested_direction_deg'], 3)} deg"
    if s.get("measured_speed_deg_s") is None:
        return f"speed not measurable; requested {want}"
    got = f"{s['measured_speed_deg_s']:.3f} deg/s"
    if s.get("measured_direction_deg") is not None and s.get("direction_error_deg") is not None:
        got += f" at {round(s['requested_direction_deg'] + s['direction_error_deg'], 1) + 0.0:.1f} deg"
    return f"{got} (requested {want})"


def _cond_ok(c: Mapping[str, Any]) -> bool:
    """A condition passes when its pooled check and every one of its stimuli pass."""
    return bool(c.get("pass")) and c.get("n_pass", 0) >= c.get("repeats", 0)


def _stimulus_text(e: Mapping[str, Any]) -> str:
    """What one stimulus measured against its design, as recorded in its entry."""
    parts = []
    if e.get("band_cpd") is not None:
        parts.append(f"band {_value(e['band_cpd'])} cpd (design {_value(e.get('design_band_cpd'))})")
    if e.get("alpha") is not None:
        parts.append(f"alpha {_g(e['alpha'], 3)} (design {_g(e.get('design_alpha'), 3)})")
    speed = e.get("speed_check")
    if isinstance(speed, Mapping) and speed.get("pass") is False:
        parts.append("speed check failed")
    shown = e.get("display_check")
    if isinstance(shown, Mapping) and shown.get("pass") is False and shown.get("failed"):
        parts.append("fails as displayed in " + ", ".join(str(f) for f in shown["failed"]))
    return "; ".join(parts)


def _failures(manifest: Mapping[str, Any], failing: list[Mapping[str, Any]] | None = None) -> list[str]:
    """Every failure and warning the manifest records, as sentences (plain text).

    ``failing``: the entries of stimuli that failed (the first few are named).
    """
    out: list[str] = []
    n, n_pass = manifest.get("n_stimuli", 0), manifest.get("n_pass", 0)
    check = {k: v for k, v in ((manifest.get("experiment") or {}).get("check") or {}).items() if v is not None}
    for c in manifest.get("conditions") or []:
        name = f"condition {c.get('index')} ({c.get('label')})"
        if not _cond_ok(c):
            what = []
            if not c.get("pass", True):
                what.append(f"its pooled measurement fails the design check: measured {_measured_text(c)}, "
                            f"designed {_design_text(c)}")
            else:
                what.append(f"pooled measurement passes ({_measured_text(c)})")
            what.append(f"{c.get('n_pass')}/{c.get('repeats')} stimuli pass")
            if c.get("spectral_pass") is False:
                what.append("the spectral check failed")
            speed = c.get("speed")
            if isinstance(speed, Mapping) and speed.get("pass") is False:
                what.append(f"the speed check failed ({_speed_text(c)})")
            out.append(f"FAIL {name}: " + "; ".join(what))
        clip = c.get("clipping") or {}
        if clip.get("n_over_limit"):
            out.append(f"CLIPPED {name}: {clip['n_over_limit']}/{c.get('repeats')} stimuli have more than "
                       f"{_pct(clip['limit'])} of their pixels clipped at -1 or +1 (up to "
                       f"{_pct(clip['max_clipped_fraction'])}); their contrast and spectrum are distorted")
    if failing:
        shown = [f"{e.get('file')}" + (f" ({t})" if (t := _stimulus_text(e)) else "") for e in failing[:5]]
        more = f" and {len(failing) - 5} more" if len(failing) > 5 else ""
        out.append(f"FAIL stimuli: {'; '.join(shown)}{more}"
                   + (f" [tolerances: {', '.join(f'{k} {_g(v)}' for k, v in check.items())}]" if check else ""))
    for w in manifest.get("warnings") or []:
        out.append(f"WARNING {w}")
    if n_pass < n and not any(s.startswith("FAIL") for s in out):
        out.insert(0, f"FAIL {n - n_pass} of {n} stimuli failed their checks")
    return out


# -- images ------------------------------------------------------------------------------
def _png_data_uri(image: np.ndarray, gamma: float | None) -> str:
    """An embedded 8-bit PNG of a float image (signed contrast), rounded without dither."""
    from ..contrast import quantize
    from ..io import png_bytes

    levels, _ = quantize(np.asarray(image, dtype=np.float64), 8, gamma=gamma)
    return "data:image/png;base64," + base64.b64encode(png_bytes(levels, compress_level=9)).decode("ascii")


def _example_img(root: Path, e: Mapping[str, Any], gamma: float | None, size_note: str) -> str:
    """An ``<img>`` of one stimulus at its native pixel size: its PNG or GIF, else an embedded PNG."""
    files = {f.get("format"): f for f in e.get("files", [e])}
    shape = e.get("shape") or next((f.get("shape") for f in files.values() if f.get("shape")), None)
    h, w = (int(shape[-2]), int(shape[-1])) if shape else (0, 0)
    fmt = next((f for f in ("gif", "png8", "png16") if f in files), None)
    title = f"stimulus {e.get('index')}: {size_note}"
    if fmt is not None:
        src = _e(Path(files[fmt]["file"]).as_posix())
        what = "movie preview (GIF)" if fmt == "gif" else fmt
    elif "npy" in files and (root / files["npy"]["file"]).is_file():
        a = np.load(root / files["npy"]["file"], mmap_mode="r", allow_pickle=False)
        src = _png_data_uri(a[0] if a.ndim == 3 else a, gamma)
        what = "embedded PNG of the .npy" + (" (first frame)" if a.ndim == 3 else "")
        h, w = a.shape[-2], a.shape[-1]
    else:
        return f'<span class="missing">stimulus {_e(e.get("index"))}: no viewable file</span>'
    return (f'<figure class="ex"><img src="{src}" width="{w}" height="{h}" alt="{_e(title)}" '
            f'title="{_e(title)}"><figcaption>#{_e(e.get("index"))} ({_e(what)})</figcaption></figure>')


# -- the page ----------------------------------------------------------------------------
_CSS = """
:root { --fail: #b00020; --ok: #1b5e20; --warn: #8a5a00; --line: #ccc; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #111;
       margin: 0 auto; padding: 12px 20px 40px; max-width: 1180px; background: #fff; }
h1 { font-size: 1.5em; margin: 0.2em 0; } h2 { font-size: 1.2em; margin-top: 1.6em;
     border-bottom: 1px solid var(--line); } h3 { font-size: 1.05em; margin: 1em 0 0.3em; }
.status { border: 3px solid; border-radius: 6px; padding: 8px 14px; margin: 10px 0; }
.status.pass { border-color: var(--ok); background: #eef7ee; }
.status.fail { border-color: var(--fail); background: #fdecee; }
.status .verdict { font-size: 1.35em; font-weight: 700; }
.status.pass .verdict { color: var(--ok); } .status.fail .verdict { color: var(--fail); }
ul.problems { margin: 6px 0; padding-left: 1.3em; } ul.problems li { margin: 3px 0; }
li.fail { color: var(--fail); font-weight: 600; } li.warn { color: var(--warn); font-weight: 600; }
.meta { color: #444; font-size: 0.93em; }
table { border-collapse: collapse; font-size: 0.9em; margin: 6px 0; }
th, td { border: 1px solid var(--line); padding: 3px 7px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } td.fail, span.fail { color: var(--fail); font-weight: 700; }
td.pass { color: var(--ok); }
.strip { display: flex; flex-wrap: wrap; gap: 8px; align-items: flex-end; }
figure.ex { margin: 0; } figure.ex figcaption { font-size: 0.8em; color: #555; }
img.px, figure.ex img { image-rendering: pixelated; image-rendering: crisp-edges;
     background: #808080; display: block; }
img.fig { max-width: 100%; height: auto; border: 1px solid #eee; margin-top: 6px; }
img.fig.spectrum { max-width: min(100%, 640px); }
pre { background: #f7f7f7; border: 1px solid #e3e3e3; padding: 8px; overflow-x: auto;
      font-size: 0.85em; white-space: pre-wrap; }
code { background: #f3f3f3; padding: 0 3px; }
section.cond { break-inside: avoid; page-break-inside: avoid; }
@media print {
  body { max-width: none; padding: 0; font-size: 11pt; }
  h2 { break-after: avoid; page-break-after: avoid; }
  img.fig { max-width: 16cm; }
  .status { break-inside: avoid; }
  a { color: inherit; text-decoration: none; }
}
"""


def build_report_html(set_dir: str | os.PathLike, manifest: Mapping[str, Any]) -> str:
    """The text of ``report.html`` for the set in ``set_dir`` with this manifest.

    Parameters
    ----------
    set_dir : path
        The set's directory; image links are relative to it.
    manifest : mapping
        The set's manifest (:func:`stimgen.experiment.read_manifest`).

    Returns
    -------
    str
        A complete HTML document, without scripts or external resources.
    """
    root = Path(set_dir)
    m = manifest
    exp = m.get("experiment") or {}
    conds = list(m.get("conditions") or [])
    geo = m.get("geometry") or {}
    ppd = geo.get("ppd")
    shape = m.get("shape_px") or [0, 0]
    size_deg = m.get("size_deg") or [None, None]
    motion = m.get("motion")
    gamma = (exp.get("output") or {}).get("gamma")
    n, n_pass = int(m.get("n_stimuli", 0)), int(m.get("n_pass", 0))
    n_cond_pass = sum(_cond_ok(c) for c in conds)
    problems = _failures(m, [e for e in _entries(root, m) if not e.get("pass")])
    from ..motion import ALIASED_POWER_WARNING

    aliased = [float((e.get("temporal_aliasing") or {}).get("aliased_power_fraction") or 0.0) for e in _entries(root, m)]
    if any(a > ALIASED_POWER_WARNING for a in aliased):
        problems.append(f"WARNING {sum(a > ALIASED_POWER_WARNING for a in aliased)} of {n} movies have more than "
                        f"{_pct(ALIASED_POWER_WARNING)} of their power temporally aliased (up to {_pct(max(aliased))}: "
                        "it moves faster than half a cycle per frame)")
    failed = any(p.startswith(("FAIL", "CLIPPED")) for p in problems)
    size_note = (f"{shape[0]} x {shape[1]} px = {_g(size_deg[0], 4)} x {_g(size_deg[1], 4)} deg "
                 f"at {_g(ppd, 4)} px/deg")
    out: list[str] = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(m.get('name', 'stimulus set'))}: stimgen report</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{_e(m.get('name', 'stimulus set'))}</h1>",
    ]
    if exp.get("description"):
        out.append(f'<p class="meta">{_e(exp["description"])}</p>')
    # -- the verdict and every failure or warning, first ---------------------------------
    verdict = "FAIL" if failed or n_pass < n else "PASS"
    checks = "spectra (first frames) and speeds" if motion else "checks"
    out.append(f'<div id="summary" class="status {verdict.lower()}">')
    out.append(f'<div class="verdict">{verdict}: {n_pass} of {n} stimuli pass their {checks}; '
               f"{n_cond_pass} of {len(conds)} conditions pass entirely</div>")
    if problems:
        out.append('<ul class="problems" id="problems">')
        for p in problems:
            cls = "fail" if p.startswith(("FAIL", "CLIPPED")) else "warn"
            out.append(f'<li class="{cls}">{_e(p)}</li>')
        out.append("</ul>")
    else:
        out.append('<p id="problems">No failures, no clipping beyond the limit, no warnings recorded.</p>')
    out.append("</div>")
    n_files = 0
    fingerprint = hashlib.sha256()
    for e in _entries(root, m):
        for f in e.get("files", [e]):
            n_files += 1
            fingerprint.update(f"{f.get('file')}\t{f.get('sha256')}\n".encode())
    out.append(
        f'<p class="meta">{n} {"movies" if motion else "stimuli"} of {size_note}; seed entropy '
        f"<code>{_e(m.get('seed_entropy'))}</code>; made {_e(m.get('created_utc', '?'))} by stimgen "
        f"{_e(m.get('stimgen_version', '?'))}. This page shows what the run recorded in "
        "<code>manifest.json</code>; it does not re-check the files.</p>")
    # -- the condition table ---------------------------------------------------------------
    vk = varied_keys(m)
    out.append("<h2>Conditions</h2>")
    head = ["#", "label", *vk, "design", "measured (pooled)"]
    if motion:
        head.append("speed")
    head += ["pooled check", "stimuli pass", "max clipped"]
    out.append("<table><thead><tr>" + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr></thead><tbody>")
    for c in conds:
        own = c.get("own") or {}
        cells = [_e(c.get("index")), _e(c.get("label"))] + [_e(_value(own.get(k, (c.get("params") or {}).get(k)))) for k in vk]
        cells += [_e(_design_text(c)), _e(_measured_text(c))]
        if motion:
            cells.append(_e(_speed_text(c)))
        ok = bool(c.get("pass"))
        clip = c.get("clipping") or {}
        row = "".join(f"<td>{x}</td>" for x in cells)
        row += f'<td class="{"pass" if ok else "fail"}">{"pass" if ok else "FAIL"}</td>'
        all_pass = c.get("n_pass", 0) >= c.get("repeats", 0)
        row += f'<td class="{"pass" if all_pass else "fail"}">{_e(c.get("n_pass"))}/{_e(c.get("repeats"))}</td>'
        clip_cls = ' class="fail"' if clip.get("n_over_limit") else ""
        row += f"<td{clip_cls}>{_e(_pct(clip.get('max_clipped_fraction', 0.0)))} (limit {_e(_pct(clip.get('limit', 0.0)))})</td>"
        out.append(f"<tr>{row}</tr>")
    out.append("</tbody></table>")
    out.append('<p class="meta">Bands are where the amplitude response falls to the stated level of its '
               "peak (half amplitude = 1/2, half power = 1/sqrt 2); measured values are pooled over "
               "each condition's stimuli.</p>")
    # -- per condition: spectrum figure and examples ------------------------------------------
    figures = [str(f) for f in m.get("figures") or []]
    used: set[str] = set()
    n_examples = int((exp.get("output") or {}).get("examples_per_condition") or 4)
    by_cond: dict[int, list[dict[str, Any]]] = {}
    for e in _entries(root, m):
        ci = int((e.get("condition") or {}).get("index", -1))
        lst = by_cond.setdefault(ci, [])
        if len(lst) < n_examples:
            lst.append(e)
    out.append("<h2>Per condition</h2>")
    out.append(f'<p class="meta">Example {"movies (their GIF previews)" if motion else "stimuli"} are shown '
               f"at their native pixel size (one image pixel per screen pixel at 100 % zoom, no "
               f"smoothing): {_e(size_note)} on the display the experiment describes. Gray "
               "background = mean luminance.</p>")
    for c in conds:
        ok = _cond_ok(c)
        out.append(f'<section class="cond"><h3>{_e(c.get("index"))}: {_e(c.get("label"))} '
                   f'<span class="{"meta" if ok else "fail"}">({"pass" if ok else "FAIL"}, '
                   f'{_e(c.get("n_pass"))}/{_e(c.get("repeats"))} stimuli pass)</span></h3>')
        out.append(f'<p class="meta">design {_e(_design_text(c))}; measured {_e(_measured_text(c))}'
                   + (f"; {_e(_speed_text(c))}" if c.get("speed") else "") + "</p>")
        out.append('<div class="strip">')
        for e in by_cond.get(int(c.get("index", -1)), []):
            out.append(_example_img(root, e, gamma, size_note))
        out.append("</div>")
        folder = str(c.get("folder") or "")
        for f in figures:
            if folder and folder in Path(f).name:
                used.add(f)
                out.append(f'<img class="fig spectrum" src="{_e(f)}" alt="{_e(Path(f).stem)}">')
        out.append("</section>")
    rest = [f for f in figures if f not in used]
    if rest:
        out.append("<h2>Figures of the set</h2>")
        for f in rest:
            out.append(f'<h3>{_e(Path(f).stem.replace("_", " "))}</h3><img class="fig" src="{_e(f)}" alt="{_e(Path(f).stem)}">')
    # -- verify ----------------------------------------------------------------------------
    out.append("<h2>Verify</h2>")
    out.append(
        f"<p>The manifest lists {n_files} files with their sha256 (digest of the sorted list of "
        f"file names and hashes: <code>{fingerprint.hexdigest()[:16]}</code>). To check that the "
        "files on disk are these, and re-measure every spectrum"
        f"{' and speed' if motion else ''}, run:</p>"
        "<pre>stimgen verify .            # in this folder; exit status 0 = all files and checks hold\n"
        "stimgen verify . --require-pass   # also fail on stimuli that failed at generation\n"
        "stimgen regenerate . --index 0    # rebuild one stimulus from the manifest alone</pre>")
    # -- experiment and provenance ---------------------------------------------------------
    out.append("<h2>Experiment</h2>")
    rows = [("experiment file", m.get("experiment_file")), ("experiment sha256", m.get("experiment_sha256")),
            ("seed entropy", m.get("seed_entropy")), ("stimuli", n), ("conditions", len(conds)),
            ("size", size_note), ("value convention", m.get("value_convention"))]
    rows += [(f"geometry: {k}", _g(v, 6)) for k, v in geo.items() if v is not None]
    rows += [(f"display: {k}", _g(v, 6)) for k, v in (exp.get("display") or {}).items() if v is not None]
    if isinstance(motion, Mapping):
        rows += [(f"motion: {k}", _value(v)) for k, v in motion.items()]
    rows += [(k.replace("_", " "), m.get(k)) for k in ("stimgen_version", "python_version", "numpy_version",
                                                       "scipy_version", "platform", "created_utc", "manifest_version")
             if m.get(k) is not None]
    out.append("<table><tbody>" + "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
               + "</tbody></table>")
    yaml_path = root / "experiment.yaml"
    if m.get("experiment_sha256") and yaml_path.is_file():
        text = yaml_path.read_bytes().decode("utf-8", errors="replace")
        out.append(f"<h3>experiment.yaml (sha256 <code>{_e(m['experiment_sha256'])}</code> in the manifest)</h3>")
        out.append(f"<pre>{_e(text)}</pre>")
    out.append("<h3>The resolved experiment (every default filled in, as stored in the manifest)</h3>")
    out.append(f"<pre>{_e(json.dumps(exp, indent=1, sort_keys=False))}</pre>")
    out.append('<p class="meta">Written by stimgen from manifest.json; rebuild with '
               "<code>stimgen report .</code></p></body></html>")
    return "\n".join(out) + "\n"


def write_report(set_dir: str | os.PathLike) -> Path:
    """(Re)write ``report.html`` at the root of a stimulus set, atomically.

    Parameters
    ----------
    set_dir : path
        The set's directory (or its manifest.json).

    Returns
    -------
    Path
        The report's path.
    """
    from ..io import atomic_write_bytes

    root, manifest = read_manifest(set_dir)
    path = root / "report.html"
    atomic_write_bytes(path, build_report_html(root, manifest).encode("utf-8"))
    return path
