"""The watermark-profile store: the one interface both backends implement, and its errors.

Backends: `RedisProfileStore` (profiles/redis_store.py) and `SqliteProfileStore`
(profiles/sqlite_store.py), kept where the accounts are (`profiles/backends.py`). Every read
and delete names the owner: another account's profile is absent, exactly like one that
does not exist. `tests/profiles/test_profile_store_contract.py` runs one suite against both.

Errors::

    ProfileStoreError
    ├── ProfileStoreUnavailable   the backend cannot be reached or failed; the cause is chained
    └── TooManyProfiles           the owner holds the most profiles allowed already
"""

from __future__ import annotations

from typing import Protocol

from profiles.records import WatermarkProfile


class ProfileStoreError(Exception):
    pass


class ProfileStoreUnavailable(ProfileStoreError):
    pass


class TooManyProfiles(ProfileStoreError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"an account may keep {limit} watermark profiles")
        self.limit = limit


class ProfileStore(Protocol):
    async def create(self, profile: WatermarkProfile, *, max_per_owner: int) -> None:
        """Store a new profile; `TooManyProfiles` (and nothing stored) when its owner holds
        `max_per_owner` already. The check and the write are one atomic step."""

    async def list_for(self, owner_id: str) -> list[WatermarkProfile]:
        """The owner's profiles, oldest first."""

    async def get_for(self, owner_id: str, profile_id: str) -> WatermarkProfile | None:
        """The profile if it exists and belongs to `owner_id`; None otherwise."""

    async def delete_for(self, owner_id: str, profile_id: str) -> bool:
        """Delete the owner's profile; False (and nothing changes) if it is not theirs."""

    async def aclose(self) -> None: ...
