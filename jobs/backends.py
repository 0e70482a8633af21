"""Which job store backs this process: the one place that chooses, from the settings.

The same choice as the accounts store (auth/backends.py): Redis when `IOPAINT_REDIS_URL` is
set, so that every replica shares one queue; otherwise the embedded SQLite file
`IOPAINT_DATA_DIR/jobs.sqlite3`, shared by the processes of one machine.
"""

from __future__ import annotations

from pathlib import Path

from jobs.redis_store import RedisJobStore
from jobs.retention import Retention
from jobs.sqlite_store import SqliteJobStore
from jobs.store import JobStore
from settings import Settings


def retention_of(settings: Settings) -> Retention:
    return Retention.for_settings(settings.job_result_ttl_s, settings.webhook_retry_delays_s)


def open_job_store(settings: Settings) -> JobStore:
    retention = retention_of(settings)
    if settings.redis_url is not None:
        return RedisJobStore.from_url(
            settings.redis_url.get_secret_value(),
            retention=retention,
            key_prefix=settings.redis_key_prefix,
        )
    return SqliteJobStore(jobs_sqlite_path(settings), retention=retention)


def jobs_sqlite_path(settings: Settings) -> Path:
    return settings.data_dir / "jobs.sqlite3"
