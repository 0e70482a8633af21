"""The embedded job store: one SQLite file, shared by every worker process of a machine.

The same discipline as the embedded accounts store (auth/sqlite_store.py): WAL journal,
every state change in one `BEGIN IMMEDIATE` transaction (so two processes claiming at once
serialise, and each job has one holder), the machine's clock (injectable for tests). Writes
run on one thread with its connection, reads on another with their own: in WAL mode readers
never wait for the writer, so a status poll is not held up behind a large result being
written (and checkpointed).

Images live only in this file: a job's input in `job_inputs` until it ends, its result in
`job_results` until it expires. `secure_delete` overwrites deleted rows with zeros, so a
deleted image does not linger in the file's free pages.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from jobs.records import (
    Batch,
    Claim,
    Effect,
    IdempotencyAnswer,
    IdempotencyKey,
    Job,
    JobInput,
    Outcome,
    Owner,
    Submission,
    Succeeded,
)
from jobs.retention import IDEMPOTENCY_CLAIM_S, IDEMPOTENCY_WINDOW_S, Retention
from jobs.store import JobStoreUnavailable, QueueCaps, QueueFull
from sqlite_connection import SqliteConnection, write_transaction

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    owner_id TEXT NOT NULL,
    owner_snapshot TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    ready_at REAL,  -- queued: when it may be claimed
    lease_until REAL,  -- running: when its lease ends
    worker TEXT,
    links_base TEXT NOT NULL,
    filename TEXT,
    callback_url TEXT,
    batch_id TEXT,
    position INTEGER NOT NULL,
    started_at REAL,
    finished_at REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    result_headers TEXT,
    processing_seconds REAL,
    result_expires_at REAL,
    record_expires_at REAL
);
CREATE INDEX IF NOT EXISTS jobs_ready ON jobs(status, ready_at);
CREATE INDEX IF NOT EXISTS jobs_leased ON jobs(status, lease_until);
CREATE INDEX IF NOT EXISTS jobs_by_owner ON jobs(owner_id, status);
CREATE INDEX IF NOT EXISTS jobs_by_record_end ON jobs(record_expires_at);
CREATE TABLE IF NOT EXISTS job_inputs (
    job_id TEXT PRIMARY KEY,
    image BLOB NOT NULL,
    mask BLOB,
    watermark BLOB
);
CREATE TABLE IF NOT EXISTS job_results (
    job_id TEXT PRIMARY KEY,
    png BLOB NOT NULL,
    expires_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS job_results_by_end ON job_results(expires_at);
CREATE TABLE IF NOT EXISTS batches (
    id TEXT PRIMARY KEY,
    owner_id TEXT NOT NULL,
    owner_snapshot TEXT NOT NULL,
    created_at REAL NOT NULL,
    job_ids TEXT NOT NULL,
    links_base TEXT NOT NULL,
    callback_url TEXT,
    remaining INTEGER NOT NULL,
    finished_at REAL,
    record_expires_at REAL
);
CREATE TABLE IF NOT EXISTS idempotency_keys (
    owner_id TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    target TEXT,  -- NULL while the submission that took the key is under way
    expires_at REAL NOT NULL,
    PRIMARY KEY (owner_id, idempotency_key)
);
CREATE TABLE IF NOT EXISTS effects (
    id TEXT PRIMARY KEY,
    due_at REAL NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS effects_due ON effects(due_at);
"""

_JOB_COLUMNS = (
    "id, owner_id, owner_snapshot, status, created_at, links_base, filename, callback_url,"
    " batch_id, position, started_at, finished_at, attempts, error, result_headers,"
    " processing_seconds, result_expires_at"
)


class SqliteJobStore:
    def __init__(
        self,
        path: Path,
        *,
        retention: Retention,
        busy_timeout_s: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self.retention = retention
        self.clock = clock
        # Reads get a connection (and thread) of their own: a status poll never waits
        # behind a result being written.
        self._writer, self._reader = (
            SqliteConnection(
                path,
                schema=SCHEMA,
                unavailable=JobStoreUnavailable,
                description="jobs database",
                busy_timeout_s=busy_timeout_s,
                pragmas=("secure_delete = ON",),
                migrate=_add_missing_columns,
                thread_name=f"sqlite-jobs-{role}",
            )
            for role in ("write", "read")
        )

    # --- plumbing ---------------------------------------------------------------------------

    async def _run(self, operation: Callable[[sqlite3.Connection], T]) -> T:
        """A write (or a read that must see the write lock's state), on the writer thread."""
        return await self._writer.run(operation)

    async def _read(self, operation: Callable[[sqlite3.Connection], T]) -> T:
        """A read, on the reader thread and its connection."""
        return await self._reader.run(operation)

    async def aclose(self) -> None:
        await self._writer.aclose()
        await self._reader.aclose()

    # --- submitting and reading --------------------------------------------------------------

    async def submit(self, submission: Submission, *, caps: QueueCaps) -> None:
        def submit(connection: sqlite3.Connection) -> None:
            now = self.clock()
            count = len(submission.jobs)
            with write_transaction(connection):
                mine = _count_unfinished(connection, submission.owner.id)
                if mine + count > caps.per_account:
                    raise QueueFull("account", caps.per_account)
                if _count_unfinished(connection, None) + count > caps.total:
                    raise QueueFull("total", caps.total)
                for job, job_input in submission.jobs:
                    _insert_job(connection, job, ready_at=now)
                    connection.execute(
                        "INSERT INTO job_inputs (job_id, image, mask, watermark)"
                        " VALUES (?, ?, ?, ?)",
                        (job.id, job_input.image, job_input.mask, job_input.watermark),
                    )
                if submission.batch is not None:
                    _insert_batch(connection, submission.batch, remaining=count)
                if submission.idempotency is not None:
                    key = submission.idempotency
                    connection.execute(
                        "UPDATE idempotency_keys SET target = ?, expires_at = ?"
                        " WHERE owner_id = ? AND idempotency_key = ? AND fingerprint = ?",
                        (
                            submission.target,
                            now + IDEMPOTENCY_WINDOW_S,
                            key.owner_id,
                            key.key,
                            key.fingerprint,
                        ),
                    )

        await self._run(submit)

    async def job(self, job_id: str) -> Job | None:
        jobs = await self.jobs([job_id])
        return jobs[0] if jobs else None

    async def jobs(self, job_ids: Sequence[str]) -> list[Job]:
        def read(connection: sqlite3.Connection) -> list[Job]:
            if not job_ids:
                return []
            marks = ", ".join("?" for _ in job_ids)
            rows = connection.execute(
                f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id IN ({marks})", tuple(job_ids)
            ).fetchall()
            found = {row[0]: _job_from(row) for row in rows}
            return [found[job_id] for job_id in job_ids if job_id in found]

        return await self._read(read)

    async def batch(self, batch_id: str) -> Batch | None:
        def read(connection: sqlite3.Connection) -> Batch | None:
            row = connection.execute(
                "SELECT id, owner_id, owner_snapshot, created_at, job_ids, links_base,"
                " callback_url, finished_at FROM batches WHERE id = ?",
                (batch_id,),
            ).fetchone()
            if row is None:
                return None
            found_id, owner_id, snapshot, created, job_ids, base, callback, finished = row
            return Batch(
                id=found_id,
                owner=Owner(owner_id, snapshot),
                created_at=created,
                job_ids=tuple(json.loads(job_ids)),
                links_base=base,
                callback_url=callback,
                finished_at=finished,
            )

        return await self._read(read)

    async def result(self, job_id: str) -> bytes | None:
        def read(connection: sqlite3.Connection) -> bytes | None:
            row = connection.execute(
                "SELECT png FROM job_results WHERE job_id = ? AND expires_at > ?",
                (job_id, self.clock()),
            ).fetchone()
            return bytes(row[0]) if row else None

        return await self._read(read)

    async def unfinished(self, owner_id: str | None = None) -> int:
        return await self._read(lambda connection: _count_unfinished(connection, owner_id))

    # --- workers ------------------------------------------------------------------------------

    async def claim(self, worker: str, *, lease_s: float) -> Claim | None:
        def claim(connection: sqlite3.Connection) -> Claim | None:
            now = self.clock()
            with write_transaction(connection):
                row = (
                    connection.execute(
                        "SELECT id FROM jobs WHERE status = 'running' AND lease_until <= ?"
                        " ORDER BY lease_until LIMIT 1",
                        (now,),
                    ).fetchone()
                    or connection.execute(
                        "SELECT id FROM jobs WHERE status = 'queued' AND ready_at <= ?"
                        " ORDER BY ready_at, rowid LIMIT 1",
                        (now,),
                    ).fetchone()
                )
                if row is None:
                    return None
                job_id = row[0]
                connection.execute(
                    "UPDATE jobs SET status = 'running', attempts = attempts + 1, worker = ?,"
                    " lease_until = ?, ready_at = NULL, started_at = COALESCE(started_at, ?)"
                    " WHERE id = ?",
                    (worker, now + lease_s, now, job_id),
                )
                job = _read_job(connection, job_id)
                image, mask, watermark = connection.execute(
                    "SELECT image, mask, watermark FROM job_inputs WHERE job_id = ?", (job_id,)
                ).fetchone()
            assert job is not None  # read in the transaction that claimed it
            job_input = JobInput(
                bytes(image),
                None if mask is None else bytes(mask),
                None if watermark is None else bytes(watermark),
            )
            return Claim(job, job_input, job.attempts)

        return await self._run(claim)

    async def renew(self, job_id: str, token: int, *, lease_s: float) -> bool:
        def renew(connection: sqlite3.Connection) -> bool:
            with write_transaction(connection):
                return (
                    connection.execute(
                        "UPDATE jobs SET lease_until = ? WHERE id = ? AND status = 'running'"
                        " AND attempts = ?",
                        (self.clock() + lease_s, job_id, token),
                    ).rowcount
                    == 1
                )

        return await self._run(renew)

    async def complete(self, job_id: str, token: int, outcome: Outcome) -> bool:
        def complete(connection: sqlite3.Connection) -> bool:
            with write_transaction(connection):
                if not _holds(connection, job_id, token):
                    return False
                self._end(connection, job_id, outcome)
                return True

        return await self._run(complete)

    async def release(self, job_id: str, token: int, *, delay_s: float) -> bool:
        def release(connection: sqlite3.Connection) -> bool:
            with write_transaction(connection):
                if not _holds(connection, job_id, token):
                    return False
                connection.execute(
                    "UPDATE jobs SET status = 'queued', ready_at = ?, lease_until = NULL,"
                    " worker = NULL WHERE id = ?",
                    (self.clock() + delay_s, job_id),
                )
                return True

        return await self._run(release)

    async def cancel(self, job_id: str) -> Job | None:
        def cancel(connection: sqlite3.Connection) -> Job | None:
            with write_transaction(connection):
                self._cancel(connection, job_id)
                return _read_job(connection, job_id)

        return await self._run(cancel)

    async def delete(self, job_id: str) -> None:
        def delete(connection: sqlite3.Connection) -> None:
            now = self.clock()
            with write_transaction(connection):
                self._cancel(connection, job_id)
                connection.execute("DELETE FROM job_results WHERE job_id = ?", (job_id,))
                connection.execute(
                    "UPDATE jobs SET result_expires_at = ? WHERE id = ? AND status = 'succeeded'"
                    " AND result_expires_at > ?",
                    (now, job_id, now),
                )

        await self._run(delete)

    def _cancel(self, connection: sqlite3.Connection, job_id: str) -> None:
        row = connection.execute("SELECT status FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is not None and row[0] in ("queued", "running"):
            self._end(connection, job_id, None)

    def _end(self, connection: sqlite3.Connection, job_id: str, outcome: Outcome | None) -> None:
        """The job ends: with `outcome`, or canceled (None). Input gone, result kept, effects
        owed, the batch told; in the caller's transaction."""
        now = self.clock()
        succeeded = isinstance(outcome, Succeeded)
        status = "canceled" if outcome is None else "succeeded" if succeeded else "failed"
        error = None if outcome is None or isinstance(outcome, Succeeded) else outcome.error
        connection.execute(
            "UPDATE jobs SET status = ?, finished_at = ?, lease_until = NULL, ready_at = NULL,"
            " error = ?, result_headers = ?, processing_seconds = ?, result_expires_at = ?,"
            " record_expires_at = ? WHERE id = ?",
            (
                status,
                now,
                None if error is None else json.dumps(error),
                json.dumps(outcome.headers) if isinstance(outcome, Succeeded) else None,
                outcome.processing_seconds if isinstance(outcome, Succeeded) else None,
                now + self.retention.result_s if succeeded else None,
                now + self.retention.record_s,
                job_id,
            ),
        )
        connection.execute("DELETE FROM job_inputs WHERE job_id = ?", (job_id,))
        if isinstance(outcome, Succeeded):
            connection.execute(
                "INSERT OR REPLACE INTO job_results (job_id, png, expires_at) VALUES (?, ?, ?)",
                (job_id, outcome.png, now + self.retention.result_s),
            )
        callback, batch_id = connection.execute(
            "SELECT callback_url, batch_id FROM jobs WHERE id = ?", (job_id,)
        ).fetchone()
        owed = [Effect("usage", job_id)]
        if callback and outcome is not None:
            owed.append(Effect("job-webhook", job_id))
        if batch_id is not None:
            remaining, batch_callback = connection.execute(
                "UPDATE batches SET remaining = remaining - 1 WHERE id = ?"
                " RETURNING remaining, callback_url",
                (batch_id,),
            ).fetchone()
            if remaining == 0:
                connection.execute(
                    "UPDATE batches SET finished_at = ?, record_expires_at = ? WHERE id = ?",
                    (now, now + self.retention.record_s, batch_id),
                )
                if batch_callback:
                    owed.append(Effect("batch-webhook", batch_id))
        connection.executemany(
            "INSERT OR IGNORE INTO effects (id, due_at, attempt) VALUES (?, ?, 0)",
            [(effect.id, now) for effect in owed],
        )

    # --- idempotency ------------------------------------------------------------------------

    async def begin_idempotent(self, key: IdempotencyKey) -> IdempotencyAnswer:
        def begin(connection: sqlite3.Connection) -> IdempotencyAnswer:
            now = self.clock()
            with write_transaction(connection):
                connection.execute(
                    "DELETE FROM idempotency_keys WHERE owner_id = ? AND idempotency_key = ?"
                    " AND expires_at <= ?",
                    (key.owner_id, key.key, now),
                )
                row = connection.execute(
                    "SELECT fingerprint, target FROM idempotency_keys"
                    " WHERE owner_id = ? AND idempotency_key = ?",
                    (key.owner_id, key.key),
                ).fetchone()
                if row is None:
                    connection.execute(
                        "INSERT INTO idempotency_keys"
                        " (owner_id, idempotency_key, fingerprint, target, expires_at)"
                        " VALUES (?, ?, ?, NULL, ?)",
                        (key.owner_id, key.key, key.fingerprint, now + IDEMPOTENCY_CLAIM_S),
                    )
                    return IdempotencyAnswer("new")
            fingerprint, target = row
            if fingerprint != key.fingerprint:
                return IdempotencyAnswer("mismatch")
            if target is None:
                return IdempotencyAnswer("in_progress")
            return IdempotencyAnswer("done", target)

        return await self._run(begin)

    async def abandon_idempotent(self, key: IdempotencyKey) -> None:
        def abandon(connection: sqlite3.Connection) -> None:
            with write_transaction(connection):
                connection.execute(
                    "DELETE FROM idempotency_keys WHERE owner_id = ? AND idempotency_key = ?"
                    " AND fingerprint = ? AND target IS NULL",
                    (key.owner_id, key.key, key.fingerprint),
                )

        await self._run(abandon)

    # --- effects ------------------------------------------------------------------------------

    async def claim_effect(self, *, lease_s: float) -> Effect | None:
        def claim(connection: sqlite3.Connection) -> Effect | None:
            now = self.clock()
            with write_transaction(connection):
                row = connection.execute(
                    "SELECT id, attempt FROM effects WHERE due_at <= ? ORDER BY due_at LIMIT 1",
                    (now,),
                ).fetchone()
                if row is None:
                    return None
                connection.execute(
                    "UPDATE effects SET due_at = ? WHERE id = ?", (now + lease_s, row[0])
                )
            return Effect.parse(row[0], row[1])

        return await self._run(claim)

    async def finish_effect(self, effect: Effect) -> None:
        def finish(connection: sqlite3.Connection) -> None:
            with write_transaction(connection):
                connection.execute("DELETE FROM effects WHERE id = ?", (effect.id,))

        await self._run(finish)

    async def retry_effect(self, effect: Effect, *, delay_s: float) -> None:
        def retry(connection: sqlite3.Connection) -> None:
            with write_transaction(connection):
                connection.execute(
                    "UPDATE effects SET due_at = ?, attempt = ? WHERE id = ?",
                    (self.clock() + delay_s, effect.attempt + 1, effect.id),
                )

        await self._run(retry)

    async def purge(self) -> None:
        def purge(connection: sqlite3.Connection) -> None:
            now = self.clock()
            with write_transaction(connection):
                connection.execute("DELETE FROM job_results WHERE expires_at <= ?", (now,))
                connection.execute("DELETE FROM jobs WHERE record_expires_at <= ?", (now,))
                connection.execute("DELETE FROM batches WHERE record_expires_at <= ?", (now,))
                connection.execute("DELETE FROM idempotency_keys WHERE expires_at <= ?", (now,))

        await self._run(purge)


def _add_missing_columns(connection: sqlite3.Connection) -> None:
    """Columns added after a database was first made (CREATE TABLE IF NOT EXISTS keeps an
    old table as it was): a file from an earlier version gains them, empty."""
    columns = {row[1] for row in connection.execute("PRAGMA table_info(job_inputs)")}
    if "watermark" not in columns:
        connection.execute("ALTER TABLE job_inputs ADD COLUMN watermark BLOB")


def _holds(connection: sqlite3.Connection, job_id: str, token: int) -> bool:
    return (
        connection.execute(
            "SELECT 1 FROM jobs WHERE id = ? AND status = 'running' AND attempts = ?",
            (job_id, token),
        ).fetchone()
        is not None
    )


def _count_unfinished(connection: sqlite3.Connection, owner_id: str | None) -> int:
    if owner_id is None:
        row = connection.execute(
            "SELECT COUNT(*) FROM jobs WHERE status IN ('queued', 'running')"
        ).fetchone()
    else:
        row = connection.execute(
            "SELECT COUNT(*) FROM jobs WHERE owner_id = ? AND status IN ('queued', 'running')",
            (owner_id,),
        ).fetchone()
    return int(row[0])


def _insert_job(connection: sqlite3.Connection, job: Job, *, ready_at: float) -> None:
    connection.execute(
        "INSERT INTO jobs (id, owner_id, owner_snapshot, status, created_at, ready_at,"
        " links_base, filename, callback_url, batch_id, position)"
        " VALUES (?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?)",
        (
            job.id,
            job.owner.id,
            job.owner.snapshot,
            job.created_at,
            ready_at,
            job.links_base,
            job.filename,
            job.callback_url,
            job.batch_id,
            job.position,
        ),
    )


def _insert_batch(connection: sqlite3.Connection, batch: Batch, *, remaining: int) -> None:
    connection.execute(
        "INSERT INTO batches (id, owner_id, owner_snapshot, created_at, job_ids, links_base,"
        " callback_url, remaining) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            batch.id,
            batch.owner.id,
            batch.owner.snapshot,
            batch.created_at,
            json.dumps(list(batch.job_ids)),
            batch.links_base,
            batch.callback_url,
            remaining,
        ),
    )


def _read_job(connection: sqlite3.Connection, job_id: str) -> Job | None:
    row = connection.execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
    return _job_from(row) if row else None


def _job_from(row: tuple[Any, ...]) -> Job:
    (
        job_id,
        owner_id,
        snapshot,
        status,
        created_at,
        links_base,
        filename,
        callback_url,
        batch_id,
        position,
        started_at,
        finished_at,
        attempts,
        error,
        headers,
        seconds,
        result_expires_at,
    ) = row
    return Job(
        id=job_id,
        owner=Owner(owner_id, snapshot),
        status=status,
        created_at=created_at,
        links_base=links_base,
        filename=filename,
        callback_url=callback_url,
        batch_id=batch_id,
        position=position,
        started_at=started_at,
        finished_at=finished_at,
        attempts=attempts,
        error=None if error is None else json.loads(error),
        result_headers={} if headers is None else json.loads(headers),
        processing_seconds=seconds,
        result_expires_at=result_expires_at,
    )
