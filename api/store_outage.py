"""What a route answers when a store it needs cannot be reached: 503 with `Retry-After`,
the same way for the job store, the profile store and the accounts' webhook secrets."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from errors import ServiceUnavailable

__all__ = ["STORE_RETRY_AFTER_S", "store_outage_as_503"]

logger = logging.getLogger(__name__)

STORE_RETRY_AFTER_S = 5
"""A store outage is short (a Redis restart, a busy SQLite file): retry soon."""


@contextmanager
def store_outage_as_503(unavailable: type[Exception], detail: str) -> Iterator[None]:
    """Turn `unavailable` raised inside the block into a 503 saying `detail`; the cause is
    logged, never shown to the client."""
    try:
        yield
    except unavailable as exc:
        logger.warning("%s (%s)", detail, exc)
        raise ServiceUnavailable(
            detail, headers={"Retry-After": str(STORE_RETRY_AFTER_S)}
        ) from None
