"""One SQLite connection driven from asyncio: what the embedded stores (accounts, jobs,
watermark profiles) share.

- The connection lives on a thread of its own (sqlite3 objects stay on the thread that made
  them); `run` hands it an operation and awaits the result without blocking the event loop.
- It opens lazily, in WAL mode (readers never wait for the writer), with a busy timeout so
  that a process waits for another's write lock instead of failing at once, and applies the
  store's schema (and `migrate`, for columns added later) in one write transaction.
- `write_transaction` takes the write lock up front (`BEGIN IMMEDIATE`): a read-modify-write
  never sees another writer's change between its read and its write.
- Every `sqlite3.Error` becomes the store's own "unavailable" error, naming the file.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TypeVar

__all__ = ["SqliteConnection", "read_snapshot", "write_transaction"]

T = TypeVar("T")


class SqliteConnection:
    def __init__(
        self,
        path: Path,
        *,
        schema: str,
        unavailable: Callable[[str], Exception],
        description: str,
        busy_timeout_s: float = 5.0,
        pragmas: Sequence[str] = (),
        migrate: Callable[[sqlite3.Connection], None] | None = None,
        thread_name: str = "sqlite",
    ) -> None:
        """`unavailable` builds the error raised for any SQLite failure, from a message that
        starts with `description` ("accounts database") and the file's path; `pragmas` are
        extra ``PRAGMA`` statements for every connection (e.g. ``secure_delete = ON``)."""
        self.path = path
        self._schema = schema
        self._unavailable = unavailable
        self._description = description
        self._busy_timeout_ms = int(busy_timeout_s * 1000)
        self._pragmas = tuple(pragmas)
        self._migrate = migrate
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=thread_name)
        self._connection: sqlite3.Connection | None = None
        self._closed = False

    async def run(self, operation: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, partial(self._call, operation))

    async def aclose(self) -> None:
        """Close the connection and its thread; closing again does nothing."""

        def close() -> None:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

        if self._closed:
            return
        self._closed = True
        await asyncio.get_running_loop().run_in_executor(self._executor, close)
        self._executor.shutdown(wait=True)

    def _call(self, operation: Callable[[sqlite3.Connection], T]) -> T:
        try:
            if self._connection is None:
                self._connection = self._open()
            return operation(self._connection)
        except sqlite3.Error as exc:
            raise self._unavailable(f"{self._description} {self.path}: {exc}") from exc

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit mode: transactions are the explicit BEGINs of the helpers below.
        connection = sqlite3.connect(self.path, isolation_level=None)
        try:
            connection.execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms}")
            _switch_to_wal(connection, patience_s=self._busy_timeout_ms / 1000)
            # In WAL mode NORMAL survives application crashes; only an OS crash can lose the
            # last transactions.
            connection.execute("PRAGMA synchronous = NORMAL")
            for pragma in self._pragmas:
                connection.execute(f"PRAGMA {pragma}")
            with write_transaction(connection):
                # Not executescript(): it would COMMIT this transaction before running.
                for statement in self._schema.split(";"):
                    if statement.strip():
                        connection.execute(statement)
                if self._migrate is not None:
                    self._migrate(connection)
        except BaseException:
            connection.close()
            raise
        return connection


def _switch_to_wal(connection: sqlite3.Connection, *, patience_s: float) -> None:
    """Put the file in WAL mode, waiting out other connections doing the same.

    Switching a new file's journal needs it alone for a moment; when several processes open
    it at once (the HTTP workers of a fresh install), SQLite answers "database is locked" at
    once instead of calling the busy handler, so the wait is ours. Once the file is in WAL
    mode the pragma changes nothing and passes at once.
    """
    deadline = time.monotonic() + patience_s
    pause = 0.002
    while True:
        try:
            connection.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


@contextmanager
def write_transaction(connection: sqlite3.Connection) -> Iterator[None]:
    """A transaction holding the write lock from its first statement."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


@contextmanager
def read_snapshot(connection: sqlite3.Connection) -> Iterator[None]:
    """A consistent snapshot across several SELECTs."""
    connection.execute("BEGIN DEFERRED")
    try:
        yield
    finally:
        connection.execute("COMMIT")
