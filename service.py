"""The watermark-removal service: what runs, in which order, behind which routes.

    bentoml serve            # this file; port 8080, settings from IOPAINT_* variables

- `Inpainting` (runners/inpainting.py): the model, in its own process, adaptive batching.
- `WatermarkRemoval` (below): the v1 HTTP API (api/app.py) mounted on BentoML, reaching
  the model through `bentoml.depends`.
- Middleware, outermost first: request ids, the error envelope, accounts (auth/).
"""

from __future__ import annotations

import logging

import bentoml

from api.allocator import limit_heap_fragmentation
from api.app import create_app
from api.middleware import ErrorEnvelopeMiddleware, RequestIdMiddleware
from auth.accounts import open_accounts
from auth.middleware import AccountsMiddleware
from runners.client import RunnerClient
from runners.inpainting import Inpainting
from settings import get_settings

settings = get_settings()
limit_heap_fragmentation()  # runs in every worker process, which each import this file
for package in ("api", "auth", "runners"):
    logging.getLogger(package).setLevel(settings.log_level.upper())
accounts = open_accounts(settings)
api_app = create_app(
    runner=RunnerClient(
        lambda: bentoml.get_current_service().inpainting,
        inpaint_timeout_s=settings.request_timeout_s,
    ),
    accounts=accounts,
    settings=settings,
)


@bentoml.service(
    name="watermark-removal",
    http={"port": settings.port},
    workers=settings.http_workers,
    # The runner enforces its own deadline; this outer one only catches what slips past it.
    traffic={"timeout": settings.request_timeout_s + 60},
)
@bentoml.asgi_app(api_app, path="/")
class WatermarkRemoval:
    inpainting = bentoml.depends(Inpainting)

    @bentoml.on_shutdown
    async def close_accounts(self) -> None:
        # Flushes usage counted while the store was unreachable, so none is lost on stop.
        await accounts.aclose()


WatermarkRemoval.add_asgi_middleware(RequestIdMiddleware)
WatermarkRemoval.add_asgi_middleware(ErrorEnvelopeMiddleware)
WatermarkRemoval.add_asgi_middleware(AccountsMiddleware, accounts=accounts)
