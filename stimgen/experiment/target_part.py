"""The ``target`` part: a Gabor or a grating in the noise, and the E / N of every stimulus.

Section ``target`` (optional): ``kind: gabor | grating`` and the keys of
:func:`stimgen.gabor` / :func:`stimgen.grating`. Conditions and the factorial vary them
spelled with the section's name (``target.contrast``, ``target.sf_cpd``): a bare
``contrast`` or ``orientation_deg`` never means the target's. The target is drawn in signed
contrast with :func:`stimgen.gabor` or :func:`stimgen.grating` (no generator: it is the
same in every repeat) and added to the noise; an ``aperture`` section windows the sum.

Every stimulus of a set with a target or an aperture records, in the field's units
(:mod:`stimgen.energy`): ``target_energy_deg2`` (E, contrast^2 deg^2, of the target as
shown), ``noise_psd_deg2`` (N at the target's frequency and at the noise's peak, designed
and measured) and ``e_over_n``; each condition's summary their means over its repeats.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._yamlschema import Checker, has_bad
from ..apertures import MAX_CENTER_DEG
from .parts import PARTS, BasePart, Drawing, Measured, register
from .plan import Condition, Plan

TARGET_KINDS = ("gabor", "grating")
TARGET_DEFAULTS: dict[str, Any] = {
    "kind": "gabor",
    "sf_cpd": None,
    "orientation_deg": 0.0,
    "phase_deg": 0.0,
    "sigma_deg": None,
    "fwhm_deg": None,
    "contrast": None,
    "center_deg": [0.0, 0.0],
}
ENVELOPE = ("sigma_deg", "fwhm_deg")
_P = "target."


def _bare(key: str, section: str) -> str:
    return key.removeprefix(section + ".")


def target_params(c: Condition) -> dict[str, Any]:
    """A condition's resolved target keys, without the ``target.`` prefix."""
    return {k: c.params[_P + k] for k in TARGET_DEFAULTS}


def make_target(p: Mapping[str, Any], shape: tuple[int, int], ppd: float, dtype: Any) -> tuple[np.ndarray, dict[str, Any]]:
    """The target image and record of resolved target keys (envelope warnings left to the caller)."""
    from ..targets import gabor, grating

    common = {"size_px": list(shape), "ppd": ppd, "sf_cpd": p["sf_cpd"], "orientation_deg": p["orientation_deg"],
              "phase_deg": p["phase_deg"], "contrast": p["contrast"], "center_deg": p["center_deg"], "dtype": dtype}  # fmt: skip
    if p["kind"] == "grating":
        return grating(**common)
    return gabor(**common, sigma_deg=p["sigma_deg"], fwhm_deg=p["fwhm_deg"])


def condition_target(plan: Plan, c: Condition) -> tuple[np.ndarray, dict[str, Any]]:
    """The target of a condition (the last condition's is kept; stimuli arrive in order)."""
    from ..apertures import ApertureWarning

    cached = plan.memo("target.last", lambda: {})
    if cached.get("index") != c.index:
        with warnings.catch_warnings():  # said once per plan by TargetPart.warnings
            warnings.simplefilter("ignore", ApertureWarning)
            img, rec = make_target(target_params(c), plan.shape, plan.ppd, plan.exp["output"]["dtype"])
        img.setflags(write=False)
        cached.clear()
        cached.update(index=c.index, image=img, record=rec)
    return cached["image"], cached["record"]


# -- E and N ------------------------------------------------------------------------------
def energy_part(plan: Plan) -> str:
    """The part that records E and N: the target's when there is one, else the aperture's."""
    return "target" if any(p.name == "target" for p in plan.parts) else "aperture"


def noise_level(plan: Plan, c: Condition, drawing: Drawing | None = None, gain: float | None = None) -> float:
    """The RMS contrast of the noise as shown: the condition's, times a mask's gain."""
    if gain is None and drawing is not None:
        gain = (drawing.records.get("aperture_record") or {}).get("gain")
    return float(c.params["rms_contrast"]) * (1.0 if gain is None else float(gain))


def energy_fields(plan: Plan, c: Condition, drawing: Drawing) -> dict[str, Any]:
    """E of the target as drawn (windowed), N from the design at the noise level used, E / N."""
    from ..energy import contrast_energy, noise_psd
    from .noise_part import condition_filter

    t = drawing.components.get("target")
    w = drawing.components.get("window")
    out: dict[str, Any] = {}
    rec = condition_target(plan, c)[1] if t is not None else None
    if t is None:
        out["target_energy_deg2"] = None
        out["target_energy_design_deg2"] = None
    else:
        shown = t if w is None else t * w
        out["target_energy_deg2"] = float(contrast_energy(shown, plan.ppd))
        out["target_energy_design_deg2"] = rec.get("energy_formula_deg2") if w is None else None  # type: ignore[union-attr]
    filt = condition_filter(plan, c)
    level = noise_level(plan, c, drawing)
    n: dict[str, Any] = {"rms_contrast": level, "at_peak": None, "at_target": None, "target_sf_cpd": None}
    reasons = []
    try:
        n["at_peak"] = float(noise_psd(filt, ppd=plan.ppd, rms_contrast=level, shape_px=plan.shape))
    except ValueError as exc:
        reasons.append(f"at_peak: {' '.join(str(exc).split())}")
    if rec is not None:
        n["target_sf_cpd"] = rec["sf_cpd"]
        try:
            n["at_target"] = float(noise_psd(filt, ppd=plan.ppd, rms_contrast=level, shape_px=plan.shape,
                                             freq_cpd=rec["sf_cpd"], orientation_deg=rec["orientation_deg"]))  # fmt: skip
        except ValueError as exc:
            reasons.append(f"at_target: {' '.join(str(exc).split())}")
    if reasons:
        n["not_measurable"] = "; ".join(reasons)
    out["noise_psd_deg2"] = n
    out["e_over_n"], why = None, None
    if out["target_energy_deg2"] is None:
        why = "no target"
    elif not n["at_target"]:
        why = "N at the target's frequency is 0 (the noise has no power there)" if n["at_target"] == 0 else \
            "N at the target's frequency is unknown (" + n.get("not_measurable", "") + ")"
    elif n["at_target"] < (floor := rounding_floor(plan, level)):
        why = (f"N at the target's frequency ({n['at_target']:.3g} deg^2) is below the rounding noise of the "
               f"stored {np.dtype(plan.exp['output']['dtype']).name} values ({floor:.3g} deg^2): the stimulus "
               "cannot hold so little noise, so E / N would be a number of the design alone")  # fmt: skip
    else:
        out["e_over_n"] = out["target_energy_deg2"] / n["at_target"]
    if why:
        out["e_over_n_reason"] = why
    return out


def orientation_window(filt: Any) -> Any:
    """The orientation window of a noise filter (None for an isotropic noise)."""
    from ..filters import Orientation, Product

    factors = () if filt is None else (filt.factors if isinstance(filt, Product) else (filt,))
    return next((f for f in factors if isinstance(f, Orientation)), None)


def _sector(shape: tuple[int, int], ppd: float, sf: float, orientation_deg: float, half_angle_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """The DFT samples of an image near the 2-D frequency ``sf`` (cpd) along a stripe orientation.

    Those within the 12-per-octave radial bin of ``sf`` (``sf * 2^(+-1/24)``) whose
    frequency-vector angle lies within ``half_angle_deg`` of ``orientation_deg`` (axially: a
    real image's spectrum is symmetric). Returns the mask and ``(fx, fy)`` in cpp.
    """
    h, w = shape
    fy, fx = np.fft.fftfreq(h)[:, None], np.fft.fftfreq(w)[None, :]
    r_cpd = np.hypot(fx, fy) * ppd
    phi = np.degrees(np.arctan2(-fy, fx))  # on screen, rows grow downwards (as Orientation)
    d = (phi - orientation_deg + 90.0) % 180.0 - 90.0
    inside = (r_cpd >= sf * 2 ** (-1 / 24)) & (r_cpd <= sf * 2 ** (1 / 24)) & (np.abs(d) <= half_angle_deg)
    return inside, np.broadcast_arrays(fx, fy)  # type: ignore[return-value]


def sector_design(filt: Any, shape: tuple[int, int], ppd: float, rms_contrast: float, sf: float,
                  orientation_deg: float) -> tuple[float | None, int, str]:  # fmt: skip
    """``(design N averaged over the sector, samples in it, where)`` of an oriented noise at the
    target's frequency (:func:`measure_at_target`'s sector)."""
    from ..energy import _power_integral_cpp

    half = orientation_window(filt).bandwidth_deg / 4.0
    inside, (fx, fy) = _sector(shape, ppd, sf, orientation_deg, half)
    k = int(np.count_nonzero(inside))
    where = (f"the periodogram's DFT samples within the 12-per-octave bin of {sf:g} cpd and within "
             f"+-{half:.4g} deg of the target's orientation {orientation_deg:g} deg (a quarter of the "
             f"noise's orientation bandwidth), {k} samples")  # fmt: skip
    if k == 0:
        return None, 0, where
    h2 = np.square(np.asarray(filt.response(fx[inside], fy[inside]), dtype=np.float64))
    scale = rms_contrast**2 / (_power_integral_cpp(filt, shape) * ppd * ppd)
    return float(np.mean(h2)) * scale, k, where


def measure_at_target(noise: np.ndarray, ppd: float, filt: Any, sf: float, orientation_deg: float) -> dict[str, Any]:
    """N of one noise image measured at the target's frequency, as the design's N is taken.

    Isotropic noise: the radially averaged periodogram (:func:`stimgen.energy.measure_psd`)
    interpolated at ``sf``; ``k`` is the DFT samples of its nearest bin. Noise with an
    orientation window: its design N depends on the orientation, so N is the periodogram
    averaged over the DFT samples of the sector of :func:`sector_design` (the target's
    orientation), never over every orientation. Returns ``value`` (None when not measurable),
    ``k``, ``where``, and ``reason`` when there is no value.
    """
    from ..energy import measure_psd

    if orientation_window(filt) is not None:
        half = orientation_window(filt).bandwidth_deg / 4.0
        inside, _ = _sector(noise.shape, ppd, sf, orientation_deg, half)
        _, k, where = sector_design(filt, noise.shape, ppd, 1.0, sf, orientation_deg)
        if k == 0:
            return {"value": None, "k": 0, "where": where, "reason": f"no DFT sample lies in {where}"}
        a = np.asarray(noise, dtype=np.float64)
        spec = np.fft.fft2(a - a.mean())
        p = np.square(np.abs(spec[inside])) / (a.size * ppd * ppd)
        return {"value": float(np.mean(p)), "k": k, "where": where}
    psd = measure_psd(noise, ppd)
    if not psd.freq_cpd[0] <= sf <= psd.freq_cpd[-1]:
        return {"value": None, "k": 0, "where": "the radially averaged periodogram",
                "reason": (f"the target's {sf:g} cpd lies outside the measured range "
                           f"[{psd.freq_cpd[0]:.4g}, {psd.freq_cpd[-1]:.4g}] cpd")}  # fmt: skip
    j = int(np.argmin(np.abs(np.log(psd.freq_cpd / sf)))) if sf > 0 else 0
    return {"value": float(psd.at(sf)), "k": int(psd.counts[j]),
            "where": "the radially averaged periodogram, interpolated at the target's frequency"}  # fmt: skip


def rounding_floor(plan: Plan, rms_contrast: float) -> float:
    """N (deg^2) of the rounding of the stored values: ``(eps * c)^2 / ppd^2``, ``eps`` of the
    output dtype and ``c`` the noise's RMS contrast (a generous bound of float rounding spread
    over the spectrum; the noise's FFT filtering in that dtype rounds about as much)."""
    eps = float(np.finfo(np.dtype(plan.exp["output"]["dtype"])).eps)
    return (eps * rms_contrast) ** 2 / plan.ppd**2


def measured_noise_psd(plan: Plan, c: Condition, drawing: Drawing, entry: Mapping[str, Any]) -> dict[str, Any]:
    """N measured from the noise component (before any aperture) at the target's frequency.

    ``measured_at_target`` is :func:`measure_at_target` of the one noise image (for noise
    with an orientation window: along the target's orientation; ``design_in_sector`` is then
    the design's N averaged over the same DFT samples), ``measured_where`` says where, and
    ``measured_se`` is its standard error, ``N / sqrt(k / 2)`` with ``k`` the DFT samples
    averaged (half of them independent: the spectrum of a real image is symmetric).
    """
    n = dict(entry["noise_psd_deg2"])
    sf = n.get("target_sf_cpd")
    noise = drawing.components.get("noise", drawing.data)
    if sf is None or noise is None:
        return n
    from .noise_part import condition_filter

    filt = condition_filter(plan, c)
    ori = float(target_params(c)["orientation_deg"])
    got = measure_at_target(noise, plan.ppd, filt, sf, ori)
    n["measured_at_target"] = got["value"]
    n["measured_where"] = got["where"]
    if got["value"] is None:
        n["measured_reason"] = got["reason"]
        return n
    n["measured_se"] = got["value"] / math.sqrt(max(got["k"] / 2.0, 1.0))
    if orientation_window(filt) is not None:
        n["design_in_sector"] = sector_design(filt, plan.shape, plan.ppd, float(n["rms_contrast"]), sf, ori)[0]
    return n


class EnergyPool:
    """Per condition: sums of E, measured N and E / N, and the first stimulus' components."""

    def __init__(self) -> None:
        self.n = 0
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self.example: dict[str, Any] | None = None

    def add(self, key: str, value: Any) -> None:
        if value is not None:
            self.sums[key] = self.sums.get(key, 0.0) + float(value)
            self.counts[key] = self.counts.get(key, 0) + 1

    def mean(self, key: str) -> float | None:
        return self.sums[key] / self.counts[key] if self.counts.get(key) else None


def energy_measure(plan: Plan, c: Condition, drawing: Drawing, entry: Mapping[str, Any]) -> Measured:
    """The measured N, and (first repeat) the components for the condition's figure."""
    n = measured_noise_psd(plan, c, drawing, entry)
    example = None
    r = drawing.index - c.first
    if r == 0 and plan.exp["output"]["figures"]:
        example = {k: np.asarray(v) for k, v in drawing.components.items() if k != "noise_shown"}
        assert drawing.data is not None
        example["composite"] = drawing.data
        if "noise_shown" in drawing.components:  # the noise as it is in the stimulus
            example["noise"] = drawing.components["noise_shown"]
    return Measured({"noise_psd_deg2": n}, None, {"entry": _numbers(entry, n), "example": example})


def _numbers(entry: Mapping[str, Any], n: Mapping[str, Any]) -> dict[str, Any]:
    return {"E": entry.get("target_energy_deg2"), "N": n.get("measured_at_target"),
            "se": n.get("measured_se"), "EN": entry.get("e_over_n"), "N_design": n.get("at_target")}  # fmt: skip


def energy_pool_add(pool: EnergyPool, extra: Any) -> None:
    if extra is None:
        return
    pool.n += 1
    for k, val in extra["entry"].items():
        pool.add(k, val)
        if k == "se" and val is not None:
            pool.add("se2", float(val) ** 2)
    if extra["example"] is not None and pool.example is None:
        pool.example = {**extra["example"], "_numbers": extra["entry"]}  # the first repeat's own E, N, E/N


def energy_summary(plan: Plan, c: Condition, pool: EnergyPool) -> Measured:
    """A condition's E, N and E / N: means over its repeats, with the design values."""
    fields = _design_fields(plan, c)
    n = dict(fields["noise_psd_deg2"])
    n["measured_at_target_mean"] = pool.mean("N")
    se2 = pool.sums.get("se2")
    k = pool.counts.get("se2", 0)
    n["measured_at_target_se"] = math.sqrt(se2) / k if se2 is not None and k else None
    fields["noise_psd_deg2"] = n
    fields["target_energy_deg2"] = pool.mean("E")
    fields["e_over_n"] = pool.mean("EN")
    return Measured(fields, None, None)


def energy_verify_summary(plan: Plan, c: Condition, summary: Mapping[str, Any], entries: Sequence[Mapping[str, Any]]) -> str | None:
    """A condition's E, N and E / N re-derived: the design from the plan, the means from its
    entries (each re-checked from its file); the first that differs."""
    from .measure import close

    design = _design_fields(plan, c)
    n_sum = summary.get("noise_psd_deg2") or {}
    checks = [
        ("target_energy_design_deg2", design["target_energy_design_deg2"], summary.get("target_energy_design_deg2")),
        ("noise_psd_deg2.at_target", design["noise_psd_deg2"]["at_target"], n_sum.get("at_target")),
        ("noise_psd_deg2.at_peak", design["noise_psd_deg2"]["at_peak"], n_sum.get("at_peak")),
        ("noise_psd_deg2.design_in_sector", design["noise_psd_deg2"].get("design_in_sector"), n_sum.get("design_in_sector")),
    ]
    for key, get in (("target_energy_deg2", lambda e: e.get("target_energy_deg2")), ("e_over_n", lambda e: e.get("e_over_n")),
                     ("noise_psd_deg2.measured_at_target_mean", lambda e: (e.get("noise_psd_deg2") or {}).get("measured_at_target"))):  # fmt: skip
        vals = [v for v in map(get, entries) if v is not None]
        mean = float(np.mean(vals)) if vals else None
        got = n_sum.get(key.split(".")[1]) if "." in key else summary.get(key)
        checks.append((key, mean, got))
    for key, want, got in checks:
        if not close(want, got, 1e-9):
            return f"re-measured {key} {want!r} differs from the summary's {got!r}"
    return None


def _design_fields(plan: Plan, c: Condition) -> dict[str, Any]:
    """The design E, N and E / N of a condition, without drawing a stimulus (mask gain: none)."""
    from .noise_part import condition_filter

    d = Drawing(index=c.first, entropy=0)
    if any(p.name == "target" for p in plan.parts):
        d.components["target"] = condition_target(plan, c)[0]
    out = energy_fields(plan, c, d)
    out.pop("target_energy_deg2")
    out.pop("e_over_n")
    out.pop("e_over_n_reason", None)
    n = out["noise_psd_deg2"]
    filt = condition_filter(plan, c)
    if n.get("target_sf_cpd") is not None and orientation_window(filt) is not None:
        ori = float(target_params(c)["orientation_deg"])
        n["design_in_sector"] = sector_design(filt, plan.shape, plan.ppd, float(n["rms_contrast"]), n["target_sf_cpd"], ori)[0]
    if any(p.name == "aperture" for p in plan.parts):  # a windowed target has no closed-form E (as its entries say)
        out["target_energy_design_deg2"] = None
    if out["noise_psd_deg2"] is not None and any(p.name == "aperture" for p in plan.parts):
        out["noise_psd_deg2"]["note"] = ("the design N of the noise before the aperture; with mode: mask "
                                         "each stimulus' N is scaled by its gain")  # fmt: skip
    return out


def component_figure(plan: Plan, c: Condition, pool: EnergyPool, summary: Mapping[str, Any], root: Path) -> list[str]:
    """Target, noise, composite and aperture of the condition's first stimulus, in one figure."""
    if pool.example is None:
        return []
    from .. import plotting
    from .figures import FIGURE_COMPRESS_LEVEL

    ex, pool.example = pool.example, None  # drawn once; the pool is kept to the end of the run
    own = ex.get("_numbers") or {}  # the shown stimulus' own numbers (mask mode: N with its gain)
    e = own.get("E")
    en = own.get("EN")
    title = f"condition {c.index}: {c.label}"
    facts = [f"E = {e:.4g} deg^2" if e is not None else "no target"]
    n_t = own.get("N_design")
    if n_t is not None:
        facts.append(f"N = {n_t:.4g} deg^2")
    if en is not None:
        facts.append(f"E/N = {en:.4g}")
    fig = plotting.plot_stimulus_components(
        [("target", ex.get("target")), ("noise", ex.get("noise")), ("composite", ex.get("composite")),
         ("aperture", ex.get("window"))],
        size_deg=plan.size_deg, title=title + "\n" + ", ".join(facts) + " (first repeat)",
    )  # fmt: skip
    rel = f"figures/components_{c.folder}.png"
    plotting.save(fig, root / rel, compress_level=FIGURE_COMPRESS_LEVEL)
    return [rel]


#: Relative difference between a Gabor's sampled E and its closed form that is warned about.
SAMPLING_TOLERANCE = 0.01


def _sampling_warning(p: Mapping[str, Any], sigma_key: str, shape: tuple[int, int], ppd: float) -> str | None:
    """A Gabor whose pixels do not hold its closed-form E (to 1 %): a carrier near Nyquist
    aliases, an envelope narrower than about a pixel is sampled too coarsely."""
    _, rec = make_target(p, shape, ppd, np.float64)
    got, formula = rec["energy_deg2"], rec["energy_formula_deg2"]
    rel = got / formula - 1.0
    if abs(rel) <= SAMPLING_TOLERANCE:
        return None
    near_nyquist = p["sf_cpd"] > ppd / 4
    key = "target.sf_cpd" if near_nyquist else sigma_key
    why = (f"the carrier ({p['sf_cpd']:g} cpd) is near Nyquist ({ppd / 2:.4g} cpd at {ppd:.4g} ppd) and aliases"
           if near_nyquist else f"the envelope (sigma {rec['sigma_deg']:.4g} deg = {rec['sigma_deg'] * ppd:.3g} px) "
           "is too narrow for the pixels")  # fmt: skip
    return (f"{key}: the sampled Gabor's E ({got:.5g} deg^2) differs from the closed form ({formula:.5g} deg^2) "
            f"by {rel:+.2%}: {why}; each entry's target_energy_deg2 is the sampled E, its "
            "target_energy_design_deg2 the closed form")  # fmt: skip


class TargetPart(BasePart):
    """A Gabor or a grating added to the noise (signed contrast)."""

    name = "target"
    defaults = TARGET_DEFAULTS
    condition_keys = tuple(_P + k for k in TARGET_DEFAULTS)
    nullable = (_P + "sigma_deg", _P + "fwhm_deg")
    composes = True  # verify takes its stimuli apart (stimgen.experiment.verify)
    example = {"kind": "gabor", "sf_cpd": 2.0, "sigma_deg": 0.5, "contrast": 0.1}

    @property
    def absent_hint(self) -> str:
        return "{} belongs to the target section; add a target section (kind: gabor or grating)"

    # -- keys and their checks ----------------------------------------------------------
    def check_value(self, ck: Checker, path: tuple, key: str, value: Any) -> Any:
        k = _bare(key, self.name)
        if value is None and k in ENVELOPE:
            return None
        if k == "kind":
            return ck.choice(path, value, TARGET_KINDS)
        if k == "sf_cpd":
            return ck.number(path, value, low=0)
        if k in ("orientation_deg", "phase_deg"):
            return ck.number(path, value)
        if k in ENVELOPE:
            return ck.number(path, value, low=0, low_open=True)
        if k == "contrast":
            return ck.number(path, value, low=-1, high=1)
        if k == "center_deg":  # within the range the targets and apertures compute exactly
            return ck.numbers(path, value, length=2, low=-MAX_CENTER_DEG, high=MAX_CENTER_DEG)
        raise AssertionError(key)  # pragma: no cover

    def check_keys(self, ck: Checker, path: tuple, given: Mapping[str, Any]) -> None:
        got = {_bare(k, self.name): (k, v) for k, v in given.items() if v is not None}
        if "sigma_deg" in got and "fwhm_deg" in got:
            (ks, vs), (kf, vf) = got["sigma_deg"], got["fwhm_deg"]
            ck.add((*path, kf), f"give {ks} or {kf}, not both (got {ks}: {vs}, {kf}: {vf}; "
                   "fwhm = 2.3548 sigma)", key=True)  # fmt: skip

    def resolve_condition(self, params: dict[str, Any], own: Mapping[str, Any]) -> None:
        """A condition's sigma_deg replaces the section's fwhm_deg, and the other way round."""
        for mine, other in (("sigma_deg", "fwhm_deg"), ("fwhm_deg", "sigma_deg")):
            if own.get(_P + mine) is not None:
                params[_P + other] = None

    def check_condition(self, ck: Checker, exp: Mapping[str, Any], c: Condition,
                        shape: tuple[int, int], ppd: float) -> bool:  # fmt: skip
        """Contrast and frequency given, an envelope for a Gabor (none for a grating), sf
        at most Nyquist (asking :mod:`stimgen.targets`)."""
        from ..targets import _carrier_params

        if any(p.movie for p in PARTS.values() if exp.get(p.name) is not None):
            ck.add(("target",), "a target is drawn into still images; a motion experiment makes movies "
                   "(remove the motion section or the target section)", key=True)  # fmt: skip
            return False
        p = target_params(c)
        if has_bad(exp["target"]) or has_bad(list(p.values())):
            return False

        def src(k: str) -> tuple:
            return c.sources.get(_P + k, ("target",))

        ok = True
        for k, what in (("contrast", "the peak contrast of the carrier, in [-1, 1]"), ("sf_cpd", "the carrier's frequency in cpd")):
            if p[k] is None:
                ck.add(("target",), f"missing required key {k!r} ({what}), in target or as target.{k} "
                       "in every condition", key=True)  # fmt: skip
                ok = False
        if p["kind"] == "gabor" and p["sigma_deg"] is None and p["fwhm_deg"] is None:
            ck.add(("target",), "a gabor needs its envelope: sigma_deg (the standard deviation of the "
                   "Gaussian, deg) or fwhm_deg", key=True)  # fmt: skip
            ok = False
        if p["kind"] == "grating":
            for k in ENVELOPE:
                if p[k] is not None:
                    ck.add(src(k), f"a grating has no envelope ({k}: {p[k]}); use kind: gabor, or an "
                           "aperture section to window it")  # fmt: skip
                    ok = False
        if ok:
            try:
                _carrier_params(ppd, p["sf_cpd"], p["orientation_deg"], p["phase_deg"], p["contrast"])
            except ValueError as exc:
                ck.add(src("sf_cpd"), " ".join(str(exc).split()))
                ok = False
        return ok

    def warnings(self, plan: Plan) -> list[str]:
        """An envelope that the image cuts off (3 sigma beyond an edge), naming the key."""
        from ..apertures import ApertureWarning
        from ..targets import _warn_envelope

        said: list[str] = []
        for c in plan.conditions:
            p = target_params(c)
            if p["kind"] != "gabor":
                continue
            sigma = p["sigma_deg"] if p["sigma_deg"] is not None else p["fwhm_deg"] / (2 * math.sqrt(2 * math.log(2)))
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", ApertureWarning)
                _warn_envelope(sigma, plan.shape, plan.ppd, tuple(p["center_deg"]))
            key = "target.sigma_deg" if p["sigma_deg"] is not None else "target.fwhm_deg"
            msgs = [f"{key}: " + str(w.message).removeprefix("gabor ") for w in caught]
            if not caught and p["contrast"]:  # not cut off: the pixels must hold the closed form's E
                msgs += [m for m in [_sampling_warning(p, key, plan.shape, plan.ppd)] if m]
            for msg in msgs:
                if msg not in said:
                    said.append(msg)
        return said

    # -- drawing ------------------------------------------------------------------------
    def draw(self, plan: Plan, c: Condition, rng: np.random.Generator, drawing: Drawing) -> None:
        """Add the target to the noise drawn so far (which stays as the ``noise`` component)."""
        if drawing.data is None:
            raise ValueError("the target is added to the noise: no noise was drawn")
        t, _ = condition_target(plan, c)
        drawing.components.setdefault("noise", drawing.data)
        drawing.components["target"] = t
        drawing.data = drawing.data + t

    # -- the manifest -------------------------------------------------------------------
    def record(self, plan: Plan, c: Condition, drawing: Drawing) -> dict[str, Any]:
        rec = {k: v for k, v in condition_target(plan, c)[1].items() if k != "value_convention"}
        return {"target_record": rec, **energy_fields(plan, c, drawing)}

    def measure_drawing(self, plan: Plan, c: Condition, drawing: Drawing, entry: Mapping[str, Any]) -> Measured:
        return energy_measure(plan, c, drawing, entry)

    def pool(self, plan: Plan, c: Condition) -> EnergyPool:
        return EnergyPool()

    def pool_add(self, plan: Plan, c: Condition, pool: EnergyPool, entry: Mapping[str, Any], extra: Any) -> None:
        energy_pool_add(pool, extra)

    def summary(self, plan: Plan, c: Condition, pool: EnergyPool) -> Measured:
        return energy_summary(plan, c, pool)

    def verify_summary(self, plan: Plan, c: Condition, summary: Mapping[str, Any], entries: Sequence[Mapping[str, Any]],
                       data: Iterable[np.ndarray], exact: bool) -> str | None:  # fmt: skip
        return energy_verify_summary(plan, c, summary, entries)

    def caption(self, summary: Mapping[str, Any]) -> str | None:
        en = summary.get("e_over_n")
        return None if en is None else f"target E/N = {en:.4g}"

    def spectrum_marks(self, plan: Plan, c: Condition) -> list[tuple[float, str]]:
        """The target's frequency, marked on the noise spectrum figure."""
        p = target_params(c)
        return [(float(p["sf_cpd"]), f"target {p['sf_cpd']:g} cpd")] if p["sf_cpd"] > 0 else []

    # -- figures ------------------------------------------------------------------------
    def condition_figures(self, plan: Plan, c: Condition, pool: EnergyPool, summary: Mapping[str, Any], root: Path) -> list[str]:
        return component_figure(plan, c, pool, summary, root)


TARGET = register(TargetPart())

__all__ = ["TARGET", "TARGET_DEFAULTS", "TARGET_KINDS", "TargetPart", "energy_fields"]
