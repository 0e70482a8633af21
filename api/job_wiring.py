"""What the job system needs from the layers above it, built from this layer's parts.

`jobs/` knows nothing of accounts or of the model client; its worker takes a processor, a
usage recorder and a source of webhook secrets (`jobs.worker`). Here they are made:

- `removal_processor`: a job's work is the synchronous route's (`Remover.remove`, with the
  watermark profile copied into the job when one was named), and its
  errors are the envelope that route would have answered; a 503 (model busy, restarting)
  is a passing failure the worker retries;
- `AccountUsage`: the job's end recorded with `Accounts.record`, under the job's receipt;
- `AccountSecrets`: the account's webhook secrets from the accounts store;
- `owner_of` / `account_of`: an account as a job carries it (an opaque snapshot).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Protocol

from starlette.concurrency import run_in_threadpool

from api.profile_marks import decode_profile_mark
from api.removal import Remover
from auth.plans import Plan
from auth.records import Account
from errors import ServiceError, ServiceUnavailable, error_body
from jobs.records import Failed, JobInput, Outcome, Owner, Succeeded
from jobs.worker import Processor


class JobAccounts(Protocol):
    """What jobs ask of the accounts facade (`auth.accounts.Accounts`)."""

    async def record(
        self,
        account: Account,
        *,
        succeeded: bool,
        processing_seconds: float,
        receipt: str | None = None,
    ) -> bool: ...

    async def webhook_secrets(self, key_id: str) -> list[str]: ...


def owner_of(account: Account) -> Owner:
    snapshot = {"prefix": account.prefix, "name": account.name, "plan": asdict(account.plan)}
    return Owner(account.key_id, json.dumps(snapshot, sort_keys=True))


def account_of(owner: Owner) -> Account:
    snapshot = json.loads(owner.snapshot)
    return Account(owner.id, snapshot["prefix"], snapshot["name"], Plan(**snapshot["plan"]))


def removal_processor(remover: Remover) -> Processor:
    async def process(job_input: JobInput) -> Outcome:
        try:
            mark = None
            if job_input.watermark is not None:
                mark = await run_in_threadpool(
                    decode_profile_mark,
                    job_input.watermark,
                    max_dimension=remover.settings.max_dimension,
                    max_pixels=remover.settings.watermark_max_pixels,
                )
            removal = await remover.remove(job_input.image, job_input.mask, mark=mark)
        except ServiceUnavailable as exc:
            return Failed(error_body(exc.status_code, exc.detail), retryable=True)
        except ServiceError as exc:
            return Failed(error_body(exc.status_code, exc.detail))
        return Succeeded(removal.content, removal.headers(), removal.processing_seconds)

    return process


class AccountUsage:
    def __init__(self, accounts: JobAccounts) -> None:
        self.accounts = accounts

    async def record(
        self, owner: Owner, *, succeeded: bool, processing_seconds: float, receipt: str
    ) -> bool:
        return await self.accounts.record(
            account_of(owner),
            succeeded=succeeded,
            processing_seconds=processing_seconds,
            receipt=receipt,
        )


class AccountSecrets:
    def __init__(self, accounts: JobAccounts) -> None:
        self.accounts = accounts

    async def secrets_for(self, owner_id: str) -> list[str]:
        return await self.accounts.webhook_secrets(owner_id)
