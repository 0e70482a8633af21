"""The embedded accounts store: one SQLite file, shared by every worker process of a machine.

The connection, its WAL journal, busy timeout and thread are `sqlite_connection`'s. Every
read-modify-write runs in `write_transaction` (the write lock up front), so two processes
admitting for the same key serialise instead of both reading the old bucket. Time is this
machine's clock (injectable for tests), the same for all its processes, read under the lock.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from auth.plans import ENTERPRISE, Plan, quota_window
from auth.records import Credential, KeyRecord, Secret, Usage, UsageDelta, WebhookSecret
from auth.store import (
    RECEIPT_TTL_SECONDS,
    DuplicatePrefix,
    StoreUnavailable,
)
from auth.token_bucket import Bucket, BucketState, Decision, Quota, decide
from sqlite_connection import SqliteConnection, read_snapshot, write_transaction

T = TypeVar("T")

# Expired secrets are kept as rows but read as absent, as Redis forgets them with their TTL.
_UNEXPIRED = "(expires_at IS NULL OR expires_at > ?)"

SCHEMA = """
CREATE TABLE IF NOT EXISTS keys (
    key_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    plan TEXT NOT NULL,
    rate_per_minute REAL,  -- rate, burst, quota, quota_period: enterprise keys only
    burst INTEGER,
    quota INTEGER,
    quota_period TEXT,
    environment TEXT NOT NULL,
    created_at REAL NOT NULL,
    last_used_at REAL,
    revoked_at REAL
);
CREATE TABLE IF NOT EXISTS secrets (
    prefix TEXT PRIMARY KEY,
    key_id TEXT NOT NULL REFERENCES keys(key_id),
    digest TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL
);
CREATE INDEX IF NOT EXISTS secrets_by_key ON secrets(key_id);
CREATE TABLE IF NOT EXISTS buckets (
    key_id TEXT PRIMARY KEY,
    tokens REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS quotas (
    key_id TEXT PRIMARY KEY,
    period TEXT NOT NULL,
    used INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS usage (
    key_id TEXT PRIMARY KEY,
    total INTEGER NOT NULL DEFAULT 0,
    success INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    processing_seconds REAL NOT NULL DEFAULT 0,
    rate_limited INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS usage_receipts (
    receipt TEXT PRIMARY KEY,
    recorded_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS usage_receipts_by_age ON usage_receipts(recorded_at);
CREATE TABLE IF NOT EXISTS webhook_secrets (
    secret TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL
);
CREATE INDEX IF NOT EXISTS webhook_secrets_by_key ON webhook_secrets(key_id);
"""


class SqliteStore:
    def __init__(
        self,
        path: Path,
        *,
        timeout_s: float = 0.5,
        busy_timeout_s: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self.clock = clock
        # Lock waits are normal under load (many processes); `timeout_s` only bounds how
        # long the event loop waits before calling the store down.
        self._database = SqliteConnection(
            path,
            schema=SCHEMA,
            unavailable=StoreUnavailable,
            description="accounts database",
            busy_timeout_s=max(busy_timeout_s, timeout_s),
            thread_name="sqlite-store",
        )

    async def _run(self, operation: Callable[[sqlite3.Connection], T]) -> T:
        return await self._database.run(operation)

    async def aclose(self) -> None:
        await self._database.aclose()

    # --- keys -------------------------------------------------------------------------------

    async def add_key(self, key: KeyRecord, secret: Secret) -> None:
        def add(connection: sqlite3.Connection) -> None:
            custom = key.custom_limits
            with write_transaction(connection):
                _refuse_taken_prefix(connection, secret.prefix)
                connection.execute(
                    "INSERT INTO keys (key_id, name, plan, rate_per_minute, burst, quota,"
                    " quota_period, environment, created_at, last_used_at, revoked_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        key.key_id,
                        key.name,
                        key.plan_name,
                        custom.rate_per_minute if custom else None,
                        custom.burst if custom else None,
                        custom.quota if custom else None,
                        custom.quota_period if custom else None,
                        key.environment,
                        key.created_at,
                        key.last_used_at,
                        key.revoked_at,
                    ),
                )
                _insert_secret(connection, secret)

        await self._run(add)

    async def add_secret(self, secret: Secret, *, retire_others_at: float) -> None:
        def add(connection: sqlite3.Connection) -> None:
            with write_transaction(connection):
                _refuse_taken_prefix(connection, secret.prefix)
                connection.execute(
                    "UPDATE secrets SET expires_at = ? WHERE key_id = ?"
                    " AND (expires_at IS NULL OR expires_at > ?)",
                    (retire_others_at, secret.key_id, retire_others_at),
                )
                _insert_secret(connection, secret)

        await self._run(add)

    async def find(self, prefix: str) -> Credential | None:
        def find(connection: sqlite3.Connection) -> Credential | None:
            row = connection.execute(
                "SELECT prefix, key_id, digest, created_at, expires_at FROM secrets"
                f" WHERE prefix = ? AND {_UNEXPIRED}",
                (prefix, self.clock()),
            ).fetchone()
            if row is None:
                return None
            secret = Secret(*row)
            key = _read_keys(connection, self.clock(), key_id=secret.key_id, with_secrets=False)
            return Credential(secret, key[0]) if key else None

        return await self._run(find)

    async def get_key(self, key_id: str) -> KeyRecord | None:
        def get(connection: sqlite3.Connection) -> KeyRecord | None:
            keys = _read_keys(connection, self.clock(), key_id=key_id)
            return keys[0] if keys else None

        return await self._run(get)

    async def list_keys(self) -> list[KeyRecord]:
        return await self._run(lambda connection: _read_keys(connection, self.clock()))

    async def revoke(self, key_id: str, *, at: float) -> None:
        await self._update_key("UPDATE keys SET revoked_at = ? WHERE key_id = ?", (at, key_id))

    async def set_plan(self, key_id: str, plan: Plan) -> None:
        custom = plan.name == ENTERPRISE
        await self._update_key(
            "UPDATE keys SET plan = ?, rate_per_minute = ?, burst = ?, quota = ?,"
            " quota_period = ? WHERE key_id = ?",
            (
                plan.name,
                plan.rate_per_minute if custom else None,
                plan.burst if custom else None,
                plan.quota if custom else None,
                plan.quota_period if custom else None,
                key_id,
            ),
        )

    async def touch(self, key_id: str, *, at: float) -> None:
        await self._update_key("UPDATE keys SET last_used_at = ? WHERE key_id = ?", (at, key_id))

    async def _update_key(self, statement: str, parameters: tuple[Any, ...]) -> None:
        def update(connection: sqlite3.Connection) -> None:
            with write_transaction(connection):
                connection.execute(statement, parameters)

        await self._run(update)

    # --- limits and usage -------------------------------------------------------------------

    async def limit(self, key_id: str, plan: Plan, *, cost: int) -> Decision:
        bucket = Bucket(capacity=plan.burst, refill_per_second=plan.refill_per_second)

        def limit(connection: sqlite3.Connection) -> Decision:
            transaction = write_transaction(connection) if cost > 0 else read_snapshot(connection)
            with transaction:
                # Read under the write lock: the times written never go backwards, however
                # long another writer kept this one waiting.
                now = self.clock()
                window = quota_window(now, plan.quota_period)
                row = connection.execute(
                    "SELECT tokens, updated_at FROM buckets WHERE key_id = ?", (key_id,)
                ).fetchone()
                state = BucketState(*row) if row else None
                used = _quota_used(connection, key_id, window.tag)
                outcome = decide(
                    state, bucket, Quota(used, plan.quota, window.resets_at), now, cost=cost
                )
                if cost > 0 and outcome.decision.allowed:
                    connection.execute(
                        "INSERT INTO buckets (key_id, tokens, updated_at) VALUES (?, ?, ?)"
                        " ON CONFLICT (key_id) DO UPDATE"
                        " SET tokens = excluded.tokens, updated_at = excluded.updated_at",
                        (key_id, outcome.bucket.tokens, outcome.bucket.updated_at),
                    )
                    _set_quota_used(connection, key_id, window.tag, outcome.quota_used)
                elif cost > 0:
                    _add_usage(connection, key_id, "rate_limited = rate_limited + 1", ())
            return outcome.decision

        return await self._run(limit)

    async def add_usage(self, key_id: str, plan: Plan, delta: UsageDelta, *, receipt: str) -> None:
        def add(connection: sqlite3.Connection) -> None:
            now = self.clock()
            with write_transaction(connection):
                connection.execute(
                    "DELETE FROM usage_receipts WHERE recorded_at < ?", (now - RECEIPT_TTL_SECONDS,)
                )
                inserted = connection.execute(
                    "INSERT OR IGNORE INTO usage_receipts (receipt, recorded_at) VALUES (?, ?)",
                    (receipt, now),
                ).rowcount
                if not inserted:
                    return  # recorded already: this is a retry
                _add_usage(
                    connection,
                    key_id,
                    "total = total + ?, success = success + ?, failed = failed + ?,"
                    " processing_seconds = processing_seconds + ?",
                    (delta.total, delta.success, delta.failed, delta.processing_seconds),
                )
                if delta.quota_spent:
                    window = quota_window(now, plan.quota_period)
                    used = _quota_used(connection, key_id, window.tag)
                    _set_quota_used(connection, key_id, window.tag, used + delta.quota_spent)

        await self._run(add)

    async def usage(self, key_id: str) -> Usage:
        def read(connection: sqlite3.Connection) -> Usage:
            row = connection.execute(
                "SELECT total, success, failed, processing_seconds, rate_limited FROM usage"
                " WHERE key_id = ?",
                (key_id,),
            ).fetchone()
            return Usage(*row) if row else Usage()

        return await self._run(read)

    # --- webhook secrets --------------------------------------------------------------------

    async def add_webhook_secret(
        self, key_id: str, secret: WebhookSecret, *, retire_others_at: float
    ) -> None:
        def add(connection: sqlite3.Connection) -> None:
            with write_transaction(connection):
                connection.execute(
                    "UPDATE webhook_secrets SET expires_at = ? WHERE key_id = ?"
                    " AND (expires_at IS NULL OR expires_at > ?)",
                    (retire_others_at, key_id, retire_others_at),
                )
                connection.execute(
                    "INSERT INTO webhook_secrets (secret, key_id, created_at, expires_at)"
                    " VALUES (?, ?, ?, ?)",
                    (secret.value, key_id, secret.created_at, secret.expires_at),
                )

        await self._run(add)

    async def webhook_secrets(self, key_id: str) -> list[WebhookSecret]:
        def read(connection: sqlite3.Connection) -> list[WebhookSecret]:
            rows = connection.execute(
                "SELECT secret, created_at, expires_at FROM webhook_secrets"
                f" WHERE key_id = ? AND {_UNEXPIRED} ORDER BY created_at DESC",
                (key_id, self.clock()),
            ).fetchall()
            return [WebhookSecret(*row) for row in rows]

        return await self._run(read)


def _refuse_taken_prefix(connection: sqlite3.Connection, prefix: str) -> None:
    if connection.execute("SELECT 1 FROM secrets WHERE prefix = ?", (prefix,)).fetchone():
        raise DuplicatePrefix(prefix)


def _insert_secret(connection: sqlite3.Connection, secret: Secret) -> None:
    connection.execute(
        "INSERT INTO secrets (prefix, key_id, digest, created_at, expires_at)"
        " VALUES (?, ?, ?, ?, ?)",
        (secret.prefix, secret.key_id, secret.digest, secret.created_at, secret.expires_at),
    )


def _read_keys(
    connection: sqlite3.Connection,
    now: float,
    *,
    key_id: str | None = None,
    with_secrets: bool = True,
) -> list[KeyRecord]:
    """Keys (one, or all), with their unexpired secrets unless told otherwise."""
    columns = (
        "SELECT key_id, name, plan, rate_per_minute, burst, quota, quota_period, environment,"
        " created_at, last_used_at, revoked_at FROM keys"
    )
    if key_id is None:
        rows = connection.execute(f"{columns} ORDER BY created_at, key_id").fetchall()
    else:
        rows = connection.execute(f"{columns} WHERE key_id = ?", (key_id,)).fetchall()
    keys = []
    for row in rows:
        found_id, name, plan, rate, burst, quota, period, environment, created, used, revoked = row
        secrets: tuple[Secret, ...] = ()
        if with_secrets:
            secrets = tuple(
                Secret(*secret_row)
                for secret_row in connection.execute(
                    "SELECT prefix, key_id, digest, created_at, expires_at FROM secrets"
                    f" WHERE key_id = ? AND {_UNEXPIRED} ORDER BY created_at",
                    (found_id, now),
                )
            )
        custom = Plan(plan, rate, burst, quota, period) if rate is not None else None
        keys.append(
            KeyRecord(found_id, name, plan, custom, environment, created, used, revoked, secrets)
        )
    return keys


def _quota_used(connection: sqlite3.Connection, key_id: str, period: str) -> int:
    row = connection.execute(
        "SELECT used FROM quotas WHERE key_id = ? AND period = ?", (key_id, period)
    ).fetchone()
    return int(row[0]) if row else 0


def _set_quota_used(connection: sqlite3.Connection, key_id: str, period: str, used: int) -> None:
    # One row per key: a new period replaces the old one, so the table never grows.
    connection.execute(
        "INSERT INTO quotas (key_id, period, used) VALUES (?, ?, ?) ON CONFLICT (key_id)"
        " DO UPDATE SET period = excluded.period, used = excluded.used",
        (key_id, period, used),
    )


def _add_usage(
    connection: sqlite3.Connection, key_id: str, assignments: str, parameters: tuple[Any, ...]
) -> None:
    connection.execute("INSERT OR IGNORE INTO usage (key_id) VALUES (?)", (key_id,))
    connection.execute(f"UPDATE usage SET {assignments} WHERE key_id = ?", (*parameters, key_id))
