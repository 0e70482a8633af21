"""Token bucket plus quota: the admission decision, as pure arithmetic on numbers and a clock.

A bucket holds up to `capacity` tokens (the plan's burst) and gains `refill_per_second`
tokens continuously. A request has a cost: 1 for one image, N for a batch of N. It passes
when the quota period still has room for its cost and the bucket holds that many tokens;
passing spends them, all or nothing. A cost of 0 only looks. The stores keep the state; the
SQLite store calls `decide` inside a transaction, and the Redis Lua script performs the
same steps atomically, after which `decision_after` turns its result into the same
`Decision`.
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
    reset_at: int  # X-RateLimit-Reset: on a refusal, when it would pass; else when full again
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


def units_needed(cost: int) -> int:
    """What a request of `cost` must find in the bucket and the quota; a look (0) asks
    whether one more request would pass."""
    return max(cost, 1)


def refusal(tokens: float, quota: Quota, cost: int) -> Refusal | None:
    """Why a request of `cost` would be refused now; the quota first, the longer wait."""
    needed = units_needed(cost)
    if quota.left < needed:
        return "quota"
    if tokens + EPSILON < needed:
        return "rate"
    return None


def decide(
    state: BucketState | None, bucket: Bucket, quota: Quota, now: float, *, cost: int
) -> Outcome:
    """Admit a request of `cost` tokens and quota units at `now`, all or nothing; a cost of
    0 changes nothing. A cost above the capacity could never pass: callers refuse it first."""
    if cost < 0 or cost > bucket.capacity:
        raise ValueError(f"cost {cost} is outside 0..{bucket.capacity} (the bucket's capacity)")
    tokens = tokens_at(state, bucket, now)
    reason = refusal(tokens, quota, cost)
    used = quota.used
    if cost > 0 and reason is None:
        tokens = max(0.0, tokens - cost)
        used += cost
    after = Quota(used=used, limit=quota.limit, resets_at=quota.resets_at)
    decision = decision_after(
        reason=reason, cost=cost, tokens=tokens, now=now, bucket=bucket, quota=after
    )
    return Outcome(decision, BucketState(tokens, now), used)


def decision_after(
    *,
    reason: Refusal | None,
    cost: int,
    tokens: float,
    now: float,
    bucket: Bucket,
    quota: Quota,
) -> Decision:
    """The decision a client sees, from the bucket and quota as they are after the request."""
    whole_tokens = math.floor(tokens + EPSILON)
    remaining = max(0, min(whole_tokens, quota.left))
    needed = units_needed(cost)
    retry_after = 0
    if reason == "quota":
        retry_after = max(1, math.ceil(quota.resets_at - now))
    elif reason == "rate":
        retry_after = max(1, math.ceil((needed - tokens) / bucket.refill_per_second - EPSILON))
    if reason is not None and cost > 0:
        # A refusal: the moment this request would pass, so that a client sleeping until
        # X-RateLimit-Reset is not refused again (the document's wait-for-reset helper).
        reset_at = math.ceil(now) + retry_after if reason == "rate" else quota.resets_at
    elif quota.left < 1:
        # Nothing passes before the next quota period, however full the bucket gets.
        reset_at = quota.resets_at
    else:
        reset_at = math.ceil(now + max(0.0, bucket.capacity - tokens) / bucket.refill_per_second)
    return Decision(
        allowed=reason is None,
        limit=bucket.capacity,
        remaining=remaining,
        reset_at=reset_at,
        retry_after=retry_after,
        reason=reason,
        quota=quota,
    )
