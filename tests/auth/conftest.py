"""Fixtures of the accounts suites: both stores, a private redis-server, a settable clock."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from auth.key_admin import KeyAdmin
from auth.redis_store import RedisStore
from auth.sqlite_store import SqliteStore
from auth.store import Store
from tests.auth.redis_server import REDIS_BINARY, RedisServer

# The embedded store always; Redis whenever the binary exists (the tests start their own).
STORE_KINDS = [
    "sqlite",
    pytest.param(
        "redis",
        marks=[
            pytest.mark.redis,
            pytest.mark.skipif(REDIS_BINARY is None, reason="redis-server is not installed"),
        ],
    ),
]


class FakeClock:
    """Seconds since the epoch, moved only by the test."""

    def __init__(self, now: float = 1_764_000_000.0) -> None:  # 2025-11-24T16:00:00Z
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    if REDIS_BINARY is None:
        pytest.skip("redis-server is not installed")
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(params=STORE_KINDS)
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_store(
    store_kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Callable[[], Store]:
    """Builds a store client; several clients of one kind share the same data."""
    if store_kind == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        server.flush()  # our private server: every test starts empty
        return lambda: RedisStore.from_url(server.url, key_prefix="test:")
    return lambda: SqliteStore(tmp_path / "accounts.sqlite3")


@pytest.fixture
async def store(make_store: Callable[[], Store]) -> AsyncIterator[Store]:
    store = make_store()
    yield store
    await store.aclose()


@pytest.fixture
def admin(store: Store) -> KeyAdmin:
    return KeyAdmin(store)
