"""Fixtures shared by the suites: one real service per test session, with an API key."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.server import UNLIMITED, RunningService, create_key, service_env, start_service


@pytest.fixture(scope="session")
def e2e_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    workdir = tmp_path_factory.mktemp("e2e")
    scratch = workdir / "tmp"  # the service's TMPDIR: hostile-input tests check it stays empty
    scratch.mkdir()
    return service_env(workdir, IOPAINT_BODY_TIMEOUT_S="3", TMPDIR=str(scratch))


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
