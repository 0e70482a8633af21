"""The job and batch routes: submit work, read its status, fetch or cancel it (docs/jobs.md).

Submissions are charged by their handler (`CHARGED_BY_HANDLER`): the cost of a batch is
its number of images, known once the form is read. A submission spends its tokens and
quota units once, all or nothing, just before its jobs are queued; a refused form, an
idempotent replay or a full queue spends nothing. Jobs are counted in the caller's
statistics when they end (the worker records them), not when submitted.

Another account's job or batch is 404, exactly like one that does not exist.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api.accounts_middleware import CHARGE
from api.batch_archive import batch_zip
from api.batch_form import BatchItem, pair_masks
from api.capacity import UploadSlots
from api.job_wiring import (
    AccountSecrets,
    AccountUsage,
    JobAccounts,
    owner_of,
    removal_processor,
)
from api.middleware import request_id_of
from api.removal import Remover
from api.routing import AUTHENTICATED, CHARGED_BY_HANDLER, Policy, route
from api.store_outage import store_outage_as_503
from api.uploads import Form, FormSpec, read_form
from api.watermark_routes import Profiles
from auth.records import Account
from auth.store import StoreUnavailable
from errors import (
    BadRequest,
    Conflict,
    Gone,
    NotFound,
    ServiceError,
    ServiceUnavailable,
    TooManyRequests,
    UnprocessableEntity,
    error_response,
)
from jobs.backends import open_job_store
from jobs.callback_urls import RefusedCallback, check_callback
from jobs.records import (
    Batch,
    IdempotencyKey,
    Job,
    JobInput,
    Owner,
    Submission,
    is_batch_id,
    is_job_id,
    new_batch_id,
    new_job_id,
)
from jobs.representation import BATCH_PATH, JOBS_PATH, batch_json, iso, job_json
from jobs.store import JobStore, JobStoreUnavailable, QueueCaps, QueueFull
from jobs.worker import JobWorker, WorkerConfig
from settings import Settings

logger = logging.getLogger(__name__)

PNG = "image/png"
JOB_FORM = FormSpec(files=("image", "mask"), texts=("callback_url", "watermark"))
IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
_PREFER_WAIT = re.compile(r"(?:^|[,;\s])wait\s*=\s*(\d+)(?=$|[,;\s])", re.IGNORECASE)
JOBS_UNAVAILABLE = "Jobs are unavailable right now; retry shortly"
QUEUE_FULL_RETRY_AFTER_S = 10
WAIT_POLL_S = 0.25
BATCH_UPLOADS_AT_ONCE = 4
"""Batch bodies one HTTP worker holds at once (each up to IOPAINT_BATCH_MAX_MB)."""


class JobsApi:
    """Route handlers for jobs and batches, and the worker that runs them in this process."""

    def __init__(
        self,
        remover: Remover,
        accounts: JobAccounts,
        settings: Settings,
        profiles: Profiles,
        slots: UploadSlots,
        *,
        store: JobStore | None = None,
    ) -> None:
        self.settings = settings
        self.profiles = profiles
        self.store = store if store is not None else open_job_store(settings)
        self.worker = JobWorker(
            self.store,
            removal_processor(remover),
            AccountUsage(accounts),
            AccountSecrets(accounts),
            WorkerConfig(
                lease_s=settings.job_lease_s,
                concurrency=settings.job_concurrency,
                retry_delays_s=settings.webhook_retry_delays_s,
                webhook_timeout_s=settings.webhook_timeout_s,
                allowed_networks=settings.callback_networks,
            ),
        )
        self.accounts = accounts
        self.caps = QueueCaps(settings.job_queue_per_account, settings.job_queue_total)
        self.slots = slots
        self.batch_uploads = 0

    # --- life cycle -------------------------------------------------------------------------

    def start(self, after: asyncio.Task[None] | None = None) -> None:
        self.worker.start(after)

    async def stop(self) -> None:
        await self.worker.stop()
        await self.store.aclose()

    # --- jobs -------------------------------------------------------------------------------

    @route("POST", JOBS_PATH, Policy(cost=CHARGED_BY_HANDLER, counted=False))
    async def submit_job(self, request: Request) -> Response:
        account: Account = request.state.account
        async with self._holding(request, batch=False):
            form = await read_form(
                request,
                JOB_FORM,
                max_file_mb=self.settings.max_upload_mb,
                body_timeout_s=self.settings.body_timeout_s,
            )
            (image,) = form.parts("image")
            item = BatchItem(image.data, form.one("mask"), image.filename)
            submitted = await self._submit(request, account, form, [item], batch=False)
        job_id = submitted.target
        wait_s = _prefer_wait(request.headers.get("prefer"), self.settings.job_wait_max_s)
        if submitted.submission is not None:
            job = submitted.submission.jobs[0][0]  # as queued, whatever a worker does meanwhile
        else:
            job = await self._job_of(account, job_id)
        headers = {"Location": f"{JOBS_PATH}/{job_id}", **submitted.headers}
        if wait_s is not None:
            headers["Preference-Applied"] = f"wait={wait_s}"
            job = await self._wait(job, wait_s)
            if job.ended:
                return JSONResponse(job_json(job, time.time()), status_code=200, headers=headers)
        return JSONResponse(job_json(job, time.time()), status_code=202, headers=headers)

    @route("GET", JOBS_PATH + "/{job_id}", AUTHENTICATED)
    async def get_job(self, request: Request) -> JSONResponse:
        job = await self._job_of(request.state.account, request.path_params["job_id"])
        return JSONResponse(job_json(job, time.time()))

    @route("GET", JOBS_PATH + "/{job_id}/result", AUTHENTICATED)
    async def job_result(self, request: Request) -> Response:
        job = await self._job_of(request.state.account, request.path_params["job_id"])
        now = time.time()
        status = job.status_at(now)
        if status in ("queued", "running"):
            raise Conflict(
                f"Job {job.id} is {status}: its result is not ready yet",
                headers={"Retry-After": "1"},
            )
        if status == "canceled":
            raise Conflict(f"Job {job.id} was canceled: it has no result")
        if status == "failed":
            error = job.error or {}
            code = int(error.get("status_code", 500))  # type: ignore[call-overload]
            return error_response(code, str(error.get("detail", "Job failed")))
        png = await self._store(self.store.result(job.id)) if status == "succeeded" else None
        if png is None:
            raise Gone(f"The result of job {job.id} is gone: {self._retention_sentence(job)}")
        return Response(png, media_type=PNG, headers={**job.result_headers, "X-Job-Id": job.id})

    @route("POST", JOBS_PATH + "/{job_id}/cancel", AUTHENTICATED)
    async def cancel_job(self, request: Request) -> JSONResponse:
        job = await self._job_of(request.state.account, request.path_params["job_id"])
        if job.status not in ("queued", "running", "canceled"):
            raise Conflict(f"Job {job.id} has {job.status_at(time.time())} already")
        canceled = await self._store(self.store.cancel(job.id))
        assert canceled is not None  # it existed a moment ago, and records outlive their jobs
        if canceled.status != "canceled":
            raise Conflict(f"Job {job.id} has {canceled.status} already")
        return JSONResponse(job_json(canceled, time.time()))

    @route("DELETE", JOBS_PATH + "/{job_id}", AUTHENTICATED)
    async def delete_job(self, request: Request) -> Response:
        job = await self._job_of(request.state.account, request.path_params["job_id"])
        await self._store(self.store.delete(job.id))
        logger.info("job %s deleted (request %s)", job.id, request_id_of(request.scope))
        return Response(status_code=204)

    # --- batches ----------------------------------------------------------------------------

    @route("POST", BATCH_PATH, Policy(cost=CHARGED_BY_HANDLER, counted=False))
    async def submit_batch(self, request: Request) -> Response:
        account: Account = request.state.account
        plan = account.plan
        spec = FormSpec(
            files=("image", "mask"),
            texts=("callback_url", "watermark"),
            max_files=plan.max_batch,
            too_many=f"Too many images: the {plan.name} plan takes at most {plan.max_batch} "
            "per batch",
        )
        async with self._holding(request, batch=True):
            form = await read_form(
                request,
                spec,
                max_file_mb=self.settings.max_upload_mb,
                body_timeout_s=self.settings.body_timeout_s,
                max_body_mb=self.settings.batch_max_mb,
            )
            submitted = await self._submit(request, account, form, pair_masks(form), batch=True)
        if submitted.submission is not None and submitted.submission.batch is not None:
            batch = submitted.submission.batch
            jobs = [job for job, _ in submitted.submission.jobs]
        else:
            batch, jobs = await self._batch_of(account, submitted.target)
        headers = {"Location": f"{BATCH_PATH}/{batch.id}", **submitted.headers}
        return JSONResponse(batch_json(batch, jobs, time.time()), status_code=202, headers=headers)

    @route("GET", BATCH_PATH + "/{batch_id}", AUTHENTICATED)
    async def get_batch(self, request: Request) -> JSONResponse:
        batch, jobs = await self._batch_of(request.state.account, request.path_params["batch_id"])
        return JSONResponse(batch_json(batch, jobs, time.time()))

    @route("GET", BATCH_PATH + "/{batch_id}/result", AUTHENTICATED)
    async def batch_result(self, request: Request) -> Response:
        batch, jobs = await self._batch_of(request.state.account, request.path_params["batch_id"])
        unfinished = [job for job in jobs if not job.ended]
        if unfinished:
            raise Conflict(
                f"Batch {batch.id} has {len(unfinished)} of {len(jobs)} jobs unfinished: "
                "its result is not ready yet",
                headers={"Retry-After": "1"},
            )
        now = time.time()
        results: dict[str, bytes] = {}
        succeeded = [job for job in jobs if job.status == "succeeded"]
        for job in succeeded:
            png = await self._store(self.store.result(job.id))
            if png is not None and job.status_at(now) == "succeeded":
                results[job.id] = png
        if succeeded and not results:
            sentence = self._retention_sentence(succeeded[0])
            raise Gone(f"The results of batch {batch.id} are gone: {sentence}")
        archive = await run_in_threadpool(batch_zip, jobs, results, now)
        return Response(
            archive,
            media_type="application/zip",
            headers={"Content-Disposition": f'attachment; filename="{batch.id}.zip"'},
        )

    # --- submission -------------------------------------------------------------------------

    async def _submit(
        self,
        request: Request,
        account: Account,
        form: Form,
        items: list[BatchItem],
        *,
        batch: bool,
    ) -> Submitted:
        """Check, charge and queue; or answer an idempotent replay. Nothing is spent unless
        the jobs are queued (a race past the queue cap excepted)."""
        callback_url = await self._callback_url(account, form.texts.get("callback_url", ""))
        watermark = await self._watermark_png(account, form.texts.get("watermark", ""))
        owner = owner_of(account)
        key = self._idempotency_key(request, account, form)
        if key is not None:
            answer = await self._store(self.store.begin_idempotent(key))
            if answer.state == "mismatch":
                raise UnprocessableEntity(
                    "Idempotency-Key was already used with a different request; use a new key "
                    "for a new request"
                )
            if answer.state == "in_progress":
                raise Conflict(
                    "A request with this Idempotency-Key is still being processed; retry shortly",
                    headers={"Retry-After": "1"},
                )
            if answer.state == "done" and answer.target is not None:
                return Submitted(answer.target, {"Idempotent-Replayed": "true"}, None)
        try:
            await self._refuse_if_queue_full(owner, len(items))
            await getattr(request.state, CHARGE)(len(items))
            submission = self._submission(
                request, owner, items, callback_url, watermark, batch=batch, key=key
            )
            try:
                await self._store(self.store.submit(submission, caps=self.caps))
            except QueueFull as full:
                raise _queue_full(full) from None
        except BaseException:
            if key is not None:
                await asyncio.shield(self._abandon(key))
            raise
        self.worker.notify()
        logger.info(
            "%s %s: %d job(s) for %s (request %s)",
            "batch" if batch else "job",
            submission.target,
            len(items),
            account.prefix,
            request_id_of(request.scope),
        )
        return Submitted(submission.target, {}, submission)

    def _submission(
        self,
        request: Request,
        owner: Owner,
        items: list[BatchItem],
        callback_url: str | None,
        watermark: bytes | None,
        *,
        batch: bool,
        key: IdempotencyKey | None,
    ) -> Submission:
        now = time.time()
        base = str(request.base_url).rstrip("/")
        batch_id = new_batch_id() if batch else None
        jobs = tuple(
            (
                Job(
                    id=new_job_id(),
                    owner=owner,
                    status="queued",
                    created_at=now,
                    links_base=base,
                    filename=item.filename,
                    # A batch sends one batch.completed, not one event per job.
                    callback_url=None if batch else callback_url,
                    batch_id=batch_id,
                    position=position,
                ),
                JobInput(item.image, item.mask, watermark),
            )
            for position, item in enumerate(items)
        )
        record = None
        if batch_id is not None:
            record = Batch(
                batch_id,
                owner,
                now,
                tuple(job.id for job, _ in jobs),
                links_base=base,
                callback_url=callback_url,
            )
        return Submission(owner, jobs, batch=record, idempotency=key)

    async def _watermark_png(self, account: Account, watermark: str) -> bytes | None:
        """The named profile's PNG, copied into each job (404 when it is not the caller's)."""
        if not watermark.strip():
            return None
        profile = await self.profiles.profile_of(account, watermark.strip())
        return profile.png

    async def _callback_url(self, account: Account, url: str) -> str | None:
        """The checked callback URL (None when none was sent); 400 when refused."""
        url = url.strip()
        if not url:
            return None
        with store_outage_as_503(
            StoreUnavailable, "Webhook secrets cannot be read right now; retry shortly"
        ):
            secrets = await self.accounts.webhook_secrets(account.key_id)
        if not secrets:
            raise BadRequest(
                "A callback_url needs a webhook secret to sign its deliveries; create one: "
                f"iopaint-api keys webhook-secret create {account.prefix}"
            )
        try:
            await check_callback(url, allowed=self.settings.callback_networks)
        except RefusedCallback as refused:
            raise BadRequest(str(refused)) from None
        return url

    def _idempotency_key(
        self, request: Request, account: Account, form: Form
    ) -> IdempotencyKey | None:
        given = request.headers.get("idempotency-key")
        if given is None:
            return None
        if not IDEMPOTENCY_KEY.match(given):
            raise BadRequest("Idempotency-Key must be 1 to 255 printable ASCII characters")
        digest = hashlib.sha256(request.url.path.encode())
        for part in form.files:
            digest.update(f"\0{part.field}\0{part.filename}\0".encode())
            digest.update(hashlib.sha256(part.data).digest())
        for name in sorted(form.texts):
            digest.update(f"\0{name}\0{form.texts[name].strip()}".encode())
        return IdempotencyKey(account.key_id, given, digest.hexdigest())

    async def _abandon(self, key: IdempotencyKey) -> None:
        try:
            await self.store.abandon_idempotent(key)
        except JobStoreUnavailable:
            logger.warning("Idempotency key not freed; it frees itself within a minute")

    async def _refuse_if_queue_full(self, owner: Owner, count: int) -> None:
        """Before anything is spent; the store checks again, atomically, as it queues."""
        mine = await self._store(self.store.unfinished(owner.id))
        if mine + count > self.caps.per_account:
            raise _queue_full(QueueFull("account", self.caps.per_account))
        everyone = await self._store(self.store.unfinished())
        if everyone + count > self.caps.total:
            raise _queue_full(QueueFull("total", self.caps.total))

    @asynccontextmanager
    async def _holding(self, request: Request, *, batch: bool) -> AsyncIterator[None]:
        """Holds one of the worker's upload slots, shared with the synchronous routes; a
        batch's upload is larger, so fewer of them are held at once."""
        too_many_batches = batch and self.batch_uploads >= BATCH_UPLOADS_AT_ONCE
        with self.slots.hold(also_refuse=too_many_batches):
            self.batch_uploads += batch
            try:
                yield
            finally:
                self.batch_uploads -= batch

    # --- reading ----------------------------------------------------------------------------

    async def _job_of(self, account: Account, job_id: str) -> Job:
        job = await self._store(self.store.job(job_id)) if is_job_id(job_id) else None
        if job is None or job.owner.id != account.key_id:
            raise NotFound(f"No job {job_id[:80]}")
        return job

    async def _batch_of(self, account: Account, batch_id: str) -> tuple[Batch, list[Job]]:
        batch = await self._store(self.store.batch(batch_id)) if is_batch_id(batch_id) else None
        if batch is None or batch.owner.id != account.key_id:
            raise NotFound(f"No batch {batch_id[:80]}")
        return batch, await self._store(self.store.jobs(batch.job_ids))

    async def _wait(self, job: Job, wait_s: int) -> Job:
        """The job once it has ended, or as it is after `wait_s` seconds."""
        deadline = time.monotonic() + wait_s
        while not job.ended:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            await self.worker.changed(min(WAIT_POLL_S, left))
            job = await self._reread(job)
        return job

    async def _reread(self, job: Job) -> Job:
        found = await self._store(self.store.job(job.id))
        return found if found is not None else job

    def _retention_sentence(self, job: Job) -> str:
        return (
            f"results are kept for {self.settings.job_result_ttl_s:g} s after their job ends, "
            f"or until deleted (gone since {iso(job.result_expires_at)})"
        )

    async def _store(self, operation: Any) -> Any:
        """Await a store call; an unreachable store is a 503 with `Retry-After`."""
        with store_outage_as_503(JobStoreUnavailable, JOBS_UNAVAILABLE):
            return await operation


@dataclass(frozen=True)
class Submitted:
    """What a submission led to: the new (or replayed) job or batch, and extra headers."""

    target: str
    headers: dict[str, str]
    submission: Submission | None
    """What was queued; None for a replay."""


def _queue_full(full: QueueFull) -> ServiceError:
    retry = {"Retry-After": str(QUEUE_FULL_RETRY_AFTER_S)}
    if full.scope == "account":
        return TooManyRequests(
            f"Too many unfinished jobs: an account may have {full.limit} queued or running; "
            "wait for some to end",
            headers=retry,
        )
    return ServiceUnavailable("The job queue is full right now; retry later", headers=retry)


def _prefer_wait(header: str | None, cap_s: float) -> int | None:
    """Seconds asked for by ``Prefer: wait=N`` (RFC 7240), at most `cap_s`; None if not."""
    if not header:
        return None
    match = _PREFER_WAIT.search(header)
    if match is None:
        return None
    return min(int(match.group(1)), int(cap_s))
