"""What the job system keeps, and for how long (docs/jobs.md, "Retention").

- a job's input (image, mask): until the job ends, then deleted;
- a succeeded job's result: `result_s` after it ended (`IOPAINT_JOB_RESULT_TTL_S`), or
  until `DELETE /api/v1/jobs/{id}`;
- a job's or batch's record (statuses, times, error; no image): `record_s` after it ended,
  long enough for idempotent replays (24 h) and for every webhook retry to find it;
- an idempotency key: 24 h after the submission it made.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

IDEMPOTENCY_WINDOW_S = 24 * 3600.0
"""A key given to a POST returns the same job for this long (Stripe keeps keys 24 h)."""
IDEMPOTENCY_CLAIM_S = 60.0
"""How long a submission may hold its key before it is free again (a crashed request)."""
RECORD_MARGIN_S = 3600.0


@dataclass(frozen=True)
class Retention:
    result_s: float
    record_s: float

    @classmethod
    def for_settings(cls, result_ttl_s: float, webhook_delays_s: Sequence[float]) -> Retention:
        """Records outlive results, idempotency keys and the whole webhook schedule."""
        return cls(
            result_s=result_ttl_s,
            record_s=max(IDEMPOTENCY_WINDOW_S, result_ttl_s, sum(webhook_delays_s))
            + RECORD_MARGIN_S,
        )
