"""Redis goes away mid-traffic and comes back: no 500s, known keys keep working, no count lost."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from auth.accounts import Accounts
from auth.key_admin import KeyAdmin
from auth.outage import RETRY_INTERVAL_S
from auth.plans import PLANS
from auth.redis_store import RedisStore
from tests.api.tiny_app import ROUTE, tiny_app
from tests.auth.redis_server import REDIS_BINARY, RedisServer
from tests.clock import FakeClock

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.redis,
    pytest.mark.skipif(REDIS_BINARY is None, reason="redis-server is not installed"),
]


@pytest.fixture
def restartable_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis", persistent=True)  # data survives the restart
    server.start()
    yield server
    server.stop()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(time.time())


@pytest.fixture
async def accounts(restartable_redis: RedisServer, clock: FakeClock) -> AsyncIterator[Accounts]:
    store = RedisStore.from_url(restartable_redis.url, timeout_s=0.5)
    accounts = Accounts(store, key_cache_seconds=600, clock=clock)
    yield accounts
    await accounts.aclose()


async def test_an_outage_fails_open_for_known_keys_and_loses_no_count(
    restartable_redis: RedisServer, accounts: Accounts, clock: FakeClock
) -> None:
    admin = KeyAdmin(accounts.store)
    known = (await admin.create(name="known", plan=PLANS["free"])).key
    never_seen = (await admin.create(name="never seen", plan=PLANS["free"])).key
    transport = httpx.ASGITransport(app=tiny_app(accounts))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        headers = {"X-API-Key": known}
        assert (await client.post(ROUTE, headers=headers)).status_code == 200

        restartable_redis.stop()
        during = [await client.post(ROUTE, headers=headers) for _ in range(2)]
        for response in during:
            assert response.status_code == 200  # verified a moment ago: keeps working
            assert response.headers["X-RateLimit-Limit"] == "5"
        assert [r.headers["X-RateLimit-Remaining"] for r in during] == ["3", "2"]
        clock.advance(RETRY_INTERVAL_S)  # let the next call try Redis again, and fail
        assert (await client.post(ROUTE, headers=headers)).status_code == 200
        unknown = await client.post(ROUTE, headers={"X-API-Key": never_seen})
        assert unknown.status_code == 503
        assert unknown.json()["error"] == "Service Unavailable"
        assert "Retry-After" in unknown.headers
        stats_down = await client.get("/api/v1/stats", headers=headers)
        assert stats_down.status_code == 503
        assert (await client.post(ROUTE, headers={"X-API-Key": "sk_live_nope"})).status_code == 401

        restartable_redis.start()
        clock.advance(RETRY_INTERVAL_S)
        stats = (await client.get("/api/v1/stats", headers=headers)).json()
        assert (stats["total"], stats["success"], stats["failed"]) == (4, 4, 0)
        assert stats["total_processing_time"] == 1.0
        assert stats["quota"]["used"] == 4  # requests admitted blind count against the quota
        # Redis decides again; its bucket only saw the request made before the outage.
        after = [(await client.post(ROUTE, headers=headers)).status_code for _ in range(5)]
        assert after == [200, 200, 200, 200, 429]


async def test_a_key_unverified_for_too_long_is_not_trusted_in_an_outage(
    restartable_redis: RedisServer, accounts: Accounts, clock: FakeClock
) -> None:
    key = (await KeyAdmin(accounts.store).create(name="a", plan=PLANS["free"])).key
    await accounts.authenticate(key)
    restartable_redis.stop()
    clock.advance(accounts.fallback.key_cache_seconds + 1)
    transport = httpx.ASGITransport(app=tiny_app(accounts))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.post(ROUTE, headers={"X-API-Key": key})
    assert response.status_code == 503
