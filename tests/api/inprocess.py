"""The service in this process: the real app and middleware stack, the real OpenCV inpainter
(or another one a test gives).

What `service.py` runs, minus BentoML: `create_app` with an `InProcessModels` client (the
OpenCV inpainter, and the real watermark detector unless the settings turn detection off)
inside `api.stack.middleware_stack`, on an embedded accounts store in a temporary folder. A
sync `httpx.Client` reaches it through `PortalTransport`, which runs every request on one event
loop in a background thread (the app's lifespan, and so its warm-up, runs there too). A
request costs milliseconds, so most contract cases run here; what needs a real
`bentoml serve` (the runner process, raw sockets, logs, BentoML's own routes) stays in the
end-to-end tier.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from anyio.from_thread import BlockingPortal, start_blocking_portal

from api.app import create_app
from api.model_client import InProcessModels
from api.stack import middleware_stack, wrap
from auth.accounts import Accounts
from auth.key_admin import KeyAdmin
from auth.plans import Plan, enterprise_plan
from auth.sqlite_store import SqliteStore
from runners.inpainter import Inpainter
from runners.loading import load_detector_for
from runners.opencv_inpainter import OpenCVInpainter
from settings import Settings

UNLIMITED_PLAN = enterprise_plan(rate_per_minute=100_000, burst=10_000, quota=100_000_000)


class PortalTransport(httpx.BaseTransport):
    """A sync transport over an ASGI app, run by a portal's event loop."""

    def __init__(self, portal: BlockingPortal, transport: httpx.ASGITransport) -> None:
        self.portal = portal
        self.transport = transport

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        forwarded = httpx.Request(
            request.method, request.url, headers=request.headers, content=body
        )

        async def send() -> tuple[httpx.Response, bytes]:
            response = await self.transport.handle_async_request(forwarded)
            content = b"".join([part async for part in response.stream])  # type: ignore[union-attr]
            return response, content

        response, content = self.portal.call(send)
        return httpx.Response(response.status_code, headers=response.headers, content=content)


def _wait_until_healthy(client: httpx.Client, timeout_s: float = 30.0) -> None:
    """Health is 503 until the app's warm-up (a tiny call per model) is over."""
    deadline = time.monotonic() + timeout_s
    while (health := client.get("/api/v1/health")).status_code != 200:
        if time.monotonic() > deadline:
            raise RuntimeError(f"in-process service not healthy: {health.text}")
        time.sleep(0.01)


@dataclass
class InProcessService:
    client: httpx.Client
    """Sends an API key no test's traffic exhausts."""
    anonymous: httpx.Client
    """Sends no key."""
    key: str
    portal: BlockingPortal
    admin: KeyAdmin

    def new_key(self, plan: Plan) -> str:
        """A fresh key on `plan`, in the store the service reads."""
        return self.portal.call(lambda: self.admin.create(name="test", plan=plan)).key


@contextmanager
def running_in_process(
    data_dir: Path, settings: Settings | None = None, inpainter: Inpainter | None = None
) -> Iterator[InProcessService]:
    settings = settings or Settings(data_dir=data_dir, model="opencv", detector_threads=1)
    with start_blocking_portal() as portal:
        store = SqliteStore(data_dir / "accounts.sqlite3")
        accounts = Accounts(store)
        admin = KeyAdmin(store)
        created = portal.call(lambda: admin.create(name="in-process", plan=UNLIMITED_PLAN))
        detector = load_detector_for(settings)
        models = InProcessModels(inpainter or OpenCVInpainter(), detector=detector)
        app = create_app(models, accounts=accounts, settings=settings)
        stack = wrap(app, middleware_stack(accounts, app.routes))
        transport = PortalTransport(
            portal, httpx.ASGITransport(app=stack, raise_app_exceptions=False)
        )
        with portal.wrap_async_context_manager(app.router.lifespan_context(app)):
            base_url = "http://in-process"
            with (
                httpx.Client(
                    transport=transport, base_url=base_url, headers={"X-API-Key": created.key}
                ) as client,
                httpx.Client(transport=transport, base_url=base_url) as anonymous,
            ):
                _wait_until_healthy(anonymous)
                yield InProcessService(client, anonymous, created.key, portal, admin)
        portal.call(accounts.aclose)
