"""The plan table and calendar quota periods in UTC."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime

import pytest

from auth.plans import PLANS, UnknownPlan, enterprise_plan, quota_window, resolve_plan


def _unix(*parts: int) -> int:
    return calendar.timegm(datetime(*parts, tzinfo=UTC).timetuple())  # type: ignore[misc]


def test_the_documented_plans() -> None:
    table = {
        name: (plan.rate_per_minute, plan.burst, plan.quota, plan.quota_period, plan.max_batch)
        for name, plan in PLANS.items()
    }
    assert table == {
        "free": (2, 5, 10, "day", 5),
        "basic": (10, 20, 3000, "month", 20),
        "pro": (30, 60, 20000, "month", 50),
    }
    assert enterprise_plan(rate_per_minute=600, burst=500, quota=10**6).max_batch == 100


def test_enterprise_limits_come_with_the_key() -> None:
    custom = enterprise_plan(rate_per_minute=600, burst=100, quota=10**6)
    assert resolve_plan("enterprise", custom) is custom
    with pytest.raises(UnknownPlan):
        resolve_plan("enterprise")
    with pytest.raises(UnknownPlan):
        resolve_plan("platinum")
    with pytest.raises(ValueError):
        enterprise_plan(rate_per_minute=0, burst=1, quota=1)


@pytest.mark.parametrize(
    ("moment", "period", "tag", "resets_at"),
    [
        (_unix(2025, 11, 24, 16, 0, 0), "day", "d20251124", _unix(2025, 11, 25)),
        (_unix(2025, 11, 24, 23, 59, 59), "day", "d20251124", _unix(2025, 11, 25)),
        (_unix(2025, 11, 25), "day", "d20251125", _unix(2025, 11, 26)),
        (_unix(2025, 11, 24, 16, 0, 0), "month", "m202511", _unix(2025, 12, 1)),
        (_unix(2025, 12, 31, 23, 59, 59), "month", "m202512", _unix(2026, 1, 1)),
        (_unix(2024, 2, 29, 12, 0, 0), "month", "m202402", _unix(2024, 3, 1)),
        (_unix(2024, 2, 29, 12, 0, 0), "day", "d20240229", _unix(2024, 3, 1)),
    ],
)
def test_quota_periods_are_calendar_days_and_months_in_utc(
    moment: int, period: str, tag: str, resets_at: int
) -> None:
    window = quota_window(moment + 0.5, period)  # type: ignore[arg-type]
    assert (window.tag, window.resets_at) == (tag, resets_at)
