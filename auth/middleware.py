"""`AccountsMiddleware`: API keys, limits and usage for the v1 routes, as plain ASGI.

For every HTTP request under ``/api/v1/`` except the public ones (health, the contract):

1. authenticate ``X-API-Key`` (401 / 503 as error envelopes, nothing else runs);
2. ``POST /api/v1/remove-watermark`` spends a token and a unit of quota (429 when either
   is out); other routes only look;
3. the account goes to ``scope["state"]["account"]`` (``request.state.account``) and the
   ``X-RateLimit-*`` headers onto the response;
4. after a remove-watermark response, its outcome is counted: 200 is a success (with its
   ``X-Processing-Time``), anything else, including a crash or a client gone, a failure.
"""

from __future__ import annotations

import logging
import math

import anyio
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import ServiceError
from auth.accounts import Accounts

logger = logging.getLogger(__name__)

API_PREFIX = "/api/v1/"
PUBLIC_PATHS = frozenset({"/api/v1/health", "/api/v1/openapi.json"})
SPENDING_ROUTE = ("POST", "/api/v1/remove-watermark")
API_KEY_HEADER = "x-api-key"
PROCESSING_TIME_HEADER = "x-processing-time"


def needs_account(scope: Scope) -> bool:
    path: str = scope["path"]
    return path.startswith(API_PREFIX) and path.rstrip("/") not in PUBLIC_PATHS


class AccountsMiddleware:
    def __init__(self, app: ASGIApp, accounts: Accounts) -> None:
        self.app = app
        self.accounts = accounts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not needs_account(scope):
            await self.app(scope, receive, send)
            return
        spends = (scope["method"], scope["path"]) == SPENDING_ROUTE
        try:
            account = await self.accounts.authenticate(Headers(scope=scope).get(API_KEY_HEADER))
            if spends:
                status = await self.accounts.admit(account)
            else:
                status = await self.accounts.peek(account)
        except ServiceError as exc:
            await exc.to_response()(scope, receive, send)
            return
        scope.setdefault("state", {})["account"] = account
        rate_limit_headers = status.headers()
        response_status: int | None = None
        processing_seconds = 0.0

        async def send_with_limits(message: Message) -> None:
            nonlocal response_status, processing_seconds
            if message["type"] == "http.response.start":
                response_status = int(message["status"])
                headers = MutableHeaders(scope=message)
                processing_seconds = _seconds(headers.get(PROCESSING_TIME_HEADER))
                for name, value in rate_limit_headers.items():
                    headers[name] = value
            await send(message)

        try:
            await self.app(scope, receive, send_with_limits)
        finally:
            if spends:
                # Shielded: a client that hangs up cancels the request, and its admission
                # must still be counted.
                with anyio.CancelScope(shield=True):
                    await self.accounts.record(
                        account,
                        succeeded=response_status == 200,
                        processing_seconds=processing_seconds,
                    )


def _seconds(header: str | None) -> float:
    if header is None:
        return 0.0
    try:
        seconds = float(header)
    except ValueError:
        logger.warning("Unreadable X-Processing-Time %r counted as 0", header)
        return 0.0
    return seconds if math.isfinite(seconds) and seconds >= 0 else 0.0
