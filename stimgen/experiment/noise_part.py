"""The ``noise`` part: band-limited or 1/f noise, checked by its measured spectrum.

Section ``noise`` (required): the filter family, the band (band_cpd; peak_cpd and octaves;
or a DoG's sigmas; a low- or high-pass cutoff_cpd), orientation, noise kind and level; every
key may vary by condition (``frozen`` is the section's alone). It draws the image with
:func:`stimgen.noise.filtered_noise` (or ``white_noise``) and sets its RMS contrast; each
stimulus' radial spectrum (of the first frame of a movie) is measured against the design,
and each condition's mean spectrum too.

Frozen noise (``frozen: true``): the white noise of repeat ``r`` is drawn from its own
generator, keyed by the set's seed entropy, :data:`FROZEN_NOISE_TAG` and ``r``
(:meth:`stimgen.experiment.plan.Plan.frozen_rng`), so every condition shows the same draw at
repeat ``r`` (through its own filter and contrast); the rest of the stimulus (dither, ...)
keeps the stimulus' generator.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .._yamlschema import BAD, Checker, format_path, has_bad
from ..filters import CRITICAL_BAND_FAMILIES, ROLLOFFS, radial_part
from .measure import (
    SLOPE_FAMILIES,
    close,
    close_abs,
    condition_spectral_check,
    condition_spectrum,
    fmt_num,
    spectral_check,
)
from .parts import BasePart, Drawing, FailsCheck, Measured, register
from .plan import Condition, Plan
from .pool import RunningMean

FAMILIES = ("dog", "log_gaussian", "butterworth", "ideal", "power_law", "white", *CRITICAL_BAND_FAMILIES)
KINDS = ("gaussian", "uniform", "binary", "flat")
LEVELS = ("half_amplitude", "half_power")
NOISE_DEFAULTS: dict[str, Any] = {
    "family": None,
    "kind": "gaussian",
    "synthesis": "spectral",  # sets made before it (no synthesis stated) are spatial
    "level": "half_amplitude",
    "band_cpd": None,
    "peak_cpd": None,
    "octaves": None,
    "sigma_center_deg": None,
    "sigma_surround_deg": None,
    "order": 4,
    "orientation_deg": None,
    "orientation_bandwidth_deg": 30.0,
    "alpha": 1.0,
    "cutoff_cpd": None,
    "rolloff": "butterworth",
    "frozen": False,
}
#: Keys the resolved section states only when the file gives them (or, for ``rolloff``, when
#: the section's family is low- or high-pass): experiments without them resolve as before.
OPTIONAL_KEYS = ("cutoff_cpd", "rolloff", "frozen")
#: Keys of the section alone (not varied by conditions).
SECTION_KEYS = ("frozen",)
#: Fixed word of the frozen noise generator's spawn key ``(FROZEN_NOISE_TAG, repeat)``.
FROZEN_NOISE_TAG = 0x66726F7A  # "froz"
# band groups: a condition that gives keys of one group replaces the base's band entirely
BAND_GROUP = {
    "cutoff_cpd": "cutoff",
    "band_cpd": "band",
    "peak_cpd": "peak",
    "octaves": "peak",
    "sigma_center_deg": "sigmas",
    "sigma_surround_deg": "sigmas",
}
FILTER_KEYS = ("family", "level", "order", "orientation_deg", "orientation_bandwidth_deg", "alpha", "rolloff", *BAND_GROUP)


def default_order(family: str | None) -> int:
    """The Butterworth order a family takes when none is given: 8 for a notch, else 4."""
    return 8 if family == "notch" else 4




def band_spec_problem(p: Mapping[str, Any]) -> str | None:
    """Whether the band keys fit the family (before asking the filter hub)."""
    fam = p["family"]
    has = {k for k in BAND_GROUP if p.get(k) is not None}
    groups = {BAND_GROUP[k] for k in has}
    if len(groups) > 1:
        return "give one way to state the band: band_cpd, or peak_cpd with octaves, or sigmas, or cutoff_cpd"
    if fam in ("lowpass", "highpass"):
        if groups - {"cutoff"}:
            return (f"family {fam!r} takes cutoff_cpd (the cutoff in cpd at the level), not "
                    + ", ".join(sorted(has)))  # fmt: skip
        if not groups:
            return f"family {fam!r} needs cutoff_cpd: the cutoff in cpd, where the amplitude is at {p['level']}"
        return None
    if "cutoff" in groups:
        if fam == "notch":
            return ("family 'notch' takes band_cpd: [low, high], the stop-band edges where its "
                    "amplitude rises back to the level, not cutoff_cpd")  # fmt: skip
        return (f"cutoff_cpd belongs to the families 'lowpass' and 'highpass'; family {fam!r} "
                "takes band_cpd: [low, high] (cpd)")  # fmt: skip
    if fam == "white":
        if has:
            return "family 'white' takes no band (" + ", ".join(sorted(has)) + "); use a band-pass family"
        if p.get("orientation_deg") is not None:
            return "family 'white' cannot be oriented; use an oriented band-pass family"
        return None
    if fam == "power_law":
        if groups - {"band"}:
            return "family 'power_law' takes only band_cpd (optional hard band limits)"
        return None
    if "sigmas" in groups:
        if fam != "dog":
            return f"sigma_center_deg and sigma_surround_deg define a DoG; family is {fam!r}"
        if p.get("sigma_center_deg") is None or p.get("sigma_surround_deg") is None:
            return "a DoG from sigmas needs both sigma_center_deg and sigma_surround_deg"
        return None
    if "peak" in groups and (p.get("peak_cpd") is None or p.get("octaves") is None):
        return "a band from its peak needs both peak_cpd and octaves"
    if not groups:
        what = "the stop band " if fam == "notch" else "a band"
        return (f"family {fam!r} needs {what}: band_cpd: [low, high] (cpd), or peak_cpd and octaves"
                + (", or sigma_center_deg and sigma_surround_deg" if fam == "dog" else ""))  # fmt: skip
    return None


def critical_band_problem(p: Mapping[str, Any]) -> tuple[str, str] | None:
    """``(key, message)`` for a key the family cannot take: a Gaussian roll-off of a family
    without one (only low- and high-pass have it), or an orientation window on a critical-
    band family (its check is radial: the cutoff or stop band of every orientation)."""
    fam = p["family"]
    roll = p.get("rolloff") or "butterworth"
    if roll != "butterworth" and fam not in ("lowpass", "highpass"):
        if fam == "notch":
            return "rolloff", f"family 'notch' is power-complementary to a Butterworth band-pass; rolloff {roll!r} is not available"
        return "rolloff", f"rolloff {roll!r} shapes the families 'lowpass' and 'highpass', not {fam!r}"
    if fam in CRITICAL_BAND_FAMILIES and p.get("orientation_deg") is not None:
        return "orientation_deg", (f"family {fam!r} is isotropic (a cutoff or stop band at every orientation); "
                                   "orientation windows are for the band-pass families")  # fmt: skip
    return None


def make_filter(p: Mapping[str, Any], ppd: float):
    """The filter of a condition, through the hub (None for white noise)."""
    from ..noise import make_filter as hub_filter

    if p.get("sigma_center_deg") is not None:
        from ..filters import DoG, Orientation

        filt: Any = DoG.from_sigmas_deg(p["sigma_center_deg"], p["sigma_surround_deg"], ppd=ppd)
        if p.get("orientation_deg") is not None:
            filt = filt * Orientation(p["orientation_deg"], p["orientation_bandwidth_deg"])
        return filt
    return hub_filter(
        p["family"],
        ppd=ppd,
        band_cpd=p["band_cpd"],
        peak_cpd=p["peak_cpd"],
        octaves=p["octaves"],
        level=p["level"],
        order=p["order"],
        orientation_deg=p["orientation_deg"],
        orientation_bandwidth_deg=p["orientation_bandwidth_deg"],
        alpha=p["alpha"],
        cutoff_cpd=p.get("cutoff_cpd"),
        rolloff=p.get("rolloff") or "butterworth",
    )


def band_source(c: Condition) -> tuple:
    """Where a condition's band (or, without one, its family) is stated in the file."""
    band_keys = [k for k in BAND_GROUP if c.params.get(k) is not None]
    if band_keys:
        return c.sources.get(band_keys[0], ("noise",))
    return c.sources.get("family", ("noise",))


def condition_filter(plan: Plan, c: Condition) -> Any:
    """The filter of a condition (cached in the plan)."""
    return plan.memo(("noise.filter", c.index), lambda: make_filter(c.params, plan.ppd))


def condition_design(plan: Plan, c: Condition) -> dict[str, Any] | None:
    """The design passband of a condition at its level (None without a radial filter)."""
    radial = radial_part(condition_filter(plan, c))
    if radial is None:
        return None
    design = radial.passband(c.params["level"]).to_dict(plan.ppd)
    if c.params["family"] in CRITICAL_BAND_FAMILIES:  # the amplitude is largest at DC, at Nyquist or off the notch
        design.update(peak_cpd=None, peak_cpp=None)
    return design


def spectrum_bins(plan: Plan) -> Any:
    """The radial-spectrum bins of the plan's image shape (a spectrum of ones, cached)."""
    from ..spectrum import radial_spectrum

    return plan.memo("noise.bins", lambda: radial_spectrum(np.ones(plan.shape), ppd=plan.ppd, bins_per_octave=24))


def first_frame(data: np.ndarray) -> np.ndarray:
    """The image whose spectrum is measured: the image, or a movie's first frame."""
    return data[0] if data.ndim == 3 else data


class NoisePart(BasePart):
    """Band-limited (or 1/f, or white) noise, checked by its radial spectrum."""

    name = "noise"
    required = True
    defaults = NOISE_DEFAULTS
    condition_keys = tuple(k for k in NOISE_DEFAULTS if k not in SECTION_KEYS)
    nullable = ("band_cpd", "peak_cpd", "octaves", "sigma_center_deg", "sigma_surround_deg", "orientation_deg",
                "cutoff_cpd")  # fmt: skip
    tolerances = {
        "edge_tolerance": (None, {"low": 0, "low_open": True}),
        "peak_tolerance": (None, {"low": 0, "low_open": True}),
        "alpha_tolerance": (None, {"low": 0, "low_open": True}),
        "orientation_tolerance_deg": (5.0, {"low": 0, "low_open": True}),
    }
    checks = "spectrum"
    example = {"family": "log_gaussian", "band_cpd": [1, 2]}

    # -- keys and their checks ----------------------------------------------------------
    def check_value(self, ck: Checker, path: tuple, key: str, value: Any) -> Any:
        if value is None and key in self.nullable:
            return None
        if key == "family":
            return ck.choice(path, value, FAMILIES)
        if key == "kind":
            return ck.choice(path, value, KINDS)
        if key == "synthesis":
            return ck.choice(path, value, ("spectral", "spatial"))
        if key == "level":
            return ck.choice(path, value, LEVELS)
        if key == "band_cpd":
            band = ck.numbers(path, value, length=2, low=0, low_open=True)
            if band is not BAD and band[1] <= band[0]:
                ck.add(path, f"must be [low, high] with low < high, got {value!r}")
                return BAD
            return band
        if key in ("peak_cpd", "octaves", "sigma_center_deg", "sigma_surround_deg", "cutoff_cpd"):
            return ck.number(path, value, low=0, low_open=True)
        if key == "order":
            return ck.number(path, value, low=1, high=32, integer=True)
        if key == "orientation_deg":
            return ck.number(path, value)
        if key == "orientation_bandwidth_deg":
            return ck.number(path, value, low=0, high=180, low_open=True)
        if key == "alpha":
            return ck.number(path, value, low=-2, high=6)
        if key == "rolloff":
            return ck.choice(path, value, ROLLOFFS)
        if key == "frozen":
            return ck.boolean(path, value)
        raise AssertionError(key)  # pragma: no cover

    def check_section(self, ck: Checker, value: Any) -> Any:
        """The section with its defaults; ``order`` resolved to the family's default (8 for a
        notch, else 4); the optional keys stated only when given (``rolloff`` also for a low-
        or high-pass family), so that sections without them resolve exactly as before."""
        out = super().check_section(ck, value)
        if out is BAD:
            return BAD
        given = value if isinstance(value, Mapping) else {}
        for k in OPTIONAL_KEYS:
            if given.get(k) is None and not (k == "rolloff" and out["family"] in ("lowpass", "highpass")):
                del out[k]
        if given.get("order") is None and not has_bad(out["family"]):
            out["order"] = default_order(out["family"])
        return out

    def check_keys(self, ck: Checker, path: tuple, given: Mapping[str, Any]) -> None:
        groups = {BAND_GROUP[k] for k, val in given.items() if k in BAND_GROUP and val is not None}
        if len(groups) > 1:
            ck.add(path, "give one way to state the band: band_cpd, or peak_cpd with octaves, "
                   "or sigma_center_deg with sigma_surround_deg", key=True)  # fmt: skip

    def resolve_condition(self, params: dict[str, Any], own: Mapping[str, Any]) -> None:
        """A condition's band (of any group) replaces the section's band as a whole.

        A condition of another family than the section's, without an ``order`` of its own,
        takes its family's default order (8 for a notch, else 4) unless the section states
        an order other than its own family's default; a low- or high-pass states its
        ``rolloff``.
        """
        groups = {BAND_GROUP[k] for k, val in own.items() if k in BAND_GROUP and val is not None}
        if groups:
            for k, g in BAND_GROUP.items():
                if g not in groups and (k in params or k in own):
                    params[k] = None
        fam = own.get("family", params.get("family"))
        if "order" not in own and params.get("order") == default_order(params.get("family")):
            params["order"] = default_order(fam)
        if fam in ("lowpass", "highpass") and "rolloff" not in own:
            params.setdefault("rolloff", "butterworth")

    def check_condition(self, ck: Checker, exp: Mapping[str, Any], c: Condition,
                        shape: tuple[int, int], ppd: float) -> bool:  # fmt: skip
        """Bands designable, below Nyquist, above 1 cycle/image, with edges the DFT grid can
        show (asking the filter hub and the spectrum module)."""
        from ..filters import check_fits_image
        from ..spectrum import check_measurable

        p = c.params
        if has_bad(exp["noise"]) or has_bad([p.get(k) for k in FILTER_KEYS]):
            return False
        if exp["noise"].get("frozen") and exp.get("motion") is not None:
            if c.index == 0:
                ck.add(("noise", "frozen"), "frozen noise is for still images: a motion section draws its "
                       "noise as a movie (drop frozen, or the motion section)")  # fmt: skip
            return False
        where = band_source(c)
        fam_src = c.sources.get("family", ("noise",))
        note = ""
        if fam_src[0] in ("conditions", "factorial") and where != fam_src:
            note = f" (with family {p['family']!r} from {format_path(fam_src)})"
        if p["family"] is None:
            ck.add(("noise",), "missing required key 'family' (one of " + ", ".join(FAMILIES)
                   + "), in noise or in every condition", key=True)  # fmt: skip
            return False
        msg = band_spec_problem(p)
        if msg is not None:
            ck.add(where, msg + note)
            return False
        bad = critical_band_problem(p)
        if bad is not None:
            ck.add(c.sources.get(bad[0], ("noise",)), bad[1] + note)
            return False
        if p["family"] in ("lowpass", "highpass") and exp.get("motion") is not None:
            ck.add(fam_src, f"family {p['family']!r} is for still images: the movies of a motion section are "
                   "band-pass or notched noise (their generators take band_cpd, not cutoff_cpd)")  # fmt: skip
            return False
        try:
            radial = radial_part(make_filter(p, ppd))
            if radial is not None:
                check_fits_image(radial.passband(p["level"]), shape, ppd)
                # an edge the DFT grid cannot show (its grid is a frame's size: a frame beyond
                # memory is left to the run's size budget, which refuses it naming the memory)
                if p["family"] not in SLOPE_FAMILIES and _frame_fits(shape):
                    check_measurable(radial, shape, ppd, level=p["level"])
        except ValueError as exc:
            ck.add(where, " ".join(str(exc).split()) + note)
            return False
        return True

    # -- drawing ------------------------------------------------------------------------
    def draw(self, plan: Plan, c: Condition, rng: np.random.Generator, drawing: Drawing) -> None:
        from ..contrast import set_rms_contrast
        from ..noise import _frozen_filtered_noise, filtered_noise, white_noise

        p = c.params
        dtype = np.dtype(plan.exp["output"]["dtype"])
        filt = condition_filter(plan, c)
        frozen = bool(plan.exp["noise"].get("frozen"))
        if frozen:  # the repeat's one draw, shared by the conditions
            rng = plan.frozen_rng(FROZEN_NOISE_TAG, plan.locate(drawing.index)[1], drawing.entropy)
        if filt is None:
            img = white_noise(plan.shape, kind=p["kind"], rng=rng, dtype=dtype)
        elif frozen:  # one white spectrum through every condition's filter
            img = _frozen_filtered_noise(plan.shape, filt, kind=p["kind"], rng=rng, dtype=dtype,
                                         synthesis=p.get("synthesis", "spatial"))
        else:
            img = filtered_noise(plan.shape, filt, kind=p["kind"], rng=rng, dtype=dtype,
                                 synthesis=p.get("synthesis", "spatial"))
        drawing.data = set_rms_contrast(img, p["rms_contrast"], mean=p["mean"], out=img)

    # -- the manifest -------------------------------------------------------------------
    def record(self, plan: Plan, c: Condition, drawing: Drawing) -> dict[str, Any]:
        design = condition_design(plan, c)
        if c.params["family"] in SLOPE_FAMILIES:  # no peak; optional hard band limits
            design = {"band_cpd": c.params["band_cpd"], "peak_cpd": None}
        out = {
            "design_band_cpd": None if design is None else design["band_cpd"],
            "design_peak_cpd": None if design is None else design["peak_cpd"],
            "band_level": c.params["level"],
        }
        if plan.exp["noise"].get("frozen"):
            out["frozen_noise"] = {"tag": FROZEN_NOISE_TAG, "repeat": plan.locate(drawing.index)[1]}
        return out

    def measure(self, plan: Plan, c: Condition, data: np.ndarray, entry: Mapping[str, Any]) -> Measured:
        res, power = _check(plan, c, data)
        passed = res.pop("pass")
        if plan.movie:  # one check of several: the spectral one is named
            res["spectral_pass"] = passed
        return Measured(res, passed, power, _not_measurable(res))

    def pool(self, plan: Plan, c: Condition) -> RunningMean:
        """The running mean and spread of the condition's radial power spectra."""
        return RunningMean()

    def pool_add(self, plan: Plan, c: Condition, pool: RunningMean, entry: Mapping[str, Any], extra: Any) -> None:
        pool.add(extra)

    def spectrum(self, plan: Plan, pool: RunningMean) -> Any:
        """A condition's pooled :class:`~stimgen.spectrum.RadialSpectrum` (its summary's and figure's)."""
        return condition_spectrum(spectrum_bins(plan), pool.mean, pool.std, pool.n, plan.ppd)

    def summary(self, plan: Plan, c: Condition, pool: RunningMean) -> Measured:
        filt = condition_filter(plan, c)
        spec = self.spectrum(plan, pool)
        out: dict[str, Any] = {
            "filter": None if filt is None else filt.to_record(),
            "design": condition_design(plan, c),
            "spectrum": {"freq_cpd": spec.freq_cpd, "power_mean": spec.power, "power_std": spec.power_std, "n_images": spec.n_images},
        }
        out.update(condition_spectral_check(spec, c.params, filt, plan.ppd, plan.exp["check"]))
        passed = out.pop("pass")
        if plan.movie:
            out["spectral_pass"] = passed
        return Measured(out, passed, None, _not_measurable(out))

    def verify(self, plan: Plan, c: Condition, entry: Mapping[str, Any], data: np.ndarray, exact: bool) -> str | None:
        """The spectrum measured again: exactly (float rounding) for .npy, to 2 % for PNGs.

        A PNG whose values agree but whose re-measured spectrum fails the check (the
        quantization tipped it) is a failed check, not damage (:class:`FailsCheck`).
        """
        from .._json import jsonable

        measured, _ = _check(plan, c, data)
        # a notch's depth is re-checked exactly only: PNG levels add their quantization noise to its floor
        for key in ("peak_cpd", "band_cpd", "cutoff_cpd", "alpha", "orientation_deg", *(("notch_depth_db",) if exact else ())):
            got = jsonable(measured.get(key))  # as the manifest stores it (an open edge: null)
            if key in entry and not _agrees(key, got, entry.get(key), exact):
                return f"re-measured {key} {fmt_num(got)} differs from the manifest's {fmt_num(entry.get(key))}"
        flag = entry.get("spectral_pass", entry.get("pass"))
        if exact and bool(measured["pass"]) != bool(flag):
            return f"re-measured spectral pass {measured['pass']} differs from the manifest's {flag}"
        if flag and measured["pass"] is False:  # PNG levels: the values agree, the verdict does not
            return FailsCheck("its spectrum fails the design check re-measured from its PNG levels")
        return None

    # -- figures ------------------------------------------------------------------------
    def condition_figures(self, plan: Plan, c: Condition, pool: RunningMean, summary: Mapping[str, Any], root: Path) -> list[str]:
        """The condition's pooled spectrum (mean and spread of its stimuli) against the design.

        Drawn as soon as the condition's last stimulus arrives, from the spectrum its
        summary was measured from, while workers go on with the next conditions.
        """
        from .. import plotting
        from .figures import CONDITION_MARGINS, FIGURE_COMPRESS_LEVEL

        spec = self.spectrum(plan, pool)
        fam = c.params["family"]
        slope = {"power_law": c.params["alpha"], "white": 0.0}.get(fam)
        title = f"condition {c.index}: {c.label}"
        captions = [t for t in (p.caption(summary) for p in plan.parts if p is not self) if t]
        if plan.movie:
            title += "\n" + "; ".join(["first frames", *captions])
        elif captions:
            title += "\n" + "; ".join(captions)
        fig = plotting.new_figure(margins=CONDITION_MARGINS)
        plotting.plot_condition_spectrum(
            spec, design=None if slope is not None else radial_part(condition_filter(plan, c)),
            level=c.params["level"], title=title, passed=summary["pass"], alpha=slope, ax=fig.add_subplot(),
        )  # fmt: skip
        marks = [m for p in plan.parts if p is not self for m in getattr(p, "spectrum_marks", lambda *_: [])(plan, c)]
        if marks:  # other parts' frequencies (a target's) on the noise spectrum
            plotting.mark_frequencies(fig.axes[0], marks)
        rel = f"figures/spectrum_{c.folder}.png"
        plotting.save(fig, root / rel, compress_level=FIGURE_COMPRESS_LEVEL)
        return [rel]


NOISE = register(NoisePart())


def _check(plan: Plan, c: Condition, data: np.ndarray) -> tuple[dict[str, Any], np.ndarray]:
    """The spectral check of one stimulus (its first frame for movies).

    The periodogram test runs at ``FALSE_ALARM_RATE / n_stimuli`` per stimulus, so that a
    whole set of correct stimuli fails with probability at most ``FALSE_ALARM_RATE``.
    A still image's RMS contrast is the condition's; a movie frame's is not tested.
    """
    from ..spectrum import FALSE_ALARM_RATE

    return spectral_check(first_frame(data), plan.ppd, c.params, condition_filter(plan, c),
                          plan.exp["check"], false_alarm_rate=FALSE_ALARM_RATE / max(plan.n, 1),
                          rms_known=not plan.movie)  # fmt: skip


#: Absolute tolerances of re-measured slopes and orientations (exact file, PNG levels): a
#: relative one is meaningless near a white spectrum's alpha 0 or a vertical orientation.
_ABS_TOL = {"alpha": (1e-6, 0.01), "orientation_deg": (1e-6, 0.5)}


def _agrees(key: str, got: Any, recorded: Any, exact: bool) -> bool:
    """Whether a re-measured quantity agrees with the manifest's (to float rounding for an
    exact file; to 2 % for PNG levels), slopes to 1 % plus 0.01 (1e-6 exact) and
    orientations to 0.5 deg (1e-6 exact)."""
    if key not in _ABS_TOL:
        return close(got, recorded, 1e-6 if exact else 0.02)
    atol = _ABS_TOL[key][0 if exact else 1]
    if key == "orientation_deg" and got is not None and recorded is not None:
        d = (float(got) - float(recorded) + 90.0) % 180.0 - 90.0  # orientations repeat every 180 deg
        return abs(d) <= atol + 1e-6 * abs(float(recorded))
    return close_abs(got, recorded, atol + 0.01 * abs(float(recorded or 0.0)))


def _frame_fits(shape: tuple[int, int]) -> bool:
    """Whether one frame of ``shape`` (with its FFT work) fits in the available memory."""
    from .budget import one_frame_fits

    try:
        one_frame_fits(shape)
    except ValueError:
        return False
    return True


def _not_measurable(res: Mapping[str, Any]) -> str | None:
    if res.get("spectral_status") != "not_measurable":
        return None
    return res.get("spectral_reason") or "a band edge cannot be measured at this image size"

