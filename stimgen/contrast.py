"""Contrast, clipping and quantization of stimuli in the signed-contrast convention.

Contents
--------
rms_contrast        standard deviation about each image's mean
michelson_contrast  (Lmax - Lmin) / (Lmax + Lmin)
set_rms_contrast    shift to a mean and scale to an exact RMS contrast (never min-max)
clip_contrast       explicit clipping to [-limit, limit] with the clipped fraction
quantize            8/16-bit output with rounding or noisy-bit dithering, optional gamma
to_psychopy         float textures for PsychoPy (``colorSpace="rgb"``)

Conventions
-----------
Images hold *signed contrast*: ``x = (L - L0) / L0`` with ``L0`` the mean (background)
luminance, so 0 is the background and the displayable range is [-1, 1] (PsychoPy's ``rgb``
convention). Shapes are ``(H, W)`` or stacks ``(N, H, W)``; per-image statistics reduce over
the last two axes. Nothing here rescales by dtype; integers appear only in :func:`quantize`.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from . import _validate as v

__all__ = [
    "clip_contrast",
    "michelson_contrast",
    "quantize",
    "rms_contrast",
    "set_rms_contrast",
    "to_psychopy",
]

DITHER_MODES = ("none", "noisy-bit")


def _images(name: str, images: Any) -> np.ndarray:
    return v.image_stack(name, images)


def rms_contrast(images: Any, *, per_image: bool = True) -> float | np.ndarray:
    """RMS contrast: standard deviation of signed contrast about the image's own mean.

    Parameters
    ----------
    images : ndarray, shape (H, W) or (N, H, W)
        Signed-contrast image(s) (0 = mean luminance).
    per_image : bool
        For a stack, one value per image (default) or one over the whole stack.

    Returns
    -------
    float or ndarray of shape (N,)
        ``sqrt(mean((x - mean(x))^2))``, accumulated in float64 (ddof = 0).
    """
    a = _images("images", images)
    axes = None if (a.ndim == 2 or not per_image) else (-2, -1)
    with np.errstate(over="ignore", invalid="ignore"):
        sd = np.std(a, axis=axes, dtype=np.float64)
    top = float(np.max(np.abs(a))) if a.size else 0.0
    if top > 0 and not (np.isfinite(sd).all() and np.min(sd) > 1e-140):
        # squares overflow (values above ~1e154) or underflow: scale by a power of two
        e = math.frexp(top)[1]
        sd = np.ldexp(np.std(np.ldexp(a.astype(np.float64), -e), axis=axes), e)
    return float(sd) if axes is None else sd


def michelson_contrast(images: Any, *, per_image: bool = True) -> float | np.ndarray:
    """Michelson contrast ``(Lmax - Lmin) / (Lmax + Lmin)`` with ``L = 1 + x``.

    Parameters
    ----------
    images : ndarray, shape (H, W) or (N, H, W)
        Signed-contrast image(s).
    per_image : bool
        One value per image of a stack (default) or one for the whole stack.
    """
    a = _images("images", images)
    axes = (-2, -1) if (a.ndim == 3 and per_image) else None
    hi = np.max(a, axis=axes).astype(np.float64)
    lo = np.min(a, axis=axes).astype(np.float64)
    if np.any(2.0 + hi + lo <= 0):
        raise ValueError("an image is black everywhere (all values -1): Michelson contrast is undefined")
    out = (hi - lo) / (2.0 + hi + lo)
    return float(out) if np.ndim(out) == 0 else out


def set_rms_contrast(
    images: Any,
    rms_contrast: float,
    *,
    mean: float = 0.0,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Shift each image to ``mean`` and scale it to exactly ``rms_contrast``.

    Parameters
    ----------
    images : ndarray, shape (H, W) or (N, H, W)
        Float image(s), any scale.
    rms_contrast : float
        Target RMS contrast (standard deviation in signed-contrast units), in (0, 1].
    mean : float
        Target mean in signed-contrast units, in (-1, 1) (0 = the background luminance).
    out : ndarray, optional
        Output array (may be ``images`` itself for in-place operation).

    Returns
    -------
    ndarray
        ``(x - mean(x)) * rms_contrast / std(x) + mean``, per image. Statistics are
        accumulated in float64 and the mean is subtracted in two parts, so even float32
        images far from zero come out exact to float32 precision; no full-size float64
        temporary is made. The output keeps the input's float dtype.

    Raises
    ------
    ValueError
        If ``rms_contrast`` is outside (0, 1], or an image is constant (std 0).
    """
    c = v.in_range("rms_contrast", rms_contrast, 0.0, 1.0, low_inclusive=False)
    m = v.in_range("mean", mean, -1.0, 1.0, low_inclusive=False, high_inclusive=False)
    a = _images("images", images)
    if a.dtype.kind != "f":
        raise ValueError(f"images must be float, got dtype {a.dtype}; convert explicitly first")
    res = out if out is not None else np.empty_like(a)
    if res.shape != a.shape:
        raise ValueError(f"out has shape {res.shape}, expected {a.shape}")
    t = a.dtype.type
    for img, r in zip(a if a.ndim == 3 else a[None], res if res.ndim == 3 else res[None], strict=True):
        # per image, so float64 statistics need no full-size float64 temporary
        mu = img.mean(dtype=np.float64)
        mu_hi = t(mu)
        np.subtract(img, mu_hi, out=r)
        r -= t(mu - float(mu_hi))  # the part of the mean float32 cannot hold
        with np.errstate(over="ignore", under="ignore"):
            ss = _sum_of_squares(r)
        if math.isfinite(ss) and ss > 1e-280:
            sd = math.sqrt(ss / r.size)
        else:  # squares overflow or underflow: exact std of power-of-two scaled values
            top = float(np.max(np.abs(r)))
            if not math.isfinite(top):
                raise ValueError("images has values too large for float arithmetic: their "
                                 "deviations from the mean overflow; scale them down first")
            e = math.frexp(top)[1] if top > 0 else 0
            sd = math.ldexp(math.sqrt(_sum_of_squares(np.ldexp(r.astype(np.float64), -e))
                                      / r.size), e)
        if sd == 0:
            raise ValueError("an image is constant (std 0): its RMS contrast cannot be set")
        with np.errstate(over="ignore"):
            gain = t(c / sd) if c / sd < float(np.finfo(a.dtype).max) else t(np.inf)
        if not np.isfinite(gain):
            raise ValueError(f"an image's std {sd:g} is too small to scale to rms_contrast={c:g} "
                             f"in {a.dtype}: the gain overflows; scale the image up first")
        r *= gain
        if m != 0.0:
            r += t(m)
    return res


def _sum_of_squares(x: np.ndarray, *, block_bytes: int = 256 * 2**10) -> float:
    """``sum(x**2)`` accumulated in float64 through one small reused scratch block.

    Keeps the cache-sized temporary instead of a full-size ``x**2`` (whose fresh pages cost
    more than the arithmetic on large images).
    """
    flat = x.reshape(-1)
    step = max(1, block_bytes // x.itemsize)
    tmp = np.empty(min(step, flat.size), dtype=x.dtype)
    total = 0.0
    for i in range(0, flat.size, step):
        chunk = flat[i : i + step]
        t = tmp[: chunk.size]
        np.multiply(chunk, chunk, out=t)
        total += float(t.sum(dtype=np.float64))
    return total


def clip_contrast(
    images: Any,
    *,
    limit: float = 1.0,
    out: np.ndarray | None = None,
    warn_above: float | None = 0.001,
) -> tuple[np.ndarray, float]:
    """Clip signed contrast to ``[-limit, limit]`` and report how much was clipped.

    Parameters
    ----------
    images : ndarray
        Signed-contrast image(s).
    limit : float
        Clipping bound (> 0; 1 is the display's range).
    out : ndarray, optional
        Output array (may be ``images`` for in-place clipping).
    warn_above : float or None
        Warn when the clipped fraction exceeds this (default 0.1 %); None never warns.

    Returns
    -------
    clipped : ndarray
    fraction : float
        Fraction of pixels that were outside the range.
    """
    lim = v.positive("limit", limit)
    a = _images("images", images)
    outside = np.count_nonzero((a < -lim) | (a > lim))
    frac = outside / a.size
    if warn_above is not None and frac > warn_above:
        warnings.warn(
            f"{frac:.4%} of pixels exceed +-{lim:g} and were clipped (more than {warn_above:.2%}); "
            "lower the RMS contrast to avoid distorting the spectrum",
            stacklevel=2,
        )
    return np.clip(a, -lim, lim, out=out), frac


def quantize(
    images: Any,
    bits: int = 8,
    *,
    dither: str = "none",
    gamma: float | None = None,
    rng: Any = None,
) -> tuple[np.ndarray, float]:
    """Quantize signed contrast [-1, 1] to unsigned integers for display or PNG files.

    Parameters
    ----------
    images : ndarray, shape (H, W) or (N, H, W)
        Signed-contrast image(s); 0 maps to mid-grey ``(2^bits - 1) / 2``.
    bits : int
        Bit depth, 1 to 16: uint8 for up to 8 bits, uint16 above.
    dither : {"none", "noisy-bit"}
        "none" rounds to the nearest level; "noisy-bit" adds U[0, 1) before flooring, so the
        expected output equals the exact value (Allard & Faubert 2008) and no contouring
        appears at low contrast.
    gamma : float, optional
        Display gamma for displays that are *not* linearized: the normalized luminance
        ``l = (x + 1) / 2`` is encoded as ``l^(1/gamma)``. Default None (linearized display).
    rng : None, int, SeedSequence or Generator
        Randomness for the dither.

    Returns
    -------
    levels : ndarray of uint8 or uint16
        ``round((x + 1) / 2 * (2^bits - 1))`` (after gamma encoding), clipped to the range.
    clipped_fraction : float
        Fraction of pixels that were outside [-1, 1] and were clipped.
    """
    b = v.positive_int("bits", bits)
    if b > 16:
        raise ValueError(f"bits must be between 1 and 16, got {bits!r}")
    v.choice("dither", dither, DITHER_MODES)
    a = _images("images", images)
    # float32 resolves 1/65536 of a level at 8 bits; 16-bit output works in float64
    work: Any = np.dtype(np.float32 if b <= 8 else np.float64)
    t = work.type
    top = t(2**b - 1)
    with np.errstate(over="ignore"):  # beyond float32: inf, clipped (and counted) below
        lum = a.astype(work)
    lum += t(1.0)
    lum *= t(0.5)
    outside = np.count_nonzero((lum < 0) | (lum > 1))
    np.clip(lum, t(0.0), t(1.0), out=lum)
    if gamma is not None:
        g = v.positive("gamma", gamma)
        np.power(lum, t(1.0 / g), out=lum)
    lum *= top
    if dither == "noisy-bit":
        lum += v.rng(rng).random(lum.shape, dtype=work)
    else:
        lum += t(0.5)
    np.floor(lum, out=lum)
    np.clip(lum, t(0.0), top, out=lum)
    dtype = np.uint8 if b <= 8 else np.uint16
    return lum.astype(dtype), outside / a.size


def to_psychopy(images: Any, *, flip_rows: bool = False) -> np.ndarray:
    """Float32 texture(s) for PsychoPy ``ImageStim``/``GratingStim`` with ``colorSpace="rgb"``.

    Parameters
    ----------
    images : ndarray
        Signed-contrast image(s) in [-1, 1] (the same convention as PsychoPy's ``rgb``).
    flip_rows : bool
        stimgen arrays have row 0 at the *top* of the image. Set True if your PsychoPy
        version draws array row 0 at the bottom (OpenGL texture order), so that the image
        appears upright.

    Raises
    ------
    ValueError
        If any value lies outside [-1, 1] (clip explicitly with :func:`clip_contrast`).
    """
    a = _images("images", images)
    lo, hi = float(np.min(a)), float(np.max(a))
    if lo < -1.0 or hi > 1.0:
        raise ValueError(
            f"images range [{lo:.4g}, {hi:.4g}] exceeds [-1, 1]; clip explicitly with clip_contrast"
        )
    out = np.asarray(a, dtype=np.float32)
    if flip_rows:
        out = out[..., ::-1, :]
    return np.ascontiguousarray(out)

