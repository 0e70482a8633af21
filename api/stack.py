"""The middleware around the API app, outermost first: one list, for BentoML and for tests.

1. `RequestIdMiddleware`: every response carries `X-Request-Id`;
2. `ErrorEnvelopeMiddleware`: every error body is the documented envelope, and is logged;
3. `AccountsMiddleware`: keys, limits and usage, as each route's declared policy says.

`service.py` hands the list to BentoML (`add_asgi_middleware`, which keeps this order);
the in-process test tier wraps the app with `wrap` to run exactly what production runs.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from starlette.routing import BaseRoute
from starlette.types import ASGIApp

from api.accounts_middleware import AccountsMiddleware
from api.middleware import ErrorEnvelopeMiddleware, RequestIdMiddleware
from auth.accounts import Accounts

MiddlewareSpec = tuple[type, dict[str, Any]]


def middleware_stack(accounts: Accounts, routes: Iterable[BaseRoute]) -> list[MiddlewareSpec]:
    return [
        (RequestIdMiddleware, {}),
        (ErrorEnvelopeMiddleware, {}),
        (AccountsMiddleware, {"accounts": accounts, "routes": list(routes)}),
    ]


def wrap(app: ASGIApp, stack: list[MiddlewareSpec]) -> ASGIApp:
    """`app` inside `stack`, the first entry outermost (as BentoML builds it)."""
    for middleware, options in reversed(stack):
        app = middleware(app, **options)
    return app
