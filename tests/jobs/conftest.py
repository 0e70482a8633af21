"""Job stores for the contract suite and the worker tests: the embedded SQLite file, and a
private redis-server (the session's, flushed per test), each with a short retention."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from jobs.redis_store import RedisJobStore
from jobs.retention import Retention
from jobs.sqlite_store import SqliteJobStore
from jobs.store import JobStore
from tests.auth.redis_server import RedisServer

SHORT_RETENTION = Retention(result_s=3600.0, record_s=7200.0)


@pytest.fixture
def make_job_store(
    store_kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Callable[..., JobStore]:
    """Builds job-store clients of one kind sharing the same data."""

    def build(retention: Retention = SHORT_RETENTION) -> JobStore:
        if store_kind == "redis":
            server: RedisServer = request.getfixturevalue("redis_server")
            return RedisJobStore.from_url(server.url, retention=retention, key_prefix="test:")
        return SqliteJobStore(tmp_path / "jobs.sqlite3", retention=retention)

    if store_kind == "redis":
        request.getfixturevalue("redis_server").flush()
    return build


@pytest.fixture
async def job_store(make_job_store: Callable[..., JobStore]) -> AsyncIterator[JobStore]:
    store = make_job_store()
    yield store
    await store.aclose()
