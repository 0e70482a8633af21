"""A one-line progress bar on a terminal (no dependency); silent anywhere else."""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

BAR_WIDTH = 24
REDRAW_EVERY_S = 0.1


class ProgressBar:
    """``12/20 [############------------] 60% ok 11 failed 1 1m02s``, redrawn in place."""

    def __init__(
        self, total: int, *, enabled: bool | None = None, stream: TextIO | None = None
    ) -> None:
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = _is_terminal(self.stream) if enabled is None else enabled
        self.ok = 0
        self.failed = 0
        self.started = time.monotonic()
        self._drawn_at = 0.0
        self._lock = threading.Lock()
        self._draw(force=True)

    def advance(self, ok: bool) -> None:
        with self._lock:
            if ok:
                self.ok += 1
            else:
                self.failed += 1
            self._draw(force=self.ok + self.failed == self.total)

    def close(self) -> None:
        with self._lock:
            if self.enabled:
                self._draw(force=True)
                self.stream.write("\n")
                self.stream.flush()
                self.enabled = False

    def _draw(self, *, force: bool) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._drawn_at < REDRAW_EVERY_S:
            return
        self._drawn_at = now
        done = self.ok + self.failed
        share = done / self.total if self.total else 1.0
        filled = round(BAR_WIDTH * share)
        elapsed = int(now - self.started)
        line = (
            f"\r{done}/{self.total} [{'#' * filled}{'-' * (BAR_WIDTH - filled)}] "
            f"{share:4.0%} ok {self.ok} failed {self.failed} {elapsed // 60}m{elapsed % 60:02d}s"
        )
        self.stream.write(line)
        self.stream.flush()


def _is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False
