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
      ``c_r`` plays the role of ``2 sigma_r^2``. Weights are >= 0.
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
def _luminance(luminance: Any) -> np.ndarray:
    y = v.finite_array("luminance", luminance, ndim=(2,))
    if y.size < 2:
        raise ValueError(f"luminance must have at least 2 pixels, got shape {y.shape}")
    return np.asarray(y, dtype=np.float64)


def _window(window: Any) -> int:
    w = v.positive_int("window", window, minimum=3)
    if w % 2 == 0:
        raise ValueError(f"window must be an odd integer >= 3 (pixels), got {window!r}")
    return w


def _eps(eps: Any) -> float:
    return v.positive("eps", eps)


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


def _valid(shape: tuple[int, int], offsets: np.ndarray) -> np.ndarray:
    h, w = shape
    rows, cols = np.arange(h), np.arange(w)
    dy, dx = offsets[:, 0], offsets[:, 1]
    rv = (rows[:, None] + dy >= 0) & (rows[:, None] + dy < h)  # (H, K)
    cv = (cols[:, None] + dx >= 0) & (cols[:, None] + dx < w)  # (W, K)
    return rv[:, None, :] & cv[None, :, :]


def _neighbours(y: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """``out[i, j, k] = y[i + dy_k, j + dx_k]`` where inside the image, else 0."""
    h, w = y.shape
    out = np.zeros((h, w, len(offsets)), dtype=y.dtype)
    for k, (dy, dx) in enumerate(offsets):  # K array operations, not a per-pixel loop
        (ry, sy), (rx, sx) = _span(int(dy), h), _span(int(dx), w)
        out[ry, rx, k] = y[sy, sx]
    return out


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
    y = _luminance(luminance)
    form = v.choice("form", form, FORMS)
    window = _window(window)
    eps = _eps(eps)
    offsets = _offsets(window)
    valid = _valid(y.shape, offsets)
    ys = _neighbours(y, offsets)
    n_win = valid.sum(axis=-1) + 1.0  # pixels in the clipped window, r included
    mu = (y + ys.sum(axis=-1)) / n_win  # invalid entries of ys are 0
    dev_r = y - mu
    dev_s = np.where(valid, ys - mu[..., None], 0.0)
    var = (dev_r**2 + np.einsum("ijk,ijk->ij", dev_s, dev_s)) / n_win
    if form == "gaussian":
        d2 = (ys - y[..., None]) ** 2
        mgv = np.min(np.where(valid, d2, np.inf), axis=-1)
        c = np.maximum(np.maximum(0.6 * var, mgv / _LN100), 2.0 * eps)
        w = np.exp(-d2 / c[..., None])
    else:
        w = 1.0 + dev_s * (dev_r / (var + eps))[..., None]
    w *= valid
    w /= w.sum(axis=-1, keepdims=True)
    return NeighbourWeights(w, offsets, valid)


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


def _affinity_from(nw: NeighbourWeights, mask: np.ndarray | None):
    from scipy.sparse import csr_array

    w, offsets, valid = nw
    h, wd, k = w.shape
    n = h * wd
    half = k // 2  # the diagonal sits between offsets (0, -1) and (0, 1)
    data = np.empty((n, k + 1))
    data[:, :half] = -w.reshape(n, k)[:, :half]
    data[:, half] = 1.0
    data[:, half + 1 :] = -w.reshape(n, k)[:, half:]
    keep = np.empty((n, k + 1), dtype=bool)
    keep[:, :half] = valid.reshape(n, k)[:, :half]
    keep[:, half] = True
    keep[:, half + 1 :] = valid.reshape(n, k)[:, half:]
    if mask is not None:
        keep[mask.ravel()] = False
        keep[mask.ravel(), half] = True
    shifts = offsets[:, 0] * wd + offsets[:, 1]
    shifts = np.concatenate([shifts[:half], [0], shifts[half:]])
    idx_dtype = np.int32 if n * (k + 1) < 2**31 else np.int64
    cols = np.arange(n, dtype=idx_dtype)[:, None] + shifts.astype(idx_dtype)
    indptr = np.zeros(n + 1, dtype=idx_dtype)
    np.cumsum(keep.sum(axis=1), out=indptr[1:])
    # valid neighbours in row-major offset order have increasing column indices
    return csr_array((data[keep], cols[keep], indptr), shape=(n, n))


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
        Row and column index ``r = row * W + column``; sorted indices, explicit zeros
        kept only where a weight underflows.

    Notes
    -----
    Built directly from the shifted weight arrays (a DIA-like ``(H*W, K+1)`` band whose
    out-of-image entries are dropped), with no Python loop over pixels. Without a mask,
    every row sums to 0 (``L @ ones == 0``).
    """
    y = _luminance(luminance)
    m = None if mask is None else _mask(mask, y.shape)
    return _affinity_from(levin_weights(y, form=form, window=window, eps=eps), m)


# -- cost --------------------------------------------------------------------------------
def _apply(nw: NeighbourWeights, u: np.ndarray) -> np.ndarray:
    """``(W u)(r) = sum_s w_rs u(s)`` with shifts; u is (H, W) or (H, W, C)."""
    w, offsets, _ = nw
    h, wd = w.shape[:2]
    out = np.zeros(u.shape)
    for k, (dy, dx) in enumerate(offsets):
        (ry, sy), (rx, sx) = _span(int(dy), h), _span(int(dx), wd)
        wk = w[ry, rx, k]
        out[ry, rx] += (wk[..., None] if u.ndim == 3 else wk) * u[sy, sx]
    return out


def _apply_transpose(nw: NeighbourWeights, e: np.ndarray) -> np.ndarray:
    """``(W^T e)(s) = sum_r w_rs e(r)``."""
    w, offsets, _ = nw
    h, wd = w.shape[:2]
    out = np.zeros(e.shape)
    for k, (dy, dx) in enumerate(offsets):
        (ry, sy), (rx, sx) = _span(int(dy), h), _span(int(dx), wd)
        wk = w[ry, rx, k]
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
    y = _luminance(luminance)
    uu = v.finite_array("u", u, ndim=(2, 3)).astype(np.float64, copy=False)
    if uu.shape[:2] != y.shape:
        raise ValueError(f"u shape {uu.shape} does not match the luminance shape {y.shape}")
    nw = levin_weights(y, form=form, window=window, eps=eps)
    e = uu - _apply(nw, uu)
    grad = 2.0 * (e - _apply_transpose(nw, e))
    return float(np.sum(e * e)), grad


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
    return np.asarray(arr, dtype=np.float64)


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
    value. The scribbled unknowns are eliminated, the free block is factorized once
    (``scipy.sparse.linalg.splu``) and both channels are solved with it.
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
        threshold = v.positive("threshold", threshold, allow_zero=True)
        g3 = g if g.ndim == 3 else g[..., None]
        m = np.abs(s - g3).sum(axis=-1) > threshold
    else:
        m = _mask(mask, hw)
    n_scribbled = int(m.sum())
    if n_scribbled == 0:
        raise ValueError(
            "mask has no scribbled pixels: mark at least one pixel with a colour"
            + (f" (none differs from gray by more than threshold={threshold:g})" if mask is None else "")
        )
    chroma = np.zeros((*hw, 2))
    chroma[m] = s[m] @ matrix[1:].T
    if n_scribbled < m.size:
        from scipy.sparse.linalg import splu

        nw = levin_weights(y, form=form, window=window, eps=eps)
        a = _affinity_from(nw, None)
        flat = m.ravel()
        free = np.flatnonzero(~flat)
        fixed = np.flatnonzero(flat)
        a_free = a[free]
        rhs = -(a_free[:, fixed] @ chroma.reshape(-1, 2)[fixed])
        lu = splu(a_free[:, free].tocsc(), permc_spec="COLAMD")
        chroma.reshape(-1, 2)[free] = lu.solve(rhs)
    full = np.concatenate([y[..., None], chroma], axis=-1)
    rgb = full @ np.linalg.inv(matrix).T
    if clip:
        np.clip(rgb, 0.0, 1.0, out=rgb)
    return rgb
