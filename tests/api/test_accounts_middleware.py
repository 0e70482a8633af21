"""The middleware around a tiny Starlette app: which routes need keys, headers, bodies, counts.

Requests go in-process through `httpx.ASGITransport` (Starlette 1.x's TestClient wants the
separate `httpx2` package).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from api.accounts_middleware import AccountsMiddleware
from api.routing import CHARGED_BY_HANDLER, MissingRoutePolicy, Policy, PolicyRoute
from auth.accounts import Accounts
from auth.key_admin import KeyAdmin
from auth.plans import PLANS
from auth.store import Store
from tests.api.tiny_app import BATCH_ROUTE, CHARGED_ROUTE, ROUTE, tiny_app

pytestmark = pytest.mark.anyio


@pytest.fixture
async def client(store: Store) -> AsyncIterator[httpx.AsyncClient]:
    accounts = Accounts(store)
    # raise_app_exceptions=False: a crashing route must still be counted, as in production.
    transport = httpx.ASGITransport(app=tiny_app(accounts), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest.fixture
async def free_key(admin: KeyAdmin) -> str:
    return (await admin.create(name="acme", plan=PLANS["free"])).key


def assert_error(response: httpx.Response, status: int, detail: str) -> None:
    assert response.status_code == status
    assert response.json() == {
        "error": {401: "Unauthorized", 429: "Too Many Requests", 503: "Service Unavailable"}[
            status
        ],
        "detail": detail,
        "status_code": status,
    }


@pytest.mark.parametrize("path", ["/api/v1/health", "/api/v1/openapi.json", "/livez", "/metrics"])
async def test_public_paths_need_no_key(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 200
    assert response.json() == {"account": False}
    assert "X-RateLimit-Limit" not in response.headers


async def test_missing_and_invalid_keys_get_the_documented_401(client: httpx.AsyncClient) -> None:
    assert_error(await client.post(ROUTE), 401, "Missing API Key. Please provide X-API-Key header.")
    assert_error(
        await client.get("/api/v1/stats"), 401, "Missing API Key. Please provide X-API-Key header."
    )
    invalid = await client.get("/api/v1/stats", headers={"X-API-Key": "sk_live_nope"})
    assert_error(invalid, 401, "Invalid API Key")
    assert "X-RateLimit-Limit" not in invalid.headers
    # A mistyped route is 404, said before anyone is asked for a key.
    unknown = await client.get("/api/v1/anything")
    assert (unknown.status_code, unknown.json()["detail"]) == (404, "No route /api/v1/anything")
    assert (await client.get(ROUTE)).status_code == 405  # a known route, the wrong method


async def test_every_authenticated_response_carries_the_rate_limit_headers(
    client: httpx.AsyncClient, free_key: str
) -> None:
    headers = {"X-API-Key": free_key}
    first = await client.post(ROUTE, headers=headers)
    assert first.status_code == 200
    assert first.headers["X-RateLimit-Limit"] == "5"
    assert first.headers["X-RateLimit-Remaining"] == "4"
    assert int(first.headers["X-RateLimit-Reset"]) > 0
    assert "Retry-After" not in first.headers
    stats = await client.get("/api/v1/stats", headers=headers)
    assert stats.headers["X-RateLimit-Remaining"] == "4"  # reading spends nothing
    failed = await client.post(f"{ROUTE}?status=400", headers=headers)
    assert failed.status_code == 400
    assert failed.headers["X-RateLimit-Remaining"] == "3"


async def test_the_sixth_request_is_429_with_retry_after(
    client: httpx.AsyncClient, free_key: str
) -> None:
    headers = {"X-API-Key": free_key}
    for _ in range(5):
        assert (await client.post(ROUTE, headers=headers)).status_code == 200
    refused = await client.post(ROUTE, headers=headers)
    assert refused.status_code == 429
    assert refused.json()["detail"].startswith("Rate limit exceeded. Please try again later.")
    assert refused.headers["Retry-After"] in {"29", "30"}
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert refused.headers["X-RateLimit-Limit"] == "5"
    assert int(refused.headers["X-RateLimit-Reset"]) > 0
    stats = await client.get("/api/v1/stats", headers=headers)
    assert stats.status_code == 200
    assert stats.headers["X-RateLimit-Remaining"] == "0"
    assert "Retry-After" not in stats.headers  # only a refusal says when to retry


async def test_stats_count_every_admitted_outcome(client: httpx.AsyncClient, free_key: str) -> None:
    headers = {"X-API-Key": free_key}
    assert (await client.post(ROUTE, headers=headers)).status_code == 200
    assert (await client.post(f"{ROUTE}?status=400", headers=headers)).status_code == 400
    assert (await client.post(f"{ROUTE}?crash=1", headers=headers)).status_code == 500
    assert (await client.post(ROUTE, headers=headers)).status_code == 200
    assert (await client.post(ROUTE, headers=headers)).status_code == 200
    assert (await client.post(ROUTE, headers=headers)).status_code == 429
    stats = (await client.get("/api/v1/stats", headers=headers)).json()
    assert stats == {
        "total": 5,
        "success": 3,
        "failed": 2,
        "total_processing_time": 0.75,
        "avg_processing_time": 0.25,
        "plan": "free",
        "quota": {
            "used": 5,
            "limit": 10,
            "period": "day",
            "resets_at": stats["quota"]["resets_at"],
        },
        "rate_limited": 1,
    }


async def test_a_request_cancelled_mid_way_still_counts_as_failed(
    store: Store, admin: KeyAdmin
) -> None:
    accounts = Accounts(store)
    key = (await admin.create(name="acme", plan=PLANS["free"])).key
    started = anyio.Event()

    async def hanging_app(scope: Scope, receive: Receive, send: Send) -> None:
        started.set()
        await anyio.sleep_forever()

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        raise AssertionError("nothing is sent")

    scope = {
        "type": "http",
        "method": "POST",
        "path": ROUTE,
        "headers": [(b"x-api-key", key.encode())],
    }
    declared = [PolicyRoute(ROUTE, hanging_app, method="POST", policy=Policy(cost=1))]
    async with anyio.create_task_group() as requests:
        middleware = AccountsMiddleware(hanging_app, accounts=accounts, routes=declared)
        requests.start_soon(middleware, scope, receive, send)
        await started.wait()
        requests.cancel_scope.cancel()  # the client hung up
    stats = await accounts.stats(await accounts.authenticate(key))
    assert (stats["total"], stats["success"], stats["failed"]) == (1, 0, 1)


async def test_a_route_that_costs_three_spends_three_or_nothing(
    client: httpx.AsyncClient, free_key: str
) -> None:
    headers = {"X-API-Key": free_key}
    first = await client.post(BATCH_ROUTE, headers=headers)
    assert (first.status_code, first.headers["X-RateLimit-Remaining"]) == (200, "2")
    refused = await client.post(BATCH_ROUTE, headers=headers)  # 2 tokens left, 3 needed
    assert refused.status_code == 429
    # The third token is one refill (30 s) away; the refusal spent nothing.
    assert refused.headers["Retry-After"] in {"29", "30"}
    assert refused.headers["X-RateLimit-Remaining"] == "2"
    assert (await client.post(ROUTE, headers=headers)).status_code == 200
    stats = (await client.get("/api/v1/stats", headers=headers)).json()
    assert (stats["quota"]["used"], stats["total"], stats["rate_limited"]) == (4, 2, 1)


async def test_on_a_429_the_reset_header_is_when_the_request_would_pass(
    client: httpx.AsyncClient, free_key: str
) -> None:
    headers = {"X-API-Key": free_key}
    for _ in range(5):
        await client.post(ROUTE, headers=headers)
    before = time.time()
    refused = await client.post(ROUTE, headers=headers)
    assert refused.status_code == 429
    retry_after = int(refused.headers["Retry-After"])
    reset = int(refused.headers["X-RateLimit-Reset"])
    assert before + retry_after - 1 <= reset <= time.time() + retry_after + 1
    # On a 200 it is when the bucket is full again: five refills away for an empty bucket.
    stats = await client.get("/api/v1/stats", headers=headers)
    assert int(stats.headers["X-RateLimit-Reset"]) >= before + 5 * 30 - 31


async def test_a_route_without_a_policy_stops_the_service_from_starting(store: Store) -> None:
    async def undeclared(request: Request) -> Response:
        return Response(b"free for all?")

    app = Starlette(routes=[Route("/api/v1/new-feature", undeclared, methods=["POST"])])
    with pytest.raises(MissingRoutePolicy, match="/api/v1/new-feature declares no Policy"):
        AccountsMiddleware(app, accounts=Accounts(store), routes=app.routes)


def test_a_public_route_cannot_charge() -> None:
    with pytest.raises(ValueError, match="public route"):
        Policy(public=True, cost=1)


async def test_a_handler_charged_route_spends_what_its_handler_charges_all_or_nothing(
    client: httpx.AsyncClient, free_key: str
) -> None:
    headers = {"X-API-Key": free_key}
    looked = await client.post(CHARGED_ROUTE, headers=headers)  # charges nothing
    assert (looked.status_code, looked.headers["X-RateLimit-Remaining"]) == (202, "5")
    charged = await client.post(f"{CHARGED_ROUTE}?n=3", headers=headers)
    # The response carries the decision of the charge, not the look before the handler ran.
    assert (charged.status_code, charged.headers["X-RateLimit-Remaining"]) == (202, "2")
    refused = await client.post(f"{CHARGED_ROUTE}?n=3", headers=headers)  # 2 left
    assert_error(
        refused, 429, "Rate limit exceeded. Please try again later. Next request allowed in 30 s."
    )
    assert refused.headers["X-RateLimit-Remaining"] == "2"
    assert refused.headers["Retry-After"] in {"29", "30"}
    stats = (await client.get("/api/v1/stats", headers=headers)).json()
    # Not counted by the middleware (jobs count when they end); the refusal is a 429.
    assert (stats["total"], stats["quota"]["used"], stats["rate_limited"]) == (0, 3, 1)


async def test_a_handler_charges_once(client: httpx.AsyncClient, free_key: str) -> None:
    twice = await client.post(f"{CHARGED_ROUTE}?n=1&twice=1", headers={"X-API-Key": free_key})
    assert twice.status_code == 500  # a programming error, reported as one
    stats = (await client.get("/api/v1/stats", headers={"X-API-Key": free_key})).json()
    assert stats["quota"]["used"] == 1


def test_a_handler_charged_policy_spends_nothing_up_front_and_counts_nothing() -> None:
    policy = Policy(cost=CHARGED_BY_HANDLER)
    assert (policy.charged_by_handler, policy.upfront_cost, policy.counts_usage) == (True, 0, False)
    assert not Policy(cost=2).charged_by_handler and Policy(cost=2).upfront_cost == 2
    with pytest.raises(ValueError, match="public route"):
        Policy(public=True, cost=CHARGED_BY_HANDLER)
