"""The Redis job store, shared by every replica of the service.

Sorted sets and one Lua script (`jobs/lua/jobs.lua`) rather than streams with consumer
groups: a job here needs a lease with a fencing token (a reclaimed job's old holder must
not complete it), cancellation of a queued job wherever it sits, retries delayed by a
backoff, and webhook deliveries due hours from now. Streams give the first only in part
(`XAUTOCLAIM` hands a message on, but its old reader can still `XACK` it) and none of the
others; two sorted sets (ready time, lease end) and one script give all of them, each
change atomic and on the Redis clock, so every replica agrees on time.

Layout: every key starts with the configured prefix and ``jobs:{jobs}:`` (a hash tag: one
Cluster slot, as a script touching several keys needs); the script's header lists them.
Job hash fields: owner_id, owner_snapshot, status, created_at, links_base, filename,
callback_url, batch_id, position, started_at, finished_at, attempts, worker, error,
result_headers, processing_seconds, result_expires_at. Images (inputs, results) are
Redis strings and hash fields, never files. Records get their TTL when they end; inputs
are deleted then; results carry the result TTL.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

from jobs.records import (
    Batch,
    Claim,
    Effect,
    IdempotencyAnswer,
    IdempotencyKey,
    Job,
    JobInput,
    Outcome,
    Owner,
    Submission,
    Succeeded,
)
from jobs.retention import IDEMPOTENCY_CLAIM_S, IDEMPOTENCY_WINDOW_S, Retention
from jobs.store import JobStoreUnavailable, QueueCaps, QueueFull
from redis_connection import redis_client, redis_failures_as

JOBS_SCRIPT = resources.files("jobs").joinpath("lua/jobs.lua").read_text(encoding="utf-8")
ALL_OWNERS = "*"


class RedisJobStore:
    def __init__(self, redis: Redis, *, retention: Retention, key_prefix: str = "iopaint:") -> None:
        self.redis = redis
        self.retention = retention
        self.base = f"{key_prefix}jobs:{{jobs}}:"
        self._script_sha: str | None = None

    @classmethod
    def from_url(
        cls, url: str, *, retention: Retention, key_prefix: str = "iopaint:", timeout_s: float = 5.0
    ) -> RedisJobStore:
        # Bytes in and out: images travel through this client.
        redis = redis_client(url, timeout_s=timeout_s, binary=True)
        return cls(redis, retention=retention, key_prefix=key_prefix)

    async def aclose(self) -> None:
        with redis_failures_as(JobStoreUnavailable):
            await self.redis.aclose()

    async def _script(self, operation: str, *arguments: Any) -> Any:
        with redis_failures_as(JobStoreUnavailable):
            if self._script_sha is None:
                self._script_sha = await self.redis.script_load(JOBS_SCRIPT)
            try:
                return await self.redis.evalsha(
                    self._script_sha, 1, self.base, operation, *arguments
                )
            except NoScriptError:
                # The server restarted or ran SCRIPT FLUSH: load it again, once.
                self._script_sha = await self.redis.script_load(JOBS_SCRIPT)
                return await self.redis.evalsha(
                    self._script_sha, 1, self.base, operation, *arguments
                )

    # --- submitting and reading --------------------------------------------------------------

    async def submit(self, submission: Submission, *, caps: QueueCaps) -> None:
        arguments: list[Any] = [
            submission.owner.id,
            len(submission.jobs),
            caps.per_account,
            caps.total,
        ]
        key = submission.idempotency
        if key is None:
            arguments += ["", "", 0]
        else:
            arguments += [
                self._idempotency_name(key),
                submission.target,
                int(IDEMPOTENCY_WINDOW_S * 1000),
            ]
        batch = submission.batch
        if batch is None:
            arguments.append("")
        else:
            fields = {
                "owner_id": batch.owner.id,
                "owner_snapshot": batch.owner.snapshot,
                "created_at": repr(batch.created_at),
                "job_ids": json.dumps(list(batch.job_ids)),
                "links_base": batch.links_base,
            }
            if batch.callback_url is not None:
                fields["callback_url"] = batch.callback_url
            arguments.append(json.dumps({"id": batch.id, "fields": fields}))
        for job, job_input in submission.jobs:
            arguments += [
                job.id,
                json.dumps(_submitted_fields(job)),
                job_input.image,
                "0" if job_input.mask is None else "1",
                job_input.mask or b"",
                "0" if job_input.watermark is None else "1",
                job_input.watermark or b"",
            ]
        reply = await self._script("submit", *arguments)
        if _text(reply[0]) == "full":
            scope = _text(reply[1])
            raise QueueFull(
                "account" if scope == "account" else "total",
                caps.per_account if scope == "account" else caps.total,
            )

    async def job(self, job_id: str) -> Job | None:
        jobs = await self.jobs([job_id])
        return jobs[0] if jobs else None

    async def jobs(self, job_ids: Sequence[str]) -> list[Job]:
        if not job_ids:
            return []
        with redis_failures_as(JobStoreUnavailable):
            async with self.redis.pipeline(transaction=False) as pipe:
                for job_id in job_ids:
                    pipe.hgetall(self.base + "job:" + job_id)
                replies = await pipe.execute()
        return [
            _job_from(job_id, _decoded(fields))
            for job_id, fields in zip(job_ids, replies, strict=True)
            if fields
        ]

    async def batch(self, batch_id: str) -> Batch | None:
        with redis_failures_as(JobStoreUnavailable):
            fields = _decoded(await self.redis.hgetall(self.base + "batch:" + batch_id))
        if not fields:
            return None
        return Batch(
            id=batch_id,
            owner=Owner(fields["owner_id"], fields.get("owner_snapshot", "")),
            created_at=float(fields["created_at"]),
            job_ids=tuple(json.loads(fields["job_ids"])),
            links_base=fields.get("links_base", ""),
            callback_url=fields.get("callback_url"),
            finished_at=_optional_float(fields, "finished_at"),
        )

    async def result(self, job_id: str) -> bytes | None:
        with redis_failures_as(JobStoreUnavailable):
            png = await self.redis.get(self.base + "result:" + job_id)
        return None if png is None else bytes(png)

    async def unfinished(self, owner_id: str | None = None) -> int:
        with redis_failures_as(JobStoreUnavailable):
            count = await self.redis.hget(self.base + "unfinished", owner_id or ALL_OWNERS)
        return int(count or 0)

    # --- workers ------------------------------------------------------------------------------

    async def claim(self, worker: str, *, lease_s: float) -> Claim | None:
        reply = await self._script("claim", worker, _ms(lease_s))
        if not reply:
            return None
        job_id, token, image, has_mask, mask, has_watermark, watermark = reply
        job = await self.job(_text(job_id))
        if job is None:  # cannot happen while it is unfinished: records get a TTL at the end
            raise JobStoreUnavailable(f"claimed job {_text(job_id)} has no record")
        job_input = JobInput(
            bytes(image),
            bytes(mask) if _text(has_mask) == "1" else None,
            bytes(watermark) if _text(has_watermark) == "1" else None,
        )
        return Claim(job, job_input, int(token))

    async def renew(self, job_id: str, token: int, *, lease_s: float) -> bool:
        return bool(await self._script("renew", job_id, token, _ms(lease_s)))

    async def complete(self, job_id: str, token: int, outcome: Outcome) -> bool:
        if isinstance(outcome, Succeeded):
            arguments = [
                "succeeded",
                "",
                json.dumps(outcome.headers),
                "1",
                outcome.png,
                repr(outcome.processing_seconds),
            ]
        else:
            arguments = ["failed", json.dumps(outcome.error), "", "0", b"", ""]
        reply = await self._script(
            "complete",
            job_id,
            token,
            *arguments,
            _ms(self.retention.result_s),
            _ms(self.retention.record_s),
        )
        return bool(reply)

    async def release(self, job_id: str, token: int, *, delay_s: float) -> bool:
        return bool(await self._script("release", job_id, token, _ms(delay_s)))

    async def cancel(self, job_id: str) -> Job | None:
        await self._script("cancel", job_id, _ms(self.retention.record_s))
        return await self.job(job_id)

    async def delete(self, job_id: str) -> None:
        await self._script("delete", job_id, _ms(self.retention.record_s))

    # --- idempotency ------------------------------------------------------------------------

    def _idempotency_name(self, key: IdempotencyKey) -> str:
        digest = hashlib.sha256(key.key.encode()).hexdigest()
        return f"{self.base}idempotency:{key.owner_id}:{digest}"

    async def begin_idempotent(self, key: IdempotencyKey) -> IdempotencyAnswer:
        state, target = await self._script(
            "idempotency-begin",
            self._idempotency_name(key),
            key.fingerprint,
            _ms(IDEMPOTENCY_CLAIM_S),
        )
        answer = _text(state)
        if answer == "done":
            return IdempotencyAnswer("done", _text(target))
        if answer == "mismatch":
            return IdempotencyAnswer("mismatch")
        if answer == "in_progress":
            return IdempotencyAnswer("in_progress")
        return IdempotencyAnswer("new")

    async def abandon_idempotent(self, key: IdempotencyKey) -> None:
        await self._script("idempotency-abandon", self._idempotency_name(key), key.fingerprint)

    # --- effects ------------------------------------------------------------------------------

    async def claim_effect(self, *, lease_s: float) -> Effect | None:
        reply = await self._script("effect-claim", _ms(lease_s))
        if not reply:
            return None
        return Effect.parse(_text(reply[0]), int(reply[1]))

    async def finish_effect(self, effect: Effect) -> None:
        await self._script("effect-finish", effect.id)

    async def retry_effect(self, effect: Effect, *, delay_s: float) -> None:
        await self._script("effect-retry", effect.id, _ms(delay_s))

    async def purge(self) -> None:
        """Nothing to do: every record, result and key carries its own TTL here."""


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _decoded(fields: Mapping[bytes, bytes]) -> dict[str, str]:
    return {_text(name): _text(value) for name, value in fields.items()}


def _optional_float(fields: Mapping[str, str], name: str) -> float | None:
    value = fields.get(name)
    return None if value is None else float(value)


def _submitted_fields(job: Job) -> dict[str, str]:
    fields = {
        "owner_id": job.owner.id,
        "owner_snapshot": job.owner.snapshot,
        "created_at": repr(job.created_at),
        "links_base": job.links_base,
        "position": str(job.position),
    }
    for name in ("filename", "callback_url", "batch_id"):
        value = getattr(job, name)
        if value is not None:
            fields[name] = value
    return fields


def _job_from(job_id: str, fields: Mapping[str, str]) -> Job:
    error = fields.get("error")
    headers = fields.get("result_headers")
    return Job(
        id=job_id,
        owner=Owner(fields["owner_id"], fields.get("owner_snapshot", "")),
        status=fields["status"],  # type: ignore[arg-type]  # written by the script only
        created_at=float(fields["created_at"]),
        links_base=fields.get("links_base", ""),
        filename=fields.get("filename"),
        callback_url=fields.get("callback_url"),
        batch_id=fields.get("batch_id"),
        position=int(fields.get("position", 0)),
        started_at=_optional_float(fields, "started_at"),
        finished_at=_optional_float(fields, "finished_at"),
        attempts=int(fields.get("attempts", 0)),
        error=None if error is None else json.loads(error),
        result_headers={} if headers is None else json.loads(headers),
        processing_seconds=_optional_float(fields, "processing_seconds"),
        result_expires_at=_optional_float(fields, "result_expires_at"),
    )
