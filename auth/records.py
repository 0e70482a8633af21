"""The records the accounts layer passes around: keys, their secrets, usage, the caller.

Plain data, shared by the store protocol (`auth/store.py`), both store backends, the
accounts facade and its outage fallback; this module imports nothing of theirs.
"""

from __future__ import annotations

from dataclasses import dataclass

from auth.plans import Plan, resolve_plan


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
class WebhookSecret:
    """Signs a key's webhook deliveries (Standard Webhooks, ``whsec_`` + base64). Stored as
    is, unlike API keys: signing needs the secret itself, not a digest of it. Rotation adds
    one and gives the older ones an end, and deliveries carry a signature per live secret."""

    value: str
    created_at: float
    expires_at: float | None = None

    def valid_at(self, now: float) -> bool:
        return self.expires_at is None or now < self.expires_at

    def __repr__(self) -> str:  # never print the secret by accident
        return f"WebhookSecret(created_at={self.created_at!r}, expires_at={self.expires_at!r})"


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


@dataclass(frozen=True)
class Account:
    """An authenticated caller: the key's identity and the plan its requests run under."""

    key_id: str
    prefix: str
    name: str
    plan: Plan
