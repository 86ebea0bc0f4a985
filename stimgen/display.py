"""Displays: from signed contrast to the luminance that reaches the eye.

Contents
--------
DisplayModel           a display's luminance at each device level: measured table (PCHIP)
                       or gain-offset-gamma model, gray or per channel (R, G, B)
fit_gamma              gain-offset-gamma fit ``L = a + (b v / v_max)^gamma`` (least squares)
read_calibration       a calibration table or model from a CSV or YAML file
encode                 signed contrast -> device values (linear8, png16, bitstealing,
                       mono++, m16), with optional noisy-bit dithering
decode                 device values -> luminance in cd/m^2
predict_display_stats  what the display will show: mean luminance, RMS and Michelson
                       contrast in luminance, their errors against the request, levels
                       used, clipped fraction
display_levels         the levels a method can show on a display: count, steps, levels
                       spanned by noise of a given RMS contrast
contrast_of_luminance  luminance as signed contrast about its mean (for spectral checks)
shown_stats            the predicted statistics from device values alone (e.g. a file)
check_shown_stats      re-check recorded statistics against values read back (verify)

Conventions
-----------
* A display model maps the *normalized drive* ``u = v / v_max`` in [0, 1] to luminance in
  cd/m^2. Each method has its own level grid on that drive: ``v / 255`` (linear8 and each
  channel of bitstealing), ``n / (2^bits - 1)`` (png16), ``n / 16383`` (mono++),
  ``n / 65535`` (m16).
* Channels add: the luminance of an RGB triple is the black level plus each channel's
  increment over black, ``L(r, g, b) = L_black + dR(r) + dG(g) + dB(b)``. A gray table or a
  gamma model splits its increment among the channels by ``channel_weights`` (default
  Rec. 709: 0.2126, 0.7152, 0.0722); per-channel tables give each channel's own increment.
* The contrast image holds signed contrast ``x``: the requested luminance is
  ``mean_cd_m2 * (1 + x)``. Encoding picks, per pixel, the representable level nearest in
  luminance, or (``dither="noisy-bit"``) one of the two levels around the request with
  probabilities that make the expected luminance equal the request (Allard & Faubert
  2008), through :func:`stimgen.contrast.quantize` for the gray methods.
* Nothing wraps: a request outside the display's range is refused (``clip=False``, the
  default) or clipped to the lowest/highest level and counted (``clip=True``).
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import _validate as v

__all__ = [
    "CHANNEL_WEIGHTS_REC709",
    "METHODS",
    "DisplayModel",
    "Encoded",
    "GammaFit",
    "check_shown_stats",
    "contrast_of_luminance",
    "decode",
    "display_levels",
    "encode",
    "fit_gamma",
    "predict_display_stats",
    "read_calibration",
    "shown_stats",
]

#: Luminance shares of the red, green and blue primaries (Rec. 709 / sRGB).
CHANNEL_WEIGHTS_REC709 = (0.2126, 0.7152, 0.0722)
#: Fewest rows a calibration table may have (a gamma curve needs several points).
MIN_TABLE_ROWS = 5
CHANNELS = ("red", "green", "blue")
DITHERS = ("none", "noisy-bit")


@dataclass(frozen=True)
class _Method:
    """A method's device layout: bits per level (allowed range) and stored form."""

    bits: int
    bits_allowed: tuple[int, int]
    rgb: bool
    summary: str


#: The encodings: name -> layout. Bit layouts of mono++ and m16 follow the vendors' manuals
#: (Cambridge Research Systems Bits#, VPixx Technologies VIEWPixx/PROPixx).
METHODS: dict[str, _Method] = {
    "linear8": _Method(8, (8, 8), False, "8-bit gray, uint8 (H, W)"),
    "png16": _Method(16, (8, 16), False, "16-bit gray, uint16 (H, W)"),
    "bitstealing": _Method(8, (8, 8), True, "pseudo-gray RGB, uint8 (H, W, 3)"),
    "mono++": _Method(14, (14, 14), True, "Bits# Mono++: 14 bits, uint8 (H, W, 3)"),
    "m16": _Method(16, (16, 16), True, "VPixx M16: 16 bits, uint8 (H, W, 3)"),
}


# =========================================================================================
# The display model
# =========================================================================================
def _weights(channel_weights: Any) -> np.ndarray:
    w = np.asarray(v.finite_array("channel_weights", channel_weights, ndim=(1,)), dtype=np.float64)
    if w.shape != (3,) or np.any(w < 0) or not w.sum() > 0:
        raise ValueError(f"channel_weights must be three numbers >= 0 (red, green, blue) with a "
                         f"positive sum, got {np.asarray(channel_weights).tolist()!r}")
    # normalized to sum 1; weights that already do are kept as given, so that a model
    # rebuilt from its record is the same model
    return w if abs(w.sum() - 1.0) <= 1e-12 else w / w.sum()


def _row_label(i: int, rows: Sequence[str] | None) -> str:
    return rows[i] if rows is not None else f"row {i + 1}"


def _check_table(levels: Any, luminance: Any, level_max: Any,
                 rows: Sequence[str] | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    """Validated ``(u, luminance (N,) or (N, 3), level_max)`` of a calibration table."""
    lv = np.asarray(v.finite_array("levels", levels, ndim=(1,)), dtype=np.float64)
    lum = np.asarray(v.finite_array("luminance_cd_m2", luminance, ndim=(1, 2)), dtype=np.float64)
    if lum.shape[0] != lv.shape[0] or (lum.ndim == 2 and lum.shape[1] != 3):
        raise ValueError(f"luminance_cd_m2 must have shape ({lv.size},) or ({lv.size}, 3) to match "
                         f"{lv.size} levels, got {lum.shape}")
    if lv.size < MIN_TABLE_ROWS:
        raise ValueError(f"a calibration table needs at least {MIN_TABLE_ROWS} rows (levels from 0 "
                         f"to the maximum), got {lv.size}")
    for i in range(1, lv.size):
        if not lv[i] > lv[i - 1]:
            raise ValueError(f"levels must increase strictly: {_row_label(i, rows)} (level {lv[i]:g}) "
                             f"is not above {_row_label(i - 1, rows)} (level {lv[i - 1]:g})")
    top = float(lv[-1]) if level_max is None else v.positive("level_max", level_max)
    if lv[0] != 0 or lv[-1] != top:
        raise ValueError(f"a calibration table must span the levels 0 to level_max={top:g} (the model "
                         f"does not extrapolate), got {lv[0]:g} to {lv[-1]:g}")
    if np.any(lum < 0):
        i = int(np.argmax(np.any(lum < 0, axis=-1) if lum.ndim == 2 else lum < 0))
        raise ValueError(f"luminance_cd_m2 must be >= 0: {_row_label(i, rows)} (level {lv[i]:g}) has "
                         f"{np.atleast_1d(lum[i]).tolist()}")
    cols = lum[:, None] if lum.ndim == 1 else lum
    for c in range(cols.shape[1]):
        for i in range(1, lv.size):
            if not cols[i, c] > cols[i - 1, c]:
                what = "luminance_cd_m2" if lum.ndim == 1 else f"{CHANNELS[c]} luminance"
                raise ValueError(
                    f"the display is not monotone: {what} must increase with level, but "
                    f"{_row_label(i, rows)} (level {lv[i]:g}: {cols[i, c]:g} cd/m^2) is not above "
                    f"{_row_label(i - 1, rows)} (level {lv[i - 1]:g}: {cols[i - 1, c]:g} cd/m^2)"
                )
    return lv / top, lum, top


def _drive(name: str, u: Any) -> np.ndarray:
    a = np.asarray(u, dtype=np.float64)
    if a.size and not (np.isfinite(a).all() and a.min() >= 0 and a.max() <= 1):
        raise ValueError(f"{name} must be a normalized drive in [0, 1], got values from "
                         f"{np.nanmin(a):g} to {np.nanmax(a):g}")
    return a


class DisplayModel:
    """A display's luminance (cd/m^2) at each normalized drive ``u = v / v_max`` in [0, 1].

    Build one with :meth:`from_gamma`, :meth:`from_measurements`, :func:`fit_gamma` (its
    ``model()``) or :func:`read_calibration`.

    Attributes
    ----------
    kind : {"gamma", "table", "rgb_table"}
        Gain-offset-gamma model, gray table, or one table per channel.
    l_min_cd_m2, l_max_cd_m2 : float
        Luminance at drive 0 (black) and 1 (white), cd/m^2.
    channel_weights : tuple of float
        Each channel's share of the white-minus-black increment (sums to 1).
    source : dict or None
        Where the calibration came from (``path``, ``sha256``) when read from a file.
    """

    def __init__(self, kind: str, black_cd_m2: float,
                 increments: Sequence[Callable[[np.ndarray], np.ndarray]],
                 gray: Callable[[np.ndarray], np.ndarray], record: dict[str, Any],
                 source: dict[str, Any] | None = None) -> None:  # fmt: skip
        self.kind = kind
        self._black = float(black_cd_m2)
        self._increments = list(increments)
        self._gray = gray
        self._record = record
        self.source = source
        self._tables: dict[tuple[str, int], Any] = {}  # level tables by (method, bits)
        ends = self.luminance(np.array([0.0, 1.0]))
        self.l_min_cd_m2 = float(ends[0])
        self.l_max_cd_m2 = float(ends[1])
        whites = np.array([float(f(np.array(1.0))) for f in self._increments])
        self.channel_weights = tuple(float(x) for x in whites / whites.sum())

    # -- constructors ----------------------------------------------------------------------
    @classmethod
    def from_gamma(cls, gamma: float, l_min: float, l_max: float, *,
                   channel_weights: Any = CHANNEL_WEIGHTS_REC709) -> DisplayModel:  # fmt: skip
        """The gain-offset-gamma display ``L(u) = l_min + (l_max - l_min) u^gamma``.

        This is ``L = a + (b u)^gamma`` (PsychoPy's and Pelli & Zhang's form, without an
        offset inside the power) with ``a = l_min`` and ``b^gamma = l_max - l_min``.

        Parameters
        ----------
        gamma : float
            Exponent, > 0 (1: a linear or linearized display).
        l_min, l_max : float
            Luminance at drive 0 and at full drive, cd/m^2, ``0 <= l_min < l_max``.
        channel_weights : sequence of 3 floats
            Shares of red, green and blue in the increment (bit stealing uses them).
        """
        g = v.positive("gamma", gamma)
        lo = v.positive("l_min", l_min, allow_zero=True)
        hi = v.positive("l_max", l_max)
        if not hi > lo:
            raise ValueError(f"l_max must be above l_min, got l_min={lo:g}, l_max={hi:g} cd/m^2")
        w = _weights(channel_weights)
        span = hi - lo

        def gray(u: np.ndarray) -> np.ndarray:
            return lo + span * np.power(u, g)

        incs = [(lambda u, k=float(wc): k * span * np.power(u, g)) for wc in w]
        rec = {"kind": "gamma", "gamma": g, "l_min_cd_m2": lo, "l_max_cd_m2": hi,
               "channel_weights": w.tolist()}
        return cls("gamma", lo, incs, gray, rec)

    @classmethod
    def from_measurements(cls, levels: Any, luminance_cd_m2: Any, *, level_max: float | None = None,
                          channel_weights: Any = None, _rows: Sequence[str] | None = None,
                          _source: dict[str, Any] | None = None) -> DisplayModel:  # fmt: skip
        """A display from a photometer table, interpolated monotonically (PCHIP).

        Parameters
        ----------
        levels : array (N,)
            Device levels measured, strictly increasing from 0 to ``level_max``.
        luminance_cd_m2 : array (N,) or (N, 3)
            Luminance at each level, cd/m^2, strictly increasing: the gray ramp (N,), or
            each of red, green and blue alone with the other two at 0 (N, 3).
        level_max : float, optional
            The full-drive level (default: the last level, e.g. 255); the table must
            reach it.
        channel_weights : sequence of 3 floats, optional
            For a gray table, how its increment splits among the channels (default
            Rec. 709). Per-channel tables give their own; passing weights with them is an
            error.

        Notes
        -----
        scipy's ``PchipInterpolator`` keeps a monotone table monotone and passes through
        every measurement. Per-channel tables are combined additively: black is the mean
        of the three channels' level-0 readings.
        """
        from scipy.interpolate import PchipInterpolator

        u, lum, top = _check_table(levels, luminance_cd_m2, level_max, _rows)
        rec: dict[str, Any] = {"levels": (u * top).tolist(), "level_max": top}
        if lum.ndim == 1:
            w = _weights(CHANNEL_WEIGHTS_REC709 if channel_weights is None else channel_weights)
            p = PchipInterpolator(u, lum, extrapolate=False)
            black = float(lum[0])

            def gray(x: np.ndarray) -> np.ndarray:
                return p(x)

            incs = [(lambda x, k=float(wc): k * (p(x) - black)) for wc in w]
            rec.update(kind="table", luminance_cd_m2=lum.tolist(), channel_weights=w.tolist())
            return cls("table", black, incs, gray, rec, _source)
        if channel_weights is not None:
            raise ValueError("channel_weights is for a gray table; per-channel tables (N, 3) "
                             "give each channel's own luminance")
        ps = [PchipInterpolator(u, lum[:, c], extrapolate=False) for c in range(3)]
        zeros = lum[0]
        black = float(zeros.mean())
        def increment(pc: Any, z: float) -> Callable[[np.ndarray], np.ndarray]:
            return lambda x: pc(x) - z

        rgb_incs = [increment(pc, float(z)) for pc, z in zip(ps, zeros, strict=True)]

        def rgb_gray(x: np.ndarray) -> np.ndarray:
            return black + rgb_incs[0](x) + rgb_incs[1](x) + rgb_incs[2](x)

        rec.update(kind="rgb_table", **{f"{c}_cd_m2": lum[:, i].tolist() for i, c in enumerate(CHANNELS)})
        return cls("rgb_table", black, rgb_incs, rgb_gray, rec, _source)

    @classmethod
    def from_psychopy(cls, monitor: str) -> DisplayModel:
        """The calibration of a PsychoPy Monitor Center monitor (needs psychopy installed).

        Uses the monitor's measured gray ramp (``getLevelsPre``/``getLumsPre``) when it has
        one; otherwise its gamma grid's luminance row (``Lmin, Lmax, gamma``) as a
        gain-offset-gamma model.
        """
        try:
            from psychopy import monitors  # type: ignore[import-not-found]
        except ImportError:
            raise ValueError("reading a PsychoPy monitor calibration needs psychopy, which is not "
                             "installed; export the table as CSV instead") from None
        mon = monitors.Monitor(monitor)
        levels, lums = mon.getLevelsPre(), mon.getLumsPre()
        if levels is not None and lums is not None:
            lv = np.asarray(levels, dtype=np.float64)
            lm = np.asarray(lums, dtype=np.float64)
            lv = lv[0] if lv.ndim == 2 else lv
            lm = lm[0] if lm.ndim == 2 else lm
            return cls.from_measurements(lv, lm, _source={"psychopy_monitor": monitor})
        grid = np.asarray(mon.getGammaGrid(), dtype=np.float64)
        if grid.ndim != 2 or grid.shape[1] < 3:
            raise ValueError(f"PsychoPy monitor {monitor!r} has no calibration (no gamma grid)")
        model = cls.from_gamma(grid[0, 2], grid[0, 0], grid[0, 1])
        model.source = {"psychopy_monitor": monitor}
        return model

    @classmethod
    def from_record(cls, record: Any) -> DisplayModel:
        """The model a :meth:`to_record` dict describes (e.g. from a manifest), exactly.

        Raises
        ------
        ValueError
            If the record is not a display model's record.
        """
        if not isinstance(record, dict) or record.get("kind") not in ("gamma", "table", "rgb_table"):
            raise ValueError("record must be a display model's record (kind 'gamma', 'table' or "
                             f"'rgb_table'), got {record!r:.200}")
        try:
            if record["kind"] == "gamma":
                model = cls.from_gamma(record["gamma"], record["l_min_cd_m2"], record["l_max_cd_m2"],
                                       channel_weights=record["channel_weights"])
            elif record["kind"] == "table":
                model = cls.from_measurements(record["levels"], record["luminance_cd_m2"],
                                              level_max=record["level_max"],
                                              channel_weights=record["channel_weights"])
            else:
                table = np.column_stack([np.asarray(record[f"{c}_cd_m2"], dtype=np.float64)
                                         for c in CHANNELS])
                model = cls.from_measurements(record["levels"], table, level_max=record["level_max"])
        except KeyError as exc:
            raise ValueError(f"the display model record lacks the field {exc.args[0]!r}") from None
        if record.get("source") is not None:
            model.source = dict(record["source"])
        return model

    # -- evaluation ------------------------------------------------------------------------
    def luminance(self, drive: Any) -> np.ndarray:
        """Gray luminance (all channels at ``drive``), cd/m^2, for drives in [0, 1]."""
        return np.asarray(self._gray(_drive("drive", drive)), dtype=np.float64)

    def luminance_rgb(self, drive_rgb: Any) -> np.ndarray:
        """Luminance of RGB drives ``(..., 3)`` in [0, 1]: black plus each channel's increment."""
        d = _drive("drive_rgb", drive_rgb)
        if d.shape[-1:] != (3,):
            raise ValueError(f"drive_rgb must have a last axis of 3 (red, green, blue), got {d.shape}")
        out = np.full(d.shape[:-1], self._black)
        for c, f in enumerate(self._increments):
            out = out + f(d[..., c])
        return out

    def to_record(self) -> dict[str, Any]:
        """Everything that defines the model, for a manifest (and its source file's sha256)."""
        rec = dict(self._record)
        rec["l_min_cd_m2"], rec["l_max_cd_m2"] = self.l_min_cd_m2, self.l_max_cd_m2
        if self.source is not None:
            rec["source"] = dict(self.source)
        return rec

    def __repr__(self) -> str:
        extra = f", gamma={self._record['gamma']:g}" if self.kind == "gamma" else ""
        return (f"DisplayModel(kind={self.kind!r}{extra}, l_min={self.l_min_cd_m2:.4g}, "
                f"l_max={self.l_max_cd_m2:.4g} cd/m^2)")


# =========================================================================================
# Gamma fit
# =========================================================================================
@dataclass(frozen=True)
class GammaFit:
    """A gain-offset-gamma fit ``L = a + (b v / v_max)^gamma`` to a photometer table.

    Attributes
    ----------
    offset_cd_m2 : float
        ``a``, the luminance at level 0, cd/m^2.
    gain : float
        ``b``, in (cd/m^2)^(1/gamma): ``b^gamma`` is the white-minus-black luminance.
    gamma : float
    level_max : float
        The full-drive level ``v_max``.
    levels, luminance_cd_m2, fitted_cd_m2 : ndarray (N,)
        The table and the model at its levels.
    residual_rms_cd_m2 : float
        RMS of ``fitted - measured``, cd/m^2.
    residual_max_rel : float
        Largest ``|fitted / measured - 1|`` (at levels with light).
    """

    offset_cd_m2: float
    gain: float
    gamma: float
    level_max: float
    levels: np.ndarray = field(repr=False)
    luminance_cd_m2: np.ndarray = field(repr=False)
    fitted_cd_m2: np.ndarray = field(repr=False)
    residual_rms_cd_m2: float = math.nan
    residual_max_rel: float = math.nan

    @property
    def l_min_cd_m2(self) -> float:
        return self.offset_cd_m2

    @property
    def l_max_cd_m2(self) -> float:
        return self.offset_cd_m2 + self.gain**self.gamma

    def predict(self, levels: Any) -> np.ndarray:
        """The fitted luminance (cd/m^2) at device levels ``0 .. level_max``."""
        u = _drive("levels / level_max", np.asarray(levels, dtype=np.float64) / self.level_max)
        return self.offset_cd_m2 + np.power(self.gain * u, self.gamma)

    def model(self, *, channel_weights: Any = CHANNEL_WEIGHTS_REC709) -> DisplayModel:
        """The fitted display as a :class:`DisplayModel`."""
        return DisplayModel.from_gamma(self.gamma, self.l_min_cd_m2, self.l_max_cd_m2,
                                       channel_weights=channel_weights)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": "L = a + (b * v / v_max)^gamma",
            "a_cd_m2": self.offset_cd_m2, "b": self.gain, "gamma": self.gamma,
            "level_max": self.level_max, "l_min_cd_m2": self.l_min_cd_m2,
            "l_max_cd_m2": self.l_max_cd_m2, "n_levels": int(self.levels.size),
            "residual_rms_cd_m2": self.residual_rms_cd_m2, "residual_max_rel": self.residual_max_rel,
            "levels": self.levels, "luminance_cd_m2": self.luminance_cd_m2,
            "fitted_cd_m2": self.fitted_cd_m2,
        }  # fmt: skip


def fit_gamma(levels: Any, luminance_cd_m2: Any, *, level_max: float | None = None) -> GammaFit:
    """Fit the gain-offset-gamma model ``L = a + (b v / v_max)^gamma`` to a gray ramp.

    Parameters
    ----------
    levels : array (N,)
        Device levels, strictly increasing from 0 to ``level_max``.
    luminance_cd_m2 : array (N,)
        Measured luminance, cd/m^2, strictly increasing.
    level_max : float, optional
        Full-drive level (default: the last level).

    Returns
    -------
    GammaFit
        Parameters, the fitted table and the residual.

    Notes
    -----
    ``scipy.optimize.least_squares`` (trust-region reflective, bounds ``a >= 0``, ``b > 0``,
    ``0.1 <= gamma <= 10``) minimizes *relative* residuals ``fitted / measured - 1``,
    because photometer noise is proportional to the reading; a reading of 0 counts as
    0.1 % of the brightest. The start is a straight-line fit in log-log coordinates.
    """
    from scipy.optimize import least_squares

    u, lum, top = _check_table(levels, luminance_cd_m2, level_max)
    if lum.ndim != 1:
        raise ValueError("fit_gamma fits one gray ramp (N,); fit each channel's column separately")
    scale = np.maximum(lum, 1e-3 * lum[-1])
    a0 = float(lum[0])
    sel = (u > 0) & (lum > a0)
    g0, c0 = np.polyfit(np.log(u[sel]), np.log(lum[sel] - a0), 1)
    g0 = float(np.clip(g0, 0.2, 8.0))
    x0 = np.array([a0, math.exp(c0 / g0), g0])

    def resid(p: np.ndarray) -> np.ndarray:
        return (p[0] + np.power(p[1] * u, p[2]) - lum) / scale

    lo = np.array([0.0, 1e-12, 0.1])
    hi = np.array([float(lum[-1]), np.inf, 10.0])
    x0 = np.clip(x0, lo + 1e-12, np.where(np.isfinite(hi), hi - 1e-12, np.inf))
    sol = least_squares(resid, x0, bounds=(lo, hi), x_scale="jac", xtol=1e-14, ftol=1e-14, gtol=1e-14)
    a, b, g = (float(x) for x in sol.x)
    fitted = a + np.power(b * u, g)
    lit = lum > 0
    return GammaFit(
        offset_cd_m2=a, gain=b, gamma=g, level_max=top, levels=u * top, luminance_cd_m2=lum,
        fitted_cd_m2=fitted, residual_rms_cd_m2=float(np.sqrt(np.mean((fitted - lum) ** 2))),
        residual_max_rel=float(np.max(np.abs(fitted[lit] / lum[lit] - 1))) if lit.any() else math.nan,
    )  # fmt: skip


# =========================================================================================
# Calibration files
# =========================================================================================
_LUM_COLUMNS = ("luminance_cd_m2",)
_RGB_COLUMNS = tuple(f"{c}_cd_m2" for c in CHANNELS)


def _file_source(path: Path) -> dict[str, Any]:
    from .io import sha256_file

    return {"path": str(path), "sha256": sha256_file(path)}


def _read_csv_table(path: Path) -> tuple[list[float], Any, list[str]]:
    import csv

    with open(path, newline="", encoding="utf-8-sig") as f:  # a byte-order mark (spreadsheet export) is not text
        lines = [(i + 1, row) for i, row in enumerate(csv.reader(f))]
    lines = [(n, [c.strip() for c in row]) for n, row in lines
             if row and any(c.strip() for c in row) and not row[0].strip().startswith("#")]
    if not lines:
        raise ValueError(f"{path}: no calibration table (expected a header: level,luminance_cd_m2 "
                         "or level,red_cd_m2,green_cd_m2,blue_cd_m2)")
    header = [c.lower() for c in lines[0][1]]
    if "level" not in header:
        raise ValueError(f"{path} line {lines[0][0]}: the header must name a 'level' column, got {header}")
    cols: tuple[str, ...]
    if all(c in header for c in _LUM_COLUMNS) and any(c in header for c in _RGB_COLUMNS):
        raise ValueError(f"{path} line {lines[0][0]}: give a gray ramp (luminance_cd_m2) or each channel "
                         f"(red_cd_m2, green_cd_m2, blue_cd_m2), not both: one of them would be ignored "
                         f"(bit stealing takes the channels' weights from the latter), got {header}")  # fmt: skip
    if all(c in header for c in _LUM_COLUMNS):
        cols = _LUM_COLUMNS
    elif all(c in header for c in _RGB_COLUMNS):
        cols = _RGB_COLUMNS
    else:
        raise ValueError(f"{path} line {lines[0][0]}: the header must name 'luminance_cd_m2' or "
                         f"'red_cd_m2', 'green_cd_m2' and 'blue_cd_m2', got {header}")
    idx = [header.index("level")] + [header.index(c) for c in cols]
    levels, lum, rows = [], [], []
    for n, row in lines[1:]:
        try:
            vals = [float(row[k]) for k in idx]
        except (IndexError, ValueError):
            raise ValueError(f"{path} line {n}: expected numbers in columns "
                             f"level, {', '.join(cols)}, got {row}") from None
        levels.append(vals[0])
        lum.append(vals[1] if len(cols) == 1 else vals[1:])
        rows.append(f"{path.name} line {n}")
    return levels, lum, rows


def read_calibration(path: str | os.PathLike) -> DisplayModel:
    """A display model from a calibration file (CSV or YAML); its sha256 goes in ``source``.

    * **CSV**: a header ``level,luminance_cd_m2`` (gray ramp) or
      ``level,red_cd_m2,green_cd_m2,blue_cd_m2`` (each channel alone), then one row per
      measured level from 0 to full drive; lines starting with ``#`` are comments.
    * **YAML**: ``levels: [...]`` with ``luminance_cd_m2: [...]`` (or ``red_cd_m2``,
      ``green_cd_m2``, ``blue_cd_m2``), optional ``level_max`` and ``channel_weights``; or a
      model, ``gamma: 2.2``, ``l_min: 0.3``, ``l_max: 120.3`` (cd/m^2).

    Errors name the file and line of the offending row.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".csv":
        levels, lum, rows = _read_csv_table(p)
        return DisplayModel.from_measurements(levels, lum, _rows=rows, _source=_file_source(p))
    if suffix not in (".yaml", ".yml"):
        raise ValueError(f"calibration file must be .csv, .yaml or .yml, got {str(p)!r}")
    import yaml

    with open(p, encoding="utf-8-sig") as f:
        data = yaml.safe_load(f)
    if not isinstance(data, dict):
        raise ValueError(f"{p}: a calibration YAML file must hold a mapping (levels and "
                         "luminance_cd_m2, or gamma, l_min and l_max)")
    known = {"levels", "luminance_cd_m2", *_RGB_COLUMNS, "level_max", "channel_weights",
             "gamma", "l_min", "l_max"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{p}: unknown key(s) {unknown}; allowed: {sorted(known)}")
    weights = data.get("channel_weights")
    if "gamma" in data:
        missing = [k for k in ("l_min", "l_max") if k not in data]
        if missing:
            raise ValueError(f"{p}: a gamma model needs l_min and l_max (cd/m^2); missing {missing}")
        model = DisplayModel.from_gamma(data["gamma"], data["l_min"], data["l_max"],
                                        channel_weights=CHANNEL_WEIGHTS_REC709 if weights is None else weights)
        model.source = _file_source(p)
        return model
    if "levels" not in data:
        raise ValueError(f"{p}: give levels with luminance_cd_m2 (or per-channel columns), or a gamma model")
    if "luminance_cd_m2" in data and any(c in data for c in _RGB_COLUMNS):
        raise ValueError(f"{p}: give a gray ramp (luminance_cd_m2) or each channel ({', '.join(_RGB_COLUMNS)}), "
                         "not both: one of them would be ignored")  # fmt: skip
    if "luminance_cd_m2" in data:
        table: Any = data["luminance_cd_m2"]
    elif all(c in data for c in _RGB_COLUMNS):
        table = np.column_stack([np.asarray(data[c], dtype=np.float64) for c in _RGB_COLUMNS])
    else:
        raise ValueError(f"{p}: give luminance_cd_m2, or all of {list(_RGB_COLUMNS)}")
    return DisplayModel.from_measurements(data["levels"], table, level_max=data.get("level_max"),
                                          channel_weights=weights, _source=_file_source(p))


# =========================================================================================
# Levels of each method
# =========================================================================================
def _method_bits(method: str, bits: Any) -> tuple[_Method, int]:
    m = METHODS[v.choice("method", method, METHODS)]
    if bits is None:
        return m, m.bits
    b = v.positive_int("bits", bits)
    lo, hi = m.bits_allowed
    if not lo <= b <= hi:
        allowed = f"{lo}" if lo == hi else f"{lo} to {hi}"
        raise ValueError(f"bits for method {method!r} must be {allowed}, got {bits!r}")
    return m, b


def _pseudo_gray(display: DisplayModel) -> tuple[np.ndarray, np.ndarray]:
    cached = display._tables.get(("bitstealing", 8))
    if cached is None:
        cached = display._tables[("bitstealing", 8)] = _make_pseudo_gray(display)
    return cached


def _make_pseudo_gray(display: DisplayModel) -> tuple[np.ndarray, np.ndarray]:
    """Bit-stealing levels: luminance (K,) strictly increasing and RGB codes (K, 3) uint8.

    Around each gray level g (0..254) every 0/+1 step of the channels, (g + dr, g + dg,
    g + db), is a candidate; with the gray levels they are sorted by the model's luminance
    and only strictly increasing ones are kept.
    """
    steps = np.array([s for s in itertools.product((0, 1), repeat=3) if s != (1, 1, 1)])
    g = np.arange(255)[:, None, None]
    codes = np.concatenate([(g + steps[None]).reshape(-1, 3), [[255, 255, 255]]])
    lum = display.luminance_rgb(codes / 255.0)
    order = np.argsort(lum, kind="stable")
    lum, codes = lum[order], codes[order]
    keep = np.concatenate([[True], np.diff(lum) > 0])
    lum, codes = lum[keep], codes[keep].astype(np.uint8)
    lum.flags.writeable = codes.flags.writeable = False
    return lum, codes


def _level_table(display: DisplayModel, method: str, bits: int) -> np.ndarray:
    """Luminance of every level of a gray method (index = level), or of the pseudo-gray LUT."""
    if method == "bitstealing":
        return _pseudo_gray(display)[0]
    table = display._tables.get((method, bits))
    if table is None:
        top = 2**bits - 1
        table = display.luminance(np.arange(top + 1, dtype=np.float64) / top)
        table.flags.writeable = False
        display._tables[(method, bits)] = table
    return table


def level_luminances(display: DisplayModel, method: str, *, bits: int | None = None) -> np.ndarray:
    """The luminance of every level a method can show, increasing, in cd/m^2 (read-only).

    Parameters
    ----------
    display : DisplayModel
    method : {"linear8", "png16", "bitstealing", "mono++", "m16"}
    bits : int, optional
        Bits per level (png16: 8 to 16; the others are fixed).
    """
    _, b = _method_bits(method, bits)
    table = _level_table(display, method, b)
    return table if np.all(np.diff(table) >= 0) else np.sort(table)


def display_levels(display: DisplayModel, method: str, *, bits: int | None = None,
                   mean_cd_m2: float | None = None, rms_contrast: float | None = None) -> dict[str, Any]:  # fmt: skip
    """The luminance levels a method can show on a display.

    Parameters
    ----------
    display : DisplayModel
    method : {"linear8", "png16", "bitstealing", "mono++", "m16"}
    bits : int, optional
        Bits per level (png16: 8 to 16; the others are fixed).
    mean_cd_m2, rms_contrast : float, optional
        With both: the levels spanned by noise of that RMS contrast about that mean
        (within +-3 RMS) and the level step there, in contrast units.

    Returns
    -------
    dict
        ``n_levels`` (distinct, strictly increasing luminances), ``smallest_step_cd_m2``,
        ``largest_step_cd_m2``, ``largest_step_gray8`` (the largest step as a fraction of
        the 8-bit gray step it lies in), ``l_min_cd_m2``, ``l_max_cd_m2`` and, with a mean
        and RMS contrast, ``levels_spanned``, ``step_at_mean_contrast``.
    """
    m, b = _method_bits(method, bits)
    lum = _level_table(display, method, b)
    distinct = lum[np.concatenate([[True], np.diff(lum) > 0])]
    steps = np.diff(distinct)
    gray8 = display.luminance(np.arange(256) / 255.0)
    mid = 0.5 * (distinct[1:] + distinct[:-1])
    k = np.clip(np.searchsorted(gray8, mid) - 1, 0, 254)
    out: dict[str, Any] = {
        "method": method, "bits": b, "n_levels": int(distinct.size),
        "smallest_step_cd_m2": float(steps.min()), "largest_step_cd_m2": float(steps.max()),
        "largest_step_gray8": float(np.max(steps / np.diff(gray8)[k])),
        "l_min_cd_m2": float(distinct[0]), "l_max_cd_m2": float(distinct[-1]),
    }  # fmt: skip
    if (mean_cd_m2 is None) != (rms_contrast is None):
        raise ValueError("give both mean_cd_m2 and rms_contrast (levels spanned by such noise), or neither")
    if mean_cd_m2 is not None:
        l0 = _check_mean(display, mean_cd_m2)
        c = v.positive("rms_contrast", rms_contrast)
        lo, hi = l0 * (1 - 3 * c), l0 * (1 + 3 * c)
        i = int(np.clip(np.searchsorted(distinct, l0), 1, distinct.size - 1))
        out.update(mean_cd_m2=l0, rms_contrast=c,
                   levels_spanned=int(np.count_nonzero((distinct >= lo) & (distinct <= hi))),
                   step_at_mean_contrast=float((distinct[i] - distinct[i - 1]) / l0))
    return out


# =========================================================================================
# Encoding and decoding
# =========================================================================================
@dataclass(frozen=True)
class Encoded:
    """Device values of an encoded stimulus and how they were made.

    Attributes
    ----------
    values : ndarray
        uint8 ``(..., H, W)`` (linear8), uint16 ``(..., H, W)`` (png16) or uint8
        ``(..., H, W, 3)`` RGB (bitstealing, mono++, m16).
    method : str
    bits : int
        Bits per level (bitstealing: per channel).
    dither : str
    mean_cd_m2 : float
        The background luminance requested (contrast 0).
    clipped_fraction : float
        Fraction of pixels whose request was outside the display's range (clipped).
    """

    values: np.ndarray
    method: str
    bits: int
    dither: str
    mean_cd_m2: float
    clipped_fraction: float

    def png_bytes(self, *, compress_level: int = 1) -> bytes:
        """The values of one image as PNG bytes (16-bit gray, 8-bit gray or 8-bit RGB)."""
        from .io import png_bytes

        need = 3 if METHODS[self.method].rgb else 2
        if self.values.ndim != need:
            raise ValueError(f"a PNG holds one image: values of shape {self.values.shape} are a "
                             "stack; write each image (encoded.values[i]) separately")
        return png_bytes(self.values, compress_level=compress_level)

    def to_record(self) -> dict[str, Any]:
        return {"method": self.method, "bits": self.bits, "dither": self.dither,
                "mean_cd_m2": self.mean_cd_m2, "clipped_fraction": self.clipped_fraction}


def _check_mean(display: DisplayModel, mean_cd_m2: Any) -> float:
    l0 = v.positive("mean_cd_m2", mean_cd_m2)
    if not display.l_min_cd_m2 < l0 < display.l_max_cd_m2:
        raise ValueError(f"mean_cd_m2={l0:g} is outside the display's range: it shows "
                         f"{display.l_min_cd_m2:.4g} to {display.l_max_cd_m2:.4g} cd/m^2")
    return l0


def _words_to_rgb(words: np.ndarray) -> np.ndarray:
    """16-bit words as uint8 RGB: high byte in red, low byte in green, blue 0 (no overlay)."""
    w = words.astype(np.uint16)
    out = np.zeros((*w.shape, 3), dtype=np.uint8)
    out[..., 0] = w >> 8
    out[..., 1] = w & 0xFF
    return out


def _rgb_to_words(values: np.ndarray, method: str) -> np.ndarray:
    blue = np.count_nonzero(values[..., 2])
    if blue:
        raise ValueError(f"{method} values have a non-zero blue channel at {blue} pixel(s): blue "
                         "selects the device's colour overlay, whose luminance the model does not know")
    return values[..., 0].astype(np.uint16) << 8 | values[..., 1].astype(np.uint16)


def encode(contrast_image: Any, display: DisplayModel, *, mean_cd_m2: float, method: str = "linear8",
           bits: int | None = None, dither: str = "none", rng: Any = None,
           clip: bool = False) -> Encoded:  # fmt: skip
    """Turn signed contrast into device values that show it on a described display.

    Parameters
    ----------
    contrast_image : ndarray, shape (H, W) or (N, H, W)
        Signed contrast ``x``; the requested luminance is ``mean_cd_m2 * (1 + x)``.
    display : DisplayModel
        The display (its measured or modelled luminance at every drive).
    mean_cd_m2 : float
        Background luminance (contrast 0), cd/m^2, inside the display's range.
    method : {"linear8", "png16", "bitstealing", "mono++", "m16"}
        * ``linear8``: 8-bit gray levels, the display model inverted in software.
        * ``png16``: 16-bit gray words for 10-bit and deeper pipelines; with ``bits`` b
          < 16, level n of 2^b is stored as ``round(n * 65535 / (2^b - 1))``, the word a
          pipeline scaling by 1/65535 maps back to n exactly.
        * ``bitstealing``: RGB pseudo-gray (Tyler 1997; Psychtoolbox
          ``CreatePseudoGrayLUT``): the 0/+1 steps of R, G, B around each gray level,
          1,786 levels on a linear display with Rec. 709 weights.
        * ``mono++``: Cambridge Research Systems Bits# Mono++ mode: a 14-bit level n in
          the top 14 bits of a 16-bit word (``n << 2``), high byte in red, low byte in
          green; the device ignores the lowest 2 bits; blue (overlay index) 0.
        * ``m16``: VPixx M16 mode (VIEWPixx, PROPixx): a 16-bit level, high byte in red,
          low byte in green; blue (overlay index) 0.
    bits : int, optional
        Bits per level; only png16 takes a choice (8 to 16, default 16).
    dither : {"none", "noisy-bit"}
        "none": the level nearest in luminance. "noisy-bit": one of the two levels around
        the request, chosen at random so that the expected luminance is the request.
    rng : None, int, SeedSequence or Generator
        Randomness of the dither.
    clip : bool
        False (default): a request outside the display's range is an error. True: such
        pixels get the lowest or highest level and are counted in ``clipped_fraction``.

    Returns
    -------
    Encoded
        The device values, with the method, bits, dither, mean and clipped fraction.

    Raises
    ------
    ValueError
        If ``mean_cd_m2`` is outside the display's range, or (without ``clip``) the
        contrast asks for luminance the display cannot show about that mean (both ranges
        are given).
    """
    m, b = _method_bits(method, bits)
    v.choice("dither", dither, DITHERS)
    x = v.image_stack("contrast_image", contrast_image)
    l0 = _check_mean(display, mean_cd_m2)
    if method == "bitstealing":
        lum, codes = _pseudo_gray(display)
    else:
        lum = _level_table(display, method, b)
    lo, hi = float(lum[0]), float(lum[-1])
    target = l0 * (1.0 + x.astype(np.float64))
    slack = 1e-12 * hi  # float rounding of a request exactly at black or white
    outside = np.count_nonzero((target < lo - slack) | (target > hi + slack))
    if outside and not clip:
        xmin, xmax = float(x.min()), float(x.max())
        raise ValueError(
            f"contrast_image spans {xmin:+.4g} to {xmax:+.4g}, but about mean_cd_m2={l0:g} this "
            f"display ({lo:.4g} to {hi:.4g} cd/m^2 with {method}) shows contrast "
            f"{lo / l0 - 1:+.4g} to {hi / l0 - 1:+.4g}; lower the contrast, move the mean, or "
            "pass clip=True to clip and count"
        )
    np.clip(target, lo, hi, out=target)
    # fractional position among the levels, linear in luminance between neighbours
    pos = np.interp(target, lum, np.arange(lum.size, dtype=np.float64))
    gen = v.rng(rng)
    if method == "bitstealing":
        idx = np.floor(pos + (gen.random(pos.shape) if dither == "noisy-bit" else 0.5))
        values = codes[np.clip(idx, 0, lum.size - 1).astype(np.intp)]
    else:
        from .contrast import quantize

        top = 2**b - 1
        levels, _ = quantize(pos * (2.0 / top) - 1.0, b, dither=dither, rng=gen)
        if method == "png16":
            words = levels.astype(np.uint16)
            if b < 16:
                words = np.round(levels.astype(np.float64) * (65535 / top)).astype(np.uint16)
            values = words
        elif method == "mono++":
            values = _words_to_rgb(levels.astype(np.uint16) << 2)
        elif method == "m16":
            values = _words_to_rgb(levels)
        else:
            values = levels.astype(np.uint8)
    return Encoded(values, method, b, dither, l0, float(outside / x.size))


def _device_levels(values: Any, method: str, bits: int) -> tuple[np.ndarray, _Method]:
    """Integer device values of ``method`` after checking dtype, shape and range."""
    m = METHODS[method]
    a = np.asarray(values)
    if a.dtype.kind not in "ui":
        raise ValueError(f"values must be integer device values, got dtype {a.dtype}")
    if m.rgb and (a.ndim < 3 or a.shape[-1] != 3):
        raise ValueError(f"{method} values are RGB: shape (..., H, W, 3), got {a.shape}")
    if not m.rgb and a.ndim < 2:
        raise ValueError(f"{method} values must have shape (..., H, W), got {a.shape}")
    top = 255 if (m.rgb or method == "linear8") else 65535
    if a.size and (a.min() < 0 or a.max() > top):
        raise ValueError(f"{method} values must be in 0..{top}, got {a.min()}..{a.max()}")
    return a.astype(np.int64), m


def decode(values: Any, display: DisplayModel, *, method: str | None = None,
           bits: int | None = None) -> np.ndarray:  # fmt: skip
    """The luminance (cd/m^2) a display shows for device values.

    Parameters
    ----------
    values : Encoded or ndarray
        From :func:`encode`, or device values read back from a file.
    display : DisplayModel
    method : str, optional
        The encoding (taken from an :class:`Encoded`; for arrays: uint8 (H, W) is linear8
        and uint16 (H, W) is png16, RGB arrays need it).
    bits : int, optional
        png16 only: bits per level (default 16).

    Returns
    -------
    ndarray of float64
        Luminance per pixel, shape of the image(s) (the RGB axis removed).
    """
    if isinstance(values, Encoded):
        if method is not None and method != values.method:
            raise ValueError(f"method {method!r} differs from the encoded values' {values.method!r}")
        method, bits, arr = values.method, values.bits, values.values
    else:
        arr = np.asarray(values)
        if method is None:
            if arr.dtype == np.uint8 and arr.ndim in (2, 3) and not (arr.ndim == 3 and arr.shape[-1] == 3):
                method = "linear8"
            elif arr.dtype == np.uint16:
                method = "png16"
            else:
                raise ValueError(f"give method= for values of dtype {arr.dtype} and shape {arr.shape} "
                                 f"(one of {', '.join(METHODS)})")
    _, b = _method_bits(method, bits)
    a, _ = _device_levels(arr, method, b)
    if method == "linear8":
        return display.luminance(a / 255.0)
    if method == "png16":
        top = 2**b - 1
        n = a if b == 16 else np.round(a * (top / 65535.0))
        return display.luminance(n / top)
    if method == "bitstealing":
        return display.luminance_rgb(a / 255.0)
    words = _rgb_to_words(a, method)
    if method == "mono++":
        return display.luminance((words >> 2) / 16383.0)
    return display.luminance(words / 65535.0)


# =========================================================================================
# Predicted statistics
# =========================================================================================
def contrast_of_luminance(luminance_cd_m2: Any, *, mean_cd_m2: float | None = None) -> np.ndarray:
    """Luminance as signed contrast ``L / L_mean - 1`` about its own mean (or ``mean_cd_m2``).

    Measure the band of a decoded stimulus on this (e.g. :func:`stimgen.measure_band`):
    quantization and gamma act on it exactly as on what the observer sees.
    """
    lum = np.asarray(v.finite_array("luminance_cd_m2", luminance_cd_m2), dtype=np.float64)
    ref = float(lum.mean()) if mean_cd_m2 is None else v.positive("mean_cd_m2", mean_cd_m2)
    if not ref > 0:
        raise ValueError("the mean luminance is 0 cd/m^2: contrast is undefined")
    return lum / ref - 1.0


def _rel(pred: float, req: float) -> float | None:
    return None if req == 0 else pred / req - 1.0


def _stats(lum: np.ndarray) -> tuple[float, float, float]:
    mean = float(lum.mean())
    rms = float(lum.std()) / mean
    hi, lo = float(lum.max()), float(lum.min())
    return mean, rms, (hi - lo) / (hi + lo) if hi + lo > 0 else math.nan


def shown_stats(values: Any, display: DisplayModel, *, method: str | None = None,
                bits: int | None = None) -> dict[str, Any]:  # fmt: skip
    """What device values show, from the values alone (no request needed).

    Parameters
    ----------
    values : Encoded or ndarray
        Device values, e.g. read back from a stimulus file.
    display : DisplayModel
    method, bits : optional
        As for :func:`decode`.

    Returns
    -------
    dict
        ``predicted_mean_cd_m2``, ``predicted_rms_contrast`` (``std(L) / mean(L)``),
        ``predicted_michelson_contrast`` and ``distinct_levels``: the same numbers
        :func:`predict_display_stats` records, computed the same way, so a file read back
        reproduces them to float rounding.
    """
    return _shown(decode(values, display, method=method, bits=bits))


def _shown(lum: np.ndarray) -> dict[str, Any]:
    mean, rms, mich = _stats(lum)
    return {"predicted_mean_cd_m2": mean, "predicted_rms_contrast": rms,
            "predicted_michelson_contrast": mich, "distinct_levels": int(np.unique(lum).size)}


def check_shown_stats(values: Any, display: DisplayModel, recorded: Any, *, method: str | None = None,
                      bits: int | None = None, rtol: float = 1e-12) -> str | None:  # fmt: skip
    """Re-check recorded display statistics against device values read back.

    Parameters
    ----------
    values : Encoded or ndarray
        The stimulus' device values (e.g. from :func:`stimgen.io.read_image`).
    display : DisplayModel
        The display the statistics were predicted for.
    recorded : mapping
        The fields of :func:`predict_display_stats` (or :func:`shown_stats`) as recorded.
    rtol : float
        Relative tolerance (default 1e-12: the numbers are recomputed exactly as they
        were made, so only float rounding may differ).

    Returns
    -------
    str or None
        A message naming the first field that differs, or None when all agree.

    Notes
    -----
    This catches a stimulus decoded through a different display model or method, and
    changes of the values that move a statistic by more than ``rtol``: a flipped low bit
    of a bit-stealing or 16-bit file at mid gray moves the mean by about 1e-8 on a
    256 x 256 image. A flip near black of a 16-bit file may move it by less than float
    rounding; the file's sha256 is what proves every bit.
    """
    now = shown_stats(values, display, method=method, bits=bits)
    for key, val in now.items():
        if key not in recorded:
            continue
        want = recorded[key]
        if key == "distinct_levels":
            if int(want) != val:
                return f"the file shows {val} distinct levels, the record says {want}"
        elif want is None or not math.isclose(val, float(want), rel_tol=rtol, abs_tol=0.0):
            return f"re-decoded {key} {val:.12g} differs from the recorded {want!r}"
    return None


def predict_display_stats(contrast_image: Any, encoded: Any, display: DisplayModel,
                          mean_cd_m2: float | None = None, *, method: str | None = None) -> dict[str, Any]:  # fmt: skip
    """What a display will show for an encoded stimulus, against what was requested.

    Parameters
    ----------
    contrast_image : ndarray, shape (H, W) or (N, H, W)
        The signed contrast that was encoded (the request).
    encoded : Encoded or ndarray
        Its device values (from :func:`encode`).
    display : DisplayModel
    mean_cd_m2 : float, optional
        Background luminance of the request (taken from an :class:`Encoded`).
    method : str, optional
        The encoding, for plain arrays (see :func:`decode`).

    Returns
    -------
    dict
        Over all pixels given (one stimulus: an image or a movie):

        * ``requested_mean_cd_m2``, ``predicted_mean_cd_m2``, ``mean_rel_error``;
        * ``requested_rms_contrast``, ``predicted_rms_contrast``, ``rms_contrast_rel_error``
          (RMS contrast in luminance: ``std(L) / mean(L)``);
        * ``requested_michelson_contrast``, ``predicted_michelson_contrast``,
          ``michelson_contrast_rel_error`` (``(Lmax - Lmin) / (Lmax + Lmin)``);
        * ``contrast_gain``: the regression slope of the shown luminance on the requested
          one, ``cov(L, L_req) / var(L_req)`` (1: the requested pattern is shown at its
          contrast; rounding at low contrast moves it, noisy-bit dither keeps it at 1 on
          average), and ``contrast_gain_error`` = gain - 1 (None for a uniform request);
        * ``error_rms_contrast``: RMS of ``(L_shown - L_requested) / mean_cd_m2`` (the
          quantization noise and clipping, in contrast units);
        * ``distinct_levels`` used (distinct luminances shown), ``available_levels`` of the
          method on this display, ``clipped_fraction`` (requests outside the display's
          range);
        * ``method``, ``bits``, ``dither``, ``background_cd_m2``.

        Relative errors are ``predicted / requested - 1`` (None for a request of 0).
    """
    x = np.asarray(v.image_stack("contrast_image", contrast_image), dtype=np.float64)
    if isinstance(encoded, Encoded):
        l0 = encoded.mean_cd_m2 if mean_cd_m2 is None else v.positive("mean_cd_m2", mean_cd_m2)
        meth: str | None = encoded.method
        b: int | None = encoded.bits
        dith: str | None = encoded.dither
        vals = encoded.values
    else:
        if mean_cd_m2 is None:
            raise ValueError("give mean_cd_m2 (the requested background, cd/m^2) with plain device values")
        l0 = v.positive("mean_cd_m2", mean_cd_m2)
        vals = np.asarray(encoded)
        meth, b, dith = method, None, None
    lum = decode(vals if not isinstance(encoded, Encoded) else encoded, display, method=meth)
    if lum.shape != x.shape:
        raise ValueError(f"the encoded values show an image of shape {lum.shape}, the contrast image "
                         f"has shape {x.shape}")
    meth = meth if meth is not None else ("linear8" if vals.dtype == np.uint8 else "png16")
    _, b = _method_bits(meth, b)
    req = l0 * (1.0 + x)
    table = _level_table(display, meth, b)
    clipped = np.count_nonzero((req < table[0] * (1 - 1e-12)) | (req > table[-1] * (1 + 1e-12)))
    rq_mean, rq_rms, rq_mich = _stats(req)
    shown = _shown(lum)
    pr_mean = shown["predicted_mean_cd_m2"]
    pr_rms = shown["predicted_rms_contrast"]
    pr_mich = shown["predicted_michelson_contrast"]
    dev = req - req.mean()
    var = float(np.sum(dev * dev))
    gain = float(np.sum((lum - lum.mean()) * dev)) / var if var > 0 else None
    distinct = shown["distinct_levels"]  # levels as shown (mono++ ignores its 2 low bits)
    return {
        "method": meth, "bits": b, "dither": dith, "background_cd_m2": l0,
        "requested_mean_cd_m2": rq_mean, "predicted_mean_cd_m2": pr_mean,
        "mean_rel_error": _rel(pr_mean, rq_mean),
        "requested_rms_contrast": rq_rms, "predicted_rms_contrast": pr_rms,
        "rms_contrast_rel_error": _rel(pr_rms, rq_rms),
        "requested_michelson_contrast": rq_mich, "predicted_michelson_contrast": pr_mich,
        "michelson_contrast_rel_error": _rel(pr_mich, rq_mich),
        "contrast_gain": gain, "contrast_gain_error": None if gain is None else gain - 1.0,
        "error_rms_contrast": float(np.sqrt(np.mean((lum - req) ** 2))) / l0,
        "distinct_levels": distinct,
        "available_levels": int(np.count_nonzero(np.diff(table) > 0) + 1),
        "clipped_fraction": float(clipped / x.size),
    }  # fmt: skip
