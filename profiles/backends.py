"""Which profile store backs this process: where the accounts are, chosen the same way.

Redis when `IOPAINT_REDIS_URL` is set (the same server and key prefix as the accounts);
otherwise a table in the accounts' own SQLite file in `IOPAINT_DATA_DIR`.
"""

from __future__ import annotations

from auth.backends import sqlite_path
from profiles.redis_store import RedisProfileStore
from profiles.sqlite_store import SqliteProfileStore
from profiles.store import ProfileStore
from settings import Settings


def open_profile_store(settings: Settings) -> ProfileStore:
    if settings.redis_url is not None:
        return RedisProfileStore.from_url(
            settings.redis_url.get_secret_value(), key_prefix=settings.redis_key_prefix
        )
    return SqliteProfileStore(sqlite_path(settings))
