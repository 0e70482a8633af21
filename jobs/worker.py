"""Running jobs, and paying what their ends owe, in every HTTP worker process.

    worker = JobWorker(store, processor, recorder, secrets, config)
    await worker.start()        # with the app's lifespan
    worker.notify()             # a job was just submitted here: look now
    await worker.stop()         # running jobs go back to the queue at once

At least once, with exactly-once effects:

- a job is claimed with a lease and the lease renewed while it runs; a worker that dies
  stops renewing, and after `lease_s` any other worker reclaims the job (its attempt + 1);
- the outcome is stored only with the lease's token (`JobStore.complete`), so a job run
  twice ends once, with one result; a passing failure (the model busy or restarting, 503)
  puts the job back in the queue with a backoff, at most `MAX_ATTEMPTS` times in all;
- what an end owes (the usage record, the webhook) is an `Effect` the store wrote in the
  same step; effect loops claim them with a lease too, and finish them only once done:
  usage is recorded under the job's receipt (counted once however often it is sent),
  a webhook carries the job's `webhook-id` (the same on every retry and every replica).

Nothing from above is imported: the processor, the usage recorder and the webhook secrets
are injected as the small protocols below (`api/job_routes.py` wires them).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import Protocol

from errors import error_body
from jobs.callback_urls import IPNetwork
from jobs.records import Claim, Effect, Failed, JobInput, Outcome, Owner
from jobs.store import JobStore, JobStoreUnavailable
from jobs.webhooks import (
    Delivery,
    RetrySchedule,
    WebhookSender,
    batch_event,
    encode_event,
    job_event,
    message_id,
)

logger = logging.getLogger(__name__)

Processor = Callable[[JobInput], Awaitable[Outcome]]
"""The work of one job: the HTTP edge wires it to the synchronous route's work."""

MAX_ATTEMPTS = 5
"""Claims of one job, reclaims and passing failures included, before it fails for good."""
RETRY_BACKOFF_S = 5.0
"""A passing failure waits this long times the attempts so far before the next try."""
USAGE_RETRY_S = 5.0
IDLE_POLL_S = 0.25
EFFECT_POLL_S = 0.5
PURGE_INTERVAL_S = 60.0
STORE_DOWN_PAUSE_S = 1.0


class UsageRecorder(Protocol):
    async def record(
        self, owner: Owner, *, succeeded: bool, processing_seconds: float, receipt: str
    ) -> bool:
        """Count the ended job once per `receipt`; False when it could not be stored yet."""
        ...


class SigningSecrets(Protocol):
    async def secrets_for(self, owner_id: str) -> list[str]:
        """The account's live webhook secrets (`whsec_…`), newest first; raises when unknown
        right now (the delivery is tried again later)."""
        ...


@dataclass(frozen=True)
class WorkerConfig:
    lease_s: float
    concurrency: int
    """Jobs run at once by this process; 0: it runs none (and still pays effects)."""
    retry_delays_s: tuple[float, ...]
    webhook_timeout_s: float
    allowed_networks: tuple[IPNetwork, ...] = ()
    effect_concurrency: int = 4
    """Effects (usage records, webhook deliveries) paid at once by this process."""
    idle_poll_s: float = IDLE_POLL_S
    effect_poll_s: float = EFFECT_POLL_S
    retry_backoff_s: float = RETRY_BACKOFF_S


def worker_name() -> str:
    """Names this process in a job's record: which replica holds it (logs, tests)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class JobWorker:
    def __init__(
        self,
        store: JobStore,
        processor: Processor,
        recorder: UsageRecorder,
        secrets: SigningSecrets,
        config: WorkerConfig,
        *,
        sender: WebhookSender | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.processor = processor
        self.recorder = recorder
        self.secrets = secrets
        self.config = config
        self.schedule = RetrySchedule(config.retry_delays_s)
        self.sender = sender or WebhookSender(
            timeout_s=config.webhook_timeout_s, allowed_networks=config.allowed_networks
        )
        self.clock = clock
        self.name = worker_name()
        self._wake = asyncio.Event()
        self._changed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._running: set[asyncio.Task[None]] = set()
        self._store_down_since: float | None = None

    # --- life cycle ---------------------------------------------------------------------------

    def start(self, after: Awaitable[object] | None = None) -> None:
        """Start the loops in the running event loop; job loops wait for `after` first (the
        model's warm-up), effect loops do not."""
        self._tasks.append(asyncio.create_task(self._job_loop(after), name="jobs"))
        self._tasks.append(asyncio.create_task(self._effect_loop(), name="job-effects"))
        self._tasks.append(asyncio.create_task(self._purge_loop(), name="jobs-purge"))

    async def stop(self) -> None:
        """Stop claiming; jobs still running here go back to the queue for another worker."""
        for task in [*self._tasks, *self._running]:
            task.cancel()
        for task in [*self._tasks, *self._running]:
            with suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self.sender.aclose()

    def notify(self) -> None:
        """A job was submitted: claim now rather than at the next poll."""
        self._wake.set()

    async def changed(self, timeout_s: float) -> None:
        """Return when a job ends in this process, or after `timeout_s`."""
        with suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout_s)

    # --- jobs ---------------------------------------------------------------------------------

    async def _job_loop(self, after: Awaitable[object] | None) -> None:
        if self.config.concurrency == 0:
            return
        if after is not None:
            with suppress(Exception):
                await after
        slots = asyncio.Semaphore(self.config.concurrency)
        while True:
            await slots.acquire()
            try:
                claim = await self.store.claim(self.name, lease_s=self.config.lease_s)
            except JobStoreUnavailable as exc:
                slots.release()
                await self._store_failed(exc)
                continue
            self._store_answered()
            if claim is None:
                slots.release()
                await self._idle(self.config.idle_poll_s)
                continue
            self._spawn(self._run(claim), slots, name=claim.job.id)

    def _spawn(self, work: Awaitable[None], slots: asyncio.Semaphore, *, name: str) -> None:
        async def run() -> None:
            await work

        task = asyncio.create_task(run(), name=name)
        self._running.add(task)

        def finished(done: asyncio.Task[None]) -> None:
            self._running.discard(done)
            slots.release()

        task.add_done_callback(finished)

    async def _run(self, claim: Claim) -> None:
        job = claim.job
        if claim.token > MAX_ATTEMPTS:
            detail = (
                f"Job {job.id} was started {MAX_ATTEMPTS} times and never finished "
                "(the process running it stopped each time)"
            )
            await self._complete(claim, Failed(error_body(500, detail)))
            return
        work = asyncio.create_task(self._outcome(claim))
        keeper = asyncio.create_task(self._keep_lease(claim, work))
        try:
            outcome = await work
        except asyncio.CancelledError:
            if keeper.done() and not keeper.cancelled():
                # The lease was lost (canceled, or reclaimed by another worker): its
                # holder decides now; nothing of this run is kept.
                logger.info("Job %s: lease lost, this attempt is dropped", job.id)
                return
            keeper.cancel()
            await asyncio.shield(self._give_back(claim))
            raise
        finally:
            keeper.cancel()
        if isinstance(outcome, Failed) and outcome.retryable and claim.token < MAX_ATTEMPTS:
            delay = self.config.retry_backoff_s * claim.token
            logger.info(
                "Job %s: %s; trying again in %.0f s", job.id, outcome.error.get("detail"), delay
            )
            with suppress(JobStoreUnavailable):
                await self.store.release(job.id, claim.token, delay_s=delay)
            return
        await self._complete(claim, outcome)

    async def _outcome(self, claim: Claim) -> Outcome:
        try:
            return await self.processor(claim.input)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("Job %s: the processor failed", claim.job.id)
            return Failed(error_body(500, f"Internal server error (job {claim.job.id})"))

    async def _keep_lease(self, claim: Claim, work: asyncio.Task[Outcome]) -> None:
        """Renew the lease while the job runs; cancel the work when the lease is lost."""
        interval = self.config.lease_s / 3
        while True:
            await asyncio.sleep(interval)
            try:
                held = await self.store.renew(
                    claim.job.id, claim.token, lease_s=self.config.lease_s
                )
            except JobStoreUnavailable as exc:
                logger.warning("Job %s: lease not renewed (%s)", claim.job.id, exc)
                continue
            if not held:
                work.cancel()
                return

    async def _complete(self, claim: Claim, outcome: Outcome) -> None:
        for attempt in range(3):
            try:
                accepted = await self.store.complete(claim.job.id, claim.token, outcome)
            except JobStoreUnavailable as exc:
                logger.warning("Job %s: outcome not stored yet (%s)", claim.job.id, exc)
                await asyncio.sleep(STORE_DOWN_PAUSE_S * (attempt + 1))
                continue
            if accepted:
                status = "succeeded" if not isinstance(outcome, Failed) else "failed"
                logger.info("Job %s %s (attempt %d)", claim.job.id, status, claim.token)
                self._signal_change()
                self.notify()  # an effect is due now
            else:
                logger.info("Job %s: ended elsewhere; this outcome is dropped", claim.job.id)
            return
        # The store stayed down: the lease runs out and another worker runs the job again.
        logger.error("Job %s: outcome lost with the store down; it will run again", claim.job.id)

    async def _give_back(self, claim: Claim) -> None:
        with suppress(JobStoreUnavailable):
            await self.store.release(claim.job.id, claim.token, delay_s=0)

    # --- effects ------------------------------------------------------------------------------

    async def _effect_loop(self) -> None:
        # Long enough for a delivery's resolution, connection and answer, each bounded.
        lease_s = self.config.webhook_timeout_s * 3 + 30
        slots = asyncio.Semaphore(self.config.effect_concurrency)
        while True:
            await slots.acquire()
            try:
                effect = await self.store.claim_effect(lease_s=lease_s)
            except JobStoreUnavailable as exc:
                slots.release()
                await self._store_failed(exc)
                continue
            if effect is None:
                slots.release()
                await self._idle(self.config.effect_poll_s)
                continue
            self._spawn(self._pay_logged(effect), slots, name=effect.id)

    async def _pay_logged(self, effect: Effect) -> None:
        try:
            await self.pay(effect)
        except JobStoreUnavailable as exc:
            # Its claim runs out and it is paid later, by this process or another.
            logger.warning("Effect %s not finished: %s", effect.id, exc)
        except Exception:
            logger.exception("Effect %s failed; it is tried again later", effect.id)
            with suppress(JobStoreUnavailable):
                await self.store.retry_effect(effect, delay_s=USAGE_RETRY_S)

    async def pay(self, effect: Effect) -> None:
        """Do what `effect` owes; then forget it, or schedule it again."""
        if effect.kind == "usage":
            await self._record_usage(effect)
        else:
            await self._send_webhook(effect)

    async def _record_usage(self, effect: Effect) -> None:
        job = await self.store.job(effect.target)
        if job is None:
            await self.store.finish_effect(effect)
            return
        stored = await self.recorder.record(
            job.owner,
            succeeded=job.status == "succeeded",
            processing_seconds=job.processing_seconds or 0.0,
            receipt=f"job:{job.id}",
        )
        if stored:
            await self.store.finish_effect(effect)
        else:
            await self.store.retry_effect(effect, delay_s=USAGE_RETRY_S)

    async def _send_webhook(self, effect: Effect) -> None:
        event = await self._event(effect)
        if event is None:
            await self.store.finish_effect(effect)
            return
        url, owner_id, body = event
        webhook_id = message_id(effect.target)
        try:
            secrets = await self.secrets.secrets_for(owner_id)
        except Exception as exc:
            logger.warning("Webhook %s: signing secrets unavailable (%s)", webhook_id, exc)
            await self.store.retry_effect(effect, delay_s=USAGE_RETRY_S)
            return
        if not secrets:
            logger.warning("Webhook %s not sent: the account has no webhook secret", webhook_id)
            await self.store.finish_effect(effect)
            return
        delivery = await self.sender.deliver(
            url, webhook_id, body, secrets, timestamp=int(self.clock())
        )
        await self._after_delivery(effect, webhook_id, delivery)

    async def _event(self, effect: Effect) -> tuple[str, str, bytes] | None:
        """The webhook's URL, owner and body; None when its record is gone."""
        if effect.kind == "job-webhook":
            job = await self.store.job(effect.target)
            if job is None or job.callback_url is None or job.status not in ("succeeded", "failed"):
                return None
            return job.callback_url, job.owner.id, encode_event(job_event(job))
        batch = await self.store.batch(effect.target)
        if batch is None or batch.callback_url is None or batch.finished_at is None:
            return None
        jobs = await self.store.jobs(batch.job_ids)
        return batch.callback_url, batch.owner.id, encode_event(batch_event(batch, jobs))

    async def _after_delivery(self, effect: Effect, webhook_id: str, delivery: Delivery) -> None:
        attempt = effect.attempt + 1
        if delivery.delivered:
            logger.info(
                "Webhook %s delivered (attempt %d, %s)", webhook_id, attempt, delivery.detail
            )
            await self.store.finish_effect(effect)
            return
        if delivery.gone:
            logger.info("Webhook %s: the receiver answered 410; no more attempts", webhook_id)
            await self.store.finish_effect(effect)
            return
        delay = self.schedule.delay_after(attempt)
        if delay is None:
            logger.warning(
                "Webhook %s given up after %d attempts (%s)", webhook_id, attempt, delivery.detail
            )
            await self.store.finish_effect(effect)
            return
        logger.info(
            "Webhook %s attempt %d failed (%s); next in %.0f s",
            webhook_id,
            attempt,
            delivery.detail,
            delay,
        )
        await self.store.retry_effect(effect, delay_s=delay)

    # --- housekeeping -------------------------------------------------------------------------

    async def _purge_loop(self) -> None:
        while True:
            try:
                await self.store.purge()
            except JobStoreUnavailable as exc:
                logger.debug("Retention sweep skipped: %s", exc)
            await asyncio.sleep(PURGE_INTERVAL_S)

    async def _idle(self, seconds: float) -> None:
        with suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)
        self._wake.clear()

    def _signal_change(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _store_failed(self, exc: Exception) -> None:
        if self._store_down_since is None:
            self._store_down_since = self.clock()
            logger.warning(
                "Job store unavailable (%s); retrying every %.0f s", exc, STORE_DOWN_PAUSE_S
            )
        await asyncio.sleep(STORE_DOWN_PAUSE_S)

    def _store_answered(self) -> None:
        if self._store_down_since is not None:
            logger.warning(
                "Job store answers again after %.0f s", self.clock() - self._store_down_since
            )
            self._store_down_since = None
