"""The embedded profile store: a table in the accounts' SQLite file (profiles/backends.py).

The connection is `sqlite_connection`'s, as for the accounts store: a create runs in
`write_transaction` (the write lock up front), so that two processes adding for one
account cannot both pass the cap.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from profiles.records import WatermarkProfile
from profiles.store import ProfileStoreUnavailable, TooManyProfiles
from sqlite_connection import SqliteConnection, write_transaction

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
        self._database = SqliteConnection(
            path,
            schema=SCHEMA,
            unavailable=ProfileStoreUnavailable,
            description="profiles database",
            busy_timeout_s=busy_timeout_s,
            thread_name="sqlite-profiles",
        )

    async def _run(self, operation: Callable[[sqlite3.Connection], T]) -> T:
        return await self._database.run(operation)

    async def aclose(self) -> None:
        await self._database.aclose()

    async def create(self, profile: WatermarkProfile, *, max_per_owner: int) -> None:
        def create(connection: sqlite3.Connection) -> None:
            with write_transaction(connection):
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
            with write_transaction(connection):
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
