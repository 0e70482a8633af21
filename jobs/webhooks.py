"""Webhooks as the Standard Webhooks specification has them: events, signatures, delivery.

    POST <callback_url>
    content-type: application/json
    webhook-id: msg_job_…                 the same on every retry (receivers de-duplicate)
    webhook-timestamp: 1764000000         Unix seconds of this attempt
    webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body"> [v1,<…> …]

    {"type": "job.succeeded", "timestamp": "…", "data": {job as GET /api/v1/jobs/{id} shows it}}

One signature per live secret of the account (`whsec_…`, base64 key), so that a receiver
that still knows only the old secret keeps verifying during a rotation's overlap. The body
is thin: ids, statuses and links, never image bytes.

Delivery (`WebhookSender`): the URL is checked again and the connection pinned to the
checked address (`jobs/callback_urls.py`); redirects are not followed (a 3xx is a failed
attempt); a 2xx is delivered; a 410 means "never again"; anything else, a timeout or a
connection error is retried on `RetrySchedule` (with jitter), and given up after its last
delay.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from jobs.callback_urls import IPNetwork, RefusedCallback, check_callback, pinned_request
from jobs.records import Batch, Job
from jobs.representation import batch_json, iso, job_json

SECRET_PREFIX = "whsec_"
USER_AGENT = "iopaint-api-webhooks/1"
JITTER = 0.2
"""Each retry delay is drawn from ±20 % of the schedule's, so that receivers that failed
together are not all retried in the same instant."""


def message_id(target_id: str) -> str:
    """`webhook-id` of the one event a job (or batch) sends: derived from its id, so that a
    reclaimed job, a retry or another replica sends the same one."""
    return f"msg_{target_id}"


def job_event(job: Job) -> dict[str, Any]:
    """``job.succeeded`` or ``job.failed``, as the job stood when it ended."""
    assert job.finished_at is not None and job.status in ("succeeded", "failed")
    return {
        "type": f"job.{job.status}",
        "timestamp": iso(job.finished_at),
        "data": job_json(job, job.finished_at, job.links_base),
    }


def batch_event(batch: Batch, jobs: Sequence[Job]) -> dict[str, Any]:
    """``batch.completed``: every job of the batch has ended."""
    assert batch.finished_at is not None
    data = batch_json(batch, jobs, batch.finished_at, batch.links_base)
    return {"type": "batch.completed", "timestamp": iso(batch.finished_at), "data": data}


def encode_event(event: dict[str, Any]) -> bytes:
    return json.dumps(event, separators=(",", ":"), sort_keys=True).encode()


def sign(secrets: Sequence[str], webhook_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header: ``v1,<signature>`` per secret, space-separated."""
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    signatures = []
    for secret in secrets:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
        digest = hmac.new(key, signed, hashlib.sha256).digest()
        signatures.append("v1," + base64.b64encode(digest).decode())
    return " ".join(signatures)


def signed_headers(
    secrets: Sequence[str], webhook_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secrets, webhook_id, timestamp, body),
    }


@dataclass(frozen=True)
class RetrySchedule:
    """Delays between attempts: ``delays[n]`` after the (n+1)-th failure; then give up."""

    delays_s: tuple[float, ...]
    jitter: float = JITTER

    def delay_after(self, failures: int, rng: random.Random | None = None) -> float | None:
        """Seconds until the next attempt after `failures` failed ones; None: no more."""
        if failures < 1 or failures > len(self.delays_s):
            return None
        base = self.delays_s[failures - 1]
        spread = (rng or random).uniform(1 - self.jitter, 1 + self.jitter)
        return base * spread


@dataclass(frozen=True)
class Delivery:
    """How one attempt went."""

    status: int | None
    """The receiver's HTTP status; None when no answer came (refused URL, timeout, …)."""
    detail: str

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def gone(self) -> bool:
        """410: the receiver asks never to be called again for this."""
        return self.status == 410


class WebhookSender:
    def __init__(
        self,
        *,
        timeout_s: float,
        allowed_networks: Sequence[IPNetwork] = (),
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.allowed_networks = tuple(allowed_networks)
        # No proxies from the environment (they would bypass the pinned address), no
        # redirects, no cookies kept between receivers.
        self._client = httpx.AsyncClient(
            timeout=timeout_s, follow_redirects=False, trust_env=False, transport=transport
        )

    async def deliver(
        self, url: str, webhook_id: str, body: bytes, secrets: Sequence[str], *, timestamp: int
    ) -> Delivery:
        try:
            checked = await check_callback(url, allowed=self.allowed_networks)
        except RefusedCallback as refused:
            return Delivery(None, str(refused))
        headers = signed_headers(secrets, webhook_id, timestamp, body)
        request = pinned_request(self._client, checked, body=body, headers=headers)
        self._client.cookies.clear()
        try:
            response = await self._client.send(request)
            await response.aclose()
        except httpx.HTTPError as exc:
            return Delivery(None, f"{type(exc).__name__}: {exc}"[:200])
        detail = f"HTTP {response.status_code}"
        if response.is_redirect:
            detail += " (a redirect: not followed)"
        return Delivery(response.status_code, detail)

    async def aclose(self) -> None:
        await self._client.aclose()
