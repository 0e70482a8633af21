"""The accounts store: what it holds, the one interface both backends implement, the factory.

Backends: `RedisStore` (auth/redis_store.py) when `IOPAINT_REDIS_URL` is set, shared by
every replica; otherwise `SqliteStore` (auth/sqlite_store.py), a file under
`IOPAINT_DATA_DIR` shared by the worker processes of one machine. Both give the same
answers; `tests/auth/test_store_contract.py` runs one suite against each.

Errors::

    StoreError
    ├── StoreUnavailable   the backend cannot be reached or failed; the cause is chained
    └── DuplicatePrefix    a new key's display prefix is taken (generate another key)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from auth.plans import Plan, resolve_plan
from auth.token_bucket import Decision

if TYPE_CHECKING:
    from settings import Settings

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


@dataclass(frozen=True)
class Secret:
    """One credential of a key. Rotation adds one and gives the older ones an end."""

    prefix: str
    key_id: str
    digest: str  # SHA-256 of the full key; the key itself is never stored
    created_at: float
    expires_at: float | None = None

    def valid_at(self, now: float) -> bool:
        return self.expires_at is None or now < self.expires_at


@dataclass(frozen=True)
class KeyRecord:
    """A client's key: identity, plan, life cycle. Usage and limits hang off `key_id`."""

    key_id: str
    name: str
    plan_name: str
    custom_limits: Plan | None  # enterprise only
    environment: str  # "live" or "test"
    created_at: float
    last_used_at: float | None = None
    revoked_at: float | None = None
    secrets: tuple[Secret, ...] = ()

    @property
    def plan(self) -> Plan:
        return resolve_plan(self.plan_name, self.custom_limits)

    @property
    def current_prefix(self) -> str:
        newest = max(self.secrets, key=lambda secret: secret.created_at, default=None)
        return newest.prefix if newest else "-"


@dataclass(frozen=True)
class Credential:
    """What a display prefix leads to."""

    secret: Secret
    key: KeyRecord


@dataclass(frozen=True)
class UsageDelta:
    """Counts to add to a key's usage; `quota_spent` only for requests admitted blind."""

    total: int = 0
    success: int = 0
    failed: int = 0
    processing_seconds: float = 0.0
    quota_spent: int = 0

    def __add__(self, other: UsageDelta) -> UsageDelta:
        return UsageDelta(
            self.total + other.total,
            self.success + other.success,
            self.failed + other.failed,
            self.processing_seconds + other.processing_seconds,
            self.quota_spent + other.quota_spent,
        )


@dataclass(frozen=True)
class Usage:
    total: int = 0
    success: int = 0
    failed: int = 0
    processing_seconds: float = 0.0
    rate_limited: int = 0


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

    async def limit(self, key_id: str, plan: Plan, *, spend: bool) -> Decision:
        """Decide one request on the store's clock, atomically across processes. With
        `spend`, an admitted request takes a token and a unit of quota and a refused one
        counts in `rate_limited`; without, nothing changes."""

    async def add_usage(self, key_id: str, plan: Plan, delta: UsageDelta, *, receipt: str) -> None:
        """Add `delta` to the key's counters (and `quota_spent` to its current quota period),
        in one atomic step, at most once per `receipt`."""

    async def usage(self, key_id: str) -> Usage: ...

    async def aclose(self) -> None: ...


def open_store(settings: Settings) -> Store:
    """Redis when `redis_url` is set, else the embedded SQLite file in `data_dir`."""
    # Imported here: each backend module imports this one for the records above.
    if settings.redis_url is not None:
        from auth.redis_store import RedisStore

        return RedisStore.from_url(
            settings.redis_url.get_secret_value(),
            key_prefix=settings.redis_key_prefix,
            timeout_s=settings.store_timeout_s,
        )
    from auth.sqlite_store import SqliteStore

    return SqliteStore(settings.data_dir / "accounts.sqlite3", timeout_s=settings.store_timeout_s)
