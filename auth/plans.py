"""Plans are data: one table of rate, burst and quota, plus calendar quota periods (UTC).

The Redis Lua script (`auth/lua/limit.lua`) computes the same periods from the Redis clock;
`quota_window` is the reference the tests hold it to.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

QuotaPeriod = Literal["day", "month"]
ENTERPRISE = "enterprise"
ENTERPRISE_MAX_BATCH = 100
"""Images one batch of an enterprise key may hold (its burst bounds it too: a batch of N
costs N tokens at once)."""


@dataclass(frozen=True)
class Plan:
    name: str
    rate_per_minute: float  # token refill rate
    burst: int  # token bucket capacity
    quota: int  # requests per quota period
    quota_period: QuotaPeriod
    max_batch: int = ENTERPRISE_MAX_BATCH  # images per POST /api/v1/batch

    @property
    def refill_per_second(self) -> float:
        return self.rate_per_minute / 60.0


PLANS: dict[str, Plan] = {
    plan.name: plan
    for plan in (
        Plan("free", rate_per_minute=2, burst=5, quota=10, quota_period="day", max_batch=5),
        Plan("basic", rate_per_minute=10, burst=20, quota=3000, quota_period="month", max_batch=20),
        Plan("pro", rate_per_minute=30, burst=60, quota=20000, quota_period="month", max_batch=50),
    )
}
PLAN_NAMES = (*PLANS, ENTERPRISE)


class UnknownPlan(ValueError):
    pass


def enterprise_plan(
    *, rate_per_minute: float, burst: int, quota: int, quota_period: QuotaPeriod = "month"
) -> Plan:
    """Per-key limits; stored with the key, unlike the named plans."""
    if rate_per_minute <= 0 or burst < 1 or quota < 0:
        raise ValueError("enterprise limits need rate > 0, burst >= 1 and quota >= 0")
    return Plan(ENTERPRISE, rate_per_minute, burst, quota, quota_period)


def resolve_plan(name: str, custom: Plan | None = None) -> Plan:
    """The limits a key runs under: the table's for named plans, its own for enterprise."""
    if name == ENTERPRISE:
        if custom is None:
            raise UnknownPlan("an enterprise key needs its own rate, burst and quota")
        return custom
    try:
        return PLANS[name]
    except KeyError:
        raise UnknownPlan(f"unknown plan {name!r}; choose one of {', '.join(PLAN_NAMES)}") from None


@dataclass(frozen=True)
class QuotaWindow:
    tag: str  # names the period in stores: "d20251125" or "m202511"
    resets_at: int  # Unix seconds when the next period starts


def quota_window(now: float, period: QuotaPeriod) -> QuotaWindow:
    moment = datetime.fromtimestamp(now, UTC)
    if period == "day":
        start_day = int(now // 86400)
        return QuotaWindow(f"d{moment:%Y%m%d}", (start_day + 1) * 86400)
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    return QuotaWindow(
        f"m{moment:%Y%m}", calendar.timegm(datetime(year, month, 1, tzinfo=UTC).timetuple())
    )
