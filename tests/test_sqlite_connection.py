"""`SqliteConnection`: the plumbing the embedded stores share."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from sqlite_connection import SqliteConnection, read_snapshot, write_transaction

pytestmark = pytest.mark.anyio


class Unavailable(Exception):
    pass


def open_database(path: Path, **options: object) -> SqliteConnection:
    return SqliteConnection(
        path,
        schema="CREATE TABLE IF NOT EXISTS things (name TEXT PRIMARY KEY);",
        unavailable=Unavailable,
        description="things database",
        **options,  # type: ignore[arg-type]
    )


async def test_the_schema_is_applied_in_wal_mode_and_a_write_is_all_or_nothing(
    tmp_path: Path,
) -> None:
    database = open_database(tmp_path / "things.sqlite3")

    def insert_twice(connection: sqlite3.Connection) -> None:
        with write_transaction(connection):
            connection.execute("INSERT INTO things VALUES ('a')")
            connection.execute("INSERT INTO things VALUES ('a')")  # breaks the primary key

    with pytest.raises(Unavailable, match=r"things database .*things\.sqlite3: UNIQUE"):
        await database.run(insert_twice)

    def read(connection: sqlite3.Connection) -> tuple[str, int]:
        with read_snapshot(connection):
            (mode,) = connection.execute("PRAGMA journal_mode").fetchone()
            (count,) = connection.execute("SELECT COUNT(*) FROM things").fetchone()
        return mode, count

    assert await database.run(read) == ("wal", 0)  # the first insert was rolled back
    await database.aclose()
    await database.aclose()  # closing twice is harmless


async def test_migrations_and_pragmas_run_on_every_new_connection(tmp_path: Path) -> None:
    def add_column(connection: sqlite3.Connection) -> None:
        columns = {row[1] for row in connection.execute("PRAGMA table_info(things)")}
        if "colour" not in columns:
            connection.execute("ALTER TABLE things ADD COLUMN colour TEXT")

    database = open_database(
        tmp_path / "things.sqlite3", pragmas=("secure_delete = ON",), migrate=add_column
    )

    def inspect(connection: sqlite3.Connection) -> tuple[int, set[str]]:
        (secure,) = connection.execute("PRAGMA secure_delete").fetchone()
        return secure, {row[1] for row in connection.execute("PRAGMA table_info(things)")}

    assert await database.run(inspect) == (1, {"name", "colour"})
    await database.aclose()


async def test_a_file_that_cannot_be_opened_is_the_stores_own_error(tmp_path: Path) -> None:
    not_a_database = tmp_path / "things.sqlite3"
    not_a_database.write_bytes(b"this is not an SQLite file" * 100)
    database = open_database(not_a_database)
    with pytest.raises(Unavailable, match="things database"):
        await database.run(lambda connection: connection.execute("SELECT 1").fetchone())
    await database.aclose()
