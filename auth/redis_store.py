"""The Redis accounts store, shared by every replica of the service.

Layout (every name starts with the configured prefix, e.g. ``iopaint:``)::

    keys                      set of key ids
    key:{ID}                  hash: name, plan, enterprise limits, environment, times
    key:{ID}:secrets          set of the key's display prefixes
    secret:PREFIX             hash: key_id, digest, created_at, expires_at (EXPIREAT once set)
    bucket:{ID}               hash: tokens, ts          (written by lua/limit.lua, TTL)
    quota:{ID}                hash: period, used        (written by lua/limit.lua, TTL)
    usage:{ID}                hash: total, success, failed, processing_seconds, rate_limited
    webhook-secrets:{ID}      hash: whsec_… -> "created_at expires_at" (expires_at "-": none)

``{ID}`` is a Redis Cluster hash tag, so the three keys of one decision share a slot.
Every decision is one EVALSHA of `lua/limit.lua`, on the Redis clock.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from importlib import resources
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

from auth.plans import ENTERPRISE, Plan
from auth.records import Credential, KeyRecord, Secret, Usage, UsageDelta, WebhookSecret
from auth.store import (
    RECEIPT_TTL_SECONDS,
    USAGE_TTL_SECONDS,
    DuplicatePrefix,
    StoreUnavailable,
)
from auth.token_bucket import Bucket, Decision, Quota, decision_after
from redis_connection import redis_client, redis_failures_as

LIMIT_SCRIPT = resources.files("auth").joinpath("lua/limit.lua").read_text(encoding="utf-8")


class RedisStore:
    def __init__(self, redis: Redis, *, key_prefix: str = "iopaint:") -> None:
        self.redis = redis
        self.prefix = key_prefix
        self._script_sha: str | None = None

    @classmethod
    def from_url(
        cls, url: str, *, key_prefix: str = "iopaint:", timeout_s: float = 0.5
    ) -> RedisStore:
        redis = redis_client(url, timeout_s=timeout_s, binary=False)
        return cls(redis, key_prefix=key_prefix)

    async def aclose(self) -> None:
        with redis_failures_as(StoreUnavailable):
            await self.redis.aclose()

    # --- names ------------------------------------------------------------------------------

    def _key(self, key_id: str) -> str:
        return f"{self.prefix}key:{{{key_id}}}"

    def _secrets_of(self, key_id: str) -> str:
        return f"{self.prefix}key:{{{key_id}}}:secrets"

    def _secret(self, prefix: str) -> str:
        return f"{self.prefix}secret:{prefix}"

    def _limit_keys(self, key_id: str) -> list[str]:
        tag = f"{{{key_id}}}"
        return [f"{self.prefix}{kind}:{tag}" for kind in ("bucket", "quota", "usage")]

    # --- keys -------------------------------------------------------------------------------

    async def add_key(self, key: KeyRecord, secret: Secret) -> None:
        with redis_failures_as(StoreUnavailable):
            await self._claim_prefix(secret)
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hset(self._key(key.key_id), mapping=_key_fields(key))
                pipe.sadd(f"{self.prefix}keys", key.key_id)
                self._queue_secret(pipe, secret)
                await pipe.execute()

    async def add_secret(self, secret: Secret, *, retire_others_at: float) -> None:
        with redis_failures_as(StoreUnavailable):
            await self._claim_prefix(secret)
            to_retire = []
            for prefix in await self.redis.smembers(self._secrets_of(secret.key_id)):
                digest, expires = await self.redis.hmget(
                    self._secret(prefix), ["digest", "expires_at"]
                )
                if digest is None:
                    continue  # already expired and gone
                if expires is None or float(expires) > retire_others_at:
                    to_retire.append(prefix)
            async with self.redis.pipeline(transaction=True) as pipe:
                for prefix in to_retire:
                    pipe.hset(self._secret(prefix), "expires_at", repr(retire_others_at))
                    pipe.pexpireat(self._secret(prefix), _milliseconds(retire_others_at))
                self._queue_secret(pipe, secret)
                await pipe.execute()

    async def _claim_prefix(self, secret: Secret) -> None:
        if not await self.redis.hsetnx(self._secret(secret.prefix), "key_id", secret.key_id):
            raise DuplicatePrefix(secret.prefix)

    def _queue_secret(self, pipe: Any, secret: Secret) -> None:
        fields = {
            "key_id": secret.key_id,
            "digest": secret.digest,
            "created_at": repr(secret.created_at),
        }
        if secret.expires_at is not None:
            fields["expires_at"] = repr(secret.expires_at)
        pipe.hset(self._secret(secret.prefix), mapping=fields)
        if secret.expires_at is not None:
            pipe.pexpireat(self._secret(secret.prefix), _milliseconds(secret.expires_at))
        pipe.sadd(self._secrets_of(secret.key_id), secret.prefix)

    async def find(self, prefix: str) -> Credential | None:
        with redis_failures_as(StoreUnavailable):
            fields = await self.redis.hgetall(self._secret(prefix))
            if "digest" not in fields:
                return None
            secret = _secret_from(prefix, fields)
            if not secret.valid_at(time.time()):
                return None  # its TTL is about to remove it
            key_fields = await self.redis.hgetall(self._key(secret.key_id))
        return Credential(secret, _key_from(secret.key_id, key_fields, ())) if key_fields else None

    async def get_key(self, key_id: str) -> KeyRecord | None:
        with redis_failures_as(StoreUnavailable):
            return await self._read_key(key_id)

    async def list_keys(self) -> list[KeyRecord]:
        with redis_failures_as(StoreUnavailable):
            key_ids = await self.redis.smembers(f"{self.prefix}keys")
            keys = [key for key_id in key_ids if (key := await self._read_key(key_id))]
        return sorted(keys, key=lambda key: (key.created_at, key.key_id))

    async def _read_key(self, key_id: str) -> KeyRecord | None:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(self._key(key_id))
            pipe.smembers(self._secrets_of(key_id))
            fields, prefixes = await pipe.execute()
        if not fields:
            return None
        prefixes = sorted(prefixes)
        async with self.redis.pipeline(transaction=False) as pipe:
            for prefix in prefixes:
                pipe.hgetall(self._secret(prefix))
            secret_fields = await pipe.execute()
        secrets = []
        for prefix, found in zip(prefixes, secret_fields, strict=True):
            if "digest" not in found:
                continue  # expired secrets vanish with their TTL
            secret = _secret_from(prefix, found)
            if secret.valid_at(time.time()):
                secrets.append(secret)
        secrets.sort(key=lambda secret: secret.created_at)
        return _key_from(key_id, fields, tuple(secrets))

    async def revoke(self, key_id: str, *, at: float) -> None:
        with redis_failures_as(StoreUnavailable):
            await self.redis.hset(self._key(key_id), "revoked_at", repr(at))

    async def set_plan(self, key_id: str, plan: Plan) -> None:
        with redis_failures_as(StoreUnavailable):
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hdel(self._key(key_id), "rate_per_minute", "burst", "quota", "quota_period")
                pipe.hset(self._key(key_id), mapping=_plan_fields(plan))
                await pipe.execute()

    async def touch(self, key_id: str, *, at: float) -> None:
        with redis_failures_as(StoreUnavailable):
            await self.redis.hset(self._key(key_id), "last_used_at", repr(at))

    # --- limits and usage -------------------------------------------------------------------

    async def limit(self, key_id: str, plan: Plan, *, cost: int) -> Decision:
        if cost < 0 or cost > plan.burst:
            raise ValueError(f"cost {cost} is outside 0..{plan.burst} (the plan's burst)")
        mode = "admit" if cost > 0 else "peek"
        reply = await self._run_limit_script(key_id, plan, mode, units=cost)
        _allowed, reason, tokens, now, used, resets_at = reply
        return decision_after(
            reason=reason or None,
            cost=cost,
            tokens=float(tokens),
            now=float(now),
            bucket=Bucket(capacity=plan.burst, refill_per_second=plan.refill_per_second),
            quota=Quota(used=int(used), limit=plan.quota, resets_at=int(resets_at)),
        )

    async def add_usage(self, key_id: str, plan: Plan, delta: UsageDelta, *, receipt: str) -> None:
        # One script call: counters, quota charge and receipt change together or not at all.
        await self._run_limit_script(
            key_id,
            plan,
            "record",
            units=delta.quota_spent,
            receipt_key=f"{self.prefix}receipt:{{{key_id}}}:{receipt}",
            counts=[
                delta.total,
                delta.success,
                delta.failed,
                repr(delta.processing_seconds),
                RECEIPT_TTL_SECONDS,
            ],
        )

    async def usage(self, key_id: str) -> Usage:
        with redis_failures_as(StoreUnavailable):
            fields = await self.redis.hgetall(self._limit_keys(key_id)[2])
        return Usage(
            total=int(fields.get("total", 0)),
            success=int(fields.get("success", 0)),
            failed=int(fields.get("failed", 0)),
            processing_seconds=float(fields.get("processing_seconds", 0.0)),
            rate_limited=int(fields.get("rate_limited", 0)),
        )

    # --- webhook secrets --------------------------------------------------------------------

    def _webhook_secrets_of(self, key_id: str) -> str:
        return f"{self.prefix}webhook-secrets:{{{key_id}}}"

    async def add_webhook_secret(
        self, key_id: str, secret: WebhookSecret, *, retire_others_at: float
    ) -> None:
        name = self._webhook_secrets_of(key_id)
        with redis_failures_as(StoreUnavailable):
            async with self.redis.pipeline(transaction=True) as pipe:
                for other in await self._read_webhook_secrets(name):
                    if other.expires_at is None or other.expires_at > retire_others_at:
                        pipe.hset(
                            name, other.value, _webhook_fields(other.created_at, retire_others_at)
                        )
                pipe.hset(name, secret.value, _webhook_fields(secret.created_at, secret.expires_at))
                await pipe.execute()

    async def webhook_secrets(self, key_id: str) -> list[WebhookSecret]:
        with redis_failures_as(StoreUnavailable):
            return await self._read_webhook_secrets(self._webhook_secrets_of(key_id))

    async def _read_webhook_secrets(self, name: str) -> list[WebhookSecret]:
        now = time.time()
        secrets, ended = [], []
        for value, fields in (await self.redis.hgetall(name)).items():
            created, expires = fields.split(" ")
            secret = WebhookSecret(
                value, float(created), None if expires == "-" else float(expires)
            )
            (secrets if secret.valid_at(now) else ended).append(secret)
        if ended:
            await self.redis.hdel(name, *(secret.value for secret in ended))
        return sorted(secrets, key=lambda secret: secret.created_at, reverse=True)

    async def _run_limit_script(
        self,
        key_id: str,
        plan: Plan,
        mode: str,
        *,
        units: int = 0,
        receipt_key: str | None = None,
        counts: list[int | str] | None = None,
    ) -> list[Any]:
        keys = self._limit_keys(key_id) + ([receipt_key] if receipt_key else [])
        arguments = [
            mode,
            plan.burst,
            repr(plan.refill_per_second),
            plan.quota,
            plan.quota_period,
            units,
            USAGE_TTL_SECONDS,
            *(counts or []),
        ]
        with redis_failures_as(StoreUnavailable):
            if self._script_sha is None:
                self._script_sha = await self.redis.script_load(LIMIT_SCRIPT)
            try:
                reply = await self.redis.evalsha(self._script_sha, len(keys), *keys, *arguments)
            except NoScriptError:
                # The server restarted or ran SCRIPT FLUSH: load it again, once.
                self._script_sha = await self.redis.script_load(LIMIT_SCRIPT)
                reply = await self.redis.evalsha(self._script_sha, len(keys), *keys, *arguments)
        return list(reply)


def _milliseconds(moment: float) -> int:
    return math.ceil(moment * 1000)


def _webhook_fields(created_at: float, expires_at: float | None) -> str:
    return f"{created_at!r} {'-' if expires_at is None else repr(expires_at)}"


def _plan_fields(plan: Plan) -> dict[str, str]:
    """A named plan is stored by name only; enterprise limits are stored with the key."""
    fields = {"plan": plan.name}
    if plan.name == ENTERPRISE:
        fields.update(
            rate_per_minute=repr(plan.rate_per_minute),
            burst=str(plan.burst),
            quota=str(plan.quota),
            quota_period=plan.quota_period,
        )
    return fields


def _key_fields(key: KeyRecord) -> dict[str, str]:
    fields = {
        "name": key.name,
        "environment": key.environment,
        "created_at": repr(key.created_at),
    }
    fields.update(_plan_fields(key.plan))
    for name in ("last_used_at", "revoked_at"):
        value = getattr(key, name)
        if value is not None:
            fields[name] = repr(value)
    return fields


def _optional_float(fields: Mapping[str, str], name: str) -> float | None:
    value = fields.get(name)
    return float(value) if value is not None else None


def _secret_from(prefix: str, fields: Mapping[str, str]) -> Secret:
    return Secret(
        prefix=prefix,
        key_id=fields["key_id"],
        digest=fields["digest"],
        created_at=float(fields["created_at"]),
        expires_at=_optional_float(fields, "expires_at"),
    )


def _key_from(key_id: str, fields: Mapping[str, str], secrets: tuple[Secret, ...]) -> KeyRecord:
    custom = None
    if "rate_per_minute" in fields:
        custom = Plan(
            fields["plan"],
            float(fields["rate_per_minute"]),
            int(fields["burst"]),
            int(fields["quota"]),
            fields["quota_period"],  # type: ignore[arg-type]  # written from a QuotaPeriod
        )
    return KeyRecord(
        key_id=key_id,
        name=fields["name"],
        plan_name=fields["plan"],
        custom_limits=custom,
        environment=fields["environment"],
        created_at=float(fields["created_at"]),
        last_used_at=_optional_float(fields, "last_used_at"),
        revoked_at=_optional_float(fields, "revoked_at"),
        secrets=secrets,
    )
