"""Each route declares, beside its handler, who may call it and what a call costs.

    class WatermarkApi:
        @route("POST", "/api/v1/remove-watermark", Policy(cost=1))
        async def remove_watermark(self, request): ...

        @route("GET", "/api/v1/health", PUBLIC)
        async def health(self, request): ...

A route whose cost is known only once its body is read (a batch of N images costs N)
declares `Policy(cost=CHARGED_BY_HANDLER)`: the middleware authenticates and only looks at
the limits, and the handler spends what it must through `request.state.charge(n)`.

`routes_of(handlers)` turns the decorated methods into Starlette routes carrying their
`Policy`; the accounts middleware (`api.accounts_middleware`) reads the policy of the route
a request matches, and nothing else: there is no second list of paths to keep in step. A
route without a policy is refused when the app is built (`MissingRoutePolicy`), so a new
route cannot be silently free or silently public.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, TypeVar

from starlette.routing import BaseRoute, Match, Route
from starlette.types import Scope

Handler = TypeVar("Handler", bound=Callable[..., Any])

_DECLARATION = "_route_declaration"


class Charge(Enum):
    BY_HANDLER = "charged by the handler"


CHARGED_BY_HANDLER = Charge.BY_HANDLER
"""A cost the handler decides once it has read the body (`request.state.charge(n)`)."""


@dataclass(frozen=True)
class Policy:
    """What the accounts middleware does for one route."""

    public: bool = False
    """No API key needed; no rate-limit headers."""
    cost: int | Charge = 0
    """Tokens and quota units an admitted call spends before the handler runs (0: it only
    looks, and carries the rate-limit headers); `CHARGED_BY_HANDLER`: the handler spends
    them itself, all or nothing, once it knows how many."""
    counted: bool | None = None
    """Whether the call's outcome lands in the caller's usage statistics; by default, the
    calls that cost something before the handler runs."""

    def __post_init__(self) -> None:
        if isinstance(self.cost, int) and self.cost < 0:
            raise ValueError("a route's cost is a number of requests, 0 or more")
        if self.public and (self.cost or self.counted):
            raise ValueError("a public route has no caller to charge or count")

    @property
    def charged_by_handler(self) -> bool:
        return self.cost is CHARGED_BY_HANDLER

    @property
    def upfront_cost(self) -> int:
        """What the middleware spends before the handler runs."""
        return 0 if isinstance(self.cost, Charge) else self.cost

    @property
    def counts_usage(self) -> bool:
        return self.upfront_cost > 0 if self.counted is None else self.counted


PUBLIC = Policy(public=True)
AUTHENTICATED = Policy()


class MissingRoutePolicy(RuntimeError):
    """A route of the API app declares no `Policy`."""


@dataclass(frozen=True)
class _Declaration:
    method: str
    path: str
    policy: Policy


class PolicyRoute(Route):
    """A Starlette route that carries its `Policy`."""

    def __init__(self, path: str, endpoint: Callable[..., Any], *, method: str, policy: Policy):
        super().__init__(path, endpoint, methods=[method])
        self.policy = policy


def route(method: str, path: str, policy: Policy) -> Callable[[Handler], Handler]:
    """Declare the handler below as ``METHOD PATH`` under `policy`."""

    def declare(handler: Handler) -> Handler:
        declarations = [*getattr(handler, _DECLARATION, ()), _Declaration(method, path, policy)]
        setattr(handler, _DECLARATION, declarations)
        return handler

    return declare


def routes_of(handlers: object) -> list[PolicyRoute]:
    """The routes declared on the methods of `handlers`, in definition order (a subclass's
    own methods first)."""
    routes = []
    seen: set[str] = set()
    for klass in type(handlers).__mro__:
        for name, attribute in vars(klass).items():
            if name in seen:
                continue
            seen.add(name)
            for declaration in getattr(attribute, _DECLARATION, ()):
                routes.append(
                    PolicyRoute(
                        declaration.path,
                        getattr(handlers, name),
                        method=declaration.method,
                        policy=declaration.policy,
                    )
                )
    return routes


class PolicyTable:
    """Finds the policy of the route a request matches; built once, at start-up."""

    def __init__(self, routes: Iterable[BaseRoute]) -> None:
        self._routes: Sequence[BaseRoute] = list(routes)
        for candidate in self._routes:
            if not isinstance(getattr(candidate, "policy", None), Policy):
                path = getattr(candidate, "path", repr(candidate))
                raise MissingRoutePolicy(
                    f"route {path} declares no Policy: declare it with @route(..., policy)"
                )

    def policy_for(self, scope: Scope) -> Policy | None:
        """The matched route's policy; None for an unknown path or a wrong method, which the
        app answers itself (404, 405) before anyone is asked for a key."""
        for candidate in self._routes:
            match, _ = candidate.matches(scope)
            if match is Match.FULL:
                policy: Policy = candidate.policy  # type: ignore[attr-defined]
                return policy
        return None
