"""Token bucket plus quota: the admission decision, as pure arithmetic on numbers and a clock.

A bucket holds up to `capacity` tokens (the plan's burst) and gains `refill_per_second`
tokens continuously. A request passes when the quota period still has room and the bucket
holds a whole token; passing spends one of each. The stores keep the state; the SQLite
store calls `decide` inside a transaction, and the Redis Lua script performs the same steps
atomically, after which `describe` turns its result into the same `Decision`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

Refusal = Literal["rate", "quota"]

# Refill arithmetic in floats can land a hair under a whole token (30 s * 1/30 token/s);
# without this a client waiting exactly Retry-After could be refused once more.
EPSILON = 1e-9


@dataclass(frozen=True)
class Bucket:
    capacity: int
    refill_per_second: float


@dataclass(frozen=True)
class BucketState:
    tokens: float
    updated_at: float  # seconds, the store's clock


@dataclass(frozen=True)
class Quota:
    used: int
    limit: int
    resets_at: int  # Unix seconds

    @property
    def left(self) -> int:
        return max(0, self.limit - self.used)


@dataclass(frozen=True)
class Decision:
    """What one request was (or would be) told; each field maps onto a response header."""

    allowed: bool
    limit: int  # X-RateLimit-Limit: the bucket's capacity
    remaining: int  # X-RateLimit-Remaining: whole tokens, capped by the quota left
    reset_at: int  # X-RateLimit-Reset: Unix seconds when `remaining` is back to its best
    retry_after: int  # Retry-After, seconds; 0 when allowed
    reason: Refusal | None  # why it was refused
    quota: Quota


@dataclass(frozen=True)
class Outcome:
    decision: Decision
    bucket: BucketState  # state to store (unchanged when nothing was spent)
    quota_used: int


def tokens_at(state: BucketState | None, bucket: Bucket, now: float) -> float:
    """Tokens in the bucket at `now`; a missing state is a full bucket."""
    if state is None:
        return float(bucket.capacity)
    elapsed = max(0.0, now - state.updated_at)  # a clock step backwards never drains a bucket
    return min(float(bucket.capacity), state.tokens + elapsed * bucket.refill_per_second)


def refusal(tokens: float, quota: Quota) -> Refusal | None:
    """Why a request would be refused now; the quota first, as it is the longer wait."""
    if quota.left < 1:
        return "quota"
    if tokens + EPSILON < 1.0:
        return "rate"
    return None


def decide(
    state: BucketState | None, bucket: Bucket, quota: Quota, now: float, *, spend: bool
) -> Outcome:
    """Admit (spend=True) or only inspect (spend=False) one request at `now`."""
    tokens = tokens_at(state, bucket, now)
    reason = refusal(tokens, quota)
    used = quota.used
    if spend and reason is None:
        tokens = max(0.0, tokens - 1.0)
        used += 1
    after = Quota(used=used, limit=quota.limit, resets_at=quota.resets_at)
    decision = describe(
        allowed=reason is None, reason=reason, tokens=tokens, now=now, bucket=bucket, quota=after
    )
    return Outcome(decision, BucketState(tokens, now), used)


def describe(
    *,
    allowed: bool,
    reason: Refusal | None,
    tokens: float,
    now: float,
    bucket: Bucket,
    quota: Quota,
) -> Decision:
    """The decision a client sees, from the bucket and quota as they are after the request."""
    whole_tokens = math.floor(tokens + EPSILON)
    remaining = max(0, min(whole_tokens, quota.left))
    if quota.left < 1:
        # Nothing passes before the next quota period, however full the bucket gets.
        reset_at = quota.resets_at
    else:
        reset_at = math.ceil(now + max(0.0, bucket.capacity - tokens) / bucket.refill_per_second)
    retry_after = 0
    if reason == "quota":
        retry_after = max(1, math.ceil(quota.resets_at - now))
    elif reason == "rate":
        retry_after = max(1, math.ceil((1.0 - tokens) / bucket.refill_per_second - EPSILON))
    return Decision(
        allowed=allowed,
        limit=bucket.capacity,
        remaining=remaining,
        reset_at=reset_at,
        retry_after=retry_after,
        reason=reason,
        quota=quota,
    )
