"""The job store: the one interface both backends implement, and its errors.

Backends: `RedisJobStore` (jobs/redis_store.py), shared by every replica, and
`SqliteJobStore` (jobs/sqlite_store.py), a file shared by the worker processes of one
machine; `jobs/backends.py` picks one from the settings. Both give the same answers;
`tests/jobs/test_store_contract.py` runs one suite against each.

Every state change is one atomic step on the store's clock (Redis: the server's `TIME`),
so that any number of processes may submit, claim, renew and complete at once:

- a claim takes the oldest ready job, or one whose lease ran out (reclaim), and makes the
  claimer its only holder until the lease ends; each claim increments the job's `attempts`,
  which is also the lease's fencing token;
- a completion (or release) is accepted only with the current token while the job runs: a
  worker that lost its lease (killed, paused, canceled under it) changes nothing;
- the end of a job (completed or canceled) deletes its input, stores its result, and owes
  its effects (`Effect`: usage, webhooks) in the same step, so none is lost or doubled.

Errors::

    JobStoreError
    ├── JobStoreUnavailable   the backend cannot be reached or failed; the cause is chained
    └── QueueFull             a submission would take the account or everyone past a cap
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from jobs.records import (
    Batch,
    Claim,
    Effect,
    IdempotencyAnswer,
    IdempotencyKey,
    Job,
    Outcome,
    Submission,
)


class JobStoreError(Exception):
    pass


class JobStoreUnavailable(JobStoreError):
    pass


class QueueFull(JobStoreError):
    def __init__(self, scope: Literal["account", "total"], limit: int) -> None:
        super().__init__(f"the {scope} queue holds {limit} unfinished jobs already")
        self.scope = scope
        self.limit = limit


@dataclass(frozen=True)
class QueueCaps:
    """Unfinished (queued or running) jobs allowed: per account, and of everyone."""

    per_account: int
    total: int


class JobStore(Protocol):
    async def submit(self, submission: Submission, *, caps: QueueCaps) -> None:
        """Queue the submission's jobs (and batch), all or none; `QueueFull` past a cap. Under
        an idempotency key (held by `begin_idempotent`), the key then leads to it."""

    async def job(self, job_id: str) -> Job | None: ...

    async def jobs(self, job_ids: Sequence[str]) -> list[Job]:
        """The jobs that exist among `job_ids`, in that order."""

    async def batch(self, batch_id: str) -> Batch | None: ...

    async def result(self, job_id: str) -> bytes | None:
        """A succeeded job's PNG while it is kept; None otherwise."""

    async def claim(self, worker: str, *, lease_s: float) -> Claim | None:
        """The oldest ready job, or one whose lease ran out, now held by `worker`."""

    async def renew(self, job_id: str, token: int, *, lease_s: float) -> bool:
        """Extend the lease; False when `token` no longer holds it (canceled, reclaimed)."""

    async def complete(self, job_id: str, token: int, outcome: Outcome) -> bool:
        """End the job with `outcome`; False (and nothing changes) unless `token` holds it."""

    async def release(self, job_id: str, token: int, *, delay_s: float) -> bool:
        """Give the job back to the queue, ready again in `delay_s`; False unless held."""

    async def cancel(self, job_id: str) -> Job | None:
        """End an unfinished job as canceled (a running one's worker loses its lease); the
        job as it is afterwards, None if unknown. An ended job is left as it is."""

    async def delete(self, job_id: str) -> None:
        """Cancel the job if unfinished, and drop its input and result now."""

    async def begin_idempotent(self, key: IdempotencyKey) -> IdempotencyAnswer: ...

    async def abandon_idempotent(self, key: IdempotencyKey) -> None:
        """Free a key taken by `begin_idempotent` whose submission did not happen."""

    async def claim_effect(self, *, lease_s: float) -> Effect | None:
        """An effect that is due, hidden from other claimers for `lease_s`."""

    async def finish_effect(self, effect: Effect) -> None:
        """Done (or given up): forget it."""

    async def retry_effect(self, effect: Effect, *, delay_s: float) -> None:
        """Due again in `delay_s`, one attempt more."""

    async def purge(self) -> None:
        """Drop what retention no longer keeps (results, records, keys past their time)."""

    async def unfinished(self, owner_id: str | None = None) -> int:
        """Queued and running jobs: of one account, or of everyone."""

    async def aclose(self) -> None: ...
