"""A minimal progress bar on stderr, shown only on a terminal.

Used by long-running commands (``stimgen run``, ``stimgen stats``). It draws nothing when
stderr is not a TTY or when disabled, so logs and CI output stay clean.
"""

from __future__ import annotations

import sys
import time
from typing import IO, Any


class Progress:
    """Context manager that draws ``desc [#####-----] k/n  rate/s`` on one line.

    Parameters
    ----------
    total : int
        Number of items expected.
    desc : str
        Label in front of the bar.
    enabled : bool or None
        None (default): draw only if ``stream`` is a terminal.
    stream : file, optional
        Where to draw; default ``sys.stderr``.
    """

    def __init__(
        self, total: int, desc: str = "", *, enabled: bool | None = None, stream: IO[str] | None = None
    ) -> None:
        self.total = max(int(total), 0)
        self.desc = desc
        self.stream = stream if stream is not None else sys.stderr
        if enabled is None:
            enabled = bool(getattr(self.stream, "isatty", lambda: False)())
        self.enabled = enabled
        self.count = 0
        self._start = time.perf_counter()
        self._last_draw = 0.0

    def __enter__(self) -> Progress:
        self._start = time.perf_counter()
        self._draw(force=True)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._draw(force=True)
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()

    def update(self, n: int = 1) -> None:
        """Record ``n`` more finished items and redraw at most 10 times a second."""
        self.count += n
        self._draw()

    def _draw(self, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if not force and now - self._last_draw < 0.1 and self.count < self.total:
            return
        self._last_draw = now
        width = 30
        frac = self.count / self.total if self.total else 1.0
        filled = int(round(width * min(frac, 1.0)))
        rate = self.count / max(now - self._start, 1e-9)
        self.stream.write(
            f"\r{self.desc} [{'#' * filled}{'-' * (width - filled)}] "
            f"{self.count}/{self.total}  {rate:.1f}/s"
        )
        self.stream.flush()
