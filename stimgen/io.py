"""Reading and writing images and arrays, hashing, and atomic outputs.

Conventions
-----------
* :func:`read_image` never rescales by dtype: a PNG comes back as its stored integers
  (uint8 or uint16), a ``.npy`` file as stored. Scaling to float is the caller's explicit
  choice (e.g. ``scale=1/255`` in :func:`stimgen.dataset_stats`).
* Palette images are expanded to RGB(A); the alpha channel is dropped unless
  ``keep_alpha=True``; 16-bit grayscale PNGs come back as uint16.
* Every file that must not be seen half-written goes through :func:`atomic_write_bytes`
  (write to a temporary sibling, fsync, rename) or :func:`atomic_directory`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path

import numpy as np

__all__ = [
    "IMAGE_SUFFIXES",
    "atomic_directory",
    "atomic_write_bytes",
    "png_bytes",
    "read_image",
    "sha256_bytes",
    "sha256_file",
    "write_png",
]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif", ".webp", ".ppm", ".pgm")


def read_image(path: str | os.PathLike, *, keep_alpha: bool = False) -> np.ndarray:
    """Read an image file or a ``.npy`` array without rescaling.

    Parameters
    ----------
    path : str or path-like
        A ``.npy`` file, or any image Pillow decodes (PNG, JPEG, TIFF, ...).
    keep_alpha : bool
        Keep the alpha channel of LA/RGBA/PA images (default: drop it).

    Returns
    -------
    ndarray
        ``(H, W)`` for grayscale, ``(H, W, C)`` channel-last otherwise; dtype as stored
        (uint8, uint16, int32 or float32 for images).

    Raises
    ------
    ValueError
        If the file cannot be decoded (the message names the path).
    FileNotFoundError
        If the file does not exist.
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"no such file: {p}")
    if p.suffix.lower() == ".npy":
        try:
            return np.load(p, allow_pickle=False)
        except Exception as exc:  # noqa: BLE001 - re-raised with the path
            raise ValueError(f"cannot read array file {p}: {exc}") from exc
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(p) as opened:
            opened.load()
            im: Image.Image = opened
            mode = im.mode
            if mode == "P" or mode == "PA":
                im = im.convert("RGBA" if ("transparency" in im.info or mode == "PA") else "RGB")
                mode = im.mode
            if mode == "1":
                im = im.convert("L")
                mode = "L"
            if mode in ("CMYK", "YCbCr", "LAB", "HSV"):
                im = im.convert("RGB")
                mode = "RGB"
            arr = np.asarray(im)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, MemoryError,
            Image.DecompressionBombError) as exc:
        raise ValueError(f"cannot decode image {p}: {exc}") from exc
    if mode.startswith("I;16"):
        arr = arr.astype(np.uint16, copy=False)
    if arr.ndim == 3 and not keep_alpha and mode in ("LA", "RGBA", "PA"):
        arr = arr[..., :-1]
        if arr.shape[-1] == 1:
            arr = arr[..., 0]
    return np.ascontiguousarray(arr)


def png_bytes(array: np.ndarray, *, compress_level: int = 1) -> bytes:
    """Encode a uint8 or uint16 ``(H, W)`` or uint8 ``(H, W, 3|4)`` array as PNG bytes.

    No scaling happens here: quantize first (:func:`stimgen.quantize`). The default zlib
    level 1 is 3-4x faster than Pillow's default 6 on noise, which hardly compresses anyway
    (files about 8 % larger); pass 6-9 for smaller files.
    """
    from PIL import Image

    a = np.asarray(array)
    if a.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"PNG output needs uint8 or uint16 data, got dtype {a.dtype}; quantize first")
    if a.dtype == np.uint16 and a.ndim != 2:
        raise ValueError(f"16-bit PNG output supports (H, W) grayscale only, got shape {a.shape}")
    buf = BytesIO()
    Image.fromarray(a).save(buf, format="PNG", compress_level=compress_level)
    return buf.getvalue()


def write_png(path: str | os.PathLike, array: np.ndarray, *, compress_level: int = 1) -> None:
    """Write a uint8/uint16 array as a PNG file, atomically (see :func:`png_bytes`)."""
    atomic_write_bytes(path, png_bytes(array, compress_level=compress_level))


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of a byte string."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike, *, chunk_bytes: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk_bytes):
            h.update(block)
    return h.hexdigest()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary sibling and an atomic rename."""
    p = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


#: Files whose presence marks a directory as a stimgen output that ``--force`` may replace.
OUTPUT_MARKERS = ("manifest.json", "record.json")


def _check_replaceable(final: Path) -> None:
    """Refuse to replace anything but an empty directory or a stimgen output directory.

    ``--force`` must never delete a project folder, the working directory (or one of its
    ancestors) or a regular file that happens to be named like the output.
    """
    if final.is_symlink() or not final.is_dir():
        raise FileExistsError(f"{final} exists and is not a directory; refusing to replace it")
    here = Path.cwd().resolve()
    target = final.resolve()
    if target == here or target in here.parents:
        raise FileExistsError(
            f"refusing to replace {final}: it is the current directory or one of its parents"
        )
    if any(final.iterdir()) and not any((final / m).is_file() for m in OUTPUT_MARKERS):
        raise FileExistsError(
            f"refusing to replace {final}: it is not empty and holds no stimgen output "
            f"({' or '.join(OUTPUT_MARKERS)}); choose another --out"
        )


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike, *, force: bool = False) -> Iterator[Path]:
    """Build a directory in a temporary sibling and rename it into place when complete.

    Parameters
    ----------
    path : str or path-like
        The final directory. It must not exist unless ``force`` is true, in which case
        the old directory is replaced only after the new one is complete.
    force : bool
        Replace an existing directory (after success only). Only an empty directory or a
        stimgen output (holding ``manifest.json`` or ``record.json``) is ever replaced; the
        current directory, its ancestors and regular files never are.

    Yields
    ------
    Path
        The temporary directory to write into. On any exception (including
        KeyboardInterrupt) it is removed and ``path`` is left untouched.
    """
    final = Path(path)
    if final.exists() or final.is_symlink():
        if not force:
            raise FileExistsError(f"output directory {final} already exists (use --force to replace it)")
        _check_replaceable(final)
    parent = final.parent if str(final.parent) else Path(".")
    if not parent.is_dir():
        what = "is not a directory" if parent.exists() else "does not exist"
        raise FileNotFoundError(f"cannot write the output {final}: its parent {parent} {what}")
    if not os.access(parent, os.W_OK):
        raise PermissionError(f"cannot write into {parent}")
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".partial", dir=parent))
    except OSError as exc:
        raise OSError(f"cannot write the output {final} into {parent}: {exc.strerror or exc}") from None
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old: Path | None = None
    try:
        if final.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".old", dir=parent))
            os.rmdir(old)
            os.replace(final, old)
        os.replace(tmp, final)
    except BaseException:
        if old is not None and not final.exists():
            os.replace(old, final)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def gif_bytes(movie: np.ndarray, *, fps: float) -> tuple[bytes, int]:
    """Encode a uint8 ``(T, H, W)`` movie as a looping animated GIF.

    No scaling happens here: quantize first (:func:`stimgen.quantize`). A preview format
    only: 256 grey levels, and frame delays in whole hundredths of a second.

    Parameters
    ----------
    movie : ndarray of uint8, shape (T, H, W)
        Frames (grey levels 0-255).
    fps : float
        Intended frame rate in Hz (> 0).

    Returns
    -------
    data : bytes
        The GIF file's bytes.
    duration_ms : int
        The frame duration actually stored, in ms: ``1000 / fps`` rounded to 10 ms and at
        least 20 ms (browsers slow shorter delays down to 100 ms), so 60 Hz plays at 50 Hz.
    """
    from PIL import Image

    from . import _validate

    a = np.asarray(movie)
    if a.dtype != np.uint8:
        raise ValueError(f"GIF output needs uint8 data, got dtype {a.dtype}; quantize first")
    if a.ndim != 3 or a.shape[0] < 1:
        raise ValueError(f"GIF output needs a (T, H, W) movie, got shape {a.shape}")
    rate = _validate.positive("fps", fps)
    duration_ms = 10 * max(2, round(100.0 / rate))
    frames = [Image.fromarray(f) for f in a]
    buf = BytesIO()
    frames[0].save(
        buf, format="GIF", save_all=True, append_images=frames[1:], duration=duration_ms, loop=0
    )
    return buf.getvalue(), duration_ms


def write_gif(path: str | os.PathLike, movie: np.ndarray, *, fps: float) -> int:
    """Write a uint8 ``(T, H, W)`` movie as an animated GIF, atomically (see :func:`gif_bytes`).

    Returns
    -------
    int
        The stored frame duration in ms.
    """
    data, duration_ms = gif_bytes(movie, fps=fps)
    atomic_write_bytes(path, data)
    return duration_ms


__all__ += ["gif_bytes", "write_gif"]
