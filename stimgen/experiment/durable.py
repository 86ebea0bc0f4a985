"""Making a finished set durable with one filesystem-level sync, not one fsync per file.

Before a set is renamed into place, everything written under its temporary folder must be
on disk, or a power cut right after the rename could leave a set whose files are empty.
An fsync per file costs a disk flush each (hundreds of files: seconds). One ``syncfs(2)``
of the folder's filesystem (Linux) flushes them all at once; elsewhere ``sync(2)`` does
the same for every filesystem, and where neither exists each file is synced.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
from pathlib import Path


def _syncfs(fd: int) -> bool:
    """``syncfs(fd)`` through the C library; False where it is not available or fails."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)  # the C library of this process
        fn = libc.syncfs
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int]
    return fn(fd) == 0


def sync_tree(root: str | os.PathLike) -> None:
    """Make every file and folder written under ``root`` durable.

    Parameters
    ----------
    root : path
        A folder; its filesystem is synced once (Linux ``syncfs``), or all filesystems
        (``os.sync``), or, where neither exists, each file and folder under it.
    """
    root = Path(root)
    fd = os.open(root, os.O_RDONLY)
    try:
        if _syncfs(fd):
            return
    finally:
        os.close(fd)
    if hasattr(os, "sync"):
        os.sync()
        return
    for dirpath, _, names in os.walk(root):  # pragma: no cover - Windows
        for name in names:
            with open(os.path.join(dirpath, name), "rb+") as fh:
                os.fsync(fh.fileno())


def sync_dir_entry(folder: str | os.PathLike) -> None:
    """fsync a folder itself, so a rename inside it is durable (POSIX; no-op elsewhere)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
