"""Reading and writing images and arrays, hashing, and safe, atomic outputs.

Conventions
-----------
* :func:`read_image` reads every PNG and TIFF bit depth and colour type exactly and never
  rescales by dtype: 16-bit samples come back as uint16, a ``.npy`` file as stored; what
  it cannot read exactly it refuses. Scaling to float is the caller's explicit choice
  (e.g. ``scale=1/65535`` in :func:`stimgen.dataset_stats`).
* Palette images are expanded to RGB(A); the alpha channel is dropped unless
  ``keep_alpha=True``.
* Every file that must not be seen half-written goes through :func:`atomic_write_bytes`
  (write to a temporary sibling, fsync, rename), :func:`atomic_files` (several files of
  one folder, replaced together or not at all) or :func:`atomic_directory`.
* A user's files are never replaced unless checked and allowed: the final renames cannot
  replace what appeared meanwhile (:class:`OutputConflictError`), ``force`` replaces only
  outputs whose files stimgen's own manifest or record lists (:func:`check_replaceable`),
  and nothing that is not a regular file is ever replaced. Outputs get the permissions
  of the umask, like ``open()`` and ``mkdir``. Temporary folders name their owning process
  and are removed by a later run once that process has exited
  (:func:`clean_stale_partials`).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import secrets
import shutil
import stat
import sys
from collections.abc import Collection, Iterable, Iterator, Sequence
from datetime import datetime
from io import BytesIO
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from . import _procs

__all__ = [
    "BandCounts",
    "IMAGE_SUFFIXES",
    "OUTPUT_MARKERS",
    "OutputConflictError",
    "OutputExistsError",
    "REGENERATED_KIND",
    "atomic_directory",
    "atomic_files",
    "atomic_write_bytes",
    "check_output_file",
    "check_replaceable",
    "clean_stale_partials",
    "is_noise_record",
    "is_stimulus_manifest",
    "noise_record_files",
    "stimulus_set_of",
    "png_bytes",
    "read_band_counts",
    "read_image",
    "sha256_bytes",
    "sha256_file",
    "write_png",
]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif", ".webp", ".ppm", ".pgm")


# Pillow modes with 8-bit samples, and the rawmodes (file layouts) Pillow reads into them
_EIGHT_BIT_MODES = frozenset({"1", "L", "P", "LA", "PA", "La", "RGB", "RGBA", "RGBa", "RGBX",
                              "CMYK", "YCbCr", "LAB", "HSV"})
# colour models that would need a colour-managed conversion to become RGB: refused
_CONVERTED_MODES = frozenset({"CMYK", "YCbCr", "LAB", "HSV"})
#: modes whose decoded bands are exactly the uint8 channels read_image returns: counted by
#: the decoder's histogram in read_band_counts
_COUNTED_MODES = frozenset({"L", "LA", "RGB", "RGBA"})
# byte of a 16-bit sample that a rawmode's unpacker keeps: ...;16B keeps the first (the
# high byte of big-endian data), ...;16L the second; swapping the letter keeps the other
_OTHER_BYTE = {"B": "L", "L": "B", "N": "B" if sys.byteorder == "little" else "L"}


def _rawmode(tile: Any) -> str:
    args = tile[3]
    return args[0] if isinstance(args, tuple) else args


def _with_rawmode(tile: Any, rawmode: str) -> Any:
    args = tile[3]
    new = (rawmode, *args[1:]) if isinstance(args, tuple) else rawmode
    if hasattr(tile, "_replace"):  # Pillow >= 11: a named tuple whose fields decoders read
        return tile._replace(args=new)
    return (tile[0], tile[1], tile[2], new)


def _sample_bits(rawmode: str) -> int:
    """Bits per stored sample that a Pillow rawmode names (8 when it names none)."""
    m = re.search(r";(\d+)", rawmode)
    return int(m.group(1)) if m else 8


def _decode_high_low(p: Path, tiles: list, *, swap_last: bool) -> np.ndarray:
    """Decode 16-bit samples that Pillow would cut to their high byte, exactly.

    The file is decoded twice by Pillow's own decoder (decompression, PNG unfiltering and
    interlacing included, which depend only on the rawmode's bits per pixel): once as
    usual (the high bytes), once with the rawmode that keeps the other byte of every
    sample. ``swap_last`` is False for PNG gray+alpha, decoded once as raw RGBA bytes.
    """
    from PIL import Image

    halves = []
    for keep_other in ((False, True) if swap_last else (True,)):
        with Image.open(p) as im:
            if keep_other:
                new = []
                for t in im.tile:
                    raw = _rawmode(t)
                    other = raw[:-1] + _OTHER_BYTE[raw[-1]] if swap_last else "RGBA"
                    new.append(_with_rawmode(t, other))
                im.tile = new  # type: ignore[assignment]
            im.load()
            halves.append(np.asarray(im))
    if not swap_last:  # gray+alpha: bytes (gray hi, gray lo, alpha hi, alpha lo)
        raw8 = halves[0].astype(np.uint16)
        return raw8[..., 0::2] << 8 | raw8[..., 1::2]
    high, low = (h.astype(np.uint16) for h in halves)
    if high.shape != low.shape:
        raise ValueError("the two decodings of its 16-bit samples disagree in shape")
    return high << 8 | low


class BandCounts(NamedTuple):
    """Per-channel value counts of an 8-bit image, as :func:`read_image` would return it.

    Attributes
    ----------
    counts : ndarray, int64, shape (C, 256)
        ``counts[c, k]``: the number of pixels whose channel ``c`` holds the value ``k``
        (the alpha channel is left out unless ``keep_alpha``).
    shape : tuple of int
        The shape of the array :func:`read_image` returns: ``(H, W)`` or ``(H, W, C)``.
    """

    counts: np.ndarray
    shape: tuple[int, ...]


def read_image(path: str | os.PathLike, *, keep_alpha: bool = False) -> np.ndarray:
    """Read an image file or a ``.npy`` array exactly, without rescaling.

    Every PNG bit depth and colour type is read exactly: gray (1, 2, 4, 8, 16 bits), gray
    with alpha (8, 16), RGB (8, 16), RGBA (8, 16) and palette (1, 2, 4, 8 bits). TIFF:
    bilevel, 8-bit gray/RGB/RGBA/palette, 16-bit gray, RGB and RGBA, 32-bit integer and
    float gray. A file whose samples cannot be read exactly is refused, never truncated.

    * 16-bit samples come back as uint16 with their stored values (0..65535).
    * 1, 2 and 4-bit gray come back as uint8 with the exact full-scale mapping of the PNG
      specification, ``v * 255 / (2**bits - 1)`` (x255, x85, x17), so every uint8 image
      has the full scale 255; bilevel TIFF likewise as 0 and 255.
    * Palette images become RGB (uint8, the palette is 8-bit), RGBA when the palette has
      transparency and ``keep_alpha`` is true.
    * Alpha: an alpha channel (gray+alpha, RGBA, palette transparency) is dropped unless
      ``keep_alpha=True``; then it is the last channel, with the colour's dtype. A tRNS
      colour key on a gray or RGB PNG is not an alpha channel and is ignored.
    * Multi-frame files (GIF, APNG, multi-page TIFF): the first frame.

    Parameters
    ----------
    path : str or path-like
        A ``.npy`` file, or an image (PNG, TIFF, JPEG, BMP, GIF, WebP, PPM/PGM ...).
    keep_alpha : bool
        Keep the alpha channel (default: drop it).

    Returns
    -------
    ndarray
        ``(H, W)`` for gray, ``(H, W, C)`` channel-last otherwise (C = 3 for RGB; with
        ``keep_alpha`` 2 for gray+alpha, 4 for RGBA); dtype as stored in native byte
        order: uint8, uint16, int32 or float32 for images.

    Raises
    ------
    ValueError
        If the file cannot be decoded, or not exactly (e.g. 16-bit gray+alpha TIFF,
        CMYK, 64-bit float TIFF), or is not a regular file (a folder, FIFO, socket or
        device is refused before it is opened); the message names the path and the reason.
    FileNotFoundError
        If the file does not exist.
    """
    arr = _read(path, keep_alpha=keep_alpha, counts=False)
    assert isinstance(arr, np.ndarray)
    return arr


def read_band_counts(path: str | os.PathLike, *, keep_alpha: bool = False) -> np.ndarray | BandCounts:
    """:func:`read_image`, but the value counts of each channel for 8-bit images.

    Files that :func:`read_image` returns as 8-bit gray or colour images (8-bit or lower
    gray, RGB, RGBA, gray+alpha, palette and bilevel images) come back as
    :class:`BandCounts`, counted by the decoder's own histogram without an array copy of
    the pixels; every other file comes back as :func:`read_image`'s array. The counts are
    exactly those of that array (the same values, validation and errors).
    """
    return _read(path, keep_alpha=keep_alpha, counts=True)


def _read(path: str | os.PathLike, *, keep_alpha: bool, counts: bool) -> np.ndarray | BandCounts:
    """:func:`read_image` (``counts=False``) or :func:`read_band_counts` (``counts=True``)."""
    p = Path(path)
    try:
        st = p.stat()  # follows symlinks: a link to a regular file is read
    except (FileNotFoundError, NotADirectoryError):
        raise FileNotFoundError(f"no such file: {p}") from None
    except OSError as exc:  # e.g. permission denied on a parent folder, a symlink loop
        raise ValueError(f"cannot read {p}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):  # opening a FIFO or a device would block or never end
        raise ValueError(f"{p} is {_describe(st)}, not a regular file; give an image or .npy file")
    if p.suffix.lower() == ".npy":
        try:
            return np.load(p, allow_pickle=False)
        except Exception as exc:  # noqa: BLE001 - re-raised with the path
            raise ValueError(f"cannot read array file {p}: {exc}") from exc
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(p) as opened:
            im: Image.Image = opened
            mode, fmt = im.mode, im.format
            tiles = list(getattr(im, "tile", None) or [])
            bits = max((_sample_bits(_rawmode(t)) for t in tiles), default=8)
            sample_format: tuple = ()
            planar = 1
            if fmt == "TIFF":  # the file's own BitsPerSample: rawmodes may not say (planar files)
                tags = getattr(im, "tag_v2", {})
                stored = tags.get(258) or (8,)
                sf = tags.get(339) or ()
                sample_format = sf if isinstance(sf, tuple) else (sf,)
                planar = int(tags.get(284) or 1)  # 2: one plane per channel
                bits = max(bits, *(int(b) for b in (stored if isinstance(stored, tuple) else (stored,))))
            alpha = mode in ("LA", "PA", "RGBA", "La", "RGBa")
            if mode in _CONVERTED_MODES:
                raise _Inexact(f"{mode} images need a colour-managed conversion to RGB; "
                               "convert the file to RGB first")
            if mode in ("La", "RGBa"):
                raise _Inexact(f"premultiplied alpha ({mode}) cannot be undone exactly")
            pnm_max = _pnm_maxval(fmt, tiles)
            if pnm_max is not None and pnm_max not in (255, 65535):
                raise _Inexact(f"its maxval {pnm_max} is neither 255 nor 65535, so its samples "
                               "would be rescaled; convert it to an 8 or 16-bit PNG")
            if pnm_max == 65535 and mode == "RGB":  # 16-bit PPM (e.g. from raw converters)
                if tiles[0][0] != "ppm":
                    raise _Inexact("16-bit plain-text (P3) RGB is not supported; save it as "
                                   "binary (P6) or as a 16-bit PNG")
                w, h = im.size
                with open(p, "rb") as f:
                    f.seek(tiles[0][2])
                    raw = f.read(h * w * 6)
                if len(raw) != h * w * 6:
                    raise _Inexact(f"the file is truncated ({len(raw)} of {h * w * 6} bytes)")
                arr = np.frombuffer(raw, ">u2").reshape(h, w, 3).astype(np.uint16)
            elif mode in _EIGHT_BIT_MODES and bits > 8:
                raws = {_rawmode(t) for t in tiles}
                if fmt == "PNG" and raws == {"LA;16B"}:
                    arr = _decode_high_low(p, tiles, swap_last=False)
                elif mode in ("RGB", "RGBA") and planar != 2 and all(
                        re.fullmatch(r"RGBA?;16[BLN]", r) for r in raws):
                    arr = _decode_high_low(p, tiles, swap_last=True)
                else:
                    hint = "; save it with interleaved samples" if planar == 2 else ""
                    raise _Inexact(f"{bits}-bit samples in a {fmt} file of mode {mode} "
                                   f"(layout {', '.join(sorted(raws))}"
                                   f"{', one plane per channel' if planar == 2 else ''}) "
                                   f"would be cut to 8 bits{hint}")
            else:
                if mode == "F" and bits > 32:
                    raise _Inexact(f"{bits}-bit float samples would be rounded to float32")
                im.load()
                if mode in ("P", "PA"):
                    alpha = "transparency" in im.info or mode == "PA"
                    im = im.convert("RGBA" if alpha else "RGB")
                elif mode == "1":
                    im = im.convert("L")  # exact: 0 and 255
                if counts and im.mode in _COUNTED_MODES:
                    hist = np.asarray(im.histogram(), dtype=np.int64).reshape(-1, 256)
                    if alpha and not keep_alpha:
                        hist = hist[:-1]
                    h, w = im.size[1], im.size[0]
                    return BandCounts(hist, (h, w) if hist.shape[0] == 1 else (h, w, hist.shape[0]))
                arr = np.asarray(im)
                if pnm_max == 65535 and arr.dtype.kind == "i":  # 16-bit PGM held as int32
                    arr = arr.astype(np.uint16)
    except _Inexact as exc:
        raise ValueError(f"cannot read image {p} exactly: {exc}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, MemoryError,
            Image.DecompressionBombError) as exc:
        raise ValueError(f"cannot decode image {p}: {exc}") from exc
    if mode == "I" and bits == 16 and arr.dtype.kind == "i":  # 16-bit gray held as int32
        signed = any("S" in _rawmode(t) for t in tiles)
        arr = arr.astype(np.int16 if signed else np.uint16)
    if fmt == "TIFF" and mode == "I" and bits == 32 and arr.dtype == np.int32 and all(
            int(f) == 1 for f in (sample_format or (1,))):  # unsigned 32-bit, held as int32
        arr = arr.view(np.uint32)
    if arr.dtype.byteorder not in ("=", "|"):
        arr = arr.astype(arr.dtype.newbyteorder("="))
    if alpha and arr.ndim == 3 and not keep_alpha:
        arr = arr[..., :-1]
        if arr.shape[-1] == 1:
            arr = arr[..., 0]
    return np.ascontiguousarray(arr)


def _pnm_maxval(fmt: str | None, tiles: list) -> int | None:
    """The maxval of a PNM file that Pillow rescales by (None for other files)."""
    if fmt != "PPM" or not tiles:
        return None
    args = tiles[0][3]
    if isinstance(args, tuple) and len(args) > 1 and isinstance(args[1], int):
        return int(args[1])
    return None


class _Inexact(Exception):
    """A file Pillow decodes, but not exactly."""


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


# == safe outputs ========================================================================
# Every temporary thing stimgen makes beside a user's files is named
#   .<name>.<machine>-<pid>-<start>.<random>.<kind>      (kind: partial or tmp)
# so that a later run can tell whose it is and whether its owner has exited
# (stimgen._procs.owner_gone), and remove it only then. A ".partial" work folder holds
# "plan.json" (what it is for), "new/" (what is being written) and, while a commit replaces
# old files, "old/" (the old files moved aside) and "journal.json".

_TEMP_RE = re.compile(
    r"^\.(?P<name>.*)\.(?P<machine>[0-9a-f]{8})-(?P<pid>\d+)-(?P<start>\d+)"
    r"\.(?P<rand>[a-z0-9]{8})\.(?P<kind>partial|tmp)$", re.DOTALL
)
_AT_FDCWD = -100
_RENAME_NOREPLACE = 1
_RENAME_EXCHANGE = 2

#: Files whose presence marks a directory as a stimgen output that ``force`` may replace:
#: a stimulus set's manifest, a noise record, a regenerated stimulus's record, an export's record.
OUTPUT_MARKERS = ("manifest.json", "record.json", "regenerated.json", "export.json")
#: Files of a stimulus set that stimgen writes besides those its manifest lists (and the
#: entries file that a large set's manifest names, ``entries.jsonl``).
SET_OWN_FILES = ("manifest.json", "experiment.yaml", "report.html")
#: Figure files stimgen writes into a stimulus set's ``figures/`` folder.
FIGURE_SUFFIXES = (".png", ".svg", ".pdf", ".gif", ".html")


class OutputExistsError(FileExistsError):
    """An output path exists and may not be replaced.

    ``str(exc)`` speaks to Python callers (``force=True``); ``exc.cli_message`` says the
    same for the command line (``--force``).
    """

    def __init__(self, template: str, **fields: Any) -> None:
        def fill(force: str) -> str:  # not str.format: paths may hold braces
            text = template.replace("{force}", force)
            for key, value in fields.items():
                text = text.replace("{" + key + "}", str(value))
            return text

        self.cli_message = fill("use --force to replace it")
        super().__init__(fill("pass force=True to replace it"))


class OutputConflictError(OutputExistsError):
    """The output path changed while the output was being written; nothing was replaced.

    ``kept`` is where this run's own, complete output was kept (None if not kept).
    """

    def __init__(self, template: str, kept: Path | None = None, **fields: Any) -> None:
        self.kept = kept
        super().__init__(template, **fields)


def _describe(st: os.stat_result) -> str:
    kinds = ((stat.S_ISREG, "a regular file"), (stat.S_ISDIR, "a directory"), (stat.S_ISLNK, "a symbolic link"),
             (stat.S_ISFIFO, "a named pipe (fifo)"), (stat.S_ISSOCK, "a socket"),
             (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))
    for test, name in kinds:
        if test(st.st_mode):
            return name
    return "not a regular file"


def _ident(st: os.stat_result) -> tuple[int, int]:
    return (st.st_dev, st.st_ino)


def _temp_name(name: str, kind: str) -> str:
    """A hidden sibling name for ``name`` that records the owner (see :data:`_TEMP_RE`)."""
    short = name.encode()[:100].decode("utf-8", "ignore")
    rand = "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(8))
    return f".{short}.{_procs.owner_tag()}.{rand}.{kind}"


_libc: Any = None


def _renameat2(src: Path, dst: Path, flags: int) -> bool:
    """``renameat2(src, dst, flags)`` (Linux); False where the system or file system lacks it."""
    global _libc
    if not sys.platform.startswith("linux"):
        return False
    if _libc is None:
        try:
            import ctypes

            _libc = ctypes.CDLL(None, use_errno=True)
            _libc.renameat2  # noqa: B018 - glibc >= 2.28
        except (OSError, AttributeError):
            _libc = False
    if _libc is False:
        return False
    import ctypes

    if _libc.renameat2(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), flags) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False  # e.g. a network file system without the flag
    raise OSError(err, os.strerror(err), str(dst))


def _rename_noreplace(src: Path, dst: Path) -> None:
    """Rename ``src`` to ``dst`` only if ``dst`` does not exist, atomically.

    Raises FileExistsError if it does. Linux: ``renameat2(RENAME_NOREPLACE)``. Elsewhere
    (or where the file system lacks it): a file is hard-linked then unlinked; a directory
    claims ``dst`` with ``mkdir`` (which fails if it exists) and is renamed onto that empty
    claim, which fails if anything was put into it meanwhile.
    """
    if _renameat2(src, dst, _RENAME_NOREPLACE):
        return
    if os.name == "nt":  # os.rename never replaces there
        os.rename(src, dst)
        return
    if not src.is_dir() or src.is_symlink():
        try:
            os.link(src, dst, follow_symlinks=False)
        except FileExistsError:
            raise
        except OSError:  # no hard links on this file system: claim the name, then rename
            fd = os.open(dst, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            claim = os.fstat(fd)
            os.close(fd)
            if _ident(os.lstat(dst)) != _ident(claim):
                raise FileExistsError(errno.EEXIST, "appeared while writing", str(dst)) from None
            os.rename(src, dst)
            return
        os.unlink(src)
        return
    os.mkdir(dst, 0o700)  # FileExistsError if it exists
    try:
        os.rename(src, dst)  # fails (ENOTEMPTY/EEXIST) if the claim is no longer empty
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.rmdir(dst)
        if exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR):
            raise FileExistsError(errno.EEXIST, "appeared while writing", str(dst)) from None
        raise


def _mkdir_work(parent: Path, name: str, plan: dict[str, Any]) -> Path:
    """Make a ``.partial`` work folder (mode from the umask) holding ``plan.json`` and ``new/``."""
    for _ in range(100):
        work = parent / _temp_name(name, "partial")
        try:
            os.mkdir(work, 0o777)
            break
        except FileExistsError:
            continue
    else:  # pragma: no cover - 100 random collisions
        raise FileExistsError(f"cannot make a temporary folder in {parent}")
    (work / "plan.json").write_text(json.dumps(plan))
    os.mkdir(work / "new", 0o777)
    return work


def _keep_conflicted(src: Path, final: Path, *, tag: str = "new") -> Path | None:
    """Move a finished output that could not be placed at ``final`` to a visible sibling."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    for i in range(1, 100):
        kept = final.with_name(f"{final.name}.stimgen-{tag}-{stamp}{'' if i == 1 else f'-{i}'}")
        try:
            _rename_noreplace(src, kept)
            return kept
        except FileExistsError:
            continue
        except OSError:
            return None
    return None  # pragma: no cover


def _rmtree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def clean_stale_partials(parent: str | os.PathLike) -> list[Path]:
    """Remove the temporary outputs of stimgen runs in ``parent`` whose owner has exited.

    Only names stimgen makes (``.NAME.<machine>-<pid>-<start>.<random>.partial`` or
    ``.tmp``) are considered, and only those whose owning process has certainly exited on
    this machine (PID and start time; see :func:`stimgen._procs.owner_gone`). A run that
    was killed while replacing old files is rolled back: the old files return to their
    places. Called by every :func:`atomic_directory` and :func:`atomic_files`.

    Returns
    -------
    list of Path
        What was removed.
    """
    base = Path(parent)
    removed: list[Path] = []
    try:
        entries = list(os.scandir(base))
    except OSError:
        return removed
    for entry in entries:
        m = _TEMP_RE.match(entry.name)
        if m is None or not _procs.owner_gone(m["machine"], int(m["pid"]), int(m["start"])):
            continue
        path = base / entry.name
        try:
            if m["kind"] == "tmp":
                if entry.is_file(follow_symlinks=False):
                    os.unlink(path)
                    removed.append(path)
            elif entry.is_dir(follow_symlinks=False):
                _roll_back(path, base)
                _rmtree(path)
                removed.append(path)
        except OSError:
            continue
    return removed


def _roll_back(work: Path, parent: Path) -> None:
    """Undo an interrupted commit recorded in ``work`` (a dead run's work folder)."""
    if (work / "committed").exists():
        return
    try:
        plan = json.loads((work / "plan.json").read_text())
        journal = json.loads((work / "journal.json").read_text()) if (work / "journal.json").is_file() else {}
    except (OSError, ValueError):
        return
    if plan.get("kind") == "directory" and "old" in journal:
        # killed after exchanging the folders but before checking the old one: swap back
        with contextlib.suppress(OSError):
            final = parent / plan["target"]
            if (list(_ident(os.lstat(work / "new"))) == journal["old"]
                    and list(_ident(os.lstat(final))) == journal["new"]):
                _renameat2(work / "new", final, _RENAME_EXCHANGE)
    if not (work / "old").is_dir():
        return
    for name, ident in journal.get("new", {}).items():  # remove what the dead run installed
        target = parent / name
        with contextlib.suppress(OSError):
            if list(_ident(os.lstat(target))) == ident:
                os.unlink(target)
    if plan.get("kind") == "directory":
        with contextlib.suppress(OSError):
            _rename_noreplace(work / "old", parent / plan["target"])
        return
    for old in sorted((work / "old").iterdir()):
        with contextlib.suppress(OSError):
            _rename_noreplace(old, parent / old.name)


# -- what stimgen owns ---------------------------------------------------------------------
def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"{path} cannot be read as JSON ({exc})") from None


def _relative(rel: Any, where: Path) -> str:
    if not isinstance(rel, str) or not rel or Path(rel).is_absolute() or ".." in Path(rel).parts:
        raise ValueError(f"{where} lists {rel!r}, which is not a path inside its folder")
    return Path(rel).as_posix()


def is_stimulus_manifest(obj: Any) -> bool:
    """True if ``obj`` (parsed JSON) has the structure of a stimgen stimulus-set manifest.

    Its entries are listed (``stimuli``) or, for a large set, kept in a file beside it
    (``entries``: ``{"file": "entries.jsonl", ...}``).
    """
    listed = isinstance(obj, dict) and (
        isinstance(obj.get("stimuli"), list)
        or (isinstance(obj.get("entries"), dict) and isinstance(obj["entries"].get("file"), str))
    )
    return bool(listed and isinstance(obj.get("experiment"), dict) and "manifest_version" in obj)


def _streamed_entries(manifest_path: Path, rel: Any) -> Iterator[Any]:
    """The entries of a large set, one line of its entries file at a time."""
    path = manifest_path.parent / _relative(rel, manifest_path)
    try:
        with open(path, "rb") as fh:
            for i, line in enumerate(fh):
                try:
                    yield json.loads(line)
                except (UnicodeDecodeError, ValueError):
                    raise ValueError(f"{path}: line {i + 1} is not a JSON entry") from None
    except OSError as exc:
        raise ValueError(f"the entries file {path} of {manifest_path} cannot be read ({exc.strerror or exc})") from None


def is_noise_record(obj: Any) -> bool:
    """True if ``obj`` (parsed JSON) is a record written by ``stimgen noise``."""
    return (isinstance(obj, dict) and isinstance(obj.get("value_convention"), str)
            and isinstance(obj.get("seed"), dict) and isinstance(obj.get("n"), int)
            and isinstance(obj.get("shape_px"), list))


def _set_files(manifest_path: Path) -> set[str]:
    m = _load_json(manifest_path)
    if not is_stimulus_manifest(m):
        raise ValueError(f"{manifest_path} is not a stimgen manifest")
    files = set(SET_OWN_FILES)
    entries = m["stimuli"] if isinstance(m.get("stimuli"), list) else _streamed_entries(manifest_path, m["entries"]["file"])
    if not isinstance(m.get("stimuli"), list):
        files.add(_relative(m["entries"]["file"], manifest_path))
    for e in entries:
        for f in (e.get("files") or [e]) if isinstance(e, dict) else []:
            if isinstance(f, dict) and "file" in f:
                files.add(_relative(f["file"], manifest_path))
    for f in m.get("figures") or []:
        files.add(_relative(f, manifest_path))
    return files


def noise_record_files(record_path: str | os.PathLike, *, layout: str) -> set[str]:
    """Names of the files a ``stimgen noise`` record lists as its own (relative to its folder).

    Parameters
    ----------
    record_path : path
        The record (``DIR/record.json`` or ``FILE.json``).
    layout : {"directory", "file"}
        Which layout of ``stimgen noise --out`` wrote it. Records that list their files
        (``"files"``) are read as listed; older records by their count ``n`` and ``png``.

    Raises
    ------
    ValueError
        If the file is not a stimgen noise record.
    """
    p = Path(record_path)
    rec = _load_json(p)
    if not is_noise_record(rec):
        raise ValueError(f"{p} is not a stimgen noise record")
    if isinstance(rec.get("files"), list):
        return {_relative(f, p) for f in rec["files"]} | {p.name}
    n = rec["n"]
    if layout == "directory":
        names = {f"noise_{i:04d}.npy" for i in range(n)} | {"record.json"}
        if "png" in rec:
            names |= {f"noise_{i:04d}.png" for i in range(n)}
        return names
    names = {f"{p.stem}.npy", p.name}
    if "png" in rec:
        names |= {f"{p.stem}_{i:04d}.png" for i in range(n)}
    return names


def _regenerated_files(record_path: Path) -> set[str]:
    rec = _load_json(record_path)
    if not (isinstance(rec, dict) and rec.get("kind") == REGENERATED_KIND
            and isinstance(rec.get("files"), list)):
        raise ValueError(f"{record_path} is not a stimgen regenerate record")
    return {_relative(f, record_path) for f in rec["files"]} | {record_path.name}


#: ``kind`` of the ``regenerated.json`` record that ``stimgen regenerate --out`` writes.
REGENERATED_KIND = "stimgen regenerated stimulus"
def _export_files(record_path: Path) -> set[str]:
    rec = _load_json(record_path)
    if not (isinstance(rec, dict) and str(rec.get("kind", "")).startswith(EXPORT_KIND)
            and isinstance(rec.get("files"), list)):
        raise ValueError(f"{record_path} is not a stimgen export record")
    return {_relative(f, record_path) for f in rec["files"]} | {record_path.name}


#: ``kind`` (prefix) of the ``export.json`` record that ``stimgen export`` writes.
EXPORT_KIND = "stimgen export"
_OWNED = {
    "manifest.json": ("a stimulus set", _set_files),
    "record.json": ("a noise output", lambda p: noise_record_files(p, layout="directory")),
    "regenerated.json": ("a regenerated stimulus", _regenerated_files),
    "export.json": ("a stimgen export", _export_files),
}


def stimulus_set_of(path: str | os.PathLike) -> Path | None:
    """The stimulus set folder that holds ``path`` (or is it), or None.

    A stimulus set is a folder with a ``manifest.json`` that parses as a stimgen manifest.
    """
    p = Path(os.path.abspath(path))
    for d in (p, *p.parents):
        m = d / "manifest.json"
        if m.is_file():
            with contextlib.suppress(ValueError):
                if is_stimulus_manifest(_load_json(m)):
                    return d
    return None


def _walk_files(root: Path) -> Iterator[str]:
    """Relative POSIX paths of everything but directories under ``root``, sorted, no links followed."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        here = Path(dirpath)
        links = [d for d in dirnames if (here / d).is_symlink()]
        for name in sorted([*filenames, *links]):
            yield (here / name).relative_to(root).as_posix()
        dirnames[:] = [d for d in dirnames if d not in links]


def check_replaceable(path: str | os.PathLike, *, kinds: Collection[str] = OUTPUT_MARKERS) -> tuple[int, int]:
    """Refuse to replace anything but an empty folder or a stimgen output that is all stimgen's.

    A folder may be replaced only if it is empty, or if it holds one of ``kinds`` (a
    stimgen manifest, noise record or regenerate record) that parses as one, and every file
    in it is listed there or is stimgen's own (the manifest, ``experiment.yaml``,
    ``report.html``, figures in ``figures/``). Never the current folder or one of its
    parents, a symbolic link or anything that is not a folder.

    Returns
    -------
    (int, int)
        The folder's identity (device, inode), to check later that the same folder is
        replaced.

    Raises
    ------
    OutputExistsError
        Naming the reason (the first unknown file, when there is one).
    """
    final = Path(path)
    st = os.lstat(final)
    if not stat.S_ISDIR(st.st_mode):
        raise OutputExistsError(f"{final} exists and is {_describe(st)}, not a directory; "
                                "refusing to replace it")
    here = Path.cwd().resolve()
    target = final.resolve()
    if target == here or target in here.parents:
        raise OutputExistsError(
            f"refusing to replace {final}: it is the current directory or one of its parents")
    files = _walk_files(final)
    first = next(files, None)
    if first is None:
        return _ident(st)  # empty (or only empty folders): nothing to lose
    for marker in OUTPUT_MARKERS:
        if not (final / marker).is_file() or (final / marker).is_symlink():
            continue
        what, lister = _OWNED[marker]
        try:
            listed = lister(final / marker)
        except ValueError as exc:
            raise OutputExistsError(f"refusing to replace {final}: {exc}") from None
        if marker not in kinds:
            raise OutputExistsError(f"refusing to replace {final}: it holds {what} "
                                    f"({marker}), not this command's output")
        for rel in (first, *files):
            own_figure = rel.startswith("figures/") and rel.endswith(FIGURE_SUFFIXES) and marker == "manifest.json"
            if rel not in listed and not own_figure:
                raise OutputExistsError(
                    f"refusing to replace {final}: {rel} is not listed in its {marker}; stimgen "
                    "replaces only folders that hold nothing but its own output")
        return _ident(st)
    raise OutputExistsError(
        f"refusing to replace {final}: it is not empty ({first}) and holds no stimgen output "
        f"({', '.join(OUTPUT_MARKERS)}); choose another output")


def _check_parent(final: Path) -> Path:
    parent = final.parent if str(final.parent) else Path(".")
    if not parent.is_dir():
        what = "is not a directory" if parent.exists() else "does not exist"
        raise FileNotFoundError(f"cannot write the output {final}: its parent {parent} {what}")
    if not os.access(parent, os.W_OK):
        raise PermissionError(f"cannot write the output {final}: {parent} is not writable")
    return parent


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, replace: bool = True) -> None:
    """Write ``data`` to ``path`` via a temporary sibling and an atomic rename.

    The file gets the permissions ``open()`` would give a new file (``0o666`` less the
    umask). Anything at ``path`` that is not a regular file (folder, link, fifo, socket,
    device) is refused, never replaced.

    Parameters
    ----------
    replace : bool
        Replace an existing regular file (default). If false, fail with
        :class:`OutputExistsError` when ``path`` exists, also if it appears while writing.
    """
    p = Path(path)
    _refuse_non_regular(p)
    if not replace and os.path.lexists(p):
        raise OutputExistsError("{path} already exists ({force})", path=p)
    tmp = p.with_name(_temp_name(p.name, "tmp"))
    try:
        fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_BINARY", 0), 0o666)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        _refuse_non_regular(p)
        if replace:
            os.replace(tmp, p)
        else:
            try:
                _rename_noreplace(tmp, p)
            except FileExistsError:
                raise OutputExistsError("{path} appeared while it was being written; it was "
                                        "not replaced", path=p) from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _refuse_non_regular(p: Path) -> None:
    try:
        st = os.lstat(p)
    except FileNotFoundError:
        return
    if not stat.S_ISREG(st.st_mode):
        raise OutputExistsError(f"{p} exists and is {_describe(st)}, not a regular file; "
                                "stimgen never replaces it")


def check_output_file(path: str | os.PathLike, *, force: bool = False,
                      inputs: Iterable[str | os.PathLike] = ()) -> Path:
    """Check that a command may write the file ``path``.

    Refused, always: anything at ``path`` that is not a regular file; one of ``inputs``
    (also through another name or a hard link); a path inside a stimulus set (a folder
    with a stimgen manifest). Refused without ``force``: an existing file.

    Returns
    -------
    Path
        ``path``.
    """
    p = Path(path)
    _refuse_non_regular(p)
    if os.path.lexists(p):
        for src in inputs:
            same = False
            with contextlib.suppress(OSError):
                same = os.path.samefile(p, src)
            if same:
                raise OutputExistsError(f"{p} is an input of this command ({src}); "
                                        "refusing to write over it")
    inside = stimulus_set_of(p.parent if str(p.parent) else ".")
    if inside is not None:
        raise OutputExistsError(f"{p} is inside the stimulus set {inside} (it has a stimgen "
                                "manifest); write the output elsewhere")
    if os.path.lexists(p) and not force:
        raise OutputExistsError("{path} already exists ({force})", path=p)
    return p


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike, *, force: bool = False,
                     kinds: Collection[str] = OUTPUT_MARKERS) -> Iterator[Path]:
    """Build a directory in a temporary sibling and rename it into place when complete.

    The final rename never replaces anything that was not checked and allowed: it is an
    atomic rename onto a path that must not exist, or, with ``force``, an atomic exchange
    with the folder that was checked at the start, after which the folder taken out is
    checked again (same folder, still all stimgen's) and swapped back if not.

    Parameters
    ----------
    path : str or path-like
        The final directory. It must not exist unless ``force`` is true.
    force : bool
        Replace an existing directory, after the new one is complete. Only an empty folder
        or a stimgen output whose files are all listed in its manifest or record (see
        :func:`check_replaceable`) is ever replaced; the current directory, its ancestors,
        links and anything that is not a folder never are.
    kinds : collection of str
        Which stimgen outputs ``force`` may replace, by their marker file (default: a
        stimulus set's ``manifest.json``, a noise ``record.json``, ``regenerated.json``).

    Yields
    ------
    Path
        The temporary directory to write into (permissions from the umask, like
        ``mkdir``). On any exception (including KeyboardInterrupt) it is removed and
        ``path`` is left untouched.

    Raises
    ------
    OutputExistsError
        ``path`` exists and ``force`` is false, or it may not be replaced.
    OutputConflictError
        ``path`` appeared or changed while the directory was written. Nothing was
        replaced; the new output is kept in a visible sibling folder named in the
        message and in ``exc.kept``.
    """
    final = Path(path)
    checked: tuple[int, int] | None = None
    if os.path.lexists(final):
        if not force:
            raise OutputExistsError("output directory {path} already exists ({force})", path=final)
        checked = check_replaceable(final, kinds=kinds)
    parent = _check_parent(final)
    clean_stale_partials(parent)
    try:
        work = _mkdir_work(parent, final.name, {"kind": "directory", "target": final.name})
    except OSError as exc:
        raise OSError(f"cannot write the output {final} into {parent}: {exc.strerror or exc}") from None
    new = work / "new"
    try:
        yield new
        with _procs.critical():
            _commit_directory(work, final, checked, kinds)
    except BaseException:
        _rmtree(work)
        raise
    _rmtree(work)


def _conflict(work: Path, final: Path, why: str) -> OutputConflictError:
    kept = _keep_conflicted(work / "new", final)
    where = (f"this run's output is kept in {kept}" if kept is not None
             else "this run's output could not be kept")
    return OutputConflictError(f"{why}; nothing was replaced, and {where}", kept=kept)


def _commit_directory(work: Path, final: Path, checked: tuple[int, int] | None,
                      kinds: Collection[str]) -> None:
    new = work / "new"
    if checked is not None:
        # if this process dies between the exchange and the check of what it took out,
        # clean_stale_partials swaps back (see _roll_back)
        journal = {"old": list(checked), "new": list(_ident(os.lstat(new)))}
        atomic_write_bytes(work / "journal.json", json.dumps(journal).encode())
        exchanged: bool | None
        try:
            exchanged = _renameat2(new, final, _RENAME_EXCHANGE)
        except FileNotFoundError:
            exchanged = None  # the old folder went away meanwhile: a plain install
        if exchanged:  # ``new`` now holds what was at ``final``: the same, still replaceable?
            why = _still_replaceable(new, checked, final, kinds)
            if why is not None:
                _renameat2(new, final, _RENAME_EXCHANGE)  # swap back
                raise _conflict(work, final, why)
            (work / "committed").touch()
            return
        if exchanged is False:  # no exchange here: move the old folder aside, then verify
            old = work / "old"
            with contextlib.suppress(FileNotFoundError):
                os.rename(final, old)
                why = _still_replaceable(old, checked, final, kinds)
                if why is not None:
                    with contextlib.suppress(OSError):
                        _rename_noreplace(old, final)
                    raise _conflict(work, final, why)
    try:
        _rename_noreplace(new, final)
    except FileExistsError:
        why = f"output directory {final} appeared while this output was being written"
        if (work / "old").is_dir():
            kept_old = _keep_conflicted(work / "old", final, tag="old")
            why += f"; the old output it was to replace is in {kept_old or work / 'old'}"
        raise _conflict(work, final, why) from None


def _still_replaceable(old: Path, checked: tuple[int, int], final: Path,
                       kinds: Collection[str]) -> str | None:
    """None if ``old`` is the folder checked at the start and still replaceable, else why not."""
    try:
        if _ident(os.lstat(old)) != checked:
            return f"output directory {final} was replaced by something else while this output was being written"
        check_replaceable(old, kinds=kinds)
    except OutputExistsError as exc:
        return (f"output directory {final} changed while this output was being written: "
                + str(exc).replace(str(old), str(final)))
    except OSError as exc:
        return f"output directory {final} changed while this output was being written ({exc})"
    return None


@contextlib.contextmanager
def atomic_files(targets: Sequence[str | os.PathLike], *,
                 replace: Collection[str | os.PathLike] = (),
                 remove: Collection[str | os.PathLike] = ()) -> Iterator[list[Path]]:
    """Write several files of one folder so that they replace the old ones together or not at all.

    Parameters
    ----------
    targets : sequence of path
        The files to write, all in the same folder; they are put in place in this order
        (put a record that describes the others last).
    replace : collection of path
        Existing files that may be replaced (the caller checked that they are its own).
        Any other existing target is refused.
    remove : collection of path
        Old files of the same output to delete together with the replacement (e.g. PNGs
        of an older, larger output).

    Yields
    ------
    list of Path
        Temporary paths to write, one per target. Written files get the permissions
        ``open()`` gives (the umask).

    Raises
    ------
    OutputExistsError
        A target exists and is not in ``replace``, or exists and is not a regular file.
    OutputConflictError
        A target appeared, or an old file changed, while writing: the old files are put
        back, the new ones are kept in a visible folder named in the message.
    """
    paths = [Path(t) for t in targets]
    if not paths:
        raise ValueError("atomic_files needs at least one target")
    parent = paths[0].parent
    if any(p.parent != parent for p in paths):
        raise ValueError(f"atomic_files targets must share one folder, got {[str(p) for p in paths]}")
    allowed = {Path(p) for p in replace}
    old_files = [p for p in paths if os.path.lexists(p)]
    old_files += [Path(p) for p in remove if os.path.lexists(p) and Path(p) not in old_files]
    idents: dict[str, tuple[int, int]] = {}
    for p in old_files:
        _refuse_non_regular(p)
        if p not in allowed and p in paths:
            raise OutputExistsError("{path} already exists ({force})", path=p)
        if p.parent != parent:
            raise ValueError(f"atomic_files: {p} is not in {parent}")
        idents[p.name] = _ident(os.lstat(p))
    _check_parent(paths[-1])
    clean_stale_partials(parent)
    work = _mkdir_work(parent, paths[-1].name, {"kind": "files", "targets": [p.name for p in paths]})
    staged = [work / "new" / p.name for p in paths]
    try:
        yield staged
        with _procs.critical():
            _commit_files(work, paths, staged, idents)
    except BaseException:
        _rmtree(work)
        raise
    _rmtree(work)


def _commit_files(work: Path, paths: list[Path], staged: list[Path],
                  idents: dict[str, tuple[int, int]]) -> None:
    parent = paths[0].parent
    for s in staged:
        if not s.is_file() or s.is_symlink():
            raise FileNotFoundError(f"{s.name} was not written")
    new_ids = {p.name: list(_ident(os.lstat(s))) for p, s in zip(paths, staged, strict=True)}
    atomic_write_bytes(work / "journal.json", json.dumps({"new": new_ids}).encode())
    os.mkdir(work / "old", 0o700)
    moved: list[str] = []
    installed: list[Path] = []

    def restore() -> None:
        for p in installed:
            with contextlib.suppress(OSError):
                if list(_ident(os.lstat(p))) == new_ids[p.name]:
                    os.rename(p, work / "new" / p.name)
        for name in moved:
            with contextlib.suppress(OSError):
                _rename_noreplace(work / "old" / name, parent / name)

    def undo(why: str) -> OutputConflictError:
        restore()
        return _conflict(work, paths[-1].with_name(paths[-1].stem), why)

    # the old record (the last target) leaves first, so no record describes a mixed set
    order = sorted(idents, key=lambda n: n != paths[-1].name)
    try:
        for name in order:
            os.rename(parent / name, work / "old" / name)
            moved.append(name)
            if _ident(os.lstat(work / "old" / name)) != idents[name]:
                raise undo(f"{parent / name} changed while the output was being written")
        for p, s in zip(paths, staged, strict=True):
            try:
                _rename_noreplace(s, p)
            except FileExistsError:
                raise undo(f"{p} appeared while the output was being written") from None
            installed.append(p)
    except OutputConflictError:
        raise
    except BaseException:
        restore()
        raise
    (work / "committed").touch()


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
