"""`keys ...` against the store the settings choose (SQLite file, or Redis by URL)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from auth.cli import keys_app
from auth.keys import parse_key
from settings import get_settings
from tests.auth.redis_server import RedisServer

runner = CliRunner()


@pytest.fixture
def keys(
    store_kind: str, request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    monkeypatch.setenv("IOPAINT_DATA_DIR", str(tmp_path / "data"))
    if store_kind == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        server.flush()
        monkeypatch.setenv("IOPAINT_REDIS_URL", server.url)
    else:
        monkeypatch.delenv("IOPAINT_REDIS_URL", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def run(*args: str) -> str:
    result = runner.invoke(keys_app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def create(*args: str) -> dict[str, object]:
    return json.loads(run("create", "--json", *args))  # type: ignore[no-any-return]


def test_create_prints_the_key_once_and_list_never_does(keys: None) -> None:
    created = create("--plan", "basic", "--name", "acme")
    key = str(created["key"])
    presented = parse_key(key)
    assert presented is not None and presented.prefix == created["prefix"]
    assert (created["plan"], created["burst"], created["quota"]) == ("basic", 20, 3000)
    human = run("create", "--plan", "pro", "--name", "globex", "--test")
    assert "sk_test_" in human and "cannot be shown again" in human
    listing = run("list")
    assert "acme" in listing and "globex" in listing and str(created["prefix"]) in listing
    assert key not in listing and key not in run("list", "--json")


def test_enterprise_needs_its_limits_and_other_plans_refuse_them(keys: None) -> None:
    refused = runner.invoke(keys_app, ["create", "--plan", "enterprise", "--name", "big"])
    assert refused.exit_code == 2
    assert runner.invoke(keys_app, ["create", "--name", "x", "--rate", "5"]).exit_code == 2
    assert runner.invoke(keys_app, ["create", "--plan", "gold", "--name", "x"]).exit_code == 2
    created = create(
        "--plan", "enterprise", "--name", "big", "--rate", "600", "--burst", "100", "--quota", "9"
    )
    assert created["plan"] == "enterprise"


def test_revoke_rotate_and_set_plan(keys: None) -> None:
    created = create("--name", "acme")
    assert created["plan"] == "free"
    prefix = str(created["prefix"])
    rotated = json.loads(run("rotate", prefix, "--grace", "1h", "--json"))
    assert rotated["key"] != created["key"]
    assert [secret["prefix"] for secret in rotated["secrets"]] == [prefix, rotated["prefix"]]
    assert rotated["secrets"][0]["expires_at"] is not None
    assert "now on pro" in run("set-plan", rotated["prefix"], "pro")
    assert "Revoked" in run("revoke", prefix)
    listed = json.loads(run("list", "--json"))
    assert listed[0]["plan"] == "pro" and listed[0]["revoked_at"] is not None
    unknown = runner.invoke(keys_app, ["revoke", "sk_live_00000000"])
    assert unknown.exit_code == 1 and "no key with prefix" in unknown.output
    assert runner.invoke(keys_app, ["rotate", prefix, "--grace", "soon"]).exit_code == 2


def test_webhook_secrets_are_created_rotated_and_shown(keys: None) -> None:
    prefix = str(create("--plan", "basic", "--name", "acme")["prefix"])
    created = json.loads(run("webhook-secret", "create", prefix, "--json"))
    assert len(created) == 1 and created[0]["secret"].startswith("whsec_")
    again = runner.invoke(keys_app, ["webhook-secret", "create", prefix])
    assert again.exit_code == 1 and "rotate" in again.output
    rotated = json.loads(run("webhook-secret", "rotate", prefix, "--grace", "2h", "--json"))
    assert [entry["secret"] for entry in rotated][1] == created[0]["secret"]
    assert rotated[0]["expires_at"] is None and rotated[1]["expires_at"] is not None
    shown = run("webhook-secret", "show", prefix)
    assert rotated[0]["secret"] in shown and "stops signing at" in shown
    other = str(create("--plan", "free", "--name", "other")["prefix"])
    assert "has no webhook secret" in run("webhook-secret", "show", other)
    refused = runner.invoke(keys_app, ["webhook-secret", "rotate", other])
    assert refused.exit_code == 1 and "create one first" in refused.output


def test_every_command_says_which_store_it_used(keys: None, store_kind: str) -> None:
    result = runner.invoke(keys_app, ["list"])
    assert result.exit_code == 0, result.output
    expected = "Redis at redis://127.0.0.1:" if store_kind == "redis" else "embedded SQLite at "
    assert f"Keys store: {expected}" in result.stderr
    assert "Keys store" not in result.stdout  # stdout stays the listing (or the --json)
