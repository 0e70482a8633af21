"""`UploadSlots`: how many requests one HTTP worker holds in memory at once.

Every route that reads an upload (remove-watermark, detect, jobs, batches, watermark
profiles) takes a slot from the same `UploadSlots` for as long as it holds the upload. Past
`IOPAINT_MAX_PENDING_REQUESTS`, a request is told to come back (503 with `Retry-After`)
instead of waiting behind minutes of model work, and the memory uploads take stays bounded
however the traffic is mixed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from errors import ServiceUnavailable

__all__ = ["AT_CAPACITY", "CAPACITY_RETRY_AFTER_S", "UploadSlots"]

AT_CAPACITY = "Server is at capacity, retry later"
CAPACITY_RETRY_AFTER_S = 5


class UploadSlots:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0

    @contextmanager
    def hold(self, *, also_refuse: bool = False) -> Iterator[None]:
        """Hold a slot for the block; 503 when none is free (or when `also_refuse`, a
        route's own bound, says so)."""
        if also_refuse or self.held >= self.limit:
            raise ServiceUnavailable(
                AT_CAPACITY, headers={"Retry-After": str(CAPACITY_RETRY_AFTER_S)}
            )
        self.held += 1
        try:
            yield
        finally:
            self.held -= 1
