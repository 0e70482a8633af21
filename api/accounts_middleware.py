"""`AccountsMiddleware`: API keys, limits and usage for the API's routes, as plain ASGI.

What it does for a request is what the matched route declares (`api.routing.Policy`):

- an unknown path or a wrong method: nothing; the app answers 404 or 405 itself, before any
  key is asked for (so is every path outside the API app: BentoML's own `/livez`, ...);
- a public route: nothing;
- any other route: authenticate ``X-API-Key`` (401 / 503 as error envelopes, and the
  handler never runs); a route that costs N spends N tokens and N units of quota (429 when
  either is short), one that costs nothing only looks; the account goes to
  ``request.state.account`` and the ``X-RateLimit-*`` headers onto the response;
- a route charged by its handler: authenticate and look, as above, and put ``charge(n)`` on
  ``request.state``; the handler calls it once it knows its cost (a batch of N images), it
  spends N or raises 429 like an up-front cost, and the response carries the headers of
  that decision;
- a counted route: once it answered, its outcome is recorded. 200 is a success, with the
  ``processing_seconds`` the handler left in ``request.state``; anything else, including a
  crash or a client gone, a failure.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Iterable

import anyio
from starlette.datastructures import Headers, MutableHeaders
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.routing import PolicyTable
from auth.accounts import Accounts
from errors import ServiceError, TooManyRequests

logger = logging.getLogger(__name__)

API_KEY_HEADER = "x-api-key"
PROCESSING_SECONDS = "processing_seconds"
"""The `request.state` attribute a counted route sets to the seconds it worked."""
CHARGE = "charge"
"""The `request.state` attribute of a handler-charged route: ``await charge(n)``."""

Charger = Callable[[int], Awaitable[None]]


class AccountsMiddleware:
    def __init__(self, app: ASGIApp, accounts: Accounts, routes: Iterable[BaseRoute]) -> None:
        self.app = app
        self.accounts = accounts
        # Built here, at start-up: a route without a policy stops the service from starting.
        self.policies = PolicyTable(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        policy = self.policies.policy_for(scope) if scope["type"] == "http" else None
        if policy is None or policy.public:
            await self.app(scope, receive, send)
            return
        try:
            account = await self.accounts.authenticate(Headers(scope=scope).get(API_KEY_HEADER))
            if policy.upfront_cost > 0:
                status = await self.accounts.admit(account, cost=policy.upfront_cost)
            else:
                status = await self.accounts.peek(account)
        except ServiceError as exc:
            await exc.to_response()(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        state["account"] = account
        rate_limit_headers = status.headers()
        response_status: int | None = None
        charged = False

        async def charge(cost: int) -> None:
            nonlocal rate_limit_headers, charged
            if charged:
                raise RuntimeError("a request is charged once")
            charged = True
            try:
                decided = await self.accounts.admit(account, cost=cost)
            except TooManyRequests as refused:
                rate_limit_headers = {
                    name: value
                    for name, value in refused.headers.items()
                    if name.startswith("X-RateLimit-")
                }
                raise
            rate_limit_headers = decided.headers()

        if policy.charged_by_handler:
            state[CHARGE] = charge

        async def send_with_limits(message: Message) -> None:
            nonlocal response_status
            if message["type"] == "http.response.start":
                response_status = int(message["status"])
                headers = MutableHeaders(scope=message)
                for name, value in rate_limit_headers.items():
                    headers[name] = value
            await send(message)

        try:
            await self.app(scope, receive, send_with_limits)
        finally:
            if policy.counts_usage:
                # Shielded: a client that hangs up cancels the request, and its admission
                # must still be counted.
                with anyio.CancelScope(shield=True):
                    await self.accounts.record(
                        account,
                        succeeded=response_status == 200,
                        processing_seconds=_seconds(state.get(PROCESSING_SECONDS)),
                    )


def _seconds(value: object) -> float:
    if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        if value is not None:
            logger.warning("Processing time %r is not a duration; counted as 0", value)
        return 0.0
    return float(value)
