"""Levin et al. (2004) neighbourhood weights, affinity matrix, cost and colorization.

Colorization using Optimization (Levin, Lischinski and Weiss, SIGGRAPH 2004) asks that
each pixel's chrominance U(r) be the weighted average of its neighbours',
U(r) = sum_s w_rs U(s), with weights w_rs that are large where the luminances Y(r), Y(s)
are similar, and fixes U at a few scribbled pixels. Everything here is vectorized with
array shifts: there is no per-pixel Python loop.

Contents
--------
levin_weights    the weights w_rs of every pixel to its window neighbours, (H, W, K)
levin_affinity   the sparse matrix I - W (identity rows for constrained pixels)
levin_cost       J(U) = sum_r (U(r) - sum_s w_rs U(s))^2 and its gradient
colorize         solve for the chrominance from scribbles and return RGB
scribble_mask    the pixels where a marked image differs from the gray one
rgb_to_yiq, ...  the NTSC YIQ and BT.601 YUV conversions used by colorize
NeighbourWeights the (weights, offsets, valid) triple returned by levin_weights

Conventions
-----------
* Images are float arrays, ``(H, W)`` luminance or ``(H, W, 3)`` RGB, values in [0, 1]
  (the regularizers ``eps`` are in these units squared). Nothing is rescaled by dtype.
* The window is ``window x window`` pixels (default 3x3) centred on r, clipped at the image
  border: a corner pixel has 3 neighbours in a 3x3 window, an edge pixel 5, others 8.
* Neighbour layout: the ``K = window**2 - 1`` neighbours of each pixel are stored along the
  last axis, in row-major order of their offsets ``(drow, dcol)`` with ``(0, 0)`` left out
  (for 3x3: ``(-1,-1) (-1,0) (-1,1) (0,-1) (0,1) (1,-1) (1,0) (1,1)``). ``valid[i, j, k]``
  is False where neighbour k of pixel (i, j) lies outside the image; its weight is 0.
* Pixel index (row of the sparse matrices): ``r = row * W + column`` (C order, the order of
  ``image.ravel()``). Sparse matrices are ``scipy.sparse.csr_array`` with sorted indices.
* Weight forms (``form=``), both normalized to sum to 1 over the valid neighbours of r:

  ``"gaussian"`` (the authors' reference implementation, ``getColorExact.m``)
      ``w_rs ~ exp(-(Y_s - Y_r)^2 / c_r)``, ``c_r = max(0.6 var_r, min_s (Y_s - Y_r)^2 /
      ln 100, 2 eps)``, var_r the population variance of the window *including* r.
      ``c_r`` plays the role of ``2 sigma_r^2``. Weights are > 0 for every in-image
      neighbour (the raw weight is >= exp(-2 N_r / 0.6), N_r pixels in the window).
  ``"correlation"`` (the paper's equation 3, regularized)
      ``w_rs ~ 1 + (Y_r - mu_r)(Y_s - mu_r) / (sigma_r^2 + eps)`` with mu_r, sigma_r^2 the
      mean and population variance of the window including r. Without ``eps`` a flat
      window gives 0/0, and so does an isolated outlier (all neighbours equal, r not): its
      raw weights are all exactly 0. With ``eps > 0`` the raw sum is at least
      ``n eps / (sigma_r^2 + eps) > 0`` (n neighbours), and both cases tend to the uniform
      average 1/n. Individual weights can be negative.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, NamedTuple

import numpy as np

from . import _validate as v

__all__ = [
    "FORMS",
    "NeighbourWeights",
    "colorize",
    "levin_affinity",
    "levin_cost",
    "levin_weights",
    "rgb_to_yiq",
    "rgb_to_yuv",
    "scribble_mask",
    "yiq_to_rgb",
    "yuv_to_rgb",
]

FORMS = ("gaussian", "correlation")
_LN100 = math.log(100.0)

# NTSC YIQ, the matrix of MATLAB's rgb2ntsc used by the authors' code.
_RGB2YIQ = np.array(
    [[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], dtype=np.float64
)
# Analog BT.601 YUV: U = 0.436 (B - Y) / (1 - 0.114), V = 0.615 (R - Y) / (1 - 0.299).
_Y601 = np.array([0.299, 0.587, 0.114])
_RGB2YUV = np.array(
    [
        _Y601,
        0.436 / (1 - 0.114) * (np.array([0.0, 0.0, 1.0]) - _Y601),
        0.615 / (1 - 0.299) * (np.array([1.0, 0.0, 0.0]) - _Y601),
    ]
)
_SPACES = {"yiq": _RGB2YIQ, "yuv": _RGB2YUV}


class NeighbourWeights(NamedTuple):
    """Weights of every pixel to its window neighbours (returned by :func:`levin_weights`).

    Attributes
    ----------
    weights : ndarray, shape (H, W, K), float64
        ``weights[i, j, k]`` is w_rs for r = (i, j) and s = (i, j) + offsets[k];
        0 where ``valid`` is False. Each pixel's weights sum to 1.
    offsets : ndarray, shape (K, 2), int
        Neighbour offsets ``(drow, dcol)`` in pixels, row-major, centre left out.
    valid : ndarray, shape (H, W, K), bool
        True where the neighbour lies inside the image.
    """

    weights: np.ndarray
    offsets: np.ndarray
    valid: np.ndarray


# -- validation and layout helpers -------------------------------------------------------
_MAX_LUMINANCE = 1e150  # squared differences of larger values overflow float64


def _luminance(luminance: Any) -> np.ndarray:
    y = v.finite_array("luminance", luminance, ndim=(2,))
    if y.size < 2:
        raise ValueError(f"luminance must have at least 2 pixels, got shape {y.shape}")
    y = np.asarray(y, dtype=np.float64)
    top = float(np.abs(y).max())
    if top > _MAX_LUMINANCE:
        raise ValueError(
            f"luminance values must be at most {_MAX_LUMINANCE:g} in magnitude (nominally in "
            f"[0, 1]; their squared differences must fit float64), got up to {top:g}"
        )
    return y


def _window(window: Any, shape: tuple[int, ...] | None = None) -> int:
    w = v.positive_int("window", window, minimum=3)
    if w % 2 == 0:
        raise ValueError(f"window must be an odd integer >= 3 (pixels), got {window!r}")
    if shape is not None:
        most = 2 * max(shape) + 1  # beyond 2 x the longer side - 1, no neighbour is added
        if w > most:
            raise ValueError(
                f"window must be at most {most} px for an image of {shape[0]} x {shape[1]} px "
                f"(2 x its longer side + 1; a wider window adds no neighbour), got {window!r}"
            )
    return w


_MAX_EPS = 1e300  # 2 eps must stay finite


def _eps(eps: Any) -> float:
    e = v.positive("eps", eps)
    if e > _MAX_EPS:
        raise ValueError(f"eps must be in (0, {_MAX_EPS:g}] (luminance units squared), got {eps!r}")
    return e


def _offsets(window: int) -> np.ndarray:
    h = window // 2
    return np.array(
        [(dy, dx) for dy in range(-h, h + 1) for dx in range(-h, h + 1) if dy or dx], dtype=np.intp
    )


def _span(d: int, n: int) -> tuple[slice, slice]:
    """Slices ``(dst, src)`` along one axis with ``dst`` index i reading ``src`` i + d."""
    lo, hi = max(0, -d), min(n, n - d)
    if hi <= lo:
        return slice(0, 0), slice(0, 0)
    return slice(lo, hi), slice(lo + d, hi + d)


def _valid_planes(shape: tuple[int, int], offsets: np.ndarray) -> np.ndarray:
    """``(K, H, W)`` bool: neighbour k of pixel (i, j) lies inside the image."""
    h, w = shape
    dy, dx = offsets[:, 0, None], offsets[:, 1, None]
    rows, cols = np.arange(h), np.arange(w)
    rv = (rows + dy >= 0) & (rows + dy < h)  # (K, H)
    cv = (cols + dx >= 0) & (cols + dx < w)  # (K, W)
    return rv[:, :, None] & cv[:, None, :]


_BLOCK = 1 << 16  # elements per (K, rows, W) working block: stays in cache


def _window_counts(n: int, half: int) -> np.ndarray:
    """Pixels of the clipped window ``[i - half, i + half] & [0, n)`` along one axis."""
    i = np.arange(n)
    return (np.minimum(i + half, n - 1) - np.maximum(i - half, 0) + 1).astype(np.float64)


def _weight_planes(y: np.ndarray, offsets: np.ndarray, form: str, eps: float) -> np.ndarray:
    """Normalized weights as ``(K, H, W)`` planes (0 outside the image).

    Works on differences ``d_k = Y_s - Y_r`` so that every reduction runs over contiguous
    planes: with S1 = sum_s d, S2 = sum_s d^2 over the n valid neighbours and N = n + 1,
    mu_r - Y_r = S1 / N and var_r = S2 / N - (S1 / N)^2. Rows are processed in blocks
    small enough to stay in cache.
    """
    h, w = y.shape
    k = len(offsets)
    half = int(np.abs(offsets).max())
    n_win = _window_counts(h, half)[:, None] * _window_counts(w, half)[None, :]
    out = np.empty((k, h, w))
    rows = max(1, min(h, _BLOCK // (k * w)))
    tmp = np.empty((k, rows, w)) if form == "correlation" else None
    col_spans = [_span(int(dx), w) for dx in offsets[:, 1]]
    for r0 in range(0, h, rows):  # blocks of rows; each block is K plane operations
        r1 = min(h, r0 + rows)
        d = out[:, r0:r1]
        for i, (dy, ((rx, sx))) in enumerate(zip(offsets[:, 0], col_spans, strict=True)):
            a, b = max(r0, -dy), min(r1, h - dy)  # rows of the block whose neighbour exists
            plane = d[i]
            plane[: max(a - r0, 0)] = 0.0
            plane[max(b - r0, 0) :] = 0.0
            if b > a:
                np.subtract(y[a + dy : b + dy, sx], y[a:b, rx], out=plane[a - r0 : b - r0, rx])
                plane[a - r0 : b - r0, : rx.start] = 0.0
                plane[a - r0 : b - r0, rx.stop :] = 0.0
        nb = n_win[r0:r1]
        m1 = d.sum(axis=0) / nb  # mu_r - Y_r
        if form == "gaussian":
            np.square(d, out=d)
            var = d.sum(axis=0) / nb - m1 * m1
            _fill_outside(d, offsets, col_spans, r0, r1, h, np.inf)  # exp(-inf) = 0
            c = np.maximum(np.maximum(0.6 * var, d.min(axis=0) / _LN100), 2.0 * eps)
            d *= (-1.0 / c)[None]
            np.exp(d, out=d)
        else:
            assert tmp is not None  # allocated for the correlation form
            t = tmp[:, : r1 - r0]
            np.square(d, out=t)
            var = t.sum(axis=0) / nb - m1 * m1
            np.maximum(var, 0.0, out=var)  # rounding can leave -1e-17 in flat windows
            # 1 + (Y_r - mu_r)(Y_s - mu_r) / (var + eps) = 1 + (d - m1) * (-m1 / (var + eps))
            d -= m1[None]
            d *= (-m1 / (var + eps))[None]
            d += 1.0
            _fill_outside(d, offsets, col_spans, r0, r1, h, 0.0)
        d *= (1.0 / d.sum(axis=0))[None]
    return out


def _fill_outside(d, offsets, col_spans, r0, r1, h, value) -> None:
    """Set the entries of block rows ``[r0, r1)`` whose neighbour is outside the image."""
    for i, (dy, (rx, _)) in enumerate(zip(offsets[:, 0], col_spans, strict=True)):
        a, b = max(r0, -dy), min(r1, h - dy)
        plane = d[i]
        plane[: max(a - r0, 0)] = value
        plane[max(b - r0, 0) :] = value
        plane[:, : rx.start] = value
        plane[:, rx.stop :] = value


# -- weights ------------------------------------------------------------------------------
def levin_weights(
    luminance: Any, *, form: str = "gaussian", window: int = 3, eps: float = 1e-6
) -> NeighbourWeights:
    """Levin et al. (2004) weights of every pixel to the neighbours in its window.

    Parameters
    ----------
    luminance : array_like, shape (H, W)
        Luminance Y, float, nominally in [0, 1]; finite. At least 2 pixels.
    form : {"gaussian", "correlation"}
        ``"gaussian"``: the authors' reference implementation,
        ``exp(-(Y_s - Y_r)^2 / c_r)`` with their variance heuristic. ``"correlation"``:
        the paper's ``1 + (Y_r - mu_r)(Y_s - mu_r) / (sigma_r^2 + eps)``.
    window : int
        Window side in pixels, odd, >= 3 (default 3, as in the paper). Windows are
        clipped at the image border.
    eps : float
        Variance regularizer in luminance units squared (> 0, default 1e-6). Gaussian
        form: the floor of c_r is ``2 eps`` (the authors' 2e-6). Correlation form: added to
        sigma_r^2.

    Returns
    -------
    NeighbourWeights
        ``(weights, offsets, valid)``: weights ``(H, W, K)`` summing to 1 over the last
        axis, offsets ``(K, 2)`` as ``(drow, dcol)``, and the in-image mask ``(H, W, K)``;
        ``K = window**2 - 1``.

    Notes
    -----
    With n_r valid neighbours and N_r = n_r + 1 pixels in the clipped window,
    mu_r = mean and var_r = sum (Y - mu_r)^2 / N_r over the window including r.
    Gaussian form: ``c_r = max(0.6 var_r, min_s (Y_s - Y_r)^2 / ln 100, 2 eps)``, so the
    most similar neighbour always has a raw weight >= 0.01 (no 0/0).
    Correlation form: see the module docstring for why ``eps`` is needed.

    References
    ----------
    A. Levin, D. Lischinski, Y. Weiss, "Colorization using Optimization", ACM Trans.
    Graphics 23(3) (SIGGRAPH 2004), 689-694; code ``getColorExact.m``.

    Examples
    --------
    >>> import numpy as np
    >>> nw = levin_weights(np.array([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]]))
    >>> nw.weights.shape, nw.offsets[3].tolist(), int(nw.valid[0, 0].sum())
    ((2, 3, 8), [0, -1], 3)
    """
    y, planes, offsets = _planes_checked(luminance, form, window, eps)
    valid = _valid_planes(y.shape, offsets)
    return NeighbourWeights(
        np.ascontiguousarray(np.moveaxis(planes, 0, -1)),
        offsets,
        np.ascontiguousarray(np.moveaxis(valid, 0, -1)),
    )


# -- affinity matrix -----------------------------------------------------------------------
def _mask(mask: Any, shape: tuple[int, ...], name: str = "mask") -> np.ndarray:
    m = np.asarray(mask)
    if m.shape != tuple(shape):
        raise ValueError(f"{name} shape {m.shape} does not match the image shape {tuple(shape)}")
    if m.dtype != bool:
        if m.dtype.kind not in "biuf" or not np.isin(m, (0, 1)).all():
            raise ValueError(f"{name} must be boolean (or 0/1), got dtype {m.dtype}")
        m = m.astype(bool)
    return m


def _affinity_from(planes: np.ndarray, offsets: np.ndarray, mask: np.ndarray | None):
    """CSR ``I - W`` from ``(K, H, W)`` weight planes; identity rows where ``mask``.

    The planes are the matrix's diagonals: ``A[r, r + s_k] = -w_k(r)`` with
    ``s_k = drow_k * W + dcol_k``. They are laid out as DIA data (one shifted copy per
    offset) and converted by scipy's compiled DIA -> CSR routine, which drops the zeros
    (neighbours outside the image, including the row wrap-around at the left and right
    edges, and weights that underflow to 0).
    """
    from scipy.sparse import dia_array

    k, h, wd = planes.shape
    n = h * wd
    flat = planes.reshape(k, n)
    keep = None if mask is None else ~mask.ravel()
    shifts = offsets[:, 0] * wd + offsets[:, 1]
    # On images narrower than the window two offsets can share a diagonal (e.g. (0, -1)
    # and (-1, 1) when W = 2); their in-image entries never share a row, so they add.
    diagonals, slot = np.unique(np.append(shifts, 0), return_inverse=True)
    data = np.zeros((len(diagonals), n))
    data[slot[-1]] = 1.0
    for i, s in enumerate(shifts):  # DIA column j holds A[j - s, j]
        lo, hi = max(int(s), 0), n + min(int(s), 0)
        if hi <= lo:
            continue
        dst = data[slot[i], lo:hi]
        if keep is None:
            dst -= flat[i, lo - s : hi - s]
        else:
            dst -= flat[i, lo - s : hi - s] * keep[lo - s : hi - s]
    dia = dia_array((data, diagonals), shape=(n, n))
    return dia.tocsr()


def _planes_checked(luminance: Any, form: str, window: int, eps: float):
    y = _luminance(luminance)
    form = v.choice("form", form, FORMS)
    offsets = _offsets(_window(window, y.shape))
    return y, _weight_planes(y, offsets, form, _eps(eps)), offsets


def levin_affinity(
    luminance: Any,
    *,
    mask: Any = None,
    form: str = "gaussian",
    window: int = 3,
    eps: float = 1e-6,
):
    """The sparse matrix with rows ``[1, -w_rs]``: ``I - W``, identity rows where constrained.

    Parameters
    ----------
    luminance : array_like, shape (H, W)
        Luminance Y, float, nominally in [0, 1]; finite.
    mask : array_like of bool, shape (H, W), optional
        Constrained (scribbled) pixels. Their rows are identity rows. None (default):
        every pixel is free and the matrix is ``I - W``.
    form, window, eps
        As in :func:`levin_weights`.

    Returns
    -------
    scipy.sparse.csr_array, shape (H*W, H*W), float64
        Row and column index ``r = row * W + column``; sorted indices; entries whose
        weight is exactly 0 are not stored.

    Notes
    -----
    Built directly from the shifted weight arrays (a DIA-like ``(H*W, K+1)`` band whose
    out-of-image entries are dropped), with no Python loop over pixels. Without a mask,
    every row sums to 0 (``L @ ones == 0``).
    """
    y, planes, offsets = _planes_checked(luminance, form, window, eps)
    m = None if mask is None else _mask(mask, y.shape)
    return _affinity_from(planes, offsets, m)


# -- cost --------------------------------------------------------------------------------
def _apply(planes: np.ndarray, offsets: np.ndarray, u: np.ndarray) -> np.ndarray:
    """``(W u)(r) = sum_s w_rs u(s)`` with shifts; u is (H, W) or (H, W, C)."""
    h, wd = planes.shape[1:]
    out = np.zeros(u.shape)
    for k, (dy, dx) in enumerate(offsets):
        (ry, sy), (rx, sx) = _span(int(dy), h), _span(int(dx), wd)
        wk = planes[k, ry, rx]
        out[ry, rx] += (wk[..., None] if u.ndim == 3 else wk) * u[sy, sx]
    return out


def _apply_transpose(planes: np.ndarray, offsets: np.ndarray, e: np.ndarray) -> np.ndarray:
    """``(W^T e)(s) = sum_r w_rs e(r)``."""
    h, wd = planes.shape[1:]
    out = np.zeros(e.shape)
    for k, (dy, dx) in enumerate(offsets):
        (ry, sy), (rx, sx) = _span(int(dy), h), _span(int(dx), wd)
        wk = planes[k, ry, rx]
        out[sy, sx] += (wk[..., None] if e.ndim == 3 else wk) * e[ry, rx]
    return out


def levin_cost(
    u: Any,
    luminance: Any,
    *,
    form: str = "gaussian",
    window: int = 3,
    eps: float = 1e-6,
) -> tuple[float, np.ndarray]:
    """The colorization cost ``J(U) = sum_r (U(r) - sum_s w_rs U(s))^2`` and its gradient.

    Parameters
    ----------
    u : array_like, shape (H, W) or (H, W, C)
        The field U (e.g. one or both chrominance channels), any units; finite. With C
        channels the costs of the channels are summed.
    luminance : array_like, shape (H, W)
        Luminance Y defining the weights, float, nominally in [0, 1].
    form, window, eps
        As in :func:`levin_weights`.

    Returns
    -------
    cost : float
        J(U), in the units of U squared.
    gradient : ndarray, same shape as u
        ``dJ/dU = 2 (I - W)^T (I - W) U``.

    Notes
    -----
    Computed with array shifts, not with the sparse matrix; it equals
    ``sum((L @ U.ravel())**2)`` with ``L = levin_affinity(luminance)``. The sum runs over
    every pixel: scribble constraints are not part of J.
    """
    y, planes, offsets = _planes_checked(luminance, form, window, eps)
    uu = v.finite_array("u", u, ndim=(2, 3)).astype(np.float64, copy=False)
    if uu.shape[:2] != y.shape:
        raise ValueError(f"u shape {uu.shape} does not match the luminance shape {y.shape}")
    with np.errstate(over="ignore", invalid="ignore"):
        e = uu - _apply(planes, offsets, uu)
        grad = 2.0 * (e - _apply_transpose(planes, offsets, e))
        cost = float(np.sum(e * e))
    if not (math.isfinite(cost) and np.isfinite(grad).all()):
        raise ValueError(
            f"u values up to {float(np.abs(uu).max()):g} make the cost overflow float64 "
            "(it is a sum of squares): give u with magnitudes below about 1e150"
        )
    return cost, grad


# -- colour spaces -----------------------------------------------------------------------
def _convert(rgb: Any, matrix: np.ndarray, name: str) -> np.ndarray:
    a = v.finite_array(name, rgb)
    if a.ndim < 1 or a.shape[-1] != 3:
        raise ValueError(f"{name} must have 3 channels in its last axis, got shape {a.shape}")
    return np.asarray(a, dtype=np.float64) @ matrix.T


def rgb_to_yiq(rgb: Any) -> np.ndarray:
    """NTSC YIQ (MATLAB ``rgb2ntsc``) of an ``(..., 3)`` RGB array in [0, 1]."""
    return _convert(rgb, _RGB2YIQ, "rgb")


def yiq_to_rgb(yiq: Any) -> np.ndarray:
    """Inverse of :func:`rgb_to_yiq` (exact matrix inverse; no clipping)."""
    return _convert(yiq, np.linalg.inv(_RGB2YIQ), "yiq")


def rgb_to_yuv(rgb: Any) -> np.ndarray:
    """Analog BT.601 YUV of an ``(..., 3)`` RGB array in [0, 1] (gray -> U = V = 0)."""
    return _convert(rgb, _RGB2YUV, "rgb")


def yuv_to_rgb(yuv: Any) -> np.ndarray:
    """Inverse of :func:`rgb_to_yuv` (exact matrix inverse; no clipping)."""
    return _convert(yuv, np.linalg.inv(_RGB2YUV), "yuv")


# -- the colorization solve -------------------------------------------------------------
def _dissection_order(h: int, w: int, sep: int, leaf: int = 4) -> np.ndarray:
    """Geometric nested-dissection order of an ``h x w`` pixel grid.

    A rectangle is split across its longer side by a separator ``sep`` pixels wide (wide
    enough that no window couples the two halves); the halves are ordered first
    (recursively), the separator last. This keeps the fill of the LU factors near the
    O(N log N) of nested dissection, which general-purpose orderings do not reach on
    these 8-neighbour grids.
    """
    label = np.empty((h, w), dtype=np.int64)
    count = 0

    def put(r0: int, r1: int, c0: int, c1: int) -> None:
        nonlocal count
        label[r0:r1, c0:c1] = count
        count += 1

    def rec(r0: int, r1: int, c0: int, c1: int) -> None:
        nh, nw = r1 - r0, c1 - c0
        if nh <= 0 or nw <= 0:
            return
        if nh * nw <= leaf * leaf or max(nh, nw) <= 2 * sep + 1:
            put(r0, r1, c0, c1)
        elif nh >= nw:
            mid = r0 + (nh - sep) // 2
            rec(r0, mid, c0, c1)
            rec(mid + sep, r1, c0, c1)
            put(mid, mid + sep, c0, c1)
        else:
            mid = c0 + (nw - sep) // 2
            rec(r0, r1, c0, mid)
            rec(r0, r1, mid + sep, c1)
            put(r0, r1, mid, mid + sep)

    rec(0, h, 0, w)
    # pixels of each leaf or separator in row-major order, parts in post-order
    return np.argsort(label.ravel(), kind="stable")


def _solve_free(a, fixed: np.ndarray, values: np.ndarray, shape, sep: int, *, pivot: bool,
                what: str = "these weights"):
    """Solve ``A_ff x = -A_fc values_c`` for the free pixels, all columns at once.

    Returns the free pixel indices (in nested-dissection order) and their values. A
    singular system raises ``ValueError`` naming ``what`` (the user's parameters); running
    out of memory in the factorization raises ``MemoryError`` with the problem's size
    (SuperLU reports a failed allocation as a ``RuntimeError`` or a ``MemoryError``).
    """
    from scipy.sparse.linalg import splu

    h, w = shape
    order = _dissection_order(h, w, sep=max(sep, 1))
    free = order[~fixed[order]]
    fixed_idx = np.flatnonzero(fixed)
    rows = a[free]
    rhs = -(rows[:, fixed_idx] @ values[fixed_idx])
    # Gaussian weights are > 0 between all window neighbours (var_r >= d^2 / (2 N_r), so
    # d^2 / c_r <= 2 N_r / 0.6 and the raw weight is >= exp(-30) for 3x3) and sum to 1:
    # with one scribble, A_ff is an irreducibly diagonally dominant M-matrix, and LU
    # without pivoting is stable. The correlation form (negative weights) pivots.
    out_of_memory = MemoryError(
        f"not enough memory to factorize the colorization system of {h} x {w} px "
        f"({free.size} unknown pixels); colorize a smaller image, or tiles of it"
    )
    try:
        lu = splu(
            rows[:, free].tocsc(),
            permc_spec="NATURAL",
            diag_pivot_thresh=1.0 if pivot else 0.0,
            options={"SymmetricMode": True},
        )
        x = lu.solve(rhs)
    except MemoryError:
        raise out_of_memory from None
    except RuntimeError as exc:  # SuperLU: "Factor is exactly singular", or a failed malloc
        text = str(exc).lower()
        if "singular" not in text:
            if "malloc" in text or "memory" in text:
                raise out_of_memory from None
            raise
        x = np.full_like(rhs, np.nan)
    with np.errstate(invalid="ignore"):
        ok = bool(np.isfinite(x).all())
    if not ok:
        raise ValueError(
            f"the colorization system is singular (it has no unique solution) for {what}; "
            "use form='gaussian' (always solvable with at least one scribble) or a larger eps"
        )
    return free, x


# -- colorization ------------------------------------------------------------------------
def _float_image(name: str, a: Any, ndim: tuple[int, ...]) -> np.ndarray:
    arr = v.finite_array(name, a, ndim=ndim)
    if arr.dtype.kind != "f":
        raise ValueError(
            f"{name} must be a float array with values in [0, 1], got dtype {arr.dtype}; "
            "convert explicitly (e.g. image / 255 for 8-bit data)"
        )
    if arr.ndim == 3 and arr.shape[-1] != 3:
        raise ValueError(f"{name} must be (H, W) or (H, W, 3), got shape {arr.shape}")
    if arr.size:
        lo, hi = float(arr.min()), float(arr.max())
        if lo < 0.0 or hi > 1.0:
            raise ValueError(
                f"{name} must have values in [0, 1], got values in [{lo:g}, {hi:g}]"
                + ("; 8-bit levels (0..255) must be divided by 255 first" if hi <= 255 and lo >= 0
                   else "")
            )
    return np.asarray(arr, dtype=np.float64)


def scribble_mask(gray: Any, scribbles: Any, *, threshold: float = 0.01) -> np.ndarray:
    """Pixels where a marked image differs from the gray image (the authors' rule).

    Parameters
    ----------
    gray : array_like, shape (H, W) or (H, W, 3), float
        The gray image in [0, 1] (luminance, or RGB with equal channels).
    scribbles : array_like, shape (H, W, 3), float
        The gray image with colour scribbles painted on it, RGB in [0, 1].
    threshold : float
        Sum over the channels of ``|scribbles - gray|`` above which a pixel counts as
        scribbled, in [0, 1] units (>= 0, default 0.01: about 1 level of an 8-bit image
        in each channel is tolerated).

    Returns
    -------
    ndarray of bool, shape (H, W)
    """
    g = _float_image("gray", gray, (2, 3))
    s = _float_image("scribbles", scribbles, (3,))
    if s.shape[:2] != g.shape[:2]:
        raise ValueError(f"scribbles shape {s.shape} does not match the gray image shape {g.shape}")
    threshold = v.positive("threshold", threshold, allow_zero=True)
    g3 = g if g.ndim == 3 else g[..., None]
    return np.abs(s - g3).sum(axis=-1) > threshold


def colorize(
    gray: Any,
    scribbles: Any,
    mask: Any = None,
    *,
    space: str = "yiq",
    form: str = "gaussian",
    window: int = 3,
    eps: float = 1e-6,
    threshold: float = 0.01,
    clip: bool = True,
) -> np.ndarray:
    """Colorize a gray image from colour scribbles (Levin et al. 2004).

    Parameters
    ----------
    gray : array_like, shape (H, W) or (H, W, 3), float
        The gray image, values in [0, 1]: its luminance Y directly, or an RGB image whose
        Y (in ``space``) is used.
    scribbles : array_like, shape (H, W, 3), float
        RGB image in [0, 1] whose chrominance at the scribbled pixels is imposed (the
        "marked" image; only pixels in ``mask`` are read).
    mask : array_like of bool, shape (H, W), optional
        Scribbled pixels. None (default): the pixels where ``scribbles`` differs from
        ``gray``, ``sum_c |scribbles - gray| > threshold`` (the authors' rule).
    space : {"yiq", "yuv"}
        Luminance-chrominance space: NTSC YIQ (as the authors) or BT.601 YUV.
    form, window, eps
        Weights, as in :func:`levin_weights` (default: the authors' Gaussian form).
    threshold : float
        RGB difference (sum over channels, [0, 1] units) above which a pixel counts as
        scribbled when ``mask`` is None (default 0.01).
    clip : bool
        Clip the RGB result to [0, 1] (default True). Out-of-gamut colours occur where
        strong chrominance meets very dark or bright luminance.

    Returns
    -------
    ndarray, shape (H, W, 3), float64
        The colorized RGB image: Y from ``gray``, chrominance solved.

    Notes
    -----
    Each chrominance channel solves ``A U = b``, where A is :func:`levin_affinity` with
    identity rows at the scribbles (as in the authors' ``getColorExact.m``): every free
    pixel equals the weighted average of its neighbours, scribbled pixels keep their
    value. The scribbled unknowns are eliminated, the free block is ordered by geometric
    nested dissection and factorized once (``scipy.sparse.linalg.splu``; no pivoting for
    the Gaussian form, whose block is an M-matrix), and both channels are solved with the
    one factorization. A 256 x 256 image takes about 0.25 s.
    """
    space = v.choice("space", space, tuple(_SPACES))
    g = _float_image("gray", gray, (2, 3))
    s = _float_image("scribbles", scribbles, (3,))
    hw = g.shape[:2]
    if s.shape[:2] != hw:
        raise ValueError(f"scribbles shape {s.shape} does not match the gray image shape {g.shape}")
    matrix = _SPACES[space]
    y = g if g.ndim == 2 else g @ matrix[0]
    if mask is None:
        m = scribble_mask(g, s, threshold=threshold)
    else:
        m = _mask(mask, hw)
    n_scribbled = int(m.sum())
    if mask is None and n_scribbled > 0.5 * m.size:
        warnings.warn(
            f"{n_scribbled / m.size:.0%} of the pixels differ from the gray image by more than "
            f"threshold={threshold:g} and count as scribbles (a JPEG or palette image?); "
            "raise the threshold or pass an explicit mask",
            stacklevel=2,
        )
    if n_scribbled == 0:
        raise ValueError(
            "mask has no scribbled pixels: mark at least one pixel with a colour"
            + (
                f" (none differs from gray by more than threshold={threshold:g})"
                if mask is None
                else ""
            )
        )
    chroma = np.zeros((*hw, 2))
    chroma[m] = s[m] @ matrix[1:].T
    if n_scribbled < m.size:
        _, planes, offsets = _planes_checked(y, form, window, eps)
        a = _affinity_from(planes, offsets, None)
        free, x = _solve_free(
            a, m.ravel(), chroma.reshape(-1, 2), hw, window // 2, pivot=form != "gaussian",
            what=f"form={form!r}, window={window}, eps={eps:g}",
        )
        chroma.reshape(-1, 2)[free] = x
    full = np.concatenate([y[..., None], chroma], axis=-1)
    rgb = full @ np.linalg.inv(matrix).T
    if clip:
        np.clip(rgb, 0.0, 1.0, out=rgb)
    return rgb
