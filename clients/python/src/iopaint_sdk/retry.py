"""When a failed call is tried again, and how long the client waits before it does.

- 429: wait ``Retry-After`` (the pacer holds every spending request of the client until
  then, not only the refused one). A quota refusal, or any Retry-After beyond what is left
  of the call's ``max_wait``, is raised at once as `RateLimitError`.
- 503 (and 502/504 from a proxy in front): ``Retry-After`` when the server sent one, else
  exponential backoff with jitter.
- Connection errors and timeouts: exponential backoff with jitter.
- Every other status (400, 401, 404, 409, 413, 422, 500, ...): never retried.
- At most ``max_attempts`` attempts per call, and no wait that would end past
  ``max_wait`` seconds after the call began.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from iopaint_sdk.errors import APIError, RateLimitError

RETRIED_STATUSES = frozenset({429, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """How one call retries. ``RetryPolicy(max_attempts=1)`` turns retries off."""

    max_attempts: int = 5
    """Attempts per call, the first included."""
    max_wait: float = 300.0
    """Seconds a call may take, waits included, before its last error is raised."""
    backoff_initial: float = 0.5
    """First backoff, seconds; each further one doubles, up to `backoff_max`."""
    backoff_max: float = 20.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.max_wait < 0 or self.backoff_initial < 0 or self.backoff_max < 0:
            raise ValueError("waits must not be negative")

    def backoff(self, attempt: int) -> float:
        """Wait after failed attempt number `attempt` (1-based): half fixed, half random.

        The fixed half makes the waits grow; the random half keeps clients that failed
        together from all coming back in the same instant.
        """
        ceiling = min(self.backoff_max, self.backoff_initial * 2 ** (attempt - 1))
        return ceiling / 2 + self.rng.uniform(0, ceiling / 2)

    def delay_after_error(self, error: APIError, attempt: int) -> float | None:
        """Seconds to wait before retrying after `error`, or None: do not retry."""
        if error.status_code not in RETRIED_STATUSES or attempt >= self.max_attempts:
            return None
        if isinstance(error, RateLimitError):
            if error.quota_exceeded:
                return None
            return error.retry_after if error.retry_after is not None else self.backoff(attempt)
        retry_after = _seconds(error.headers)
        return retry_after if retry_after is not None else self.backoff(attempt)

    def delay_after_connection_error(self, attempt: int) -> float | None:
        if attempt >= self.max_attempts:
            return None
        return self.backoff(attempt)


def _seconds(headers: dict[str, str]) -> float | None:
    for name, value in headers.items():
        if name.lower() == "retry-after":
            try:
                seconds = float(value)
            except ValueError:
                return None
            return seconds if seconds >= 0 else None
    return None
