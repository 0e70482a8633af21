"""Limits and usage shared by several service processes, and a Redis that dies under load.

Each test starts its own `bentoml serve` instances (and `redis-server`, never the shared one).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.auth.redis_server import REDIS_BINARY, RedisServer
from tests.images import box_mask, encode, photo
from tests.server import UNLIMITED, RunningService, create_key, service_env, start_service

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.redis,
    pytest.mark.skipif(REDIS_BINARY is None, reason="redis-server is not installed"),
]

ROUTE = "/api/v1/remove-watermark"
SMALL = {
    "image": ("a.png", encode(photo(64, 48), "PNG"), "image/png"),
    "mask": ("m.png", encode(box_mask(64, 48, (4, 4, 20, 20)), "PNG"), "image/png"),
}


def start_all(workdirs_and_envs: list[tuple[Path, dict[str, str]]]) -> list[RunningService]:
    with ThreadPoolExecutor(len(workdirs_and_envs)) as pool:
        return list(pool.map(lambda pair: start_service(*pair), workdirs_and_envs))


async def burst(urls: list[str], key: str, count: int) -> list[httpx.Response]:
    """`count` simultaneous requests, spread over `urls` in turn."""
    async with httpx.AsyncClient(headers={"X-API-Key": key}, timeout=120) as client:
        return await asyncio.gather(
            *(client.post(f"{urls[i % len(urls)]}{ROUTE}", files=SMALL) for i in range(count))
        )


def assert_exactly_five_admitted(responses: list[httpx.Response]) -> None:
    statuses = Counter(response.status_code for response in responses)
    assert statuses == {200: 5, 429: 45}, statuses
    for response in responses:
        assert response.headers["x-ratelimit-limit"] == "5"
        assert int(response.headers["x-ratelimit-reset"]) > time.time() - 1
        if response.status_code == 429:
            assert int(response.headers["retry-after"]) >= 1
            assert response.headers["x-ratelimit-remaining"] == "0"
            assert response.json()["detail"].startswith("Rate limit exceeded")


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis", persistent=True)
    server.start()
    yield server
    server.stop()


def test_two_instances_on_one_redis_share_one_limit_and_one_set_of_stats(
    tmp_path: Path, redis: RedisServer
) -> None:
    envs = [
        (tmp_path / name, service_env(tmp_path / name, IOPAINT_REDIS_URL=redis.url))
        for name in ("a", "b")
    ]
    key = create_key(envs[0][1], plan="free", name="scale")
    services = start_all(envs)
    try:
        urls = [service.base_url for service in services]
        assert_exactly_five_admitted(asyncio.run(burst(urls, key, 50)))
        stats = [
            httpx.get(f"{url}/api/v1/stats", headers={"X-API-Key": key}).json() for url in urls
        ]
    finally:
        for service in services:
            service.stop()
    assert stats[0] == stats[1]
    assert (stats[0]["total"], stats[0]["success"], stats[0]["rate_limited"]) == (5, 5, 45)
    assert stats[0]["quota"]["used"] == 5


def test_embedded_store_holds_the_limit_across_two_http_workers(tmp_path: Path) -> None:
    env = service_env(tmp_path, IOPAINT_HTTP_WORKERS="2")
    key = create_key(env, plan="free", name="workers")
    service = start_service(tmp_path, env)
    try:
        assert_exactly_five_admitted(asyncio.run(burst([service.base_url], key, 50)))
        stats = httpx.get(f"{service.base_url}/api/v1/stats", headers={"X-API-Key": key}).json()
    finally:
        service.stop()
    assert (stats["total"], stats["rate_limited"]) == (5, 45)


def test_redis_killed_under_load_then_restarted_loses_no_count(
    tmp_path: Path, redis: RedisServer
) -> None:
    env = service_env(tmp_path, IOPAINT_REDIS_URL=redis.url)
    key = create_key(env, plan="enterprise", name="outage", limits=UNLIMITED)
    service = start_service(tmp_path, env)
    statuses: list[int] = []
    slowest = 0.0
    stop = threading.Event()

    def traffic() -> None:
        nonlocal slowest
        with httpx.Client(
            base_url=service.base_url, headers={"X-API-Key": key}, timeout=30
        ) as http:
            while not stop.is_set():
                started = time.monotonic()
                reply = http.post(ROUTE, files=SMALL)
                statuses.append(reply.status_code)
                if reply.status_code != 200:
                    print("UNEXPECTED", round(time.monotonic(), 2), reply.text)
                slowest = max(slowest, time.monotonic() - started)

    try:
        clients = [threading.Thread(target=traffic) for _ in range(3)]
        for client in clients:
            client.start()
        time.sleep(3)
        before_outage = len(statuses)
        redis.stop()
        time.sleep(4)
        during_outage = len(statuses) - before_outage
        redis.start()
        time.sleep(3)
        stop.set()
        for client in clients:
            client.join(timeout=60)
        stats = httpx.get(f"{service.base_url}/api/v1/stats", headers={"X-API-Key": key})
    finally:
        stop.set()
        service.stop()

    counted = Counter(statuses)
    assert set(counted) == {200}, counted  # fail open: no 500, no 503 for a verified key
    assert during_outage > 0, "no request was served while Redis was down"
    assert slowest < 10, f"a request took {slowest:.1f}s: the outage must not hang clients"
    assert stats.status_code == 200, stats.text
    assert stats.json()["total"] == counted[200]  # the outage's requests were counted too
    assert stats.json()["success"] == counted[200]
    print(
        f"redis outage: {len(statuses)} requests, {during_outage} while Redis was down, all 200;"
        f" slowest {slowest:.2f} s; stats total {stats.json()['total']}"
    )
