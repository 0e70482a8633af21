"""`iopaint-api keys ...`: API keys and plans, in the store the service uses.

    keys create --plan basic --name acme [--json] [--test]
    keys create --plan enterprise --name bigco --rate 600 --burst 100 --quota 1000000
    keys list [--json]
    keys revoke sk_live_AbCd1234
    keys rotate sk_live_AbCd1234 [--grace 24h]
    keys set-plan sk_live_AbCd1234 pro
    keys webhook-secret create sk_live_AbCd1234 [--json]
    keys webhook-secret rotate sk_live_AbCd1234 [--grace 24h] [--json]
    keys webhook-secret show sk_live_AbCd1234 [--json]

The store comes from the settings: Redis when IOPAINT_REDIS_URL is set, else the embedded
SQLite file under IOPAINT_DATA_DIR (per user by default, whatever the current directory).
Every command says on stderr which store it used, as the service's start-up line does, so a
key made in one store and looked up in another is found out at once. A new key is printed
once and never stored. Webhook secrets (`whsec_…`, which sign job and batch webhooks) are
stored as they are, since signing needs them, and `show` prints them again.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import typer

from auth.backends import open_store, store_location
from auth.key_admin import CreatedKey, KeyAdmin, KeyAdminError
from auth.plans import (
    ENTERPRISE,
    PLAN_NAMES,
    Plan,
    QuotaPeriod,
    UnknownPlan,
    enterprise_plan,
    resolve_plan,
)
from auth.records import KeyRecord, WebhookSecret
from auth.store import StoreUnavailable
from settings import get_settings, parse_durations

T = TypeVar("T")

keys_app = typer.Typer(help="Create, list, revoke and rotate API keys.", no_args_is_help=True)
webhook_app = typer.Typer(
    help="The secret that signs a key's job and batch webhooks (Standard Webhooks).",
    no_args_is_help=True,
)
keys_app.add_typer(webhook_app, name="webhook-secret")

WEBHOOK_GRACE_HOURS = 24
"""How long deliveries keep carrying the old secret's signature after a rotation, by default."""

RATE_OPTION = typer.Option(None, help="Enterprise: requests per minute (refill rate).")
BURST_OPTION = typer.Option(None, help="Enterprise: bucket capacity (burst).")
QUOTA_OPTION = typer.Option(None, help="Enterprise: requests per quota period.")
PERIOD_OPTION = typer.Option("month", help="Enterprise: quota period, day or month.")


@keys_app.command()
def create(
    name: str = typer.Option(..., help="Who the key is for (shown in listings)."),
    plan: str = typer.Option("free", help=f"One of: {', '.join(PLAN_NAMES)}."),
    test: bool = typer.Option(False, "--test", help="Issue an sk_test_ key."),
    rate: float | None = RATE_OPTION,
    burst: int | None = BURST_OPTION,
    quota: int | None = QUOTA_OPTION,
    quota_period: str = PERIOD_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print JSON (includes the key)."),
) -> None:
    """Create a key and print it once."""
    chosen = _plan(plan, rate, burst, quota, quota_period)
    created = _run(
        lambda admin: admin.create(name=name, plan=chosen, environment="test" if test else "live")
    )
    _print_created(created, as_json, f"Created a {chosen.name} key for {name}.")


@keys_app.command("list")
def list_keys(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Every key: prefix, name, plan, created, last used, revoked."""
    keys = _run(lambda admin: admin.list())
    if as_json:
        typer.echo(json.dumps([_key_summary(key) for key in keys], indent=2))
        return
    columns = ("PREFIX", "NAME", "PLAN", "CREATED", "LAST USED", "REVOKED")
    rows = [columns]
    for key in keys:
        rows.append(
            (
                key.current_prefix,
                key.name,
                key.plan_name,
                _when(key.created_at),
                _when(key.last_used_at),
                _when(key.revoked_at),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]
    for row in rows:
        typer.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    for key in keys:
        for secret in key.secrets:
            if secret.expires_at is not None:
                ends = _when(secret.expires_at)
                typer.echo(f"{secret.prefix} (old secret of {key.name}) stops at {ends}")


@keys_app.command()
def revoke(
    prefix: str = typer.Argument(..., help="Display prefix, e.g. sk_live_AbCd1234."),
) -> None:
    """Stop a key (every secret of it) at once."""
    key = _run(lambda admin: admin.revoke(prefix))
    typer.echo(f"Revoked {key.name}'s key ({prefix}).")


@keys_app.command()
def rotate(
    prefix: str = typer.Argument(..., help="Display prefix of the key to rotate."),
    grace: str | None = typer.Option(
        None, help="How long the old key keeps working: 90s, 30m, 24h, 7d (default: setting)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (includes the key)."),
) -> None:
    """Issue a new key with the same plan, limits and usage; the old one ends after --grace."""
    grace_seconds = (
        _duration(grace) if grace is not None else get_settings().rotation_grace_hours * 3600
    )
    created = _run(lambda admin: admin.rotate(prefix, grace_seconds=grace_seconds))
    _print_created(
        created,
        as_json,
        f"Rotated {created.record.name}'s key; {prefix} keeps working until "
        f"{_when(created.record.created_at + grace_seconds)}.",
    )


@keys_app.command("set-plan")
def set_plan(
    prefix: str = typer.Argument(..., help="Display prefix of the key."),
    plan: str = typer.Argument(..., help=f"One of: {', '.join(PLAN_NAMES)}."),
    rate: float | None = RATE_OPTION,
    burst: int | None = BURST_OPTION,
    quota: int | None = QUOTA_OPTION,
    quota_period: str = PERIOD_OPTION,
) -> None:
    """Move a key to another plan (its usage so far stays)."""
    chosen = _plan(plan, rate, burst, quota, quota_period)
    key = _run(lambda admin: admin.set_plan(prefix, chosen))
    typer.echo(f"{key.name}'s key ({prefix}) is now on {key.plan_name}.")


@webhook_app.command("create")
def create_webhook_secret(
    prefix: str = typer.Argument(..., help="Display prefix of the key."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (includes the secret)."),
) -> None:
    """Give the key its first webhook secret and print it."""
    secret = _run(lambda admin: admin.create_webhook_secret(prefix))
    _print_webhook_secrets([secret], as_json, f"Webhook secret of {prefix}:")


@webhook_app.command("rotate")
def rotate_webhook_secret(
    prefix: str = typer.Argument(..., help="Display prefix of the key."),
    grace: str = typer.Option(
        f"{WEBHOOK_GRACE_HOURS}h",
        help="How long deliveries are also signed with the old secret: 0, 90s, 30m, 24h, 7d.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (includes the secrets)."),
) -> None:
    """A new webhook secret; the old one keeps signing deliveries for --grace."""
    grace_seconds = _duration(grace)

    async def rotate(admin: KeyAdmin) -> list[WebhookSecret]:
        await admin.rotate_webhook_secret(prefix, grace_seconds=grace_seconds)
        return await admin.webhook_secrets(prefix)

    secrets = _run(rotate)
    _print_webhook_secrets(secrets, as_json, f"Webhook secrets of {prefix}, newest first:")


@webhook_app.command("show")
def show_webhook_secrets(
    prefix: str = typer.Argument(..., help="Display prefix of the key."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """The key's live webhook secrets, newest first, and when the older ones stop."""
    secrets = _run(lambda admin: admin.webhook_secrets(prefix))
    if not secrets and not as_json:
        typer.echo(f"Key {prefix} has no webhook secret (webhook-secret create {prefix}).")
        return
    _print_webhook_secrets(secrets, as_json, f"Webhook secrets of {prefix}, newest first:")


def _print_webhook_secrets(secrets: list[WebhookSecret], as_json: bool, headline: str) -> None:
    if as_json:
        listed = [
            {
                "secret": secret.value,
                "created_at": _iso(secret.created_at),
                "expires_at": _iso(secret.expires_at),
            }
            for secret in secrets
        ]
        typer.echo(json.dumps(listed, indent=2))
        return
    typer.echo(headline)
    for secret in secrets:
        ends = (
            "" if secret.expires_at is None else f"  (stops signing at {_when(secret.expires_at)})"
        )
        typer.echo(f"{secret.value}{ends}")


def _run(action: Callable[[KeyAdmin], Awaitable[T]]) -> T:
    settings = get_settings()
    typer.echo(f"Keys store: {store_location(settings)}", err=True)

    async def run() -> T:
        store = open_store(settings)
        try:
            return await action(KeyAdmin(store))
        finally:
            await store.aclose()

    try:
        return asyncio.run(run())
    except (KeyAdminError, StoreUnavailable) as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(1) from exc


def _plan(
    name: str, rate: float | None, burst: int | None, quota: int | None, quota_period: str
) -> Plan:
    custom = (rate, burst, quota)
    try:
        if name != ENTERPRISE:
            if any(value is not None for value in custom):
                raise typer.BadParameter("--rate/--burst/--quota are for enterprise keys only")
            return resolve_plan(name)
        if rate is None or burst is None or quota is None:
            raise typer.BadParameter("an enterprise key needs --rate, --burst and --quota")
        if quota_period not in ("day", "month"):
            raise typer.BadParameter("--quota-period is day or month")
        period: QuotaPeriod = "day" if quota_period == "day" else "month"
        return enterprise_plan(rate_per_minute=rate, burst=burst, quota=quota, quota_period=period)
    except (UnknownPlan, ValueError) as exc:
        raise typer.BadParameter(str(exc)) from exc


def _duration(text: str) -> float:
    try:
        (seconds,) = parse_durations(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a duration like 90s, 30m, 24h or 7d") from None
    return seconds


def _print_created(created: CreatedKey, as_json: bool, headline: str) -> None:
    if as_json:
        typer.echo(json.dumps({"key": created.key, **_key_summary(created.record)}, indent=2))
        return
    typer.echo(headline)
    typer.echo("Copy the key now; it cannot be shown again:")
    typer.echo(created.key)


def _key_summary(key: KeyRecord) -> dict[str, Any]:
    plan = key.plan
    return {
        "key_id": key.key_id,
        "prefix": key.current_prefix,
        "name": key.name,
        "plan": plan.name,
        "rate_per_minute": plan.rate_per_minute,
        "burst": plan.burst,
        "quota": plan.quota,
        "quota_period": plan.quota_period,
        "environment": key.environment,
        "created_at": _iso(key.created_at),
        "last_used_at": _iso(key.last_used_at),
        "revoked_at": _iso(key.revoked_at),
        "secrets": [
            {"prefix": secret.prefix, "expires_at": _iso(secret.expires_at)}
            for secret in key.secrets
        ],
    }


def _when(moment: float | None) -> str:
    if moment is None:
        return "-"
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _iso(moment: float | None) -> str | None:
    return None if moment is None else datetime.fromtimestamp(moment, UTC).isoformat()
