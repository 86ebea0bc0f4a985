"""Per-image, per-channel standardization, in place and in chunks.

Contents
--------
standardize        subtract each image-channel's mean and divide by its standard deviation
                   (or by given dataset statistics), in place, chunk by chunk
StandardizeStats   the per-group means and standard deviations that were used

Conventions
-----------
* A *group* is one image-channel: all elements that share the indices of the axes that are
  **not** reduced. With the default ``axis=None`` the reduced axes are the two spatial axes,
  so ``(N, H, W, C)`` has ``N * C`` groups, ``(N, C, H, W)`` with ``channel_axis=1`` too,
  ``(H, W, C)`` has ``C`` and ``(H, W)`` one. Any other set of axes may be given
  (``axis=(0, 1, 2)`` standardizes each channel over the whole batch).
* Statistics of float input use the corrected two-pass algorithm: a shift (the mean of
  8 rows spread over the group), then the sums of the deviations from it and of their
  squares, float32 partial sums over runs of at most 16 rows accumulated in float64 (a
  shift further than 1/4 std from the mean is redone). The deviations are written in
  place as they are summed, so the float path sweeps the data twice: once to sum, once
  to finish the output. Data such as ``1000 + small noise`` or ``1e4 + U[0, 1)`` comes
  out with mean 0 and std 1 to float32 precision.
* Standard deviations are population stds (``ddof=0``) unless ``ddof`` says otherwise.
* Float input is overwritten (``inplace=True``, the default); integer input (uint8,
  uint16, ...) never is: it goes to a new float32 array (float64 for integers wider than
  16 bits). Values are never rescaled by dtype: uint8 data is standardized from its
  0..255 values. For 8/16-bit input the statistics are exact (integer sums) and the
  output is written in one pass over the input per chunk (no float copy of the input).
  Integers the output dtype cannot hold exactly (64-bit ones in float64, 32-bit ones
  with ``dtype=np.float32``) are offset by an integer near each group's mean first
  (exact integer arithmetic; a min/max pass finds whether they fit), so ``2**60 +
  small`` keeps its spread.
* Memory: apart from the output and the statistics (a few float64 values per group),
  the work needs scratch of about one or two ``chunk_bytes`` (default 2 MiB), whatever the
  size and layout of the input (blocks split axis 0, then axis 1, ... as needed), so numpy
  memmaps of any size work.
* Groups whose squared deviations would overflow float64 (values above ~1e154) get
  their statistics recomputed from deviations scaled by a power of two; only data whose
  sum overflows float64 (near 1e308) raises ``ValueError``. float32 data of any
  magnitude works (sums fall back to float64). Groups whose spread is so small that the squares of their deviations would underflow
  (std below ~1e-146 in float64, ~1e-16 in float32) get their statistics recomputed from
  deviations scaled by a power of two, so they stay exact; a std whose inverse does not
  fit the output dtype (float32 std below ~3e-39) raises ``ValueError``.
"""

from __future__ import annotations

import math
import operator
import threading
import warnings
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from . import _validate

__all__ = ["StandardizeStats", "standardize"]

_DEFAULT_CHUNK_BYTES = 2 << 20
_STEP_ROWS = 128  # the float path works on at most this many rows of a group per call
_RUN_ROWS = 16  # its float32 partial sums span at most this many rows
_TILE_ROWS = 4  # per-column values are stacked this many rows deep for the ufuncs
_SMALL_ROW = 256  # small groups are split into rows of at most this many values
_SAMPLE_ROWS = 8  # rows per group (8 to 15, evenly spaced) whose mean is the float path's shift
_REDO_STDS = 0.25  # a shift further than this many stds from the mean is redone
_ROW_ELEMENTS = 4096  # preferred number of elements in one reduction row
_ONE_PASS_GROUP_BYTES = 8 << 20  # integer input: groups up to this output size in one pass
_INT64_SUMS = 1 << 62  # integer input: bound on a group's sum of squares for int64 sums
_CONSTANT = ("zero", "nan", "raise")
_NONFINITE = ("raise", "propagate")


class StandardizeStats(NamedTuple):
    """Per-group statistics used by :func:`standardize`.

    Attributes
    ----------
    mean : ndarray, float64
        Means in the input's units, shape = the input's shape without the reduced axes
        (``(N, C)`` for ``(N, H, W, C)`` input).
    std : ndarray, float64
        Standard deviations (with the requested ``ddof``), same shape; 0 for constant
        groups.

    With given ``mean``/``std`` the same shape is returned (given values broadcast to it),
    unless they vary along a reduced axis: then they are returned as given, broadcastable
    against the input.
    """

    mean: np.ndarray
    std: np.ndarray


def standardize(
    images: Any,
    *,
    axis: int | Sequence[int] | None = None,
    channel_axis: int | None = -1,
    mean: Any = None,
    std: Any = None,
    out: np.ndarray | None = None,
    inplace: bool = True,
    ddof: int = 0,
    constant: str = "zero",
    nonfinite: str = "raise",
    dtype: Any = None,
    chunk_bytes: int = _DEFAULT_CHUNK_BYTES,
    return_stats: bool = False,
    workers: int | None = None,
) -> np.ndarray | tuple[np.ndarray, StandardizeStats]:
    """Standardize each image-channel to mean 0 and standard deviation 1, in place.

    Parameters
    ----------
    images : ndarray, shape (N, H, W, C), (H, W, C), (N, C, H, W), (H, W), ... (any units)
        Image data; numpy memmaps work and are processed chunk by chunk.
    axis : int or tuple of int, optional
        Axes reduced over (each combination of the other axes is one group). Default: the
        two spatial axes, i.e. the last two axes other than ``channel_axis`` (the last two
        axes when ``channel_axis`` is None).
    channel_axis : int or None
        Axis holding the channels (default -1, channel-last). Used for the default
        ``axis`` and to place 1-D ``mean``/``std``. None for grayscale data.
    mean, std : array_like, optional (input units)
        Use these statistics instead of computing them (like torchvision's ``Normalize``):
        1-D of length C is laid along ``channel_axis``; anything else must broadcast
        against ``images``. Give both or neither. ``std`` must be > 0.
    out : ndarray, optional
        Float array of the same shape to write to (``images`` is then left unchanged).
    inplace : bool
        Overwrite float ``images`` (default). False writes to a new array. Integer input
        is never overwritten.
    ddof : int
        Delta degrees of freedom of the std (0: population std, the default).
    constant : {"zero", "nan", "raise"}
        What to do with a constant group (std 0): set it to 0 and warn once per call
        (default), set it to NaN, or raise ``ValueError``.
    nonfinite : {"raise", "propagate"}
        NaN or inf in the input raises ``ValueError`` (default) or makes the whole group
        NaN ("propagate").
    dtype : dtype, optional
        Output dtype for integer input or ``inplace=False`` (default: the input's float
        dtype, float32 for integers up to 16 bits, float64 for wider ones).
    chunk_bytes : int (bytes)
        Size of the chunks the data is processed in (default 2 MiB).
    return_stats : bool
        Also return the :class:`StandardizeStats` used.
    workers : int, optional
        Threads that standardize blocks of groups in parallel (numpy releases the GIL in
        its loops). Default: the cores available to this process; negative counts from all
        cores (-1: all of them). The result is the same, bit for bit, for any number of
        threads (each block of groups is computed the same way whichever thread runs it).
        Arbitrary axes and layouts that take the generic path run on one thread.

    Returns
    -------
    ndarray
        The standardized array (``images`` itself when standardized in place).
    StandardizeStats
        Only with ``return_stats=True``.

    Raises
    ------
    ValueError
        For bad parameters, read-only input with ``inplace=True``, non-finite input
        (``nonfinite="raise"``) or constant groups (``constant="raise"``). Groups are
        processed in order; when an error is raised part-way, groups before the offending
        one have already been standardized in place, and with several ``workers`` a few
        groups after it may have been too (use ``inplace=False`` to keep the input
        intact). The error raised is that of the first offending group, whatever the
        number of threads, among groups of one kind of fault: non-finite values (and
        sums overflowing float64) are checked in a whole block of groups before constant
        groups and stds too small for the dtype, so a NaN in a later group of the same
        block is reported before an earlier constant group (the generic path: in the
        whole array). The offending block of groups (float input) has had its shift
        subtracted and added back: its values are as given where they lie within a
        factor 2 of their group's shift (data with an offset; of both shifts where a
        group was shifted twice), and otherwise within two ulps (in the data's dtype) of
        the group's largest magnitude; ``constant="raise"`` never modifies it.

    Notes
    -----
    For float input, each group with elements :math:`x_1..x_n` gets a shift :math:`K` (the
    mean of 8 rows spread over the group, in the data's dtype), followed by
    :math:`S_1 = \\sum (x_i - K)` and :math:`S_2 = \\sum (x_i - K)^2` (float32 partial
    sums over at most 16 rows, accumulated in float64), so :math:`\\mu = K + S_1/n` and
    :math:`\\sigma^2 = (S_2 - S_1^2/n)/(n - \\text{ddof})` (Chan, Golub & LeVeque's
    corrected two-pass algorithm); a :math:`K` further than :math:`\\sigma/4` from
    :math:`\\mu` is replaced by :math:`\\mu` (the data shifted back first) and the sums
    are taken again. The deviations
    :math:`x_i - K` overwrite the data as they are summed; the output
    :math:`(x_i - K - (\\mu - K))/\\sigma` is then computed in the data's precision, so
    no precision is lost to a large offset. 8- and 16-bit input has exact integer sums.

    Examples
    --------
    >>> import numpy as np
    >>> from stimgen import standardize
    >>> rng = np.random.default_rng(0)
    >>> batch = (1000 + rng.standard_normal((4, 64, 64, 3))).astype(np.float32)
    >>> out, stats = standardize(batch, return_stats=True)
    >>> out is batch, stats.mean.shape
    (True, (4, 3))
    >>> bool(abs(out.mean(axis=(1, 2), dtype=np.float64)).max() < 1e-6)
    True
    """
    constant = _validate.choice("constant", constant, _CONSTANT)
    nonfinite = _validate.choice("nonfinite", nonfinite, _NONFINITE)
    chunk_bytes = _validate.positive_int("chunk_bytes", chunk_bytes, minimum=1024)
    ddof = _validate.positive_int("ddof", ddof, minimum=0)
    nthreads = _threads(workers)
    a = images if isinstance(images, np.ndarray) else np.asarray(images)
    if a.dtype.kind not in "biuf":
        raise ValueError(f"images must be a real numeric array, got dtype {a.dtype}")
    if a.ndim < 1 or a.size == 0:
        raise ValueError(f"images must be a non-empty array, got shape {a.shape}")
    ca = None if channel_axis is None else _axis_index("channel_axis", channel_axis, a.ndim)
    red = _reduced_axes(axis, ca, a.ndim)
    if (mean is None) != (std is None):
        raise ValueError("give both mean and std (dataset statistics) or neither")

    target = _target(a, images, out=out, inplace=inplace, dtype=dtype)

    if mean is not None:
        m, s = _given_stats(mean, std, ca, a.shape)
        _apply_given(target, a, m, s, chunk_bytes, nonfinite, nthreads)
        if return_stats:
            return target, StandardizeStats(_group_values(m, red, a.shape),
                                            _group_values(s, red, a.shape))
        return target

    n = math.prod(a.shape[i] for i in red)
    if n - ddof <= 0:
        raise ValueError(
            f"ddof must be smaller than the number of elements per group ({n}), got {ddof}"
        )
    policy = _Policy(constant=constant, nonfinite=nonfinite, ddof=ddof)
    int_layout = _integer_layout(a, target, red, chunk_bytes)
    ref = None  # integer input the output's float type cannot hold: per-group offsets
    if target is not a and int_layout is None:
        ref = _integer_reference(a, red, target.dtype, chunk_bytes)
        if ref is None:
            _copy_chunked(target, a, chunk_bytes)
        else:
            _copy_offsets(target, a, ref, red, chunk_bytes)
    layout = _fast_layout(target, red, chunk_bytes)
    # non-finite values and constant groups are detected explicitly; silence numpy's
    # floating-point warnings about them in the arithmetic
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        if int_layout is not None:  # 8/16-bit input: exact stats, one pass to the output
            mu, sd = _standardize_integer(a, target, *int_layout, chunk_bytes=chunk_bytes,
                                          policy=policy, workers=nthreads)
        elif layout is not None:
            mu, sd = _standardize_fast(target, *layout, chunk_bytes=chunk_bytes, policy=policy,
                                       workers=nthreads)
        else:
            mu, sd = _standardize_generic(target, red, chunk_bytes=chunk_bytes, policy=policy)
    policy.finish()
    if ref is not None:
        mu = mu + ref.reshape(mu.shape).astype(np.float64)
    if return_stats:
        return target, StandardizeStats(mu, sd)
    return target


# -- validation and set-up -------------------------------------------------------------
def _threads(workers: Any) -> int:
    """Threads for ``workers``, with the convention of ``stimgen.noise`` (None: the
    available cores; negative: all cores but ``|workers| - 1``)."""
    from ._validate import thread_count

    return thread_count(workers)


def _axis_index(name: str, value: Any, ndim: int) -> int:
    try:
        i = operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be an integer axis, got {value!r}") from None
    if not -ndim <= i < ndim:
        raise ValueError(f"{name} {value} is out of range for an array with {ndim} dimensions")
    return i % ndim


def _reduced_axes(axis: Any, ca: int | None, ndim: int) -> tuple[int, ...]:
    if axis is None:
        spatial = [i for i in range(ndim) if i != ca]
        if len(spatial) < 2:
            raise ValueError(
                f"the default axis needs two spatial axes besides channel_axis; got an array "
                f"with {ndim} dimensions (give axis=...)"
            )
        return tuple(spatial[-2:])
    axes = (axis,) if np.ndim(axis) == 0 else tuple(axis)
    if not axes:
        raise ValueError("axis must name at least one axis, got ()")
    red = tuple(sorted(_axis_index("axis", x, ndim) for x in axes))
    if len(set(red)) != len(red):
        raise ValueError(f"axis must not repeat an axis, got {axis!r}")
    return red


def _target(a: np.ndarray, images: Any, *, out: Any, inplace: bool, dtype: Any) -> np.ndarray:
    """The float array the result is written to."""
    if dtype is not None:
        dtype = np.dtype(dtype)
        if dtype.kind != "f":
            raise ValueError(f"dtype must be a float dtype, got {dtype}")
    if out is not None:
        if not isinstance(out, np.ndarray) or out.shape != a.shape or out.dtype.kind != "f":
            raise ValueError(
                f"out must be a float ndarray of shape {a.shape}, got "
                f"{getattr(out, 'dtype', type(out).__name__)} {getattr(out, 'shape', '')}"
            )
        if not out.flags.writeable:
            raise ValueError("out is read-only")
        if np.shares_memory(out, a) and out is not a:
            raise ValueError("out overlaps images; use inplace=True instead")
        return out
    if a.dtype.kind == "f" and inplace and (dtype is None or dtype == a.dtype):
        if not a.flags.writeable:
            raise ValueError(
                "images is read-only (e.g. a memmap opened with mode='r'); pass "
                "inplace=False or out=... to write the result elsewhere"
            )
        return a
    if dtype is None:
        if a.dtype.kind == "f":
            dtype = a.dtype
        else:
            dtype = np.dtype(np.float32 if a.dtype.itemsize <= 2 else np.float64)
    return np.empty(a.shape, dtype=dtype)


def _copy_chunked(dst: np.ndarray, src: np.ndarray, chunk_bytes: int) -> None:
    for sl in _blocks(src.shape, max(src.itemsize, dst.itemsize), chunk_bytes):
        np.copyto(dst[sl], src[sl], casting="unsafe")


def _fits_exactly(int_dtype: np.dtype, float_dtype: np.dtype) -> bool:
    """True if every value of ``int_dtype`` is exactly a ``float_dtype`` value."""
    bits = 1 if int_dtype.kind == "b" else int_dtype.itemsize * 8 - (int_dtype.kind == "i")
    return bits <= np.finfo(float_dtype).nmant + 1


def _offset_from(x: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """``x - ref`` (integer arrays, ``ref`` int64 or uint64 broadcasting against ``x``) in
    float64, computed exactly and rounded once: a wrapping 64-bit difference, which is the
    true one unless its magnitude reaches 2**63 (64-bit input spanning more than half its
    range); those few are taken as unsigned differences in the direction where they are
    non-negative."""
    xw = x.astype(ref.dtype, copy=False)
    d = np.subtract(xw, ref).view(np.int64)  # (integer arrays wrap silently)
    out = d.astype(np.float64)
    if x.dtype.itemsize == 8:
        up = xw >= ref
        wrong = up != (d >= 0)
        if wrong.any():
            xu = xw[wrong].view(np.uint64)
            ru = np.broadcast_to(ref, xw.shape)[wrong].view(np.uint64)
            out[wrong] = np.where(up[wrong], (xu - ru).astype(np.float64),
                                  -(ru - xu).astype(np.float64))
    return out


def _integer_reference(a: np.ndarray, red: tuple[int, ...], dt: np.dtype,
                       chunk_bytes: int) -> np.ndarray | None:
    """For integer input with values ``dt`` cannot hold exactly (64-bit integers beyond
    2**53 in float64, 32-bit ones beyond 2**24 in float32): an integer near each group's
    mean (keepdims shape, int64 or uint64), from which the values are offset exactly
    before they are rounded to ``dt``, so a large offset costs no precision. None when
    the cast is exact (checked with one pass of min/max)."""
    if a.dtype.kind not in "iu" or _fits_exactly(a.dtype, dt):
        return None
    exact = 2 ** (np.finfo(dt).nmant + 1)  # integers up to this magnitude are exact in dt
    if all(-exact <= int(a[sl].min()) and int(a[sl].max()) <= exact
           for sl in _blocks(a.shape, a.itemsize, chunk_bytes)):
        return None  # (the values fit: a plain cast, as for narrower integers)
    wide = np.dtype(np.uint64 if a.dtype.kind == "u" else np.int64)
    first = a[tuple(slice(0, 1) if ax in red else slice(None) for ax in range(a.ndim))]
    first = first.astype(wide)  # the first element of each group, then the mean's
    total = np.zeros(first.shape)  # offset from it (float64 sums of exact differences)
    for sl in _blocks(a.shape, 32, chunk_bytes):  # (a few 8-byte temporaries per value)
        g = tuple(slice(None) if ax in red else x for ax, x in enumerate(sl))
        total[g] += _offset_from(a[sl], first[g]).sum(axis=red, keepdims=True)
    step = np.rint(total / math.prod(a.shape[i] for i in red))  # |step| < 2**64
    # first + step lies between the group's extremes (up to the rounding of a float64
    # sum), so it fits ``wide``: add it modulo 2**64 (step's magnitude as uint64, exact
    # for integer-valued floats below 2**64; any reference gives exact differences, one
    # near the mean keeps them small)
    mag = np.minimum(np.abs(step), 2.0**64 - 2.0**11).astype(np.uint64)
    fu = first.view(np.uint64)
    return np.where(step >= 0, fu + mag, fu - mag).view(wide)


def _copy_offsets(dst: np.ndarray, src: np.ndarray, ref: np.ndarray, red: tuple[int, ...],
                  chunk_bytes: int) -> None:
    """``dst = src - ref`` per chunk (see :func:`_integer_reference`)."""
    for sl in _blocks(src.shape, 32, chunk_bytes):
        g = tuple(slice(None) if ax in red else x for ax, x in enumerate(sl))
        dst[sl] = _offset_from(src[sl], ref[g])


def _blocks(shape: tuple[int, ...], itemsize: int, chunk_bytes: int):
    """Index tuples (slices, no dropped axes) of blocks of at most ``chunk_bytes`` covering an
    array of ``shape``: whole slices along axis 0 when they fit, else recursing into axis 1,
    2, ... (the last axis is split when needed), so the blocks stay small for any shape."""
    if not shape:
        yield ()
        return
    per = math.prod(shape[1:]) * itemsize
    if per <= chunk_bytes or len(shape) == 1:
        step = max(1, chunk_bytes // max(1, per))
        for i in range(0, shape[0], step):
            yield (slice(i, min(i + step, shape[0])),)
        return
    inner = list(_blocks(shape[1:], itemsize, chunk_bytes))
    for i in range(shape[0]):
        for rest in inner:
            yield (slice(i, i + 1), *rest)


def _given_stats(mean: Any, std: Any, ca: int | None, shape: tuple[int, ...]):
    m = np.asarray(mean, dtype=np.float64)
    s = np.asarray(std, dtype=np.float64)
    if not (np.isfinite(m).all() and np.isfinite(s).all()):
        raise ValueError("mean and std must be finite")
    if (s <= 0).any():
        raise ValueError(f"std must be > 0, got {std!r}")
    with np.errstate(over="ignore", divide="ignore"):
        if not np.isfinite(1.0 / s).all():
            raise ValueError(f"std must be >= {1 / np.finfo(np.float64).max:.3g} (its inverse "
                             f"must be a finite float64), got {float(s.min()):g}")
    out = []
    for name, v in (("mean", m), ("std", s)):
        if v.ndim == 1 and ca is not None and v.shape[0] == shape[ca] and v.shape[0] > 1:
            v = v.reshape([-1 if i == ca else 1 for i in range(len(shape))])
        try:
            np.broadcast_shapes(v.shape, shape)
        except ValueError:
            raise ValueError(
                f"{name} of shape {v.shape} does not broadcast against images of shape {shape} "
                f"(give one value per channel along channel_axis, or a broadcastable array)"
            ) from None
        out.append(v)
    return out[0], out[1]


def _group_values(v: np.ndarray, red: tuple[int, ...], shape: tuple[int, ...]) -> np.ndarray:
    """Given statistics laid out like computed ones (the shape without the reduced axes);
    statistics that vary along a reduced axis are returned as given, broadcastable."""
    v = v.reshape((1,) * (len(shape) - v.ndim) + v.shape)
    if any(v.shape[i] != 1 for i in red):
        return v.copy()
    keep = tuple(shape[i] for i in range(len(shape)) if i not in red)
    gshape = tuple(1 if i in red else shape[i] for i in range(len(shape)))
    return np.broadcast_to(v, gshape).reshape(keep).copy()


def _apply_given(target: np.ndarray, src: np.ndarray, m: np.ndarray, s: np.ndarray,
                 chunk_bytes: int, nonfinite: str, workers: int = 1) -> None:
    """``target = (src - m) / s`` in float64 per chunk: one pass over ``src``."""
    if (nonfinite == "raise" and src.dtype.kind == "f"
            and not _all_finite(src, chunk_bytes)):
        raise ValueError(
            "images contains NaN or infinite values; pass nonfinite='propagate' to keep them"
        )
    inv = 1.0 / s
    mb = np.broadcast_to(m, target.shape)
    ib = np.broadcast_to(inv, target.shape)
    blocks = list(_blocks(target.shape, 8, chunk_bytes))

    def block(b: int, _bufs) -> None:
        sl = blocks[b]
        x = src[sl].astype(np.float64)
        x -= mb[sl]
        x *= ib[sl]
        target[sl] = x

    _run_blocks(len(blocks), block, tuple, workers)


def _run_blocks(n_blocks: int, work: Any, make_buffers: Any, workers: int) -> None:
    """Call ``work(b, buffers)`` for every block ``b`` in ``range(n_blocks)``, on up to
    ``workers`` threads (numpy releases the GIL in its loops).

    Blocks are claimed in increasing order, one at a time, by whichever thread is free; each
    thread makes its own ``buffers = make_buffers()`` once. A block's result depends on its
    data alone, so the output is the same, bit for bit, for any number of threads. If blocks
    raise, the exception of the lowest block is raised once all threads have stopped; blocks
    after it that were not yet claimed are not processed (as in a sequential loop, blocks
    before it are complete; with threads, a few blocks after it may be complete too).
    """
    threads = max(1, min(workers, n_blocks))
    if threads == 1:
        bufs = make_buffers()
        for b in range(n_blocks):
            work(b, bufs)
        return
    claim = threading.Lock()
    nxt = [0]  # the next block to claim
    stop = [n_blocks]  # no block from here on is claimed (the lowest failed block, or all)
    errors: dict[int, BaseException] = {}

    def run() -> None:
        # numpy's error state is per thread: set the caller's handling in each thread
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            b = -1
            try:
                bufs = make_buffers()
                while True:
                    with claim:
                        b = nxt[0]
                        if b >= stop[0]:
                            return
                        nxt[0] = b + 1
                    work(b, bufs)
            except BaseException as exc:  # noqa: BLE001 - re-raised by the caller below
                with claim:
                    errors[b] = exc
                    stop[0] = min(stop[0], b)

    helpers = [threading.Thread(target=run, daemon=True) for _ in range(threads - 1)]
    for t in helpers:
        t.start()
    try:
        run()
    finally:
        with claim:  # stop the helpers after their current block (e.g. on KeyboardInterrupt)
            stop[0] = min(stop[0], nxt[0])
        for t in helpers:
            t.join()
    if errors:
        raise errors[min(errors)]


def _all_finite(a: np.ndarray, chunk_bytes: int) -> bool:
    """True if every element of the float array ``a`` is finite (checked in chunks)."""
    return all(bool(np.isfinite(a[sl]).all()) for sl in _blocks(a.shape, a.itemsize, chunk_bytes))


class _Policy:
    """Handling of constant and non-finite groups, with one warning per call."""

    def __init__(self, *, constant: str, nonfinite: str, ddof: int) -> None:
        self.constant = constant
        self.nonfinite = nonfinite
        self.ddof = ddof
        self.n_constant = 0
        self.n_groups = 0
        self._lock = threading.Lock()  # blocks of groups may run on several threads

    def nonfinite_error(self, where: str) -> ValueError:
        return ValueError(
            f"images contains NaN or infinite values in {where}; pass nonfinite='propagate' "
            f"to let those groups become NaN (groups before it were already standardized)"
        )

    def constant_groups(self, flags: np.ndarray, where: str) -> None:
        k = int(np.count_nonzero(flags))
        if k and self.constant == "raise":
            raise ValueError(
                f"images has a constant group (std 0) in {where}; pass constant='zero' or "
                f"'nan' to accept constant image-channels"
            )
        with self._lock:
            self.n_constant += k

    def finish(self) -> None:
        if self.n_constant and self.constant in ("zero", "nan"):
            what = "0" if self.constant == "zero" else "NaN"
            warnings.warn(
                f"standardize: {self.n_constant} of {self.n_groups} image-channels are "
                f"constant (std 0) and were set to {what} (constant={self.constant!r})",
                RuntimeWarning,
                stacklevel=3,
            )


# -- fast path: C-contiguous float data whose reduced axes are one contiguous run ----------
def _fast_layout(a: np.ndarray, red: tuple[int, ...], chunk_bytes: int):
    """``(O, R, I, group_shape, k)`` if ``a`` reshapes without copying to (outer, reduced,
    inner) and reduction rows of ``k`` pixels suit it (see :func:`_row_pixels`)."""
    if a.dtype not in (np.float32, np.float64) or not a.flags.c_contiguous:
        return None
    if red != tuple(range(red[0], red[-1] + 1)):
        return None
    outer = math.prod(a.shape[: red[0]])
    reduced = math.prod(a.shape[red[0] : red[-1] + 1])
    inner = math.prod(a.shape[red[-1] + 1 :])
    k = _row_pixels(reduced, inner, a.dtype.itemsize, chunk_bytes)
    if k is None:
        return None
    return outer, reduced, inner, a.shape[: red[0]] + a.shape[red[-1] + 1 :], k


def _row_pixels(reduced: int, inner: int, itemsize: int, chunk_bytes: int) -> int | None:
    """Pixels per reduction row, a divisor ``k`` of ``reduced``.

    Preferably the largest divisor giving rows of at most ``_ROW_ELEMENTS`` elements (or one
    row per group when groups are tiny). When that row would be short (a Python-level loop
    over tiny rows is slow: sizes such as 1367 x 1367 have no divisor between 1 and 1367),
    the smallest divisor above it whose row still has at most ``chunk_bytes / 32`` elements
    (the float64 row accumulators then stay small) is used instead. None if neither exists
    (then the caller uses the generic path).
    """
    if reduced * inner * itemsize <= chunk_bytes and reduced * inner <= 4 * _ROW_ELEMENTS:
        return reduced
    limit = max(1, _ROW_ELEMENTS // inner)
    divisors: set[int] = set()
    d = 1
    while d * d <= reduced:
        if reduced % d == 0:
            divisors.update((d, reduced // d))
        d += 1
    best = max(k for k in divisors if k <= limit)
    if best * inner >= _ROW_ELEMENTS // 8 or best == reduced:
        return best
    cap = max(_ROW_ELEMENTS, chunk_bytes // 32)
    larger = [k for k in divisors if k > limit and k * inner <= cap]
    return min(larger) if larger else None


def _standardize_fast(
    a: np.ndarray,
    outer: int,
    reduced: int,
    inner: int,
    group_shape: tuple[int, ...],
    k: int,
    *,
    chunk_bytes: int,
    policy: _Policy,
    workers: int = 1,
):
    """Standardize C-contiguous float data viewed as (outer, rows, k * inner), a block of
    whole groups (or one group) at a time: two passes over each block.

    Pass 1 subtracts a shift (the mean of ``_SAMPLE_ROWS`` rows spread over each group,
    rounded to the data's dtype) from the data, in place, ``_STEP_ROWS`` rows at a time,
    and sums the deviations and their squares (:func:`_add_run_sums`: float32 runs of at
    most ``_RUN_ROWS`` rows, accumulated in float64). Pass 2 turns the deviations into
    ``(d - (mu - shift)) * (1 / sd)``. A group whose shift lies more than ``_REDO_STDS``
    stds from its mean gets its first shift added back and is shifted by its mean
    instead (from ``x``, one rounding), then summed again (rare: the sample is spread
    over the whole group). Small groups (one row) are split into
    rows of at most ``_SMALL_ROW`` values, or, when their pixel count has no such
    divisor, kept in one row and summed by halving (:func:`_tree_sum`).
    When the block cannot be shifted in place (``constant="raise"`` must leave a constant
    group untouched, or a shift so large that ``x - shift`` could overflow), the
    deviations go to a scratch buffer and pass 2 computes ``(x - mu_hi - mu_lo) / sd``.
    If an error is raised after a block was shifted in place, the shifts are added back.
    """
    dt = a.dtype
    k = _small_rows(k, reduced, inner)
    L = k * inner
    rows = reduced // k
    v = a.reshape(outer, rows, L)
    row_bytes = L * dt.itemsize
    r_step = max(1, min(rows, _STEP_ROWS, chunk_bytes // row_bytes))
    if r_step == rows:  # whole groups per step: batch several of them
        g_step = max(1, min(outer, chunk_bytes // (rows * row_bytes)))
    else:
        g_step = 1
    means = np.empty((outer, inner))
    stds = np.empty((outer, inner))
    policy.n_groups = outer * inner
    tile = _tile_rows(g_step, r_step, row_bytes, chunk_bytes)
    sample_stride = 1 if rows < 2 * _SAMPLE_ROWS else rows // _SAMPLE_ROWS
    n_sample = len(range(0, rows, sample_stride)) * k  # pixels per group in the sample
    # |x - shift| for finite x stays finite (rounds to at most the dtype's max) when |shift|
    # is below half an ulp of the dtype's max
    no_overflow = 2.0 ** (np.finfo(dt).maxexp - np.finfo(dt).nmant - 2)
    may_shift_in_place = policy.constant != "raise"
    columns = np.tile(np.arange(inner), k)  # the group (channel) of each column of a row
    one_row = rows == 1  # whole groups in one row: small images, pairwise sums over pixels

    def tiled(vals: np.ndarray) -> np.ndarray:  # (G, inner) -> (G, 1, L), each pixel's values
        if not one_row:
            return np.take(vals, columns, axis=1)[:, None, :]
        row = np.empty((vals.shape[0], 1, L), dtype=dt)  # (doubling copies: no gather)
        row[:, 0, :inner] = vals
        n = 1
        while n < k:
            m = min(n, k - n)
            row[:, 0, n * inner : (n + m) * inner] = row[:, 0, : m * inner]
            n += m
        return row

    def buffers():  # per thread: the tiled rows of the current block's per-column values
        return tuple(np.empty((g_step, tile, L), dtype=dt) for _ in range(3))

    def block(b: int, bufs) -> None:
        shift_t, hi, inv = bufs
        o0 = b * g_step
        o1 = min(outer, o0 + g_step)
        g = o1 - o0
        blk = v[o0:o1]
        steps = [blk[:, r : r + r_step] for r in range(0, rows, r_step)]
        # the shift: the mean of a sample of rows spread over each group (all rows of
        # groups with fewer than 16), in the data's dtype; 0 where the sample holds NaN or
        # inf (or its float32 sums overflow: then all rows are summed in float64)
        work = np.empty((g, L) if one_row else 0, dtype=dt)  # pairwise sums of one-row groups
        if one_row:  # the whole group (pairwise sums; float64 where they overflow)
            first = _tree_sum(blk[:, 0], work, k, inner)
            redo = ~np.isfinite(first).all(axis=1)
            for o in np.flatnonzero(redo) if redo.any() else ():
                first[o] = np.add.reduce(blk[o].reshape(k, inner), axis=0, dtype=np.float64)
            first /= n_sample
        else:
            sample = blk[:, ::sample_stride]
            ps = np.add.reduce(sample, axis=1)
            if not np.isfinite(ps).all():
                ps = np.add.reduce(sample, axis=1, dtype=np.float64)
            first = _fold(ps.astype(np.float64), k, inner) / n_sample
        first[~np.isfinite(first)] = 0.0
        shift = first.astype(dt)
        in_place = may_shift_in_place and bool((np.abs(shift) < no_overflow).all())
        scratch = np.empty(0 if in_place else g * r_step * L, dtype=dt)
        applied: list[np.ndarray] = []  # shifts subtracted in place, in order
        total = shift.astype(np.float64)  # the data's total shift (pass 1 deviations = x - total)

        def restore() -> None:  # add the shifts back (before an error is raised)
            for s in reversed(applied):
                shift_t[:g] = tiled(s)
                for x in steps:
                    _rows_op(np.add, x, shift_t[:g], x)

        # pass 1: deviations from the shift and the sums of them and of their squares
        for attempt in range(2):
            shift_t[:g] = tiled(shift)
            if in_place:
                applied.append(shift)
            if one_row:  # pairwise float32 sums over the pixels of each group
                x = steps[0]
                d = x if in_place else scratch[: x.size].reshape(x.shape)
                _rows_op(np.subtract, x, shift_t[:g], d)
                S1 = _tree_sum(d[:, 0], work, k, inner)
                np.multiply(d[:, 0], d[:, 0], out=work)
                S2 = _tree_sum(work, work, k, inner)
                redo = ~(np.isfinite(S1) & np.isfinite(S2)).all(axis=1)
                for o in np.flatnonzero(redo) if redo.any() else ():
                    # float32 sums beyond ~3e38 (squares beyond ~1e19), or NaN/inf: float64
                    dd = d[o].reshape(k, inner)
                    S1[o] = np.add.reduce(dd, axis=0, dtype=np.float64)
                    S2[o] = np.einsum("ki,ki->i", dd, dd, dtype=np.float64)
            else:
                s1 = np.zeros((g, L))
                s2 = np.zeros((g, L))
                for x in steps:
                    d = x if in_place else scratch[: x.size].reshape(x.shape)
                    _rows_op(np.subtract, x, shift_t[:g], d)
                    _add_run_sums(d, s1, s2)
                S1 = _fold(s1, k, inner)
                S2 = _fold(s2, k, inner)
            delta = S1 / reduced  # mean - total
            # (the caller ignores floating-point warnings: NaN and inf are handled below)
            var = np.maximum(S2 - S1 * delta, 0.0) / (reduced - policy.ddof)
            poor = delta * delta > var * _REDO_STDS**2
            if attempt or not poor.any():
                break
            # a shift far from the mean costs precision: shift again, by the mean
            if in_place:
                new = np.where(poor, total + delta, total).astype(dt)
                if not (np.abs(new) < no_overflow).all():  # (values near the dtype's max)
                    break
                # the data of those groups back to x (exactly where x is within a factor
                # 2 of the first shift), then x - the new shift: one rounding, which the
                # shift added back on an error undoes (-0.0 and 0.0 leave the others'
                # bits as they are)
                shift_t[:g] = tiled(np.where(poor, applied[0], -0.0).astype(dt))
                for x in steps:
                    _rows_op(np.add, x, shift_t[:g], x)
                applied[0] = np.where(poor, 0.0, applied[0]).astype(dt)
                shift = np.where(poor, new, 0.0).astype(dt)
                total = np.where(poor, new.astype(np.float64), total)
            else:
                shift = np.where(poor, total + delta, total).astype(dt)
                total = shift.astype(np.float64)
        mu = total + delta
        sd = np.sqrt(var)
        bad = None  # groups with NaN or inf in the data (None: none)

        def rescaled(o: int, i: int) -> bool:  # a group's moments from scaled deviations
            # (the column holds the deviations from the shift in place, else the data)
            base = 0.0 if in_place else float(total[o, i])
            delta[o, i], sd[o, i] = _scaled_moments(blk[o].reshape(reduced, inner)[:, i],
                                                    policy.ddof, base)
            mu[o, i] = total[o, i] + delta[o, i]
            return math.isfinite(sd[o, i]) and math.isfinite(mu[o, i])

        if not (np.isfinite(mu).all() and np.isfinite(sd).all()):
            bad = ~np.isfinite(S1)  # NaN or inf in the data, or a sum beyond float64
            for o, i in np.argwhere(bad) if bad.any() else ():
                # finite data whose sums overflow (float64 data near its max), or whose
                # deviations from a shift in scratch do (data spanning more than the
                # dtype's range): its moments from scaled float64 deviations, else too large
                if np.isfinite(blk[o].reshape(reduced, inner)[:, i]).all():
                    if not rescaled(o, i):
                        restore()
                        raise _overflow_error(_where(o0 + o, i, group_shape, inner))
                    bad[o, i] = False
            if bad.any() and policy.nonfinite == "raise":
                o, i = np.argwhere(bad)[0]
                restore()
                raise policy.nonfinite_error(_where(o0 + o, i, group_shape, inner))
            over = ~bad & ~(np.isfinite(sd) & np.isfinite(mu))
            for o, i in np.argwhere(over):  # squares overflow: redo this group scaled
                if not rescaled(o, i):
                    restore()
                    raise _overflow_error(_where(o0 + o, i, group_shape, inner))
            mu[bad] = np.nan
            sd[bad] = np.nan
        # constant groups: exact check only where rounding could hide a zero std (the
        # shift lies between the group's extremes, so the deviations are all equal exactly
        # when the values are); NaN stds (bad groups) compare False
        small = _small_std(dt)
        suspect = sd <= np.maximum(1e-2 * np.abs(delta), small)
        const = None
        if suspect.any():
            const = np.zeros_like(suspect)
            for o, i in np.argwhere(suspect):
                col = blk[o].reshape(reduced, inner)[:, i]
                const[o, i] = bool((col == col[0]).all())
                if not const[o, i] and sd[o, i] < small:  # squares near underflow: redo
                    rescaled(o, i)
            if const.any():
                o, i = np.argwhere(const)[0]
                policy.constant_groups(const, _where(o0 + o, i, group_shape, inner))
                sd[const] = 0.0
            else:
                const = None
        tiny = sd * np.finfo(dt).max < 1.0
        if const is not None:
            tiny &= ~const
        if tiny.any():
            o, i = np.argwhere(tiny)[0]
            restore()
            raise _underflow_error(_where(o0 + o, i, group_shape, inner), dt)
        means[o0:o1] = mu
        stds[o0:o1] = sd
        # pass 2: (d - delta_hi - delta_lo) * (1 / sd) in the data's precision, with d the
        # deviations from the shift (in place), or (x - mu_hi - mu_lo) * (1 / sd)
        scale = 1.0 / sd
        if const is not None:
            scale[const] = np.nan if policy.constant == "nan" else 0.0
        if in_place:  # the data holds x - total: subtract delta
            m_hi = delta.astype(dt)
            m_lo = (delta - m_hi.astype(np.float64)).astype(dt)
        else:  # the data holds x: subtract total + delta, as an unrounded sum (a float64
            # mu would round off up to eps64 * |mu| / sd of the output)
            m_hi, m_lo = _split_sum(total, delta, dt)
        # groups whose x - total - delta might not fit the dtype (data spanning more than
        # its range): left as they are by the tiles, finished in float64 below
        wide = (sd * math.sqrt(reduced) + np.abs(delta) * (1 + math.sqrt(reduced))
                >= float(np.finfo(dt).max) / 4)
        if const is not None:
            wide &= ~const
        if bad is not None:
            m_hi[bad] = 0
            m_lo[bad] = 0
        if wide.any():
            m_hi[wide] = 0
            m_lo[wide] = 0
            scale[wide] = 1.0
        hi[:g] = tiled(m_hi)
        inv[:g] = tiled(scale.astype(dt))
        # the low part is subtracted (one more pass) only where it moves the output by
        # more than 1/256 of the dtype's resolution at 1 std (4.7e-10 in float32)
        use_lo = bool((np.abs(m_lo.astype(np.float64) * scale)
                       > float(np.finfo(dt).eps) / 256).any())
        if use_lo:
            shift_t[:g] = tiled(m_lo)
        for x in steps:
            _rows_op(np.subtract, x, hi[:g], x)
            if use_lo:
                _rows_op(np.subtract, x, shift_t[:g], x)
            _rows_op(np.multiply, x, inv[:g], x)
        for o, i in np.argwhere(wide) if wide.any() else ():
            _finish_wide(blk[o].reshape(reduced, inner)[:, i], 0.0 if in_place else total[o, i],
                         float(delta[o, i]), float(sd[o, i]))

    _run_blocks(-(-outer // g_step), block, buffers, workers)
    return means.reshape(group_shape), stds.reshape(group_shape)


def _split_sum(a: np.ndarray, b: np.ndarray, dt: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """``a + b`` (float64 arrays) as ``hi + lo`` in ``dt``: ``hi`` the sum rounded to
    ``dt``, ``lo`` the rest rounded to ``dt`` (the float64 rounding error of ``a + b`` is
    kept by Knuth's TwoSum, so ``hi + lo`` is ``a + b`` to about ``eps(dt)**2``)."""
    s = a + b
    bv = s - a
    err = (a - (s - bv)) + (b - bv)  # s + err == a + b exactly (where s is finite)
    hi = s.astype(dt)
    lo = ((s - hi.astype(np.float64)) + err).astype(dt)
    return hi, lo


def _finish_wide(col: np.ndarray, base: float, delta: float, sd: float) -> None:
    """``col = ((col - base) - delta) / sd`` in float64, for a group whose deviations may
    not fit its dtype, in slices of at most 2**16 values. Every term is scaled by the
    power of two nearest ``1 / sd`` first, so nothing overflows: ``|x - mean|`` is at
    most ``sqrt(n) * sd``, and a group that is not constant has ``sd`` of at least an ulp
    of its values over ``sqrt(n)``."""
    p = math.ldexp(1.0, -math.frexp(sd)[1])
    b, d, s = base * p, delta * p, sd * p
    for j in range(0, col.shape[0], 1 << 16):
        y = col[j : j + (1 << 16)].astype(np.float64)
        y *= p
        y -= b
        y -= d
        y /= s
        col[j : j + (1 << 16)] = y


def _add_run_sums(d: np.ndarray, s1: np.ndarray, s2: np.ndarray) -> None:
    """Add the column sums of ``d`` (shape (G, R, L), R <= 8 * ``_RUN_ROWS``) and of its
    squares to the float64 ``s1``, ``s2`` (shape (G, L)).

    The sums are taken in d's dtype over runs of at most ``_RUN_ROWS`` rows (one
    reduction or einsum call for all runs), then over the (at most 8) runs, and added in
    float64. A column's float32 sum thus has at most 15 + 7 roundings: its error is at
    most 22 * 2**-24 (1.3e-6) of the sum of the magnitudes of its terms, and typically
    far less. Long float32 runs also bias sums of quantized data (values on a grid, such
    as ``1000 + 0.05 noise`` in float32, whose squared deviations come out 6.7e-7 low
    with runs of 128 rows and 5e-9 low with runs of 16). Sums that overflow float32 are
    taken in float64.
    """
    g, r, length = d.shape
    m = r - r % _RUN_ROWS
    runs = d[:, :m].reshape(g, m // _RUN_ROWS, _RUN_ROWS, length)  # a view
    tail = d[:, m:]
    for acc, square in ((s1, False), (s2, True)):
        if m:
            part = np.add.reduce(np.einsum("gsrl,gsrl->gsl", runs, runs) if square
                                 else np.add.reduce(runs, axis=2), axis=1)
            if m < r:
                part += np.einsum("grl,grl->gl", tail, tail) if square else tail.sum(axis=1)
        else:
            part = np.einsum("grl,grl->gl", tail, tail) if square else np.add.reduce(tail, axis=1)
        if np.isfinite(part).all():
            acc += part
        else:  # float32 sums beyond ~3e38 (squares beyond ~1e19) overflow: take them in float64
            acc += (np.einsum("grl,grl->gl", d, d, dtype=np.float64) if square
                    else np.add.reduce(d, axis=1, dtype=np.float64))


def _tree_sum(x: np.ndarray, work: np.ndarray, k: int, inner: int) -> np.ndarray:
    """Per-group sums ``(G, inner)`` (float64) of ``x`` of shape ``(G, k * inner)``: pairwise
    sums in x's dtype (halves added together, log2(k) contiguous vector additions; the
    caller checks them for overflow). ``work`` (same shape, may be ``x`` itself) is
    overwritten.

    Each value goes through at most 2 * ceil(log2(k)) roundings (k = 1024: 20, an error
    of at most 20 * 2**-24 = 1.2e-6 of the sum of the magnitudes, typically far less).
    """
    n = k
    src = x
    while n > 1:
        h = n // 2
        a = work[:, : h * inner]
        np.add(src[:, : h * inner], src[:, h * inner : 2 * h * inner], out=a)
        if n % 2:
            a[:, :inner] += src[:, 2 * h * inner : n * inner]
        src, n = work, h
    return src[:, :inner].astype(np.float64)


def _fold(x: np.ndarray, k: int, inner: int) -> np.ndarray:
    """Per-group sums ``(G, inner)`` of per-column sums ``x`` of shape ``(G, k * inner)``
    (``k`` pixels of ``inner`` values each), added pixel by pixel in x's dtype (einsum: a
    few times faster than a reduction whose innermost axis has ``inner`` elements)."""
    return np.einsum("gki->gi", x.reshape(x.shape[0], k, inner))


def _small_rows(k: int, reduced: int, inner: int) -> int:
    """Pixels per row for groups of ``reduced`` pixels laid out in rows of ``k``: groups in
    one row (small images) are split into rows of at most ``_SMALL_ROW`` values (the
    per-column tables the ufuncs broadcast then stay small), unless the pixel count has no
    divisor giving rows of at least ``_SMALL_ROW / 8`` values (then one row)."""
    if k != reduced:
        return k
    p = max((d for d in range(1, k + 1) if k % d == 0 and d * inner <= _SMALL_ROW), default=1)
    return p if p * inner >= _SMALL_ROW // 8 else k


def _tile_rows(g_step: int, r_step: int, row_bytes: int, chunk_bytes: int) -> int:
    """Rows of the tiles that hold a block's per-column values (shift, mean, 1/std): up to
    4 rows, at most ``r_step`` and at most 1/64 of ``chunk_bytes`` per tile (2 rows of
    3072 float32 values with the default 2 MiB: the threads' tiles stay a few 10 kB)."""
    return max(1, min(_TILE_ROWS, r_step, chunk_bytes // 64 // (g_step * row_bytes)))


def _rows_op(ufunc: Any, x: np.ndarray, rows_t: np.ndarray, out: np.ndarray) -> None:
    """``out = ufunc(x, row)`` with ``x``, ``out`` of shape (G, R, L) and ``rows_t`` of shape
    (G, T, L) holding each group's row T times.

    A (G, 1, L) operand broadcast over R rows makes numpy loop over R short rows (about
    twice as slow); against T stacked copies the loops run over T rows at once.
    """
    g, r, length = x.shape
    t = rows_t.shape[1]
    m = r - r % t
    if t == 1:  # (a (G, R, 1, L) view would make numpy loop over single elements)
        m = 0
    if m:
        xv, ov = x[:, :m].view(), out[:, :m].view()
        xv.shape = ov.shape = (g, m // t, t, length)  # a view, never a copy (raises if not)
        ufunc(xv, rows_t[:, None], out=ov)
    if m < r:
        ufunc(x[:, m:], rows_t[:, : r - m], out=out[:, m:])


def _overflow_error(where: str) -> ValueError:
    """For a group with finite data but a non-finite mean or std."""
    return ValueError(
        f"images has values too large to standardize in {where}: their sum or the "
        "deviations from the mean overflow float64 (magnitudes near 1e308); scale the data "
        "down first (groups before it were already standardized)"
    )


def _underflow_error(where: str, dtype: np.dtype) -> ValueError:
    """For a group whose std is too small for its inverse to fit ``dtype``."""
    return ValueError(
        f"images has values too small to standardize in {where}: the std is below "
        f"1 / {np.finfo(dtype).max:.3g}, so its inverse overflows {np.dtype(dtype).name}; "
        "scale the data up first, or standardize float64 data"
    )


def _small_std(dtype: np.dtype) -> float:
    """Below this std, squares of deviations in ``dtype`` (and the float64 sums of float64
    squares) come within 2**26 of underflow and lose precision."""
    return math.sqrt(float(np.finfo(dtype).tiny)) * 2.0**26


def _scaled_moments(col: np.ndarray, ddof: int, base: float = 0.0) -> tuple[float, float]:
    """Mean (minus ``base``) and std of a 1-D column, exact for tiny (or subnormal) values
    and for huge ones: the deviations are scaled by a power of two before they are
    squared. The mean is returned relative to ``base`` (a value near it, such as the
    group's shift), so it is not rounded to float64 at the data's magnitude (the caller
    keeps ``base + mean`` as an unrounded sum)."""
    x = col.astype(np.float64)
    if base:
        x -= base
    mean = float(x.mean())
    d = x - mean
    top = float(np.abs(d).max())
    if top == 0.0:
        return mean, 0.0
    e = math.frexp(top)[1]
    ds = np.ldexp(d, -e)
    c = float(ds.sum())
    ss = max(float(np.dot(ds, ds)) - c * c / ds.size, 0.0)
    return mean + math.ldexp(c / ds.size, e), math.ldexp(math.sqrt(ss / (ds.size - ddof)), e)


def _where(o: int, i: int, group_shape: tuple[int, ...], inner: int) -> str:
    idx = np.unravel_index(o * inner + i, group_shape) if group_shape else ()
    return f"group {tuple(int(j) for j in idx)} (index over the non-reduced axes)"


# -- integer path: 8/16-bit input, exact statistics, written once to the float output ---------
def _integer_layout(a: np.ndarray, target: np.ndarray, red: tuple[int, ...],
                    chunk_bytes: int):
    """Like :func:`_fast_layout`, for 8/16-bit C-contiguous input and a separate
    C-contiguous float output; None if that path does not apply."""
    if a.dtype.kind not in "biu" or a.dtype.itemsize > 2 or target is a:
        return None
    if not _fits_exactly(a.dtype, target.dtype):  # (16-bit integers to float16)
        return None
    if not (a.flags.c_contiguous and target.flags.c_contiguous):
        return None
    if red != tuple(range(red[0], red[-1] + 1)):
        return None
    outer = math.prod(a.shape[: red[0]])
    reduced = math.prod(a.shape[red[0] : red[-1] + 1])
    inner = math.prod(a.shape[red[-1] + 1 :])
    k = _row_pixels(reduced, inner, target.dtype.itemsize, chunk_bytes)
    if k is None:
        return None
    return outer, reduced, inner, a.shape[: red[0]] + a.shape[red[-1] + 1 :], k


def _standardize_integer(
    a: np.ndarray,
    target: np.ndarray,
    outer: int,
    reduced: int,
    inner: int,
    group_shape: tuple[int, ...],
    k: int,
    *,
    chunk_bytes: int,
    policy: _Policy,
    workers: int = 1,
):
    """8/16-bit input to a new float output, reading the input once per block of groups.

    Exact integer column sums of the input give each group's mean ``q + r/n`` (``q`` the
    nearest integer). When a block of whole groups is small enough to stay in cache and the
    output's float type holds the squared deviations exactly (8-bit input), the block is
    written once as ``x - q`` (exact small integers), the exact sum of their squares is
    taken there, and the block is finished in place as ``(x - q - r/n) * (1 / sd)``.
    Otherwise (16-bit input to float32, or huge groups) the sums of squares are integer
    sums over the input, and one pass per chunk writes the output. No full-size temporary.
    """
    from .datastats import _integer_column_sums, _integer_plan

    dt = target.dtype
    plan = _integer_plan(a.dtype)
    a1, n1 = plan[0], plan[1]
    span = max(plan[5] - plan[4], 1)  # largest |x - q|
    exact_rows = (1 << (np.finfo(dt).nmant + 1)) // (span * span)  # float sums exact
    k = _small_rows(k, reduced, inner)
    L = k * inner
    rows = reduced // k
    v = a.reshape(outer, rows, L)
    t = target.reshape(outer, rows, L)
    group_out_bytes = rows * L * dt.itemsize
    big = reduced * span * span  # bound of the sums of squares per group
    one_pass = (exact_rows > 0 and group_out_bytes <= _ONE_PASS_GROUP_BYTES and big < 1 << 53
                and plan[5] < 1 << (np.finfo(dt).nmant + 1))
    acc = np.int64 if big < _INT64_SUMS else object  # Python integers for gigantic groups
    g_step = max(1, min(outer, chunk_bytes // group_out_bytes))
    r_step = rows if g_step > 1 else max(1, min(rows, chunk_bytes // (L * dt.itemsize)))
    means = np.empty((outer, inner))
    stds = np.empty((outer, inner))
    policy.n_groups = outer * inner

    def group_sums(x):  # (g, L) column sums -> (g, inner) per group, exact in int64
        return x.reshape(x.shape[0], k, inner).sum(axis=1, dtype=np.int64)

    def block(b: int, _bufs) -> None:
        o0 = b * g_step
        o1 = min(outer, o0 + g_step)
        g = o1 - o0
        blk, out = v[o0:o1], t[o0:o1]
        if one_pass:
            S1 = sum(group_sums(np.add.reduce(blk[:, r0 : r0 + n1], axis=1, dtype=a1))
                     for r0 in range(0, rows, n1))
        else:
            S1 = np.zeros((g, inner), dtype=acc)
            S2 = np.zeros((g, inner), dtype=acc)
            for r0 in range(0, rows, r_step):
                p1, p2 = _integer_column_sums(blk[:, r0 : r0 + r_step], plan)
                S1 += group_sums(p1)
                S2 += group_sums(p2)
        q = (2 * S1 + reduced) // (2 * reduced)  # nearest integer to the mean
        r = S1 - q * reduced  # |r| <= n / 2
        tile = _tile_rows(g, rows if one_pass else r_step, L * dt.itemsize, chunk_bytes)
        hi = np.repeat(np.tile(np.asarray(q, dtype=dt), k)[:, None, :], tile, axis=1)
        if one_pass:  # x - q: exact small integers, squared and summed exactly
            np.copyto(out, blk, casting="unsafe")  # (a cast copy, then float arithmetic,
            _rows_op(np.subtract, out, hi, out)  # is faster than a mixed-type ufunc)
            sq = np.zeros((g, L))
            for r0 in range(0, rows, exact_rows):
                x = out[:, r0 : r0 + exact_rows]
                sq += np.einsum("grl,grl->gl", x, x)
            T = sq.reshape(g, k, inner).sum(axis=1)  # exact integers < 2**53
        else:
            T = S2 - q * (S1 + r)  # sum of (x - q)**2, exact
        rf = np.asarray(r, dtype=np.float64)
        m2 = np.maximum(np.asarray(T, dtype=np.float64) - rf * rf / reduced, 0.0)
        mu = np.asarray(q, dtype=np.float64) + rf / reduced
        const = np.asarray(T == 0, dtype=bool)
        sd = np.sqrt(m2 / (reduced - policy.ddof))
        if const.any():
            o, i = np.argwhere(const)[0]
            policy.constant_groups(const, _where(o0 + o, i, group_shape, inner))
            sd[const] = 0.0
        means[o0:o1] = mu
        stds[o0:o1] = sd
        scale = 1.0 / sd
        scale[const] = np.nan if policy.constant == "nan" else 0.0
        d = rf / reduced  # mu - q, in [-1/2, 1/2]
        d_hi = d.astype(dt)
        use_lo = bool(d_hi.any())
        lo = np.repeat(np.tile(d_hi, k)[:, None, :], tile, axis=1)
        inv = np.repeat(np.tile(scale.astype(dt), k)[:, None, :], tile, axis=1)
        for r0 in range(0, rows, rows if one_pass else r_step):
            x = out if one_pass else out[:, r0 : r0 + r_step]
            if not one_pass:
                np.copyto(x, blk[:, r0 : r0 + r_step], casting="unsafe")
                _rows_op(np.subtract, x, hi, x)
            if use_lo:
                _rows_op(np.subtract, x, lo, x)
            _rows_op(np.multiply, x, inv, x)

    _run_blocks(-(-outer // g_step), block, tuple, workers)
    return means.reshape(group_shape), stds.reshape(group_shape)


# -- generic path: any layout, any axes (float64 blocks along axis 0) ---------------------
def _standardize_generic(a: np.ndarray, red: tuple[int, ...], *, chunk_bytes: int,
                         policy: _Policy):
    keep = [i for i in range(a.ndim) if i not in red]
    gshape = tuple(1 if i in red else a.shape[i] for i in range(a.ndim))
    n = math.prod(a.shape[i] for i in red)
    policy.n_groups = math.prod(gshape)
    blocks = list(_blocks(a.shape, 8, chunk_bytes))

    def gsl(sl):  # the block's part of the (keepdims) group arrays
        return tuple(slice(None) if ax in red else x for ax, x in enumerate(sl))

    total = np.zeros(gshape)
    lo = np.full(gshape, np.inf)
    hi = np.full(gshape, -np.inf)
    for sl in blocks:
        x = a[sl].astype(np.float64)
        total[gsl(sl)] += x.sum(axis=red, keepdims=True)
        np.minimum(lo[gsl(sl)], x.min(axis=red, keepdims=True), out=lo[gsl(sl)])
        np.maximum(hi[gsl(sl)], x.max(axis=red, keepdims=True), out=hi[gsl(sl)])
    bad = ~np.isfinite(total) | ~np.isfinite(lo) | ~np.isfinite(hi)
    summed_over = bad & np.isfinite(lo) & np.isfinite(hi)  # finite data, sum overflows
    if summed_over.any():
        idx = tuple(int(j) for ax, j in enumerate(np.argwhere(summed_over)[0]) if ax in keep)
        raise _overflow_error(f"group {idx} (index over the non-reduced axes)")
    if bad.any() and policy.nonfinite == "raise":
        idx = tuple(int(j) for ax, j in enumerate(np.argwhere(bad)[0]) if ax in keep)
        raise policy.nonfinite_error(f"group {idx} (index over the non-reduced axes)")
    pilot = np.where(bad, 0.0, total / n)
    # deviations are scaled by a power of two per group before they are squared, so
    # neither tiny spreads (underflow) nor large ones (overflow, up to ~1e307) lose digits
    with np.errstate(over="ignore", invalid="ignore"):
        spread = np.where(bad, 1.0, np.maximum(hi - pilot, pilot - lo))
    exps = np.clip(np.frexp(np.where(np.isfinite(spread) & (spread > 0), spread, 1.0))[1],
                   -1000, 1000)
    down = np.ldexp(1.0, -exps)
    s1 = np.zeros(gshape)
    s2 = np.zeros(gshape)
    for sl in blocks:
        d = a[sl].astype(np.float64)
        d -= pilot[gsl(sl)]
        d *= down[gsl(sl)]
        s1[gsl(sl)] += d.sum(axis=red, keepdims=True)
        d *= d
        s2[gsl(sl)] += d.sum(axis=red, keepdims=True)
    delta_scaled = s1 / n
    with np.errstate(over="ignore", invalid="ignore"):
        delta = np.ldexp(delta_scaled, exps)
        mu = pilot + delta
        sd = np.ldexp(np.sqrt(np.maximum(s2 - s1 * delta_scaled, 0.0) / (n - policy.ddof)), exps)
    over = ~bad & ~(np.isfinite(sd) & np.isfinite(mu))
    if over.any():
        idx = tuple(int(j) for ax, j in enumerate(np.argwhere(over)[0]) if ax in keep)
        raise _overflow_error(f"group {idx} (index over the non-reduced axes)")
    const = (lo == hi) & ~bad
    if const.any():
        idx = tuple(int(j) for ax, j in enumerate(np.argwhere(const)[0]) if ax in keep)
        policy.constant_groups(const, f"group {idx} (index over the non-reduced axes)")
        sd[const] = 0.0
        mu[const] = lo[const]
    tiny = ~bad & ~const & (sd * np.finfo(np.float64).max < 1.0)
    if tiny.any():
        idx = tuple(int(j) for ax, j in enumerate(np.argwhere(tiny)[0]) if ax in keep)
        raise _underflow_error(f"group {idx} (index over the non-reduced axes)",
                               np.dtype(np.float64))
    mu[bad] = np.nan
    sd[bad] = np.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = 1.0 / sd
    scale[const] = np.nan if policy.constant == "nan" else 0.0
    # x - pilot, then - delta: one float64 mean (pilot + delta rounded) would move the
    # output by up to eps * |mean| / sd
    shift = np.where(bad, 0.0, np.where(const, lo, pilot))  # (constant: x - lo = 0)
    rest = np.where(bad | const, 0.0, delta)
    for sl in blocks:
        x = a[sl].astype(np.float64)
        x -= shift[gsl(sl)]
        x -= rest[gsl(sl)]
        x *= scale[gsl(sl)]
        a[sl] = x
    out_shape = tuple(a.shape[i] for i in keep)
    return mu.reshape(out_shape), sd.reshape(out_shape)
