"""One contract, every store: the SQLite file and Redis give the same answers.

Both run on their own clocks here (Redis: the server's TIME), so timing tests use a plan
with half-second tokens; the exact arithmetic is in test_token_bucket.py.
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from auth.key_admin import KeyAdmin, KeyAdminError
from auth.plans import PLANS, Plan, enterprise_plan, quota_window
from auth.redis_store import LIMIT_SCRIPT, RedisStore
from auth.sqlite_store import SqliteStore
from auth.store import Store, UsageDelta
from tests.auth.redis_server import REDIS_BINARY, RedisServer

pytestmark = pytest.mark.anyio

FREE = PLANS["free"]
HALF_SECOND_TOKENS = enterprise_plan(rate_per_minute=120, burst=2, quota=1000)
QUOTA_OF_TEN = enterprise_plan(rate_per_minute=60, burst=20, quota=10, quota_period="day")


# --- keys -------------------------------------------------------------------------------------


async def test_a_created_key_is_found_by_its_prefix(admin: KeyAdmin, store: Store) -> None:
    created = await admin.create(name="acme", plan=PLANS["basic"])
    credential = await store.find(created.prefix)
    assert credential is not None
    assert credential.secret.digest == created.record.secrets[0].digest
    assert credential.key.name == "acme"
    assert credential.key.plan == PLANS["basic"]
    assert credential.key.revoked_at is None
    assert await store.find("sk_live_00000000") is None
    full = await store.get_key(created.record.key_id)
    assert full is not None and full.secrets == created.record.secrets
    assert await store.get_key("key_unknown") is None


async def test_enterprise_limits_are_stored_with_the_key(admin: KeyAdmin, store: Store) -> None:
    custom = enterprise_plan(rate_per_minute=600, burst=100, quota=10**6, quota_period="day")
    created = await admin.create(name="bigco", plan=custom, environment="test")
    credential = await store.find(created.prefix)
    assert credential is not None
    assert credential.key.plan == custom
    assert created.key.startswith("sk_test_")


async def test_listing_revoking_and_changing_plans(admin: KeyAdmin, store: Store) -> None:
    first = await admin.create(name="first", plan=FREE)
    second = await admin.create(name="second", plan=FREE)
    assert [key.name for key in await admin.list()] == ["first", "second"]
    revoked = await admin.revoke(first.prefix)
    assert revoked.revoked_at is not None
    moved = await admin.set_plan(second.prefix, PLANS["pro"])
    assert moved.plan == PLANS["pro"]
    custom = enterprise_plan(rate_per_minute=5, burst=5, quota=5)
    assert (await admin.set_plan(second.prefix, custom)).plan == custom
    assert (await admin.set_plan(second.prefix, FREE)).plan == FREE
    with pytest.raises(KeyAdminError):
        await admin.revoke("sk_live_00000000")


async def test_rotation_keeps_the_key_and_ends_the_old_secret(
    admin: KeyAdmin, store: Store
) -> None:
    old = await admin.create(name="acme", plan=FREE)
    new = await admin.rotate(old.prefix, grace_seconds=3600)
    assert new.record.key_id == old.record.key_id
    old_credential = await store.find(old.prefix)
    new_credential = await store.find(new.prefix)
    assert old_credential is not None and new_credential is not None
    assert old_credential.secret.expires_at == pytest.approx(time.time() + 3600, abs=5)
    assert new_credential.secret.expires_at is None
    immediate = await admin.rotate(new.prefix, grace_seconds=0)
    assert await store.find(new.prefix) is None  # ended: as good as gone
    assert await store.find(old.prefix) is None  # an earlier end is never extended
    (listed,) = await admin.list()
    assert [secret.prefix for secret in listed.secrets] == [immediate.prefix]


async def test_a_revoked_key_cannot_be_rotated(admin: KeyAdmin) -> None:
    created = await admin.create(name="acme", plan=FREE)
    await admin.revoke(created.prefix)
    with pytest.raises(KeyAdminError, match="revoked"):
        await admin.rotate(created.prefix, grace_seconds=60)


async def test_no_store_holds_a_plaintext_key(
    admin: KeyAdmin, store: Store, store_kind: str, tmp_path: Path
) -> None:
    created = await admin.create(name="acme", plan=FREE)
    rotated = await admin.rotate(created.prefix, grace_seconds=60)
    secret_parts = {created.key[len("sk_live_") :], rotated.key[len("sk_live_") :]}
    if isinstance(store, RedisStore):
        dump = []
        async for name in store.redis.scan_iter("*"):
            dump.append(name)
            if await store.redis.type(name) == "hash":
                dump.extend(str(v) for v in (await store.redis.hgetall(name)).values())
            elif await store.redis.type(name) == "set":
                dump.extend(await store.redis.smembers(name))
        text = "\n".join(dump)
    else:
        assert isinstance(store, SqliteStore)
        await store.aclose()  # flush the WAL into the file we read
        raw = b"".join(path.read_bytes() for path in tmp_path.glob("accounts.sqlite3*"))
        text = raw.decode("latin-1")
    assert created.prefix in text  # the visible part is there, so we looked in the right place
    for secret_part in secret_parts:
        assert secret_part not in text


# --- limits -----------------------------------------------------------------------------------


async def test_a_fresh_free_key_passes_its_burst_then_is_refused(store: Store) -> None:
    decisions = [await store.limit("key_a", FREE, cost=1) for _ in range(6)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False]
    assert [d.remaining for d in decisions] == [4, 3, 2, 1, 0, 0]
    refused = decisions[-1]
    assert (refused.reason, refused.limit) == ("rate", 5)
    assert 29 <= refused.retry_after <= 30
    assert refused.quota.used == 5
    assert await store.limit("key_b", FREE, cost=1)  # keys do not share buckets


async def test_peeking_spends_nothing(store: Store) -> None:
    for _ in range(3):
        peeked = await store.limit("key_a", FREE, cost=0)
        assert (peeked.allowed, peeked.remaining, peeked.quota.used) == (True, 5, 0)
    await store.limit("key_a", FREE, cost=1)
    assert (await store.limit("key_a", FREE, cost=0)).remaining == 4
    assert (await store.usage("key_a")).rate_limited == 0


async def test_after_the_time_for_one_token_exactly_one_more_passes(store: Store) -> None:
    plan = HALF_SECOND_TOKENS
    assert [(await store.limit("k", plan, cost=1)).allowed for _ in range(3)] == [
        True,
        True,
        False,
    ]
    await asyncio.sleep(0.6)  # 1.2 tokens
    assert (await store.limit("k", plan, cost=1)).allowed
    refused = await store.limit("k", plan, cost=1)
    assert not refused.allowed
    assert refused.retry_after == 1


async def test_the_quota_refuses_even_with_tokens_left(store: Store) -> None:
    decisions = [await store.limit("k", QUOTA_OF_TEN, cost=1) for _ in range(11)]
    assert [d.allowed for d in decisions] == [True] * 10 + [False]
    refused = decisions[-1]
    window = quota_window(time.time(), "day")
    assert refused.reason == "quota"
    assert refused.quota.used == 10
    assert refused.quota.resets_at == window.resets_at
    assert refused.reset_at == window.resets_at
    assert refused.retry_after == pytest.approx(window.resets_at - time.time(), abs=2)
    assert (await store.usage("k")).rate_limited == 1


@pytest.mark.parametrize("period", ["day", "month"])
async def test_quota_periods_agree_with_the_reference(store: Store, period: str) -> None:
    plan = enterprise_plan(rate_per_minute=60, burst=5, quota=100, quota_period=period)  # type: ignore[arg-type]
    decision = await store.limit("k", plan, cost=1)
    assert decision.quota.resets_at == quota_window(time.time(), period).resets_at  # type: ignore[arg-type]


BURST_OF_TEN = enterprise_plan(rate_per_minute=1, burst=10, quota=1000)


async def test_a_request_of_cost_n_takes_n_tokens_and_n_quota_units_or_nothing(
    store: Store,
) -> None:
    first = await store.limit("k", BURST_OF_TEN, cost=4)
    assert (first.allowed, first.remaining, first.quota.used) == (True, 6, 4)
    second = await store.limit("k", BURST_OF_TEN, cost=4)
    assert (second.allowed, second.remaining, second.quota.used) == (True, 2, 8)
    refused = await store.limit("k", BURST_OF_TEN, cost=3)  # 2 tokens for a cost of 3
    assert (refused.allowed, refused.reason, refused.remaining) == (False, "rate", 2)
    assert refused.quota.used == 8, "a refused request spends nothing"
    assert 59 <= refused.retry_after <= 60  # one token a minute, one missing
    assert refused.reset_at == pytest.approx(time.time() + refused.retry_after, abs=2)
    assert (await store.limit("k", BURST_OF_TEN, cost=2)).allowed  # what is there still passes
    assert (await store.usage("k")).rate_limited == 1


async def test_a_request_larger_than_the_quota_left_is_refused_whole(store: Store) -> None:
    assert (await store.limit("k", QUOTA_OF_TEN, cost=8)).allowed
    refused = await store.limit("k", QUOTA_OF_TEN, cost=3)
    assert (refused.allowed, refused.reason, refused.quota.used) == (False, "quota", 8)
    assert refused.reset_at == quota_window(time.time(), "day").resets_at
    assert (await store.limit("k", QUOTA_OF_TEN, cost=2)).allowed


async def test_a_cost_above_the_burst_is_refused_before_the_store_is_asked(store: Store) -> None:
    with pytest.raises(ValueError, match=r"outside 0\.\.5"):
        await store.limit("k", FREE, cost=6)


@pytest.mark.parametrize(
    ("plan", "cost", "requests"),
    [(FREE, 1, 50), (BURST_OF_TEN, 2, 40), (BURST_OF_TEN, 3, 40)],
    ids=["50 parallel on a fresh free key admit exactly 5", "cost 2 of 10", "cost 3 of 10"],
)
async def test_parallel_requests_admit_exactly_burst_over_cost(
    make_store: Callable[[], Store], store: Store, plan: Plan, cost: int, requests: int
) -> None:
    # Five clients, as five workers would have, sharing the same data.
    clients = [make_store() for _ in range(5)]
    try:
        decisions = await asyncio.gather(
            *(clients[n % 5].limit("key_a", plan, cost=cost) for n in range(requests))
        )
    finally:
        for client in clients:
            await client.aclose()
    admitted = sum(decision.allowed for decision in decisions)
    assert admitted == plan.burst // cost, decisions
    assert (await store.usage("key_a")).rate_limited == requests - admitted
    assert (await store.limit("key_a", plan, cost=0)).quota.used == admitted * cost


# --- usage ------------------------------------------------------------------------------------


async def test_usage_counters_add_up(store: Store) -> None:
    assert (await store.usage("k")).total == 0
    await store.add_usage(
        "k", FREE, UsageDelta(total=1, success=1, processing_seconds=1.25), receipt="r1"
    )
    await store.add_usage("k", FREE, UsageDelta(total=2, failed=2), receipt="r2")
    usage = await store.usage("k")
    assert (usage.total, usage.success, usage.failed) == (3, 1, 2)
    assert usage.processing_seconds == pytest.approx(1.25)


async def test_a_usage_write_retried_under_its_receipt_counts_once(store: Store) -> None:
    """A retry after a lost reply must not count twice, quota charge included."""
    delta = UsageDelta(total=1, success=1, processing_seconds=0.5, quota_spent=1)
    for _ in range(3):
        await store.add_usage("k", QUOTA_OF_TEN, delta, receipt="same-receipt")
    await store.add_usage("k", QUOTA_OF_TEN, delta, receipt="another-receipt")
    usage = await store.usage("k")
    assert (usage.total, usage.success) == (2, 2)
    assert usage.processing_seconds == pytest.approx(1.0)
    assert (await store.limit("k", QUOTA_OF_TEN, cost=0)).quota.used == 2


async def test_quota_spent_blind_is_charged_to_the_current_period(store: Store) -> None:
    await store.limit("k", QUOTA_OF_TEN, cost=1)
    await store.add_usage(
        "k", QUOTA_OF_TEN, UsageDelta(total=3, success=3, quota_spent=3), receipt="blind"
    )
    assert (await store.limit("k", QUOTA_OF_TEN, cost=0)).quota.used == 4


# --- webhook secrets ----------------------------------------------------------------------------


async def test_webhook_secrets_are_kept_per_key_and_rotate_with_an_overlap(
    admin: KeyAdmin, store: Store
) -> None:
    acme = await admin.create(name="acme", plan=FREE)
    other = await admin.create(name="other", plan=FREE)
    assert await store.webhook_secrets(acme.record.key_id) == []
    first = await admin.create_webhook_secret(acme.prefix)
    assert first.value.startswith("whsec_") and first.expires_at is None
    with pytest.raises(KeyAdminError, match="rotate"):
        await admin.create_webhook_secret(acme.prefix)
    assert await store.webhook_secrets(other.record.key_id) == []
    second = await admin.rotate_webhook_secret(acme.prefix, grace_seconds=3600)
    live = await store.webhook_secrets(acme.record.key_id)
    assert [secret.value for secret in live] == [second.value, first.value]  # newest first
    assert live[1].expires_at == pytest.approx(time.time() + 3600, abs=5)
    assert live[0].expires_at is None
    third = await admin.rotate_webhook_secret(acme.prefix, grace_seconds=0)
    assert [secret.value for secret in await store.webhook_secrets(acme.record.key_id)] == [
        third.value
    ]
    with pytest.raises(KeyAdminError, match="create one first"):
        await admin.rotate_webhook_secret(other.prefix, grace_seconds=60)


# --- the SQLite file across processes ----------------------------------------------------------

WORKER = """
import asyncio, sys, time
from pathlib import Path
from auth.plans import PLANS
from auth.sqlite_store import SqliteStore

async def main() -> None:
    store = SqliteStore(Path(sys.argv[1]))
    start_at = float(sys.argv[2])
    time.sleep(max(0.0, start_at - time.time()))
    decisions = await asyncio.gather(
        *(store.limit("key_a", PLANS["free"], cost=1) for _ in range(25))
    )
    await store.aclose()
    print(sum(decision.allowed for decision in decisions))

asyncio.run(main())
"""


@pytest.mark.parametrize("store_kind", ["sqlite"], indirect=True)
async def test_two_processes_share_one_bucket(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "accounts.sqlite3"
    await store.usage("warm-up")  # the schema exists before the race
    start_at = str(time.time() + 1.0)
    root = Path(__file__).resolve().parents[2]
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(path), start_at],
            cwd=root,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    admitted = [int(worker.communicate(timeout=60)[0]) for worker in workers]
    assert sum(admitted) == 5
    rows = sqlite3.connect(path).execute("SELECT rate_limited FROM usage").fetchall()
    assert rows == [(45,)]


# --- the Lua script's calendar, at moments the real clock will not reach during a test ---------

BOUNDARIES = [
    1_764_028_799.5,  # 2025-11-24T23:59:59.5Z
    1_764_028_800.0,  # 2025-11-25T00:00:00Z
    1_767_225_599.9,  # 2025-12-31T23:59:59.9Z
    1_709_164_800.0,  # 2024-02-29T00:00:00Z
    951_782_400.0,  # 2000-02-29T00:00:00Z
    4_107_542_399.0,  # 2100-02-28T23:59:59Z (2100 is no leap year)
]


@pytest.mark.redis
@pytest.mark.skipif(REDIS_BINARY is None, reason="redis-server is not installed")
@pytest.mark.parametrize("moment", BOUNDARIES)
@pytest.mark.parametrize("period", ["day", "month"])
def test_the_lua_calendar_matches_the_reference(
    redis_server: RedisServer, moment: float, period: str
) -> None:
    seconds, fraction = divmod(moment, 1)
    frozen = f"{{'{int(seconds)}', '{int(fraction * 1_000_000)}'}}"
    script = LIMIT_SCRIPT.replace("redis.call('TIME')", frozen)
    assert script != LIMIT_SCRIPT
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    try:
        reply = client.eval(script, 3, "cal:b", "cal:q", "cal:u", "peek", 5, "1", 10, period, 0, 60)
    finally:
        client.close()
    window = quota_window(moment, period)  # type: ignore[arg-type]
    assert int(reply[5]) == window.resets_at
