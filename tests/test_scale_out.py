"""Several service processes on one store: limits, usage and jobs shared, and faults.

Two replicas on one persistent `redis-server` (never the shared one) serve the first tests
of this module, in order: shared limits and stats; a job submitted to one and fetched from
the other, with a verified webhook; a watermark profile kept by one and used by the other;
queued jobs surviving a Redis restart; and last, a
replica SIGKILLed mid-job, whose job the other one ends, once. The later tests start their
own services.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest

from tests.api.watermark_images import clean_photo, mark_rgba, stamped
from tests.auth.redis_server import REDIS_BINARY, RedisServer
from tests.images import box_mask, encode, photo
from tests.jobs.e2e import JOBS, SLOW, counted, finished, job_fields, queued_count
from tests.jobs.webhook_receiver import WebhookReceiver
from tests.server import (
    UNLIMITED,
    RunningService,
    create_key,
    create_webhook_secret,
    service_env,
    start_service,
)

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


@dataclass
class Replicas:
    redis: RedisServer
    services: list[RunningService]
    env: dict[str, str]

    @property
    def urls(self) -> list[str]:
        return [service.base_url for service in self.services]

    def client(self, index: int, key: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.services[index].base_url, headers={"X-API-Key": key}, timeout=120
        )

    def kill(self, service: RunningService) -> None:
        """SIGKILL the replica's every process, as when its machine dies (BentoML's workers
        run in process groups of their own: killing the group of `bentoml serve` would
        leave them running)."""
        tree = [psutil.Process(service.process.pid)]
        tree += tree[0].children(recursive=True)
        for process in tree:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.send_signal(signal.SIGKILL)
        psutil.wait_procs(tree, timeout=10)
        service.process.wait(timeout=10)

    def holding(self, pid: int) -> RunningService:
        """The replica whose process tree has `pid` (an HTTP worker running a job)."""
        for service in self.services:
            tree = psutil.Process(service.process.pid).children(recursive=True)
            if pid in {process.pid for process in tree}:
                return service
        raise AssertionError(f"no replica runs pid {pid}")


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replicas]:
    workdir = tmp_path_factory.mktemp("replicas")
    server = RedisServer(workdir / "redis", persistent=True)
    server.start()
    jobs = {
        "IOPAINT_REDIS_URL": server.url,
        "IOPAINT_JOB_LEASE_S": "3",  # a killed replica's job is reclaimed 3 s later
        "IOPAINT_CALLBACK_ALLOWED_NETWORKS": "127.0.0.0/8",
        "IOPAINT_WEBHOOK_RETRY_SCHEDULE": "0.5s,1s,2s",
    }
    envs = [(workdir / name, service_env(workdir / name, **jobs)) for name in ("a", "b")]
    services = start_all(envs)
    yield Replicas(server, services, envs[0][1])
    for service in services:
        service.stop()
    server.stop()


def test_two_instances_on_one_redis_share_one_limit_and_one_set_of_stats(
    replicas: Replicas,
) -> None:
    key = create_key(replicas.env, plan="free", name="scale")
    urls = replicas.urls
    assert_exactly_five_admitted(asyncio.run(burst(urls, key, 50)))
    stats = [httpx.get(f"{url}/api/v1/stats", headers={"X-API-Key": key}).json() for url in urls]
    assert stats[0] == stats[1]
    assert (stats[0]["total"], stats[0]["success"], stats[0]["rate_limited"]) == (5, 5, 45)
    assert stats[0]["quota"]["used"] == 5


def test_a_job_submitted_to_one_replica_is_fetched_from_the_other(replicas: Replicas) -> None:
    key = create_key(replicas.env, plan="enterprise", name="jobs", limits=UNLIMITED)
    secret = create_webhook_secret(replicas.env, key)
    with (
        WebhookReceiver() as receiver,
        replicas.client(0, key) as first,
        replicas.client(1, key) as second,
    ):
        accepted = first.post(JOBS, files=SMALL, data={"callback_url": receiver.url})
        assert accepted.status_code == 202, accepted.text
        job_id = accepted.json()["id"]
        (delivery,) = receiver.wait_for(1, timeout_s=60)
        event = delivery.verified(secret)
        assert (event["type"], event["data"]["id"]) == ("job.succeeded", job_id)  # type: ignore[index]
        result = second.get(f"{JOBS}/{job_id}/result")
        assert result.status_code == 200 and result.content.startswith(b"\x89PNG")
        assert counted(second, 1)["success"] == 1


def test_a_watermark_profile_kept_by_one_replica_is_used_by_the_other(
    replicas: Replicas,
) -> None:
    key = create_key(replicas.env, plan="enterprise", name="profiles", limits=UNLIMITED)
    other = create_key(replicas.env, plan="enterprise", name="stranger", limits=UNLIMITED)
    rgba = mark_rgba()
    marked = encode(stamped(clean_photo(), rgba), "PNG")
    with replicas.client(0, key) as first, replicas.client(1, key) as second:
        created = first.post(
            "/api/v1/watermarks", files={"watermark": ("logo.png", encode(rgba, "PNG"))}
        )
        assert created.status_code == 201, created.text
        profile_id = created.json()["id"]
        assert [p["id"] for p in second.get("/api/v1/watermarks").json()["watermarks"]] == [
            profile_id
        ]
        removed = second.post(
            ROUTE, files={"image": ("marked.png", marked)}, data={"watermark": profile_id}
        )
        assert removed.status_code == 200, removed.text
        assert removed.headers["X-Removal"] in ("deblend", "mixed")
        with replicas.client(1, other) as stranger:
            assert stranger.get(f"/api/v1/watermarks/{profile_id}").status_code == 404
        assert second.delete(f"/api/v1/watermarks/{profile_id}").status_code == 204
        assert first.get(f"/api/v1/watermarks/{profile_id}").status_code == 404


def test_queued_jobs_survive_a_redis_restart(replicas: Replicas) -> None:
    key = create_key(replicas.env, plan="enterprise", name="restart", limits=UNLIMITED)
    with replicas.client(0, key) as client:
        job_ids = [client.post(JOBS, files=SLOW).json()["id"] for _ in range(8)]
        waiting = queued_count(replicas.redis.url)
        assert waiting > 0, "every job started before the restart: nothing was left queued"
        replicas.redis.kill()  # appendonly, fsync always: what was acknowledged is on disk
        replicas.redis.start()
        ended = [finished(client, job_id, timeout_s=180) for job_id in job_ids]
        assert [job["status"] for job in ended] == ["succeeded"] * len(job_ids)
        for job_id in job_ids:
            assert client.get(f"{JOBS}/{job_id}/result").status_code == 200
        stats = counted(client, len(job_ids))
        assert stats["success"] == len(job_ids)
    print(f"redis restart: {waiting} of {len(job_ids)} jobs were queued; all ended, once each")


def test_a_replica_killed_mid_job_leaves_it_to_the_other_which_ends_it_once(
    replicas: Replicas,
) -> None:
    key = create_key(replicas.env, plan="enterprise", name="kill", limits=UNLIMITED)
    secret = create_webhook_secret(replicas.env, key)
    with WebhookReceiver() as receiver, replicas.client(0, key) as client:
        job_ids = [
            client.post(JOBS, files=SLOW, data={"callback_url": receiver.url}).json()["id"]
            for _ in range(6)  # more than both replicas run at once: some start later
        ]
        victim_job, fields = _just_started(replicas, job_ids)
        victim = replicas.holding(int(fields["worker"].split(":")[1]))
        survivor = next(service for service in replicas.services if service is not victim)
        replicas.kill(victim)
        with httpx.Client(
            base_url=survivor.base_url, headers={"X-API-Key": key}, timeout=120
        ) as other:
            ended = [finished(other, job_id, timeout_s=180) for job_id in job_ids]
            assert [job["status"] for job in ended] == ["succeeded"] * len(job_ids)
            reclaimed = next(job for job in ended if job["id"] == victim_job)
            assert reclaimed["attempts"] >= 2  # the survivor took it over after the lease
            # One usage record per job, never two. A record the killed replica had claimed
            # but not written is paid by the survivor once that claim's lease runs out
            # (jobs/worker.py: three webhook timeouts + 30 s), so wait past it.
            stats = counted(other, len(job_ids), timeout_s=120)
            assert stats["success"] == len(job_ids)
            receiver.wait_for(len(job_ids), timeout_s=60)
            time.sleep(1)
    deliveries = receiver.deliveries
    assert {delivery.headers["webhook-id"] for delivery in deliveries} == {
        f"msg_{job_id}" for job_id in job_ids
    }
    for delivery in deliveries:
        delivery.verified(secret)
    print(
        f"replica killed mid-job: {len(job_ids)} jobs ended once each; the killed one after "
        f"{reclaimed['attempts']} attempts; {len(deliveries)} webhook deliveries"
    )


def _just_started(replicas: Replicas, job_ids: list[str]) -> tuple[str, dict[str, str]]:
    """A job seen queued and then running: it has just started, seconds of work ahead."""
    seen_queued: set[str] = set()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for job_id in job_ids:
            fields = job_fields(replicas.redis.url, job_id)
            if fields.get("status") == "queued":
                seen_queued.add(job_id)
            elif job_id in seen_queued and fields.get("status") == "running":
                return job_id, fields
        time.sleep(0.02)
    raise AssertionError("no job was seen starting")


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
