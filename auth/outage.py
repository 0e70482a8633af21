"""What the accounts layer knows when its store cannot be reached, and what it owes it after.

Policy (docs/rate-limits.md, "When the store is down"):

- limits fail open: requests pass, headers come from a local bucket seeded with the last
  decision the store made for the key;
- keys verified within `key_cache_seconds` keep working (the cache holds digests, never
  keys); others cannot be verified and get 503;
- usage and quota spent meanwhile are buffered here and added to the store once it answers.

After a failure the store is left alone for `RETRY_INTERVAL_S`, so an unreachable Redis
costs one timeout per interval instead of one per call.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, replace

from auth.plans import Plan, quota_window
from auth.records import Account, UsageDelta
from auth.token_bucket import Bucket, BucketState, Decision, Quota, decide

logger = logging.getLogger(__name__)

RETRY_INTERVAL_S = 1.0


@dataclass(frozen=True)
class PendingUsage:
    key_id: str
    plan: Plan
    delta: UsageDelta
    receipt: str


@dataclass(frozen=True)
class _Verified:
    account: Account
    verified_at: float
    valid_until: float | None  # the secret's own end (rotation), if any


@dataclass(frozen=True)
class _KnownLimits:
    bucket: BucketState
    quota: Quota


class OutageFallback:
    def __init__(self, *, key_cache_seconds: float) -> None:
        self.key_cache_seconds = key_cache_seconds
        self._down_until = 0.0
        self._down_since: float | None = None
        self._verified: dict[str, _Verified] = {}  # by key digest
        self._limits: dict[str, _KnownLimits] = {}  # by key id
        self._unsent: dict[str, tuple[Plan, UsageDelta]] = {}  # by key id, merged
        self._in_doubt: list[PendingUsage] = []  # sent, answer lost: retried with its receipt

    # --- store health -----------------------------------------------------------------------

    def store_resting(self, now: float) -> bool:
        """True while the store failed less than `RETRY_INTERVAL_S` ago."""
        return now < self._down_until

    def store_failed(self, error: Exception, now: float) -> None:
        if self._down_since is None:
            self._down_since = now
            logger.warning(
                "Accounts store unreachable (%s): limits fail open, keys verified in the last"
                " %.0f min keep working, usage is buffered",
                error,
                self.key_cache_seconds / 60,
            )
        self._down_until = now + RETRY_INTERVAL_S

    def store_answered(self, now: float) -> None:
        if self._down_since is not None:
            logger.warning("Accounts store reachable again after %.1f s", now - self._down_since)
            self._down_since = None
        self._down_until = 0.0

    # --- keys -------------------------------------------------------------------------------

    def remember_key(
        self, digest: str, account: Account, *, now: float, valid_until: float | None
    ) -> None:
        self._verified[digest] = _Verified(account, now, valid_until)

    def forget_key(self, digest: str) -> None:
        self._verified.pop(digest, None)

    def recall_key(self, digest: str, now: float) -> Account | None:
        """The account of a key verified recently enough to trust without the store."""
        verified = self._verified.get(digest)
        if verified is None:
            return None
        if now - verified.verified_at > self.key_cache_seconds or (
            verified.valid_until is not None and now >= verified.valid_until
        ):
            del self._verified[digest]
            return None
        return verified.account

    # --- limits -----------------------------------------------------------------------------

    def remember_decision(self, key_id: str, decision: Decision, now: float) -> None:
        self._limits[key_id] = _KnownLimits(BucketState(decision.remaining, now), decision.quota)

    def blind_decision(self, account: Account, now: float, *, cost: int) -> Decision:
        """An always-allowed decision whose headers are our best estimate."""
        plan = account.plan
        bucket = Bucket(capacity=plan.burst, refill_per_second=plan.refill_per_second)
        known = self._limits.get(account.key_id)
        quota = known.quota if known else None
        if quota is None or quota.resets_at <= now:
            quota = Quota(0, plan.quota, quota_window(now, plan.quota_period).resets_at)
        outcome = decide(known.bucket if known else None, bucket, quota, now, cost=cost)
        if cost > 0:
            # Admitted even when the estimate says no, so it counts against the quota.
            self._limits[account.key_id] = _KnownLimits(
                outcome.bucket, replace(quota, used=quota.used + cost)
            )
        return replace(outcome.decision, allowed=True, retry_after=0, reason=None)

    # --- usage ------------------------------------------------------------------------------

    def buffer_usage(
        self, key_id: str, plan: Plan, delta: UsageDelta, *, receipt: str | None = None
    ) -> None:
        """Keep usage for later. `receipt`: the write was sent and may have landed, so it is
        retried under the same receipt (the store ignores it if it did land); without one,
        it was never sent and merges with the key's other unsent usage."""
        if receipt is not None:
            self._in_doubt.append(PendingUsage(key_id, plan, delta, receipt))
            return
        _, pending = self._unsent.get(key_id, (plan, UsageDelta()))
        self._unsent[key_id] = (plan, pending + delta)

    def take_buffered_usage(self) -> list[PendingUsage]:
        """Everything buffered, removed from the buffer; give back what could not be stored."""
        unsent, self._unsent = self._unsent, {}
        in_doubt, self._in_doubt = self._in_doubt, []
        fresh = [
            PendingUsage(key_id, plan, delta, uuid.uuid4().hex)
            for key_id, (plan, delta) in unsent.items()
        ]
        return in_doubt + fresh

    @property
    def has_buffered_usage(self) -> bool:
        return bool(self._unsent or self._in_doubt)
