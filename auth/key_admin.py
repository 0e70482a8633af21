"""Operator actions on keys: create, list, revoke, rotate, change plan, webhook secrets
(`iopaint-api keys`).

Keys are addressed by any of their display prefixes (``sk_live_AbCd1234``). A rotated key
keeps its identity (`key_id`), so its limits, quota and usage carry over to the new secret.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from auth.keys import IssuedKey, KeyEnvironment, generate_key, generate_webhook_secret, new_key_id
from auth.plans import ENTERPRISE, Plan
from auth.records import KeyRecord, Secret, WebhookSecret
from auth.store import DuplicatePrefix, Store

# A clash needs two of 62**8 prefixes to coincide; a few fresh draws settle it.
MAX_PREFIX_ATTEMPTS = 5


class KeyAdminError(Exception):
    pass


@dataclass(frozen=True)
class CreatedKey:
    key: str  # shown to the operator once, then gone
    record: KeyRecord
    prefix: str

    def __repr__(self) -> str:
        return f"CreatedKey(prefix={self.prefix!r}, key_id={self.record.key_id!r})"


class KeyAdmin:
    def __init__(self, store: Store, *, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock

    async def create(
        self, *, name: str, plan: Plan, environment: KeyEnvironment = "live"
    ) -> CreatedKey:
        now = self.clock()
        record = KeyRecord(
            key_id=new_key_id(),
            name=name,
            plan_name=plan.name,
            custom_limits=plan if plan.name == ENTERPRISE else None,
            environment=environment,
            created_at=now,
        )
        for _ in range(MAX_PREFIX_ATTEMPTS):
            issued = generate_key(environment)
            secret = _secret(issued, record.key_id, now)
            try:
                await self.store.add_key(record, secret)
            except DuplicatePrefix:
                continue
            return CreatedKey(issued.key, replace(record, secrets=(secret,)), issued.prefix)
        raise KeyAdminError("could not find a free key prefix; try again")

    async def list(self) -> list[KeyRecord]:
        return await self.store.list_keys()

    async def find(self, prefix: str) -> KeyRecord:
        credential = await self.store.find(prefix)
        key = await self.store.get_key(credential.secret.key_id) if credential else None
        if key is None:
            raise KeyAdminError(f"no key with prefix {prefix!r}")
        return key

    async def revoke(self, prefix: str) -> KeyRecord:
        """Every secret of the key stops working at once."""
        key = await self.find(prefix)
        await self.store.revoke(key.key_id, at=self.clock())
        return await self.find(prefix)

    async def rotate(self, prefix: str, *, grace_seconds: float) -> CreatedKey:
        """A new secret for the same key; the old ones keep working for `grace_seconds`."""
        key = await self.find(prefix)
        if key.revoked_at is not None:
            raise KeyAdminError(f"key {prefix} is revoked; create a new one")
        environment: KeyEnvironment = "test" if key.environment == "test" else "live"
        now = self.clock()
        for _ in range(MAX_PREFIX_ATTEMPTS):
            issued = generate_key(environment)
            secret = _secret(issued, key.key_id, now)
            try:
                await self.store.add_secret(secret, retire_others_at=now + grace_seconds)
            except DuplicatePrefix:
                continue
            return CreatedKey(issued.key, await self.find(issued.prefix), issued.prefix)
        raise KeyAdminError("could not find a free key prefix; try again")

    async def set_plan(self, prefix: str, plan: Plan) -> KeyRecord:
        key = await self.find(prefix)
        await self.store.set_plan(key.key_id, plan)
        return await self.find(prefix)

    # --- webhook secrets: what signs this key's job and batch webhooks ---------------------

    async def create_webhook_secret(self, prefix: str) -> WebhookSecret:
        """The key's first webhook secret; one that already has a secret is rotated instead."""
        key = await self._live_key(prefix)
        if await self.store.webhook_secrets(key.key_id):
            raise KeyAdminError(
                f"key {prefix} has a webhook secret already; rotate it (webhook-secret rotate)"
            )
        return await self._add_webhook_secret(key.key_id, retire_others_at=self.clock())

    async def rotate_webhook_secret(self, prefix: str, *, grace_seconds: float) -> WebhookSecret:
        """A new webhook secret; deliveries carry signatures of both for `grace_seconds`."""
        key = await self._live_key(prefix)
        if not await self.store.webhook_secrets(key.key_id):
            raise KeyAdminError(f"key {prefix} has no webhook secret; create one first")
        return await self._add_webhook_secret(
            key.key_id, retire_others_at=self.clock() + grace_seconds
        )

    async def webhook_secrets(self, prefix: str) -> list[WebhookSecret]:
        """The key's live webhook secrets, newest first."""
        return await self.store.webhook_secrets((await self.find(prefix)).key_id)

    async def _live_key(self, prefix: str) -> KeyRecord:
        key = await self.find(prefix)
        if key.revoked_at is not None:
            raise KeyAdminError(f"key {prefix} is revoked; create a new one")
        return key

    async def _add_webhook_secret(self, key_id: str, *, retire_others_at: float) -> WebhookSecret:
        secret = WebhookSecret(generate_webhook_secret(), created_at=self.clock())
        await self.store.add_webhook_secret(key_id, secret, retire_others_at=retire_others_at)
        return secret


def _secret(issued: IssuedKey, key_id: str, now: float) -> Secret:
    return Secret(prefix=issued.prefix, key_id=key_id, digest=issued.digest, created_at=now)
