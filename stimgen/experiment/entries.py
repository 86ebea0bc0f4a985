"""Stimulus entries streamed to disk, and read back one at a time.

A run writes each stimulus' manifest entry as one line of JSON (JSON Lines) the moment it
arrives, in index order, so no process ever holds all entries. Sets of up to
:data:`INLINE_MAX_STIMULI` stimuli then list their entries inside ``manifest.json`` (one
file to read); larger sets keep ``entries.jsonl`` beside a small ``manifest.json`` that
records its name, line count and sha256 (manifest version 2). :class:`Entries` reads such a
file lazily: iteration parses one line at a time (memory stays flat however large the set),
indexing finds a line through an index of byte offsets built on first use.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, overload

import numpy as np

#: Name of the entries file of a large set, beside manifest.json.
ENTRIES_FILE = "entries.jsonl"
#: Sets with more stimuli than this keep their entries in ENTRIES_FILE instead of manifest.json.
INLINE_MAX_STIMULI = 1000


def entry_line(entry: dict[str, Any]) -> bytes:
    """One entry as a line of compact JSON (non-finite floats as null), newline-terminated."""
    from .._json import jsonable

    return (json.dumps(jsonable(entry), separators=(",", ":")) + "\n").encode()


class EntryWriter:
    """Append entries to a JSON Lines file, hashing the bytes as they are written.

    No fsync per line: the run syncs the whole set once before renaming it into place.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._fh = open(self.path, "wb")  # noqa: SIM115 - closed by close()
        self._sha = hashlib.sha256()
        self.n = 0

    def write(self, entry: dict[str, Any]) -> None:
        if entry.get("index") != self.n:
            raise RuntimeError(f"entries must arrive in index order: expected {self.n}, got {entry.get('index')}")
        line = entry_line(entry)
        self._fh.write(line)
        self._sha.update(line)
        self.n += 1

    def close(self) -> str:
        """Close the file; its sha256 (hex)."""
        self._fh.close()
        return self._sha.hexdigest()


class Entries(Sequence):
    """The entries of a set, read from its JSON Lines file on demand.

    Behaves like a read-only list of dicts (``len``, iteration, ``[i]``, ``[a:b]``,
    ``== list``) without loading the file: iterating parses one line at a time.

    Parameters
    ----------
    path : path
        The ``entries.jsonl`` file.
    check : callable, optional
        Called as ``check(i, entry)`` on every entry parsed; raises ValueError for a bad one.
    """

    def __init__(self, path: str | os.PathLike, check: Callable[[int, Any], None] | None = None) -> None:
        self.path = Path(path)
        self._check = check
        self._offsets: np.ndarray | None = None
        self._n: int | None = None

    def _parse(self, i: int, line: bytes) -> dict[str, Any]:
        try:
            e = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"{self.path}: line {i + 1} is not valid JSON ({getattr(exc, 'msg', exc)}); the set's entries are damaged") from None
        if self._check is not None:
            self._check(i, e)
        return e

    def __iter__(self) -> Iterator[dict[str, Any]]:
        with open(self.path, "rb") as fh:
            for i, line in enumerate(fh):
                yield self._parse(i, line)

    def __len__(self) -> int:
        if self._n is None:
            n = 0
            with open(self.path, "rb") as fh:
                while block := fh.read(1 << 20):
                    n += block.count(b"\n")
            self._n = n
        return self._n

    def _index(self) -> np.ndarray:
        if self._offsets is None:
            starts = [0]
            with open(self.path, "rb") as fh:
                for line in fh:
                    starts.append(starts[-1] + len(line))
            self._offsets = np.asarray(starts, dtype=np.int64)
            self._n = len(starts) - 1
        return self._offsets

    @overload
    def __getitem__(self, i: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, i: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, i: int | slice) -> Any:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        n = len(self)
        if isinstance(i, bool) or not isinstance(i, int | np.integer):
            raise TypeError(f"entry indices must be integers or slices, not {type(i).__name__}")
        j = int(i) + n if i < 0 else int(i)
        if not 0 <= j < n:
            raise IndexError(f"entry index {i} out of range for {n} entries")
        off = self._index()
        with open(self.path, "rb") as fh:
            fh.seek(int(off[j]))
            return self._parse(j, fh.read(int(off[j + 1] - off[j])))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str | bytes):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=False))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Entries({str(self.path)!r}, n={len(self)})"

