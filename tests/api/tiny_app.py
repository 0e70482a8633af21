"""A tiny app under the real accounts middleware: routes with the policies of the real ones."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api.accounts_middleware import CHARGE, PROCESSING_SECONDS, AccountsMiddleware
from api.routing import AUTHENTICATED, CHARGED_BY_HANDLER, PUBLIC, Policy, PolicyRoute
from auth.accounts import Accounts
from errors import ServiceError, error_response

ROUTE = "/api/v1/remove-watermark"
BATCH_ROUTE = "/api/v1/tiny-batch"
BATCH_COST = 3
CHARGED_ROUTE = "/api/v1/tiny-jobs"
"""Charged by its handler: `?n=N` spends N once the "body" is read; `?twice=1` tries again."""


def tiny_app(accounts: Accounts) -> AccountsMiddleware:
    async def remove_watermark(request: Request) -> Response:
        if "crash" in request.query_params:
            raise RuntimeError("the model fell over")
        status = int(request.query_params.get("status", "200"))
        if status == 200:
            setattr(request.state, PROCESSING_SECONDS, 0.25)
        return Response(b"png", status_code=status)

    async def charged(request: Request) -> Response:
        cost = int(request.query_params.get("n", "0"))
        if cost:
            await getattr(request.state, CHARGE)(cost)
        if "twice" in request.query_params:
            await getattr(request.state, CHARGE)(cost)
        return Response(b"queued", status_code=202)

    async def stats(request: Request) -> JSONResponse:
        return JSONResponse(await accounts.stats(request.state.account))

    async def public(request: Request) -> JSONResponse:
        return JSONResponse({"account": "account" in request.scope.get("state", {})})

    async def service_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ServiceError)
        return exc.to_response()

    async def not_found(request: Request, exc: Exception) -> Response:
        return error_response(404, f"No route {request.url.path}")

    routes = [
        PolicyRoute(ROUTE, remove_watermark, method="POST", policy=Policy(cost=1)),
        PolicyRoute(BATCH_ROUTE, remove_watermark, method="POST", policy=Policy(cost=BATCH_COST)),
        PolicyRoute(
            CHARGED_ROUTE,
            charged,
            method="POST",
            policy=Policy(cost=CHARGED_BY_HANDLER, counted=False),
        ),
        PolicyRoute("/api/v1/stats", stats, method="GET", policy=AUTHENTICATED),
        PolicyRoute("/api/v1/health", public, method="GET", policy=PUBLIC),
        PolicyRoute("/api/v1/openapi.json", public, method="GET", policy=PUBLIC),
        # Outside the API app (BentoML's own routes): the middleware lets them through.
        PolicyRoute("/livez", public, method="GET", policy=PUBLIC),
        PolicyRoute("/metrics", public, method="GET", policy=PUBLIC),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={ServiceError: service_error, 404: not_found},  # as api/app.py does
    )
    return AccountsMiddleware(app, accounts=accounts, routes=app.routes)
