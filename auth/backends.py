"""Which accounts store backs this process: the one place that chooses, from the settings.

Redis when `IOPAINT_REDIS_URL` is set (every replica shares keys, limits and usage);
otherwise the embedded SQLite file in `IOPAINT_DATA_DIR`, shared by the processes of one
machine, so that `bentoml serve` works with nothing else running.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from auth.redis_store import RedisStore
from auth.sqlite_store import SqliteStore
from auth.store import Store
from settings import Settings


def open_store(settings: Settings) -> Store:
    """Redis when `redis_url` is set, else the embedded SQLite file in `data_dir`."""
    if settings.redis_url is not None:
        return RedisStore.from_url(
            settings.redis_url.get_secret_value(),
            key_prefix=settings.redis_key_prefix,
            timeout_s=settings.store_timeout_s,
        )
    return SqliteStore(sqlite_path(settings), timeout_s=settings.store_timeout_s)


def sqlite_path(settings: Settings) -> Path:
    return settings.data_dir / "accounts.sqlite3"


def store_location(settings: Settings) -> str:
    """Where the accounts live, for start-up lines and the CLI; never a password."""
    if settings.redis_url is None:
        return f"embedded SQLite at {sqlite_path(settings)}"
    parts = urlsplit(settings.redis_url.get_secret_value())
    host = parts.hostname or "localhost"
    port = f":{parts.port}" if parts.port else ""
    database = parts.path if parts.path not in ("", "/") else "/0"
    prefix = settings.redis_key_prefix
    return f"Redis at {parts.scheme}://{host}{port}{database} (key prefix {prefix!r})"
