"""Exact, streaming, mergeable per-channel statistics of image datasets.

Contents
--------
RunningStats    mergeable accumulator: count, mean, sums of squared deviations (split into
                within-image and between-image parts), min/max, per channel
DatasetStats    the result of :func:`dataset_stats` (``.mean``, ``.std``, ``.to_dict()``)
dataset_stats   statistics of a directory, glob, file list or iterable of arrays/batches,
                sequential, on local processes (``jobs``) or on a Dask cluster

Conventions
-----------
* Statistics are per channel, pooled over every pixel of every image (each pixel counts
  once, so large images weigh more than small ones), with ``ddof=0``.
* ``scale`` multiplies the stored values; it is applied to the exact accumulated moments.
  Without a ``scale`` (``None``, the default), float (and bool) arrays are taken as they
  are (scale 1) and 8-bit images get 1/255 (so they land in [0, 1]); the result states
  the scale used and why (``scale_source``). Nothing else is guessed from a dtype: other
  integer images (16-bit files, int32 arrays ...) and a mix of float arrays and integer
  images are refused without an explicit ``scale``.
* Values whose squared deviations overflow float64 (magnitudes near 1e154 and above,
  after ``scale``) are refused, never reported as inf or nan. Complex arrays are refused.
* Files are decoded with :func:`stimgen.io.read_image`: grayscale stays one channel, palette
  images are expanded to RGB, **the alpha channel of RGBA/LA images is dropped**.
* Arrays: ``(H, W)`` is one grayscale image; 3-D is one image with channels on
  ``channel_axis`` (or, with ``channel_axis=None``, a batch of grayscale images); 4-D is a
  batch with images on axis 0, e.g. ``(B, H, W, C)`` or ``(B, C, H, W)`` with
  ``channel_axis=1``. Torch tensors are accepted without importing torch.
* Exactness: integer images (8/16 bit) are summed exactly: 8-bit image files by the
  decoder's own per-channel histogram (:func:`stimgen.io.read_band_counts`: no array copy
  of the pixels; the sums of values and squares follow exactly from the counts), other
  integer images by integer column sums of the values and of their squares (a few numpy
  passes per image); both are converted to moments once per partition of files,
  floats with a two-pass algorithm in float64; accumulators combine with Chan et al.'s
  formula, so any split of the data (batches, processes, Dask workers) gives the same
  numbers to about 1e-15 relative.
"""

from __future__ import annotations

import glob as _glob
import math
import os
import uuid
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import _validate
from .io import IMAGE_SUFFIXES, BandCounts, read_band_counts, read_image

__all__ = ["DatasetStats", "RunningStats", "dataset_stats"]

_DEFAULT_SCALE = 1 / 255
_INT64_SUMS = 1 << 62  # bound on one image's sum of squares for int64 sums
_NARROW_ROWS = 257  # 8-bit images up to this tall: uint16 column sums are exact
#: the values counted by BandCounts and their squares, as columns
_POWERS_8BIT = np.arange(256, dtype=np.int64)[:, None] ** np.arange(1, 3)
_UINT8 = np.dtype(np.uint8)
_ON_ERROR = ("raise", "skip")
_SCHEDULERS = ("local", "dask")


class RunningStats:
    """Mergeable per-channel accumulator of image statistics.

    Holds, per channel: the pixel count, the float64 mean, the sum of squared deviations
    from the mean split into its within-image part (sum over images of each image's own
    sum of squared deviations) and its between-image part (sum over images of
    ``n_i (mean_i - mean)**2``), min and max; plus the number of images and the sums of
    per-image means and stds (for the "mean of per-image stds" recipe).

    Parameters
    ----------
    scale : float (output units per stored unit)
        Multiplies every value passed to :meth:`update` (default 1).

    Examples
    --------
    >>> import numpy as np
    >>> a, b = RunningStats(), RunningStats()
    >>> a.update(np.zeros((4, 4, 3))); b.update(np.ones((2, 2, 3)))
    >>> a.merge(b).mean.tolist()
    [0.2, 0.2, 0.2]
    """

    def __init__(self, *, scale: float = 1.0) -> None:
        self.scale = _validate.positive("scale", scale)
        self.n_channels: int | None = None
        self.n_images = 0
        self.count = 0
        self.mean = np.zeros(0)
        self.within_m2 = np.zeros(0)
        self.between_m2 = np.zeros(0)
        self.min = np.zeros(0)
        self.max = np.zeros(0)
        self.sum_image_mean = np.zeros(0)
        self.sum_image_std = np.zeros(0)
        self.dtypes: set[str] = set()

    # -- derived quantities -----------------------------------------------------------
    @property
    def m2(self) -> np.ndarray:
        """Sum of squared deviations from the pooled mean, per channel."""
        return self.within_m2 + self.between_m2

    @property
    def var(self) -> np.ndarray:
        """Pooled variance per channel (ddof=0)."""
        return self.m2 / self.count if self.count else np.full(self.mean.shape, np.nan)

    @property
    def std(self) -> np.ndarray:
        """Pooled standard deviation per channel (ddof=0)."""
        return np.sqrt(self.var)

    @property
    def within_var(self) -> np.ndarray:
        """Pixel-weighted mean of the per-image variances, per channel."""
        return self.within_m2 / self.count if self.count else np.full(self.mean.shape, np.nan)

    @property
    def between_var(self) -> np.ndarray:
        """Pixel-weighted variance of the per-image means; ``var = within + between``."""
        return self.between_m2 / self.count if self.count else np.full(self.mean.shape, np.nan)

    @property
    def mean_of_stds(self) -> np.ndarray:
        """Average of the per-image stds (the popular DataLoader recipe; not the std)."""
        return self.sum_image_std / self.n_images if self.n_images else self.mean * np.nan

    @property
    def mean_of_means(self) -> np.ndarray:
        """Average of the per-image means (equals ``mean`` only for equal-size images)."""
        return self.sum_image_mean / self.n_images if self.n_images else self.mean * np.nan

    # -- accumulation -----------------------------------------------------------------
    def update(self, batch: Any, *, channel_axis: int | None = -1) -> RunningStats:
        """Add one image or a batch of images.

        Parameters
        ----------
        batch : array_like (stored units)
            ``(H, W)``; ``(H, W, C)`` (channels on ``channel_axis``); ``(B, H, W, C)`` or
            ``(B, C, H, W)`` (``channel_axis=1``); with ``channel_axis=None``, 3-D is a
            batch of grayscale images. numpy arrays or torch tensors.
        channel_axis : int or None
            Axis of the channels (default -1).

        Returns
        -------
        RunningStats
            ``self``.
        """
        x = _as_numpy(batch)
        if x.dtype.kind not in "biuf":
            raise ValueError(f"batch must be a real numeric array, got dtype {x.dtype}")
        v, n_channels = _canonical(x, channel_axis)
        if v.size == 0:
            return self
        if x.dtype.kind in "biu" and x.dtype.itemsize <= 2:  # exact integer sums
            sums = _IntegerSums(x.dtype, n_channels)
            sums.add(v)
            return self.merge(sums.running(self.scale))
        if x.dtype.kind == "f" and not np.isfinite(v).all():
            raise ValueError("batch contains NaN or infinite values")
        with np.errstate(over="ignore", invalid="ignore"):
            n, *moments = _moments(v)
        if not all(np.isfinite(m).all() for m in moments):
            raise ValueError(_overflow_message(v))
        # channel-first batches come back per channel plane: regroup to (B, C)
        means, m2s, mins, maxs = (m.reshape(-1, n_channels) for m in moments)
        self._add_images(n, means, m2s, mins, maxs, str(x.dtype))
        return self

    def _add_images(self, n, means, m2s, mins, maxs, dtype: str) -> None:
        s = self.scale
        if s != 1.0:
            with np.errstate(over="ignore", under="ignore", invalid="ignore"):
                means, m2s, mins, maxs = means * s, m2s * (s * s), mins * s, maxs * s
        b = means.shape[0]
        if b == 1:
            mean, within, between = means[0], m2s[0], np.zeros(means.shape[1])
            lo, hi, sum_mean, sum_std = mins[0], maxs[0], means[0], np.sqrt(m2s[0] / n)
        else:
            mean = means.mean(axis=0)
            within = m2s.sum(axis=0)
            between = n * ((means - mean) ** 2).sum(axis=0)
            lo, hi = mins.min(axis=0), maxs.max(axis=0)
            sum_mean, sum_std = means.sum(axis=0), np.sqrt(m2s / n).sum(axis=0)
        self.dtypes.add(dtype)
        self._combine(n * b, b, mean, within, between, lo, hi, sum_mean, sum_std)

    def _add_integer_images(self, n, S1, S2, mins, maxs, dtype: str) -> None:
        """Add images from exact integer sums: ``n`` (B,) pixels per image, ``S1``/``S2``
        (B, C) int64 sums of values and of squares, ``mins``/``maxs`` (C,)."""
        nn = n[:, None]
        means, m2, _ = _integer_moments(nn, S1, S2)
        count = int(n.sum())
        total = S1.sum(axis=0)
        mean = np.array([int(t) / count for t in total])  # correctly rounded
        nf = nn.astype(np.float64)
        within = m2.sum(axis=0)
        between = (nf * (means - mean) ** 2).sum(axis=0)
        sum_mean, sum_std = means.sum(axis=0), np.sqrt(m2 / nf).sum(axis=0)
        s = self.scale
        if s != 1.0:
            with np.errstate(over="ignore", under="ignore", invalid="ignore"):
                mean, within, between = mean * s, within * (s * s), between * (s * s)
                mins, maxs, sum_mean, sum_std = mins * s, maxs * s, sum_mean * s, sum_std * s
        self.dtypes.add(dtype)
        self._combine(count, S1.shape[0], mean, within, between, mins, maxs, sum_mean, sum_std)

    def merge(self, other: RunningStats) -> RunningStats:
        """Add the data of ``other`` into ``self`` (Chan et al.'s pairwise formula).

        Returns ``self``. The result does not depend on how the data was split.
        """
        if not isinstance(other, RunningStats):
            raise ValueError(f"other must be a RunningStats, got {type(other).__name__}")
        self.dtypes |= other.dtypes
        if other.count == 0:
            return self
        if other.scale != self.scale:
            raise ValueError(f"cannot merge stats with scale {other.scale} into scale {self.scale}")
        self._combine(other.count, other.n_images, other.mean, other.within_m2, other.between_m2,
                      other.min, other.max, other.sum_image_mean, other.sum_image_std)
        return self

    def _combine(self, nb, images, mean, within, between, lo, hi, sum_mean, sum_std) -> None:
        if not all(np.isfinite(a).all() for a in (mean, within, between, lo, hi, sum_std)):
            raise ValueError(_overflow_message(np.concatenate([np.ravel(lo), np.ravel(hi)]),
                                               self.scale))
        if self.count == 0:
            self.n_channels = int(mean.shape[0])
            self.count, self.n_images = nb, images
            self.mean, self.within_m2, self.between_m2 = mean.copy(), within.copy(), between.copy()
            self.min, self.max = lo.copy(), hi.copy()
            self.sum_image_mean, self.sum_image_std = sum_mean.copy(), sum_std.copy()
            return
        if mean.shape[0] != self.n_channels:
            raise ValueError(
                f"cannot merge images with {mean.shape[0]} channels into statistics of "
                f"{self.n_channels} channels"
            )
        na = self.count
        total = na + nb
        with np.errstate(over="ignore", invalid="ignore"):
            delta = mean - self.mean
            new_mean = self.mean + delta * (nb / total)
            new_between = self.between_m2 + between + delta * delta * (na * nb / total)
            new_within = self.within_m2 + within
        if not all(np.isfinite(a).all() for a in (new_mean, new_between, new_within)):
            lo_hi = np.concatenate([self.min, self.max, np.ravel(lo), np.ravel(hi)])
            raise ValueError(_overflow_message(lo_hi, 1.0))
        self.mean, self.between_m2, self.within_m2 = new_mean, new_between, new_within
        self.count = total
        self.n_images += images
        self.min = np.minimum(self.min, lo)
        self.max = np.maximum(self.max, hi)
        self.sum_image_mean = self.sum_image_mean + sum_mean
        self.sum_image_std = self.sum_image_std + sum_std

    def rescaled(self, scale: float) -> RunningStats:
        """A copy whose values are multiplied by ``scale`` (a new ``RunningStats``).

        The moments are scaled exactly as :meth:`update` would have scaled the values
        (up to one rounding). Raises ``ValueError`` if the scaled statistics overflow.
        """
        s = _validate.positive("scale", scale)
        out = RunningStats(scale=self.scale * s)
        out.dtypes = set(self.dtypes)
        if self.count == 0:
            return out
        with np.errstate(over="ignore", under="ignore", invalid="ignore"):
            scaled = (self.mean * s, self.within_m2 * (s * s), self.between_m2 * (s * s),
                      self.min * s, self.max * s, self.sum_image_mean * s, self.sum_image_std * s)
        if not all(np.isfinite(a).all() for a in scaled):
            top = float(np.max(np.abs(np.concatenate([self.min, self.max]))))
            raise ValueError(
                f"scale={s:g} makes the statistics overflow float64 (stored values up to "
                f"{top:.3g}, spread {float(np.sqrt(self.var.max())):.3g}): the scaled std must "
                "stay below about 1e154"
            )
        if ((scaled[1] + scaled[2] < np.finfo(np.float64).tiny) & (self.m2 > 0)).any():
            raise ValueError(
                f"scale={s:g} is too small: the scaled variance underflows float64 (it would "
                "read 0); the scaled std must stay above about 1e-154"
            )
        out.n_channels, out.count, out.n_images = self.n_channels, self.count, self.n_images
        (out.mean, out.within_m2, out.between_m2, out.min, out.max, out.sum_image_mean,
         out.sum_image_std) = scaled
        return out

    def __repr__(self) -> str:
        return (
            f"RunningStats(n_images={self.n_images}, n_pixels={self.count}, "
            f"mean={np.round(self.mean, 6).tolist()}, std={np.round(self.std, 6).tolist()})"
        )


def _overflow_message(values: np.ndarray, scale: float = 1.0) -> str:
    """Why float64 moments of ``values`` (times ``scale``) cannot be represented."""
    with np.errstate(over="ignore", invalid="ignore"):
        top = float(np.max(np.abs(values))) if np.size(values) else float("nan")
    where = f" (after scale={scale:g})" if scale != 1.0 else ""
    if not math.isfinite(top):
        return (f"values times scale={scale:g} overflow float64; pass a smaller scale (the "
                "scaled statistics need magnitudes below about 1e154)")
    return (
        f"values up to {top:.3g}{where} are too large: their squared deviations overflow "
        "float64; statistics need magnitudes below about 1e154 (rescale the data, or pass "
        "a smaller scale)"
    )


def _as_numpy(batch: Any) -> np.ndarray:
    """numpy view of an array or a torch tensor (without importing torch)."""
    if isinstance(batch, np.ndarray):
        return batch
    if hasattr(batch, "detach") and hasattr(batch, "cpu") and hasattr(batch, "numpy"):
        return batch.detach().cpu().numpy()
    return np.asarray(batch)


def _canonical(x: np.ndarray, channel_axis: int | None) -> tuple[np.ndarray, int]:
    """A C-contiguous ``(B, H, W, C)`` array, or ``(B*C, H, W, 1)`` for channel-first data
    (whose channel planes are already contiguous); returns (array, C)."""
    nd = x.ndim
    if nd not in (2, 3, 4):
        raise ValueError(f"batch must have 2, 3 or 4 dimensions, got shape {x.shape}")
    if nd == 2:
        return np.ascontiguousarray(x)[None, :, :, None], 1
    if channel_axis is None:
        if nd == 4:
            raise ValueError("a 4-D batch needs a channel_axis, got None")
        return np.ascontiguousarray(x)[..., None], 1
    if isinstance(channel_axis, bool) or not isinstance(channel_axis, (int, np.integer)) or not (
        -nd <= channel_axis < nd
    ):
        raise ValueError(
            f"channel_axis must be an integer axis of the {nd}-D batch, got {channel_axis!r}"
        )
    ca = int(channel_axis) % nd
    if nd == 3:
        x = x[None]
        ca += 1
    elif ca == 0:
        raise ValueError("channel_axis must not be axis 0 (the image axis) of a 4-D batch")
    if ca == 1:  # (B, C, H, W)
        x = np.ascontiguousarray(x)
        b, c, h, w = x.shape
        return x.reshape(b * c, h, w, 1), c
    x = np.ascontiguousarray(np.moveaxis(x, ca, -1))
    return x, x.shape[-1]


def _moments(v: np.ndarray):
    """Per-image, per-channel moments of float (or wide integer) data ``v`` with shape
    (B, H, W, C) or (B*C, H, W, 1), by the two-pass algorithm in float64.

    Returns ``(n, mean, m2, min, max)`` with arrays of shape (B, C).
    """
    g, h, w, c_in = v.shape
    rows = v.reshape(g, h, w * c_in)
    n = h * w
    lo = rows.min(axis=1).reshape(g, w, c_in).min(axis=1).astype(np.float64)
    hi = rows.max(axis=1).reshape(g, w, c_in).max(axis=1).astype(np.float64)
    f = rows.astype(np.float64)
    pilot = f.sum(axis=1).reshape(g, w, c_in).sum(axis=1) / n
    f -= np.tile(pilot, w)[:, None, :]
    S1 = f.sum(axis=1).reshape(g, w, c_in).sum(axis=1)
    S2 = np.einsum("grl,grl->gl", f, f).reshape(g, w, c_in).sum(axis=1)
    mean = pilot + S1 / n
    m2 = np.maximum(S2 - S1 * (S1 / n), 0.0)
    return n, mean, m2, lo, hi


# -- exact integer sums (8/16-bit data) ------------------------------------------------------
def _integer_plan(dtype: np.dtype) -> tuple[np.dtype, int, np.dtype, int, int, int]:
    """How to sum 8/16-bit data exactly in native integer arithmetic: (accumulator of the
    column sums, rows per call, accumulator of the column sums of squares, rows per call,
    dtype min, dtype max). Both column sums are exact for that many rows."""
    if dtype.kind == "b":
        lo, hi = 0, 1
    else:
        info = np.iinfo(dtype)
        lo, hi = int(info.min), int(info.max)
    big, sq = max(-lo, hi), max(lo * lo, hi * hi)
    signed = lo < 0
    if dtype.itemsize == 1 and not signed:  # the common case: uint8 (and bool)
        return np.dtype(np.uint16), 65535 // big, np.dtype(np.uint32), (2**32 - 1) // sq, lo, hi
    a1: np.dtype[Any] = np.dtype(np.int32 if signed else np.uint32)
    a2: np.dtype[Any] = np.dtype(np.int64)
    n1, n2 = (2**31 - 1 if signed else 2**32 - 1) // big, (2**63 - 1) // sq
    if dtype.itemsize == 1:  # int8: squares fit 32 bits for many rows
        a2, n2 = np.dtype(np.int32), (2**31 - 1) // sq
    return a1, n1, a2, n2, lo, hi


def _integer_column_sums(rows: np.ndarray, plan: tuple) -> tuple[np.ndarray, np.ndarray]:
    """Exact column sums of the values and of their squares of integer data ``rows`` with
    shape (G, H, L), along the contiguous rows: two (G, L) integer arrays."""
    a1, n1, a2, n2 = plan[:4]
    if rows.dtype.kind == "b":
        rows = rows.view(np.uint8)
    g, h, length = rows.shape
    if h <= n1 and h <= n2:  # one call each (always, for images of < 257 rows of uint8)
        return np.add.reduce(rows, axis=1, dtype=a1), np.einsum("grl,grl->gl", rows, rows,
                                                                dtype=a2)
    s1 = np.zeros((g, length), dtype=np.int64)  # tall blocks: partial sums added in int64
    s2 = np.zeros((g, length), dtype=np.int64)
    for r0 in range(0, h, n1):
        s1 += np.add.reduce(rows[:, r0 : r0 + n1], axis=1, dtype=a1)
    for r0 in range(0, h, n2):
        blk = rows[:, r0 : r0 + n2]
        s2 += np.einsum("grl,grl->gl", blk, blk, dtype=a2)
    return s1, s2


def _integer_moments(n: Any, S1: np.ndarray, S2: np.ndarray):
    """Means, sums of squared deviations (float64) and exact constancy flags from exact
    integer sums ``S1`` of values and ``S2`` of squares over ``n`` elements (int64 arrays
    that broadcast together)."""
    n = np.asarray(n, dtype=np.int64)
    if S2.max(initial=0) >= 1 << 60:  # beyond int64 headroom: Python integers
        n, S1, S2 = n.astype(object), S1.astype(object), S2.astype(object)
    q = (2 * S1 + n) // (2 * n)  # the integer nearest to the mean
    r = S1 - q * n  # |r| <= n / 2
    T = S2 - q * (S1 + r)  # sum of (x - q)**2, exact; 0 only for constant data
    nf = np.asarray(n, dtype=np.float64)
    # M2 = T - r**2 / n, and M2 >= T / 2 for integer data: no cancellation
    m2 = np.maximum(np.asarray(T, dtype=np.float64) - np.asarray(r, dtype=np.float64) ** 2 / nf,
                    0.0)
    mean = np.asarray(q, dtype=np.float64) + np.asarray(r, dtype=np.float64) / nf
    return mean, m2, np.asarray(T == 0, dtype=bool)


class _IntegerSums:
    """Exact per-image, per-channel sums of values and squares of 8/16-bit images.

    ``add`` costs a few numpy passes per image (column sums of the values and of their
    squares along contiguous rows, in native integer arithmetic: for 8-bit images in a
    reused uint16 buffer, otherwise straight from the image; written into preallocated
    buffers: no float copy of the image and no array kept per image, which would fragment
    the heap and slow the decoder down); the conversion to means and sums of squared
    deviations happens once, vectorized, in ``running``. Min and max are tracked until
    they reach the dtype's limits (0 and 255 for uint8, typical of photographs); then they
    cannot change any more and are no longer computed.
    """

    def __init__(self, dtype: np.dtype, n_channels: int, seen: Any = None) -> None:
        self.dtype = np.dtype(dtype)
        self.n_channels = n_channels
        self.plan = _integer_plan(self.dtype)
        self.lo_limit, self.hi_limit = self.plan[4:]
        # column sums of all images; for 8-bit data summed in uint16 (fastest) up to 257
        # rows and stored as uint32, which also takes taller images (in uint32)
        wide = np.dtype(np.uint32) if self.plan[0] == np.uint16 else self.plan[0]
        self.rows1_wide = int(np.iinfo(wide).max) // max(-self.lo_limit, self.hi_limit, 1)
        self.col1 = np.empty(1 << 16, dtype=wide)
        self.col2 = np.empty(1 << 16, dtype=self.plan[2])
        self.used = 0
        self.widths: list[int] = []  # W of each image (plane), in order
        self.pixels: list[int] = []  # H * W of each image (plane)
        self.tall: list[tuple[int, np.ndarray, np.ndarray]] = []  # (first image, S1, S2)
        # images added by add_counts: their exact sums and their index among all images
        self.counted1 = np.empty((0, n_channels), np.int64)
        self.counted2 = np.empty((0, n_channels), np.int64)
        self.counted_at = np.empty(0, np.int64)
        self.n_counted = 0
        self.lo = np.full(n_channels, self.hi_limit, dtype=np.int64)
        self.hi = np.full(n_channels, self.lo_limit, dtype=np.int64)
        if seen is not None:  # (lo, hi) already found in the same dataset: a head start
            np.minimum(self.lo, seen[0], out=self.lo)
            np.maximum(self.hi, seen[1], out=self.hi)
        self.saturated = bool((self.lo == self.lo_limit).all() and (self.hi == self.hi_limit).all())
        # 8-bit data: values and squares summed in uint16 (see ``add``), in this buffer
        self.narrow = self.dtype.itemsize == 1 and self.lo_limit >= 0
        self.buf16 = np.empty(0, dtype=np.uint16)

    def add(self, v: np.ndarray) -> None:
        """Add images ``v`` of shape (G, H, W, c): channel-last (c == n_channels) or the
        channel planes of channel-first images (c == 1, G a multiple of n_channels)."""
        v = np.ascontiguousarray(v)
        g, h, w, c = v.shape
        if v.size == 0:
            return
        rows = v.reshape(g, h, w * c)
        if v.dtype.kind == "b":
            rows = rows.view(np.uint8)
        if not self.saturated:
            self._minmax(rows, w, c)
        start, end = self.used, self.used + g * w * c
        if end > self.col1.size:
            size = max(end, 2 * self.col1.size)
            self.col1 = np.concatenate([self.col1[:start], np.empty(size - start, self.col1.dtype)])
            self.col2 = np.concatenate([self.col2[:start], np.empty(size - start, self.col2.dtype)])
        out1 = self.col1[start:end].reshape(g, w * c)
        out2 = self.col2[start:end].reshape(g, w * c)
        a1, n1, a2, n2, lo, hi = self.plan
        huge = h * w * max(lo * lo, hi * hi) >= _INT64_SUMS  # int64 could overflow
        if self.narrow and h <= n2 and not huge:
            # uint8/bool: bands of up to 257 rows are cast to uint16, where their column
            # sums (<= 257 * 255) and the squares (<= 255**2) are exact; the squares are
            # summed into uint32 (<= 66051 * 255**2 over the image). About 25 % less time
            # than a uint8 -> uint32 einsum, which casts in small buffers.
            size = g * min(h, _NARROW_ROWS) * w * c
            if self.buf16.size < size:
                self.buf16 = np.empty(size, dtype=np.uint16)
            for r0 in range(0, h, _NARROW_ROWS):
                band = rows[:, r0 : r0 + _NARROW_ROWS]
                x = self.buf16[: band.size].reshape(band.shape)
                np.copyto(x, band)
                s1 = np.add.reduce(x, axis=1, dtype=np.uint16)
                np.multiply(x, x, out=x)
                if r0 == 0:
                    out1[...] = s1
                    np.add.reduce(x, axis=1, dtype=np.uint32, out=out2)
                else:
                    out1 += s1
                    out2 += np.add.reduce(x, axis=1, dtype=np.uint32)
        elif h <= self.rows1_wide and h <= n2 and not huge:
            np.add.reduce(rows, axis=1, dtype=a1 if h <= n1 else out1.dtype, out=out1)
            np.einsum("grl,grl->gl", rows, rows, dtype=a2, out=out2)
        else:  # very tall or huge images: exact sums kept aside (Python integers if huge)
            s1, s2 = _integer_column_sums(rows, self.plan)
            s1, s2 = s1.reshape(g, w, c), s2.reshape(g, w, c)
            if huge:
                s1, s2 = s1.astype(object), s2.astype(object)
            out1[:] = 0
            out2[:] = 0
            self.tall.append((len(self.widths), s1.sum(axis=1), s2.sum(axis=1)))
        self.used = end
        self.widths.extend([w] * g)
        self.pixels.extend([h * w] * g)

    def add_counts(self, counts: np.ndarray) -> None:
        """Add one 8-bit image given by its value counts ``counts`` (C, 256) per channel
        (:class:`stimgen.io.BandCounts`): the exact sums of values and squares are
        ``counts @ k`` and ``counts @ k**2`` (int64), its range the first and last
        non-zero counts. The image is kept in the order of :meth:`add`'s images."""
        s1, s2 = (counts @ _POWERS_8BIT).T  # exact in int64
        if not self.saturated:
            seen = counts > 0
            lo = np.argmax(seen, axis=1)
            hi = 255 - np.argmax(seen[:, ::-1], axis=1)
            np.minimum(self.lo, lo, out=self.lo)
            np.maximum(self.hi, hi, out=self.hi)
            self.saturated = bool((self.lo == self.lo_limit).all() and (self.hi == self.hi_limit).all())
        c = counts.shape[0]
        start, end = self.used, self.used + c
        if end > self.col1.size:
            size = max(end, 2 * self.col1.size)
            self.col1 = np.concatenate([self.col1[:start], np.empty(size - start, self.col1.dtype)])
            self.col2 = np.concatenate([self.col2[:start], np.empty(size - start, self.col2.dtype)])
        # one "column" of zeros per channel; the image's sums go to preallocated int64 rows
        # (small arrays kept per image would fragment the heap and slow the decoder down)
        self.col1[start:end] = 0
        self.col2[start:end] = 0
        m = self.n_counted
        if m == self.counted1.shape[0]:
            grow = max(64, 2 * m)
            self.counted1 = np.concatenate([self.counted1, np.empty((grow, c), np.int64)])
            self.counted2 = np.concatenate([self.counted2, np.empty((grow, c), np.int64)])
            self.counted_at = np.concatenate([self.counted_at, np.empty(grow, np.int64)])
        self.counted1[m] = s1
        self.counted2[m] = s2
        self.counted_at[m] = len(self.widths)
        self.n_counted = m + 1
        self.used = end
        self.widths.append(1)
        self.pixels.append(int(counts[0].sum()))

    def _minmax(self, rows: np.ndarray, w: int, c: int) -> None:
        k = self.n_channels
        lo = rows.min(axis=1).reshape(-1, w, c).min(axis=1).reshape(-1, k).min(axis=0)
        hi = rows.max(axis=1).reshape(-1, w, c).max(axis=1).reshape(-1, k).max(axis=0)
        np.minimum(self.lo, lo, out=self.lo)
        np.maximum(self.hi, hi, out=self.hi)
        self.saturated = bool((self.lo == self.lo_limit).all() and (self.hi == self.hi_limit).all())

    def running(self, scale: float) -> RunningStats:
        """The accumulated images as a :class:`RunningStats` (exact integer moments)."""
        rs = RunningStats(scale=scale)
        if not self.pixels:
            return rs
        k = self.n_channels
        c = self.used // sum(self.widths)
        starts = np.cumsum([0, *self.widths[:-1]])
        S1 = np.add.reduceat(self.col1[: self.used].reshape(-1, c), starts, axis=0,
                             dtype=np.int64)
        S2 = np.add.reduceat(self.col2[: self.used].reshape(-1, c), starts, axis=0,
                             dtype=np.int64)
        if any(t[1].dtype == object for t in self.tall):
            S1, S2 = S1.astype(object), S2.astype(object)
        for first, t1, t2 in self.tall:
            S1[first : first + t1.shape[0]] += t1
            S2[first : first + t2.shape[0]] += t2
        if self.n_counted:  # (their columns hold zeros)
            at = self.counted_at[: self.n_counted]
            S1[at] += self.counted1[: self.n_counted]
            S2[at] += self.counted2[: self.n_counted]
        S1, S2 = S1.reshape(-1, k), S2.reshape(-1, k)
        n = np.asarray(self.pixels[:: len(self.pixels) // S1.shape[0]], dtype=np.int64)
        rs._add_integer_images(n, S1, S2, self.lo.astype(np.float64),
                               self.hi.astype(np.float64), self.dtype.name)
        return rs


# -- results -------------------------------------------------------------------------------
@dataclass(frozen=True)
class DatasetStats:
    """Per-channel statistics of an image dataset (units: stored values times ``scale``).

    Attributes
    ----------
    mean, std : ndarray (C,)
        Pooled per-channel mean and standard deviation (ddof=0) over all pixels.
    n_images, n_pixels : int
        Images used and pixels per channel (sum of H*W).
    within_var, between_var : ndarray (C,)
        Split of ``std**2``: pixel-weighted mean of per-image variances, and variance of
        per-image means. ``std**2 == within_var + between_var``.
    mean_of_stds : ndarray (C,)
        Average of the per-image stds, what the popular DataLoader recipe reports. It is
        at most ``sqrt(within_var)`` and misses ``between_var`` entirely.
    mean_of_means : ndarray (C,)
        Average of per-image means (equal to ``mean`` only for equal-size images).
    min, max : ndarray (C,)
    skipped : int
        Files (and unreadable folders) skipped with ``on_error="skip"``, and folders
        reached twice through symbolic links (their files are counted once);
        ``skipped_files`` lists (path, reason) for each.
    scale : float
        The scale the values were multiplied by; ``scale_source`` says where it came
        from: ``"given"``, ``"default for 8-bit images"`` (1/255) or ``"float arrays
        taken as they are"`` (1).
    dtypes : tuple of str
        Stored dtypes seen.
    """

    mean: np.ndarray
    std: np.ndarray
    n_images: int
    n_pixels: int
    within_var: np.ndarray
    between_var: np.ndarray
    mean_of_stds: np.ndarray
    mean_of_means: np.ndarray
    min: np.ndarray
    max: np.ndarray
    skipped: int = 0
    skipped_files: tuple[tuple[str, str], ...] = ()
    scale: float = 1.0
    dtypes: tuple[str, ...] = field(default=())
    scale_source: str = "given"

    @property
    def var(self) -> np.ndarray:
        """Pooled variance per channel (``std**2``)."""
        return self.std**2

    @property
    def n_channels(self) -> int:
        return int(self.mean.shape[0])

    @classmethod
    def from_running(cls, rs: RunningStats, skipped: Sequence[tuple[str, str]] = (),
                     scale_source: str = "given") -> DatasetStats:
        return cls(
            mean=rs.mean.copy(),
            std=rs.std,
            n_images=rs.n_images,
            n_pixels=rs.count,
            within_var=rs.within_var,
            between_var=rs.between_var,
            mean_of_stds=rs.mean_of_stds,
            mean_of_means=rs.mean_of_means,
            min=rs.min.copy(),
            max=rs.max.copy(),
            skipped=len(skipped),
            skipped_files=tuple((str(p), str(r)) for p, r in skipped),
            scale=rs.scale,
            dtypes=tuple(sorted(rs.dtypes)),
            scale_source=scale_source,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (lists of floats)."""
        return {
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
            "n_images": int(self.n_images),
            "n_pixels": int(self.n_pixels),
            "n_channels": self.n_channels,
            "skipped": int(self.skipped),
            "skipped_files": [list(x) for x in self.skipped_files],
            "within_var": self.within_var.tolist(),
            "between_var": self.between_var.tolist(),
            "mean_of_stds": self.mean_of_stds.tolist(),
            "mean_of_means": self.mean_of_means.tolist(),
            "min": self.min.tolist(),
            "max": self.max.tolist(),
            "scale": self.scale,
            "scale_source": self.scale_source,
            "dtypes": list(self.dtypes),
            "ddof": 0,
        }


# -- the driver ------------------------------------------------------------------------------
def dataset_stats(
    source: Any,
    *,
    jobs: int | None = None,
    scheduler: str = "local",
    address: str | None = None,
    scale: float | None = None,
    channel_axis: int | None = -1,
    on_error: str = "raise",
    progress: bool = False,
    files_per_task: int | None = None,
) -> DatasetStats:
    """Exact per-channel mean and std of an image dataset, streaming, in constant memory.

    Parameters
    ----------
    source : str, path, list of paths, or iterable of arrays
        A directory (searched recursively for image and ``.npy`` files), a glob pattern
        (``"data/**/*.png"``), a file, a list of these, or an iterable of numpy arrays /
        torch tensors (single images or batches; see the module conventions).
    jobs : int, optional
        Number of local worker processes for file sources (default: 1, in this process;
        at most ``max(32, 4 x CPUs)``).
    scheduler : {"local", "dask"}
        "dask" partitions the file list over a Dask cluster (``pip install stimgen[dask]``).
    address : str, optional
        Dask scheduler address ``HOST:PORT``; default: the current Dask client.
    scale : float or None (output units per stored unit)
        Multiplies all values. None (default): 1/255 if every image is 8-bit (uint8),
        1 if every array is float (or bool): floats are never rescaled by a guess. Any
        other dtype (16-bit images, int32 arrays ...), and float arrays mixed with
        integer images, need an explicit ``scale`` (``ValueError`` otherwise, naming a
        file of each kind). The result states it in ``scale`` and ``scale_source``.
    channel_axis : int or None
        Channel axis of arrays from an iterable source (files are always channel-last).
    on_error : {"raise", "skip"}
        A corrupt or unreadable file, or a folder that cannot be listed, raises
        ``ValueError`` naming it (default), or is skipped, counted in ``skipped`` and
        listed in ``skipped_files`` (with a warning).
    progress : bool
        Draw a progress bar on stderr (only on a terminal).
    files_per_task : int, optional
        Files per parallel task (default: about 8 tasks per worker, at most 256 files).

    Returns
    -------
    DatasetStats

    Examples
    --------
    >>> import numpy as np
    >>> s = dataset_stats([np.full((8, 8, 3), 255, np.uint8), np.zeros((4, 4, 3), np.uint8)])
    >>> s.mean.tolist(), s.n_images, s.n_pixels
    ([0.8, 0.8, 0.8], 2, 80)
    """
    scheduler = _validate.choice("scheduler", scheduler, _SCHEDULERS)
    on_error = _validate.choice("on_error", on_error, _ON_ERROR)
    if scale is not None:
        scale = _validate.positive("scale", scale)
    njobs = 1 if jobs is None else _validate.positive_int("jobs", jobs)
    max_jobs = max(32, 4 * (os.cpu_count() or 1))
    if njobs > max_jobs:
        raise ValueError(f"jobs must be an integer between 1 and {max_jobs} "
                         f"(4 x the {os.cpu_count()} CPUs, at least 32), got {jobs!r}")
    listing = _file_listing(source, on_error)
    if listing is None:
        if scheduler == "dask" or njobs > 1:
            raise ValueError(
                "jobs and scheduler='dask' apply to file sources (a directory, glob or list "
                "of paths); arrays from an iterable are processed in this process"
            )
        rs = RunningStats()
        examples: dict[str, str] = {}
        for i, item in enumerate(source):
            before = set(rs.dtypes)
            try:
                rs.update(item, channel_axis=channel_axis)
            except ValueError as exc:
                raise ValueError(f"item {i} of the source: {exc}") from None
            for d in rs.dtypes - before:
                examples.setdefault(d, f"item {i} of the source")
        if rs.count == 0:
            raise ValueError("source yielded no pixels")
        used, source_of_scale = _resolve_scale(scale, rs.dtypes, examples)
        return DatasetStats.from_running(rs.rescaled(used), (), source_of_scale)
    files, skipped = listing
    if not files:
        where = f"; skipped: {skipped[0][1]}" if skipped else ""
        raise ValueError(f"no image files found in {source!r} (suffixes: "
                         f"{', '.join(IMAGE_SUFFIXES)}, .npy){where}")
    channels = _first_channels(files, on_error)
    if scheduler == "dask":
        rs, skipped_files, examples = _run_dask(
            files, address=address, on_error=on_error, progress=progress,
            files_per_task=files_per_task, channels=channels)
    elif njobs > 1:
        rs, skipped_files, examples = _run_processes(
            files, jobs=njobs, on_error=on_error, progress=progress,
            files_per_task=files_per_task, channels=channels)
    else:
        from ._progress import Progress

        rs, skipped_files, examples = RunningStats(), [], {}
        with Progress(len(files), "stats", enabled=None if progress else False) as bar:
            token = uuid.uuid4().hex
            for part in _partitions(files, 64):
                r, s, ex = _stats_of_files(part, 1.0, on_error, token, channels)
                rs.merge(r)
                skipped_files.extend(s)
                for d, path in ex.items():
                    examples.setdefault(d, path)
                bar.update(len(part))
    skipped = skipped + skipped_files
    if skipped:
        first = skipped[0]
        warnings.warn(
            f"dataset_stats skipped {len(skipped)} file(s) (unreadable files or folders, "
            "files not of the dataset's channel count, or folders reached twice through "
            f"links); first: {first[1]}",
            RuntimeWarning,
            stacklevel=2,
        )
    if rs.count == 0:
        raise ValueError(f"no readable images among {len(files)} file(s)")
    used, source_of_scale = _resolve_scale(scale, rs.dtypes, examples)
    return DatasetStats.from_running(rs.rescaled(used), skipped, source_of_scale)


def _resolve_scale(scale: float | None, dtypes: set[str], examples: dict[str, str]):
    """The scale to apply and where it came from (see :func:`dataset_stats`)."""
    if scale is not None:
        return scale, "given"
    as_is = sorted(d for d in dtypes if np.dtype(d).kind in "fb")
    ints = sorted(d for d in dtypes if np.dtype(d).kind in "iu")

    def named(ds: list[str]) -> str:
        return ", ".join(f"{d}, e.g. {examples.get(d, '?')}" for d in ds)

    if as_is and ints:
        raise ValueError(
            f"the data mixes float arrays ({named(as_is)}) and integer images ({named(ints)}): "
            "floats are taken as they are, 8-bit images default to scale 1/255, so no scale "
            "fits both (e.g. a stimulus set's .npy and .png files); select one kind of file, "
            "or give scale=S to multiply all of them by S"
        )
    if ints and ints != ["uint8"]:
        wide = [d for d in ints if d != "uint8"]
        raise ValueError(
            f"integer images other than 8-bit ({named(wide)}) need an explicit scale "
            "(e.g. scale=1/65535 for full-range 16-bit images, scale=1/4095 for 12-bit data); "
            "the default 1/255 applies only to 8-bit (uint8) images"
        )
    if ints:
        return _DEFAULT_SCALE, "default for 8-bit images"
    return 1.0, "float arrays taken as they are"


def _file_list(source: Any) -> list[str] | None:
    """Sorted file paths for path-like sources (raising on any unreadable entry), or None
    for iterables of arrays."""
    listing = _file_listing(source, "raise")
    return None if listing is None else listing[0]


def _file_listing(source: Any, on_error: str = "raise"):
    """``(sorted file paths, [(folder, reason), ...] skipped)`` for path-like sources, or
    None for iterables of arrays.

    Folders are searched recursively, following symbolic links; a folder that cannot be
    listed raises ``ValueError`` naming it (``on_error="raise"``) or is recorded as
    skipped, and a folder reached a second time (a link loop, or two links to one
    folder) is recorded and not searched again, so no file is counted twice.
    """
    if isinstance(source, (str, os.PathLike)):
        items: list[Any] = [source]
    elif isinstance(source, (list, tuple)) and source and all(
        isinstance(s, (str, os.PathLike)) for s in source
    ):
        items = list(source)
    else:
        if isinstance(source, (list, tuple)) and not source:
            raise ValueError("source is an empty list")
        if isinstance(source, np.ndarray):
            raise ValueError(
                "source is a single array; pass a list of arrays or batches (e.g. [array])"
            )
        if not isinstance(source, Iterable):
            raise ValueError(f"source must be a path, a glob, a list of paths or an iterable, "
                             f"got {type(source).__name__}")
        return None
    suffixes = {*IMAGE_SUFFIXES, ".npy"}
    files: list[str] = []
    skipped: list[tuple[str, str]] = []
    seen: set[tuple[int, int]] = set()

    def skip(path: str, reason: str, hint: str) -> None:
        if on_error == "raise":
            raise ValueError(f"{reason} ({hint} with on_error='skip')")
        skipped.append((path, reason))

    def unreadable(exc: OSError, folder: str) -> None:
        why = exc.strerror or type(exc).__name__
        skip(folder, f"{folder}: folder cannot be listed ({why}); its files were not counted",
             "skip such folders")

    def not_regular(path: str) -> None:
        skip(path, f"{path}: not a regular file (a FIFO, device, socket or broken link cannot "
             "be read as an image)", "skip such files")

    def walk(top: str) -> list[str]:
        """Image files under ``top`` (through links; each folder once). One scandir per
        folder and no stat call per file (the entry types come with the listing)."""
        found: list[str] = []
        stack = [top]
        while stack:
            folder = stack.pop()
            try:
                st = os.stat(folder)
                if (st.st_dev, st.st_ino) in seen:
                    why = (f"{folder}: folder reached a second time through a symbolic "
                           "link; its files were counted once")
                    skipped.append((folder, why))
                    continue
                seen.add((st.st_dev, st.st_ino))
                with os.scandir(folder) as listing:
                    entries = list(listing)
            except OSError as exc:
                unreadable(exc, folder)
                continue
            for entry in entries:
                try:
                    is_dir = entry.is_dir()
                except OSError:
                    is_dir = False
                if is_dir:
                    stack.append(entry.path)
                elif os.path.splitext(entry.name)[1].lower() in suffixes:
                    try:
                        regular = entry.is_file()
                    except OSError:
                        regular = False
                    if regular:
                        found.append(entry.path)
                    else:
                        not_regular(entry.path)
        return sorted(found)

    for item in items:
        s = os.fspath(item)
        if os.path.lexists(s):
            paths = [s]
        elif _glob.has_magic(s):
            paths = sorted(_glob.glob(s, recursive=True))
        else:
            raise FileNotFoundError(f"no such file or directory: {s}")
        for path in paths:  # a folder (given or matched) is searched recursively
            if os.path.isdir(path):
                files.extend(walk(path))
            elif os.path.isfile(path):
                files.append(path)
            else:
                not_regular(path)
    if len(items) > 1:  # the same file named twice (or in two sources) counts once
        unique: dict[str, str] = {}
        for f in files:
            key = os.path.normpath(os.path.abspath(f))
            if key in unique:
                skipped.append((f, (f"{f}: listed more than once (also as {unique[key]}); "
                                   "counted once")))
            else:
                unique[key] = f
        files = list(unique.values())
    return files, skipped


def _partitions(files: Sequence[str], size: int) -> list[list[str]]:
    return [list(files[i : i + size]) for i in range(0, len(files), size)]


def _task_size(n_files: int, workers: int, files_per_task: int | None) -> int:
    if files_per_task is not None:
        return _validate.positive_int("files_per_task", files_per_task)
    return max(1, min(256, math.ceil(n_files / (8 * workers))))


# Per process: the min/max per (dtype, channels) found so far by each dataset_stats call
# (keyed by a token of the call), so that later partitions in the same process start from
# them. Values in it are values of that call's dataset, so the merged min/max stay exact.
_SEEN_RANGES: dict[str, dict[tuple[str, int], tuple[np.ndarray, np.ndarray]]] = {}


def _layout(path: str, img: np.ndarray) -> tuple[np.ndarray, int | None, int]:
    """``(array, channel_axis, channels)`` of a decoded file for :meth:`RunningStats.update`.

    Decoded images are ``(H, W)`` or ``(H, W, C)``. ``.npy`` files follow stimgen's array
    convention: ``(H, W)`` one image; 3-D is a stack ``(N, H, W)`` of grayscale images
    (as ``stimgen noise`` writes them) unless its last axis holds 1, 3 or 4 channels of
    an image larger than 8 x 8 px, ``(H, W, C)``; 4-D is a batch ``(N, H, W, C)``.
    """
    nd = img.ndim
    if nd == 2:
        return img, None, 1
    if nd == 3:
        colour = img.shape[-1] in (1, 3, 4) and min(img.shape[:2]) > 8
        if colour or not str(path).lower().endswith(".npy"):
            return img, -1, int(img.shape[2])
        return img, None, 1  # a stack of grayscale images
    if nd == 4 and str(path).lower().endswith(".npy"):
        return img, -1, int(img.shape[3])
    raise ValueError(f"{path}: shape {img.shape} is not an image (H, W), (H, W, C), a stack "
                     "(N, H, W) or a batch (N, H, W, C)")


def _first_channels(files: Sequence[str], on_error: str) -> int | None:
    """Channel count of the first readable file: the one every other file must match.

    Deciding it once, before the files are split into tasks, makes the outcome (which files
    are skipped, or which error is raised) independent of the partitioning.
    """
    for p in files:
        try:
            return _layout(p, read_image(p))[2]
        except (ValueError, OSError) as exc:
            if on_error == "raise":
                raise ValueError(str(exc) if str(p) in str(exc) else f"{p}: {exc}") from exc
            continue
    return None


def _stats_of_files(paths: Sequence[str], scale: float, on_error: str,
                    token: str | None = None, channels: int | None = None):
    """Accumulate a list of files; returns (RunningStats, [(path, reason), ...] skipped,
    {dtype: first path of that dtype}).

    8/16-bit images (nearly all files) go to one :class:`_IntegerSums` per dtype, which
    keeps a few exact column sums per image and turns them into statistics once, at the
    end; other arrays (float ``.npy`` files, 32-bit images) go through ``update``.
    ``token`` identifies the dataset_stats call, for sharing min/max between partitions.
    """
    if token is None:
        seen: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = {}
    else:
        seen = _SEEN_RANGES.setdefault(token, {})
        while len(_SEEN_RANGES) > 4:  # keep the ranges of the last few calls only
            del _SEEN_RANGES[next(iter(_SEEN_RANGES))]
    rs = RunningStats(scale=scale)
    sums: dict[str, _IntegerSums] = {}
    skipped: list[tuple[str, str]] = []
    examples: dict[str, str] = {}
    for p in paths:
        try:
            decoded = read_band_counts(p)
            if isinstance(decoded, BandCounts):  # an 8-bit image, counted by the decoder
                c_img = decoded.counts.shape[0]
                if math.prod(decoded.shape) == 0:
                    raise ValueError(f"{p}: empty image (shape {decoded.shape}, no pixels)")
                if channels not in (None, c_img):
                    raise ValueError(
                        f"{p} has {c_img} channel(s) but the dataset's first image has {channels}: "
                        "convert it, or skip such files with on_error='skip'"
                    )
                acc = sums.get(_UINT8.str)
                if acc is None:
                    acc = sums[_UINT8.str] = _IntegerSums(_UINT8, c_img, seen.get((_UINT8.str, c_img)))
                acc.add_counts(decoded.counts)
                channels = c_img
                examples.setdefault("uint8", str(p))
                continue
            img, axis, c_img = _layout(p, decoded)
            if img.size == 0:
                raise ValueError(f"{p}: empty image (shape {img.shape}, no pixels)")
            if channels not in (None, c_img):
                raise ValueError(
                    f"{p} has {c_img} channel(s) but the dataset's first image has {channels}: "
                    "convert it, or skip such files with on_error='skip'"
                )
            dt = img.dtype
            if dt.kind not in "biuf":
                raise ValueError(f"{p}: dtype {dt} is not a real numeric type (complex, "
                                 "object and text arrays are refused)")
            one_image = img.ndim == 2 or (img.ndim == 3 and axis == -1)
            if one_image and dt.kind in "biu" and dt.itemsize <= 2 and img.size:
                c = img.shape[2] if img.ndim == 3 else 1
                acc = sums.get(dt.str)
                if acc is None:
                    acc = sums[dt.str] = _IntegerSums(dt, c, seen.get((dt.str, c)))
                acc.add(img.reshape(1, img.shape[0], img.shape[1], c))
            else:  # floats, wide integers, stacks and batches of .npy files
                rs.update(img, channel_axis=axis)
            channels = c_img
            examples.setdefault(dt.name, str(p))
            del img  # free it before the next decode, which can then reuse its (cached) memory
        except (ValueError, OSError) as exc:
            if on_error == "raise":
                msg = str(exc) if str(p) in str(exc) else f"{p}: {exc}"
                raise ValueError(msg) from exc
            skipped.append((str(p), str(exc) if str(p) in str(exc) else f"{p}: {exc}"))
    for acc in sums.values():
        seen[(acc.dtype.str, acc.n_channels)] = (acc.lo.copy(), acc.hi.copy())
        rs.merge(acc.running(scale))
    return rs, skipped, examples


def _merge_ordered(results: list):
    rs = RunningStats(scale=results[0][0].scale) if results else RunningStats()
    skipped: list[tuple[str, str]] = []
    examples: dict[str, str] = {}
    for r, s, ex in results:
        try:
            rs.merge(r)
        except ValueError as exc:
            if "channels" not in str(exc):
                raise
            raise ValueError(f"images with different channel counts in the dataset: {exc}") from None
        skipped.extend(s)
        for d, path in ex.items():
            examples.setdefault(d, path)
    return rs, skipped, examples


def _run_processes(files, *, jobs, on_error, progress, files_per_task, channels=None,
                   scale=1.0):
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from ._procs import die_with_parent
    from ._progress import Progress

    parts = _partitions(files, _task_size(len(files), jobs, files_per_task))
    results: list[Any] = [None] * len(parts)
    # workers exit when this process dies, however it dies (SIGKILL too)
    with ProcessPoolExecutor(max_workers=jobs, initializer=die_with_parent,
                             initargs=(os.getpid(),)) as pool, Progress(
        len(files), "stats", enabled=None if progress else False
    ) as bar:
        token = uuid.uuid4().hex
        futures = {pool.submit(_stats_of_files, part, scale, on_error, token, channels): i
                   for i, part in enumerate(parts)}
        for fut in as_completed(futures):
            i = futures[fut]
            results[i] = fut.result()
            bar.update(len(parts[i]))
    return _merge_ordered(results)


def _run_dask(files, *, address, on_error, progress, files_per_task, channels=None, scale=1.0):
    try:
        from dask.distributed import Client, as_completed, get_client
    except ImportError:
        raise ValueError(
            "scheduler='dask' needs dask.distributed (pip install 'stimgen[dask]')"
        ) from None
    from ._progress import Progress

    own = address is not None
    if own:
        client = Client(address)
    else:
        try:
            client = get_client()
        except ValueError:
            raise ValueError(
                "scheduler='dask' needs a scheduler address (address='HOST:PORT') or a "
                "running dask.distributed Client"
            ) from None
    try:
        workers = max(1, sum(client.nthreads().values()))
        parts = _partitions(files, _task_size(len(files), workers, files_per_task))
        futures = client.map(_stats_of_files, parts, scale=scale, on_error=on_error,
                             token=uuid.uuid4().hex, channels=channels, pure=False)
        index = {f.key: i for i, f in enumerate(futures)}
        results: list[Any] = [None] * len(parts)
        with Progress(len(files), "stats", enabled=None if progress else False) as bar:
            for fut in as_completed(futures):
                i = index[fut.key]
                results[i] = fut.result()
                bar.update(len(parts[i]))
    finally:
        if own:
            client.close()
    return _merge_ordered(results)
