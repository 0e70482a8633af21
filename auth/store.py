"""The accounts store: the one interface both backends implement, and its errors.

Backends: `RedisStore` (auth/redis_store.py), shared by every replica, and `SqliteStore`
(auth/sqlite_store.py), a file shared by the worker processes of one machine;
`auth/backends.py` picks one from the settings. Both give the same answers;
`tests/auth/test_store_contract.py` runs one suite against each.

Errors::

    StoreError
    ├── StoreUnavailable   the backend cannot be reached or failed; the cause is chained
    └── DuplicatePrefix    a new key's display prefix is taken (generate another key)
"""

from __future__ import annotations

from typing import Protocol

from auth.plans import Plan
from auth.records import Credential, KeyRecord, Secret, Usage, UsageDelta, WebhookSecret
from auth.token_bucket import Decision

# Lifetime usage counters in Redis carry a TTL like every key, renewed on each write: a key
# unused for this long loses its statistics, nothing else.
USAGE_TTL_SECONDS = 400 * 86400
# A usage write carries a receipt so that a retry after a lost reply is not counted twice.
# Receipts are kept this long: an outage longer than that can double-count the one or two
# writes that were in flight when it began.
RECEIPT_TTL_SECONDS = 3600


class StoreError(Exception):
    pass


class StoreUnavailable(StoreError):
    pass


class DuplicatePrefix(StoreError):
    pass


class Store(Protocol):
    async def add_key(self, key: KeyRecord, secret: Secret) -> None:
        """Store a new key with its first secret; `DuplicatePrefix` if the prefix is taken."""

    async def add_secret(self, secret: Secret, *, retire_others_at: float) -> None:
        """Rotation: add `secret`; the key's other secrets stop working at `retire_others_at`
        (or earlier, if they already had an end). `DuplicatePrefix` if the prefix is taken."""

    async def find(self, prefix: str) -> Credential | None:
        """The unexpired secret with this display prefix and its key (revoked included). The
        key comes without its `secrets`: authentication needs none, and it is the hot path."""

    async def get_key(self, key_id: str) -> KeyRecord | None:
        """The key with all its unexpired secrets."""

    async def list_keys(self) -> list[KeyRecord]:
        """Every key with its secrets, oldest first."""

    async def revoke(self, key_id: str, *, at: float) -> None: ...

    async def set_plan(self, key_id: str, plan: Plan) -> None: ...

    async def touch(self, key_id: str, *, at: float) -> None:
        """Record that the key was used at `at`."""

    async def limit(self, key_id: str, plan: Plan, *, cost: int) -> Decision:
        """Decide one request on the store's clock, atomically across processes. With a
        `cost` of N > 0, an admitted request takes N tokens and N units of quota (all or
        nothing) and a refused one counts once in `rate_limited`; with 0, nothing changes
        (`auth.token_bucket.decide`; 0 <= cost <= the plan's burst)."""

    async def add_usage(self, key_id: str, plan: Plan, delta: UsageDelta, *, receipt: str) -> None:
        """Add `delta` to the key's counters (and `quota_spent` to its current quota period),
        in one atomic step, at most once per `receipt`."""

    async def usage(self, key_id: str) -> Usage: ...

    async def add_webhook_secret(
        self, key_id: str, secret: WebhookSecret, *, retire_others_at: float
    ) -> None:
        """Add a webhook secret to the key; its other webhook secrets stop at
        `retire_others_at` (or earlier, if they already had an end)."""

    async def webhook_secrets(self, key_id: str) -> list[WebhookSecret]:
        """The key's unexpired webhook secrets, newest first."""

    async def aclose(self) -> None: ...
