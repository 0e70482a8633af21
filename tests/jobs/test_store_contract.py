"""One contract, every job store: the SQLite file and Redis give the same answers.

Both run on their own clocks (Redis: the server's TIME), so the lease and retention tests
use fractions of a second and short sleeps.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from jobs.records import (
    Batch,
    Effect,
    Failed,
    IdempotencyKey,
    Job,
    JobInput,
    Owner,
    Submission,
    Succeeded,
    new_batch_id,
    new_job_id,
)
from jobs.retention import Retention
from jobs.sqlite_store import SqliteJobStore
from jobs.store import JobStore, QueueCaps, QueueFull

pytestmark = pytest.mark.anyio

ALICE = Owner("key_alice", '{"who": "alice"}')
BOB = Owner("key_bob", '{"who": "bob"}')
ROOMY = QueueCaps(per_account=100, total=1000)
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4  # binary, with every byte value
IMAGE = b"\xff\xd8\xff" + bytes(range(256))[::-1] * 8
SUCCESS = Succeeded(PNG, {"X-Model": "opencv", "X-Image-Size": "4x4"}, 0.25)
NO_WATERMARK = {"error": "Unprocessable Entity", "detail": "No watermark", "status_code": 422}


def a_job(owner: Owner = ALICE, **fields: object) -> Job:
    return Job(
        id=new_job_id(),
        owner=owner,
        status="queued",
        created_at=time.time(),
        **fields,  # type: ignore[arg-type]
    )


async def submit_one(
    store: JobStore, owner: Owner = ALICE, *, mask: bytes | None = None, **fields: object
) -> Job:
    job = a_job(owner, **fields)
    await store.submit(Submission(owner, ((job, JobInput(IMAGE, mask)),)), caps=ROOMY)
    return job


async def submit_batch(
    store: JobStore, count: int, *, callback_url: str | None = None, owner: Owner = ALICE
) -> Batch:
    batch_id = new_batch_id()
    jobs = [a_job(owner, batch_id=batch_id, position=n, filename=f"{n}.png") for n in range(count)]
    batch = Batch(
        batch_id,
        owner,
        time.time(),
        tuple(job.id for job in jobs),
        links_base="http://api.test",
        callback_url=callback_url,
    )
    await store.submit(
        Submission(owner, tuple((job, JobInput(IMAGE)) for job in jobs), batch=batch), caps=ROOMY
    )
    return batch


async def due_effects(store: JobStore) -> set[str]:
    """Every effect due now (claimed, then finished, so the store is left without them)."""
    found = set()
    while (effect := await store.claim_effect(lease_s=30)) is not None:
        found.add(effect.id)
        await store.finish_effect(effect)
    return found


# --- submitting and reading ---------------------------------------------------------------


async def test_a_submitted_job_reads_back_queued_with_its_fields(job_store: JobStore) -> None:
    job = await submit_one(
        job_store, filename="photo.jpg", callback_url="https://hooks.test/x", links_base="http://h"
    )
    found = await job_store.job(job.id)
    assert found is not None
    assert (found.status, found.attempts, found.owner) == ("queued", 0, ALICE)
    assert (found.filename, found.callback_url, found.links_base) == (
        "photo.jpg",
        "https://hooks.test/x",
        "http://h",
    )
    assert found.created_at == pytest.approx(job.created_at)
    assert found.started_at is found.finished_at is found.error is None
    assert await job_store.job("job_" + "0" * 32) is None
    assert await job_store.result(job.id) is None
    assert (await job_store.unfinished(ALICE.id), await job_store.unfinished()) == (1, 1)
    assert await job_store.unfinished(BOB.id) == 0


async def test_a_batch_reads_back_with_its_jobs_in_order(job_store: JobStore) -> None:
    batch = await submit_batch(job_store, 3, callback_url="https://hooks.test/b")
    found = await job_store.batch(batch.id)
    assert found == batch
    jobs = await job_store.jobs([*reversed(batch.job_ids), "job_" + "0" * 32])
    assert [job.id for job in jobs] == list(reversed(batch.job_ids))
    assert [job.position for job in jobs] == [2, 1, 0]
    assert {job.batch_id for job in jobs} == {batch.id}
    assert await job_store.batch("batch_" + "0" * 32) is None


async def test_queue_caps_refuse_a_whole_submission(job_store: JobStore) -> None:
    caps = QueueCaps(per_account=3, total=4)
    jobs = [(a_job(), JobInput(IMAGE)) for _ in range(2)]
    await job_store.submit(Submission(ALICE, tuple(jobs)), caps=caps)
    two_more = tuple((a_job(), JobInput(IMAGE)) for _ in range(2))
    with pytest.raises(QueueFull) as refused:
        await job_store.submit(Submission(ALICE, two_more), caps=caps)
    assert (refused.value.scope, refused.value.limit) == ("account", 3)
    assert await job_store.jobs([job.id for job, _ in two_more]) == []  # all or nothing
    bobs = tuple((a_job(BOB), JobInput(IMAGE)) for _ in range(3))
    with pytest.raises(QueueFull) as everyone:
        await job_store.submit(Submission(BOB, bobs), caps=caps)
    assert everyone.value.scope == "total"
    await job_store.submit(Submission(BOB, bobs[:2]), caps=caps)
    assert await job_store.unfinished() == 4


# --- claiming, leases, completion ----------------------------------------------------------


async def test_claims_take_the_oldest_job_first_with_its_input(job_store: JobStore) -> None:
    first = await submit_one(job_store, mask=b"\x00\x01mask")
    second = await submit_one(job_store)
    claim = await job_store.claim("worker-a", lease_s=30)
    assert claim is not None
    assert (claim.job.id, claim.job.status, claim.token) == (first.id, "running", 1)
    assert claim.job.started_at is not None
    assert claim.input == JobInput(IMAGE, b"\x00\x01mask")
    again = await job_store.claim("worker-b", lease_s=30)
    assert again is not None and again.job.id == second.id
    assert again.input.mask is None
    assert await job_store.claim("worker-c", lease_s=30) is None


async def test_a_claim_carries_the_watermark_profile_copied_into_the_job(
    job_store: JobStore,
) -> None:
    both = JobInput(IMAGE, b"\x00mask", PNG)
    only_watermark = JobInput(IMAGE, None, PNG[::-1])
    for job_input in (both, only_watermark):
        await job_store.submit(Submission(ALICE, ((a_job(), job_input),)), caps=ROOMY)
    claims = [await job_store.claim("worker", lease_s=30) for _ in range(2)]
    assert [claim.input for claim in claims if claim is not None] == [both, only_watermark]


def test_an_older_jobs_database_gains_the_watermark_column(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    with sqlite3.connect(path) as old:
        old.execute(
            "CREATE TABLE job_inputs (job_id TEXT PRIMARY KEY, image BLOB NOT NULL, mask BLOB)"
        )
        old.execute("INSERT INTO job_inputs VALUES ('job_old', x'00', NULL)")
    old.close()

    async def open_and_close() -> None:
        store = SqliteJobStore(path, retention=Retention(result_s=60.0, record_s=60.0))
        await store.unfinished()
        await store.aclose()

    asyncio.run(open_and_close())
    with sqlite3.connect(path) as reopened:
        rows = reopened.execute("SELECT job_id, watermark FROM job_inputs").fetchall()
    reopened.close()
    assert rows == [("job_old", None)]


async def test_completion_keeps_the_result_drops_the_input_and_owes_effects(
    job_store: JobStore,
) -> None:
    job = await submit_one(job_store, callback_url="https://hooks.test/x")
    quiet = await submit_one(job_store)
    for _ in range(2):
        claim = await job_store.claim("worker", lease_s=30)
        assert claim is not None
        outcome = SUCCESS if claim.job.id == job.id else Failed(NO_WATERMARK)
        assert await job_store.complete(claim.job.id, claim.token, outcome)
    done, failed = await job_store.jobs([job.id, quiet.id])
    assert (done.status, done.result_headers, done.processing_seconds) == (
        "succeeded",
        SUCCESS.headers,
        0.25,
    )
    assert done.finished_at is not None and done.result_expires_at is not None
    assert done.result_expires_at == pytest.approx(done.finished_at + 3600, abs=1)
    assert await job_store.result(job.id) == PNG
    assert (failed.status, failed.error) == ("failed", NO_WATERMARK)
    assert await job_store.result(quiet.id) is None
    assert await job_store.unfinished() == 0
    assert await due_effects(job_store) == {
        f"usage:{job.id}",
        f"job-webhook:{job.id}",
        f"usage:{quiet.id}",
    }


async def test_a_lapsed_lease_is_reclaimed_and_only_the_new_holder_completes(
    job_store: JobStore,
) -> None:
    job = await submit_one(job_store)
    first = await job_store.claim("worker-a", lease_s=0.2)
    assert first is not None
    assert await job_store.claim("worker-b", lease_s=0.2) is None  # held
    await asyncio.sleep(0.35)
    second = await job_store.claim("worker-b", lease_s=30)
    assert second is not None and second.job.id == job.id
    assert (second.token, second.job.attempts) == (2, 2)
    assert second.input == first.input  # the input stays until the job ends
    assert not await job_store.renew(job.id, first.token, lease_s=30)
    assert not await job_store.complete(job.id, first.token, Failed(NO_WATERMARK))
    assert await job_store.complete(job.id, second.token, SUCCESS)
    assert not await job_store.complete(job.id, second.token, Failed(NO_WATERMARK))
    found = await job_store.job(job.id)
    assert found is not None and found.status == "succeeded"
    assert await job_store.result(job.id) == PNG
    assert await due_effects(job_store) == {f"usage:{job.id}"}  # once


async def test_the_first_completion_of_a_reclaimed_job_is_the_one_kept(
    job_store: JobStore,
) -> None:
    job = await submit_one(job_store)
    stale = await job_store.claim("worker-a", lease_s=0.2)
    await asyncio.sleep(0.35)
    current = await job_store.claim("worker-b", lease_s=30)
    assert stale is not None and current is not None
    assert await job_store.complete(job.id, current.token, SUCCESS)
    other = Succeeded(b"another png", {}, 9.0)
    assert not await job_store.complete(job.id, stale.token, other)
    assert await job_store.result(job.id) == PNG


async def test_renewing_keeps_the_lease(job_store: JobStore) -> None:
    await submit_one(job_store)
    claim = await job_store.claim("worker-a", lease_s=0.3)
    assert claim is not None
    for _ in range(3):
        await asyncio.sleep(0.15)
        assert await job_store.renew(claim.job.id, claim.token, lease_s=0.3)
    assert await job_store.claim("worker-b", lease_s=0.3) is None


async def test_a_released_job_waits_its_delay_then_runs_again(job_store: JobStore) -> None:
    job = await submit_one(job_store)
    claim = await job_store.claim("worker-a", lease_s=30)
    assert claim is not None
    assert await job_store.release(job.id, claim.token, delay_s=0.3)
    assert not await job_store.release(job.id, claim.token, delay_s=0.3)
    found = await job_store.job(job.id)
    assert found is not None and found.status == "queued"
    assert await job_store.claim("worker-b", lease_s=30) is None
    await asyncio.sleep(0.4)
    again = await job_store.claim("worker-b", lease_s=30)
    assert again is not None and (again.job.id, again.token) == (job.id, 2)
    assert await job_store.unfinished() == 1


@pytest.mark.parametrize("workers", [8])
async def test_parallel_claimers_each_get_a_job_of_their_own(
    make_job_store: Callable[..., JobStore], job_store: JobStore, workers: int
) -> None:
    submitted = [await submit_one(job_store) for _ in range(12)]
    clients = [make_job_store() for _ in range(4)]
    try:

        async def claimer(number: int) -> list[str]:
            claimed = []
            store = clients[number % len(clients)]
            while (claim := await store.claim(f"worker-{number}", lease_s=30)) is not None:
                claimed.append(claim.job.id)
            return claimed

        results = await asyncio.gather(*(claimer(n) for n in range(workers)))
    finally:
        for client in clients:
            await client.aclose()
    claims = Counter(job_id for claimed in results for job_id in claimed)
    assert set(claims) == {job.id for job in submitted}
    assert set(claims.values()) == {1}, "a job was claimed twice while its lease held"


# --- cancel, delete, retention -----------------------------------------------------------


async def test_cancel_ends_a_queued_or_running_job_and_fences_its_worker(
    job_store: JobStore,
) -> None:
    queued = await submit_one(job_store, callback_url="https://hooks.test/x")
    running = await submit_one(job_store)
    claim = await job_store.claim("worker", lease_s=30)
    assert claim is not None and claim.job.id == queued.id
    canceled_running = await job_store.cancel(queued.id)
    assert canceled_running is not None and canceled_running.status == "canceled"
    assert not await job_store.renew(queued.id, claim.token, lease_s=30)
    assert not await job_store.complete(queued.id, claim.token, SUCCESS)
    canceled_queued = await job_store.cancel(running.id)
    assert canceled_queued is not None and canceled_queued.status == "canceled"
    assert canceled_queued.finished_at is not None
    assert await job_store.claim("worker", lease_s=30) is None
    assert await job_store.unfinished() == 0
    # Usage is owed for each (admitted work that ended); a canceled job sends no webhook.
    assert await due_effects(job_store) == {f"usage:{queued.id}", f"usage:{running.id}"}
    again = await job_store.cancel(running.id)
    assert again is not None and again.finished_at == canceled_queued.finished_at
    assert await job_store.cancel("job_" + "0" * 32) is None


async def test_delete_drops_the_result_at_once(job_store: JobStore) -> None:
    job = await submit_one(job_store)
    claim = await job_store.claim("worker", lease_s=30)
    assert claim is not None
    await job_store.complete(job.id, claim.token, SUCCESS)
    await job_store.delete(job.id)
    assert await job_store.result(job.id) is None
    found = await job_store.job(job.id)
    assert found is not None and found.status_at(time.time()) == "expired"
    unfinished = await submit_one(job_store)
    await job_store.delete(unfinished.id)
    gone = await job_store.job(unfinished.id)
    assert gone is not None and gone.status == "canceled"


async def test_results_expire_after_their_time(make_job_store: Callable[..., JobStore]) -> None:
    store = make_job_store(Retention(result_s=0.3, record_s=60))
    try:
        job = await submit_one(store)
        claim = await store.claim("worker", lease_s=30)
        assert claim is not None
        await store.complete(job.id, claim.token, SUCCESS)
        assert await store.result(job.id) == PNG
        await asyncio.sleep(0.45)
        await store.purge()
        assert await store.result(job.id) is None
        found = await store.job(job.id)
        assert found is not None
        assert (found.status, found.status_at(time.time())) == ("succeeded", "expired")
    finally:
        await store.aclose()


async def test_records_end_after_their_time(make_job_store: Callable[..., JobStore]) -> None:
    store = make_job_store(Retention(result_s=0.2, record_s=0.3))
    try:
        batch = await submit_batch(store, 1)
        claim = await store.claim("worker", lease_s=30)
        assert claim is not None
        await store.complete(claim.job.id, claim.token, SUCCESS)
        await asyncio.sleep(0.45)
        await store.purge()
        assert await store.job(claim.job.id) is None
        assert await store.batch(batch.id) is None
    finally:
        await store.aclose()


# --- batches -------------------------------------------------------------------------------


async def test_a_batch_completes_when_its_last_job_ends(job_store: JobStore) -> None:
    batch = await submit_batch(job_store, 3, callback_url="https://hooks.test/b")
    first = await job_store.claim("worker", lease_s=30)
    assert first is not None
    await job_store.complete(first.job.id, first.token, SUCCESS)
    await job_store.cancel(batch.job_ids[1])
    halfway = await job_store.batch(batch.id)
    assert halfway is not None and halfway.finished_at is None
    effects = await due_effects(job_store)
    assert not any(effect.startswith("batch-webhook") for effect in effects)
    last = await job_store.claim("worker", lease_s=30)
    assert last is not None and last.job.id == batch.job_ids[2]
    await job_store.complete(last.job.id, last.token, Failed(NO_WATERMARK))
    done = await job_store.batch(batch.id)
    assert done is not None and done.finished_at is not None
    assert f"batch-webhook:{batch.id}" in await due_effects(job_store)


# --- idempotency ---------------------------------------------------------------------------


async def test_an_idempotency_key_leads_to_what_it_made(job_store: JobStore) -> None:
    key = IdempotencyKey(ALICE.id, "order-17", "fingerprint-1")
    assert (await job_store.begin_idempotent(key)).state == "new"
    assert (await job_store.begin_idempotent(key)).state == "in_progress"
    other_body = IdempotencyKey(ALICE.id, "order-17", "fingerprint-2")
    assert (await job_store.begin_idempotent(other_body)).state == "mismatch"
    job = a_job()
    await job_store.submit(
        Submission(ALICE, ((job, JobInput(IMAGE)),), idempotency=key), caps=ROOMY
    )
    replay = await job_store.begin_idempotent(key)
    assert (replay.state, replay.target) == ("done", job.id)
    bobs = IdempotencyKey(BOB.id, "order-17", "fingerprint-2")  # keys are per account
    assert (await job_store.begin_idempotent(bobs)).state == "new"


async def test_an_abandoned_key_is_free_again(job_store: JobStore) -> None:
    key = IdempotencyKey(ALICE.id, "order-18", "fingerprint-1")
    assert (await job_store.begin_idempotent(key)).state == "new"
    await job_store.abandon_idempotent(key)
    assert (await job_store.begin_idempotent(key)).state == "new"


# --- effects -------------------------------------------------------------------------------


async def test_a_claimed_effect_is_hidden_until_retried_or_finished(job_store: JobStore) -> None:
    job = await submit_one(job_store)
    await job_store.cancel(job.id)
    effect = await job_store.claim_effect(lease_s=30)
    assert effect == Effect("usage", job.id, 0)
    assert await job_store.claim_effect(lease_s=30) is None
    await job_store.retry_effect(effect, delay_s=0.2)
    assert await job_store.claim_effect(lease_s=30) is None
    await asyncio.sleep(0.3)
    again = await job_store.claim_effect(lease_s=0.2)
    assert again == Effect("usage", job.id, 1)
    await asyncio.sleep(0.3)  # its claim lapsed: another claimer gets it
    third = await job_store.claim_effect(lease_s=30)
    assert third == Effect("usage", job.id, 1)
    await job_store.finish_effect(third)
    await asyncio.sleep(0.05)
    assert await job_store.claim_effect(lease_s=30) is None
