"""Noise stimuli: white, band-limited through any hub filter, and 1/f^alpha.

Contents
--------
white_noise       gaussian, uniform, binary or exactly flat-spectrum white noise
filtered_noise    white noise through any :mod:`stimgen.filters` filter (FFT domain)
power_law_noise   1/f^alpha noise (pink alpha=1, brown alpha=2), optionally band-limited
make_filter       family name + band in cpd (+ orientation) -> filter (the one place)
bandpass_noise    the one-call API in the user's units, returning images and their record
noise_from_record regenerate images from a record

Conventions
-----------
* Output is float (float32 by default) in the signed-contrast convention (0 = mean
  luminance); :func:`bandpass_noise` and :func:`power_law_noise` set the RMS contrast about
  the mean exactly and never min-max normalize. Values beyond [-1, 1] are *not* clipped
  here; the record states their fraction (clip explicitly with
  :func:`stimgen.contrast.clip_contrast`).
* White noise has variance 1 for every kind; filtered white noise of variance ``v`` has
  expected power spectrum ``v |H(f)|^2``.
* Randomness: every function takes ``rng`` (None, int, SeedSequence or Generator). The
  output does not depend on how a batch is chunked or on the threads: the same ``rng``
  gives the same images. It does depend on ``dtype``: float32 and float64 draw different
  noise from the same seed (the record stores the dtype, so a record still regenerates
  its images).
* Synthesis: Gaussian noise through a filter is drawn directly in the frequency domain by
  default (``synthesis="spectral"``: complex normal coefficients of the rfft half-plane,
  times the transfer, one inverse FFT; image ``i`` from the ``i``-th seed sequence spawned
  from the seed, each fixed row band of its half-plane from its own child); with
  ``synthesis="spatial"`` (the method of records made before) white noise is drawn in
  space, in order from the one generator, and filtered. Both have the same distribution.
  Coefficients where the transfer is below :data:`NEGLIGIBLE_TRANSFER` of its peak are
  not drawn.
* Batches are generated in cache-sized chunks of about ``chunk_bytes`` (2 MB): each chunk
  is drawn, filtered and, in :func:`bandpass_noise` and :func:`power_law_noise`, set to its
  RMS contrast and checked for out-of-range values while it is still in cache, and written
  into the output once. Peak memory stays bounded: a few chunks on top of the output.
* Threads: stacks use ``workers`` threads (default: the available cores); single images
  with spectral synthesis too (from 2^17 px, e.g. 363 x 363), with spatial synthesis
  ``workers`` threads of ``scipy.fft`` (default 1). The images are the same bit for bit for every
  number of workers and every chunk size. The threads are lasting ones
  (:mod:`stimgen._threads`), the calling thread among them.
* Memory: one image by spectral synthesis is written over its own half spectrum, row block
  by row block (no second image-sized array); a stack reuses one half spectrum per thread.
"""

from __future__ import annotations

import functools
import math
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from . import _threads
from . import _validate as v
from .contrast import set_rms_contrast
from .filters import (
    CRITICAL_BAND_FAMILIES,
    Filter,
    Orientation,
    PowerLaw,
    _apply,
    _mirrored_rows,
    check_fits_image,
    critical_band_filter,
    design_filter,
)
from .geometry import ViewingGeometry, angular_size_deg, as_ppd, resolve_shape

__all__ = [
    "KINDS",
    "NOISE_FAMILIES",
    "SYNTHESES",
    "bandpass_noise",
    "filtered_noise",
    "make_filter",
    "noise_from_record",
    "power_law_noise",
    "white_noise",
]

#: Kinds of white noise.
KINDS = ("gaussian", "uniform", "binary", "flat")
#: Families accepted by :func:`bandpass_noise` and :func:`make_filter`.
NOISE_FAMILIES = ("dog", "log_gaussian", "butterworth", "ideal", "power_law", "white", *CRITICAL_BAND_FAMILIES)
VALUE_CONVENTION = "signed contrast: 0 = mean luminance, display range [-1, 1]"
#: How Gaussian noise through a filter is made: its spectrum drawn directly, or white noise
#: drawn in space and filtered (the method of records and sets made before "synthesis").
SYNTHESES = ("spectral", "spatial")
#: Relative amplitude below which the transfer is negligible: spectral synthesis draws no
#: coefficients in the row bands and columns where ``|H|`` stays below this fraction of its
#: peak (float32: 2^-24, its resolution; float64: 2^-53).
NEGLIGIBLE_TRANSFER = {"float32": 2.0**-24, "float64": 2.0**-53}

_DEFAULT_CHUNK_BYTES = 2 * 2**20  # a chunk and its half spectrum stay in a core's cache
_BAND_COEFFS = 2**15  # complex coefficients of one row band of the half-plane (spectral synthesis)
_THREADED_IMAGE_PX = 2**17  # one image of this many pixels or more uses all cores by default


def _stack_workers(workers: Any) -> int:
    """Threads for a stack (:func:`stimgen._validate.thread_count`)."""
    return v.thread_count(workers)


def _shape2(shape_px: Any) -> tuple[int, int]:
    vals = [shape_px, shape_px] if np.ndim(shape_px) == 0 else list(shape_px)
    if len(vals) != 2:
        raise ValueError(f"shape_px must be (height, width), got {shape_px!r}")
    h, w = (v.positive_int("shape_px", s) for s in vals)
    if h < 2 or w < 2:
        raise ValueError(f"shape_px must be at least 2 x 2 pixels, got {shape_px!r}")
    return h, w


def _float_dtype(dtype: Any) -> np.dtype:
    dt = np.dtype(dtype)
    if dt not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dt}")
    return dt


def _draw_white(gen: np.random.Generator, shape: tuple[int, ...], kind: str, dt: np.dtype) -> np.ndarray:
    """Variance-1 white noise of ``kind`` with ``shape`` (last two axes spatial)."""
    if kind == "gaussian":
        return gen.standard_normal(shape, dtype=dt)
    if kind == "uniform":
        a = gen.random(shape, dtype=dt)
        a -= dt.type(0.5)
        a *= dt.type(2.0 * math.sqrt(3.0))
        return a
    if kind == "binary":
        return np.where(gen.random(shape, dtype=np.float32) < 0.5, dt.type(-1.0), dt.type(1.0))
    # flat: unit-modulus spectrum with random phases (the phases of gaussian noise)
    from scipy import fft

    h, w = shape[-2:]
    spec = fft.rfft2(gen.standard_normal(shape, dtype=dt), axes=(-2, -1))
    mag = np.abs(spec)
    mag[mag == 0] = 1.0
    spec /= mag
    spec[..., 0, 0] = 0.0
    n = h * w
    spec *= dt.type(n / math.sqrt(n - 1))  # variance exactly 1 (Parseval)
    return fft.irfft2(spec, s=(h, w), axes=(-2, -1)).astype(dt, copy=False)


def white_noise(
    shape_px: Any,
    *,
    n: int | None = None,
    kind: str = "gaussian",
    rng: Any = None,
    dtype: Any = np.float32,
) -> np.ndarray:
    """White noise of variance 1.

    Parameters
    ----------
    shape_px : (int, int)
        Image height and width in pixels.
    n : int, optional
        Number of images; None returns one ``(H, W)`` image, an int ``(n, H, W)``.
    kind : {"gaussian", "uniform", "binary", "flat"}
        Pixel distribution: N(0, 1); uniform on [-sqrt 3, sqrt 3); +-1 with equal
        probability; or "flat", whose DFT has exactly equal amplitude ``H W / sqrt(H W - 1)``
        at every non-zero frequency (random phases, zero mean, variance 1).
    rng : None, int, SeedSequence or Generator
        Source of randomness.
    dtype : {float32, float64}
        Output dtype.

    Returns
    -------
    ndarray, shape (H, W) or (n, H, W)
    """
    h, w = _shape2(shape_px)
    v.choice("kind", kind, KINDS)
    dt = _float_dtype(dtype)
    gen = v.rng(rng)
    if n is None:
        return _draw_white(gen, (h, w), kind, dt)
    return _draw_white(gen, (v.positive_int("n", n), h, w), kind, dt)


def filtered_noise(
    shape_px: Any,
    filt: Filter,
    *,
    n: int | None = None,
    kind: str = "gaussian",
    rng: Any = None,
    dtype: Any = np.float32,
    workers: int | None = None,
    chunk_bytes: int = _DEFAULT_CHUNK_BYTES,
    synthesis: str = "spectral",
) -> np.ndarray:
    """White noise of ``kind`` filtered by ``filt`` in the FFT domain (not contrast-scaled).

    Parameters
    ----------
    shape_px : (int, int)
        Image height and width in pixels.
    filt : Filter
        Any filter of :mod:`stimgen.filters` (transfer in cycles/pixel).
    n : int, optional
        Number of images (None: one ``(H, W)`` image).
    kind : {"gaussian", "uniform", "binary", "flat"}
        White-noise kind (see :func:`white_noise`).
    rng : None, int, SeedSequence or Generator
        Source of randomness; the result does not depend on ``chunk_bytes``.
    dtype : {float32, float64}
        Output dtype (and computation precision).
    workers : int, optional
        Threads. For a stack (``n`` given) the default is the available cores. For one
        image: with spectral synthesis the available cores from 2^17 px (1 below),
        with spatial synthesis 1 (threads of ``scipy.fft``). Negative values count from
        all cores (-1: all). The images are the same bit for bit for every value.
    chunk_bytes : int
        Approximate size of one generation chunk in bytes (default 2 MB, cache-sized); the
        images do not depend on it.
    synthesis : {"spectral", "spatial"}
        How Gaussian noise is made: its half-spectrum drawn directly (complex normal
        coefficients times the transfer, one inverse FFT; default), or white noise drawn in
        space and filtered (the method of records made before spectral synthesis: the
        same distribution, other numbers).
        Uniform, binary and flat noise are always drawn in space (flat is spectral by
        construction) and filtered.

    Returns
    -------
    ndarray, shape (H, W) or (n, H, W)
        Expected power spectrum ``|H(f)|^2`` (white-noise variance 1).
    """
    if not isinstance(filt, Filter):
        raise ValueError(f"filt must be a stimgen filter, got {type(filt).__name__}")
    h, w = _shape2(shape_px)
    v.choice("kind", kind, KINDS)
    dt = _float_dtype(dtype)
    v.choice("synthesis", synthesis, SYNTHESES)
    gen = v.rng(rng)
    images, _ = _filtered(h, w, filt, n, kind, gen, dt, workers, chunk_bytes, None, synthesis)
    return images


def _filtered(
    h: int, w: int, filt: Filter, n: int | None, kind: str, gen: np.random.Generator, dt: np.dtype,
    workers: Any, chunk_bytes: int, rms: tuple[float, float] | None, synthesis: str = "spatial",
    whole_rows: bool = False,
) -> tuple[np.ndarray, int]:
    """Filtered noise (validated arguments), with its RMS contrast set when ``rms`` is given.

    Gaussian noise with ``synthesis="spectral"`` is drawn by :func:`_spectral` (with
    ``whole_rows``, every column of the row bands drawn); the rest by the spatial path below.

    Returns the images and, with ``rms``, the count of values beyond +-1 (else 0). Chunks of
    about ``chunk_bytes`` are drawn in order from ``gen`` (so the images do not depend on the
    chunking or the threads), filtered, contrast-set and counted while in cache, and written
    once into the output. Stacks use :func:`_stack_workers` threads.
    """
    if synthesis == "spectral" and kind == "gaussian":
        return _spectral(h, w, filt, n, gen, dt, workers, chunk_bytes, rms, whole_rows)
    if n is None:
        img = _apply(_draw_white(gen, (h, w), kind, dt), filt, workers, None)
        if rms is None:
            return img, 0
        set_rms_contrast(img, rms[0], mean=rms[1], out=img)
        return img, _count_outside(img)
    count = v.positive_int("n", n)
    per_chunk = max(1, int(v.positive_int("chunk_bytes", chunk_bytes) // (h * w * dt.itemsize)))
    threads = _stack_workers(workers)
    out = np.empty((count, h, w), dtype=dt)

    def finish(white: np.ndarray, start: int, stop: int) -> int:
        res = _apply(white, filt, 1, None)
        if rms is None:
            out[start:stop] = res
            return 0
        set_rms_contrast(res, rms[0], mean=rms[1], out=out[start:stop])  # the one write
        return _count_outside(out[start:stop])

    chunks = [(a, min(count, a + per_chunk)) for a in range(0, count, per_chunk)]
    if threads == 1 or len(chunks) == 1:
        outside = 0
        for a, b in chunks:
            outside += finish(_draw_white(gen, (b - a, h, w), kind, dt), a, b)
        return out, outside
    pending: deque[Future[int]] = deque()
    outside = 0
    with ThreadPoolExecutor(max_workers=threads - 1) as pool:  # this thread draws: `threads` in all
        try:
            for a, b in chunks:  # drawn here, in order; filtered by the pool meanwhile
                while len(pending) > threads:  # bound memory: a few chunks in flight
                    outside += pending.popleft().result()
                pending.append(pool.submit(finish, _draw_white(gen, (b - a, h, w), kind, dt), a, b))
            while pending:
                outside += pending.popleft().result()
        finally:
            for f in pending:
                f.cancel()
    return out, outside


def _spectral(
    h: int, w: int, filt: Filter, n: int | None, gen: np.random.Generator, dt: np.dtype,
    workers: Any, chunk_bytes: int, rms: tuple[float, float] | None, whole_rows: bool = False,
) -> tuple[np.ndarray, int]:
    """Gaussian noise through ``filt`` by direct spectral synthesis (validated arguments).

    Image ``i`` draws from the ``i``-th seed sequence spawned from ``gen``'s seed, each
    fixed row band of its half-spectrum from its own child: the images do not depend on
    the threads or the chunking. One image uses ``workers`` threads (default: the
    available cores from 2^17 px) for its bands and its FFTs; a stack spreads its
    images, in chunks of about ``chunk_bytes``, over ``workers`` threads (default: the
    available cores), each written once into the output (a stack of fewer images than
    threads gives every image all the threads, in turn).
    """
    lay = _spectral_layout(filt, h, w, dt.name, whole_rows)
    grid = filt.grid((h, w), real=True, dtype=dt)  # fetched once: the threads share it
    if n is None:
        threads = _stack_workers(workers) if workers is not None or h * w >= _THREADED_IMAGE_PX else 1
        seed = _image_seeds(gen, 1)[0]
        workers_pool = _threads.pool(threads) if threads > 1 else None
        return _spectral_image(seed, grid, lay, h, w, dt, rms, None, threads, workers_pool)
    count = v.positive_int("n", n)
    per_chunk = max(1, int(v.positive_int("chunk_bytes", chunk_bytes) // (h * w * dt.itemsize)))
    threads = _stack_workers(workers)
    seeds = _image_seeds(gen, count)
    out = np.empty((count, h, w), dtype=dt)

    ctype = np.complex64 if dt == np.float32 else np.complex128
    scratch: dict[int, np.ndarray] = {}  # one spectrum per thread, reused image after image

    def chunk(a: int) -> int:
        spec = scratch.get(threading.get_ident())
        if spec is None:
            spec = scratch[threading.get_ident()] = np.zeros((h, w // 2 + 1), dtype=ctype)
        return sum(_spectral_image(seeds[i], grid, lay, h, w, dt, rms, out[i], 1, None, spec)[1]
                   for i in range(a, min(count, a + per_chunk)))

    starts = list(range(0, count, per_chunk))
    if threads == 1:
        return out, sum(chunk(a) for a in starts)
    if count < threads:  # fewer images than threads: each image uses them all, in turn
        return out, sum(_spectral_image(seeds[i], grid, lay, h, w, dt, rms, out[i], threads, _threads.pool(threads))[1]
                        for i in range(count))
    return out, sum(_threads.share(_threads.pool(threads), threads, chunk, starts))


def _count_outside(images: np.ndarray, limit: float = 1.0) -> int:
    """Number of values beyond +-limit (one min/max pass when there are none)."""
    if float(images.max()) <= limit and float(images.min()) >= -limit:
        return 0
    flat = images.reshape(-1, images.shape[-1])
    step = max(1, (4 * 2**20) // max(flat.shape[1], 1))  # no full-size temporary
    return sum(int(np.count_nonzero(np.abs(flat[i : i + step]) > limit)) for i in range(0, len(flat), step))


# -----------------------------------------------------------------------------------------
# Direct spectral synthesis of Gaussian noise
# -----------------------------------------------------------------------------------------
class _SpectralLayout:
    """What spectral synthesis of ``filt`` at ``(h, w)`` in ``dt`` draws, and where.

    The rfft half-plane ``(h, w // 2 + 1)`` is cut into fixed row bands of about
    :data:`_BAND_COEFFS` coefficients (their rows depend on the width only); each band has
    its own generator. ``cols`` is the number of leading columns drawn and ``bands`` the
    ``(index, first row, stop row)`` of the bands drawn: the transfer is below
    :data:`NEGLIGIBLE_TRANSFER` of its peak everywhere else, which stays zero. Everything
    here depends only on (shape, filter, dtype). With ``whole_rows`` every column of the
    bands drawn is drawn: coefficient ``(r, c)`` of a band is then its generator's draw
    ``r * (w // 2 + 1) + c`` whatever the filter, so one seed is one white spectrum through
    every filter (frozen noise); otherwise a filter that needs fewer columns draws other
    numbers at the same frequency.
    """

    def __init__(self, filt: Filter, h: int, w: int, dt: np.dtype, whole_rows: bool = False) -> None:
        grid = filt.grid((h, w), real=True, dtype=dt)  # cached by the filter hub, not kept here
        cols = w // 2 + 1
        rows = max(1, min(h, -(-_BAND_COEFFS // cols)))
        starts = range(0, h, rows)
        self.n_bands = len(starts)
        # largest |H| of every row and column: one pass of cache-sized row blocks over the
        # distinct rows (no grid-sized temporary)
        distinct = h // 2 + 1 if _mirrored_rows(filt) else h
        row_mag = np.empty(h, dtype=grid.dtype)
        col_max = np.full(cols, -np.inf, dtype=grid.dtype)
        col_min = np.full(cols, np.inf, dtype=grid.dtype)
        step = max(1, 2**16 // cols)
        for r0 in range(0, distinct, step):
            block = grid[r0 : min(distinct, r0 + step)]
            np.maximum(block.max(axis=1), -block.min(axis=1), out=row_mag[r0 : r0 + len(block)])
            np.maximum(col_max, block.max(axis=0), out=col_max)
            np.minimum(col_min, block.min(axis=0), out=col_min)
        row_mag[distinct:] = row_mag[1 : h - distinct + 1][::-1]  # rows H//2+1 .. H-1 mirror (H-1)//2 .. 1
        col_mag = np.maximum(col_max, -col_min)
        limit = float(row_mag.max()) * NEGLIGIBLE_TRANSFER[dt.name]
        row_any, col_any = row_mag > limit, col_mag > limit
        self.cols = cols if whole_rows else (int(np.flatnonzero(col_any)[-1]) + 1 if col_any.any() else 0)
        self.bands = [(i, a, min(h, a + rows)) for i, a in enumerate(starts) if row_any[a : a + rows].any()]
        self.full = self.cols == cols and len(self.bands) == self.n_bands
        # columns whose conjugates lie in the half-plane itself (DC and, for even w, Nyquist)
        self.edges = [0] + ([cols - 1] if w % 2 == 0 and cols > 1 else [])


@functools.lru_cache(maxsize=32)
def _spectral_layout(filt: Filter, h: int, w: int, dtype_name: str, whole_rows: bool = False) -> _SpectralLayout:
    return _SpectralLayout(filt, h, w, np.dtype(dtype_name), whole_rows)


def _frozen_filtered_noise(shape_px: Any, filt: Filter, *, kind: str, rng: Any, dtype: Any, synthesis: str) -> np.ndarray:
    """One image of :func:`filtered_noise` of frozen noise: with spectral synthesis every
    column of the row bands drawn is drawn (:class:`_SpectralLayout` ``whole_rows``), so
    one seed gives one white spectrum through every condition's filter, as the spatial
    method does. Arguments as for :func:`filtered_noise`."""
    h, w = _shape2(shape_px)
    v.choice("kind", kind, KINDS)
    v.choice("synthesis", synthesis, SYNTHESES)
    images, _ = _filtered(h, w, filt, None, kind, v.rng(rng), _float_dtype(dtype), None, _DEFAULT_CHUNK_BYTES,
                          None, synthesis, whole_rows=True)  # fmt: skip
    return images


def _image_seeds(gen: np.random.Generator, count: int) -> list[np.random.SeedSequence]:
    """``count`` seed sequences spawned from the generator's seed (in order).

    A generator without a seed sequence (legacy seeding) gives 128 bits of its stream as
    the root instead.
    """
    try:
        return list(gen.bit_generator.seed_seq.spawn(count))  # type: ignore[attr-defined]
    except (AttributeError, TypeError, NotImplementedError):
        root = np.random.SeedSequence(gen.integers(0, 2**32, size=4, dtype=np.uint64).tolist())
        return list(root.spawn(count))


def _draw_band(spec: np.ndarray, grid: np.ndarray, lay: _SpectralLayout, band: tuple[int, int, int],
               seeds: list[np.random.SeedSequence], real_dt: np.dtype, zero_dc: bool) -> float:
    """Draw one row band of the half-spectrum and multiply it by the transfer, in place.

    Every coefficient gets real and imaginary parts N(0, 1); the columns whose conjugates
    lie in the half-plane (DC and Nyquist) N(0, 2), because the inverse transform keeps
    only their Hermitian part (``(Y[k] + conj Y[-k]) / 2``). Returns ``sum |Y|^2`` over
    the band in float64 (with ``zero_dc``, after setting the DC coefficient to 0).
    """
    from .contrast import _sum_of_squares

    i, a, b = band
    gen = np.random.Generator(np.random.PCG64(seeds[i]))
    cols = lay.cols
    direct = cols == spec.shape[1]  # whole rows: drawn in place
    block = spec[a:b] if direct else np.empty((b - a, cols), dtype=spec.dtype)
    gen.standard_normal(out=block.view(real_dt), dtype=real_dt)
    for j in lay.edges:
        if j < cols:
            block[:, j] *= real_dt.type(math.sqrt(2.0))
    block *= grid[a:b, :cols]
    if zero_dc and a == 0:
        block[0, 0] = 0.0
    total = _sum_of_squares(block.view(real_dt)) if zero_dc else 0.0
    if not direct:
        spec[a:b, :cols] = block
    return total


def _hermitian_power(spec: np.ndarray, lay: _SpectralLayout, band_sum: float) -> float:
    """``sum |Y|^2`` over the full spectrum the inverse transform sees.

    Columns 1 .. W/2-1 of the half-plane stand for two columns each; DC and Nyquist
    columns count once, as their Hermitian part ``(Y[k] + conj Y[-k]) / 2``.
    """
    total = 2.0 * band_sum
    for j in lay.edges:
        col = spec[:, j].astype(np.complex128)
        herm = np.conj(col)  # conj Y[-k]: the column reversed after its first row
        herm[1:] = herm[:0:-1].copy()
        herm += col  # twice the Hermitian part
        total += 0.25 * np.vdot(herm, herm).real - 2.0 * np.vdot(col, col).real
    return float(total)


#: Bytes of the image rows of one block of the inverse row transform (with its half
#: spectrum, it stays in a core's cache while it is scaled and counted).
_ROW_BLOCK_BYTES = 2**17


def _row_ranges(h: int, w: int, cols: int, parts: int) -> list[tuple[int, int, int]] | None:
    """Row ranges ``(first, stop, saved)`` of the in-place inverse row transform.

    The image is written over its own half spectrum, ``W = 2 cols`` reals a row: image row
    ``r`` fills reals ``r w .. (r + 1) w - 1``, which lie in spectrum rows ``<= r`` (``w <
    W``). Rows done in order, each read before it is written, overwrite only rows already
    read. A range that starts at row ``s`` writes from real ``s w`` on, over the last
    ``saved = ceil(s (W - w) / W)`` rows of the range before it: those are copied before
    any range starts, so the ranges may run at the same time and in any order. None when a
    range would write over more than the range before it (tiny images): then the image
    gets its own array.
    """
    bounds = [h * k // parts for k in range(parts + 1)]
    out = []
    for k in range(parts):
        a, b = bounds[k], bounds[k + 1]
        saved = -(-b * (2 * cols - w) // (2 * cols)) if k + 1 < parts else 0
        if saved > b - a:
            return None
        out.append((a, b, saved))
    return out


def _spectral_image(
    seed: np.random.SeedSequence, grid: np.ndarray, lay: _SpectralLayout, h: int, w: int, dt: np.dtype,
    rms: tuple[float, float] | None, out: np.ndarray | None, threads: int,
    pool: ThreadPoolExecutor | None, scratch: np.ndarray | None = None,
) -> tuple[np.ndarray, int]:
    """One image by spectral synthesis, written into ``out`` (or over its own spectrum).

    Its RMS contrast and mean are set from the spectrum (Parseval) before the inverse
    transform. The inverse transform runs in place: the column transform on the columns
    drawn, then the row transform block by block, each block scaled and its values beyond
    +-1 counted while in cache, and written once (with ``out`` None, over the rows of the
    spectrum already read: no image-sized array besides the spectrum). ``threads`` (with
    ``pool``) share the bands, the column transform and the row blocks. ``scratch`` is a
    spectrum array to reuse (stacks with ``out``): the rows of the bands not drawn are
    zeroed again. Returns the image and the count.
    """
    from scipy import fft

    ctype = np.complex64 if dt == np.float32 else np.complex128
    cols = w // 2 + 1
    if scratch is None:
        spec = (np.empty if lay.full else np.zeros)((h, cols), dtype=ctype)
    else:
        spec = scratch
        drawn = [0]
        for _, a, b in lay.bands:  # the column transform filled the rows of the bands not drawn
            if a > drawn[-1]:
                spec[drawn[-1] : a, : lay.cols] = 0
            drawn.append(b)
        if h > drawn[-1]:
            spec[drawn[-1] :, : lay.cols] = 0
    seeds = seed.spawn(lay.n_bands)
    zero_dc = rms is not None
    sums = _threads.share(pool, threads, lambda bd: _draw_band(spec, grid, lay, bd, seeds, dt, zero_dc), lay.bands)
    n_px = h * w
    if rms is None:
        gain = math.sqrt(n_px / 2.0)  # white noise of variance 1 before the transfer
    else:
        power = _hermitian_power(spec, lay, math.fsum(sums))
        if not power > 0.0:
            raise ValueError("the filtered noise is constant (its transfer passes nothing but the mean): "
                             "its RMS contrast cannot be set; widen the band or enlarge the image")
        gain = rms[0] * n_px / math.sqrt(power)
        if rms[1] != 0.0:
            spec[0, 0] = rms[1] * n_px / gain
    # the column transform in place, on the columns drawn only (the others stay zero)
    drawn_cols = spec[:, : lay.cols]
    res = fft.ifft(drawn_cols, axis=0, workers=threads, overwrite_x=True)
    if not np.shares_memory(res, spec):  # pragma: no cover - scipy.fft wrote elsewhere
        drawn_cols[...] = res
    # the row transform, block by block, each scaled and counted while in cache
    parts = 4 * threads if pool is not None else 1  # a few ranges per thread: a slowed thread takes fewer
    ranges = _row_ranges(h, w, cols, parts) if out is None else None
    if ranges is None:  # into out, or a tiny image into its own array
        target = np.empty((h, w), dtype=dt) if out is None else out
        ranges = [(h * k // parts, h * (k + 1) // parts, 0) for k in range(parts)]
    else:
        target = spec.view(dt).reshape(-1)[:n_px].reshape(h, w)
    tails = [spec[b - saved : b].copy() for _, b, saved in ranges]  # read before any range writes
    step = max(1, _ROW_BLOCK_BYTES // (w * dt.itemsize))
    scale = dt.type(gain)

    def rows(rng: tuple[int, int, int], tail: np.ndarray) -> int:
        a, b, saved = rng
        outside = 0
        blocks: list[tuple[int, int, np.ndarray | None]] = [
            (r, min(b - saved, r + step), None) for r in range(a, b - saved, step)]
        if saved:
            blocks.append((b - saved, b, tail))
        for r0, r1, src in blocks:
            img = fft.irfft(spec[r0:r1] if src is None else src, n=w, axis=1)
            np.multiply(img, scale, out=target[r0:r1])  # the one write
            if rms is not None:
                outside += _count_outside(target[r0:r1])
        return outside

    counts = _threads.share(pool, threads, lambda k: rows(ranges[k], tails[k]), list(range(len(ranges))))
    return target, sum(counts)


def make_filter(
    family: str,
    *,
    ppd: float | ViewingGeometry,
    band_cpd: Any = None,
    peak_cpd: float | None = None,
    octaves: float | None = None,
    level: str = "half_amplitude",
    order: int | None = None,
    orientation_deg: float | None = None,
    orientation_bandwidth_deg: float = 30.0,
    alpha: float = 1.0,
    cutoff_cpd: float | None = None,
    rolloff: str = "butterworth",
) -> Filter | None:
    """Turn a noise family and a band in cycles/degree into a filter.

    Parameters
    ----------
    family : {"dog", "log_gaussian", "butterworth", "ideal", "power_law", "white", \
"lowpass", "highpass", "notch"}
        Filter family ("white": no radial filter). The critical-band families are designed
        by :func:`stimgen.filters.critical_band_filter`.
    ppd : float or ViewingGeometry
        Pixels per degree.
    band_cpd, peak_cpd, octaves, level
        The band, as for :func:`stimgen.filters.design_filter`. For "power_law" the band is
        optional (hard limits) and "white" takes none.
    order : int, optional
        Butterworth order (also of "lowpass", "highpass" and the band-pass a "notch"
        complements); default 4, and 8 for "notch".
    orientation_deg, orientation_bandwidth_deg : float, optional
        Orientation window (see :class:`stimgen.filters.Orientation`) multiplied in.
    alpha : float
        Power-spectrum exponent for "power_law".
    cutoff_cpd : float, optional
        "lowpass" and "highpass": the cutoff in cycles/degree at ``level``.
    rolloff : {"butterworth", "gaussian"}
        Shape of "lowpass" and "highpass" (Butterworth of ``order``, or Gaussian).

    Returns
    -------
    Filter or None
        None for white noise without an orientation window.
    """
    fam = v.choice("family", family, NOISE_FAMILIES)
    p = as_ppd(ppd)
    filt: Filter | None
    if cutoff_cpd is not None and fam not in ("lowpass", "highpass"):
        raise ValueError(f"cutoff_cpd belongs to the families 'lowpass' and 'highpass', not {fam!r}")
    if fam in CRITICAL_BAND_FAMILIES:
        filt = critical_band_filter(
            fam, ppd=p, cutoff_cpd=cutoff_cpd, band_cpd=band_cpd, peak_cpd=peak_cpd, octaves=octaves,
            level=level, order=order, rolloff=rolloff,
        )
    elif fam == "white":
        if band_cpd is not None or peak_cpd is not None or octaves is not None:
            raise ValueError("family 'white' takes no band; use a band-pass family")
        filt = None
    elif fam == "power_law" and band_cpd is None and peak_cpd is None and octaves is None:
        filt = PowerLaw(alpha)
    else:
        filt = design_filter(
            fam, ppd=p, band_cpd=band_cpd, peak_cpd=peak_cpd, octaves=octaves, level=level,
            order=4 if order is None else order, alpha=alpha,
        )
    if orientation_deg is not None:
        window = Orientation(orientation_deg, orientation_bandwidth_deg)
        filt = window if filt is None else filt * window
    return filt


@functools.lru_cache(maxsize=256)
def _passband(filt: Filter, level: str) -> Any:
    """``filt.passband(level)``, remembered (filters and passbands are immutable)."""
    return filt.passband(level)


@functools.lru_cache(maxsize=256)
def _passes_nothing(filt: Filter, shape: tuple[int, int]) -> bool:
    """Whether the transfer grid of ``filt`` at ``shape`` is zero everywhere (remembered:
    filters are immutable, and this spares a pass over the grid per call)."""
    return not np.any(filt.grid(shape))


def _seed_record(rng: Any) -> tuple[np.random.Generator, Any]:
    """Generator plus a JSON-ready seed record that regenerates it (None for Generators)."""
    if isinstance(rng, np.random.Generator):
        return rng, None
    if rng is None:
        ss = np.random.SeedSequence()
        return np.random.default_rng(ss), {"entropy": ss.entropy, "spawn_key": []}
    if isinstance(rng, np.random.SeedSequence):
        return v.rng(rng), {"entropy": rng.entropy, "spawn_key": list(rng.spawn_key)}
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool) and rng >= 0:
        return np.random.default_rng(int(rng)), {"entropy": int(rng), "spawn_key": []}
    raise ValueError(f"rng must be None, a non-negative int, a SeedSequence or a Generator, got {rng!r}")


def bandpass_noise(
    size_px: Any = None,
    size_deg: Any = None,
    *,
    ppd: float | ViewingGeometry,
    band_cpd: Any = None,
    peak_cpd: float | None = None,
    octaves: float | None = None,
    family: str = "dog",
    level: str = "half_amplitude",
    order: int | None = None,
    orientation_deg: float | None = None,
    orientation_bandwidth_deg: float = 30.0,
    alpha: float = 1.0,
    cutoff_cpd: float | None = None,
    rolloff: str = "butterworth",
    rms_contrast: float = 0.2,
    mean: float = 0.0,
    kind: str = "gaussian",
    n: int | None = None,
    rng: Any = None,
    dtype: Any = np.float32,
    workers: int | None = None,
    synthesis: str = "spectral",
) -> tuple[np.ndarray, dict[str, Any]]:
    """Band-limited noise in the user's units, with a record that regenerates it.

    Parameters
    ----------
    size_px : int or (int, int), optional
        Image height and width in pixels.
    size_deg : float or (float, float), optional
        Image height and width in degrees (rounded to whole pixels); give one of the sizes.
    ppd : float or ViewingGeometry
        Pixels per degree.
    band_cpd : (float, float), optional
        Band edges in cycles/degree at ``level``.
    peak_cpd, octaves : float, optional
        Alternatively the peak (cycles/degree) and bandwidth (octaves).
    family : {"dog", "log_gaussian", "butterworth", "ideal", "power_law", "white", \
"lowpass", "highpass", "notch"}
        Filter family. A balanced DoG cannot be narrower than 1.7647 octaves at half
        amplitude; use "log_gaussian" or "butterworth" for narrow bands. "lowpass" and
        "highpass" take ``cutoff_cpd``; "notch" takes ``band_cpd`` (the stop band, where its
        amplitude rises back to ``level``), power-complementary to a Butterworth band-pass
        of ``order`` (critical-band masking).
    level : {"half_amplitude", "half_power"}
        Amplitude level that defines the band edges.
    order : int, optional
        Butterworth order (of "butterworth", "lowpass", "highpass" and of the band-pass a
        "notch" complements); default 4, and 8 for "notch".
    orientation_deg, orientation_bandwidth_deg : float, optional
        Optional orientation window (stripe orientation, degrees counter-clockwise from
        vertical; full width at half amplitude).
    alpha : float
        Power-spectrum exponent for "power_law".
    cutoff_cpd : float, optional
        Cutoff of "lowpass" and "highpass" in cycles/degree, at ``level``.
    rolloff : {"butterworth", "gaussian"}
        Shape of "lowpass" and "highpass".
    rms_contrast : float
        RMS contrast of every image, in (0, 1].
    mean : float
        Mean signed contrast (0 = background luminance).
    kind : {"gaussian", "uniform", "binary", "flat"}
        White noise fed to the filter.
    n : int, optional
        Number of images (None: a single ``(H, W)`` image).
    rng : None, int, SeedSequence or Generator
        Seed. With None, fresh entropy is drawn and recorded.
    dtype : {float32, float64}
        Output dtype.
    workers : int, optional
        Threads (see :func:`filtered_noise`; default for stacks and for images from
        2^17 px: the available cores). The images do not depend on it.
    synthesis : {"spectral", "spatial"}
        How Gaussian noise through the filter is made (see :func:`filtered_noise`); the
        record states the method used: "spectral" only for Gaussian noise through a
        filter, "spatial" for everything else.

    Returns
    -------
    images : ndarray, shape (H, W) or (n, H, W)
        Signed-contrast noise with exactly ``rms_contrast`` per image (not clipped).
    record : dict
        Every parameter that made the images (resolved sigmas/cutoffs in the ``filter``
        entry, the design band in cpd with its level, ppd, size, seed): pass it to
        :func:`noise_from_record` to regenerate them bit for bit. ``size_deg`` is the
        linear size ``shape_px / ppd``; ``size_deg_angular`` the exact angle each side
        subtends centred on the line of sight (:meth:`ViewingGeometry.px_to_deg_exact`).

    Warns
    -----
    LinearSizeWarning
        When ``size_deg`` is so large (above about 14 deg) that the linear conversion to
        pixels (``size_deg * ppd``) understates it by more than 0.5 %
        (:data:`stimgen.geometry.LINEAR_SIZE_TOLERANCE`).

    Examples
    --------
    >>> img, rec = bandpass_noise(size_deg=8, ppd=35.84, band_cpd=(1, 4), rng=1)
    >>> img.shape, round(float(img.std()), 6)
    ((287, 287), 0.2)
    """
    p = as_ppd(ppd)
    shape, actual_deg = resolve_shape(size_px=size_px, size_deg=size_deg, ppd=p)
    angular_deg = angular_size_deg(shape, p, requested_deg=size_deg, what="bandpass_noise")
    filt = make_filter(
        family,
        ppd=p,
        band_cpd=band_cpd,
        peak_cpd=peak_cpd,
        octaves=octaves,
        level=level,
        order=order,
        orientation_deg=orientation_deg,
        orientation_bandwidth_deg=orientation_bandwidth_deg,
        alpha=alpha,
        cutoff_cpd=cutoff_cpd,
        rolloff=rolloff,
    )
    design = None
    if filt is not None and (filt.radial or family != "white"):
        passband = _passband(filt, level)
        check_fits_image(passband, shape, p)
        design = passband.to_dict(p)
    if filt is not None and _passes_nothing(filt, tuple(shape)):
        lo, hi = _passband(filt, level).band_cpd(p) if filt.radial else (0.0, p / 2)
        raise ValueError(
            f"band_cpd [{lo:.4g}, {hi:.4g}] holds no DFT "
            f"frequency of a {shape[0]} x {shape[1]} px image (frequencies are spaced "
            f"{p / min(shape):.3g} cpd apart): widen the band or enlarge the image"
        )
    c = v.in_range("rms_contrast", rms_contrast, 0.0, 1.0, low_inclusive=False)
    m = v.in_range("mean", mean, -1.0, 1.0, low_inclusive=False, high_inclusive=False)
    v.choice("synthesis", synthesis, SYNTHESES)
    used = "spectral" if synthesis == "spectral" and kind == "gaussian" and filt is not None else "spatial"
    gen, seed = _seed_record(rng)
    if filt is None:
        images = white_noise(shape, n=n, kind=kind, rng=gen, dtype=dtype)
        set_rms_contrast(images, c, mean=m, out=images)
        outside = _count_outside(images)
    else:
        v.choice("kind", kind, KINDS)
        images, outside = _filtered(*shape, filt, n, kind, gen, _float_dtype(dtype), workers,
                                    _DEFAULT_CHUNK_BYTES, (c, m), used)
    record: dict[str, Any] = {
        "family": family,
        "level": level,
        "ppd": p,
        "shape_px": list(shape),
        "size_deg": list(actual_deg) if actual_deg else None,
        "size_deg_angular": angular_deg,
        "band_cpd": None if band_cpd is None else [float(x) for x in band_cpd],
        "peak_cpd": peak_cpd,
        "octaves": octaves,
        "order": (8 if family == "notch" else 4) if order is None else order,
        "orientation_deg": orientation_deg,
        "orientation_bandwidth_deg": orientation_bandwidth_deg,
        "alpha": alpha,
        "cutoff_cpd": cutoff_cpd,
        "rolloff": rolloff,
        "filter": None if filt is None else filt.to_record(),
        "design": design,
        "rms_contrast": c,
        "mean": float(mean),
        "kind": kind,
        "synthesis": used,
        "n": n,
        "dtype": np.dtype(dtype).name,
        "seed": seed,
        "fraction_outside_range": outside / images.size,
        "value_convention": VALUE_CONVENTION,
    }
    return images, record


_RECORD_ARGS = (
    "ppd", "band_cpd", "peak_cpd", "octaves", "family", "level", "order", "orientation_deg",
    "orientation_bandwidth_deg", "alpha", "rms_contrast", "mean", "kind", "n", "dtype",
)
_OPTIONAL_RECORD_ARGS = ("cutoff_cpd", "rolloff")  # absent from records of older versions


def noise_from_record(record: dict[str, Any], *, workers: int | None = None) -> np.ndarray:
    """Regenerate the images of a :func:`bandpass_noise` record (needs its ``seed``).

    The record's ``synthesis`` is used; a record without one (made before spectral
    synthesis) is regenerated, bit for bit, with ``"spatial"``.

    Raises
    ------
    ValueError
        If the record has no seed (it was made from a Generator) or lacks a field.
    """
    seed = record.get("seed")
    if not seed:
        raise ValueError("record has no seed (made from a Generator): it cannot be regenerated")
    missing = [k for k in (*_RECORD_ARGS, "shape_px") if k not in record]
    if missing:
        raise ValueError(f"record lacks the fields {missing}")
    ss = np.random.SeedSequence(seed["entropy"], spawn_key=tuple(seed.get("spawn_key", ())))
    kwargs = {k: record[k] for k in _RECORD_ARGS}
    kwargs.update({k: record[k] for k in _OPTIONAL_RECORD_ARGS if k in record})
    kwargs["synthesis"] = record.get("synthesis", "spatial")  # records made before it: spatial
    images, _ = bandpass_noise(size_px=record["shape_px"], rng=ss, workers=workers, **kwargs)
    return images


def power_law_noise(
    shape_px: Any,
    alpha: float = 1.0,
    *,
    n: int | None = None,
    band_cpd: Any = None,
    ppd: float | ViewingGeometry | None = None,
    rms_contrast: float = 0.2,
    mean: float = 0.0,
    kind: str = "gaussian",
    rng: Any = None,
    dtype: Any = np.float32,
    workers: int | None = None,
    synthesis: str = "spectral",
) -> np.ndarray:
    """1/f^alpha noise: power spectrum proportional to ``1 / f^alpha``.

    Parameters
    ----------
    shape_px : (int, int)
        Image height and width in pixels.
    alpha : float
        Power-spectrum exponent (>= 0): 0 white, 1 pink, 2 brown (amplitude ``1/f``, the
        average natural-image spectrum).
    n : int, optional
        Number of images.
    band_cpd : (float, float), optional
        Hard band limits in cycles/degree (needs ``ppd``).
    ppd : float or ViewingGeometry, optional
        Pixels per degree (only for ``band_cpd``).
    rms_contrast, mean : float
        RMS contrast in (0, 1] and mean, in signed contrast.
    kind, rng, dtype, workers, synthesis
        As for :func:`filtered_noise`.

    Returns
    -------
    ndarray, shape (H, W) or (n, H, W)
    """
    a = v.positive("alpha", alpha, allow_zero=True)
    if band_cpd is not None:
        if ppd is None:
            raise ValueError("band_cpd needs ppd (or a viewing geometry)")
        filt = PowerLaw.from_band(band_cpd, ppd=ppd, alpha=a)
        check_fits_image(filt.passband(), _shape2(shape_px), ppd)
    else:
        filt = PowerLaw(a)
    c = v.in_range("rms_contrast", rms_contrast, 0.0, 1.0, low_inclusive=False)
    m = v.in_range("mean", mean, -1.0, 1.0, low_inclusive=False, high_inclusive=False)
    h, w = _shape2(shape_px)
    v.choice("kind", kind, KINDS)
    v.choice("synthesis", synthesis, SYNTHESES)
    images, _ = _filtered(h, w, filt, n, kind, v.rng(rng), _float_dtype(dtype), workers,
                          _DEFAULT_CHUNK_BYTES, (c, m), synthesis)
    return images
