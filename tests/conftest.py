"""Fixtures shared by the suites: both accounts stores (a private redis-server for the Redis
one), and one real service per test session, with an API key."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest

from auth.key_admin import KeyAdmin
from auth.redis_store import RedisStore
from auth.sqlite_store import SqliteStore
from auth.store import Store
from tests.auth.redis_server import REDIS_BINARY, RedisServer
from tests.server import UNLIMITED, RunningService, create_key, service_env, start_service

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


# --- one real service -------------------------------------------------------------------


@pytest.fixture(scope="session")
def e2e_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    workdir = tmp_path_factory.mktemp("e2e")
    scratch = workdir / "tmp"  # the service's TMPDIR: hostile-input tests check it stays empty
    scratch.mkdir()
    return service_env(
        workdir,
        IOPAINT_BODY_TIMEOUT_S="3",
        TMPDIR=str(scratch),
        # Job tests' webhook receivers listen on loopback; retries come quickly.
        IOPAINT_CALLBACK_ALLOWED_NETWORKS="127.0.0.0/8",
        IOPAINT_WEBHOOK_RETRY_SCHEDULE="0.5s,1s,2s",
    )


@pytest.fixture(scope="session")
def api_key(e2e_env: dict[str, str]) -> str:
    """A key whose plan never gets in the way of contract tests."""
    return create_key(e2e_env, plan="enterprise", name="contract-tests", limits=UNLIMITED)


@pytest.fixture(scope="session")
def service(e2e_env: dict[str, str], api_key: str) -> Iterator[RunningService]:
    running = start_service(Path(e2e_env["IOPAINT_DATA_DIR"]).parent, e2e_env)
    yield running
    running.stop()


@pytest.fixture
def client(service: RunningService, api_key: str) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=service.base_url, headers={"X-API-Key": api_key}, timeout=120
    ) as http:
        yield http
