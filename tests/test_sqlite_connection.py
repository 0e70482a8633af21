"""`SqliteConnection`: the plumbing the embedded stores share."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
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


def test_many_connections_opening_a_new_file_at_once_all_get_in(tmp_path: Path) -> None:
    """The HTTP workers of a fresh install open the same new file together; SQLite refuses
    the journal switch of all but one at once ("database is locked"), and none may fail.
    Without the wait only some rounds see a refusal; this many make one all but certain."""
    for round_number in range(200):
        failures = _open_together(tmp_path / f"round-{round_number}.sqlite3", connections=8)
        assert failures == [], f"round {round_number}: {failures}"


def _open_together(path: Path, *, connections: int) -> list[BaseException]:
    """`connections` threads open `path` at the same moment and write once each."""
    barrier = threading.Barrier(connections)
    failures: list[BaseException] = []

    async def write_once(database: SqliteConnection) -> None:
        def write(connection: sqlite3.Connection) -> None:
            with write_transaction(connection):
                connection.execute("INSERT OR IGNORE INTO things VALUES ('a')")

        try:
            await database.run(write)
        finally:
            await database.aclose()

    def worker() -> None:
        database = open_database(path)
        barrier.wait()
        try:
            asyncio.run(write_once(database))
        except BaseException as exc:  # collected: the test asserts there are none
            failures.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return failures
