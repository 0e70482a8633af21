"""The embedded profile store: a table in the accounts' SQLite file (profiles/backends.py).

The same discipline as the accounts store (auth/sqlite_store.py): WAL journal, a create
runs in `BEGIN IMMEDIATE` so that two processes adding for one account cannot both pass
the cap, `busy_timeout` waits for the lock, and every call runs on the store's own thread.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from profiles.records import WatermarkProfile
from profiles.store import ProfileStoreUnavailable, TooManyProfiles

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS watermark_profiles (
    profile_id TEXT PRIMARY KEY,
    owner_id TEXT NOT NULL,
    name TEXT NOT NULL,
    created_at REAL NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    source TEXT NOT NULL,
    png BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS watermark_profiles_by_owner
    ON watermark_profiles(owner_id, created_at);
"""
_COLUMNS = "profile_id, owner_id, name, created_at, width, height, source, png"


class SqliteProfileStore:
    def __init__(self, path: Path, *, busy_timeout_s: float = 5.0) -> None:
        self.path = path
        self._busy_timeout_ms = int(busy_timeout_s * 1000)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-profiles")
        self._connection: sqlite3.Connection | None = None

    async def _run(self, operation: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, partial(self._call, operation))

    def _call(self, operation: Callable[[sqlite3.Connection], T]) -> T:
        try:
            return operation(self._connect())
        except sqlite3.Error as exc:
            raise ProfileStoreUnavailable(f"profiles database {self.path}: {exc}") from exc

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.path, isolation_level=None)
            connection.execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms}")
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute("PRAGMA synchronous = NORMAL")
            with _write(connection):
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        connection.execute(statement)
            self._connection = connection
        return self._connection

    async def aclose(self) -> None:
        def close(connection: sqlite3.Connection) -> None:
            connection.close()
            self._connection = None

        if self._connection is not None:
            await self._run(close)
        self._executor.shutdown(wait=True)

    async def create(self, profile: WatermarkProfile, *, max_per_owner: int) -> None:
        def create(connection: sqlite3.Connection) -> None:
            with _write(connection):
                (held,) = connection.execute(
                    "SELECT COUNT(*) FROM watermark_profiles WHERE owner_id = ?",
                    (profile.owner_id,),
                ).fetchone()
                if held >= max_per_owner:
                    raise TooManyProfiles(max_per_owner)
                connection.execute(
                    f"INSERT INTO watermark_profiles ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        profile.id,
                        profile.owner_id,
                        profile.name,
                        profile.created_at,
                        profile.width,
                        profile.height,
                        profile.source,
                        profile.png,
                    ),
                )

        await self._run(create)

    async def list_for(self, owner_id: str) -> list[WatermarkProfile]:
        def read(connection: sqlite3.Connection) -> list[WatermarkProfile]:
            rows = connection.execute(
                f"SELECT {_COLUMNS} FROM watermark_profiles WHERE owner_id = ?"
                " ORDER BY created_at, profile_id",
                (owner_id,),
            ).fetchall()
            return [_profile(row) for row in rows]

        return await self._run(read)

    async def get_for(self, owner_id: str, profile_id: str) -> WatermarkProfile | None:
        def read(connection: sqlite3.Connection) -> WatermarkProfile | None:
            row = connection.execute(
                f"SELECT {_COLUMNS} FROM watermark_profiles WHERE profile_id = ? AND owner_id = ?",
                (profile_id, owner_id),
            ).fetchone()
            return None if row is None else _profile(row)

        return await self._run(read)

    async def delete_for(self, owner_id: str, profile_id: str) -> bool:
        def delete(connection: sqlite3.Connection) -> bool:
            with _write(connection):
                cursor = connection.execute(
                    "DELETE FROM watermark_profiles WHERE profile_id = ? AND owner_id = ?",
                    (profile_id, owner_id),
                )
            return cursor.rowcount > 0

        return await self._run(delete)


def _profile(row: tuple[Any, ...]) -> WatermarkProfile:
    profile_id, owner_id, name, created_at, width, height, source, png = row
    return WatermarkProfile(
        id=profile_id,
        owner_id=owner_id,
        name=name,
        created_at=float(created_at),
        width=int(width),
        height=int(height),
        source=source,
        png=bytes(png),
    )


@contextmanager
def _write(connection: sqlite3.Connection) -> Iterator[None]:
    """A transaction holding the write lock from its first statement."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")
