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
* ``scale`` multiplies the stored values (default 1/255, so 8-bit images land in [0, 1]);
  it is applied to the exact accumulated moments, never by dtype. 16-bit files keep their
  0..65535 values (pass ``scale=1/65535``); a warning says so when the default meets them.
* Files are decoded with :func:`stimgen.io.read_image`: grayscale stays one channel, palette
  images are expanded to RGB, **the alpha channel of RGBA/LA images is dropped**.
* Arrays: ``(H, W)`` is one grayscale image; 3-D is one image with channels on
  ``channel_axis`` (or, with ``channel_axis=None``, a batch of grayscale images); 4-D is a
  batch with images on axis 0, e.g. ``(B, H, W, C)`` or ``(B, C, H, W)`` with
  ``channel_axis=1``. Torch tensors are accepted without importing torch.
* Exactness: integer images (8/16 bit) are summed exactly (integer sums and sums of
  squares), floats with a two-pass algorithm in float64; accumulators combine with Chan et
  al.'s formula, so any split of the data (batches, processes, Dask workers) gives the same
  numbers to about 1e-15 relative.
"""

from __future__ import annotations

import glob as _glob
import math
import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import _validate
from .io import IMAGE_SUFFIXES, read_image

__all__ = ["DatasetStats", "RunningStats", "dataset_stats"]

_EXACT_F32_ROWS = 256  # float32 sums of <= 256 uint8 squares (<= 2^24) are exact
_DEFAULT_SCALE = 1 / 255
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
        if v.shape[0] == 0 or v.shape[1] == 0:
            return self
        if x.dtype.kind == "f" and not np.isfinite(v).all():
            raise ValueError("batch contains NaN or infinite values")
        n, *moments = _moments(v)
        # channel-first batches come back per channel plane: regroup to (B, C)
        means, m2s, mins, maxs = (m.reshape(-1, n_channels) for m in moments)
        self._add_images(n, means, m2s, mins, maxs, str(x.dtype))
        return self

    def _add_images(self, n, means, m2s, mins, maxs, dtype: str) -> None:
        s = self.scale
        if s != 1.0:
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
        delta = mean - self.mean
        self.mean = self.mean + delta * (nb / total)
        self.between_m2 = self.between_m2 + between + delta * delta * (na * nb / total)
        self.within_m2 = self.within_m2 + within
        self.count = total
        self.n_images += images
        self.min = np.minimum(self.min, lo)
        self.max = np.maximum(self.max, hi)
        self.sum_image_mean = self.sum_image_mean + sum_mean
        self.sum_image_std = self.sum_image_std + sum_std

    def __repr__(self) -> str:
        return (
            f"RunningStats(n_images={self.n_images}, n_pixels={self.count}, "
            f"mean={np.round(self.mean, 6).tolist()}, std={np.round(self.std, 6).tolist()})"
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
    """Per-image, per-channel moments of ``v`` with shape (B, H, W, C) or (B*C, H, W, 1).

    Returns ``(n, mean, m2, min, max)`` with arrays of shape (B, C).
    """
    g, h, w, c_in = v.shape
    rows = v.reshape(g, h, w * c_in)
    n = h * w
    lo = rows.min(axis=1).reshape(g, w, c_in).min(axis=1).astype(np.float64)
    hi = rows.max(axis=1).reshape(g, w, c_in).max(axis=1).astype(np.float64)
    kind, size = v.dtype.kind, v.dtype.itemsize
    if kind in "biu" and size <= 2:
        # exact integer sums: float32 is exact for <= 256 rows of 8-bit squares, float64
        # for any practical number of rows of 16-bit squares
        acc_dt, step = (np.float32, _EXACT_F32_ROWS) if (kind == "b" or size == 1) else (
            np.float64, 1 << 20)
        s1 = np.zeros((g, w * c_in))
        s2 = np.zeros((g, w * c_in))
        for r in range(0, h, step):
            f = rows[:, r : r + step].astype(acc_dt)
            s1 += f.sum(axis=1)
            s2 += np.einsum("grl,grl->gl", f, f)
        S1 = s1.reshape(g, w, c_in).sum(axis=1)
        S2 = s2.reshape(g, w, c_in).sum(axis=1)
        # M2 = (n S2 - S1^2) / n in exact integer arithmetic, rounded once
        i1, i2 = S1.astype(np.int64), S2.astype(np.int64)
        if float(n) * float(i2.max()) < 2.0**62:
            m2 = (n * i2 - i1 * i1) / n
        else:  # beyond int64: Python integers
            i1, i2 = i1.astype(object), i2.astype(object)
            m2 = ((n * i2 - i1 * i1) / n).astype(np.float64)
        mean = S1 / n
    else:
        f = rows.astype(np.float64)
        pilot = f.sum(axis=1).reshape(g, w, c_in).sum(axis=1) / n
        f -= np.tile(pilot, w)[:, None, :]
        S1 = f.sum(axis=1).reshape(g, w, c_in).sum(axis=1)
        S2 = np.einsum("grl,grl->gl", f, f).reshape(g, w, c_in).sum(axis=1)
        mean = pilot + S1 / n
        m2 = np.maximum(S2 - S1 * (S1 / n), 0.0)
    return n, mean, m2, lo, hi


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
        Files skipped with ``on_error="skip"``; ``skipped_files`` lists (path, reason).
    scale : float
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

    @property
    def var(self) -> np.ndarray:
        """Pooled variance per channel (``std**2``)."""
        return self.std**2

    @property
    def n_channels(self) -> int:
        return int(self.mean.shape[0])

    @classmethod
    def from_running(cls, rs: RunningStats, skipped: Sequence[tuple[str, str]] = ()) -> DatasetStats:
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
    scale: float = _DEFAULT_SCALE,
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
        Number of local worker processes for file sources (default: 1, in this process).
    scheduler : {"local", "dask"}
        "dask" partitions the file list over a Dask cluster (``pip install stimgen[dask]``).
    address : str, optional
        Dask scheduler address ``HOST:PORT``; default: the current Dask client.
    scale : float (output units per stored unit)
        Multiplies all values (default 1/255: 8-bit data in [0, 1]).
    channel_axis : int or None
        Channel axis of arrays from an iterable source (files are always channel-last).
    on_error : {"raise", "skip"}
        A corrupt or unreadable file raises ``ValueError`` naming it (default), or is
        skipped, counted in ``skipped`` and listed in ``skipped_files`` (with a warning).
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
    scale = _validate.positive("scale", scale)
    njobs = 1 if jobs is None else _validate.positive_int("jobs", jobs)
    files = _file_list(source)
    if files is None:
        if scheduler == "dask" or njobs > 1:
            raise ValueError(
                "jobs and scheduler='dask' apply to file sources (a directory, glob or list "
                "of paths); arrays from an iterable are processed in this process"
            )
        rs = RunningStats(scale=scale)
        for item in source:
            rs.update(item, channel_axis=channel_axis)
        if rs.count == 0:
            raise ValueError("source yielded no pixels")
        return DatasetStats.from_running(rs)
    if not files:
        raise ValueError(f"no image files found in {source!r} (suffixes: {', '.join(IMAGE_SUFFIXES)}, .npy)")
    if scheduler == "dask":
        rs, skipped = _run_dask(files, address=address, scale=scale, on_error=on_error,
                                progress=progress, files_per_task=files_per_task)
    elif njobs > 1:
        rs, skipped = _run_processes(files, jobs=njobs, scale=scale, on_error=on_error,
                                     progress=progress, files_per_task=files_per_task)
    else:
        from ._progress import Progress

        rs, skipped = RunningStats(scale=scale), []
        with Progress(len(files), "stats", enabled=None if progress else False) as bar:
            for part in _partitions(files, 64):
                r, s = _stats_of_files(part, scale, on_error)
                rs.merge(r)
                skipped.extend(s)
                bar.update(len(part))
    if skipped:
        first = skipped[0]
        warnings.warn(
            f"dataset_stats skipped {len(skipped)} unreadable file(s); first: {first[1]}",
            RuntimeWarning,
            stacklevel=2,
        )
    if rs.count == 0:
        raise ValueError(f"no readable images among {len(files)} file(s)")
    if scale == _DEFAULT_SCALE and any(d in ("uint16", "int16", "int32") for d in rs.dtypes):
        warnings.warn(
            "dataset_stats found 16-bit (or wider) images and used the default scale=1/255; "
            "their values keep 0..65535 / 255 (pass scale=1/65535 for 16-bit data)",
            RuntimeWarning,
            stacklevel=2,
        )
    return DatasetStats.from_running(rs, skipped)


def _file_list(source: Any) -> list[str] | None:
    """Sorted file paths for path-like sources, or None for iterables of arrays."""
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
    for item in items:
        s = os.fspath(item)
        p = Path(s)
        if p.is_dir():
            found = [
                str(q) for q in p.rglob("*") if q.suffix.lower() in suffixes and q.is_file()
            ]
            files.extend(sorted(found))
        elif p.exists():
            files.append(s)
        elif _glob.has_magic(s):
            files.extend(sorted(_glob.glob(s, recursive=True)))
        else:
            raise FileNotFoundError(f"no such file or directory: {s}")
    return files


def _partitions(files: Sequence[str], size: int) -> list[list[str]]:
    return [list(files[i : i + size]) for i in range(0, len(files), size)]


def _task_size(n_files: int, workers: int, files_per_task: int | None) -> int:
    if files_per_task is not None:
        return _validate.positive_int("files_per_task", files_per_task)
    return max(1, min(256, math.ceil(n_files / (8 * workers))))


def _stats_of_files(paths: Sequence[str], scale: float, on_error: str):
    """Accumulate a list of files; returns (RunningStats, [(path, reason), ...])."""
    rs = RunningStats(scale=scale)
    skipped: list[tuple[str, str]] = []
    for p in paths:
        try:
            img = read_image(p)
            if img.ndim == 3 and rs.n_channels not in (None, img.shape[2]):
                raise ValueError(
                    f"{p} has {img.shape[2]} channels, earlier images have {rs.n_channels}"
                )
            if img.ndim == 2 and rs.n_channels not in (None, 1):
                raise ValueError(f"{p} is grayscale, earlier images have {rs.n_channels} channels")
            rs.update(img, channel_axis=-1 if img.ndim == 3 else None)
        except (ValueError, OSError) as exc:
            if on_error == "raise":
                msg = str(exc) if str(p) in str(exc) else f"{p}: {exc}"
                raise ValueError(msg) from exc
            skipped.append((str(p), str(exc) if str(p) in str(exc) else f"{p}: {exc}"))
    return rs, skipped


def _merge_ordered(results: list):
    rs = RunningStats(scale=results[0][0].scale) if results else RunningStats()
    skipped: list[tuple[str, str]] = []
    for r, s in results:
        try:
            rs.merge(r)
        except ValueError as exc:
            raise ValueError(f"images with different channel counts in the dataset: {exc}") from None
        skipped.extend(s)
    return rs, skipped


def _run_processes(files, *, jobs, scale, on_error, progress, files_per_task):
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from ._progress import Progress

    parts = _partitions(files, _task_size(len(files), jobs, files_per_task))
    results: list[Any] = [None] * len(parts)
    with ProcessPoolExecutor(max_workers=jobs) as pool, Progress(
        len(files), "stats", enabled=None if progress else False
    ) as bar:
        futures = {pool.submit(_stats_of_files, part, scale, on_error): i
                   for i, part in enumerate(parts)}
        for fut in as_completed(futures):
            i = futures[fut]
            results[i] = fut.result()
            bar.update(len(parts[i]))
    return _merge_ordered(results)


def _run_dask(files, *, address, scale, on_error, progress, files_per_task):
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
        futures = client.map(_stats_of_files, parts, scale=scale, on_error=on_error, pure=False)
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
