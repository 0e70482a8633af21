"""The accounts facade the HTTP layer uses: who is calling, may they, and what they used.

    account = await accounts.authenticate(api_key)      # 401 / 503
    status = await accounts.admit(account, cost=1)      # spends; 429 with headers
    status = await accounts.peek(account)               # headers only
    await accounts.record(account, succeeded=True, processing_seconds=1.2)

Store failures are decided here and nowhere else (auth/outage.py holds the fallback state):
limits fail open, recently verified keys keep working, unknown keys get 503, usage is
buffered until the store answers again.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar

from auth.backends import open_store
from auth.keys import digests_match, parse_key
from auth.outage import OutageFallback
from auth.plans import Plan
from auth.records import Account, UsageDelta
from auth.store import Store, StoreUnavailable
from auth.token_bucket import Decision
from errors import BadRequest, ServiceUnavailable, TooManyRequests, Unauthorized
from settings import Settings

logger = logging.getLogger(__name__)

T = TypeVar("T")

MISSING_KEY = "Missing API Key. Please provide X-API-Key header."
INVALID_KEY = "Invalid API Key"
CANNOT_VERIFY = "The API key cannot be verified right now; retry shortly."
STATS_UNAVAILABLE = "Usage statistics are unavailable right now; retry shortly."
OUTAGE_RETRY_AFTER_S = 5
# last_used is informational: writing it at most this often keeps the hot path read-only.
TOUCH_INTERVAL_S = 60.0


@dataclass(frozen=True)
class RateLimitStatus:
    decision: Decision
    enforced: bool = True  # False: decided without the store, failing open

    def headers(self) -> dict[str, str]:
        """The X-RateLimit-* headers every authenticated response carries."""
        return {
            "X-RateLimit-Limit": str(self.decision.limit),
            "X-RateLimit-Remaining": str(self.decision.remaining),
            "X-RateLimit-Reset": str(self.decision.reset_at),
        }

    def refusal_headers(self) -> dict[str, str]:
        """A 429's headers: the above plus Retry-After (only a refusal says when to retry)."""
        return {**self.headers(), "Retry-After": str(self.decision.retry_after)}


class Accounts:
    def __init__(
        self,
        store: Store,
        *,
        key_cache_seconds: float = 900.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.clock = clock
        self.fallback = OutageFallback(key_cache_seconds=key_cache_seconds)
        self._touched_at: dict[str, float] = {}

    async def authenticate(self, api_key: str | None) -> Account:
        if not api_key:
            raise Unauthorized(MISSING_KEY)
        presented = parse_key(api_key)
        if presented is None:
            raise Unauthorized(INVALID_KEY)
        now = self.clock()
        try:
            credential = await self._use_store(lambda: self.store.find(presented.prefix))
        except StoreUnavailable:
            cached = self.fallback.recall_key(presented.digest, now)
            if cached is None:
                logger.info("Cannot verify key %s: accounts store down", presented.prefix)
                raise ServiceUnavailable(
                    CANNOT_VERIFY, headers={"Retry-After": str(OUTAGE_RETRY_AFTER_S)}
                ) from None
            return cached
        if (
            credential is None
            or not digests_match(credential.secret.digest, presented.digest)
            or credential.key.revoked_at is not None
            or not credential.secret.valid_at(now)
        ):
            self.fallback.forget_key(presented.digest)
            logger.info("Refused key %s", presented.prefix)
            raise Unauthorized(INVALID_KEY)
        key = credential.key
        account = Account(key.key_id, presented.prefix, key.name, key.plan)
        self.fallback.remember_key(
            presented.digest, account, now=now, valid_until=credential.secret.expires_at
        )
        await self._touch(account, now)
        return account

    async def admit(self, account: Account, *, cost: int = 1) -> RateLimitStatus:
        """Spend `cost` tokens and quota units (one per image), all or nothing, or raise 429."""
        plan = account.plan
        most = min(plan.burst, plan.quota)
        if cost > most:
            # It could never pass, however long the client waits: 429 would be a lie.
            raise BadRequest(
                f"This request counts as {cost} requests; the {plan.name} plan allows at most "
                f"{most} at once"
            )
        status = await self._limit(account, cost=cost)
        if not status.decision.allowed:
            raise TooManyRequests(
                _refusal_detail(status.decision, account.plan), headers=status.refusal_headers()
            )
        return status

    async def peek(self, account: Account) -> RateLimitStatus:
        return await self._limit(account, cost=0)

    async def record(
        self,
        account: Account,
        *,
        succeeded: bool,
        processing_seconds: float,
        receipt: str | None = None,
    ) -> bool:
        """Count one admitted request (or one finished job); never raises for store failures.

        `receipt` names the outcome (a job's id), so that recording it again, from another
        process or after a restart, counts it once; without one, each call is a new outcome.
        True when the store has it; False when it is buffered in this process (store down).
        """
        delta = UsageDelta(
            total=1,
            success=int(succeeded),
            failed=int(not succeeded),
            # The documented average is over successful requests only.
            processing_seconds=processing_seconds if succeeded else 0.0,
        )
        await self._flush_buffered_usage()
        given = receipt is not None
        receipt = receipt or uuid.uuid4().hex
        try:
            await self._use_store(
                lambda: self.store.add_usage(account.key_id, account.plan, delta, receipt=receipt)
            )
        except StoreResting:
            self.fallback.buffer_usage(
                account.key_id, account.plan, delta, receipt=receipt if given else None
            )
            return False
        except StoreUnavailable:
            # Sent, but no answer: it may have landed, so it is retried under its receipt.
            self.fallback.buffer_usage(account.key_id, account.plan, delta, receipt=receipt)
            return False
        return True

    async def webhook_secrets(self, key_id: str) -> list[str]:
        """The account's live webhook secrets (`whsec_…`), newest first; `StoreUnavailable`
        when the store cannot say."""
        secrets = await self._use_store(lambda: self.store.webhook_secrets(key_id))
        return [secret.value for secret in secrets]

    async def stats(self, account: Account) -> dict[str, Any]:
        await self._flush_buffered_usage()
        try:
            usage = await self._use_store(lambda: self.store.usage(account.key_id))
            decision = await self._use_store(
                lambda: self.store.limit(account.key_id, account.plan, cost=0)
            )
        except StoreUnavailable:
            raise ServiceUnavailable(
                STATS_UNAVAILABLE, headers={"Retry-After": str(OUTAGE_RETRY_AFTER_S)}
            ) from None
        average = usage.processing_seconds / usage.success if usage.success else 0.0
        return {
            "total": usage.total,
            "success": usage.success,
            "failed": usage.failed,
            "total_processing_time": round(usage.processing_seconds, 3),
            "avg_processing_time": round(average, 3),
            "plan": account.plan.name,
            "quota": {
                "used": decision.quota.used,
                "limit": decision.quota.limit,
                "period": account.plan.quota_period,
                "resets_at": decision.quota.resets_at,
            },
            "rate_limited": usage.rate_limited,
        }

    async def aclose(self) -> None:
        await self._flush_buffered_usage()
        if self.fallback.has_buffered_usage:
            logger.error(
                "Closing with usage the accounts store never received: %s",
                {pending.key_id: pending.delta for pending in self.fallback.take_buffered_usage()},
            )
        await self.store.aclose()

    # --- internals --------------------------------------------------------------------------

    async def _limit(self, account: Account, *, cost: int) -> RateLimitStatus:
        try:
            decision = await self._use_store(
                lambda: self.store.limit(account.key_id, account.plan, cost=cost)
            )
        except StoreUnavailable:
            decision = self.fallback.blind_decision(account, self.clock(), cost=cost)
            if cost > 0:
                # The quota this request takes is charged once the store is back.
                self.fallback.buffer_usage(
                    account.key_id, account.plan, UsageDelta(quota_spent=cost)
                )
            return RateLimitStatus(decision, enforced=False)
        self.fallback.remember_decision(account.key_id, decision, self.clock())
        return RateLimitStatus(decision)

    async def _touch(self, account: Account, now: float) -> None:
        if now - self._touched_at.get(account.key_id, float("-inf")) < TOUCH_INTERVAL_S:
            return
        self._touched_at[account.key_id] = now
        try:
            await self._use_store(lambda: self.store.touch(account.key_id, at=now))
        except StoreUnavailable as exc:
            # The key itself was verified; only the informational timestamp is lost.
            logger.debug("last_used of key %s not written: %s", account.prefix, exc)

    async def _flush_buffered_usage(self) -> None:
        if not self.fallback.has_buffered_usage or self.fallback.store_resting(self.clock()):
            return
        for pending in self.fallback.take_buffered_usage():
            try:
                await self._use_store(
                    partial(
                        self.store.add_usage,
                        pending.key_id,
                        pending.plan,
                        pending.delta,
                        receipt=pending.receipt,
                    )
                )
            except StoreUnavailable:
                self.fallback.buffer_usage(
                    pending.key_id, pending.plan, pending.delta, receipt=pending.receipt
                )
            else:
                logger.info("Stored usage buffered during an outage for key %s", pending.key_id)

    async def _use_store(self, operation: Callable[[], Awaitable[T]]) -> T:
        """Every store call goes through here: the one place outages are noticed."""
        if self.fallback.store_resting(self.clock()):
            raise StoreResting("accounts store failed moments ago")
        try:
            result = await operation()
        except StoreUnavailable as exc:
            self.fallback.store_failed(exc, self.clock())
            raise
        self.fallback.store_answered(self.clock())
        return result


class StoreResting(StoreUnavailable):
    """The store failed moments ago, so this call was not even sent."""


def _refusal_detail(decision: Decision, plan: Plan) -> str:
    if decision.reason == "quota":
        period = "Daily" if plan.quota_period == "day" else "Monthly"
        return (
            f"{period} quota of {plan.quota} requests exceeded; "
            f"resets at {_utc(decision.quota.resets_at)}."
        )
    return (
        "Rate limit exceeded. Please try again later. "
        f"Next request allowed in {decision.retry_after} s."
    )


def _utc(unix_seconds: int) -> str:
    return datetime.fromtimestamp(unix_seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def open_accounts(settings: Settings) -> Accounts:
    return Accounts(open_store(settings), key_cache_seconds=settings.key_cache_minutes * 60)
