"""The facade: authentication answers, 429 details and headers, statistics."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from auth.accounts import INVALID_KEY, MISSING_KEY, Accounts
from auth.key_admin import KeyAdmin
from auth.keys import _checksum, generate_key
from auth.plans import PLANS, enterprise_plan
from auth.records import Account
from auth.sqlite_store import SqliteStore
from auth.store import Store, StoreUnavailable
from errors import BadRequest, ServiceUnavailable, TooManyRequests, Unauthorized
from tests.clock import FakeClock

pytestmark = pytest.mark.anyio

FREE = PLANS["free"]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()  # 2025-11-24T16:00:00Z


@pytest.fixture
async def clocked_store(tmp_path: Path, clock: FakeClock) -> AsyncIterator[SqliteStore]:
    """The embedded store on a clock the test moves: exact refills, expiries, days."""
    store = SqliteStore(tmp_path / "clocked.sqlite3", clock=clock)
    yield store
    await store.aclose()


class UnreachableStore:
    """Every call fails as a dead backend would."""

    def __getattr__(self, name: str) -> Any:
        async def fail(*args: Any, **kwargs: Any) -> None:
            raise StoreUnavailable(f"{name}: connection refused")

        return fail


# --- authentication ---------------------------------------------------------------------------


@pytest.mark.parametrize("header", [None, ""])
async def test_a_missing_key_is_401_with_the_documented_detail(
    store: Store, header: str | None
) -> None:
    with pytest.raises(Unauthorized) as refused:
        await Accounts(store).authenticate(header)
    assert refused.value.detail == MISSING_KEY
    assert MISSING_KEY == "Missing API Key. Please provide X-API-Key header."


async def test_malformed_keys_are_refused_without_asking_the_store() -> None:
    accounts = Accounts(UnreachableStore())  # type: ignore[arg-type]
    for raw in ("sk_live_nope", generate_key().key[:-1] + "!", "Bearer abc"):
        with pytest.raises(Unauthorized) as refused:
            await accounts.authenticate(raw)
        assert refused.value.detail == INVALID_KEY == "Invalid API Key"


async def test_known_keys_pass_and_unknown_or_revoked_ones_do_not(
    store: Store, admin: KeyAdmin
) -> None:
    accounts = Accounts(store)
    created = await admin.create(name="acme", plan=PLANS["basic"])
    account = await accounts.authenticate(created.key)
    assert (account.prefix, account.name, account.plan) == (created.prefix, "acme", PLANS["basic"])
    assert account.key_id == created.record.key_id
    with pytest.raises(Unauthorized, match=INVALID_KEY):
        await accounts.authenticate(generate_key().key)  # well formed, never issued
    await admin.revoke(created.prefix)
    with pytest.raises(Unauthorized, match=INVALID_KEY):
        await accounts.authenticate(created.key)


async def test_a_key_with_a_forged_prefix_is_refused(store: Store, admin: KeyAdmin) -> None:
    created = await admin.create(name="acme", plan=FREE)
    forged = generate_key()
    while forged.prefix == created.prefix:
        forged = generate_key()
    # Same display prefix as the real key, a different secret, a valid checksum.
    body = created.prefix + forged.key[len(created.prefix) : -6]
    with pytest.raises(Unauthorized, match=INVALID_KEY):
        await Accounts(store).authenticate(body + _checksum(body))


async def test_a_rotated_key_works_through_its_grace_period_then_stops(
    clocked_store: SqliteStore, clock: FakeClock
) -> None:
    admin = KeyAdmin(clocked_store, clock=clock)
    accounts = Accounts(clocked_store, clock=clock)
    old = await admin.create(name="acme", plan=FREE)
    new = await admin.rotate(old.prefix, grace_seconds=24 * 3600)
    old_account = await accounts.authenticate(old.key)
    new_account = await accounts.authenticate(new.key)
    assert old_account.key_id == new_account.key_id  # same limits, quota and usage
    clock.advance(24 * 3600 - 1)
    await accounts.authenticate(old.key)
    clock.advance(1)
    with pytest.raises(Unauthorized, match=INVALID_KEY):
        await accounts.authenticate(old.key)
    assert await accounts.authenticate(new.key) == new_account


async def test_rotation_with_no_grace_stops_the_old_key_at_once(
    store: Store, admin: KeyAdmin
) -> None:
    accounts = Accounts(store)
    old = await admin.create(name="acme", plan=FREE)
    await accounts.authenticate(old.key)
    new = await admin.rotate(old.prefix, grace_seconds=0)
    with pytest.raises(Unauthorized, match=INVALID_KEY):
        await accounts.authenticate(old.key)
    await accounts.authenticate(new.key)


async def test_last_used_is_recorded(store: Store, admin: KeyAdmin) -> None:
    created = await admin.create(name="acme", plan=FREE)
    await Accounts(store).authenticate(created.key)
    (listed,) = await admin.list()
    assert listed.last_used_at is not None


# --- limits -----------------------------------------------------------------------------------


async def test_the_sixth_burst_request_is_429_with_retry_after(
    store: Store, admin: KeyAdmin
) -> None:
    accounts = Accounts(store)
    account = await accounts.authenticate((await admin.create(name="a", plan=FREE)).key)
    statuses = [await accounts.admit(account) for _ in range(5)]
    assert [s.headers()["X-RateLimit-Remaining"] for s in statuses] == ["4", "3", "2", "1", "0"]
    assert all("Retry-After" not in s.headers() for s in statuses)
    with pytest.raises(TooManyRequests) as refused:
        await accounts.admit(account)
    assert refused.value.detail.startswith("Rate limit exceeded. Please try again later.")
    assert refused.value.headers["Retry-After"] in {"29", "30"}
    assert refused.value.headers["X-RateLimit-Limit"] == "5"
    assert refused.value.headers["X-RateLimit-Remaining"] == "0"
    peeked = await accounts.peek(account)
    assert peeked.headers()["X-RateLimit-Remaining"] == "0"


async def test_the_eleventh_free_request_of_a_day_is_refused_by_the_quota(
    clocked_store: SqliteStore, clock: FakeClock
) -> None:
    accounts = Accounts(clocked_store, clock=clock)
    created = await KeyAdmin(clocked_store, clock=clock).create(name="a", plan=FREE)
    account = await accounts.authenticate(created.key)
    for _ in range(10):
        await accounts.admit(account)
        clock.advance(60)  # two tokens back: the bucket is never the limit
    assert (await accounts.peek(account)).decision.quota.used == 10
    with pytest.raises(TooManyRequests) as refused:
        await accounts.admit(account)
    assert refused.value.detail == (
        "Daily quota of 10 requests exceeded; resets at 2025-11-25T00:00:00Z."
    )
    midnight = 1_764_028_800
    assert refused.value.headers["X-RateLimit-Reset"] == str(midnight)
    assert refused.value.headers["Retry-After"] == str(int(midnight - clock.now))
    clock.now = midnight  # a new day, a new quota
    await accounts.admit(account)


async def test_monthly_quota_detail(store: Store, admin: KeyAdmin) -> None:
    plan = enterprise_plan(rate_per_minute=60, burst=5, quota=1, quota_period="month")
    accounts = Accounts(store)
    account = await accounts.authenticate((await admin.create(name="a", plan=plan)).key)
    await accounts.admit(account)
    with pytest.raises(TooManyRequests, match=r"^Monthly quota of 1 requests exceeded; resets"):
        await accounts.admit(account)


# --- statistics -------------------------------------------------------------------------------


async def test_stats_count_admitted_requests_and_429s_apart(store: Store, admin: KeyAdmin) -> None:
    accounts = Accounts(store)
    account = await accounts.authenticate((await admin.create(name="a", plan=FREE)).key)
    empty = await accounts.stats(account)
    assert empty["avg_processing_time"] == 0.0
    assert empty["quota"]["used"] == 0
    for seconds in (1.0, 2.0):
        await accounts.admit(account)
        await accounts.record(account, succeeded=True, processing_seconds=seconds)
    await accounts.admit(account)
    await accounts.record(account, succeeded=False, processing_seconds=0.0)
    await accounts.admit(account)
    await accounts.admit(account)
    with pytest.raises(TooManyRequests):
        await accounts.admit(account)
    stats = await accounts.stats(account)
    quota = stats.pop("quota")
    assert stats == {
        "total": 3,
        "success": 2,
        "failed": 1,
        "total_processing_time": 3.0,
        "avg_processing_time": 1.5,
        "plan": "free",
        "rate_limited": 1,
    }
    assert (quota["used"], quota["limit"], quota["period"]) == (5, 10, "day")


async def test_unknown_keys_get_503_when_the_store_is_down() -> None:
    accounts = Accounts(UnreachableStore())  # type: ignore[arg-type]
    with pytest.raises(ServiceUnavailable) as refused:
        await accounts.authenticate(generate_key().key)
    assert "Retry-After" in refused.value.headers


class AnswerLostStore:
    """Applies the first usage write, then fails as if its reply were lost on the way back."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.lost_once = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def add_usage(self, *args: Any, **kwargs: Any) -> None:
        await self.inner.add_usage(*args, **kwargs)
        if not self.lost_once:
            self.lost_once = True
            raise StoreUnavailable("connection reset after the write")


async def test_a_write_whose_answer_was_lost_is_not_counted_twice(
    clocked_store: SqliteStore, clock: FakeClock
) -> None:
    admin = KeyAdmin(clocked_store, clock=clock)
    flaky = AnswerLostStore(clocked_store)
    accounts = Accounts(flaky, clock=clock)  # type: ignore[arg-type]
    account = await accounts.authenticate((await admin.create(name="a", plan=FREE)).key)
    await accounts.admit(account)
    await accounts.record(account, succeeded=True, processing_seconds=1.0)  # applied, "lost"
    clock.advance(5)  # past the pause after a store failure: the buffer is flushed now
    await accounts.admit(account)
    await accounts.record(account, succeeded=True, processing_seconds=1.0)
    stats = await accounts.stats(account)
    assert (stats["total"], stats["success"], stats["total_processing_time"]) == (2, 2, 2.0)


async def test_an_outcome_recorded_under_its_receipt_counts_once(
    clocked_store: SqliteStore, clock: FakeClock
) -> None:
    admin = KeyAdmin(clocked_store, clock=clock)
    accounts = Accounts(clocked_store, clock=clock)
    account = await accounts.authenticate((await admin.create(name="a", plan=FREE)).key)
    for _ in range(3):  # a job's end, recorded again by another worker after a crash
        stored = await accounts.record(
            account, succeeded=True, processing_seconds=2.0, receipt="job:job_1"
        )
        assert stored
    await accounts.record(account, succeeded=False, processing_seconds=0.0, receipt="job:job_2")
    stats = await accounts.stats(account)
    assert (stats["total"], stats["success"], stats["failed"]) == (2, 1, 1)
    assert stats["total_processing_time"] == 2.0


async def test_record_says_when_usage_is_only_buffered() -> None:
    accounts = Accounts(UnreachableStore())  # type: ignore[arg-type]
    account = Account("key_x", "sk_live_AbCd1234", "x", FREE)
    assert not await accounts.record(
        account, succeeded=True, processing_seconds=1.0, receipt="job:job_1"
    )
    assert accounts.fallback.has_buffered_usage
    with pytest.raises(StoreUnavailable):
        await accounts.webhook_secrets("key_x")


async def test_a_request_costing_more_than_the_burst_is_400_not_a_429_forever(
    store: Store, admin: KeyAdmin
) -> None:
    accounts = Accounts(store)
    account = await accounts.authenticate((await admin.create(name="a", plan=FREE)).key)
    with pytest.raises(BadRequest, match="counts as 6 requests; the free plan allows at most 5"):
        await accounts.admit(account, cost=6)
    assert (await accounts.peek(account)).decision.quota.used == 0
