"""The Redis profile store, beside the accounts in the same Redis and key prefix.

Layout (every name starts with the configured prefix, e.g. ``iopaint:``)::

    watermarks:{OWNER}        sorted set of the owner's profile ids, scored by created_at
    watermark:{OWNER}:ID      hash: name, created_at, width, height, source, png

``{OWNER}`` (the account's key id) is a Redis Cluster hash tag, so an owner's set and
profiles share a slot and `lua/create.lua` can check the cap and write in one step.
Profiles carry no TTL: they live until deleted, like the keys they belong to.
"""

from __future__ import annotations

from importlib import resources

from redis.asyncio import Redis

from profiles.records import WatermarkProfile, is_profile_id
from profiles.store import ProfileStoreUnavailable, TooManyProfiles
from redis_connection import redis_client, redis_failures_as

CREATE_SCRIPT = resources.files("profiles").joinpath("lua/create.lua").read_text(encoding="utf-8")


class RedisProfileStore:
    def __init__(self, redis: Redis, *, key_prefix: str = "iopaint:") -> None:
        self.redis = redis
        self.prefix = key_prefix
        # redis-py's Script loads the script again by itself after a SCRIPT FLUSH.
        self._create = redis.register_script(CREATE_SCRIPT)

    @classmethod
    def from_url(
        cls, url: str, *, key_prefix: str = "iopaint:", timeout_s: float = 2.0
    ) -> RedisProfileStore:
        # Bytes in and out: the PNG is binary. The timeout is wider than the accounts
        # store's because a profile's PNG can be a megabyte or more.
        redis = redis_client(url, timeout_s=timeout_s, binary=True)
        return cls(redis, key_prefix=key_prefix)

    async def aclose(self) -> None:
        with redis_failures_as(ProfileStoreUnavailable):
            await self.redis.aclose()

    def _set_of(self, owner_id: str) -> str:
        return f"{self.prefix}watermarks:{{{owner_id}}}"

    def _profile(self, owner_id: str, profile_id: str) -> str:
        return f"{self.prefix}watermark:{{{owner_id}}}:{profile_id}"

    async def create(self, profile: WatermarkProfile, *, max_per_owner: int) -> None:
        fields: list[str | bytes | int | float] = [
            "name",
            profile.name,
            "created_at",
            repr(profile.created_at),
            "width",
            profile.width,
            "height",
            profile.height,
            "source",
            profile.source,
            "png",
            profile.png,
        ]
        with redis_failures_as(ProfileStoreUnavailable):
            stored = await self._create(
                keys=[self._set_of(profile.owner_id), self._profile(profile.owner_id, profile.id)],
                args=[max_per_owner, profile.id, repr(profile.created_at), *fields],
            )
        if int(stored) == 0:
            raise TooManyProfiles(max_per_owner)

    async def list_for(self, owner_id: str) -> list[WatermarkProfile]:
        with redis_failures_as(ProfileStoreUnavailable):
            ids = [raw.decode() for raw in await self.redis.zrange(self._set_of(owner_id), 0, -1)]
            async with self.redis.pipeline(transaction=False) as pipe:
                for profile_id in ids:
                    pipe.hgetall(self._profile(owner_id, profile_id))
                hashes = await pipe.execute() if ids else []
        return [
            _profile_of(owner_id, profile_id, fields)
            for profile_id, fields in zip(ids, hashes, strict=True)
            if fields
        ]

    async def get_for(self, owner_id: str, profile_id: str) -> WatermarkProfile | None:
        if not is_profile_id(profile_id):
            return None
        with redis_failures_as(ProfileStoreUnavailable):
            fields = await self.redis.hgetall(self._profile(owner_id, profile_id))
        return _profile_of(owner_id, profile_id, fields) if fields else None

    async def delete_for(self, owner_id: str, profile_id: str) -> bool:
        if not is_profile_id(profile_id):
            return False
        with redis_failures_as(ProfileStoreUnavailable):
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.zrem(self._set_of(owner_id), profile_id)
                pipe.delete(self._profile(owner_id, profile_id))
                removed, _ = await pipe.execute()
        return int(removed) > 0


def _profile_of(owner_id: str, profile_id: str, fields: dict[bytes, bytes]) -> WatermarkProfile:
    return WatermarkProfile(
        id=profile_id,
        owner_id=owner_id,
        name=fields[b"name"].decode(),
        created_at=float(fields[b"created_at"]),
        width=int(fields[b"width"]),
        height=int(fields[b"height"]),
        source=fields[b"source"].decode(),  # type: ignore[arg-type]
        png=bytes(fields[b"png"]),
    )
