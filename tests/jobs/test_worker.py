"""The worker in process: real jobs through the synchronous route's work (OpenCV), the
embedded stores, webhooks to a local receiver verified with `standardwebhooks`."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest

from api.job_wiring import AccountSecrets, AccountUsage, owner_of, removal_processor
from api.model_client import InProcessModels
from api.removal import Remover
from auth.accounts import Accounts
from auth.key_admin import KeyAdmin
from auth.plans import enterprise_plan
from auth.records import Account
from auth.sqlite_store import SqliteStore
from errors import ServiceUnavailable, error_body
from jobs.records import (
    Batch,
    Effect,
    Failed,
    Job,
    JobInput,
    Outcome,
    Owner,
    Submission,
    new_batch_id,
    new_job_id,
)
from jobs.retention import Retention
from jobs.sqlite_store import SqliteJobStore
from jobs.store import QueueCaps
from jobs.worker import MAX_ATTEMPTS, JobWorker, Processor, WorkerConfig
from runners.opencv_inpainter import OpenCVInpainter
from settings import Settings
from tests.images import box_mask, encode, photo
from tests.jobs.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.anyio
T = TypeVar("T")

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)
CONFIG = WorkerConfig(
    lease_s=0.6,
    concurrency=2,
    retry_delays_s=(0.1, 0.1, 0.1),
    webhook_timeout_s=2.0,
    allowed_networks=LOOPBACK,
    idle_poll_s=0.05,
    effect_poll_s=0.05,
    retry_backoff_s=0.05,
)
IMAGE = encode(photo(64, 48), "PNG")
MASK = encode(box_mask(64, 48, (8, 8, 24, 24)), "PNG")
ROOMY = QueueCaps(100, 1000)


class Setup:
    """A job store, an accounts store with one key and its webhook secret, and the
    synchronous route's work; workers are made on demand."""

    def __init__(self, tmp_path: Path) -> None:
        self.store = SqliteJobStore(
            tmp_path / "jobs.sqlite3", retention=Retention(result_s=60, record_s=120)
        )
        self.accounts_store = SqliteStore(tmp_path / "accounts.sqlite3")
        self.accounts = Accounts(self.accounts_store)
        self.admin = KeyAdmin(self.accounts_store)
        settings = Settings(data_dir=tmp_path, model="opencv")
        self.processor = removal_processor(Remover(InProcessModels(OpenCVInpainter()), settings))
        self.workers: list[JobWorker] = []
        self.account: Account
        self.secret: str

    async def open(self) -> None:
        plan = enterprise_plan(rate_per_minute=6000, burst=1000, quota=10**6)
        created = await self.admin.create(name="worker-tests", plan=plan)
        self.account = await self.accounts.authenticate(created.key)
        self.secret = (await self.admin.create_webhook_secret(created.prefix)).value

    @property
    def owner(self) -> Owner:
        return owner_of(self.account)

    def worker(
        self, processor: Processor | None = None, config: WorkerConfig = CONFIG
    ) -> JobWorker:
        worker = JobWorker(
            self.store,
            processor or self.processor,
            AccountUsage(self.accounts),
            AccountSecrets(self.accounts),
            config,
        )
        self.workers.append(worker)
        return worker

    async def submit(self, *, callback_url: str | None = None, image: bytes = IMAGE) -> Job:
        job = Job(
            new_job_id(),
            self.owner,
            "queued",
            time.time(),
            links_base="http://api.test",
            callback_url=callback_url,
        )
        await self.store.submit(Submission(self.owner, ((job, JobInput(image, MASK)),)), caps=ROOMY)
        return job

    async def ended(self, job_id: str, timeout_s: float = 10.0) -> Job:
        async def ended() -> Job | None:
            job = await self.store.job(job_id)
            return job if job is not None and job.ended else None

        return await until(ended, timeout_s)

    async def stats(self) -> dict[str, object]:
        return await self.accounts.stats(self.account)

    async def close(self) -> None:
        for worker in self.workers:
            await worker.stop()
        await self.store.aclose()
        await self.accounts.aclose()


async def until(check: Callable[[], Awaitable[T | None]], timeout_s: float = 10.0) -> T:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = await check()
        if found:
            return found
        await asyncio.sleep(0.02)
    raise AssertionError(f"not within {timeout_s} s")


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    made = Setup(tmp_path)
    await made.open()
    yield made
    await made.close()


async def usage_paid(setup: Setup, total: int) -> dict[str, object]:
    async def counted() -> dict[str, object] | None:
        stats = await setup.stats()
        return stats if stats["total"] == total else None

    return await until(counted)


# --- running jobs ------------------------------------------------------------------------------


async def test_a_job_runs_once_and_its_end_is_paid_once(setup: Setup) -> None:
    with WebhookReceiver() as receiver:
        job = await setup.submit(callback_url=receiver.url)
        worker = setup.worker()
        worker.start()
        done = await setup.ended(job.id)
        assert (done.status, done.attempts) == ("succeeded", 1)
        assert done.result_headers["X-Image-Size"] == "64x48"
        assert done.result_headers["X-Mask-Source"] == "uploaded"
        assert (await setup.store.result(job.id) or b"").startswith(b"\x89PNG")
        (delivery,) = await receiver.arrived(1)
        payload = delivery.verified(setup.secret)
        assert payload["type"] == "job.succeeded"  # type: ignore[index]
        assert payload["data"]["id"] == job.id  # type: ignore[index]
        assert payload["data"]["urls"]["result"] == f"http://api.test/api/v1/jobs/{job.id}/result"  # type: ignore[index]
        assert delivery.headers["webhook-id"] == f"msg_{job.id}"
        assert b"PNG" not in delivery.body  # thin: no image bytes
        stats = await usage_paid(setup, 1)
        assert (stats["success"], stats["failed"]) == (1, 0)
        # The same end paid again (a worker that died before forgetting the effect): once.
        await worker.pay(Effect("usage", job.id))
        assert (await setup.stats())["total"] == 1


async def test_a_failed_job_keeps_the_error_the_synchronous_route_answers(setup: Setup) -> None:
    job = await setup.submit(image=b"not an image")
    setup.worker().start()
    done = await setup.ended(job.id)
    assert done.status == "failed"
    assert done.error == {
        "error": "Bad Request",
        "detail": "Invalid image format: cannot identify image file",
        "status_code": 400,
    }
    stats = await usage_paid(setup, 1)
    assert (stats["success"], stats["failed"]) == (0, 1)


async def test_a_job_whose_worker_died_is_reclaimed_and_ends_once(setup: Setup) -> None:
    job = await setup.submit()
    dead = await setup.store.claim("worker-that-died", lease_s=0.3)  # claimed, never finished
    assert dead is not None
    setup.worker().start()
    done = await setup.ended(job.id)
    assert (done.status, done.attempts) == ("succeeded", 2)
    assert not await setup.store.complete(job.id, dead.token, await setup.processor(dead.input))
    await usage_paid(setup, 1)
    await asyncio.sleep(0.2)
    assert (await setup.stats())["total"] == 1


async def test_a_busy_model_puts_the_job_back_and_it_runs_again(setup: Setup) -> None:
    calls = 0

    async def busy_once(job_input: JobInput) -> Outcome:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ServiceUnavailable("Model is busy, retry later")
        return await setup.processor(job_input)

    job = await setup.submit()
    setup.worker(removal_processor_wrapping(busy_once)).start()
    done = await setup.ended(job.id)
    assert (done.status, done.attempts, calls) == ("succeeded", 2, 2)


def removal_processor_wrapping(call: Processor) -> Processor:
    """`call` with the wiring's error mapping: a ServiceUnavailable is a passing failure."""

    async def process(job_input: JobInput) -> Outcome:
        try:
            return await call(job_input)
        except ServiceUnavailable as exc:
            return Failed(error_body(503, exc.detail), retryable=True)

    return process


async def test_a_job_started_too_many_times_fails_for_good(setup: Setup) -> None:
    job = await setup.submit()
    for _ in range(MAX_ATTEMPTS):  # each claimer died with it
        assert await setup.store.claim("crashing-worker", lease_s=0.01) is not None
        await asyncio.sleep(0.02)
    setup.worker().start()
    done = await setup.ended(job.id)
    assert done.status == "failed" and done.error is not None
    assert done.error["status_code"] == 500
    assert f"started {MAX_ATTEMPTS} times" in str(done.error["detail"])


async def test_canceling_a_running_job_stops_its_work(setup: Setup) -> None:
    started, stopped = asyncio.Event(), asyncio.Event()

    async def slow(job_input: JobInput) -> Outcome:
        started.set()
        try:
            await asyncio.sleep(30)
        finally:
            stopped.set()
        raise AssertionError("not reached")

    job = await setup.submit()
    setup.worker(slow).start()
    await asyncio.wait_for(started.wait(), 5)
    canceled = await setup.store.cancel(job.id)
    assert canceled is not None and canceled.status == "canceled"
    await asyncio.wait_for(stopped.wait(), 5)  # the lease keeper noticed and stopped the work
    assert await setup.store.result(job.id) is None
    stats = await usage_paid(setup, 1)
    assert stats["failed"] == 1


async def test_stopping_a_worker_gives_its_running_jobs_back(setup: Setup) -> None:
    started = asyncio.Event()

    async def slow(job_input: JobInput) -> Outcome:
        started.set()
        await asyncio.sleep(30)
        raise AssertionError("not reached")

    job = await setup.submit()
    worker = setup.worker(slow)
    worker.start()
    await asyncio.wait_for(started.wait(), 5)
    await worker.stop()
    queued = await setup.store.job(job.id)
    assert queued is not None and (queued.status, queued.attempts) == ("queued", 1)
    setup.worker().start()  # another worker takes it at once, not after the lease
    done = await setup.ended(job.id, timeout_s=CONFIG.lease_s)
    assert (done.status, done.attempts) == ("succeeded", 2)


async def test_a_replica_that_runs_no_jobs_still_pays_effects(setup: Setup) -> None:
    job = await setup.submit()
    setup.worker(config=WorkerConfig(**{**CONFIG.__dict__, "concurrency": 0})).start()
    await asyncio.sleep(0.3)
    queued = await setup.store.job(job.id)
    assert queued is not None and queued.status == "queued"
    await setup.store.cancel(job.id)
    await usage_paid(setup, 1)


# --- webhooks ----------------------------------------------------------------------------------


async def test_webhooks_are_retried_with_the_same_id_and_redirects_are_not_followed(
    setup: Setup,
) -> None:
    with WebhookReceiver() as elsewhere, WebhookReceiver([500, 302, 200]) as receiver:
        receiver.redirect_to = elsewhere.url
        job = await setup.submit(callback_url=receiver.url)
        setup.worker().start()
        deliveries = await receiver.arrived(3)
        assert [delivery.answered for delivery in deliveries] == [500, 302, 200]
        assert {delivery.headers["webhook-id"] for delivery in deliveries} == {f"msg_{job.id}"}
        bodies = {delivery.body for delivery in deliveries}
        assert len(bodies) == 1  # the same event every time
        for delivery in deliveries:
            delivery.verified(setup.secret)
        await asyncio.sleep(0.4)
        assert len(receiver.deliveries) == 3  # delivered: no more attempts
        assert elsewhere.deliveries == []  # the redirect was not followed


async def test_a_410_stops_the_retries_and_a_dead_receiver_is_given_up(setup: Setup) -> None:
    with WebhookReceiver([410]) as gone, WebhookReceiver([500]) as failing:
        await setup.submit(callback_url=gone.url)
        await setup.submit(callback_url=failing.url)
        setup.worker().start()
        await gone.arrived(1)
        await failing.arrived(1 + len(CONFIG.retry_delays_s))
        await asyncio.sleep(0.6)
        assert len(gone.deliveries) == 1
        assert len(failing.deliveries) == 1 + len(CONFIG.retry_delays_s)  # then given up
        assert await setup.store.claim_effect(lease_s=1) is None


async def test_during_a_secret_rotation_deliveries_verify_with_either_secret(
    setup: Setup,
) -> None:
    old = setup.secret
    new = (await setup.admin.rotate_webhook_secret(setup.account.prefix, grace_seconds=3600)).value
    with WebhookReceiver() as receiver:
        await setup.submit(callback_url=receiver.url)
        setup.worker().start()
        (delivery,) = await receiver.arrived(1)
        assert len(delivery.headers["webhook-signature"].split(" ")) == 2
        assert delivery.verified(old) == delivery.verified(new)


async def test_a_batch_sends_one_completed_event_when_its_last_job_ends(setup: Setup) -> None:
    with WebhookReceiver() as receiver:
        batch_id = new_batch_id()
        jobs = [
            Job(new_job_id(), setup.owner, "queued", time.time(), batch_id=batch_id, position=n)
            for n in range(3)
        ]
        batch = Batch(
            batch_id,
            setup.owner,
            time.time(),
            tuple(job.id for job in jobs),
            links_base="http://api.test",
            callback_url=receiver.url,
        )
        inputs = [JobInput(IMAGE, MASK), JobInput(b"broken"), JobInput(IMAGE, MASK)]
        await setup.store.submit(
            Submission(setup.owner, tuple(zip(jobs, inputs, strict=True)), batch=batch), caps=ROOMY
        )
        setup.worker().start()
        (delivery,) = await receiver.arrived(1)
        event = json.loads(delivery.body)
        assert event == delivery.verified(setup.secret)
        assert event["type"] == "batch.completed"
        assert event["data"]["id"] == batch_id
        assert delivery.headers["webhook-id"] == f"msg_{batch_id}"
        summary = event["data"]["summary"]
        assert (summary["total"], summary["succeeded"], summary["failed"]) == (3, 2, 1)
        await usage_paid(setup, 3)
        await asyncio.sleep(0.3)
        assert len(receiver.deliveries) == 1  # no job events for a batch's jobs
