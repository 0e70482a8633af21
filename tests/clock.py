"""A settable clock for stores and the accounts layer."""

from __future__ import annotations


class FakeClock:
    """Seconds since the epoch, moved only by the test."""

    def __init__(self, now: float = 1_764_000_000.0) -> None:  # 2025-11-24T16:00:00Z
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
