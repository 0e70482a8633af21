"""The records the job system passes around: jobs, batches, inputs, outcomes, effects.

Plain data, shared by the store protocol, both store backends, the worker and the HTTP
edge; this module imports nothing of theirs.

A job's life (statuses as clients see them)::

    queued ──claim──> running ──complete──> succeeded ──result TTL──> expired
       │                 │  └───complete──> failed
       │                 └──lease lost, reclaimed──> running (attempt + 1)
       └──────cancel─────┴──────────────────> canceled

`expired` is never stored: a succeeded job whose result's time is up reads as expired.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Literal

JobStatus = Literal["queued", "running", "succeeded", "failed", "canceled", "expired"]
StoredStatus = Literal["queued", "running", "succeeded", "failed", "canceled"]
UNFINISHED: frozenset[str] = frozenset({"queued", "running"})
ENDED: frozenset[str] = frozenset({"succeeded", "failed", "canceled"})
JOB_STATUSES: tuple[JobStatus, ...] = (
    "queued",
    "running",
    "succeeded",
    "failed",
    "canceled",
    "expired",
)

JOB_ID_PREFIX = "job_"
BATCH_ID_PREFIX = "batch_"
_ID_SHAPE = re.compile(r"^(job|batch)_[0-9a-f]{32}$")


def new_job_id() -> str:
    return JOB_ID_PREFIX + uuid.uuid4().hex


def new_batch_id() -> str:
    return BATCH_ID_PREFIX + uuid.uuid4().hex


def is_job_id(text: str) -> bool:
    return text.startswith(JOB_ID_PREFIX) and _ID_SHAPE.match(text) is not None


def is_batch_id(text: str) -> bool:
    return text.startswith(BATCH_ID_PREFIX) and _ID_SHAPE.match(text) is not None


@dataclass(frozen=True)
class Owner:
    """Whose job it is. `id` (the account's) decides who may read it and whose webhook
    secrets sign its deliveries; `snapshot` is opaque here: what the injected usage recorder
    needs to count the job when it ends."""

    id: str
    snapshot: str = ""


@dataclass(frozen=True)
class JobInput:
    """What one job works on; deleted when the job ends."""

    image: bytes
    mask: bytes | None = None
    watermark: bytes | None = None
    """The RGBA PNG of the watermark profile named at submission, copied then: deleting the
    profile later does not change a queued job."""


@dataclass(frozen=True)
class Job:
    id: str
    owner: Owner
    status: StoredStatus
    created_at: float
    links_base: str = ""
    """``scheme://host`` the client submitted to: absolute links in webhooks start with it."""
    filename: str | None = None
    callback_url: str | None = None
    batch_id: str | None = None
    position: int = 0
    """Index of the job in its batch."""
    started_at: float | None = None
    finished_at: float | None = None
    attempts: int = 0
    """Times a worker claimed it; also the fencing token of the current lease."""
    error: dict[str, object] | None = None
    """The `{error, detail, status_code}` body the synchronous route would have answered."""
    result_headers: dict[str, str] = field(default_factory=dict)
    processing_seconds: float | None = None
    result_expires_at: float | None = None

    def status_at(self, now: float) -> JobStatus:
        if (
            self.status == "succeeded"
            and self.result_expires_at is not None
            and now >= self.result_expires_at
        ):
            return "expired"
        return self.status

    @property
    def ended(self) -> bool:
        return self.status in ENDED


@dataclass(frozen=True)
class Batch:
    id: str
    owner: Owner
    created_at: float
    job_ids: tuple[str, ...]
    links_base: str = ""
    callback_url: str | None = None
    finished_at: float | None = None
    """When its last job ended."""


@dataclass(frozen=True)
class IdempotencyKey:
    """A client's `Idempotency-Key` on a POST, scoped to its account, with a digest of what
    was asked (route and form), so that a reuse with another body is told apart."""

    owner_id: str
    key: str
    fingerprint: str


@dataclass(frozen=True)
class IdempotencyAnswer:
    """What the store knows of an idempotency key.

    - ``new``: the caller now holds the key (briefly), and submits under it;
    - ``in_progress``: another request holds it right now (409);
    - ``mismatch``: it was used with another body (422);
    - ``done``: it made `target` (a job or batch id), which is answered again.
    """

    state: Literal["new", "in_progress", "mismatch", "done"]
    target: str | None = None


@dataclass(frozen=True)
class Submission:
    """Jobs to queue together, all or none, and the batch they form (if any)."""

    owner: Owner
    jobs: tuple[tuple[Job, JobInput], ...]
    batch: Batch | None = None
    idempotency: IdempotencyKey | None = None

    @property
    def target(self) -> str:
        """What an idempotency key leads to: the batch, or the single job."""
        return self.batch.id if self.batch is not None else self.jobs[0][0].id


@dataclass(frozen=True)
class Claim:
    """A job a worker holds, with its input; `token` fences the lease: only a completion
    that carries the current token is accepted."""

    job: Job
    input: JobInput
    token: int


@dataclass(frozen=True)
class Succeeded:
    png: bytes
    headers: dict[str, str]
    """The synchronous route's headers (`X-Processing-Time`, `X-Image-Size`, `X-Model`, …)."""
    processing_seconds: float


@dataclass(frozen=True)
class Failed:
    error: dict[str, object]
    """The `{error, detail, status_code}` body."""
    retryable: bool = False
    """A passing condition (the model busy or restarting): run the job again later."""


Outcome = Succeeded | Failed

EffectKind = Literal["usage", "job-webhook", "batch-webhook"]


@dataclass(frozen=True)
class Effect:
    """Something owed once a job (or batch) has ended, kept in the store until done, so that
    neither a crash nor a restart loses it: counting the job's usage, delivering a webhook."""

    kind: EffectKind
    target: str
    """The job id (usage, job-webhook) or batch id (batch-webhook)."""
    attempt: int = 0
    """Attempts made so far."""

    @property
    def id(self) -> str:
        return f"{self.kind}:{self.target}"

    @classmethod
    def parse(cls, effect_id: str, attempt: int) -> Effect:
        kind, _, target = effect_id.partition(":")
        if kind not in ("usage", "job-webhook", "batch-webhook") or not target:
            raise ValueError(f"not an effect id: {effect_id!r}")
        return cls(kind, target, attempt)  # type: ignore[arg-type]  # checked just above
